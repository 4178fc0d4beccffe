-- The closed billing periods (months, first day), oldest first.
SELECT period_start FROM billing.billing_periods ORDER BY period_start;
