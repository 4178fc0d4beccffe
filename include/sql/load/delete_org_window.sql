-- Replace, not append: drop what an earlier run landed for this org and window.
DELETE FROM billing.usage_records
WHERE window_start = %(window_start)s AND window_end = %(window_end)s AND org_id = %(org_id)s;
