"""Price book CSV: every validation error names its line; the sync replaces the table atomically."""

from __future__ import annotations

import csv
import random
import re
import string
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.csv_input import parse_timestamp
from rafay_billing.ledger import price_book
from rafay_billing.ledger.price_book import (
    PriceBookError,
    parse_boundary,
    parse_price_book,
    sync_price_book,
)
from tests.support.paths import DEMO_PRICE_BOOK as DEMO

HEADER = "price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to"
GOOD = "\n".join(
    [
        HEADER,
        "all,,,,instance_hour,0.10,USD,2026-01-01,",
        "compute,,compute,,gpu_hour,2.10,USD,2026-01-01,",
        "h100-old,,compute,h100,gpu_hour,2.95,USD,2026-01-01,2026-11-11",
        "h100-new,,compute,h100,gpu_hour,2.75,USD,2026-11-11,",
        "acme-eur,acme,,,instance_hour,3.10,EUR,2026-01-01T00:00:00Z,",
    ]
)


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    return pg_conn


def _table(conn: psycopg.Connection) -> list[dict]:
    return price_book.fetch_price_book(conn)


def _problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(PriceBookError) as info:
        parse_price_book(text)
    return info.value.problems


# --- parsing ---------------------------------------------------------------------------------


def test_good_book_parses_to_exact_values() -> None:
    rows = {r.price_id: r for r in parse_price_book(GOOD)}
    assert len(rows) == 5
    all_ = rows["all"]
    assert (all_.org_id, all_.profile_type, all_.profile) == (None, None, None)
    assert all_.unit_price == Decimal("0.10") and str(all_.unit_price) == "0.10"
    assert all_.effective_from == datetime(2026, 1, 1, tzinfo=UTC) and all_.effective_to is None
    assert rows["h100-old"].effective_to == datetime(2026, 11, 11, tzinfo=UTC)
    assert (rows["acme-eur"].org_id, rows["acme-eur"].currency) == ("acme", "EUR")
    assert [r.specificity for r in rows.values()] == [0, 1, 3, 3, 4]
    assert rows["h100-old"].line == 4


def test_demo_price_book_is_valid() -> None:
    rows = parse_price_book(DEMO.read_text())
    assert {r.specificity for r in rows} >= {1, 2, 3, 4, 6, 7}


def test_bom_bytes_blank_lines_whitespace_and_column_order() -> None:
    shuffled = (
        "\ufeffcurrency, unit_price ,unit,price_id,org_id,profile_type,profile,effective_from,effective_to\r\n"
        "\r\n"
        " USD , 1.5 ,gpu_hour, p1 ,,,, 2026-01-01 ,\r\n"
    )
    [row] = parse_price_book(shuffled.encode("utf-8"))
    assert (row.price_id, row.unit_price, row.currency, row.line) == ("p1", Decimal("1.5"), "USD", 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T06:30:00Z", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        ("2026-11-01T06:30Z", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        ("2026-11-01 06:30:00+00:00", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        ("2026-11-01T06:30:00.250000z", datetime(2026, 11, 1, 6, 30, 0, 250000, tzinfo=UTC)),
    ],
)
def test_timestamps(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text", ["2026-11-10", "2026-11-10T00:00:00Z", "2026-11-10T00:00Z", "2026-11-10 00:00:00+00:00",
             "2026-11-10T00:00:00.000000z"],
)
def test_boundaries_at_midnight_utc(text: str) -> None:
    assert parse_boundary(text) == datetime(2026, 11, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2026-11-10T12:00:00Z", "prices change only at 00:00 UTC"),
        ("2026-11-10T00:00:00.000001Z", "is 00:00:00.000001 UTC"),
        ("2026-12-31T23:00:00Z", "write a day, 2026-12-31 or 2027-01-01"),
        ("2026-11-10T00:00:00+02:00", "is not UTC (it is 2026-11-09T22:00:00Z)"),
        ("2026-11-10T02:00:00+02:00", "is not UTC (it is 2026-11-10T00:00:00Z)"),  # say it in UTC
    ],
)
def test_boundaries_elsewhere_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_boundary(text)


