"""The price book: parse and validate the CSV finance maintains, then make ``billing.price_book`` equal it.

Why validate in Python first: a bad price book must fail with a message a person can act on (the
CSV line and what to fix, every problem at once) and must leave the table exactly as it was. Only a
book that passes every check reaches the database, where it replaces the table in one transaction.

Two rules come from the ledger: prices change only at 00:00 UTC (the ledger bills whole UTC days,
so a day must never span a price change), and the currency must be an ISO 4217 currency with a
minor unit (amounts are rounded to it; see :mod:`rafay_billing.currency`).

The CSV is the *whole* price book: rows missing from it are deleted, new rows inserted, changed rows
updated (``updated_at`` moves only for those). Old line items keep the price they were rated with
(``charge_line_items`` copies unit, price and currency), so deleting a price row loses no history.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from rafay_billing.csv_input import (
    MAX_NAME_LENGTH,
    csv_records,
    length_problem,
    numeric_problem,
    parse_timestamp,
    utf8_text,
)
from rafay_billing.currency import CurrencyError, minor_unit
from rafay_billing.db import sql, transaction
from rafay_billing.errors import PriceBookError

COLUMNS: tuple[str, ...] = (
    "price_id",
    "org_id",
    "profile_type",
    "profile",
    "unit",
    "unit_price",
    "currency",
    "effective_from",
    "effective_to",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("dimension", "label_key", "label_value")
"""Columns a price book may have (issue 11); blank or absent = the instance itself / no label match."""
UNITS: tuple[str, ...] = ("instance_hour", "gpu_hour", "dimension_hour", "instance_month", "gpu_month")
INSTANCE_UNITS: tuple[str, ...] = ("instance_hour", "gpu_hour", "instance_month", "gpu_month")
"""Units that price the instance itself (blank dimension); the month units are monthly recurring charges."""

NAME_COLUMNS: tuple[str, ...] = ("price_id", "org_id", "profile_type", "profile", "dimension", "label_key",
                                 "label_value")
"""Cells of at most ``MAX_NAME_LENGTH`` characters: the database indexes them (price_id alone; org_id,
profile_type and profile in one entry; a dimension in the ledger's keys)."""

# re.ASCII: \d is 0-9 only. Python's Decimal and datetime read Arabic-Indic or full-width digits too,
# which a person reviewing the CSV would not read as the same number (issue 21, rule 17).
_DECIMAL = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)$", re.ASCII)
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class PriceRow:
    """One validated price book row. ``None`` in org_id / profile_type / profile means "any"."""

    price_id: str
    org_id: str | None
    profile_type: str | None
    profile: str | None
    unit: str
    unit_price: Decimal
    currency: str
    effective_from: datetime
    effective_to: datetime | None
    line: int = 0
    dimension: str | None = None
    label_key: str | None = None
    label_value: str | None = None

    @property
    def specificity(self) -> int:
        """8 label + 4 org + 2 profile + 1 profile_type: a label match outranks an org match, never ties it."""
        return (8 * (self.label_key is not None) + 4 * (self.org_id is not None) + 2 * (self.profile is not None)
                + (self.profile_type is not None))

    @property
    def match_key(self) -> tuple[str | None, ...]:
        """What two rows must share to compete for the same usage (dimension and label key in any case)."""
        return (self.org_id, self.profile_type, self.profile, (self.dimension or "").lower(),
                (self.label_key or "").lower(), self.label_value)

    def applies(self, org_id: str, profile_type: str, profile: str, at: datetime) -> bool:
        """The contract's rule, for callers that want it outside SQL (tests, tools)."""
        return (
            self.org_id in (None, org_id)
            and self.profile_type in (None, profile_type)
            and self.profile in (None, profile)
            and self.effective_from <= at
            and (self.effective_to is None or at < self.effective_to)
        )


@dataclass(frozen=True)
class SyncResult:
    """What a sync changed in ``billing.price_book``."""

    rows: int
    inserted: int
    updated: int
    deleted: int

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated

    def __str__(self) -> str:
        return (
            f"{self.rows} price rows: {self.inserted} new, {self.updated} changed, "
            f"{self.unchanged} unchanged, {self.deleted} removed"
        )


