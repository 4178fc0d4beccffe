"""The partner billing metrics API as a usage source: its org identity and its records -> ``UsageRow``s.

Why a module of its own: the partner API (``rafay-api.md`` §2) lists usage per *kind* (compute,
service) for all orgs at once, keyed by Rafay's org id (``instance_organization_id``), while the
ledger's org identity is the org listing's ``metadata.name``. This module does the mapping once, so
price books and history keep working when a provider switches source, and it turns the partner
records into the same ``UsageRow``s the v2 extraction produces: the landing layout, the usage CSV,
the load and the rating are then the same for both sources.

Org identity (source ``partner``):
- ``metadata.name`` of ``GET /v2/organizations`` stays ``org_id``. The partner id of an org is the
  listing item's ``id`` (or ``metadata.id``) when it has one (matched by id), else it is looked up
  by display name, case and spaces ignored, among the orgs of an unfiltered partner listing of the
  window. Several candidates, or none while partner usage maps to no listed org, fail that org's
  days naming them: never another org's usage, never a silent zero.
- A 404 on the org listing is an error, not a mode: a console that serves only the partner API is
  the source ``partner_only`` (connection extra ``api``), whose orgs are the distinct orgs of an
  unfiltered partner listing of the window, keyed by their partner id.
"""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from decimal import Decimal
from typing import Any

from rafay_billing.errors import RafayError, RafayNotFound, RafayResponseError
from rafay_billing.paths import page_file_name
from rafay_billing.source.client import ClientStats, ListingRestart, PageHook, RafayClient
from rafay_billing.source.extract import (
    OrgExtraction,
    OrgRef,
    _duplicate_key,
    _RowSpool,
    _unkeyed_page_hook,
    list_orgs,
)
from rafay_billing.source.record_values import seed_text
from rafay_billing.source.usage import ProfileRef, UsageRow, normalize_record, row_values
from rafay_billing.window import Window

log = logging.getLogger(__name__)

PARTNER_KINDS: tuple[str, ...] = ("compute", "service")
"""The listings read per org, in this order (the rows' order: compute records, then service records)."""

_USAGE_TEXT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*h?\s*$", re.IGNORECASE)


# --- org identity ------------------------------------------------------------------------------


def partner_orgs(client: RafayClient, window: Window, *, on_page: PageHook | None = None) -> list[OrgRef]:
    """The orgs of the v2 listing, each with the partner id its usage is filtered by (source ``partner``).

    Reads ``GET /v2/organizations`` (same key); maps ids as the module docstring says. A 404 on the
    listing is an error that says to set ``api`` to ``partner_only``: switching to partner ids on
    our own would re-key every org (its price rows, coverage and history) on one bad answer.
    """
    try:
        listed = list_orgs(client, on_page=on_page)
    except RafayNotFound as exc:
        raise exc.reworded(
            f"{exc}. The partner source takes its orgs from that listing; if this console serves only "
            "the partner billing API, set the rafay connection's extra api to partner_only (orgs are "
            "then keyed by their partner id, so org-specific prices and history must use those ids)"
        ) from None
    if all(o.partner_id for o in listed):
        return listed
    return map_by_name(listed, _partner_org_names(client, window, on_page))


def partner_only_orgs(client: RafayClient, window: Window, *, on_page: PageHook | None = None) -> list[OrgRef]:
    """The orgs with usage in ``window`` on a partner-only console (source ``partner_only``): the
    distinct orgs of an unfiltered partner listing, keyed by their partner id.

    Such a console lists an org only while it has usage: the DAG bills the orgs it already knows
    (``billing.org_registry``) on idle days too, with zero items.
    """
    return [OrgRef(org_id=pid, name=name, partner_id=pid) for pid, name in _partner_org_names(client, window, on_page)]


def _partner_org_names(client: RafayClient, window: Window, on_page: PageHook | None) -> list[tuple[str, str]]:
    """Distinct (instance_organization_id, instance_organization_name) of an unfiltered listing, first seen first."""
    seen: dict[str, str] = {}
    for kind in PARTNER_KINDS:
        for item in client.iter_partner_usage(kind, window, on_page=on_page):
            org_id = item.get("instance_organization_id")
            if isinstance(org_id, str) and org_id and org_id not in seen:
                seen[org_id] = seed_text(item.get("instance_organization_name", "Unknown"))
    return list(seen.items())


