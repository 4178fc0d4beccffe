-- The waivers of the period's exceptions (its days', and those matching an exception landing in it).
SELECT w.org_id, w.usage_date, w.profile, w.instance_key, w.reason, w.why, w.waived_by
FROM billing.exception_waivers AS w
WHERE (w.usage_date >= %(period_start)s AND w.usage_date < %(period_end)s)
   OR EXISTS (SELECT 1 FROM billing.rating_exceptions AS e
              WHERE e.billing_period_start = %(period_start)s AND e.org_id = w.org_id
                AND e.usage_date = w.usage_date AND e.profile = w.profile
                AND e.instance_key = w.instance_key AND e.reason = w.reason)
ORDER BY w.org_id, w.usage_date, w.profile, w.instance_key, w.reason;
