"""Static checks of the docker-compose stack: docker-compose.yaml, Dockerfile, .dockerignore, .env.example.

No Docker engine runs on these machines, so the stack is checked the way Compose reads it: YAML with
anchors and merge keys resolved, `${VAR}` interpolated from `.env`, then validated against the
Compose Specification JSON schema (vendored: tests/data/compose-spec.json, origin and licence in
tests/data/README.md). The rest are consistency checks between the services, and between the
stack and the project (Airflow version of the lock, the contract's connection and Variable names,
the DAG's pool, the folders that exist in the repo). Nothing here starts a container.
"""

from __future__ import annotations

import ast
import base64
import copy
import fnmatch
import importlib.util
import json
import os
import re
import secrets
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.support.paths import REPO

COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.example"
SCHEMA_FILE = REPO / "tests" / "data" / "compose-spec.json"
SECRETS_DIR = REPO / "secrets"
# Connections come from Compose secrets read by Airflow's LocalFilesystemBackend (issue 23, part 4).
SECRETS_BACKEND = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
TASK_SECRET, READER_SECRET = "billing_connections", "billing_reader_connection"
ALERTS_SECRET = "billing_alerts_connection"
BILLING_CONN_IDS = ("rafay_default", "billing_postgres", "billing_postgres_owner", "billing_postgres_reader")

# The billing contract's names (shared docs: billing-contract.md).
CONTRACT_CONNECTIONS = {"rafay_default": "rafay", "billing_postgres": "postgres"}
CONTRACT_VARIABLES = ("billing_data_uri", "billing_price_book_uri")
DAG_ID = "rafay_usage_billing"

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
    "airflow-cli",
}
REQUIRED_SERVICES = AIRFLOW_SERVICES | {"postgres", "billing-postgres", "redis", "rafay-simulator", "tenant-api"}
ONE_OFF_SERVICES = {"airflow-init", "airflow-cli"}
# Services that run tasks and so need the billing connections and Variables.
TASK_RUNNERS = {"airflow-worker", "airflow-cli"}
EXECUTION_API_URL = "http://airflow-apiserver:8080/execution/"
# The only code mounted from the host: DAG files. The package itself is the image's wheel.
REPO_MOUNTS = {"dags": "/opt/airflow/dags"}
DEMO_DATA_MOUNT = ("/opt/airflow/demo", "./include/rafay_devkit/data")
# What the image's runtime lock must never contain.
TEST_TOOLS = ("pytest", "pytest-timeout", "ruff", "mypy", "moto", "pgserver", "responses")
# Secrets every deployment generates itself: empty in .env.example, and Compose refuses to start
# while one is missing.
GENERATED_SECRETS = {
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "_AIRFLOW_WWW_USER_PASSWORD",
}


def conn_env_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def var_env_name(key: str) -> str:
    return f"AIRFLOW_VAR_{key.upper()}"


# --- Compose interpolation (https://compose-spec.io: "Interpolation") ---------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    """A `${VAR:?message}` / `${VAR?message}` whose variable is missing: Compose refuses the file."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def references(text: str) -> list[tuple[str, str | None, str]]:
    """(name, operator, argument) of every interpolation in ``text``; ``$$`` escapes excluded."""
    found = []
    for m in _INTERPOLATION.finditer(text):
        if m["escaped"]:
            continue
        name = m["braced"] or m["named"]
        found.append((name, m["op"], m["arg"] or ""))
        found.extend(references(m["arg"] or ""))
    return found


def interpolate(text: str, env: dict[str, str]) -> str:
    def substitute(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["braced"] or m["named"]
        op, arg = m["op"], interpolate(m["arg"] or "", env)
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return arg if value is None else value
        if op == ":?" and not value or op == "?" and value is None:
            raise MissingVariable(name, arg)
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return "" if value is None else arg
        return value or ""

    result = _INTERPOLATION.sub(substitute, text)
    return result


def strings(node: object, path: tuple = ()) -> list[tuple[tuple, str]]:
    """Every string value (not key) in a parsed YAML document, with its path."""
    if isinstance(node, str):
        return [(path, node)]
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in strings(value, (*path, key))]
    if isinstance(node, list):
        return [item for i, value in enumerate(node) for item in strings(value, (*path, i))]
    return []


def interpolate_document(node: object, env: dict[str, str]) -> object:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolate_document(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_document(value, env) for value in node]
    return node


# --- .env files (Compose's dotenv format, the subset this project uses) ----------------------------

_ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        assert len(raw) >= 2 and raw[-1] == raw[0], f"unterminated quoted value: {raw}"
        return raw[1:-1]
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def read_env_file(path: Path) -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
    """(active assignments, commented-out assignments, keys assigned more than once)."""
    active: dict[str, str] = {}
    commented: dict[str, list[str]] = {}
    duplicates = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _ENV_LINE.match(line.strip())
        if not m:
            continue
        key, value = m["key"], _unquote(m["value"])
        if m["comment"]:
            commented.setdefault(key, []).append(value)
        else:
            if key in active:
                duplicates.append(key)
            active[key] = value
    return active, commented, duplicates


