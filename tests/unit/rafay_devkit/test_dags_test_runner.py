"""The dags-test runner narrows only what no client uses: the newest API version's OpenAPI document is
the one Airflow's full build serves, and a narrowing that fails falls back to the full build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rafay_devkit import dags_test_runner
from rafay_devkit.airflow_env import isolated_airflow_env

# Prints the OpenAPI document of the version the Task SDK speaks, as the in-process app serves it.
OPENAPI_SCRIPT = """
import json, sys
from fastapi.openapi.utils import get_openapi
from airflow.api_fastapi.execution_api import app as execution_app
from airflow.sdk.api.datamodels._generated import API_VERSION
from rafay_devkit import dags_test_runner

build = execution_app.create_task_execution_api_app
if sys.argv[1] == "narrowed":
    build = dags_test_runner._build_for_newest_version(build)
app = build()
app._cadwyn_initialize()
routes = app.router.versioned_routers
print(json.dumps({"versions": sorted(map(str, routes)),
                  "openapi": get_openapi(title="t", version=API_VERSION, routes=routes[API_VERSION].routes)}))
"""


def _served(tmp_path: Path, how: str) -> tuple[dict, str]:
    env = isolated_airflow_env(tmp_path / how)
    proc = subprocess.run([sys.executable, "-c", OPENAPI_SCRIPT, how], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_the_narrowed_api_serves_the_newest_version_exactly_as_the_full_build(tmp_path: Path) -> None:
    full, _ = _served(tmp_path, "full")
    narrowed, stderr = _served(tmp_path, "narrowed")
    assert "building every Execution API version" not in stderr  # the narrowing applied, no fallback
    assert len(full["versions"]) > 1
    assert narrowed["versions"] == [max(full["versions"])]
    assert narrowed["openapi"] == full["openapi"]
    assert full["openapi"]["paths"]  # not two empty documents


def test_a_narrowing_that_fails_says_so_and_builds_as_airflow_does(monkeypatch, capsys) -> None:
    def moved() -> str:
        raise AttributeError("module 'versions' has no attribute 'bundle'")

    monkeypatch.setattr(dags_test_runner, "newest_version_only", moved)
    built = dags_test_runner._build_for_newest_version(lambda *a, **k: ("app", a, k))("x", lifespan=1)
    assert built == ("app", ("x",), {"lifespan": 1})
    assert "building every Execution API version" in capsys.readouterr().err


def test_other_commands_go_to_airflow_untouched(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rafay_devkit.dags_test_runner", "version"],
                          env=isolated_airflow_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith("3.")
