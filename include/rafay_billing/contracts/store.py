"""Contracts as the database holds them (``billing.contracts`` and its versions), read back into the
parsed model: shared by the sync, the month's charges and the close's readiness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rafay_billing.contracts.source import Contract
from rafay_billing.db import sql


def _contract(row: dict[str, Any]) -> Contract:
    def utc(value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    return Contract(
        contract_id=row["contract_id"], org_id=row["org_id"], kind=row["kind"], profile_type=row["profile_type"],
        profile=row["profile"], unit=row["unit"], quantity=row["quantity"], unit_price=row["unit_price"],
        amount=row["amount"], currency=row["currency"], frequency=row["frequency"],
        term_start=row["term_start"].astimezone(UTC), term_end=utc(row["term_end"]),
        billing_timing=row["billing_timing"], true_up_period=row["true_up_period"],
        description=row["description"], line=row["source_line"] or 0,
    )


def read_contracts(cur: Any, name: str, params: dict[str, Any] | None = None) -> list[Contract]:
    """The contracts a ``contracts/*.sql`` query selects (a ``dict_row`` cursor), times in UTC."""
    cur.execute(sql(name), params)
    return [_contract(row) for row in cur.fetchall()]
