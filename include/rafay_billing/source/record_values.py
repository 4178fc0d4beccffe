"""How a usage record's values are read: the seed script's text, PostgreSQL-safe text, exact numbers that
fit NUMERIC, hours and GPU counts. Shared by the row, the parameters and the sources.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation
from typing import Any

GPU_COUNT_MAX = 2**31 - 1
"""The largest GPU count the database column (``integer``) holds; anything above is not a real count."""


NUMERIC_INTEGER_DIGITS = 131_072


NUMERIC_FRACTION_DIGITS = 16_383
"""PostgreSQL NUMERIC's limits: digits before and after the decimal point."""


_NUMBER = r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"


_NUMBER_TEXT = re.compile(rf"^\s*{_NUMBER}\s*$")


_HOURS_TEXT = re.compile(rf"^\s*{_NUMBER}\s*h?\s*$", re.IGNORECASE)  # the display form "20.59h"


_WHOLE_TEXT = re.compile(r"^\s*\+?\d+(?:\.0*)?\s*$")


_SURROGATE = re.compile("[\ud800-\udfff]")


_SHOW_CHARS = 60


_GPU_STAND_IN = 10**30  # stands for any count with 30 digits or more: never built exactly (1E+999999999)


def _as_seed_python(value: Any) -> Any:
    """The value as the seed's ``json.loads`` (floats, not Decimals) would have produced it."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _as_seed_python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_seed_python(v) for v in value]
    return value


def seed_text(value: Any) -> str:
    """A cell exactly as the seed's ``csv.writer`` writes ``value``: ``None`` -> ``""``, else ``str()``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(_as_seed_python(value))


def pg_text(text: str) -> str:
    """``text`` as PostgreSQL can store it: NUL characters dropped, lone surrogates (from JSON
    ``\\ud800`` escapes, unencodable in UTF-8) replaced by U+FFFD. Why: one such cell would make the
    whole org's COPY fail, or the CSV write itself."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    return text


def show_value(value: Any) -> str:
    """A value for a message: its text, shortened (a 200,000-digit number must not flood a log)."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 1] + "…"


def gpu_number(value: Any) -> int | None:
    """A non-negative whole GPU count from ``"8"``, ``8`` or ``8.0``; None for anything else.

    Absurd counts (30 digits or more) come back as ``10**30``, a stand-in beyond ``GPU_COUNT_MAX``,
    instead of being built digit by digit; the row reports them as invalid, naming the raw value.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        if not _WHOLE_TEXT.match(value):
            return None
        value = Decimal(value.strip())
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite() or value < 0:
            return None
        if value.adjusted() >= 30:
            return _GPU_STAND_IN
        return int(value) if value == value.to_integral_value() else None
    return None


def numeric_fit(value: Decimal) -> tuple[Decimal, str | None]:
    """``value`` as PostgreSQL NUMERIC can take it in plain notation, or why it cannot.

    Trailing zeros after the point are dropped only when there are too many digits there (exact,
    digit by digit: rounding under a 28-digit context would change the number).
    """
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: NaN and infinities were refused before
    if not any(digits):
        return (value if -NUMERIC_FRACTION_DIGITS <= exponent <= 0 else Decimal(0)), None
    if value.adjusted() + 1 > NUMERIC_INTEGER_DIGITS:
        return value, f"more than {NUMERIC_INTEGER_DIGITS} digits before the point"
    if -exponent > NUMERIC_FRACTION_DIGITS:
        kept = list(digits)
        while kept and kept[-1] == 0 and exponent < 0:
            kept.pop()
            exponent += 1
        if -exponent > NUMERIC_FRACTION_DIGITS:
            return value, f"more than {NUMERIC_FRACTION_DIGITS} digits after the point"
        value = Decimal((sign, tuple(kept), exponent))
    return value, None


def hours_number(value: Any, *, allow_unit: bool) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str):
        match = (_HOURS_TEXT if allow_unit else _NUMBER_TEXT).match(value)
        if match is None:
            return None
        try:
            number = Decimal(match.group(1))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def fits_numeric(value: Decimal) -> bool:
    """True when ``value`` (finite) certainly fits NUMERIC unchanged: plain notation (exponent <= 0)
    in at most ``NUMERIC_FRACTION_DIGITS`` characters. Anything else goes to ``numeric_fit``."""
    text = str(value)
    return len(text) <= NUMERIC_FRACTION_DIGITS and "E" not in text


EXACT = Context(prec=999_999_999, Emax=999_999_999, Emin=-999_999_999)
"""Products in it are exact (no rounding at any size); see ``_dimension_product``."""
