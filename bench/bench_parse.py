"""Benchmark (item 4): what parsing ``dags/`` costs (DagBag) and what the DAG module imports to parse.

Each measurement is a fresh subprocess (nothing cached in ``sys.modules``) with an isolated Airflow
home. It imports ``airflow.sdk`` first (every DAG file pays that, and the dag-processor has it
loaded already), then the ``DagBag`` class, then times ``DagBag(dag_folder=...)`` alone: finding,
importing and validating the DAG file. Three folders, interleaved run by run so they see the same
machine noise:

- ``dags/``: the project's DAG (the target applies to it);
- ``minimal``: a one-task ``@dag`` on ``airflow.sdk`` only, the floor any DAG file pays;
- ``eager``: the project's DAG with the imports its tasks make lazily moved to the top of the file
  (``rafay_provider.pipeline``, the hook, the Airflow-free core, the PostgreSQL provider), i.e. what
  the lazy-import rule saves every parse.

It also lists the modules ``DagBag(dags/)`` imports beyond ``airflow.sdk`` (grouped by top-level
package) and checks that no heavy one (pandas, requests, a database driver, ``rafay_billing.source.client``)
is among them. ``tests/unit/dags/test_dag_integrity.py`` asserts the import set; this reports the time.
Target: <= 0.5 s.

    .venv/bin/python bench/bench_parse.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from pathlib import Path

from rafay_devkit.airflow_env import isolated_airflow_env

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "dags" / "rafay_usage_billing.py"
TARGET_S = 0.5
RESULT_PREFIX = "BENCH_RESULT "
HEAVY_PACKAGES = ("pandas", "numpy", "requests", "psycopg", "psycopg2", "sqlalchemy_utils", "s3fs", "boto3",
                  "botocore")
HEAVY_MODULES = ("rafay_billing.source.client", "rafay_billing.source.extract", "airflow.providers.postgres")

CHILD = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    import airflow.sdk  # noqa: F401  (every DAG file pays this; the dag-processor has it loaded)
    t1 = time.perf_counter()
    before = set(sys.modules)
    from airflow.dag_processing.dagbag import DagBag
    t2 = time.perf_counter()
    after_import = set(sys.modules)
    bag = DagBag(dag_folder=sys.argv[1])
    t3 = time.perf_counter()
    print(json.dumps({
        "sdk_import_s": t1 - t0, "dagbag_import_s": t2 - t1, "parse_s": t3 - t2,
        "errors": {k: str(v)[-500:] for k, v in bag.import_errors.items()},
        "dags": sorted(bag.dag_ids),
        "parse_modules": sorted(set(sys.modules) - after_import),
        "all_new_modules": sorted(set(sys.modules) - before),
    }))
    """
)

MINIMAL_DAG = textwrap.dedent(
    '''
    """The smallest DAG: one task, airflow.sdk only."""
    from datetime import datetime

    from airflow.sdk import dag, task


    @dag(dag_id="minimal", schedule=None, start_date=datetime(2026, 11, 1), catchup=False)
    def minimal() -> None:
        @task
        def hello() -> str:
            return "hello"

        hello()


    minimal()
    '''
)

EAGER_IMPORTS = (
    "# bench_parse 'eager' variant: the tasks' lazy imports moved to module level\n"
    "import rafay_provider.pipeline  # noqa: F401,E402\n"
    "import rafay_provider.hooks.rafay  # noqa: F401,E402\n"
    "import rafay_billing.source.extract, rafay_billing.ledger.load, rafay_billing.ledger.rating, rafay_billing.reports  # noqa\n"
    "import rafay_billing.ledger.price_book, rafay_billing.db  # noqa\n"
    "import airflow.providers.postgres.hooks.postgres  # noqa: F401,E402\n"
)


def _env(home: Path, dags: Path) -> dict[str, str]:
    return {**os.environ, **isolated_airflow_env(home, dags)}