# --- secrets ---------------------------------------------------------------------------------------

_SECRET_KEY_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|^AIRFLOW_CONN_")
_WHOLE_INTERPOLATION = re.compile(
    r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}$"
)


def looks_like_secret(text: str) -> bool:
    """A Fernet key, a long hex string or a long random-looking token."""
    if re.search(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=", text):
        return True
    if re.search(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])", text):
        return True
    for token in re.findall(r"[A-Za-z0-9+/_-]{24,}", text):
        if re.search(r"[0-9]", token) and re.search(r"[a-z]", token) and re.search(r"[A-Z]", token):
            return True
    return False


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def schema_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def env_example() -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def demo_env(env_example) -> dict[str, str]:
    """.env.example as a user fills it in: the generated secrets set, everything else as shipped."""
    active, _, _ = env_example
    env = dict(active)
    env["AIRFLOW__CORE__FERNET_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    for name in GENERATED_SECRETS - {"AIRFLOW__CORE__FERNET_KEY"}:
        env[name] = secrets.token_urlsafe(32)
    return env


def schema_errors(validator: jsonschema.Draft7Validator, document: object) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping in this file (one style everywhere)"
    return env


def mounts(service: dict) -> dict[str, str]:
    """container path -> source, for the short volume syntax used in this file."""
    result = {}
    for spec in service.get("volumes", []):
        assert isinstance(spec, str), f"use the short volume syntax: {spec}"
        source, target, *_ = spec.split(":")
        result[target] = source
    return result


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def python_string_constants(*folders: str) -> set[str]:
    found = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.add(node.value)
    return found


# --- the Compose Specification ---------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec(compose, schema_validator):
    assert schema_errors(schema_validator, compose) == []


def test_compose_file_is_valid_after_interpolation_with_env_example(compose, schema_validator, demo_env):
    resolved = interpolate_document(compose, demo_env)
    assert schema_errors(schema_validator, resolved) == []
    # What the containers get: the .env values themselves, the same in every Airflow component.
    for name in AIRFLOW_SERVICES:
        env = resolved["services"][name]["environment"]
        for key in GENERATED_SECRETS - {"_AIRFLOW_WWW_USER_PASSWORD"}:
            assert env[key] == demo_env[key], (name, key)
    assert resolved["services"]["airflow-worker"]["image"] == demo_env["AIRFLOW_IMAGE_NAME"]


def test_schema_check_catches_mistakes(compose, schema_validator):
    """The vendored schema is strict enough to matter: typos and bad values are rejected."""
    broken = copy.deepcopy(compose)
    broken["services"]["airflow-scheduler"]["heathcheck"] = broken["services"]["airflow-scheduler"].pop(
        "healthcheck"
    )
    broken["services"]["airflow-worker"]["depends_on"]["airflow-init"]["condition"] = "service_finished"
    broken["volumes"]["billing-data"] = ["not", "a", "volume"]
    errors = schema_errors(schema_validator, broken)
    assert any("heathcheck" in e for e in errors), errors
    assert any("service_finished" in e for e in errors), errors
    assert any(e.startswith("volumes/billing-data") for e in errors), errors


def test_no_invalid_interpolation_syntax(compose):
    """Compose rejects a lone `$` that starts no interpolation: shell variables must be written `$$`."""
    for path, text in strings(compose):
        rest = _INTERPOLATION.sub("", text)
        assert "$" not in rest, f"{'/'.join(map(str, path))}: unescaped $ in {text!r}"


# --- services, image, shared settings -------------------------------------------------------------


def test_all_services_of_the_topology_exist(services):
    assert REQUIRED_SERVICES <= set(services), REQUIRED_SERVICES - set(services)


def test_one_image_built_from_the_dockerfile_for_airflow_and_the_simulator(services):
    users = AIRFLOW_SERVICES | {"rafay-simulator", "tenant-api"}
    images = {
        name: (services[name].get("image"), json.dumps(services[name].get("build"), sort_keys=True))
        for name in users
    }
    assert len(set(images.values())) == 1, images
    build = services["airflow-worker"]["build"]
    assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert services["airflow-worker"]["image"], "the built image needs a tag shared by all services"


def test_airflow_services_share_the_common_environment(compose, services):
    common = compose["x-airflow-common"]["environment"]
    for name in AIRFLOW_SERVICES:
        env = service_env(services[name])
        missing_or_changed = {k: env.get(k) for k, v in common.items() if env.get(k) != v}
        assert not missing_or_changed, f"{name} differs from x-airflow-common: {missing_or_changed}"


def test_one_jwt_secret_and_execution_api_url_for_all_components(services):
    for key in (
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
    ):
        values = {name: service_env(services[name]).get(key) for name in AIRFLOW_SERVICES}
        assert None not in values.values(), f"{key} missing in {[n for n, v in values.items() if v is None]}"
        assert len(set(values.values())) == 1, f"{key} differs between services: {values}"
    assert (
        service_env(services["airflow-worker"])["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
        == EXECUTION_API_URL
    )


def test_execution_api_url_reaches_the_api_server(services):
    url = urlsplit(service_env(services["airflow-worker"])["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    api = services[url.hostname]
    assert api["command"] in ("api-server", "airflow api-server", ["api-server"], ["airflow", "api-server"])
    published = {str(p).rsplit(":", 1)[-1] for p in api["ports"]}
    assert str(url.port) in published, f"API server listens on {published}, workers call port {url.port}"
    assert url.path == "/execution/"


def test_celery_executor_with_redis_broker_and_postgres_result_backend(services):
    env = service_env(services["airflow-scheduler"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.scheme == "redis" and broker.hostname == "redis" and broker.hostname in services
    assert services["redis"]["image"].startswith("redis:")

    postgres_env = service_env(services["postgres"])
    for key in ("AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        url = urlsplit(env[key])
        assert url.scheme in ("db+postgresql", "postgresql+psycopg2", "postgresql+psycopg", "postgresql"), url
        assert url.hostname == "postgres", f"{key} must use the metadata database service"
        assert url.username == postgres_env["POSTGRES_USER"]
        password_vars = [name for name, _, _ in references(url.password or "")]
        assert password_vars == [references(postgres_env["POSTGRES_PASSWORD"])[0][0]], (key, url.password)
        assert url.path.lstrip("/") == postgres_env["POSTGRES_DB"]
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert services["airflow-worker"]["command"] in ("celery worker", ["celery", "worker"])


def test_billing_database_is_separate_from_the_metadata_database(services, env_example):
    active, _, _ = env_example
    assert services["billing-postgres"]["volumes"] != services["postgres"]["volumes"]
    billing = json.loads((SECRETS_DIR / "billing-connections.example.json").read_text())["billing_postgres"]
    assert billing["host"] == "billing-postgres" and billing["host"] in services


def test_auth_manager_exists_in_the_pinned_airflow_and_has_a_login(services):
    """Airflow 3.3's default auth manager is SimpleAuthManager (core); FAB is not in the lock."""
    env = service_env(services["airflow-apiserver"])
    manager = env["AIRFLOW__CORE__AUTH_MANAGER"]
    module, class_name = manager.rsplit(".", 1)
    # Located without importing Airflow (importing it configures Airflow as a side effect).
    airflow_dir = Path(importlib.util.find_spec("airflow").origin).parent
    config_yml = airflow_dir / "config_templates" / "config.yml"
    default = re.search(
        r"\n    auth_manager:\n(?:      .*\n)*?      default: \"([^\"]+)\"", config_yml.read_text()
    )
    assert default, "auth_manager default not found in the installed Airflow's config.yml"
    if manager.endswith("SimpleAuthManager"):
        assert manager == default.group(1)
        source = airflow_dir.parent.joinpath(*module.split(".")).with_suffix(".py")
        assert f"class {class_name}(" in source.read_text(), f"{manager} is not in the pinned Airflow"
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].endswith(":admin")
        passwords = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
        for name in ("airflow-apiserver", "airflow-init"):
            volume = next((t for t in mounts(services[name]) if passwords.startswith(t + "/")), None)
            assert volume and not mounts(services[name])[volume].startswith("."), (
                f"{name}: the passwords file must be on a named volume shared by airflow-init and the API server"
            )
        script = json.dumps(services["airflow-init"]["command"])
        assert "_AIRFLOW_WWW_USER_PASSWORD" in script and "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script
    else:
        assert (
            "fab" in manager and "apache-airflow-providers-fab==" in (REPO / "requirements.txt").read_text()
        )


def test_airflow_init_migrates_and_creates_the_dag_pool(services):
    init = services["airflow-init"]
    script = init["command"][-1] if isinstance(init["command"], list) else init["command"]
    assert "set -euo pipefail" in script or "set -e" in script, "init must fail when a step fails"
    assert "airflow db migrate" in script

    # the DAGs name their pool through the settings module; that is the pool init must create
    dag_source = (REPO / "dags" / f"{DAG_ID}.py").read_text(encoding="utf-8")
    assert "pool=settings.RAFAY_POOL" in dag_source
    settings_tree = ast.parse((REPO / "plugins" / "rafay_provider" / "settings.py").read_text(encoding="utf-8"))
    pools = {
        node.value.value
        for node in ast.walk(settings_tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and "POOL" in t.id for t in node.targets)
        and isinstance(node.value, ast.Constant)
    }
    assert pools == {"rafay_api"}, pools
    assert 'airflow pools set rafay_api 8 "Concurrent Rafay extraction tasks"' in script
    assert init.get("restart", "no") == "no"


# --- project consistency: Dockerfile, lock, mounts ------------------------------------------------


def test_dockerfile_airflow_version_equals_the_lock():
    froms = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    assert len(froms) == 1, froms
    m = re.fullmatch(r"apache/airflow:(?P<airflow>\d+\.\d+\.\d+)-python(?P<python>\d+\.\d+)", froms[0])
    assert m, f"FROM must be the official image with a pinned version: {froms[0]}"
    lock = (REPO / "requirements.txt").read_text(encoding="utf-8")
    pinned = re.search(r"^apache-airflow==(\S+)$", lock, re.M)
    assert pinned and pinned.group(1) == m["airflow"], (pinned and pinned.group(1), m["airflow"])
    lock_python = re.search(r"on Python (\d+\.\d+)", lock.splitlines()[0])
    assert lock_python and lock_python.group(1) == m["python"], "image Python differs from the lock's"


def test_dockerfile_installs_the_lock_and_the_project():
    instructions = dockerfile_instructions()
    copied = {src for keyword, rest in instructions if keyword == "COPY" for src in rest.split()[:-1]}
    copied = {c.rstrip("/") for c in copied if not c.startswith("--")}
    runs = " && ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "requirements.txt" in copied and "requirements-dev.txt" not in copied
    assert re.search(r"pip install [^&]*-r \S*requirements\.txt", runs)
    assert re.search(r"pip wheel [^&]*--no-deps", runs), runs
    assert re.search(r"pip install [^&]*--no-deps [^&]*\.whl", runs), runs
    assert " -e " not in runs, "the image installs the wheel, not an editable checkout"

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    sources = set(pyproject["tool"]["setuptools"]["packages"]["find"]["where"])
    needed = {"pyproject.toml", pyproject["project"]["readme"], *sources, "dags"}
    assert needed <= copied, f"not copied into the image: {needed - copied}"
    user = [rest for keyword, rest in instructions if keyword == "USER"]
    assert user and user[-1] == "airflow", "pip must run as the airflow user of the official image"


def test_dockerignore_excludes_secrets_and_local_state_but_not_the_sources():
    patterns = [
        p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")
    ]
    excluded = [p for p in patterns if not p.startswith("!")]
    for needed in (".env", ".venv", ".git", ".demo"):
        assert needed in excluded, f"{needed} must be kept out of the build context"
    for source in ("requirements.txt", "pyproject.toml", "README.md", "dags", "include", "plugins"):
        assert not any(fnmatch.fnmatch(source, p) for p in excluded), (
            f"{source} is excluded but COPY needs it"
        )


def test_airflow_services_mount_the_dags_from_the_repo_and_no_code(services):
    for name in AIRFLOW_SERVICES:
        service_mounts = mounts(services[name])
        for folder, target in REPO_MOUNTS.items():
            assert service_mounts.get(target) == f"./{folder}", (
                f"{name}: {target} <- {service_mounts.get(target)}"
            )
            assert (REPO / folder).is_dir()
        code = {t: s for t, s in service_mounts.items() if s.startswith("./") and s != "./dags"}
        assert code == dict([DEMO_DATA_MOUNT]), f"{name} mounts code over the image's wheel: {code}"
        env = service_env(services[name])
        assert env.get("AIRFLOW__CORE__DAGS_FOLDER", REPO_MOUNTS["dags"]) == REPO_MOUNTS["dags"]
        assert "AIRFLOW__CORE__PLUGINS_FOLDER" not in env, "the plugin comes from the wheel's entry point"
    assert (REPO / "dags" / f"{DAG_ID}.py").is_file()


def test_the_image_lock_has_no_test_tools():
    """requirements.txt is what the image installs: runtime only. The tools are in requirements-dev.txt."""
    runtime = {
        line.split("==")[0].split("[")[0].lower()
        for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith("#")
    }
    dev = (REPO / "requirements-dev.txt").read_text(encoding="utf-8").lower()
    for tool in TEST_TOOLS:
        assert tool not in runtime, f"{tool} is in the image's lock"
        assert f"\n{tool}==" in dev, f"{tool} is missing from requirements-dev.txt"


def test_named_volumes_are_declared_and_used(compose, services):
    declared = set(compose["volumes"])
    used = {
        source
        for service in services.values()
        for source in mounts(service).values()
        if not source.startswith((".", "/", "$"))
    }
    assert used == declared, f"undeclared: {used - declared}, unused: {declared - used}"


def test_landing_root_volume_is_shared_by_the_workers(services, env_example):
    active, _, _ = env_example
    uri = urlsplit(active[var_env_name("billing_data_uri")])
    assert uri.scheme == "file"
    assert mounts(services["airflow-worker"]).get(uri.path) == "billing-data"
    default = service_env(services["airflow-worker"])[var_env_name("billing_data_uri")]
    assert default == "${AIRFLOW_VAR_BILLING_DATA_URI:-file:///opt/airflow/billing-data}"
    assert "s3://" in COMPOSE_FILE.read_text(), "the compose file must say that several hosts need s3://"


def test_price_book_uri_of_the_demo_points_into_a_mounted_folder(services, env_example):
    active, _, _ = env_example
    uri = urlsplit(active[var_env_name("billing_price_book_uri")])
    assert uri.scheme == "file"
    target, source = next(
        ((t, s) for t, s in mounts(services["airflow-worker"]).items() if uri.path.startswith(t + "/")),
        (None, None),
    )
    assert target, f"{uri.path} is in no folder mounted into the worker"
    host_path = REPO / source / Path(uri.path).relative_to(target)
    if not host_path.exists():
        pytest.skip(f"{host_path.relative_to(REPO)} is not in the repo yet (the demo price book)")
    assert host_path.is_file()


# --- connections and variables of the contract -----------------------------------------------------


def secret_file(compose: dict, name: str) -> Path:
    """The host file of a top-level Compose secret (its default path, as .env.example sets it)."""
    return REPO / interpolate(compose["secrets"][name]["file"], {})


def example_of(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".json") + ".example.json")


def connections_path(service: dict) -> str:
    """Where the service's secrets backend reads connections (LocalFilesystemBackend's kwargs)."""
    env = service_env(service)
    assert env["AIRFLOW__SECRETS__BACKEND"] == SECRETS_BACKEND
    return json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"])["connections_file_path"]


def test_connection_and_variable_env_names_match_the_contract(services):
    variables = {var_env_name(v) for v in CONTRACT_VARIABLES}
    assert variables == {"AIRFLOW_VAR_BILLING_DATA_URI", "AIRFLOW_VAR_BILLING_PRICE_BOOK_URI"}
    for name in TASK_RUNNERS:
        env = service_env(services[name])
        assert variables <= set(env), f"{name} misses {variables - set(env)}"
        for key in variables:
            assert env[key].startswith("${" + key), f"{name}: {key} must come from .env, got {env[key]}"
        # The contract's connections come from the secrets backend, which reads the mounted secret.
        assert services[name]["secrets"] == [TASK_SECRET], name
        assert connections_path(services[name]) == f"/run/secrets/{TASK_SECRET}", name
    # Least privilege: components that never run tasks do not get the Rafay API key.
    for name in AIRFLOW_SERVICES - TASK_RUNNERS:
        assert conn_env_name("rafay_default") not in service_env(services[name]), name
        assert TASK_SECRET not in services[name].get("secrets", []), name


def test_connections_come_from_compose_secrets_not_env_variables(compose, services, env_example):
    """Issue 23, part 4: the Rafay key and the database logins are in files mounted as Compose secrets
    (/run/secrets/...) and read by LocalFilesystemBackend, never in AIRFLOW_CONN_* variables."""
    from airflow.secrets.local_filesystem import LocalFilesystemBackend, load_connections_dict

    active, commented, _ = env_example
    assert set(compose["secrets"]) == {TASK_SECRET, READER_SECRET, ALERTS_SECRET}
    for name, spec in compose["secrets"].items():
        assert set(spec) == {"file"} and spec["file"].startswith("${"), name
        variable = references(spec["file"])[0][0]
        path = secret_file(compose, name)
        assert REPO / active[variable] == path, f"{variable} in .env.example must be the default path"
        assert path.parent == SECRETS_DIR and example_of(path).is_file(), f"no example for {path.name}"
    users = {name: s.get("secrets", []) for name, s in services.items() if s.get("secrets")}
    assert users == {"airflow-worker": [TASK_SECRET], "airflow-cli": [TASK_SECRET],
                     "airflow-apiserver": [READER_SECRET], "airflow-dag-processor": [ALERTS_SECRET],
                     "airflow-triggerer": [ALERTS_SECRET]}
    for name, mounted in users.items():
        assert connections_path(services[name]) == f"/run/secrets/{mounted[0]}", name
    # No connection of the billing in a variable: not in the file, not in .env.example (active or not).
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for conn_id in BILLING_CONN_IDS:
        assert conn_env_name(conn_id) not in text and conn_env_name(conn_id) not in active, conn_id
        assert conn_env_name(conn_id) not in commented, conn_id
    # The real files stay out of git and of the image; the examples are what Airflow's backend reads.
    gitignore = (REPO / ".gitignore").read_text().splitlines()
    assert "secrets/*" in gitignore and "!secrets/*.example.json" in gitignore
    assert "secrets" in DOCKERIGNORE.read_text().splitlines()
    assert LocalFilesystemBackend.__module__ + ".LocalFilesystemBackend" == SECRETS_BACKEND
    task = load_connections_dict(str(example_of(secret_file(compose, TASK_SECRET))))
    assert set(task) == set(BILLING_CONN_IDS)
    assert {c.conn_type for c in task.values()} == {"rafay", "postgres"}
    reader = load_connections_dict(str(example_of(secret_file(compose, READER_SECRET))))
    assert set(reader) == {"billing_postgres_reader"}
    assert reader["billing_postgres_reader"].get_uri() == task["billing_postgres_reader"].get_uri()


def test_contract_names_are_the_ones_the_code_uses():
    constants = python_string_constants("dags", "plugins/rafay_provider")
    for name in (*CONTRACT_CONNECTIONS, *CONTRACT_VARIABLES, DAG_ID):
        assert name in constants, f"{name!r} appears nowhere in dags/ or plugins/rafay_provider/"


def test_env_example_connections_are_consistent_with_the_services(services, env_example):
    from rafay_provider import get_provider_info

    active, commented, _ = env_example
    connection_types = {c["connection-type"] for c in get_provider_info()["connection-types"]}

    examples = json.loads((SECRETS_DIR / "billing-connections.example.json").read_text())
    rafay = examples["rafay_default"]
    assert (
        rafay["conn_type"] == CONTRACT_CONNECTIONS["rafay_default"] and rafay["conn_type"] in connection_types
    )
    host = urlsplit(rafay["host"])
    simulator = services[host.hostname]
    assert host.hostname == "rafay-simulator" and simulator.get("profiles") == ["demo"]
    assert f"--port {host.port}" in simulator["command"]
    assert rafay["password"] == active["RAFAY_SIMULATOR_API_KEY"], "demo key must be the simulator's key"

    production_file = json.loads((SECRETS_DIR / "billing-connections.production.example.json").read_text())
    production = [production_file["rafay_default"]]
    assert set(production_file) == set(examples), "the production example names the same connections"
    for form in production:
        assert form["conn_type"] == "rafay" and "://" not in form["host"], "production host = console domain"
        assert form["password"].startswith("<"), "production API key must be a placeholder"

    # The billing database's three connections: the owner logs in as the service's POSTGRES_USER, the
    # writer and the reader as the logins its init script creates (issue 21, rule 10).
    db_env = service_env(services["billing-postgres"])
    logins = {
        "billing_postgres_owner": (db_env["POSTGRES_USER"], db_env["POSTGRES_PASSWORD"]),
        "billing_postgres": ("billing_writer", db_env["BILLING_DB_WRITER_PASSWORD"]),
        "billing_postgres_reader": ("billing_reader", db_env["BILLING_DB_READER_PASSWORD"]),
    }
    init = (REPO / "include/rafay_devkit/data/billing-postgres-init/10-billing-logins.sh").read_text()
    for conn_id, (login, password) in logins.items():
        billing = examples[conn_id]
        assert production_file[conn_id]["password"].startswith("<"), conn_id
        assert billing["conn_type"] == CONTRACT_CONNECTIONS["billing_postgres"], conn_id
        assert billing["host"] == "billing-postgres" and billing["port"] == 5432, conn_id
        assert billing["login"] == interpolate(login, active), conn_id
        assert billing["password"] == interpolate(password, active), conn_id
        assert billing["schema"] == interpolate(db_env["POSTGRES_DB"], active), conn_id
        if conn_id != "billing_postgres_owner":
            assert f"CREATE ROLE {login} LOGIN" in init, login
    mounted = mounts(services["billing-postgres"])
    assert mounted["/docker-entrypoint-initdb.d"] == "./include/rafay_devkit/data/billing-postgres-init"


def test_the_billing_view_gets_the_reader_connection_only(compose, services):
    """The api-server serves the Billing view: it reads through billing_postgres_reader, and holds neither
    the writer's nor the owner's login, nor the Rafay key (its secret holds the reader's connection only)."""
    env = service_env(services["airflow-apiserver"])
    assert services["airflow-apiserver"]["secrets"] == [READER_SECRET]
    assert connections_path(services["airflow-apiserver"]) == f"/run/secrets/{READER_SECRET}"
    for conn_id in ("billing_postgres", "billing_postgres_owner", "rafay_default"):
        assert conn_env_name(conn_id) not in env, conn_id
    reader = json.loads(example_of(secret_file(compose, READER_SECRET)).read_text())
    assert set(reader) == {"billing_postgres_reader"}


def test_the_callbacks_components_get_the_alerts_connection_only(compose, services):
    """Issue 23: the dag-processor runs the failure callbacks and the triggerer the deadline callbacks, so
    both read billing_alerts, from a secret that holds that connection only (no Rafay key, no login)."""
    from airflow.secrets.local_filesystem import load_connections_dict

    for name in ("airflow-dag-processor", "airflow-triggerer"):
        assert services[name]["secrets"] == [ALERTS_SECRET], name
        assert connections_path(services[name]) == f"/run/secrets/{ALERTS_SECRET}", name
    alerts = load_connections_dict(str(example_of(secret_file(compose, ALERTS_SECRET))))
    assert set(alerts) == {"billing_alerts"} and alerts["billing_alerts"].conn_type == "http"


# --- .env.example ----------------------------------------------------------------------------------


def test_every_compose_variable_is_documented_in_env_example(compose, env_example):
    active, _, duplicates = env_example
    referenced = {name for _, text in strings(compose) for name, _, _ in references(text)}
    assert referenced, "no ${VAR} found: the parser is broken"
    assert referenced - set(active) == set(), "used in docker-compose.yaml, missing in .env.example"
    assert set(active) - referenced == set(), "in .env.example but used nowhere in docker-compose.yaml"
    assert duplicates == []


def test_generated_secrets_are_required_and_empty_in_env_example(compose, env_example, demo_env):
    active, _, _ = env_example
    for name in GENERATED_SECRETS:
        assert active[name] == "", f"{name} must be empty in .env.example (each deployment generates it)"
        with pytest.raises(MissingVariable) as missing:
            interpolate_document(compose, {**demo_env, name: ""})
        assert missing.value.name == name, f"Compose would start without {name}"
    interpolate_document(compose, demo_env)  # and starts once they are set


def test_env_example_holds_no_real_secrets(env_example):
    active, commented, _ = env_example
    values = list(active.values()) + [v for vs in commented.values() for v in vs]
    assert [v for v in values if looks_like_secret(v)] == []
    for key, value in active.items():
        if re.search(r"PASSWORD$", key) and value:
            assert "change-me" in value, f"{key}: use an obvious placeholder"


# --- healthchecks and start order ------------------------------------------------------------------


def test_long_running_services_restart_and_have_healthchecks(services):
    for name, service in services.items():
        if name in ONE_OFF_SERVICES:
            assert service.get("restart", "no") == "no", name
            continue
        assert service.get("restart") in ("always", "unless-stopped"), f"{name} is long-running"
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


@pytest.mark.parametrize(
    ("service", "fragments"),
    [
        ("airflow-apiserver", ("localhost:8080/api/v2/",)),
        ("airflow-scheduler", ("localhost:8974/health",)),
        ("airflow-worker", ("celery", "inspect ping")),
        ("airflow-triggerer", ("airflow jobs check", "--job-type TriggererJob")),
        ("airflow-dag-processor", ("airflow jobs check", "--job-type DagProcessorJob")),
        ("postgres", ("pg_isready",)),
        ("billing-postgres", ("pg_isready",)),
        ("redis", ("redis-cli", "ping")),
        ("tenant-api", ("http://127.0.0.1:8090/healthz",)),
    ],
)
def test_healthcheck_probes_the_component(services, service, fragments):
    test = services[service]["healthcheck"]["test"]
    text = " ".join(test) if isinstance(test, list) else test
    for fragment in fragments:
        assert fragment in text, f"{service}: {fragment!r} not in {text!r}"
    if service == "airflow-scheduler":
        assert service_env(services[service])["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"


def test_depends_on_refers_to_existing_services_with_sound_conditions(services):
    graph = {}
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: use the long depends_on syntax with conditions"
        graph[name] = set(depends)
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = spec.get("condition")
            if condition == "service_healthy":
                assert services[target].get("healthcheck"), f"{name} waits for {target}'s missing healthcheck"
            elif condition == "service_completed_successfully":
                assert target in ONE_OFF_SERVICES, f"{name} waits for long-running {target} to exit"
            else:
                pytest.fail(f"{name} -> {target}: condition {condition!r}")

    def visit(node: str, trail: tuple[str, ...]) -> None:
        assert node not in trail, f"depends_on cycle: {' -> '.join((*trail, node))}"
        for target in graph[node]:
            visit(target, (*trail, node))

    for name in graph:
        visit(name, ())
    for name in AIRFLOW_SERVICES - ONE_OFF_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert services["airflow-worker"]["depends_on"]["billing-postgres"]["condition"] == "service_healthy"


def test_demo_profile_adds_the_simulator_and_nothing_depends_on_it(services):
    simulator = services["rafay-simulator"]
    assert simulator.get("profiles") == ["demo"]
    assert simulator["command"] == (
        "python -m rafay_simulator --host 0.0.0.0 --port 8080 --seed 7 --orgs 30"
        " --api-key ${RAFAY_SIMULATOR_API_KEY}"
    )
    default_profile = {name for name, s in services.items() if not s.get("profiles")}
    assert {"airflow-worker", "airflow-scheduler", "postgres"} <= default_profile
    for name, service in services.items():
        assert "rafay-simulator" not in (service.get("depends_on") or {}), f"{name} depends on the simulator"
        if name in default_profile:
            profiled = set(service.get("depends_on") or {}) - default_profile
            assert not profiled, f"{name} (default profile) depends on profiled services {profiled}"


# --- no secrets in the compose file ----------------------------------------------------------------


def test_secret_detector_recognises_generated_secrets():
    assert looks_like_secret(base64.urlsafe_b64encode(os.urandom(32)).decode())  # a Fernet key
    assert looks_like_secret(secrets.token_hex(24))
    assert looks_like_secret("key=" + "aB3" * 10)
    assert not looks_like_secret(
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    )
    assert not looks_like_secret("change-me-billing-db")


def test_no_secret_literals_in_the_compose_file(compose):
    environments = [("x-billing-env", compose["x-billing-env"])]
    environments += [("x-airflow-common", compose["x-airflow-common"]["environment"])]
    environments += [(name, service_env(s)) for name, s in compose["services"].items()]
    for owner, env in environments:
        for key, value in env.items():
            # [secrets] settings name the backend, they hold no secret (issue 23, part 4).
            if (_SECRET_KEY_NAME.search(key) and not key.endswith(("_FILE", "_PATH"))
                    and not key.startswith("AIRFLOW__SECRETS__")):
                m = _WHOLE_INTERPOLATION.match(str(value))
                assert m, f"{owner}: {key} must be a ${{VAR}} from .env, not a literal"
                if m["op"] in ("-", ":-"):
                    assert m["arg"] == "", f"{owner}: {key} has a literal default"

    for path, text in strings(compose):
        where = "/".join(map(str, path))
        bare = _INTERPOLATION.sub("", text)
        assert not looks_like_secret(bare), f"{where}: secret-looking literal in {text!r}"
        for url in re.findall(r"[a-z][a-z0-9+.-]*://\S+", text):
            password = urlsplit(url).password
            assert not password or _WHOLE_INTERPOLATION.match(password), f"{where}: literal password in {url}"
        for flag, value in re.findall(r"--(api-key|password|token|secret)[= ](\S+)", text):
            assert value.startswith("${"), f"{where}: --{flag} given a literal"


def test_simulator_command_is_accepted_by_the_simulator_cli(services, env_example):
    from rafay_simulator.__main__ import parse_args

    active, _, _ = env_example
    argv = shlex.split(interpolate(services["rafay-simulator"]["command"], active))
    assert argv[:3] == ["python", "-m", "rafay_simulator"]
    args = parse_args(argv[3:])
    assert (args.host, args.port, args.seed, args.orgs) == ("0.0.0.0", 8080, 7, 30)
    assert args.api_key == active["RAFAY_SIMULATOR_API_KEY"]


def test_published_ports_name_the_host_interface(services, demo_env):
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    # the UI, the billing DB and (issue 24) the tenant statements API a customer portal calls
    assert set(published) == {"airflow-apiserver", "billing-postgres", "tenant-api"}
    for name, ports in published.items():
        for spec in ports:
            host_ip, _host_port, _container_port = interpolate(str(spec), demo_env).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {spec} beyond loopback by default"


# --- the tenant statements API (issue 24) ------------------------------------------------------------


def test_tenant_api_runs_the_cli_as_its_own_login_with_nothing_else(services, env_example):
    """`rafay-billing serve-tenant-api` through `python -m` (the image's entrypoint runs anything else as an
    airflow subcommand), as billing_tenant_api (a member of the tenant API role only, made by the init
    script), with no Airflow connection, no Rafay key and no other database login."""
    from rafay_billing import cli
    from rafay_billing.settings import DEFAULT_TENANT_API_ROLE, ENV_TENANT_API_DATABASE_URL

    active, _, _ = env_example
    service = services["tenant-api"]
    argv = shlex.split(interpolate(service["command"], active))
    assert argv[:3] == ["python", "-m", "rafay_billing.cli"]
    args = cli._parser().parse_args(argv[3:])
    assert args.command == "serve-tenant-api" and args.host == "0.0.0.0" and args.dsn is None
    env = service_env(service)
    assert set(env) == {ENV_TENANT_API_DATABASE_URL, "CONNECTION_CHECK_MAX_COUNT"}
    url = urlsplit(interpolate(env[ENV_TENANT_API_DATABASE_URL], active))
    db_env = service_env(services["billing-postgres"])
    assert url.hostname == "billing-postgres" and url.port == 5432
    assert url.path.lstrip("/") == interpolate(db_env["POSTGRES_DB"], active)
    assert url.username == "billing_tenant_api"
    assert url.password == active["BILLING_DB_TENANT_API_PASSWORD"]
    assert "BILLING_DB_TENANT_API_PASSWORD" in db_env["BILLING_DB_TENANT_API_PASSWORD"]
    init = (REPO / "include/rafay_devkit/data/billing-postgres-init/10-billing-logins.sh").read_text()
    assert f"CREATE ROLE {DEFAULT_TENANT_API_ROLE} NOLOGIN;" in init
    assert (f"CREATE ROLE billing_tenant_api LOGIN PASSWORD :'tenant_api_password' IN ROLE "
            f"{DEFAULT_TENANT_API_ROLE};") in init
    assert service["depends_on"] == {"billing-postgres": {"condition": "service_healthy"}}
    published = interpolate(service["ports"][0], active)
    assert published == f"127.0.0.1:{active['TENANT_API_PORT']}:{args.port}"
    assert f"127.0.0.1:{args.port}/healthz" in " ".join(service["healthcheck"]["test"])
    for name, other in services.items():
        assert "tenant-api" not in (other.get("depends_on") or {}), f"{name} depends on the tenant API"
