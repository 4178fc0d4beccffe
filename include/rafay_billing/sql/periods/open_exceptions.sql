-- Rating exceptions of the period's days that are neither billed by a later rating nor waived.
SELECT org_id, organization, usage_date, profile_type, profile, instance, instance_id, instance_key, record_seq, reason,
       detail, usage_hours, run_id
FROM billing.open_exceptions
WHERE usage_date >= %(period_start)s AND usage_date < %(period_end)s
ORDER BY org_id, usage_date, profile, instance_key, record_seq;
