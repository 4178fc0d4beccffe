"""The partner billing metrics API of the simulator, and the usage ``parameters`` both APIs report.

Why a module of its own: one dataset feeds both APIs (``/v2/.../usage`` and
``/apis/billing.envmgmt.io/v1/metrics/partner/instance/kind/{kind}/usage``), so the record shapes
that must agree between them (parameters, hours, times) are built here, once.

Parameter shapes follow Rafay's documentation (``rafay-api.md`` §2 and issue 11):
- label parameters (``is_label: true``) with a numeric ``label_value`` (CPU ``"24"``, GPU ``"1"``,
  Memory ``"256"``) and ``raw_usage`` = the instance's hours;
- label parameters with a non-numeric value (``ServiceID``, ``Contract ID``), same ``raw_usage``;
- quantitative parameters (``is_label: false``) whose usage is size x hours in the lowest unit:
  100 GB of disk for 12 h is ``raw_usage`` 1200, ``usage`` ``"1200h"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from rafay_simulator.dataset import (
    Dataset,
    Instance,
    Org,
    Profile,
    format_time,
    hours_2dp,
    hours_decimal,
    stable_id,
    stable_uuid,
    usage_display,
    usage_segments,
)

KINDS: tuple[str, ...] = ("compute", "service")


def usage_parameters(profile: Profile, instance: Instance, hours: Decimal, display: str) -> list[dict[str, Any]]:
    """The ``parameters`` of one usage record: GPU, the profile's labels, its quantities, the instance's labels.

    Parameters named in ``instance.missing_parameters`` (any case) are left out.
    """
    labels = ([("GPU", str(profile.gpu_param))] if profile.gpu_param is not None else [])
    labels += list(profile.labels.items()) + list(instance.labels.items())
    params: list[dict[str, Any]] = [
        {"name": name, "usage": display, "is_label": True, "raw_usage": hours, "label_value": value}
        for name, value in labels
    ]
    for name, size in profile.quantities.items():
        quantity = Decimal(size) * hours
        params.append({"name": name, "usage": f"{hours_2dp(quantity):.2f}h", "is_label": False,
                       "raw_usage": quantity})
    missing = {n.lower() for n in instance.missing_parameters}
    return [p for p in params if p["name"].lower() not in missing]


def usage_core(
    profile: Profile, start: datetime, end: datetime, now: datetime
) -> Iterator[tuple[Instance, Decimal, tuple[datetime, datetime]]]:
    """One (instance, exact hours, clipped interval) per record: per running segment in the window,
    repeated ``copies`` times."""
    for instance in profile.instances:
        for lo, hi in usage_segments(instance, start, end, now):
            hours = hours_decimal(int((hi - lo).total_seconds()))
            for _ in range(instance.copies):
                yield instance, hours, (lo, hi)


def partner_records(
    dataset: Dataset, kind: str, start: datetime, end: datetime, now: datetime, org_filter: str | None,
    overrides: Any,
) -> list[dict[str, Any]]:
    """Every partner usage record of ``kind`` in [start, end) (one org's when ``org_filter`` is its uid).

    ``overrides(record, instance)`` applies the instance's ``record_overrides`` (the server's).
    """
    records = []
    for org in _orgs(dataset.orgs, org_filter):
        for profile in org.profiles:
            if profile.type != kind:
                continue
            profile_id = profile.profile_id or stable_uuid(org.org_id, profile.name)
            for instance, hours, (lo, hi) in usage_core(profile, start, end, now):
                display = usage_display(hours)
                record = {
                    "instance_organization_id": org.partner_id,
                    "instance_organization_name": org.partner_display_name,
                    "instance_project_id": stable_id(org.org_id, instance.project),
                    "instance_project_name": instance.project,
                    "profile_id": profile_id,
                    "profile_name": profile.name,
                    "instance_id": instance.instance_id,
                    "instance_name": instance.name,
                    "created_at": format_time(instance.created_at),
                    "parameters": usage_parameters(profile, instance, hours, display),
                    "usage": display,
                    "raw_usage": hours,
                    "start_time": format_time(lo),
                    "end_time": format_time(hi),
                }
                records.append(overrides(record, instance))
    return records


def _orgs(orgs: Iterable[Org], org_filter: str | None) -> Iterator[Org]:
    for org in orgs:
        if org_filter is None or org.partner_id == org_filter:
            yield org


def org_listing_item(org: Org, with_id: bool) -> dict[str, Any]:
    """One item of ``GET /v2/organizations``; ``with_id`` adds the org's partner id as ``metadata.id``."""
    metadata: dict[str, Any] = {"name": org.org_id}
    if with_id:
        metadata["id"] = org.partner_id
    return {"name": org.name, "metadata": metadata}
