"""docker-compose.yaml's Airflow settings, made native: the values of ``x-airflow-common``'s
environment that a one-machine run can use as they are, with the compose service names in URLs
(``redis``, ``postgres``, ``airflow-apiserver``) replaced by the loopback addresses of the native
services, and each service's secrets backend (connections from a Compose secret mounted at
``/run/secrets/<name>``) pointed at a native file holding the same connections. The Celery topology (:mod:`rafay_devkit.celery_topology`) runs with these, so that it checks
the compose file rather than a parallel invention; tests/unit/deploy/test_compose_native.py fails
when the two drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rafay_devkit.project import dags_folder
from rafay_provider.settings import (
    ALERTS_CONN_ID,
    BILLING_CONN_ID,
    BILLING_OWNER_CONN_ID,
    BILLING_READER_CONN_ID,
    RAFAY_CONN_ID,
)

COMPOSE_FILE = "docker-compose.yaml"

# Taken from the compose file as they are (after interpolation and host mapping). What is not here
# the native run sets itself, on purpose: the billing start date (the compose default would catch up
# a month), the scheduler's health server (it binds every interface) and the UI login file.
TAKEN = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW__CORE__AUTH_MANAGER",
)
# The secrets compose reads from .env; the native run generates them.
SECRETS = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")

# What each Compose secret holds (docker-compose.yaml's comment on ``secrets:``; secrets/*.example.json).
SECRET_CONNECTIONS: dict[str, tuple[str, ...]] = {
    "billing_connections": (RAFAY_CONN_ID, BILLING_CONN_ID, BILLING_OWNER_CONN_ID, BILLING_READER_CONN_ID),
    "billing_reader_connection": (BILLING_READER_CONN_ID,),
    "billing_alerts_connection": (ALERTS_CONN_ID,),
}
SECRETS_MOUNT = "/run/secrets/"

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


class ComposeDriftError(ValueError):
    """docker-compose.yaml says something the native topology cannot mirror; the message says what."""


def compose_file() -> Path:
    """The project's docker-compose.yaml: next to the DAG folder (the checkout's root)."""
    path = dags_folder().parent / COMPOSE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {COMPOSE_FILE} next to {dags_folder()}: run from the project's checkout")
    return path


def load_compose(path: Path | None = None) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((path or compose_file()).read_text(encoding="utf-8"))


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose interpolation for ``$$``, ``${V}``, ``${V:-d}``, ``${V-d}``, ``${V:?m}``, ``${V?m}``."""

    def substitute(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name, op, arg = m["name"], m["op"], m["arg"] or ""
        value = variables.get(name)
        if op in (":-", "-"):
            return (value if value else arg) if op == ":-" else (arg if value is None else value)
        if op in (":?", "?") and (not value if op == ":?" else value is None):
            raise ComposeDriftError(f"{name} is required by {COMPOSE_FILE} ({arg}) and was not given")
        return value or ""

    return _INTERPOLATION.sub(substitute, text)


@dataclass(frozen=True)
class Endpoint:
    """Where a compose service is reached natively: ``netloc`` (``[user:pw@]host:port``) and, for a
    database, the path (``/dbname``) that replaces the compose URL's."""

    netloc: str
    path: str | None = None


def localize_url(url: str, endpoints: Mapping[str, Endpoint]) -> str:
    """``url`` with a compose service host replaced by its native endpoint (scheme, driver, query kept)."""
    parts = urlsplit(url)
    endpoint = endpoints.get(parts.hostname or "")
    if endpoint is None:
        return url
    if endpoint.path is not None:  # a database: the native credentials and name replace compose's
        return urlunsplit((parts.scheme, endpoint.netloc, endpoint.path, parts.query, parts.fragment))
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{endpoint.netloc}" if "@" in parts.netloc else endpoint.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def database_endpoint(sqlalchemy_url: str) -> Endpoint:
    """The :class:`Endpoint` of a SQLAlchemy/libpq URL (``postgresql+psycopg://u:p@h:port/db``)."""
    parts = urlsplit(sqlalchemy_url)
    return Endpoint(parts.netloc, parts.path)


def native_settings(
    compose: Mapping[str, Any], *, secrets: Mapping[str, str], endpoints: Mapping[str, Endpoint]
) -> dict[str, str]:
    """The :data:`TAKEN` settings of ``x-airflow-common`` with ``secrets`` interpolated and every URL
    host that names a compose service mapped through ``endpoints``; raises
    :class:`ComposeDriftError` when the file names a service the native run has no endpoint for."""
    common = (compose.get("x-airflow-common") or {}).get("environment") or {}
    missing = [k for k in TAKEN if k not in common]
    if missing:
        raise ComposeDriftError(f"x-airflow-common.environment in {COMPOSE_FILE} no longer sets {missing}")
    services = set(compose.get("services") or {})
    out: dict[str, str] = {}
    for key in TAKEN:
        value = interpolate(str(common[key]), secrets)
        if "://" in value:
            host = urlsplit(value).hostname or ""
            if host in services and host not in endpoints:
                raise ComposeDriftError(f"{key} points at compose service {host!r}, which the native run lacks")
            value = localize_url(value, endpoints)
        out[key] = value
    _check_mirrorable(out)
    return out


def _check_mirrorable(settings: Mapping[str, str]) -> None:
    """What the native topology runs: CeleryExecutor, a Redis broker, the result backend in the
    metadata database. Compose saying otherwise is drift the native run cannot follow."""
    if settings["AIRFLOW__CORE__EXECUTOR"] != "CeleryExecutor":
        raise ComposeDriftError(f"{COMPOSE_FILE} runs {settings['AIRFLOW__CORE__EXECUTOR']}; the native "
                                "topology (rafay_devkit.celery_topology) runs CeleryExecutor: update both")
    broker = urlsplit(settings["AIRFLOW__CELERY__BROKER_URL"])
    if broker.scheme not in ("redis", "rediss"):
        raise ComposeDriftError(f"{COMPOSE_FILE}'s broker is {broker.scheme}://; the native topology runs Redis")
    backend = urlsplit(settings["AIRFLOW__CELERY__RESULT_BACKEND"])
    metadata = urlsplit(settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    if not backend.scheme.startswith("db+postgresql") or (backend.netloc, backend.path) != (
        metadata.netloc, metadata.path
    ):
        raise ComposeDriftError(f"{COMPOSE_FILE}'s Celery result backend is no longer the metadata database")


def service_command(compose: Mapping[str, Any], service: str) -> list[str]:
    """A service's ``command`` as an argument list (string commands split on whitespace)."""
    command = (compose.get("services") or {}).get(service, {}).get("command")
    if command is None:
        raise ComposeDriftError(f"service {service!r} in {COMPOSE_FILE} has no command")
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def healthcheck_shell(compose: Mapping[str, Any], service: str) -> str:
    """A service's ``CMD-SHELL`` health check as the shell command it runs (``$$`` unescaped)."""
    test = (compose.get("services") or {}).get(service, {}).get("healthcheck", {}).get("test")
    if not (isinstance(test, list) and len(test) == 2 and test[0] == "CMD-SHELL"):
        raise ComposeDriftError(f"service {service!r} in {COMPOSE_FILE} has no CMD-SHELL health check")
    return str(test[1]).replace("$$", "$")


def pool_slots(compose: Mapping[str, Any], pool: str) -> int:
    """The slots ``airflow-init`` gives ``pool`` (``airflow pools set <pool> <slots> ...``)."""
    script = " ".join(service_command(compose, "airflow-init"))
    m = re.search(rf"airflow pools set {re.escape(pool)} (\d+)", script)
    if not m:
        raise ComposeDriftError(f"airflow-init in {COMPOSE_FILE} no longer creates the pool {pool!r}")
    return int(m.group(1))


def secrets_backend_settings(compose: Mapping[str, Any], service: str, files: Mapping[str, Path]) -> dict[str, str]:
    """A service's ``AIRFLOW__SECRETS__BACKEND`` and ``_KWARGS`` with its ``/run/secrets/<name>`` path
    replaced by ``files[name]`` (the native file holding that secret's connections); raises
    :class:`ComposeDriftError` when the service no longer reads its connections from a secret it mounts."""
    spec = (compose.get("services") or {}).get(service) or {}
    env = spec.get("environment") or {}
    mounted = [m if isinstance(m, str) else m.get("source") for m in spec.get("secrets") or []]
    backend, raw = env.get("AIRFLOW__SECRETS__BACKEND"), env.get("AIRFLOW__SECRETS__BACKEND_KWARGS")
    if not backend or not raw or not mounted:
        raise ComposeDriftError(f"service {service!r} in {COMPOSE_FILE} no longer reads its connections through a "
                                "secrets backend from a mounted secret; the native topology mirrors that")
    kwargs = json.loads(raw)
    path = str(kwargs.get("connections_file_path", ""))
    name = path.removeprefix(SECRETS_MOUNT)
    if not path.startswith(SECRETS_MOUNT) or name not in mounted:
        raise ComposeDriftError(f"service {service!r} reads connections from {path!r}, not from a secret it mounts "
                                f"({', '.join(map(str, mounted))})")
    if name not in files:
        raise ComposeDriftError(f"secret {name!r} of {COMPOSE_FILE} has no native file")
    return {"AIRFLOW__SECRETS__BACKEND": str(backend),
            "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({**kwargs, "connections_file_path": str(files[name])})}
