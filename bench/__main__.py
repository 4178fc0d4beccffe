"""``python -m bench`` (``make bench``): every benchmark in turn, each in a subprocess of its own, then a summary.

    .venv/bin/python -m bench                   # all: extract load rating ledger-key parse mapping memory celery night
    .venv/bin/python -m bench parse memory      # a subset, in the order given
    .venv/bin/python -m bench --quick           # smaller sizes and fewer runs (minutes, not the targets' sizes)
    .venv/bin/python -m bench --list            # what each one measures

Each benchmark's own output streams through as it runs. Figures for the summary table come from a
``BENCH_RESULT {json}`` line (parse, mapping, memory) or from the benchmark's printed figures
(load, rating); bench_extract repeats its own runs (``--extract-runs``, default 3) and reports
medians. Run from the repository root. Ctrl-C stops the running benchmark, which
stops what it started (simulator, PostgreSQL, Airflow). Exit status 1 when a benchmark failed or
reported no figures; a missed target is reported in the table, not as a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "BENCH_RESULT "
Extractor = Callable[[list[str]], dict]


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    what: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    extract: Extractor | None = None
    runs: int = 1
    quick_runs: int = 1


# --- figures from the benchmarks' own output -------------------------------------------------------


def _search(pattern: str, lines: list[str]) -> re.Match | None:
    for line in reversed(lines):
        match = re.search(pattern, line)
        if match:
            return match
    return None


def _target_line(lines: list[str]) -> str:
    found = next((ln for ln in reversed(lines) if ln.startswith("Target")), "")
    return found


def extract_figures(runs: list[list[str]]) -> dict:
    """Item 1 from bench_extract's ``BENCH_RESULT``: every shape's ratio to its latency bound at the
    default concurrency (8), shape c's served-bound ratio and CPU per record against json.loads."""
    result = reported(runs)
    shapes = {s["shape"]: s for s in result.get("shapes", [])}
    if not shapes:
        return {}
    parts, met = [], True
    for name, shape in sorted(shapes.items()):
        process = shape.get("process")
        if process:  # issue 25 target 1: the command as a user runs it, beside the blog script run the same way
            parts.append(f"{name} as a process {process['ratio']:.2f}x the bound ({process['wall_s']:.2f} s, start-up "
                         f"{process['startup_s']:.2f} s), {process['speedup_vs_seed']}x faster than the blog script "
                         f"as a process ({process['seed_s']:.2f} s)")
            if process.get("floor"):  # the same requests and a CSV, standard library only, run the same way
                parts.append(f"{name} standard-library floor as a process {process['floor']['ratio']:.2f}x "
                             f"(start-up {process['floor']['startup_s']:.2f} s)")
            met = met and process["ratio"] <= 1.3 and process["speedup_vs_seed"] >= 7
        floor = shape.get("async_floor")
        if floor:  # what a one-event-loop client takes for the same requests, beside the command in-process
            parts.append(f"{name} in-process {floor['ours_ratio']:.2f}x the served bound against an asyncio floor of "
                         f"{floor['floor_ratio']:.2f}x")
        if not shape["concurrency"]:
            continue
        e = shape["concurrency"].get("8") or next(iter(shape["concurrency"].values()))
        if name == "c":
            served = e["wall_s"] / e["served_bound_s"]
            parts.append(f"c {served:.2f}x served bound ({e['ratio']:.2f}x nominal), extraction CPU "
                         f"{e.get('extract_vs_floor', float('nan')):.1f}x json.loads (DAG task with its CSV "
                         f"{e.get('task_vs_floor', float('nan')):.1f}x)")
            met = met and served <= 1.3 and e.get("extract_vs_floor", 99) <= 3
        else:
            parts.append(f"{name} {e['ratio']:.2f}x ({e['wall_s']:.2f} s, {e.get('speedup_vs_seed', '-')}x blog)")
            met = met and e["ratio"] <= 1.3
    return {
        "item": "1 extraction", "metric": "rafay-billing metrics on shapes a/b/c vs the latency bound (c=8)",
        "baseline": "latency bound", "result": "; ".join(parts), "ratio": "",
        "target": "<= 1.3x bound (a as a process too, and >= 7x the blog script); c: <= 3x json.loads CPU",
        "met": met,
    }


