-- Replace, not append: drop what an earlier try of this run landed for this (org, day). Other runs'
-- usage of the day is kept for audit.
DELETE FROM billing.usage_records
WHERE org_id = %(org_id)s AND usage_date = %(usage_date)s AND run_id = %(run_id)s;
