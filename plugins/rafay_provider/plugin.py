"""The Airflow plugin of the billing pipeline, registered through the ``airflow.plugins`` entry point.

Loaded by every Airflow process at start-up (scheduler, workers, dag-processor), so it imports nothing
heavy: the Billing view's FastAPI app (``rafay_provider.ui.app``: FastAPI, Jinja2, psycopg) is built
on the first request the api-server passes to it, by :class:`LazyASGIApp`.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

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
