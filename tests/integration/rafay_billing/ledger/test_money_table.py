"""The per-org money table of rate_window's log, over a real PostgreSQL rated by the real rater."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from rafay_billing.ledger.money_table import (
    GROUP_END,
    GROUP_START,
    OrgMoney,
    fetch_org_totals,
    format_table,
    grouped,
)
from tests.support.billed import Usage, bill

D1, D2 = date(2026, 11, 10), date(2026, 11, 11)


def test_totals_per_org_and_currency_of_one_run(pg_conn) -> None:
    bill(pg_conn, [
        Usage("ujzde8g", D1, "cpu-vm", "a", "10"),        # 10 x 0.12 = 1.20 USD
        Usage("ujzde8g", D1, "h100-vm", "b", "2", 8),     # 2 x 8 x 2.75 = 44.00 USD
        Usage("ujzde8g", D2, "cpu-vm", "a", "24"),        # 2.88 USD
        Usage("eurorg1", D1, "a100-vm", "c", "1.5", 4),   # 1.5 x 4 x 1.90 = 11.40 EUR
        Usage("qmw2wxf", D1, "nope-vm", "d", "3"),        # unpriced: no line item
    ], "run-1")
    bill(pg_conn, [Usage("zz9late", date(2026, 11, 12), "cpu-vm", "e", "1")], "run-2")  # another run
    rows = fetch_org_totals(pg_conn, "run-1", D1, date(2026, 11, 12))
    assert rows == [
        OrgMoney("ujzde8g", "UJZDE8G", "USD", 3, Decimal("36"), Decimal("48.08")),
        OrgMoney("eurorg1", "EURORG1", "EUR", 1, Decimal("1.5"), Decimal("11.40")),
    ]
    assert fetch_org_totals(pg_conn, "run-1", D2, date(2026, 11, 12))[0].amount == Decimal("2.88")


def _row(i: int, amount: str, currency: str = "USD") -> OrgMoney:
    return OrgMoney(f"org{i:04d}", f"Org {i}", currency, 2, Decimal("1.5"), Decimal(amount))


def test_top_50_by_amount_and_a_total_over_every_org() -> None:
    rows = [_row(i, f"{i}.25") for i in range(1, 121)] + [_row(999, "7", "JPY")]
    lines = format_table(rows)
    body = [ln for ln in lines if ln.startswith("org")][1:]  # after the header
    assert len(body) == 50
    assert body[0].startswith("org0120") and body[-1].startswith("org0071")  # largest first
    assert "... 71 more (org, currency) row(s) not shown" in "\n".join(lines)
    totals = {ln.split()[3]: ln for ln in lines if ln.startswith("TOTAL")}
    assert sorted(totals) == ["JPY", "USD"]
    assert totals["USD"].split()[-1] == f"{sum(Decimal(f'{i}.25') for i in range(1, 121)):,}"  # all 120, not 50
    assert "120 org(s)" in totals["USD"]
    assert totals["JPY"].split()[-1] == "7"


def test_the_table_is_one_collapsible_group() -> None:
    lines = grouped("Charges per org", format_table([_row(1, "3.50")]))
    assert lines[0] == f"{GROUP_START}Charges per org" == "::group::Charges per org"
    assert lines[-1] == GROUP_END == "::endgroup::"
    assert all("::" not in ln for ln in lines[1:-1])
