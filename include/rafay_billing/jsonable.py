"""The one converter from billing values to JSON-able ones (XCom payloads, audit details, exports).

Money and hours are ``Decimal``: they travel as exact text (``"12.50"``), never as floats, so a
reader parses them back with ``Decimal(text)`` without losing a cent. Timestamps become RFC 3339
UTC with a ``Z`` (the format the rest of the pipeline parses), days ISO dates.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rafay_billing.window import format_utc


def to_jsonable(value: Any) -> Any:
    """``value`` with every Decimal, datetime and date inside it (dicts, lists, tuples) made JSON-able.

    Dict keys become text; anything else is returned as it is (``json.dumps`` then decides).
    """
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):  # before date: a datetime is a date
        return format_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value
