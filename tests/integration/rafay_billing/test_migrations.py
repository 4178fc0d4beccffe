"""Schema migrations against a real PostgreSQL: applied once, idempotent, safe when runs start together."""

from __future__ import annotations

import re
import threading
from datetime import date

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.source.usage import USAGE_COLUMNS

TABLES = {
    "schema_migrations", "price_book", "usage_records", "charge_line_items", "rating_exceptions", "coverage",
    "currencies", "org_registry", "billing_periods", "invoice_counters", "invoices", "invoice_lines",
    "exception_waivers", "audit_log", "price_book_history", "contract_versions", "document_references",
    "deliveries",  # 014: delivery of issued documents to the billing system (issue 24)
    "api_tokens",  # 015: the tenant statements API's per-org tokens (issue 24)
    "extractions",  # 009 (issue 21): every (org, day) extraction with its extraction_seq
    "invoice_draft_sets", "invoice_drafts", "invoice_draft_lines",  # 017: drafts awaiting approval (issue 23)
}
ALL = [m.name for m in db.migrations()]


def _columns(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'billing' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return dict(rows)


def _primary_key(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (f"billing.{table}",),
    ).fetchall()
    return [r[0] for r in rows]


def test_migrate_applies_once_then_is_a_no_op(pg_conn: psycopg.Connection) -> None:
    assert ALL[:2] == ["001_billing_schema.sql", "002_window_statistics.sql"]
    assert db.migrate(pg_conn) == ALL
    assert db.migrate(pg_conn) == []
    assert db.migrate(pg_conn) == []
    recorded = pg_conn.execute("SELECT version, name FROM billing.schema_migrations ORDER BY version").fetchall()
    assert recorded == [(m.version, m.name) for m in db.migrations()]


def test_migration_files_are_idempotent_on_their_own(pg_conn: psycopg.Connection) -> None:
    for _ in range(2):
        for migration in db.migrations():
            pg_conn.execute(migration.text)
    pg_conn.commit()
    assert db.migrate(pg_conn) == ALL  # not recorded by the raw runs, applies cleanly


def test_tables_keys_and_types(pg_conn: psycopg.Connection) -> None:
    db.migrate(pg_conn)
    tables = {r[0] for r in pg_conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'billing' AND table_type = 'BASE TABLE'"
    )}
    assert tables == TABLES
    # profile_type: issue 21 rule 13 (migration 010); charge_level: issue 22 rule 6 (migration 016);
    # covered_by: issue 22 rule 2 (migration 018)
    assert _primary_key(pg_conn, "charge_line_items") == [
        "org_id", "usage_date", "profile_type", "profile", "instance_key", "dimension", "covered_by",
        "charge_level", "charge_class", "correction_seq", "entry",
    ]
    assert _primary_key(pg_conn, "usage_records") == ["org_id", "usage_date", "run_id", "record_seq"]
    assert _primary_key(pg_conn, "rating_exceptions") == ["org_id", "usage_date", "record_seq", "dimension"]
    assert _primary_key(pg_conn, "coverage") == ["org_id", "usage_date"]
    assert _primary_key(pg_conn, "price_book") == ["price_id"]
    assert _primary_key(pg_conn, "deliveries") == ["invoice_id", "endpoint"]
    assert _primary_key(pg_conn, "api_tokens") == ["token_id"]

    usage = _columns(pg_conn, "usage_records")
    assert set(USAGE_COLUMNS) <= set(usage)
    assert {"usage_date", "run_id", "source_dir", "loaded_at"} <= set(usage)
    assert usage["usage_hours"] == "numeric" and usage["gpu_count"] == "integer"
    assert usage["usage_date"] == "date"

    items = _columns(pg_conn, "charge_line_items")
    contract = ("window_start, window_end, org_id, organization, profile_type, profile, instance, instance_id, "
                "usage_hours, pricing_unit, pricing_quantity, unit_price, currency, amount, price_id").split(", ")
    assert set(contract) <= set(items)
    for money in ("usage_hours", "pricing_quantity", "unit_price", "amount", "list_unit_price"):
        assert items[money] == "numeric"
    exceptions = _columns(pg_conn, "rating_exceptions")
    assert set("window_start window_end org_id organization profile instance instance_id reason detail".split()) <= set(
        exceptions
    )
    prices = _columns(pg_conn, "price_book")
    assert list(prices)[:9] == [
        "price_id", "org_id", "profile_type", "profile", "unit", "unit_price", "currency", "effective_from",
        "effective_to",
    ]
    assert prices["unit_price"] == "numeric" and prices["effective_from"] == "timestamp with time zone"
    indexes = {r[0] for r in pg_conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'billing'")}
    assert {"price_book_match_idx", "rating_exceptions_day_reason_idx", "coverage_day_idx"} <= indexes


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("INSERT INTO billing.price_book (price_id, unit, unit_price, currency, effective_from)"
         " VALUES ('p', 'hour', 1, 'USD', '2026-01-01Z')", "unit"),
        ("INSERT INTO billing.price_book (price_id, unit, unit_price, currency, effective_from)"
         " VALUES ('p', 'gpu_hour', 1, 'usd', '2026-01-01Z')", "currency"),
        ("INSERT INTO billing.price_book (price_id, unit, unit_price, currency, effective_from, effective_to)"
         " VALUES ('p', 'gpu_hour', 1, 'USD', '2026-01-01Z', '2026-01-01Z')", "effective_range"),
        ("INSERT INTO billing.rating_exceptions (usage_date, window_start, window_end, org_id, organization,"
         " profile_type, profile, instance, instance_key, record_seq, reason, detail, run_id)"
         " VALUES ('2026-01-01', '2026-01-01Z', '2026-01-02Z', 'o', 'O', 't', 'p', 'i', 'k', 0, 'other', 'd', 'r')",
         "reason"),
    ],
)
def test_check_constraints(pg_conn: psycopg.Connection, statement: str, constraint: str) -> None:
    db.migrate(pg_conn)
    with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
        pg_conn.execute(statement)
    pg_conn.rollback()


