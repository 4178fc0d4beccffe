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
    if type(cell) is str:  # the common case first: every ncp-metrics cell is text by now
        if cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
            return "'" + cell
        return cell
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
    rows: Iterable[Any],
    out: Any | Callable[[str], IO[str]],
    timestamp: str | datetime,
    *,
    sorted_rows: Iterable[Any] | None = None,
) -> tuple[Any, Any]:
    """Write the two ncp-metrics CSVs, unsorted and sorted; returns their paths (or names for a callable target).

    ``rows`` keep their order in the unsorted file (the seed's order: org listing, profile, record).
    ``out`` is a directory supporting ``/`` and ``.open("w", encoding=..., newline=...)`` (``Path``,
    ``ObjectStoragePath``) or a callable returning a text handle opened for writing with ``newline=""``.

    Without ``sorted_rows`` the sorted copy is sorted here, which holds every row in memory (the CLI
    has them all anyway). With ``sorted_rows`` (the same rows already in :func:`ncp_metrics_sort_key`
    order, equal keys in the unsorted order, e.g. from an ``ORDER BY ... COLLATE "C"`` query) both
    files are written row by row and nothing is held: a night of 200,000 rows costs no more memory
    than one row. The order and the row count of ``sorted_rows`` are checked as they stream.
    """
    names = ncp_metrics_file_names(timestamp)
    if sorted_rows is None:
        return _write_ncp_metrics_sorting(rows, out, names)
    unsorted_path, count = _write_ncp_metrics_file(out, names[0], rows)
    sorted_path, sorted_count = _write_ncp_metrics_file(out, names[1], sorted_rows, check_order=True)
    if sorted_count != count:
        raise ValueError(
            f"the sorted ncp-metrics rows ({sorted_count}) are not the unsorted ones ({count}): read both in "
            "one snapshot (a REPEATABLE READ transaction), so a rating in between cannot change them"
        )
    return unsorted_path, sorted_path


def _write_ncp_metrics_file(
    out: Any, name: str, rows: Iterable[Any], *, check_order: bool = False
) -> tuple[Any, int]:
    """One ncp-metrics CSV fed row by row; with ``check_order``, fails on a row sorting before the last."""
    target, opener = _target(out, name)
    count = 0
    previous: tuple[str, str, str, str] | None = None
    with opener() as handle:
        writer = csv.writer(handle)
        writer.writerow([neutralize(c) for c in NCP_METRICS_HEADER])
        for row in rows:
            raw = ncp_metrics_cells(row)
            if check_order:
                key = ncp_metrics_sort_key(raw)
                if previous is not None and key < previous:
                    raise ValueError(
                        f"sorted ncp-metrics rows out of order at row {count + 1}: {key!r} after {previous!r}; "
                        "the query must sort by plain code point order (COLLATE \"C\" on a UTF8 database)"
                    )
                previous = key
            writer.writerow([neutralize(c) for c in raw])
            count += 1
    return target, count


def _write_ncp_metrics_sorting(rows: Iterable[Any], out: Any, names: tuple[str, str]) -> tuple[Any, Any]:
    # Sort on the values, as the seed does; neutralize each row once for both files. Only the sort
    # keys keep raw cells (and those are the neutralized strings themselves unless a cell was escaped).
    safe: list[list[str]] = []
    keys: list[tuple[str, str, str, str]] = []
    for row in rows:
        raw = ncp_metrics_cells(row)
        keys.append(ncp_metrics_sort_key(raw))
        safe.append([neutralize(c) for c in raw])
    order = sorted(range(len(safe)), key=keys.__getitem__)
    del keys
    written = []
    for name, data in zip(names, (safe, [safe[i] for i in order]), strict=True):
        target, opener = _target(out, name)
        with opener() as handle:
            writer = csv.writer(handle)
            writer.writerow([neutralize(c) for c in NCP_METRICS_HEADER])
            writer.writerows(data)
        written.append(target)
    return written[0], written[1]


def _target(out: Any, name: str) -> tuple[Any, Callable[[], Any]]:
    if hasattr(out, "__truediv__") and not callable(out):
        path = out / name
        return path, lambda: path.open("w", encoding="utf-8", newline="")
    if callable(out):
        return name, lambda: out(name)
    raise TypeError(f"write_ncp_metrics_csvs needs a directory path or an open_text(name) callable, got {out!r}")
