"""The normalised usage row: one per usage record the API returned, in API order.

Why a normalised row: the seed script prints raw fields, billing needs exact hours, a GPU count
and a stable instance identity. ``normalize_record`` applies the contract's rules once, here, so the
CSV the DAG lands, the database and the ``rafay-billing metrics`` output all agree. A record whose
hours are missing, negative, not a number or beyond what PostgreSQL's NUMERIC holds, or whose GPU
count is beyond a 32-bit integer, becomes a row with ``invalid_reason`` set (billed as an
``invalid_usage`` exception), never a crash of the whole organization or of the window's load.
Text cells are made loadable (no NUL, no lone surrogates) for the same reason.

Each row also says where it came from: the record's own ``start_time``/``end_time`` and the raw page
file (``rafay_billing.paths.page_file_name``) and position in that page's items.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from decimal import Decimal
from typing import Any

from rafay_billing.source.parameters import parameters_of, record_gpu
from rafay_billing.source.record_values import (
    GPU_COUNT_MAX,
    fits_numeric,
    gpu_number,
    hours_number,
    numeric_fit,
    pg_text,
    seed_text,
    show_value,
)
from rafay_billing.window import Window

USAGE_COLUMNS: tuple[str, ...] = (
    "window_start",
    "window_end",
    "org_id",
    "organization",
    "org_seq",
    "record_seq",
    "profile_type",
    "profile",
    "instance",
    "instance_id",
    "instance_key",
    "status",
    "seed_usage",
    "usage_hours",
    "gpu_count",
    "invalid_reason",
    "record_start",
    "record_end",
    "source_page",
    "source_index",
    "dimensions",
    "labels",
)


LEGACY_USAGE_COLUMNS: tuple[str, ...] = USAGE_COLUMNS[:-2]
"""The usage CSV header before billing dimensions and labels (issue 11): still loadable."""


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One usage record, normalised. Field order is the CSV / ``billing.usage_records`` column order."""

    window_start: str
    window_end: str
    org_id: str
    organization: str
    org_seq: int
    record_seq: int
    profile_type: str
    profile: str
    instance: str
    instance_id: str | None
    instance_key: str
    status: str
    seed_usage: str
    usage_hours: Decimal | None
    gpu_count: int | None
    invalid_reason: str | None
    record_start: str | None = None
    record_end: str | None = None
    source_page: str | None = None
    source_index: int | None = None
    dimensions: dict[str, Decimal | None] = dataclass_field(default_factory=dict)
    labels: dict[str, str] = dataclass_field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.invalid_reason is None

    def ncp_metrics_cells(self) -> list[str]:
        """The six cells the seed script writes: Organization, Profile Type, Profile, Instance, Usage(h), Status."""
        return [self.organization, self.profile_type, self.profile, self.instance, self.seed_usage, self.status]


_ROW_VALUES = operator.attrgetter(*(f.name for f in fields(UsageRow)))


def row_values(row: UsageRow) -> tuple:
    """The row's field values in column order. Not ``dataclasses.astuple``: that deep-copies every
    value, which cost more than normalising the record. The values are scalars plus the
    ``dimensions``/``labels`` dicts, shared, not copied: nothing changes them after normalisation."""
    return _ROW_VALUES(row)


def seed_usage(record: Mapping[str, Any]) -> str:
    """What the seed prints in ``Usage(h)``: ``item.get('usage_hours', 0)`` through csv (floats, not Decimals)."""
    return seed_text(record.get("usage_hours", 0))


@dataclass(frozen=True, slots=True)
class ProfileRef:
    """A profile as listed: the seed's name/type rendering plus the GPU count its spec declares."""

    name: str
    type: str
    gpu_count: int | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ProfileRef:
        """Seed rules: ``metadata.name`` else ``Unknown``, ``spec.type`` else ``Unknown``."""
        metadata = item.get("metadata")
        spec = item.get("spec")
        name = metadata.get("name", "Unknown") if isinstance(metadata, Mapping) else "Unknown"
        ptype = spec.get("type", "Unknown") if isinstance(spec, Mapping) else "Unknown"
        return cls(name=seed_text(name), type=seed_text(ptype), gpu_count=spec_gpu_count(spec))


def spec_gpu_count(spec: Any) -> int | None:
    """GPU count a profile spec declares: variable named ``gpu``, else one whose name contains ``gpu count``."""
    if not isinstance(spec, Mapping):
        return None
    variables = spec.get("variables")
    if not isinstance(variables, list):
        return None
    named = [v for v in variables if isinstance(v, Mapping) and isinstance(v.get("name"), str)]
    for match in (
        lambda n: n.strip().lower() == "gpu",
        lambda n: "gpu count" in n.lower(),
    ):
        for var in named:
            if match(var["name"]):
                count = gpu_number(var.get("value"))
                if count is not None:
                    return count
    return None


def record_gpu_count(record: Mapping[str, Any]) -> int | None:
    """``label_value`` of the record's ``parameters`` entry named ``GPU`` (any case), if it is a count."""
    found = record_gpu(record)
    return found[0] if found else None


def _gpu_problem(count: int | None, raw: Any, source: str) -> str | None:
    """Why a GPU count cannot be stored (beyond a 32-bit integer), or None."""
    if count is None or count <= GPU_COUNT_MAX:
        return None
    return f"GPU count {show_value(raw)!r} ({source}) is beyond a 32-bit integer ({GPU_COUNT_MAX}): not a real count"


