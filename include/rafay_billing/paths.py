"""File and folder names derived from API data (org ids, profile names, run ids).

Org and profile names are free text: ``../x``, ``a/b``, ``CON``, emoji, 500 characters. Anything
that becomes part of a path under the landing root goes through ``safe_component`` so a name can
never escape the root, never produce ``.``/``..``/empty, and two different names never share a file.
"""

from __future__ import annotations

import hashlib
import re

MAX_COMPONENT = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_HASH_CHARS = 10


def safe_component(name: object, max_length: int = MAX_COMPONENT) -> str:
    """``name`` as one path component of ``[A-Za-z0-9._-]`` only.

    A name that is already safe (and not ``.``/``..``/empty, not over-long) is kept as it is, so
    ordinary ids stay readable. Any other name is cleaned, shortened and suffixed with a short
    stable hash of the original, so distinct originals give distinct components.
    """
    text = str(name)
    if max_length < _HASH_CHARS + 2:
        raise ValueError(f"max_length must be at least {_HASH_CHARS + 2}")
    cleaned = _UNSAFE.sub("_", text)
    if cleaned == text and text not in ("", ".", "..") and len(text) <= max_length:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    stem = cleaned.strip(".")[: max_length - _HASH_CHARS - 1] or "_"
    return f"{stem}-{digest}"


def page_file_name(kind: str, key: str, page_no: int) -> str:
    """File name of one raw listing page as landed, relative to its folder (the run's or the org's).

    One function for the writer (the DAG's page hook) and the reader (``UsageRow.source_page``), so
    a row's page reference always names the file that holds it. ``key`` tells listings of one kind
    apart (a profile name for usage pages, ``""`` for the org listing and an org's profile listing).
    A listing read again from the start restarts at page 0, so its files replace the earlier read's.
    """
    stem = f"{kind}-{safe_component(key)}" if key else kind
    return f"{stem}-page-{page_no:04d}.json"
