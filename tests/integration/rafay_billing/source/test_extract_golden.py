"""A shape-(c)-like extraction (one org, every record with dimensions and labels, many pages, the
simulator's anomalies) over real HTTP yields exactly the golden rows made before the CPU work of
issue 14, spooled or kept in memory."""

from __future__ import annotations

from rafay_simulator.pytest_plugin import FIXED_NOW
from tests.support.golden_usage import SIM_CONFIG, SIM_GOLDEN, digest_lines, row_line, sim_rows


def test_extraction_rows_are_identical_to_the_golden_rows(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(now=FIXED_NOW, **SIM_CONFIG)
    golden = SIM_GOLDEN.read_text().splitlines()
    spooled = sim_rows(sim.url, sim.api_key, keep_rows=False)
    kept = sim_rows(sim.url, sim.api_key, keep_rows=True)
    assert [row_line(r) for r in kept] == [row_line(r) for r in spooled]
    assert any(r.labels for r in spooled) and all(r.dimensions for r in spooled if r.valid)
    assert any(not r.valid for r in spooled)  # the anomalies are in
    got = digest_lines(spooled)
    assert len(got) == len(golden)
    differ = [n for n, (a, b) in enumerate(zip(got, golden, strict=True)) if a != b]
    assert not differ, f"rows {differ[:10]} differ, e.g. {row_line(spooled[differ[0]]) if differ else ''}"
