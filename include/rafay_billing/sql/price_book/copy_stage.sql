COPY price_book_stage (price_id, org_id, profile_type, profile, unit, unit_price, currency, effective_from, effective_to,
                       dimension, label_key, label_value)
FROM STDIN;
