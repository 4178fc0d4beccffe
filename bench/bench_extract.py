"""Benchmark: ``rafay-billing metrics`` on three tenant shapes, against the latency bound and the blog script.

The simulator runs in its own process (so the client's CPU time is the client's alone) and the
command runs in this one. Shapes (issue 14):

  a  30 orgs x 6 profiles x 12 instances, 30-day window, HTTPS, 40 ms per request
  b  300 orgs x 2 profiles x 3 instances, 30-day window, 20 ms per request
  c  1 org x 1 profile x 50,000 instances, pages of 1,000, 40 ms per request (CPU-bound)

For each shape it prints the command's wall time and CPU time (``time.process_time``: every thread
of this process, the simulator excluded), the requests and connections the simulator saw, the
latency bound and the command's ratio to it, and for a and b the blog script (``tests/seed_script.py``:
one request at a time, a new connection each) over the same console, whose rows must be identical.

The latency bound is what no client can beat at that concurrency: the larger of
``requests x latency / concurrency`` (every slot busy all the time) and the critical path
(org listing, then a profile listing, then a profile's pages one after another). A second bound
uses the simulator's own service times (latency plus its time to build the reply, which grows with
the page size) instead of the nominal latency: the client cannot be faster than the server.

Shape c also reports client CPU per record against the floor: bare
``json.loads(body, parse_float=Decimal)`` over the very same page bytes (fetched again afterwards).

With ``--process`` (issue 25), shape a (``--process-shapes``) is also run as a user runs it: the
``rafay-billing`` console script as a new process, exec to both CSVs written, at its default
concurrency, alternated with the blog script as a process against the same simulator (after one
untimed run of each, with a bytecode cache as an installed package has; ``--cold-bytecode`` to
leave the environment's ``PYTHONDONTWRITEBYTECODE`` in force). It prints the start-up (exec to the
first request the simulator read) and the time after the last reply.

    .venv/bin/python bench/bench_extract.py [--shape a b c] [--concurrency 8] [--runs 1] [--profile]
    .venv/bin/python bench/bench_extract.py --shape a --process-only --runs 5
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rafay_billing import cli  # noqa: E402
from rafay_billing.reports import neutralize  # noqa: E402
from rafay_devkit.processes import stop_process_group  # noqa: E402
from tests.support import seed_script  # noqa: E402  (the blog script, verbatim but for the URL scheme)

SIM_NOW = "2026-11-27T00:00:00Z"
WINDOW_END = datetime(2026, 11, 26, 6, 30, 0, tzinfo=UTC)
API_KEY = "bench-extract-key"
DEFAULT_CONCURRENCY = 8  # rafay_billing.settings.CONCURRENCY, what the process runs with (no --concurrency)
RESULT_PREFIX = "BENCH_RESULT "


@dataclass(frozen=True)
class Shape:
    name: str
    orgs: int
    profiles: int
    instances: int
    latency_ms: int
    tls: bool = False
    page_size: int | None = None
    days: int = 30
    seed: bool = True  # the blog script can read it (it does not page)

    def describe(self) -> str:
        extra = (", HTTPS" if self.tls else "") + (f", pages of {self.page_size:,}" if self.page_size else "")
        return (f"({self.name}) {self.orgs} orgs x {self.profiles} profiles x {self.instances:,} instances, "
                f"{self.days}-day window, {self.latency_ms} ms{extra}")


SHAPES = {
    "a": Shape("a", 30, 6, 12, 40, tls=True),
    "b": Shape("b", 300, 2, 3, 20),
    "c": Shape("c", 1, 1, 50_000, 40, page_size=1000, seed=False),
}


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return WINDOW_END if tz is None else WINDOW_END.astimezone(tz)


# --- the simulator, in its own process ----------------------------------------------------------


class Simulator:
    """``python -m rafay_simulator`` for one shape, with its ``/_sim/`` admin endpoints."""

    def __init__(self, shape: Shape, workdir: Path) -> None:
        ready, self.log, ca = workdir / "sim.ready", workdir / "sim.log", workdir / "ca.pem"
        command = [
            sys.executable, str(Path(__file__).resolve()), "--serve", "--port", "0", "--orgs", str(shape.orgs),
            "--profiles-per-org", f"{shape.profiles}-{shape.profiles}",
            "--instances-per-profile", f"{shape.instances}-{shape.instances}",
            "--latency-ms", str(shape.latency_ms), "--now", SIM_NOW, "--api-key", API_KEY, "--ready-file", str(ready),
        ]
        if shape.page_size:
            command += ["--max-page-size", str(shape.page_size)]
        if shape.tls:
            command += ["--tls", "--ca-out", str(ca)]
        with self.log.open("wb") as handle:
            self.process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + 600
        while not (ready.exists() and ready.read_text().strip() and (ca.exists() or not shape.tls)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"simulator did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.url = ready.read_text().strip()
        self.ca = str(ca) if shape.tls else None
        self.session = requests.Session()
        self.session.headers["x-api-key"] = API_KEY
        self.session.verify = self.ca or True
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify

    def reset(self) -> None:
        self.session.post(f"{self.url}/_sim/reset", timeout=30).raise_for_status()

    def settled(self) -> dict:
        """Stats once the simulator has logged the last reply (it logs just after sending)."""
        last: dict = {}
        for _ in range(100):
            now = self.session.get(f"{self.url}/_sim/stats", timeout=30).json()
            if now == last:
                return now
            last = now
            time.sleep(0.05)
        return last

    def requests_log(self) -> list[dict]:
        return self.session.get(f"{self.url}/_sim/requests", timeout=120).json()

    def stop(self) -> None:
        stop_process_group(self.process)


# --- the two contenders -----------------------------------------------------------------------------


def run_seed(sim: Simulator, shape: Shape, workdir: Path) -> tuple[float, dict]:
    """The blog script's main() in ``workdir``; returns (seconds, simulator stats)."""
    os.environ.update(DAYS=str(shape.days), RAFAY_CONSOLE_URL=sim.url.split("://", 1)[1], RAFAY_DEFAULT_API_KEY=API_KEY)
    saved = os.environ.get("REQUESTS_CA_BUNDLE")
    if sim.ca:
        os.environ["REQUESTS_CA_BUNDLE"] = sim.ca
    seed_script.datetime = _FrozenDatetime  # same window as the command below
    seed_script.SCHEME = sim.url.split("://", 1)[0]
    sim.reset()
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            seed_script.main()
        elapsed = time.perf_counter() - started
    finally:
        os.chdir(cwd)
        if saved is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = saved
    return elapsed, sim.settled()