def test_currencies_in_use_are_accepted() -> None:
    codes = ["JPY", "BHD", "IQD", "LAK", "CHF"]
    rows = [f"p{i},o{i},,,instance_hour,1,{code},2026-01-01," for i, code in enumerate(codes)]
    assert [r.currency for r in parse_price_book("\n".join([HEADER, *rows]))] == codes


def _one_row(row: str) -> str:
    return f"{HEADER}\nok,,,,instance_hour,1,USD,2026-01-01,\n{row}\n"


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("p,,,,instance_hour,1e3,USD,2026-01-01,", "unit_price '1e3' is not a plain decimal"),
        ("p,,,,instance_hour,1.5E-2,USD,2026-01-01,", "not a plain decimal"),
        ("p,,,,instance_hour,abc,USD,2026-01-01,", "unit_price 'abc' is not a plain decimal"),
        ('p,,,,instance_hour,"1,000",USD,2026-01-01,', "not a plain decimal"),
        ("p,,,,instance_hour,$2,USD,2026-01-01,", "not a plain decimal"),
        ("p,,,,instance_hour,+2,USD,2026-01-01,", "not a plain decimal"),
        ("p,,,,instance_hour,NaN,USD,2026-01-01,", "not a plain decimal"),
        ("p,,,,instance_hour,-0.5,USD,2026-01-01,", "negative"),
        ("p,,,,instance_hour,,USD,2026-01-01,", "unit_price is empty"),
        ("p,,,,hour,1,USD,2026-01-01,", "unit 'hour' is unknown: use instance_hour, gpu_hour, dimension_hour, instance_month or gpu_month"),
        ("p,,,,,1,USD,2026-01-01,", "unit '' is unknown"),
        ("p,,,,gpu_hour,1,usd,2026-01-01,", "did you mean USD"),
        ("p,,,,gpu_hour,1,US,2026-01-01,", "currency 'US' is not an ISO 4217 code"),
        ("p,,,,gpu_hour,1,USDX,2026-01-01,", "not an ISO 4217 code"),
        ("p,,,,gpu_hour,1,$,2026-01-01,", "not an ISO 4217 code"),
        ("p,,,,gpu_hour,1,USD,,", "effective_from is empty"),
        ("p,,,,gpu_hour,1,USD,01/11/2026,", "effective_from '01/11/2026' is not a date"),
        ("p,,,,gpu_hour,1,USD,2026-13-01,", "not a real date"),
        ("p,,,,gpu_hour,1,USD,2026-11-01T00:00:00,", "has no time zone"),
        ("p,,,,gpu_hour,1,USD,2026-11-01T00:00:00+01:00,", "is not UTC"),
        ("p,,,,gpu_hour,1,USD,2026-11-01T00:00:00+01:00,", "(it is 2026-10-31T23:00:00Z)"),
        ("p,,,,gpu_hour,1,USD,2026-11-10T12:00:00Z,",
         "effective_from '2026-11-10T12:00:00Z' is 12:00:00 UTC, but prices change only at 00:00 UTC: "
         "write a day, 2026-11-10 or 2026-11-11"),
        ("p,,,,gpu_hour,1,USD,2026-11-10T00:00:00.5Z,", "is 00:00:00.500000 UTC, but prices change only at 00:00"),
        ("p,,,,gpu_hour,1,USD,2026-11-10T00:01Z,", "is 00:01:00 UTC"),
        ("p,,,,gpu_hour,1,USD,2026-11-10,2026-11-20T23:59:59Z",
         "effective_to '2026-11-20T23:59:59Z' is 23:59:59 UTC, but prices change only at 00:00 UTC: "
         "write a day, 2026-11-20 or 2026-11-21"),
        ("p,,,,gpu_hour,1,USD,2026-11-10T14:00:00+02:00,", "is not UTC (it is 2026-11-10T12:00:00Z)"),
        ("p,,,,gpu_hour,1,USD,2026-11-10,2026-11-20T02:00:00+02:00", "effective_to '2026-11-20T02:00:00+02:00' is not UTC"),
        ("p,,,,gpu_hour,1,ABC,2026-01-01,", "currency 'ABC' is not an ISO 4217 currency in use"),
        ("p,,,,gpu_hour,1,HRK,2026-01-01,", "currency 'HRK' is not an ISO 4217 currency in use"),
        ("p,,,,gpu_hour,1,XAU,2026-01-01,", "currency 'XAU' (Gold) has no minor unit"),
        ("p,,,,gpu_hour,1,XXX,2026-01-01,", "has no minor unit in ISO 4217"),
        ("p,,,,gpu_hour,1,USD,2026-11-01,2026-11-01", "effective_to '2026-11-01' is not after effective_from"),
        ("p,,,,gpu_hour,1,USD,2026-11-02,2026-11-01", "is not after"),
        ("p,,,,gpu_hour,1,USD,2026-11-01,soon", "effective_to 'soon' is not a date"),
        (",,,,gpu_hour,1,USD,2026-11-01,", "price_id is empty"),
        ("ok,,compute,,gpu_hour,1,USD,2026-11-01,", "price_id 'ok' is already used on line 2"),
        ("p,,,,gpu_hour,1,USD,2026-11-01", "8 cells but the header has 9"),
        ("p,,,,gpu_hour,1,USD,2026-11-01,,extra", "10 cells but the header has 9"),
        ("p,,,,gpu_hour,1,USD,2025-06-01,", "overlaps price 'ok'"),
    ],
)
def test_each_problem_names_line_and_fix(row: str, fragment: str) -> None:
    problems = _problems(_one_row(row))
    assert any(line == 3 and fragment in message for line, message in problems), problems
    with pytest.raises(PriceBookError, match=r"line 3: "):
        parse_price_book(_one_row(row))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("\n\n", "the file is empty"),
        (HEADER + "\n", "has no rows"),
        (HEADER.replace("effective_to", "efective_to") + "\np,,,,gpu_hour,1,USD,2026-11-01,\n",
         "missing column(s) effective_to; unknown column(s) 'efective_to'"),
        (HEADER + ",price_id\n", "repeated column(s) price_id"),
        (b"\xff\xfe" + HEADER.encode("utf-16-le"), "not UTF-8"),
    ],
)
def test_file_level_problems_are_line_1(text: str | bytes, fragment: str) -> None:
    problems = _problems(text)
    assert problems[0][0] == 1 and fragment in problems[0][1], problems


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_a_file_not_in_utf8_names_the_line_of_its_first_bad_byte(newline: str) -> None:
    """Excel's "CSV (Comma delimited)" is Windows-1252: the refusal names the line holding the first byte
    that is not UTF-8 (counted as the CSV reader counts lines), not line 1, and says to save as UTF-8."""
    text = newline.join([
        HEADER,  # 1
        "p1,,,vm,instance_hour,1.50,EUR,2026-01-01,",  # 2
        'p2,,,"vm',  # 3 (a quoted cell over lines 3-4)
        'large",instance_hour,3.00,EUR,2026-01-01,',  # 4
        "p3,,,vm-caf\u00e9,instance_hour,1.50,EUR,2026-01-01,",  # 5: the first byte that is not UTF-8
        "p4,,,vm-cr\u00e8me,instance_hour,1.50,EUR,2026-01-01,",  # 6
    ]) + newline
    [(line, message)] = _problems(text.encode("cp1252"))
    assert line == 5, message
    assert "not UTF-8" in message and "byte 0xE9" in message and "after 'p3,,,vm-caf'" in message
    assert "save the file as UTF-8" in message


