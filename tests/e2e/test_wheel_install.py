"""The built wheel works outside the checkout: SQL and templates are package data, nothing is computed
from the repo's layout, and the core needs none of the Airflow or test dependencies.

Builds the wheel from a copy of the sources, installs it with its runtime dependencies (pinned by
requirements.txt) into a fresh virtualenv in a temporary directory, and from there migrates a real
PostgreSQL and runs ``rafay-billing metrics`` against the simulator over HTTP.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from rafay_billing import cli
from rafay_billing.db import migrations
from tests.support.paths import REPO

START, END = "2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z"


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    sources = root / "sources"
    sources.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, sources / name)
    for tree in ("include", "plugins"):
        shutil.copytree(REPO / tree, sources / tree, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(root / "dist"),
          str(sources)])
    (wheel,) = (root / "dist").glob("rafay_billing-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "-c", str(REPO / "requirements.txt"), str(wheel)])
    return venv


def test_the_wheel_carries_the_sql_and_the_templates_and_no_airflow(wheel_venv: Path, tmp_path: Path) -> None:
    probe = _run(
        [str(wheel_venv / "bin" / "python"), "-c",
         "import importlib.util, rafay_billing, rafay_billing.db as db, rafay_billing.periods.documents as d;"
         "print(rafay_billing.__file__); print(len(db.migrations()));"
         "print(d._templates().get_template(d.INVOICE_TEMPLATE).filename);"
         "print(importlib.util.find_spec('airflow') is None, importlib.util.find_spec('pytest') is None)"],
        cwd=tmp_path,
    )
    module_file, count, template, no_airflow_no_pytest = probe.stdout.split("\n")[:4]
    assert module_file.startswith(str(wheel_venv)), f"rafay_billing imported from {module_file}, not the wheel"
    assert int(count) == len(migrations())
    assert template.startswith(str(wheel_venv))
    assert no_airflow_no_pytest == "True True", "the core's runtime dependencies pulled in Airflow or test tools"


def test_migrate_and_metrics_from_the_wheel_outside_the_repo(
    wheel_venv: Path, tmp_path: Path, billing_dsn: str, rafay_sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = wheel_venv / "bin"
    migrated = _run([str(bin_dir / "python"), "-m", "rafay_billing.db", "migrate", "--dsn", billing_dsn],
                    cwd=tmp_path)
    assert "applied" in migrated.stdout
    with psycopg.connect(billing_dsn) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM billing.schema_migrations ORDER BY version")]
    assert versions == [m.version for m in migrations()]

    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "RAFAY_CONSOLE_URL": rafay_sim.url,
           "RAFAY_DEFAULT_API_KEY": rafay_sim.api_key, "HOME": str(tmp_path)}
    out = tmp_path / "from-wheel"
    _run([str(bin_dir / "rafay-billing"), "metrics", "--start", START, "--end", END, "--out", str(out)],
         cwd=tmp_path, env=env)

    # the same command from the checkout, for the same window: the same rows
    monkeypatch.setenv("RAFAY_CONSOLE_URL", rafay_sim.url)
    monkeypatch.setenv("RAFAY_DEFAULT_API_KEY", rafay_sim.api_key)
    reference = tmp_path / "from-checkout"
    assert cli.main(["metrics", "--start", START, "--end", END, "--out", str(reference)]) == 0
    for prefix in ("ncp-metrics-sorted-", "ncp-metrics-"):
        (got,) = [p for p in out.iterdir() if p.name.startswith(prefix) and ("sorted" in p.name) == ("sorted" in prefix)]
        (want,) = [p for p in reference.iterdir()
                   if p.name.startswith(prefix) and ("sorted" in p.name) == ("sorted" in prefix)]
        rows = list(csv.reader(got.open(encoding="utf-8")))
        assert len(rows) > 1 and rows == list(csv.reader(want.open(encoding="utf-8")))
