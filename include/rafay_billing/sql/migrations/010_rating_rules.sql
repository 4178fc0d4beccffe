-- 010: rating rules of issue 21.
--
-- * Line items are keyed by profile type too (rule 13): the partner source reports compute and service
--   profiles, and a compute and a service profile of one name can hold the same instance key. Without
--   profile_type in the key, their two items were a duplicate key that failed the rating of every org
--   rated with them, on every retry.
-- * The exception reason `usage_outside_day` (rule 9): a record's hours above the part of its
--   [start_time, end_time) inside the day, or an interval that does not meet the day.
-- Closed-period immutability (004's triggers) is untouched: changing the key rewrites no row. Idempotent
-- on its own, like every migration file.

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_index AS i
        JOIN pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE c.relname = 'charge_line_items_pkey' AND c.relnamespace = 'billing'::regnamespace
          AND a.attname = 'profile_type'
    ) THEN
        ALTER TABLE billing.charge_line_items DROP CONSTRAINT charge_line_items_pkey;
        ALTER TABLE billing.charge_line_items ADD CONSTRAINT charge_line_items_pkey PRIMARY KEY (
            org_id, usage_date, profile_type, profile, instance_key, dimension, charge_class, correction_seq, entry
        );
    END IF;

    ALTER TABLE billing.rating_exceptions DROP CONSTRAINT IF EXISTS rating_exceptions_reason_known;
    ALTER TABLE billing.rating_exceptions ADD CONSTRAINT rating_exceptions_reason_known CHECK (reason IN (
        'unpriced', 'ambiguous_price', 'missing_gpu_count', 'invalid_usage', 'usage_exceeds_window',
        'missing_dimension', 'usage_outside_day'));
END
$$;
