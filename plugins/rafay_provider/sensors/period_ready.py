"""Wait until a billing period can be closed, without holding a worker slot while it waits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator, timezone
from airflow.sdk.exceptions import AirflowFailException


def period_wait_status(label: str) -> tuple[str, str]:
    """``("closed" | "ready" | "waiting", what to log)``: whether the period's coverage is complete."""
    from rafay_billing.period import parse_period
    from rafay_billing.periods.close import readiness
    from rafay_billing.window import format_utc
    from rafay_provider.resources import billing_connection

    period = parse_period(label)
    with billing_connection() as conn:
        state = readiness(conn, period)
    if state.closed is not None:
        return "closed", (f"Period {label} was closed at {format_utc(state.closed.closed_at)} by "
                          f"{state.closed.closed_by}: nothing to wait for.")
    if state.uncovered:
        return "waiting", state.describe(allow_exceptions=True)
    return "ready", f"Every expected (org, day) of period {label} is billed."


class PeriodReadySensor(BaseOperator):
    """Succeeds once every org of the registry has every day of the period billed (or the period is
    already closed) and the period's last day has settled; until then it defers itself to the triggerer
    (a ``DateTimeTrigger`` every ``poke_seconds``) and checks again, and it fails, naming what is still
    missing, ``wait_minutes`` after the last day settled.

    Why: the close runs at 00:00 UTC on the 1st, when the daily DAG has not billed the last day yet
    (it waits for usage to settle first); a backfilled close of an old month is ready at once and
    succeeds without a deferral. ``period_data`` is ``resolve_period``'s output (period, settle_until,
    wait_until, wait_minutes, poke_seconds).
    """

    template_fields = ("period_data",)
    ui_color = "#e8f4ff"

    def __init__(self, *, period_data: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.period_data = period_data

    def _moment(self, key: str) -> datetime:
        return timezone.parse(self.period_data[key])

    def execute(self, context: Any) -> None:
        # the wait is counted from now (or from when the last day settles): a cleared task waits afresh
        start = max(timezone.utcnow(), self._moment("settle_until"))
        return self._check(start + timedelta(minutes=int(self.period_data["wait_minutes"])))

    def resume(self, context: Any, event: Any = None, deadline: str | None = None) -> None:
        """Re-check after a deferral. ``airflow dags test`` resumes with the event only (no kwargs): the
        deadline is then the one ``resolve_period`` computed."""
        return self._check(timezone.parse(deadline) if deadline else self._moment("wait_until"))

    def _check(self, deadline: datetime) -> None:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        now = timezone.utcnow()
        settle_until = self._moment("settle_until")
        status, message = period_wait_status(self.period_data["period"])
        if status == "closed" or (status == "ready" and now >= settle_until):
            self.log.info("%s", message)
            return None
        waiting_for = message if status == "waiting" else f"the period's last day settles at {settle_until.isoformat()}"
        if now >= deadline:
            raise AirflowFailException(
                f"Gave up waiting for period {self.period_data['period']} at {deadline.isoformat()} "
                f"({self.period_data['wait_minutes']} min after its last day settled): {waiting_for}"
            )
        wake = min(deadline, now + timedelta(seconds=int(self.period_data["poke_seconds"])))
        if status == "ready":
            wake = min(wake, settle_until)
        self.log.info("Not ready (%s); deferred, no worker slot held, until %s.", waiting_for, wake.isoformat())
        self.defer(
            trigger=DateTimeTrigger(moment=wake), method_name="resume", kwargs={"deadline": deadline.isoformat()}
        )