@dataclass
class CommandRun:
    wall_s: float
    cpu_s: float
    stats: dict
    log: list[dict]


def run_command(sim: Simulator, shape: Shape, concurrency: int, out: Path, profile: Path | None) -> CommandRun:
    """``rafay-billing metrics`` in-process; wall and CPU seconds, the simulator's stats and request log."""
    start = WINDOW_END - timedelta(days=shape.days)
    os.environ.update(RAFAY_CONSOLE_URL=sim.url, RAFAY_DEFAULT_API_KEY=API_KEY)
    argv = ["metrics", "--start", start.strftime("%Y-%m-%dT%H:%M:%SZ"), "--end", WINDOW_END.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "--out", str(out), "--concurrency", str(concurrency)]
    if sim.ca:
        argv += ["--ca-bundle", sim.ca]
    if shape.page_size and "--page-size" in Path(cli.__file__).read_text():  # (older code: its default, 100)
        argv += ["--page-size", str(shape.page_size)]
    sim.reset()
    profiler = cProfile.Profile() if profile else None
    cpu0, started = time.process_time(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if profiler:
            profiler.enable()
        code = cli.main(argv)
        if profiler:
            profiler.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    if code != 0:
        raise SystemExit(f"rafay-billing metrics exited {code}")
    if profiler and profile:
        profiler.dump_stats(str(profile))
    return CommandRun(elapsed, cpu, sim.settled(), sim.requests_log())


# --- both as processes (issue 25 target 1) ------------------------------------------------------------

_SEED_PROCESS = """\
import sys
from datetime import UTC, datetime
sys.path.insert(0, sys.argv[1])
from tests.support import seed_script

END = datetime.fromisoformat(sys.argv[2])


class Frozen(datetime):
    @classmethod
    def now(cls, tz=None):
        return END if tz is None else END.astimezone(tz)


seed_script.datetime = Frozen  # the same window as the command's --start/--end
seed_script.SCHEME = sys.argv[3]
seed_script.main()
"""


@dataclass
class ProcessRun:
    wall_s: float
    startup_s: float  # exec to the first request the simulator read
    tail_s: float  # the last reply sent to the process's exit (sorting, CSV writing, interpreter exit)
    cpu_s: float  # user + system CPU of the child
    stats: dict
    log: list[dict]


def _child_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def _run_process(command: list[str], sim: Simulator, cwd: Path, env: dict[str, str]) -> ProcessRun:
    sim.reset()
    cpu0 = _child_cpu()
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=600)
    ended = time.monotonic()
    if done.returncode != 0:
        raise SystemExit(f"{command[1:3]} exited {done.returncode}:\n{done.stderr.decode()[-2000:]}")
    stats, log = sim.settled(), sim.requests_log()
    api = [r for r in log if r["path"].startswith("/v2/")]
    first = min(r["started_at"] for r in api)
    last = max(r["started_at"] + r["duration_ms"] / 1000 for r in api)
    return ProcessRun(ended - started, first - started, ended - last, _child_cpu() - cpu0, stats, log)


