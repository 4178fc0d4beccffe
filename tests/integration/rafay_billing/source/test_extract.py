"""Extraction of one org over real HTTP against the simulator: order, concurrency, failures, stats."""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses

from rafay_billing.errors import RafayListingInconsistent, RafayNotFound, RafayResponseError
from rafay_billing.paths import page_file_name
from rafay_billing.source.client import RafayClient, RetryPolicy
from rafay_billing.source.extract import OrgRef, extract_org, list_orgs
from rafay_billing.source.usage import spec_gpu_count
from rafay_billing.source.usage_csv import read_usage_csv, write_usage_csv
from rafay_billing.window import Window
from rafay_simulator import (
    REMOVE,
    Dataset,
    Fault,
    Instance,
    Org,
    Profile,
    RafaySimulator,
    RawNumber,
    hours_decimal,
    usage_seconds,
)

WINDOW = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC))
FAST = RetryPolicy(attempts=3, backoff_initial=0.001, backoff_max=0.002, jitter=0.001)


def _client(sim: RafaySimulator, **kw: object) -> RafayClient:
    kw.setdefault("retry", FAST)
    return RafayClient(sim.url, sim.api_key, **kw)  # type: ignore[arg-type]


def _expected(sim: RafaySimulator, org: Org) -> list[tuple]:
    """(profile, instance_id, hours, gpu) the simulator's data implies, in API order."""
    out = []
    for profile in org.profiles:
        spec_gpu = spec_gpu_count({"variables": profile.spec_variables})
        for inst in profile.instances:
            seconds = usage_seconds(inst, WINDOW.start, WINDOW.end, sim.now())
            if seconds > 0:
                gpu = profile.gpu_param if profile.gpu_param is not None else spec_gpu
                out.append((profile.name, inst.instance_id, hours_decimal(seconds), gpu))
    return out


def test_rows_follow_profile_then_record_order_with_exact_hours(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=5, max_page_size=3)
    client = _client(sim)
    for seq, ref in enumerate(list_orgs(client)):
        org = sim.dataset.org(ref.org_id)
        result = extract_org(client, ref.org_id, ref.name, WINDOW, org_seq=seq)
        got = [(r.profile, r.instance_id, r.usage_hours, r.gpu_count) for r in result.rows]
        assert got == _expected(sim, org)
        assert [r.record_seq for r in result.rows] == list(range(len(result.rows)))
        assert {(r.org_id, r.organization, r.org_seq) for r in result.rows} <= {(ref.org_id, ref.name, seq)}
        assert result.profiles == len(org.profiles) and result.invalid == 0
        assert result.hours_total == sum((g[2] for g in got), Decimal(0))


def test_list_orgs_keeps_listing_order_and_display_names(rafay_sim) -> None:
    orgs = list_orgs(_client(rafay_sim, page_size=7))
    assert orgs == [OrgRef(o.org_id, o.name) for o in rafay_sim.dataset.orgs]


@responses.activate
def test_an_org_without_an_id_is_a_clear_error() -> None:
    responses.add(responses.GET, "https://rafay.test/v2/organizations", json={"items": [{"name": "No Id"}]})
    with pytest.raises(RafayResponseError, match="no metadata.name"):
        list_orgs(RafayClient("rafay.test", "k"))


@responses.activate
@pytest.mark.parametrize("pad", range(85, 115))
def test_an_org_without_an_id_that_echoes_the_key_never_shows_it_wherever_the_cut_falls(pad: int) -> None:
    """The error shows the org cut to 120 characters: the key is masked before the cut, and a start of it at the cut."""
    key = "qZ7xK2-sekrit-Wv9Lp4"

    def echo(request):  # type: ignore[no-untyped-def]
        return 200, {}, json.dumps({"items": [{"name": "x" * pad + request.headers["x-api-key"]}]})

    responses.add_callback(responses.GET, "https://rafay.test/v2/organizations", callback=echo)
    with pytest.raises(RafayResponseError, match="no metadata.name") as info:
        list_orgs(RafayClient("rafay.test", key))
    message = str(info.value)
    assert [key[i : i + 4] for i in range(len(key) - 3) if key[i : i + 4] in message] == [], message


