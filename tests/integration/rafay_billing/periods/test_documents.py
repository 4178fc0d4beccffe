"""Period documents: per-invoice JSON, CSV and HTML, and the period summary, from a real PostgreSQL.

The invoices are issued here by hand-written SQL (the close that issues them is separate): a closed
period row, invoices and their lines, and the correction line items that tell which days a correction
line corrects. The HTML invoice is rendered in real headless Chromium (Debian's package, installed
by ``.ci/install-chromium.sh``); the tests assert on the DOM Chromium built, after any script would
have run, and keep a screenshot in the test's tmp dir as an artifact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.paths import safe_component
from rafay_billing.period import PeriodError, parse_period
from rafay_billing.periods.documents import TAX_NOTE, DocumentError, write_period_documents

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)

ISSUER = "Rafay Neo-Cloud Ltd"
CLOSED_BY = "rafay_billing_close/scheduled__2026-11-01T00:00:00+00:00"
# An org name that is a spreadsheet formula, a script and an image with an onerror handler at once.
HOSTILE = (
    '=HYPERLINK("http://evil.example/pay","Pay now")'
    '<script>document.title="pwned";document.body.dataset.pwned="script"</script>'
    "<img src=x onerror=\"document.body.dataset.pwned='img'\">"
)

SETUP_SQL = [
    # usage of the run that re-rated 2026-09-14 and 2026-09-15 (a correction's charges need it)
    """
    INSERT INTO billing.usage_records (org_id, usage_date, run_id, record_seq, window_start, window_end,
        organization, org_seq, profile_type, profile, instance, instance_key, status, seed_usage, usage_hours,
        gpu_count)
    VALUES
        ('evil-corp', '2026-09-14', 'run-fix', 0, '2026-09-14T00:00Z', '2026-09-15T00:00Z', %(hostile)s, 0,
         'compute', 'gpu-a100', 'a100-node', 'i-1', 'running', '5', 5, 2),
        ('evil-corp', '2026-09-15', 'run-fix', 0, '2026-09-15T00:00Z', '2026-09-16T00:00Z', %(hostile)s, 0,
         'compute', 'gpu-a100', 'a100-node', 'i-1', 'running', '2', 2, 2)
    """,
    # the corrections of those days, on October's invoice: the issued items reversed, the new ones charged
    """
    INSERT INTO billing.charge_line_items (org_id, usage_date, profile, instance_key, window_start, window_end,
        organization, profile_type, instance, usage_hours, gpu_count, pricing_unit, pricing_quantity,
        unit_price, currency, minor_unit, amount, price_id, run_id, charge_class, billing_period_start,
        correction_seq, entry, reverses_run_id)
    VALUES
        ('evil-corp', '2026-09-14', 'gpu-a100', 'i-1', '2026-09-14T00:00Z', '2026-09-15T00:00Z', %(hostile)s,
         'compute', 'a100-node', -5, 2, 'gpu_hour', -10, 2.50, 'USD', 2, -25.00, 'p-a100-old', 'run-fix',
         'correction', '2026-10-01', 1, 'reversal', 'run-orig'),
        ('evil-corp', '2026-09-15', 'gpu-a100', 'i-1', '2026-09-15T00:00Z', '2026-09-16T00:00Z', %(hostile)s,
         'compute', 'a100-node', -2, 2, 'gpu_hour', -4, 2.50, 'USD', 2, -10.00, 'p-a100-old', 'run-fix',
         'correction', '2026-10-01', 1, 'reversal', 'run-orig'),
        ('evil-corp', '2026-09-14', 'gpu-a100', 'i-1', '2026-09-14T00:00Z', '2026-09-15T00:00Z', %(hostile)s,
         'compute', 'a100-node', 5, 2, 'gpu_hour', 10, 2.75, 'USD', 2, 27.50, 'p-a100-new', 'run-fix',
         'correction', '2026-10-01', 1, 'charge', NULL),
        ('evil-corp', '2026-09-15', 'gpu-a100', 'i-1', '2026-09-15T00:00Z', '2026-09-16T00:00Z', %(hostile)s,
         'compute', 'a100-node', 2, 2, 'gpu_hour', 4, 2.75, 'USD', 2, 11.00, 'p-a100-new', 'run-fix',
         'correction', '2026-10-01', 1, 'charge', NULL)
    """,
    """
    INSERT INTO billing.billing_periods (period_start, period_end, closed_at, closed_by)
    VALUES ('2026-09-01', '2026-10-01', '2026-10-01T00:04:00Z', %(closed_by)s),
           ('2026-10-01', '2026-11-01', '2026-11-01T00:05:00Z', %(closed_by)s)
    """,
    """
    INSERT INTO billing.invoices (invoice_id, issuer, invoice_seq, invoice_number, org_id, organization, currency,
        period_start, period_end, subtotal, line_count, issued_at, issued_by)
    VALUES
        ('inv-0001', %(issuer)s, 1, 'RB-000001', 'evil-corp', %(hostile)s, 'USD', '2026-10-01', '2026-11-01',
         130.55, 4, '2026-11-01T00:05:07Z', %(closed_by)s),
        ('inv-0002', %(issuer)s, 2, 'RB-000002', 'tokyo-lab', 'Tokyo Lab 東京ラボ', 'JPY', '2026-10-01',
         '2026-11-01', 1591, 2, '2026-11-01T00:05:07Z', %(closed_by)s),
        ('inv-0003', %(issuer)s, 3, 'RB-000003', 'gulf-ai', 'Gulf AI W.L.L.', 'BHD', '2026-10-01', '2026-11-01',
         12.465, 2, '2026-11-01T00:05:07Z', %(closed_by)s)
    """,
    """
    INSERT INTO billing.invoice_lines (invoice_id, line_no, profile_type, profile, price_id, pricing_unit,
        unit_price, charge_class, quantity, amount, item_count)
    VALUES
        ('inv-0001', 1, 'compute', 'gpu-a100', 'p-a100', 'gpu_hour', 3.10, 'regular', 40.50, 125.55, 3),
        ('inv-0001', 2, 'service', '@risky-svc', 'p-svc', 'instance_hour', 0.125, 'regular', 12, 1.50, 1),
        ('inv-0001', 3, 'compute', 'gpu-a100', 'p-a100-old', 'gpu_hour', 2.50, 'correction', -14, -35.00, 2),
        ('inv-0001', 4, 'compute', 'gpu-a100', 'p-a100-new', 'gpu_hour', 2.75, 'correction', 14, 38.50, 2),
        ('inv-0002', 1, 'compute', 'h100-8gpu', 'p-h100-jpy', 'gpu_hour', 450, 'regular', 2.5, 1125, 1),
        ('inv-0002', 2, 'compute', 'l4-small', 'p-l4-jpy', 'instance_hour', 38, 'regular', 12.25, 466, 2),
        ('inv-0003', 1, 'compute', 'h100-8gpu', 'p-h100-bhd', 'gpu_hour', 1.234, 'regular', 10.0, 12.340, 1),
        ('inv-0003', 2, 'service', 'notebook', 'p-nb-bhd', 'instance_hour', 0.005, 'regular', 25, 0.125, 1)
    """,
]

UNBILLED = [
    {
        "org_id": "gulf-ai",
        "organization": "Gulf AI W.L.L.",
        "usage_date": date(2026, 10, 31),
        "profile_type": "compute",
        "profile": "mystery-gpu",
        "instance": "=cmd|' /C calc'!A0",
        "instance_id": None,
        "reason": "unpriced",
        "detail": "no price applies to profile mystery-gpu",
        "run_id": "not on the summary",
    }
]

PERIOD = {"label": "2026-10", "start": "2026-10-01", "end": "2026-11-01", "last_day": "2026-10-31"}


@pytest.fixture
def issued(pg_conn: psycopg.Connection) -> psycopg.Connection:
    """October 2026 closed, with three invoices (USD with corrections and a hostile name, JPY, BHD)."""
    db.migrate(pg_conn)
    params = {"hostile": HOSTILE, "issuer": ISSUER, "closed_by": CLOSED_BY}
    with db.transaction(pg_conn):
        for statement in SETUP_SQL:
            pg_conn.execute(statement, params)
    return pg_conn


def _line(no: int, cls: str, days: list[str], ptype: str, profile: str, price: str, unit: str,
          unit_price: str, quantity: str, amount: str, items: int) -> dict[str, Any]:
    return {
        "line_no": no,
        "charge_class": cls,
        "corrects_days": days,
        "profile_type": ptype,
        "profile": profile,
        "price_id": price,
        "pricing_unit": unit,
        "unit_price": unit_price,
        "quantity": quantity,
        "amount": amount,
        "item_count": items,
    }


def _invoice(invoice_id: str, seq: int, org_id: str, organization: str, currency: str, minor: int,
             charges: str, corrections: str, subtotal: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "document": "invoice",
        "invoice_id": invoice_id,
        "invoice_number": f"RB-{seq:06d}",
        "invoice_seq": seq,
        "issuer": ISSUER,
        "status": "issued",
        "issue_date": "2026-11-01",
        "issued_at": "2026-11-01T00:05:07Z",
        "issued_by": CLOSED_BY,
        "customer": {"org_id": org_id, "organization": organization},
        "period": PERIOD,
        "currency": currency,
        "minor_unit": minor,
        "line_count": len(lines),
        "charges_total": charges,
        "corrections_total": corrections,
        "subtotal": subtotal,
        "tax": TAX_NOTE,
        "lines": lines,
    }


EXPECTED_JSON = {
    "RB-000001": _invoice("inv-0001", 1, "evil-corp", HOSTILE, "USD", 2, "127.05", "3.50", "130.55", [
        _line(1, "regular", [], "compute", "gpu-a100", "p-a100", "gpu_hour", "3.10", "40.50", "125.55", 3),
        _line(2, "regular", [], "service", "@risky-svc", "p-svc", "instance_hour", "0.125", "12", "1.50", 1),
        _line(3, "correction", ["2026-09-14", "2026-09-15"], "compute", "gpu-a100", "p-a100-old", "gpu_hour",
              "2.50", "-14", "-35.00", 2),
        _line(4, "correction", ["2026-09-14", "2026-09-15"], "compute", "gpu-a100", "p-a100-new", "gpu_hour",
              "2.75", "14", "38.50", 2),
    ]),
    "RB-000002": _invoice("inv-0002", 2, "tokyo-lab", "Tokyo Lab 東京ラボ", "JPY", 0, "1591", "0", "1591", [
        _line(1, "regular", [], "compute", "h100-8gpu", "p-h100-jpy", "gpu_hour", "450", "2.5", "1125", 1),
        _line(2, "regular", [], "compute", "l4-small", "p-l4-jpy", "instance_hour", "38", "12.25", "466", 2),
    ]),
    "RB-000003": _invoice("inv-0003", 3, "gulf-ai", "Gulf AI W.L.L.", "BHD", 3, "12.465", "0.000", "12.465", [
        _line(1, "regular", [], "compute", "h100-8gpu", "p-h100-bhd", "gpu_hour", "1.234", "10.0", "12.340", 1),
        _line(2, "regular", [], "service", "notebook", "p-nb-bhd", "instance_hour", "0.005", "25", "0.125", 1),
    ]),
}

LINE_HEADER = (
    "Invoice number,Period,Org ID,Organization,Currency,Line,Charge class,Corrects days,Profile type,Profile,"
    "Price ID,Pricing unit,Unit price,Quantity,Amount,Items,Contract\r\n"
)
# The hostile name and the '@' profile are prefixed with ' (a formula no more); negative numbers stay numbers.
HOSTILE_CSV = "\"'=HYPERLINK(\"\"http://evil.example/pay\"\",\"\"Pay now\"\")<script>document.title=\"\"pwned\"\";" \
    "document.body.dataset.pwned=\"\"script\"\"</script><img src=x onerror=\"\"document.body.dataset.pwned='img'\"\">\""
EXPECTED_CSV = {
    "RB-000001": LINE_HEADER
    + f"RB-000001,2026-10,evil-corp,{HOSTILE_CSV},USD,1,regular,,compute,gpu-a100,p-a100,gpu_hour,3.10,40.50,125.55,3,\r\n"
    + f"RB-000001,2026-10,evil-corp,{HOSTILE_CSV},USD,2,regular,,service,'@risky-svc,p-svc,instance_hour,0.125,12,1.50,1,\r\n"
    + f"RB-000001,2026-10,evil-corp,{HOSTILE_CSV},USD,3,correction,2026-09-14;2026-09-15,compute,gpu-a100,"
    "p-a100-old,gpu_hour,2.50,-14,-35.00,2,\r\n"
    + f"RB-000001,2026-10,evil-corp,{HOSTILE_CSV},USD,4,correction,2026-09-14;2026-09-15,compute,gpu-a100,"
    "p-a100-new,gpu_hour,2.75,14,38.50,2,\r\n",
    "RB-000002": LINE_HEADER
    + "RB-000002,2026-10,tokyo-lab,Tokyo Lab 東京ラボ,JPY,1,regular,,compute,h100-8gpu,p-h100-jpy,gpu_hour,450,2.5,1125,1,\r\n"
    + "RB-000002,2026-10,tokyo-lab,Tokyo Lab 東京ラボ,JPY,2,regular,,compute,l4-small,p-l4-jpy,instance_hour,38,12.25,466,2,\r\n",
    "RB-000003": LINE_HEADER
    + "RB-000003,2026-10,gulf-ai,Gulf AI W.L.L.,BHD,1,regular,,compute,h100-8gpu,p-h100-bhd,gpu_hour,1.234,10.0,12.340,1,\r\n"
    + "RB-000003,2026-10,gulf-ai,Gulf AI W.L.L.,BHD,2,regular,,service,notebook,p-nb-bhd,instance_hour,0.005,25,0.125,1,\r\n",
}
SUMMARY_CSV = (
    "Invoice number,Org ID,Organization,Currency,Subtotal,Line count\r\n"
    f"RB-000001,evil-corp,{HOSTILE_CSV},USD,130.55,4\r\n"
    "RB-000002,tokyo-lab,Tokyo Lab 東京ラボ,JPY,1591,2\r\n"
    "RB-000003,gulf-ai,Gulf AI W.L.L.,BHD,12.465,2\r\n"
)
UNBILLED_CSV = (
    "\r\n"
    "Unbilled record: org ID,Organization,Usage date,Profile type,Profile,Instance,Instance ID,Reason,Detail\r\n"
    "gulf-ai,Gulf AI W.L.L.,2026-10-31,compute,mystery-gpu,'=cmd|' /C calc'!A0,,unpriced,"
    "no price applies to profile mystery-gpu\r\n"
)


def _summary(unbilled: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "document": "period_summary",
        "period": PERIOD,
        "closed_at": "2026-11-01T00:05:00Z",
        "closed_by": CLOSED_BY,
        "allow_exceptions": False,
        "tax": TAX_NOTE,
        "invoice_count": 3,
        "totals": [
            {"currency": "BHD", "invoice_count": 1, "subtotal": "12.465"},
            {"currency": "JPY", "invoice_count": 1, "subtotal": "1591"},
            {"currency": "USD", "invoice_count": 1, "subtotal": "130.55"},
        ],
        "invoices": [
            {
                "invoice_number": number,
                "document_type": "invoice",  # issue 21, rule 11: invoice or credit_note
                "org_id": doc["customer"]["org_id"],
                "organization": doc["customer"]["organization"],
                "currency": doc["currency"],
                "subtotal": doc["subtotal"],
                "line_count": doc["line_count"],
                "files": {"json": f"{number}.json", "csv": f"{number}.csv", "html": f"{number}.html"},
            }
            for number, doc in EXPECTED_JSON.items()
        ],
        "unbilled": unbilled,
    }


def _read_bytes(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


# --- JSON and CSV ----------------------------------------------------------------------------------


def test_documents_of_a_closed_period(issued: psycopg.Connection, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "period=2026-10"
    written = write_period_documents(issued, parse_period("2026-10"), out, unbilled=UNBILLED)

    names = [f"{n}.{kind}" for n in ("RB-000001", "RB-000002", "RB-000003") for kind in ("json", "csv", "html")]
    assert written == [str(out / name) for name in [*names, "summary.json", "summary.csv"]]
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "summary.json", "summary.csv"])
    for number, expected in EXPECTED_JSON.items():
        assert json.loads(_read_bytes(out / f"{number}.json")) == expected, number
        assert _read_bytes(out / f"{number}.csv") == EXPECTED_CSV[number], number
    summary = json.loads(_read_bytes(out / "summary.json"))
    assert summary == _summary(
        [
            {
                "org_id": "gulf-ai",
                "organization": "Gulf AI W.L.L.",
                "usage_date": "2026-10-31",
                "profile_type": "compute",
                "profile": "mystery-gpu",
                "instance": "=cmd|' /C calc'!A0",  # JSON is data: kept as is; the CSV neutralizes it
                "instance_id": None,
                "reason": "unpriced",
                "detail": "no price applies to profile mystery-gpu",
            }
        ]
    )
    assert _read_bytes(out / "summary.csv") == SUMMARY_CSV + UNBILLED_CSV
    # exact decimal text in the JSON itself, not floats that happen to compare equal
    raw = _read_bytes(out / "RB-000003.json")
    assert '"subtotal": "12.465"' in raw and '"amount": "12.340"' in raw and '"minor_unit": 3' in raw
    assert '"subtotal": "1591"' in _read_bytes(out / "RB-000002.json")


def test_summary_without_unbilled_records_and_rewriting_is_byte_identical(
    issued: psycopg.Connection, tmp_path: Path
) -> None:
    first = tmp_path / "one"
    write_period_documents(issued, parse_period("2026-10"), first)
    assert json.loads(_read_bytes(first / "summary.json")) == _summary([])
    assert _read_bytes(first / "summary.csv") == SUMMARY_CSV
    second = tmp_path / "two"
    write_period_documents(issued, parse_period("2026-10"), second)
    for path in first.iterdir():
        assert (second / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_closed_period_without_invoices_gets_a_summary_only(issued: psycopg.Connection, tmp_path: Path) -> None:
    written = write_period_documents(issued, parse_period("2026-09"), tmp_path)
    assert written == [str(tmp_path / "summary.json"), str(tmp_path / "summary.csv")]
    summary = json.loads(_read_bytes(tmp_path / "summary.json"))
    assert (summary["invoice_count"], summary["invoices"], summary["totals"]) == (0, [], [])
    assert summary["closed_at"] == "2026-10-01T00:04:00Z"
    assert _read_bytes(tmp_path / "summary.csv") == SUMMARY_CSV.split("\r\n")[0] + "\r\n"


@pytest.mark.parametrize("label", ["2026-13", "2026-1", "26-10", "2026-10-01", "", "2026-10/../x"])
def test_bad_period_labels_are_refused(issued: psycopg.Connection, tmp_path: Path, label: str) -> None:
    with pytest.raises(PeriodError, match="YYYY-MM"):
        write_period_documents(issued, parse_period(label), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_open_period_is_refused(issued: psycopg.Connection, tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="2026-11 is not closed"):
        write_period_documents(issued, parse_period("2026-11"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert parse_period("2026-12").end == date(2027, 1, 1)


def test_an_invoice_whose_subtotal_is_not_its_lines_writes_nothing(
    issued: psycopg.Connection, tmp_path: Path
) -> None:
    with db.transaction(issued):
        issued.execute(
            "INSERT INTO billing.billing_periods (period_start, period_end, closed_by) VALUES ('2026-11-01', '2026-12-01', 't')"
        )
        issued.execute(
            "INSERT INTO billing.invoices (invoice_id, issuer, invoice_seq, invoice_number, org_id, organization,"
            " currency, period_start, period_end, subtotal, line_count, issued_by) VALUES ('inv-0004', %s, 4,"
            " 'RB-000004', 'tokyo-lab', 'Tokyo Lab', 'JPY', '2026-11-01', '2026-12-01', 100, 1, 't')",
            (ISSUER,),
        )
        issued.execute(
            "INSERT INTO billing.invoice_lines (invoice_id, line_no, profile_type, profile, price_id, pricing_unit,"
            " unit_price, charge_class, quantity, amount, item_count)"
            " VALUES ('inv-0004', 1, 'compute', 'l4', 'p', 'instance_hour', 33, 'regular', 3, 99, 1)"
        )
    with pytest.raises(DocumentError, match=r"RB-000004: stored subtotal 100 is not the sum of its 1 lines \(99\)"):
        write_period_documents(issued, parse_period("2026-11"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsafe_invoice_numbers_and_corrections_without_items(issued: psycopg.Connection, tmp_path: Path) -> None:
    """A number that is no file name gets a path-safe one; a correction line with no items names no day."""
    with db.transaction(issued):
        issued.execute(
            "INSERT INTO billing.billing_periods (period_start, period_end, closed_by) VALUES ('2026-11-01', '2026-12-01', 't')"
        )
        issued.execute(
            # a negative net is a credit note, numbered from its own counter (issue 21, rule 11)
            "INSERT INTO billing.invoices (invoice_id, issuer, document_type, invoice_seq, invoice_number, org_id,"
            " organization, currency, period_start, period_end, subtotal, line_count, issued_by) VALUES ('inv-0004',"
            " %s, 'credit_note', 1, '../RB/000004', 'tokyo-lab', 'Tokyo Lab', 'JPY', '2026-11-01', '2026-12-01', -99,"
            " 1, 't')",
            (ISSUER,),
        )
        issued.execute(
            "INSERT INTO billing.invoice_lines (invoice_id, line_no, profile_type, profile, price_id, pricing_unit,"
            " unit_price, charge_class, quantity, amount, item_count)"
            " VALUES ('inv-0004', 1, 'compute', 'l4', 'p', 'instance_hour', 33, 'correction', -3, -99, 1)"
        )
    out = tmp_path / "out"
    written = write_period_documents(issued, parse_period("2026-11"), out)
    stem = safe_component("../RB/000004")
    assert stem.startswith("_RB_000004-") and "/" not in stem
    assert written[:3] == [str(out / f"{stem}.{kind}") for kind in ("json", "csv", "html")]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [f"{stem}.json", f"{stem}.csv", f"{stem}.html", "summary.json", "summary.csv"]
    )
    document = json.loads(_read_bytes(out / f"{stem}.json"))
    assert document["invoice_number"] == "../RB/000004"
    assert (document["charges_total"], document["corrections_total"], document["subtotal"]) == ("0", "-99", "-99")
    assert document["lines"][0]["corrects_days"] == []
    summary = json.loads(_read_bytes(out / "summary.json"))
    assert summary["invoices"][0]["files"]["html"] == f"{stem}.html"
    html = _read_bytes(out / f"{stem}.html")
    assert "<td>not recorded</td>" in html and "No charges of this period" in html


def test_rule11_a_credit_note_says_so_and_names_the_invoices_it_corrects(
    issued: psycopg.Connection, tmp_path: Path
) -> None:
    with db.transaction(issued):
        issued.execute(
            "INSERT INTO billing.billing_periods (period_start, period_end, closed_by) VALUES ('2026-11-01', '2026-12-01', 't')"
        )
        corrected = issued.execute("SELECT invoice_id, invoice_number FROM billing.invoices ORDER BY invoice_seq"
                                   " LIMIT 1").fetchone()
        issued.execute(
            "INSERT INTO billing.invoices (invoice_id, issuer, document_type, invoice_seq, invoice_number, org_id,"
            " organization, currency, period_start, period_end, subtotal, line_count, issued_by) VALUES ('cn-1',"
            " 'RB', 'credit_note', 1, 'RB-CN-000001', 'tokyo-lab', 'Tokyo Lab', 'JPY', '2026-11-01', '2026-12-01',"
            " -99, 1, 't')"
        )
        issued.execute("INSERT INTO billing.document_references VALUES ('cn-1', %s)", (corrected[0],))
        issued.execute(
            "INSERT INTO billing.invoice_lines (invoice_id, line_no, profile_type, profile, price_id, pricing_unit,"
            " unit_price, charge_class, quantity, amount, item_count)"
            " VALUES ('cn-1', 1, 'compute', 'l4', 'p', 'instance_hour', 33, 'correction', -3, -99, 1)"
        )
    out = tmp_path / "out"
    write_period_documents(issued, parse_period("2026-11"), out)
    document = json.loads(_read_bytes(out / "RB-CN-000001.json"))
    assert document["document"] == "credit_note" and document["corrects_invoices"] == [corrected[1]]
    html = _read_bytes(out / "RB-CN-000001.html")
    assert "<title>Credit note RB-CN-000001</title>" in html and ">Credit note <span" in html
    assert f'<dd id="corrects">{corrected[1]}</dd>' in html and "Invoice number" not in html
    summary = json.loads(_read_bytes(out / "summary.json"))
    assert summary["invoices"][0]["document_type"] == "credit_note"


class _StorePath:
    """The least an ObjectStoragePath-like target offers: ``/``, ``mkdir`` and ``open``; nothing else."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __truediv__(self, name: str) -> _StorePath:
        assert "/" not in name and name not in ("", ".", "..")
        return _StorePath(self._path / name)

    def mkdir(self, *, parents: bool, exist_ok: bool) -> None:
        self._path.mkdir(parents=parents, exist_ok=exist_ok)

    def open(self, mode: str, **kwargs: Any) -> Any:
        assert mode in ("w", "wb"), mode
        return self._path.open(mode, **kwargs)

    def __str__(self) -> str:
        return f"store://{self._path}"