def test_all_problems_are_reported_with_their_lines() -> None:
    text = "\n".join(
        [
            HEADER,  # 1
            "a,,,,instance_hour,1e3,USD,2026-01-01,",  # 2
            'b,,"quoted, with comma',  # 3 (multi-line cell spanning lines 3-4)
            'and newline",,gpu_hour,1,EURO,2026-01-01,',  # 4
            "",  # 5 blank
            "c,,,,gpu_hour,2,USD,2026-01-01,2026-03-01",  # 6
            "d,,,,gpu_hour,2,USD,2026-02-01,",  # 7 overlaps c
            "a,,,,gpu_hour,x,USD,2026-01-01,",  # 8 duplicate id + bad price
        ]
    )
    with pytest.raises(PriceBookError) as info:
        parse_price_book(text)
    lines = [line for line, _ in info.value.problems]
    assert lines == [2, 3, 7, 8, 8]
    message = str(info.value)
    assert message.startswith("price book has 5 problems:")
    assert "line 3: currency 'EURO'" in message
    assert "line 7: price 'd' [2026-02-01T00:00:00Z, open) overlaps price 'c'" in message
    assert "(line 6)" in message and "effective_to" in message


def test_overlap_rules() -> None:
    rows = [
        "a,,compute,,gpu_hour,1,USD,2026-01-01,2026-02-01",
        "b,,compute,,gpu_hour,1,USD,2026-02-01,2026-03-01",  # touching a: fine (half-open)
        "c,,compute,,instance_hour,1,USD,2026-03-01,",  # next range, other unit: fine
        "d,acme,compute,,gpu_hour,1,USD,2026-01-01,",  # other key: fine
        "e,,,compute,gpu_hour,1,USD,2026-01-01,",  # profile named 'compute' is another key
    ]
    assert len(parse_price_book("\n".join([HEADER, *rows]))) == 5
    nested = [
        "wide,,compute,,gpu_hour,1,USD,2026-01-01,2026-12-01",
        "inner,,compute,,gpu_hour,1,USD,2026-03-01,2026-04-01",
        "after,,compute,,gpu_hour,1,USD,2026-06-01,2026-07-01",
        "unit,,compute,,instance_hour,1,USD,2026-11-15,",  # a different unit still ties
    ]
    problems = _problems("\n".join([HEADER, *nested]))
    assert [line for line, _ in problems] == [3, 4, 5]
    assert all("overlaps price 'wide'" in message for _, message in problems)


