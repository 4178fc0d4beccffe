"""Extraction: an organization's usage for a window, as ``UsageRow``s in the seed's order.

Why a thread pool: the API has one usage call per profile and each call is latency-bound, so
reading an org's profiles concurrently (bounded, default 8) turns minutes into seconds. Results
are put back in listing order (profile order, then API record order), whatever order the
threads finish in, so the output is deterministic and matches the seed script's rows.

Why spooling: one org can have 100,000 instances. Each worker normalises records as their page
arrives and, for the DAG (``keep_rows=False``), appends the rows to a temporary file of its own, so
an org's extraction holds a few pages per worker in memory, not the whole org; the rows are then
streamed, in order, into the landed usage CSV. When the client reads a usage listing again because
it changed while paged, the worker starts a fresh spool: only the consistent read's rows are kept.
"""

from __future__ import annotations

import logging
import operator
import pickle
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import IO

from rafay_billing.errors import RafayError, RafayResponseError
from rafay_billing.paths import page_file_name
from rafay_billing.source.client import ClientStats, ListingRestart, PageHook, PageItems, RafayClient
from rafay_billing.source.record_values import seed_text
from rafay_billing.source.usage import ProfileRef, RowMaker, UsageRow, row_values
from rafay_billing.window import Window

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class OrgRef:
    """An organization as listed: ``org_id`` (``metadata.name``, used in API paths) and display name.

    ``partner_id`` is its id in the partner billing API (the listing's ``id`` field when it has one;
    see ``rafay_billing.source.partner``); ``partner_problem`` says why it cannot be read from there.
    """

    org_id: str
    name: str
    partner_id: str | None = None
    partner_problem: str | None = None


def list_orgs(client: RafayClient, *, on_page: PageHook | None = None) -> list[OrgRef]:
    """All organizations in listing order (the seed's CSV order); display name ``Unknown`` if absent."""
    orgs = []
    for item in client.iter_organizations(on_page=on_page):
        metadata = item.get("metadata")
        org_id = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(org_id, int | Decimal) and not isinstance(org_id, bool):
            org_id = seed_text(org_id)  # the seed would format it into the path as text
        if not isinstance(org_id, str) or not org_id:
            raise RafayResponseError(
                f"GET /v2/organizations: an organization has no metadata.name (its id): {client.shown(str(item), 120)}"
            )
        orgs.append(OrgRef(org_id=org_id, name=seed_text(item.get("name", "Unknown")), partner_id=_listed_id(item)))
    return orgs


def _listed_id(item: dict) -> str | None:
    """The org's id field (``id``, else ``metadata.id``) when the listing carries one."""
    metadata = item.get("metadata")
    value = item.get("id") or (metadata.get("id") if isinstance(metadata, dict) else None)
    return value if isinstance(value, str) and value else None


@dataclass
class OrgExtraction:
    """What one org's extraction produced, with the numbers an operator wants in the log.

    The rows are in ``rows`` (``keep_rows=True``, the default) or, with ``keep_rows=False``, in
    temporary spool files read back in order by :meth:`iter_rows`; :meth:`iter_rows` works either
    way. Counts and totals are kept as the rows are produced, so they never need the rows.
    """

    org_id: str
    organization: str
    org_seq: int
    window: Window
    profiles: int = 0
    row_count: int = 0
    records: int = 0
    duplicates: int = 0
    invalid: int = 0
    hours_total: Decimal = field(default_factory=Decimal)
    pages: int = 0
    requests: int = 0
    retries: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    elapsed_s: float = 0.0
    _rows: list[UsageRow] | None = field(default=None, repr=False)
    _spools: list[_RowSpool] = field(default_factory=list, repr=False)

    @property
    def rows(self) -> list[UsageRow]:
        """Every row in order; only when extracted with ``keep_rows=True`` (else use :meth:`iter_rows`)."""
        if self._rows is None:
            raise RuntimeError("rows were spooled to disk (keep_rows=False): read them with iter_rows()")
        return self._rows

    def iter_rows(self) -> Iterator[UsageRow]:
        """The rows in order (profile order, then API order), ``record_seq`` numbering them from 0."""
        if self._rows is not None:
            yield from self._rows
            return
        seq = 0
        for spool in self._spools:
            for cells in spool:
                yield _row(cells, seq)
                seq += 1

    def close(self) -> None:
        """Remove the spool files (rows kept in memory stay)."""
        for spool in self._spools:
            spool.close()
        self._spools = []

    def __enter__(self) -> OrgExtraction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def collect(
        self, spools: list[_RowSpool], *, profiles: int, stats: ClientStats, keep_rows: bool, started: float
    ) -> OrgExtraction:
        """Fill the counts from the read spools and the client's stats (both sources end here)."""
        self.profiles = profiles
        for spool in spools:
            self.row_count += spool.rows
            self.records += spool.records
            self.duplicates += spool.duplicates
            self.invalid += spool.invalid
            self.hours_total += spool.hours
        self._spools = spools
        if keep_rows:
            self._rows = list(self.iter_rows())
            self.close()
        snap = stats.snapshot()
        self.pages, self.requests, self.retries = snap.pages, snap.requests, snap.retries
        self.p50_ms, self.p95_ms = snap.p50_ms, snap.p95_ms
        self.elapsed_s = time.perf_counter() - started
        return self

    def summary_line(self) -> str:
        """e.g. ``org coke (Coke): 3 profiles, 41 instances, 1,234.56 h, 2 retries, API p95 180 ms``."""
        parts = [
            f"{self.profiles} profiles",
            f"{self.row_count} instances",
            f"{self.hours_total:,.2f} h",
        ]
        if self.invalid:
            parts.append(f"{self.invalid} invalid")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicates dropped")
        parts.append(f"{self.pages} pages")
        parts.append(f"{self.retries} retries")
        if self.p95_ms is not None:
            parts.append(f"API p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms")
        parts.append(f"{self.elapsed_s:.1f} s")
        return f"org {self.org_id} ({self.organization}): " + ", ".join(parts)


