"""Split one pytest run into N concurrent shards (``make test``: two, one per core).

Almost all of ``make test`` is ``tests/e2e``, and an ``airflow dags test`` run is one busy core (about
10 s of CPU, single-threaded) while the other core waits; the topology files (real scheduler,
workers, browser) mostly wait on their components' loops. Two shards run side by side use both cores.

How a shard is chosen (``pytest --shard I/N``, applied in ``tests/conftest.py``): whole files, never
parts of one (a module's fixtures, e.g. its Airflow stack, are set up once), so every test runs
exactly as it does in a serial run. The files marked ``topology`` all go to shard 1: at most one
Airflow stack runs at a time, so their timing-sensitive steps compete with one ``dags test`` at most.
The other files are dealt out longest first to the shard with the least work so far, by the seconds
in :data:`FILE_SECONDS` (measured; a file not listed counts by its number of tests and tier). A stale
or missing figure only costs balance, never a test: each shard is a plain pytest session, and the
union of the shards is the whole selection (checked in ``tests/unit/test_shards.py``).

``python -m tests.support.shards [-n N] [pytest args...]`` runs the N sessions, each into a log file
(printed, in order, as each shard ends), and exits non-zero if any shard failed. The shards other than
the first run at a lower CPU priority (``nice``): the topology tests' waits and races get the CPU
first, the ``dags test`` runs take what is left.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.support.paths import REPO

# Seconds per file (setup, calls and teardown), from ``make test PYTEST_ARGS=--durations=0`` on a clean
# clone on the 2-core machine (2026-12-07 18:15, the two shards side by side, as they run). Keys are paths
# from the repo root.
FILE_SECONDS: dict[str, float] = {
    # airflow dags test files
    "tests/e2e/test_ledger_e2e.py": 249,
    "tests/e2e/test_corrections_e2e.py": 179,
    "tests/e2e/test_close_e2e.py": 159,
    "tests/e2e/test_dag_e2e.py": 176,
    "tests/e2e/test_partner_source_e2e.py": 92,
    "tests/e2e/test_guards_close_e2e.py": 67,
    "tests/e2e/test_s3_landing.py": 62,
    "tests/e2e/test_guards_e2e.py": 59,
    "tests/e2e/test_alerts_e2e.py": 27,
    "tests/e2e/test_contracts_close_e2e.py": 31,
    "tests/e2e/test_delivery_e2e.py": 11,
    "tests/e2e/test_wheel_install.py": 15,
    "tests/e2e/test_metrics_e2e.py": 14,
    "tests/e2e/test_secrets_backend_e2e.py": 13,
    # topology (shard 1)
    "tests/e2e/test_approval_e2e.py": 173,
    "tests/e2e/test_celery_topology.py": 200,
    "tests/e2e/test_topology.py": 199,
    "tests/e2e/test_faults.py": 152,
    "tests/e2e/test_billing_view.py": 109,
}
# A file not listed: seconds per test, by tier (tests/unit and tests/integration: about 1,240 tests in
# 4.5 to 7.5 min).
PER_TEST_SECONDS = {"e2e": 15.0, "integration": 0.3, "unit": 0.2}
NICE = 10  # the CPU priority of shards 2..N
PROGRESS_SECONDS = 120.0


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 1 <= I <= N; why: one spelling for the option and the runner."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes I/N (e.g. 1/2), not {text!r}") from None
    if not 1 <= index <= count:
        raise ValueError(f"--shard {text}: I must be between 1 and N")
    return index, count


def _tier(path: str) -> str:
    parts = Path(path).parts
    return next((tier for tier in ("e2e", "integration") if tier in parts), "unit")


def assign(files: Sequence[tuple[str, int, bool]], count: int) -> dict[str, int]:
    """``[(path, number of tests, is topology)]`` -> {path: shard (1-based)}, deterministic."""
    load = [0.0] * count
    shard_of: dict[str, int] = {}

    def weight(path: str, tests: int) -> float:
        return FILE_SECONDS.get(path, tests * PER_TEST_SECONDS[_tier(path)])

    for path, tests, topology in files:
        if topology:
            shard_of[path] = 1
            load[0] += weight(path, tests)
    rest = sorted((f for f in files if not f[2]), key=lambda f: (-weight(f[0], f[1]), f[0]))
    for path, tests, _ in rest:
        target = min(range(count), key=lambda i: (load[i], i))
        shard_of[path] = target + 1
        load[target] += weight(path, tests)
    return shard_of


def split(items: Iterable, index: int, count: int) -> tuple[list, list]:
    """pytest items -> (kept, deselected) for shard ``index`` of ``count``; collection order is kept."""
    items = list(items)
    files: dict[str, list[int | bool]] = {}
    for item in items:
        path = _relpath(item)
        entry = files.setdefault(path, [0, False])
        entry[0] = int(entry[0]) + 1
        entry[1] = bool(entry[1]) or item.get_closest_marker("topology") is not None
    shard_of = assign([(p, int(n), bool(t)) for p, (n, t) in files.items()], count)
    kept = [i for i in items if shard_of[_relpath(i)] == index]
    dropped = [i for i in items if shard_of[_relpath(i)] != index]
    return kept, dropped


def _relpath(item) -> str:
    path = Path(str(item.path)).resolve()
    try:
        return path.relative_to(REPO).as_posix()
    except ValueError:
        return path.as_posix()


# --- the runner ----------------------------------------------------------------------------------


def run(count: int, pytest_args: list[str], log_dir: Path) -> int:
    """Start the ``count`` shards, print each one's output as it ends; the worst exit status."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[int, subprocess.Popen, Path, float]] = []
    for index in range(1, count + 1):
        log = log_dir / f"shard-{index}-of-{count}.log"
        nice = [] if index == 1 else ["nice", "-n", str(NICE)]
        cmd = [*nice, sys.executable, "-m", "pytest", f"--shard={index}/{count}", *pytest_args]
        with log.open("wb") as handle:
            procs.append((index, subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO),
                          log, time.monotonic()))
        print(f"shard {index}/{count}: {' '.join(cmd)}  > {log}", flush=True)
    statuses: dict[int, int] = {}
    pending = list(procs)
    next_progress = time.monotonic() + PROGRESS_SECONDS
    while pending:
        if time.monotonic() >= next_progress:  # a sign of life for CI logs: each running shard's last line
            next_progress += PROGRESS_SECONDS
            for index, _, log, started in pending:
                print(f"shard {index}/{count} ({time.monotonic() - started:.0f} s): {_last_line(log)}", flush=True)
        for entry in list(pending):
            index, proc, log, started = entry
            if proc.poll() is None:
                continue
            pending.remove(entry)
            statuses[index] = proc.returncode
            print(f"\n===== shard {index}/{count}: exit {proc.returncode} after {time.monotonic() - started:.0f} s"
                  f" ({log}) =====", flush=True)
            sys.stdout.write(log.read_text(errors="replace"))
            sys.stdout.flush()
        time.sleep(1)
    # 5 = "no tests collected": a shard may be empty when the selection is small.
    failed = {i: s for i, s in statuses.items() if s not in (0, 5)}
    if all(s == 5 for s in statuses.values()):
        return 5
    print(f"\nshards: {statuses}" + (f"; FAILED: {sorted(failed)}" if failed else "; all passed"), flush=True)
    return max(failed.values()) if failed else 0


def _last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1][-120:] if lines else "(no output yet)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("-n", "--shards", type=int, default=int(os.environ.get("SHARDS", "2")),
                        help="concurrent pytest sessions (default: $SHARDS or 2); 1 runs pytest as is")
    parser.add_argument("--log-dir", type=Path, default=None, help="where the shards' logs go (default: a temp dir)")
    args, pytest_args = parser.parse_known_args(argv)
    if args.shards < 1:
        parser.error("--shards must be at least 1")
    if args.shards == 1:
        return subprocess.call([sys.executable, "-m", "pytest", *pytest_args], cwd=REPO)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="rafay-test-shards-"))
    return run(args.shards, pytest_args, log_dir)


if __name__ == "__main__":
    sys.exit(main())
