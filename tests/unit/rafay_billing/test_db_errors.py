"""Database errors as the commands print them: one line, no password (libpq quotes the DSN it could not
parse), over psycopg's real errors (a malformed DSN fails before any connection is tried)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from rafay_billing import cli
from rafay_billing.contracts.source import COLUMNS
from rafay_billing.db_errors import database_error_line, dsn_passwords

SECRET = "MalPw_Leak4"
MALFORMED = [
    f"billing_writer:{SECRET}@127.0.0.1/billing",  # no scheme: libpq reads key=value and quotes it whole
    f"postgresql://billing_writer:{SECRET}%zz@127.0.0.1/billing",  # a bad percent escape: quoted token
    f"postgresql://billing_writer:{SECRET} x@127.0.0.1/billing",  # a space: quoted
]
UNREACHABLE = f"postgresql://billing_writer:{SECRET}@127.0.0.1:1/billing?connect_timeout=2"


def _error(dsn: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        psycopg.connect(dsn)
    return info.value


@pytest.mark.parametrize("dsn", [*MALFORMED, UNREACHABLE])
def test_the_line_has_no_password_and_one_line(dsn: str) -> None:
    exc = _error(dsn)
    line = database_error_line(exc, dsn)
    assert SECRET not in line and "\n" not in line and line


def test_libpq_does_quote_the_password_of_a_malformed_dsn() -> None:
    """What the masking is for: the raw messages hold the password."""
    assert all(SECRET in str(_error(dsn)) for dsn in MALFORMED)


@pytest.mark.parametrize(("dsn", "passwords"), [
    ("postgresql://u:p%40ss@h/db", ["p%40ss", "p@ss"]),
    ("u:pw@h/db", ["pw"]),
    ("host=h password='a b' user=u", ["a b"]),
    ("host=h password=plain user=u", ["plain"]),
    ("postgresql://u@h:5432/db", []),
    ("host=h user=u", []),
    ("", []),
])
def test_the_passwords_a_dsn_may_hold(dsn: str, passwords: list[str]) -> None:
    assert sorted(dsn_passwords(dsn)) == sorted(passwords)


@pytest.mark.parametrize("command", [
    ["preview", "--period", "2026-11"],
    ["focus-export", "--period", "2026-11", "--out", "/tmp/rafay-test-never-written.csv"],
    ["waive", "--org", "acme", "--day", "2026-11-03", "--profile", "vm", "--instance", "i-1", "--reason",
     "unpriced", "--why", "test"],
    ["accept-shrink", "--org", "acme", "--day", "2026-11-03", "--run", "r", "--reason", "test"],
    ["contracts", "sync", "--file", "CONTRACTS"],
    ["deliveries", "list"],
    ["tenant-token", "list"],
])
@pytest.mark.parametrize("dsn", MALFORMED)
def test_every_database_command_prints_one_line_without_the_password(
    command: list[str], dsn: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    contracts = tmp_path / "contracts.csv"
    contracts.write_text(",".join(COLUMNS) + "\n")
    status = cli.main([*(str(contracts) if arg == "CONTRACTS" else arg for arg in command), "--dsn", dsn])
    out, err = capsys.readouterr()
    assert status == 1, err
    assert SECRET not in out + err and len(err.strip().splitlines()) == 1 and "error" in err
