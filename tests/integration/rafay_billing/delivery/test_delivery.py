"""Delivery of issued documents to a billing system over real HTTP (a local receiver that verifies
signatures, refuses replays and injects 500s, timeouts, resets and 429s), from a real PostgreSQL whose
October was closed by the real close. The receiver's records and ``billing.deliveries`` are compared."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import requests

from rafay_billing import cli
from rafay_billing.delivery import state
from rafay_billing.delivery.payload import SCHEMA, load_document
from rafay_billing.delivery.policy import RetryPolicy
from rafay_billing.delivery.send import deliver_pending
from rafay_devkit.billing_receiver import Receiver
from tests.support.issued import OCTOBER, close_october

SECRET = "whsec-test-\u00e9-secret"
FAST = RetryPolicy(max_attempts=4, backoff_seconds=0.05, max_backoff_seconds=0.2, max_retry_after_seconds=5,
                   timeout=(2.0, 0.5))


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    close_october(pg_conn)
    return pg_conn


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(secret=SECRET, hold_seconds=1.2) as rec:
        yield rec


def transport(url: str) -> Any:
    session = requests.Session()

    def post(body: bytes, headers: dict[str, str], timeout: tuple[float, float]) -> requests.Response:
        return session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)

    return post


def run(conn: psycopg.Connection, rec: Receiver, policy: RetryPolicy = FAST, secret: str = SECRET):
    endpoint = state.endpoint_id(rec.url)
    state.enqueue_period(conn, endpoint, OCTOBER)
    return deliver_pending(conn, endpoint, secret, transport(rec.url), policy)


def documents(conn: psycopg.Connection) -> dict[str, str]:
    """invoice number -> id, in issue order."""
    return dict(conn.execute("SELECT invoice_number, invoice_id FROM billing.invoices ORDER BY invoice_seq"))


def rows(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return {r["invoice_id"]: r for r in cur.execute("SELECT * FROM billing.deliveries")}


def requests_per_document(rec: Receiver) -> dict[str, int]:
    counts: dict[str, int] = {}
    for seen in rec.requests:
        counts[seen.document_id] = counts.get(seen.document_id, 0) + 1
    return counts


# --- acknowledged once ------------------------------------------------------------------------------


def test_every_document_is_acknowledged_exactly_once_through_500s_timeouts_resets_and_429s(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    ids = list(documents(conn).values())
    assert len(ids) == 4
    receiver.faults.update({
        ids[0]: ["500", "503"],
        ids[1]: ["timeout", "slow-ack"],  # the second one is stored, but its answer never arrives
        ids[2]: ["reset", "reset-ack"],  # likewise, with a TCP reset
        ids[3]: ["429:1"],
    })
    report = run(conn, receiver)

    assert report.undelivered == {} and sorted(report.delivered) == sorted(documents(conn))
    # the receiver stored each document once, and the bytes it stored are what the database says was sent
    assert dict(receiver.acknowledgements) == {doc: 1 for doc in ids}
    db = rows(conn)
    assert receiver.stored_sha256() == {doc: row["payload_sha256"] for doc, row in db.items()}
    assert {row["status"] for row in db.values()} == {"delivered"}
    # every request was signed right, none was a replay, and the database counted every one of them
    assert receiver.bad_signatures == 0 and receiver.replays == 0
    assert all(seen.signature_ok and seen.idempotency_key == seen.document_id for seen in receiver.requests)
    assert requests_per_document(receiver) == {doc: row["attempts"] for doc, row in db.items()}
    assert {doc: row["attempts"] for doc, row in db.items()} == {ids[0]: 3, ids[1]: 3, ids[2]: 3, ids[3]: 2}
    assert {doc: row["last_status_code"] for doc, row in db.items()} == {
        ids[0]: 201, ids[1]: 200, ids[2]: 200, ids[3]: 201,  # 200: the receiver already had it (duplicate)
    }
    # the 429's Retry-After (1 s) was honoured although the backoff alone would have been 0.05 s
    times = [seen.at for seen in receiver.requests if seen.document_id == ids[3]]
    assert times[1] - times[0] >= 0.95

    # a second run sends nothing: delivered is final
    before = len(receiver.requests)
    assert run(conn, receiver).requests == 0 and len(receiver.requests) == before


def test_the_body_is_the_document_with_money_as_decimal_strings(conn: psycopg.Connection, receiver: Receiver) -> None:
    run(conn, receiver)
    invoices = {i: (n, s, c) for n, i, s, c in conn.execute(
        "SELECT invoice_number, invoice_id, subtotal, currency FROM billing.invoices")}

    def no_floats(text: str) -> Any:
        raise AssertionError(f"a float in the payload: {text}")

    for doc, body in receiver.stored.items():
        payload = json.loads(body, parse_float=no_floats)
        number, subtotal, currency = invoices[doc]
        assert payload["schema"] == SCHEMA and payload["document_id"] == doc and payload["document_type"] == "invoice"
        document = payload["document"]
        assert (document["invoice_number"], document["currency"]) == (number, currency)
        assert document["subtotal"] == format(subtotal, "f")
        assert sum(Decimal(line["amount"]) for line in document["lines"]) == Decimal(document["subtotal"])
        assert all(isinstance(line[k], str) for line in document["lines"] for k in ("quantity", "unit_price", "amount"))
        assert load_document(conn, doc).body == body  # the same bytes every time


# --- failures ------------------------------------------------------------------------------------------


def test_a_4xx_is_a_permanent_failure_recorded_with_the_response_and_the_others_are_delivered(
    conn: psycopg.Connection, receiver: Receiver, capsys: pytest.CaptureFixture
) -> None:
    numbers = documents(conn)
    first, refused = list(numbers.items())[0]
    receiver.faults[refused] = ["422"]
    report = run(conn, receiver)

    assert list(report.undelivered) == [first] and report.undelivered[first].startswith("failed: HTTP 422")
    row = rows(conn)[refused]
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("failed", 1, 422)
    assert row["failed_at"] is not None and row["delivered_at"] is None
    assert row["last_response"].startswith('{"error": "injected 422"') and len(row["last_response"].encode()) == 1024
    assert set(receiver.stored) == set(numbers.values()) - {refused}

    # not sent again by later runs, until an operator retries it
    assert run(conn, receiver).requests == 0
    dsn = conn.info.dsn
    assert cli.main(["deliveries", "retry", "--dsn", dsn, first]) == 0
    assert f"{first}: failed -> pending" in capsys.readouterr().out
    assert run(conn, receiver).delivered == [first]
    assert dict(receiver.acknowledgements) == {doc: 1 for doc in numbers.values()}
    assert rows(conn)[refused]["attempts"] == 2


def test_a_wrong_secret_is_never_accepted(conn: psycopg.Connection, receiver: Receiver) -> None:
    report = run(conn, receiver, secret="not-the-receivers-secret")
    assert receiver.stored == {} and receiver.bad_signatures == len(documents(conn))
    assert {(r["status"], r["last_status_code"]) for r in rows(conn).values()} == {("failed", 401)}
    assert len(report.undelivered) == 4


def test_a_document_that_keeps_failing_never_holds_up_the_others(conn: psycopg.Connection, receiver: Receiver) -> None:
    numbers = documents(conn)
    stuck_number, stuck = list(numbers.items())[0]
    receiver.faults[stuck] = ["500"] * 10
    report = run(conn, receiver)
    assert set(report.delivered) == set(numbers) - {stuck_number}
    assert list(report.undelivered) == [stuck_number]
    assert report.undelivered[stuck_number].startswith('pending: HTTP 500: {"error": "injected 500"')
    row = rows(conn)[stuck]
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("pending", 4, 500)
    # the others were delivered while the stuck one waited for its retries
    delivered_at = max(s.at for s in receiver.requests if s.document_id != stuck)
    assert delivered_at < max(s.at for s in receiver.requests if s.document_id == stuck)


def test_a_retry_after_beyond_the_limit_leaves_the_document_pending_for_a_later_run(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    number, doc = list(documents(conn).items())[1]
    receiver.faults[doc] = ["429:3600"]
    report = run(conn, receiver)
    assert list(report.undelivered) == [number]
    assert report.undelivered[number].startswith('pending: HTTP 429: {"error": "injected 429"')
    assert rows(conn)[doc]["attempts"] == 1 and len(receiver.stored) == 3
    assert run(conn, receiver).delivered == [number]


def test_an_unreachable_endpoint_leaves_everything_pending(conn: psycopg.Connection) -> None:
    with Receiver(secret=SECRET) as rec:
        url = rec.url
    endpoint = state.endpoint_id(url)
    state.enqueue_period(conn, endpoint, OCTOBER)
    policy = RetryPolicy(max_attempts=2, backoff_seconds=0.01, timeout=(0.5, 0.5))
    report = deliver_pending(conn, endpoint, SECRET, transport(url), policy)
    assert report.delivered == [] and len(report.undelivered) == 4
    assert all(why.startswith("pending: connection error") for why in report.undelivered.values())
    assert {(r["status"], r["attempts"]) for r in rows(conn).values()} == {("pending", 2)}


# --- the schema's rules --------------------------------------------------------------------------------


def test_a_delivered_row_is_final_in_the_database(conn: psycopg.Connection, receiver: Receiver) -> None:
    run(conn, receiver)
    for statement in (
        "UPDATE billing.deliveries SET status = 'pending', delivered_at = NULL",
        "UPDATE billing.deliveries SET attempts = attempts + 1",
        "DELETE FROM billing.deliveries",
        "TRUNCATE billing.deliveries",
    ):
        with pytest.raises(psycopg.errors.RestrictViolation, match="never sent again|truncated"):
            conn.execute(statement)
    # enqueueing the period again leaves delivered rows as they are
    assert state.enqueue_period(conn, state.endpoint_id(receiver.url), OCTOBER) == []


def test_a_failed_row_goes_back_to_pending_before_it_can_be_delivered(conn: psycopg.Connection) -> None:
    endpoint = "https://erp.example/documents"
    [first, *_] = state.enqueue_period(conn, endpoint, OCTOBER)
    conn.execute("UPDATE billing.deliveries SET status = 'failed', failed_at = now(), attempts = 1, "
                 "last_status_code = 400 WHERE invoice_id = %s", [first])
    with pytest.raises(psycopg.errors.RestrictViolation, match="set it back to pending"):
        conn.execute("UPDATE billing.deliveries SET status = 'delivered', failed_at = NULL, delivered_at = now(), "
                     "last_status_code = 200 WHERE invoice_id = %s", [first])
    with pytest.raises(psycopg.errors.CheckViolation):  # delivered needs a 2xx
        conn.execute("UPDATE billing.deliveries SET status = 'delivered', delivered_at = now(), "
                     "last_status_code = 500, attempts = 1 WHERE invoice_id <> %s", [first])
    with pytest.raises(psycopg.errors.RestrictViolation, match="never deleted"):
        conn.execute("DELETE FROM billing.deliveries WHERE invoice_id = %s", [first])


def test_one_run_per_endpoint_at_a_time(conn: psycopg.Connection, receiver: Receiver, billing_dsn: str) -> None:
    endpoint = state.endpoint_id(receiver.url)
    state.enqueue_period(conn, endpoint, OCTOBER)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with psycopg.connect(billing_dsn, autocommit=True) as other, state.endpoint_lock(other, endpoint):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(state.DeliveryBusy, match="another delivery run"):
            deliver_pending(conn, endpoint, SECRET, transport(receiver.url), FAST)
    finally:
        release.set()
        thread.join()
    assert receiver.requests == []
    assert len(deliver_pending(conn, endpoint, SECRET, transport(receiver.url), FAST).delivered) == 4


def test_urls_with_credentials_are_refused() -> None:
    with pytest.raises(ValueError, match="must not carry a user or password"):
        state.endpoint_id("https://user:pw@erp.example/x")
    with pytest.raises(ValueError, match="http:// or https://"):
        state.endpoint_id("ftp://erp.example/x")
    assert state.endpoint_id("https://erp.example/x?token=1#f") == "https://erp.example/x"


# --- the CLI -------------------------------------------------------------------------------------------


def test_deliveries_list_shows_each_documents_status(
    conn: psycopg.Connection, receiver: Receiver, capsys: pytest.CaptureFixture
) -> None:
    numbers = documents(conn)
    first = list(numbers)[0]
    receiver.faults[numbers[first]] = ["400"]
    run(conn, receiver)
    capsys.readouterr()
    dsn = conn.info.dsn
    assert cli.main(["deliveries", "list", "--dsn", dsn]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["DOCUMENT", "PERIOD", "ORG", "CURRENCY", "AMOUNT", "STATUS", "ATTEMPTS", "LAST",
                              "ENDPOINT"]
    assert len(out) == 5 and sum("delivered" in line for line in out) == 3
    [failed] = [line for line in out if line.startswith(first)]
    assert failed.split()[5:8] == ["failed", "1", "400"]
    assert cli.main(["deliveries", "list", "--dsn", dsn, "--status", "failed", "--format", "json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert (entry["invoice_number"], entry["status"], entry["last_status_code"]) == (first, "failed", 400)
    assert entry["last_response"].startswith('{"error": "injected 400"')
    assert cli.main(["deliveries", "retry", "--dsn", dsn, "NO-SUCH-1"]) == 1
    assert "no failed delivery" in capsys.readouterr().err
    assert cli.main(["deliveries", "list", "--dsn", dsn, "--period", "2026-13"]) == 2


def test_a_captured_request_replayed_is_refused_by_the_receiver(conn: psycopg.Connection, receiver: Receiver) -> None:
    """What the README tells a receiver to do, done by the test receiver: the same signed request twice is a replay."""
    run(conn, receiver)
    doc, body = next(iter(receiver.stored.items()))
    [headers] = [h for h in receiver.headers_seen if h["Idempotency-Key"] == doc]
    replay = requests.post(receiver.url, data=body, timeout=5,
                           headers={k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")})
    assert replay.status_code == 409 and receiver.replays == 1
    assert dict(receiver.acknowledgements)[doc] == 1
