-- 019: monthly recurring prices, MRC (issue 22, rule 3).
--
-- * billing.price_book accepts the units instance_month and gpu_month: instance prices (no dimension),
--   unit_price per month.
-- * A day whose instance is priced monthly keeps its day item (pricing_unit the month unit, unit_price
--   the month price, pricing_quantity the units billed monthly that day: 1 for instance_month, the GPU
--   count for gpu_month, 0 for a day without usage) with amount 0: the money is the month-level item the
--   close writes for (org, month, profile_type, profile, instance_key) (charge_level 'month',
--   charge_category 'usage', no contract). 016's amount check is relaxed for those day items only.
-- * billing.invoice_lines carries charge_level, so an invoice lists the monthly charge on its own line,
--   apart from its month-priced day items (amount 0) of the same price.
-- Idempotent on its own, like every migration file.

DO $$
BEGIN
    ALTER TABLE billing.price_book DROP CONSTRAINT IF EXISTS price_book_unit_known;
    ALTER TABLE billing.price_book
        ADD CONSTRAINT price_book_unit_known
            CHECK (unit IN ('instance_hour', 'gpu_hour', 'dimension_hour', 'instance_month', 'gpu_month'));

    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_amount_rounded_once;
    ALTER TABLE billing.charge_line_items
        ADD CONSTRAINT charge_line_items_amount_rounded_once CHECK (
            (charge_level = 'day' AND pricing_unit NOT IN ('instance_month', 'gpu_month')
             AND amount = round(pricing_quantity * unit_price, minor_unit))
            -- a month-priced day bills nothing itself: the month's MRC item carries the money
            OR (charge_level = 'day' AND pricing_unit IN ('instance_month', 'gpu_month') AND amount = 0)
            OR (charge_level = 'month' AND amount = round(amount, minor_unit)));

    -- a month-level usage item is an MRC: an instance's monthly charge, in a month unit, of no contract
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_mrc_items;
    ALTER TABLE billing.charge_line_items
        ADD CONSTRAINT charge_line_items_mrc_items CHECK (
            charge_level <> 'month' OR charge_category <> 'usage'
            OR (pricing_unit IN ('instance_month', 'gpu_month') AND contract_id IS NULL AND dimension = ''));
END
$$;

ALTER TABLE billing.invoice_lines ADD COLUMN IF NOT EXISTS charge_level text NOT NULL DEFAULT 'day';

DO $$
BEGIN
    ALTER TABLE billing.invoice_lines DROP CONSTRAINT IF EXISTS invoice_lines_level;
    ALTER TABLE billing.invoice_lines ADD CONSTRAINT invoice_lines_level CHECK (charge_level IN ('day', 'month'));
END
$$;
