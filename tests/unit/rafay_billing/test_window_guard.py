"""Issue 21 rule 2 (also): a window longer than ``max_window_days`` (default 62) is refused by the first
task unless the conf says ``{"allow_long_window": true}``: a typo must not re-bill years."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rafay_billing.window import WindowError, resolve_window

END = datetime(2026, 11, 20, tzinfo=UTC)
START = datetime(2026, 11, 19, tzinfo=UTC)


def test_days_beyond_the_cap_are_refused_saying_what_to_send() -> None:
    with pytest.raises(WindowError, match=r"365 days long, more than \[rafay_billing\] max_window_days \(62\).*"
                                          r'"allow_long_window": true'):
        resolve_window(START, END, {"days": 365})


def test_a_conf_window_beyond_the_cap_is_refused() -> None:
    conf = {"window_start": "2024-11-01T00:00:00Z", "window_end": "2026-11-01T00:00:00Z"}
    with pytest.raises(WindowError, match="max_window_days"):
        resolve_window(START, END, conf)


def test_the_cap_itself_and_allow_long_window_pass() -> None:
    assert len(resolve_window(START, END, {"days": 62})[0].days()) == 62
    assert len(resolve_window(START, END, {"days": 365, "allow_long_window": True})[0].days()) == 365
    assert len(resolve_window(START, END, {"days": 10}, max_days=5 + 5)[0].days()) == 10
    with pytest.raises(WindowError, match=r"\(9\)"):
        resolve_window(START, END, {"days": 10}, max_days=9)


@pytest.mark.parametrize("days", [1_000_000_000, 999_999_999, 800_000])
@pytest.mark.parametrize("allow", [False, True])
def test_days_reaching_before_the_year_1_fail_saying_so(days: int, allow: bool) -> None:
    """A typo's extra digits made an OverflowError (no "bad billing window" message, no cap checked)."""
    with pytest.raises(WindowError, match=f"days {days} reaches back before the year 1: check it for a typo"):
        resolve_window(START, END, {"days": days, "allow_long_window": allow})


def test_allow_long_window_must_be_a_boolean() -> None:
    with pytest.raises(WindowError, match="allow_long_window.*true or false"):
        resolve_window(START, END, {"days": 365, "allow_long_window": "yes"})


def test_settings_read_the_cap_and_the_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    from rafay_provider import settings

    monkeypatch.delenv("AIRFLOW__RAFAY_BILLING__MAX_WINDOW_DAYS", raising=False)
    monkeypatch.delenv("AIRFLOW__RAFAY_BILLING__SHRINK_GUARD_RATIO", raising=False)
    assert settings.max_window_days() == 62
    assert settings.shrink_guard_ratio() == Decimal("0.5")
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__MAX_WINDOW_DAYS", "400")
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__SHRINK_GUARD_RATIO", "0.8")
    assert settings.max_window_days() == 400
    assert settings.shrink_guard_ratio() == Decimal("0.8")
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__SHRINK_GUARD_RATIO", "1.5")
    with pytest.raises(settings.SettingsError, match="shrink_guard_ratio"):
        settings.shrink_guard_ratio()
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__MAX_WINDOW_DAYS", "0")
    with pytest.raises(settings.SettingsError, match="max_window_days"):
        settings.max_window_days()
