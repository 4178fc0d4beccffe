"""Reply bodies as the client reads them, and a listing page with a fingerprint of each record's raw text.

Why a page decoder of its own: the pager must notice a record that comes again on a later page (it
moved while the listing was paged). It used to fingerprint each parsed record with
``hash(repr(record))``, which cost as much as parsing the page. :func:`decode_page` parses the page
with the very ``json`` scanner :func:`decode_json` uses, element by element for the listing's
array, and fingerprints each record by the exact text the server sent for it: the same objects,
and the fingerprint for free. A repeated record is then one whose text is the same, character for
character (a server writes one record the same way each time; equal values spelled differently are
not taken for a repeat, the direction that never hides data: the exact-duplicate rule of
extraction and the count checks still apply).

Two fast paths, tried in turn. First, for a page of at least :data:`COMPILED_FROM_BYTES`,
``msgspec`` (a compiled JSON decoder, already an Airflow dependency): the page split into raw
values, the items array into each record's raw bytes (its fingerprint), every value decoded with
numbers with a fraction or exponent handed over as their text to ``Decimal``. It refuses what
``json`` would read differently or not at all (``NaN``, lone surrogates, trailing commas, integers
beyond Python's limit), so whatever it returns is what ``json`` returns.
Then the ``json`` scanner element by element (what it refused, e.g. a page with a ``NaN``).

Anything neither fast path expects (a body that is not a JSON object, bad JSON, an encoding it
would decode differently) goes through :func:`decode_json` itself, so every error and every value
stays exactly what it was; such a page has no raw fingerprints (the pager then falls back to
``repr``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any


def _json_int(text: str) -> int | Decimal:
    """JSON integers as int, except absurdly long ones Python's ``int`` refuses (over 4,300 digits):
    Decimal, never an error. msgspec gives an int exactly when ``int`` can (it refuses the others), so
    both fast paths agree with this."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def decode_json(body: bytes) -> Any:
    """A reply body as the client reads it: numbers with a fraction or exponent as exact Decimals
    (never floats), absurdly long integers as Decimals, ``NaN``/``Infinity`` as Decimals."""
    return json.loads(body, parse_float=Decimal, parse_int=_json_int, parse_constant=Decimal)


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=_json_int, parse_constant=Decimal)
# The decoder's own scanner and string reader (C), which json.loads runs; not in typeshed's stubs.
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_WS = re.compile(r"[ \t\n\r]*")
_SPACE = frozenset(" \t\n\r")
_ws: Callable[[str, int], re.Match[str]] = _WS.match  # type: ignore[assignment]  # "*": always matches


class _NotFast(Exception):
    """The page is not one the fast path reads: :func:`decode_json` decides."""


COMPILED_FROM_BYTES = 64 * 1024
"""Pages from this size on go through msgspec. Smaller ones (a few records: most listings of most
tenants) are read by the json scanner, as fast for them: msgspec is imported only once a page is
big enough to pay for its import (~8 ms, a tenth of the client's start-up)."""


class _Compiled:
    """msgspec's decoders, made on first use (see :data:`COMPILED_FROM_BYTES`)."""

    def __init__(self) -> None:
        import msgspec

        self.value = msgspec.json.Decoder(float_hook=Decimal)
        self.pairs = msgspec.json.Decoder(dict[str, msgspec.Raw])
        self.raw_items = msgspec.json.Decoder(list[msgspec.Raw])
        self.refused = (msgspec.DecodeError, UnicodeDecodeError)  # ValidationError is a DecodeError


_compiled: _Compiled | None = None


def decode_page(body: bytes, items_field: str) -> tuple[Any, list[int] | None]:
    """``(decode_json(body), fingerprints)``: one ``hash`` of each record's raw text in the page's
    ``items_field`` array, in order, or None when the page went through :func:`decode_json` (see the
    module's docstring). Raises what :func:`decode_json` raises."""
    global _compiled
    if body[:1] == b"{" and json.detect_encoding(body) == "utf-8":  # decoded as json.loads decodes it
        if len(body) >= COMPILED_FROM_BYTES:
            compiled = _compiled or _Compiled()
            _compiled = compiled
            try:
                return _compiled_page(compiled, body, items_field)
            except compiled.refused:
                pass
        try:
            text = body.decode("utf-8", "surrogatepass")
            return _page(text, items_field)
        except (_NotFast, ValueError, StopIteration, IndexError):
            pass
    return decode_json(body), None


def _compiled_page(compiled: _Compiled, body: bytes, items_field: str) -> tuple[dict, list[int] | None]:
    """The page through msgspec: its pairs as raw values, the items array record by record."""
    decode = compiled.value.decode
    data: dict[str, Any] = {}
    prints: list[int] | None = None
    for key, raw in compiled.pairs.decode(body).items():  # a repeated key: first place, last value, as json
        if key == items_field and memoryview(raw)[0] == 0x5B:  # "["
            records = compiled.raw_items.decode(raw)
            prints = [hash(bytes(record)) for record in records]
            data[key] = [decode(record) for record in records]
        else:
            data[key] = decode(raw)
    return data, prints


def _page(text: str, items_field: str) -> tuple[dict, list[int] | None]:
    """The top-level object of ``text``, pair by pair as ``json`` builds it (a repeated key keeps its
    first place and its last value), the items array element by element."""
    pairs: list[tuple[str, Any]] = []
    items: list | None = None
    prints: list[int] = []
    ws = _ws
    scan = _SCAN
    idx = ws(text, 1).end()
    if text[idx] == "}":
        idx += 1
    else:
        while True:
            if text[idx] != '"':
                raise _NotFast
            key, idx = scanstring(text, idx + 1, True)
            idx = ws(text, idx).end()
            if text[idx] != ":":
                raise _NotFast
            idx = ws(text, idx + 1).end()
            if key == items_field and text[idx] == "[":
                value, idx, prints = _array(text, idx + 1)
                items = value
            else:
                value, idx = scan(text, idx)
            pairs.append((key, value))
            idx = ws(text, idx).end()
            if text[idx] == ",":
                idx = ws(text, idx + 1).end()
            elif text[idx] == "}":
                idx += 1
                break
            else:
                raise _NotFast
    if ws(text, idx).end() != len(text):
        raise _NotFast
    data = dict(pairs)
    return data, (prints if items is not None and data.get(items_field) is items else None)


def _array(text: str, idx: int) -> tuple[list, int, list[int]]:
    """The array starting after its ``[`` at ``idx``: (values, index after its ``]``, fingerprints)."""
    ws = _ws
    scan = _SCAN
    values: list = []
    prints: list[int] = []
    idx = ws(text, idx).end()
    if text[idx] == "]":
        return values, idx + 1, prints
    append, fingerprint = values.append, prints.append
    while True:
        value, end = scan(text, idx)
        append(value)
        fingerprint(hash(text[idx:end].encode("utf-8", "surrogatepass")))  # its raw bytes, as msgspec's path
        char = text[end]
        if char in _SPACE:
            end = ws(text, end).end()
            char = text[end]
        if char == ",":
            idx = end + 1
            if text[idx] in _SPACE:  # ", " (Python's json) or "," (Go's): the regex only when needed
                idx = ws(text, idx).end()
        elif char == "]":
            return values, end + 1, prints
        else:
            raise _NotFast
