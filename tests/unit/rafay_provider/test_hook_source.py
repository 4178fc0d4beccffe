"""The ``rafay`` connection's ``api`` extra chooses the usage source (issue 11)."""

from __future__ import annotations

import json

import pytest

from rafay_billing.errors import RafayConfigError
from rafay_billing.source.sources import PartnerOnlySource, PartnerSource, V2Source
from rafay_provider import RAFAY_CONN_FIELDS
from rafay_provider.hooks.rafay import RafayHook


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRFLOW_CONN_RAFAY_DEFAULT", "RAFAY_CONSOLE_URL", "RAFAY_DEFAULT_API_KEY", "RAFAY_API"):
        monkeypatch.delenv(name, raising=False)


def _connection(monkeypatch: pytest.MonkeyPatch, extra: dict) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_RAFAY_DEFAULT", json.dumps(
        {"conn_type": "rafay", "host": "rafay.acme.com", "password": "k", "extra": extra}))


@pytest.mark.parametrize(("extra", "source"), [
    ({}, V2Source), ({"api": "v2"}, V2Source), ({"api": "partner"}, PartnerSource),
    ({"api": " Partner "}, PartnerSource), ({"extra__rafay__api": "partner"}, PartnerSource), ({"api": ""}, V2Source),
    ({"api": "partner_only"}, PartnerOnlySource),
])
def test_the_api_extra_chooses_the_source(monkeypatch: pytest.MonkeyPatch, extra: dict, source: type) -> None:
    _connection(monkeypatch, extra)
    assert isinstance(RafayHook().get_source(), source)


def test_an_unknown_api_is_refused_naming_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, {"api": "v3"})
    with pytest.raises(RafayConfigError, match=r"extra api must be one of v2, partner, partner_only, got 'v3'"):
        RafayHook().get_source()


def test_the_environment_fallback_reads_rafay_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAFAY_CONSOLE_URL", "rafay.acme.com")
    monkeypatch.setenv("RAFAY_DEFAULT_API_KEY", "k")
    assert isinstance(RafayHook().get_source(), V2Source)
    monkeypatch.setenv("RAFAY_API", "partner")
    assert isinstance(RafayHook().get_source(), PartnerSource)


def test_the_form_shows_the_source_and_plain_http_switch_with_help() -> None:
    api = RAFAY_CONN_FIELDS["api"]
    assert api["schema"]["enum"] == ["v2", "partner", "partner_only"] and api["schema"]["default"] == "v2"
    assert "partner" in api["description"] and "metadata.name" in api["description"]
    assert "partner_only" in api["description"]
    assert "plain http" in RAFAY_CONN_FIELDS["allow_insecure_http"]["label"]
    assert RAFAY_CONN_FIELDS["allow_insecure_http"]["description"]


def test_the_test_button_of_a_partner_only_console(rafay_sim_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from rafay_simulator import Dataset, Instance, Org, Profile

    start = datetime(2026, 1, 1, tzinfo=UTC)
    dataset = Dataset([Org(f"o{i}", f"Org {i}", [Profile("vm", "compute", None, [], [Instance(f"i{i}", "vm", start)])],
                           uid=f"u00000{i}") for i in range(3)])
    sim = rafay_sim_factory(dataset=dataset, apis=("partner",), now=None)  # the real clock: yesterday has usage
    monkeypatch.setenv("AIRFLOW_CONN_RAFAY_DEFAULT", json.dumps(
        {"conn_type": "rafay", "host": sim.url, "password": sim.api_key, "extra": {"api": "partner_only"}}))
    assert RafayHook().test_connection() == (
        True, f"Connected to {sim.url}: 3 organization(s) visible through the partner API")
    # issue 21 rule 14 (b): api partner on this console is an error saying what to set, not a mode
    monkeypatch.setenv("AIRFLOW_CONN_RAFAY_DEFAULT", json.dumps(
        {"conn_type": "rafay", "host": sim.url, "password": sim.api_key, "extra": {"api": "partner"}}))
    ok, message = RafayHook().test_connection()
    assert not ok and "404" in message and "partner_only" in message
    monkeypatch.setenv("AIRFLOW_CONN_RAFAY_DEFAULT", json.dumps(
        {"conn_type": "rafay", "host": sim.url, "password": sim.api_key}))
    ok, message = RafayHook().test_connection()
    assert not ok and "404" in message
