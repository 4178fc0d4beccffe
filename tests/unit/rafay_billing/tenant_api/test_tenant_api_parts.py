"""The tenant API's pure parts: the cursor, the token format, the rate limiter, --expires."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from rafay_billing.tenant_api import tokens
from rafay_billing.tenant_api.cli import UsageError, parse_expiry
from rafay_billing.tenant_api.cursor import CursorError, decode_cursor, encode_cursor
from rafay_billing.tenant_api.ratelimit import RateLimiter

KEY = {"usage_date": date(2026, 10, 30), "profile_type": "compute", "profile": "vm ü", "instance_key": "name:x'1",
       "dimension": "", "covered_by": "", "charge_level": "day", "charge_class": "regular", "correction_seq": 0, "entry": "charge"}


def test_a_cursor_round_trips_and_is_bound_to_its_period() -> None:
    cursor = encode_cursor("2026-10", KEY)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    params = decode_cursor(cursor, "2026-10")
    assert params["k_usage_date"] == date(2026, 10, 30) and params["k_instance_key"] == "name:x'1"
    assert params["k_profile"] == "vm ü" and params["k_correction_seq"] == 0
    with pytest.raises(CursorError):
        decode_cursor(cursor, "2026-11")


@pytest.mark.parametrize("cursor", ["", "=", "a" * 3000, "not base64!", "' OR 1=1 --", "../x", "eyJ2IjoxfQ",
                                    "\x00", "Zm9v", "😀"])
def test_anything_else_is_not_a_cursor(cursor: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(cursor, "2026-10")


def test_token_format() -> None:
    token, token_id, secret = tokens.new_token()
    assert tokens.parse_token(token) == (token_id, secret)
    assert len(token_id) == 12 and len(secret) == 43
    for bad in ("", token + "x", token.upper(), "rbt_" + token_id, f"rbt_{token_id}_{secret[:-1]}", "x" * 10_000,
                f"rbt_{token_id}_{secret[:-1]}\x00", None):
        assert tokens.parse_token(bad) is None  # type: ignore[arg-type]
    assert tokens.new_token()[1] != token_id


def test_each_token_is_limited_on_its_own() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.acquire("a"), limiter.acquire("a")] == [0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(1.0)
    assert limiter.acquire("b") == 0.0
    now[0] = 1.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_expiry_forms() -> None:
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert parse_expiry(None, now) is None
    assert parse_expiry("90d", now) == now + timedelta(days=90)
    assert parse_expiry("12h", now) == now + timedelta(hours=12)
    assert parse_expiry("2027-01-31", now) == datetime(2027, 1, 31, tzinfo=UTC)
    assert parse_expiry("2027-01-31T06:00:00Z", now) == datetime(2027, 1, 31, 6, tzinfo=UTC)
    for bad in ("soon", "2027-02-30", "2027-01-31T06:00:00", "-1d"):
        with pytest.raises(UsageError, match="--expires"):
            parse_expiry(bad, now)


def test_every_statement_that_reads_tenant_data_is_scoped_by_the_tokens_org() -> None:
    from rafay_billing.db import SQL_DIR, sql

    not_tenant_data = {"health.sql", "role_check.sql", "session.sql", "demo_org.sql", "org_known.sql",
                       "insert_token.sql", "revoke_token.sql", "token_info.sql", "list_tokens.sql",
                       "find_token.sql", "touch_token.sql"}
    files = sorted(p.name for p in SQL_DIR.joinpath("tenant_api").iterdir() if p.name.endswith(".sql"))
    scoped = [name for name in files if name not in not_tenant_data]
    assert set(scoped) == {"documents.sql", "document.sql", "document_lines.sql", "period_issued.sql",
                           "line_items.sql", "daily.sql"}
    for name in scoped:
        text = sql(f"tenant_api/{name}")
        assert "org_id = %(org_id)s" in text, name
        assert not re.search(r"\{[A-Za-z_]+\}", text), f"{name} is a template: tenant values must be parameters"
