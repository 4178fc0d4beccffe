"""The pager: reads an ``offset``/``limit``/``count`` listing to its end without trusting the server.

Offset paging over data that changes between pages silently repeats or skips records, so every
read is checked for consistency (count stable, offsets echoed as asked, no record twice, total ==
count) and the listing read again from the start when it changed; a listing that never reads
consistently is an error, never half a listing. The pager knows nothing of HTTP: it gets one page
through ``fetch`` (the client's GET with retries).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import struct
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from rafay_billing.errors import RafayListingInconsistent, RafayPagingError, RafayResponseError
from rafay_billing.source.client.urls import encode_query

log = logging.getLogger("rafay_billing.source.client")

PageHook = Callable[[str, str, int, bytes], None]
"""``on_page(kind, key, page_no, body)``: called with every raw listing page, e.g. to land it for audit.

``kind`` is ``orgs``, ``profiles``, ``usage`` or ``partner-<compute|service>``; ``key`` tells the
listing apart within its kind: ``""`` for orgs, the org id for profiles, the profile name for usage
(the caller knows the org), the org id or ``""`` for partner usage. ``page_no`` counts from 0 and
starts at 0 again when a listing is read again from the start (see ``ListingRestart``), so pages
landed under ``rafay_billing.paths.page_file_name`` are replaced by the read that was used.
"""

class Page(NamedTuple):
    """One reply: the decoded JSON, the raw body and, for a listing page read by the client, a
    fingerprint of each record's raw text (``rafay_billing.source.client.decoding.decode_page``)."""

    data: Any
    body: bytes
    prints: list[int] | None = None


Fetch = Callable[[str, dict[str, Any]], "tuple[Any, bytes] | Page"]
"""``fetch(path, query) -> (json, body)`` or a :class:`Page`: one GET with retries."""

_PAGING_FIELDS = ("count", "offset", "limit")


class PagedItem(NamedTuple):
    """One listing entry and where it came from: ``page_no`` (from 0 in its read) and ``index``
    (0-based position in that page's items array), so a row can name the raw page it came from.

    A named tuple, not a dataclass: one is made per record, and a frozen dataclass's construction
    cost more than the rest of the pager's per-record work. The field ``index`` hides ``tuple.index``."""

    page_no: int
    index: int  # type: ignore[assignment]  # the field (its users read .index) hides tuple.index
    item: dict


@dataclass(frozen=True)
class ListingRestart:
    """Yielded by the ``*_entries`` iterators when a listing is read again from the start.

    Everything received before it came from a read that turned out inconsistent: discard it.
    ``read`` is the read that starts now (2, 3, ...), ``reason`` what was wrong with the last one.
    """

    read: int
    reason: str


ListingEntry = PagedItem | ListingRestart


class PageItems(NamedTuple):
    """One page of a listing as it arrives: its number (from 0 in its read) and its items, in order."""

    page_no: int
    items: list[dict]


ListingPart = PageItems | ListingRestart


@dataclass(frozen=True)
class Listing:
    """One listing to read: ``what`` names it in messages (``profiles of org coke``)."""

    kind: str
    key: str
    path: str
    items_field: str
    what: str
    params: dict[str, Any] = field(default_factory=dict)


def _new_digest() -> Any:
    return hashlib.blake2b(digest_size=16)


