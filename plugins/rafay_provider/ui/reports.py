"""The windows' report files under the landing root, listed and opened for the Billing view.

Works on any root that behaves like a path (``ObjectStoragePath`` for ``file://`` and ``s3://``
roots, or ``pathlib.Path``). The browser only ever sees a relative name such as
``window=20261110T000000Z_20261111T000000Z/run=manual__x/line-items.csv``; :func:`resolve` refuses
any other shape, so no request can reach a file outside ``<root>/reports``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

REPORTS_AREA = "reports"
_WINDOW = re.compile(r"^window=(\d{8}T\d{6}Z)_(\d{8}T\d{6}Z)$")
_RUN = re.compile(r"^run=[A-Za-z0-9._-]+$")
_FILE = re.compile(r"^[A-Za-z0-9._-]+\.csv$")


class ReportPathError(ValueError):
    """A download name that is not ``window=…/run=…/<file>.csv`` under the reports area."""


@dataclass(frozen=True)
class ReportFile:
    name: str  # relative to <root>/reports: what the browser sees
    window_start: datetime
    window_end: datetime
    run_dir: str
    file_name: str


def _window_bounds(component: str) -> tuple[datetime, datetime] | None:
    match = _WINDOW.match(component)
    if not match:
        return None
    start, end = (datetime.strptime(t, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) for t in match.groups())
    return start, end


def list_reports(root: Any, first_day: date, end_day: date, limit: int = 200) -> list[ReportFile]:
    """Report files of every run window that overlaps the days ``[first_day, end_day)``, newest window first."""
    area = root / REPORTS_AREA
    if not area.exists():
        return []
    lo = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    hi = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC)
    found: list[ReportFile] = []
    windows = []
    for entry in area.iterdir():
        bounds = _window_bounds(entry.name)
        if bounds and bounds[0] < hi and bounds[1] > lo:
            windows.append((bounds, entry))
    for (start, end), window_dir in sorted(windows, key=lambda w: w[0], reverse=True):
        for run_dir in sorted(window_dir.iterdir(), key=lambda p: p.name):
            if not _RUN.match(run_dir.name):
                continue
            for file in sorted(run_dir.iterdir(), key=lambda p: p.name):
                if _FILE.match(file.name):
                    found.append(ReportFile(f"{window_dir.name}/{run_dir.name}/{file.name}", start, end,
                                            run_dir.name.removeprefix("run="), file.name))
                    if len(found) >= limit:
                        return found
    return found


def resolve(root: Any, name: str) -> Any:
    """The file a download name stands for, or :class:`ReportPathError`."""
    parts = name.split("/")
    if (len(parts) != 3 or not _WINDOW.match(parts[0]) or not _RUN.match(parts[1])
            or not _FILE.match(parts[2]) or parts[2] in (".", "..")):
        raise ReportPathError(f"not a report name (window=…/run=…/<file>.csv): {name!r}")
    return root / REPORTS_AREA / parts[0] / parts[1] / parts[2]
