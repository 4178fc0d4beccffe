"""The one Decimal/datetime/date-to-JSON converter (XCom payloads, audit details, open exceptions)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from rafay_billing.jsonable import to_jsonable


def test_money_stays_exact_text_and_times_are_utc_z() -> None:
    value = {
        "totals": {"USD": Decimal("12.50"), "JPY": Decimal("1E+3")},
        "when": datetime(2026, 11, 1, 5, 6, 7, 890, tzinfo=UTC),
        "day": date(2026, 11, 1),
        "items": (Decimal("0.10"), [date(2026, 10, 31)]),
        1: "int key",
        "plain": None,
    }
    got = to_jsonable(value)
    assert got == {
        "totals": {"USD": "12.50", "JPY": "1E+3"},
        "when": "2026-11-01T05:06:07Z",
        "day": "2026-11-01",
        "items": ["0.10", ["2026-10-31"]],
        "1": "int key",
        "plain": None,
    }
    assert Decimal(json.loads(json.dumps(got))["totals"]["USD"]) == Decimal("12.50")
