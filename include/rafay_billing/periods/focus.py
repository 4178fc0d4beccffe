"""The FinOps Foundation's FOCUS 1.0 export of a billing period: one row per line item of its invoices.

:func:`focus_frame` returns the rows as a pandas DataFrame; :func:`write_focus_export` writes them as
CSV or Parquet (``rafay-billing focus-export`` and the close DAG use it). No Airflow import: the
target may be a local path, an open binary file, or anything with ``.open("wb")`` such as Airflow's
``ObjectStoragePath``.

A period's rows are every line item whose ``billing_period_start`` is that month: the regular items of
its own days, and the corrections (issued items reversed, and the re-rated ones) of days of earlier,
closed periods. The mapping, column by column (``rafay_billing/sql/focus/line_items.sql``):

=============================================  =======================================================
FOCUS column                                   from the line item
=============================================  =======================================================
BilledCost, EffectiveCost, ListCost,           ``amount`` (already rounded once to the currency's
ContractedCost                                 minor unit; negative on reversals)
ListUnitPrice, ContractedUnitPrice             ``unit_price`` (ListUnitPrice of covered usage:
                                               ``list_unit_price``; ListCost its on-demand value)
BillingAccountId / BillingAccountName          ``org_id`` / ``organization``
BillingCurrency                                ``currency``
BillingPeriodStart / BillingPeriodEnd          the month, ``[1st 00:00Z, next 1st 00:00Z)``
ChargePeriodStart / ChargePeriodEnd            the item's UTC day (``window_start`` / ``window_end``)
ChargeCategory, ChargeType                     ``Usage``; ``Purchase`` for a contract's reservation fee,
                                               fee or true-up (issue 22)
ChargeClass                                    null for regular items, ``Correction`` for corrections
ChargeFrequency / PricingCategory              ``Usage-Based`` (a day's usage), ``Recurring`` (a month's
                                               contract charge), ``One-Time`` (a one-time fee) /
                                               ``Standard`` (``Committed`` for covered usage)
ChargeDescription                              profile, instance, day, quantity x unit price
PricingQuantity / PricingUnit                  ``pricing_quantity`` / ``Hours`` (instance_hour),
                                               ``GPU-Hours`` (gpu_hour), ``<Dimension>-Hours``
ConsumedQuantity / ConsumedUnit                ``usage_hours`` / ``Hours`` (null for purchases)
CommitmentDiscountId/Name/Category/Type        a reservation fee or usage it covers: the contract
                                               id / ``Usage`` / ``Reservation``; null for other rows
CommitmentDiscountStatus                       ``Used`` for covered usage (issue 22 rule 2)
ResourceId (and ResourceID) / ResourceName     ``instance_key`` (the instance id, else
                                               ``name:<instance>``) / ``instance``
ResourceType, ServiceName                      ``profile_type``
ServiceCategory                                ``Compute`` (configurable)
SkuId / SkuPriceId                             ``profile`` / ``price_id``
InvoiceIssuerName, ProviderName, PublisherName configurable (also as InvoiceIssuer, Provider,
                                               Publisher)
Tags                                           JSON object: the instance's billing labels (``Contract
                                               ID``, ``ServiceID``, ... as Rafay names them), then
                                               ``rafay:org_id``, ``rafay:profile_type``,
                                               ``rafay:charge_class``, ``rafay:correction_seq``,
                                               ``rafay:entry`` (charge/reversal), ``rafay:usage_date``...
AvailabilityZone,                              null (not applicable)
RegionId/Name, SubAccountId/Name
=============================================  =======================================================

The FinOps Foundation's ``focus-validator`` 1.0.0 still requires the pre-release names ``ChargeType``,
``InvoiceIssuer``, ``Provider``, ``Publisher`` and ``ResourceID``: they follow the 43 FOCUS 1.0 columns
as copies (``prerelease_columns=False`` leaves them out, for tools that match column names without
regard to case and would see ``ResourceId`` twice).

Formats:

* **CSV** (RFC 4180, UTF-8, ``\\r\\n``): decimals are the database's exact digits in plain notation, and
  always carry a point (``450.0``, not ``450``): the validator reads the file with pandas, which types an
  all-integer column as int64, and its decimal rule accepts only floats. Timestamps are
  ``YYYY-MM-DDTHH:MM:SSZ``; null is an empty cell. Cells are not prefixed against spreadsheet formulas:
  this is data for FinOps tools, and a changed account name or ``'-1.01`` would not reconcile.
* **Parquet**: decimals as exact fixed-point ``decimal128(38, s)`` (``decimal256`` if a value needs more
  than 38 digits), ``s`` at least 6 for money (the largest ISO 4217 minor unit the schema allows) and
  10 for prices and quantities, more when the period's values carry more digits; timestamps as
  ``timestamp[us, UTC]``; text as UTF-8 strings. ``parquet_decimals="float64"`` writes doubles instead:
  the validator 1.0.0 reads Parquet with pandas, which turns decimal128 into Python ``Decimal`` objects
  (object dtype), and its decimal rule accepts only float64, so it reports every decimal column of an
  exact file as failed. Doubles pass it; each value then is the double nearest to the exact amount.

An empty period (no line items) writes a valid empty file: the header (CSV) or the schema (Parquet),
so a consumer that expects one file per period gets one (the command warns). focus-validator 1.0.0
cannot judge such a file: its SkuPriceId rule runs SQL on an empty table and fails with a syntax error.

One more validator quirk no export can avoid in CSV: pandas types a text column whose every value looks
like a number (price ids ``101``, ``102``) as int64, and the validator then fails that column's
``*_IsString`` rule. Parquet keeps such values as strings.
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

from rafay_billing.db import sql, transaction
from rafay_billing.errors import FocusExportError
from rafay_billing.period import Period
from rafay_billing.settings import DEFAULT_ISSUER

# The 43 columns of FOCUS 1.0, in the specification's (alphabetical) order.
FOCUS_COLUMNS: tuple[str, ...] = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory",
    "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
    "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName", "Tags",
)
# Pre-release names that focus-validator 1.0.0's ruleset still requires: name -> the 1.0 column copied.
PRERELEASE_COLUMNS: dict[str, str] = {
    "ChargeType": "ChargeCategory",
    "InvoiceIssuer": "InvoiceIssuerName",
    "Provider": "ProviderName",
    "Publisher": "PublisherName",
    "ResourceID": "ResourceId",
}
COLUMNS: tuple[str, ...] = FOCUS_COLUMNS + tuple(PRERELEASE_COLUMNS)

# Decimal columns and the line-item value (decimal_shape.sql) each one carries.
DECIMAL_COLUMNS: dict[str, str] = {
    "BilledCost": "amount", "EffectiveCost": "amount", "ListCost": "amount", "ContractedCost": "amount",
    "ListUnitPrice": "unit_price", "ContractedUnitPrice": "unit_price",
    "PricingQuantity": "pricing_quantity", "ConsumedQuantity": "usage_hours",
}
DATETIME_COLUMNS: frozenset[str] = frozenset(
    {"BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"}
)
# Fewest digits after the point in Parquet, so a month's file has the same schema as the next one's.
_MIN_SCALE = {"amount": 6, "unit_price": 10, "pricing_quantity": 10, "usage_hours": 10}

# FOCUS 1.0's allowed ServiceCategory values.
SERVICE_CATEGORIES: frozenset[str] = frozenset({
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
    "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
    "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security", "Storage", "Web",
    "Other",
})

DEFAULT_INVOICE_ISSUER = DEFAULT_ISSUER
DEFAULT_PROVIDER = "Rafay"
DEFAULT_PUBLISHER = "Rafay"
DEFAULT_SERVICE_CATEGORY = "Compute"
FORMATS: tuple[str, ...] = ("csv", "parquet")
PARQUET_DECIMALS: tuple[str, ...] = ("decimal128", "float64")
FETCH_ROWS = 20_000



@dataclass(frozen=True)
class Names:
    """Who issues, provides and publishes the charges (FOCUS InvoiceIssuerName, ProviderName,
    PublisherName) and the FOCUS ServiceCategory of every row."""

    invoice_issuer: str = DEFAULT_INVOICE_ISSUER
    provider: str = DEFAULT_PROVIDER
    publisher: str = DEFAULT_PUBLISHER
    service_category: str = DEFAULT_SERVICE_CATEGORY

    def params(self) -> dict[str, str]:
        for what, value in (("invoice issuer", self.invoice_issuer), ("provider", self.provider),
                            ("publisher", self.publisher)):
            if not isinstance(value, str) or not value.strip():
                raise FocusExportError(f"the {what} name must not be empty (FOCUS requires it on every row)")
        if self.service_category not in SERVICE_CATEGORIES:
            raise FocusExportError(
                f"service category {self.service_category!r} is not one of FOCUS 1.0's: "
                + ", ".join(sorted(SERVICE_CATEGORIES))
            )
        return {"invoice_issuer": self.invoice_issuer.strip(), "provider": self.provider.strip(),
                "publisher": self.publisher.strip(), "service_category": self.service_category}


@dataclass(frozen=True)
class PeriodStatus:
    """What the database holds for a period: whether it is closed, and how many items it carries."""

    period_start: date
    closed_at: datetime | None
    line_items: int

    @property
    def closed(self) -> bool:
        return self.closed_at is not None


def period_status(conn: Any, period: Period) -> PeriodStatus:
    start = period.start
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("focus/period_status.sql"), {"period_start": start})
        closed_at, count = cur.fetchone()
    return PeriodStatus(start, closed_at, int(count))


def _columns(prerelease_columns: bool) -> tuple[str, ...]:
    return COLUMNS if prerelease_columns else FOCUS_COLUMNS


@contextmanager
def _snapshot(conn: Any) -> Iterator[None]:
    """One transaction for the whole export; on an idle connection a read-only REPEATABLE READ one,
    so the size pre-pass and the rows see the same snapshot (inside a caller's transaction, the
    caller's isolation decides)."""
    from psycopg.pq import TransactionStatus

    idle = conn.info.transaction_status == TransactionStatus.IDLE
    with transaction(conn):
        if idle:
            with conn.cursor() as cur:
                cur.execute(sql("focus/snapshot.sql"))
        yield


@contextmanager
def _rows(conn: Any, period_start: date, names: Names) -> Iterator[tuple[Iterator[list[tuple]], list[str]]]:
    """The period's rows in batches, from a server-side cursor (run inside :func:`_snapshot`)."""
    params = {**names.params(), "period_start": period_start}
    with conn.cursor(name="focus_export") as cur:
        cur.execute(sql("focus/line_items.sql"), params)
        names_ = [d.name for d in cur.description]

        def batches() -> Iterator[list[tuple]]:
            while batch := cur.fetchmany(FETCH_ROWS):
                yield batch

        yield batches(), names_


def _complete(row: tuple, index: dict[str, int], columns: Sequence[str]) -> list[Any]:
    """A row in ``columns`` order: the SQL's columns, the pre-release copies, timestamps in UTC."""
    values = []
    for name in columns:
        value = row[index[PRERELEASE_COLUMNS.get(name, name)]]
        if isinstance(value, datetime):
            value = value.astimezone(UTC)
        values.append(value)
    return values


def focus_frame(
    conn: Any,
    period: Period,
    *,
    invoice_issuer: str = DEFAULT_INVOICE_ISSUER,
    provider: str = DEFAULT_PROVIDER,
    publisher: str = DEFAULT_PUBLISHER,
    service_category: str = DEFAULT_SERVICE_CATEGORY,
    prerelease_columns: bool = True,
) -> Any:
    """The FOCUS 1.0 rows of billing period ``period`` as a pandas DataFrame.

    One row per line item whose ``billing_period_start`` is that month, in :data:`COLUMNS` order
    (:data:`FOCUS_COLUMNS` without the validator's pre-release copies when ``prerelease_columns`` is
    false). Decimal columns hold exact :class:`decimal.Decimal` values (object dtype), timestamps are
    ``datetime64[us, UTC]``, text columns are object dtype with ``None`` for null.
    """
    import pandas as pd  # pandas only where a frame is asked for

    start = period.start
    columns = _columns(prerelease_columns)
    data: list[list[Any]] = []
    names = Names(invoice_issuer, provider, publisher, service_category)
    with _snapshot(conn), _rows(conn, start, names) as (batches, sql_names):
        index = {n: i for i, n in enumerate(sql_names)}
        for batch in batches:
            data.extend(_complete(row, index, columns) for row in batch)
    series = {}
    for i, name in enumerate(columns):
        values = [row[i] for row in data]
        if PRERELEASE_COLUMNS.get(name, name) in DATETIME_COLUMNS:
            series[name] = pd.Series(pd.to_datetime(values, utc=True), dtype="datetime64[us, UTC]")
        else:
            series[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(series, columns=list(columns))


# --- writing -------------------------------------------------------------------------------------------


def decimal_text(value: Decimal) -> str:
    """Exact plain-notation text that always has a point: ``Decimal('450')`` -> ``'450.0'``."""
    text = format(value, "f")
    return text if "." in text else text + ".0"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _write_csv(handle: IO[bytes], batches: Iterator[list[tuple]], index: dict[str, int],
               columns: Sequence[str]) -> int:
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(columns)
        count = 0
        for batch in batches:
            writer.writerows([_cell(v) for v in _complete(row, index, columns)] for row in batch)
            count += len(batch)
        text.flush()
    finally:
        text.detach()  # the caller's file stays open
    return count


def _decimal_type(pa: Any, scale: int, largest: Decimal) -> Any:
    integer_digits = max(1, len(str(int(abs(largest)))))
    if integer_digits + scale <= 38:
        return pa.decimal128(38, scale)
    if integer_digits + scale <= 76:
        return pa.decimal256(76, scale)
    raise FocusExportError(f"a value with {integer_digits} digits before the point and {scale} after it does "
                           "not fit a Parquet decimal (76 digits at most)")


def _parquet_schema(conn: Any, period_start: date, columns: Sequence[str], decimals: str) -> Any:
    """The Parquet schema; exact decimals are as wide as the period's values need (run in the snapshot)."""
    import pyarrow as pa

    types: dict[str, Any] = {}
    if decimals == "decimal128":
        with conn.cursor() as cur:
            cur.execute(sql("focus/decimal_shape.sql"), {"period_start": period_start})
            shape = dict(zip([d.name for d in cur.description], cur.fetchone(), strict=True))
        for value in set(DECIMAL_COLUMNS.values()):
            scale = max(_MIN_SCALE[value], int(shape[f"{value}_scale"]))
            types[value] = _decimal_type(pa, scale, Decimal(shape[f"{value}_max"]))
    fields = []
    for name in columns:
        source = PRERELEASE_COLUMNS.get(name, name)
        if source in DECIMAL_COLUMNS:
            kind = types[DECIMAL_COLUMNS[source]] if decimals == "decimal128" else pa.float64()
        elif source in DATETIME_COLUMNS:
            kind = pa.timestamp("us", tz="UTC")
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind, nullable=True))
    return pa.schema(fields, metadata={"focus_version": "1.0", "generator": "rafay-billing"})


