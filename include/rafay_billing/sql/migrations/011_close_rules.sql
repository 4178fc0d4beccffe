-- 011: the close's rules (issue 21: 1, 11).
--
-- * Rule 1: an exception blocks the close of the period its correction lands in. Every rating
--   exception records, when it is written, the period whose invoice carries its day's items:
--   billing_period_start = billing.earliest_open_period(usage_date) (the day's own period while it is
--   open; after it closed, the period a correction of the day is written into). The close counts the
--   open exceptions of that column, not of its days alone: a re-billed closed day whose records no
--   longer rate (their issued charges reversed, nothing charged) blocks the period that would issue
--   the refund.
-- * Rule 11: a negative (org, currency) net is a credit note. billing.invoices gains document_type
--   (invoice | credit_note: the sign of the subtotal decides), numbered from its own counter per
--   (issuer, document type); billing.document_references says which invoices a credit note corrects.
--   Numbers are taken by the insert of the document itself (a trigger): each must be its counter's
--   last number + 1 (gap-free, in the schema), and counters move only so: a hand-written UPDATE of
--   billing.invoice_counters, or one that moves a counter back, is refused.
-- Idempotent on its own, like every migration file.

-- --- rule 1: where an exception's correction lands ---------------------------------------------------
ALTER TABLE billing.rating_exceptions ADD COLUMN IF NOT EXISTS billing_period_start date NULL;

-- Exceptions written before this migration: a day's own period, unless it was rated after that period
-- closed (a correction's rating), then the earliest open period.
UPDATE billing.rating_exceptions AS e
SET billing_period_start = CASE
        WHEN EXISTS (SELECT 1 FROM billing.billing_periods AS p
                     WHERE p.period_start = billing.period_of(e.usage_date) AND p.closed_at < e.rated_at)
        THEN billing.earliest_open_period(e.usage_date)
        ELSE billing.period_of(e.usage_date)
    END
WHERE e.billing_period_start IS NULL;

CREATE OR REPLACE FUNCTION billing.exception_lands_in() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    -- the common case first (the day's own period is open): one probe of billing_periods' key
    NEW.billing_period_start := billing.period_of(NEW.usage_date);
    IF EXISTS (SELECT 1 FROM billing.billing_periods AS p WHERE p.period_start = NEW.billing_period_start) THEN
        NEW.billing_period_start := billing.earliest_open_period(NEW.usage_date);
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS rating_exceptions_lands_in ON billing.rating_exceptions;
CREATE TRIGGER rating_exceptions_lands_in BEFORE INSERT ON billing.rating_exceptions
    FOR EACH ROW EXECUTE FUNCTION billing.exception_lands_in();

CREATE INDEX IF NOT EXISTS rating_exceptions_period_idx ON billing.rating_exceptions (billing_period_start);

-- open_exceptions selects e.*: recreated so it shows billing_period_start (the close it blocks)
CREATE OR REPLACE VIEW billing.open_exceptions AS
SELECT e.*
FROM billing.rating_exceptions AS e
WHERE NOT EXISTS (
    SELECT 1 FROM billing.exception_waivers AS w
    WHERE w.org_id = e.org_id AND w.usage_date = e.usage_date AND w.profile = e.profile
      AND w.instance_key = e.instance_key AND w.reason = e.reason
);

-- --- rule 11: credit notes ------------------------------------------------------------------------------
ALTER TABLE billing.invoices ADD COLUMN IF NOT EXISTS document_type text NOT NULL DEFAULT 'invoice';
ALTER TABLE billing.invoice_counters ADD COLUMN IF NOT EXISTS document_type text NOT NULL DEFAULT 'invoice';

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'invoices_document_type') THEN
        ALTER TABLE billing.invoices
            ADD CONSTRAINT invoices_document_type CHECK (document_type IN ('invoice', 'credit_note')),
            -- a net of zero or more is an invoice, a negative one a credit note (rows issued before
            -- this migration are history and are not re-checked)
            ADD CONSTRAINT invoices_sign_decides_the_type
                CHECK ((document_type = 'credit_note') = (subtotal < 0)) NOT VALID,
            -- <issuer>-CN-NNNNNN is a credit note's number: no issuer may end in -CN
            ADD CONSTRAINT invoices_issuer_not_cn CHECK (issuer !~* '-CN$') NOT VALID;
        ALTER TABLE billing.invoices DROP CONSTRAINT IF EXISTS invoices_issuer_seq;
        ALTER TABLE billing.invoices
            ADD CONSTRAINT invoices_issuer_seq UNIQUE (issuer, document_type, invoice_seq);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'invoice_counters_document_type') THEN
        ALTER TABLE billing.invoice_counters
            ADD CONSTRAINT invoice_counters_document_type CHECK (document_type IN ('invoice', 'credit_note'));
        ALTER TABLE billing.invoice_counters DROP CONSTRAINT invoice_counters_pkey;
        ALTER TABLE billing.invoice_counters ADD CONSTRAINT invoice_counters_pkey PRIMARY KEY (issuer, document_type);
    END IF;