def usage_hours(record: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    """Billable hours and, when unusable, why: ``raw_usage``, else ``usage_hours``, else ``usage`` text.

    The first field present (not null) decides; a bad value there is invalid rather than a reason to
    fall back, because the API said something and it was wrong.
    """
    for field in ("raw_usage", "usage_hours", "usage"):
        value = record.get(field)
        if value is None:
            continue
        hours = hours_number(value, allow_unit=(field == "usage"))
        if hours is None:
            return None, f"non-numeric {field}: {show_value(value)!r}"
        if hours < 0:
            return None, f"negative {field}: {show_value(hours)}"
        hours, problem = numeric_fit(hours)
        if problem is not None:
            return None, f"{field} {show_value(value)} is beyond what the database's NUMERIC holds ({problem})"
        return hours, None
    return None, "missing usage hours (no raw_usage, usage_hours or usage)"


def instance_key(instance_id: str | None, instance: str) -> str:
    """Identity of an instance for line items: its id, else ``name:`` + its name."""
    return instance_id if instance_id else f"name:{instance}"


def normalize_record(
    record: Mapping[str, Any],
    *,
    window: Window,
    org_id: str,
    organization: str,
    org_seq: int,
    record_seq: int,
    profile: ProfileRef,
    source_page: str | None = None,
    source_index: int | None = None,
) -> UsageRow:
    """One API usage record -> ``UsageRow``; never raises on bad data (invalid rows carry the reason).

    ``source_page``/``source_index`` say which raw page file and which entry of its items array the
    record is (the audit trail from a line item back to what the API said). Many records of one
    profile: build a :class:`RowMaker` once and call it per record (what extraction does).
    """
    maker = RowMaker(window=window, org_id=org_id, organization=organization, org_seq=org_seq, profile=profile)
    return UsageRow(*maker.cells(record, record_seq, source_page, source_index))


class RowMaker:
    """Normalises the records of one profile of one org and window into row cells (``UsageRow`` order).

    Why a class: a 50,000-instance profile is CPU-bound in the client, and the cells every row of a
    profile shares (window, org, profile, the spec's GPU count) are the same each time, so they are
    made once here; the per-record work takes the common JSON types (text, exact Decimals, ints)
    by a direct path and hands anything else to the general rules above, which decide the odd
    cases exactly as before. ``cells`` returns the row's values as a tuple (what the spool keeps);
    ``UsageRow(*cells)`` is the row.
    """

    __slots__ = ("_head", "_profile_cells", "_spec_gpu")

    def __init__(self, *, window: Window, org_id: str, organization: str, org_seq: int, profile: ProfileRef) -> None:
        self._head = (window.start_iso, window.end_iso, pg_text(org_id), pg_text(organization), org_seq)
        self._profile_cells = (pg_text(profile.type), pg_text(profile.name))
        count = profile.gpu_count
        problem = _gpu_problem(count, count, f"GPU variable of profile {profile.name}'s spec")
        self._spec_gpu: tuple[int | None, str | None] = (None, problem) if problem else (count, None)

    def cells(self, record: Mapping[str, Any], record_seq: int, source_page: str | None,
              source_index: int | None) -> tuple:
        """The row of ``record`` as a tuple of its values in column order."""
        get = record.get
        value = get("instance_name", "")
        instance = pg_text(value) if type(value) is str else pg_text(seed_text(value))
        value = get("instance_id")
        if type(value) is str:
            instance_id = pg_text(value) if value else None
        else:
            instance_id = pg_text(seed_text(value)) if value is not None else None
        value = get("status", "")
        status = pg_text(value) if type(value) is str else pg_text(seed_text(value))
        value = get("usage_hours", 0)
        if type(value) is Decimal:
            seed = str(float(value))  # what the seed's float prints: always ASCII, never a NUL
        else:
            seed = pg_text(value) if type(value) is str else pg_text(seed_text(value))
        hours, reason = _record_hours(get("raw_usage"), record)
        params = get("parameters")
        if isinstance(params, list):
            dimensions, labels, found = parameters_of(params)
        else:
            dimensions, labels, found = {}, {}, None
        if found is not None:
            gpu: int | None = found[0]
            gpu_reason = _gpu_problem(gpu, found[1], "label_value of the record's GPU parameter")
            if gpu_reason is not None:
                gpu = None
        else:
            gpu, gpu_reason = self._spec_gpu
        if gpu_reason is not None:
            reason = f"{reason}; {gpu_reason}" if reason else gpu_reason
        return (
            *self._head, record_seq, *self._profile_cells,
            instance, instance_id, instance_id if instance_id else f"name:{instance}", status, seed, hours, gpu,
            pg_text(reason) if reason is not None else None,
            _record_time(record, "start_time"), _record_time(record, "end_time"), source_page, source_index,
            dimensions, labels,
        )


def _record_hours(raw: Any, record: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    """``usage_hours(record)``, with the usual case (``raw_usage`` an exact, plain, non-negative
    number) taken directly."""
    if type(raw) is Decimal:
        if raw.is_finite() and not raw < 0 and fits_numeric(raw):
            return raw, None
    elif type(raw) is int and raw >= 0:
        number = Decimal(raw)
        if fits_numeric(number):
            return number, None
    return usage_hours(record)


def _row_gpu(record: Mapping[str, Any], profile: ProfileRef) -> tuple[int | None, str | None]:
    """The row's GPU count (record parameter, else profile spec) and why it is unusable, if it is."""
    found = record_gpu(record)
    count: int | None
    if found is not None:
        count, raw = found
        problem = _gpu_problem(count, raw, "label_value of the record's GPU parameter")
    else:
        count = profile.gpu_count
        problem = _gpu_problem(count, count, f"GPU variable of profile {profile.name}'s spec")
    return (None, problem) if problem else (count, None)


def _record_time(record: Mapping[str, Any], name: str) -> str | None:
    """The record's ``start_time``/``end_time`` as the API wrote it (text), None when absent or empty."""
    value = record.get(name)
    if value is None or value == "":
        return None
    return pg_text(seed_text(value))
