"""The contracts CSV (issue 22, rule 8): every bad input is refused naming its CSV line; defaults apply."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rafay_billing.contracts.errors import ContractsError
from rafay_billing.contracts.source import COLUMNS, parse_contracts

HEADER = ",".join(COLUMNS)
RESERVATION = "r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10T14:00:00Z,,,,8 H100 GPUs"
COMMITMENT = "c-1,coke,commitment,,,,,,1000,USD,,2026-11-16,2027-11-16,,,minimum spend"
MONTHLY_FEE = "f-1,coke,fee,,,,,,300,EUR,monthly,2026-11-20,2026-12-10,arrears,month,support plan"
ONE_TIME_FEE = "f-2,pepsi,fee,,,,,,50.5,JPY,one_time,2026-11-03T09:30:00Z,,,,setup"


def _csv(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def _problems(text: str | bytes) -> list[tuple[int, str]]:
    with pytest.raises(ContractsError) as info:
        parse_contracts(text)
    return info.value.problems


def _one_problem(row: str) -> str:
    """The single problem of a file whose line 2 is ``row``."""
    problems = _problems(_csv(row))
    assert [line for line, _ in problems] == [2], problems
    return problems[0][1]


def test_a_good_file_parses_to_exact_values_with_defaults() -> None:
    contracts = {c.contract_id: c for c in parse_contracts(_csv(RESERVATION, COMMITMENT, MONTHLY_FEE, ONE_TIME_FEE))}
    r = contracts["r-1"]
    assert (r.kind, r.org_id, r.profile_type, r.profile, r.unit) == ("reservation", "coke", "compute", "h100", "gpu_hour")
    assert (r.quantity, r.unit_price, r.amount, r.frequency) == (Decimal("8"), Decimal("2.15"), None, None)
    assert r.term_start == datetime(2026, 11, 10, 14, tzinfo=UTC) and r.term_end is None
    assert (r.billing_timing, r.true_up_period, r.description, r.line) == ("arrears", "month", "8 H100 GPUs", 2)
    c = contracts["c-1"]
    assert (c.amount, c.frequency, c.currency, c.profile, c.unit) == (Decimal("1000"), "monthly", "USD", None, None)
    assert c.term_end == datetime(2027, 11, 16, tzinfo=UTC)
    assert contracts["f-1"].frequency == "monthly" and contracts["f-1"].line == 4
    one = contracts["f-2"]
    assert (one.frequency, one.amount, one.currency) == ("one_time", Decimal("50.5"), "JPY")
    assert one.term_start == datetime(2026, 11, 3, 9, 30, tzinfo=UTC)  # a one-time fee may start at any instant


def test_header_only_is_no_contracts_and_columns_may_come_in_any_order() -> None:
    assert parse_contracts(HEADER + "\n") == []
    shuffled = ",".join(reversed(COLUMNS)) + "\n" + ",".join(reversed(RESERVATION.split(","))) + "\n"
    [r] = parse_contracts(("\ufeff" + shuffled).encode())
    assert (r.contract_id, r.quantity) == ("r-1", Decimal("8"))


@pytest.mark.parametrize(("row", "fragment"), [
    ("r-1,coke,reservation,,,gpu_hour,8,2.15,,USD,,2026-11-10,,,,", "needs a profile"),
    ("r-1,coke,reservation,,h100,,8,2.15,,USD,,2026-11-10,,,,", "unit is empty"),
    ("r-1,coke,reservation,,h100,hour,8,2.15,,USD,,2026-11-10,,,,", "unit 'hour' is unknown"),
    ("r-1,coke,reservation,,h100,gpu_hour,0,2.15,,USD,,2026-11-10,,,,", "quantity '0' must be greater than 0"),
    ("r-1,coke,reservation,,h100,gpu_hour,-2,2.15,,USD,,2026-11-10,,,,", "quantity '-2' is negative"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,,,USD,,2026-11-10,,,,", "unit_price is empty"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,1e3,,USD,,2026-11-10,,,,", "not a plain decimal"),
    ("r-1,coke,reservation,,h100,gpu_hour,\u0668,2.15,,USD,,2026-11-10,,,,", "ASCII digits"),
    ("r-1,coke,reservation,,h100,gpu_hour,\uff18,2.15,,USD,,2026-11-10,,,,", "ASCII digits"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10T14:00:00Z,2026-11-10T14:00:00Z,,,",
     "term_end '2026-11-10T14:00:00Z' is not after term_start"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10,2026-11-01,,,", "is not after term_start"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10T14:00:00+01:00,,,,", "is not UTC"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,,,,,", "term_start is empty"),
    ("r-1,coke,lease,,h100,gpu_hour,8,2.15,,USD,,2026-11-10,,,,", "kind 'lease' is unknown"),
    ("r-1,coke,,,h100,gpu_hour,8,2.15,,USD,,2026-11-10,,,,", "kind is empty"),
    ("r-1,,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10,,,,", "org_id is empty"),
    (",coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10,,,,", "contract_id is empty"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,usd,,2026-11-10,,,,", "did you mean USD"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,XYZ,,2026-11-10,,,,", "not an ISO 4217 currency"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,XAU,,2026-11-10,,,,", "no minor unit"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,,,2026-11-10,,,,", "currency is empty"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10,,advance,,", "billing_timing 'advance' is not supported yet"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10,,later,,", "billing_timing 'later' is unknown"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10,,,quarter,", "true_up_period 'quarter' is not supported yet"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10,,,week,", "true_up_period 'week' is unknown"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,100,USD,,2026-11-10,,,,", "amount must be blank for a reservation"),
    ("c-1,coke,commitment,,,,,,1000,USD,,2026-11-16T12:00:00Z,,,,", "term_start 2026-11-16T12:00:00Z is not a UTC midnight"),
    ("c-1,coke,commitment,,,,,,1000,USD,,2026-11-16,2027-01-01T00:30:00Z,,,", "term_end 2027-01-01T00:30:00Z is not a UTC midnight"),
    ("c-1,coke,commitment,,,,,,,USD,,2026-11-16,,,,", "amount is empty"),
    ("c-1,coke,commitment,,h100,,,,1000,USD,,2026-11-16,,,,", "profile must be blank for a commitment"),
    ("c-1,coke,commitment,,,,,2.0,1000,USD,,2026-11-16,,,,", "unit_price must be blank for a commitment"),
    ("c-1,coke,commitment,,,,,,1000,USD,one_time,2026-11-16,,,,", "frequency 'one_time' is not supported yet"),
    ("f-1,coke,fee,,,,,,300,EUR,monthly,2026-11-20T08:00:00Z,,,,", "is not a UTC midnight, but a monthly fee"),
    ("f-1,coke,fee,,,,,,300,EUR,,2026-11-20,,,,", "frequency is empty"),
    ("f-1,coke,fee,,,,,,300,EUR,weekly,2026-11-20,,,,", "frequency 'weekly' is unknown"),
    ("f-1,coke,fee,,,,,,-300,EUR,monthly,2026-11-20,,,,", "amount '-300' is negative"),
    ("f-1,coke,fee,,,,8,,300,EUR,monthly,2026-11-20,,,,", "quantity must be blank for a fee"),
    ("r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10,,,", "15 cells but the header has 16"),
    ("r-1,coke,reservation,,h1\x0000,gpu_hour,8,2.15,,USD,,2026-11-10,,,,", "profile contain(s) a NUL byte"),
])
def test_bad_input_is_refused_naming_the_line(row: str, fragment: str) -> None:
    assert fragment in _one_problem(row)


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    problems = _problems(_csv(
        RESERVATION,
        "r-2,coke,reservation,,,gpu_hour,0,2.15,,usd,,2026-11-10,,,,",
        COMMITMENT,
        "c-9,coke,commitment,,,,,,1000,USD,,2026-11-16T01:00:00Z,,,,",
    ))
    assert sorted({line for line, _ in problems}) == [3, 5]
    assert len([p for p in problems if p[0] == 3]) == 3  # profile, quantity and currency, all at once
    with pytest.raises(ContractsError, match=r"line 3: a reservation needs a profile"):
        parse_contracts(_csv(RESERVATION, "r-2,coke,reservation,,,gpu_hour,8,2.15,,USD,,2026-11-10,,,,"))


def test_a_duplicate_contract_id_is_refused_naming_both_lines() -> None:
    problems = _problems(_csv(RESERVATION, COMMITMENT, RESERVATION.replace("h100", "a100")))
    assert problems == [(4, "contract_id 'r-1' is already used on line 2: contract ids must be unique")]


def test_reservations_of_one_profile_must_share_a_unit() -> None:
    other = "r-2,coke,reservation,compute,h100,instance_hour,1,20,,USD,,2027-01-01,,,,"
    [(line, message)] = _problems(_csv(RESERVATION, COMMITMENT, other))
    assert line == 4 and "reservation 'r-1' (line 2)" in message and "must share a unit" in message
    # another org, or another profile, may use the other unit
    assert len(parse_contracts(_csv(RESERVATION, other.replace("coke", "pepsi"),
                                         other.replace("h100", "a100").replace("r-2", "r-3")))) == 3


def test_header_must_name_exactly_the_columns() -> None:
    [(line, message)] = _problems("contract_id,org_id\nx,y\n")
    assert line == 1 and "missing column(s) kind" in message
    [(line, message)] = _problems(HEADER + ",notes\n")
    assert line == 1 and "unknown column(s) 'notes'" in message
    [(line, message)] = _problems("")
    assert line == 1 and "the file is empty" in message


def test_bytes_must_be_utf8() -> None:
    [(line, message)] = _problems(_csv(RESERVATION).encode("utf-16"))
    assert line == 1 and "not UTF-8" in message


def test_a_file_not_in_utf8_names_the_line_of_its_first_bad_byte() -> None:
    """Excel's "CSV (Comma delimited)" is Windows-1252: the line of the first byte that is not UTF-8, not line 1."""
    latin = _csv(RESERVATION, COMMITMENT.replace("minimum spend", "d\u00e9j\u00e0 vu"), MONTHLY_FEE).encode("cp1252")
    [(line, message)] = _problems(latin)
    assert line == 3 and "byte 0xE9" in message and "save the file as UTF-8" in message


