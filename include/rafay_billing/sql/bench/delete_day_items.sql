-- Benchmark only: forget the line items of the given (org, day) slices, so the next rating of them is
-- a first rating again (as on the night the day's usage arrives). Open periods only: the closed-period
-- triggers refuse anything else.
DELETE FROM billing.charge_line_items AS li
USING unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
WHERE li.org_id = s.org_id AND li.usage_date = s.usage_date;
