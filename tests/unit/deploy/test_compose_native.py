"""The native Celery topology (rafay_devkit.celery_topology) runs docker-compose.yaml's own settings:
executor, broker and result backend URLs, secrets shared by every component, execution API URL,
the worker's command and health check, the extraction pool. These fail when the two drift apart."""

from __future__ import annotations

import copy
import json
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


# --- connections from Compose secrets (issue 23, part 4) ------------------------------------------


def test_native_services_read_connections_from_files_of_the_compose_secrets(compose, tmp_path):
    from rafay_devkit.airflow_env import SECRETS_BACKEND

    files = {name: tmp_path / f"{name}.json" for name in compose["secrets"]}
    assert set(files) == set(cs.SECRET_CONNECTIONS)
    for service, secret in (("airflow-worker", "billing_connections"), ("airflow-cli", "billing_connections"),
                            ("airflow-apiserver", "billing_reader_connection")):
        settings = cs.secrets_backend_settings(compose, service, files)
        assert settings["AIRFLOW__SECRETS__BACKEND"] == SECRETS_BACKEND == (
            compose["services"][service]["environment"]["AIRFLOW__SECRETS__BACKEND"])
        assert json.loads(settings["AIRFLOW__SECRETS__BACKEND_KWARGS"]) == {"connections_file_path": str(files[secret])}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("secrets"), "no longer reads its connections"),
        (lambda s: s["environment"].pop("AIRFLOW__SECRETS__BACKEND"), "no longer reads its connections"),
        (lambda s: s["environment"].update(AIRFLOW__SECRETS__BACKEND_KWARGS='{"connections_file_path": "/opt/x.json"}'),
         "not from a secret it mounts"),
        (lambda s: s.update(secrets=["billing_reader_connection"]), "not from a secret it mounts"),
    ],
)
def test_secret_drift_the_native_run_cannot_follow_fails(compose, tmp_path, change, message):
    drifted = copy.deepcopy(compose)
    change(drifted["services"]["airflow-worker"])
    files = {name: tmp_path / f"{name}.json" for name in compose["secrets"]}
    with pytest.raises(cs.ComposeDriftError, match=message):
        cs.secrets_backend_settings(drifted, "airflow-worker", files)
    with pytest.raises(cs.ComposeDriftError, match="has no native file"):
        cs.secrets_backend_settings(compose, "airflow-worker", {})


def test_the_topology_moves_the_connections_from_env_into_the_secret_files(tmp_path):
    from rafay_devkit.airflow_env import airflow_env
    from rafay_devkit.celery_topology import connection_secrets

    env = airflow_env(tmp_path / "airflow", rafay_url="http://127.0.0.1:9", rafay_api_key="native-key-1",
                      billing_dsn="postgresql://writer:wpw@127.0.0.1:1/b",
                      billing_owner_dsn="postgresql://owner:opw@127.0.0.1:1/b", data_uri="file:///tmp/x", base={})
    rest, files = connection_secrets(env, tmp_path / "secrets")
    assert not [k for k in rest if k.startswith("AIRFLOW_CONN_")] and "native-key-1" not in json.dumps(rest)
    task = json.loads(files["billing_connections"].read_text())
    assert set(task) == {"rafay_default", "billing_postgres", "billing_postgres_owner"}
    assert task["rafay_default"]["password"] == "native-key-1"
    # No reader login given: the api-server's secret holds the writer's connection under the reader's id.
    reader = json.loads(files["billing_reader_connection"].read_text())
    assert set(reader) == {"billing_postgres_reader"} and reader["billing_postgres_reader"]["login"] == "writer"
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in files.values())
    # The same from an env that already reads a connections file (airflow_env(connections_file=...)).
    env2 = airflow_env(tmp_path / "airflow", rafay_url="http://127.0.0.1:9", rafay_api_key="native-key-2",
                       billing_dsn="postgresql://writer:wpw@127.0.0.1:1/b", data_uri="file:///tmp/x", base={},
                       connections_file=tmp_path / "given.json")
    rest2, files2 = connection_secrets(env2, tmp_path / "secrets2")
    assert "AIRFLOW__SECRETS__BACKEND" not in rest2
    assert json.loads(files2["billing_connections"].read_text())["rafay_default"]["password"] == "native-key-2"
