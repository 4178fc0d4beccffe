"""Benchmark (item 7): the same window on two Celery workers vs one, in the native Celery topology.

``rafay_devkit.celery_topology`` (Redis, S3 via moto, api-server, scheduler, dag-processor,
triggerer, Celery workers with ``--concurrency`` slots each, landing root on S3) bills one window of
``--orgs`` simulated orgs (``--latency-ms`` per API request, so extraction waits on the network as
against a real console) ``--runs`` times with both workers up, then stops ``worker-b`` and bills the
same window ``--runs`` times on ``worker-a`` alone. Figures: each run's wall time (REST API
``start_date`` to ``end_date``) and the extraction phase's (first ``extract_org`` start to last
end), medians per worker count. Prints a ``BENCH_RESULT {json}`` line.

    .venv/bin/python bench/bench_celery.py [--orgs 16] [--latency-ms 150] [--concurrency 2] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rafay_devkit.airflow_env import airflow_env
from rafay_devkit.celery_topology import CeleryTopology
from rafay_devkit.local_airflow import DAG_ID
from rafay_devkit.postgres import EmbeddedPostgres
from rafay_devkit.project import demo_price_book
from rafay_simulator import RafaySimulator, SimulatorConfig

BUCKET = "bench-celery"


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def one_run(topo: CeleryTopology, conf: dict) -> dict:
    client = topo.client
    run = client.trigger(DAG_ID, conf=conf)
    final = client.wait_for_run(DAG_ID, run["dag_run_id"], timeout=1800, interval=1)
    tis = client.mapped_task_instances(DAG_ID, run["dag_run_id"], "extract_org")
    extract = (max(_t(t["end_date"]) for t in tis) - min(_t(t["start_date"]) for t in tis)).total_seconds()
    return {
        "state": final["state"],
        "wall_s": round((_t(final["end_date"]) - _t(final["start_date"])).total_seconds(), 1),
        "extract_s": round(extract, 1),
        "hosts": sorted({t["hostname"] for t in tis}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=16)
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker")
    parser.add_argument("--runs", type=int, default=2, help="runs per worker count")
    args = parser.parse_args(argv)

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    ws, we = today - timedelta(days=2), today - timedelta(days=1)
    conf = {"window_start": f"{ws:%Y-%m-%dT%H:%M:%SZ}", "window_end": f"{we:%Y-%m-%dT%H:%M:%SZ}",
            "settle_minutes": 0}
    home = Path(tempfile.mkdtemp(prefix="bench-celery-"))
    sim = RafaySimulator(SimulatorConfig(seed=7, orgs=args.orgs, now=today, latency_ms=args.latency_ms)).start()
    pg = EmbeddedPostgres()
    pg.start()
    topo: CeleryTopology | None = None
    results: dict[int, list[dict]] = {2: [], 1: []}
    try:
        env = airflow_env(home / "airflow", rafay_url=sim.url, rafay_api_key=sim.api_key,
                          billing_dsn=pg.create_database("billing"), data_uri=f"s3://{BUCKET}/billing",
                          price_book_uri=demo_price_book().as_uri(),
                          billing_start_date=today.date().isoformat())  # no scheduled catch-up run
        topo = CeleryTopology(home, env, pg.create_database("airflow"), BUCKET, workers=2,
                              concurrency=args.concurrency).start()
        assert topo.airflow is not None
        topo.airflow.wait_for_dag(DAG_ID)
        topo.client.unpause(DAG_ID)  # paused at creation, as in compose; the start date is today: no catch-up
        one_run(topo, conf)  # warm-up: schema migration, first imports
        for workers in (2, 1):
            if workers == 1:
                topo.stop_worker("worker-b")
            for _ in range(args.runs):
                result = one_run(topo, conf)
                print(f"{workers} worker(s): {json.dumps(result)}", flush=True)
                results[workers].append(result)
    finally:
        if topo is not None:
            topo.stop()
        pg.stop()
        sim.stop()
    summary = {
        "item": "7 celery workers",
        "metric": f"one window, {args.orgs} orgs, {args.latency_ms} ms/request, {args.concurrency} slots per worker",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    for workers, runs in results.items():
        summary[f"wall_s_{workers}_workers"] = round(statistics.median(r["wall_s"] for r in runs), 1)
        summary[f"extract_s_{workers}_workers"] = round(statistics.median(r["extract_s"] for r in runs), 1)
    one, two = summary["wall_s_1_workers"], summary["wall_s_2_workers"]
    summary.update({"baseline": f"1 worker {one} s", "result": f"2 workers {two} s",
                    "ratio": f"{one / two:.2f}x" if two else "", "target": "", "met": None})
    print(f"Median run wall time: two workers {summary['wall_s_2_workers']} s, one worker {summary['wall_s_1_workers']} s"
          f" (extraction phase {summary['extract_s_2_workers']} s vs {summary['extract_s_1_workers']} s)")
    print("BENCH_RESULT " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"bench_celery: {time.monotonic() - started:.0f} s in all", file=sys.stderr)
    sys.exit(code)
