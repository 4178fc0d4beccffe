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

import csv
import json
import operator
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from decimal import Context, Decimal, InvalidOperation, Overflow, localcontext
from typing import IO, Any

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

GPU_COUNT_MAX = 2**31 - 1
"""The largest GPU count the database column (``integer``) holds; anything above is not a real count."""
NUMERIC_INTEGER_DIGITS = 131_072
NUMERIC_FRACTION_DIGITS = 16_383
"""PostgreSQL NUMERIC's limits: digits before and after the decimal point."""

_NUMBER = r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
_NUMBER_TEXT = re.compile(rf"^\s*{_NUMBER}\s*$")
_HOURS_TEXT = re.compile(rf"^\s*{_NUMBER}\s*h?\s*$", re.IGNORECASE)  # the display form "20.59h"
_WHOLE_TEXT = re.compile(r"^\s*\+?\d+(?:\.0*)?\s*$")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOW_CHARS = 60
_GPU_STAND_IN = 10**30  # stands for any count with 30 digits or more: never built exactly (1E+999999999)


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


# --- seed-compatible rendering ---------------------------------------------------------------


def _as_seed_python(value: Any) -> Any:
    """The value as the seed's ``json.loads`` (floats, not Decimals) would have produced it."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _as_seed_python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_seed_python(v) for v in value]
    return value


def seed_text(value: Any) -> str:
    """A cell exactly as the seed's ``csv.writer`` writes ``value``: ``None`` -> ``""``, else ``str()``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(_as_seed_python(value))


def pg_text(text: str) -> str:
    """``text`` as PostgreSQL can store it: NUL characters dropped, lone surrogates (from JSON
    ``\\ud800`` escapes, unencodable in UTF-8) replaced by U+FFFD. Why: one such cell would make the
    whole org's COPY fail, or the CSV write itself."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _show(value: Any) -> str:
    """A value for a message: its text, shortened (a 200,000-digit number must not flood a log)."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 1] + "…"


def seed_usage(record: Mapping[str, Any]) -> str:
    """What the seed prints in ``Usage(h)``: ``item.get('usage_hours', 0)`` through csv (floats, not Decimals)."""
    return seed_text(record.get("usage_hours", 0))


# --- profiles and organizations --------------------------------------------------------------


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
                count = _gpu_number(var.get("value"))
                if count is not None:
                    return count
    return None


def _gpu_number(value: Any) -> int | None:
    """A non-negative whole GPU count from ``"8"``, ``8`` or ``8.0``; None for anything else.

    Absurd counts (30 digits or more) come back as ``10**30``, a stand-in beyond ``GPU_COUNT_MAX``,
    instead of being built digit by digit; the row reports them as invalid, naming the raw value.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        if not _WHOLE_TEXT.match(value):
            return None
        value = Decimal(value.strip())
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite() or value < 0:
            return None
        if value.adjusted() >= 30:
            return _GPU_STAND_IN
        return int(value) if value == value.to_integral_value() else None
    return None


def record_gpu_count(record: Mapping[str, Any]) -> int | None:
    """``label_value`` of the record's ``parameters`` entry named ``GPU`` (any case), if it is a count."""
    found = _record_gpu(record)
    return found[0] if found else None


def _record_gpu(record: Mapping[str, Any]) -> tuple[int, Any] | None:
    """(count, raw label_value) of the record's GPU parameter."""
    params = record.get("parameters")
    if not isinstance(params, list):
        return None
    for param in params:
        if isinstance(param, Mapping) and str(param.get("name", "")).strip().lower() == "gpu":
            count = _gpu_number(param.get("label_value"))
            if count is not None:
                return count, param.get("label_value")
    return None


def _gpu_problem(count: int | None, raw: Any, source: str) -> str | None:
    """Why a GPU count cannot be stored (beyond a 32-bit integer), or None."""
    if count is None or count <= GPU_COUNT_MAX:
        return None
    return f"GPU count {_show(raw)!r} ({source}) is beyond a 32-bit integer ({GPU_COUNT_MAX}): not a real count"


# --- hours -----------------------------------------------------------------------------------


