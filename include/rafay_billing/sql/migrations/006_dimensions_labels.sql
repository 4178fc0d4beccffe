-- 006: per-dimension prices and billing labels (issue 11).
--
-- * The price book gains `dimension` (NULL = the instance itself, else a usage parameter name such as
--   CPU, Memory, Disk, GPU, matched case-insensitively) and the unit `dimension_hour` (which needs a
--   dimension; instance_hour and gpu_hour need none). `label_key`/`label_value` (both or neither)
--   make a row apply only to instances carrying that billing label (specificity + 8).
-- * Landed usage keeps each record's priced quantities per dimension (`dimensions`: lower-cased
--   parameter name -> quantity text, JSON null when the parameter's usage is unusable) and its
--   non-numeric billing labels (`labels`: name -> value).
-- * Line items carry `labels`; their key already holds `dimension` (004, '' = the instance). A
--   dimension_hour item names its dimension, an instance_hour or gpu_hour item has ''.
-- * Exceptions are per (record, dimension): one record can bill its CPU-hours while its missing Disk
--   parameter is a `missing_dimension` exception. Record-wide reasons use dimension ''.
-- Closed-period immutability (004's triggers) is untouched: adding columns rewrites no row through
-- the triggers, and corrections stay new rows. Idempotent on its own, like every migration file.

-- --- the price book ---------------------------------------------------------------------------------
ALTER TABLE billing.price_book
    ADD COLUMN IF NOT EXISTS dimension   text NULL,
    ADD COLUMN IF NOT EXISTS label_key   text NULL,
    ADD COLUMN IF NOT EXISTS label_value text NULL;

ALTER TABLE billing.price_book_history
    ADD COLUMN IF NOT EXISTS dimension   text NULL,
    ADD COLUMN IF NOT EXISTS label_key   text NULL,
    ADD COLUMN IF NOT EXISTS label_value text NULL;

DO $$
BEGIN
    ALTER TABLE billing.price_book DROP CONSTRAINT IF EXISTS price_book_unit_check;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'price_book_unit_known') THEN
        ALTER TABLE billing.price_book
            ADD CONSTRAINT price_book_unit_known
                CHECK (unit IN ('instance_hour', 'gpu_hour', 'dimension_hour')),
            ADD CONSTRAINT price_book_dimension_unit
                CHECK ((unit = 'dimension_hour') = (dimension IS NOT NULL)),
            ADD CONSTRAINT price_book_dimension_named CHECK (dimension IS NULL OR trim(dimension) <> ''),
            ADD CONSTRAINT price_book_label_pair CHECK ((label_key IS NULL) = (label_value IS NULL)),
            ADD CONSTRAINT price_book_label_named CHECK (label_key IS NULL OR trim(label_key) <> '');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION billing.keep_price_version() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO billing.price_book_history (price_id, org_id, profile_type, profile, unit, unit_price, currency,
                                            effective_from, effective_to, change, dimension, label_key,
                                            label_value)
    VALUES (OLD.price_id, OLD.org_id, OLD.profile_type, OLD.profile, OLD.unit, OLD.unit_price, OLD.currency,
            OLD.effective_from, OLD.effective_to, TG_OP, OLD.dimension, OLD.label_key, OLD.label_value);
    RETURN NULL;
END
$$;

-- --- landed usage -----------------------------------------------------------------------------------
ALTER TABLE billing.usage_records
    ADD COLUMN IF NOT EXISTS dimensions jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS labels     jsonb NOT NULL DEFAULT '{}'::jsonb;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'usage_records_dimensions_object') THEN
        ALTER TABLE billing.usage_records
            ADD CONSTRAINT usage_records_dimensions_object CHECK (jsonb_typeof(dimensions) = 'object'),
            ADD CONSTRAINT usage_records_labels_object CHECK (jsonb_typeof(labels) = 'object');
    END IF;
END
$$;

-- --- line items -------------------------------------------------------------------------------------
ALTER TABLE billing.charge_line_items
    ADD COLUMN IF NOT EXISTS labels jsonb NOT NULL DEFAULT '{}'::jsonb;

DO $$
BEGIN
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_pricing_unit_check;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'charge_line_items_unit_known') THEN
        ALTER TABLE billing.charge_line_items
            ADD CONSTRAINT charge_line_items_unit_known
                CHECK (pricing_unit IN ('instance_hour', 'gpu_hour', 'dimension_hour')),
            -- an instance item has no dimension; a dimension item names one
            ADD CONSTRAINT charge_line_items_dimension_unit
                CHECK ((pricing_unit = 'dimension_hour') = (dimension <> '')),
            ADD CONSTRAINT charge_line_items_labels_object CHECK (jsonb_typeof(labels) = 'object');
    END IF;
END
$$;

-- --- exceptions: one per (record, dimension) -------------------------------------------------------
ALTER TABLE billing.rating_exceptions ADD COLUMN IF NOT EXISTS dimension text NOT NULL DEFAULT '';

DO $$
BEGIN
    ALTER TABLE billing.rating_exceptions DROP CONSTRAINT IF EXISTS rating_exceptions_reason_check;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'rating_exceptions_reason_known') THEN
        ALTER TABLE billing.rating_exceptions ADD CONSTRAINT rating_exceptions_reason_known CHECK (reason IN (
            'unpriced', 'ambiguous_price', 'missing_gpu_count', 'invalid_usage', 'usage_exceeds_window',
            'missing_dimension'));
    END IF;
    IF EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname = 'rating_exceptions_pkey' AND i.indnatts = 3
    ) THEN
        ALTER TABLE billing.rating_exceptions DROP CONSTRAINT rating_exceptions_pkey;
        ALTER TABLE billing.rating_exceptions
            ADD CONSTRAINT rating_exceptions_pkey PRIMARY KEY (org_id, usage_date, record_seq, dimension);
    END IF;
END
$$;

-- open_exceptions (004) selects e.*: recreate it so it shows the new column too
CREATE OR REPLACE VIEW billing.open_exceptions AS
SELECT e.*
FROM billing.rating_exceptions AS e
WHERE NOT EXISTS (
    SELECT 1 FROM billing.exception_waivers AS w
    WHERE w.org_id = e.org_id AND w.usage_date = e.usage_date AND w.profile = e.profile
      AND w.instance_key = e.instance_key AND w.reason = e.reason
);
