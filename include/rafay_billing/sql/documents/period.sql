-- The closed billing period whose documents are written (no row: the period is still open).
SELECT period_start, period_end, closed_at, closed_by, allow_exceptions
FROM billing.billing_periods
WHERE period_start = %(period_start)s;
