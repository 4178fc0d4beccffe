"""Golden usage rows: what normalisation and extraction produced before the CPU work of issue 14.

Why: the extraction's per-record path was rewritten for speed (memoised parameters, profile
constants built once, tuple rows). Every row must stay identical, to the type and the text of each
value, so the rows of two fixed inputs are kept here as they came out of the code before that work:

- ``EDGE_PAGES``: hand-made usage pages (JSON text, parsed as the client parses) with every odd
  value the rules handle: labels numeric and not, names repeated in any case, ``is_label`` as
  text, GPU counts beyond an integer, numbers beyond NUMERIC, NUL and lone surrogates, a record
  repeated on a page, missing fields;
- a shape-(c)-like extraction from the simulator (with anomalies, dimensions and labels, several
  pages), compared row by row through a digest of each row's ``repr``.

``python -m tests.support.golden_usage`` rewrites the golden files from the code as it is: only do
that for a deliberate change of the rows, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rafay_billing.source.usage import UsageRow, row_values
from rafay_billing.window import Window

DATA = Path(__file__).resolve().parents[1] / "data"
EDGE_GOLDEN = DATA / "golden_edge_rows.txt"
SIM_GOLDEN = DATA / "golden_sim_rows.txt"

WINDOW = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC))
SIM_CONFIG: dict[str, Any] = {
    "seed": 14, "orgs": 1, "profiles_per_org": (3, 3), "instances_per_profile": (250, 250),
    "max_page_size": 100, "anomalies": True,
}
"""The simulator's shape-(c)-like tenant: one org, every record with parameters, pages of 100."""

PROFILE_ITEMS: list[dict[str, Any]] = [
    {"metadata": {"name": "h100-8gpu-vm"}, "spec": {"type": "compute", "variables": [{"name": "gpu", "value": "8"}]}},
    {"metadata": {"name": "pod\x00x"}, "spec": {"type": "service"}},
    {"metadata": {"name": "big-gpu"}, "spec": {"type": "compute", "variables": [{"name": "GPU Count", "value": "1e40"}]}},
    {},
]


def _p(name: Any, usage: Any = "20.59h", raw: Any = "20.594723", is_label: Any = True, value: Any = None) -> str:
    """A parameter as JSON text (numbers given as text stay JSON numbers)."""
    fields = [f'"name": {json.dumps(name)}', f'"usage": {json.dumps(usage)}', f'"is_label": {json.dumps(is_label)}']
    if raw is not None:
        fields.append(f'"raw_usage": {raw}')
    if value is not None:
        fields.append(f'"label_value": {value}')
    return "{" + ", ".join(fields) + "}"


_FULL = ", ".join([
    _p("GPU", value='"8"'), _p("CPU", value='"96"'), _p("Memory", value="1024"), _p("Contract ID", value='"C-1"'),
    _p("Disk", usage="973000.00h", raw="973000", is_label=False),
])

