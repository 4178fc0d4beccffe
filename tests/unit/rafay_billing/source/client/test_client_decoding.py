"""``decode_page``: the very values ``decode_json`` gives, plus a fingerprint of each record's raw text (issue 25)."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest

from rafay_billing.source.client import decoding
from rafay_billing.source.client.decoding import decode_json, decode_page

ITEMS = "instance_usage_data"


@pytest.fixture(autouse=True, params=["compiled", "scanner"])
def fast_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test on both fast paths: msgspec (pages from COMPILED_FROM_BYTES on) and the json scanner."""
    monkeypatch.setattr(decoding, "COMPILED_FROM_BYTES", 0 if request.param == "compiled" else 10**12)
    return request.param

BODIES = [
    b'{"instance_usage_data": [{"a": 1, "b": 2.50, "c": [1, {"d": null}]}, {"a": 2}], "count": 2, "offset": 0}',
    b'{"instance_usage_data":[{"a":1},{"a":1}],"count":2}',  # Go's separators; the same record twice
    b'{ "count" : 3 ,\n "instance_usage_data" :\t[ {"x": "\\u00e9\\ud800"} ,\r\n {"x": 1E+2}, {"x": NaN} ] }  \n',
    b'{"instance_usage_data": []}',
    b'{"instance_usage_data": [ ]}',
    b'{"instance_usage_data": null, "count": 0}',
    b'{"count": 0}',
    b"{}",
    b"{ }",
    b'{"instance_usage_data": [{"a": 1}], "instance_usage_data": [{"b": 2}, {"c": 3}]}',  # the last one wins
    b'{"instance_usage_data": [{"a": 1}], "instance_usage_data": {"not": "a list"}}',
    b'{"instance_usage_data": {"not": "a list"}, "instance_usage_data": [{"a": 1}]}',
    b'{"instance_usage_data": "text"}',
    b'{"instance_usage_data": [1, "two", [3]]}',
    b'{"instance_usage_data": [{"n": ' + b"9" * 4100 + b"}]}",  # long, but an int Python reads
    b'{"instance_usage_data": [{"n": ' + b"9" * 4400 + b', "m": -' + b"9" * 4300 + b"}]}",  # beyond: Decimals
    b'{"instance_usage_data": [{"n": -0, "e": 1e-7, "f": 0.0000001}]}',
    '{"instance_usage_data": [{"name": "caf\u00e9 \u2603 \U0001f600"}]}'.encode(),
    b'\xef\xbb\xbf{"instance_usage_data": [{"a": 1}]}',  # a BOM: json.loads' own path
    '{"instance_usage_data": [{"a": 1}]}'.encode("utf-16-le"),
    b'  {"instance_usage_data": [{"a": 1}]}',
]

BAD = [
    b"",
    b"{",
    b'{"instance_usage_data": [{"a": 1},]}',
    b'{"instance_usage_data": [{"a": 1}}',
    b'{"instance_usage_data": [{"a": 1}] "count": 1}',
    b'{"instance_usage_data": [{"a": 1}], }',
    b'{"a": 1} x',
    b'{"a": 1}{"b": 2}',
    b"{'a': 1}",
    b'{"a": tru}',
    b'{"a": "\x01"}',  # a control character in a string (strict)
    b'{"a": "\xff"}',  # not UTF-8
    b"[1, 2]",
    b"null",
]


def _error(body: bytes) -> tuple[type, str] | None:
    try:
        decode_json(body)
    except Exception as exc:
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("body", BODIES + BAD)
def test_the_values_and_errors_are_decode_jsons(body: bytes) -> None:
    expected = _error(body)
    if expected is not None:
        with pytest.raises(expected[0]) as caught:
            decode_page(body, ITEMS)
        assert str(caught.value) == expected[1]
        return
    data, prints = decode_page(body, ITEMS)
    want = decode_json(body)
    assert repr(data) == repr(want)  # types, Decimal spelling, key order
    items = data.get(ITEMS) if isinstance(data, dict) else None
    if prints is not None:
        assert isinstance(items, list) and len(prints) == len(items)


def test_each_record_is_fingerprinted_by_its_raw_text() -> None:
    body = (b'{"instance_usage_data": [{"a": 1, "b": 2.5}, {"a": 2}, {"a": 1, "b": 2.5}, {"a": 1, "b": 2.50},'
            b' {"a":1,"b":2.5}], "count": 5}')
    data, prints = decode_page(body, ITEMS)
    assert prints is not None and len(prints) == 5
    assert prints[0] == prints[2]  # the same text: a repeat
    assert len({prints[0], prints[1], prints[3]}) == 3  # other values, other spelling of a value
    assert prints[4] != prints[0]  # the same values written differently: another text
    assert data[ITEMS][3]["b"] == Decimal("2.50")


def test_integers_beyond_pythons_limit_are_decimals_on_every_path() -> None:
    body = b'{"instance_usage_data": [{"n": ' + b"9" * 4400 + b', "i": ' + b"9" * 4100 + b"}]}"
    for data in (decode_page(body, ITEMS)[0], decode_json(body)):
        record = data[ITEMS][0]
        assert type(record["n"]) is Decimal and record["n"] == Decimal("9" * 4400)
        assert type(record["i"]) is int


def test_a_record_has_one_fingerprint_whichever_path_read_its_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """msgspec's path and the json scanner's fingerprint the same raw bytes, so a record that comes
    again on a page read the other way (a small page, or one with NaN) is still recognised as a repeat."""
    record = r'{"name": "caf\u00e9 ' + "\u2603" + r'", "raw_usage": 2.50, "parameters": [{"name": "GPU", "label_value": "8"}]}'
    page = ('{"instance_usage_data": [' + record + "]}").encode()
    with_nan = ('{"instance_usage_data": [{"x": NaN}, ' + record + "]}").encode()
    monkeypatch.setattr(decoding, "COMPILED_FROM_BYTES", 0)
    compiled, refused = decode_page(page, ITEMS)[1], decode_page(with_nan, ITEMS)[1]
    monkeypatch.setattr(decoding, "COMPILED_FROM_BYTES", 10**12)
    scanned = decode_page(page, ITEMS)[1]
    assert compiled is not None and refused is not None and scanned is not None
    assert compiled[0] == refused[1] == scanned[0]


def test_only_pages_from_the_threshold_on_import_msgspec() -> None:
    """A tenant of small listings never pays for msgspec's import (a tenth of the client's start-up)."""
    code = """
import sys
from rafay_billing.source.client.decoding import COMPILED_FROM_BYTES, decode_page
decode_page(b'{"items": [{"a": 1.5}]}', "items")
print("msgspec" in sys.modules)
big = b'{"items": [' + b'{"a": 1.5},' * (COMPILED_FROM_BYTES // 11) + b'{}]}'
assert decode_page(big, "items")[1] is not None
print("msgspec" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_pages_of_the_usual_shapes_take_the_fast_path() -> None:
    for body in BODIES[:2] + BODIES[2:3] + BODIES[17:18]:
        assert decode_page(body, ITEMS)[1] is not None, body
    assert decode_page(json.dumps({ITEMS: [{"a": i} for i in range(3)]}).encode(), ITEMS)[1] is not None
    assert decode_page(BODIES[18], ITEMS)[1] is None  # a BOM: decoded by json.loads, no raw fingerprints
