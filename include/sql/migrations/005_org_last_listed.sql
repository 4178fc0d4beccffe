-- 005: an org is expected to be billed from the first day a listing covered to the last one. An org
-- that left Rafay (no longer listed) no longer makes later days "missing", neither in the daily
-- coverage check nor for the monthly close.
ALTER TABLE billing.org_registry ADD COLUMN IF NOT EXISTS last_listed_date date NULL;
UPDATE billing.org_registry SET last_listed_date = first_listed_date WHERE last_listed_date IS NULL;
ALTER TABLE billing.org_registry ALTER COLUMN last_listed_date SET NOT NULL;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'org_registry_listed_range') THEN
        ALTER TABLE billing.org_registry
            ADD CONSTRAINT org_registry_listed_range CHECK (last_listed_date >= first_listed_date);
    END IF;
END
$$;