_RECORDS: list[str] = [
    # the simulator's usual record
    '{"instance_name": "vm-a", "instance_id": "i-1", "status": "running", "usage_hours": 486.5, "usage": "486.50h",'
    ' "raw_usage": 486.5, "start_time": "2026-11-06T00:00:00Z", "end_time": "2026-11-26T06:30:00Z",'
    f' "parameters": [{_FULL}]}}',
    # the same instance again, other times; trailing zeros kept as the API wrote them
    '{"instance_name": "vm-a", "instance_id": "i-1", "status": "running", "usage_hours": 2.50, "raw_usage": 2.500,'
    ' "start_time": "2026-11-26T07:00:00Z", "end_time": "", "parameters": ['
    + ", ".join([_p("gpu", value='"8"'), _p("Contract ID", value='"C-2"'), _p("Client ID", value='"K"')]) + "]}",
    # names repeated in any case, non-objects, no name, empty name, is_label as text, odd label values
    '{"instance_name": "vm-b", "instance_id": "i-2", "raw_usage": 3, "parameters": ['
    + ", ".join([
        _p("CPU", value='"24"'), _p("cpu", value='"48"'), _p(" Memory ", value='"-8"'), _p("Disk", raw='"abc"', value='"100"'),
        '"not a parameter"', '{"usage": "1h"}', _p("   ", value='"1"'), _p(5, value='"1"'),
        _p("Net", is_label="false", raw="-1"), _p("Logs", raw=None, usage="384h", is_label="true", value="2"),
        _p("Scratch", raw=None, usage="1200h", is_label=False), _p("Flag", is_label="yes", value='""'),
        _p("Zone", is_label=1, value='"eu-\\u00e9"'), _p("ServiceID", value='"6c9d0e4f-aa"'),
        _p("contract id", value='"dup"'), _p("Nul\x00Name", value='"x\\u0000y"'), _p("Sur", value='"\\ud800z"'),
        _p("Huge", value="1e40"), _p("Long", value='"123456789012345"', raw="0.123456789012345678901"),
        _p("Nothing", raw=None, usage=None), _p("Neg", is_label=False, raw="-0.5"), _p("Zero", is_label=0, raw="0E-20000"),
        _p("Bool", is_label=True, value="true"), _p("List", is_label=True, value="[1, 2]"), _p("Obj", value='{"a": 1}'),
        _p("Tiny", value='"1e-999"'), _p("HugeUsage", is_label=False, raw="1e200000"),
    ])
    + "]}",
    # GPU count from the record, beyond an integer, not a count; bad hours in each field
    '{"instance_name": "vm-c", "instance_id": "i-3", "raw_usage": -3, "usage_hours": -3, "usage": "-3.00h",'
    ' "parameters": [' + _p("GPU", value='"99999999999"') + "]}",
    '{"instance_name": "vm-d", "instance_id": "i-4", "raw_usage": "abc", "parameters": [' + _p("GPU", value='"x"') + "]}",
    '{"instance_name": "vm-e", "instance_id": "i-5", "usage": "abch", "parameters": [' + _p("Gpu", value="8.0") + "]}",
    '{"instance_name": "vm-f", "instance_id": "i-6", "parameters": [' + _p("GPU", value="-1") + "]}",
    '{"instance_name": "vm-g", "instance_id": "i-7", "raw_usage": 1e200000, "parameters": [' + _p("GPU", value='"1e40"') + "]}",
    '{"instance_name": "vm-h", "instance_id": "i-8", "usage": " 3.5 H ", "parameters": "none"}',
    '{"instance_name": "vm-i", "instance_id": "", "usage_hours": "7", "parameters": null}',
    '{"instance_name": 42, "instance_id": 1234, "status": 3, "usage_hours": 0.000000000000000000001,'
    ' "start_time": 17, "end_time": null}',
    '{"instance_id": "i-9", "status": null, "raw_usage": 0.' + "0" * 20000 + '1}',
    '{"instance_name": "trail", "instance_id": "i-10", "raw_usage": 1.' + "0" * 20000 + "}",
    '{"instance_name": "nul\\u0000name", "instance_id": "i-\\ud800", "status": "st\\u0000", "raw_usage": NaN,'
    ' "usage_hours": Infinity}',
    '{"instance_name": "long-int", "instance_id": "i-11", "raw_usage": ' + "9" * 4100 + "}",
    '{"instance_name": "longer-int", "instance_id": "i-12", "raw_usage": ' + "7" * 5000 + "}",
    '{"instance_name": "float-gpu", "instance_id": "i-13", "raw_usage": 1.5e3, "usage_hours": 1E+2,'
    ' "parameters": [' + _p("GPU", value="2.5") + ", " + _p("CPU", is_label=None, raw="2") + "]}",
    '{"instance_name": "vm-a", "instance_id": "i-1", "status": "running", "usage_hours": 486.5, "usage": "486.50h",'
    ' "raw_usage": 486.5, "start_time": "2026-11-06T00:00:00Z", "end_time": "2026-11-26T06:30:00Z",'
    f' "parameters": [{_FULL}]}}',  # an exact duplicate of the first record (kept once by extract_org)
    '{}',
]

