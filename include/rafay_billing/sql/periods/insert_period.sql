-- Close the period: from now on its items, usage rows and invoices are history (migration 004's triggers).
INSERT INTO billing.billing_periods (period_start, period_end, closed_by, allow_exceptions)
VALUES (%(period_start)s, %(period_end)s, %(actor)s, %(allow_exceptions)s)
RETURNING closed_at;
