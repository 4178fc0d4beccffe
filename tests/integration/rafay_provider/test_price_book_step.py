"""The price book step of both DAGs (``pipeline.sync_price_book``) as a task runs it: Variable
``billing_price_book_uri`` (a file:// URI) read with ObjectStoragePath, the CSV's bytes handed to the core."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from rafay_billing import db
from rafay_billing.ledger.price_book import fetch_price_book
from rafay_devkit.airflow_env import postgres_connection_json
from rafay_provider import pipeline

BOOK = ("price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to\n"
        "p1,,,vm,instance_hour,1.50,EUR,2026-01-01,\n"
        "p2,,,vm-large,instance_hour,3.00,EUR,2026-01-01,\n")


@pytest.fixture
def book_file(billing_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    with psycopg.connect(billing_dsn) as conn:
        db.migrate(conn)
    path = tmp_path / "price_book.csv"
    path.write_text(BOOK, encoding="utf-8")
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_POSTGRES", postgres_connection_json(billing_dsn))
    monkeypatch.setenv("AIRFLOW_VAR_BILLING_PRICE_BOOK_URI", path.as_uri())
    return path


def _price_ids(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [row["price_id"] for row in fetch_price_book(conn)]


def test_sync_from_the_variable(book_file: Path, billing_dsn: str) -> None:
    result = pipeline.sync_price_book()
    assert result == {"source": book_file.as_uri(), "result": "2 price rows: 2 new, 0 changed, 0 unchanged, 0 removed"}
    assert _price_ids(billing_dsn) == ["p1", "p2"]


def test_a_file_not_in_utf8_fails_naming_the_line_and_keeps_the_table(book_file: Path, billing_dsn: str) -> None:
    """An Excel "CSV (Comma delimited)" save (Windows-1252) fails like any bad book: the task's message names
    the CSV line and what to do, not a bare UnicodeDecodeError from reading the file."""
    pipeline.sync_price_book()
    book_file.write_bytes((BOOK + "p3,,,vm-caf\u00e9,instance_hour,1.50,EUR,2026-01-01,\n").encode("cp1252"))
    with pytest.raises(AirflowFailException, match=r"(?s)rejected, table left unchanged:.*line 4: the file is not "
                                                   r"UTF-8 text.*save the file as UTF-8"):
        pipeline.sync_price_book()
    assert _price_ids(billing_dsn) == ["p1", "p2"]


def test_unset_variable_uses_the_table_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_VAR_BILLING_PRICE_BOOK_URI", raising=False)
    assert pipeline.sync_price_book() == {"source": None}
