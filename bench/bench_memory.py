"""Benchmark (item 6): peak RSS of one organization's extraction with 100,000 instances.

The DAG extracts an org day by day (the ledger's unit is (org, UTC day)), so the measured unit is
one (org, day) holding ``--instances`` instances with usage. The simulator runs in a process of its
own (its dataset does not count) serving one org with a few profiles, pages capped at
``--page-size`` records (the client asks for the same page size through the connection's
``page_size`` extra). Its dataset is the simulator's generated one (``Dataset.generate``: varied
lifetimes, stops, deletions, re-creations), each instance's lifetime moved by whole days so that it
starts on the measured day at its own time of day: every instance has usage that day.

Each run is a fresh subprocess that does what the DAG's ``extract_org`` task does, through the same
code: ``rafay_provider.pipeline.extract_batch`` for that one-day window, with connection
``rafay_default`` and Variable ``billing_data_uri`` from the environment (RafayHook -> RafayClient,
``extract_org``, every raw page landed under the landing root, rows spooled and streamed into the
(org, day)'s ``usage.csv``). Only the task runner around it is missing; its imports (Airflow's task
SDK) are loaded, so the RSS is what the task's own process would hold. Side by side, interleaved run
by run, for the same day:

- ``core``: the same without Airflow (``extract_org(keep_rows=False)`` + page writer + ``write_usage_csv``);
- ``held``: the baseline, the extraction as it was before rows were spooled: each worker lists its
  profile's raw records in full, then all are normalised into one list of rows, then written;
- ``core-kept`` (on request): ``extract_org(keep_rows=True)``, rows held in memory, as ``rafay-billing
  metrics`` does (it needs them all for its sorted CSV).

Peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss``; "before" is the RSS after the imports, before the
first request; "growth" is the difference (what the extraction itself costs). Median of ``--runs``
runs. Target: <= 300 MB peak for the DAG task.

In the same run, the night's ``publish_reports`` task (item 8 measured it at 372 MB in the night):
an embedded PostgreSQL, migrated, a price book synced (``bench_rating.price_book_csv``), the night's
usage landed with COPY (``bench_load``'s generator: ``--publish-orgs`` 1,000 orgs x 10 profiles x 20
instances = 200,000 records of one UTC day, ``load_org_usage`` per org as ``load_usage`` does) and
rated by the real rating (``rate_window``), without the scheduler. Then each measured run is a fresh
subprocess calling what the DAG's task calls, ``rafay_provider.pipeline.publish_reports``, with
connection ``billing_postgres`` and Variable ``billing_data_uri`` (a ``file://`` landing root in a
temp dir, written through ``ObjectStoragePath``) from the environment, Airflow's task SDK and the
Postgres hook imported first, as in the task's process. Side by side, interleaved:

- ``publish``: the DAG task's ``publish_reports`` (the target applies to it);
- ``publish-sorting``: the step as it was before the sorted copy came from an ``ORDER BY`` query:
  rows streamed from server-side cursors, the sorted copy sorted in memory (every row's cells held);
- ``publish-held``: the baseline, the step as the night measured it: every ncp-metrics row and
  line item fetched into lists of dicts (``fetch_ncp_metrics_rows``, ``fetch_line_items``), then written.

The reports of every run are compared byte for byte (the timestamp in the ncp-metrics file names aside).

    .venv/bin/python bench/bench_memory.py [--instances 100000] [--profiles 10] [--page-size 1000] [--runs 3]
                                           [--publish-orgs 1000] [--no-extraction] [--no-publish]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rafay_devkit.processes import stop_process_group

REPO = Path(__file__).resolve().parents[1]
API_KEY = "bench-memory-key"
SEED = 11
SIM_NOW = "2027-01-01T00:00:00Z"
# The measured (org, day): every instance's lifetime is moved to start on it (see day_dataset).
DAY = date(2026, 11, 15)
WINDOW = {"window_start": f"{DAY.isoformat()}T00:00:00Z", "window_end": f"{DAY + timedelta(days=1)}T00:00:00Z"}
TARGET_MB = 300.0
RESULT_PREFIX = "BENCH_RESULT "
PATHS = ("pipeline", "core", "held", "core-kept")
DEFAULT_PATHS = ("pipeline", "core", "held")
PUBLISH_PATHS = ("publish", "publish-sorting", "publish-held")
PUBLISH_RUN_ID = "bench_memory_night"


def _rss_mb() -> float:
    """Current resident set size (``/proc/self/status`` VmRSS), MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- the dataset and the simulator --------------------------------------------------------------


