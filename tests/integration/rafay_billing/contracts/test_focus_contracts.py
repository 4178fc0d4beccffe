"""The FOCUS export of a month with contract charges (issue 22): reservation fees are purchases of a
commitment discount (the contract), fees and true-ups purchases without one; focus-validator 1.0.0
accepts the export and BilledCost per (org, currency) is still the document's subtotal."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg

from rafay_billing.periods import focus
from rafay_billing.periods.invoices import fetch_invoices
from tests.integration.rafay_billing.contracts.test_close_charges import (
    CONTRACTS,
    MONTHLY_FEE,
    NOV,
    ONE_TIME_FEE,
    RESERVATION_FEE,
    TRUE_UP_R1,
    _close,
    _sync,
    conn,  # noqa: F401 (the fixture)
)
from tests.support.focus import assert_focus_valid


def test_contract_charges_in_focus(conn: psycopg.Connection, tmp_path: Path) -> None:  # noqa: F811
    _sync(conn, *CONTRACTS)
    _close(conn, NOV)
    rows = focus.focus_frame(conn, NOV).to_dict("records")
    by_contract = {r["CommitmentDiscountName"] or r["SkuPriceId"]: r for r in rows if r["ChargeCategory"] != "Usage"}
    got = {cid: (r["ChargeCategory"], r["ChargeFrequency"], r["CommitmentDiscountId"],
                 r["CommitmentDiscountType"], Decimal(str(r["BilledCost"]))) for cid, r in by_contract.items()}
    assert got == {
        "r-1": ("Purchase", "Recurring", "r-1", "Reservation", RESERVATION_FEE),
        "c-1": ("Purchase", "Recurring", None, None, TRUE_UP_R1),
        "f-1": ("Purchase", "Recurring", None, None, MONTHLY_FEE),
        "f-2": ("Purchase", "One-Time", None, None, ONE_TIME_FEE),
    }
    assert all(r["ConsumedQuantity"] is None for r in by_contract.values())
    assert {r["ChargeFrequency"] for r in rows if r["ChargeCategory"] == "Usage"} == {"Usage-Based"}
    # rule 2: the usage r-1 covers is committed usage of the reservation, billed 0, listed at its on-demand cost
    covered = [r for r in rows if r["ChargeCategory"] == "Usage" and r["CommitmentDiscountId"] is not None]
    assert [(r["PricingCategory"], r["CommitmentDiscountId"], r["CommitmentDiscountCategory"],
             r["CommitmentDiscountType"], r["CommitmentDiscountStatus"], Decimal(str(r["BilledCost"])),
             Decimal(str(r["ListCost"])), Decimal(str(r["ListUnitPrice"]))) for r in covered] == [
        ("Committed", "r-1", "Usage", "Reservation", "Used", Decimal(0), Decimal("110.00"), Decimal("2.75"))]
    assert {r["PricingCategory"] for r in rows if r not in covered} == {"Standard"}
    billed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        billed[(r["BillingAccountId"], r["BillingCurrency"])] += Decimal(str(r["BilledCost"]))
    assert billed == {(i.org_id, i.currency): i.subtotal for i in fetch_invoices(conn, NOV)}
    path = tmp_path / "focus-2026-11.csv"
    focus.write_focus_export(conn, NOV, path)
    assert_focus_valid(path)
    assert date(2026, 11, 1) == NOV.start
