-- 009: the ledger does not take what a later read says as the truth (issue 21, rules 2 and 3).
--
-- * Every (org, day) extraction takes an `extraction_seq` from billing.extraction_seq before its first
--   request to Rafay: worker clocks differ, the database's sequence does not. billing.extractions has
--   one row per extraction that landed (its seq, run, record count and total instance hours) and what
--   became of it: `landed`, `rated` (the one extraction the day's items come from), `replaced` (rated
--   once, then a later extraction was), `held` (a shrinking re-read, not rated) or `superseded` (older
--   than the extraction the day holds, not rated).
-- * A later read that reads the same as the rated extraction and is therefore not rated (the close's
--   late-usage check) confirms it: `confirmed_seq`, so an older run cannot rate over it either.
-- * Coverage status `held`, reason `usage_shrank`: the day's newest extraction shrank below
--   [rafay_billing] shrink_guard_ratio of the hours the day holds (or to zero records); the earlier items
--   stand until an operator accepts it (rafay-billing accept-shrink) or a later read passes the guard.
CREATE SEQUENCE IF NOT EXISTS billing.extraction_seq AS bigint;

CREATE TABLE IF NOT EXISTS billing.extractions (
    extraction_seq  bigint      NOT NULL,
    org_id          text        NOT NULL,
    usage_date      date        NOT NULL,
    run_id          text        NOT NULL,
    records         integer     NOT NULL CHECK (records >= 0),
    instance_hours  numeric     NOT NULL,
    status          text        NOT NULL DEFAULT 'landed'
        CHECK (status IN ('landed', 'rated', 'replaced', 'held', 'superseded')),
    detail          text        NULL,
    landed_at       timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz NULL,
    accepted_by     text        NULL,
    accepted_at     timestamptz NULL,
    accept_reason   text        NULL,
    -- a later read of the day that was not rated because it read the same (the close's late-usage
    -- check): the day's rated extraction stands as of that read's seq
    confirmed_seq   bigint      NULL,
    CONSTRAINT extractions_pkey PRIMARY KEY (extraction_seq),
    CONSTRAINT extractions_acceptance_complete
        CHECK ((accepted_at IS NULL) = (accepted_by IS NULL) AND (accepted_at IS NULL) = (accept_reason IS NULL)),
    CONSTRAINT extractions_acceptance_explained CHECK (accept_reason IS NULL OR btrim(accept_reason) <> '')
);

-- A day holds at most one extraction: the one its items were rated from.
CREATE UNIQUE INDEX IF NOT EXISTS extractions_one_rated_per_day
    ON billing.extractions (org_id, usage_date) WHERE status = 'rated';
CREATE INDEX IF NOT EXISTS extractions_org_day_run_idx
    ON billing.extractions (org_id, usage_date, run_id, extraction_seq);
CREATE INDEX IF NOT EXISTS extractions_run_day_idx ON billing.extractions (run_id, usage_date);

-- What an extraction read never changes once it was decided on, and no extraction is forgotten.
CREATE OR REPLACE FUNCTION billing.guard_extraction_history() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'billing.extractions is append-only: extraction % of % % (run %) cannot be deleted',
            OLD.extraction_seq, OLD.org_id, OLD.usage_date, OLD.run_id
            USING ERRCODE = '23000';
    END IF;
    IF (NEW.extraction_seq, NEW.org_id, NEW.usage_date, NEW.run_id)
           IS DISTINCT FROM (OLD.extraction_seq, OLD.org_id, OLD.usage_date, OLD.run_id)
       OR (OLD.status <> 'landed' AND (NEW.records, NEW.instance_hours) IS DISTINCT FROM (OLD.records, OLD.instance_hours))
    THEN
        RAISE EXCEPTION 'extraction % of % % (run %) was % already: what it read cannot change',
            OLD.extraction_seq, OLD.org_id, OLD.usage_date, OLD.run_id, OLD.status
            USING ERRCODE = '23000';
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS extractions_history ON billing.extractions;
CREATE TRIGGER extractions_history BEFORE UPDATE OR DELETE ON billing.extractions
    FOR EACH ROW EXECUTE FUNCTION billing.guard_extraction_history();

