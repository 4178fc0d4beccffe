-- The rating exceptions a waiver of (org, day, profile, instance_key, reason) would close, with any
-- waiver already given for them.
SELECT e.record_seq, w.waived_by, w.waived_at, w.why
FROM billing.rating_exceptions AS e
LEFT JOIN billing.exception_waivers AS w
  ON w.org_id = e.org_id AND w.usage_date = e.usage_date AND w.profile = e.profile
 AND w.instance_key = e.instance_key AND w.reason = e.reason
WHERE e.org_id = %(org_id)s AND e.usage_date = %(usage_date)s AND e.profile = %(profile)s
  AND e.instance_key = %(instance_key)s AND e.reason = %(reason)s
ORDER BY e.record_seq;
