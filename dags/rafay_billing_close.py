"""Monthly close: the previous calendar month's (UTC) invoices, once, from the billed ledger.

Finance invoices a month once and never changes an issued invoice: a later change to a closed month
becomes a correction on a later invoice (the rating does that). This DAG waits until the month's days
are billed and settled, syncs the price book, re-reads its last days for late usage (one mapped task
per org), re-rates the month against the price book as it stands, refuses to close while something is
missing or unbilled or an earlier month is open, then closes the month and issues one document per
(org, currency) in one transaction, writes the documents and the FOCUS export, and emits the
closed-periods Asset. Only
``airflow.sdk`` and the light settings and sensor modules are imported at parse time: the work happens
in ``rafay_provider.close_pipeline``, imported inside the tasks.
"""

from __future__ import annotations

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, TriggerRule, dag, get_current_context, task

from rafay_provider import alerts, settings
from rafay_provider.sensors.period_ready import PeriodReadySensor

CLOSED_PERIODS = Asset(settings.CLOSED_PERIODS_URI)

DOC = """
### Rafay billing: monthly close
The run of `2026-11-01` closes **2026-10** (the month before its data interval's end); conf
`{"period": "2026-10"}` closes another month. Steps: wait (deferred) until every org of the registry
has every day of the month billed and the last day has settled; sync the price book; re-read the last
two days, one task per org (pool `rafay_api`), and re-bill any (org, day) whose usage changed (an org
whose re-read fails is named, the others go on); re-rate the month's days against the price book as it
stands; fail, naming them, on an earlier open month with billed days, missing or failed days or open
rating exceptions (the month's own, and those of closed days whose correction lands in it); close the
month and issue one document per (org, currency): an invoice `<issuer>-NNNNNN`, or for a negative net
a credit note `<issuer>-CN-NNNNNN`, each gap-free per issuer; write the documents and the FOCUS export
to `<landing root>/reports/period=YYYY-MM/`; emit the Asset `x-rafay-billing://closed-periods`.
Closing a closed month again is a no-op: it logs "already closed", re-reads, re-rates and checks
nothing, and issues nothing.

**Trigger conf** (all optional): `period` (YYYY-MM), `allow_exceptions` (close with open exceptions,
listing them), `settle_minutes` (60), `wait_minutes` (2880: how long to wait for the month's days after
its last day settled), `poke_seconds` (600). Open exceptions can be waived with
`rafay-billing waive ...` instead.

Config: `[rafay_billing] invoice_issuer` (default `RAFAY`). Connections: `rafay_default`,
`billing_postgres`. Variable: `billing_data_uri`.
"""