def test_order_is_deterministic_whatever_order_threads_finish_in(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(6, 6))
    org = sim.dataset.orgs[0]
    first = org.profiles[0].name
    sim.add_fault(Fault("latency", f"/ncp/profiles/{first}/usage$", delay_ms=300))
    client = _client(sim)
    parallel = extract_org(client, org.org_id, org.name, WINDOW, org_seq=0, concurrency=6)
    sequential = extract_org(client, org.org_id, org.name, WINDOW, org_seq=0, concurrency=1)
    assert parallel.rows == sequential.rows
    assert parallel.rows[0].profile == first


@pytest.mark.parametrize(("client_limit", "extract_limit", "bound"), [(8, 3, 3), (2, 8, 2), (3, None, 3)])
def test_concurrency_limit_is_respected_on_the_wire(rafay_sim_factory, client_limit, extract_limit, bound) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(6, 6), latency_ms=60)
    org = sim.dataset.orgs[0]
    client = _client(sim, concurrency=client_limit)
    extract_org(client, org.org_id, org.name, WINDOW, org_seq=0, concurrency=extract_limit)
    assert 1 < sim.max_in_flight <= bound
    assert sim.connections_opened <= bound


def test_raw_pages_reach_the_hook_keyed_for_landing(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(3, 3), instances_per_profile=(4, 4), max_page_size=2)
    org = sim.dataset.orgs[0]
    seen: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def on_page(kind: str, key: str, page_no: int, body: bytes) -> None:
        assert body.startswith(b"{")
        with lock:
            seen.append((kind, key, page_no))

    result = extract_org(_client(sim), org.org_id, org.name, WINDOW, org_seq=0, on_page=on_page)
    assert ("profiles", "", 0) in seen and ("profiles", "", 1) in seen
    for profile in org.profiles:
        assert ("usage", profile.name, 0) in seen
    assert len(seen) == result.pages


def test_a_failing_profile_fails_the_org_and_names_it(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(4, 4))
    org = sim.dataset.orgs[0]
    bad = org.profiles[2].name
    sim.add_fault(Fault("status", f"/ncp/profiles/{bad}/usage$", status=404))
    with pytest.raises(RafayNotFound) as info:
        extract_org(_client(sim), org.org_id, org.name, WINDOW, org_seq=0)
    assert f"org {org.org_id} ({org.name}), profile {bad}: GET /v2/organizations/{org.org_id}" in str(info.value)
    assert "HTTP 404" in str(info.value)


def test_invalid_usage_records_become_invalid_rows_not_a_crash(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=30, anomalies=True)
    client = _client(sim)
    invalid = []
    for seq, org in enumerate(sim.dataset.orgs):
        result = extract_org(client, org.org_id, org.name, WINDOW, org_seq=seq)
        invalid += [r for r in result.rows if r.invalid_reason]
        assert result.invalid == sum(1 for r in result.rows if r.invalid_reason)
    assert invalid, "the anomalies dataset should produce some invalid records in this window"
    reasons = {r.invalid_reason.split(" ")[0] for r in invalid}
    assert reasons <= {"missing", "negative", "non-numeric"}
    assert all(r.usage_hours is None for r in invalid)


def _instance(iid: str, name: str) -> Instance:
    return Instance(iid, name, created_at=datetime(2026, 11, 20, tzinfo=UTC))


