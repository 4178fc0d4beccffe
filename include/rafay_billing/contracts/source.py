"""The contracts CSV: parse and validate it before anything reaches ``billing.contracts``.

Why validate in Python first (as the price book does): a bad file must fail with a message a person
can act on, every problem at once with its CSV line, and must leave the table exactly as it was. So
a value the database could not store is refused here too, not by PostgreSQL naming no CSV line: a name
or id longer than :data:`MAX_NAME_LENGTH`, a number beyond NUMERIC. (A description longer than
:data:`MAX_DESCRIPTION_LENGTH` is refused as well, though the database could store it.)

What a row means depends on its ``kind``:

- ``reservation``: ``profile``, ``unit`` (``instance_hour`` | ``gpu_hour``), ``quantity`` > 0 and
  ``unit_price`` (per unit-hour) are required; the fee is billed used or not. ``term_start`` is any
  UTC instant (a reservation is accepted at 14:00).
- ``commitment``: ``amount`` per month; the term starts and ends on UTC midnights.
- ``fee``: ``amount`` and ``frequency`` (``monthly``: prorated by day, term on UTC midnights;
  ``one_time``: the whole amount in the month of ``term_start``).

A cell that does not apply to the row's kind is refused rather than ignored: a unit price typed on a
commitment row would otherwise vanish silently. ``billing_timing`` (blank = ``arrears``) and
``true_up_period`` (blank = ``month``) accept only those values for now; the columns exist so that
the file's format need not change when they grow. ``profile_type`` blank = ``compute``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from rafay_billing.contracts.errors import ContractsError
from rafay_billing.csv_input import (
    MAX_NAME_LENGTH,
    csv_records,
    length_problem,
    numeric_problem,
    parse_timestamp,
    utf8_text,
)
from rafay_billing.currency import minor_unit
from rafay_billing.errors import CurrencyError

COLUMNS: tuple[str, ...] = (
    "contract_id", "org_id", "kind", "profile_type", "profile", "unit", "quantity", "unit_price", "amount",
    "currency", "frequency", "term_start", "term_end", "billing_timing", "true_up_period", "description",
)
KINDS: tuple[str, ...] = ("reservation", "commitment", "fee")
RESERVATION_UNITS: tuple[str, ...] = ("instance_hour", "gpu_hour")
FREQUENCIES: tuple[str, ...] = ("monthly", "one_time")
BILLING_TIMINGS: tuple[str, ...] = ("arrears",)
TRUE_UP_PERIODS: tuple[str, ...] = ("month",)
DEFAULT_PROFILE_TYPE = "compute"
NAME_COLUMNS: tuple[str, ...] = ("contract_id", "org_id", "profile_type", "profile")
"""Cells of at most ``MAX_NAME_LENGTH`` characters. The database indexes contract_id (the versions' keys;
the line items' key, as the contract a month charge or a covered part comes from) and org_id (with the
kind and term). profile_type and profile are in no index of the versions, but name what the price
book's do, bounded alike."""
MAX_DESCRIPTION_LENGTH = 1000
"""Characters a ``description`` may have. It is in no index (a text column can hold far more), but it
is a note read in the Billing view and kept in every version for good: 1,000 is room for a sentence
or two, and a longer cell is more likely a paste gone wrong than a description."""

# ASCII digits only: Python's \d also matches Arabic-Indic and full-width digits, which Decimal accepts.
_DECIMAL = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$", re.ASCII)
_CURRENCY = re.compile(r"^[A-Z]{3}$", re.ASCII)

# What a number with too many decimals is rounded to (quantity counts instances or GPUs, not money).
_ROUNDING = {"quantity": "a few decimal places are plenty",
             "unit_price": "a few places beyond the currency's minor unit are plenty",
             "amount": "a few places beyond the currency's minor unit are plenty"}

# The cells each kind uses; any other non-blank cell (but the always-allowed ones) is refused.
_ALWAYS = ("contract_id", "org_id", "kind", "currency", "term_start", "term_end", "billing_timing",
           "true_up_period", "description")
_USES: dict[str, tuple[str, ...]] = {
    "reservation": ("profile_type", "profile", "unit", "quantity", "unit_price"),
    "commitment": ("amount", "frequency"),
    "fee": ("amount", "frequency"),
}


