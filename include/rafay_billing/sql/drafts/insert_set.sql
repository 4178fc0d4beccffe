-- A drafting of the period: what it carried (its fingerprint), for which issuer, by whom.
INSERT INTO billing.invoice_draft_sets (period_start, period_end, issuer, fingerprint, allow_exceptions, drafted_by)
VALUES (%(period_start)s, %(period_end)s, %(issuer)s, %(fingerprint)s, %(allow_exceptions)s, %(actor)s)
RETURNING draft_set_id, drafted_at;