def test_exact_duplicates_are_kept_once_but_records_without_ids_are_not_merged(rafay_sim_factory) -> None:
    twice = _instance("019c0000-0000-7000-8000-000000000001", "vm-a")
    profile = Profile("p1", "compute", 1, instances=[twice, _instance("019c-2", "vm-b"), twice])
    dataset = Dataset(orgs=[Org("org1", "Org One", profiles=[profile])])
    sim = rafay_sim_factory(dataset=dataset)
    result = extract_org(_client(sim), "org1", "Org One", WINDOW, org_seq=0)
    assert [r.instance for r in result.rows] == ["vm-a", "vm-b"]
    assert (result.records, result.duplicates) == (3, 1)
    assert "1 duplicates dropped" in result.summary_line()

    # seed-era records carry no id: same-name records are separate rows, exactly as the seed prints them
    sim_seed = rafay_sim_factory(dataset=dataset, seed_fields_only=True)
    seed_like = extract_org(_client(sim_seed), "org1", "Org One", WINDOW, org_seq=0)
    assert [r.instance_key for r in seed_like.rows] == ["name:vm-a", "name:vm-b", "name:vm-a"]
    assert seed_like.duplicates == 0


def test_summary_line_and_stats(rafay_sim_factory, caplog: pytest.LogCaptureFixture) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(3, 3))
    org = sim.dataset.orgs[0]
    sim.add_fault(Fault("status", "/usage$", times=2, status=503))
    caplog.set_level(logging.DEBUG)
    started = time.perf_counter()
    result = extract_org(_client(sim), org.org_id, org.name, WINDOW, org_seq=0)
    assert result.elapsed_s <= time.perf_counter() - started
    line = result.summary_line()
    assert line.startswith(f"org {org.org_id} ({org.name}): 3 profiles, {len(result.rows)} instances, ")
    assert f"{result.hours_total:,.2f} h" in line and "2 retries" in line and "API p50" in line
    assert result.retries == 2 and result.requests == 1 + 3 + 2 and result.pages == 4
    assert result.p50_ms is not None and result.p95_ms >= result.p50_ms
    assert sim.api_key not in caplog.text


