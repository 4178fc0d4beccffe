"""Rows stay identical to the golden rows made before the extraction's CPU work (issue 14).

The edge pages (``tests/support/golden_usage.py``) go through the client's JSON decoding, the pager
and ``normalize_record`` for four profiles; every row's ``repr`` (types, Decimal text, dict order)
must equal the golden line. A change here is a change of what billing receives.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from rafay_billing.source.usage import USAGE_COLUMNS, row_values
from rafay_billing.source.usage_csv import write_usage_csv
from tests.support.golden_usage import EDGE_GOLDEN, edge_rows, row_line


def test_edge_rows_are_identical_to_the_golden_rows() -> None:
    golden = EDGE_GOLDEN.read_text(encoding="utf-8", errors="surrogatepass").splitlines()
    got = [row_line(r) for r in edge_rows()]
    assert len(got) == len(golden)
    for number, (line, want) in enumerate(zip(got, golden, strict=True)):
        assert line == want, f"row {number} differs"


def _cell_before(value: object) -> str:
    """``usage_csv._cell`` as it was: decimals through the JSON encoder's ``default``."""
    def default(v: object) -> str:
        if isinstance(v, Decimal):
            return format(v, "f")
        raise TypeError(type(v).__name__)

    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=default)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def test_the_usage_csv_of_the_edge_rows_is_what_the_writer_wrote_before() -> None:
    rows = edge_rows()
    out = io.StringIO(newline="")
    assert write_usage_csv(rows, out) == len(rows)
    before = io.StringIO(newline="")
    writer = csv.writer(before, lineterminator="\n")
    writer.writerow(USAGE_COLUMNS)
    for row in rows:
        writer.writerow([_cell_before(v) for v in row_values(row)])
    assert out.getvalue() == before.getvalue()
    assert '""huge"": ""205947230000000000000000000000000000000000""' in out.getvalue()  # CSV-quoted
