"""The tenant statements API over real HTTP (uvicorn on a loopback port) against a real PostgreSQL whose
October was closed by the real close (three orgs, four invoices), connected as a login of the tenant API
database role.

Isolation is the requirement: with one org's token, every route asked for another org's document,
period, line item or id answers exactly as for one that does not exist; revoked, expired, unknown and
malformed tokens get the same 401; hostile parameters never reach SQL as text and never show another
org's row. Every response any test receives is checked for the other orgs' ids and names.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import requests

from rafay_billing import cli
from rafay_billing.tenant_api import tokens
from rafay_billing.tenant_api.app import TenantApiSettings
from rafay_billing.tenant_api.server import RoleTooPowerful, check_role
from tests.support.db import create_database, drop_database
from tests.support.issued import NAMES, close_october
from tests.support.tenant_api import drop_login, expired_token, running_api, tenant_login

ORGS = ("acme", "globex", "zurich")
HOSTILE = [
    "' OR 1=1 --",
    "1' OR '1'='1",
    "../globex",
    "../../etc/passwd",
    "%2e%2e%2f",
    "Ünïcødé-😀-ＡＣＭＥ",
    "x\x00y",
    "A" * 5000,
    "globex",
    "; DROP TABLE billing.invoices; --",
    "\u202egloBex",
]


@pytest.fixture(scope="module")
def ledger(postgres_server: str) -> Iterator[dict[str, Any]]:
    """October closed for acme, globex, zurich; tokens for them, for initech (no documents), a revoked and
    an expired one; the tenant API served as its own role's login."""
    dsn = create_database(postgres_server, "tenant_api")
    login, tenant_dsn = None, None
    try:
        with psycopg.connect(dsn) as conn:
            close_october(conn)
            made = {org: tokens.create_token(conn, org, "test").token for org in (*ORGS, "initech")}
            revoked = tokens.create_token(conn, "acme", "test", label="old portal")
            tokens.revoke_token(conn, revoked.token_id, "test")
            expired = expired_token(conn, "acme")
            invoices = {org: conn.execute(
                "SELECT invoice_id, invoice_number FROM billing.invoices WHERE org_id = %s ORDER BY invoice_seq",
                (org,)).fetchall() for org in ORGS}
        login, tenant_dsn = tenant_login(dsn)
        with running_api(tenant_dsn, TenantApiSettings(rate_per_minute=100_000, burst=10_000)) as url:
            yield {"dsn": dsn, "tenant_dsn": tenant_dsn, "url": url, "tokens": made, "revoked": revoked.token,
                   "expired": expired, "invoices": invoices}
    finally:
        drop_database(postgres_server, dsn)
        if login:
            drop_login(postgres_server, login)


class Client:
    """Requests as one org; every answer is checked for the other orgs' ids, numbers and names."""

    def __init__(self, ledger: dict[str, Any], org: str, token: str | None = None) -> None:
        self.url, self.org = ledger["url"], org
        self.token = token if token is not None else ledger["tokens"][org]
        self.foreign = [value for other, rows in ledger["invoices"].items() if other != org
                        for row in rows for value in row]
        self.foreign += [name for other in ORGS if other != org for name in (NAMES[other], html.escape(NAMES[other]))]
        self.foreign += [f'"{other}"' for other in ORGS if other != org]  # an org id as a JSON value
        self.session = requests.Session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.session.get(self.url + path, headers=headers, timeout=30, **kwargs)
        text = response.text
        for value in self.foreign:
            assert value not in text, f"{self.org} got another org's {value!r} from {path}: {text[:500]}"
        assert response.status_code != 500, text
        return response


def client(ledger: dict[str, Any], org: str, token: str | None = None) -> Client:
    return Client(ledger, org, token)


def answer(response: requests.Response) -> tuple[int, str, str]:
    return response.status_code, response.headers.get("content-type", ""), response.text


def document_routes(key: str) -> list[str]:
    quoted = quote(key, safe="")
    return [f"/v1/documents/{quoted}", f"/v1/documents/{quoted}/csv", f"/v1/documents/{quoted}/html"]


