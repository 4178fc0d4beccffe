"""The plugin every Airflow process loads: it registers the Billing app and nav entry, and importing
it costs nothing heavy (the app is built on the api-server's first request to it)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import airflow.plugins_manager  # what any process that loads plugins has imported already
before = set(sys.modules)
from rafay_provider.plugin import RafayBillingPlugin, LazyASGIApp
new = sorted(set(sys.modules) - before)
p = RafayBillingPlugin
print(json.dumps({
    "new": new,
    "apps": [{k: (type(v).__name__ if k == "app" else v) for k, v in d.items()} for d in p.fastapi_apps],
    "views": p.external_views,
    "built": [d["app"]._app is not None for d in p.fastapi_apps],
    "global_links": [type(l).__name__ + ":" + l.name for l in p.global_operator_extra_links],
}))
"""

HEAVY = ("fastapi", "starlette", "jinja2", "psycopg", "rafay_provider.ui", "rafay_billing", "requests", "pandas")


def _load() -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_plugin_registers_the_billing_app_and_nav_entry_without_heavy_imports() -> None:
    result = _load()
    assert result["apps"] == [{"app": "LazyASGIApp", "url_prefix": "/billing", "name": "Billing"}]
    assert result["views"] == [{"name": "Billing", "href": "/billing/", "destination": "nav", "url_route": "billing"}]
    assert result["built"] == [False]
    assert result["global_links"] == ["BillingWindowLink:Billing for this window"]
    heavy = [m for m in result["new"] if m.split(".")[0] in {h.split(".")[0] for h in HEAVY} and m.startswith(HEAVY)]
    assert heavy == [], f"loading the plugin imported {heavy}"


def test_plugin_is_found_through_the_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from airflow import plugins_manager as m; "
         "print([p.name for p in m._get_plugins()[0]])"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rafay_billing" in proc.stdout


def test_the_lazy_app_builds_the_real_app_once() -> None:
    import asyncio

    from rafay_provider.plugin import LazyASGIApp

    calls: list[str] = []

    async def fake_app(scope, receive, send) -> None:
        calls.append(scope["path"])

    sys.modules["_billing_fake_app"] = type(sys)("_billing_fake_app")
    built: list[int] = []
    sys.modules["_billing_fake_app"].create = lambda: built.append(1) or fake_app  # type: ignore[attr-defined]
    lazy = LazyASGIApp("_billing_fake_app:create")
    for path in ("/", "/api/totals"):
        asyncio.run(lazy({"path": path}, None, None))
    assert built == [1] and calls == ["/", "/api/totals"]


# --- the extra link "Billing for this window" -----------------------------------------------------


def _utc(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text + "T00:00:00+00:00")


def test_the_extra_link_shows_the_runs_window_in_the_billing_view() -> None:
    from rafay_provider.ui.window_link import link_for

    day = ("rafay_usage_billing", _utc("2026-11-10"), _utc("2026-11-11"))
    assert link_for("/", *day, {}) == "/plugin/billing/billing/?day=2026-11-10&days=1"
    assert link_for("/", *day, {"days": 3}) == "/plugin/billing/billing/?day=2026-11-08&days=3"
    assert link_for("/airflow/", *day, {"window_start": "2026-10-01T00:00:00Z", "window_end": "2026-10-05T00:00:00Z"}
                    ) == "/airflow/plugin/billing/billing/?day=2026-10-01&days=4"
    assert link_for("/", "rafay_usage_billing", None, None, {"days": 0}) is None  # the run's resolve task fails
    close = ("rafay_billing_close", _utc("2026-11-01"), _utc("2026-12-01"))
    assert link_for("/", *close, {}) == "/plugin/billing/billing/?day=2026-11-01&days=30&period=2026-11-01"
    assert link_for("/", *close, {"period": "2028-02"}) == "/plugin/billing/billing/?day=2028-02-01&days=29&period=2028-02-01"
    assert link_for("/", "some_other_dag", *day[1:], {}) is None


def test_the_extra_link_names_no_window_for_other_dags() -> None:
    from rafay_provider.plugin import BillingWindowLink

    class Key:
        dag_id, run_id = "some_other_dag", "manual__x"

    assert BillingWindowLink().get_link(object(), ti_key=Key()) == ""
