-- Which of the given (org, day) slices still hold line items (after delete_changed_items.sql: the
-- items the fresh rating left unchanged). One index probe per slice.
SELECT s.org_id, s.usage_date
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
WHERE EXISTS (
    SELECT 1 FROM billing.charge_line_items AS li WHERE li.org_id = s.org_id AND li.usage_date = s.usage_date AND li.charge_level = 'day'
);
