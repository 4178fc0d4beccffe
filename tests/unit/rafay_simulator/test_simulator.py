"""The Rafay API simulator over real loopback HTTP: shapes, auth, errors, paging, exact usage
arithmetic, data variety, fault injection, request log, TLS, admin endpoints and the CLI.

The fixtures come from ``rafay_simulator.pytest_plugin`` (loaded by tests/conftest.py); ``now`` is
pinned to 2026-11-27T00:00:00Z.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from rafay_simulator import (
    REMOVE,
    Dataset,
    Fault,
    Instance,
    Org,
    Profile,
    RafaySimulator,
    RawNumber,
    RequestRecord,
    usage_seconds,
    usage_segments,
)
from rafay_simulator.pytest_plugin import FIXED_NOW

PARTNER = "/apis/billing.envmgmt.io/v1/metrics/partner/instance/kind/{kind}/usage"
T = "%Y-%m-%dT%H:%M:%SZ"
V2_FULL_FIELDS = {
    "instance_name", "instance_id", "status", "usage_hours", "usage", "raw_usage",
    "start_time", "end_time", "created_at", "parameters",
}
PARTNER_FIELDS = [
    "instance_organization_id", "instance_organization_name", "instance_project_id", "instance_project_name",
    "profile_id", "profile_name", "instance_id", "instance_name", "created_at", "parameters", "usage",
    "raw_usage", "start_time", "end_time",
]


def ts(value: datetime) -> str:
    return value.strftime(T)


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, T).replace(tzinfo=UTC)


def session(sim: RafaySimulator) -> requests.Session:
    s = requests.Session()
    s.headers["x-api-key"] = sim.api_key
    return s


def get(sim: RafaySimulator, path: str, s: requests.Session | None = None, **params: Any) -> requests.Response:
    client = s or session(sim)
    return client.get(sim.url + path, params=params or None, timeout=10)


def jdec(response: requests.Response) -> Any:
    """Parse with exact decimals, like the pipeline does."""
    return json.loads(response.text, parse_float=Decimal)


def usage_path(org: str, profile: str) -> str:
    return f"/v2/organizations/{org}/ncp/profiles/{profile}/usage"


def v2_usage(sim: RafaySimulator, org: str, profile: str, start: datetime, end: datetime,
             s: requests.Session | None = None) -> list[dict[str, Any]]:
    r = get(sim, usage_path(org, profile), s, start_time=ts(start), end_time=ts(end))
    assert r.status_code == 200, r.text
    return jdec(r)["instance_usage_data"]


def partner_all(sim: RafaySimulator, kind: str, start: datetime, end: datetime, s: requests.Session | None = None,
                limit: int | None = None, **extra: str) -> list[dict[str, Any]]:
    """Every record of the partner API, following offset/limit paging."""
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        params: dict[str, Any] = {"range_from": ts(start), "range_to": ts(end), "offset": offset, **extra}
        if limit is not None:
            params["limit"] = limit
        body = jdec(get(sim, PARTNER.format(kind=kind), s, **params))
        out += body["instance_usage_data"]
        offset += body["limit"]
        if offset >= body["count"]:
            assert len(out) == body["count"]
            return out


def expected_instances(ds: Dataset, org: Org, profile: Profile, start: datetime, end: datetime,
                       now: datetime = FIXED_NOW) -> list[tuple[Instance, int]]:
    return [(i, s) for i in profile.instances if (s := usage_seconds(i, start, end, now)) > 0]


def hours(seconds: int) -> Decimal:
    return Decimal(seconds) / Decimal(3600)


DAY1 = datetime(2026, 11, 24, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)
OCT1 = datetime(2026, 10, 1, tzinfo=UTC)


# --- pure functions ----------------------------------------------------------------------------


def test_usage_seconds_is_the_clipped_overlap() -> None:
    inst = Instance("id", "vm", created_at=datetime(2026, 11, 1, 6, tzinfo=UTC), stopped_at=datetime(2026, 11, 3, tzinfo=UTC))
    day = datetime(2026, 11, 1, tzinfo=UTC)
    late = datetime(2027, 1, 1, tzinfo=UTC)
    assert usage_seconds(inst, day, day + timedelta(days=1), late) == 18 * 3600
    assert usage_seconds(inst, day + timedelta(days=1), day + timedelta(days=2), late) == 86400
    assert usage_seconds(inst, day + timedelta(days=3), day + timedelta(days=4), late) == 0  # after the stop
    assert usage_seconds(inst, day - timedelta(days=2), day - timedelta(days=1), late) == 0  # never negative
    # clipped to now, and now floored to the 9 s grid (06:00:17 -> 06:00:09 -> 9 s)
    assert usage_seconds(inst, day, day + timedelta(days=1), datetime(2026, 11, 1, 6, 0, 17, tzinfo=UTC)) == 9
    running = Instance("id2", "vm", created_at=day)
    assert usage_seconds(running, day, late, day + timedelta(hours=5)) == 5 * 3600
    deleted = Instance("id3", "vm", created_at=day, deleted_at=day + timedelta(hours=2))
    assert usage_seconds(deleted, day, late, late) == 7200
    assert deleted.status(late) == "deleted" and deleted.status(day + timedelta(hours=1)) == "running"


def test_generated_lifetimes_are_on_the_grid_and_in_range() -> None:
    ds = Dataset.generate(7, 30, (2, 6), (1, 8))
    count = 0
    for _org, _profile, inst in ds.iter_instances():
        count += 1
        for moment in (inst.created_at, inst.stopped_at, inst.deleted_at):
            if moment is not None:
                assert int(moment.timestamp()) % 9 == 0
                assert datetime(2026, 10, 1, tzinfo=UTC) <= moment <= datetime(2026, 12, 31, tzinfo=UTC)
    assert count > 100
    starts = {inst.created_at.time() for _o, _p, inst in ds.iter_instances()}
    assert any(t.hour or t.minute for t in starts)  # some start mid-day
    assert any(t == datetime.min.time() for t in starts)  # some at midnight


# --- shapes --------------------------------------------------------------------------------------


def test_org_listing_shape_and_name_variety(rafay_sim: RafaySimulator) -> None:
    assert rafay_sim.now() == FIXED_NOW and rafay_sim.url.startswith("http://127.0.0.1:")
    body = get(rafay_sim, "/v2/organizations").json()
    assert body["count"] == 30 == len(body["items"]) and body["offset"] == 0
    names = [item["name"] for item in body["items"]]
    ids = [item["metadata"]["name"] for item in body["items"]]
    assert all(re.fullmatch(r"[a-z0-9]{7}", i) for i in ids) and len(set(ids)) == 30
    assert ids == [o.org_id for o in rafay_sim.dataset.orgs]
    for wanted in ("Coke", "Acme Corp.", "O'Brien & Sons", "Zürich GPU, AG", "数据 Labs", '"Quoted" Co',
                   "=cmd|' /C calc'!A0", "../etc", "a/b"):
        assert wanted in names
    assert any(" " in n for n in names) and any("," in n for n in names) and any(not n.isascii() for n in names)


def test_profiles_shape_and_gpu_reporting_variants(rafay_sim: RafaySimulator) -> None:
    s = session(rafay_sim)
    kinds: Counter[str] = Counter()
    gpu_in_params = gpu_only_in_spec = gpu_nowhere = 0
    for org in rafay_sim.dataset.orgs:
        body = get(rafay_sim, f"/v2/organizations/{org.org_id}/ncp/profiles", s).json()
        assert [p["metadata"]["name"] for p in body["items"]] == [p.name for p in org.profiles]
        assert body["count"] == len(org.profiles)
        for item, profile in zip(body["items"], org.profiles, strict=True):
            assert item["spec"]["type"] in ("compute", "service")
            kinds[item["spec"]["type"]] += 1
            spec_gpu = [v for v in item["spec"]["variables"] if "gpu" in v["name"].lower()]
            if profile.gpu_param is not None:
                gpu_in_params += 1
            elif spec_gpu:
                gpu_only_in_spec += 1
            else:
                gpu_nowhere += 1
    assert kinds["compute"] and kinds["service"]
    assert gpu_in_params and gpu_only_in_spec and gpu_nowhere
    spec_names = {v["name"] for o in rafay_sim.dataset.orgs for p in o.profiles for v in p.spec_variables}
    assert {"gpu", "Guest GPU Count"} <= spec_names


def test_usage_gpu_parameter_present_or_absent(rafay_sim: RafaySimulator) -> None:
    records = partner_all(rafay_sim, "compute", OCT1, FIXED_NOW, limit=500)
    by_profile: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_profile.setdefault(rec["profile_name"], []).append(rec)
    with_gpu = by_profile["h100-8gpu-vm"][0]["parameters"]
    gpu = [p for p in with_gpu if p["name"] == "GPU"]
    assert gpu and gpu[0]["label_value"] == "8" and gpu[0]["is_label"] is True
    assert {p["name"] for p in with_gpu} >= {"GPU", "CPU", "Memory", "Disk"}
    assert all(p["name"] != "GPU" for p in by_profile["l40s-4gpu-vm"][0]["parameters"])  # GPU only in spec
    assert all(p["name"] != "GPU" for p in by_profile["cpu-general-vm"][0]["parameters"])  # no GPU at all


def test_v2_usage_records_match_the_dataset(rafay_sim: RafaySimulator) -> None:
    s = session(rafay_sim)
    start, end = datetime(2026, 11, 20, 12, tzinfo=UTC), FIXED_NOW
    seen = 0
    for org in rafay_sim.dataset.orgs[:10]:
        for profile in org.profiles:
            body = jdec(get(rafay_sim, usage_path(org.org_id, profile.name), s,
                            start_time=ts(start), end_time=ts(end)))
            expected = expected_instances(rafay_sim.dataset, org, profile, start, end)
            records = body["instance_usage_data"]
            assert body["count"] == len(records) == len(expected)
            for rec, (inst, secs) in zip(records, expected, strict=True):
                seen += 1
                assert set(rec) == V2_FULL_FIELDS
                assert rec["instance_id"] == inst.instance_id and rec["instance_name"] == inst.name
                assert Decimal(rec["raw_usage"]) == hours(secs)
                assert rec["status"] == inst.status(FIXED_NOW)
                assert rec["created_at"] == ts(inst.created_at)
                lo, hi = parse_ts(rec["start_time"]), parse_ts(rec["end_time"])
                assert start <= lo < hi <= end and (hi - lo).total_seconds() == secs
                assert lo == max(start, inst.created_at)
    assert seen > 20


def test_partner_usage_shape_filters_and_count(rafay_sim: RafaySimulator) -> None:
    ds = rafay_sim.dataset
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)
    r = get(rafay_sim, PARTNER.format(kind="service"), range_from=ts(start), range_to=ts(end))
    body = jdec(r)
    assert list(body) == ["kind", "partner_id", "organization_id", "instance_usage_data", "count", "offset",
                          "limit", "range_from", "range_to"]
    assert body["kind"] == "service" and body["limit"] == 10 and body["offset"] == 0
    assert body["range_from"] == ts(start) and body["range_to"] == ts(end)
    assert list(body["instance_usage_data"][0]) == PARTNER_FIELDS
    expected = sum(len(expected_instances(ds, o, p, start, end))
                   for o in ds.orgs for p in o.profiles if p.type == "service")
    assert body["count"] == expected > 10
    for kind in ("compute", "service"):
        records = partner_all(rafay_sim, kind, start, end)
        assert {r["profile_name"] for r in records} == {
            p.name for o in ds.orgs for p in o.profiles if p.type == kind
            and expected_instances(ds, o, p, start, end)}
        first = records[0]
        assert re.fullmatch(r"[a-z0-9]{7}", first["instance_project_id"])
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first["instance_id"])
    org = next(o for o in ds.orgs[3:] if sum(
        len(expected_instances(ds, o, p, start, end)) for p in o.profiles if p.type == "compute") > 1)
    filtered = partner_all(rafay_sim, "compute", start, end, instance_organization_id=org.org_id)
    assert filtered and {r["instance_organization_id"] for r in filtered} == {org.org_id}
    assert {r["instance_organization_name"] for r in filtered} == {org.name}
    assert len(filtered) == sum(len(expected_instances(ds, org, p, start, end)) for p in org.profiles
                                if p.type == "compute")


# --- auth and errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"x-api-key": ""}])
def test_bad_api_key_is_401_json(rafay_sim: RafaySimulator, headers: dict[str, str]) -> None:
    org = rafay_sim.dataset.orgs[0]
    for path in ("/v2/organizations", f"/v2/organizations/{org.org_id}/ncp/profiles",
                 PARTNER.format(kind="compute") + "?range_from=2026-11-01T00:00:00Z&range_to=2026-11-02T00:00:00Z",
                 "/_sim/stats"):
        r = requests.get(rafay_sim.url + path, headers=headers, timeout=10)
        assert r.status_code == 401
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["error"] == "unauthorized"
    api = [rec for rec in rafay_sim.requests]
    assert api and not any(rec.api_key_ok for rec in api)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"start_time": "2026-11-01T00:00:00Z"},
        {"end_time": "2026-11-02T00:00:00Z"},
        {"start_time": "2026-11-01T00:00:00", "end_time": "2026-11-02T00:00:00Z"},
        {"start_time": "2026-11-01T00:00:00+00:00", "end_time": "2026-11-02T00:00:00Z"},
        {"start_time": "2026-11-01T00:00:00.000Z", "end_time": "2026-11-02T00:00:00Z"},
        {"start_time": "2026-11-01", "end_time": "2026-11-02T00:00:00Z"},
        {"start_time": "2026-13-01T00:00:00Z", "end_time": "2026-11-02T00:00:00Z"},
        {"start_time": "2026-11-02T00:00:00Z", "end_time": "2026-11-02T00:00:00Z"},
        {"start_time": "2026-11-03T00:00:00Z", "end_time": "2026-11-02T00:00:00Z"},
    ],
)
def test_bad_windows_are_400_json(rafay_sim: RafaySimulator, params: dict[str, str]) -> None:
    org = rafay_sim.dataset.orgs[0]
    r = get(rafay_sim, usage_path(org.org_id, org.profiles[0].name), **params)
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    mapped = {{"start_time": "range_from", "end_time": "range_to"}[k]: v for k, v in params.items()}
    r = get(rafay_sim, PARTNER.format(kind="compute"), **mapped)
    assert r.status_code == 400 and r.json()["error"] == "bad_request"


def test_bad_kind_and_bad_paging_are_400(rafay_sim: RafaySimulator) -> None:
    window = {"range_from": "2026-11-01T00:00:00Z", "range_to": "2026-11-02T00:00:00Z"}
    assert get(rafay_sim, PARTNER.format(kind="gpu"), **window).status_code == 400
    for bad in ({"offset": "-1"}, {"offset": "x"}, {"limit": "0"}, {"limit": "-5"}, {"limit": "1.5"}, {"limit": "²"}):
        assert get(rafay_sim, "/v2/organizations", **bad).status_code == 400
        assert get(rafay_sim, PARTNER.format(kind="compute"), **window, **bad).status_code == 400
    r = session(rafay_sim).post(rafay_sim.url + "/v2/organizations", json={}, timeout=10)
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_unknown_org_profile_or_path_is_404_json(rafay_sim: RafaySimulator) -> None:
    org = rafay_sim.dataset.orgs[0]
    window = {"start_time": "2026-11-01T00:00:00Z", "end_time": "2026-11-02T00:00:00Z"}
    for path, params in [
        ("/v2/organizations/nosuchx/ncp/profiles", {}),
        (usage_path("nosuchx", org.profiles[0].name), window),
        (usage_path(org.org_id, "no-such-profile"), window),
        ("/v2/nothing-here", {}),
    ]:
        r = get(rafay_sim, path, **params)
        assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_path_segments_are_percent_decoded(rafay_sim_factory: Any) -> None:
    day = datetime(2026, 11, 2, tzinfo=UTC)
    odd = "gpu vm/ü #1"
    ds = Dataset([Org("abc1234", "Odd", [Profile(odd, "compute", None, [], [Instance("id-1", "vm", day)])])])
    sim = rafay_sim_factory(dataset=ds)
    encoded = quote(odd, safe="")
    assert "%2F" in encoded and "%20" in encoded
    r = get(sim, usage_path("abc1234", encoded), start_time=ts(day), end_time=ts(day + timedelta(days=1)))
    assert r.status_code == 200 and r.json()["instance_usage_data"][0]["raw_usage"] == 24
    r = get(sim, "/v2/organizations/abc1234/ncp/profiles")
    assert r.status_code == 200 and r.json()["items"][0]["metadata"]["name"] == odd
    assert sim.requests[0].path == usage_path("abc1234", encoded)  # the log keeps the raw path


# --- paging --------------------------------------------------------------------------------------


def collect(sim: RafaySimulator, path: str, key: str, limit: int | None, cap: int | None,
            **params: Any) -> list[Any]:
    s = session(sim)
    items: list[Any] = []
    offset = 0
    while True:
        query = {**params, "offset": offset, **({"limit": limit} if limit else {})}
        body = jdec(get(sim, path, s, **query))
        if limit is not None:
            assert body["limit"] == min(limit, cap or limit)
        page = body[key]
        assert len(page) <= body["limit"] or body["limit"] == 0
        items += page
        offset += body["limit"]
        if offset >= body["count"]:
            assert len(items) == body["count"]
            return items


@pytest.mark.parametrize("cap", [None, 3])
def test_paging_every_list_collects_the_full_set(rafay_sim_factory: Any, cap: int | None) -> None:
    sim = rafay_sim_factory(max_page_size=cap)
    ds = sim.dataset
    org = max(ds.orgs, key=lambda o: len(o.profiles))
    profile = max(org.profiles, key=lambda p: len(p.instances))
    window = {"start_time": ts(OCT1), "end_time": ts(FIXED_NOW)}
    pwindow = {"range_from": ts(DAY1), "range_to": ts(DAY3)}
    for limit in (None, 1, 4, 1000):
        orgs = collect(sim, "/v2/organizations", "items", limit, cap)
        assert [o["metadata"]["name"] for o in orgs] == [o.org_id for o in ds.orgs]
        profiles = collect(sim, f"/v2/organizations/{org.org_id}/ncp/profiles", "items", limit, cap)
        assert [p["metadata"]["name"] for p in profiles] == [p.name for p in org.profiles]
        usage = collect(sim, usage_path(org.org_id, profile.name), "instance_usage_data", limit, cap, **window)
        ids = [u["instance_id"] for u in usage]
        assert ids == [i.instance_id for i, _ in expected_instances(ds, org, profile, OCT1, FIXED_NOW)]
        assert len(ids) == len(set(ids)) > 1
        partner = collect(sim, PARTNER.format(kind="compute"), "instance_usage_data", limit, cap, **pwindow)
        pids = [u["instance_id"] for u in partner]
        assert len(pids) == len(set(pids)) == sum(
            len(expected_instances(ds, o, p, DAY1, DAY3)) for o in ds.orgs for p in o.profiles
            if p.type == "compute") > 20


def test_default_page_sizes(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory()
    body = get(sim, "/v2/organizations").json()
    assert len(body["items"]) == body["count"] == body["limit"] == 30  # v2: everything when no limit
    window = {"range_from": ts(OCT1), "range_to": ts(FIXED_NOW)}
    body = get(sim, PARTNER.format(kind="compute"), **window).json()
    assert body["limit"] == 10 == len(body["instance_usage_data"]) < body["count"]
    body = get(sim, "/v2/organizations", offset=29).json()
    assert [i["metadata"]["name"] for i in body["items"]] == [sim.dataset.orgs[29].org_id]
    assert get(sim, "/v2/organizations", offset=500).json()["items"] == []
    capped = rafay_sim_factory(v2_default_limit=7, max_page_size=5, partner_default_limit=25)
    body = get(capped, "/v2/organizations").json()
    assert body["limit"] == 5 == len(body["items"]) and body["count"] == 30
    assert get(capped, PARTNER.format(kind="compute"), **window).json()["limit"] == 5
    uncapped = rafay_sim_factory(v2_default_limit=7)
    assert len(get(uncapped, "/v2/organizations").json()["items"]) == 7


# --- usage arithmetic ----------------------------------------------------------------------------


def test_consecutive_days_add_up_exactly_for_every_instance(rafay_sim: RafaySimulator) -> None:
    """Partner API (all orgs, both kinds) and v2 (every org and profile): day1 + day2 == both days."""
    s = session(rafay_sim)

    def totals(start: datetime, end: datetime) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for kind in ("compute", "service"):
            for rec in partner_all(rafay_sim, kind, start, end, s, limit=1000):
                out[rec["instance_id"]] = rec["raw_usage"]
        return out

    d1, d2, both = totals(DAY1, DAY2), totals(DAY2, DAY3), totals(DAY1, DAY3)
    assert len(both) > 50
    for instance_id, value in both.items():
        assert d1.get(instance_id, Decimal(0)) + d2.get(instance_id, Decimal(0)) == value, instance_id
    assert set(d1) | set(d2) == set(both)
    assert any(isinstance(v, Decimal) and v != v.to_integral_value() for v in both.values())  # not all whole
    assert any(isinstance(v, int) for v in both.values())  # whole hours are written as JSON integers, e.g. 24

    checked = 0
    for org in rafay_sim.dataset.orgs:
        for profile in org.profiles:
            parts: dict[str, Decimal] = {}
            # windows that do not start at midnight, still on the 9 s grid
            cut = DAY1 + timedelta(hours=13, minutes=7, seconds=39)
            for a, b in ((DAY1, cut), (cut, DAY3)):
                for rec in v2_usage(rafay_sim, org.org_id, profile.name, a, b, s):
                    parts[rec["instance_id"]] = parts.get(rec["instance_id"], Decimal(0)) + rec["raw_usage"]
            whole = {r["instance_id"]: r["raw_usage"] for r in v2_usage(rafay_sim, org.org_id, profile.name, DAY1, DAY3, s)}
            assert parts == whole
            checked += len(whole)
    assert checked == len(both)


def test_usage_is_clipped_to_now(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory(now=datetime(2026, 11, 27, 0, 0, 5, tzinfo=UTC))  # floored to 00:00:00
    start, end = datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 29, tzinfo=UTC)
    records = partner_all(sim, "compute", start, end, limit=1000)
    assert records
    assert max(r["end_time"] for r in records) == "2026-11-27T00:00:00Z"
    assert all(r["raw_usage"] <= 24 for r in records)
    assert any(r["raw_usage"] == 24 for r in records)
    future = partner_all(sim, "compute", FIXED_NOW, end, limit=1000)
    assert future == []


def test_raw_usage_is_an_exact_decimal_and_usage_hours_rounds_half_up(rafay_sim_factory: Any) -> None:
    day = datetime(2026, 11, 2, tzinfo=UTC)
    instances = [
        Instance("01900000-0000-7000-8000-000000000001", "eighth", day, stopped_at=day + timedelta(seconds=450)),
        Instance("01900000-0000-7000-8000-000000000002", "blog", day, stopped_at=day + timedelta(seconds=74133)),
        Instance("01900000-0000-7000-8000-000000000003", "whole", day, stopped_at=day + timedelta(hours=3)),
    ]
    ds = Dataset([Org("abc1234", "Exact", [Profile("h100-8gpu-vm", "compute", 8, [], instances)])])
    sim = rafay_sim_factory(dataset=ds)
    r = get(sim, usage_path("abc1234", "h100-8gpu-vm"), start_time=ts(day), end_time=ts(day + timedelta(days=1)))
    raw_texts = re.findall(r'"raw_usage": ([^,}\]]+)', r.text)
    assert raw_texts[:1] == ["0.125"] and "20.5925" in raw_texts and "3" in raw_texts
    by_name = {rec["instance_name"]: rec for rec in jdec(r)["instance_usage_data"]}
    assert by_name["eighth"]["usage_hours"] == Decimal("0.13") and by_name["eighth"]["usage"] == "0.13h"
    assert by_name["blog"]["usage_hours"] == Decimal("20.59") and by_name["blog"]["usage"] == "20.59h"
    assert by_name["whole"]["raw_usage"] == 3 and by_name["whole"]["usage"] == "3.00h"
    # and across the generated data: at most 4 places, usage_hours = half-up(raw), usage = "%.2fh"
    for rec in partner_all(sim, "compute", day, day + timedelta(days=1)):
        raw = Decimal(rec["raw_usage"])
        assert -raw.as_tuple().exponent <= 4
        assert rec["usage"] == f"{raw.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}h"


def test_running_stopped_deleted_and_recreated(rafay_sim: RafaySimulator) -> None:
    ds = rafay_sim.dataset
    s = session(rafay_sim)
    statuses: Counter[str] = Counter()
    recreated = 0
    for org in ds.orgs:
        for profile in org.profiles:
            recs = v2_usage(rafay_sim, org.org_id, profile.name, OCT1, FIXED_NOW, s)
            for rec, (inst, _secs) in zip(recs, expected_instances(ds, org, profile, OCT1, FIXED_NOW), strict=True):
                assert rec["status"] == inst.status(FIXED_NOW)
                statuses[rec["status"]] += 1
            names = Counter(r["instance_name"] for r in recs)
            for name, n in names.items():
                if n > 1:
                    ids = {r["instance_id"] for r in recs if r["instance_name"] == name}
                    assert len(ids) == n
                    recreated += 1
    assert statuses["running"] and statuses["stopped"] and statuses["deleted"]
    assert recreated >= 1


def test_seed_fields_only_and_record_overrides(rafay_sim_factory: Any) -> None:
    day = datetime(2026, 11, 2, tzinfo=UTC)
    instances = [
        Instance("01900000-0000-7000-8000-00000000000a", "neg", day, record_overrides={"raw_usage": -3}),
        Instance("01900000-0000-7000-8000-00000000000b", "nan", day, record_overrides={"raw_usage": "abc"}),
        Instance("01900000-0000-7000-8000-00000000000c", "gone", day,
                 record_overrides={"usage_hours": REMOVE, "raw_usage": REMOVE}),
    ]
    ds = Dataset([Org("abc1234", "Odd", [Profile("openwebui", "service", None, [], instances)])])
    window = {"start_time": ts(day), "end_time": ts(day + timedelta(days=1))}
    full = rafay_sim_factory(dataset=ds)
    recs = {r["instance_name"]: r for r in get(full, usage_path("abc1234", "openwebui"), **window).json()["instance_usage_data"]}
    assert recs["neg"]["raw_usage"] == -3 and recs["nan"]["raw_usage"] == "abc"
    assert "usage_hours" not in recs["gone"] and "raw_usage" not in recs["gone"] and recs["gone"]["usage"] == "24.00h"
    seed = rafay_sim_factory(dataset=ds, seed_fields_only=True)
    recs = {r["instance_name"]: r for r in get(seed, usage_path("abc1234", "openwebui"), **window).json()["instance_usage_data"]}
    assert set(recs["neg"]) == {"instance_name", "usage_hours", "status"} == set(recs["nan"])
    assert recs["neg"]["usage_hours"] == 24
    assert set(recs["gone"]) == {"instance_name", "status"}
    generated = rafay_sim_factory(seed_fields_only=True)
    org = generated.dataset.orgs[0]
    for rec in get(generated, usage_path(org.org_id, org.profiles[0].name), start_time=ts(OCT1),
                   end_time=ts(FIXED_NOW)).json()["instance_usage_data"]:
        assert list(rec) == ["instance_name", "usage_hours", "status"]


def test_anomalies_option_adds_invalid_records() -> None:
    ds = Dataset.generate(7, 30, (2, 6), (1, 8), anomalies=True)
    overrides = [i.record_overrides for _o, _p, i in ds.iter_instances() if i.record_overrides]
    assert overrides and any(o.get("raw_usage") is REMOVE for o in overrides)
    assert not any(i.record_overrides for _o, _p, i in Dataset.generate(7).iter_instances())


def test_same_seed_gives_byte_identical_responses(rafay_sim_factory: Any) -> None:
    a, b, c = rafay_sim_factory(seed=11), rafay_sim_factory(seed=11), rafay_sim_factory(seed=12)

    def responses(sim: RafaySimulator) -> list[bytes]:
        org = sim.dataset.orgs[2]
        return [
            get(sim, "/v2/organizations").content,
            get(sim, f"/v2/organizations/{org.org_id}/ncp/profiles").content,
            get(sim, usage_path(org.org_id, org.profiles[0].name), start_time=ts(OCT1), end_time=ts(FIXED_NOW)).content,
            get(sim, PARTNER.format(kind="service"), range_from=ts(OCT1), range_to=ts(FIXED_NOW), limit=1000).content,
        ]

    assert responses(a) == responses(b)
    assert responses(a) != responses(c)


# --- faults --------------------------------------------------------------------------------------


def test_latency_fault_and_global_latency(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory(latency_ms=50)
    sim.add_fault(Fault("latency", path_regex=r"^/v2/organizations$", delay_ms=300, times=1))
    t0 = time.monotonic()
    assert get(sim, "/v2/organizations").status_code == 200
    assert time.monotonic() - t0 >= 0.35
    get(sim, "/v2/organizations")
    first, second = sim.requests
    assert first.duration_ms >= 350 and second.duration_ms >= 50
    assert sim.faults[0]["remaining"] == 0


def test_release_delays_answers_the_held_request_now_and_later_delays_run_in_full(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory()
    sim.add_fault(Fault("latency", path_regex=r"^/v2/organizations$", delay_ms=120_000, times=1))
    sim.add_fault(Fault("latency", path_regex=r"/profiles$", delay_ms=400, times=1))
    answers: list[int] = []
    held = threading.Thread(target=lambda: answers.append(get(sim, "/v2/organizations").status_code))
    t0 = time.monotonic()
    held.start()
    deadline = time.monotonic() + 10
    while sim.faults[0]["remaining"] != 0:  # the request is in its delay
        assert time.monotonic() < deadline, "the request never reached the simulator"
        time.sleep(0.02)
    assert held.is_alive()
    sim.release_delays()
    held.join(timeout=10)
    assert answers == [200] and time.monotonic() - t0 < 10  # answered in full, not cut, not after 120 s
    org = sim.dataset.orgs[0].org_id
    t1 = time.monotonic()
    assert get(sim, f"/v2/organizations/{org}/ncp/profiles").status_code == 200
    assert time.monotonic() - t1 >= 0.4  # a delay that starts after the release runs in full


def test_status_faults_429_retry_after_and_times(rafay_sim: RafaySimulator) -> None:
    http_date = format_datetime(datetime(2026, 11, 27, 0, 0, 30, tzinfo=UTC), usegmt=True)
    rafay_sim.add_fault(Fault("status", path_regex="/profiles$", status=429, retry_after="2", times=2))
    rafay_sim.add_fault(Fault("status", path_regex="/profiles$", status=429, retry_after=http_date, times=1))
    s = session(rafay_sim)
    path = f"/v2/organizations/{rafay_sim.dataset.orgs[0].org_id}/ncp/profiles"
    responses = [get(rafay_sim, path, s) for _ in range(4)]
    assert [r.status_code for r in responses] == [429, 429, 429, 200]
    assert [r.headers.get("Retry-After") for r in responses] == ["2", "2", http_date, None]
    assert responses[0].json()["error"] == "too_many_requests"
    assert get(rafay_sim, "/v2/organizations", s).status_code == 200  # path_regex did not match
    assert [r.status for r in rafay_sim.requests] == [429, 429, 429, 200, 200]


def test_5xx_html_gateway_page_and_json_error(rafay_sim: RafaySimulator) -> None:
    rafay_sim.add_fault(Fault("status", status=502, html=True, times=1))
    rafay_sim.add_fault(Fault("status", status=503, times=1))
    r = get(rafay_sim, "/v2/organizations")
    assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
    assert "<html>" in r.text and "502 Bad Gateway" in r.text
    r = get(rafay_sim, "/v2/organizations")
    assert r.status_code == 503 and r.json()["error"] == "service_unavailable"
    assert get(rafay_sim, "/v2/organizations").status_code == 200


def test_fault_targets_one_org_in_both_api_families(rafay_sim: RafaySimulator) -> None:
    target, other = rafay_sim.dataset.orgs[1].org_id, rafay_sim.dataset.orgs[2].org_id
    rafay_sim.add_fault(Fault("status", status=500, org=target))
    assert get(rafay_sim, f"/v2/organizations/{target}/ncp/profiles").status_code == 500
    assert get(rafay_sim, f"/v2/organizations/{other}/ncp/profiles").status_code == 200
    assert get(rafay_sim, "/v2/organizations").status_code == 200
    window = {"range_from": ts(OCT1), "range_to": ts(FIXED_NOW)}
    assert get(rafay_sim, PARTNER.format(kind="compute"), instance_organization_id=target, **window).status_code == 500
    assert get(rafay_sim, PARTNER.format(kind="compute"), instance_organization_id=other, **window).status_code == 200
    rafay_sim.clear_faults()
    assert get(rafay_sim, f"/v2/organizations/{target}/ncp/profiles").status_code == 200


def test_malformed_json_fault(rafay_sim: RafaySimulator) -> None:
    rafay_sim.add_fault(Fault("malformed_json", path_regex="organizations", times=1))
    r = get(rafay_sim, "/v2/organizations")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        r.json()
    assert get(rafay_sim, "/v2/organizations").json()["count"] == 30


def test_slow_fault_causes_read_timeout_and_server_survives(rafay_sim: RafaySimulator) -> None:
    rafay_sim.add_fault(Fault("slow", delay_ms=1200, times=1))
    t0 = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.get(rafay_sim.url + "/v2/organizations", headers={"x-api-key": rafay_sim.api_key}, timeout=0.3)
    assert time.monotonic() - t0 >= 0.3
    assert get(rafay_sim, "/v2/organizations").status_code == 200
    deadline = time.monotonic() + 5
    while len(rafay_sim.requests) < 2 and time.monotonic() < deadline:  # the slow one finishes later
        time.sleep(0.05)
    slow = rafay_sim.requests[-1]
    assert slow.duration_ms >= 1200


def test_drop_fault_closes_the_connection(rafay_sim: RafaySimulator) -> None:
    rafay_sim.add_fault(Fault("drop", path_regex="organizations$", times=1))
    s = session(rafay_sim)
    with pytest.raises(requests.ConnectionError):
        get(rafay_sim, "/v2/organizations", s)
    assert get(rafay_sim, "/v2/organizations", s).status_code == 200
    dropped, ok = rafay_sim.requests
    assert dropped.status == 0 and ok.status == 200 and dropped.connection_id != ok.connection_id


def test_fault_validation() -> None:
    with pytest.raises(ValueError):
        Fault("explode")
    with pytest.raises(ValueError, match="after_pages"):
        Fault("insert_head", after_pages=0)


# --- listings that change while they are paged -------------------------------------------------------


def page_by_page(sim: RafaySimulator, path: str, key: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Page the way a trusting client does: offset += items received, until ``count`` is reached."""
    s = session(sim)
    replies: list[dict[str, Any]] = []
    offset = 0
    while True:
        body = jdec(get(sim, path, s, offset=offset, limit=limit, **params))
        replies.append(body)
        offset += len(body[key])
        if not body[key] or offset >= body["count"]:
            return replies


