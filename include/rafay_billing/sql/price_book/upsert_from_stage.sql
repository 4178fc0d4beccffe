-- New rows are inserted, changed rows updated (updated_at moves only when something changed).
-- unit_price is compared as text so the table keeps exactly what the CSV says ("2.10" stays "2.10").
INSERT INTO billing.price_book AS p
    (price_id, org_id, profile_type, profile, unit, unit_price, currency, effective_from, effective_to, updated_at,
     dimension, label_key, label_value)
SELECT price_id, org_id, profile_type, profile, unit, unit_price, currency, effective_from, effective_to, now(),
       dimension, label_key, label_value
FROM price_book_stage
ON CONFLICT (price_id) DO UPDATE SET
    org_id = EXCLUDED.org_id,
    profile_type = EXCLUDED.profile_type,
    profile = EXCLUDED.profile,
    unit = EXCLUDED.unit,
    unit_price = EXCLUDED.unit_price,
    currency = EXCLUDED.currency,
    effective_from = EXCLUDED.effective_from,
    effective_to = EXCLUDED.effective_to,
    dimension = EXCLUDED.dimension,
    label_key = EXCLUDED.label_key,
    label_value = EXCLUDED.label_value,
    updated_at = now()
WHERE (p.org_id, p.profile_type, p.profile, p.unit, p.unit_price::text, p.currency, p.effective_from, p.effective_to,
       p.dimension, p.label_key, p.label_value)
      IS DISTINCT FROM
      (EXCLUDED.org_id, EXCLUDED.profile_type, EXCLUDED.profile, EXCLUDED.unit, EXCLUDED.unit_price::text,
       EXCLUDED.currency, EXCLUDED.effective_from, EXCLUDED.effective_to, EXCLUDED.dimension, EXCLUDED.label_key,
       EXCLUDED.label_value)
RETURNING (xmax = 0) AS inserted;
