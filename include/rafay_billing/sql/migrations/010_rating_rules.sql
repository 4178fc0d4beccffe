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

-- A usage record's start_time/end_time text as a time, NULL when it is not an ISO 8601 date and time
-- (zone optional: rating reads times in a UTC session) or not a real one; never an error, so one odd
-- record cannot fail a rating. Rating casts directly (fast) and uses this only to rate again after a
-- cast failed (rating/rate_days.sql, safe_times).
CREATE OR REPLACE FUNCTION billing.record_time(t text) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE
        WHEN t ~ '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?([Zz]|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?$' THEN
            CASE  -- nested: the day is checked only once the text is known to be digits where they belong
                WHEN substr(t, 9, 2)::int <= extract(day FROM make_date(substr(t, 1, 4)::int, substr(t, 6, 2)::int, 1)
                                                          + interval '1 month - 1 day')
                THEN t::timestamptz
            END
    END;