def _write_parquet(handle: IO[bytes], batches: Iterator[list[tuple]], index: dict[str, int],
                   columns: Sequence[str], schema: Any) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    floats = {f.name for f in schema if pa.types.is_floating(f.type)}
    count = 0
    with pq.ParquetWriter(handle, schema, compression="zstd") as writer:
        for batch in batches:
            rows = [_complete(row, index, columns) for row in batch]
            arrays = []
            for i, field in enumerate(schema):
                values = [r[i] for r in rows]
                if field.name in floats:
                    values = [None if v is None else float(v) for v in values]
                arrays.append(pa.array(values, type=field.type))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            count += len(rows)
        if count == 0:
            writer.write_table(schema.empty_table())
    return count


def _is_local_path(out: Any) -> bool:
    # plain pathlib paths (not a subclass such as an object-storage path) and strings
    return isinstance(out, str | bytes) or (isinstance(out, pathlib.PurePath) and type(out).__module__ == "pathlib")


@contextmanager
def _binary_target(out: Any) -> Iterator[IO[bytes]]:
    """A binary file to write: a local path is written to a temporary file beside it and renamed into
    place at the end (readers never see half a file); an open file is used as it is; anything else
    with ``.open()`` (an ObjectStoragePath) is opened ``"wb"``."""
    if _is_local_path(out):
        path = pathlib.Path(os.fsdecode(out))
        if path.is_dir():
            raise FocusExportError(f"{path} is a directory: give the file to write")
        if not path.parent.is_dir():
            raise FocusExportError(f"{path.parent} does not exist: cannot write {path.name} there")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise
    elif hasattr(out, "write"):
        yield out
    elif hasattr(out, "open"):
        with out.open("wb") as handle:
            yield handle
    else:
        raise FocusExportError(f"cannot write to {out!r}: give a path, an open binary file or an object-storage path")