def usage_hours(record: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    """Billable hours and, when unusable, why: ``raw_usage``, else ``usage_hours``, else ``usage`` text.

    The first field present (not null) decides; a bad value there is invalid rather than a reason to
    fall back, because the API said something and it was wrong.
    """
    for field in ("raw_usage", "usage_hours", "usage"):
        value = record.get(field)
        if value is None:
            continue
        hours = _hours_number(value, allow_unit=(field == "usage"))
        if hours is None:
            return None, f"non-numeric {field}: {_show(value)!r}"
        if hours < 0:
            return None, f"negative {field}: {_show(hours)}"
        hours, problem = _numeric_fit(hours)
        if problem is not None:
            return None, f"{field} {_show(value)} is beyond what the database's NUMERIC holds ({problem})"
        return hours, None
    return None, "missing usage hours (no raw_usage, usage_hours or usage)"


def _numeric_fit(value: Decimal) -> tuple[Decimal, str | None]:
    """``value`` as PostgreSQL NUMERIC can take it in plain notation, or why it cannot.

    Trailing zeros after the point are dropped only when there are too many digits there (exact,
    digit by digit: rounding under a 28-digit context would change the number).
    """
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: NaN and infinities were refused before
    if not any(digits):
        return (value if -NUMERIC_FRACTION_DIGITS <= exponent <= 0 else Decimal(0)), None
    if value.adjusted() + 1 > NUMERIC_INTEGER_DIGITS:
        return value, f"more than {NUMERIC_INTEGER_DIGITS} digits before the point"
    if -exponent > NUMERIC_FRACTION_DIGITS:
        kept = list(digits)
        while kept and kept[-1] == 0 and exponent < 0:
            kept.pop()
            exponent += 1
        if -exponent > NUMERIC_FRACTION_DIGITS:
            return value, f"more than {NUMERIC_FRACTION_DIGITS} digits after the point"
        value = Decimal((sign, tuple(kept), exponent))
    return value, None


def _hours_number(value: Any, *, allow_unit: bool) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str):
        match = (_HOURS_TEXT if allow_unit else _NUMBER_TEXT).match(value)
        if match is None:
            return None
        try:
            number = Decimal(match.group(1))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


# --- billing dimensions and labels -----------------------------------------------------------


def record_parameters(record: Mapping[str, Any]) -> tuple[dict[str, Decimal | None], dict[str, str]]:
    """The record's priced quantities per dimension and its billing labels, from ``parameters``.

    Why here: the contract's quantity rules are applied once, for every source. A quantitative
    parameter (``is_label`` false) bills its ``raw_usage`` (size x hours in the lowest unit: 100 GB
    for 12 h is 1200). A label with a numeric ``label_value`` bills ``label_value x raw_usage``
    (24 CPUs for 20.594723 h = 494.273352 CPU-hours). A non-numeric label (``ServiceID``,
    ``Contract ID``) is a billing label, carried into the instance's line items. Dimension keys are
    lower-cased (prices match them case-insensitively); a usage that cannot be a quantity
    (negative, not a number) is kept as ``None`` so a price for it becomes an exception, not a
    silent zero. A name repeated (any case) keeps its first entry.

    Every label's value is also kept as text in ``labels``, numeric ones too (issue 21, rule 6): a
    label that a price row names as its ``label_key`` is an identity, whatever its value looks like,
    and rating, which knows the price book, drops the numeric labels no price row names from the line
    items' labels (their quantity stays in ``dimensions``). Values are bounded (:func:`bounded`).
    """
    params = record.get("parameters")
    dimensions: dict[str, Decimal | None] = {}
    labels: dict[str, str] = {}
    if not isinstance(params, list):
        return dimensions, labels
    for param in params:
        if not isinstance(param, Mapping) or not isinstance(param.get("name"), str):
            continue
        name = pg_text(param["name"].strip())
        key = name.lower()
        if not name or key in dimensions or any(k.lower() == key for k in labels):
            continue
        usage = _parameter_usage(param)
        if _truthy(param.get("is_label")):
            raw_value = param.get("label_value")
            value = _label_number(raw_value)
            if raw_value is not None and raw_value != "":
                labels[name] = bounded(pg_text(seed_text(raw_value)))
            if value is None:
                continue
            dimensions[key] = _product(value, usage) if value >= 0 else None
        else:
            dimensions[key] = usage
    return dimensions, labels


LABEL_VALUE_MAX = 1024
"""Characters a label value keeps in landed usage and line items (the raw page keeps all of it)."""


def bounded(text: str, limit: int = LABEL_VALUE_MAX) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when cut (issue 21, rule 17):
    one huge label must not bloat every line item, report and page that shows it."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _label_number(raw_value: Any) -> Decimal | None:
    """A label value as a quantity, or None. Text needs ASCII digits (what rating's SQL also takes as
    numeric, rating/stage_prices.sql): ``"١٠٠١"`` is an identity label, never a quantity."""
    if raw_value is None or (isinstance(raw_value, str) and not raw_value.isascii()):
        return None
    return _hours_number(raw_value, allow_unit=False)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _parameter_usage(param: Mapping[str, Any]) -> Decimal | None:
    """A parameter's usage: ``raw_usage``, else the number in ``usage`` (``"1200h"``); None if unusable."""
    for name in ("raw_usage", "usage"):
        value = param.get(name)
        if value is None:
            continue
        number = _hours_number(value, allow_unit=(name == "usage"))
        if number is None or number < 0:
            return None
        fitted, problem = _numeric_fit(number)
        return None if problem else fitted
    return None


