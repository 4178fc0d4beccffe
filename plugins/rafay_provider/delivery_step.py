"""The delivery DAG's steps (``rafay_billing_delivery``): issued documents to the billing system through
the HTTP provider's ``HttpHook`` (connection ``billing_delivery``). Imported inside tasks only.

The connection: ``host`` is the receiver's URL (``https://erp.example.com/rafay/documents``; or host,
``schema`` and ``port``), ``password`` the signing secret, ``login`` empty (``HttpHook`` would send a
login and password as Basic auth, handing the secret to anyone on the path: a login is refused), the
extra ``{"Authorization": "Bearer ..."}`` the receiver's own credential (``HttpHook`` sends extras as
headers) and optionally ``{"timeout": 30}`` or ``[connect, read]`` seconds. Every request passes an
explicit timeout, follows no redirect, and is checked here, not by the hook (which logs bodies).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from rafay_billing.delivery.policy import DeliveryConfigError, RetryPolicy
from rafay_billing.period import Period, PeriodError, parse_period
from rafay_provider import settings
from rafay_provider.resources import billing_connection

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = (10.0, 30.0)
DEFAULTS: dict[str, Any] = {
    "period": None, "max_attempts": settings.DELIVERY_MAX_ATTEMPTS,
    "backoff_seconds": settings.DELIVERY_BACKOFF_SECONDS,
    "max_retry_after_seconds": settings.DELIVERY_MAX_RETRY_AFTER_SECONDS,
}


class Target:
    """The checked ``billing_delivery`` connection: where to post, the secret, the timeout, the hook."""

    def __init__(self, conn_id: str = settings.DELIVERY_CONN_ID) -> None:
        from airflow.providers.http.hooks.http import HttpHook
        from airflow.sdk.log import mask_secret

        from rafay_billing.delivery.state import endpoint_id

        self.hook = HttpHook(method="POST", http_conn_id=conn_id)
        connection = self.hook.get_connection(conn_id)
        if connection.login:
            raise DeliveryConfigError(
                f"connection {conn_id} has a login: HttpHook would send login and password as Basic auth, "
                "and the password is the signing secret. Leave the login empty; put the receiver's own "
                'credential in the extra as {"Authorization": "Bearer ..."}'
            )
        if not connection.password:
            raise DeliveryConfigError(f"connection {conn_id} has no password: set it to the signing secret "
                                      "shared with the billing system")
        self.secret: str = connection.password
        mask_secret(self.secret)
        extra = connection.extra_dejson
        if extra.get("Authorization"):
            mask_secret(str(extra["Authorization"]))
        self.timeout = _timeout(extra.get("timeout"), conn_id)
        self.url: str = self.hook.url_from_endpoint(None)
        self.endpoint = endpoint_id(self.url)

    def transport(self) -> Any:
        """``transport(body, headers, timeout)`` over one ``HttpHook`` session (connection extras included)."""
        from requests import Request

        options = {"timeout": self.timeout, "check_response": False, "allow_redirects": False}
        session = self.hook.get_conn(extra_options=options)

        def post(body: bytes, headers: dict[str, str], timeout: tuple[float, float]) -> Any:
            prepared = session.prepare_request(Request("POST", self.url, data=body, headers=headers))
            return self.hook.run_and_check(session, prepared, {**options, "timeout": timeout})

        return post


def _timeout(value: Any, conn_id: str) -> tuple[float, float]:
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        pair = (float(value), float(value)) if isinstance(value, int | float | str) else tuple(map(float, value))
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or min(pair) <= 0:
        raise DeliveryConfigError(f"connection {conn_id}: extra timeout must be seconds > 0 or [connect, read], "
                                  f"got {value!r}")
    return pair[0], pair[1]


def _target() -> Target:
    try:
        return Target()
    except DeliveryConfigError as exc:
        raise AirflowFailException(str(exc)) from None


def _setting(context: Context, key: str) -> Any:
    conf = dict(getattr(context.get("dag_run"), "conf", None) or {})
    params = dict(context.get("params") or {})
    return conf.get(key, params.get(key, DEFAULTS[key]))


def run_periods(context: Context) -> list[Period]:
    """Conf/Param ``period`` (YYYY-MM), else the periods named by the closed-periods Asset events that
    triggered the run (none for a manual run without ``period``: it sends what is pending)."""
    label = _setting(context, "period")
    try:
        if label:
            return [parse_period(label)]
        labels = {
            str((getattr(event, "extra", None) or {}).get("period") or "")
            for events in (context.get("triggering_asset_events") or {}).values() for event in events
        }
        return sorted(parse_period(text) for text in labels if text)
    except PeriodError as exc:
        raise AirflowFailException(f"Bad delivery conf or asset event: {exc}") from None


def queue_documents(context: Context) -> dict:
    """Queue the run's periods' issued documents for the endpoint (documents queued before keep their row)."""
    from rafay_billing.delivery.state import enqueue_period

    target = _target()
    periods = run_periods(context)
    queued: dict[str, int] = {}
    with billing_connection() as conn:
        conn.autocommit = True
        for period in periods:
            queued[period.label] = len(enqueue_period(conn, target.endpoint, period))
            log.info("Period %s: %d document(s) newly queued for %s", period.label, queued[period.label],
                     target.endpoint)
    if not periods:
        log.info("No period named (no conf period, no closed-periods event): sending what is pending.")
    return {"endpoint": target.endpoint, "periods": [p.label for p in periods], "queued": queued}


def _policy(context: Context) -> RetryPolicy:
    try:
        return RetryPolicy(
            max_attempts=int(_setting(context, "max_attempts")),
            backoff_seconds=float(_setting(context, "backoff_seconds")),
            max_retry_after_seconds=float(_setting(context, "max_retry_after_seconds")),
        )
    except (DeliveryConfigError, TypeError, ValueError) as exc:
        raise AirflowFailException(f"Bad delivery conf: {exc}") from None


def deliver_documents(queued: dict, context: Context) -> dict:
    """Send every pending document of the endpoint; fail, naming them, when documents of the run's periods
    (or ones it tried) stay undelivered, after every other document was sent. Pending ones make the task
    retry (later, a longer backoff); only permanent failures fail it for good."""
    from rafay_billing.delivery.send import deliver_pending
    from rafay_billing.delivery.state import DeliveryBusy, period_statuses

    target = _target()
    if target.endpoint != queued["endpoint"]:
        raise AirflowFailException(f"the billing_delivery connection changed during the run "
                                   f"({queued['endpoint']} -> {target.endpoint}); run it again")
    policy = replace(_policy(context), timeout=target.timeout)
    with billing_connection() as conn:
        conn.autocommit = True
        try:
            report = deliver_pending(conn, target.endpoint, target.secret, target.transport(), policy)
        except DeliveryBusy as exc:
            raise RuntimeError(str(exc)) from None  # retried: the other run may be done by then
        except DeliveryConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        undelivered = dict(report.undelivered)
        for row in period_statuses(conn, target.endpoint, [parse_period(p) for p in queued["periods"]]):
            if row["status"] != "delivered" and row["invoice_number"] not in undelivered:
                undelivered[row["invoice_number"]] = f"{row['status']} since an earlier run (HTTP {row['last_status_code']})"
    if undelivered:
        message = (f"{len(undelivered)} document(s) not delivered to {target.endpoint}: "
                   + "; ".join(f"{number}: {why[:300]}" for number, why in undelivered.items())
                   + ". Failed ones are retried after `rafay-billing deliveries retry`; pending ones by the next run.")
        if all(why.startswith("failed") for why in undelivered.values()):
            raise AirflowFailException(message)
        raise RuntimeError(message)
    return {"endpoint": target.endpoint, "delivered": len(report.delivered), "requests": report.requests}