# --- what a tenant sees ------------------------------------------------------------------------------


def test_a_tenant_lists_and_reads_its_own_documents(ledger: dict[str, Any]) -> None:
    acme = client(ledger, "acme")
    listed = acme.get("/v1/documents").json()["documents"]
    assert sorted(d["number"] for d in listed) == sorted(n for _, n in ledger["invoices"]["acme"])
    assert {d["currency"] for d in listed} == {"USD", "EUR"}
    assert all(d["document_type"] == "invoice" and d["period"] == "2026-10" for d in listed)
    assert acme.get("/v1/documents", params={"period": "2026-09"}).json() == {"documents": []}
    assert acme.get("/v1/documents", params={"type": "credit_note"}).json() == {"documents": []}

    invoice_id, number = ledger["invoices"]["acme"][0]
    by_number, by_id = acme.get(f"/v1/documents/{number}"), acme.get(f"/v1/documents/{invoice_id}")
    assert by_number.status_code == 200 and by_number.json() == by_id.json()
    doc = by_number.json()
    assert doc["customer"] == {"org_id": "acme", "organization": "Acme"} and doc["document_type"] == "invoice"
    assert Decimal(doc["subtotal"]) == sum(Decimal(line["amount"]) for line in doc["lines"])
    assert isinstance(doc["subtotal"], str)  # money as decimal strings, never floats

    csv_answer = acme.get(f"/v1/documents/{number}/csv")
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert csv_answer.text.splitlines()[0].startswith("Invoice number,Period,Org ID")
    assert f"filename*=UTF-8''{number}.csv" in csv_answer.headers["content-disposition"]


