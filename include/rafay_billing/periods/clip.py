"""Bounded text for close messages and the audit log (issue 21, rule 17).

Why: a label value or an exception detail comes from the source (a user's label, an API's error) and
can be any length; a refusal message or an audit entry that carries a megabyte of it is unreadable and
bloats the log. The full value stays in the raw page the run kept; messages carry its first
:data:`TEXT_LIMIT` characters and say how much was left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TEXT_LIMIT = 1024
"""Characters of one value that a close message or an audit entry carries."""


def clip(value: Any, limit: int = TEXT_LIMIT) -> Any:
    """``value`` itself when it is not text or fits; else its first ``limit`` characters and how many more."""
    if not isinstance(value, str) or len(value) <= limit:
        return value
    return f"{value[:limit]}... [{len(value) - limit} more characters]"


def clip_all(value: Any, limit: int = TEXT_LIMIT) -> Any:
    """Every text inside ``value`` (dicts, lists, tuples) clipped (JSON-able values in, the same out)."""
    if isinstance(value, Mapping):
        return {k: clip_all(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clip_all(v, limit) for v in value]
    return clip(value, limit)
