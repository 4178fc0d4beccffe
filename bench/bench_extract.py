"""Benchmark: ``rafay-billing metrics`` against the blog script's sequential reads, on the simulator.

Both read the same simulated console (40 ms latency per request, 30 orgs x 6 profiles by default)
for the same window. The baseline is the blog script itself (``tests/seed_script.py``: one request
at a time, a new connection per request); the contender is the ``rafay-billing metrics`` code path
(pooled session, concurrent reads). The rows written must be identical (the contract's
spreadsheet neutralization applied to the seed's cells); the script prints wall times, the speedup
and the latency-bound ideal (requests x latency / concurrency).

    .venv/bin/python bench/bench_extract.py [--orgs 30] [--profiles 6] [--latency-ms 40] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rafay_billing import cli  # noqa: E402
from rafay_billing.reports import neutralize  # noqa: E402
from rafay_simulator import RafaySimulator, SimulatorConfig  # noqa: E402
from tests.support import seed_script  # noqa: E402  (the blog script, verbatim but for the URL scheme)

SIM_NOW = datetime(2026, 11, 27, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 26, 6, 30, 0, tzinfo=UTC)


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return WINDOW_END if tz is None else WINDOW_END.astimezone(tz)


def _csv_rows(path: Path, neutralized: bool = False) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))
    return [[neutralize(c) for c in r] for r in rows] if neutralized else rows


def _files(directory: Path) -> tuple[Path, Path]:
    unsorted = next(p for p in directory.iterdir() if p.name.startswith("ncp-metrics-") and "sorted" not in p.name)
    sorted_ = next(p for p in directory.iterdir() if p.name.startswith("ncp-metrics-sorted-"))
    return unsorted, sorted_


def run_seed(sim: RafaySimulator, days: int, workdir: Path) -> tuple[float, int, int]:
    """The blog script's main() in ``workdir``; returns (seconds, requests, connections)."""
    os.environ.update(DAYS=str(days), RAFAY_CONSOLE_URL=sim.url.split("://", 1)[1], RAFAY_DEFAULT_API_KEY=sim.api_key)
    seed_script.datetime = _FrozenDatetime  # same window as the command below
    sim.reset_stats()
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            seed_script.main()
        elapsed = time.perf_counter() - started
    finally:
        os.chdir(cwd)
    return elapsed, _settled(sim), sim.connections_opened


def run_command(sim: RafaySimulator, days: int, concurrency: int, out: Path) -> tuple[float, int, int, int]:
    """``rafay-billing metrics`` in-process; returns (seconds, requests, connections, max in flight)."""
    start = WINDOW_END - timedelta(days=days)
    os.environ.update(RAFAY_CONSOLE_URL=sim.url, RAFAY_DEFAULT_API_KEY=sim.api_key)
    sim.reset_stats()
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main([
            "metrics", "--start", start.strftime("%Y-%m-%dT%H:%M:%SZ"), "--end", WINDOW_END.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "--out", str(out), "--concurrency", str(concurrency),
        ])
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"rafay-billing metrics exited {code}")
    return elapsed, _settled(sim), sim.connections_opened, sim.max_in_flight


def _settled(sim: RafaySimulator) -> int:
    """Request count once the simulator has logged the last reply (it logs just after sending)."""
    deadline = time.monotonic() + 5
    count = -1
    while time.monotonic() < deadline:
        now = len(sim.requests)
        if now == count:
            return now
        count = now
        time.sleep(0.05)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=30)
    parser.add_argument("--profiles", type=int, default=6, help="profiles per org")
    parser.add_argument("--latency-ms", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args(argv)

    config = SimulatorConfig(
        orgs=args.orgs, profiles_per_org=(args.profiles, args.profiles), latency_ms=args.latency_ms, now=SIM_NOW
    )
    with RafaySimulator(config) as sim, tempfile.TemporaryDirectory(prefix="rafay-bench-") as tmp:
        seed_dir, ours_dir = Path(tmp, "seed"), Path(tmp, "ours")
        seed_dir.mkdir()
        print(f"Simulator {sim.url}: {args.orgs} orgs x {args.profiles} profiles, {args.latency_ms} ms per request")
        base_s, base_requests, base_conns = run_seed(sim, args.days, seed_dir)
        ours_s, our_requests, our_conns, in_flight = run_command(sim, args.days, args.concurrency, ours_dir)

        seed_files, our_files = _files(seed_dir), _files(ours_dir)
        for seed_file, our_file in zip(seed_files, our_files, strict=True):
            expected, got = _csv_rows(seed_file, neutralized=True), _csv_rows(our_file)
            if expected != got:
                raise SystemExit(f"rows differ: {seed_file.name} vs {our_file.name}")
        rows = len(_csv_rows(our_files[0])) - 1

        ideal = our_requests * args.latency_ms / 1000 / args.concurrency
        print(f"Rows: {rows} in both (unsorted and sorted files identical, after neutralization)")
        print(f"  {'':32} {'wall s':>8} {'requests':>9} {'connections':>12}")
        print(f"  {'seed script (sequential)':32} {base_s:8.2f} {base_requests:9d} {base_conns:12d}")
        print(f"  {f'rafay-billing metrics (c={args.concurrency})':32} {ours_s:8.2f} {our_requests:9d} {our_conns:12d}")
        print(f"Speedup: {base_s / ours_s:.1f}x  (max in flight observed by the simulator: {in_flight})")
        print(f"Latency-bound ideal for the command: {our_requests} x {args.latency_ms} ms / {args.concurrency} = {ideal:.2f} s"
              f" ({ideal / ours_s * 100:.0f}% of it achieved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