def write_focus_export(
    conn: Any,
    period: Period,
    out: Any,
    fmt: str = "csv",
    *,
    invoice_issuer: str = DEFAULT_INVOICE_ISSUER,
    provider: str = DEFAULT_PROVIDER,
    publisher: str = DEFAULT_PUBLISHER,
    service_category: str = DEFAULT_SERVICE_CATEGORY,
    prerelease_columns: bool = True,
    parquet_decimals: str = "decimal128",
) -> int:
    """Write billing period ``period``'s FOCUS 1.0 rows to ``out``; returns the rows written.

    ``out`` is a path (``str`` or :class:`pathlib.Path`: written atomically), a file object opened
    for binary writing (left open), or an object with ``.open("wb")`` such as an Airflow
    ``ObjectStoragePath``. ``fmt`` is ``"csv"`` or ``"parquet"``; ``parquet_decimals`` is
    ``"decimal128"`` (exact) or ``"float64"`` (what focus-validator 1.0.0 accepts). The rows are read
    in batches from one snapshot, so a large period is never held in memory whole.
    """
    if fmt not in FORMATS:
        raise FocusExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if parquet_decimals not in PARQUET_DECIMALS:
        raise FocusExportError(f"parquet_decimals must be one of {', '.join(PARQUET_DECIMALS)}, "
                               f"got {parquet_decimals!r}")
    start = period.start
    names = Names(invoice_issuer, provider, publisher, service_category)
    names.params()
    columns = _columns(prerelease_columns)
    with _binary_target(out) as handle, _snapshot(conn):
        schema = _parquet_schema(conn, start, columns, parquet_decimals) if fmt == "parquet" else None
        with _rows(conn, start, names) as (batches, sql_names):
            index = {n: i for i, n in enumerate(sql_names)}
            if fmt == "csv":
                return _write_csv(handle, batches, index, columns)
            return _write_parquet(handle, batches, index, columns, schema)
