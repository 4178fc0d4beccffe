-- Coverage of [first_day, end_day): one row per (org, day) the ledger knows.
SELECT org_id, usage_date, organization, status, reason, run_id, billed_run_id, usage_rows, line_items, exceptions,
       totals, detail, updated_at
FROM billing.coverage
WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
ORDER BY org_id, usage_date;
