-- The closed period starting on period_start, if it is closed.
SELECT period_start, period_end, closed_at, closed_by, allow_exceptions
FROM billing.billing_periods
WHERE period_start = %(period_start)s;