def day_dataset(profiles: int, per_profile: int):
    """The simulator's generated org, each instance moved by whole days to start on ``DAY`` (same time
    of day, same duration, stop and deletion): every instance has usage on ``DAY``."""
    from rafay_simulator.dataset import Dataset

    generated = Dataset.generate(SEED, 1, (profiles, profiles), (per_profile, per_profile))

    def moved(instance):
        shift = timedelta(days=(DAY - instance.created_at.date()).days)
        return dataclasses.replace(
            instance, created_at=instance.created_at + shift,
            stopped_at=instance.stopped_at and instance.stopped_at + shift,
            deleted_at=instance.deleted_at and instance.deleted_at + shift,
        )

    orgs = [dataclasses.replace(org, profiles=[
        dataclasses.replace(profile, instances=[moved(i) for i in profile.instances]) for profile in org.profiles
    ]) for org in generated.orgs]
    return Dataset(orgs=orgs, partner_id=generated.partner_id, organization_id=generated.organization_id)


def rows_on_day(org) -> int:
    """Usage records the simulator serves for ``org`` and ``DAY`` (instances with usage that day)."""
    from rafay_simulator.dataset import usage_seconds

    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    now = datetime.fromisoformat(SIM_NOW.replace("Z", "+00:00"))
    return sum(1 for p in org.profiles for i in p.instances
               if usage_seconds(i, start, start + timedelta(days=1), now) > 0)


