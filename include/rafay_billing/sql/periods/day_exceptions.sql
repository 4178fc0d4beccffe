-- What an org's day does hold in exceptions (open or waived): named when a waiver matches none of them.
SELECT DISTINCT e.profile, e.instance_key, e.reason,
       NOT EXISTS (SELECT 1 FROM billing.open_exceptions AS o
                   WHERE o.org_id = e.org_id AND o.usage_date = e.usage_date AND o.record_seq = e.record_seq) AS waived
FROM billing.rating_exceptions AS e
WHERE e.org_id = %(org_id)s AND e.usage_date = %(usage_date)s
ORDER BY e.profile, e.instance_key, e.reason;