_FIELDS = [f.name for f in fields(UsageRow)]
_RECORD_SEQ = _FIELDS.index("record_seq")
_PROFILE = _FIELDS.index("profile")
_INSTANCE_KEY = _FIELDS.index("instance_key")
_LABELS = _FIELDS.index("labels")
_INVALID_REASON = _FIELDS.index("invalid_reason")
_USAGE_HOURS = _FIELDS.index("usage_hours")
_DIMENSIONS = _FIELDS.index("dimensions")
_DUPLICATE_FIELDS = operator.itemgetter(*(_FIELDS.index(name) for name in (
    "instance_id", "record_start", "record_end", "usage_hours", "invalid_reason")))
_UNTIMED_FIELDS = operator.itemgetter(_FIELDS.index("status"), _FIELDS.index("instance"))
_SPOOL_BATCH = 1000


def _row(cells: tuple, seq: int) -> UsageRow:
    """A ``UsageRow`` from its field tuple, numbered ``seq`` within the org."""
    return UsageRow(*(cells[:_RECORD_SEQ] + (seq,) + cells[_RECORD_SEQ + 1 :]))


class _RowSpool:
    """One profile's rows as field tuples, in order: in memory, or pickled in batches to a temp file.

    Written by one worker thread, read back (any number of times) once it is finished.
    """

    def __init__(self, on_disk: bool) -> None:
        self._batch: list[tuple] = []
        self._file: IO[bytes] | None = tempfile.TemporaryFile(prefix="rafay-rows-") if on_disk else None
        self.rows = 0
        self.records = 0
        self.duplicates = 0
        self.invalid = 0
        self.hours = Decimal(0)
        self._labels: dict[tuple[str, str], dict[str, str]] = {}
        self._merged: dict[tuple[str, str], dict[str, str]] = {}

    def add(self, row: UsageRow) -> None:
        self.add_cells(row_values(row))

    def add_cells(self, cells: tuple) -> None:
        """Keep one row, given as its field tuple (``RowMaker.cells``)."""
        # one label set per instance: rating prices an instance's records together (later wins)
        labels = cells[_LABELS]
        key = (cells[_PROFILE], cells[_INSTANCE_KEY])
        first = self._labels.setdefault(key, labels)
        # labels merged before, or other labels than the instance's first (compared only when not that very dict)
        if key in self._merged or (first is not labels and labels != first):
            self._merged[key] = {**self._merged.get(key, first), **labels}
        self.rows += 1
        if cells[_INVALID_REASON] is not None:
            self.invalid += 1
        elif cells[_USAGE_HOURS] is not None:
            self.hours += cells[_USAGE_HOURS]
        self._batch.append(cells)
        if self._file is not None and len(self._batch) >= _SPOOL_BATCH:
            self.flush()

    def flush(self) -> None:
        if self._file is not None and self._batch:
            pickle.dump(list(map(_to_disk, self._batch)), self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._batch = []

    def __iter__(self) -> Iterator[tuple]:
        for cells in self._cells():
            merged = self._merged.get((cells[_PROFILE], cells[_INSTANCE_KEY])) if self._merged else None
            yield cells if merged is None else (*cells[:_LABELS], merged, *cells[_LABELS + 1 :])

    def _cells(self) -> Iterator[tuple]:
        if self._file is None:
            yield from self._batch
            return
        self.flush()
        self._file.seek(0)
        while True:
            try:
                batch = pickle.load(self._file)  # our own temp file, written just above
            except EOFError:
                return
            yield from map(_from_disk, batch)

    def close(self) -> None:
        self._batch = []
        if self._file is not None:
            self._file.close()


def _to_disk(cells: tuple) -> list:
    """A row as the spool file keeps it: its Decimals (hours, dimensions) as their exact text.

    Why: pickling a Decimal goes through its reduce protocol, and the five of a usual row cost more
    than pickling all the rest of it; ``str`` and ``Decimal(str)`` give back the very same number
    (digits, exponent and sign, ``-0`` and trailing zeros included)."""
    row = list(cells)
    hours = row[_USAGE_HOURS]
    if hours is not None:
        row[_USAGE_HOURS] = str(hours)
    dimensions = row[_DIMENSIONS]
    if dimensions:
        row[_DIMENSIONS] = {k: None if v is None else str(v) for k, v in dimensions.items()}
    return row


def _from_disk(row: list) -> tuple:
    """:func:`_to_disk` undone: the row's field tuple."""
    hours = row[_USAGE_HOURS]
    if hours is not None:
        row[_USAGE_HOURS] = Decimal(hours)
    dimensions = row[_DIMENSIONS]
    if dimensions:
        row[_DIMENSIONS] = {k: None if v is None else Decimal(v) for k, v in dimensions.items()}
    return tuple(row)


@dataclass(frozen=True)
class ListedProfiles:
    """An org's profiles, listed ahead of its usage: what :func:`extract_org` reads first, and the
    listing's requests already counted in ``stats`` (the org's counters go on from there)."""

    profiles: list[ProfileRef]
    stats: ClientStats
    started: float


def list_profiles(client: RafayClient, org_id: str, *, on_page: PageHook | None = None) -> ListedProfiles:
    """The org's profiles (its first request of an extraction). Why on its own: a caller extracting
    many orgs can ask for every org's profile listing first, so no org's usage waits at the end of a
    run behind its own profile listing (see the ``metrics`` command)."""
    started = time.perf_counter()
    stats = ClientStats()
    items = client.iter_profiles(org_id, on_page=_unkeyed_page_hook(on_page), stats=stats)
    return ListedProfiles([ProfileRef.from_item(p) for p in items], stats, started)


def extract_org(
    client: RafayClient,
    org_id: str,
    organization: str,
    window: Window,
    *,
    org_seq: int,
    concurrency: int | None = None,
    on_page: PageHook | None = None,
    keep_rows: bool = True,
    listed: ListedProfiles | None = None,
    pool: Executor | None = None,
) -> OrgExtraction:
    """Read an org's profiles, then every profile's usage for ``window``, ``concurrency`` at a time.

    ``concurrency`` defaults to the client's (8 unless the connection says otherwise); the client
    also caps requests in flight across all its users. ``on_page`` is called from worker threads,
    as ``("profiles", "", n, body)`` and ``("usage", <profile name>, n, body)``: the org is the one
    being extracted.

    Records are normalised as their page arrives, so raw records never pile up. With
    ``keep_rows=False`` the rows go to temporary spool files (one per profile, pickled in batches)
    instead of memory: memory stays at a few pages per worker whatever the org's size, and
    :meth:`OrgExtraction.iter_rows` streams them back in order (then call ``close()``).

    Any profile's failure fails the org (after the running reads finish), and so does a listing
    that never reads consistently: a partial org would be billed short without anyone noticing.
    Records that share an ``instance_id`` but cover other times or hours (a stop and a start) are
    all kept; rating sums them. Exact duplicates (same id, start, end and hours) are kept once,
    counted and logged. Records without an id are all kept, as the seed keeps them. Each row names
    its raw page file (``page_file_name("usage", profile, page_no)``, relative to the org's folder)
    and its index in that page. ``listed``: the org's profiles from :func:`list_profiles`, when the
    caller listed them ahead (same ``on_page``); else they are listed here. ``pool``: where the
    profiles are read when the caller shares one pool across orgs (the ``metrics`` command: 20 % less
    CPU than a pool per org, whose threads were made and ended for each org); else an own pool of
    ``concurrency`` threads.
    """
    if concurrency is None:
        concurrency = client.concurrency
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if listed is None:
        listed = list_profiles(client, org_id, on_page=on_page)
    started, stats, profiles = listed.started, listed.stats, listed.profiles
    reader = _ProfileReader(client, org_id, organization, window, org_seq, on_page, stats, keep_rows)
    spools = _read_profiles(reader, profiles, concurrency, pool)

    result = OrgExtraction(org_id=org_id, organization=organization, org_seq=org_seq, window=window)
    return result.collect(spools, profiles=len(profiles), stats=stats, keep_rows=keep_rows, started=started)


@dataclass(frozen=True)
class _ProfileReader:
    """Reads one profile's usage of one org into a spool (called from a worker thread)."""

    client: RafayClient
    org_id: str
    organization: str
    window: Window
    org_seq: int
    on_page: PageHook | None
    stats: ClientStats
    keep_rows: bool

    def __call__(self, profile: ProfileRef) -> _RowSpool:
        spool = _RowSpool(on_disk=not self.keep_rows)
        maker = RowMaker(window=self.window, org_id=self.org_id, organization=self.organization,
                         org_seq=self.org_seq, profile=profile)
        try:
            seen: set[tuple] = set()
            pages = self.client.profile_usage_pages(
                self.org_id, profile.name, self.window, on_page=self.on_page, stats=self.stats
            )
            for page in pages:
                if isinstance(page, ListingRestart):  # the listing changed: what came so far is void
                    spool.close()
                    spool, seen = _RowSpool(on_disk=not self.keep_rows), set()
                    continue
                self._read_page(page, maker, spool, seen, profile)
            spool.flush()
        except BaseException:
            spool.close()
            raise
        return spool

    def _read_page(self, page: PageItems, maker: RowMaker, spool: _RowSpool, seen: set[tuple],
                   profile: ProfileRef) -> None:
        """One page's records into ``spool``, exact duplicates of records already kept dropped (and logged)."""
        page_name = page_file_name("usage", profile.name, page.page_no)
        spool.records += len(page.items)
        make, keep, remembered, remember = maker.cells, spool.add_cells, seen.__contains__, seen.add
        for index, item in enumerate(page.items):
            cells = make(item, 0, page_name, index)  # record_seq 0: numbered when read back in order
            key = _DUPLICATE_FIELDS(cells)
            if key[0] is None:  # no instance id: every such record is kept, as the seed keeps them
                keep(cells)
                continue
            if key[1] is None and key[2] is None:  # no times: see _duplicate_key
                key += _UNTIMED_FIELDS(cells)
            if not remembered(key):
                remember(key)
                keep(cells)
            else:
                spool.duplicates += 1
                self._log_duplicate(key, profile, page_name, index)

    def _log_duplicate(self, key: tuple, profile: ProfileRef, page_name: str, index: int) -> None:
        instance_id, start, end, hours = key[:4]
        log.warning(
            "org %s, profile %s: instance %s listed twice with the same times and hours "
            "(%s to %s, %s h; %s #%d); an exact duplicate, kept once",
            self.org_id, profile.name, instance_id, start, end, hours, page_name, index,
        )


def _read_profiles(
    reader: _ProfileReader, profiles: list[ProfileRef], concurrency: int, pool: Executor | None = None
) -> list[_RowSpool]:
    """Every profile's spool, in profile order, ``concurrency`` at a time (on ``pool`` when the
    caller shares one across orgs, else on a pool of this org's own).

    The first failing profile fails them all: the rest are cancelled, the running ones awaited and
    every spool already made is closed; the error names the org and the profile.
    """
    if not profiles:
        return []
    if pool is not None:
        return _collect(reader, profiles, [pool.submit(reader, p) for p in profiles])
    with ThreadPoolExecutor(max_workers=min(concurrency, len(profiles)), thread_name_prefix="rafay") as own:
        return _collect(reader, profiles, [own.submit(reader, p) for p in profiles])


def _collect(reader: _ProfileReader, profiles: list[ProfileRef], futures: list[Future[_RowSpool]]) -> list[_RowSpool]:
    spools: list[_RowSpool] = []
    try:
        for profile, future in zip(profiles, futures, strict=True):
            try:
                spools.append(future.result())
            except RafayError as exc:
                for pending in futures:
                    pending.cancel()
                raise exc.reworded(f"org {reader.org_id} ({reader.organization}), profile {profile.name}: {exc}") from None
    except BaseException:
        wait(futures)
        for future in futures:
            if not future.cancelled() and future.exception() is None:
                future.result().close()
        raise
    return spools


def _duplicate_key(cells: tuple) -> tuple | None:
    """What makes two records of one instance the same record: id, start, end and hours (None without an id);
    without start and end also its status and name.

    Why not the id alone: a stopped and restarted instance is listed once per running segment, and
    dropping all but one would bill it short. Without times nothing says which interval a record
    covers, so two records that differ in status or name (a stop and a start of equal hours) are two
    records, as the seed prints them. ``cells`` is a row's field tuple.
    """
    key = _DUPLICATE_FIELDS(cells)
    if key[0] is None:
        return None
    return key + _UNTIMED_FIELDS(cells) if key[1] is None and key[2] is None else key


def _unkeyed_page_hook(on_page: PageHook | None) -> PageHook | None:
    """The client keys pages by org id; within one org's files the key is redundant."""
    if on_page is None:
        return None

    def hook(kind: str, key: str, page_no: int, body: bytes) -> None:
        on_page(kind, "", page_no, body)

    return hook