def name_key(name: str) -> str:
    """A display name as matched across the two APIs: case and runs of white space ignored."""
    return " ".join(name.split()).casefold()


def _named(candidates: list[tuple[str, str]]) -> str:
    return " and ".join(f"{name!r} (partner id {pid})" for pid, name in candidates)


def _name_problem(
    org: OrgRef, found: list[tuple[str, str]], twins: list[OrgRef], unmatched: list[tuple[str, str]],
) -> str | None:
    """Why ``org`` (listed without an id) cannot take a partner id by name, or None when it can."""
    advice = "give the org listing ids (id or metadata.id) or make the display names of the two APIs agree"
    if len(twins) > 1:
        return (f"org {org.org_id} ({org.name}): its display name matches the listed orgs "
                f"{', '.join(t.org_id for t in twins)} (case and spaces ignored) and the org listing has no "
                f"id field, so its partner usage cannot be told apart; {advice}")
    if len(found) > 1:
        return (f"org {org.org_id} ({org.name}): its display name matches the partner orgs {_named(found)} "
                f"(case and spaces ignored), so its partner usage cannot be told apart; {advice}")
    if not found and unmatched:
        return (f"org {org.org_id} ({org.name}): no partner org has its display name, and the partner usage "
                f"of {_named(unmatched)} maps to no listed org (renamed?); refusing to bill it zero; {advice}")
    return None


def map_by_name(listed: list[OrgRef], partner: list[tuple[str, str]]) -> list[OrgRef]:
    """Give orgs without a listed id the partner id of the one partner org whose display name matches.

    ``partner`` is every (partner id, display name) with usage in the window. Ids the listing
    already gives are matched by id and never by name. A name matches case- and space-insensitively
    (``name_key``). An org is refused (its days fail, the problem naming the candidates) when its
    name matches several partner orgs or another listed org, or none while some partner usage maps
    to no listed org (a rename: a zero bill would hide it). No candidate and nothing unmatched: the
    org had no usage in the window.
    """
    claimed = {o.partner_id for o in listed if o.partner_id}
    candidates: dict[str, list[tuple[str, str]]] = {}
    for pid, name in partner:
        if pid not in claimed:
            candidates.setdefault(name_key(name), []).append((pid, name))
    by_name: dict[str, list[OrgRef]] = {}
    for org in listed:
        if not org.partner_id:
            by_name.setdefault(name_key(org.name), []).append(org)
    # partner orgs no listed org takes: no listed name matches, or the match is ambiguous (refused)
    unmatched = [c for key, found in candidates.items()
                 if len(found) > 1 or len(by_name.get(key, ())) != 1 for c in found]
    out = []
    for org in listed:
        if org.partner_id:
            out.append(org)
            continue
        key = name_key(org.name)
        found = candidates.get(key, [])
        problem = _name_problem(org, found, by_name[key], unmatched)
        if problem:
            out.append(replace(org, partner_problem=problem))
        else:
            out.append(replace(org, partner_id=found[0][0] if found else None))
    if unmatched and all(o.partner_id or o.partner_problem for o in out):
        log.warning("partner usage of %s maps to no listed org (every listed org matched another): it is "
                    "not billed", _named(unmatched))
    return out


# --- extraction --------------------------------------------------------------------------------