def test_an_org_without_profiles_is_empty_not_an_error(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(dataset=Dataset(orgs=[Org("empty1", "Empty")]))
    result = extract_org(_client(sim), "empty1", "Empty", WINDOW, org_seq=0)
    assert (result.rows, result.profiles, result.hours_total) == ([], 0, Decimal(0))


def test_concurrency_must_be_positive(rafay_sim) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        extract_org(_client(rafay_sim), "x", "X", WINDOW, org_seq=0, concurrency=0)


# --- issue 9: ledger integrity of the extraction ------------------------------------------------------

DAY = Window(datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
_H = timedelta(hours=1)


def _one_profile(sim_factory, instances: list[Instance], gpu: int | None = 1, **config) -> RafaySimulator:
    profile = Profile("p1", "compute", gpu, instances=instances)
    return sim_factory(dataset=Dataset(orgs=[Org("org1", "Org One", profiles=[profile])]), **config)


def test_stopped_and_started_instance_bills_every_segment(rafay_sim_factory) -> None:
    """Defect 4: one instance listed as 5 h and 7 h records is 12 h, not 5 h."""
    start = DAY.start
    vm = Instance("019c0000-0000-7000-8000-000000000401", "vm-ss", start,
                  segments=((start + 1 * _H, start + 6 * _H), (start + 9 * _H, start + 16 * _H)))
    sim = _one_profile(rafay_sim_factory, [vm])
    result = extract_org(_client(sim), "org1", "Org One", DAY, org_seq=0)
    assert [(r.instance_id, r.usage_hours) for r in result.rows] == [(vm.instance_id, 5), (vm.instance_id, 7)]
    assert [(r.instance_id, r.usage_hours, r.record_start, r.record_end) for r in result.rows] == [
        (vm.instance_id, 5, "2026-11-20T01:00:00Z", "2026-11-20T06:00:00Z"),
        (vm.instance_id, 7, "2026-11-20T09:00:00Z", "2026-11-20T16:00:00Z"),
    ]
    assert (result.duplicates, result.hours_total) == (0, 12)


def test_records_without_times_are_duplicates_only_when_status_and_name_match_too(rafay_sim_factory) -> None:
    """Without start/end nothing says which interval a record covers: same id and hours but another status
    (stopped after the window, then listed running again) or another name are two records, summed, as
    the seed prints them; an identical copy is still kept once."""
    untimed = {"start_time": REMOVE, "end_time": REMOVE}
    iid = "019c0000-0000-7000-8000-000000000501"
    running = Instance(iid, "vm-r", DAY.start - _H, record_overrides=untimed)
    stopped = Instance(iid, "vm-r", DAY.start - _H, stopped_at=DAY.end + _H, record_overrides=untimed)
    renamed = Instance(iid, "vm-r2", DAY.start - _H, record_overrides=untimed)
    copy = Instance("019c0000-0000-7000-8000-000000000502", "vm-c", DAY.start, record_overrides=untimed, copies=2)
    sim = _one_profile(rafay_sim_factory, [running, stopped, renamed, copy], now=DAY.end + 2 * _H)
    result = extract_org(_client(sim), "org1", "Org One", DAY, org_seq=0)
    assert [(r.instance, r.status, r.usage_hours) for r in result.rows] == [
        ("vm-r", "running", 24), ("vm-r", "stopped", 24), ("vm-r2", "running", 24), ("vm-c", "running", 24)]
    assert (result.records, result.duplicates) == (5, 1)


def test_exact_duplicates_across_pages_are_dropped_once_with_a_warning(rafay_sim_factory, caplog) -> None:
    twice = Instance("019c0000-0000-7000-8000-000000000402", "vm-2x", DAY.start, copies=2)
    other = Instance("019c0000-0000-7000-8000-000000000403", "vm", DAY.start)
    sim = _one_profile(rafay_sim_factory, [twice, other], max_page_size=1)
    result = extract_org(_client(sim), "org1", "Org One", DAY, org_seq=0)
    assert [r.instance for r in result.rows] == ["vm-2x", "vm"]
    assert (result.records, result.duplicates, result.hours_total) == (3, 1, 48)
    assert "instance 019c0000-0000-7000-8000-000000000402 listed twice with the same times and hours" in caplog.text


def _usage_instances(count: int) -> list[Instance]:
    return [Instance(f"019c0000-0000-7000-8000-{500 + i:012d}", f"vm-{i}", DAY.start + i * _H) for i in range(count)]


@pytest.mark.parametrize("keep_rows", [True, False])
@pytest.mark.parametrize("kind", ["insert_head", "remove_head"])
def test_a_usage_listing_that_changes_while_paged_lands_one_consistent_read(
    rafay_sim_factory, kind: str, keep_rows: bool
) -> None:
    """Defect 3: a record added at the head after page 0 (or removed) is neither read twice nor lost."""
    instances = _usage_instances(7)
    sim = _one_profile(rafay_sim_factory, instances)
    sim.add_fault(Fault(kind, "/usage$", after_pages=1, times=1))
    with extract_org(_client(sim, page_size=3), "org1", "Org One", DAY, org_seq=0, keep_rows=keep_rows) as result:
        rows = list(result.iter_rows())
    expected = instances if kind == "insert_head" else instances[1:]
    assert [r.instance_id for r in rows] == [i.instance_id for i in expected]
    assert [r.record_seq for r in rows] == list(range(len(expected)))
    assert (result.row_count, result.records, result.duplicates) == (len(expected), len(expected), 0)
    assert result.hours_total == sum(hours_decimal(usage_seconds(i, DAY.start, DAY.end, sim.now())) for i in expected)


def test_a_profile_listing_that_changes_while_paged_loses_no_profile(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(5, 5))
    org = sim.dataset.orgs[0]
    sim.add_fault(Fault("insert_head", "/ncp/profiles$", after_pages=1))
    result = extract_org(_client(sim, page_size=2), org.org_id, org.name, WINDOW, org_seq=0)
    assert result.profiles == 5
    assert [r.profile for r in result.rows] == [p for p, *_ in _expected(sim, org)]


def test_an_org_listing_that_changes_while_paged_loses_no_org(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=9)
    sim.add_fault(Fault("remove_head", r"^/v2/organizations$", after_pages=2, times=1))
    orgs = list_orgs(_client(sim, page_size=4))
    assert orgs == [OrgRef(o.org_id, o.name) for o in sim.dataset.orgs[1:]]  # not also missing orgs[8]


def test_a_usage_listing_that_never_holds_still_fails_the_org_naming_the_profile(rafay_sim_factory) -> None:
    sim = _one_profile(rafay_sim_factory, _usage_instances(12))
    sim.add_fault(Fault("remove_head", "/usage$", after_pages=1))
    with pytest.raises(RafayListingInconsistent) as info:
        extract_org(_client(sim, page_size=3), "org1", "Org One", DAY, org_seq=0, keep_rows=False)
    message = str(info.value)
    assert message.startswith("org org1 (Org One), profile p1: the usage listing of profile p1 in org org1")
    assert "on each of 3 read(s)" in message


def test_rows_name_the_raw_page_and_position_they_came_from(rafay_sim_factory) -> None:
    """Traceability (10f): source_page is the landed file's name, source_index the entry in its items."""
    instances = _usage_instances(5)
    profiles = [Profile("p/1 ü", "compute", 1, instances=instances), Profile("p2", "compute", None, instances=instances[:2])]
    sim = rafay_sim_factory(dataset=Dataset(orgs=[Org("org1", "Org One", profiles=profiles)]), max_page_size=2)
    sim.add_fault(Fault("insert_head", "p%2F1", org="org1", after_pages=1, times=1))
    landed: dict[str, bytes] = {}
    lock = threading.Lock()

    def land(kind: str, key: str, page_no: int, body: bytes) -> None:  # what the DAG's page writer does
        with lock:
            landed[page_file_name(kind, key, page_no)] = body

    result = extract_org(_client(sim), "org1", "Org One", DAY, org_seq=0, on_page=land, keep_rows=False)
    with result:
        buffer = io.StringIO(newline="")
        write_usage_csv(result.iter_rows(), buffer)
    rows = list(read_usage_csv(io.StringIO(buffer.getvalue(), newline="")))
    assert len(rows) == 7
    for row in rows:
        record = json.loads(landed[row.source_page])["instance_usage_data"][row.source_index]
        assert (record["instance_id"], record["start_time"], record["end_time"]) == (
            row.instance_id, row.record_start, row.record_end)
    assert rows[0].source_page.startswith("usage-p_1_") and rows[0].source_page.endswith("-page-0000.json")
    assert [(r.source_page, r.source_index) for r in rows[:3]] == [
        (page_file_name("usage", "p/1 ü", 0), 0), (page_file_name("usage", "p/1 ü", 0), 1),
        (page_file_name("usage", "p/1 ü", 1), 0),
    ]


def test_absurd_numbers_and_unloadable_text_become_invalid_or_clean_rows(rafay_sim_factory) -> None:
    """Defects 5/6 on the parse side: nothing here raises; what the database cannot hold is invalid usage."""
    start = DAY.start

    def inst(n: int, name: str, **overrides: object) -> Instance:
        return Instance(f"019c0000-0000-7000-8000-{600 + n:012d}", name, start, record_overrides=overrides)

    odd = [
        inst(0, "huge", raw_usage=RawNumber("1E+200000")),
        inst(1, "tiny", raw_usage=RawNumber("1E-20000")),
        inst(2, "big", raw_usage=RawNumber("1E+40")),
        inst(3, "gpus", parameters=[{"name": "GPU", "label_value": "3000000000", "raw_usage": 24}]),
        inst(4, "no-gpus", parameters=[{"name": "GPU", "label_value": "0", "raw_usage": 24}]),
        inst(5, "nul\x00name\ud800", status="run\x00ning"),
        inst(6, "long", raw_usage=RawNumber("9" * 5000)),
    ]
    sim = _one_profile(rafay_sim_factory, odd)
    rows = {r.instance: r for r in extract_org(_client(sim), "org1", "Org One", DAY, org_seq=0).rows}
    assert rows["huge"].usage_hours is None
    assert rows["huge"].invalid_reason == (
        "raw_usage 1E+200000 is beyond what the database's NUMERIC holds (more than 131072 digits before the point)")
    assert "more than 16383 digits after the point" in rows["tiny"].invalid_reason
    assert rows["big"].valid and rows["big"].usage_hours == Decimal("1E+40")
    assert rows["gpus"].gpu_count is None and rows["gpus"].usage_hours == 24
    assert rows["gpus"].invalid_reason == (
        "GPU count '3000000000' (label_value of the record's GPU parameter) is beyond a 32-bit integer "
        "(2147483647): not a real count")
    assert rows["no-gpus"].valid and rows["no-gpus"].gpu_count == 0
    assert rows["nul" "name\ufffd"].status == "running"
    assert rows["long"].valid and rows["long"].usage_hours == Decimal("9" * 5000)
    buffer = io.StringIO(newline="")
    write_usage_csv(rows.values(), buffer)
    text = buffer.getvalue()
    text.encode("utf-8")  # encodable: no lone surrogate left
    assert "\x00" not in text
    hours = [line["usage_hours"] for line in csv.DictReader(io.StringIO(text, newline=""))]
    assert "1" + "0" * 40 in hours and "9" * 5000 in hours  # exact, plain notation
    assert not any("E" in h or "e" in h for h in hours)


def test_a_spec_gpu_count_beyond_an_integer_is_invalid_usage(rafay_sim_factory) -> None:
    vm = Instance("019c0000-0000-7000-8000-000000000701", "vm", DAY.start)
    profile = Profile("p1", "compute", None, spec_variables=[{"name": "gpu", "value": "3000000000"}], instances=[vm])
    sim = rafay_sim_factory(dataset=Dataset(orgs=[Org("org1", "Org One", profiles=[profile])]))
    (row,) = extract_org(_client(sim), "org1", "Org One", DAY, org_seq=0).rows
    assert row.gpu_count is None and "GPU count '3000000000' (GPU variable of profile p1's spec)" in row.invalid_reason


_PG_TYPES = {"window_start": "timestamptz", "window_end": "timestamptz", "org_seq": "integer", "record_seq": "integer",
             "usage_hours": "numeric", "gpu_count": "integer", "source_index": "integer"}


def test_the_landed_csv_of_absurd_records_loads_into_postgresql(rafay_sim_factory, pg_conn) -> None:
    """Defect 6, parse side: every cell of the usage CSV fits the column types (numeric, integer, UTF-8 text)."""
    from rafay_billing.source.usage import USAGE_COLUMNS

    def inst(n: int, name: str, **overrides: object) -> Instance:
        return Instance(f"019c0000-0000-7000-8000-{800 + n:012d}", name, DAY.start, record_overrides=overrides)

    sim = _one_profile(rafay_sim_factory, [
        inst(0, "huge", raw_usage=RawNumber("1E+200000")),
        inst(1, "gpus", parameters=[{"name": "GPU", "label_value": "3000000000"}]),
        inst(2, "text\x00\udc80", status="\ud83d"),
        inst(3, "big", raw_usage=RawNumber("1E+40")),
        inst(4, "fine"),
    ])
    with extract_org(_client(sim), "org1", "Org One", DAY, org_seq=0, keep_rows=False) as result:
        buffer = io.StringIO(newline="")
        write_usage_csv(result.iter_rows(), buffer)
    columns = ", ".join(f"{c} {_PG_TYPES.get(c, 'text')}" for c in USAGE_COLUMNS)
    with pg_conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE landed ({columns})")
        with cur.copy("COPY landed FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')") as copy:
            copy.write(buffer.getvalue().encode("utf-8"))
        cur.execute("SELECT instance, usage_hours, gpu_count, invalid_reason IS NULL FROM landed ORDER BY record_seq")
        landed = cur.fetchall()
    assert [(name, hours, gpu, ok) for name, hours, gpu, ok in landed] == [
        ("huge", None, 1, False), ("gpus", Decimal(24), None, False), ("text\ufffd", Decimal(24), 1, True),
        ("big", Decimal("1E+40"), 1, True), ("fine", Decimal(24), 1, True),
    ]