def test_an_unterminated_quote_names_its_line() -> None:
    problems = _problems(_csv(RESERVATION, 'r-2,coke,reservation,,"h100'))
    assert problems[0][0] == 3


# --- values the CSV allows but the database cannot store: refused naming the line, before any SQL -----------

# A reservation uses every name column; each cell below is on line 2 of the file.
NAMED_RESERVATION = {"contract_id": "r-1", "org_id": "coke", "profile_type": "compute", "profile": "h100"}


def _reservation(**cells: str) -> str:
    """``RESERVATION`` with some cells replaced (a name, a number or the description)."""
    row = dict(zip(COLUMNS, RESERVATION.split(","), strict=True)) | cells
    return ",".join(row[name] for name in COLUMNS)


@pytest.mark.parametrize("column", list(NAMED_RESERVATION))
def test_a_name_too_long_for_the_database_is_refused_naming_the_line(column: str) -> None:
    """A 9,000-character contract_id or org_id passed the checks, then PostgreSQL refused the version
    ("index row requires ... bytes") naming no CSV line; a profile type or profile was stored, though the
    price book refuses one that long. 200 characters pass."""
    message = _one_problem(_reservation(**{column: "x" * 9000}))
    assert f"{column} is 9,000 characters long" in message and "at most 200" in message, message
    [contract] = parse_contracts(_csv(_reservation(**{column: "y" * 200})))
    assert getattr(contract, column) == "y" * 200


