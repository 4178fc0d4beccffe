"""Landing usage CSVs with COPY per (org, UTC day): exact values, a retry of the run replaces its rows,
other runs' rows are kept, nothing else touched, bad files refused."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.ledger.load import LoadError, load_org_usage
from rafay_billing.window import Window, WindowError
from tests.support.landed_usage import COLUMNS, W1, W2, usage_csv


def row(window: Window, org_id: str, seq: int, **values: Any) -> dict[str, Any]:
    instance = values.pop("instance", f"vm-{seq}")
    instance_id = values.pop("instance_id", f"id-{org_id}-{seq}")
    base = {
        "window_start": window.start_iso, "window_end": window.end_iso, "org_id": org_id,
        "organization": values.pop("organization", f"Org {org_id}"), "org_seq": 0, "record_seq": seq,
        "profile_type": "compute", "profile": "p1", "instance": instance, "instance_id": instance_id,
        "instance_key": instance_id if instance_id else f"name:{instance}", "status": "running",
        "seed_usage": "1.5", "usage_hours": Decimal("1.5"), "gpu_count": 1, "invalid_reason": None,
        "record_start": window.start_iso, "record_end": window.end_iso,
        "source_page": "usage-p1-page-0000.json", "source_index": seq,
    }
    base.update(values)
    return base


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    return pg_conn


def landed(conn: psycopg.Connection, window: Window | None = None, org_id: str | None = None) -> list[dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "SELECT * FROM billing.usage_records"
            " WHERE (%(ws)s::timestamptz IS NULL OR window_start = %(ws)s) AND (%(org)s::text IS NULL OR org_id = %(org)s)"
            " ORDER BY window_start, org_id, record_seq",
            {"ws": window.start if window else None, "org": org_id},
        )
        return cur.fetchall()


def test_load_round_trips_every_value_exactly(conn: psycopg.Connection) -> None:
    rows = [
        row(W1, "acme", 0, usage_hours=Decimal("0.1"), seed_usage="0.1"),
        row(W1, "acme", 1, usage_hours=Decimal("1234567.123456789012345"), gpu_count=8),
        row(W1, "acme", 2, usage_hours=None, gpu_count=None, invalid_reason="negative usage_hours: -2",
            seed_usage="-2"),
        row(W1, "acme", 3, usage_hours=Decimal("0"), instance="", instance_id=None, status="", seed_usage="0"),
        row(W1, "acme", 4, usage_hours=Decimal("24.000000"), gpu_count=0),
    ]
    assert load_org_usage(conn, W1, "acme", usage_csv(rows), "run-1") == 5
    got = landed(conn)
    assert [r["usage_hours"] for r in got] == [r["usage_hours"] for r in rows]
    assert str(got[4]["usage_hours"]) == "24.000000"  # NUMERIC keeps the scale, no float anywhere
    assert [r["gpu_count"] for r in got] == [1, 8, None, 1, 0]
    assert got[2]["invalid_reason"] == "negative usage_hours: -2"
    assert (got[3]["instance"], got[3]["instance_id"], got[3]["status"], got[3]["instance_key"]) == ("", None, "", "name:")
    assert got[0]["window_start"] == W1.start and got[0]["window_end"] == W1.end
    assert {r["run_id"] for r in got} == {"run-1"}
    for landed_row, original in zip(got, rows, strict=True):
        for column in COLUMNS[2:]:
            if column not in ("usage_hours",):
                assert landed_row[column] == original[column], column


@pytest.mark.parametrize(
    "name",
    [
        'Acme "Quoted", Inc.',
        "=HYPERLINK(\"http://x\")",
        "+1 dial, -1 @home",
        "Zürich 東京 🚀",
        "multi\nline\r\nname",
        "../../etc/passwd",
        "trailing space ",
        "\\N",
        "",
    ],
)
def test_awkward_names_round_trip(conn: psycopg.Connection, name: str) -> None:
    rows = [row(W1, "org/1", 0, organization=name, profile=name or "p", instance=name, instance_id=None,
                status=name, profile_type=name, seed_usage=name)]
    assert load_org_usage(conn, W1, "org/1", usage_csv(rows), "r") == 1
    [got] = landed(conn)
    assert (got["organization"], got["profile"], got["instance"], got["status"], got["profile_type"],
            got["seed_usage"]) == (name, name or "p", name, name, name, name)
    assert got["instance_key"] == f"name:{name}"


def test_reload_replaces_only_that_org_day_and_run(conn: psycopg.Connection) -> None:
    load_org_usage(conn, W1, "acme", usage_csv([row(W1, "acme", i) for i in range(3)]), "run-1")
    load_org_usage(conn, W1, "beta", usage_csv([row(W1, "beta", i) for i in range(2)]), "run-1")
    load_org_usage(conn, W2, "acme", usage_csv([row(W2, "acme", i) for i in range(4)]), "run-1")
    before_beta, before_w2 = landed(conn, W1, "beta"), landed(conn, W2, "acme")

    # a retry of the same run replaces its rows for that (org, day)
    again = [row(W1, "acme", 0, usage_hours=Decimal("9.75"))]
    assert load_org_usage(conn, W1, "acme", usage_csv(again), "run-1") == 1
    got = landed(conn, W1, "acme")
    assert [(r["record_seq"], r["usage_hours"], r["run_id"]) for r in got] == [(0, Decimal("9.75"), "run-1")]
    assert landed(conn, W1, "beta") == before_beta
    assert landed(conn, W2, "acme") == before_w2

    # another run lands its own copy beside it (usage is kept per run, for audit) ...
    assert load_org_usage(conn, W1, "acme", usage_csv(again), "run-2") == 1
    assert sorted(r["run_id"] for r in landed(conn, W1, "acme")) == ["run-1", "run-2"]
    # ... and the same file twice in that run gives the same rows, not twice the rows
    load_org_usage(conn, W1, "acme", usage_csv(again), "run-2")
    assert len(landed(conn, W1, "acme")) == 2

    # an (org, day) with no usage in a retry: that run's rows for it go, the other run's stay
    assert load_org_usage(conn, W1, "beta", usage_csv([]), "run-1") == 0
    assert landed(conn, W1, "beta") == []


def test_rows_know_their_day_run_and_raw_page(conn: psycopg.Connection) -> None:
    rows = [row(W1, "acme", i, source_page=f"usage-p1-page-000{i}.json", source_index=7 - i) for i in range(2)]
    load_org_usage(conn, W1, "acme", usage_csv(rows), "run-9", source_dir="file:///land/raw/x/org=acme")
    got = landed(conn, W1, "acme")
    assert [(r["usage_date"], r["run_id"], r["source_dir"], r["source_page"], r["source_index"]) for r in got] == [
        (W1.start.date(), "run-9", "file:///land/raw/x/org=acme", "usage-p1-page-0000.json", 7),
        (W1.start.date(), "run-9", "file:///land/raw/x/org=acme", "usage-p1-page-0001.json", 6),
    ]


def test_only_one_whole_utc_day_is_loaded(conn: psycopg.Connection) -> None:
    two_days = Window(W1.start, W2.end)
    with pytest.raises(WindowError, match="not one whole UTC day"):
        load_org_usage(conn, two_days, "acme", usage_csv([row(W1, "acme", 0)]), "r")
    assert landed(conn) == []


def test_accepts_binary_and_text_files_and_bytes(conn: psycopg.Connection, tmp_path: Path) -> None:
    rows = [row(W1, "acme", i, organization="Zürich, \"AG\"") for i in range(5)]
    path = tmp_path / "usage.csv"
    path.write_text(usage_csv(rows), encoding="utf-8", newline="")
    with path.open("rb") as handle:
        assert load_org_usage(conn, W1, "acme", handle, "bin") == 5
    with path.open("r", encoding="utf-8", newline="") as handle:
        assert load_org_usage(conn, W1, "acme", handle, "text") == 5
    assert load_org_usage(conn, W1, "acme", path.read_bytes(), "bytes") == 5
    assert {r["organization"] for r in landed(conn)} == {"Zürich, \"AG\""}
    assert sorted(r["run_id"] for r in landed(conn)) == ["bin"] * 5 + ["bytes"] * 5 + ["text"] * 5


class _ChunkSpy(io.BytesIO):
    """Records every read size: the loader must stream in chunks, never read() the whole file."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sizes: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.sizes.append(-1 if size is None else size)
        return super().read(size)


