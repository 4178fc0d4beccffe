-- A period's invoices in issue order, searchable by org id or name and invoice number, one page at a time.
SELECT invoice_number, org_id, organization, currency::text AS currency, subtotal, line_count, issued_at,
       count(*) OVER () AS total_rows
FROM billing.invoices
WHERE period_start = %(period_start)s
  AND (%(pattern)s::text IS NULL OR org_id ILIKE %(pattern)s OR organization ILIKE %(pattern)s
       OR invoice_number ILIKE %(pattern)s)
ORDER BY issuer, invoice_seq
LIMIT %(limit)s OFFSET %(offset)s;
