-- 016: month-level charges are line items too (issue 22, rule 6).
--
-- * billing.charge_line_items gets charge_level ('day': a day's usage, as before; 'month': a charge of a
--   whole month, dated on its first day), charge_category ('usage', 'purchase': reservation fees and
--   fees, 'true_up': commitment shortfalls) and contract_id (the contract a charge comes from).
-- * charge_level is part of the primary key, so a month's items never collide with its first day's usage
--   items, and the rating (which replaces a day's items) only ever touches charge_level 'day'.
-- * A month-level item's window is its month; its amount is rounded once to the currency's minor unit,
--   but is not quantity x unit price (a reservation fee's display quantity is rounded to 6 places, a
--   true-up is the committed amount less the eligible spend). Purchases and true-ups are month-level
--   and name their contract.
-- * Month-level items have no usage record: the "every item has landed usage" trigger checks day items.
-- * billing.invoice_lines carries charge_category and contract_id: invoices show each contract charge
--   as its own line.
-- Closed-period immutability (004's triggers) is untouched: adding columns with defaults rewrites no row
-- through a trigger. Idempotent on its own, like every migration file.

ALTER TABLE billing.charge_line_items
    ADD COLUMN IF NOT EXISTS charge_level text NOT NULL DEFAULT 'day',
    ADD COLUMN IF NOT EXISTS charge_category text NOT NULL DEFAULT 'usage',
    ADD COLUMN IF NOT EXISTS contract_id text NULL;

ALTER TABLE billing.invoice_lines
    ADD COLUMN IF NOT EXISTS charge_category text NOT NULL DEFAULT 'usage',
    ADD COLUMN IF NOT EXISTS contract_id text NULL;

DO $$
BEGIN
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_level;
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_category;
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_contract_charges;
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_one_day;
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_window;
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_amount_rounded_once;
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_unit_known;
    ALTER TABLE billing.charge_line_items
        ADD CONSTRAINT charge_line_items_level CHECK (charge_level IN ('day', 'month')),
        ADD CONSTRAINT charge_line_items_category CHECK (charge_category IN ('usage', 'purchase', 'true_up')),
        -- a purchase or a true-up is a month-level charge of one contract
        ADD CONSTRAINT charge_line_items_contract_charges CHECK (
            charge_category = 'usage' OR (charge_level = 'month' AND contract_id IS NOT NULL AND contract_id <> '')),
        -- a day item covers its UTC day; a month item its calendar month, dated on the month's first day
        -- (003's name kept: it now says which window each level has)
        ADD CONSTRAINT charge_line_items_one_day CHECK (
            (charge_level = 'day' AND window_start = billing.utc_midnight(usage_date)
             AND window_end = window_start + interval '1 day')
            OR (charge_level = 'month' AND usage_date = billing.period_of(usage_date)
                AND window_start = billing.utc_midnight(usage_date)
                AND window_end = billing.utc_midnight((usage_date + interval '1 month')::date))),
        ADD CONSTRAINT charge_line_items_amount_rounded_once CHECK (
            (charge_level = 'day' AND amount = round(pricing_quantity * unit_price, minor_unit))
            OR (charge_level = 'month' AND amount = round(amount, minor_unit))),
        ADD CONSTRAINT charge_line_items_unit_known CHECK (pricing_unit IN (
            'instance_hour', 'gpu_hour', 'dimension_hour', 'instance_month', 'gpu_month', 'month', 'one_time'));

    ALTER TABLE billing.invoice_lines DROP CONSTRAINT IF EXISTS invoice_lines_category;
    ALTER TABLE billing.invoice_lines
        ADD CONSTRAINT invoice_lines_category CHECK (charge_category IN ('usage', 'purchase', 'true_up'));

    IF NOT EXISTS (
        SELECT 1 FROM pg_index AS i
        JOIN pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE c.relname = 'charge_line_items_pkey' AND c.relnamespace = 'billing'::regnamespace
          AND a.attname = 'charge_level'
    ) THEN
        ALTER TABLE billing.charge_line_items DROP CONSTRAINT charge_line_items_pkey;
        ALTER TABLE billing.charge_line_items ADD CONSTRAINT charge_line_items_pkey PRIMARY KEY (
            org_id, usage_date, profile_type, profile, instance_key, dimension, charge_level, charge_class,
            correction_seq, entry
        );
    END IF;
END
$$;

-- Every day item of a run is an instance of a usage record of that run (month-level items have none).
CREATE OR REPLACE FUNCTION billing.check_line_items_have_usage() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    orphan record;
BEGIN
    WITH slices AS MATERIALIZED (
        SELECT DISTINCT org_id, usage_date, run_id FROM new_items WHERE entry = 'charge' AND charge_level = 'day'
    )
    SELECT o.* INTO orphan FROM (
        SELECT n.org_id, n.usage_date, n.profile, n.instance_key, n.run_id FROM new_items AS n
        WHERE n.entry = 'charge' AND n.charge_level = 'day'
        EXCEPT
        SELECT s.org_id, s.usage_date, u.profile, u.instance_key, s.run_id
        FROM slices AS s
        CROSS JOIN LATERAL (
            SELECT r.profile, r.instance_key FROM billing.usage_records AS r
            WHERE r.org_id = s.org_id AND r.usage_date = s.usage_date AND r.run_id = s.run_id
            OFFSET 0
        ) AS u
    ) AS o
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'line item (%, %, %, %) of run % has no landed usage record of that run',
            orphan.org_id, orphan.usage_date, orphan.profile, orphan.instance_key, orphan.run_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
