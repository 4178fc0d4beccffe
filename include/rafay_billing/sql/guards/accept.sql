-- An operator accepts a held extraction: the guard lets it through (rated next, same transaction).
UPDATE billing.extractions
SET accepted_by = %(actor)s, accepted_at = now(), accept_reason = %(reason)s
WHERE extraction_seq = %(extraction_seq)s;
