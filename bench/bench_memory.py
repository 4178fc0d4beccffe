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

    .venv/bin/python bench/bench_memory.py [--instances 100000] [--profiles 10] [--page-size 1000] [--runs 3]
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

        from rafay_billing.client import RafayClient
        from rafay_billing.usage import ProfileRef, normalize_record, write_usage_csv
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
        from rafay_billing.client import RafayClient
        from rafay_billing.extract import extract_org
        from rafay_billing.usage import write_usage_csv
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
            _stop(process)
            raise SystemExit("simulator did not start within 300 s")
        time.sleep(0.1)
    return process


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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
    parser.add_argument("--target-mb", type=float, default=TARGET_MB)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--per-profile", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--org-id", help=argparse.SUPPRESS)
    parser.add_argument("--org-name", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.serve:
        return serve(args)

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
                          f"{r['usage_pages']} usage pages, {r['landed_bytes'] / 1e6:.0f} MB landed", flush=True)
        finally:
            _stop(sim)

    def med(path: str, key: str) -> float:
        return statistics.median(r[key] for r in results[path])

    print()
    print(f"Peak RSS of one (org, day)'s extraction, {expected_rows:,} instances, median of {args.runs} fresh "
          "processes:")
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
    print(RESULT_PREFIX + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
