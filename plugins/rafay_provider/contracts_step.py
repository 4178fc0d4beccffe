"""The contracts sync step (issue 22) of both DAGs: Variable ``billing_contracts_uri`` into ``billing.contracts``.

Airflow glue around :func:`rafay_billing.contracts.sync.sync_contracts`, like the price book step:
the Variable holds an object-storage URI (``file:///…``, ``s3://…``) read with ``ObjectStoragePath``;
unset = the table is used as it is. The run's conf ``{"allow_retroactive": true}`` accepts omitted
contracts and changes of closed months (audited); warnings (unlisted orgs, commitments in a currency
the org has no price in) go to the task log. Imported inside tasks only, never at DAG parse time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import Context, ObjectStoragePath, Variable
from airflow.sdk.exceptions import AirflowFailException

from rafay_provider.settings import CONTRACTS_VARIABLE, billing_start_date

log = logging.getLogger(__name__)

ALLOW_RETROACTIVE = "allow_retroactive"


@contextmanager
def _billing_connection() -> Iterator[Any]:
    from rafay_provider.resources import billing_connection

    with billing_connection() as conn:
        yield conn


def allow_retroactive(context: Context) -> bool:
    """The run's conf ``allow_retroactive`` (default false); anything but true/false fails the step."""
    conf = dict(getattr(context.get("dag_run"), "conf", None) or {})
    params = dict(context.get("params") or {})
    value = conf.get(ALLOW_RETROACTIVE, params.get(ALLOW_RETROACTIVE, False))
    if not isinstance(value, bool):
        raise AirflowFailException(f'Bad run conf: {ALLOW_RETROACTIVE} must be true or false, got {value!r} '
                                   f'(e.g. {{"{ALLOW_RETROACTIVE}": true}})')
    return value


def sync_contracts(context: Context) -> dict[str, Any]:
    """Sync the contracts CSV the Variable names; fails naming the lines, or the contracts and closed
    months a refused change touches (the table is then left as it was)."""
    from rafay_billing.contracts.sync import ContractsError, RetroactiveChangeError
    from rafay_billing.periods.contract_changes import sync_and_rerate

    allow = allow_retroactive(context)
    uri = Variable.get(CONTRACTS_VARIABLE, default=None)
    if not uri:
        log.info("Variable %s is not set: billing.contracts is used as it is.", CONTRACTS_VARIABLE)
        return {"source": None}
    data = ObjectStoragePath(uri).read_bytes()
    dag_id = getattr(context.get("dag"), "dag_id", None) or "billing"
    actor = f"airflow:{dag_id}/{context['run_id']}"
    with _billing_connection() as conn:
        try:
            changes = sync_and_rerate(conn, data, allow_retroactive=allow, actor=actor,
                                      billing_start=billing_start_date())
        except (ContractsError, RetroactiveChangeError) as exc:
            raise AirflowFailException(f"Contracts {uri} rejected, table left unchanged:\n{exc}") from None
    result = changes.sync
    log.info("Contracts synced from %s: %s", uri, changes)
    for warning in result.warnings:
        log.warning("Contracts: %s", warning)
    return {
        "source": uri, "result": str(result), "warnings": list(result.warnings),
        "retroactive": {cid: [f"{m:%Y-%m}" for m in months] for cid, months in result.retroactive.items()},
        "rerated_days": changes.rerated_days,
        "corrected_days": [f"{c.org_id} {c.usage_date}" for c in changes.corrections],
    }


def sync_contracts_for_close(period_data: dict, context: Context) -> dict[str, Any]:
    """The close's contracts sync, before the month is re-rated and its contract charges computed; like
    the price book, not for a period that is already closed (nothing of it changes any more)."""
    from rafay_billing.period import parse_period
    from rafay_billing.periods.close import closed_period

    period = parse_period(period_data["period"])
    with _billing_connection() as conn:
        closed = closed_period(conn, period)
    if closed is not None:
        log.info("Period %s is already closed: the contracts are not synced by its close.", period.label)
        return {"closed": True}
    return sync_contracts(context)