def _product(a: Decimal, b: Decimal | None) -> Decimal | None:
    """``a x b`` exactly (the default 28-digit context would round long products)."""
    if b is None:
        return None
    digits = len(a.as_tuple().digits) + len(b.as_tuple().digits) + 2
    try:
        with localcontext(Context(prec=max(28, digits))):
            product = a * b
    except Overflow:  # a label value like 1e999999: far beyond NUMERIC, a quantity that cannot be billed
        return None
    fitted, problem = _numeric_fit(product)
    return None if problem else fitted


def _dimensions_from(text: str) -> dict[str, Decimal | None]:
    if not text:
        return {}
    return {k: (None if v is None else Decimal(v)) for k, v in json.loads(text).items()}


# --- the row ---------------------------------------------------------------------------------


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
            dimensions, labels, found = _parameters(params)
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


def _fits(value: Decimal) -> bool:
    """True when ``value`` (finite) certainly fits NUMERIC unchanged: plain notation (exponent <= 0)
    in at most ``NUMERIC_FRACTION_DIGITS`` characters. Anything else goes to ``_numeric_fit``."""
    text = str(value)
    return len(text) <= NUMERIC_FRACTION_DIGITS and "E" not in text


def _record_hours(raw: Any, record: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    """``usage_hours(record)``, with the usual case (``raw_usage`` an exact, plain, non-negative
    number) taken directly."""
    if type(raw) is Decimal:
        if raw.is_finite() and not raw < 0 and _fits(raw):
            return raw, None
    elif type(raw) is int and raw >= 0:
        number = Decimal(raw)
        if _fits(number):
            return number, None
    return usage_hours(record)


_KEYABLE = (str, int, bool, type(None))
_PARAMETER_CACHE: dict[tuple, tuple] = {}
_PARAMETER_CACHE_MAX = 16_384
_EXACT = Context(prec=999_999_999, Emax=999_999_999, Emin=-999_999_999)
"""Products in it are exact (no rounding at any size); see ``_dimension_product``."""


def _parameter_info(name: str, is_label: Any, raw_value: Any) -> tuple:
    """What a parameter's name, ``is_label`` and ``label_value`` say, whatever its usage:
    (display name or None to skip, key, is a label, label number, label number negative, label text,
    (GPU count, raw value) or None). The rules are ``record_parameters``' and ``_record_gpu``'s."""
    display = pg_text(name.strip())
    label = _truthy(is_label)
    number = text = None
    if label:
        number = _label_number(raw_value)
        if raw_value is not None and raw_value != "":
            text = bounded(pg_text(seed_text(raw_value)))
    gpu = None
    if name.strip().lower() == "gpu":
        count = _gpu_number(raw_value)
        if count is not None:
            gpu = (count, raw_value)
    negative = number is not None and number < 0
    return (display or None, display.lower(), label, number, negative, text, gpu)


def _parameters(params: list) -> tuple[dict[str, Decimal | None], dict[str, str], tuple[int, Any] | None]:
    """``record_parameters`` and ``_record_gpu`` of one record's parameter list, in one pass.

    Why a cache: a profile's records repeat the same parameter names, label flags and label values
    (``GPU`` ``8``, ``CPU`` ``96``); only the usage differs. What those three say is worked out once
    per distinct triple (text, whole numbers, booleans and null only: ``Decimal("1.0")`` and
    ``Decimal("1.00")`` are equal keys with different products, so they are never cached) and
    only the usage and the product are computed per record.
    """
    dimensions: dict[str, Decimal | None] = {}
    labels: dict[str, str] = {}
    label_keys: set[str] = set()
    gpu = None
    cache = _PARAMETER_CACHE
    for param in params:
        if type(param) is not dict and not isinstance(param, Mapping):
            continue
        name = param.get("name")
        if not isinstance(name, str):
            continue
        is_label = param.get("is_label")
        raw_value = param.get("label_value")
        if type(raw_value) in _KEYABLE and type(is_label) in _KEYABLE:
            key = (name, is_label, type(is_label), raw_value, type(raw_value))
            info = cache.get(key) or _remember(key, _parameter_info(name, is_label, raw_value))
        else:
            info = _parameter_info(name, is_label, raw_value)
        display, dim_key, label, number, negative, text, found = info
        if gpu is None and found is not None:
            gpu = found
        if display is None or dim_key in dimensions or dim_key in label_keys:
            continue
        if label:
            if text is not None:  # numeric too: rating decides whether it is an identity (rule 6)
                labels[display] = text
                label_keys.add(dim_key)
            if number is None:
                continue
            dimensions[dim_key] = None if negative else _dimension_product(number, _usage_of(param))
        else:
            dimensions[dim_key] = _usage_of(param)
    return dimensions, labels, gpu


def _remember(key: tuple, info: tuple) -> tuple:
    cache = _PARAMETER_CACHE
    if len(cache) >= _PARAMETER_CACHE_MAX:
        cache.clear()
    cache[key] = info
    return info


def _usage_of(param: Mapping[str, Any]) -> Decimal | None:
    """``_parameter_usage(param)``, with an exact, plain, non-negative ``raw_usage`` taken directly."""
    raw = param.get("raw_usage")
    if type(raw) is Decimal:
        if raw.is_finite() and not raw < 0 and _fits(raw):
            return raw
    elif type(raw) is int and raw >= 0:
        number = Decimal(raw)
        if _fits(number):
            return number
    return _parameter_usage(param)


def _dimension_product(a: Decimal, b: Decimal | None) -> Decimal | None:
    """``_product(a, b)``: exact in ``_EXACT``, which gives the very same number as ``_product``'s
    context whenever the product fits NUMERIC in plain notation (then no context rounds it); any
    other product goes through ``_product`` itself."""
    if b is None:
        return None
    try:
        product = _EXACT.multiply(a, b)
    except ArithmeticError:
        return _product(a, b)
    if _fits(product):
        return product
    return _product(a, b)


def _row_gpu(record: Mapping[str, Any], profile: ProfileRef) -> tuple[int | None, str | None]:
    """The row's GPU count (record parameter, else profile spec) and why it is unusable, if it is."""
    found = _record_gpu(record)
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


# --- the per-org usage CSV -------------------------------------------------------------------


_JSON_CELL = json.JSONEncoder(ensure_ascii=False, sort_keys=True)
"""``json.dumps(..., ensure_ascii=False, sort_keys=True)``, one encoder (``dumps`` with options makes one a call)."""
_CSV_AS_IS = frozenset({str, int, type(None)})
"""Cells the csv writer renders as ``_cell`` would (text as is, ``None`` empty, ints ``str``)."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if type(value) is str:
        return value
    if isinstance(value, dict):  # dimensions and labels: JSON objects, decimals as exact strings
        # decimals turned to exact text first (never floats), so the C encoder needs no call back per value
        return _JSON_CELL.encode({k: format(v, "f") if isinstance(v, Decimal) else v for k, v in value.items()})
    if isinstance(value, Decimal):
        return format(value, "f")  # exact, never exponent notation
    return str(value)


def write_usage_csv(rows: Iterable[UsageRow], handle: IO[str]) -> int:
    """Write rows with a header (``USAGE_COLUMNS``) to a text handle opened with ``newline=""``.

    A data file for loading, not for people: cells are written as they are (no spreadsheet
    neutralization), decimals exactly, ``None`` as an empty cell. Returns the number of rows.
    """
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(USAGE_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([v if type(v) in _CSV_AS_IS else _cell(v) for v in row_values(row)])
        count += 1
    return count


def read_usage_csv(handle: IO[str]) -> Iterator[UsageRow]:
    """Read back what ``write_usage_csv`` wrote; the header must match ``USAGE_COLUMNS`` exactly."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if tuple(header or ()) != USAGE_COLUMNS:
        raise ValueError(f"usage CSV header {header!r} does not match {USAGE_COLUMNS!r}")
    for line_no, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(USAGE_COLUMNS):
            raise ValueError(f"usage CSV line {line_no}: {len(cells)} cells, expected {len(USAGE_COLUMNS)}")
        v = dict(zip(USAGE_COLUMNS, cells, strict=True))
        yield UsageRow(
            window_start=v["window_start"],
            window_end=v["window_end"],
            org_id=v["org_id"],
            organization=v["organization"],
            org_seq=int(v["org_seq"]),
            record_seq=int(v["record_seq"]),
            profile_type=v["profile_type"],
            profile=v["profile"],
            instance=v["instance"],
            instance_id=v["instance_id"] or None,
            instance_key=v["instance_key"],
            status=v["status"],
            seed_usage=v["seed_usage"],
            usage_hours=Decimal(v["usage_hours"]) if v["usage_hours"] else None,
            gpu_count=int(v["gpu_count"]) if v["gpu_count"] else None,
            invalid_reason=v["invalid_reason"] or None,
            record_start=v["record_start"] or None,
            record_end=v["record_end"] or None,
            source_page=v["source_page"] or None,
            source_index=int(v["source_index"]) if v["source_index"] else None,
            dimensions=_dimensions_from(v["dimensions"]),
            labels=json.loads(v["labels"]) if v["labels"] else {},
        )