_FIRST = 10  # the first page ends with the exact duplicate of its first record
_PAGE_ORDER = [*_RECORDS[:9], _RECORDS[-2], *_RECORDS[9:-2], _RECORDS[-1]]
EDGE_PAGES: list[str] = [
    '{"instance_usage_data": [' + ", ".join(_PAGE_ORDER[:_FIRST]) + f'], "count": {len(_PAGE_ORDER)}, "offset": 0}}',
    '{"instance_usage_data": [' + ", ".join(_PAGE_ORDER[_FIRST:])
    + f'], "count": {len(_PAGE_ORDER)}, "offset": {_FIRST}}}',
]


def row_line(row: UsageRow) -> str:
    """A row as one line: the ``repr`` of its values (types, Decimal text and dict order all show)."""
    return repr(row_values(row))


def digest_lines(rows: Iterable[UsageRow]) -> list[str]:
    """One short digest per row, in order (the golden for the simulator's rows)."""
    return [hashlib.sha256(row_line(r).encode("utf-8", "surrogatepass")).hexdigest()[:20] for r in rows]


def edge_rows() -> list[UsageRow]:
    """The edge pages through the pager and ``normalize_record``, once per profile of ``PROFILE_ITEMS``."""
    from rafay_billing.source.client.core import decode_json
    from rafay_billing.source.client.paging import Listing, Pager
    from rafay_billing.source.usage import ProfileRef, normalize_record

    listing = Listing("usage", "p", "/usage", "instance_usage_data", "the edge pages")

    def fetch(path: str, query: dict[str, Any]) -> tuple[Any, bytes]:
        body = EDGE_PAGES[0 if query["offset"] == 0 else 1].encode("utf-8", "surrogatepass")
        return decode_json(body), body

    rows = []
    pager = Pager(fetch=fetch, page_size=_FIRST, max_pages=10, listing_reads=1, count_page=lambda: None)
    entries = list(pager.entries(listing))
    for seq, item in enumerate(PROFILE_ITEMS):
        profile = ProfileRef.from_item(item)
        for entry in entries:
            rows.append(normalize_record(
                entry.item, window=WINDOW, org_id="org\x00", organization="Org \ud800", org_seq=seq, record_seq=seq,
                profile=profile, source_page=f"usage-{entry.page_no}.json", source_index=entry.index,
            ))
    return rows


def sim_rows(url: str, api_key: str, *, keep_rows: bool) -> list[UsageRow]:
    """The simulator's org extracted by ``extract_org`` (rows kept in memory, or spooled)."""
    from rafay_billing.source.client import RafayClient
    from rafay_billing.source.extract import extract_org, list_orgs

    with RafayClient(url, api_key, page_size=100) as client:
        rows: list[UsageRow] = []
        for seq, org in enumerate(list_orgs(client)):
            with extract_org(client, org.org_id, org.name, WINDOW, org_seq=seq, keep_rows=keep_rows) as result:
                rows.extend(result.iter_rows())
        return rows


def _write() -> None:
    from rafay_simulator.pytest_plugin import FIXED_NOW
    from rafay_simulator.server import RafaySimulator, SimulatorConfig

    DATA.mkdir(exist_ok=True)
    EDGE_GOLDEN.write_text("".join(row_line(r) + "\n" for r in edge_rows()), encoding="utf-8", errors="surrogatepass")
    with RafaySimulator(SimulatorConfig(now=FIXED_NOW, **SIM_CONFIG)) as sim:
        SIM_GOLDEN.write_text("".join(d + "\n" for d in digest_lines(sim_rows(sim.url, sim.api_key, keep_rows=False))))


if __name__ == "__main__":
    _write()
