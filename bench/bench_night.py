"""Benchmark (item 8): one whole night at scale through the real scheduler.

The simulator runs in its own process (``--orgs`` x ``--profiles`` x ``--instances``, ``--latency-ms``
per request); ``LocalAirflow`` (api-server, scheduler, dag-processor, triggerer; LocalExecutor,
PostgreSQL metadata DB, the default pool of 8 slots and the default map settings: one mapped task
per org) runs ``rafay_usage_billing`` for one UTC day, after an unmeasured warm-up run of a few orgs.

Reported, from the REST API's task instance start/end times:

- wall time per phase: list (resolve_window .. list_orgs), extract (first ``extract_org`` start to
  last end), load (``load_usage``), rate (``rate_window``), report (``publish_reports``, ``check_run``)
  and the whole run;
- peak RSS per task: a sampler reads ``VmHWM`` (the kernel's high-water mark of resident memory,
  so a peak between samples is not missed) of every task process every 0.2 s; Airflow 3's task
  runner titles its process ``airflow worker -- <task instance id>``, which names the task;
- the Airflow metadata database's growth over the run (``pg_database_size`` before and after),
  and per task instance.

When ``--orgs`` is below the target's 1,000, the per-org phases are extrapolated linearly to 1,000
(stated in the output). Target (README): the night of 1,000 orgs x 10 profiles x 20 instances
(200,000 records) in <= 20 minutes on 2 cores, peak RSS per task <= 300 MB.

    .venv/bin/python bench/bench_night.py [--orgs 1000] [--profiles 10] [--instances 20] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_mapping import (  # noqa: E402
    API_KEY,
    PRICE_BOOK,
    RESULT_PREFIX,
    Simulator,
    billing_window,
    parse_time,
    pct,
    run_dag,
)
from rafay_devkit.airflow_env import airflow_env  # noqa: E402
from rafay_devkit.local_airflow import DAG_ID, LocalAirflow  # noqa: E402
from rafay_devkit.postgres import EmbeddedPostgres  # noqa: E402

TARGET_ORGS = 1000
TARGET_NIGHT_S = 20 * 60
TARGET_RSS_MB = 300
PHASES = {
    "list": ("resolve_window", "wait_for_usage_to_settle", "migrate_schema", "sync_price_book", "list_orgs"),
    "extract": ("extract_org",),
    "load": ("load_usage",),
    "rate": ("rate_window",),
    "report": ("publish_reports", "check_run"),
}
TITLE = "airflow worker -- "


class RssSampler:
    """Peak RSS (``VmHWM``) per task instance id, from ``/proc`` every ``interval`` seconds."""

    def __init__(self, interval: float = 0.2) -> None:
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self.interval = interval

    def _scan(self) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if not cmdline.startswith(TITLE.encode()):
                    continue
                ti_id = cmdline[len(TITLE):].split(b"\0")[0].decode().strip()
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        kib = int(line.split()[1])
                        self.peaks[ti_id] = max(self.peaks.get(ti_id, 0), kib)
                        break
            except (OSError, ValueError, IndexError):
                continue

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._scan()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def db_size(pg: EmbeddedPostgres, name: str) -> int:
    import psycopg

    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        return conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()[0]


@contextmanager
def night_airflow(pg: EmbeddedPostgres, sim: Simulator, home: Path) -> Iterator[tuple[LocalAirflow, str]]:
    """``LocalAirflow`` as bench_mapping measured it (LocalExecutor parallelism 8, pool ``rafay_api`` 8); yields it and its metadata DB's name."""
    suffix = uuid.uuid4().hex[:8]
    env = airflow_env(
        home / "airflow", rafay_url=sim.url, rafay_api_key=API_KEY,
        billing_dsn=pg.create_database(f"billing_{suffix}"), data_uri=(home / "landing").as_uri(),
        price_book_uri=PRICE_BOOK.as_uri(),
    )
    metadata = f"airflow_{suffix}"
    airflow = LocalAirflow(home / "airflow", env, parallelism=8, pool_slots=8, metadata_dsn=pg.create_database(metadata))
    try:
        airflow.start()
        airflow.wait_for_dag(DAG_ID)
        yield airflow, metadata
    finally:
        airflow.stop()


