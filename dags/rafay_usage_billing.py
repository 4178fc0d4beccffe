"""Nightly Rafay usage billing: usage metering -> priced charge line items in PostgreSQL.

Bills the half-open UTC window of the run's data interval (midnight to midnight), or the window
given in the run's conf: whole UTC days, billed day by day, each (org, day) replacing what an earlier
run billed for it. One mapped task per organization extracts usage and lands the raw API responses;
later tasks load, rate and report. Catch-up is on from ``[rafay_billing] billing_start_date``, so
every day gets a run. Only ``airflow.sdk`` and the light settings module are imported at parse time:
the work happens in ``rafay_provider.pipeline``, imported inside the tasks.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, get_current_context, task

from rafay_provider import alerts, settings
from rafay_provider.payloads import LandedOrgDay, LoadResult, OrgBatch, RateResult, WindowPayload, batch_label

DOC = """
### Rafay usage billing
Bills `[window_start, window_end)` (UTC): by default the run's data interval, midnight to midnight.
Windows are whole UTC days, billed day by day: re-billing a day replaces that (org, day), so no hour is
billed twice. `billing.coverage` records each (org, day) as `billed`, `exceptions` or `failed`; the last
task fails, naming them, when a day of the 35 before the window's end is not billed.

**Trigger conf** (all optional):
`{"window_start": "2026-11-10T00:00:00Z", "window_end": "2026-11-11T00:00:00Z"}` or `{"days": 3}`
(the 3 days ending at the data interval end); `{"orgs": ["ujzde8g"]}` (Rafay org ids) re-bills only those orgs;
`{"settle_minutes": 0}` skips the wait for usage to settle.