def _names(replies: list[dict[str, Any]], key: str, field: str) -> list[str]:
    return [item[field] for body in replies for item in body[key]]


def test_insert_head_after_a_page_shifts_the_listing_then_holds_still(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory(orgs=7)
    ids = [o.org_id for o in sim.dataset.orgs]
    sim.add_fault(Fault("insert_head", r"^/v2/organizations$", after_pages=1))
    first = page_by_page(sim, "/v2/organizations", "items", 3)
    got = [i["metadata"]["name"] for body in first for i in body["items"]]
    assert [b["count"] for b in first] == [6, 7, 7]
    assert got == ids[1:4] + ids[3:]  # ids[3] twice, ids[0] (inserted at the head) never
    again = page_by_page(sim, "/v2/organizations", "items", 3)
    assert [i["metadata"]["name"] for body in again for i in body["items"]] == ids
    assert {b["count"] for b in again} == {7}


def test_remove_head_after_k_pages_skips_a_record(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(6, 6))
    org = sim.dataset.orgs[0]
    names = [p.name for p in org.profiles]
    path = f"/v2/organizations/{org.org_id}/ncp/profiles"
    sim.add_fault(Fault("remove_head", "/ncp/profiles$", after_pages=2, times=1))
    first = page_by_page(sim, path, "items", 2)
    assert [b["count"] for b in first] == [6, 6, 5]
    assert [i["metadata"]["name"] for b in first for i in b["items"]] == names[:4] + names[5:]  # names[4] skipped
    again = page_by_page(sim, path, "items", 2)
    assert [i["metadata"]["name"] for b in again for i in b["items"]] == names[1:]


def test_listing_changes_apply_per_listing_to_usage_and_can_go_on(rafay_sim_factory: Any) -> None:
    instances = [Instance(f"019c0000-0000-7000-8000-00000000000{i}", f"vm-{i}", DAY1) for i in range(6)]
    ds = Dataset([Org("org1", "One", [Profile("p1", "compute", 1, instances=instances),
                                      Profile("p2", "compute", 1, instances=instances[:3])])])
    sim = rafay_sim_factory(dataset=ds)
    sim.add_fault(Fault("remove_head", "/usage$", org="org1"))  # after every page, forever
    window = {"start_time": ts(DAY1), "end_time": ts(DAY2)}
    p1 = page_by_page(sim, usage_path("org1", "p1"), "instance_usage_data", 2, **window)
    assert [b["count"] for b in p1] == [6, 5, 4]  # the third page, offset 4 of 4 records, is empty
    assert _names(p1, "instance_usage_data", "instance_name") == ["vm-0", "vm-1", "vm-3", "vm-4"]
    p2 = page_by_page(sim, usage_path("org1", "p2"), "instance_usage_data", 1, **window)
    assert [b["count"] for b in p2] == [3, 2]  # its own listing: changes start from its own first page
    assert _names(p2, "instance_usage_data", "instance_name") == ["vm-0", "vm-2"]
    assert sim.faults[0]["kind"] == "remove_head"


def test_listing_change_faults_can_be_posted_to_a_remote_simulator(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory(orgs=4)
    r = session(sim).post(sim.url + "/_sim/faults", timeout=10, json=[
        {"kind": "insert_head", "path_regex": "^/v2/organizations$", "times": 2, "after_pages": 1}])
    assert r.status_code == 200
    replies = page_by_page(sim, "/v2/organizations", "items", 1)
    assert [b["count"] for b in replies[:3]] == [2, 3, 4]


# --- paging variants of real servers ---------------------------------------------------------------


def test_capped_pages_echoing_the_requested_limit_without_count(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory(orgs=12, max_page_size=5, echo_requested_limit=True, omit_count=True)
    body = get(sim, "/v2/organizations", offset=0, limit=10).json()
    assert "count" not in body and body["limit"] == 10 and body["offset"] == 0 and len(body["items"]) == 5
    assert len(get(sim, "/v2/organizations", offset=10, limit=10).json()["items"]) == 2
    assert get(sim, "/v2/organizations", offset=12, limit=10).json()["items"] == []
    plain = rafay_sim_factory(orgs=12, max_page_size=5)
    assert get(plain, "/v2/organizations", offset=0, limit=10).json()["limit"] == 5


def test_partner_listing_changes_can_target_one_org(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory(orgs=6)
    org = sim.dataset.orgs[1].org_id
    sim.add_fault(Fault("remove_head", "/kind/compute/usage$", org=org, times=1))
    path = PARTNER.format(kind="compute")
    window = {"range_from": ts(OCT1), "range_to": ts(FIXED_NOW)}
    everyone = [get(sim, path, **window).json()["count"] for _ in range(2)]
    assert everyone[0] == everyone[1]  # the fault is for one org's listing only
    one = [get(sim, path, instance_organization_id=org, **window).json()["count"] for _ in range(3)]
    assert one[0] - 1 == one[1] == one[2]


def test_cli_flags_for_the_paging_variants() -> None:
    from rafay_simulator.__main__ import parse_args

    args = parse_args(["--omit-count", "--echo-requested-limit", "--ignore-paging", "--omit-paging-fields"])
    assert (args.omit_count, args.echo_requested_limit, args.ignore_paging, args.omit_paging_fields) == (
        True, True, True, True)
    assert not parse_args([]).omit_count and not parse_args([]).omit_paging_fields


def test_omit_paging_fields_pages_as_asked_without_saying_so(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory(orgs=9, omit_paging_fields=True, max_page_size=2)
    first = get(sim, "/v2/organizations", offset=0, limit=3)
    second = get(sim, "/v2/organizations", offset=2, limit=3)
    assert set(first.json()) == {"items"} and len(first.json()["items"]) == 2
    assert first.json()["items"][1] != second.json()["items"][0] and len(second.json()["items"]) == 2


def test_ignore_paging_answers_like_a_seed_era_server(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory(orgs=9, ignore_paging=True, max_page_size=2)
    first = get(sim, "/v2/organizations", offset=0, limit=3)
    again = get(sim, "/v2/organizations", offset=3, limit=3)
    assert set(first.json()) == {"items"} and len(first.json()["items"]) == 9
    assert again.content == first.content


# --- records billing must get right -------------------------------------------------------------


def test_segmented_instance_is_listed_once_per_running_segment(rafay_sim_factory: Any) -> None:
    stop_start = Instance(
        "019c0000-0000-7000-8000-0000000000aa", "vm-ss", DAY1,
        segments=((DAY1 + timedelta(hours=2), DAY1 + timedelta(hours=7)),
                  (DAY1 + timedelta(hours=10), DAY1 + timedelta(hours=17))),
    )
    ds = Dataset([Org("org1", "One", [Profile("p1", "compute", 1, instances=[stop_start])])])
    sim = rafay_sim_factory(dataset=ds)
    records = v2_usage(sim, "org1", "p1", DAY1, DAY2)
    assert [(r["instance_id"], r["raw_usage"], r["start_time"], r["end_time"]) for r in records] == [
        (stop_start.instance_id, 5, "2026-11-24T02:00:00Z", "2026-11-24T07:00:00Z"),
        (stop_start.instance_id, 7, "2026-11-24T10:00:00Z", "2026-11-24T17:00:00Z"),
    ]
    assert usage_seconds(stop_start, DAY1, DAY2, FIXED_NOW) == 12 * 3600
    assert usage_segments(stop_start, DAY1 + timedelta(hours=5), DAY2, FIXED_NOW)[0][0] == DAY1 + timedelta(hours=5)
    partner = partner_all(sim, "compute", DAY1, DAY2)
    assert [r["raw_usage"] for r in partner] == [5, 7]
    with pytest.raises(ValueError, match="overlap"):
        Instance("x", "x", DAY1, segments=((DAY1, DAY2), (DAY1 + timedelta(hours=1), DAY3)))


def test_copies_are_exact_duplicate_records(rafay_sim_factory: Any) -> None:
    twice = Instance("019c0000-0000-7000-8000-0000000000bb", "vm-2x", DAY1, copies=2)
    ds = Dataset([Org("org1", "One", [Profile("p1", "compute", 1, instances=[twice, Instance("i2", "vm", DAY1)])])])
    sim = rafay_sim_factory(dataset=ds, max_page_size=1)
    records = v2_usage(sim, "org1", "p1", DAY1, DAY2)
    assert len(records) == 1
    body = get(sim, usage_path("org1", "p1"), start_time=ts(DAY1), end_time=ts(DAY2), offset=1).json()
    assert body["count"] == 3 and body["instance_usage_data"] == json.loads(json.dumps(records))


def test_absurd_numbers_are_sent_as_literals(rafay_sim_factory: Any) -> None:
    huge = Instance("019c0000-0000-7000-8000-0000000000c1", "huge", DAY1,
                    record_overrides={"raw_usage": RawNumber("1E+200000")})
    big = Instance("019c0000-0000-7000-8000-0000000000c2", "big", DAY1,
                   record_overrides={"raw_usage": RawNumber("1E+40"), "usage_hours": RawNumber("-0.5e-3")})
    gpus = Profile("p1", "compute", 3_000_000_000, spec_variables=[{"name": "gpu", "value": "3000000000"}],
                   instances=[huge, big])
    sim = rafay_sim_factory(dataset=Dataset([Org("org1", "One", [gpus])]))
    text = get(sim, usage_path("org1", "p1"), start_time=ts(DAY1), end_time=ts(DAY2)).text
    assert '"raw_usage": 1E+200000,' in text and '"raw_usage": 1E+40,' in text and '"usage_hours": -0.5e-3' in text
    assert '"label_value": "3000000000"' in text
    assert '"value": "3000000000"' in get(sim, "/v2/organizations/org1/ncp/profiles").text
    with pytest.raises(ValueError, match="JSON number"):
        RawNumber("1e")


# --- request log, connections, concurrency --------------------------------------------------------


def test_request_log_and_connection_reuse(rafay_sim: RafaySimulator) -> None:
    s = session(rafay_sim)
    org = rafay_sim.dataset.orgs[0].org_id
    for _ in range(3):
        get(rafay_sim, "/v2/organizations", s)
    get(rafay_sim, f"/v2/organizations/{org}/ncp/profiles", s, limit=2)
    requests.get(rafay_sim.url + "/v2/organizations", headers={"x-api-key": "bad"}, timeout=10)
    log = rafay_sim.requests
    assert len(log) == 5 and all(isinstance(r, RequestRecord) for r in log)
    assert len({r.connection_id for r in log[:4]}) == 1  # the session kept one connection
    assert log[4].connection_id != log[0].connection_id and rafay_sim.connections_opened == 2
    assert log[3].path == f"/v2/organizations/{org}/ncp/profiles" and log[3].query == {"limit": "2"}
    assert [r.api_key_ok for r in log] == [True] * 4 + [False] and log[4].status == 401
    assert all(r.method == "GET" and r.duration_ms >= 0 for r in log)
    assert [r.started_at for r in log] == sorted(r.started_at for r in log)
    assert rafay_sim.api_key not in repr(log)
    rafay_sim.reset_stats()
    assert rafay_sim.requests == [] and rafay_sim.connections_opened == 0


def test_max_in_flight_under_concurrency(rafay_sim: RafaySimulator) -> None:
    rafay_sim.add_fault(Fault("latency", delay_ms=600))
    barrier = threading.Barrier(5)
    codes: list[int] = []

    def call() -> None:
        barrier.wait()
        codes.append(get(rafay_sim, "/v2/organizations").status_code)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert codes == [200] * 5
    assert rafay_sim.max_in_flight >= 3
    assert rafay_sim.connections_opened == 5
    rafay_sim.reset_stats()
    assert rafay_sim.max_in_flight == 0


# --- TLS, admin, CLI ------------------------------------------------------------------------------


def test_tls_with_generated_ca_bundle(rafay_sim_factory: Any) -> None:
    sim = rafay_sim_factory(tls=True)
    assert sim.url.startswith("https://127.0.0.1:") and sim.ca_bundle and Path(sim.ca_bundle).is_file()
    r = requests.get(sim.url + "/v2/organizations", headers={"x-api-key": sim.api_key}, verify=sim.ca_bundle,
                     timeout=10)
    assert r.status_code == 200 and r.json()["count"] == 30
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(sim.url + "/v2/organizations", headers={"x-api-key": sim.api_key}, timeout=10)
    s = session(sim)
    for _ in range(3):  # verify= per request: REQUESTS_CA_BUNDLE in the environment would override s.verify
        assert s.get(sim.url + "/v2/organizations", verify=sim.ca_bundle, timeout=10).status_code == 200
    assert len({r.connection_id for r in sim.requests[-3:]}) == 1
    bundle = sim.ca_bundle
    sim.stop()
    assert not Path(bundle).exists()
    assert rafay_sim_factory().ca_bundle is None


def test_admin_endpoints(rafay_sim: RafaySimulator) -> None:
    s = session(rafay_sim)
    url = rafay_sim.url
    faults = [{"kind": "status", "status": 429, "retry_after": "1", "times": 1, "path_regex": "^/v2/organizations$"}]
    r = s.post(url + "/_sim/faults", json=faults, timeout=10)
    assert r.status_code == 200 and r.json() == {"faults": 1}
    assert s.get(url + "/_sim/faults", timeout=10).json()[0]["remaining"] == 1
    assert s.get(url + "/v2/organizations", timeout=10).status_code == 429
    assert s.get(url + "/v2/organizations", timeout=10).status_code == 200
    assert s.post(url + "/_sim/faults", json=[{"kind": "nope"}], timeout=10).status_code == 400
    s.post(url + "/_sim/faults", json={"kind": "status", "status": 500}, timeout=10)
    assert s.get(url + "/v2/organizations", timeout=10).status_code == 500
    assert s.delete(url + "/_sim/faults", timeout=10).json() == {"faults": 0}
    assert s.get(url + "/v2/organizations", timeout=10).status_code == 200
    log = s.get(url + "/_sim/requests", timeout=10).json()
    assert [e["status"] for e in log] == [429, 200, 500, 200]  # admin calls are not logged
    assert set(log[0]) == {"method", "path", "query", "status", "duration_ms", "connection_id", "started_at",
                           "api_key_ok"}
    stats = s.get(url + "/_sim/stats", timeout=10).json()
    assert stats == {"max_in_flight": 1, "connections_opened": 1, "requests": 4}
    assert s.post(url + "/_sim/reset", timeout=10).status_code == 200
    assert s.get(url + "/_sim/stats", timeout=10).json()["requests"] == 0
    assert requests.delete(url + "/_sim/faults", timeout=10).status_code == 401


def test_cli_runs_until_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rafay_simulator", "--port", "0", "--orgs", "3", "--profiles-per-org", "2-3",
         "--api-key", "cli-key", "--now", "2026-11-27T00:00:00Z", "--ready-file", str(ready)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"Rafay simulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        url = match.group(1)
        assert ready.read_text().strip() == url
        r = requests.get(url + "/v2/organizations", headers={"x-api-key": "cli-key"}, timeout=10)
        assert r.status_code == 200 and r.json()["count"] == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_flags_for_a_partner_only_console_and_listing_ids() -> None:
    from rafay_simulator.__main__ import parse_args

    args = parse_args(["--apis", "partner", "--org-listing-ids"])
    assert (args.apis, args.org_listing_ids) == (("partner",), True)
    assert parse_args([]).apis == ("v2", "partner") and not parse_args([]).org_listing_ids
    with pytest.raises(SystemExit):
        parse_args(["--apis", "v3"])


def test_the_partner_api_reports_an_orgs_partner_name_when_it_differs(rafay_sim_factory: Any) -> None:
    """``Org.partner_name``: the partner API's display name of an org (a rename, other case or spaces)."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    dataset = Dataset([Org("coke", "Coke", [Profile("vm", "compute", None, [], [Instance("i-1", "vm-1", start)])],
                           uid="c1", partner_name=" coca-cola ")])
    sim = rafay_sim_factory(dataset=dataset)
    window = {"range_from": "2026-11-10T00:00:00Z", "range_to": "2026-11-11T00:00:00Z"}
    [record] = get(sim, "/apis/billing.envmgmt.io/v1/metrics/partner/instance/kind/compute/usage",
                   **window).json()["instance_usage_data"]
    assert record["instance_organization_name"] == " coca-cola "
    assert get(sim, "/v2/organizations").json()["items"][0]["name"] == "Coke"