-- Days rated before this migration hold the extraction of the run that billed them.
INSERT INTO billing.extractions (extraction_seq, org_id, usage_date, run_id, records, instance_hours, status, decided_at)
SELECT nextval('billing.extraction_seq'), c.org_id, c.usage_date, c.billed_run_id, u.records, u.hours, 'rated', now()
FROM billing.coverage AS c
CROSS JOIN LATERAL (
    SELECT count(*)::integer AS records, coalesce(sum(r.usage_hours) FILTER (WHERE r.usage_hours >= 0 AND r.invalid_reason IS NULL), 0) AS hours
    FROM billing.usage_records AS r
    WHERE r.org_id = c.org_id AND r.usage_date = c.usage_date AND r.run_id = c.billed_run_id
) AS u
WHERE c.billed_run_id IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM billing.extractions AS e
      WHERE e.org_id = c.org_id AND e.usage_date = c.usage_date AND e.status = 'rated'
  );

-- --- coverage `held` -------------------------------------------------------------------------------
ALTER TABLE billing.coverage ADD COLUMN IF NOT EXISTS reason text NULL;
ALTER TABLE billing.coverage DROP CONSTRAINT IF EXISTS coverage_status_check;
ALTER TABLE billing.coverage DROP CONSTRAINT IF EXISTS coverage_billed_by_this_run;
ALTER TABLE billing.coverage DROP CONSTRAINT IF EXISTS coverage_exceptions_counted;
ALTER TABLE billing.coverage DROP CONSTRAINT IF EXISTS coverage_failure_explained;
ALTER TABLE billing.coverage DROP CONSTRAINT IF EXISTS coverage_held_reason;
ALTER TABLE billing.coverage
    ADD CONSTRAINT coverage_status_check CHECK (status IN ('billed', 'exceptions', 'failed', 'held')),
    -- failed and held days keep an earlier run's items (billed_run_id); run_id names the run that failed
    -- or whose extraction is held
    ADD CONSTRAINT coverage_billed_by_this_run CHECK (status IN ('failed', 'held') OR billed_run_id = run_id),
    ADD CONSTRAINT coverage_exceptions_counted
        CHECK ((status = 'exceptions') = (exceptions > 0) OR status IN ('failed', 'held')),
    ADD CONSTRAINT coverage_failure_explained CHECK (status NOT IN ('failed', 'held') OR detail IS NOT NULL),
    ADD CONSTRAINT coverage_held_reason
        CHECK ((status = 'held') = (reason IS NOT NULL) AND (reason IS NULL OR reason = 'usage_shrank'));

-- A day stays `held` while an extraction newer than the one it holds is held, whoever writes its
-- coverage: re-rating the extraction the day holds (a price change, a retry, the close's re-rating)
-- must not clear the hold, or the close would issue without the operator's decision.
CREATE OR REPLACE FUNCTION billing.coverage_keeps_hold() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    pending record;
BEGIN
    -- (`held` too: in an INSERT ... ON CONFLICT DO UPDATE, EXCLUDED already went through this trigger)
    IF NEW.status IN ('billed', 'exceptions', 'held') THEN
        SELECT e.run_id, e.detail INTO pending
        FROM billing.extractions AS e
        WHERE e.org_id = NEW.org_id AND e.usage_date = NEW.usage_date AND e.status = 'held'
          AND e.extraction_seq > coalesce((
              SELECT greatest(r.extraction_seq, r.confirmed_seq) FROM billing.extractions AS r
              WHERE r.org_id = NEW.org_id AND r.usage_date = NEW.usage_date AND r.status = 'rated'
          ), 0)
        ORDER BY e.extraction_seq DESC
        LIMIT 1;
        IF FOUND THEN
            NEW.status := 'held';
            NEW.reason := 'usage_shrank';
            NEW.run_id := pending.run_id;
            NEW.detail := pending.detail;
        END IF;
    END IF;
    IF NEW.status <> 'held' THEN
        NEW.reason := NULL;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS coverage_keeps_hold ON billing.coverage;
CREATE TRIGGER coverage_keeps_hold BEFORE INSERT OR UPDATE ON billing.coverage
    FOR EACH ROW EXECUTE FUNCTION billing.coverage_keeps_hold();

-- --- the audit log records acceptances ---------------------------------------------------------------
-- Add 'accept_shrink' to whatever actions the log allows (other migrations add their own), never
-- replacing the list.
DO $$
DECLARE
    def text;
BEGIN
    SELECT pg_get_constraintdef(oid) INTO def FROM pg_constraint
    WHERE conrelid = 'billing.audit_log'::regclass AND conname = 'audit_log_action_check';
    IF def IS NOT NULL AND position('''accept_shrink''' IN def) = 0 THEN
        ALTER TABLE billing.audit_log DROP CONSTRAINT audit_log_action_check;
        EXECUTE 'ALTER TABLE billing.audit_log ADD CONSTRAINT audit_log_action_check '
            || replace(def, 'ARRAY[', 'ARRAY[''accept_shrink''::text, ');
    END IF;
END
$$;
