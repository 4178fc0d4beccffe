"""ISO 4217 currencies and their minor units, from the ``iso4217`` package.

Why a package and not a hand-written table: amounts are rounded to the currency's minor unit
(USD 2, JPY 0, BHD 3, IQD 3), and hand-kept or locale tables drift from ISO (Babel's gives IQD 0
and LAK 0). ``iso4217`` ships ISO's own List One (the currencies in use today), so an upgrade of
the pinned package is an upgrade of the data.

Codes that ISO lists without a minor unit (``N.A.``: gold ``XAU``, the SDR ``XDR``, the testing
code ``XTS``, ...) cannot carry a rounded amount, so they are left out here: :func:`minor_unit`
refuses them and :func:`currency_rows` does not list them.

Importing this module is free: the package (it parses an XML table) is loaded on first use.
No Airflow import.
"""

from __future__ import annotations

import re
from functools import cache

from rafay_billing.errors import CurrencyError

_CODE = re.compile(r"^[A-Z]{3}$")


@cache
def _table() -> dict[str, tuple[int | None, str]]:
    """``code -> (minor unit or None, name)`` for every currency ISO lists as in use."""
    from iso4217 import Currency  # (parses XML: load only when asked)

    return {c.code: (c.exponent, c.currency_name) for c in Currency}


def minor_unit(code: str) -> int:
    """Decimal places of ``code``'s minor unit (USD 2, JPY 0, BHD 3); raises :class:`CurrencyError`.

    The code must be exact (three capital letters): a price book that says ``usd`` is a typo to fix,
    not something to guess about.
    """
    entry = _table().get(code)
    if entry is None:
        raise CurrencyError(f"currency {code!r} is not an ISO 4217 currency in use{_hint(code)}")
    exponent, name = entry
    if exponent is None:
        raise CurrencyError(
            f"currency {code!r} ({name}) has no minor unit in ISO 4217, so amounts cannot be rounded "
            "in it: use a currency such as USD or EUR"
        )
    return exponent


def currency_rows() -> list[tuple[str, int, str]]:
    """``(code, minor unit, name)`` for every ISO 4217 currency in use that has a minor unit, by code.

    Meant for loading a lookup table (SQL rounds with it); codes without a minor unit are skipped.
    """
    table = _table().items()
    return sorted((code, exponent, name) for code, (exponent, name) in table if exponent is not None)


def _hint(code: str) -> str:
    upper = code.strip().upper()
    if upper != code and _CODE.match(upper) and upper in _table():
        return f": write it in capitals, {upper}"
    if not _CODE.match(code):
        return ": give a three-letter code in capitals (USD, EUR, JPY, ...)"
    return ": check the spelling (USD, EUR, JPY, ...); withdrawn codes such as HRK are not accepted"
