-- Closed billing periods, newest first, with their invoice count and totals per currency.
SELECT p.period_start, p.period_end, p.closed_at, p.closed_by, count(i.invoice_id) AS invoices,
       coalesce((SELECT jsonb_object_agg(t.currency, t.subtotal)
                 FROM (SELECT currency::text AS currency, sum(subtotal)::text AS subtotal FROM billing.invoices
                       WHERE period_start = p.period_start GROUP BY currency) AS t), '{}'::jsonb) AS totals
FROM billing.billing_periods AS p
LEFT JOIN billing.invoices AS i ON i.period_start = p.period_start
GROUP BY p.period_start, p.period_end, p.closed_at, p.closed_by
ORDER BY p.period_start DESC;
