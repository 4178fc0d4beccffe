-- 005: when an org leaves Rafay. A full org listing (not one limited by conf orgs) that no longer holds
-- an org marks it unlisted from the day after its last listing: later days are not expected of it,
-- neither by the daily coverage check nor by the monthly close. Days up to then still are, and an org
-- that comes back is expected again.
ALTER TABLE billing.org_registry ADD COLUMN IF NOT EXISTS last_listed_date date NULL;
ALTER TABLE billing.org_registry ADD COLUMN IF NOT EXISTS unlisted_from date NULL;
UPDATE billing.org_registry SET last_listed_date = first_listed_date WHERE last_listed_date IS NULL;
ALTER TABLE billing.org_registry ALTER COLUMN last_listed_date SET NOT NULL;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'org_registry_listed_range') THEN
        ALTER TABLE billing.org_registry
            ADD CONSTRAINT org_registry_listed_range CHECK (last_listed_date >= first_listed_date),
            ADD CONSTRAINT org_registry_unlisted_after_listed
                CHECK (unlisted_from IS NULL OR unlisted_from > last_listed_date);
    END IF;
END
$$;

-- The last day an org is expected to be billed, or NULL while it is listed.
CREATE OR REPLACE FUNCTION billing.expected_until(unlisted_from date) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN unlisted_from - 1;
