-- Open rating exceptions (neither billed by a later rating nor waived) that block closing the period:
-- those whose correction lands in it (billing_period_start, set when the exception is written): the
-- period's own days while it is open, and days of closed periods re-billed since their close (issue
-- 21, rule 1: their issued charges were reversed and the records no longer rate).
SELECT org_id, organization, usage_date, profile_type, profile, instance, instance_id, instance_key, record_seq, reason,
       detail, usage_hours, run_id, billing_period_start
FROM billing.open_exceptions
WHERE billing_period_start = %(period_start)s
ORDER BY org_id, usage_date, profile, instance_key, record_seq;
