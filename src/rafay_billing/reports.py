"""Human-facing CSVs: the seed script's two ``ncp-metrics`` files, and any other report table.

The seed files are a published interface (finance imports them), so they are written byte for
byte the way the seed writes them: ``csv.writer`` with the default (excel) dialect, ``\\r\\n`` line
ends, UTF-8, the same header, the sorted copy ordered by plain string comparison of
(Organization, Profile Type, Profile, Instance). The one deliberate difference, from the billing
contract and OWASP's CSV-injection advice: a text cell starting with ``=``, ``+``, ``-``, ``@``, a
tab, a carriage return, or the full-width ``＝ ＋ － ＠`` gets a ``'`` prefix so a spreadsheet does
not run it as a formula.

Targets are duck-typed: a ``pathlib.Path`` directory, an Airflow ``ObjectStoragePath`` directory
(both support ``/`` and ``.open("w", ...)``) or a callable ``open_text(name)``. No Airflow import.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

NCP_METRICS_HEADER: tuple[str, ...] = ("Organization", "Profile Type", "Profile", "Instance", "Usage(h)", "Status")
NCP_METRICS_TIMESTAMP = "%m%d%Y-%H%M%S"
# OWASP: = + - @, tab and carriage return; spreadsheets also read the full-width forms
# (U+FF1D U+FF0B U+FF0D U+FF20) as their ASCII twins, so those start formulas too.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# ASCII digits only: a number written with other digits (full-width, Arabic-Indic) is text to escape.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_ROW_FIELDS = ("organization", "profile_type", "profile", "instance", "seed_usage", "status")


def neutralize(cell: Any) -> str:
    """A cell as text, with a ``'`` prefix when a spreadsheet would read it as a formula.

    Numbers stay as they are, whether typed (``Decimal("-1.5")``) or textual (``"-1.5"``, ASCII
    digits, nothing around it): a plain number cannot run anything and finance needs it numeric.
    ``None`` is an empty cell.
    """
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, int | float | Decimal):
        return format(cell, "f") if isinstance(cell, Decimal) else str(cell)
    text = str(cell)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def ncp_metrics_cells(row: Any) -> list[str]:
    """The six ncp-metrics cells of a row: a ``UsageRow``-like object, a mapping or a 6-item sequence."""
    if isinstance(row, Mapping):
        if all(h in row for h in NCP_METRICS_HEADER):
            values = [row[h] for h in NCP_METRICS_HEADER]
        else:
            values = [row.get(f) for f in _ROW_FIELDS]
    elif hasattr(row, "ncp_metrics_cells"):
        values = row.ncp_metrics_cells()
    elif isinstance(row, Sequence) and not isinstance(row, str) and len(row) == len(NCP_METRICS_HEADER):
        values = list(row)
    else:
        values = [getattr(row, f) for f in _ROW_FIELDS]
    return ["" if v is None else (format(v, "f") if isinstance(v, Decimal) else str(v)) for v in values]


def ncp_metrics_sort_key(cells: Sequence[str]) -> tuple[str, str, str, str]:
    """The seed's ``sort_csv`` key: plain string comparison of the first four columns."""
    return (cells[0], cells[1], cells[2], cells[3])


def write_csv(handle: IO[str], columns: Sequence[str], rows: Iterable[Iterable[Any]]) -> int:
    """A human-facing CSV (excel dialect, ``\\r\\n``) with every cell neutralized; returns the row count."""
    writer = csv.writer(handle)
    writer.writerow([neutralize(c) for c in columns])
    count = 0
    for row in rows:
        writer.writerow([neutralize(c) for c in row])
        count += 1
    return count


def ncp_metrics_file_names(timestamp: str | datetime) -> tuple[str, str]:
    """``ncp-metrics-<ts>.csv`` and ``ncp-metrics-sorted-<ts>.csv``, ``ts`` as ``%m%d%Y-%H%M%S``."""
    stamp = timestamp.strftime(NCP_METRICS_TIMESTAMP) if isinstance(timestamp, datetime) else str(timestamp)
    if not re.fullmatch(r"\d{8}-\d{6}", stamp):
        raise ValueError(f"ncp-metrics CSV timestamp must look like 09142025-075429 (%m%d%Y-%H%M%S), got {stamp!r}")
    return f"ncp-metrics-{stamp}.csv", f"ncp-metrics-sorted-{stamp}.csv"


def write_ncp_metrics_csvs(
    rows: Iterable[Any], out: Any | Callable[[str], IO[str]], timestamp: str | datetime
) -> tuple[Any, Any]:
    """Write the two ncp-metrics CSVs, unsorted and sorted; returns their paths (or names for a callable target).

    ``rows`` keep their order in the unsorted file (the seed's order: org listing, profile, record).
    ``out`` is a directory supporting ``/`` and ``.open("w", encoding=..., newline=...)`` (``Path``,
    ``ObjectStoragePath``) or a callable returning a text handle opened for writing with ``newline=""``.
    """
    cells = [ncp_metrics_cells(r) for r in rows]
    ordered = sorted(cells, key=ncp_metrics_sort_key)  # sort on the values, as the seed does, then neutralize
    written = []
    for name, data in zip(ncp_metrics_file_names(timestamp), (cells, ordered), strict=True):
        target, opener = _target(out, name)
        with opener() as handle:
            write_csv(handle, NCP_METRICS_HEADER, data)
        written.append(target)
    return written[0], written[1]


def _target(out: Any, name: str) -> tuple[Any, Callable[[], Any]]:
    if hasattr(out, "__truediv__") and not callable(out):
        path = out / name
        return path, lambda: path.open("w", encoding="utf-8", newline="")
    if callable(out):
        return name, lambda: out(name)
    raise TypeError(f"write_ncp_metrics_csvs needs a directory path or an open_text(name) callable, got {out!r}")
