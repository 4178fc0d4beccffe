"""The landed usage CSV as the extraction writes it, built independently of ``rafay_billing.source.usage``
(shared by the load and rating tests)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rafay_billing.window import Window

# The normalised usage row columns of docs/design.md, in order (written here independently of usage.py).
COLUMNS = [
    "window_start", "window_end", "org_id", "organization", "org_seq", "record_seq", "profile_type", "profile",
    "instance", "instance_id", "instance_key", "status", "seed_usage", "usage_hours", "gpu_count",
    "invalid_reason", "record_start", "record_end", "source_page", "source_index",
]
W1 = Window(datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC))
W2 = Window(datetime(2026, 11, 11, tzinfo=UTC), datetime(2026, 11, 12, tzinfo=UTC))


def usage_csv(rows: list[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """What the extraction lands: header, Decimals as plain text, None as an empty cell."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else (format(r[c], "f") if isinstance(r[c], Decimal) else r[c])
                         for c in columns])
    return out.getvalue()
