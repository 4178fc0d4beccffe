"""Tunables come from ``[rafay_billing]`` in Airflow's config, with the older env names as a fallback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rafay_provider import settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRFLOW__RAFAY_BILLING__EXTRACT_RETRIES", "RAFAY_BILLING_EXTRACT_RETRIES",
                 "AIRFLOW__RAFAY_BILLING__EXTRACT_RETRY_DELAY_SECONDS", "RAFAY_BILLING_EXTRACT_RETRY_DELAY_SECONDS",
                 "AIRFLOW__RAFAY_BILLING__RETRY_DELAY_SECONDS", "RAFAY_BILLING_RETRY_DELAY_SECONDS",
                 "AIRFLOW__RAFAY_BILLING__RATING_CONNECTIONS", "RAFAY_BILLING_RATING_CONNECTIONS"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    assert settings.extract_retries() == 2
    assert settings.extract_retry_delay() == timedelta(seconds=120)
    assert settings.retry_delay() == timedelta(seconds=60)
    assert settings.rating_connections() == 2


def test_airflow_config_wins_over_the_legacy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAFAY_BILLING_EXTRACT_RETRIES", "7")
    assert settings.extract_retries() == 7
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__EXTRACT_RETRIES", "0")
    assert settings.extract_retries() == 0
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__RETRY_DELAY_SECONDS", "1.5")
    assert settings.retry_delay() == timedelta(seconds=1.5)


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
def test_a_bad_retry_count_names_the_setting(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__EXTRACT_RETRIES", value)
    with pytest.raises(settings.SettingsError, match=r"\[rafay_billing\] extract_retries .* whole number"):
        settings.extract_retries()


def test_rating_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__RATING_CONNECTIONS", "1")
    assert settings.rating_connections() == 1
    for bad in ("0", "two", "-3"):
        monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__RATING_CONNECTIONS", bad)
        with pytest.raises(settings.SettingsError, match=r"\[rafay_billing\] rating_connections .*(>= 1|whole number)"):
            settings.rating_connections()


def test_the_names_are_the_contract_s() -> None:
    assert (settings.RAFAY_CONN_ID, settings.BILLING_CONN_ID) == ("rafay_default", "billing_postgres")
    assert (settings.DATA_URI_VARIABLE, settings.PRICE_BOOK_VARIABLE) == ("billing_data_uri", "billing_price_book_uri")
    assert settings.BILLING_DAG_ID == "rafay_usage_billing"


def test_the_config_section_is_declared_to_airflow_with_every_option_the_settings_read(tmp_path) -> None:
    """`airflow config list` shows [rafay_billing]: each option with a description, type, default and example."""
    import os
    import subprocess
    import sys

    from rafay_provider import get_provider_info

    declared = get_provider_info()["config"][settings.SECTION]
    assert declared["description"]
    for key, option in declared["options"].items():
        assert {"description", "type", "default", "example", "version_added"} <= option.keys(), key
        assert option["description"] and option["default"] is not None and option["example"], key
    read = {"billing_start_date", "extract_retries", "extract_retry_delay_seconds", "retry_delay_seconds",
            "rating_connections", "invoice_issuer"}
    assert read <= declared["options"].keys()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RAFAY_BILLING_"))}
    env["AIRFLOW_HOME"] = str(tmp_path)
    shown = subprocess.run([sys.executable, "-m", "airflow", "config", "list", "--section", settings.SECTION,
                            "--show-values"], env=env, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for key in read:
        assert f"\n{key} = {declared['options'][key]['default']}\n" in shown.stdout, (key, shown.stdout[-2000:])


# --- approval of the close's invoices (issue 23, part 1) ---------------------------------------------

@pytest.fixture
def _no_approval_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CLOSE_APPROVAL", "APPROVAL_ASSIGNED_USERS", "APPROVAL_TIMEOUT_HOURS"):
        monkeypatch.delenv(f"AIRFLOW__RAFAY_BILLING__{key}", raising=False)


def test_approval_defaults_issue_at_once(_no_approval_env: None) -> None:
    assert settings.close_approval() == "none"
    assert settings.approval_assigned_users() == []
    assert settings.approval_timeout() == timedelta(hours=72)
    for key in ("close_approval", "approval_assigned_users", "approval_timeout_hours"):
        option = settings.CONFIG_OPTIONS[key]
        assert option["description"] and option["type"] and option["example"] and option["default"] is not None


def test_approval_settings(monkeypatch: pytest.MonkeyPatch, _no_approval_env: None) -> None:
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__CLOSE_APPROVAL", "Required")
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__APPROVAL_ASSIGNED_USERS", " lead:Finance Lead , ctl ,")
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__APPROVAL_TIMEOUT_HOURS", "0")
    assert settings.close_approval() == "required"
    assert settings.approval_assigned_users() == [{"id": "lead", "name": "Finance Lead"}, {"id": "ctl", "name": "ctl"}]
    assert settings.approval_timeout() is None  # 0: wait without limit


@pytest.mark.parametrize(("key", "value", "says"), [
    ("CLOSE_APPROVAL", "yes", "none or required"),
    ("APPROVAL_TIMEOUT_HOURS", "-2", "hours >= 0"),
    ("APPROVAL_TIMEOUT_HOURS", "soon", "hours >= 0"),
    ("APPROVAL_ASSIGNED_USERS", ":Nameless", "no user id"),
])
def test_bad_approval_settings_name_the_setting(monkeypatch: pytest.MonkeyPatch, _no_approval_env: None,
                                                key: str, value: str, says: str) -> None:
    monkeypatch.setenv(f"AIRFLOW__RAFAY_BILLING__{key}", value)
    with pytest.raises(settings.SettingsError, match=rf"\[rafay_billing\] {key.lower()} .*{says}"):
        {"CLOSE_APPROVAL": settings.close_approval, "APPROVAL_TIMEOUT_HOURS": settings.approval_timeout,
         "APPROVAL_ASSIGNED_USERS": settings.approval_assigned_users}[key]()
