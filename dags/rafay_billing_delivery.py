"""Delivery: each document a close issued, posted once to the provider's billing system.

Scheduled on the close's Asset (``x-rafay-billing://closed-periods``): a close that issues documents
queues them for the ``billing_delivery`` endpoint and this DAG posts every pending one, signed, with
its document id as ``Idempotency-Key``. Only ``airflow.sdk`` and the light settings module are imported
at parse time: the work happens in ``rafay_provider.delivery_step``, imported inside the tasks.
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, dag, get_current_context, task

from rafay_provider import settings

DOC = """
### Rafay billing: delivery to the billing system
Runs when `rafay_billing_close` emits `x-rafay-billing://closed-periods`: queues the closed period's
issued documents for the endpoint of connection `billing_delivery` (type `http`), then posts every
pending document as signed JSON (`X-Rafay-Billing-Signature`, `Idempotency-Key: <document id>`).
A 2xx delivers it (final: never sent again); 5xx, 429, timeouts and resets are retried with backoff,
honouring `Retry-After`; another 4xx fails it, with the response kept. One failing document never
holds up the others; the run fails naming every document of its periods that is not delivered.

**Trigger conf** (all optional): `period` (YYYY-MM: queue that closed period's documents, e.g. one
issued before delivery was set up), `max_attempts`, `backoff_seconds`, `max_retry_after_seconds`.
See and retry with `rafay-billing deliveries list|retry`.

Connections: `billing_delivery` (host = receiver URL, password = signing secret, login empty,
extra `{"Authorization": "..."}`), `billing_postgres`.
"""


@dag(
    dag_id=settings.DELIVERY_DAG_ID,
    schedule=[Asset(settings.CLOSED_PERIODS_URI)],
    catchup=False,
    max_active_runs=1,  # one run sends to the endpoint at a time (the database's lock backs this up)
    doc_md=DOC,
    tags=["billing", "rafay", "delivery"],
    default_args={"owner": "billing", "retries": 2, "retry_delay": settings.retry_delay()},
    params={
        "period": Param(None, type=["null", "string"], pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
                        description="Queue this closed period's documents (YYYY-MM) besides what is pending"),
        "max_attempts": Param(settings.DELIVERY_MAX_ATTEMPTS, type="integer", minimum=1,
                              description="Requests per document in one try of the task"),
        "backoff_seconds": Param(settings.DELIVERY_BACKOFF_SECONDS, type="number", minimum=0,
                                 description="First wait after a transient failure; doubles per attempt"),
        "max_retry_after_seconds": Param(settings.DELIVERY_MAX_RETRY_AFTER_SECONDS, type="number", minimum=0,
                                         description="A longer Retry-After leaves the document for a later try"),
    },
)
def rafay_billing_delivery() -> None:
    @task(retries=1)
    def queue_documents() -> dict:
        """Fails at once, saying what to fix, on a bad connection or conf."""
        from rafay_provider import delivery_step

        return delivery_step.queue_documents(get_current_context())

    @task
    def deliver_documents(queued: dict) -> dict:
        """Idempotent: delivered documents are never sent again, so a retry sends only what is left."""
        from rafay_provider import delivery_step

        return delivery_step.deliver_documents(queued, get_current_context())

    deliver_documents(queue_documents())


rafay_billing_delivery()
