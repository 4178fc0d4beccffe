"""The contracts sync step (issue 22) as the DAG tasks will run it: Variable ``billing_contracts_uri``
(a file:// URI) read with ObjectStoragePath, ``allow_retroactive`` from the run conf, warnings logged."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from rafay_billing import db
from rafay_billing.contracts.source import COLUMNS
from rafay_billing.contracts.sync import fetch_versions
from rafay_devkit.airflow_env import postgres_connection_json
from rafay_provider import contracts_step, settings

HEADER = ",".join(COLUMNS)
R1 = "r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10T14:00:00Z,,,,8 H100"


@pytest.fixture
def contracts_file(billing_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    with psycopg.connect(billing_dsn) as conn:
        db.migrate(conn)
    path = tmp_path / "contracts.csv"
    path.write_text(f"{HEADER}\n{R1}\n", encoding="utf-8")
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_POSTGRES", postgres_connection_json(billing_dsn))
    monkeypatch.setenv("AIRFLOW_VAR_BILLING_CONTRACTS_URI", path.as_uri())
    return path


def _context(**conf: object) -> dict:
    return {"run_id": "manual__contracts", "dag": SimpleNamespace(dag_id="rafay_billing_close"),
            "dag_run": SimpleNamespace(conf=conf), "params": {}}


def _versions(dsn: str) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        return fetch_versions(conn)


def test_the_variable_name() -> None:
    assert settings.CONTRACTS_VARIABLE == "billing_contracts_uri"


def test_sync_from_the_variable_logs_warnings(contracts_file: Path, billing_dsn: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=contracts_step.__name__)
    result = contracts_step.sync_contracts(_context())  # type: ignore[arg-type]
    assert result["source"] == contracts_file.as_uri() and "1 new (r-1)" in result["result"]
    assert [r.levelname for r in caplog.records if "never been listed" in r.message] == ["WARNING"]
    [version] = _versions(billing_dsn)
    assert version["synced_by"] == "airflow:rafay_billing_close/manual__contracts"


def test_a_retroactive_change_fails_the_step_unless_the_conf_allows_it(contracts_file: Path, billing_dsn: str) -> None:
    contracts_step.sync_contracts(_context())  # type: ignore[arg-type]
    with psycopg.connect(billing_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO billing.billing_periods (period_start, period_end, closed_by)"
                     " VALUES ('2026-11-01', '2026-12-01', 'test')")
    contracts_file.write_text(f"{HEADER}\n{R1.replace('2.15', '2.05')}\n", encoding="utf-8")
    with pytest.raises(AirflowFailException, match=r"(?s)rejected, table left unchanged.*'r-1' changes closed month"):
        contracts_step.sync_contracts(_context())  # type: ignore[arg-type]
    assert len(_versions(billing_dsn)) == 1
    result = contracts_step.sync_contracts(_context(allow_retroactive=True))  # type: ignore[arg-type]
    assert result["retroactive"] == {"r-1": ["2026-11"]} and len(_versions(billing_dsn)) == 2


def test_a_bad_file_fails_naming_the_line(contracts_file: Path) -> None:
    contracts_file.write_text(f"{HEADER}\n{R1.replace('USD', 'usd')}\n", encoding="utf-8")
    with pytest.raises(AirflowFailException, match="line 2: currency 'usd'"):
        contracts_step.sync_contracts(_context())  # type: ignore[arg-type]


def test_a_file_not_in_utf8_fails_naming_the_line(contracts_file: Path, billing_dsn: str) -> None:
    """An Excel "CSV (Comma delimited)" save (Windows-1252): the line of the first byte that is not UTF-8."""
    accented = R1.replace("r-1", "r-2").replace("8 H100", "r\u00e9serve")
    contracts_file.write_bytes(f"{HEADER}\n{R1}\n{accented}\n".encode("cp1252"))
    with pytest.raises(AirflowFailException, match=r"(?s)rejected, table left unchanged:.*line 3: the file is not "
                                                   r"UTF-8 text.*save the file as UTF-8"):
        contracts_step.sync_contracts(_context())  # type: ignore[arg-type]
    assert _versions(billing_dsn) == []


def test_unset_variable_uses_the_table_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_VAR_BILLING_CONTRACTS_URI", raising=False)
    assert contracts_step.sync_contracts(_context()) == {"source": None}  # type: ignore[arg-type]


def test_allow_retroactive_must_be_a_boolean() -> None:
    with pytest.raises(AirflowFailException, match="allow_retroactive must be true or false, got 'yes'"):
        contracts_step.sync_contracts(_context(allow_retroactive="yes"))  # type: ignore[arg-type]


def test_the_close_syncs_an_open_period_and_skips_a_closed_one(contracts_file: Path, billing_dsn: str) -> None:
    """Like the price book: the close of a closed month changes nothing, the contracts included."""
    with psycopg.connect(billing_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO billing.billing_periods (period_start, period_end, closed_by)"
                     " VALUES ('2026-09-01', '2026-10-01', 'test')")
    closed = contracts_step.sync_contracts_for_close({"period": "2026-09"}, _context())  # type: ignore[arg-type]
    assert closed == {"closed": True} and _versions(billing_dsn) == []
    synced = contracts_step.sync_contracts_for_close({"period": "2026-11"}, _context())  # type: ignore[arg-type]
    assert synced["source"] == contracts_file.as_uri()
    assert [v["contract_id"] for v in _versions(billing_dsn)] == ["r-1"]
