"""The partner billing metrics API as a usage source: its org identity and its records -> ``UsageRow``s.

Why a module of its own: the partner API (``rafay-api.md`` §2) lists usage per *kind* (compute,
service) for all orgs at once, keyed by Rafay's org id (``instance_organization_id``), while the
ledger's org identity is the org listing's ``metadata.name``. This module does the mapping once, so
price books and history keep working when a provider switches source, and it turns the partner
records into the same ``UsageRow``s the v2 extraction produces: the landing layout, the usage CSV,
the load and the rating are then the same for both sources.

Org identity:
- ``metadata.name`` of ``GET /v2/organizations`` stays ``org_id``. The partner id of an org is the
  listing item's ``id`` (or ``metadata.id``) when it has one, else it is looked up by display name
  among the orgs of an unfiltered partner listing of the window (a name two orgs share is refused
  for those orgs: their days fail, naming the name).
- A partner-only console (the org listing answers 404) takes its orgs from the distinct orgs of an
  unfiltered partner listing of the window; there the partner id is the ``org_id``.
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
from rafay_billing.source.usage import ProfileRef, UsageRow, normalize_record, row_values, seed_text
from rafay_billing.window import Window

log = logging.getLogger(__name__)

PARTNER_KINDS: tuple[str, ...] = ("compute", "service")
"""The listings read per org, in this order (the rows' order: compute records, then service records)."""

_USAGE_TEXT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*h?\s*$", re.IGNORECASE)


# --- org identity ------------------------------------------------------------------------------


def partner_orgs(client: RafayClient, window: Window, *, on_page: PageHook | None = None) -> list[OrgRef]:
    """The orgs to bill from the partner API, each with the partner id its usage is filtered by.

    Reads ``GET /v2/organizations`` (same key); maps ids as the module docstring says. Raises what
    the org listing raises, except a 404, which means a partner-only console.
    """
    try:
        listed = list_orgs(client, on_page=on_page)
    except RafayNotFound:
        log.info("The org listing answers 404: a partner-only console; orgs come from the partner listing")
        return _orgs_from_partner_listing(client, window, on_page)
    if all(o.partner_id for o in listed):
        return listed
    return _map_by_name(listed, _partner_org_names(client, window, on_page))


def _partner_org_names(client: RafayClient, window: Window, on_page: PageHook | None) -> list[tuple[str, str]]:
    """Distinct (instance_organization_id, instance_organization_name) of an unfiltered listing, first seen first."""
    seen: dict[str, str] = {}
    for kind in PARTNER_KINDS:
        for item in client.iter_partner_usage(kind, window, on_page=on_page):
            org_id = item.get("instance_organization_id")
            if isinstance(org_id, str) and org_id and org_id not in seen:
                seen[org_id] = seed_text(item.get("instance_organization_name", "Unknown"))
    return list(seen.items())


def _orgs_from_partner_listing(client: RafayClient, window: Window, on_page: PageHook | None) -> list[OrgRef]:
    return [OrgRef(org_id=pid, name=name, partner_id=pid)
            for pid, name in _partner_org_names(client, window, on_page)]


def _map_by_name(listed: list[OrgRef], partner: list[tuple[str, str]]) -> list[OrgRef]:
    """Give orgs without a listed id the partner id of the partner org with their display name."""
    ids_by_name: dict[str, list[str]] = {}
    for pid, name in partner:
        ids_by_name.setdefault(name, []).append(pid)
    listed_names: dict[str, int] = {}
    for org in listed:
        listed_names[org.name] = listed_names.get(org.name, 0) + 1
    out = []
    for org in listed:
        if org.partner_id:
            out.append(org)
            continue
        ids = ids_by_name.get(org.name, [])
        if listed_names[org.name] > 1 or len(ids) > 1:
            problem = (
                f"org {org.org_id}: its display name {org.name!r} is shared by {max(listed_names[org.name], len(ids))} "
                "orgs and the org listing has no id field, so its partner usage cannot be told apart; "
                "give the orgs distinct names or use a console whose org listing carries ids"
            )
            out.append(replace(org, partner_problem=problem))
        else:
            # no partner record of that name in the window: the org had no usage (nothing to read)
            out.append(replace(org, partner_id=ids[0] if ids else None))
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
                        raise type(exc)(
                            f"org {org.org_id} ({org.name}), partner {kind} usage: {exc}",
                            method=exc.method, path=exc.path, status=exc.status, excerpt=exc.excerpt,
                        ) from None
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
