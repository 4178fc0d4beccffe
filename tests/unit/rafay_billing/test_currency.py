"""ISO 4217 minor units come from the iso4217 package, not from a locale table (Babel is wrong for IQD, LAK)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rafay_billing import currency
from rafay_billing.currency import CurrencyError, currency_rows, minor_unit


@pytest.mark.parametrize(
    ("code", "digits"),
    [("JPY", 0), ("KRW", 0), ("USD", 2), ("EUR", 2), ("LAK", 2), ("BHD", 3), ("IQD", 3), ("KWD", 3), ("CLF", 4)],
)
def test_minor_units_are_iso_4217s(code: str, digits: int) -> None:
    assert minor_unit(code) == digits


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("ABC", "'ABC' is not an ISO 4217 currency in use: check the spelling"),
        ("HRK", "not an ISO 4217 currency in use"),  # withdrawn (Croatia adopted the euro in 2023)
        ("usd", "write it in capitals, USD"),
        ("US", "give a three-letter code in capitals"),
        ("", "give a three-letter code in capitals"),
        ("XAU", "'XAU' (Gold) has no minor unit"),
        ("XTS", "has no minor unit"),
        ("XXX", "has no minor unit"),
    ],
)
def test_unknown_or_unroundable_codes_are_refused_clearly(code: str, fragment: str) -> None:
    with pytest.raises(CurrencyError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        minor_unit(code)
    assert issubclass(CurrencyError, ValueError)


def test_currency_rows_list_every_roundable_currency_once_by_code() -> None:
    rows = currency_rows()
    codes = [code for code, _, _ in rows]
    assert codes == sorted(set(codes)) and len(codes) > 150
    by_code = {code: (digits, name) for code, digits, name in rows}
    assert by_code["USD"] == (2, "US Dollar")
    assert by_code["JPY"] == (0, "Yen")
    assert (by_code["BHD"][0], by_code["IQD"][0], by_code["LAK"][0]) == (3, 3, 2)
    assert not {"XAU", "XDR", "XTS", "XXX"} & set(by_code)  # ISO gives these no minor unit
    assert all(isinstance(d, int) and 0 <= d <= 4 and name for d, name in by_code.values())
    assert all(minor_unit(code) == digits for code, (digits, _) in by_code.items())


def test_importing_the_module_loads_neither_airflow_nor_the_table() -> None:
    code = (
        "import sys; import rafay_billing.currency; "
        "print(sorted(m for m in ('airflow', 'iso4217', 'babel') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert currency.minor_unit("USD") == 2  # and it does load when asked
