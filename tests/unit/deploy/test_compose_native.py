"""The native Celery topology (rafay_devkit.celery_topology) runs docker-compose.yaml's own settings:
executor, broker and result backend URLs, secrets shared by every component, execution API URL,
the worker's command and health check, the extraction pool. These fail when the two drift apart."""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

import pytest
import yaml

from rafay_devkit import compose_settings as cs
from rafay_devkit.celery_topology import CeleryTopology
from rafay_devkit.local_airflow import RAFAY_POOL
from tests.support.paths import REPO

SECRETS = {name: f"generated-{name.lower()}" for name in cs.SECRETS}
ENDPOINTS = {
    "redis": cs.Endpoint("127.0.0.1:16379"),
    "postgres": cs.database_endpoint("postgresql+psycopg://postgres:pw@127.0.0.1:15432/airflow_native"),
    "airflow-apiserver": cs.Endpoint("127.0.0.1:18080"),
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def common(compose) -> dict:
    return compose["x-airflow-common"]["environment"]


def native(compose) -> dict[str, str]:
    return cs.native_settings(compose, secrets=SECRETS, endpoints=ENDPOINTS)


def test_the_compose_file_the_devkit_reads_is_the_repositorys(monkeypatch):
    monkeypatch.chdir(REPO)
    assert cs.compose_file() == REPO / "docker-compose.yaml"


def test_native_settings_are_the_compose_settings_on_loopback(compose, common):
    settings = native(compose)
    assert settings["AIRFLOW__CORE__EXECUTOR"] == common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for key in ("AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"):
        theirs, ours = urlsplit(common[key]), urlsplit(settings[key])
        # Same scheme, credentials form, path (Redis database, /execution/); only the host differs.
        assert (ours.scheme, ours.path, ours.query) == (theirs.scheme, theirs.path, theirs.query), key
        assert ours.hostname == "127.0.0.1" and ENDPOINTS[theirs.hostname].netloc.endswith(f":{ours.port}"), key
        assert ours.username == theirs.username and ours.password == theirs.password, key
    for key in ("AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        theirs, ours = urlsplit(common[key]), urlsplit(settings[key])
        assert ours.scheme == theirs.scheme, key  # db+postgresql, postgresql+psycopg2: compose's drivers
        assert ours.netloc == "postgres:pw@127.0.0.1:15432" and ours.path == "/airflow_native", key
    for key in ("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "AIRFLOW__CORE__LOAD_EXAMPLES",
                "AIRFLOW__CORE__AUTH_MANAGER"):
        assert settings[key] == common[key], key


def test_secrets_are_the_ones_compose_requires_from_env(compose, common):
    settings = native(compose)
    for name in cs.SECRETS:
        assert common[name] == f"${{{name}:?set {name} in .env (see .env.example)}}", name
        assert settings[name] == SECRETS[name]
    with pytest.raises(cs.ComposeDriftError, match="AIRFLOW__API_AUTH__JWT_SECRET is required"):
        cs.native_settings(compose, secrets={k: v for k, v in SECRETS.items() if "JWT" not in k},
                           endpoints=ENDPOINTS)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor", "runs KubernetesExecutor"),
        ("AIRFLOW__CELERY__BROKER_URL", "amqp://guest:guest@rabbitmq:5672//", "rabbitmq"),
        ("AIRFLOW__CELERY__BROKER_URL", "sqs://", "broker is sqs://"),
        ("AIRFLOW__CELERY__RESULT_BACKEND", "redis://:@redis:6379/1", "result backend"),
        ("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "http://airflow-execution:8080/execution/", "airflow-execution"),
    ],
)
def test_drift_the_native_run_cannot_follow_fails(compose, key, value, message):
    drifted = copy.deepcopy(compose)
    drifted["x-airflow-common"]["environment"][key] = value
    for service in ("rabbitmq", "airflow-execution"):
        drifted["services"][service] = {"image": "x"}
    with pytest.raises(cs.ComposeDriftError, match=message):
        cs.native_settings(drifted, secrets=SECRETS, endpoints=ENDPOINTS)


def test_a_setting_removed_from_compose_fails(compose):
    drifted = copy.deepcopy(compose)
    del drifted["x-airflow-common"]["environment"]["AIRFLOW__CELERY__RESULT_BACKEND"]
    with pytest.raises(cs.ComposeDriftError, match="no longer sets"):
        cs.native_settings(drifted, secrets=SECRETS, endpoints=ENDPOINTS)


def test_workers_run_the_compose_worker_command_and_health_check(compose, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    topo = CeleryTopology(tmp_path, {}, "postgresql://u@127.0.0.1:1/x", "bucket", workers=2)
    assert cs.service_command(compose, "airflow-worker") == ["celery", "worker"]
    for worker in topo.worker_list:
        argv = topo.worker_argv(worker)
        assert argv[1:3] == ["celery", "worker"] and argv[argv.index("--celery-hostname") + 1] == worker.node
    # The health check pings celery@$HOSTNAME: the native worker's node name is celery@<its HOSTNAME>.
    check = cs.healthcheck_shell(compose, "airflow-worker")
    assert '-d "celery@${HOSTNAME}"' in check and "inspect ping" in check
    assert len({w.node for w in topo.worker_list}) == 2 and len({w.log_port for w in topo.worker_list}) == 2


def test_the_extraction_pool_has_the_compose_slots(compose):
    assert cs.pool_slots(compose, RAFAY_POOL) == 8
    drifted = copy.deepcopy(compose)
    drifted["services"]["airflow-init"]["command"] = ["bash", "-c", "airflow db migrate"]
    with pytest.raises(cs.ComposeDriftError, match="pool"):
        cs.pool_slots(drifted, RAFAY_POOL)


def test_compose_interpolation():
    assert cs.interpolate("a${X:-d}b$$c${Y-e}", {"X": ""}) == "ad" + "b$ce"
    assert cs.interpolate("${X}", {"X": "v"}) == "v"
    with pytest.raises(cs.ComposeDriftError, match="X is required"):
        cs.interpolate("${X:?set X}", {"X": ""})