def test_names_are_counted_in_characters_not_bytes() -> None:
    emoji = "\U0001F680" * 200  # 800 bytes of UTF-8: the database's bound is in bytes, the CSV's in characters
    [contract] = parse_contracts(_csv(_reservation(**{c: emoji for c in NAMED_RESERVATION})))
    assert (contract.contract_id, contract.profile) == (emoji, emoji)
    assert "profile is 201 characters long" in _one_problem(_reservation(profile=emoji + "x"))


def test_a_description_longer_than_its_bound_is_refused_naming_the_line() -> None:
    message = _one_problem(_reservation(description="d" * 1001))
    assert "description is 1,001 characters long" in message and "at most 1,000" in message, message
    [contract] = parse_contracts(_csv(_reservation(description="d" * 1000)))
    assert contract.description == "d" * 1000


@pytest.mark.parametrize(("column", "row"), [
    ("quantity", RESERVATION), ("unit_price", RESERVATION), ("amount", COMMITMENT), ("amount", MONTHLY_FEE),
], ids=["quantity", "unit_price", "commitment amount", "fee amount"])
def test_a_number_with_more_decimals_than_numeric_keeps_is_refused(column: str, row: str) -> None:
    """NUMERIC keeps at most 16,383 digits after the point, trailing zeros included (PostgreSQL refuses
    1.000… with 16,384 of them): the file is refused as written, not rounded."""
    cells = dict(zip(COLUMNS, row.split(","), strict=True))
    for digits in ("1" * 16384, "0" * 16384):
        bad = ",".join((f"1.{digits}" if name == column else cells[name]) for name in COLUMNS)
        message = _one_problem(bad)
        assert f"{column} has 16,384 digits after the decimal point" in message, message
        assert "at most 16,383" in message
    finest = "0." + "0" * 16382 + "1"
    fine = ",".join((finest if name == column else cells[name]) for name in COLUMNS)
    [contract] = parse_contracts(_csv(fine))
    assert getattr(contract, column) == Decimal(finest) and str(getattr(contract, column)) == str(Decimal(finest))


@pytest.mark.parametrize("column", ["quantity", "unit_price"])
def test_a_number_with_more_integer_digits_than_numeric_holds_is_refused(column: str) -> None:
    """131,072 digits before the point at most; the csv module's field limit (131,072 characters) keeps a
    longer cell out unless a program raised it, so raise it here. Leading zeros do not count."""
    limit = csv.field_size_limit(1_000_000)
    try:
        message = _one_problem(_reservation(**{column: "1" + "0" * 131072}))
        assert f"{column} has 131,073 digits before the decimal point" in message and "at most 131,072" in message
        [contract] = parse_contracts(_csv(_reservation(**{column: "00001" + "0" * 131071})))
        assert getattr(contract, column) == 10 ** 131071
    finally:
        csv.field_size_limit(limit)
