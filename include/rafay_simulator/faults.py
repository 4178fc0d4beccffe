"""Fault injection: what a test asks the simulator to do wrong, and the state of each fault.

Request faults (latency, status, malformed_json, slow, drop) are picked per request by
:func:`pick_faults`; listing-change faults (insert_head, remove_head) change what a listing holds
while it is paged (:meth:`ActiveFault.view`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from rafay_simulator.routing import to_json

LISTING_CHANGE_KINDS = ("insert_head", "remove_head")
FAULT_KINDS = ("latency", "status", "malformed_json", "slow", "drop", *LISTING_CHANGE_KINDS)
TERMINAL_KINDS = ("status", "malformed_json", "drop")


@dataclass(frozen=True)
class Fault:
    """A misbehaviour applied to matching requests (``re.search`` on the raw path, optional org).

    ``times`` is how many matching requests it affects (None = all of them).

    ``insert_head`` and ``remove_head`` change a listing while it is paged (data that changes
    between a client's page requests), separately for every listing path the regex matches:
    ``remove_head`` drops the listing's first record after every ``after_pages`` pages served, at
    most ``times`` times (None = until it is empty); ``insert_head`` lists the records without
    their first ``times`` (None = 1) at first, and puts one back at the head after every
    ``after_pages`` pages served. Either shifts every later offset by one: a client that pages on
    regardless reads one record twice (insert) or skips one (remove). Once all changes are done the
    listing holds still, so a client that reads it again from the start gets a consistent copy.
    """

    kind: str
    path_regex: str = ".*"
    times: int | None = None
    status: int = 503
    retry_after: str | int | None = None
    delay_ms: int = 0
    html: bool = False
    org: str | None = None
    after_pages: int = 1

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        re.compile(self.path_regex)
        if self.times is not None and self.times < 0:
            raise ValueError("times must be None or >= 0")
        if self.after_pages < 1:
            raise ValueError("after_pages must be at least 1")


class ActiveFault:
    """A fault as added, with the uses it has left and, for listing changes, per-listing progress."""


    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.pattern = re.compile(fault.path_regex)
        self.remaining = fault.times
        self.listings: dict[str, list[int]] = {}  # listing change kinds: path -> [pages served, changes]

    def matches(self, path: str, org: str | None) -> bool:
        return bool(self.pattern.search(path)) and (self.fault.org is None or self.fault.org == org)

    @property
    def max_changes(self) -> int | None:
        if self.fault.kind == "insert_head":
            return 1 if self.fault.times is None else self.fault.times
        return self.fault.times

    def view(self, path: str, items: list[Any]) -> list[Any]:
        """The listing as this fault has changed it so far."""
        changes = self.listings.get(path, [0, 0])[1]
        if self.fault.kind == "insert_head":
            hidden = (self.max_changes or 0) - changes
            return items[hidden:]
        return items[changes:]

    def page_served(self, path: str) -> None:
        state = self.listings.setdefault(path, [0, 0])
        state[0] += 1
        limit = self.max_changes
        if state[0] % self.fault.after_pages == 0 and (limit is None or state[1] < limit):
            state[1] += 1


def pick_faults(actives: list[ActiveFault], path: str, org: str | None) -> list[Fault]:
    """Consume one use of each matching request fault, in order, up to the first terminal one.

    The caller holds the simulator's lock.
    """
    chosen: list[Fault] = []
    for active in actives:
        fault = active.fault
        if fault.kind in LISTING_CHANGE_KINDS:
            continue  # applied to the listing itself, see ActiveFault.view
        if active.remaining == 0 or not active.matches(path, org):
            continue
        if active.remaining is not None:
            active.remaining -= 1
        chosen.append(fault)
        if fault.kind in TERMINAL_KINDS:
            break
    return chosen


_NGINX_PAGE = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def fault_reply(fault: Fault) -> tuple[int, bytes, str, dict[str, str]]:
    """The reply of a ``status`` fault: (status, body, content type, extra headers)."""
    extra = {}
    if fault.retry_after is not None:
        extra["Retry-After"] = str(fault.retry_after)
    try:
        phrase = HTTPStatus(fault.status).phrase
    except ValueError:
        phrase = "Error"
    if fault.html:
        return fault.status, _NGINX_PAGE.format(code=fault.status, phrase=phrase).encode(), "text/html", extra
    error = re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")
    body = to_json({"error": error, "message": f"{phrase} (injected by the simulator)"}).encode()
    return fault.status, body, "application/json", extra


__all__ = ["FAULT_KINDS", "LISTING_CHANGE_KINDS", "ActiveFault", "Fault", "fault_reply", "pick_faults"]