def test_object_storage_like_targets(issued: psycopg.Connection, tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    plain = tmp_path / "plain"
    write_period_documents(issued, parse_period("2026-10"), plain)
    duck = write_period_documents(issued, parse_period("2026-10"), _StorePath(tmp_path / "duck"))
    assert duck[-1] == f"store://{tmp_path}/duck/summary.csv"
    real = write_period_documents(issued, parse_period("2026-10"), ObjectStoragePath(f"file://{tmp_path}/osp/reports/period=2026-10"))
    assert real[0].endswith("/osp/reports/period=2026-10/RB-000001.json")
    for path in plain.iterdir():
        assert (tmp_path / "duck" / path.name).read_bytes() == path.read_bytes(), path.name
        assert (tmp_path / "osp" / "reports" / "period=2026-10" / path.name).read_bytes() == path.read_bytes()


# --- HTML, rendered in real headless Chromium -------------------------------------------------------


class _Dom(HTMLParser):
    """What Chromium's DOM dump holds: text by element id, the whole body's text, tags and attributes."""

    VOID = {"meta", "link", "br", "img", "hr", "input", "source", "col", "area", "base", "wbr", "embed"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str | None] = []
        self.by_id: dict[str, list[str]] = {}
        self.text: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._in_title = False
        self.rows: dict[str, list[list[str]]] = {}  # table id -> its rows' cell texts
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"
        if tag in self.VOID:
            return
        element_id = dict(attrs).get("id")
        self.stack.append(element_id)
        if tag == "table":
            self._table = element_id
            self.rows.setdefault(element_id or "", [])
        elif tag == "tr" and self._table is not None:
            self.rows[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        if element_id:
            self.by_id.setdefault(element_id, [])

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self.rows[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        for element_id in self.stack:
            if element_id:
                self.by_id[element_id].append(data)

    def text_of(self, element_id: str) -> str:
        return " ".join("".join(self.by_id[element_id]).split())

    @property
    def body_text(self) -> str:
        return " ".join("".join(self.text).split())


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"headless Chromium ({CHROMIUM}) is missing: run .ci/install-chromium.sh "
            "(installs Debian's chromium package), then run the tests again",
            pytrace=False,
        )
    profile = tmp_path / f"chromium-profile-{uuid.uuid4().hex[:8]}"  # a fresh profile every start
    command = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}", pytrace=False)
    return done


def _render(tmp_path: Path, html_file: Path) -> _Dom:
    """The DOM Chromium built from the file (after scripts, had any run), and a screenshot beside it."""
    artifacts = tmp_path / "chromium"
    artifacts.mkdir(exist_ok=True)
    url = html_file.resolve().as_uri()
    dumped = _chromium(tmp_path, "--dump-dom", url).stdout
    (artifacts / f"{html_file.stem}.dom.html").write_text(dumped, encoding="utf-8")
    shot = artifacts / f"{html_file.stem}.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1100,1500", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000, shot
    dom = _Dom()
    dom.feed(dumped)
    assert dom.body_text, f"Chromium rendered no text from {url}:\n{dumped[:2000]}"
    return dom


def test_missing_chromium_fails_and_names_the_install_script(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium-here")
    with pytest.raises(pytest.fail.Exception, match=r"missing: run \.ci/install-chromium\.sh"):
        _chromium(tmp_path, "--version")


def test_the_probe_sees_a_script_that_runs(tmp_path: Path) -> None:
    """Control: unescaped, the hostile name does run in this Chromium, and the DOM dump shows it."""
    page = tmp_path / "unescaped.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body><p>{HOSTILE}</p></body></html>")
    dom = _render(tmp_path, page)
    body = next(attrs for tag, attrs in dom.tags if tag == "body")
    assert body.get("data-pwned") in ("script", "img") and dom.title == "pwned"


@pytest.mark.parametrize(
    ("number", "customer", "subtotal"),
    [
        ("RB-000001", HOSTILE, "130.55 USD"),
        ("RB-000002", "Tokyo Lab 東京ラボ", "1591 JPY"),
        ("RB-000003", "Gulf AI W.L.L.", "12.465 BHD"),
    ],
)
def test_html_invoice_in_headless_chromium(
    issued: psycopg.Connection, tmp_path: Path, number: str, customer: str, subtotal: str
) -> None:
    out = tmp_path / "reports" / "period=2026-10"
    write_period_documents(issued, parse_period("2026-10"), out)
    dom = _render(tmp_path, out / f"{number}.html")
    expected = EXPECTED_JSON[number]

    # shown literally, never run: no script or image element, no handler fired, the title is the invoice's
    assert dom.text_of("customer-name") == customer
    assert [tag for tag, _ in dom.tags if tag in ("script", "img", "iframe", "object", "embed", "link")] == []
    assert all(not name.startswith("on") for _, attrs in dom.tags for name in attrs)
    body = next(attrs for tag, attrs in dom.tags if tag == "body")
    assert "data-pwned" not in body
    assert dom.title == f"Invoice {number}"
    # self-contained: nothing is fetched from anywhere
    assert all(not {"src", "href", "srcset", "action"} & set(attrs) for _, attrs in dom.tags)

    assert dom.text_of("invoice-number") == number
    assert dom.text_of("customer-id") == expected["customer"]["org_id"]
    assert dom.text_of("issuer") == f"Issuer {ISSUER}"
    assert dom.text_of("issue-date") == "2026-11-01"
    assert dom.text_of("period") == "2026-10 (2026-10-01 to 2026-10-31, UTC)"
    assert dom.text_of("currency") == expected["currency"]
    assert dom.text_of("subtotal") == subtotal
    assert dom.text_of("charges-total") == expected["charges_total"]
    assert dom.text_of("tax-note") == TAX_NOTE
    # every line, cell by cell, in its table: charges, or corrections with the days they correct
    for table, cls in (("charges", "regular"), ("corrections", "correction")):
        lines = [line for line in expected["lines"] if line["charge_class"] == cls]
        if not lines:
            assert table not in dom.rows
            continue
        header, *body, total = dom.rows[table]
        assert header[-4:] == ["Unit price", "Quantity", f"Amount ({expected['currency']})", "Charge class"]
        assert body == [
            ([", ".join(line["corrects_days"])] if cls == "correction" else [])
            + [line["profile_type"], line["profile"], line["price_id"], f"{line['unit_price']} / {line['pricing_unit']}",
               line["quantity"], line["amount"], cls]
            for line in lines
        ]
        assert total == [f"{'Charges' if cls == 'regular' else 'Corrections'} total", expected[f"{table}_total"], ""]
    totals = dom.rows["totals"]
    assert totals[-1] == ["Subtotal", subtotal]
    if number == "RB-000001":
        assert totals == [["Charges", "127.05 USD"], ["Corrections", "3.50 USD"], ["Subtotal", "130.55 USD"]]
        assert dom.text_of("corrections-total") == "3.50"
    else:
        assert totals[:-1] == [["Charges", f"{expected['charges_total']} {expected['currency']}"]]