def parse_once(folder: Path, home: Path) -> dict:
    """One fresh interpreter parsing ``folder``; the child's JSON report."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, timeout=300,
        env=_env(home, folder), cwd=home,
    )
    if proc.returncode != 0:
        raise SystemExit(f"parsing {folder} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise SystemExit(f"import errors parsing {folder}: {json.dumps(result['errors'], indent=1)}")
    return result


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY_PACKAGES or m.startswith(HEAVY_MODULES)]


def _name(module: str) -> str:
    """DagBag imports a DAG file under a generated name (``unusual_prefix_<hash>_<file>``)."""
    return "<the DAG file>" if module.startswith("unusual_prefix_") else module


def _top_level(modules: list[str]) -> str:
    counts = Counter(("<the DAG file>" if m.startswith("unusual_prefix_") else m.split(".")[0]) for m in modules)
    return ", ".join(f"{pkg} ({n})" for pkg, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh subprocesses per folder")
    parser.add_argument("--target-s", type=float, default=TARGET_S)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rafay-bench-parse-") as tmp:
        root = Path(tmp)
        home = root / "airflow-home"
        home.mkdir()
        minimal = root / "minimal"
        minimal.mkdir()
        (minimal / "minimal_dag.py").write_text(MINIMAL_DAG)
        eager = root / "eager"
        eager.mkdir()
        source = DAG_FILE.read_text()
        marker = "from airflow.sdk import"
        (eager / DAG_FILE.name).write_text(source.replace(marker, EAGER_IMPORTS + marker, 1))
        folders = {"dags/": REPO / "dags", "minimal": minimal, "eager": eager}

        results: dict[str, list[dict]] = {name: [] for name in folders}
        parse_once(REPO / "dags", home)  # warm the OS file cache; not counted
        for i in range(args.runs):
            for name, folder in folders.items():
                results[name].append(parse_once(folder, home))
            print(f"  run {i + 1}: " + ", ".join(f"{n} {results[n][-1]['parse_s']:.3f} s" for n in folders), flush=True)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    ours = results["dags/"]
    print()
    print(f"DagBag(dag_folder) wall time, median of {args.runs} fresh interpreters (after import airflow.sdk):")
    print(f"  {'folder':<64} {'DagBag() s':>10} {'min s':>7} {'max s':>7}")
    labels = {
        "dags/": f"dags/ ({', '.join(ours[0]['dags'])})",
        "minimal": "baseline: one-task DAG, airflow.sdk only",
        "eager": "baseline: our DAG with its task imports at module level",
    }
    for name in folders:
        times = [r["parse_s"] for r in results[name]]
        print(f"  {labels[name]:<64} {statistics.median(times):10.3f} {min(times):7.3f} {max(times):7.3f}")
    print(f"One-off per interpreter: import airflow.sdk {med('dags/', 'sdk_import_s'):.2f} s, "
          f"import DagBag {med('dags/', 'dagbag_import_s'):.2f} s (the dag-processor pays these once).")
    # Side-by-side ratios, run by run.
    over_minimal = statistics.median(
        o["parse_s"] / m["parse_s"] for o, m in zip(ours, results["minimal"], strict=True)
    )
    eager_over = statistics.median(e["parse_s"] / o["parse_s"] for o, e in zip(ours, results["eager"], strict=True))
    print(f"Ratios (median of per-run ratios): dags/ = {over_minimal:.1f}x the one-task DAG; "
          f"eager imports would cost {eager_over:.1f}x dags/.")

    parse_modules = ours[0]["parse_modules"]
    floor = set(results["minimal"][0]["parse_modules"])
    ours_only = [m for m in parse_modules if m not in floor]
    print()
    print(f"Modules imported by DagBag(dags/) beyond airflow.sdk and the DagBag class: {len(parse_modules)}")
    print(f"  by package: {_top_level(parse_modules)}")
    print(f"  beyond what the one-task DAG imports ({len(ours_only)}): {', '.join(map(_name, ours_only)) or 'none'}")
    found = heavy(parse_modules)
    eager_heavy = heavy(results["eager"][0]["parse_modules"])
    print(f"  heavy modules ({', '.join(HEAVY_PACKAGES)}, {', '.join(HEAVY_MODULES)}): "
          f"{', '.join(found) if found else 'none'}")
    print(f"  (the eager variant would import {len(eager_heavy)} of them: "
          f"{_top_level(eager_heavy) or 'none'})")

    median = med("dags/", "parse_s")
    met = median <= args.target_s and not found
    verdict = "met" if met else (f"MISSED by {median - args.target_s:.2f} s" if median > args.target_s
                                 else "MISSED (heavy imports)")
    print(f"Target <= {args.target_s} s with no heavy import at parse time: {verdict} ({median:.3f} s).")
    print(RESULT_PREFIX + json.dumps({
        "item": "4 DAG parse", "metric": "DagBag(dags/) after import airflow.sdk, median",
        "result": f"{median:.3f} s", "baseline": f"one-task DAG {med('minimal', 'parse_s'):.3f} s; "
        f"eager imports {med('eager', 'parse_s'):.3f} s",
        "ratio": f"{over_minimal:.1f}x minimal, eager {eager_over:.1f}x slower",
        "target": f"<= {args.target_s} s, no heavy imports", "met": met,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