# --- parsing -----------------------------------------------------------------------------------


def parse_boundary(text: str) -> datetime:
    """An ``effective_from``/``effective_to`` value: :func:`parse_timestamp`, and exactly 00:00 UTC.

    Why: the ledger bills whole UTC days at one price each, so a price may only start or end at a
    midnight. Raises ``ValueError`` naming the midnights on either side, for the person to pick one.
    """
    value = parse_timestamp(text)
    if value.time() != time(0):  # parse_timestamp returns UTC
        day = value.date()
        raise ValueError(
            f"{text!r} is {value:%H:%M:%S}{_fraction(value)} UTC, but prices change only at 00:00 UTC: "
            f"write a day, {day.isoformat()} or {(day + timedelta(days=1)).isoformat()}"
        )
    return value


def _fraction(value: datetime) -> str:
    return f".{value.microsecond:06d}" if value.microsecond else ""


def _describe(value: str | None) -> str:
    return "any" if value is None else repr(value)


def _span(row: PriceRow) -> str:
    end = "open" if row.effective_to is None else f"{row.effective_to:%Y-%m-%dT%H:%M:%SZ}"
    return f"[{row.effective_from:%Y-%m-%dT%H:%M:%SZ}, {end})"


def _parse_row(line: int, cells: dict[str, str], problems: list[tuple[int, str]]) -> PriceRow | None:
    """One data row, or ``None`` after recording every problem it has."""
    start = len(problems)

    def bad(message: str) -> None:
        problems.append((line, message))

    for name in NAME_COLUMNS:
        problem = length_problem(name, cells.get(name, ""), MAX_NAME_LENGTH,
                                 "the database indexes the price book's names and ids, and a longer one may not fit")
        if problem:
            bad(problem)
    price_id = cells["price_id"]
    if not price_id:
        bad("price_id is empty: give every row a unique id")
    unit = cells["unit"]
    if unit not in UNITS:
        bad(f"unit {unit!r} is unknown: use instance_hour, gpu_hour, dimension_hour, instance_month or gpu_month")
    dimension, label_key, label_value = _parse_dimension_and_label(cells, unit, bad)
    unit_price = _parse_unit_price(cells["unit_price"], bad)
    currency = cells["currency"]
    problem = _currency_problem(currency)
    if problem:
        bad(problem)
    effective_from, effective_to = _parse_span(cells, bad)
    if len(problems) > start or effective_from is None:
        return None
    return PriceRow(
        price_id=price_id,
        org_id=cells["org_id"] or None,
        profile_type=cells["profile_type"] or None,
        profile=cells["profile"] or None,
        unit=unit,
        unit_price=unit_price,
        currency=currency,
        effective_from=effective_from,
        effective_to=effective_to,
        line=line,
        dimension=dimension,
        label_key=label_key,
        label_value=label_value,
    )


def _parse_dimension_and_label(
    cells: dict[str, str], unit: str, bad: Callable[[str], None]
) -> tuple[str | None, str | None, str | None]:
    """The optional ``dimension``, ``label_key`` and ``label_value`` cells, checked against the unit."""
    dimension = cells.get("dimension") or None
    if unit == "dimension_hour" and dimension is None:
        bad("unit dimension_hour needs a dimension: name the usage parameter it prices (CPU, Memory, Disk, GPU, ...)")
    elif unit in INSTANCE_UNITS and dimension is not None:
        bad(f"dimension {dimension!r} needs unit dimension_hour ({unit} prices the instance "
            "itself): set the unit or clear the dimension")
    label_key, label_value = cells.get("label_key") or None, cells.get("label_value") or None
    if (label_key is None) != (label_value is None):
        bad("label_key and label_value go together: give both (e.g. Contract ID and C-1001) or neither")
    return dimension, label_key, label_value


