"""The opaque cursor of the line-item pages: the last key served, for one period, as base64url JSON.

It only says where a page starts; what is read is always the token's org (the query's own parameter),
so a cursor copied from elsewhere can at most move within the caller's own items. Anything that is not a
cursor this service wrote (too long, not base64url, not the expected JSON, another period, a value out of
range, a NUL) is refused before it reaches the database, and its values are query parameters, never SQL.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import date
from typing import Any

MAX_CURSOR_LENGTH = 2048
MAX_TEXT = 1024
VERSION = 3  # 2: covered_by joined the key (issue 22 rule 2); 3: charge_level (an MRC and its instance's day
# item of the month's first day differ only there: a page ending on one skipped the other); older are refused
KEY_FIELDS = ("usage_date", "profile_type", "profile", "instance_key", "dimension", "covered_by", "charge_level",
              "charge_class", "correction_seq", "entry")
_B64 = re.compile(r"^[A-Za-z0-9_-]+$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}\Z", re.ASCII)


class CursorError(ValueError):
    """Not a cursor of this period written by this service."""


def encode_cursor(period_label: str, key: dict[str, Any]) -> str:
    values = [key[name].isoformat() if name == "usage_date" else key[name] for name in KEY_FIELDS]
    text = json.dumps({"v": VERSION, "p": period_label, "k": values}, separators=(",", ":"), ensure_ascii=True)
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value:
        raise CursorError("bad text")
    return value


def decode_cursor(cursor: str, period_label: str) -> dict[str, Any]:
    """The key a cursor holds, as the line-item query's ``k_*`` parameters; :class:`CursorError` otherwise."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_LENGTH or not _B64.match(cursor):
        raise CursorError("not a cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw.decode("ascii"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CursorError("not a cursor") from None
    if not isinstance(data, dict) or set(data) != {"v", "p", "k"} or data["v"] != VERSION or data["p"] != period_label:
        raise CursorError("not a cursor of this period")
    values = data["k"]
    if not isinstance(values, list) or len(values) != len(KEY_FIELDS):
        raise CursorError("bad key")
    key = dict(zip(KEY_FIELDS, values, strict=True))
    day = _text(key["usage_date"])
    if not _DAY.match(day):
        raise CursorError("bad day")
    try:
        parsed_day = date.fromisoformat(day)
    except ValueError:
        raise CursorError("bad day") from None
    seq = key["correction_seq"]
    if type(seq) is not int or not 0 <= seq < 2**31:
        raise CursorError("bad sequence")
    params = {f"k_{name}": _text(key[name]) for name in KEY_FIELDS if name not in ("usage_date", "correction_seq")}
    return {**params, "k_usage_date": parsed_day, "k_correction_seq": seq}
