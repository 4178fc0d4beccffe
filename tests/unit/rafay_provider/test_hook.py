"""RafayHook and the ``rafay`` connection type: registration, resolution, fallback, masking, test button."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rafay_billing.errors import RafayConfigError
from rafay_provider import RAFAY_CONN_FIELDS, RAFAY_UI_FIELD_BEHAVIOUR, get_provider_info
from rafay_provider.hooks.rafay import RafayHook
from rafay_simulator import RafaySimulator


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRFLOW_CONN_RAFAY_DEFAULT", "AIRFLOW_CONN_RAFAY_OTHER", "RAFAY_CONSOLE_URL", "RAFAY_DEFAULT_API_KEY",
                 "RAFAY_ALLOW_INSECURE_HTTP"):
        monkeypatch.delenv(name, raising=False)


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str = "rafay_default", **fields: object) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "rafay", **fields}))


# --- registration --------------------------------------------------------------------------------


def test_airflow_lists_the_rafay_connection_type() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "providers", "hooks", "-o", "json"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    hooks = {h["connection_type"]: h for h in json.loads(proc.stdout[proc.stdout.index("[") :])}
    assert hooks["rafay"]["class"] == "rafay_provider.hooks.rafay.RafayHook"
    assert hooks["rafay"]["hook_name"] == "Rafay"
    assert hooks["rafay"]["conn_id_attribute_name"] == "rafay_conn_id"


def test_connection_form_is_declared_as_data() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    behaviour = manager.field_behaviours["rafay"]
    assert behaviour["relabeling"] == {"host": "Console URL", "password": "API key"}
    assert {"schema", "port", "login"} <= set(behaviour["hidden_fields"])
    widgets = {k for k in manager.connection_form_widgets if k.startswith("extra__rafay__")}
    assert widgets == {f"extra__rafay__{name}" for name in RAFAY_CONN_FIELDS}
    info = get_provider_info()["connection-types"][0]
    assert info["ui-field-behaviour"] is RAFAY_UI_FIELD_BEHAVIOUR
    assert RafayHook.get_ui_field_behaviour() == {
        "hidden_fields": RAFAY_UI_FIELD_BEHAVIOUR["hidden-fields"],
        "relabeling": RAFAY_UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": RAFAY_UI_FIELD_BEHAVIOUR["placeholders"],
    }
    assert (RafayHook.conn_type, RafayHook.default_conn_name, RafayHook.conn_name_attr) == (
        "rafay", "rafay_default", "rafay_conn_id"
    )


# --- resolution ----------------------------------------------------------------------------------


def test_connection_from_env_json_reads_the_simulator(rafay_sim: RafaySimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, host=rafay_sim.url, password=rafay_sim.api_key, extra={"page_size": 7, "concurrency": 3})
    hook = RafayHook()
    client = hook.get_conn()
    assert client is hook.get_conn()  # built once, reused
    assert (client.base_url, client.page_size, client.concurrency) == (rafay_sim.url, 7, 3)
    orgs = list(hook.iter_organizations())
    assert [o["metadata"]["name"] for o in orgs] == [o.org_id for o in rafay_sim.dataset.orgs]
    assert RafayHook(concurrency=5).get_conn().concurrency == 5


@pytest.mark.parametrize(
    ("fields", "base_url"),
    [
        ({"host": "rafay.acme.com"}, "https://rafay.acme.com"),
        ({"host": "rafay.acme.com", "port": 8443}, "https://rafay.acme.com:8443"),
        ({"host": "https://rafay.acme.com/"}, "https://rafay.acme.com"),
        ({"host": "http://127.0.0.1:8080"}, "http://127.0.0.1:8080"),
    ],
)
def test_host_forms(monkeypatch: pytest.MonkeyPatch, fields: dict, base_url: str) -> None:
    _connection(monkeypatch, password="k-1", **fields)
    assert RafayHook().get_settings().base_url == base_url


def test_uri_form_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_RAFAY_DEFAULT", "rafay://:uri-secret@rafay.acme.com?read_timeout=30&max_retries=2")
    settings = RafayHook().get_settings()
    assert (settings.base_url, settings.api_key, settings.read_timeout, settings.max_retries) == (
        "https://rafay.acme.com", "uri-secret", 30.0, 2
    )
    assert "uri-secret" not in repr(settings)


def test_extras_configure_the_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    extra = {"ca_bundle": str(bundle), "connect_timeout": "3", "extra__rafay__read_timeout": 45, "max_retries": 2}
    _connection(monkeypatch, host="rafay.acme.com", password="k-1", extra=extra)
    client = RafayHook().get_conn()
    assert client.verify == str(bundle) and client.timeout == (3.0, 45.0) and client.retry.attempts == 2
    _connection(monkeypatch, host="rafay.acme.com", password="k-1", extra={"verify": "false"})
    assert RafayHook().get_settings().verify is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"read_timeout": "soon"}, "extra read_timeout must be a positive number of seconds"),
        ({"page_size": 0}, "extra page_size must be a positive whole number"),
        ({"concurrency": 2.5}, "extra concurrency must be a positive whole number"),
        ({"ca_bundle": "/nope/ca.pem"}, "extra ca_bundle '/nope/ca.pem' is not a readable file"),
    ],
)
def test_bad_extras_say_which_one(monkeypatch: pytest.MonkeyPatch, extra: dict, message: str) -> None:
    _connection(monkeypatch, host="rafay.acme.com", password="k-1", extra=extra)
    with pytest.raises(RafayConfigError, match="connection rafay_default: ") as info:
        RafayHook().get_conn()
    assert message in str(info.value)


def test_missing_host_or_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, password="k-1")
    with pytest.raises(RafayConfigError, match="has no host"):
        RafayHook().get_conn()
    _connection(monkeypatch, host="rafay.acme.com")
    with pytest.raises(RafayConfigError, match="has no password"):
        RafayHook().get_conn()


def test_env_fallback_when_the_connection_is_not_defined(
    rafay_sim: RafaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAFAY_CONSOLE_URL", rafay_sim.url)
    monkeypatch.setenv("RAFAY_DEFAULT_API_KEY", rafay_sim.api_key)
    hook = RafayHook()
    assert hook.get_settings().source == "environment"
    assert len(list(hook.iter_organizations())) == len(rafay_sim.dataset.orgs)
    from airflow.sdk._shared.secrets_masker import redact

    assert redact(f"key={rafay_sim.api_key}") == "key=***"


def test_no_connection_and_no_env_says_what_to_set() -> None:
    with pytest.raises(RafayConfigError) as info:
        RafayHook().get_conn()
    message = str(info.value)
    assert "rafay_default is not defined" in message
    assert "RAFAY_CONSOLE_URL and RAFAY_DEFAULT_API_KEY are not set" in message


def test_other_connection_ids_do_not_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    monkeypatch.setenv("RAFAY_CONSOLE_URL", "rafay.acme.com")
    monkeypatch.setenv("RAFAY_DEFAULT_API_KEY", "k-1")
    with pytest.raises(AirflowNotFoundException, match="'rafay_other' is not defined"):
        RafayHook("rafay_other").get_conn()


def test_connection_key_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    _connection(monkeypatch, host="rafay.acme.com", password="mask-me-please-77")
    RafayHook().get_conn()
    assert redact("x mask-me-please-77 y") == "x *** y"


# --- the Test button ---------------------------------------------------------------------------------


def test_test_connection_lists_organizations(rafay_sim: RafaySimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, host=rafay_sim.url, password=rafay_sim.api_key)
    ok, message = RafayHook().test_connection()
    assert ok and message == f"Connected to {rafay_sim.url}: {len(rafay_sim.dataset.orgs)} organization(s) visible"


def test_test_connection_with_a_wrong_key_names_the_connection(
    rafay_sim: RafaySimulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _connection(monkeypatch, "rafay_other", host=rafay_sim.url, password="wrong-key-4321")
    ok, message = RafayHook("rafay_other").test_connection()
    assert not ok
    assert "HTTP 401" in message and "check the API key of connection rafay_other" in message
    assert "wrong-key-4321" not in message + caplog.text


def test_tls_console_with_a_ca_bundle_extra(rafay_sim_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = rafay_sim_factory(orgs=2, tls=True)
    _connection(monkeypatch, host=sim.url, password=sim.api_key, extra={"ca_bundle": sim.ca_bundle})
    assert RafayHook().test_connection() == (True, f"Connected to {sim.url}: 2 organization(s) visible")
    _connection(monkeypatch, host=sim.url, password=sim.api_key, extra={"max_retries": 1})
    ok, message = RafayHook().test_connection()
    assert not ok and "TLS failure" in message


# --- the key over plain http (issue 9, defect 10e) ------------------------------------------------------


def test_plain_http_to_a_network_host_needs_the_allow_insecure_http_extra(
    rafay_sim_factory, monkeypatch: pytest.MonkeyPatch, network_address: str, caplog: pytest.LogCaptureFixture
) -> None:
    sim = rafay_sim_factory(orgs=3, host="0.0.0.0")
    url = f"http://{network_address}:{sim.port}"
    _connection(monkeypatch, host=url, password=sim.api_key)
    with pytest.raises(RafayConfigError) as info:
        RafayHook().get_conn()
    message = str(info.value)
    assert message.startswith(f"connection rafay_default: refusing to send the Rafay API key over plain http to {network_address}")
    assert "allow_insecure_http: true" in message and sim.api_key not in message
    ok, text = RafayHook().test_connection()
    assert not ok and "refusing" in text and sim.requests == []
    for allowed in (True, "true", "1"):
        _connection(monkeypatch, host=url, password=sim.api_key, extra={"allow_insecure_http": allowed})
        assert RafayHook().test_connection() == (True, f"Connected to {url}: 3 organization(s) visible")
    assert "unencrypted" in caplog.text and sim.api_key not in caplog.text


def test_env_fallback_honours_rafay_allow_insecure_http(
    rafay_sim_factory, monkeypatch: pytest.MonkeyPatch, network_address: str
) -> None:
    sim = rafay_sim_factory(orgs=2, host="0.0.0.0")
    monkeypatch.setenv("RAFAY_CONSOLE_URL", f"http://{network_address}:{sim.port}")
    monkeypatch.setenv("RAFAY_DEFAULT_API_KEY", sim.api_key)
    with pytest.raises(RafayConfigError, match="^environment: refusing to send"):
        RafayHook().get_conn()
    monkeypatch.setenv("RAFAY_ALLOW_INSECURE_HTTP", "yes")
    assert len(list(RafayHook().iter_organizations())) == 2


def test_loopback_http_needs_nothing_and_bad_flags_are_named(rafay_sim, monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, host=rafay_sim.url, password=rafay_sim.api_key, extra={"listing_reads": 5})
    client = RafayHook().get_conn()
    assert client.retry.listing_reads == 5 and len(list(client.iter_organizations())) == len(rafay_sim.dataset.orgs)
    _connection(monkeypatch, host="rafay.acme.com", password="k-1", extra={"allow_insecure_http": "maybe"})
    with pytest.raises(RafayConfigError, match="extra allow_insecure_http must be true or false, got 'maybe'"):
        RafayHook().get_conn()
    _connection(monkeypatch, host="rafay.acme.com", password="k-1", extra={"listing_reads": 0})
    with pytest.raises(RafayConfigError, match="extra listing_reads must be a positive whole number"):
        RafayHook().get_conn()
