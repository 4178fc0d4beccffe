-- A full listing for a window from first_day that no longer holds an org last listed before it: the
-- org left, from the day after its last listing (or the earliest such window, whichever is first).
UPDATE billing.org_registry AS r
SET unlisted_from = least(coalesce(r.unlisted_from, 'infinity'::date), greatest(%(first_day)s::date, r.last_listed_date + 1))
WHERE NOT (r.org_id = ANY (%(org_ids)s::text[])) AND r.last_listed_date < %(first_day)s::date;
