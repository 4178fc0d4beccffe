-- The whole price book, for tests and operators.
SELECT price_id, org_id, profile_type, profile, unit, unit_price, currency, effective_from, effective_to, updated_at,
       dimension, label_key, label_value
FROM billing.price_book
ORDER BY price_id;