@dataclass(frozen=True)
class Contract:
    """One validated contract row. Cells a kind does not use are ``None``."""

    contract_id: str
    org_id: str
    kind: str
    profile_type: str
    profile: str | None
    unit: str | None
    quantity: Decimal | None
    unit_price: Decimal | None
    amount: Decimal | None
    currency: str
    frequency: str | None
    term_start: datetime
    term_end: datetime | None
    billing_timing: str = "arrears"
    true_up_period: str = "month"
    description: str = ""
    line: int = 0

    @property
    def terms(self) -> tuple[Any, ...]:
        """Everything that decides what the contract charges or covers (not its description or line).

        Two versions with equal terms bill the same; the sync compares these.
        """
        return (self.org_id, self.kind, self.profile_type, self.profile, self.unit, self.quantity,
                self.unit_price, self.amount, self.currency, self.frequency, self.term_start, self.term_end,
                self.billing_timing, self.true_up_period)

    def same_as(self, other: Contract) -> bool:
        """Equal terms and description (what a sync must store as a new version when it differs)."""
        return _normal(self.terms) == _normal(other.terms) and self.description == other.description


def _normal(terms: tuple[Any, ...]) -> tuple[Any, ...]:
    """Decimals compared by value *and* written form (1.5 vs 1.50 is a change of what finance wrote)."""
    return tuple(str(v) if isinstance(v, Decimal) else v for v in terms)


# --- cells -------------------------------------------------------------------------------------


def _decimal(name: str, text: str, bad: Callable[[str], None], *, positive: bool = False) -> Decimal | None:
    """A plain non-negative ASCII decimal (``> 0`` when ``positive``) that NUMERIC can store; None after
    reporting a problem."""
    if not text:
        bad(f"{name} is empty: give a decimal like 2.95")
        return None
    if text.startswith("-"):
        bad(f"{name} {text!r} is negative: give a number > 0" if positive else
            f"{name} {text!r} is negative: give a number >= 0")
        return None
    if not _DECIMAL.match(text):
        bad(f"{name} {text!r} is not a plain decimal: write it like 2.95 with ASCII digits "
            "(no exponent, sign, currency or separators)")
        return None
    problem = numeric_problem(name, text, rounding=_ROUNDING[name])
    if problem:
        bad(problem)
        return None
    value = Decimal(text)
    if positive and value <= 0:
        bad(f"{name} {text!r} must be greater than 0")
        return None
    return value


def _currency_problem(currency: str) -> str | None:
    """What is wrong with a ``currency`` cell, or None: the shape first, then the ISO 4217 table."""
    if not currency:
        return "currency is empty: give an ISO 4217 code (USD, EUR, JPY, ...)"
    if not _CURRENCY.match(currency):
        hint = f" (did you mean {currency.upper()}?)" if _CURRENCY.match(currency.upper()) else ""
        return f"currency {currency!r} is not an ISO 4217 code: three capital letters (USD, EUR, ...){hint}"
    try:
        minor_unit(currency)
    except CurrencyError as exc:
        return str(exc)
    return None


def _choice(name: str, text: str, allowed: tuple[str, ...], bad: Callable[[str], None],
            default: str | None = None, later: tuple[str, ...] = ()) -> str | None:
    """One of ``allowed`` (blank = ``default``); ``later`` values are known but not supported yet."""
    if not text:
        if default is None:
            bad(f"{name} is empty: use {' or '.join(allowed)}")
        return default
    if text in allowed:
        return text
    if text in later:
        bad(f"{name} {text!r} is not supported yet: use {' or '.join(allowed)} (or leave it blank)")
    else:
        bad(f"{name} {text!r} is unknown: use {' or '.join(allowed)}")
    return None


def _instant(name: str, text: str, bad: Callable[[str], None]) -> datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        bad(f"{name} {exc}")
        return None


def _term(cells: dict[str, str], bad: Callable[[str], None]) -> tuple[datetime | None, datetime | None]:
    """``(term_start, term_end)``: any UTC instants, end exclusive and after the start, blank end = open."""
    start = end = None
    if not cells["term_start"]:
        bad("term_start is empty: give the instant the contract starts (2026-11-10T14:00:00Z or 2026-11-01)")
    else:
        start = _instant("term_start", cells["term_start"], bad)
    if cells["term_end"]:
        end = _instant("term_end", cells["term_end"], bad)
        if start is not None and end is not None and end <= start:
            bad(f"term_end {cells['term_end']!r} is not after term_start {cells['term_start']!r}: "
                "leave it blank for open-ended or give a later time (the end is exclusive)")
    return start, end


