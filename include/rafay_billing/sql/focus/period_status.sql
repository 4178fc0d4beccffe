-- Whether a billing period is closed, and how many line items its invoices carry.
SELECT (SELECT p.closed_at FROM billing.billing_periods AS p WHERE p.period_start = %(period_start)s) AS closed_at,
       (SELECT count(*) FROM billing.charge_line_items AS li
        WHERE li.billing_period_start = %(period_start)s)                                       AS line_items;
