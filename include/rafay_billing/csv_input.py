"""Reading an operator's CSV file (the price book, the contracts): UTF-8 text, its records with the
line numbers that every refusal names, the UTC timestamps both files write, and the bounds of what the
database can store (a value beyond them is refused naming its CSV line, not by PostgreSQL)."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from rafay_billing.source.record_values import NUMERIC_FRACTION_DIGITS, NUMERIC_INTEGER_DIGITS

MAX_NAME_LENGTH = 200
"""Characters a name or id cell (a price id, contract id, org, profile type, profile, dimension, label)
may have. The database indexes them, several in one entry (org, profile type and profile in the price
book's and the line items' keys), and a btree entry holds at most 2,704 bytes: three of 200 characters
of up to 4 UTF-8 bytes each fit; a longer one would fail the sync or the rating with a database error
instead of a CSV line."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(Z|[+-]\d{2}:?\d{2})?$",
                       re.IGNORECASE | re.ASCII)


def utf8_text(text: str | bytes, error: Callable[[list[tuple[int, str]]], Exception]) -> str:
    """The CSV as text: bytes must be UTF-8, else ``error([(line, why)])`` is raised naming the line of
    the first byte that is not (a Windows-1252 file from Excel usually decodes up to its first accent, so
    that line is where the person looks); a byte-order mark (Excel) is dropped."""
    if isinstance(text, bytes):
        data = text
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error([_not_utf8(data, exc)]) from None
    return text.removeprefix("\ufeff")


def _not_utf8(data: bytes, exc: UnicodeDecodeError) -> tuple[int, str]:
    """``(line, message)`` for the first undecodable byte; a line ends at LF, CRLF or CR, as the CSV
    reader counts lines (``io.StringIO`` with ``newline=""``), so the number matches the other refusals'."""
    before = data[: exc.start]
    line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
    start = max(before.rfind(b"\n"), before.rfind(b"\r")) + 1
    shown = before[start:].decode("utf-8", errors="replace")[-40:]
    where = f"after {shown!r}" if shown else "at the start of the line"
    return line, (f"the file is not UTF-8 text: byte 0x{data[exc.start]:02X} {where} cannot be read as UTF-8 "
                  f"({exc.reason}); save the file as UTF-8 (in Excel: CSV UTF-8)")


def csv_records(reader: Any, problems: list[tuple[int, str]]) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` of every non-blank data record; stops at unreadable CSV (a problem)."""
    line = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append((line, f"unreadable CSV: {exc}"))
            return
        this_line, line = line, reader.line_num + 1
        if any(cell.strip() for cell in record):
            yield this_line, record


def parse_timestamp(text: str) -> datetime:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO-8601 UTC timestamp (``Z`` or ``+00:00``).

    Raises ``ValueError`` with a message meant for the person editing the CSV.
    """
    if _DATE.match(text):
        try:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(f"{text!r} is not a real date") from None
    match = _DATETIME.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a date (2026-11-01) or a UTC timestamp (2026-11-01T00:00:00Z)")
    if match.group(3) is None:
        raise ValueError(f"{text!r} has no time zone: end it with Z (UTC)")
    try:
        value = datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}{_offset(match.group(3))}")
    except ValueError:
        raise ValueError(f"{text!r} is not a real date and time") from None
    if value.utcoffset() != timedelta(0):
        in_utc = f"{value.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"
        raise ValueError(f"{text!r} is not UTC (it is {in_utc}): write the time in UTC and end it with Z")
    return value.astimezone(UTC)


def _offset(zone: str) -> str:
    if zone.upper() == "Z":
        return "+00:00"
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"


def length_problem(name: str, text: str, limit: int, why: str) -> str | None:
    """Why ``text`` is too long for column ``name`` (``why``: what the bound protects), or ``None``.
    Counted in characters, as the person editing the file counts them."""
    if len(text) <= limit:
        return None
    return f"{name} is {len(text):,} characters long: shorten it to at most {limit:,} ({why})"


def numeric_problem(name: str, text: str,
                    rounding: str = "a few places beyond the currency's minor unit are plenty") -> str | None:
    """Why a plain decimal (``text`` matched ``[0-9]+(.[0-9]*)?|.[0-9]+``) does not fit PostgreSQL's
    NUMERIC, or ``None``: checked here so the refusal names the CSV line, where the database's
    (NumericValueOutOfRange) names none. Digits after the point count as written, trailing zeros too
    (PostgreSQL keeps them, and refuses 16,384 of them); leading zeros before it do not. Not
    ``record_values.numeric_fit``: it drops trailing zeros, which would change what the file wrote."""
    whole, _, fraction = text.partition(".")
    digits = len(whole.lstrip("0"))
    if digits > NUMERIC_INTEGER_DIGITS:
        return (f"{name} has {digits:,} digits before the decimal point; the database keeps at most "
                f"{NUMERIC_INTEGER_DIGITS:,}: check the value")
    if len(fraction) > NUMERIC_FRACTION_DIGITS:
        return (f"{name} has {len(fraction):,} digits after the decimal point; the database keeps at most "
                f"{NUMERIC_FRACTION_DIGITS:,}: round it ({rounding})")
    return None
