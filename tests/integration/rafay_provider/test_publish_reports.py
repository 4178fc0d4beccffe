"""publish_reports (the DAG task's step) against a real PostgreSQL: its files are byte for byte what the
in-memory writers make of the fetched rows (the seed-compatible ncp-metrics CSVs, the line items), and
it streams: every row the database hands over is already in its file before the next one is read.

The database's default collation is ICU's root locale (``a < A < Ä < b``), unlike Python's code point
order (``A < a < b < Ä``): the sorted copy, sorted by PostgreSQL, must still be the seed's order.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from rafay_billing import db, reports
from rafay_billing.ledger import rating
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import fetch_line_items, fetch_ncp_metrics_rows, rate_window
from rafay_billing.window import Window
from rafay_devkit.airflow_env import postgres_connection_json
from tests.support.landed_usage import usage_csv

WINDOW = Window(datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 12, tzinfo=UTC))  # two days
RUN_ID = "manual__publish_test"
PRICE_BOOK = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
all,,,,instance_hour,0.10,USD,2026-01-01,
"""
# (org_id, organization): two orgs share a name, so their rows tie on the sort key across orgs.
ORGS = [("o-zur", "Zürich AG"), ("o-low", "acme"), ("o-up", "Acme"), ("o-twin1", "Twin"), ("o-twin2", "Twin"),
        ("o-eq", "=Formula Org"), ("o-fw", "\uff1dFull-width"), ("o-jp", "東京 KK"), ("o-uml", "Ärzte")]
# (profile_type, profile, instance): case, accents (precomposed and combining), digits as text, ties.
RECORDS = [("compute", "vm", "b"), ("compute", "vm", "B"), ("compute", "vm", "a"), ("compute", "Vm", "a"),
           ("service", "svc", "vm-10"), ("service", "svc", "vm-9"), ("compute", "vm", "\u00e9"),
           ("compute", "vm", "e\u0301"), ("compute", "vm", "a"), ("gpu-only", "-g", "@x")]


@pytest.fixture
def icu_dsn(postgres_server: str) -> Iterator[str]:
    """A fresh database whose default collation is ICU's root locale (not code point order)."""
    name = f"billing_icu_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                     "LOCALE_PROVIDER icu ICU_LOCALE 'und'")
    params = conninfo_to_dict(postgres_server)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rows(window: Window, org_seq: int, org_id: str, organization: str) -> list[dict[str, Any]]:
    rows = []
    for seq, (profile_type, profile, instance) in enumerate(RECORDS):
        hours = f"{(org_seq * 10 + seq) / 4:.2f}"
        rows.append({
            "window_start": window.start_iso, "window_end": window.end_iso, "org_id": org_id,
            "organization": organization, "org_seq": org_seq, "record_seq": seq, "profile_type": profile_type,
            "profile": profile, "instance": instance, "instance_id": f"{org_id}-{seq}",
            "instance_key": f"{org_id}-{seq}", "status": ("running", "stopped", "-deleted")[seq % 3],
            "seed_usage": hours, "usage_hours": hours, "gpu_count": None, "invalid_reason": None,
            "record_start": window.start_iso, "record_end": window.end_iso, "source_page": "p.json",
            "source_index": seq,
        })
    return rows


@pytest.fixture
def billed(icu_dsn: str) -> Iterator[psycopg.Connection]:
    """Both days of every org landed (in an order unlike the listing's) and rated by the real rating."""
    with psycopg.connect(icu_dsn, autocommit=True) as conn:
        db.migrate(conn)
        sync_price_book(conn, PRICE_BOOK)
        for day in WINDOW.days():
            for org_seq, (org_id, name) in reversed(list(enumerate(ORGS))):
                load_org_usage(conn, day, org_id, usage_csv(_rows(day, org_seq, org_id, name)), RUN_ID)
        summary = rate_window(conn, WINDOW, RUN_ID)
        assert summary.usage_rows == len(ORGS) * len(RECORDS) * 2 and summary.line_items > 0
        yield conn