@dataclass
class _Read:
    """What one read from the start found: the first inconsistency and a digest of the item sequence.

    ``digest`` is None when the read was cut short (it can then not vouch for the listing).
    """

    problem: str | None = None
    digest: bytes | None = None
    total: int = 0
    paging: bool = False  # the server sent a paging field, or pages without sending any (the probe)
    page_count: int | None = None
    last_count: int | None = None
    previous_body: bytes | None = None
    seen: set[int] = field(default_factory=set)
    sequence: Any = field(default_factory=_new_digest)

    def note(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem

    def check_page(
        self, page_no: int, offset: int, page: Page, items: list[dict], listing: Listing, where: str
    ) -> bool:
        """Record one page; False when the read must stop here (the server answered another offset)."""
        data, body = page.data, page.body
        self.paging = self.paging or any(name in data for name in _PAGING_FIELDS)
        echoed = _whole(data.get("offset"))
        if echoed is not None and echoed != offset:
            self.note(f"page {page_no}: the server answered offset {echoed} for offset {offset}")
            return False
        if items and body == self.previous_body:
            raise RafayPagingError(
                f"{where}: server returned the same page again (it ignores offset); refusing to page on",
                method="GET", path=listing.path,
            )
        self.previous_body = body
        self._check_count(page_no, _whole(data.get("count")))
        self._check_repeats(page_no, items, page.prints)
        return True

    def _check_count(self, page_no: int, count: int | None) -> None:
        self.page_count = count
        if count is None:
            return
        if self.last_count is not None and count != self.last_count:
            self.note(f"count changed from {self.last_count} to {count} at page {page_no}")
        self.last_count = count

    def _check_repeats(self, page_no: int, items: list[dict], raw_prints: list[int] | None) -> None:
        prints = _prints(raw_prints, items)
        again = sum(map(self.seen.__contains__, prints))
        if again:
            self.note(f"{again} record(s) on page {page_no} already came on an earlier page")
        self.seen.update(prints)
        self.sequence.update(struct.pack(f"<{len(prints)}q", *prints))  # 8 bytes each, little-endian
        self.total += len(items)

    def ended(self, items: list[dict], offset: int) -> bool:
        """The listing ends at ``count``; without ``count``, on an empty page, or after the one reply
        of a server that does not page (:meth:`Pager._pages_silently` tells it from one that does)."""
        if not items:
            return True
        if self.page_count is not None:
            return offset >= self.page_count
        return not self.paging

    def finish(self) -> _Read:
        if self.last_count is not None and self.total != self.last_count:
            self.note(f"{self.total} records read but the listing's count is {self.last_count}")
        self.digest = self.sequence.digest()
        return self


@dataclass(frozen=True)
class Pager:
    """Reads listings page by page through ``fetch``; ``count_page`` is told of every page received,
    ``count_reread`` also of every page received by a read after a listing's first (the pages re-read)."""

    fetch: Fetch
    page_size: int
    max_pages: int
    listing_reads: int
    count_page: Callable[[], None]
    hook: PageHook | None = None
    count_reread: Callable[[], None] | None = None

    def consistent(self, listing: Listing) -> Iterator[dict]:
        """The items of the listing's consistent read, yielded only once it is known to be consistent."""
        items: list[dict] = []
        for entry in self.entries(listing):
            if isinstance(entry, ListingRestart):
                items = []
            else:
                items.append(entry.item)
        yield from items

    def entries(self, listing: Listing) -> Iterator[ListingEntry]:
        """:meth:`pages`, item by item: a ``PagedItem`` per record, a ``ListingRestart`` before each re-read."""
        for part in self.pages(listing):
            if isinstance(part, ListingRestart):
                yield part
            else:
                yield from map(PagedItem, itertools.repeat(part.page_no), itertools.count(), part.items)

    def pages(self, listing: Listing) -> Iterator[ListingPart]:
        """Read a listing until one read is consistent, at most ``listing_reads`` times, page by page.

        Why pages: a consumer of 50,000 records that takes them a page at a time pays the generator
        hand-offs once per page, not once per record (see :meth:`entries` for them one by one).

        Offset paging over data that changes between pages repeats a record (one added at the head)
        or skips one (one removed), so a read whose ``count`` moves between pages, whose echoed
        offset is not the one asked for, that meets a record again on a later page (the same record
        text, as the server wrote it) or whose total is not the final ``count`` is thrown away and the
        listing read again from the start (a ``ListingRestart`` tells the consumer to discard). Two consecutive
        full reads with exactly the same items prove the listing stable even so (the server really
        holds, say, a duplicate record) and the last one is accepted, with a warning.
        """
        reads = self.listing_reads
        problems: list[str] = []
        previous: bytes | None = None
        for read_no in range(1, reads + 1):
            if problems:
                yield ListingRestart(read_no, problems[-1])
            result = yield from self._read_once(listing, again=read_no > 1)
            if result.problem is None:
                return
            if result.digest is not None and result.digest == previous:
                log.warning(
                    "%s: reads %d and %d returned the same %d records although %s; the listing is stable, "
                    "accepted as it is", listing.what, read_no - 1, read_no, result.total, result.problem,
                )
                return
            previous = result.digest
            problems.append(result.problem)
            if read_no < reads:
                log.warning(
                    "%s changed while it was paged (%s); reading it again from the start (read %d of %d)",
                    listing.what, result.problem, read_no + 1, reads,
                )
        raise RafayListingInconsistent(
            f"{listing.what} (GET {listing.path}) changed while it was paged, on each of {reads} read(s) "
            "from the start: " + "; ".join(f"read {n}: {p}" for n, p in enumerate(problems, 1))
            + ". None of it was used: run again once the data holds still, or allow more reads "
            "(listing_reads)",
            method="GET", path=listing.path,
        )

    def _read_once(self, listing: Listing, again: bool = False) -> Generator[PageItems, None, _Read]:
        """One read from offset 0 to the end, yielding pages as they arrive; returns what it found.

        The offset advances by the items actually received (a server may cap pages below
        ``limit``). The listing ends at ``count``; without ``count``, only on an empty page (a short
        page may just be capped). A reply with no paging fields at all comes from a server that
        does not page (seed era): it is the whole listing, not asked again - such a server ignores
        offset, and a second copy of a live listing would differ and be taken for new records.
        Hard errors stay immediate: the same page again from a server that pages (it ignores
        offset), more than ``max_pages`` pages, replies of the wrong shape.

        Why a prefetch: pages of one listing are sequential, so the time the consumer spends on a
        page (checks, normalisation, spooling) would add to every page's round trip. As soon as a
        page has passed its checks and announces more, the next page (at the offset its items
        imply) is asked for on a helper thread while this page's items are yielded; a page that
        fails its checks is never followed by a prefetch, and when the consumer stops (or an
        error ends the read) the prefetched reply is awaited and discarded. At most one page is
        ahead, so memory stays at two pages per listing.
        """
        result = _Read()
        offset = 0
        ahead = _Prefetch(self.fetch)
        try:
            for page_no in range(self.max_pages):
                query = {**listing.params, "offset": offset, "limit": self.page_size}
                reply = ahead.take(listing.path, query)
                page = reply if isinstance(reply, Page) else Page(*reply)
                data, body = page.data, page.body
                where = f"GET {listing.path}?{encode_query(query)}"
                self.count_page()
                if again and self.count_reread is not None:
                    self.count_reread()
                if self.hook is not None:
                    self.hook(listing.kind, listing.key, page_no, body)
                items = page_items(data, listing, where)
                if not result.check_page(page_no, offset, page, items, listing, where):
                    return result  # cut short: paging on from a wrong offset proves nothing
                if page_no == 0 and not result.paging and items:
                    result.paging = self._pages_silently(listing, page, items, ahead)
                after = offset + len(items)
                if page_no + 1 < self.max_pages and not result.ended(items, after):
                    ahead.start(listing.path, {**listing.params, "offset": after, "limit": self.page_size})
                yield PageItems(page_no, items)
                offset = after
                if result.ended(items, offset):
                    return result.finish()
        finally:
            ahead.close()
        raise RafayPagingError(
            f"GET {listing.path}: listing did not end after {self.max_pages} pages (offset {offset}); "
            "the server keeps announcing more items",
            method="GET", path=listing.path,
        )

    def _pages_silently(self, listing: Listing, page: Page, items: list[dict], ahead: _Prefetch) -> bool:
        """True when a server whose first reply carries no paging field pages all the same.

        Why a probe: such a reply is either a seed-era server's whole listing (it ignores offset and
        limit) or the first page of a server that pages without saying so (a fixed or capped page
        size, whatever ``limit`` says). Taken for the whole listing, the second loses every record
        beyond its first page, silently; paged on blindly, the first is read again and again. So the
        next offset is asked for, as the next page would be: a server that ignores paging answers
        from the start again (the same reply, or the same first record); one that pages answers the
        records after the first page (or none). The reply is kept as the next page when it is one."""
        query = {**listing.params, "offset": len(items), "limit": self.page_size}
        reply = self.fetch(listing.path, query)
        probe = reply if isinstance(reply, Page) else Page(*reply)
        if not isinstance(probe.data, dict) or probe.body == page.body:
            return False
        found = page_items(probe.data, listing, f"GET {listing.path}?{encode_query(query)}")
        paging = any(name in probe.data for name in _PAGING_FIELDS)
        if not paging and (not found or _prints(probe.prints, found[:1]) == _prints(page.prints, items[:1])):
            return False  # nothing after the first page, or the listing from its start again
        log.warning("%s: the server pages but sends no count, offset or limit back; reading it to an empty page",
                    listing.what)
        ahead.put(query, probe)
        return True


class _Prefetch:
    """At most one page fetched ahead on a helper thread (started lazily: one-page listings never pay for it).

    ``take`` returns the prefetched reply when it was for exactly that query, else fetches now; an
    unused prefetch is awaited and dropped (its error too: the page was never needed).
    """

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[dict[str, Any], Future[tuple[Any, bytes] | Page]] | None = None

    def start(self, path: str, query: dict[str, Any]) -> None:
        if self._pending is not None and self._pending[0] == query:
            return  # already fetched or on its way (a probe's reply, see Pager._pages_silently)
        self._drop()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rafay-page")
        self._pending = (query, self._pool.submit(self._fetch, path, query))

    def put(self, query: dict[str, Any], reply: tuple[Any, bytes] | Page) -> None:
        """Hold ``reply``, already fetched, as the prefetched page for ``query``."""
        self._drop()
        future: Future[tuple[Any, bytes] | Page] = Future()
        future.set_result(reply)
        self._pending = (query, future)

    def take(self, path: str, query: dict[str, Any]) -> tuple[Any, bytes] | Page:
        if self._pending is not None and self._pending[0] == query:
            future = self._pending[1]
            self._pending = None
            return future.result()
        self._drop()
        return self._fetch(path, query)

    def _drop(self) -> None:
        if self._pending is not None:
            future = self._pending[1]
            self._pending = None
            wait([future])

    def close(self) -> None:
        self._drop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def page_items(data: dict, listing: Listing, where: str) -> list[dict]:
    """The page's items (absent or null = none); anything but a list of objects is an error."""
    items = data.get(listing.items_field)
    if items is None:
        return []
    if not isinstance(items, list):
        raise RafayResponseError(
            f"{where}: {listing.items_field!r} is not a list", method="GET", path=listing.path
        )
    for item in items:
        if not isinstance(item, dict):
            raise RafayResponseError(
                f"{where}: an entry of {listing.items_field!r} is not an object: {str(item)[:80]!r}",
                method="GET", path=listing.path,
            )
    return items


def _prints(prints: list[int] | None, items: list[dict]) -> list[int]:
    """The fingerprints of the first ``len(items)`` records of a page: of their raw text when the client
    gave them (``prints``, :class:`Page`), else of the decoded records."""
    if prints is not None and len(prints) >= len(items):
        return prints[: len(items)]
    return list(map(_fingerprint, items))


def _fingerprint(item: dict) -> int:
    """Identity of a record's JSON within one process (``repr`` keeps key order and Decimal text), for
    pages that come without the fingerprints of their raw text (``Page.prints``)."""
    return hash(repr(item))


def _whole(value: Any) -> int | None:
    """An int paging field, or None when absent or not a whole number (then it is ignored)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return None