# --- syncing into the table ---------------------------------------------------------------------


def test_sync_inserts_then_is_a_no_op(conn: psycopg.Connection) -> None:
    result = sync_price_book(conn, GOOD)
    assert (result.rows, result.inserted, result.updated, result.deleted, result.unchanged) == (5, 5, 0, 0, 0)
    table = _table(conn)
    assert [r["price_id"] for r in table] == ["acme-eur", "all", "compute", "h100-new", "h100-old"]
    by_id = {r["price_id"]: r for r in table}
    assert str(by_id["all"]["unit_price"]) == "0.10"  # exactly as written, NUMERIC
    assert by_id["all"]["org_id"] is None and by_id["acme-eur"]["currency"] == "EUR"
    assert by_id["h100-old"]["effective_to"] == datetime(2026, 11, 11, tzinfo=UTC)
    again = sync_price_book(conn, GOOD)
    assert (again.inserted, again.updated, again.deleted, again.unchanged) == (0, 0, 0, 5)
    assert _table(conn) == table  # updated_at untouched too
    assert str(again) == "5 price rows: 0 new, 0 changed, 5 unchanged, 0 removed"


def test_sync_replaces_the_table_with_the_csv(conn: psycopg.Connection) -> None:
    sync_price_book(conn, GOOD)
    before = {r["price_id"]: r for r in _table(conn)}
    changed = (
        GOOD.replace("compute,,compute,,gpu_hour,2.10", "compute,,compute,,gpu_hour,2.100")  # same value, new text
        .replace("acme-eur,acme,,,instance_hour,3.10,EUR", "acme-eur,acme,,,instance_hour,3.20,EUR")
        .replace("all,,,,instance_hour,0.10,USD,2026-01-01,\n", "")
        + "\nnew,,service,,instance_hour,0.45,AUD,2026-01-01,"
    )
    result = sync_price_book(conn, changed)
    assert (result.inserted, result.updated, result.deleted, result.unchanged) == (1, 2, 1, 2)
    after = {r["price_id"]: r for r in _table(conn)}
    assert set(after) == {"acme-eur", "compute", "h100-new", "h100-old", "new"}
    assert after["acme-eur"]["unit_price"] == Decimal("3.20")
    assert str(after["compute"]["unit_price"]) == "2.100"
    assert after["acme-eur"]["updated_at"] > before["acme-eur"]["updated_at"]
    assert after["h100-new"]["updated_at"] == before["h100-new"]["updated_at"]


