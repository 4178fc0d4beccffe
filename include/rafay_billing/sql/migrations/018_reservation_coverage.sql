-- 018: reservation coverage in rating (issue 22, rule 2).
--
-- * billing.charge_line_items gets covered_by ('' = an on-demand or ordinary item; else the id of the
--   reservation that covers this part of the instance's usage) and list_unit_price (a covered part's
--   on-demand unit price: what its quantity would have cost, for invoices' and FOCUS's list value).
-- * covered_by is part of the primary key, right after dimension: an instance split by a reservation is
--   a covered part (one per reservation that covers it) and an on-demand part that never collide, and
--   corrections of closed days match them part by part.
-- * A covered part is a day's usage item of the instance itself (no dimension), costs nothing
--   (unit_price 0, amount 0), names its reservation as contract_id and carries its list price.
-- * Invoices need no new column: a covered part names its contract, so it is an invoice line of its own.
-- Closed-period immutability (004's triggers) is untouched: ADD COLUMN with a constant default rewrites
-- no row through a trigger. Idempotent on its own, like every migration file.

ALTER TABLE billing.charge_line_items
    ADD COLUMN IF NOT EXISTS covered_by text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS list_unit_price numeric NULL;

DO $$
BEGIN
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_covered_part;
    ALTER TABLE billing.charge_line_items
        -- a covered part: a day's instance usage, free, of its reservation, with the price it would have had
        ADD CONSTRAINT charge_line_items_covered_part CHECK (
            covered_by = ''
            OR (charge_level = 'day' AND dimension = '' AND charge_category = 'usage' AND unit_price = 0
                AND amount = 0 AND contract_id IS NOT DISTINCT FROM covered_by AND list_unit_price IS NOT NULL
                AND list_unit_price >= 0 AND pricing_unit IN ('instance_hour', 'gpu_hour')));

    IF NOT EXISTS (
        SELECT 1 FROM pg_index AS i
        JOIN pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE c.relname = 'charge_line_items_pkey' AND c.relnamespace = 'billing'::regnamespace
          AND a.attname = 'covered_by'
    ) THEN
        ALTER TABLE billing.charge_line_items DROP CONSTRAINT charge_line_items_pkey;
        ALTER TABLE billing.charge_line_items ADD CONSTRAINT charge_line_items_pkey PRIMARY KEY (
            org_id, usage_date, profile_type, profile, instance_key, dimension, covered_by, charge_level,
            charge_class, correction_seq, entry
        );
    END IF;
END
$$;
