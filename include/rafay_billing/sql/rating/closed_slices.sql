-- Which of the given (org, day) slices fall in a closed billing period.
SELECT s.org_id, s.usage_date
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
JOIN billing.billing_periods AS p ON p.period_start = billing.period_of(s.usage_date);
