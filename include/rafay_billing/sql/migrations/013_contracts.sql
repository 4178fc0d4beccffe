-- 013: contracts (issue 22): reservations, minimum commitments and fees, every version kept.
--
-- * billing.contract_versions keeps every version of every contract the sync (rafay_billing.contracts.sync)
--   ever stored: a changed contract gets a new version and the old one's valid_to is set; nothing is ever
--   deleted (a term_end ends a contract, not a deletion). The view billing.contracts is the current one
--   of each contract (valid_to IS NULL).
-- * The schema holds the CSV's rules too, so hand-written SQL cannot store what the sync would refuse:
--   kinds, units, frequencies, the cells each kind uses, terms on UTC midnights for commitments and
--   monthly fees, billing_timing 'arrears' and true_up_period 'month' only (for now).
-- * A version is history: DELETE and TRUNCATE are refused, and UPDATE may only close the current
--   version (valid_to from NULL to a time), changing nothing else.
-- * The audit log accepts action 'contracts_retroactive': a sync that changed what a closed month
--   charged or covered, accepted with allow_retroactive. The action check is extended, not replaced,
--   so the actions other migrations add are kept.
-- Idempotent on its own, like every migration file.

CREATE TABLE IF NOT EXISTS billing.contract_versions (
    contract_id     text        NOT NULL CHECK (contract_id <> ''),
    version         integer     NOT NULL CHECK (version > 0),
    org_id          text        NOT NULL CHECK (org_id <> ''),
    kind            text        NOT NULL CHECK (kind IN ('reservation', 'commitment', 'fee')),
    profile_type    text        NOT NULL DEFAULT 'compute' CHECK (profile_type <> ''),
    profile         text        NULL CHECK (profile <> ''),
    unit            text        NULL CHECK (unit IN ('instance_hour', 'gpu_hour')),
    quantity        numeric     NULL CHECK (quantity > 0),
    unit_price      numeric     NULL CHECK (unit_price >= 0),
    amount          numeric     NULL CHECK (amount >= 0),
    currency        char(3)     NOT NULL REFERENCES billing.currencies (currency),
    frequency       text        NULL CHECK (frequency IN ('monthly', 'one_time')),
    term_start      timestamptz NOT NULL,
    term_end        timestamptz NULL,
    billing_timing  text        NOT NULL DEFAULT 'arrears' CHECK (billing_timing = 'arrears'),
    true_up_period  text        NOT NULL DEFAULT 'month' CHECK (true_up_period = 'month'),
    description     text        NOT NULL DEFAULT '',
    source_line     integer     NULL,
    valid_from      timestamptz NOT NULL DEFAULT now(),
    valid_to        timestamptz NULL,
    synced_by       text        NOT NULL CHECK (synced_by <> ''),
    retroactive     boolean     NOT NULL DEFAULT false,
    CONSTRAINT contract_versions_pkey PRIMARY KEY (contract_id, version),
    CONSTRAINT contract_versions_term CHECK (term_end IS NULL OR term_end > term_start),
    CONSTRAINT contract_versions_validity CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CONSTRAINT contract_versions_kind_cells CHECK (
        (kind = 'reservation' AND profile IS NOT NULL AND unit IS NOT NULL AND quantity IS NOT NULL
         AND unit_price IS NOT NULL AND amount IS NULL AND frequency IS NULL)
        OR (kind = 'commitment' AND amount IS NOT NULL AND frequency = 'monthly'
            AND profile IS NULL AND unit IS NULL AND quantity IS NULL AND unit_price IS NULL
            AND billing.is_utc_midnight(term_start) AND billing.is_utc_midnight(term_end))
        OR (kind = 'fee' AND amount IS NOT NULL AND frequency IS NOT NULL
            AND profile IS NULL AND unit IS NULL AND quantity IS NULL AND unit_price IS NULL
            AND (frequency = 'one_time'
                 OR (billing.is_utc_midnight(term_start) AND billing.is_utc_midnight(term_end))))
    )
);

-- One current version per contract.
CREATE UNIQUE INDEX IF NOT EXISTS contract_versions_one_current
    ON billing.contract_versions (contract_id) WHERE valid_to IS NULL;
CREATE INDEX IF NOT EXISTS contract_versions_current_org_idx
    ON billing.contract_versions (org_id, kind, term_start) WHERE valid_to IS NULL;

CREATE OR REPLACE VIEW billing.contracts AS
SELECT contract_id, version, org_id, kind, profile_type, profile, unit, quantity, unit_price, amount, currency,
       frequency, term_start, term_end, billing_timing, true_up_period, description, source_line,
       valid_from, synced_by, retroactive
FROM billing.contract_versions
WHERE valid_to IS NULL;

-- --- versions are history ------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION billing.keep_contract_versions() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.valid_to IS NULL AND NEW.valid_to IS NOT NULL
       AND to_jsonb(NEW) - 'valid_to' = to_jsonb(OLD) - 'valid_to' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'billing.contract_versions keeps every version of a contract: % is refused '
        '(a changed contract is a new version; a term_end ends a contract)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

DROP TRIGGER IF EXISTS contract_versions_history ON billing.contract_versions;
CREATE TRIGGER contract_versions_history BEFORE UPDATE OR DELETE ON billing.contract_versions
    FOR EACH ROW EXECUTE FUNCTION billing.keep_contract_versions();
DROP TRIGGER IF EXISTS contract_versions_no_truncate ON billing.contract_versions;
CREATE TRIGGER contract_versions_no_truncate BEFORE TRUNCATE ON billing.contract_versions
    FOR EACH STATEMENT EXECUTE FUNCTION billing.keep_contract_versions();

-- --- the audit log's new action ------------------------------------------------------------------------
-- Whatever its name (a later migration may rename it), each check on audit_log.action is widened.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE conrelid = 'billing.audit_log'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) ~ '\maction\M' AND position('contracts_retroactive' IN pg_get_constraintdef(oid)) = 0
    LOOP
        EXECUTE format('ALTER TABLE billing.audit_log DROP CONSTRAINT %I, ADD CONSTRAINT %I CHECK ((%s) OR action = %L)',
                       c.conname, c.conname, substring(c.def FROM '^CHECK \((.*)\)$'), 'contracts_retroactive');
    END LOOP;
END
$$;
