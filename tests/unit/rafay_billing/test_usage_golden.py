"""Rows stay identical to the golden rows made before the extraction's CPU work (issue 14).

The edge pages (``tests/support/golden_usage.py``) go through the client's JSON decoding, the pager
and ``normalize_record`` for four profiles; every row's ``repr`` (types, Decimal text, dict order)
must equal the golden line. A change here is a change of what billing receives.
"""

from __future__ import annotations

from tests.support.golden_usage import EDGE_GOLDEN, edge_rows, row_line


def test_edge_rows_are_identical_to_the_golden_rows() -> None:
    golden = EDGE_GOLDEN.read_text(encoding="utf-8", errors="surrogatepass").splitlines()
    got = [row_line(r) for r in edge_rows()]
    assert len(got) == len(golden)
    for number, (line, want) in enumerate(zip(got, golden, strict=True)):
        assert line == want, f"row {number} differs"
