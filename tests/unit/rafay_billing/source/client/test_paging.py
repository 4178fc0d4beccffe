"""The pager's one-page prefetch: the next page is on the wire while the consumer works on this one."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rafay_billing.errors import RafayListingInconsistent
from rafay_billing.source.client.paging import Listing, PagedItem, Pager

LISTING = Listing("orgs", "", "/v2/organizations", "items", "the organization listing")


class _Server:
    """``fetch`` over a fixed listing of ``total`` items; records every offset asked for."""

    def __init__(self, total: int, page: int, *, wrong_offset_at: int | None = None) -> None:
        self.total, self.page, self.wrong_offset_at = total, page, wrong_offset_at
        self.asked: list[int] = []
        self.event = threading.Event()
        self.lock = threading.Lock()

    def fetch(self, path: str, query: dict[str, Any]) -> tuple[Any, bytes]:
        offset = int(query["offset"])
        with self.lock:
            self.asked.append(offset)
            if len(self.asked) >= 2:
                self.event.set()
        echoed = 0 if offset == self.wrong_offset_at else offset
        items = [{"metadata": {"name": f"org{i}"}} for i in range(echoed, min(echoed + self.page, self.total))]
        data = {"items": items, "count": self.total, "offset": echoed, "limit": self.page}
        return data, repr(data).encode()


def _pager(server: _Server) -> Pager:
    return Pager(fetch=server.fetch, page_size=server.page, max_pages=100, listing_reads=1, count_page=lambda: None)


def test_the_next_page_is_requested_while_the_consumer_holds_the_current_one() -> None:
    server = _Server(total=6, page=2)
    entries = _pager(server).entries(LISTING)
    first = next(entries)
    assert isinstance(first, PagedItem) and first.page_no == 0
    # The consumer has not asked for anything more, yet page 1 is already being fetched.
    assert server.event.wait(10), "page 1 was not requested until the consumer came back"
    assert server.asked[:2] == [0, 2]
    rest = list(entries)
    assert [e.item["metadata"]["name"] for e in [first, *rest]] == [f"org{i}" for i in range(6)]
    assert server.asked == [0, 2, 4]  # no page beyond count


def test_no_page_is_asked_ahead_of_one_that_failed_its_checks() -> None:
    server = _Server(total=6, page=2, wrong_offset_at=2)
    with pytest.raises(RafayListingInconsistent, match="answered offset 0 for offset 2"):
        list(_pager(server).consistent(LISTING))
    assert server.asked == [0, 2]  # page 1 failed: nothing was asked at offset 4


def test_a_consumer_that_stops_leaves_no_request_or_thread_behind() -> None:
    server = _Server(total=10, page=2)
    entries = _pager(server).entries(LISTING)
    next(entries)
    assert server.event.wait(10)
    entries.close()  # awaits the prefetched page and drops it
    assert server.asked == [0, 2]
    assert not [t for t in threading.enumerate() if t.name.startswith("rafay-page")]


def test_pages_give_each_page_whole_and_entries_are_the_same_records_one_by_one() -> None:
    """``pages`` (issue 25: a consumer of big listings pays per page, not per record) yields what
    ``entries`` yields, a page at a time, with the same prefetch."""
    from rafay_billing.source.client.paging import PageItems

    pages = list(_pager(_Server(total=5, page=2)).pages(LISTING))
    assert [type(p) for p in pages] == [PageItems] * 3
    assert [(p.page_no, [i["metadata"]["name"] for i in p.items]) for p in pages] == [
        (0, ["org0", "org1"]), (1, ["org2", "org3"]), (2, ["org4"])]
    entries = list(_pager(_Server(total=5, page=2)).entries(LISTING))
    assert entries == [PagedItem(p.page_no, i, item) for p in pages for i, item in enumerate(p.items)]
    server = _Server(total=6, page=2)
    it = _pager(server).pages(LISTING)
    next(it)
    assert server.event.wait(10) and server.asked[:2] == [0, 2]  # the next page is on the wire meanwhile
    it.close()


def test_pages_are_decoded_with_the_fingerprints_of_their_records_raw_text(rafay_sim_factory) -> None:
    """The client hands the pager each record's raw-text fingerprint (``Page.prints``): a record that
    comes again on a later page is still found (the listing is read again), now without ``repr``."""
    from rafay_billing.source.client import RafayClient
    from rafay_billing.source.client.paging import Page

    sim = rafay_sim_factory(orgs=3)
    client = RafayClient(sim.url, sim.api_key, page_size=2)
    page = client._get("/v2/organizations", {"offset": 0, "limit": 2}, None, "items")
    assert isinstance(page, Page) and page.prints is not None and len(page.prints) == len(page.data["items"]) == 2
    assert client._get("/v2/organizations", {"offset": 0, "limit": 2}, None).prints is None  # not a listing page
