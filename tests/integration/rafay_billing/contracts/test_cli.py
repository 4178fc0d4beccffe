"""``rafay-billing contracts sync`` (issue 22): what changed and warnings on success; exit 1 with the
line-numbered message on a bad file or a refused retroactive change, the table left as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from rafay_billing import cli, db
from rafay_billing.contracts.source import COLUMNS
from rafay_billing.contracts.sync import fetch_versions

HEADER = ",".join(COLUMNS)
R1 = "r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10T14:00:00Z,,,,8 H100"


@pytest.fixture
def dsn(billing_dsn: str) -> str:
    with psycopg.connect(billing_dsn) as conn:
        db.migrate(conn)
    return billing_dsn


def _file(tmp_path: Path, *rows: str) -> str:
    path = tmp_path / "contracts.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return str(path)


def _versions(dsn: str) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        return fetch_versions(conn)


def test_sync_prints_what_changed_and_warnings(dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["contracts", "sync", "--dsn", dsn, "--file", _file(tmp_path, R1), "--by", "ops"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "1 contracts: 1 new (r-1), 0 changed, 0 unchanged"
    assert "warning: org 'coke' (contract(s) r-1) has never been listed" in err
    assert [(v["contract_id"], v["version"], v["synced_by"]) for v in _versions(dsn)] == [("r-1", 1, "ops")]


def test_a_bad_file_exits_1_naming_the_line(dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _file(tmp_path, R1, R1.replace("r-1", "r-2").replace("gpu_hour", "hour"))
    assert cli.main(["contracts", "sync", "--dsn", dsn, "--file", path]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "refused, billing.contracts unchanged" in err
    assert "line 3: unit 'hour' is unknown: use instance_hour or gpu_hour" in err
    assert _versions(dsn) == []


def test_a_retroactive_change_needs_allow_retroactive(dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["contracts", "sync", "--dsn", dsn, "--file", _file(tmp_path, R1)]) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO billing.billing_periods (period_start, period_end, closed_by)"
                     " VALUES ('2026-11-01', '2026-12-01', 'test')")
    changed = _file(tmp_path, R1.replace("2.15", "2.05"))
    capsys.readouterr()
    assert cli.main(["contracts", "sync", "--dsn", dsn, "--file", changed]) == 1
    assert "contract 'r-1' changes closed month(s) 2026-11" in capsys.readouterr().err
    assert len(_versions(dsn)) == 1
    assert cli.main(["contracts", "sync", "--dsn", dsn, "--file", changed, "--allow-retroactive"]) == 0
    assert "retroactive changes of closed months accepted (audited): r-1 2026-11" in capsys.readouterr().out
    assert len(_versions(dsn)) == 2


def test_billing_start_as_the_dags_have_it(dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A closed month before --billing-start is not protected (the DAGs pass billing_start_date the same way)."""
    assert cli.main(["contracts", "sync", "--dsn", dsn, "--file", _file(tmp_path, R1)]) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO billing.billing_periods (period_start, period_end, closed_by)"
                     " VALUES ('2026-11-01', '2026-12-01', 'test')")
    changed = _file(tmp_path, R1.replace("2.15", "2.05"))
    capsys.readouterr()
    assert cli.main(["contracts", "sync", "--dsn", dsn, "--file", changed, "--billing-start", "2026-12-01"]) == 0
    assert "retroactive" not in capsys.readouterr().out
    assert cli.main(["contracts", "sync", "--dsn", dsn, "--file", changed, "--billing-start", "12/2026"]) == 2
    assert "--billing-start must be a UTC day YYYY-MM-DD" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BILLING_DATABASE_URL", raising=False)
    assert cli.main(["contracts", "sync", "--file", _file(tmp_path, R1)]) == 2
    assert "no database: pass --dsn" in capsys.readouterr().err
    assert cli.main(["contracts", "sync", "--dsn", "postgresql://x", "--file", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["contracts"]) == 2


def test_console_script_reads_standard_input(dsn: str) -> None:
    script = Path(sys.executable).with_name("rafay-billing")
    proc = subprocess.run([str(script), "contracts", "sync", "--dsn", dsn, "--file", "-"],
                          input=f"{HEADER}\n{R1}\n", capture_output=True, text=True, timeout=60,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert "1 new (r-1)" in proc.stdout
