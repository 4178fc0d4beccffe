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