def _midnight_problem(name: str, value: datetime | None, why: str) -> str | None:
    if value is None or value.time() == time(0):
        return None
    day = value.date()
    return (f"{name} {value:%Y-%m-%dT%H:%M:%S}Z is not a UTC midnight, but {why} is billed by whole days: "
            f"write a day, {day.isoformat()} or {(day + timedelta(days=1)).isoformat()}")


# --- rows --------------------------------------------------------------------------------------


def _check_cells_apply(kind: str, cells: dict[str, str], bad: Callable[[str], None]) -> None:
    """A non-blank cell the kind does not use is refused, naming the columns."""
    extra = [c for c in COLUMNS if cells[c] and c not in _ALWAYS and c not in _USES[kind]]
    if extra:
        bad(f"{', '.join(extra)} must be blank for a {kind} (it uses {', '.join(_USES[kind])})")


def _check_lengths(cells: dict[str, str], bad: Callable[[str], None]) -> None:
    """Names and ids of at most :data:`MAX_NAME_LENGTH` characters, a description of at most
    :data:`MAX_DESCRIPTION_LENGTH`: refused here, naming the line, rather than by the database."""
    for name in NAME_COLUMNS:
        problem = length_problem(name, cells[name], MAX_NAME_LENGTH,
                                 "names and ids go into the database's indexes, and a longer one may not fit")
        if problem:
            bad(problem)
    problem = length_problem("description", cells["description"], MAX_DESCRIPTION_LENGTH,
                             "a note for the Billing view, kept in every version of the contract")
    if problem:
        bad(problem)


def _reservation_cells(cells: dict[str, str], bad: Callable[[str], None]) -> dict[str, Any]:
    if not cells["profile"]:
        bad("a reservation needs a profile: name the compute profile it reserves")
    unit = _choice("unit", cells["unit"], RESERVATION_UNITS, bad)
    return {
        "profile_type": cells["profile_type"] or DEFAULT_PROFILE_TYPE,
        "profile": cells["profile"] or None,
        "unit": unit,
        "quantity": _decimal("quantity", cells["quantity"], bad, positive=True),
        "unit_price": _decimal("unit_price", cells["unit_price"], bad),
        "amount": None,
        "frequency": None,
    }


def _amount_cells(kind: str, cells: dict[str, str], bad: Callable[[str], None]) -> dict[str, Any]:
    """A commitment's or a fee's amount and frequency (a commitment is monthly: blank or ``monthly``)."""
    if kind == "commitment":
        frequency = _choice("frequency", cells["frequency"], ("monthly",), bad, default="monthly",
                            later=("one_time",))
    else:
        frequency = _choice("frequency", cells["frequency"], FREQUENCIES, bad)
    return {
        "profile_type": DEFAULT_PROFILE_TYPE, "profile": None, "unit": None, "quantity": None,
        "unit_price": None, "amount": _decimal("amount", cells["amount"], bad), "frequency": frequency,
    }


def _parse_row(line: int, cells: dict[str, str], problems: list[tuple[int, str]]) -> Contract | None:
    """One data row, or None after recording every problem it has."""
    start = len(problems)

    def bad(message: str) -> None:
        problems.append((line, message))

    _check_lengths(cells, bad)
    if not cells["contract_id"]:
        bad("contract_id is empty: give every contract a unique id")
    if not cells["org_id"]:
        bad("org_id is empty: give the Rafay org id (the org's metadata.name)")
    kind = _choice("kind", cells["kind"], KINDS, bad)
    problem = _currency_problem(cells["currency"])
    if problem:
        bad(problem)
    term_start, term_end = _term(cells, bad)
    timing = _choice("billing_timing", cells["billing_timing"], BILLING_TIMINGS, bad, default="arrears",
                     later=("advance",))
    true_up = _choice("true_up_period", cells["true_up_period"], TRUE_UP_PERIODS, bad, default="month",
                      later=("quarter", "year"))
    if kind is None:
        return None
    _check_cells_apply(kind, cells, bad)
    parts = _reservation_cells(cells, bad) if kind == "reservation" else _amount_cells(kind, cells, bad)
    if kind == "commitment" or parts["frequency"] == "monthly":
        why = "a commitment" if kind == "commitment" else "a monthly fee"
        for name, value in (("term_start", term_start), ("term_end", term_end)):
            problem = _midnight_problem(name, value, why)
            if problem:
                bad(problem)
    if len(problems) > start or term_start is None or timing is None or true_up is None:
        return None
    return Contract(contract_id=cells["contract_id"], org_id=cells["org_id"], kind=kind, currency=cells["currency"],
                    term_start=term_start, term_end=term_end, billing_timing=timing, true_up_period=true_up,
                    description=cells["description"], line=line, **parts)