def serve(args: argparse.Namespace) -> int:
    """The simulator process: ``day_dataset`` served until SIGTERM; its URL goes to ``--ready-file``."""
    import threading

    from rafay_simulator import RafaySimulator, SimulatorConfig

    config = SimulatorConfig(
        dataset=day_dataset(args.profiles, args.per_profile), api_key=API_KEY, max_page_size=args.page_size,
        now=datetime.fromisoformat(SIM_NOW.replace("Z", "+00:00")),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim = RafaySimulator(config).start()
    try:
        ready = Path(args.ready_file)
        tmp = ready.with_name(ready.name + ".tmp")
        tmp.write_text(sim.url + "\n")
        os.replace(tmp, ready)
        while not stop.wait(0.2):
            pass
    finally:
        sim.stop()
    return 0


# --- the measured child ----------------------------------------------------------------------


class _TaskInstance:
    """What ``extract_batch`` needs of ``context["ti"]``: ``xcom_push``."""

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def child(args: argparse.Namespace) -> int:
    """One measured extraction in this (fresh) process; prints one JSON line."""
    out = Path(args.out)
    path = args.path[-1]
    if path == "pipeline":
        os.environ["AIRFLOW_CONN_RAFAY_DEFAULT"] = json.dumps({
            "conn_type": "rafay", "host": args.url, "password": API_KEY,
            "extra": {"page_size": args.page_size, "read_timeout": 300},
        })
        os.environ["AIRFLOW_VAR_BILLING_DATA_URI"] = out.as_uri()
        from rafay_provider import pipeline
        from rafay_provider.hooks.rafay import RafayHook  # noqa: F401  (imported by the task, so measured)

        def run() -> dict:
            ti = _TaskInstance()
            landed = pipeline.extract_batch(
                [{"org_id": args.org_id, "name": args.org_name, "org_seq": 0}], dict(WINDOW),
                {"run_id": "bench_memory", "ti": ti},
            )
            return {"rows": landed[0]["rows"], "usage_uri": landed[0]["usage_uri"]}
    elif path == "held":
        from concurrent.futures import ThreadPoolExecutor

        from rafay_billing.source.client import RafayClient
        from rafay_billing.source.usage import ProfileRef, normalize_record
        from rafay_billing.source.usage_csv import write_usage_csv
        from rafay_billing.window import Window

        def run() -> dict:
            # extract_org as it was before rows were spooled: every profile's raw records listed in
            # full by its worker, then normalised into one list of rows, then written.
            window = Window.from_dict(WINDOW)
            org_dir = out / "org"
            org_dir.mkdir(parents=True, exist_ok=True)

            def on_page(kind: str, key: str, page_no: int, body: bytes) -> None:
                name = f"{kind}-{key}" if key else kind
                (org_dir / f"{name}-page-{page_no:04d}.json").write_bytes(body)

            with RafayClient(args.url, API_KEY, page_size=args.page_size, read_timeout=300) as client:
                profiles = [ProfileRef.from_item(p) for p in client.iter_profiles(args.org_id, on_page=on_page)]
                with ThreadPoolExecutor(max_workers=min(client.concurrency, len(profiles))) as pool:
                    futures = [pool.submit(lambda p: list(client.iter_profile_usage(
                        args.org_id, p.name, window, on_page=on_page)), p) for p in profiles]
                    results = [f.result() for f in futures]
            rows = []
            for profile, records in zip(profiles, results, strict=True):
                for record in records:
                    rows.append(normalize_record(record, window=window, org_id=args.org_id,
                                                 organization=args.org_name, org_seq=0, record_seq=len(rows),
                                                 profile=profile))
            usage = org_dir / "usage.csv"
            with usage.open("w", encoding="utf-8", newline="") as handle:
                count = write_usage_csv(rows, handle)
            return {"rows": count, "usage_uri": str(usage)}
    else:
        from rafay_billing.source.client import RafayClient
        from rafay_billing.source.extract import extract_org
        from rafay_billing.source.usage_csv import write_usage_csv
        from rafay_billing.window import Window

        keep_rows = path == "core-kept"

        def run() -> dict:
            window = Window.from_dict(WINDOW)
            org_dir = out / "org"
            org_dir.mkdir(parents=True, exist_ok=True)

            def on_page(kind: str, key: str, page_no: int, body: bytes) -> None:
                name = f"{kind}-{key}" if key else kind
                (org_dir / f"{name}-page-{page_no:04d}.json").write_bytes(body)

            with RafayClient(args.url, API_KEY, page_size=args.page_size, read_timeout=300) as client:
                result = extract_org(client, args.org_id, args.org_name, window, org_seq=0, on_page=on_page,
                                     keep_rows=keep_rows)
            usage = org_dir / "usage.csv"
            with result, usage.open("w", encoding="utf-8", newline="") as handle:
                rows = write_usage_csv(result.iter_rows(), handle)
            return {"rows": rows, "usage_uri": str(usage)}

    before_rss, before_peak = _rss_mb(), _peak_mb()
    started = time.perf_counter()
    info = run()
    elapsed = time.perf_counter() - started
    landed_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    pages = sum(1 for p in out.rglob("usage-*-page-*.json"))
    print(json.dumps({
        "before_rss_mb": before_rss, "before_peak_mb": before_peak, "peak_mb": _peak_mb(), "end_rss_mb": _rss_mb(),
        "seconds": elapsed, "rows": info["rows"], "usage_pages": pages, "landed_bytes": landed_bytes,
    }))
    return 0


# --- the publish step: the measured child -----------------------------------------------------


def _report_digests(out: Path) -> dict[str, str]:
    """sha256 of every report file under ``out``, named without the ncp-metrics timestamp."""
    import hashlib
    import re

    digests = {}
    for path in sorted(out.rglob("*.csv")):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digests[re.sub(r"-\d{8}-\d{6}\.csv$", ".csv", path.name)] = digest.hexdigest()
    return digests


def publish_child(args: argparse.Namespace) -> int:
    """One measured publish step in this (fresh) process; prints one JSON line.

    Connection ``billing_postgres`` comes from the environment (the driver sets it); the landing root
    is Variable ``billing_data_uri``, a ``file://`` URI of ``--out``.
    """
    out = Path(args.out)
    path = args.publish_path[-1]
    os.environ["AIRFLOW_VAR_BILLING_DATA_URI"] = out.as_uri()
    from airflow.providers.postgres.hooks.postgres import PostgresHook  # noqa: F401  (the task imports it)
    from airflow.sdk import ObjectStoragePath  # noqa: F401  (the task SDK, as in the task's process)

    from rafay_provider import pipeline

    window_data = {"window_start": args.window_start, "window_end": args.window_end}
    context = {"run_id": PUBLISH_RUN_ID}
    if path == "publish":
        def run() -> dict:
            return pipeline.publish_reports(window_data, context)  # type: ignore[arg-type]
    elif path == "publish-sorting":
        from rafay_billing import reports
        from rafay_billing.ledger.rating import iter_line_items, iter_ncp_metrics_rows
        from rafay_billing.window import Window

        def run() -> dict:
            # The step as the night after it measured it: rows streamed from cursors, but the sorted
            # copy sorted in memory (every row's cells held until both files are written).
            window = Window.from_dict(window_data)
            target = pipeline.run_dir("reports", window, PUBLISH_RUN_ID)
            target.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%m%d%Y-%H%M%S")
            counted = [0]

            def counting(rows):
                for row in rows:
                    counted[0] += 1
                    yield row

            line_items_path = target / "line-items.csv"
            with pipeline.billing_connection() as conn:
                files = reports.write_ncp_metrics_csvs(counting(iter_ncp_metrics_rows(conn, window)), target, stamp)
                with line_items_path.open("w", encoding="utf-8", newline="") as handle:
                    items = reports.write_csv(handle, pipeline.LINE_ITEM_COLUMNS, (
                        [row.get(c) for c in pipeline.LINE_ITEM_COLUMNS] for row in iter_line_items(conn, window)))
            return {"files": [str(f) for f in files] + [str(line_items_path)],
                    "ncp_metrics_rows": counted[0], "line_items": items}
    else:
        from rafay_billing import reports
        from rafay_billing.ledger.rating import fetch_line_items, fetch_ncp_metrics_rows
        from rafay_billing.window import Window

        def run() -> dict:
            # publish_reports as it was before streaming: every row fetched into lists, then written.
            window = Window.from_dict(window_data)
            target = pipeline.run_dir("reports", window, PUBLISH_RUN_ID)
            target.mkdir(parents=True, exist_ok=True)
            with pipeline.billing_connection() as conn:
                ncp_metrics_rows = fetch_ncp_metrics_rows(conn, window)
                items = fetch_line_items(conn, window)
            stamp = datetime.now(UTC).strftime("%m%d%Y-%H%M%S")
            files = reports.write_ncp_metrics_csvs(ncp_metrics_rows, target, stamp)
            line_items_path = target / "line-items.csv"
            with line_items_path.open("w", encoding="utf-8", newline="") as handle:
                reports.write_csv(handle, pipeline.LINE_ITEM_COLUMNS,
                                  ([row.get(c) for c in pipeline.LINE_ITEM_COLUMNS] for row in items))
            return {"files": [str(f) for f in files] + [str(line_items_path)],
                    "ncp_metrics_rows": len(ncp_metrics_rows), "line_items": len(items)}

    sampler = _PeakSnapshots() if args.tracemalloc else None
    before_rss, before_peak = _rss_mb(), _peak_mb()
    started = time.perf_counter()
    info = run()
    elapsed = time.perf_counter() - started
    peak, end_rss = _peak_mb(), _rss_mb()
    if sampler:
        sampler.report()
    print(json.dumps({
        "before_rss_mb": before_rss, "before_peak_mb": before_peak, "peak_mb": peak, "end_rss_mb": end_rss,
        "seconds": elapsed, "ncp_metrics_rows": info["ncp_metrics_rows"], "line_items": info["line_items"],
        "files": len(info["files"]), "report_bytes": sum(p.stat().st_size for p in out.rglob("*.csv")),
        "digests": _report_digests(out),
    }))
    return 0


class _PeakSnapshots:
    """tracemalloc, with a snapshot taken whenever the traced memory reached a new high (checked every
    second on a thread): what the step holds near its peak, not after it freed it. Diagnosis only
    (tracing costs memory and time; use a smaller --publish-orgs)."""

    def __init__(self) -> None:
        import threading
        import tracemalloc

        self._tm = tracemalloc
        self._tm.start(10)
        self._best = 0
        self._snapshot = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            current, _ = self._tm.get_traced_memory()
            if current > self._best * 1.05:
                self._best, self._snapshot = current, self._tm.take_snapshot()

    def report(self) -> None:
        self._stop.set()
        self._thread.join()
        _, peak = self._tm.get_traced_memory()
        print(f"tracemalloc: peak {peak / 2**20:.1f} MB traced; at the highest sample "
              f"({self._best / 2**20:.1f} MB) the largest holders were:", file=sys.stderr)
        if self._snapshot is None:
            return
        for stat in self._snapshot.statistics("traceback")[:6]:
            print(f"  {stat.size / 2**20:7.1f} MB in {stat.count:,} blocks", file=sys.stderr)
            for line in stat.traceback.format()[-6:]:
                print(f"      {line}", file=sys.stderr)


# --- the publish step: the night in PostgreSQL -------------------------------------------------------


def prepare_night(args: argparse.Namespace, pg, tmpdir: Path) -> dict:
    """Migrate, sync a price book, land and rate the night's usage; returns what the reports must hold."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import psycopg
    from bench_load import WINDOW as NIGHT
    from bench_load import source_dir, write_usage_files
    from bench_rating import price_book_csv

    from rafay_billing import db
    from rafay_billing.ledger.load import load_org_usage
    from rafay_billing.ledger.price_book import sync_price_book
    from rafay_billing.ledger.rating import rate_window

    rows = args.publish_orgs * args.publish_profiles * args.publish_instances
    dsn = pg.create_database("bench_memory")
    started = time.perf_counter()
    usage_dir = tmpdir / "night-usage"
    usage_dir.mkdir()
    files = write_usage_files(usage_dir, NIGHT, rows, args.publish_orgs, profiles=args.publish_profiles)
    with psycopg.connect(dsn) as conn:
        db.migrate(conn)
        sync_price_book(conn, price_book_csv(args.publish_orgs, args.publish_prices))
        for oid, path, _ in files:
            with path.open("rb") as handle:
                load_org_usage(conn, NIGHT, oid, handle, PUBLISH_RUN_ID, source_dir=source_dir(path))
        summary = rate_window(conn, NIGHT, PUBLISH_RUN_ID)
    shutil.rmtree(usage_dir)
    if summary.usage_rows != rows or summary.slices != args.publish_orgs:
        raise SystemExit(f"rated {summary.usage_rows} rows in {summary.slices} slices; landed {rows:,} rows of "
                         f"{args.publish_orgs} orgs")
    print(f"Night in embedded PostgreSQL: {rows:,} usage records of {args.publish_orgs:,} orgs x "
          f"{args.publish_profiles} profiles x {args.publish_instances} instances for {NIGHT.start_iso[:10]}, "
          f"{args.publish_prices:,}-row price book, landed and rated in {time.perf_counter() - started:.1f} s: "
          f"{summary}")
    return {"dsn": dsn, "window": NIGHT.to_dict(), "rows": rows, "line_items": summary.line_items}


def _run_publish_child(night: dict, path: str, out: Path, tracemalloc: bool = False) -> dict:
    from rafay_devkit.airflow_env import isolated_airflow_env, postgres_connection_json

    out.mkdir(parents=True)
    home = out.parent / "airflow-home-publish"
    home.mkdir(exist_ok=True)
    command = [
        sys.executable, str(Path(__file__).resolve()), "--publish-child", "--publish-path", path, "--out", str(out),
        "--window-start", night["window"]["window_start"], "--window-end", night["window"]["window_end"],
    ] + (["--tracemalloc"] if tracemalloc else [])
    env = {**os.environ, **isolated_airflow_env(home),
           "AIRFLOW_CONN_BILLING_POSTGRES": postgres_connection_json(night["dsn"])}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"measured publish run ({path}) exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    if tracemalloc:
        print("\n".join(ln for ln in proc.stderr.splitlines() if ln.startswith(("tracemalloc", " "))))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return result


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_publish(args: argparse.Namespace, tmpdir: Path) -> dict | None:
    """The publish case: the night prepared once, then ``--runs`` interleaved fresh processes per code path."""
    from rafay_devkit.postgres import EmbeddedPostgres

    paths = [p for p in PUBLISH_PATHS if p in (args.publish_path or PUBLISH_PATHS)]
    results: dict[str, list[dict]] = {p: [] for p in paths}
    with EmbeddedPostgres() as pg:  # its own root: the server user must reach it
        night = prepare_night(args, pg, tmpdir)
        if args.tracemalloc:
            for path in paths:
                print(f"tracemalloc run of {path} (not counted):")
                _run_publish_child(night, path, tmpdir / f"trace-{path}", tracemalloc=True)
        reference: dict[str, str] | None = None
        for i in range(args.runs):
            for path in paths:  # interleaved: all see the same machine noise
                r = _run_publish_child(night, path, tmpdir / f"publish-{i}-{path}")
                if r["ncp_metrics_rows"] != night["rows"] or r["line_items"] != night["line_items"]:
                    raise SystemExit(f"{path}: wrote {r['ncp_metrics_rows']} ncp-metrics rows and {r['line_items']} "
                                     f"line items; the night has {night['rows']} and {night['line_items']}")
                reference = reference or r["digests"]
                if r["digests"] != reference:
                    raise SystemExit(f"{path}: the reports differ from the first run's: {r['digests']} vs {reference}")
                results[path].append(r)
                print(f"  run {i + 1} {path:<15}: peak RSS {r['peak_mb']:6.1f} MB (after imports "
                      f"{r['before_rss_mb']:5.1f} MB), {r['seconds']:5.1f} s, {r['ncp_metrics_rows']:,} ncp-metrics "
                      f"rows, {r['line_items']:,} line items, {r['report_bytes'] / 1e6:.0f} MB of reports; {_load()}",
                      flush=True)

    def med(path: str, key: str) -> float:
        return statistics.median(r[key] for r in results[path])

    print()
    print(f"Peak RSS of the night's publish step, {night['rows']:,} ncp-metrics rows and {night['line_items']:,} "
          f"line items, median of {args.runs} fresh processes ({_load()}); reports identical in every run:")
    print(f"  {'code path':<62} {'after imports MB':>16} {'peak MB':>8} {'growth MB':>9} {'seconds':>8}")
    labels = {
        "publish": "DAG task: pipeline.publish_reports (Airflow SDK loaded)",
        "publish-sorting": "before: rows streamed, the sorted copy sorted in memory",
        "publish-held": "baseline: rows and line items fetched into lists, then written",
    }
    for path in paths:
        before, peak = med(path, "before_rss_mb"), med(path, "peak_mb")
        print(f"  {labels[path]:<62} {before:16.1f} {peak:8.1f} {peak - before:9.1f} {med(path, 'seconds'):8.1f}")
    headline = paths[0]
    peak = med(headline, "peak_mb")
    verdict = "met" if peak <= args.target_mb else f"MISSED by {peak - args.target_mb:.0f} MB"
    print(f"Target <= {args.target_mb:.0f} MB peak RSS ({headline}): {verdict} ({peak:.0f} MB).")
    out = {"path": headline, "rows": night["rows"], "peak_mb": peak, "met": peak <= args.target_mb,
           "growth_mb": peak - med(headline, "before_rss_mb")}
    if "publish-sorting" in results:
        out["sorting_peak_mb"] = med("publish-sorting", "peak_mb")
    if "publish" in results and "publish-held" in results:
        out["held_peak_mb"] = med("publish-held", "peak_mb")
        out["held_growth_mb"] = med("publish-held", "peak_mb") - med("publish-held", "before_rss_mb")
        ratios = [(h["peak_mb"] - h["before_rss_mb"]) / max(1e-9, s["peak_mb"] - s["before_rss_mb"])
                  for h, s in zip(results["publish-held"], results["publish"], strict=True)]
        out["ratio"] = statistics.median(ratios)
        print(f"Memory the publish step itself takes, everything held vs streamed (median of per-run ratios): "
              f"{out['ratio']:.1f}x")
    return out


# --- the driver ------------------------------------------------------------------------------


def _start_simulator(args: argparse.Namespace, per_profile: int, ready: Path, log: Path) -> subprocess.Popen:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--serve", "--profiles", str(args.profiles),
        "--per-profile", str(per_profile), "--page-size", str(args.page_size), "--ready-file", str(ready),
    ]
    handle = log.open("wb")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    handle.close()
    deadline = time.monotonic() + 300
    while not ready.exists():
        if process.poll() is not None:
            raise SystemExit(f"simulator exited {process.returncode}:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            stop_process_group(process)
            raise SystemExit("simulator did not start within 300 s")
        time.sleep(0.1)
    return process


def _run_child(args: argparse.Namespace, url: str, org_id: str, org_name: str, path: str, out: Path) -> dict:
    out.mkdir(parents=True)
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", "--path", path, "--url", url,
        "--org-id", org_id, "--org-name", org_name, "--page-size", str(args.page_size), "--out", str(out),
    ]
    env = dict(os.environ)
    if path == "pipeline":
        env.setdefault("AIRFLOW_HOME", str(out.parent / "airflow-home"))
        env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"measured run ({path}) exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000, help="instances in the org (at least)")
    parser.add_argument("--profiles", type=int, default=10, help="profiles in the org (at most 12)")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--path", choices=PATHS, action="append", help=(
        "pipeline: the DAG task's extract_batch (the target applies to it); core: the same without Airflow; "
        "held: the baseline, raw pages and rows held in memory (the code before spooling); core-kept: "
        "extract_org(keep_rows=True), rows held, as rafay-billing metrics does. Repeatable; default: "
        + ", ".join(DEFAULT_PATHS)))
    parser.add_argument("--no-extraction", action="store_true", help="skip the extraction case")
    parser.add_argument("--no-publish", action="store_true", help="skip the publish_reports case")
    parser.add_argument("--publish-path", choices=PUBLISH_PATHS, action="append", help=(
        "publish: the DAG task's publish_reports (the target applies to it); publish-sorting: rows streamed, "
        "the sorted copy sorted in memory (the code before); publish-held: the baseline, rows fetched into "
        "lists (the code the night measured). Repeatable; default: all three"))
    parser.add_argument("--publish-orgs", type=int, default=1000, help="orgs of the night (publish case)")
    parser.add_argument("--publish-profiles", type=int, default=10, help="profiles per org (publish case)")
    parser.add_argument("--publish-instances", type=int, default=20, help="instances per profile (publish case)")
    parser.add_argument("--publish-prices", type=int, default=10_000, help="price book rows (publish case)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="first, one publish run per code path under tracemalloc (not counted): where memory goes")
    parser.add_argument("--target-mb", type=float, default=TARGET_MB)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--publish-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--per-profile", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--org-id", help=argparse.SUPPRESS)
    parser.add_argument("--org-name", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--window-start", help=argparse.SUPPRESS)
    parser.add_argument("--window-end", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.publish_child:
        return publish_child(args)
    if args.serve:
        return serve(args)

    print(f"Machine: {_machine()}; {_load()}")
    extraction = None if args.no_extraction else run_extraction(args)
    publish = None
    if not args.no_publish:
        with tempfile.TemporaryDirectory(prefix="rafay-bench-memory-publish-") as tmp:
            print()
            publish = run_publish(args, Path(tmp))
    summary: dict = {"item": "6 memory", "metric": "", "result": "", "baseline": "", "ratio": "",
                     "target": f"<= {args.target_mb:.0f} MB", "met": True}
    parts = [part for part in (extraction, publish) if part]
    if extraction:
        summary["metric"] = extraction["metric"]
        summary["result"] = extraction["result"]
        summary["baseline"] = extraction["baseline"]
        summary["ratio"] = extraction["ratio"]
    if publish:
        metric = f"publish_reports, {publish['rows']:,}-record night ({publish['path']})"
        result = f"{publish['peak_mb']:.0f} MB"
        baseline = ""
        if "held_peak_mb" in publish:
            baseline = (f"held: {publish['held_peak_mb']:.0f} MB, +{publish['held_growth_mb']:.0f} MB growth "
                        f"(streamed: +{publish['growth_mb']:.0f} MB)")
        if "sorting_peak_mb" in publish:
            baseline = f"{baseline}, in-memory sort: {publish['sorting_peak_mb']:.0f} MB".lstrip(", ")
        ratio = f"{publish['ratio']:.1f}x less growth" if "ratio" in publish else ""
        def join(a: str, b: str) -> str:
            return f"{a}; {b}" if a and b else a or b

        summary["metric"] = join(summary["metric"], metric)
        summary["result"] = join(summary["result"], result)
        summary["baseline"] = join(summary["baseline"], baseline)
        summary["ratio"] = join(summary["ratio"], ratio)
    summary["met"] = all(part["met"] for part in parts)
    print(RESULT_PREFIX + json.dumps(summary))
    return 0


def _machine() -> str:
    import platform

    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


def run_extraction(args: argparse.Namespace) -> dict:
    """The extraction case (the simulator in its own process, ``--runs`` interleaved runs per path)."""
    # Recreated instances (same name, new id) come on top of the per-profile count; the dataset is
    # deterministic, so pick the smallest per-profile count giving at least --instances, and know it.
    def instances_for(per_profile: int) -> tuple[int, object]:
        org = day_dataset(args.profiles, per_profile).orgs[0]
        return rows_on_day(org), org

    per_profile = math.ceil(args.instances / args.profiles)
    expected_rows, org = instances_for(per_profile)
    per_profile = max(1, math.ceil(per_profile * args.instances / expected_rows))
    expected_rows, org = instances_for(per_profile)
    while expected_rows < args.instances:
        per_profile += max(1, per_profile // 200)
        expected_rows, org = instances_for(per_profile)
    paths = [p for p in PATHS if p in (args.path or DEFAULT_PATHS)]

    with tempfile.TemporaryDirectory(prefix="rafay-bench-memory-") as tmp:
        tmpdir = Path(tmp)
        sim = _start_simulator(args, per_profile, tmpdir / "sim.ready", tmpdir / "sim.log")
        try:
            url = (tmpdir / "sim.ready").read_text().strip()
            print(f"Simulator {url} (own process): 1 org, {len(org.profiles)} profiles, {expected_rows:,} instances "
                  f"with usage on {DAY} [{WINDOW['window_start']}, {WINDOW['window_end']}), pages of {args.page_size}")
            results: dict[str, list[dict]] = {p: [] for p in paths}
            for i in range(args.runs):
                for path in paths:  # interleaved: all see the same machine noise
                    r = _run_child(args, url, org.org_id, org.name, path, tmpdir / f"run-{i}-{path}")
                    if r["rows"] != expected_rows:
                        raise SystemExit(f"{path}: extracted {r['rows']} rows, the org has {expected_rows}")
                    results[path].append(r)
                    print(f"  run {i + 1} {path:<9}: peak RSS {r['peak_mb']:6.1f} MB (before extraction "
                          f"{r['before_rss_mb']:5.1f} MB), {r['seconds']:5.1f} s, {r['rows']:,} rows, "
                          f"{r['usage_pages']} usage pages, {r['landed_bytes'] / 1e6:.0f} MB landed; {_load()}",
                          flush=True)
        finally:
            stop_process_group(sim)

    def med(path: str, key: str) -> float:
        return statistics.median(r[key] for r in results[path])

    print()
    print(f"Peak RSS of one (org, day)'s extraction, {expected_rows:,} instances, median of {args.runs} fresh "
          f"processes ({_load()}):")
    print(f"  {'code path':<58} {'before MB':>9} {'peak MB':>8} {'growth MB':>9} {'seconds':>8}")
    labels = {
        "pipeline": "DAG task: pipeline.extract_batch (Airflow SDK loaded)",
        "core": "core: extract_org(keep_rows=False) + landing + CSV",
        "held": "baseline: raw pages + rows held (code before spooling)",
        "core-kept": "core: extract_org(keep_rows=True), rows held",
    }
    for path in paths:
        before, peak = med(path, "before_rss_mb"), med(path, "peak_mb")
        print(f"  {labels[path]:<58} {before:9.1f} {peak:8.1f} {peak - before:9.1f} {med(path, 'seconds'):8.1f}")
    headline = "pipeline" if "pipeline" in results else paths[0]
    peak = med(headline, "peak_mb")
    met = peak <= args.target_mb
    verdict = "met" if met else f"MISSED by {peak - args.target_mb:.0f} MB"
    print(f"Target <= {args.target_mb:.0f} MB peak RSS ({headline}): {verdict} ({peak:.0f} MB).")
    summary = {
        "item": "6 memory", "metric": f"peak RSS, 1 (org, day), {expected_rows:,} instances ({headline})",
        "result": f"{peak:.0f} MB", "baseline": "", "ratio": "", "target": f"<= {args.target_mb:.0f} MB",
        "met": met,
    }
    if "core" in results and "held" in results:
        # Per run, side by side: growth holding everything / growth spooling rows.
        ratios = [
            (held["peak_mb"] - held["before_rss_mb"]) / (spooled["peak_mb"] - spooled["before_rss_mb"])
            for held, spooled in zip(results["held"], results["core"], strict=True)
        ]
        ratio = statistics.median(ratios)
        print(f"Memory the extraction itself takes, everything held vs spooled (median of per-run ratios): {ratio:.1f}x")
        held_growth = med("held", "peak_mb") - med("held", "before_rss_mb")
        spooled_growth = med("core", "peak_mb") - med("core", "before_rss_mb")
        summary["baseline"] = f"pages+rows held: +{held_growth:.0f} MB growth (spooled: +{spooled_growth:.0f} MB)"
        summary["ratio"] = f"{ratio:.1f}x less growth"
    summary["peak_mb"] = peak
    return summary




if __name__ == "__main__":
    sys.exit(main())