def _parse_unit_price(text: str, bad: Callable[[str], None]) -> Decimal:
    """The ``unit_price`` cell as a Decimal (0 after reporting what is wrong with it)."""
    if not text:
        bad("unit_price is empty: give a decimal like 2.95")
    elif text.startswith("-"):
        bad(f"unit_price {text!r} is negative: prices are >= 0")
    elif not _DECIMAL.match(text):
        bad(f"unit_price {text!r} is not a plain decimal: write it like 2.95 (no exponent, sign, currency or separators)")
    else:
        problem = numeric_problem("unit_price", text)
        if problem is None:
            return Decimal(text)
        bad(problem)
    return Decimal(0)


def _parse_span(cells: dict[str, str], bad: Callable[[str], None]) -> tuple[datetime | None, datetime | None]:
    """``(effective_from, effective_to)``; a boundary that does not parse is reported and None."""
    effective_from = effective_to = None
    if not cells["effective_from"]:
        bad("effective_from is empty: give the first day the price applies (2026-11-01)")
    else:
        try:
            effective_from = parse_boundary(cells["effective_from"])
        except ValueError as exc:
            bad(f"effective_from {exc}")
    if cells["effective_to"]:
        try:
            effective_to = parse_boundary(cells["effective_to"])
        except ValueError as exc:
            bad(f"effective_to {exc}")
        else:
            if effective_from is not None and effective_to <= effective_from:
                bad(
                    f"effective_to {cells['effective_to']!r} is not after effective_from "
                    f"{cells['effective_from']!r}: leave it blank for open-ended or give a later time"
                )
    return effective_from, effective_to


def _currency_problem(currency: str) -> str | None:
    """What is wrong with a ``currency`` cell, or ``None``: the shape first, then the ISO 4217 table."""
    if not _CURRENCY.match(currency):
        hint = f" (did you mean {currency.upper()}?)" if _CURRENCY.match(currency.upper()) else ""
        return f"currency {currency!r} is not an ISO 4217 code: three capital letters (USD, EUR, ...){hint}"
    try:
        minor_unit(currency)
    except CurrencyError as exc:
        return str(exc)
    return None


def _check_overlaps(rows: list[PriceRow], problems: list[tuple[int, str]]) -> None:
    """Rows with the same match key (org_id, profile_type, profile) must not be in effect at once.

    Two such rows would tie at the same specificity for every usage in the overlap; the unit does
    not matter (an instance_hour and a gpu_hour row for the same key would tie just the same).
    """
    by_key: dict[tuple[str | None, ...], list[PriceRow]] = defaultdict(list)
    for row in rows:
        by_key[row.match_key].append(row)
    for (org_id, profile_type, profile, dimension, label_key, label_value), group in by_key.items():
        extra = (f", dimension={dimension!r}" if dimension else "") + (
            f", label {label_key!r}={label_value!r}" if label_key else "")
        group.sort(key=lambda r: (r.effective_from, r.line))
        latest: PriceRow | None = None  # the row seen so far that ends last
        for row in group:
            if latest is not None and (latest.effective_to is None or latest.effective_to > row.effective_from):
                # blame the row that comes later in the file, name the other one
                later, earlier = (row, latest) if row.line > latest.line else (latest, row)
                problems.append(
                    (
                        later.line,
                        f"price {later.price_id!r} {_span(later)} overlaps price {earlier.price_id!r} "
                        f"{_span(earlier)} (line {earlier.line}) for org_id={_describe(org_id)}, "
                        f"profile_type={_describe(profile_type)}, profile={_describe(profile)}{extra}: "
                        "end the earlier-starting one (effective_to) where the other starts, or remove one",
                    )
                )
            if latest is None or latest.effective_to is not None and (
                row.effective_to is None or row.effective_to > latest.effective_to
            ):
                latest = row


def _overlap(a: PriceRow, b: PriceRow) -> bool:
    """The two rows are in effect on a common day."""
    return ((a.effective_to is None or b.effective_from < a.effective_to)
            and (b.effective_to is None or a.effective_from < b.effective_to))