# --- the file ----------------------------------------------------------------------------------




def _read_header(reader: Any) -> dict[str, int]:
    """Each column's position; the header must name exactly :data:`COLUMNS`, in any order."""
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ContractsError([(1, f"unreadable header: {exc}")]) from None
    if header is None or not any(cell.strip() for cell in header):
        raise ContractsError([(1, f"the file is empty: the first line must be the header {','.join(COLUMNS)}")])
    names = [cell.strip() for cell in header]
    missing = [c for c in COLUMNS if c not in names]
    unknown = [c for c in names if c not in COLUMNS]
    repeated = sorted({c for c in names if names.count(c) > 1})
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        parts.append(f"unknown column(s) {', '.join(repr(c) for c in unknown)}")
    if repeated:
        parts.append(f"repeated column(s) {', '.join(repeated)}")
    if parts:
        raise ContractsError([(1, "; ".join(parts) + f": the header must be {','.join(COLUMNS)}")])
    return {name: names.index(name) for name in COLUMNS}




def _cells(line: int, record: list[str], index: dict[str, int], problems: list[tuple[int, str]]
           ) -> dict[str, str] | None:
    """The trimmed cells by column, or None when the record has the wrong width or a NUL byte."""
    if len(record) != len(index):
        problems.append((line, f"{len(record)} cells but the header has {len(index)}: "
                               "check for a stray or missing comma (quote cells that contain one)"))
        return None
    cells = {name: record[i].strip() for name, i in index.items()}
    nul = [name for name, value in cells.items() if "\x00" in value]
    if nul:
        problems.append((line, f"{', '.join(nul)} contain(s) a NUL byte (\\x00): remove it "
                               "(the file was probably saved in a binary or UTF-16 format)"))
        return None
    return cells


def _check_units(contracts: list[Contract], problems: list[tuple[int, str]]) -> None:
    """Reservations of one (org, profile type, profile) share a unit: coverage sums their capacities."""
    first: dict[tuple[str, str, str | None], Contract] = {}
    for c in contracts:
        if c.kind != "reservation":
            continue
        key = (c.org_id, c.profile_type, c.profile)
        seen = first.setdefault(key, c)
        if seen.unit != c.unit:
            problems.append((c.line, (
                f"reservation {c.contract_id!r} has unit {c.unit} but reservation {seen.contract_id!r} "
                f"(line {seen.line}) of the same org {c.org_id!r}, profile type {c.profile_type!r} and profile "
                f"{c.profile!r} has unit {seen.unit}: reservations of one profile must share a unit")))


def parse_contracts(text: str | bytes) -> list[Contract]:
    """Validate a whole contracts CSV; raises :class:`ContractsError` listing every problem by line.

    Cells are trimmed; blank lines are skipped; a UTF-8 byte-order mark (Excel) is ignored. Columns
    may come in any order but must be exactly :data:`COLUMNS`. A file with a header and no rows is
    valid (no contracts); the sync then refuses it if the table holds any (it never deletes one).
    """
    reader = csv.reader(io.StringIO(utf8_text(text, ContractsError), newline=""))
    index = _read_header(reader)
    problems: list[tuple[int, str]] = []
    contracts: list[Contract] = []
    first_line: dict[str, int] = {}
    for line, record in csv_records(reader, problems):
        cells = _cells(line, record, index, problems)
        if cells is None:
            continue
        contract_id = cells["contract_id"]
        if contract_id in first_line:
            problems.append((line, f"contract_id {contract_id!r} is already used on line "
                                   f"{first_line[contract_id]}: contract ids must be unique"))
            continue
        if contract_id:
            first_line[contract_id] = line
        contract = _parse_row(line, cells, problems)
        if contract is not None:
            contracts.append(contract)
    _check_units(contracts, problems)
    if problems:
        raise ContractsError(problems)
    return contracts
