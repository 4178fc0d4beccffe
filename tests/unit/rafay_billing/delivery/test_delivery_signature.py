"""The delivery signature a receiver checks, and which answers are final, failed or retried."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from rafay_billing.delivery.policy import (
    DELIVERED,
    FAILED,
    RETRY,
    RetryPolicy,
    classify_error,
    classify_response,
    excerpt,
    parse_retry_after,
)
from rafay_billing.delivery.signature import sign, verify_signature

BODY = '{"document_id":"inv-1","subtotal":"12.50","org":"Zürich AG"}'.encode()
NOW = 1_800_000_000


def test_a_signature_verifies_and_names_its_timestamp() -> None:
    header = sign("s3cret", BODY, NOW)
    assert header.startswith(f"t={NOW},v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature("s3cret", header, BODY, NOW + 10, tolerance=300)
    # the reference computation a receiver in another language does
    import hashlib
    import hmac

    assert header.split("v1=")[1] == hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("case", ["wrong secret", "changed body", "stale", "future", "no t", "no v1", "garbage",
                                  "bad t", "moved t"])
def test_anything_else_is_refused(case: str) -> None:
    header = sign("s3cret", BODY, NOW)
    secret, body, now = "s3cret", BODY, NOW
    if case == "wrong secret":
        secret = "other"
    elif case == "changed body":
        body = BODY.replace(b"12.50", b"1.50")
    elif case == "stale":
        now = NOW + 301
    elif case == "future":
        now = NOW - 301
    elif case == "no t":
        header = header.split(",", 1)[1]
    elif case == "no v1":
        header = header.split(",", 1)[0]
    elif case == "garbage":
        header = "Bearer abc"
    elif case == "bad t":
        header = header.replace(f"t={NOW}", "t=soon")
    elif case == "moved t":  # the same v1 under another timestamp (a replay that edits t)
        header = header.replace(f"t={NOW}", f"t={NOW + 1}")
    assert not verify_signature(secret, header, body, now, tolerance=300)


def test_any_of_several_v1_may_match_while_a_secret_is_rotated() -> None:
    old, new = sign("old", BODY, NOW), sign("new", BODY, NOW)
    both = f"{old},v1={new.split('v1=')[1]}"
    assert verify_signature("new", both, BODY, NOW) and verify_signature("old", both, BODY, NOW)


@pytest.mark.parametrize(("status", "verdict"), [
    (200, DELIVERED), (201, DELIVERED), (202, DELIVERED), (204, DELIVERED),
    (301, FAILED), (400, FAILED), (401, FAILED), (403, FAILED), (404, FAILED), (409, FAILED), (422, FAILED),
    (429, RETRY), (500, RETRY), (502, RETRY), (503, RETRY), (504, RETRY),
])
def test_answers_are_classified(status: int, verdict: str) -> None:
    outcome = classify_response(status, {}, "x" * 5000)
    assert outcome.verdict == verdict and outcome.status_code == status
    assert len(outcome.response or "") == 1024


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
    assert classify_response(429, {"Retry-After": "7"}, "").retry_after == 7
    assert parse_retry_after("Sun, 01 Nov 2026 12:00:30 GMT", now) == 30
    assert parse_retry_after("Sun, 01 Nov 2026 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_the_backoff_doubles_honours_retry_after_and_stops() -> None:
    policy = RetryPolicy(max_attempts=4, backoff_seconds=2, max_backoff_seconds=5, max_retry_after_seconds=60)
    assert [policy.delay(n, None) for n in (1, 2, 3, 4)] == [2, 4, 5, None]
    assert policy.delay(1, 30) == 30 and policy.delay(1, 61) is None


def test_network_failures_are_retried_and_other_errors_are_not() -> None:
    for exc in (requests.ReadTimeout("slow"), requests.ConnectTimeout("no"), requests.ConnectionError("reset")):
        assert classify_error(exc).verdict == RETRY
    assert classify_error(requests.exceptions.InvalidURL("bad")) is None
    assert classify_error(ValueError("bug")) is None


def test_excerpts_are_bounded_in_bytes_on_a_character_boundary() -> None:
    assert excerpt("é" * 600) == "é" * 512 and excerpt("ok") == "ok" and excerpt(None) is None