BYTECODE_CACHE: Path | None = None
"""Where the process runs keep their compiled bytecode (``PYTHONPYCACHEPREFIX``), as an installed
package has it; None (``--cold-bytecode``) leaves the environment as it is (``PYTHONDONTWRITEBYTECODE``
then makes every run compile every module of the repository again)."""


def _process_env(sim: Simulator, shape: Shape, **extra: str) -> dict[str, str]:
    env = dict(os.environ, DAYS=str(shape.days), RAFAY_DEFAULT_API_KEY=API_KEY, **extra)
    if BYTECODE_CACHE is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(BYTECODE_CACHE)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "include"), str(REPO / "plugins"), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def command_executable() -> list[str]:
    """The installed ``rafay-billing`` console script next to this interpreter, else the same entry point."""
    script = Path(sys.executable).parent / "rafay-billing"
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "import sys; from rafay_billing.cli import main; sys.exit(main())"]


def run_command_process(sim: Simulator, shape: Shape, concurrency: int | None, out: Path) -> ProcessRun:
    """``rafay-billing metrics`` as a user runs it: a new process, exec to both CSVs written."""
    start = WINDOW_END - timedelta(days=shape.days)
    command = [*command_executable(), "metrics", "--start", start.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "--end", WINDOW_END.strftime("%Y-%m-%dT%H:%M:%SZ"), "--out", str(out)]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    if sim.ca:
        command += ["--ca-bundle", sim.ca]
    if shape.page_size:
        command += ["--page-size", str(shape.page_size)]
    out.mkdir()
    return _run_process(command, sim, out, _process_env(sim, shape, RAFAY_CONSOLE_URL=sim.url))


def run_seed_process(sim: Simulator, shape: Shape, workdir: Path) -> ProcessRun:
    """The blog script as a process (``tests/support/seed_script.py``, the window frozen to the command's)."""
    scheme, host = sim.url.split("://", 1)
    extra = {"RAFAY_CONSOLE_URL": host}
    if sim.ca:
        extra["REQUESTS_CA_BUNDLE"] = sim.ca
    command = [sys.executable, "-c", _SEED_PROCESS, str(REPO), WINDOW_END.isoformat(), scheme]
    workdir.mkdir()
    return _run_process(command, sim, workdir, _process_env(sim, shape, **extra))


