-- After delete_changed_items.sql: per re-rated (org, day) slice, the day items it still holds and the
-- line items the stage (pg_temp.rated_days) holds for it. Every item still held matched one staged item
-- on its whole key and values, so held = staged means the slice is complete (nothing to insert), and
-- held = 0 means none of its staged items can collide with the ledger. One index count per slice and
-- one pass over the stage, instead of the insert's anti-join hashing the ledger's items of every
-- slice when nothing is new (the immediate re-rating).
SELECT s.org_id, s.usage_date, h.held, coalesce(st.staged, 0) AS staged
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
CROSS JOIN LATERAL (
    SELECT count(*) AS held FROM billing.charge_line_items AS li
    WHERE li.org_id = s.org_id AND li.usage_date = s.usage_date AND li.charge_level = 'day'
) AS h
LEFT JOIN (
    SELECT r.org_id, r.usage_date, count(*) AS staged FROM pg_temp.rated_days AS r GROUP BY r.org_id, r.usage_date
) AS st ON st.org_id = s.org_id AND st.usage_date = s.usage_date;
