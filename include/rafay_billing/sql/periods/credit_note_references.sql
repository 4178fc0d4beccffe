-- The invoices a period's credit notes correct: for each credit note, the issued documents of earlier
-- periods that carried the items its corrections re-bill (same org, day, instance and currency).
INSERT INTO billing.document_references (invoice_id, corrects_id)
SELECT DISTINCT cn.invoice_id, earlier.invoice_id
FROM billing.invoices AS cn
JOIN billing.charge_line_items AS c
  ON c.billing_period_start = cn.period_start AND c.org_id = cn.org_id AND c.currency = cn.currency
 AND c.charge_class = 'correction'
JOIN billing.charge_line_items AS issued
  ON issued.org_id = c.org_id AND issued.usage_date = c.usage_date AND issued.profile = c.profile
 AND issued.instance_key = c.instance_key AND issued.dimension = c.dimension AND issued.currency = c.currency
 AND issued.billing_period_start < cn.period_start
JOIN billing.invoices AS earlier
  ON earlier.org_id = issued.org_id AND earlier.currency = issued.currency
 AND earlier.period_start = issued.billing_period_start
WHERE cn.period_start = %(period_start)s AND cn.document_type = 'credit_note'
ORDER BY 1, 2;
