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

HEAVY = ("requests", "psycopg", "pandas", "pyarrow", "jinja2", "s3fs", "rafay_billing.source.client", "rafay_provider.pipeline")


def _load_plugins(tmp_path: Path, plugins_folder: Path | None = None) -> dict:
    env = {**os.environ, **isolated_airflow_env(tmp_path / "airflow", DAGS_FOLDER)}
    (tmp_path / "airflow" / "plugins").mkdir(parents=True)
    if plugins_folder is not None:
        env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(plugins_folder)
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


def test_the_repos_plugins_folder_as_plugins_folder_loads_the_plugin_once(tmp_path: Path) -> None:
    """Astro, Composer and the local stack point plugins_folder at plugins/: .airflowignore keeps the scan out."""
    report = _load_plugins(tmp_path, REPO / "plugins")
    assert report["plugins"].count("rafay_billing") == 1, report["plugins"]
    assert report["plugins"] == ["rafay_billing"], report["plugins"]
    assert not report["errors"], report["errors"]
    assert report["hook_classes"] == ["rafay_provider.hooks.rafay.RafayHook"], report["hook_classes"]
    assert report["top_level"] == [], f"provider files imported as top-level modules: {report['top_level']}"


def test_airflowignore_covers_every_python_file_of_the_plugins_folder() -> None:
    """Whatever the ignore syntax, Airflow's own walk of plugins/ finds no .py file to import."""
    from airflow._shared.module_loading import find_path_from_directory

    assert any(REPO.glob("plugins/rafay_provider/**/*.py")), "the provider lives under plugins/"
    for syntax in ("glob", "regexp"):
        found = sorted(p for p in find_path_from_directory(str(REPO / "plugins"), ".airflowignore", syntax)
                       if p.endswith(".py"))
        assert found == [], f"{syntax}: {found}"
