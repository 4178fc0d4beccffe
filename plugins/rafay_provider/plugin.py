"""The Airflow plugin of the billing pipeline, registered through the ``airflow.plugins`` entry point.

Loaded by every Airflow process at start-up (scheduler, workers, dag-processor), so it imports nothing
heavy: the Billing view's FastAPI app (``rafay_provider.ui.app``: FastAPI, Jinja2, psycopg) is built
on the first request the api-server passes to it, by :class:`LazyASGIApp`.

It also registers the extra link "Billing for this window" (:class:`BillingWindowLink`) on the
billing DAGs' tasks, from a run or a task back to the Billing view.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

URL_PREFIX = "/billing"


class LazyASGIApp:
    """An ASGI app that imports and builds the real one (``module:factory``) when first called."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._app: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._app is None:
                module_name, _, factory = self.target.partition(":")
                self._app = getattr(importlib.import_module(module_name), factory)()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self._app if self._app is not None else self._load()
        await app(scope, receive, send)


class BillingWindowLink(BaseOperatorLink):
    """"Billing for this window": the Billing view (inside the Airflow UI) of the window the task's run
    bills, or of the month a close run closes.

    A global link (``global_operator_extra_links``): the billing DAGs' tasks are ``@task`` functions,
    whose operator class every DAG shares, and a global link is computed by the api-server when the UI
    asks, so it is there before the task runs, on every try. Tasks of other DAGs get no link (None:
    the UI shows none)."""

    name = "Billing for this window"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from rafay_provider.ui.window_link import billing_link

        return billing_link(ti_key.dag_id, ti_key.run_id) or ""


class RafayBillingPlugin(AirflowPlugin):
    """The Billing view: a FastAPI app under ``/billing`` and its entry in the UI's navigation."""

    name = "rafay_billing"
    fastapi_apps = [
        {"app": LazyASGIApp("rafay_provider.ui.app:create_app"), "url_prefix": URL_PREFIX, "name": "Billing"},
    ]
    external_views = [
        {
            "name": "Billing",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "billing",
        },
    ]
    global_operator_extra_links = [BillingWindowLink()]