Connections: `rafay_default` (type `rafay`), `billing_postgres`. Variables: `billing_data_uri`,
`billing_price_book_uri`. Pool: `rafay_api` bounds concurrent Rafay extraction tasks.
"""


@dag(
    dag_id=settings.BILLING_DAG_ID,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=settings.billing_start_datetime(),
    catchup=True,
    max_active_runs=3,
    # failure notices and (with [rafay_billing] deadline_alerts) a Deadline Alert, to connection billing_alerts
    on_failure_callback=alerts.run_failed,
    deadline=alerts.deadline(settings.BILLING_DAG_ID),
    doc_md=DOC,
    tags=["billing", "rafay"],
    user_defined_filters={"org_label": batch_label},
    default_args={
        "owner": "billing",
        "retries": 1,
        "retry_delay": settings.retry_delay(),
    },
    # JSON-schema typed: the trigger form offers date-time pickers, number fields and a list field,
    # and Airflow validates a run's conf against these before any task runs.
    params={
        "window_start": Param(
            None, type=["null", "string"], format="date-time", title="Window start (UTC)",
            description="Override: first instant billed, a UTC midnight, e.g. 2026-11-10T00:00:00Z "
            "(with window_end; leave both empty to bill the run's data interval)",
        ),
        "window_end": Param(
            None, type=["null", "string"], format="date-time", title="Window end (UTC, exclusive)",
            description="Override: end of the window, a UTC midnight after window_start, e.g. 2026-11-11T00:00:00Z",
        ),
        "days": Param(
            None, type=["null", "integer"], minimum=1, title="Days",
            description="Override: bill the N whole days ending at the data interval end, e.g. 3 "
            "(not together with window_start/window_end)",
        ),
        "orgs": Param(
            None, type=["null", "array"], items={"type": "string", "minLength": 1}, title="Organization ids",
            description="Limit the run to these Rafay org ids (metadata.name, not the display name), "
            "one per line, e.g. ujzde8g; empty = every organization",
        ),
        "settle_minutes": Param(
            settings.SETTLE_MINUTES, type="integer", minimum=0, title="Settle minutes",
            description="Wait this long after the window ends before pulling usage (0 = no wait)",
        ),
    },
)
def rafay_usage_billing() -> None:
    @task(retries=0)
    def resolve_window() -> WindowPayload:
        """Fails here, with what to fix, on a bad conf: before anything is read or written."""
        from rafay_provider import pipeline

        return pipeline.resolve_run_window(get_current_context())

    from rafay_provider.sensors.settle import UsageSettledSensor

    wait_for_usage_to_settle = UsageSettledSensor(
        task_id="wait_for_usage_to_settle",
        target_time="{{ ti.xcom_pull(task_ids='resolve_window')['settle_until'] }}",
    )

    @task
    def migrate_schema() -> list[str]:
        from rafay_provider import pipeline

        return pipeline.migrate_schema()

    @task(retries=0)
    def sync_price_book() -> dict:
        from rafay_provider import pipeline

        return pipeline.sync_price_book()

    @task(retries=0)
    def sync_contracts() -> dict:
        """Variable ``billing_contracts_uri`` into ``billing.contracts`` (conf ``allow_retroactive``)."""
        from rafay_provider import contracts_step

        return contracts_step.sync_contracts(get_current_context())

    @task(pool=settings.RAFAY_POOL)
    def list_orgs(window: WindowPayload) -> list[OrgBatch]:
        from rafay_provider import pipeline

        return pipeline.list_org_batches(window, get_current_context())

    @task(
        task_id=settings.EXTRACT_TASK,
        pool=settings.RAFAY_POOL,
        retries=settings.extract_retries(),
        retry_delay=settings.extract_retry_delay(),
        retry_exponential_backoff=2.0,
        # rendered from the task's own argument: Airflow renders it before the body runs (and again when
        # the try ends), so the instance carries the org's name while it runs, fails or waits for a retry
        map_index_template="{{ task.op_kwargs['batch'] | org_label }}",
    )
    def extract_org_batch(batch: OrgBatch, window: WindowPayload) -> list[LandedOrgDay]:
        """Task id ``extract_org``: one org per mapped instance (named after it), several only when the
        orgs outnumber ``[core] max_map_length``."""
        from rafay_provider import pipeline

        return pipeline.extract_batch(batch, window, get_current_context())

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def load_usage(window: WindowPayload, batches: list[OrgBatch] | None) -> LoadResult:
        """Runs even when some orgs failed: every (org, day) that extracted is loaded and billed."""
        from rafay_provider import pipeline

        return pipeline.load_usage(window, batches, get_current_context())

    @task
    def rate_window(window: WindowPayload, loaded: LoadResult) -> RateResult:
        from rafay_provider import pipeline

        return pipeline.rate(window, loaded, get_current_context())

    @task
    def publish_reports(window: WindowPayload, rated: RateResult) -> dict:
        from rafay_provider import pipeline

        return pipeline.publish_reports(window, get_current_context())

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def check_run(window: WindowPayload) -> dict:
        """Fails the run, after all good line items are written, when anything was not billed."""
        from rafay_provider import pipeline

        return pipeline.check_run(window, get_current_context())

    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
    def fail_if_any_task_failed() -> None:
        """Skipped on a clean run; fails the run when any task failed, whatever the other leaves did."""
        from rafay_provider import pipeline

        pipeline.fail_if_any_task_failed()

    window = resolve_window()
    schema = migrate_schema()
    prices = sync_price_book()
    contracts = sync_contracts()
    batches = list_orgs(window)
    window >> wait_for_usage_to_settle >> schema >> prices >> contracts >> batches
    extracted = extract_org_batch.partial(window=window).expand(batch=batches)
    loaded = load_usage(window, batches)
    extracted >> loaded
    rated = rate_window(window, loaded)
    reports = publish_reports(window, rated)
    checked = check_run(window)
    reports >> checked
    # every task is upstream of the watcher, so one failure anywhere fails the run
    [window, wait_for_usage_to_settle, schema, prices, contracts, batches, extracted, loaded, rated, reports, checked] >> (
        fail_if_any_task_failed()
    )


rafay_usage_billing()
