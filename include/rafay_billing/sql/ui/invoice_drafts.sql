-- The latest invoice draft sets (the Billing view's "Invoice drafts awaiting approval" section), newest first:
-- status, who drafted and decided, document count and totals per currency.
SELECT s.draft_set_id, s.period_start, s.issuer, s.status, s.drafted_at, s.drafted_by, s.decided_at, s.decided_by,
       s.decision, s.decision_comment, s.fingerprint,
       count(d.org_id) AS documents,
       coalesce(jsonb_object_agg(d.currency, d.total::text) FILTER (WHERE d.currency IS NOT NULL), '{}'::jsonb) AS totals
FROM billing.invoice_draft_sets AS s
LEFT JOIN (SELECT draft_set_id, currency::text AS currency, org_id, sum(subtotal) OVER w AS total
           FROM billing.invoice_drafts WINDOW w AS (PARTITION BY draft_set_id, currency)) AS d
  ON d.draft_set_id = s.draft_set_id
GROUP BY s.draft_set_id
ORDER BY s.draft_set_id DESC
LIMIT %(limit)s;