def _check_label_or_dimension(rows: list[PriceRow], problems: list[tuple[int, str]]) -> None:
    """A usage parameter is a quantity (a row's ``dimension``) or an identity (a row's ``label_key``),
    never both (issue 21, rule 6): rating treats a name any row matches as a label as text, so a
    dimension price for it could never bill, and a label price for a quantity could never match."""
    label_lines: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row.label_key is not None:
            label_lines[row.label_key.lower()].append(row.line)
    for row in rows:
        if row.dimension is not None and row.dimension.lower() in label_lines:
            lines = ", ".join(str(n) for n in label_lines[row.dimension.lower()])
            problems.append((row.line, (
                f"dimension {row.dimension!r} of price {row.price_id!r} is also a label_key on line(s) {lines}: "
                "a parameter is either a quantity (dimension) or an identity label (label_key), not both; "
                "remove the dimension row or the label rows")))


def _can_share_an_instance(a: PriceRow, b: PriceRow) -> bool:
    """Some instance can match both rows (rating's rule): each of org_id, profile_type and profile is
    blank (any) on one side or the same on both, and the labels do not name one key with two values
    (an instance carries one value per key; keys in any case, values exact)."""
    if any(x is not None and y is not None and x != y for x, y in (
            (a.org_id, b.org_id), (a.profile_type, b.profile_type), (a.profile, b.profile))):
        return False
    return not (a.label_key is not None and b.label_key is not None
                and a.label_key.lower() == b.label_key.lower() and a.label_value != b.label_value)


def _shared_scope(a: PriceRow, b: PriceRow) -> str:
    """The instances and days both rows apply to, for the message: the narrower of each part."""
    labels = {(r.label_key.lower(), r.label_value): f"label {r.label_key!r}={r.label_value!r}"
              for r in (a, b) if r.label_key is not None}
    start = max(a.effective_from, b.effective_from)
    ends = [r.effective_to for r in (a, b) if r.effective_to is not None]
    days = f"from {start:%Y-%m-%d}" + (f" until {min(ends):%Y-%m-%d}" if ends else "")
    return (f"org_id={_describe(a.org_id or b.org_id)}, profile_type={_describe(a.profile_type or b.profile_type)}, "
            f"profile={_describe(a.profile or b.profile)}" + "".join(f", {text}" for text in labels.values())
            + f", {days}")


def _check_gpu_priced_once(rows: list[PriceRow], problems: list[tuple[int, str]]) -> None:
    """A GPU-based instance row (``gpu_hour``, ``gpu_month``) and a ``GPU`` dimension row that can apply to
    the same instance on a common day would price the same GPU-hours twice (issue 21, rule 7): rating
    would leave every such instance unbilled (``ambiguous_price``), so the sync refuses the pair, whatever
    the specificity of each. Rating keeps its own check for rows the sync did not write."""
    gpu_dims = [r for r in rows if r.unit == "dimension_hour" and (r.dimension or "").lower() == "gpu"]
    for row in rows:
        if row.unit not in ("gpu_hour", "gpu_month"):
            continue
        for other in gpu_dims:
            if _overlap(row, other) and _can_share_an_instance(row, other):
                later, earlier = (row, other) if row.line > other.line else (other, row)
                problems.append((later.line, (
                    f"price {later.price_id!r} and price {earlier.price_id!r} (line {earlier.line}) both price "
                    f"the GPU-hours of the instances of {_shared_scope(row, other)} ({row.unit} and "
                    f"dimension_hour of {other.dimension!r}): they would be billed twice; keep one of them, "
                    "end the earlier-starting one (effective_to) where the other starts, or narrow one (org_id, "
                    "profile_type, profile, label) so that no instance matches both")))


def _read_header(reader: Any) -> tuple[list[str], dict[str, int]]:
    """The header's trimmed names and each column's position; exactly :data:`COLUMNS` or an error."""
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise PriceBookError([(1, f"unreadable header: {exc}")]) from None
    if header is None or not any(cell.strip() for cell in header):
        raise PriceBookError([(1, f"the file is empty: the first line must be the header {','.join(COLUMNS)}")])
    names = [cell.strip() for cell in header]
    missing = [c for c in COLUMNS if c not in names]
    unknown = [c for c in names if c not in COLUMNS + OPTIONAL_COLUMNS]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if missing or unknown or repeated:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(repr(c) for c in unknown)}")
        if repeated:
            parts.append(f"repeated column(s) {', '.join(repeated)}")
        raise PriceBookError([(1, "; ".join(parts) + f": the header must be {','.join(COLUMNS)} "
                                  f"(optionally also {', '.join(OPTIONAL_COLUMNS)})")])
    return names, {name: names.index(name) for name in COLUMNS + OPTIONAL_COLUMNS if name in names}




