-- 017: invoice drafts awaiting approval (issue 23, part 1: [rafay_billing] close_approval = required).
--
-- * A close that needs approval writes the period's documents as drafts, never into billing.invoices
--   (whose rows are all issued): one billing.invoice_draft_sets row per drafting (the period, the
--   fingerprint of what the period carried, who drafted it, and later the decision), one
--   billing.invoice_drafts row per document it would issue (one per (org, currency), invoice or credit
--   note, no number: numbers are taken only when a document is issued) and its lines in
--   billing.invoice_draft_lines, grouped exactly like billing.invoice_lines.
-- * Drafts and their lines are what a reviewer saw: UPDATE, DELETE and TRUNCATE are refused. A set moves
--   only forward, once: pending -> issued | discarded | superseded | stale (its decision columns set
--   then, nothing else changes); it is never deleted (a discarded draft stays, marked).
-- * At most one pending set per period: a new close of the period supersedes the pending one.
-- * The audit log accepts actions 'draft' (drafts written) and 'approval' (the reviewer's answer and
--   what became of the drafts). The action check is widened, not replaced (like migration 013).
-- Idempotent on its own, like every migration file.

CREATE TABLE IF NOT EXISTS billing.invoice_draft_sets (
    draft_set_id    bigserial   PRIMARY KEY,
    period_start    date        NOT NULL CHECK (period_start = billing.period_of(period_start)),
    period_end      date        NOT NULL,
    issuer          text        NOT NULL CHECK (issuer <> ''),
    fingerprint     text        NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'issued', 'discarded', 'superseded', 'stale')),
    allow_exceptions boolean    NOT NULL DEFAULT false,
    drafted_at      timestamptz NOT NULL DEFAULT now(),
    drafted_by      text        NOT NULL CHECK (drafted_by <> ''),
    summary         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    decided_at      timestamptz NULL,
    decided_by      text        NULL,
    decision        text        NULL CHECK (decision IN ('Approve', 'Reject')),
    decision_comment text       NULL,
    CONSTRAINT invoice_draft_sets_period_end CHECK (period_end = (period_start + interval '1 month')::date),
    CONSTRAINT invoice_draft_sets_decided CHECK ((status = 'pending') = (decided_at IS NULL))
);

CREATE UNIQUE INDEX IF NOT EXISTS invoice_draft_sets_one_pending
    ON billing.invoice_draft_sets (period_start) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS billing.invoice_drafts (
    draft_set_id    bigint      NOT NULL REFERENCES billing.invoice_draft_sets (draft_set_id),
    org_id          text        NOT NULL,
    organization    text        NOT NULL,
    currency        char(3)     NOT NULL REFERENCES billing.currencies (currency),
    document_type   text        NOT NULL CHECK (document_type IN ('invoice', 'credit_note')),
    subtotal        numeric     NOT NULL,
    line_count      integer     NOT NULL CHECK (line_count > 0),
    CONSTRAINT invoice_drafts_pkey PRIMARY KEY (draft_set_id, org_id, currency),
    CONSTRAINT invoice_drafts_sign CHECK ((document_type = 'credit_note') = (subtotal < 0))
);

CREATE TABLE IF NOT EXISTS billing.invoice_draft_lines (
    draft_set_id   bigint  NOT NULL,
    org_id         text    NOT NULL,
    currency       char(3) NOT NULL,
    line_no        integer NOT NULL CHECK (line_no > 0),
    profile_type   text    NOT NULL,
    profile        text    NOT NULL,
    price_id       text    NOT NULL,
    pricing_unit   text    NOT NULL,
    unit_price     numeric NOT NULL,
    charge_class   text    NOT NULL,
    quantity       numeric NOT NULL,
    amount         numeric NOT NULL,
    item_count     integer NOT NULL CHECK (item_count > 0),
    CONSTRAINT invoice_draft_lines_pkey PRIMARY KEY (draft_set_id, org_id, currency, line_no),
    CONSTRAINT invoice_draft_lines_draft FOREIGN KEY (draft_set_id, org_id, currency)
        REFERENCES billing.invoice_drafts (draft_set_id, org_id, currency)
);

