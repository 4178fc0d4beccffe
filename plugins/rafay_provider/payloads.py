"""The XCom payloads the billing DAG's tasks hand each other, as typed dicts.

XCom stores JSON, so these are plain dicts at run time; the TypedDicts say (and let mypy check)
which keys each task reads from which other task, and stay the one place the shapes are written.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class WindowPayload(TypedDict):
    """``resolve_window``'s result: the run's window (whole UTC days), its org limit, its settle time."""

    window_start: str
    window_end: str
    orgs: list[str] | None
    settle_until: NotRequired[str]


class BatchOrg(TypedDict):
    """One listed organization in an extraction batch; ``org_seq`` is its place in the listing.

    ``partner_id``/``partner_problem``: its id in the partner billing API, or why it has none usable
    (``rafay_billing.source.extract.OrgRef``; set by the partner source). ``sighted`` False: not in
    this run's listing but known to the registry, billed anyway because the source lists an org only
    on days with usage (``partner_only``); such an org is extracted but not registered as listed.
    """

    org_id: str
    name: str
    org_seq: int
    partner_id: NotRequired[str | None]
    partner_problem: NotRequired[str | None]
    sighted: NotRequired[bool]


OrgBatch = list[BatchOrg]
"""What one mapped extraction task extracts: one org, or several when orgs outnumber max_map_length."""


class LandedOrgDay(TypedDict):
    """One (org, day) whose raw pages and usage CSV landed under the landing root."""

    org_id: str
    name: str
    org_seq: int
    day: str
    usage_uri: str
    source_dir: str
    rows: int
    extraction_seq: NotRequired[int]
    """Taken from billing.extraction_seq before the extraction's first request (issue 21 rule 3)."""


class ExtractFailure(TypedDict):
    """One (org, day) whose extraction failed; the error is kept for the coverage table."""

    org_id: str
    name: str
    day: str
    error: str


class FailedOrgDay(TypedDict):
    org_id: str
    name: str
    day: str


class LoadResult(TypedDict):
    """``load_usage``'s result: the (org_id, day, name) triples loaded, what failed, who was listed."""

    loaded: list[list[str]]
    rows: int
    failed: list[FailedOrgDay]
    orgs: list[str]


class RateResult(TypedDict):
    """``rate_window``'s result; money as decimal strings (XCom is JSON)."""

    slices: int
    line_items: int
    exceptions_by_reason: dict[str, int]
    totals_by_currency: dict[str, str]
    corrections: NotRequired[int]
    held: NotRequired[list[str]]
    """``"<org_id> <day>"`` of the slices whose read shrank: coverage ``held``, not rated."""
    superseded: NotRequired[list[str]]
    """``"<org_id> <day>"`` of the slices a newer extraction was rated for since this run read them."""


def batch_label(batch: OrgBatch) -> str:
    """A mapped extraction instance's name (its ``map_index_template`` filter ``org_label``): the org's
    name, or the first and last of a batch. Here, not in ``pipeline``: the DAG file imports it at parse time."""
    names = [o["name"] for o in batch]
    return names[0] if len(names) == 1 else f"{names[0]} … {names[-1]} ({len(names)} orgs)"
