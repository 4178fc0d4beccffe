-- The documents the period would issue, as drafts: one per (org, currency) with line items carried by the
-- period, grouped exactly as periods/issue_invoices.sql groups them (a negative net is a credit note), with
-- the registry's name of the org, and no number (numbers are taken only when a document is issued).
WITH lines AS (
    SELECT li.org_id, li.currency, min(li.organization) AS organization, sum(li.amount) AS amount
    FROM billing.charge_line_items AS li
    WHERE li.billing_period_start = %(period_start)s
    GROUP BY li.org_id, li.currency, li.profile_type, li.profile, li.price_id, li.pricing_unit, li.unit_price,
             li.charge_class, li.charge_level
)
INSERT INTO billing.invoice_drafts (draft_set_id, org_id, organization, currency, document_type, subtotal, line_count)
SELECT %(draft_set_id)s, l.org_id, coalesce(r.organization, min(l.organization)), l.currency,
       CASE WHEN sum(l.amount) < 0 THEN 'credit_note' ELSE 'invoice' END, sum(l.amount), count(*)
FROM lines AS l
LEFT JOIN billing.org_registry AS r ON r.org_id = l.org_id
GROUP BY l.org_id, l.currency, r.organization
ORDER BY l.org_id, l.currency;