def test_bad_csv_leaves_the_table_exactly_as_it_was(conn: psycopg.Connection) -> None:
    sync_price_book(conn, GOOD)
    before = _table(conn)
    bad = GOOD + "\nbroken,,,,gpu_hour,1e3,USD,2026-01-01,"
    with pytest.raises(PriceBookError, match="line 7: unit_price '1e3'"):
        sync_price_book(conn, bad)
    assert _table(conn) == before
    with pytest.raises(PriceBookError, match="line 1"):
        sync_price_book(conn, HEADER + "\n")  # an empty book would delete every price
    assert _table(conn) == before


def test_sync_refuses_a_file_not_in_utf8_naming_the_line_and_keeps_the_table(conn: psycopg.Connection) -> None:
    sync_price_book(conn, GOOD)
    before = _table(conn)
    latin = (GOOD + "\ncafe,,,vm-caf\u00e9,instance_hour,1,EUR,2026-01-01,\n").encode("cp1252")
    with pytest.raises(PriceBookError, match=r"line 7: the file is not UTF-8 text"):
        sync_price_book(conn, latin)
    assert _table(conn) == before


def test_sync_refuses_non_midnight_and_non_iso_rows_and_keeps_the_table(conn: psycopg.Connection) -> None:
    sync_price_book(conn, GOOD)
    before = _table(conn)
    bad = "\n".join(
        [
            GOOD,  # lines 1-6
            "noon,,service,,instance_hour,1,USD,2026-11-10T12:00:00Z,",  # 7
            "offset,,,h200,gpu_hour,1,USD,2026-11-10,2026-11-20T00:00:00+02:00",  # 8
            "gold,,,b200,gpu_hour,1,XAU,2026-11-10,",  # 9
            "made-up,,,a100,gpu_hour,1,ABC,2026-11-10,",  # 10
        ]
    )
    with pytest.raises(PriceBookError) as info:
        sync_price_book(conn, bad)
    assert [line for line, _ in info.value.problems] == [7, 8, 9, 10]
    message = str(info.value)
    assert "line 7: effective_from '2026-11-10T12:00:00Z' is 12:00:00 UTC, but prices change only at 00:00 UTC" in message
    assert "line 8: effective_to '2026-11-20T00:00:00+02:00' is not UTC (it is 2026-11-19T22:00:00Z)" in message
    assert "line 9: currency 'XAU' (Gold) has no minor unit" in message
    assert "line 10: currency 'ABC' is not an ISO 4217 currency" in message
    assert _table(conn) == before


# --- values the CSV allows but the database cannot store: refused naming the line, before any SQL -----------

FULL_HEADER = HEADER + ",dimension,label_key,label_value"
BASE_CELLS = {"price_id": "p", "org_id": "", "profile_type": "", "profile": "vm", "unit": "instance_hour",
              "unit_price": "1", "currency": "USD", "effective_from": "2026-01-01", "effective_to": "",
              "dimension": "", "label_key": "", "label_value": ""}


def _full_book(**cells: str) -> str:
    """A book whose line 2 is a good row and line 3 ``BASE_CELLS`` with ``cells`` (a dimension or label that
    needs its companion cell gets one)."""
    row = dict(BASE_CELLS, **cells)
    if row["dimension"]:
        row["unit"] = "dimension_hour"
    if row["label_key"] or row["label_value"]:
        row = {"label_key": "Team", "label_value": "ml"} | {k: v for k, v in row.items() if v or "label" not in k}
    return (f"{FULL_HEADER}\nok,,,,instance_hour,1,USD,2026-01-01,,,,\n"
            + ",".join(row[name] for name in FULL_HEADER.split(",")) + "\n")


def _noise(length: int, alphabet: str = string.ascii_letters + string.digits, seed: str = "") -> str:
    """Text that does not compress: PostgreSQL compresses a long index entry before it refuses it."""
    rng = random.Random(f"{length}/{seed}")
    return "".join(rng.choice(alphabet) for _ in range(length))


TEXT_COLUMNS = ["price_id", "org_id", "profile_type", "profile", "dimension", "label_key", "label_value"]