def test_the_html_statement_is_escaped_self_contained_and_framed_by_nobody(ledger: dict[str, Any]) -> None:
    globex = client(ledger, "globex")
    _, number = ledger["invoices"]["globex"][0]
    page = globex.get(f"/v1/documents/{number}/html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Globex &lt;script&gt;" in page.text and "<script" not in page.text.lower()
    for external in ("src=", "href=", "@import", "url(", "http://", "https://"):
        assert external not in page.text.lower(), external
    csp = page.headers["content-security-policy"]
    for directive in ("default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'",
                      "sandbox"):
        assert directive in csp
    assert "script-src" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


def test_line_items_are_cursor_paged_and_complete(ledger: dict[str, Any]) -> None:
    acme = client(ledger, "acme")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = acme.get("/v1/periods/2026-10/line-items", params=params).json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 6  # three instances on two days
    keys = [(i["usage_date"], i["profile_type"], i["profile"], i["instance_key"]) for i in seen]
    assert keys == sorted(keys) and len(set(keys)) == 6
    whole = acme.get("/v1/periods/2026-10/line-items", params={"limit": 500}).json()
    assert whole["items"] == seen and whole["next_cursor"] is None
    with psycopg.connect(ledger["dsn"]) as conn:
        total = conn.execute("SELECT sum(amount) FROM billing.charge_line_items WHERE org_id = 'acme'").fetchone()[0]
    assert sum(Decimal(i["amount"]) for i in seen) == total


def test_daily_usage_and_charges(ledger: dict[str, Any]) -> None:
    zurich = client(ledger, "zurich")
    days = zurich.get("/v1/usage/daily", params={"from": "2026-10-01", "to": "2026-10-31"}).json()
    assert [(d["usage_date"], d["currency"], d["usage_hours"], d["amount"], d["issued"]) for d in days["days"]] == [
        ("2026-10-30", "CHF", "24", "74.40", True), ("2026-10-31", "CHF", "24", "74.40", True)]
    assert client(ledger, "initech").get("/v1/usage/daily", params={"from": "2026-10-01", "to": "2026-10-31"}
                                         ).json()["days"] == []
    assert zurich.get("/v1/usage/daily", params={"from": "2026-01-01", "to": "2026-12-31"}).status_code == 400
    assert zurich.get("/v1/usage/daily", params={"from": "2026-10-31", "to": "2026-10-01"}).status_code == 400


def test_openapi_is_published_and_the_docs_pages_are_off(ledger: dict[str, Any]) -> None:
    schema = requests.get(ledger["url"] + "/openapi.json", timeout=10).json()
    assert {"/v1/documents", "/v1/documents/{document_id}", "/v1/documents/{document_id}/csv",
            "/v1/documents/{document_id}/html", "/v1/periods/{period}/line-items", "/v1/usage/daily"} == set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert requests.get(ledger["url"] + "/docs", timeout=10).status_code == 404


# --- isolation -----------------------------------------------------------------------------------------


def test_another_orgs_document_answers_exactly_as_a_missing_one(ledger: dict[str, Any]) -> None:
    """acme asks for globex's and zurich's documents by id and by number, on every document route."""
    acme = client(ledger, "acme")
    for route in document_routes("ACME-999999"):
        missing = answer(acme.get(route))
        assert missing[0] == 404
    missing_answers = [answer(acme.get(route)) for route in document_routes("NO-SUCH-DOCUMENT")]
    assert {a[0] for a in missing_answers} == {404}
    for other in ("globex", "zurich"):
        for row in ledger["invoices"][other]:
            for key in row:  # id and number
                assert [answer(acme.get(route)) for route in document_routes(key)] == missing_answers
    # and the owner does see them (the ids are real)
    zurich = client(ledger, "zurich")
    assert zurich.get(f"/v1/documents/{ledger['invoices']['zurich'][0][1]}").status_code == 200


def test_another_orgs_period_answers_exactly_as_a_missing_one(ledger: dict[str, Any]) -> None:
    """initech has no documents: October (which others have) answers like a month nobody has."""
    initech = client(ledger, "initech")
    nobody = answer(initech.get("/v1/periods/2026-09/line-items"))
    assert nobody[0] == 404
    assert answer(initech.get("/v1/periods/2026-10/line-items")) == nobody
    assert answer(initech.get("/v1/periods/2026-10/line-items", params={"limit": 1})) == nobody
    assert initech.get("/v1/documents").json() == {"documents": []}
    assert answer(initech.get("/v1/no-such-route")) == nobody  # one body for every kind of "not found"


def test_another_orgs_cursor_only_moves_within_the_callers_own_items(ledger: dict[str, Any]) -> None:
    acme, globex = client(ledger, "acme"), client(ledger, "globex")
    acme_cursor = acme.get("/v1/periods/2026-10/line-items", params={"limit": 1}).json()["next_cursor"]
    page = globex.get("/v1/periods/2026-10/line-items", params={"cursor": acme_cursor}).json()
    assert {item["organization"] for item in page["items"]} <= {NAMES["globex"]}
    globex_all = globex.get("/v1/periods/2026-10/line-items").json()["items"]
    assert all(item in globex_all for item in page["items"])


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_path_values_answer_not_found(ledger: dict[str, Any], value: str) -> None:
    acme = client(ledger, "acme")
    nothing = answer(acme.get("/v1/documents/NO-SUCH-DOCUMENT"))
    for route in document_routes(value) + [f"/v1/periods/{quote(value, safe='')}/line-items"]:
        got = acme.get(route)
        assert answer(got) == nothing, route
    raw = acme.get("/v1/documents/../../v1/documents")  # unencoded dot segments
    assert raw.status_code in (200, 404)


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_query_parameters_are_refused_before_sql(ledger: dict[str, Any], value: str) -> None:
    acme = client(ledger, "acme")
    for path, params in (
        ("/v1/documents", {"period": value}),
        ("/v1/documents", {"type": value}),
        ("/v1/periods/2026-10/line-items", {"cursor": value}),
        ("/v1/periods/2026-10/line-items", {"limit": value}),
        ("/v1/usage/daily", {"from": value, "to": "2026-10-31"}),
        ("/v1/usage/daily", {"from": "2026-10-01", "to": value}),
    ):
        got = acme.get(path, params=params)
        assert got.status_code in (400, 422), (path, params, got.status_code, got.text[:200])


def test_huge_and_forged_cursors_are_refused(ledger: dict[str, Any]) -> None:
    import base64

    acme = client(ledger, "acme")

    def forged(data: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    key = ["2026-10-30", "compute", "vm", "a1", "", "", "day", "regular", 0, "charge"]  # charge_level: version 3
    huge = acme.get("/v1/periods/2026-10/line-items", params={"cursor": "A" * 100_000})
    assert huge.status_code in (400, 414, 431)  # the HTTP server refuses the request line itself
    bad = [
        "A" * 3000,
        forged({"v": 3, "p": "2026-09", "k": key}),  # another period's
        forged({"v": 3, "p": "2026-10", "k": key[:-1]}),
        forged({"v": 3, "p": "2026-10", "k": [*key[:8], 2**40, "charge"]}),
        forged({"v": 3, "p": "2026-10", "k": ["2026-13-45", *key[1:]]}),
        forged({"v": 3, "p": "2026-10", "k": [*key[:2], "x\x00", *key[3:]]}),
        forged({"v": 3, "p": "2026-10", "k": key, "org": "globex"}),
        forged({"v": 2, "p": "2026-10", "k": key[:6] + key[7:]}),  # a version-2 cursor (before charge_level)
        forged({"v": 1, "p": "2026-10", "k": key[:5] + key[7:]}),  # a version-1 cursor (before covered_by)
        forged(["not", "an", "object"]),
    ]
    for cursor in bad:
        got = acme.get("/v1/periods/2026-10/line-items", params={"cursor": cursor})
        assert got.status_code == 400 and got.json() == {"detail": "invalid cursor: pass next_cursor of the previous page"}
    good = forged({"v": 3, "p": "2026-10", "k": ["2026-10-30", "compute", "zzz", "", "", "", "day", "regular", 0,
                                                 "charge"]})
    items = acme.get("/v1/periods/2026-10/line-items", params={"cursor": good}).json()["items"]
    assert {i["usage_date"] for i in items} == {"2026-10-31"}  # a hand-made cursor only positions


# --- tokens --------------------------------------------------------------------------------------------

ROUTES = ["/v1/documents", "/v1/periods/2026-10/line-items", "/v1/usage/daily?from=2026-10-01&to=2026-10-31"]


def test_revoked_expired_unknown_and_malformed_tokens_get_the_same_401(ledger: dict[str, Any]) -> None:
    acme_number = ledger["invoices"]["acme"][0][1]
    routes = ROUTES + document_routes(acme_number)
    real = ledger["tokens"]["acme"]
    token_id = tokens.parse_token(real)[0]
    wrong_secret = f"rbt_{token_id}_{'A' * 43}"
    answers = set()
    for token in (ledger["revoked"], ledger["expired"], wrong_secret, tokens.new_token()[0], "nonsense", "",
                  "rbt_' OR 1=1 --", real + "x", "Bearer " + real):
        for route in routes:
            got = client(ledger, "acme", token).get(route)
            assert got.status_code == 401, (token, route)
            assert got.headers["www-authenticate"] == "Bearer"
            answers.add(answer(got))
    assert len(answers) == 1
    basic = requests.get(ledger["url"] + "/v1/documents", auth=("acme", real), timeout=10)
    assert basic.status_code == 401


def test_every_use_updates_last_used(ledger: dict[str, Any]) -> None:
    token = ledger["tokens"]["zurich"]
    token_id = tokens.parse_token(token)[0]

    def last_used() -> datetime | None:
        with psycopg.connect(ledger["dsn"]) as conn:
            return conn.execute("SELECT last_used_at FROM billing.api_tokens WHERE token_id = %s",
                                (token_id,)).fetchone()[0]

    client(ledger, "zurich").get("/v1/documents")
    first = last_used()
    assert first is not None
    client(ledger, "zurich").get("/v1/usage/daily", params={"from": "2026-10-01", "to": "2026-10-02"})
    assert last_used() > first
    revoked_id = tokens.parse_token(ledger["revoked"])[0]
    client(ledger, "acme", ledger["revoked"]).get("/v1/documents")
    with psycopg.connect(ledger["dsn"]) as conn:
        assert conn.execute("SELECT last_used_at FROM billing.api_tokens WHERE token_id = %s",
                            (revoked_id,)).fetchone()[0] is None  # a refused token is not "used"


def test_a_token_over_its_rate_limit_gets_429_and_others_do_not(ledger: dict[str, Any]) -> None:
    with running_api(ledger["tenant_dsn"], TenantApiSettings(rate_per_minute=6, burst=3)) as url:
        acme = client({**ledger, "url": url}, "acme")
        globex = client({**ledger, "url": url}, "globex")
        assert [acme.get("/v1/documents").status_code for _ in range(3)] == [200, 200, 200]
        limited = acme.get("/v1/documents")
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 10
        assert globex.get("/v1/documents").status_code == 200


def test_the_token_commands(ledger: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    dsn = ledger["dsn"]
    assert cli.main(["tenant-token", "create", "--org", "globex", "--expires", "30d", "--label", "portal",
                     "--by", "ops@example.com", "--dsn", dsn]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    token_id, secret = tokens.parse_token(token)
    assert "shown only now" in err and secret not in err
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT org_id, secret_hash, salt, kdf, expires_at, label FROM billing.api_tokens"
                           " WHERE token_id = %s", (token_id,)).fetchone()
        dumped = json.dumps([str(v) for v in conn.execute("SELECT * FROM billing.api_tokens").fetchall()])
        audit = conn.execute("SELECT action, actor, org_id, detail FROM billing.audit_log"
                             " WHERE detail->>'token_id' = %s ORDER BY audit_id", (token_id,)).fetchall()
    assert row[0] == "globex" and row[3] == tokens.KDF and row[5] == "portal"
    assert secret not in dumped and token not in dumped
    assert bytes(row[1]) == tokens._scrypt(secret, bytes(row[2]))
    assert timedelta(days=29) < row[4] - datetime.now(UTC) <= timedelta(days=30)
    assert [a[:3] for a in audit] == [("tenant_token_create", "ops@example.com", "globex")]
    assert audit[0][3]["label"] == "portal" and datetime.fromisoformat(audit[0][3]["expires_at"]) == row[4]
    assert client(ledger, "globex", token).get("/v1/documents").status_code == 200

    assert cli.main(["tenant-token", "list", "--dsn", dsn, "--org", "globex"]) == 0
    listed = capsys.readouterr().out
    assert token_id in listed and "active" in listed and secret not in listed
    assert cli.main(["tenant-token", "list", "--dsn", dsn, "--format", "json"]) == 0
    everything = capsys.readouterr().out
    assert token_id in everything and secret not in everything and "hash" not in everything

    assert cli.main(["tenant-token", "revoke", token_id, "--by", "ops@example.com", "--dsn", dsn]) == 0
    capsys.readouterr()
    assert client(ledger, "globex", token).get("/v1/documents").status_code == 401
    assert cli.main(["tenant-token", "revoke", token_id, "--by", "ops", "--dsn", dsn]) == 1
    assert "already revoked" in capsys.readouterr().err
    with psycopg.connect(dsn) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM billing.audit_log WHERE detail->>'token_id' = %s"
                                              " ORDER BY audit_id", (token_id,))]
    assert actions == ["tenant_token_create", "tenant_token_revoke"]

    assert cli.main(["tenant-token", "create", "--org", "no-such-org", "--by", "ops", "--dsn", dsn]) == 1
    assert "--allow-unknown-org" in capsys.readouterr().err
    assert cli.main(["tenant-token", "create", "--org", "acme", "--expires", "2020-01-01", "--by", "ops",
                     "--dsn", dsn]) == 1
    assert "not after now" in capsys.readouterr().err
    assert cli.main(["tenant-token", "create", "--org", "acme", "--expires", "soon", "--by", "ops", "--dsn", dsn]) == 2


def test_a_token_row_is_history(ledger: dict[str, Any]) -> None:
    """Never deleted; org, hash and expiry never change; a revocation is final; last use only moves forward."""
    token_id = tokens.parse_token(ledger["revoked"])[0]
    with psycopg.connect(ledger["dsn"], autocommit=True) as conn:
        for statement in (
            "DELETE FROM billing.api_tokens WHERE token_id = %(t)s",
            "UPDATE billing.api_tokens SET org_id = 'globex' WHERE token_id = %(t)s",
            "UPDATE billing.api_tokens SET expires_at = now() + interval '1 year' WHERE token_id = %(t)s",
            "UPDATE billing.api_tokens SET revoked_at = NULL, revoked_by = NULL WHERE token_id = %(t)s",
            "UPDATE billing.api_tokens SET last_used_at = now() WHERE token_id = %(t)s",
            "UPDATE billing.api_tokens SET last_used_at = now() - interval '1 day' WHERE token_id = %(t)s",
            "TRUNCATE billing.api_tokens",
        ):
            if "last_used_at = now()" in statement and "interval" not in statement:
                conn.execute(statement, {"t": token_id})  # forward: allowed
                continue
            with pytest.raises(psycopg.Error):
                conn.execute(statement, {"t": token_id})


# --- the database role ----------------------------------------------------------------------------------


SERVED = {"invoices", "invoice_lines", "charge_line_items", "currencies", "api_tokens"}


def test_the_tenant_role_reads_only_what_it_serves_and_writes_only_last_used(ledger: dict[str, Any]) -> None:
    with psycopg.connect(ledger["tenant_dsn"], autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'billing'::regnamespace AND relkind = 'r' ORDER BY 1")]
        assert {"audit_log", "usage_records", "price_book", "rating_exceptions", "deliveries", "coverage"} <= set(tables)
        for table in tables:
            if table in SERVED:
                conn.execute(f"SELECT * FROM billing.{table} LIMIT 1")
            else:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT 1 FROM billing.{table} LIMIT 1")
            column = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1",
                                  (f"billing.{table}",)).fetchone()[0]
            for statement in (f"INSERT INTO billing.{table} DEFAULT VALUES",
                              f"UPDATE billing.{table} SET {column} = {column}",
                              f"DELETE FROM billing.{table}", f"TRUNCATE billing.{table}"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
        for statement in ("UPDATE billing.api_tokens SET revoked_at = NULL",
                          "UPDATE billing.api_tokens SET org_id = 'globex'",
                          "CREATE TABLE billing.sneaky (x int)",
                          "SELECT nextval('billing.audit_log_audit_id_seq')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        conn.execute("UPDATE billing.api_tokens SET last_used_at = greatest(last_used_at, now()) WHERE false")
        check_role(conn)  # the service starts as this login


def test_the_service_refuses_a_login_that_may_do_more(ledger: dict[str, Any]) -> None:
    with psycopg.connect(ledger["dsn"], autocommit=True) as conn, pytest.raises(RoleTooPowerful, match="audit_log"):
        check_role(conn)
    assert cli.main(["serve-tenant-api", "--dsn", ledger["dsn"], "--port", "1"]) == 1


def test_role_names_come_from_the_command_line(postgres_server: str) -> None:
    from rafay_billing import db

    suffix = uuid.uuid4().hex[:8]
    names = [f"o_{suffix}", f"w_{suffix}", f"r_{suffix}", f"t_{suffix}"]
    dsn = create_database(postgres_server, "tenant_roles")
    try:
        assert db.main(["migrate", "--dsn", dsn, "--owner-role", names[0], "--writer-role", names[1],
                        "--reader-role", names[2], "--tenant-api-role", names[3]]) == 0
        with psycopg.connect(dsn) as conn:
            assert conn.execute(
                "SELECT has_table_privilege(%(t)s, 'billing.invoices', 'SELECT'),"
                " has_table_privilege(%(t)s, 'billing.audit_log', 'SELECT'),"
                " has_column_privilege(%(t)s, 'billing.api_tokens', 'last_used_at', 'UPDATE'),"
                " has_column_privilege(%(t)s, 'billing.api_tokens', 'revoked_at', 'UPDATE'),"
                " has_table_privilege(%(w)s, 'billing.api_tokens', 'DELETE')",
                {"t": names[3], "w": names[1]}).fetchone() == (True, False, True, False, False)
    finally:
        drop_database(postgres_server, dsn)
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP ROLE IF EXISTS "{name}"')
    with pytest.raises(db.DatabaseError, match="tenant API role"):
        db.DatabaseRoles(tenant_api=db.DatabaseRoles().reader)


def test_make_demo_shows_a_tenants_documents_through_the_served_api(ledger: dict[str, Any]) -> None:
    """The demo's last step: the real commands (token create, serve-tenant-api as the tenant role's login)."""
    import io

    from rafay_devkit.postgres import BillingLogins
    from rafay_devkit.tenant_api_demo import show_first_tenant

    logins = BillingLogins(admin=ledger["dsn"], owner=ledger["dsn"], writer=ledger["dsn"], reader=ledger["dsn"],
                           tenant_api=ledger["tenant_dsn"])
    out = io.StringIO()
    assert show_first_tenant(logins, "2026-10", out), out.getvalue()
    shown = out.getvalue()
    assert "as org acme (2 documents)" in shown
    assert all(number in shown for _, number in ledger["invoices"]["acme"])
    assert not any(number in shown for org in ("globex", "zurich") for _, number in ledger["invoices"][org])


MONTHLY = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
vm-month,,compute,mrc-vm,instance_month,310.00,USD,2026-01-01,
"""


def test_paging_keeps_a_monthly_charge_and_its_first_days_item_apart(postgres_server: str) -> None:
    """A month-priced instance has two items dated on the month's first day that differ only in
    ``charge_level`` (the day's item, 0.00, and the month's MRC): a cursor without it made a page that
    ends on one skip the other (the MRC itself, or its day). Every item comes once, whatever the page
    size; amounts are in the currency's minor unit (the day item's 0 was stored as a bare ``0``)."""
    from rafay_billing.ledger.coverage import register_orgs
    from rafay_billing.period import Period
    from rafay_billing.periods.close import close_period
    from tests.support.billed import Usage, bill

    dsn = create_database(postgres_server, "tenant_api_mrc")
    login = None
    try:
        with psycopg.connect(dsn) as conn:
            bill(conn, [Usage("coke", date(2026, 11, d), "mrc-vm", "m1", "10") for d in range(1, 31)], "r",
                 price_book=MONTHLY)
            register_orgs(conn, [("coke", "COKE")], date(2026, 11, 1), "r", last_day=date(2026, 11, 30))
            close_period(conn, Period(date(2026, 11, 1)), actor="t", issuer="ACME",
                         now=datetime(2027, 1, 2, tzinfo=UTC))
            token = tokens.create_token(conn, "coke", "test").token
        login, tenant_dsn = tenant_login(dsn)
        with running_api(tenant_dsn, TenantApiSettings(rate_per_minute=100_000, burst=10_000)) as url:
            headers = {"Authorization": f"Bearer {token}"}
            whole = requests.get(f"{url}/v1/periods/2026-11/line-items", params={"limit": 500}, headers=headers,
                                 timeout=30).json()["items"]
            for limit in (1, 2):
                seen, cursor = [], None
                while True:
                    params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
                    page = requests.get(f"{url}/v1/periods/2026-11/line-items", params=params, headers=headers,
                                        timeout=30).json()
                    seen += page["items"]
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break
                assert seen == whole, limit
        assert len(whole) == 31
        first = [(i["charge_level"], i["amount"]) for i in whole if i["usage_date"] == "2026-11-01"]
        assert sorted(first) == [("day", "0.00"), ("month", "310.00")]
        assert {i["amount"] for i in whole if i["charge_level"] == "day"} == {"0.00"}
    finally:
        drop_database(postgres_server, dsn)
        if login:
            drop_login(postgres_server, login)