@dag(
    dag_id=settings.CLOSE_DAG_ID,
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    # the month of the first billing day: a deployment that starts mid-month closes that month too
    start_date=settings.billing_start_datetime().replace(day=1),
    catchup=True,
    max_active_runs=1,  # months close in order, so invoice numbers follow the months
    # failure notices and (with [rafay_billing] deadline_alerts) a Deadline Alert, to connection billing_alerts
    on_failure_callback=alerts.run_failed,
    deadline=alerts.deadline(settings.CLOSE_DAG_ID),
    doc_md=DOC,
    tags=["billing", "rafay", "invoices"],
    default_args={"owner": "billing", "retries": 1, "retry_delay": settings.retry_delay()},
    params={
        "period": Param(None, type=["null", "string"], pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
                        description="Close this month (YYYY-MM) instead of the one before the run's date"),
        "allow_exceptions": Param(False, type="boolean",
                                  description="Close even with open rating exceptions (they are listed)"),
        "settle_minutes": Param(settings.SETTLE_MINUTES, type="integer", minimum=0,
                                description="Usage of the last day is settled this long after the month ends"),
        "wait_minutes": Param(settings.CLOSE_WAIT_MINUTES, type="integer", minimum=0,
                              description="Give up waiting for the month's days this long after it settled"),
        "poke_seconds": Param(settings.CLOSE_POKE_SECONDS, type="integer", minimum=1, description="Check again this often while waiting"),
    },
)
def rafay_billing_close() -> None:
    @task(retries=0)
    def resolve_period() -> dict:
        """Fails here, with what to fix, on a bad conf: before anything is read or written."""
        from rafay_provider import close_pipeline

        return close_pipeline.resolve_close_period(get_current_context())

    @task(retries=0)
    def sync_price_book(period: dict) -> dict:
        from rafay_provider import close_pipeline

        return close_pipeline.sync_price_book(period)

    @task(retries=0)
    def sync_contracts(period: dict) -> dict:
        """Variable ``billing_contracts_uri`` (not for a closed period; conf ``allow_retroactive``)."""
        from rafay_provider import contracts_step

        return contracts_step.sync_contracts_for_close(period, get_current_context())

    @task(pool=settings.RAFAY_POOL, retries=2)
    def late_usage_orgs(period: dict) -> list:
        from rafay_provider import close_pipeline

        return close_pipeline.late_usage_orgs(period, get_current_context())

    @task(
        task_id="reread_late_usage",
        pool=settings.RAFAY_POOL,
        retries=settings.extract_retries(),  # like the daily DAG's extraction: one org's retry is its own
        retry_delay=settings.extract_retry_delay(),
        retry_exponential_backoff=2.0,
        map_index_template="{{ org_label }}",
    )
    def reread_late_usage(orgs: list, period: dict) -> dict:
        """One org's last days (a batch only past ``max_map_length``): its failure is its own."""
        from rafay_provider import close_pipeline

        context = get_current_context()
        context["org_label"] = close_pipeline.reread_label(orgs)  # type: ignore[typeddict-unknown-key]
        return close_pipeline.rebill_late_usage(orgs, period, context)

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def collect_late_usage(period: dict, batches: list | None) -> dict:
        """Names every org whose re-read failed, once all have finished."""
        from rafay_provider import close_pipeline

        return close_pipeline.collect_late_usage(period, batches, get_current_context())

    @task
    def rerate_period(period: dict) -> dict:
        from rafay_provider import close_pipeline

        return close_pipeline.rerate_period(period)

    @task(retries=0)
    def check_ready(period: dict) -> dict:
        from rafay_provider import close_pipeline

        return close_pipeline.check_ready(period)

    @task
    def issue_invoices(period: dict, rerated: dict) -> dict:
        """Idempotent: a retry after a commit finds the period closed and issues nothing."""
        from rafay_provider import close_pipeline

        return close_pipeline.issue_invoices(period, get_current_context(), rerated)

    @task(retries=0)
    def draft_invoices(period: dict, rerated: dict) -> dict:
        """close_approval = required: the documents as drafts, nothing numbered."""
        from rafay_provider import close_pipeline

        return close_pipeline.draft_invoices(period, get_current_context(), rerated)

    @task(task_id="issue_invoices")
    def issue_approved_invoices(period: dict) -> dict:
        """Acts on the answer: issues the drafts as they are, or fails with the reviewer's comment, or asks
        for a new close when the period changed. Idempotent like issue_invoices."""
        from rafay_provider import close_pipeline

        return close_pipeline.issue_approved(period, get_current_context())

    @task
    def write_documents(period: dict) -> dict:
        from rafay_provider import close_pipeline

        return close_pipeline.write_documents(period)

    @task
    def export_focus(period: dict) -> dict:
        from rafay_provider import close_pipeline

        return close_pipeline.export_focus(period)

    @task(outlets=[CLOSED_PERIODS], retries=0)
    def announce_closed_period(period: dict, issued: dict) -> dict:
        """Emits the closed-periods Asset (only when this task, the last, succeeds)."""
        from rafay_provider import close_pipeline

        return close_pipeline.announce_closed_period(period, issued, get_current_context())

    period = resolve_period()
    wait_for_period = PeriodReadySensor(task_id="wait_for_period", period_data=period, retries=2)
    synced = sync_price_book(period)
    contracts = sync_contracts(period)
    orgs = late_usage_orgs(period)
    reread = reread_late_usage.partial(period=period).expand(orgs=orgs)
    collected = collect_late_usage(period, orgs)
    rerated = rerate_period(period)
    checked = check_ready(period)
    if settings.close_approval() == "required":
        from rafay_provider.approval import CloseApprovalOperator, approval_params

        drafted = draft_invoices(period, rerated)
        approval = CloseApprovalOperator(task_id="approve_invoices", retries=0, params=approval_params())
        issued = issue_approved_invoices(period)
        checked >> drafted >> approval >> issued
    else:
        issued = issue_invoices(period, rerated)
    documents = write_documents(period)
    focus = export_focus(period)
    announced = announce_closed_period(period, issued)
    # the order of the close: price book, late usage, re-rating, readiness, issue
    wait_for_period >> synced >> contracts >> orgs >> reread >> collected >> rerated >> checked >> issued
    synced >> rerated
    issued >> documents >> focus >> announced


rafay_billing_close()
