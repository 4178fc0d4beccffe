-- Documents and lines issued for the period that differ from the approved drafts (either way round): empty
-- when the period's issued documents are exactly the drafts.
WITH drafted AS (
    SELECT d.org_id, d.organization, d.currency::text AS currency, d.document_type, d.subtotal, d.line_count,
           l.line_no, l.profile_type, l.profile, l.price_id, l.pricing_unit, l.unit_price, l.charge_class,
           l.quantity, l.amount, l.item_count
    FROM billing.invoice_drafts AS d
    JOIN billing.invoice_draft_lines AS l USING (draft_set_id, org_id, currency)
    WHERE d.draft_set_id = %(draft_set_id)s
),
issued AS (
    SELECT i.org_id, i.organization, i.currency::text AS currency, i.document_type, i.subtotal, i.line_count,
           l.line_no, l.profile_type, l.profile, l.price_id, l.pricing_unit, l.unit_price, l.charge_class,
           l.quantity, l.amount, l.item_count
    FROM billing.invoices AS i
    JOIN billing.invoice_lines AS l USING (invoice_id)
    WHERE i.period_start = %(period_start)s
)
SELECT 'drafted, not issued' AS side, * FROM (SELECT * FROM drafted EXCEPT ALL SELECT * FROM issued) AS a
UNION ALL
SELECT 'issued, not drafted', * FROM (SELECT * FROM issued EXCEPT ALL SELECT * FROM drafted) AS b
LIMIT 20;