def run_floor_process(sim: Simulator, shape: Shape, out: Path) -> ProcessRun:
    """``bench/stdlib_floor.py`` as a process: the same requests and a CSV with the standard library only."""
    start = (WINDOW_END - timedelta(days=shape.days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = [sys.executable, str(REPO / "bench" / "stdlib_floor.py"), sim.url, API_KEY, sim.ca or "-", start,
               WINDOW_END.strftime("%Y-%m-%dT%H:%M:%SZ"), str(out / "floor.csv"), str(DEFAULT_CONCURRENCY)]
    out.mkdir()
    return _run_process(command, sim, out, _process_env(sim, shape))


def _phases(run: ProcessRun) -> str:
    middle = run.wall_s - run.startup_s - run.tail_s
    return f"start-up {run.startup_s:.3f} s, first request to last reply {middle:.3f} s, then {run.tail_s:.3f} s"


def bench_processes(sim: Simulator, shape: Shape, runs: int, workdir: Path) -> dict:
    """The contenders as processes, alternated run by run, at the command's default concurrency, after
    one untimed run of each (it fills the bytecode cache and the page cache, as on a machine where the
    command has run before): the blog script, the command, and the standard-library floor
    (``bench/stdlib_floor.py``: what any transport or start-up work could at most win)."""
    ours: list[ProcessRun] = []
    seeds: list[ProcessRun] = []
    floors: list[ProcessRun] = []
    run_seed_process(sim, shape, workdir / "seed-process-warm-up")
    run_command_process(sim, shape, None, workdir / "ours-process-warm-up")
    run_floor_process(sim, shape, workdir / "floor-process-warm-up")
    for run in range(runs):
        seeds.append(run_seed_process(sim, shape, workdir / f"seed-process-{run}"))
        ours.append(run_command_process(sim, shape, None, workdir / f"ours-process-{run}"))
        floors.append(run_floor_process(sim, shape, workdir / f"floor-process-{run}"))
        floor_requests = sum(1 for r in floors[-1].log if r["path"].startswith("/v2/"))
        our_requests = sum(1 for r in ours[-1].log if r["path"].startswith("/v2/"))
        if floor_requests != our_requests:
            raise SystemExit(f"the standard-library floor made {floor_requests} requests, the command {our_requests}")
        if run == 0:
            for seed_file, our_file in zip(_files(workdir / "seed-process-0"), _files(workdir / "ours-process-0"),
                                           strict=True):
                if _csv_rows(seed_file, neutralized=True) != _csv_rows(our_file):
                    raise SystemExit(f"rows differ (processes): {seed_file.name} vs {our_file.name}")
        o, s = ours[-1], seeds[-1]
        nominal, served = bounds(o.log, shape.latency_ms, DEFAULT_CONCURRENCY)
        print(f"  as processes, run {run + 1}: rafay-billing metrics {o.wall_s:5.2f} s (start-up {o.startup_s:.3f} s "
              f"to the first request, {o.tail_s:.3f} s after the last reply, {o.cpu_s:.2f} s CPU, "
              f"{o.stats['connections_opened']} connections) = {o.wall_s / nominal:.2f}x the bound {nominal:.2f} s "
              f"(served {served:.2f} s: {o.wall_s / served:.2f}x); blog script {s.wall_s:5.2f} s (start-up "
              f"{s.startup_s:.3f} s) = {s.wall_s / o.wall_s:.1f}x slower ({_load()})", flush=True)
        f = floors[-1]
        print(f"    phases: the command {_phases(o)}; standard-library floor {f.wall_s:.2f} s "
              f"({f.wall_s / nominal:.2f}x the bound): {_phases(f)}, {f.cpu_s:.2f} s CPU", flush=True)
    wall = statistics.median(r.wall_s for r in ours)
    seed = statistics.median(r.wall_s for r in seeds)
    nominal, served = bounds(ours[-1].log, shape.latency_ms, DEFAULT_CONCURRENCY)
    result = {"concurrency": DEFAULT_CONCURRENCY, "wall_s": round(wall, 3), "bound_s": round(nominal, 3),
              "served_bound_s": round(served, 3), "ratio": round(wall / nominal, 2),
              "startup_s": round(statistics.median(r.startup_s for r in ours), 3),
              "tail_s": round(statistics.median(r.tail_s for r in ours), 3),
              "cpu_s": round(statistics.median(r.cpu_s for r in ours), 3),
              "seed_s": round(seed, 3), "speedup_vs_seed": round(seed / wall, 1),
              "seed_startup_s": round(statistics.median(r.startup_s for r in seeds), 3), "runs": runs,
              "bytecode_cache": BYTECODE_CACHE is not None}
    floor = statistics.median(r.wall_s for r in floors)
    result["floor"] = {"wall_s": round(floor, 3), "ratio": round(floor / nominal, 2),
                       "startup_s": round(statistics.median(r.startup_s for r in floors), 3),
                       "tail_s": round(statistics.median(r.tail_s for r in floors), 3),
                       "cpu_s": round(statistics.median(r.cpu_s for r in floors), 3)}
    verdict = "met" if result["ratio"] <= 1.3 and result["speedup_vs_seed"] >= 7 else "MISSED"
    print(f"  as processes (median of {runs}): {wall:.2f} s = {result['ratio']:.2f}x the bound (target <= 1.3x), "
          f"{result['speedup_vs_seed']}x faster than the blog script's {seed:.2f} s (target >= 7x): {verdict}",
          flush=True)
    print(f"  standard-library floor as a process (median of {runs}): {floor:.2f} s = {result['floor']['ratio']:.2f}x "
          f"the bound, start-up {result['floor']['startup_s']:.3f} s against the command's {result['startup_s']:.3f} s",
          flush=True)
    return result


# --- bounds and baselines ------------------------------------------------------------------------------


def _kind(path: str) -> tuple[str, str]:
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) == 2:
        return "orgs", ""
    if parts[-1] == "profiles":
        return "profiles", parts[2]
    return "usage", "/".join(parts[2:6:3])


def bounds(log: list[dict], latency_ms: int, concurrency: int) -> tuple[float, float]:
    """(nominal, served) latency bounds in seconds; see the module docstring."""
    api = [r for r in log if r["path"].startswith("/v2/")]
    served = {"orgs": 0.0}
    per_org: dict[str, float] = {}
    per_listing: dict[tuple[str, str], list[float]] = {}
    for r in api:
        kind, key = _kind(r["path"])
        seconds = r["duration_ms"] / 1000
        if kind == "orgs":
            served["orgs"] += seconds
        elif kind == "profiles":
            per_org[key] = per_org.get(key, 0.0) + seconds
        else:
            per_listing.setdefault((kind, key), []).append(seconds)
    longest = max((sum(v) for v in per_listing.values()), default=0.0)
    pages = max((len(v) for v in per_listing.values()), default=0)
    orgs_pages = sum(1 for r in api if _kind(r["path"])[0] == "orgs")
    nominal_path = (orgs_pages + 1 + pages) * latency_ms / 1000
    served_path = served["orgs"] + max(per_org.values(), default=0.0) + longest
    nominal = max(len(api) * latency_ms / 1000 / concurrency, nominal_path)
    served_bound = max(sum(r["duration_ms"] for r in api) / 1000 / concurrency, served_path)
    return nominal, served_bound


def json_floor(sim: Simulator, log: list[dict], repeats: int = 5) -> tuple[float, int, int]:
    """CPU seconds of bare ``json.loads(parse_float=Decimal)`` over the command's usage pages (best of
    ``repeats``), the records and the bytes in them."""
    bodies = []
    for r in log:
        if _kind(r["path"])[0] == "usage":
            reply = sim.session.get(sim.url + r["path"], params=r["query"], timeout=120)
            reply.raise_for_status()
            bodies.append(reply.content)
    best = float("inf")
    records = 0
    for _ in range(repeats):
        records = 0
        cpu0 = time.process_time()
        for body in bodies:  # each page dropped once parsed, as a client does (keeping them all makes
            records += len(json.loads(body, parse_float=Decimal).get("instance_usage_data") or [])  # GC slower)
        best = min(best, time.process_time() - cpu0)
    return best, records, sum(map(len, bodies))


def extract_cpu(sim: Simulator, shape: Shape, concurrency: int) -> tuple[float, float, float, int]:
    """(CPU s of the extraction alone, CPU s with the landed usage CSV, wall s, rows).

    The extraction alone is ``extract_org`` as the DAG task calls it (rows normalised and spooled),
    what the per-record target is about; the DAG task then also streams the spooled rows into the
    landed usage CSV (``write_usage_csv``), timed here as the second figure."""
    from rafay_billing.source.client import RafayClient
    from rafay_billing.source.extract import extract_org, list_orgs
    from rafay_billing.source.usage_csv import write_usage_csv
    from rafay_billing.window import Window

    window = Window(WINDOW_END - timedelta(days=shape.days), WINDOW_END)
    client = RafayClient(sim.url, API_KEY, verify=sim.ca or True, concurrency=concurrency,
                         page_size=shape.page_size or 100)
    with client, tempfile.TemporaryFile("w+", newline="", encoding="utf-8") as landed:
        orgs = list_orgs(client)
        cpu0, started = time.process_time(), time.perf_counter()
        rows, extract_s = 0, 0.0
        for i, org in enumerate(orgs):
            with extract_org(client, org.org_id, org.name, window, org_seq=i, keep_rows=False) as result:
                rows += result.row_count
                extract_s += time.process_time() - cpu0
                write_usage_csv(result.iter_rows(), landed)
        return extract_s, time.process_time() - cpu0, time.perf_counter() - started, rows


def _csv_rows(path: Path, neutralized: bool = False) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))
    return [[neutralize(c) for c in r] for r in rows] if neutralized else rows


