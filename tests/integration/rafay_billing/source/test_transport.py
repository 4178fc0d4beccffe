"""The Rafay connection's transport options against real servers (issue 23, part 5): a local forward proxy
(tests/support/forward_proxy.py) in front of the simulator, and the TLS simulator asking for a client
certificate (mutual TLS). Through the hook, as a task reads the API."""

from __future__ import annotations

import json

import pytest

from rafay_billing.errors import RafayConfigError, RafayTransportError
from rafay_billing.source.client import RafayClient, RetryPolicy
from rafay_provider.hooks.rafay import RafayHook
from tests.support.forward_proxy import ForwardProxy


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRFLOW_CONN_RAFAY_DEFAULT", "RAFAY_CONSOLE_URL", "RAFAY_DEFAULT_API_KEY", "HTTP_PROXY",
                 "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def proxy():
    with ForwardProxy() as running:
        yield running


def _connection(monkeypatch: pytest.MonkeyPatch, sim, **extra: object) -> None:
    conn = {"conn_type": "rafay", "host": sim.url, "password": sim.api_key, "extra": {"max_retries": 1, **extra}}
    monkeypatch.setenv("AIRFLOW_CONN_RAFAY_DEFAULT", json.dumps(conn))


def test_https_console_through_an_http_proxy_is_a_tunnel_the_proxy_cannot_read(
    rafay_sim_factory, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = rafay_sim_factory(orgs=3, tls=True)
    _connection(monkeypatch, sim, ca_bundle=sim.ca_bundle, proxies={"https": proxy.url})
    hook = RafayHook()
    orgs = list(hook.iter_organizations())
    assert [o["metadata"]["name"] for o in orgs] == [o.org_id for o in sim.dataset.orgs]
    seen = proxy.requests
    host_port = sim.url.removeprefix("https://")
    assert seen and {r.method for r in seen} == {"CONNECT"} and {r.target for r in seen} == {host_port}
    assert all(r.tunnel_bytes > 0 for r in seen)
    # The proxy saw a tunnel: no request line, no header, no key.
    assert not any(sim.api_key in json.dumps(r.headers) for r in seen)
    assert sim.requests and all(r.path.startswith("/v2/organizations") for r in sim.requests)


def test_plain_http_console_through_the_proxy_only_when_allowed(
    rafay_sim, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connection(monkeypatch, rafay_sim, proxies={"http": proxy.url})
    with pytest.raises(RafayConfigError, match="over plain http through proxy"):
        RafayHook().get_conn()
    assert proxy.requests == [] and rafay_sim.requests == []

    _connection(monkeypatch, rafay_sim, proxies={"http": proxy.url}, allow_insecure_http=True)
    orgs = list(RafayHook().iter_organizations())
    assert len(orgs) == len(rafay_sim.dataset.orgs)
    forwarded = proxy.requests
    # Every request the console answered went through the proxy (absolute URI in the request line),
    # and this proxy did read the key: exactly why it takes allow_insecure_http.
    assert forwarded and all(r.method == "GET" and r.target.startswith(rafay_sim.url + "/v2/organizations")
                             for r in forwarded)
    assert len(forwarded) == len(rafay_sim.requests)
    assert all(r.headers.get("x-api-key") == rafay_sim.api_key for r in forwarded)


def test_environment_proxy_with_trust_env_and_without(
    rafay_sim_factory, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = rafay_sim_factory(orgs=2, tls=True)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    _connection(monkeypatch, sim, ca_bundle=sim.ca_bundle)
    assert RafayHook().test_connection()[0]
    assert [r.method for r in proxy.requests] == ["CONNECT"]
    _connection(monkeypatch, sim, ca_bundle=sim.ca_bundle, trust_env=False)
    assert RafayHook().test_connection()[0]
    assert len(proxy.requests) == 1  # direct this time


def test_console_asking_for_a_client_certificate(
    rafay_sim_factory, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = rafay_sim_factory(orgs=2, tls=True, client_cert=True)
    # Without the certificate the handshake is refused (the error names cert).
    _connection(monkeypatch, sim, ca_bundle=sim.ca_bundle)
    ok, message = RafayHook().test_connection()
    assert not ok and "cert" in message and sim.requests == []
    # With it (and through the proxy's tunnel too: the certificate is presented inside it).
    _connection(monkeypatch, sim, ca_bundle=sim.ca_bundle, cert=sim.client_cert, cert_key=sim.client_key)
    assert RafayHook().test_connection() == (True, f"Connected to {sim.url}: 2 organization(s) visible")
    _connection(monkeypatch, sim, ca_bundle=sim.ca_bundle, cert=sim.client_cert, cert_key=sim.client_key,
                proxies={"https": proxy.url})
    assert RafayHook().test_connection()[0] and [r.method for r in proxy.requests] == ["CONNECT"]
    # The Airflow-free client alike (the rafay-billing command uses it directly).
    client = RafayClient(sim.url, sim.api_key, verify=sim.ca_bundle, cert=(sim.client_cert, sim.client_key),
                         retry=RetryPolicy(attempts=1))
    assert len(list(client.iter_organizations())) == 2
    bare = RafayClient(sim.url, sim.api_key, verify=sim.ca_bundle, retry=RetryPolicy(attempts=1))
    with pytest.raises(RafayTransportError):
        list(bare.iter_organizations())
