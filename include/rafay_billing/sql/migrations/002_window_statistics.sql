-- 002: window_end is determined by window_start in practice; tell the planner, so a window's row
-- count is estimated from both columns together instead of multiplying their selectivities (which
-- underestimates a window by the number of windows in the table).
CREATE STATISTICS IF NOT EXISTS billing.usage_records_window_stats (dependencies)
    ON window_start, window_end FROM billing.usage_records;
CREATE STATISTICS IF NOT EXISTS billing.charge_line_items_window_stats (dependencies)
    ON window_start, window_end FROM billing.charge_line_items;
