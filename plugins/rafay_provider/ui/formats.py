"""How the Billing view writes numbers, in one place: the tables, the chart labels and the chart
tooltips use these, so a figure reads the same wherever the operator meets it. Airflow-free."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def money(value: Any) -> str:
    """An amount as stored (already rounded to its currency's minor unit), with thousands separators:
    ``1,234.50``; no rounding, so the figure equals the database's."""
    return "" if value is None else f"{Decimal(value):,}"


def hours(value: Any) -> str:
    """Hours (or GPU-hours) to two places with thousands separators: ``1,234.50``."""
    return "" if value is None else f"{Decimal(value):,.2f}"