-- --- drafts are what the reviewer saw --------------------------------------------------------------------
CREATE OR REPLACE FUNCTION billing.refuse_change_of_draft() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% holds what a reviewer saw: % is refused (a new close writes new drafts)',
        TG_TABLE_NAME, TG_OP USING ERRCODE = 'integrity_constraint_violation';
END
$$;

DROP TRIGGER IF EXISTS invoice_drafts_immutable ON billing.invoice_drafts;
CREATE TRIGGER invoice_drafts_immutable BEFORE UPDATE OR DELETE ON billing.invoice_drafts
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_change_of_draft();
DROP TRIGGER IF EXISTS invoice_drafts_no_truncate ON billing.invoice_drafts;
CREATE TRIGGER invoice_drafts_no_truncate BEFORE TRUNCATE ON billing.invoice_drafts
    FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_change_of_draft();
DROP TRIGGER IF EXISTS invoice_draft_lines_immutable ON billing.invoice_draft_lines;
CREATE TRIGGER invoice_draft_lines_immutable BEFORE UPDATE OR DELETE ON billing.invoice_draft_lines
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_change_of_draft();
DROP TRIGGER IF EXISTS invoice_draft_lines_no_truncate ON billing.invoice_draft_lines;
CREATE TRIGGER invoice_draft_lines_no_truncate BEFORE TRUNCATE ON billing.invoice_draft_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_change_of_draft();

-- A set is decided once: from pending to a final status, setting only its decision columns. Its summary
-- (what the reviewer is shown) is written once, while it is pending, right after its drafts.
CREATE OR REPLACE FUNCTION billing.decide_draft_set() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'pending' AND NEW.status = 'pending' AND OLD.summary = '{}'::jsonb
       AND to_jsonb(NEW) - 'summary' = to_jsonb(OLD) - 'summary' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = 'pending' AND NEW.status <> 'pending'
       AND to_jsonb(NEW) - ARRAY['status', 'decided_at', 'decided_by', 'decision', 'decision_comment']
           = to_jsonb(OLD) - ARRAY['status', 'decided_at', 'decided_by', 'decision', 'decision_comment'] THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'billing.invoice_draft_sets: % is refused (a draft set is decided once, from pending: '
        'issued, discarded, superseded or stale; it is never deleted)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

DROP TRIGGER IF EXISTS invoice_draft_sets_decided_once ON billing.invoice_draft_sets;
CREATE TRIGGER invoice_draft_sets_decided_once BEFORE UPDATE OR DELETE ON billing.invoice_draft_sets
    FOR EACH ROW EXECUTE FUNCTION billing.decide_draft_set();
DROP TRIGGER IF EXISTS invoice_draft_sets_no_truncate ON billing.invoice_draft_sets;
CREATE TRIGGER invoice_draft_sets_no_truncate BEFORE TRUNCATE ON billing.invoice_draft_sets
    FOR EACH STATEMENT EXECUTE FUNCTION billing.decide_draft_set();

-- --- the audit log's new actions -------------------------------------------------------------------------
DO $$
DECLARE
    c record;
    wanted text;
BEGIN
    FOREACH wanted IN ARRAY ARRAY['draft', 'approval']
    LOOP
        FOR c IN
            SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
            WHERE conrelid = 'billing.audit_log'::regclass AND contype = 'c'
              AND pg_get_constraintdef(oid) ~ '\maction\M' AND position(quote_literal(wanted) IN pg_get_constraintdef(oid)) = 0
        LOOP
            EXECUTE format('ALTER TABLE billing.audit_log DROP CONSTRAINT %I, ADD CONSTRAINT %I CHECK ((%s) OR action = %L)',
                           c.conname, c.conname, substring(c.def FROM '^CHECK \((.*)\)$'), wanted);
        END LOOP;
    END LOOP;
END
$$;
