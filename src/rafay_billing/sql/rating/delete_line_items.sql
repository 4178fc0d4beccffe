-- Re-billing a day replaces its line items, whichever run or window wrote them: no hour billed twice.
DELETE FROM billing.charge_line_items AS li
USING unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
WHERE li.org_id = s.org_id AND li.usage_date = s.usage_date;