def load_figures(runs: list[list[str]]) -> dict:
    lines = runs[-1]
    targets = _search(r"Targets: >= 100,000 rows/s (met|MISSED) \(([\d,]+)\); >= 10x INSERTs (met|MISSED) \(([\d.]+)x",
                      lines)
    insert = _search(r"row-by-row INSERT, prepared .*\s([\d,]+)\s*$", lines)
    floor = _search(r"COPY vs psql \\copy .*: (\d+)% of the floor's throughput; target >= 50% (met|MISSED)", lines)
    if not targets:
        return {}
    return {
        "item": "2 load", "metric": "COPY of the usage rows (rows/s)",
        "baseline": f"INSERT {insert.group(1)} rows/s" if insert else "row-by-row INSERT",
        "result": f"{targets.group(2)} rows/s" + (f", {floor.group(1)}% of psql \\copy" if floor else ""),
        "ratio": f"{targets.group(4)}x",
        "target": ">= 100,000 rows/s, >= 10x, >= 50% of psql \\copy",
        "met": targets.group(1) == "met" and targets.group(3) == "met" and (floor is None or floor.group(2) == "met"),
    }


def reported(runs: list[list[str]]) -> dict:
    """The ``BENCH_RESULT`` line of the last run."""
    for line in reversed(runs[-1]):
        if line.startswith(RESULT_PREFIX):
            try:
                return json.loads(line[len(RESULT_PREFIX):])
            except ValueError:
                return {}
    return {}


BENCHES = [
    Bench("extract", "bench_extract.py",
          "1. rafay-billing metrics on three tenant shapes vs the latency bound and the blog script (<= 1.3x)",
          args=("--runs", "3", "--concurrency", "4", "8", "16", "--process", "--process-runs", "5", "--async-floor"),
          quick_args=("--quick", "--process"), extract=extract_figures),
    Bench("load", "bench_load.py",
          "2. 1,000,000 usage rows of one day into PostgreSQL: COPY vs INSERT (>= 100k rows/s, >= 10x)",
          quick_args=("--rows", "200000", "--insert-sample", "5000", "--repeats", "1"), extract=load_figures),
    Bench("rating", "bench_rating.py", "3. rating 1,000,000 rows of one day against 10,000 prices in SQL (<= 10 s)",
          quick_args=("--rows", "200000", "--orgs", "200", "--prices", "2000", "--history-days", "1", "--repeats", "1"),
          extract=reported),
    Bench("ledger-key", "bench_ledger_key.py",
          "3b. what the ledger's key costs inserting a day of 1,000,000 items, against a narrower key and none",
          quick_args=("--orgs", "200", "--repeats", "1"), extract=reported),
    Bench("parse", "bench_parse.py", "4. DagBag(dags/) time and parse-time imports (<= 0.5 s)",
          quick_args=("--runs", "3"), extract=reported),
    Bench("mapping", "bench_mapping.py", "5. 200 orgs through a real scheduler: per-mapped-task overhead, defaults",
          quick_args=("--orgs", "40", "--pools", "8", "--batch-tasks", "4", "--baseline-runs", "1"), extract=reported),
    Bench("memory", "bench_memory.py", "6. peak RSS of one (org, day)'s extraction, 100,000 instances, and of publish_reports at night scale (<= 300 MB)",
          quick_args=("--runs", "1", "--path", "pipeline", "--publish-orgs", "200", "--publish-path", "publish"),
          extract=reported),
    Bench("celery", "bench_celery.py", "7. one window on two Celery workers vs one (native Celery topology)",
          quick_args=("--orgs", "8", "--runs", "1"), extract=reported),
    Bench("night", "bench_night.py",
          "8. a whole night, 1,000 orgs x 10 profiles x 20 instances through the scheduler (<= 20 min, <= 300 MB)",
          quick_args=("--orgs", "30"), extract=reported),
]


