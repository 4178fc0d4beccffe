-- Rows now landed by this run for this (org, day) (must equal what COPY loaded).
SELECT count(*) FROM billing.usage_records
WHERE org_id = %(org_id)s AND usage_date = %(usage_date)s AND run_id = %(run_id)s;