END
$$;

-- Which invoices a credit note corrects: those that carried the issued items of the days it corrects.
CREATE TABLE IF NOT EXISTS billing.document_references (
    invoice_id     text NOT NULL REFERENCES billing.invoices (invoice_id),
    corrects_id    text NOT NULL REFERENCES billing.invoices (invoice_id),
    CONSTRAINT document_references_pkey PRIMARY KEY (invoice_id, corrects_id),
    CONSTRAINT document_references_not_itself CHECK (invoice_id <> corrects_id)
);

DROP TRIGGER IF EXISTS document_references_immutable ON billing.document_references;
CREATE TRIGGER document_references_immutable BEFORE UPDATE OR DELETE ON billing.document_references
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_change_of_issued();
DROP TRIGGER IF EXISTS document_references_no_truncate ON billing.document_references;
CREATE TRIGGER document_references_no_truncate BEFORE TRUNCATE ON billing.document_references
    FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_change_of_issued();

-- The issuing function: a document takes the next number of its (issuer, document type) counter. The
-- counter row is created at 0 the first time and held FOR UPDATE until the issuing transaction ends,
-- so a failed close consumes no number and two closes never share one.
CREATE OR REPLACE FUNCTION billing.take_document_number() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
BEGIN
    INSERT INTO billing.invoice_counters (issuer, document_type, last_number)
    VALUES (NEW.issuer, NEW.document_type, 0)
    ON CONFLICT (issuer, document_type) DO NOTHING;
    SELECT c.last_number INTO last FROM billing.invoice_counters AS c
    WHERE c.issuer = NEW.issuer AND c.document_type = NEW.document_type
    FOR UPDATE;
    IF NEW.invoice_seq <> last + 1 THEN
        RAISE EXCEPTION '% % of issuer % would be number %, but the counter''s next number is %: numbers are '
            'gap-free and taken in order', NEW.document_type, NEW.invoice_number, NEW.issuer, NEW.invoice_seq,
            last + 1 USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    UPDATE billing.invoice_counters SET last_number = NEW.invoice_seq
    WHERE issuer = NEW.issuer AND document_type = NEW.document_type;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS invoices_take_number ON billing.invoices;
CREATE TRIGGER invoices_take_number BEFORE INSERT ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.take_document_number();

-- Counters move only through the issuing function (an UPDATE run from inside a trigger), only forward,
-- and are never deleted; a new counter may start at any number (numbering carried over from before).
CREATE OR REPLACE FUNCTION billing.guard_invoice_counter() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'invoice counter (%, %) cannot be deleted: its numbers are issued',
            OLD.issuer, OLD.document_type USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'invoice counter (%, %) moves only when a document is issued (billing.take_document_number), '
            'not by a hand-written UPDATE', OLD.issuer, OLD.document_type
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.issuer <> OLD.issuer OR NEW.document_type <> OLD.document_type OR NEW.last_number < OLD.last_number THEN
        RAISE EXCEPTION 'invoice counter (%, %) only moves forward: % -> % is refused',
            OLD.issuer, OLD.document_type, OLD.last_number, NEW.last_number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS invoice_counters_forward_only ON billing.invoice_counters;
CREATE TRIGGER invoice_counters_forward_only BEFORE UPDATE OR DELETE ON billing.invoice_counters
    FOR EACH ROW EXECUTE FUNCTION billing.guard_invoice_counter();

-- --- rule 17: bounded text in the audit log ------------------------------------------------------------
-- A value a message or an audit entry carries: its first 1,024 characters and how many more there were
-- (the full value stays where it came from: the raw page, the waiver row).
CREATE OR REPLACE FUNCTION billing.clip_text(t text, max_len integer DEFAULT 1024) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN length(t) > max_len
                THEN left(t, max_len) || '... [' || (length(t) - max_len) || ' more characters]'
                ELSE t END;
