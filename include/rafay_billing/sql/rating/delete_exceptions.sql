-- Re-billing a day replaces its exceptions, whichever run or window wrote them.
DELETE FROM billing.rating_exceptions AS e
USING unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
WHERE e.org_id = s.org_id AND e.usage_date = s.usage_date;
