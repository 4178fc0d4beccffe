-- Rows now landed for this org and window (must equal what COPY loaded).
SELECT count(*) FROM billing.usage_records
WHERE window_start = %(window_start)s AND window_end = %(window_end)s AND org_id = %(org_id)s;