@pytest.fixture
def airflow_env(icu_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Connection ``billing_postgres`` and Variable ``billing_data_uri`` (a file:// root), as the task has them."""
    root = tmp_path / "landing"
    root.mkdir()
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_POSTGRES", postgres_connection_json(icu_dsn))
    monkeypatch.setenv("AIRFLOW_VAR_BILLING_DATA_URI", root.as_uri())
    return root


def _publish() -> dict[str, Any]:
    from rafay_provider import pipeline

    return pipeline.publish_reports(WINDOW.to_dict(), {"run_id": RUN_ID})  # type: ignore[arg-type,typeddict-item]


def _stamp(result: dict[str, Any]) -> str:
    return Path(result["files"][0]).name.removeprefix("ncp-metrics-").removesuffix(".csv")


def test_reports_are_byte_identical_to_the_in_memory_writers(
    billed: psycopg.Connection, airflow_env: Path, tmp_path: Path
) -> None:
    from rafay_provider.pipeline import LINE_ITEM_COLUMNS

    result = _publish()
    assert result["ncp_metrics_rows"] == len(ORGS) * len(RECORDS) * 2
    unsorted_path, sorted_path, items_path = (Path(f.removeprefix("file://")) for f in result["files"])

    expected = tmp_path / "expected"
    expected.mkdir()
    seed_rows = fetch_ncp_metrics_rows(billed, WINDOW)
    want_unsorted, want_sorted = reports.write_ncp_metrics_csvs(seed_rows, expected, _stamp(result))
    items = fetch_line_items(billed, WINDOW)
    with (expected / "line-items.csv").open("w", encoding="utf-8", newline="") as handle:
        reports.write_csv(handle, LINE_ITEM_COLUMNS, ([row.get(c) for c in LINE_ITEM_COLUMNS] for row in items))

    assert unsorted_path.read_bytes() == want_unsorted.read_bytes()
    assert sorted_path.read_bytes() == want_sorted.read_bytes()
    assert items_path.read_bytes() == (expected / "line-items.csv").read_bytes()
    assert result["line_items"] == len(items)
    # The orders that differ between the database's collation and Python's are really exercised.
    organizations = [r[0] for r in csv.reader(sorted_path.open(encoding="utf-8", newline=""))][1:]
    assert organizations.index("Acme") < organizations.index("acme") < organizations.index("Ärzte")
    assert billed.execute("SELECT 'acme' < 'Acme'").fetchone() == (True,)  # not so in the database's collation


def test_every_row_is_written_before_the_next_is_read(
    billed: psycopg.Connection, airflow_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows flow from the server-side cursors into the files one by one: none is held back, sorted or
    collected first. Tiny cursor batches so that several round trips happen per file."""
    writers: list[_CountingWriter] = []
    real_writer = reports.csv.writer

    def counting_writer(handle: Any, *args: Any, **kwargs: Any) -> _CountingWriter:
        writers.append(_CountingWriter(real_writer(handle, *args, **kwargs)))
        return writers[-1]

    streams: list[tuple[str, int]] = []
    real_stream = rating._stream

    def lockstep(conn: Any, name: str, window: Window, batch: int = 5000) -> Iterator[dict[str, Any]]:
        streams.append((name, 0))
        for i, row in enumerate(real_stream(conn, name, window, batch=3)):
            if i:  # the previous row of this stream is in the file being written now
                assert writers and writers[-1].rows == i, (
                    f"{name}: row {i + 1} read while the file being written holds "
                    f"{writers[-1].rows if writers else 0} rows (rows are held instead of streamed)")
            streams[-1] = (name, i + 1)
            yield row

    def no_fetch(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("publish_reports fetched rows into a list")

    monkeypatch.setattr(reports.csv, "writer", counting_writer)
    monkeypatch.setattr(rating, "_stream", lockstep)
    monkeypatch.setattr(rating, "_fetch", no_fetch)
    result = _publish()

    rows = len(ORGS) * len(RECORDS) * 2
    assert streams == [("rating/fetch_ncp_metrics_rows.sql", rows), ("reports/ncp_metrics_rows_sorted.sql", rows),
                       ("rating/fetch_line_items.sql", result["line_items"])]
    assert [w.rows for w in writers] == [rows, rows, result["line_items"]]


class _CountingWriter:
    """A csv writer that counts the data rows written (the first row is the header)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._calls = 0

    @property
    def rows(self) -> int:
        return max(0, self._calls - 1)

    def writerow(self, row: Any) -> Any:
        self._calls += 1
        return self._inner.writerow(row)

    def writerows(self, rows: Any) -> None:
        for row in rows:
            self.writerow(row)


def test_the_reports_read_one_snapshot(
    billed: psycopg.Connection, airflow_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-rating committed while the reports stream changes none of them: all three queries run in one
    read-only REPEATABLE READ transaction (else the sorted copy could hold other rows than the unsorted)."""
    from rafay_billing.ledger.load import load_org_usage as load

    real_stream = rating._stream
    changed: list[bool] = []

    def change_midway(conn: Any, name: str, window: Window, batch: int = 5000) -> Iterator[dict[str, Any]]:
        for i, row in enumerate(real_stream(conn, name, window, batch=3)):
            if i == 1 and not changed:  # another session bills org o-up's first day again, with one row more
                day = WINDOW.days()[0]
                rows = _rows(day, 2, "o-up", "Acme")
                rows.append({**rows[0], "record_seq": 99, "instance_id": "extra", "instance_key": "extra"})
                with psycopg.connect(billed.info.dsn, autocommit=True) as other:
                    load(other, day, "o-up", usage_csv(rows), "rerun")
                    rate_window(other, day, "rerun")
                changed.append(True)
            yield row

    monkeypatch.setattr(rating, "_stream", change_midway)
    result = _publish()
    assert changed
    assert result["ncp_metrics_rows"] == len(ORGS) * len(RECORDS) * 2  # the snapshot's rows, not the re-run's
    unsorted_path, sorted_path = (Path(f.removeprefix("file://")) for f in result["files"][:2])
    assert sorted(unsorted_path.read_bytes().splitlines()) == sorted(sorted_path.read_bytes().splitlines())
    assert len(fetch_ncp_metrics_rows(billed, WINDOW)) == len(ORGS) * len(RECORDS) * 2 + 1  # it did commit
