"""Extraction: an organization's usage for a window, as ``UsageRow``s in the seed's order.

Why a thread pool: the API has one usage call per profile and each call is latency-bound, so
reading an org's profiles concurrently (bounded, default 8) turns minutes into seconds. Results
are put back in listing order (profile order, then API record order), whatever order the
threads finish in, so the output is deterministic and matches the seed script's rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rafay_billing.client import ClientStats, PageHook, RafayClient
from rafay_billing.errors import RafayError, RafayResponseError
from rafay_billing.usage import ProfileRef, UsageRow, normalize_record, seed_text
from rafay_billing.window import Window

log = logging.getLogger(__name__)

OrgPageHook = Callable[[str, str, int, bytes], None]
"""``on_page(kind, key, page_no, body)`` for one org: ``("profiles", "", n, body)`` and
``("usage", <profile name>, n, body)``; the org is the one being extracted."""


@dataclass(frozen=True)
class OrgRef:
    """An organization as listed: ``org_id`` (``metadata.name``, used in API paths) and display name."""

    org_id: str
    name: str


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
                f"GET /v2/organizations: an organization has no metadata.name (its id): {str(item)[:120]}"
            )
        orgs.append(OrgRef(org_id=org_id, name=seed_text(item.get("name", "Unknown"))))
    return orgs


@dataclass
class OrgExtraction:
    """What one org's extraction produced, with the numbers an operator wants in the log."""

    org_id: str
    organization: str
    org_seq: int
    window: Window
    rows: list[UsageRow] = field(default_factory=list)
    profiles: int = 0
    records: int = 0
    duplicates: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    elapsed_s: float = 0.0

    @property
    def invalid(self) -> int:
        return sum(1 for r in self.rows if r.invalid_reason is not None)

    @property
    def hours_total(self) -> Decimal:
        return sum((r.usage_hours for r in self.rows if r.usage_hours is not None), Decimal(0))

    def summary_line(self) -> str:
        """e.g. ``org coke (Coke): 3 profiles, 41 instances, 1,234.56 h, 2 retries, API p95 180 ms``."""
        parts = [
            f"{self.profiles} profiles",
            f"{len(self.rows)} instances",
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


def extract_org(
    client: RafayClient,
    org_id: str,
    organization: str,
    window: Window,
    *,
    org_seq: int,
    concurrency: int | None = None,
    on_page: OrgPageHook | None = None,
) -> OrgExtraction:
    """Read an org's profiles, then every profile's usage for ``window``, ``concurrency`` at a time.

    ``concurrency`` defaults to the client's (8 unless the connection says otherwise); the client
    also caps requests in flight across all its users. ``on_page`` is called from worker threads.

    Any profile's failure fails the org (after the running reads finish): a partial org would be
    billed short without anyone noticing. A record repeated with the same ``instance_id`` within a
    profile (offset paging over data that changed between pages) is kept once and counted.
    Records without an id are all kept, as the seed keeps them.
    """
    if concurrency is None:
        concurrency = client.concurrency
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    started = time.perf_counter()
    stats = ClientStats()
    profile_hook = _profile_hook(on_page)
    profiles = [ProfileRef.from_item(p) for p in client.iter_profiles(org_id, on_page=profile_hook, stats=stats)]

    def read(profile: ProfileRef) -> list[dict[str, Any]]:
        return list(client.iter_profile_usage(org_id, profile.name, window, on_page=on_page, stats=stats))

    results: list[list[dict[str, Any]]] = []
    if profiles:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(profiles)), thread_name_prefix="rafay") as pool:
            futures = [pool.submit(read, p) for p in profiles]
            for profile, future in zip(profiles, futures, strict=True):
                try:
                    results.append(future.result())
                except RafayError as exc:
                    for pending in futures:
                        pending.cancel()
                    raise type(exc)(
                        f"org {org_id} ({organization}), profile {profile.name}: {exc}",
                        method=exc.method, path=exc.path, status=exc.status, excerpt=exc.excerpt,
                    ) from None

    result = OrgExtraction(org_id=org_id, organization=organization, org_seq=org_seq, window=window)
    result.profiles = len(profiles)
    for profile, records in zip(profiles, results, strict=True):
        seen: set[str] = set()
        for record in records:
            result.records += 1
            row = normalize_record(
                record, window=window, org_id=org_id, organization=organization,
                org_seq=org_seq, record_seq=len(result.rows), profile=profile,
            )
            if row.instance_id is not None:
                if row.instance_id in seen:
                    result.duplicates += 1
                    log.warning(
                        "org %s, profile %s: instance %s listed twice (data changed while paging); kept once",
                        org_id, profile.name, row.instance_id,
                    )
                    continue
                seen.add(row.instance_id)
            result.rows.append(row)
    snap = stats.snapshot()
    result.pages, result.requests, result.retries = snap.pages, snap.requests, snap.retries
    result.p50_ms, result.p95_ms = snap.p50_ms, snap.p95_ms
    result.elapsed_s = time.perf_counter() - started
    return result


def _profile_hook(on_page: OrgPageHook | None) -> PageHook | None:
    """The client keys profile pages by org id; within one org's files the key is redundant."""
    if on_page is None:
        return None

    def hook(kind: str, key: str, page_no: int, body: bytes) -> None:
        on_page(kind, "", page_no, body)

    return hook
