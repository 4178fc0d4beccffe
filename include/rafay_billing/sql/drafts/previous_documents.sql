-- The previous period's issued documents per (org, currency): what the drafts are compared with.
SELECT org_id, currency::text, subtotal
FROM billing.invoices
WHERE period_start = (%(period_start)s::date - interval '1 month')::date;