def _files(directory: Path) -> tuple[Path, Path]:
    unsorted = next(p for p in directory.iterdir() if p.name.startswith("ncp-metrics-") and "sorted" not in p.name)
    sorted_ = next(p for p in directory.iterdir() if p.name.startswith("ncp-metrics-sorted-"))
    return unsorted, sorted_


def _load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_async_floor(sim: Simulator, shape: Shape, runs: int, workdir: Path, concurrency: int = 8) -> dict:
    """The command in-process against a bare asyncio fetch of the same requests (``bench/async_floor.py``),
    alternated run by run after one untimed run of each; medians of the ratio to the served bound."""
    from bench.async_floor import fetch_all

    start = (WINDOW_END - timedelta(days=shape.days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = WINDOW_END.strftime("%Y-%m-%dT%H:%M:%SZ")
    floors: list[tuple[float, float]] = []
    ours: list[tuple[float, float]] = []
    for run in range(runs + 1):
        sim.reset()
        started = time.perf_counter()
        records = fetch_all(sim.url, API_KEY, sim.ca, start, end, concurrency)
        wall = time.perf_counter() - started
        log = sim.requests_log()
        floor_requests = sum(1 for r in log if r["path"].startswith("/v2/"))
        served = bounds(log, shape.latency_ms, concurrency)[1]
        out = workdir / f"async-floor-ours-{run}"
        command = run_command(sim, shape, concurrency, out, None)
        our_served = bounds(command.log, shape.latency_ms, concurrency)[1]
        our_requests = sum(1 for r in command.log if r["path"].startswith("/v2/"))
        if floor_requests != our_requests:
            raise SystemExit(f"the asyncio floor made {floor_requests} requests, the command {our_requests}")
        label = "untimed" if run == 0 else f"run {run}"
        print(f"  asyncio floor, {label}: {wall:.3f} s ({records} records, {floor_requests} requests; served bound "
              f"{served:.3f} s: {wall / served:.2f}x) | the command in-process {command.wall_s:.3f} s (served bound "
              f"{our_served:.3f} s: {command.wall_s / our_served:.2f}x) ({_load()})", flush=True)
        if run:
            floors.append((wall, wall / served))
            ours.append((command.wall_s, command.wall_s / our_served))
    result = {
        "runs": runs, "concurrency": concurrency,
        "floor_s": statistics.median(w for w, _ in floors), "floor_ratio": statistics.median(r for _, r in floors),
        "ours_s": statistics.median(w for w, _ in ours), "ours_ratio": statistics.median(r for _, r in ours),
    }
    print(f"  asyncio floor (median of {runs}): {result['floor_s']:.3f} s = {result['floor_ratio']:.2f}x the served "
          f"bound; the command in-process {result['ours_s']:.3f} s = {result['ours_ratio']:.2f}x", flush=True)
    return result


# --- one shape ---------------------------------------------------------------------------------------


def bench_shape(shape: Shape, args: argparse.Namespace, tmp: Path) -> dict:
    workdir = tmp / shape.name
    workdir.mkdir()
    sim = Simulator(shape, workdir)
    try:
        print(f"\nShape {shape.describe()}; simulator {sim.url} (own process)", flush=True)
        results: dict = {"shape": shape.name, "concurrency": {}}
        seed_s = None
        if shape.seed and not args.no_seed and not args.process_only:
            seed_dir = workdir / "seed"
            seed_dir.mkdir()
            seed_s, seed_stats = run_seed(sim, shape, seed_dir)
            print(f"  blog script: {seed_s:.2f} s wall, {seed_stats['requests']} requests, "
                  f"{seed_stats['connections_opened']} connections ({_load()})", flush=True)
            results["seed_s"] = seed_s
        if (args.process or args.process_only) and shape.seed and shape.name in args.process_shapes:
            results["process"] = bench_processes(sim, shape, args.process_runs or args.runs, workdir)
        if args.async_floor and shape.seed and shape.name in args.process_shapes:
            results["async_floor"] = bench_async_floor(sim, shape, args.process_runs or args.runs, workdir)
        for c in [] if args.process_only else args.concurrency:
            walls, cpus, ratios = [], [], []
            for run in range(args.runs):
                out = workdir / f"ours-c{c}-{run}"
                prof = (workdir / f"c{c}.prof") if args.profile and run == 0 else None
                got = run_command(sim, shape, c, out, prof)
                nominal, served = bounds(got.log, shape.latency_ms, c)
                walls.append(got.wall_s)
                cpus.append(got.cpu_s)
                ratios.append(got.wall_s / nominal)
                rows = len(_csv_rows(_files(out)[0])) - 1
                print(f"  metrics c={c:<3} run {run + 1}: {got.wall_s:6.2f} s wall, {got.cpu_s:5.2f} s CPU, "
                      f"{rows:,} rows, {got.stats['requests'] - 0} requests, {got.stats['connections_opened']} "
                      f"connections, max in flight {got.stats['max_in_flight']}; bound {nominal:.2f} s nominal / "
                      f"{served:.2f} s served -> {got.wall_s / nominal:.2f}x / {got.wall_s / served:.2f}x "
                      f"({_load()})", flush=True)
                if seed_s is not None and run == 0:
                    seed_files, our_files = _files(workdir / "seed"), _files(out)
                    for seed_file, our_file in zip(seed_files, our_files, strict=True):
                        if _csv_rows(seed_file, neutralized=True) != _csv_rows(our_file):
                            raise SystemExit(f"rows differ: {seed_file.name} vs {our_file.name}")
                if prof:
                    stats = pstats.Stats(str(prof))
                    stream = io.StringIO()
                    stats.stream = stream  # type: ignore[attr-defined]
                    stats.sort_stats("tottime").print_stats(args.profile_top)
                    print("\n".join("    " + ln for ln in stream.getvalue().splitlines()[-args.profile_top - 3:]))
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            entry = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "bound_s": round(nominal, 3),
                     "served_bound_s": round(served, 3), "ratio": round(statistics.median(ratios), 2),
                     "rows": rows, "requests": got.stats["requests"]}
            if seed_s is not None:
                entry["speedup_vs_seed"] = round(seed_s / wall, 1)
            if shape.name == "c":
                floor_s, records, size = json_floor(sim, got.log)
                entry.update(json_floor_s=round(floor_s, 3), records=records,
                             cpu_us_per_record=round(cpu / records * 1e6, 1),
                             floor_us_per_record=round(floor_s / records * 1e6, 1),
                             cpu_vs_floor=round(cpu / floor_s, 2))
                ex_cpu, task_cpu, ex_wall, ex_rows = extract_cpu(sim, shape, c)
                entry.update(extract_cpu_us_per_record=round(ex_cpu / records * 1e6, 1),
                             extract_vs_floor=round(ex_cpu / floor_s, 2), extract_wall_s=round(ex_wall, 3),
                             task_cpu_us_per_record=round(task_cpu / records * 1e6, 1),
                             task_vs_floor=round(task_cpu / floor_s, 2))
                floor_us = floor_s / records * 1e6
                print(f"  c={c}: CPU per record vs the floor, bare json.loads(parse_float=Decimal) over the same "
                      f"{size / 1e6:.1f} MB, {records:,} records: {floor_us:.1f} us/record ({_load()})", flush=True)
                for what, seconds in (
                    ("extraction alone (client + extract_org, rows spooled)", ex_cpu),
                    ("+ the landed usage CSV (the DAG's extract task)", task_cpu),
                    ("the whole command (+ sorting, both report CSVs)", cpu),
                ):
                    ratio = seconds / floor_s
                    print(f"    {what:<56} {seconds / records * 1e6:6.1f} us/record = {ratio:.2f}x the floor "
                          f"(target <= 3x: {'met' if ratio <= 3 else 'MISSED'})", flush=True)
                print(f"    (extraction alone: {ex_wall:.2f} s wall, {ex_rows:,} rows; {_load()})", flush=True)
            results["concurrency"][str(c)] = entry
        return results
    finally:
        sim.stop()


def serve(argv: list[str]) -> int:
    """The simulator process: ``python -m rafay_simulator`` with its usage listings memoised.

    The simulator builds a profile's whole usage listing for every page it serves (50 pages of a
    50,000-instance profile = 50 full builds, seconds each); the bench measures the client, so the
    listing is built once per (profile, window) here. Pages are still sliced, paged and serialised
    per request.
    """
    from rafay_simulator import __main__ as simulator_main
    from rafay_simulator.routing import ApiRoutes

    built: dict = {}
    original = ApiRoutes._v2_usage

    def memoised(self, profile, start, end):  # type: ignore[no-untyped-def]
        key = (id(profile), start, end)
        if key not in built:
            built[key] = original(self, profile, start, end)
        return built[key]

    ApiRoutes._v2_usage = memoised  # type: ignore[method-assign]
    return simulator_main.main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        return serve(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", nargs="+", choices=sorted(SHAPES), default=sorted(SHAPES))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8], help="one or more to compare")
    parser.add_argument("--runs", type=int, default=1, help="runs per concurrency (median)")
    parser.add_argument("--no-seed", action="store_true", help="skip the blog script")
    parser.add_argument("--quick", action="store_true", help="a tenth of every shape's orgs/instances")
    parser.add_argument("--process", action="store_true",
                        help="also run the command and the blog script as processes (shapes a and b)")
    parser.add_argument("--process-runs", type=int, default=None, help="process runs (default: --runs)")
    parser.add_argument("--process-shapes", nargs="+", choices=("a", "b"), default=["a"],
                        help="shapes the process runs are made on (default: a, issue 25's)")
    parser.add_argument("--process-only", action="store_true", help="only the process runs (implies --process)")
    parser.add_argument("--cold-bytecode", action="store_true",
                        help="process runs without a bytecode cache (as PYTHONDONTWRITEBYTECODE leaves them)")
    parser.add_argument("--async-floor", action="store_true",
                        help="also compare the command in-process with a bare asyncio fetch of the same requests "
                             "(bench/async_floor.py; the --process-shapes)")
    parser.add_argument("--profile", action="store_true", help="cProfile the first run of each concurrency")
    parser.add_argument("--profile-top", type=int, default=25)
    args = parser.parse_args(argv)
    print(f"Client: {os.cpu_count()} cores, {_load()} at start (other processes share the machine)")
    summary = []
    global BYTECODE_CACHE
    with tempfile.TemporaryDirectory(prefix="rafay-bench-") as tmp:
        if not args.cold_bytecode:
            BYTECODE_CACHE = Path(tmp) / "pycache"
        print(f"Process runs: bytecode {'cache ' + str(BYTECODE_CACHE) if BYTECODE_CACHE else 'as the environment says'}"
              f" (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} here)", flush=True)
        for name in args.shape:
            shape = SHAPES[name]
            if args.quick:
                shape = Shape(shape.name, max(1, shape.orgs // 10), shape.profiles, max(1, shape.instances // 10),
                              shape.latency_ms, shape.tls, shape.page_size and shape.page_size // 10, shape.days,
                              shape.seed)
            summary.append(bench_shape(shape, args, Path(tmp)))
    print("\nShape  c    wall s  CPU s  bound s  ratio (target <= 1.3x)  served bound s  ratio  vs blog script")
    for result in summary:
        for c, e in result["concurrency"].items():
            seed = f"{e['speedup_vs_seed']}x faster" if "speedup_vs_seed" in e else "-"
            verdict = "met" if e["ratio"] <= 1.3 else "MISSED"
            served = e["wall_s"] / e["served_bound_s"]
            print(f"  {result['shape']}  {c:>3}  {e['wall_s']:7.2f} {e['cpu_s']:6.2f} {e['bound_s']:8.2f}  "
                  f"{e['ratio']:.2f}x {verdict:<14}  {e['served_bound_s']:14.2f}  {served:.2f}x  {seed}")
    for result in summary:
        if "process" in result:
            e = result["process"]
            print(f"  {result['shape']}  as a process (c = {e['concurrency']}, median of {e['runs']}): {e['wall_s']:.2f} s, "
                  f"start-up {e['startup_s']:.3f} s, {e['ratio']:.2f}x the bound {e['bound_s']:.2f} s (target <= 1.3x), "
                  f"{e['speedup_vs_seed']}x faster than the blog script as a process, {e['seed_s']:.2f} s (target >= 7x)")
        if "async_floor" in result:
            e = result["async_floor"]
            print(f"  {result['shape']}  asyncio floor (c = {e['concurrency']}, median of {e['runs']}): "
                  f"{e['floor_s']:.2f} s = {e['floor_ratio']:.2f}x the served bound; the command in-process "
                  f"{e['ours_s']:.2f} s = {e['ours_ratio']:.2f}x")
    print(RESULT_PREFIX + json.dumps({"shapes": summary, "load": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
