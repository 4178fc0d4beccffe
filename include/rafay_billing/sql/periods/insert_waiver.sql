-- An operator's waiver of one (org, day, profile, instance, reason), with its audit entry.
WITH waiver AS (
    INSERT INTO billing.exception_waivers (org_id, usage_date, profile, instance_key, reason, why, waived_by)
    VALUES (%(org_id)s, %(usage_date)s, %(profile)s, %(instance_key)s, %(reason)s, %(why)s, %(actor)s)
    RETURNING *
),
audit AS (
    INSERT INTO billing.audit_log (action, actor, period_start, org_id, usage_date, detail)
    SELECT 'waiver', w.waived_by, billing.period_of(w.usage_date), w.org_id, w.usage_date,
           jsonb_build_object('profile', billing.clip_text(w.profile), 'instance_key', billing.clip_text(w.instance_key),
                              'reason', w.reason, 'why', billing.clip_text(w.why), 'records', %(records)s::int)
    FROM waiver AS w
)
SELECT org_id, usage_date, profile, instance_key, reason, why, waived_by, waived_at FROM waiver;
