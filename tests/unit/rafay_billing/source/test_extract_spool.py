"""The row spool keeps a row's Decimals as their text on disk (issue 25): every value comes back the same."""

from __future__ import annotations

from decimal import Decimal

from rafay_billing.source.extract import _from_disk, _RowSpool, _to_disk
from rafay_billing.source.usage import UsageRow, row_values

EDGES = [Decimal("-0"), Decimal("0E-7"), Decimal("1.000"), Decimal("486.5"), Decimal("0.000000001"),
         Decimal("1" + "0" * 40), Decimal("-3.25"), Decimal("12345678901234567890.123456789012345678901")]


def _row(i: int, hours: Decimal | None, dimensions: dict) -> UsageRow:
    return UsageRow("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "org", "Org", 0, 0, "vm", "p", f"i{i}",
                    f"id-{i}", f"id-{i}", "running", "1.0", hours, 8, None, None, None, "usage/p/page-0000.json", i,
                    dimensions, {"Contract ID": "C-1"})


def test_rows_come_back_from_disk_with_the_very_same_values() -> None:
    rows = [_row(i, d, {"gpu": d, "cpu": None, "disk": EDGES[-1 - i]}) for i, d in enumerate(EDGES)]
    rows += [_row(99, None, {}), _row(100, Decimal(5), {"x": None})]
    for row in rows:
        assert repr(_from_disk(_to_disk(row_values(row)))) == repr(row_values(row))
    spool = _RowSpool(on_disk=True)
    for row in rows * 700:  # more than one pickled batch
        spool.add(row)
    spool.flush()
    back = list(spool)
    spool.close()
    assert [repr(c) for c in back] == [repr(row_values(r)) for r in rows * 700]
    assert all(type(c[13]) in (Decimal, type(None)) for c in back)