# --- running ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    bench: Bench
    seconds: float = 0.0
    codes: list[int] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def run_script(bench: Bench, args: list[str]) -> tuple[int, list[str]]:
    """The benchmark in a subprocess of the same process group (Ctrl-C reaches it), output streamed."""
    command = [sys.executable, "-u", str(REPO / "bench" / bench.script), *args]
    print(f"$ {' '.join([Path(sys.executable).name, *command[1:]])}", flush=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line.rstrip("\n"))
        return process.wait(), lines
    except KeyboardInterrupt:
        # The terminal sent SIGINT to the whole group; when we got SIGTERM instead, pass it on.
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise


def machine() -> str:
    model = "unknown CPU"
    memory = ""
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name"))
        kib = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal:"))
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    postgres = "PostgreSQL ?"
    try:
        from rafay_devkit.postgres import find_bin_dir

        out = subprocess.run([str(find_bin_dir() / "postgres"), "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
        postgres = out.replace("postgres (PostgreSQL)", "PostgreSQL") or postgres
    except Exception:
        pass
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({model}){memory}, "
            f"Python {platform.python_version()}, {postgres}")


def _cell(value: object) -> str:
    if value is True:
        return "met"
    if value is False:
        return "MISSED"
    if value is None:
        return "-"
    return str(value)


def print_summary(outcomes: list[Outcome], quick: bool, started: float) -> bool:
    """The final table; True when every benchmark ran and reported its figures (missed targets included)."""
    header = ("item", "baseline", "result", "ratio", "target", "met")
    table = []
    ok = True
    for o in outcomes:
        s = o.summary
        if any(o.codes) or not s:
            ok = False
            status = f"exit {','.join(map(str, o.codes))}" if any(o.codes) else "no figures (see its output)"
            table.append((o.bench.name, "", status, "", "", "FAILED" if any(o.codes) else "?"))
            continue
        runs = f" (median of {len(o.codes)})" if len(o.codes) > 1 else ""
        table.append((s.get("item", o.bench.name), s.get("baseline", ""), f"{s.get('result', '')}{runs}",
                      s.get("ratio", ""), s.get("target", ""), _cell(s.get("met"))))
        if s.get("extra"):
            table.append(("", "", f"  {s['extra']}", "", "", ""))
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header))]
    print()
    print("=" * 100)
    print(f"Summary{' (--quick: smaller sizes than the targets assume)' if quick else ''} - {machine()}")
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in table:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(f"Total {time.perf_counter() - started:.0f} s; per benchmark: "
          + ", ".join(f"{o.bench.name} {o.seconds:.0f} s" for o in outcomes))
    return ok


def main(argv: list[str] | None = None) -> int:
    names = [b.name for b in BENCHES]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("benches", nargs="*", metavar="BENCH", help=f"some of: {' '.join(names)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs")
    parser.add_argument("--extract-runs", type=int, default=None, help="runs of bench_extract (default 3, quick 1)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for b in BENCHES:
            print(f"  {b.name:<8} bench/{b.script:<18} {b.what}")
        return 0
    unknown = [n for n in args.benches if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    chosen = [next(b for b in BENCHES if b.name == n) for n in args.benches] if args.benches else list(BENCHES)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.perf_counter()
    print(f"Machine: {machine()}")
    print(f"Benchmarks: {', '.join(b.name for b in chosen)}{' (quick)' if args.quick else ''}", flush=True)
    outcomes: list[Outcome] = []
    try:
        for bench in chosen:
            runs = bench.quick_runs if args.quick else bench.runs
            script_args = list(bench.quick_args if args.quick else bench.args)
            if bench.name == "extract" and args.extract_runs:
                script_args = [*script_args, "--runs", str(args.extract_runs)]
            print()
            print("=" * 100)
            print(f"[{bench.name}] {bench.what}", flush=True)
            outcome = Outcome(bench)
            outcomes.append(outcome)
            t0 = time.perf_counter()
            outputs = []
            for i in range(runs):
                if runs > 1:
                    print(f"--- run {i + 1} of {runs}", flush=True)
                code, lines = run_script(bench, script_args)
                outcome.codes.append(code)
                if code == 0:
                    outputs.append(lines)
            outcome.seconds = time.perf_counter() - t0
            if outputs and bench.extract:
                outcome.summary = bench.extract(outputs)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        print_summary(outcomes, args.quick, started)
        return 130
    return 0 if print_summary(outcomes, args.quick, started) else 1


if __name__ == "__main__":
    sys.exit(main())
