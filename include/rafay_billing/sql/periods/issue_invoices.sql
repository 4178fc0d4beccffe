-- One document per (org, currency) with line items carried by the period (billing_period_start): its
-- regular items and the corrections that landed in it. A net of zero or more is an `invoice`,
-- numbered <issuer>-NNNNNN; a negative net (a refund correction, a currency change) is a
-- `credit_note`, numbered <issuer>-CN-NNNNNN. Each document type has its own gap-free counter per
-- issuer; numbers follow the counter's last number in (org, currency) order, and the insert itself
-- takes them (migration 011's trigger refuses a number that is not the counter's next). The subtotal is
-- the exact sum of the items' amounts, which are already rounded to the currency's minor unit (no
-- re-rounding); line_count is the number of document lines (insert_invoice_lines.sql groups the items
-- the same way).
WITH lines AS (
    SELECT li.org_id, li.currency, min(li.organization) AS organization, sum(li.amount) AS amount
    FROM billing.charge_line_items AS li
    WHERE li.billing_period_start = %(period_start)s
    GROUP BY li.org_id, li.currency, li.profile_type, li.profile, li.price_id, li.pricing_unit, li.unit_price,
             li.charge_class, li.charge_category, li.contract_id, li.charge_level
),
per_invoice AS (
    SELECT org_id, currency, min(organization) AS organization, sum(amount) AS subtotal, count(*) AS line_count,
           CASE WHEN sum(amount) < 0 THEN 'credit_note' ELSE 'invoice' END AS document_type
    FROM lines
    GROUP BY org_id, currency
),
numbered AS (
    SELECT p.*,
           coalesce((SELECT c.last_number FROM billing.invoice_counters AS c
                     WHERE c.issuer = %(issuer)s AND c.document_type = p.document_type), 0)
           + row_number() OVER (PARTITION BY p.document_type ORDER BY p.org_id, p.currency) AS seq
    FROM per_invoice AS p
)
INSERT INTO billing.invoices (
    invoice_id, issuer, document_type, invoice_seq, invoice_number, org_id, organization, currency, period_start,
    period_end, status, subtotal, line_count, issued_by
)
SELECT %(issuer)s || '-' || %(label)s || '-' || n.org_id || '-' || n.currency,
       %(issuer)s, n.document_type, n.seq,
       %(issuer)s || CASE n.document_type WHEN 'credit_note' THEN '-CN-' ELSE '-' END
           || lpad(n.seq::text, greatest(6, length(n.seq::text)), '0'),
       n.org_id, coalesce(r.organization, n.organization), n.currency, %(period_start)s, %(period_end)s,
       'issued', n.subtotal, n.line_count, %(actor)s
FROM numbered AS n
LEFT JOIN billing.org_registry AS r ON r.org_id = n.org_id
ORDER BY n.document_type, n.seq
RETURNING invoice_id;
