"""The per-org usage CSV: the landed form of the normalised rows (``USAGE_COLUMNS``), written and read
back exactly (decimals as text, JSON objects for dimensions and labels).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import IO, Any

from rafay_billing.source.parameters import dimensions_from
from rafay_billing.source.usage import USAGE_COLUMNS, UsageRow, row_values

_JSON_CELL = json.JSONEncoder(ensure_ascii=False, sort_keys=True)
"""``json.dumps(..., ensure_ascii=False, sort_keys=True)``, one encoder (``dumps`` with options makes one a call)."""


_CSV_AS_IS = frozenset({str, int, type(None)})
"""Cells the csv writer renders as ``_cell`` would (text as is, ``None`` empty, ints ``str``)."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if type(value) is str:
        return value
    if isinstance(value, dict):  # dimensions and labels: JSON objects, decimals as exact strings
        # decimals turned to exact text first (never floats), so the C encoder needs no call back per value
        return _JSON_CELL.encode({k: format(v, "f") if isinstance(v, Decimal) else v for k, v in value.items()})
    if isinstance(value, Decimal):
        return format(value, "f")  # exact, never exponent notation
    return str(value)


def write_usage_csv(rows: Iterable[UsageRow], handle: IO[str]) -> int:
    """Write rows with a header (``USAGE_COLUMNS``) to a text handle opened with ``newline=""``.

    A data file for loading, not for people: cells are written as they are (no spreadsheet
    neutralization), decimals exactly, ``None`` as an empty cell. Returns the number of rows.
    """
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(USAGE_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([v if type(v) in _CSV_AS_IS else _cell(v) for v in row_values(row)])
        count += 1
    return count


def read_usage_csv(handle: IO[str]) -> Iterator[UsageRow]:
    """Read back what ``write_usage_csv`` wrote; the header must match ``USAGE_COLUMNS`` exactly."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if tuple(header or ()) != USAGE_COLUMNS:
        raise ValueError(f"usage CSV header {header!r} does not match {USAGE_COLUMNS!r}")
    for line_no, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(USAGE_COLUMNS):
            raise ValueError(f"usage CSV line {line_no}: {len(cells)} cells, expected {len(USAGE_COLUMNS)}")
        v = dict(zip(USAGE_COLUMNS, cells, strict=True))
        yield UsageRow(
            window_start=v["window_start"],
            window_end=v["window_end"],
            org_id=v["org_id"],
            organization=v["organization"],
            org_seq=int(v["org_seq"]),
            record_seq=int(v["record_seq"]),
            profile_type=v["profile_type"],
            profile=v["profile"],
            instance=v["instance"],
            instance_id=v["instance_id"] or None,
            instance_key=v["instance_key"],
            status=v["status"],
            seed_usage=v["seed_usage"],
            usage_hours=Decimal(v["usage_hours"]) if v["usage_hours"] else None,
            gpu_count=int(v["gpu_count"]) if v["gpu_count"] else None,
            invalid_reason=v["invalid_reason"] or None,
            record_start=v["record_start"] or None,
            record_end=v["record_end"] or None,
            source_page=v["source_page"] or None,
            source_index=int(v["source_index"]) if v["source_index"] else None,
            dimensions=dimensions_from(v["dimensions"]),
            labels=json.loads(v["labels"]) if v["labels"] else {},
        )