def test_concurrent_migrate_is_safe(billing_dsn: str) -> None:
    """Runs starting together: one applies, the others wait on the advisory lock and find nothing to do."""
    workers = 4
    barrier = threading.Barrier(workers)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(billing_dsn) as conn:
                barrier.wait()
                results.append(db.migrate(conn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(results) == [[], [], [], ALL]
    with psycopg.connect(billing_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM billing.schema_migrations").fetchone() == (len(ALL),)


def test_migrate_commits_on_a_non_autocommit_connection(billing_dsn: str) -> None:
    with psycopg.connect(billing_dsn) as conn:  # Airflow's PostgresHook hands out connections like this
        db.migrate(conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with psycopg.connect(billing_dsn) as other:
        assert other.execute("SELECT count(*) FROM billing.schema_migrations").fetchone() == (len(ALL),)


def test_failed_migration_leaves_nothing_behind(pg_conn: psycopg.Connection, tmp_path, monkeypatch) -> None:
    broken = tmp_path / "999_broken.sql"
    broken.write_text("CREATE TABLE billing.half_done (x int);\nSELECT no_such_function();\n")
    real = db.migrations()
    monkeypatch.setattr(db, "migrations", lambda: [*real, db.Migration(999, broken.name, broken)])
    with pytest.raises(psycopg.errors.UndefinedFunction):
        db.migrate(pg_conn)
    pg_conn.rollback()
    assert pg_conn.execute("SELECT to_regclass('billing.price_book')").fetchone() == (None,)
    monkeypatch.setattr(db, "migrations", lambda: real)
    assert db.migrate(pg_conn) == ALL


def test_cli_migrate(billing_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert db.main(["migrate", "--dsn", billing_dsn]) == 0
    assert f"applied {', '.join(ALL)}" in capsys.readouterr().out
    assert db.main(["migrate", "--dsn", billing_dsn]) == 0
    assert "up to date" in capsys.readouterr().out


def test_sql_files() -> None:
    assert "billing.schema_migrations" in db.sql("db/bootstrap.sql")
    for escape in ("../rafay_billing/db.py", "/etc/passwd", "rating/../../db.py"):
        with pytest.raises(ValueError, match="not a relative path"):
            db.sql(escape)
    names = [m.name for m in db.migrations()]
    assert names == sorted(names) and all(re.match(r"^\d{3}_", n) for n in names)
    copy_columns = re.search(r"usage_records \((.*?)\)", db.sql("load/copy_usage.sql"), re.S).group(1)
    assert tuple(c.strip() for c in copy_columns.split(",")) == USAGE_COLUMNS


def test_no_sql_in_python_f_strings() -> None:
    """Statements live in rafay_billing/sql/: the modules that talk to the database only name files."""
    import inspect

    from rafay_billing.ledger import load, price_book, rating
    from rafay_billing.periods import documents

    for module in (db, documents, load, price_book, rating):
        source = inspect.getsource(module)
        for keyword in ("SELECT ", "INSERT ", "DELETE ", "UPDATE ", "COPY "):
            assert f'"{keyword}' not in source and f"f\"{keyword}" not in source, (module.__name__, keyword)


def test_period_of_is_inlined_and_the_same_month_in_every_time_zone(pg_conn: psycopg.Connection) -> None:
    """007: period_of was a STABLE expression behind an IMMUTABLE function, called per row (three times
    per line item in its check constraints); on a plain timestamp it is inlined by the planner."""
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    plan = "\n".join(r[0] for r in pg_conn.execute(
        "EXPLAIN (VERBOSE) SELECT billing.period_of(d) FROM generate_series(1, 3) AS g (n),"
        " LATERAL (SELECT date '2026-11-30' + n AS d) AS x").fetchall())
    assert "date_trunc" in plan and "period_of" not in plan
    for zone in ("UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/St_Johns"):
        pg_conn.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
        got = pg_conn.execute(
            "SELECT billing.period_of(date '2026-11-30'), billing.period_of(date '2026-12-01'),"
            " billing.period_of(date '2024-02-29')").fetchone()
        assert got == (date(2026, 11, 1), date(2026, 12, 1), date(2024, 2, 1)), zone


def test_line_items_by_day_are_indexed_by_day_and_org(pg_conn: psycopg.Connection) -> None:
    """007: parallel rating connections insert a day's items under different (usage_date, org_id) keys."""
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    defs = {r[0]: r[1] for r in pg_conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'charge_line_items'").fetchall()}
    assert "charge_line_items_day_idx" not in defs
    assert defs["charge_line_items_day_org_idx"].endswith("(usage_date, org_id)")