def _check_unique_id(line: int, price_id: str, first_line: dict[str, int], problems: list[tuple[int, str]]) -> None:
    """Remember where each price_id first appears; a later use is a problem."""
    if not price_id:
        return
    if price_id in first_line:
        problems.append(
            (line, f"price_id {price_id!r} is already used on line {first_line[price_id]}: price ids must be unique")
        )
    else:
        first_line[price_id] = line


def parse_price_book(text: str | bytes) -> list[PriceRow]:
    """Validate a whole price book CSV; raises :class:`PriceBookError` listing every problem.

    Cells are trimmed; blank lines are skipped; a UTF-8 byte-order mark (Excel) is ignored. Columns
    may come in any order but must be exactly :data:`COLUMNS` (a misspelt ``effective_to`` silently
    ignored would make a price open-ended). A book with no rows is refused: syncing it would empty
    the table.
    """
    reader = csv.reader(io.StringIO(utf8_text(text, PriceBookError), newline=""))
    names, index = _read_header(reader)
    problems: list[tuple[int, str]] = []
    rows: list[PriceRow] = []
    first_line: dict[str, int] = {}
    for this_line, record in csv_records(reader, problems):
        if len(record) != len(names):
            problems.append(
                (this_line, f"{len(record)} cells but the header has {len(names)}: check for a stray or missing comma")
            )
            continue
        if any("\x00" in cell for cell in record):
            columns = ", ".join(names[i] for i, cell in enumerate(record) if "\x00" in cell)
            problems.append((this_line, f"a NUL byte in column(s) {columns}: remove it (the database cannot store it)"))
            continue
        cells = {name: record[i].strip() for name, i in index.items()}
        _check_unique_id(this_line, cells["price_id"], first_line, problems)
        row = _parse_row(this_line, cells, problems)
        if row is not None:
            rows.append(row)
    if not rows and not problems:
        problems.append((1, "the price book has no rows: refusing to empty billing.price_book"))
    unique = [r for r in rows if first_line.get(r.price_id) == r.line]
    _check_overlaps(unique, problems)
    _check_label_or_dimension(unique, problems)
    _check_gpu_priced_once(unique, problems)
    if problems:
        raise PriceBookError(problems)
    return rows


# --- the table ---------------------------------------------------------------------------------


def sync_price_book(conn: Any, text: str | bytes) -> SyncResult:
    """Validate ``text`` and make ``billing.price_book`` equal it, atomically.

    Nothing touches the database unless the whole CSV is valid; the replace runs in one transaction
    under a table lock (two runs syncing at once take turns), so a failure leaves the table as it was.
    """
    rows = parse_price_book(text)
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("price_book/lock.sql"))
        cur.execute(sql("price_book/create_stage.sql"))
        with cur.copy(sql("price_book/copy_stage.sql")) as copy:
            for r in rows:
                copy.write_row(
                    (r.price_id, r.org_id, r.profile_type, r.profile, r.unit, r.unit_price, r.currency,
                     r.effective_from, r.effective_to, r.dimension, r.label_key, r.label_value)
                )
        cur.execute(sql("price_book/delete_missing.sql"))
        deleted = cur.rowcount
        cur.execute(sql("price_book/upsert_from_stage.sql"))
        flags = [row[0] for row in cur.fetchall()]
        cur.execute(sql("price_book/drop_stage.sql"))
        cur.execute(sql("price_book/analyze.sql"))
    return SyncResult(rows=len(rows), inserted=sum(flags), updated=len(flags) - sum(flags), deleted=deleted)


def fetch_price_book(conn: Any) -> list[dict[str, Any]]:
    """The table as a list of dicts (price_id order)."""
    from psycopg.rows import dict_row

    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("price_book/fetch_all.sql"))
        return cur.fetchall()