def extract_partner_org(
    client: RafayClient,
    org: OrgRef,
    window: Window,
    *,
    org_seq: int,
    on_page: PageHook | None = None,
    keep_rows: bool = True,
) -> OrgExtraction:
    """One org's usage for ``window`` from the partner API, as ``extract_org`` gives it for v2.

    Reads ``kind/compute`` and ``kind/service`` filtered by the org's partner id (both at once),
    each with paging and the client's consistency rules (a listing that changes while paged is read
    again; one that never reads consistently fails the org). ``profile_type`` is the kind; the
    profile is the record's ``profile_name``. Exact duplicates are dropped as in ``extract_org``;
    records of another org (a server that ignored the filter) are dropped with a warning.
    """
    if org.partner_problem:
        raise RafayResponseError(org.partner_problem)
    started = time.perf_counter()
    stats = ClientStats()
    spools: list[_RowSpool] = []
    profiles: set[str] = set()
    if org.partner_id:
        with ThreadPoolExecutor(max_workers=len(PARTNER_KINDS), thread_name_prefix="rafay-partner") as pool:
            futures = [pool.submit(_read_kind, client, org, window, kind, org_seq, on_page, keep_rows, stats)
                       for kind in PARTNER_KINDS]
            try:
                for kind, future in zip(PARTNER_KINDS, futures, strict=True):
                    try:
                        spool, names = future.result()
                        spools.append(spool)
                        profiles |= names
                    except RafayError as exc:
                        raise exc.reworded(f"org {org.org_id} ({org.name}), partner {kind} usage: {exc}") from None
            except BaseException:
                wait(futures)
                for future in futures:
                    if not future.cancelled() and future.exception() is None:
                        future.result()[0].close()
                raise
    result = OrgExtraction(org_id=org.org_id, organization=org.name, org_seq=org_seq, window=window)
    return result.collect(spools, profiles=len(profiles), stats=stats, keep_rows=keep_rows, started=started)


def _read_kind(
    client: RafayClient, org: OrgRef, window: Window, kind: str, org_seq: int,
    on_page: PageHook | None, keep_rows: bool, stats: ClientStats,
) -> tuple[_RowSpool, set[str]]:
    """One kind's records of the org, normalised and spooled in API order, and the profiles they name."""
    assert org.partner_id is not None
    hook = _unkeyed_page_hook(on_page)
    spool = _RowSpool(on_disk=not keep_rows)
    profiles: set[str] = set()
    try:
        seen: set[tuple] = set()
        foreign = 0
        page_no, page_name = -1, ""
        for entry in client.partner_usage_entries(kind, window, org.partner_id, on_page=hook, stats=stats):
            if isinstance(entry, ListingRestart):  # the listing changed: what came so far is void
                spool.close()
                spool, seen, foreign, profiles = _RowSpool(on_disk=not keep_rows), set(), 0, set()
                continue
            if entry.page_no != page_no:
                page_no, page_name = entry.page_no, page_file_name(f"partner-{kind}", "", entry.page_no)
            item = entry.item
            if item.get("instance_organization_id") not in (None, org.partner_id):
                foreign += 1
                continue
            spool.records += 1
            row = partner_row(item, kind=kind, window=window, org=org, org_seq=org_seq,
                              source_page=page_name, source_index=entry.index)
            key = _duplicate_key(row_values(row))
            if key is not None:
                if key in seen:
                    spool.duplicates += 1
                    log.warning("org %s, partner %s usage: instance %s listed twice with the same times and "
                                "hours (%s #%d); an exact duplicate, kept once",
                                org.org_id, kind, row.instance_id, page_name, entry.index)
                    continue
                seen.add(key)
            profiles.add(row.profile)
            spool.add(row)
        if foreign:
            log.warning("org %s, partner %s usage: %d record(s) of other orgs were listed despite the "
                        "instance_organization_id filter and were dropped", org.org_id, kind, foreign)
        spool.flush()
    except BaseException:
        spool.close()
        raise
    return spool, profiles


def partner_row(
    item: dict[str, Any], *, kind: str, window: Window, org: OrgRef, org_seq: int,
    source_page: str | None = None, source_index: int | None = None,
) -> UsageRow:
    """A partner usage record -> ``UsageRow`` (``profile_type`` = kind, profile = ``profile_name``).

    The record has no ``usage_hours`` and no ``status``: the seed's Usage(h) cell shows the
    number of its ``usage`` display string (``"20.59h"`` -> ``20.59``), the status is empty.
    """
    profile = ProfileRef(name=seed_text(item.get("profile_name", "Unknown")), type=kind)
    row = normalize_record(item, window=window, org_id=org.org_id, organization=org.name, org_seq=org_seq,
                           record_seq=0, profile=profile, source_page=source_page, source_index=source_index)
    if "usage_hours" in item:
        return row
    return replace(row, seed_usage=_seed_usage(item))


def _seed_usage(item: dict[str, Any]) -> str:
    usage = item.get("usage")
    if isinstance(usage, str):
        match = _USAGE_TEXT.match(usage)
        if match:
            return match.group(1)
    raw = item.get("raw_usage")
    if isinstance(raw, Decimal | int | float) and not isinstance(raw, bool):
        return seed_text(raw)
    return "0"
