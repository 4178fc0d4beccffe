"""The ``rafay`` connection's transport extras (issue 23, part 5): ``proxies``, ``trust_env``, ``cert`` and
``cert_key``: declared as form fields, parsed and validated by the hook (errors name the extra), passed
to the client."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rafay_billing.errors import RafayConfigError
from rafay_provider import RAFAY_CONN_FIELDS
from rafay_provider.hooks.rafay import RafayHook

KEY = "hook-transport-key"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRFLOW_CONN_RAFAY_DEFAULT", "RAFAY_CONSOLE_URL", "RAFAY_DEFAULT_API_KEY", "RAFAY_ALLOW_INSECURE_HTTP",
                 "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def _connection(monkeypatch: pytest.MonkeyPatch, host: str = "rafay.acme.com", **extra: object) -> None:
    conn = {"conn_type": "rafay", "host": host, "password": KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_RAFAY_DEFAULT", json.dumps(conn))


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory):
    from rafay_simulator.tls import make_certificates

    return make_certificates(directory=str(tmp_path_factory.mktemp("tls")))


def test_transport_extras_are_form_fields() -> None:
    for name in ("proxies", "trust_env", "cert", "cert_key"):
        assert RAFAY_CONN_FIELDS[name]["label"] and RAFAY_CONN_FIELDS[name]["description"], name
    assert RAFAY_CONN_FIELDS["trust_env"]["schema"]["default"] is True


@pytest.mark.parametrize(
    "proxies",
    [
        {"https": "http://proxy.acme.com:3128"},
        '{"https": "http://proxy.acme.com:3128"}',  # as the form's text field stores it
    ],
)
def test_proxies_extra_reaches_the_client(monkeypatch: pytest.MonkeyPatch, proxies: object) -> None:
    _connection(monkeypatch, proxies=proxies)
    client = RafayHook().get_conn()
    assert client.proxy == "http://proxy.acme.com:3128"
    _connection(monkeypatch, extra__rafay__proxies=proxies)  # the form's key
    assert RafayHook().get_conn().proxy == "http://proxy.acme.com:3128"


def test_trust_env_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://envproxy.acme.com:3128")
    _connection(monkeypatch)
    assert RafayHook().get_settings().trust_env is True
    assert RafayHook().get_conn().proxy == "http://envproxy.acme.com:3128"
    for off in (False, "false", "0"):
        _connection(monkeypatch, trust_env=off)
        assert RafayHook().get_conn().proxy is None
    # The form saves trust_env true by default: given proxies still win.
    _connection(monkeypatch, trust_env=True, proxies={"all": "http://mine.acme.com:3128"})
    assert RafayHook().get_conn().proxy == "http://mine.acme.com:3128"


def test_cert_extras_reach_the_client(monkeypatch: pytest.MonkeyPatch, tls_files, tmp_path: Path) -> None:
    _connection(monkeypatch, cert=tls_files.client_cert, cert_key=tls_files.client_key)
    client = RafayHook().get_conn()
    assert client.cert == (tls_files.client_cert, tls_files.client_key)
    assert client._send_kwargs["cert"] == client.cert
    _connection(monkeypatch, cert=[tls_files.client_cert, tls_files.client_key])
    assert RafayHook().get_settings().cert == (tls_files.client_cert, tls_files.client_key)
    combined = tmp_path / "combined.pem"
    combined.write_text(Path(tls_files.client_cert).read_text() + Path(tls_files.client_key).read_text())
    _connection(monkeypatch, extra__rafay__cert=str(combined), extra__rafay__cert_key="")
    assert RafayHook().get_settings().cert == str(combined)


@pytest.mark.parametrize(
    ("host", "extra", "message"),
    [
        ("rafay.acme.com", {"proxies": "http://proxy:3128"}, "extra proxies must be a JSON object"),
        ("rafay.acme.com", {"proxies": ["http://p:1"]}, "extra proxies must be a JSON object"),
        ("rafay.acme.com", {"proxies": {"https": "socks5://p:1080"}}, "extra proxies: the proxy for 'https' must be"),
        ("rafay.acme.com", {"proxies": {"ftp": "http://p:1"}}, "extra proxies: key 'ftp'"),
        ("rafay.acme.com", {"trust_env": "sometimes"}, "extra trust_env must be true or false"),
        ("rafay.acme.com", {"cert": "/nope/client.pem"}, "extra cert: '/nope/client.pem' is not a readable file"),
        ("rafay.acme.com", {"cert_key": "/nope/key.pem"}, "extra cert_key is set without extra cert"),
        ("rafay.acme.com", {"cert": ["a", "b"], "cert_key": "c"}, "extra cert must be a PEM file path"),
        ("http://127.0.0.1:8080", {"proxies": {"http": "http://127.0.0.1:3128"}},
         "refusing to send the Rafay API key over plain http through proxy http://127.0.0.1:3128"),
    ],
)
def test_bad_transport_extras_name_the_extra(
    monkeypatch: pytest.MonkeyPatch, host: str, extra: dict, message: str
) -> None:
    _connection(monkeypatch, host=host, **extra)
    with pytest.raises(RafayConfigError, match="^connection rafay_default: ") as info:
        RafayHook().get_conn()
    assert message in str(info.value) and KEY not in str(info.value)
    ok, text = RafayHook().test_connection()
    assert not ok and message in text


def test_cert_over_plain_http_is_refused(monkeypatch: pytest.MonkeyPatch, tls_files) -> None:
    _connection(monkeypatch, host="http://127.0.0.1:8080", cert=tls_files.client_cert, cert_key=tls_files.client_key)
    with pytest.raises(RafayConfigError, match="connection rafay_default: extra cert is set but the console URL "
                                               "http://127.0.0.1:8080 is plain http"):
        RafayHook().get_conn()


def test_proxy_password_is_masked_and_never_logged(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    _connection(monkeypatch, proxies={"https": "http://ops:proxy-pass-987@proxy.acme.com:3128"})
    with caplog.at_level(logging.INFO):
        client = RafayHook().get_conn()
    assert client.proxy == "http://ops:proxy-pass-987@proxy.acme.com:3128"
    assert "proxy-pass-987" not in caplog.text and "***@proxy.acme.com" in caplog.text
    assert redact("x proxy-pass-987 y") == "x *** y"