def test_streams_the_file_in_chunks(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    from rafay_billing.ledger import load

    monkeypatch.setattr(load, "CHUNK_SIZE", 4096)
    rows = [row(W1, "acme", i) for i in range(2000)]
    spy = _ChunkSpy(usage_csv(rows).encode())
    assert load_org_usage(conn, W1, "acme", spy, "r") == 2000
    assert spy.sizes and all(0 < size <= 4096 for size in spy.sizes)
    assert len(spy.sizes) > 10


def test_commits_on_a_non_autocommit_connection(billing_dsn: str) -> None:
    with psycopg.connect(billing_dsn) as conn:  # like PostgresHook's connections
        db.migrate(conn)
        load_org_usage(conn, W1, "acme", usage_csv([row(W1, "acme", 0)]), "r")
    with psycopg.connect(billing_dsn) as other:
        assert other.execute("SELECT count(*) FROM billing.usage_records").fetchone() == (1,)


@pytest.mark.parametrize(
    ("make_text", "message"),
    [
        (lambda: "", "has header []"),
        (lambda: usage_csv([row(W1, "acme", 0)]).replace("usage_hours", "hours", 1), "expected window_start"),
        (lambda: usage_csv([row(W1, "other", 0)]), "1 of 1 rows belong to another organization"),
        (lambda: usage_csv([row(W1, "acme", 0), row(W1, "other", 1)]), "1 of 2 rows belong to another"),
        (lambda: usage_csv([row(W1, "acme", 0), row(W2, "acme", 1)]), "holds rows of another day"),
        (lambda: usage_csv([row(W1, "acme", 0), row(W1, "acme", 0)]), "repeats a record"),
        (lambda: usage_csv([row(W1, "acme", 0, usage_hours="1.5h")]), 'column usage_hours: "1.5h"'),
        (lambda: usage_csv([row(W1, "acme", 0, gpu_count="eight")]), "column gpu_count"),
        (lambda: usage_csv([row(W1, "acme", 0, record_seq="")]), "record_seq"),
    ],
)
def test_bad_files_change_nothing(conn: psycopg.Connection, make_text, message: str) -> None:
    load_org_usage(conn, W1, "acme", usage_csv([row(W1, "acme", i) for i in range(3)]), "good")
    load_org_usage(conn, W1, "other", usage_csv([row(W1, "other", 0)]), "good")
    before = landed(conn)
    with pytest.raises(LoadError) as info:
        load_org_usage(conn, W1, "acme", make_text(), "bad")
    assert message in str(info.value)
    assert landed(conn) == before


def test_concurrent_loads_of_one_org_take_turns(billing_dsn: str) -> None:
    import threading

    with psycopg.connect(billing_dsn) as conn:
        db.migrate(conn)
    texts = [usage_csv([row(W1, "acme", i, usage_hours=Decimal(n)) for i in range(200)]) for n in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(texts))

    def run(text: str) -> None:
        try:
            with psycopg.connect(billing_dsn) as c:
                barrier.wait()
                load_org_usage(c, W1, "acme", text, "r")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with psycopg.connect(billing_dsn) as c:
        counts = c.execute("SELECT count(*), count(DISTINCT usage_hours) FROM billing.usage_records").fetchone()
    assert counts == (200, 1)  # exactly one load's rows, never a mix