def phase_times(tis: list[dict]) -> dict[str, float]:
    """Wall seconds per phase: first start to last end of its task instances."""
    out = {}
    for phase, task_ids in PHASES.items():
        spans = [(parse_time(t["start_date"]), parse_time(t["end_date"])) for t in tis
                 if t["task_id"] in task_ids and t.get("start_date") and t.get("end_date")]
        if spans:
            out[phase] = max(e for _, e in spans) - min(s for s, _ in spans)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=TARGET_ORGS)
    parser.add_argument("--profiles", type=int, default=10)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args(argv)
    args.days = 1

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    window = billing_window(1)
    workdir = Path(tempfile.mkdtemp(prefix="rafay-bench-night-"))
    sim = None
    try:
        sim = Simulator(args, workdir)
        print(f"Simulator {sim.url} (own process): {args.orgs} orgs x {args.profiles} profiles x {args.instances} "
              f"instances, {args.latency_ms} ms per request; window [{window['window_start']}, "
              f"{window['window_end']}); load {os.getloadavg()[0]:.2f}", flush=True)
        with EmbeddedPostgres() as pg, night_airflow(pg, sim, workdir) as (airflow, metadata):
            from rafay_billing.source.client import RafayClient
            from rafay_billing.source.extract import list_orgs

            with RafayClient(sim.url, API_KEY) as client:
                few = [o.org_id for o in list_orgs(client)[:3]]
            started = time.perf_counter()
            run_dag(airflow, sim, window, "warm-up", "", few)
            print(f"  warm-up run (3 orgs, not counted): {time.perf_counter() - started:.0f} s", flush=True)
            before = db_size(pg, metadata)
            load0 = os.getloadavg()[0]
            with RssSampler() as rss:
                run = run_dag(airflow, sim, window, "night", "")
            after = db_size(pg, metadata)
            load1 = os.getloadavg()[0]
            runs = sorted(airflow.client.dag_runs(DAG_ID), key=lambda r: r.get("start_date") or "")
            run_id = runs[-1]["dag_run_id"]  # the night's run: the last one started
            tis = airflow.client.task_instances(DAG_ID, run_id)
        phases = phase_times(tis)
        by_id = {t.get("id"): t for t in tis}
        per_task: dict[str, list[float]] = {}
        for ti_id, kib in rss.peaks.items():
            ti = by_id.get(ti_id)
            if ti is not None:
                per_task.setdefault(ti["task_id"], []).append(kib / 1024)
        extract_n = sum(1 for t in tis if t["task_id"] == "extract_org" and t["map_index"] >= 0)
        states: dict[str, int] = {}
        for t in tis:
            states[t["state"]] = states.get(t["state"], 0) + 1
        print(f"\nNight of {args.orgs} orgs x {args.profiles} x {args.instances} ({run.run_state}, "
              f"task states {states}); load {load0:.2f} at start, {load1:.2f} at end (2 cores, shared)")
        print(f"  whole run: {run.run_wall:.1f} s")
        scale = TARGET_ORGS / args.orgs
        projected = run.run_wall
        for phase in PHASES:
            seconds = phases.get(phase, float("nan"))
            extra = ""
            if scale != 1 and phase in ("extract", "load", "rate", "report"):
                extra = f"  (x{scale:g} orgs: ~{seconds * scale:.0f} s, linear)"
                projected += seconds * (scale - 1)
            print(f"  {phase:<8} {seconds:8.1f} s{extra}")
        if extract_n:
            print(f"  extract: {extract_n} mapped tasks, {phases.get('extract', 0) / extract_n * 1000:.0f} ms per org")
        print("  peak RSS per task (MB, median / max over its instances):")
        worst = 0.0
        for task_id, values in sorted(per_task.items()):
            worst = max(worst, max(values))
            print(f"    {task_id:<26} {statistics.median(values):7.1f} / {max(values):7.1f}  ({len(values)} sampled)")
        growth = after - before
        print(f"  metadata DB: {before / 1e6:.1f} MB before, {after / 1e6:.1f} MB after: +{growth / 1e6:.1f} MB "
              f"this run, {growth / max(len(tis), 1) / 1024:.1f} KiB per task instance ({len(tis)})")
        if scale != 1:
            print(f"Projected night of {TARGET_ORGS} orgs (per-org phases scaled linearly from {args.orgs}): "
                  f"{projected:.0f} s")
        verdict = "met" if projected <= TARGET_NIGHT_S and worst <= TARGET_RSS_MB else "MISSED"
        print(f"Target: night <= {TARGET_NIGHT_S} s and peak RSS per task <= {TARGET_RSS_MB} MB: {verdict} "
              f"({projected:.0f} s, {worst:.0f} MB)")
        print(RESULT_PREFIX + json.dumps({
            "item": "8 night", "metric": f"{args.orgs} orgs x {args.profiles} x {args.instances}, 20 ms",
            "baseline": "", "result": f"{run.run_wall:.0f} s" + (f" (~{projected:.0f} s at 1,000 orgs)" if scale != 1 else ""),
            "ratio": f"peak RSS {worst:.0f} MB, metadata +{growth / 1e6:.1f} MB",
            "target": f"<= {TARGET_NIGHT_S} s, <= {TARGET_RSS_MB} MB", "met": verdict == "met",
            "phases": phases, "pct95_extract_rss": pct(per_task.get("extract_org", []), 95),
        }))
        return 0
    finally:
        if sim is not None:
            sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
