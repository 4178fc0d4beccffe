"""Airflow loads the package's plugin and provider once, from entry points, and nothing heavy with them.

Airflow's plugin manager imports every ``.py`` under the plugins folder as a top-level module; the
provider used to live there, so every Airflow process held two ``RafayHook`` classes and imported
``requests`` at start-up. These tests load plugins in a fresh interpreter the way the scheduler and
the api-server do and look at what that imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rafay_devkit.airflow_env import isolated_airflow_env
from tests.support.paths import DAGS_FOLDER, REPO

CHILD = r"""
import json, sys
from airflow import plugins_manager
from airflow.providers_manager import ProvidersManager

before = set(sys.modules)
plugins_manager.ensure_plugins_loaded()
plugins, errors = plugins_manager._get_plugins()
loaded_by_plugins = sorted(set(sys.modules) - before)

hooks = ProvidersManager().hooks
rafay = hooks["rafay"]
from importlib import import_module
module_name, _, class_name = rafay.hook_class_name.rpartition(".")
registered = getattr(import_module(module_name), class_name)
import rafay_provider.hooks.rafay as hook_module

print(json.dumps({
    "plugins": [p.name for p in plugins],
    "errors": errors,
    "sources": {p.name: str(getattr(p, "source", "") or "") for p in plugins},
    "loaded_by_plugins": loaded_by_plugins,
    "hook_class": rafay.hook_class_name,
    "same_hook_class": registered is hook_module.RafayHook,
    "hook_classes": sorted({f"{m}.RafayHook" for m, mod in list(sys.modules.items())
                            if getattr(mod, "RafayHook", None) is not None
                            and getattr(mod.RafayHook, "__module__", "") == m}),
    "top_level": sorted(m for m in ("__init__", "pipeline", "rafay", "settle", "settings", "close_pipeline",
                                     "hooks", "sensors", "period_ready", "plugin") if m in sys.modules),
}))
"""

HEAVY = ("requests", "psycopg", "pandas", "pyarrow", "jinja2", "s3fs", "rafay_billing.client", "rafay_provider.pipeline")


def _load_plugins(tmp_path: Path) -> dict:
    env = {**os.environ, **isolated_airflow_env(tmp_path / "airflow", DAGS_FOLDER)}
    (tmp_path / "airflow" / "plugins").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_plugin_comes_from_the_entry_point_once_with_one_hook_class_and_nothing_heavy(tmp_path: Path) -> None:
    report = _load_plugins(tmp_path)
    assert report["plugins"].count("rafay_billing") == 1, report["plugins"]
    assert not report["errors"], report["errors"]
    # the entry point's source, not a file of the plugins folder
    assert "rafay-billing" in report["sources"]["rafay_billing"] or "rafay_provider" in report["sources"]["rafay_billing"]
    assert report["same_hook_class"], "the provider's hook class is not rafay_provider.hooks.rafay.RafayHook"
    assert report["hook_classes"] == ["rafay_provider.hooks.rafay.RafayHook"], report["hook_classes"]
    assert report["top_level"] == [], f"provider files imported as top-level modules: {report['top_level']}"
    heavy = [m for m in HEAVY if m in report["loaded_by_plugins"]]
    assert heavy == [], f"loading the plugins imported {heavy}"


def test_no_provider_code_is_left_in_a_plugins_folder() -> None:
    """A plugins/ folder with .py files would be imported a second time as top-level modules."""
    strays = sorted(str(p.relative_to(REPO)) for p in REPO.glob("plugins/**/*.py"))
    assert strays == [], strays
