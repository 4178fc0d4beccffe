-- Waive every open exception that blocks the period's close (its own days' and those of closed days whose
-- correction lands in it) with one reason, each with its audit entry.
WITH open_keys AS (
    SELECT org_id, usage_date, profile, instance_key, reason, count(*) AS records
    FROM billing.open_exceptions
    WHERE billing_period_start = %(period_start)s
    GROUP BY org_id, usage_date, profile, instance_key, reason
),
waiver AS (
    INSERT INTO billing.exception_waivers (org_id, usage_date, profile, instance_key, reason, why, waived_by)
    SELECT org_id, usage_date, profile, instance_key, reason, %(why)s, %(actor)s FROM open_keys
    ON CONFLICT DO NOTHING
    RETURNING *
),
audit AS (
    INSERT INTO billing.audit_log (action, actor, period_start, org_id, usage_date, detail)
    SELECT 'waiver', w.waived_by, billing.period_of(w.usage_date), w.org_id, w.usage_date,
           jsonb_build_object('profile', billing.clip_text(w.profile), 'instance_key', billing.clip_text(w.instance_key),
                              'reason', w.reason, 'why', billing.clip_text(w.why), 'records', k.records)
    FROM waiver AS w
    JOIN open_keys AS k USING (org_id, usage_date, profile, instance_key, reason)
)
SELECT w.org_id, w.usage_date, w.profile, w.instance_key, w.reason, w.why, w.waived_by, w.waived_at, k.records
FROM waiver AS w
JOIN open_keys AS k USING (org_id, usage_date, profile, instance_key, reason)
ORDER BY w.org_id, w.usage_date, w.profile, w.instance_key, w.reason;
