"""A small Airflow 3 REST API v2 client for the devkit, the end-to-end tests and operators.

JWT from ``POST /auth/token`` (SimpleAuthManager), re-authenticated once on 401; just what the tests
need: DAG runs, task instances (mapped ones with ``rendered_map_index``), task logs, unpause,
trigger, clear, XComs. It starts nothing: :class:`rafay_devkit.local_airflow.LocalAirflow` is the
process manager that hands one out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import requests

FINAL_RUN_STATES = frozenset({"success", "failed"})

T = TypeVar("T")


class LocalAirflowError(RuntimeError):
    """A component failed to start, died, or a wait ran out; the message says which log to read."""


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 1.0,
    what: str,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy; raise :class:`LocalAirflowError` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = on_timeout() if on_timeout else ""
            raise LocalAirflowError(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(interval)


# --- the client ----------------------------------------------------------------------------------


class AirflowClient:
    """Airflow 3 REST API v2 over ``requests``, authenticated with a JWT from ``POST /auth/token``."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username, self._password = username, password
        self.timeout = timeout
        self.session = requests.Session()
        self._token: str | None = None

    # plumbing

    def token(self) -> str:
        """A fresh JWT for the user (SimpleAuthManager: ``POST /auth/token`` with JSON credentials)."""
        response = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self._password},
            timeout=self.timeout,
        )
        if response.status_code not in (200, 201):
            raise LocalAirflowError(f"POST /auth/token: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()["access_token"]

    def request(self, method: str, path: str, *, expect: Iterable[int] = (200,), **kwargs: Any) -> requests.Response:
        """``method`` ``/api/v2`` + ``path``; re-authenticates once on 401; raises on an unexpected status."""
        url = f"{self.base_url}/api/v2{path}"
        for attempt in range(2):
            if self._token is None:
                self._token = self.token()
            headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
            response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            break
        if response.status_code not in set(expect):
            raise LocalAirflowError(f"{method} {path}: HTTP {response.status_code}: {response.text[:1000]}")
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None).json()

    def _paged(self, path: str, key: str, **params: Any) -> list[dict]:
        items: list[dict] = []
        offset = 0
        while True:
            page = self.get(path, limit=100, offset=offset, **params)
            batch = page.get(key) or []
            items += batch
            offset += len(batch)
            if not batch or offset >= page.get("total_entries", 0):
                return items

    # health and DAGs

    def health(self) -> dict:
        """``/api/v2/monitor/health`` (no login needed)."""
        response = self.session.get(f"{self.base_url}/api/v2/monitor/health", timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def dag(self, dag_id: str) -> dict | None:
        response = self.request("GET", f"/dags/{quote(dag_id, safe='')}", expect=(200, 404))
        return response.json() if response.status_code == 200 else None

    def import_errors(self) -> list[dict]:
        return self._paged("/importErrors", "import_errors")

    def set_paused(self, dag_id: str, paused: bool) -> dict:
        return self.request("PATCH", f"/dags/{quote(dag_id, safe='')}", json={"is_paused": paused}).json()

    def unpause(self, dag_id: str) -> dict:
        return self.set_paused(dag_id, False)

    # runs

    def dag_runs(self, dag_id: str, **params: Any) -> list[dict]:
        return self._paged(f"/dags/{quote(dag_id, safe='')}/dagRuns", "dag_runs", **params)

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}")

    def trigger(self, dag_id: str, conf: dict | None = None, run_id: str | None = None, **body: Any) -> dict:
        """A manual run (``logical_date`` None unless given, as the UI's trigger does)."""
        payload: dict[str, Any] = {"logical_date": None, "conf": conf or {}, **body}
        if run_id:
            payload["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{quote(dag_id, safe='')}/dagRuns", json=payload).json()

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float = 600, interval: float = 2.0,
                     states: Iterable[str] = FINAL_RUN_STATES) -> dict:
        """The run once its state is one of ``states``."""
        wanted = set(states)

        def probe() -> dict | None:
            run = self.dag_run(dag_id, run_id)
            return run if run.get("state") in wanted else None

        return wait_for(probe, timeout=timeout, interval=interval, what=f"run {run_id} of {dag_id} to reach {sorted(wanted)}",
                        on_timeout=lambda: "; task states: " + json.dumps(self.task_states(dag_id, run_id)))

    # task instances

    def task_instances(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[dict]:
        """Every task instance of the run, one per map index for mapped tasks (``rendered_map_index`` set)."""
        items = self._paged(
            f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances", "task_instances"
        )
        return [ti for ti in items if task_id is None or ti["task_id"] == task_id]

    def mapped_task_instances(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """``.../taskInstances/{task_id}/listMapped``, ordered by map index."""
        items = self._paged(
            f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{quote(task_id, safe='')}/listMapped",
            "task_instances",
        )
        return sorted(items, key=lambda ti: ti["map_index"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        out = {}
        for ti in self.task_instances(dag_id, run_id):
            key = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
            out[key] = ti.get("state")
        return out

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str, map_index: int = -1) -> Any:
        path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/{quote(task_id, safe='')}"
        if map_index >= 0:
            path += f"/{map_index}"
        return self.request("PATCH", path, json={"new_state": state}).json()

    def clear_task_instances(
        self,
        dag_id: str,
        run_id: str,
        task_ids: list[str | tuple[str, int]],
        *,
        include_downstream: bool = True,
        only_failed: bool = False,
        dry_run: bool = False,
    ) -> list[dict]:
        """``POST /dags/{dag}/clearTaskInstances``: ``task_ids`` items are ``task_id`` or ``(task_id, map_index)``."""
        body = {
            "dry_run": dry_run,
            "dag_run_id": run_id,
            "task_ids": [list(t) if isinstance(t, tuple) else t for t in task_ids],
            "include_downstream": include_downstream,
            "only_failed": only_failed,
            "reset_dag_runs": True,
        }
        result = self.request("POST", f"/dags/{quote(dag_id, safe='')}/clearTaskInstances", json=body).json()
        return result.get("task_instances", [])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """An XCom value (deserialized) of one task instance; None when there is none."""
        response = self.request(
            "GET",
            f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{quote(task_id, safe='')}/xcomEntries/{quote(key, safe='')}",
            params={"map_index": map_index, "deserialize": "true"},
            expect=(200, 404),
        )
        return response.json().get("value") if response.status_code == 200 else None

    # human in the loop (Required Actions)

    def hitl_path(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        return (f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
                f"{quote(task_id, safe='')}/{map_index}/hitlDetails")

    def hitl_detail(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict | None:
        """The approval request of a task (subject, body, options, params, response), or None (none yet)."""
        response = self.request("GET", self.hitl_path(dag_id, run_id, task_id, map_index), expect=(200, 404))
        return response.json() if response.status_code == 200 else None

    def answer_hitl(self, dag_id: str, run_id: str, task_id: str, options: list[str],
                    params_input: dict | None = None, map_index: int = -1) -> dict:
        """Answer a task's approval request as this client's user
        (``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{map_index}/hitlDetails``)."""
        return self.request("PATCH", self.hitl_path(dag_id, run_id, task_id, map_index),
                            json={"chosen_options": options, "params_input": params_input or {}}).json()

    # logs

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The whole log of one try as text: one line per event (``event`` plus any extra fields).

        ``GET .../taskInstances/{task}/logs/{try}?map_index=&full_content=true`` with ``Accept:
        application/json`` answers ``{"content": [{"timestamp", "event", "level", "logger", ...}] | [str],
        "continuation_token"}``; the token is followed until the log is complete.
        """
        path = (
            f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{quote(task_id, safe='')}/logs/{try_number}"
        )
        lines: list[str] = []
        token: str | None = None
        for _ in range(100):
            params: dict[str, Any] = {"map_index": map_index, "full_content": "true"}
            if token:
                params["token"] = token
            body = self.request("GET", path, params=params, headers={"Accept": "application/json"}).json()
            for item in body.get("content") or []:
                lines.append(_log_line(item))
            new_token = body.get("continuation_token")
            if not new_token or new_token == token or not body.get("content"):
                break
            token = new_token
        return "\n".join(lines)


def _log_line(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    event = str(item.get("event", ""))
    extra = {k: v for k, v in item.items() if k not in ("event", "timestamp", "level", "logger")}
    prefix = " ".join(str(item[k]) for k in ("timestamp", "level", "logger") if item.get(k))
    line = f"{prefix} {event}".strip()
    if extra:
        line += " " + json.dumps(extra, default=str, sort_keys=True)
    return line


def iter_task_logs(client: AirflowClient, dag_id: str, run_id: str) -> Iterator[tuple[dict, int, str]]:
    """``(task instance, try number, log text)`` for every try of every task instance of a run."""
    for ti in client.task_instances(dag_id, run_id):
        for try_number in range(1, int(ti.get("try_number") or 0) + 1):
            yield ti, try_number, client.task_log(dag_id, run_id, ti["task_id"], try_number, ti["map_index"])
