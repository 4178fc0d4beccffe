"""``rafay-billing metrics``: inputs like the seed script, the same rows as the seed script, fast start."""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rafay_billing import cli
from rafay_billing.reports import NCP_METRICS_HEADER, neutralize
from rafay_simulator import Fault, RafaySimulator
from tests.support import seed_script
from tests.support.http_stub import stub_console

NOW = datetime(2026, 11, 26, 12, 34, 56, 789000, tzinfo=UTC)


class FrozenDatetime(datetime):
    """``datetime`` whose ``now()`` is ``NOW``: the seed and the command must see the same window."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return NOW if tz is None else NOW.astimezone(tz)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seed_script, "datetime", FrozenDatetime)
    monkeypatch.setattr(cli, "datetime", FrozenDatetime)


def _env(monkeypatch: pytest.MonkeyPatch, sim: RafaySimulator, days: str | None = "30", scheme: bool = False) -> None:
    url = sim.url if scheme else sim.url.split("://", 1)[1]
    monkeypatch.setenv("RAFAY_CONSOLE_URL", url)
    monkeypatch.setenv("RAFAY_DEFAULT_API_KEY", sim.api_key)
    if days is None:
        monkeypatch.delenv("DAYS", raising=False)
    else:
        monkeypatch.setenv("DAYS", days)


def _run_seed(monkeypatch: pytest.MonkeyPatch, sim: RafaySimulator, where: Path) -> tuple[Path, Path]:
    """The blog script itself (tests/seed_script.py) against the simulator, in ``where``."""
    where.mkdir()
    _env(monkeypatch, sim)
    monkeypatch.chdir(where)
    seed_script.main()
    unsorted = [p for p in where.iterdir() if "sorted" not in p.name]
    sorted_ = [p for p in where.iterdir() if "sorted" in p.name]
    assert len(unsorted) == 1 and len(sorted_) == 1
    return unsorted[0], sorted_[0]


def _run_command(
    monkeypatch: pytest.MonkeyPatch, sim: RafaySimulator, out: Path, *args: str
) -> tuple[int, Path | None, Path | None]:
    monkeypatch.setenv("RAFAY_CONSOLE_URL", sim.url)  # a base URL with scheme: the simulator is plain http
    code = cli.main(["metrics", "--out", str(out), *args])
    if code != 0:
        return code, None, None
    files = sorted(out.iterdir())
    unsorted = [p for p in files if p.name.startswith("ncp-metrics-") and "sorted" not in p.name]
    sorted_ = [p for p in files if p.name.startswith("ncp-metrics-sorted-")]
    assert len(unsorted) == 1 and len(sorted_) == 1
    return code, unsorted[0], sorted_[0]


def _neutralized(path: Path) -> bytes:
    """The seed's file with the contract's one change (formula-looking cells prefixed with ')."""
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(rows[0])
    for row in rows[1:]:
        writer.writerow([neutralize(c) for c in row])
    return buf.getvalue().encode("utf-8")


def _assert_same_files(seed: tuple[Path, Path], ours: tuple[Path | None, Path | None]) -> None:
    assert ours[0] is not None and ours[1] is not None
    assert ours[0].read_bytes() == _neutralized(seed[0])
    assert ours[1].read_bytes() == _neutralized(seed[1])


# --- seed parity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed_fields_only", [False, True])
def test_writes_the_same_rows_as_the_seed_script(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frozen_clock: None, seed_fields_only: bool
) -> None:
    sim = rafay_sim_factory(orgs=14, seed_fields_only=seed_fields_only)
    seed_files = _run_seed(monkeypatch, sim, tmp_path / "seed")
    code, *ours = _run_command(monkeypatch, sim, tmp_path / "ours")
    assert code == 0
    _assert_same_files(seed_files, (ours[0], ours[1]))
    text = ours[0].read_bytes().decode()
    assert text.startswith("Organization,Profile Type,Profile,Instance,Usage(h),Status\r\n")
    assert len(text.splitlines()) > 20
    assert "'=cmd|' /C calc'!A0" in text  # the one deliberate difference from the seed


def test_same_rows_from_a_paging_capped_faulty_server(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frozen_clock: None
) -> None:
    """The seed needs a server that answers everything at once; the command also copes with one that doesn't."""
    plain = rafay_sim_factory(orgs=10, instances_per_profile=(3, 9))
    seed_files = _run_seed(monkeypatch, plain, tmp_path / "seed")
    hard = rafay_sim_factory(orgs=10, instances_per_profile=(3, 9), max_page_size=2, v2_default_limit=2)
    hard.add_fault(Fault("status", "/usage$", times=3, status=503, retry_after=0))
    hard.add_fault(Fault("status", "/ncp/profiles$", times=2, status=502, html=True, retry_after=0))
    hard.add_fault(Fault("malformed_json", "^/v2/organizations$", times=1))
    code, *ours = _run_command(monkeypatch, hard, tmp_path / "ours")
    assert code == 0
    _assert_same_files(seed_files, (ours[0], ours[1]))


def test_sorted_file_is_ordered_like_the_seed(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frozen_clock: None
) -> None:
    sim = rafay_sim_factory(orgs=12)
    _env(monkeypatch, sim)
    code, unsorted, sorted_ = _run_command(monkeypatch, sim, tmp_path)
    assert code == 0
    rows = list(csv.reader(io.StringIO(sorted_.read_bytes().decode(), newline="")))
    assert tuple(rows[0]) == NCP_METRICS_HEADER
    keys = [tuple(r[:4]) for r in rows[1:]]
    raw_keys = [tuple(c[1:] if c.startswith("'") else c for c in k) for k in keys]
    assert raw_keys == sorted(raw_keys)
    assert sorted(rows[1:]) == sorted(list(csv.reader(io.StringIO(unsorted.read_bytes().decode(), newline="")))[1:])
    stamp = unsorted.name.removeprefix("ncp-metrics-").removesuffix(".csv")
    assert sorted_.name == f"ncp-metrics-sorted-{stamp}.csv"
    assert len(stamp) == 15 and stamp[8] == "-"


# --- inputs --------------------------------------------------------------------------------------


def test_explicit_window_concurrency_and_summary(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    sim = rafay_sim_factory(orgs=4, profiles_per_org=(3, 3), latency_ms=30)
    _env(monkeypatch, sim, days="abc")  # flags win: a bad DAYS is not even read
    code, unsorted, _ = _run_command(
        monkeypatch, sim, tmp_path / "new" / "dir",
        "--start", "2026-11-10T00:00:00Z", "--end", "2026-11-11T00:00:00Z", "--concurrency", "3",
    )
    assert code == 0
    usage = [r for r in sim.requests if r.path.endswith("/usage")]
    assert usage and all(
        (r.query["start_time"], r.query["end_time"]) == ("2026-11-10T00:00:00Z", "2026-11-11T00:00:00Z") for r in usage
    )
    assert 1 < sim.max_in_flight <= 3
    out, err = capsys.readouterr()
    assert str(unsorted) in out.splitlines()
    assert "4 orgs, 12 profiles, " in err and " retries" in err


def test_every_orgs_profile_listing_goes_out_before_the_usage_of_the_last_orgs(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frozen_clock: None
) -> None:
    """Issue 25: the profile listings are queued first, so the run does not end with an org whose
    usage still waits for its own profile listing (one more round trip with the other slots idle).
    Before, an org's listing went out only when one of the ``concurrency`` org workers got to it:
    the last org's listing came after most of the usage requests."""
    sim = rafay_sim_factory(orgs=16, profiles_per_org=(3, 3), latency_ms=5)
    _env(monkeypatch, sim)
    code, unsorted, _ = _run_command(monkeypatch, sim, tmp_path / "out", "--concurrency", "4")
    assert code == 0 and unsorted is not None
    order = [r.path.rsplit("/", 1)[1] for r in sorted(sim.requests, key=lambda r: r.started_at)]
    assert order.count("profiles") == 16 and order.count("usage") == 48
    last_listing = max(i for i, kind in enumerate(order) if kind == "profiles")
    # the org listing, 16 profile listings, and at most the usage of the orgs whose listing a worker
    # finished while the other workers took the last listings (3 workers x 3 profiles)
    assert last_listing < 1 + 16 + 3 * 3, order


def test_every_orgs_profiles_are_read_on_one_shared_pool(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frozen_clock: None
) -> None:
    """Issue 25: the command reads every org's profiles on one pool of ``concurrency`` threads, not on a
    pool made and ended for each org (a fifth of the command's CPU went to those threads)."""
    from rafay_billing.source import extract

    readers: list[str] = []
    read = extract._ProfileReader.__call__

    def recording(self, profile):  # type: ignore[no-untyped-def]
        readers.append(threading.current_thread().name)
        return read(self, profile)

    monkeypatch.setattr(extract._ProfileReader, "__call__", recording)
    sim = rafay_sim_factory(orgs=12, profiles_per_org=(3, 3))
    _env(monkeypatch, sim)
    code, unsorted, _ = _run_command(monkeypatch, sim, tmp_path / "out", "--concurrency", "4")
    assert code == 0 and unsorted is not None and len(readers) == 36
    assert all(name.startswith("rafay-profile") for name in readers), set(readers)
    assert len(set(readers)) <= 4


def test_page_size_flag_sets_the_limit_asked_for(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frozen_clock: None
) -> None:
    sim = rafay_sim_factory(orgs=3, instances_per_profile=(4, 6))
    _env(monkeypatch, sim, days="30")
    code, unsorted, _ = _run_command(monkeypatch, sim, tmp_path, "--page-size", "2")
    assert code == 0 and unsorted is not None
    assert {r.query["limit"] for r in sim.requests} == {"2"}
    assert any(r.query["offset"] == "4" for r in sim.requests if r.path.endswith("/usage"))
    assert cli.main(["metrics", "--out", str(tmp_path), "--page-size", "0"]) != 0


def test_days_flag_wins_over_env_and_window_is_second_precise(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frozen_clock: None
) -> None:
    sim = rafay_sim_factory(orgs=2)
    _env(monkeypatch, sim, days="30")
    code, _, _ = _run_command(monkeypatch, sim, tmp_path, "--days", "2")
    assert code == 0
    usage = [r for r in sim.requests if r.path.endswith("/usage")]
    assert {(r.query["start_time"], r.query["end_time"]) for r in usage} == {
        ("2026-11-24T12:34:56Z", "2026-11-26T12:34:56Z")
    }


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"DAYS": None}, [], "no window: set DAYS"),
        ({"DAYS": "abc"}, [], "DAYS must be a positive whole number"),
        ({"DAYS": "0"}, [], "DAYS must be a positive whole number"),
        ({"DAYS": "1000000000"}, [], "days 1000000000 reaches back before the year 1"),
        ({}, ["--days", "-1"], "--days must be a positive whole number"),
        ({}, ["--days", "2", "--start", "2026-11-10T00:00:00Z", "--end", "2026-11-11T00:00:00Z"], "not both"),
        ({}, ["--start", "2026-11-10T00:00:00Z"], "--start and --end go together"),
        ({}, ["--start", "2026-11-10", "--end", "2026-11-11T00:00:00Z"], "--start must be an ISO-8601 UTC"),
        ({}, ["--start", "2026-11-11T00:00:00Z", "--end", "2026-11-10T00:00:00Z"], "must be after"),
        ({"RAFAY_CONSOLE_URL": None}, [], "RAFAY_CONSOLE_URL is not set"),
        ({"RAFAY_DEFAULT_API_KEY": None}, [], "RAFAY_DEFAULT_API_KEY is not set"),
        ({"RAFAY_CONSOLE_URL": "ftp://x"}, [], "must be http(s)"),
        ({"RAFAY_CONSOLE_URL": "http://u:UrlPw_Leak10@127.0.0.1:1"}, [], "'http://***@127.0.0.1:1' must not carry a "
         "user or password"),
        ({}, ["--console-url", "ftp://u:UrlPw_Leak10@x"], "must not carry a user or password"),
        ({}, ["--concurrency", "0"], "--concurrency must be a positive whole number"),
        ({"RAFAY_CONSOLE_URL": "http://rafay.example"}, [], "refusing to send the Rafay API key over plain http to "
         "rafay.example"),
        ({"RAFAY_ALLOW_INSECURE_HTTP": "maybe"}, [], "RAFAY_ALLOW_INSECURE_HTTP must be"),
    ],
)
def test_bad_inputs_exit_2_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path, env: dict, args: list, message: str
) -> None:
    base = {"DAYS": "30", "RAFAY_CONSOLE_URL": "rafay.invalid", "RAFAY_DEFAULT_API_KEY": "k-123",
            "RAFAY_ALLOW_INSECURE_HTTP": None}
    for name, value in {**base, **env}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert cli.main(["metrics", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rafay-billing metrics: error: ") and message in err and "UrlPw_Leak10" not in err
    assert len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_plain_http_key_to_a_network_host_is_refused_unless_allowed(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
    network_address: str,
) -> None:
    """Defect 10e: the key is not sent in clear text to another machine without being asked to."""
    sim = rafay_sim_factory(orgs=2, host="0.0.0.0")
    url = f"http://{network_address}:{sim.port}"
    _env(monkeypatch, sim, days="2")
    monkeypatch.delenv("RAFAY_ALLOW_INSECURE_HTTP", raising=False)
    assert cli.main(["metrics", "--out", str(tmp_path / "no"), "--console-url", url]) == 2
    err = capsys.readouterr().err
    assert f"refusing to send the Rafay API key over plain http to {network_address}" in err
    assert "--allow-insecure-http" in err and sim.api_key not in err and sim.requests == []
    assert cli.main(["metrics", "--out", str(tmp_path / "flag"), "--console-url", url, "--allow-insecure-http"]) == 0
    monkeypatch.setenv("RAFAY_ALLOW_INSECURE_HTTP", "1")
    assert cli.main(["metrics", "--out", str(tmp_path / "env"), "--console-url", url]) == 0
    assert sim.api_key not in capsys.readouterr().err


def test_help_documents_the_insecure_http_switch(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main(["metrics", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--allow-insecure-http" in out and "RAFAY_ALLOW_INSECURE_HTTP" in out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture) -> None:
    assert cli.main([]) == 2
    assert "metrics" in capsys.readouterr().err


def test_api_failure_exits_1_without_files_or_the_key(
    rafay_sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _env(monkeypatch, rafay_sim)
    monkeypatch.setenv("RAFAY_DEFAULT_API_KEY", "not-the-right-key-987")
    code, _, _ = _run_command(monkeypatch, rafay_sim, tmp_path, "-v")
    assert code == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "check RAFAY_DEFAULT_API_KEY" in err
    assert "not-the-right-key-987" not in err + caplog.text
    assert list(tmp_path.iterdir()) == []


def test_the_key_never_reaches_output_logs_or_files(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = rafay_sim_factory(orgs=5)
    sim.add_fault(Fault("status", "/usage$", times=1, status=503, retry_after=0))
    _env(monkeypatch, sim)
    code, unsorted, sorted_ = _run_command(monkeypatch, sim, tmp_path, "--verbose")
    assert code == 0
    out, err = capsys.readouterr()
    assert "-> 200" in caplog.text
    everything = out + err + caplog.text + unsorted.read_text() + sorted_.read_text()
    assert sim.api_key not in everything


def test_a_key_echoed_by_an_error_page_never_reaches_stderr_or_logs_wherever_the_cut_falls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture,
) -> None:
    """Defect h3-8: a 403 page echoing x-api-key printed the key's first characters when it straddled
    the excerpt's cut (the key was masked only after cutting)."""
    key = "qZ7xK2-sekrit-Wv9Lp4"
    pad = {"n": 0}

    def answer(path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        page = f"<html><body>Forbidden. {'x' * pad['n']} request header x-api-key: {headers['x-api-key']}</body></html>"
        return 403, {"Content-Type": "text/html"}, page.encode()

    monkeypatch.setenv("DAYS", "1")
    monkeypatch.setenv("RAFAY_DEFAULT_API_KEY", key)
    caplog.set_level(logging.DEBUG)
    with stub_console(answer) as console:
        for n in range(140, 165):
            pad["n"] = n
            caplog.clear()
            out = tmp_path / str(n)
            assert cli.main(["metrics", "--out", str(out), "--console-url", console.url, "-v"]) == 1
            err = capsys.readouterr().err
            assert "rafay-billing: error: GET /v2/organizations?offset=0&limit=100: HTTP 403 Forbidden" in err
            shown = [key[i : i + 4] for i in range(len(key) - 3) if key[i : i + 4] in err + caplog.text]
            assert shown == [], f"pad of {n}: {err}"
            assert not out.exists()
    assert len(console.requests) == 25


def _unwritable_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory this process cannot write to. Where permissions do not bind (root), the command's
    view of them is made to say so instead: the refusal is what is tested, not the kernel."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):
        writable = cli._writable_dir
        monkeypatch.setattr(cli, "_writable_dir", lambda path: Path(path) != locked and writable(path))
    return locked


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("file/sub", "cannot be created: {tmp}/file is not a directory"),
        ("/proc/1/not-creatable", "cannot be created: /proc/1 is not writable"),
        ("locked", "is not writable"),
        ("locked/new/dir", "cannot be created: {tmp}/locked is not writable"),
    ],
    ids=["under a file", "under /proc", "unwritable", "under an unwritable directory"],
)
def test_an_out_the_csvs_cannot_be_written_to_is_refused_before_any_request(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
    where: str, message: str,
) -> None:
    """Defect h3-7: such an --out was found out only after every API read, as a Python traceback (exit 1)."""
    (tmp_path / "file").write_text("not a directory")
    if where.startswith("locked"):
        _unwritable_dir(tmp_path, monkeypatch)
    if where.startswith("/proc/") and (not Path("/proc/1").is_dir() or os.access("/proc/1", os.W_OK)):
        pytest.skip("no /proc/1 that refuses new entries here")
    out = where if where.startswith("/") else str(tmp_path / where)
    sim = rafay_sim_factory(orgs=2)
    _env(monkeypatch, sim, days="2")
    monkeypatch.setenv("RAFAY_CONSOLE_URL", sim.url)
    assert cli.main(["metrics", "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"rafay-billing metrics: error: --out {out}") and message.format(tmp=tmp_path) in err, err
    assert sim.requests == []  # refused before the first request


def test_an_out_not_there_yet_is_not_created_when_the_reads_fail(
    rafay_sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    """The up-front check of --out creates nothing: no files (nor directories) on an API failure."""
    _env(monkeypatch, rafay_sim)
    monkeypatch.setenv("RAFAY_DEFAULT_API_KEY", "not-the-right-key-987")
    code, _, _ = _run_command(monkeypatch, rafay_sim, tmp_path / "new" / "dir")
    assert code == 1 and "HTTP 401" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failure_writing_the_csvs_is_one_line_exit_1_and_leaves_no_half_file(
    rafay_sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    """Defect h3-7: an OSError while writing (disk full, the directory removed meanwhile) was a traceback."""
    from rafay_billing import reports

    def disk_full(rows, out, stamp):  # type: ignore[no-untyped-def]
        first = out / reports.ncp_metrics_file_names(stamp)[0]
        first.write_text("Organization,Pro")
        raise OSError(errno.ENOSPC, "No space left on device", str(first))

    monkeypatch.setattr(reports, "write_ncp_metrics_csvs", disk_full)
    sim = rafay_sim_factory(orgs=2)
    _env(monkeypatch, sim, days="2")
    out = tmp_path / "out"
    code, _, _ = _run_command(monkeypatch, sim, out)
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"rafay-billing: error: cannot write the CSVs to {out}: No space left on device")
    assert "Traceback" not in "\n".join(err)
    assert list(out.iterdir()) == []


# --- the installed command ---------------------------------------------------------------------------


def test_importing_the_command_pulls_in_no_airflow_pandas_or_psycopg() -> None:
    code = (
        "import sys, json; import rafay_billing.cli, rafay_billing.source.client, rafay_billing.source.extract, "
        "rafay_billing.reports, rafay_billing.source.usage, rafay_billing.paths; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('airflow', 'pandas', 'psycopg', 'psycopg2', 'sqlalchemy'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(proc.stdout) == []


def test_console_script_runs_end_to_end(rafay_sim_factory, tmp_path: Path) -> None:
    sim = rafay_sim_factory(orgs=3)
    script = Path(sys.executable).with_name("rafay-billing")
    env = {**os.environ, "DAYS": "3", "RAFAY_CONSOLE_URL": sim.url, "RAFAY_DEFAULT_API_KEY": sim.api_key}
    proc = subprocess.run(
        [str(script), "metrics", "--out", str(tmp_path)], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    written = [Path(line) for line in proc.stdout.splitlines()]
    assert [p.name.startswith("ncp-metrics-") for p in written] == [True, True]
    assert all(p.read_bytes().startswith(b"Organization,Profile Type,Profile,Instance,Usage(h),Status\r\n") for p in written)
    assert sim.api_key not in proc.stdout + proc.stderr


def test_the_waive_help_names_every_reason_a_waiver_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    from rafay_billing.periods.waivers import REASONS

    with pytest.raises(SystemExit):
        cli.main(["waive", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(reason in shown for reason in REASONS), shown


def test_a_metrics_run_loads_only_what_it_uses(rafay_sim_factory, tmp_path: Path) -> None:
    """Start-up is part of the command's time (issue 25): a ``metrics`` run that needed no retry loads
    neither the other subcommands' modules (FOCUS export, database layer, tenant API, contracts, ...)
    nor the retry library."""
    sim = rafay_sim_factory(orgs=2)
    code = (
        "import sys, json; from rafay_billing import cli; "
        f"code = cli.main(['metrics', '--days', '3', '--out', {str(tmp_path)!r}]); "
        "print(json.dumps([code, sorted(sys.modules)]))"
    )
    env = {**os.environ, "RAFAY_CONSOLE_URL": sim.url, "RAFAY_DEFAULT_API_KEY": sim.api_key}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    status, modules = json.loads(proc.stdout.splitlines()[-1])
    assert status == 0, proc.stderr
    unused = [m for m in modules if m.split(".")[0] == "tenacity" or m.startswith((
        "rafay_billing.periods", "rafay_billing.db", "rafay_billing.tenant_api", "rafay_billing.contracts",
        "rafay_billing.delivery", "rafay_billing.ledger",
    ))]
    assert unused == []


def test_every_subcommand_is_still_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    shown = capsys.readouterr().out
    for command in ("metrics", "focus-export", "waive", "contracts", "preview", "deliveries", "accept-shrink"):
        assert command in shown


def test_the_console_script_freezes_its_imports_out_of_the_collector(rafay_sim_factory, tmp_path: Path) -> None:
    """As the whole process (``main()`` without arguments, what the console script calls), the command
    freezes what exists before the run out of the garbage collector, so neither the run's collections nor
    the one at exit walk it (issue 25); called with arguments (tests, the benchmark), it leaves the
    collector alone."""
    sim = rafay_sim_factory(orgs=2)
    code = (
        "import gc, sys; from rafay_billing import cli; "
        f"sys.argv = ['rafay-billing', 'metrics', '--days', '3', '--out', {str(tmp_path)!r}]; "
        "status = cli.main(); print(status, gc.get_freeze_count() > 0)"
    )
    env = {**os.environ, "RAFAY_CONSOLE_URL": sim.url, "RAFAY_DEFAULT_API_KEY": sim.api_key}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.stdout.split()[-2:] == ["0", "True"], proc.stderr


def test_called_with_arguments_the_command_leaves_the_collector_alone(
    monkeypatch: pytest.MonkeyPatch, rafay_sim_factory, tmp_path: Path
) -> None:
    import gc

    sim = rafay_sim_factory(orgs=1)
    _env(monkeypatch, sim)
    frozen = gc.get_freeze_count()
    code, _, _ = _run_command(monkeypatch, sim, tmp_path)
    assert code == 0 and gc.get_freeze_count() == frozen
