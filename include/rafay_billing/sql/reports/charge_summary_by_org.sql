-- Per-org charge summary of the days of one window (demo and operators' quick look).
SELECT organization, org_id, count(*) AS line_items, sum(usage_hours) AS hours, sum(amount) AS amount, currency
FROM billing.charge_line_items
WHERE window_start >= %(ws)s AND window_end <= %(we)s
GROUP BY organization, org_id, currency
ORDER BY organization, currency;