@pytest.mark.parametrize("column", TEXT_COLUMNS)
def test_a_name_too_long_for_the_database_is_refused_naming_the_line(conn: psycopg.Connection, column: str) -> None:
    """A 9,000-character profile passed the checks, then PostgreSQL refused the staging row ("index row
    requires 9032 bytes") naming a COPY line, not the CSV's."""
    sync_price_book(conn, GOOD)
    before = _table(conn)
    with pytest.raises(PriceBookError) as info:
        sync_price_book(conn, _full_book(**{column: _noise(9000)}))
    [(line, message)] = info.value.problems
    assert line == 3 and f"{column} is 9,000 characters long" in message and "at most 200" in message, message
    assert _table(conn) == before


def test_the_name_bound_fits_the_database_in_every_column_at_once(conn: psycopg.Connection) -> None:
    """200 characters of 4 bytes each (the most UTF-8 has) in every name of one row: the indexed ones share
    an index entry (2,704 bytes at most), and it fits."""
    emoji = "".join(chr(c) for c in range(0x1F300, 0x1F3FF))
    longest = {column: _noise(200, emoji, seed=column) for column in TEXT_COLUMNS}
    sync_price_book(conn, _full_book(**longest))
    stored = {r["price_id"]: r for r in _table(conn)}[longest["price_id"]]
    assert {column: stored[column] for column in TEXT_COLUMNS} == longest
    with pytest.raises(PriceBookError, match="line 3: profile is 201 characters long"):
        parse_price_book(_full_book(profile=_noise(201)))


def test_a_unit_price_beyond_numeric_is_refused_naming_the_line(conn: psycopg.Connection) -> None:
    """NUMERIC keeps at most 16,383 digits after the point: 16,384 passed the checks, then the COPY failed
    with NumericValueOutOfRange naming the staging line."""
    sync_price_book(conn, GOOD)
    before = _table(conn)
    with pytest.raises(PriceBookError) as info:
        sync_price_book(conn, _one_row("p,,,vm,instance_hour,0." + "1" * 16384 + ",USD,2026-01-01,"))
    [(line, message)] = info.value.problems
    assert line == 3 and "16,384 digits after the decimal point" in message and "at most 16,383" in message
    assert _table(conn) == before
    finest = "0." + "0" * 16382 + "1"
    sync_price_book(conn, _one_row(f"p,,,vm,instance_hour,{finest},USD,2026-01-01,"))
    assert {r["price_id"]: r for r in _table(conn)}["p"]["unit_price"] == Decimal(finest)


def test_a_unit_price_with_more_integer_digits_than_numeric_holds_is_refused() -> None:
    """131,072 digits before the point at most; the csv module's field limit (131,072 characters) keeps a
    longer cell out unless a program raised it, so raise it here. Leading zeros do not count."""
    limit = csv.field_size_limit(1_000_000)
    try:
        problems = _problems(_one_row("p,,,vm,instance_hour,1" + "0" * 131072 + ",USD,2026-01-01,"))
        assert problems[0][0] == 3 and "131,073 digits before the decimal point" in problems[0][1], problems
        assert "at most 131,072" in problems[0][1]
        [_, row] = parse_price_book(_one_row("p,,,vm,instance_hour,00001" + "0" * 131071 + ",USD,2026-01-01,"))
        assert row.unit_price == 10 ** 131071
    finally:
        csv.field_size_limit(limit)


def test_a_database_failure_mid_sync_rolls_everything_back(conn: psycopg.Connection, monkeypatch) -> None:
    sync_price_book(conn, GOOD)
    before = _table(conn)
    real_sql = price_book.sql

    def failing(name: str) -> str:
        if name == "price_book/upsert_from_stage.sql":  # after the delete of missing rows has run
            return "SELECT 1 / 0"
        return real_sql(name)

    monkeypatch.setattr(price_book, "sql", failing)
    with pytest.raises(psycopg.errors.DivisionByZero):
        sync_price_book(conn, GOOD.replace("all,,,,instance_hour,0.10,USD,2026-01-01,\n", ""))
    monkeypatch.setattr(price_book, "sql", real_sql)
    assert _table(conn) == before


def test_sync_commits_on_a_non_autocommit_connection(billing_dsn: str) -> None:
    with psycopg.connect(billing_dsn) as conn:
        db.migrate(conn)
        sync_price_book(conn, GOOD)
    with psycopg.connect(billing_dsn) as other:
        assert other.execute("SELECT count(*) FROM billing.price_book").fetchone() == (5,)
