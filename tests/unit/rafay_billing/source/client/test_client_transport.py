"""The client's transport options (issue 23, part 5): proxies, the environment's proxies, the client
certificate, and the rule that a proxy never reads the API key over plain http."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rafay_billing.errors import RafayConfigError
from rafay_billing.source.client import (
    RafayClient,
    check_client_cert,
    check_proxies,
    check_proxy_transport,
    check_proxy_url,
)
from rafay_billing.source.client.transport import redact

HTTPS = "https://rafay.acme.com"
KEY = "transport-secret-key"


@pytest.fixture(autouse=True)
def _no_env_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


# --- parsing ---------------------------------------------------------------------------------------


def test_proxies_in_requests_form_are_accepted() -> None:
    assert check_proxies({"https": "http://proxy.acme.com:3128", "HTTP": "proxy.acme.com:3128",
                          "all://rafay.acme.com": "https://p2:443", "http://x.acme.com": ""}) == {
        "https": "http://proxy.acme.com:3128",
        "http": "http://proxy.acme.com:3128",
        "all://rafay.acme.com": "https://p2:443",
    }
    assert check_proxies(None) == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["http://p:1"], "must be a JSON object"),
        ({"ftp": "http://p:1"}, "key 'ftp' must be http, https, all"),
        ({"https": "socks5://p:1080"}, "must be an http:// or https:// URL, got scheme 'socks5'"),
        ({"https": "http://"}, "has no host"),
        ({"https": "http://p:notaport"}, "is not a valid URL"),
        ({"https": 3128}, "must be a URL text"),
    ],
)
def test_bad_proxies_say_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(RafayConfigError, match="^extra proxies") as info:
        check_proxies(value, "extra proxies")  # type: ignore[arg-type]
    assert message in str(info.value)


def test_proxy_credentials_never_show_in_messages() -> None:
    assert redact("http://user:pw-123@proxy:3128") == "http://***@proxy:3128"
    with pytest.raises(RafayConfigError) as info:
        check_proxy_url("ftp://user:pw-123@proxy:3128")
    assert "pw-123" not in str(info.value)


# --- the rule: a proxy never reads the key over plain http --------------------------------------------


@pytest.mark.parametrize("proxy", ["http://proxy.acme.com:3128", "https://proxy.acme.com", "http://127.0.0.1:3128"])
def test_https_console_through_any_proxy_is_a_tunnel(proxy: str) -> None:
    check_proxy_transport(HTTPS, proxy)  # CONNECT: the proxy relays TLS, never sees the key
    client = RafayClient(HTTPS, KEY, proxies={"https": proxy})
    assert client.proxy == proxy and client._send_kwargs["proxies"] == {"https": proxy}


@pytest.mark.parametrize(
    ("console", "proxy"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:3128"),  # the proxy reads the key, even on loopback
        ("http://127.0.0.1:8080", "http://proxy.acme.com:3128"),
        ("http://127.0.0.1:8080", "https://proxy.acme.com"),  # it decrypts, then forwards plain http
        ("http://10.0.0.5:8080", "http://proxy.acme.com:3128"),
    ],
)
def test_plain_http_console_through_a_proxy_needs_allow_insecure_http(
    console: str, proxy: str, caplog: pytest.LogCaptureFixture
) -> None:
    # (a network console is refused by the existing rule first; the proxy rule for loopback ones)
    with pytest.raises(RafayConfigError, match="refusing to send the Rafay API key over plain http (through|to)"):
        RafayClient(console, KEY, proxies={"http": proxy})
    with caplog.at_level(logging.WARNING, "rafay_billing.source.client"):
        client = RafayClient(console, KEY, proxies={"all": proxy}, allow_insecure_http=True)
    assert client.proxy == proxy and "through proxy" in caplog.text and KEY not in caplog.text


def test_a_proxy_for_the_other_scheme_or_host_is_not_used() -> None:
    client = RafayClient("http://127.0.0.1:8080", KEY, proxies={"https": "http://proxy.acme.com:3128",
                                                                 "all://other.acme.com": "http://p:1"})
    assert client.proxy is None and client._send_kwargs["proxies"] == {}


# --- the environment's proxies (trust_env) ------------------------------------------------------------


def test_environment_proxies_are_used_with_trust_env_and_no_proxy_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://envproxy.acme.com:3128")
    assert RafayClient(HTTPS, KEY).proxy == "http://envproxy.acme.com:3128"
    assert RafayClient(HTTPS, KEY, trust_env=False).proxy is None
    # Given proxies win over the environment's.
    assert RafayClient(HTTPS, KEY, proxies={"https": "http://mine:1"}).proxy == "http://mine:1"
    monkeypatch.setenv("NO_PROXY", "rafay.acme.com")
    assert RafayClient(HTTPS, KEY).proxy is None


def test_environment_proxy_for_a_plain_http_console_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://envproxy.acme.com:3128")
    with pytest.raises(RafayConfigError, match="NO_PROXY, or trust_env false"):
        RafayClient("http://127.0.0.1:8080", KEY)
    assert RafayClient("http://127.0.0.1:8080", KEY, trust_env=False).proxy is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert RafayClient("http://127.0.0.1:8080", KEY).proxy is None
    monkeypatch.setenv("HTTP_PROXY", "socks5://envproxy:1080")
    monkeypatch.delenv("NO_PROXY")
    with pytest.raises(RafayConfigError, match="the environment's proxy .* must be an http"):
        RafayClient("http://127.0.0.1:8080", KEY)


def test_trust_env_false_also_ignores_the_environment_ca_bundle(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    bundle = tmp_path / "env-ca.pem"
    bundle.write_text("x")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert RafayClient(HTTPS, KEY)._send_kwargs["verify"] == str(bundle)
    assert RafayClient(HTTPS, KEY, trust_env=False)._send_kwargs["verify"] is True


# --- the client certificate ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory):
    from rafay_simulator.tls import make_certificates

    return make_certificates(directory=str(tmp_path_factory.mktemp("tls")))


def test_client_certificate_forms_are_passed_to_the_session(tls_files, tmp_path: Path) -> None:
    pair = (tls_files.client_cert, tls_files.client_key)
    client = RafayClient(HTTPS, KEY, cert=pair)
    assert client.cert == pair and client._send_kwargs["cert"] == pair
    combined = tmp_path / "client-combined.pem"
    combined.write_text(Path(tls_files.client_cert).read_text() + Path(tls_files.client_key).read_text())
    assert RafayClient(HTTPS, KEY, cert=str(combined))._send_kwargs["cert"] == str(combined)
    assert RafayClient(HTTPS, KEY)._send_kwargs["cert"] is None


def test_bad_client_certificates_say_what_to_fix(tls_files, tmp_path: Path) -> None:
    with pytest.raises(RafayConfigError, match="'/nope.pem' is not a readable file"):
        check_client_cert("/nope.pem", HTTPS)
    with pytest.raises(RafayConfigError, match="not a usable PEM certificate"):
        check_client_cert(tls_files.client_cert, HTTPS)  # no key in the file
    with pytest.raises(RafayConfigError, match="not a usable PEM certificate and key"):
        check_client_cert((tls_files.client_cert, tls_files.key), HTTPS)  # the server's key: no match
    with pytest.raises(RafayConfigError, match="only presented over https"):
        check_client_cert((tls_files.client_cert, tls_files.client_key), "http://127.0.0.1:8080")
    with pytest.raises(RafayConfigError, match=r"\[certificate, key\] pair"):
        check_client_cert(("a", "b", "c"), HTTPS)  # type: ignore[arg-type]
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(tls_files.client_key).read_bytes(), None)
    encrypted = tmp_path / "enc-key.pem"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"pass")))
    with pytest.raises(RafayConfigError, match="the private key is encrypted"):
        check_client_cert((tls_files.client_cert, str(encrypted)), HTTPS)
