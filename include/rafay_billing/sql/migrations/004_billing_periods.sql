-- 004: billing periods, invoices, corrections after close, and immutability after issue.
--
-- * A billing period is a calendar month in UTC. billing.billing_periods holds the CLOSED ones (a
--   period with no row is open). Closing is permanent.
-- * Line items gain charge_class (regular | correction), billing_period_start (the period whose invoice
--   carries the item), correction_seq, entry (charge | reversal) and dimension ('' = the instance
--   itself; per-dimension prices come later). Re-billing a day of a closed period writes corrections
--   into the earliest open period: the issued items reversed (entry 'reversal', negative quantities)
--   plus the new ones (entry 'charge'), all with the corrected day's usage_date.
-- * The database refuses UPDATE/DELETE of a closed period's line items, usage rows and invoices, and
--   any INSERT of line items into a closed period: triggers that hold against hand-written SQL too.
-- * Invoices: one per (org, currency, period) with items, numbered gap-free per issuer.
-- * Used prices are versioned: every change or deletion of a price row keeps the old row in
--   billing.price_book_history.
-- Idempotent on its own, like every migration file.

CREATE TABLE IF NOT EXISTS billing.billing_periods (
    period_start      date        PRIMARY KEY CHECK (period_start = date_trunc('month', period_start)::date),
    period_end        date        NOT NULL,
    status            text        NOT NULL DEFAULT 'closed' CHECK (status = 'closed'),
    closed_at         timestamptz NOT NULL DEFAULT now(),
    closed_by         text        NOT NULL CHECK (closed_by <> ''),
    allow_exceptions  boolean     NOT NULL DEFAULT false,
    CONSTRAINT billing_periods_one_month CHECK (period_end = (period_start + interval '1 month')::date)
);

-- The period (calendar month, UTC) a day belongs to.
CREATE OR REPLACE FUNCTION billing.period_of(d date) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN date_trunc('month', d)::date;

-- The earliest open period on or after a day's own period: where corrections of that day go.
CREATE OR REPLACE FUNCTION billing.earliest_open_period(d date) RETURNS date
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (
        SELECT min(p.month)::date
        FROM generate_series(billing.period_of(d)::timestamp,
                             (SELECT coalesce(max(period_start), billing.period_of(d)) FROM billing.billing_periods)
                                 + interval '1 month',
                             interval '1 month') AS p (month)
        WHERE NOT EXISTS (SELECT 1 FROM billing.billing_periods AS c WHERE c.period_start = p.month::date)
    );

-- --- line items: the new columns and key -------------------------------------------------------
ALTER TABLE billing.charge_line_items
    ADD COLUMN IF NOT EXISTS charge_class         text    NOT NULL DEFAULT 'regular',
    ADD COLUMN IF NOT EXISTS billing_period_start date    NULL,
    ADD COLUMN IF NOT EXISTS correction_seq       integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS entry                text    NOT NULL DEFAULT 'charge',
    ADD COLUMN IF NOT EXISTS dimension            text    NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS reverses_run_id      text    NULL;

UPDATE billing.charge_line_items SET billing_period_start = billing.period_of(usage_date)
WHERE billing_period_start IS NULL;
ALTER TABLE billing.charge_line_items ALTER COLUMN billing_period_start SET NOT NULL;

-- rows written by 003's rating carry no period: rating sets it, the default keeps hand-written SQL honest
CREATE OR REPLACE FUNCTION billing.default_billing_period() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.billing_period_start IS NULL THEN
        NEW.billing_period_start := billing.period_of(NEW.usage_date);
    END IF;
    RETURN NEW;
END
$$;

DO $$
BEGIN
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_usage_hours_check;
    ALTER TABLE billing.charge_line_items DROP CONSTRAINT IF EXISTS charge_line_items_pricing_quantity_check;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'charge_line_items_class') THEN
        ALTER TABLE billing.charge_line_items
            ADD CONSTRAINT charge_line_items_class CHECK (charge_class IN ('regular', 'correction')),
            ADD CONSTRAINT charge_line_items_entry CHECK (entry IN ('charge', 'reversal')),
            ADD CONSTRAINT charge_line_items_period_is_a_month
                CHECK (billing_period_start = billing.period_of(billing_period_start)),
            -- a regular item is a charge on its own day's invoice; a correction lands on a later one
            ADD CONSTRAINT charge_line_items_regular_on_its_own_period CHECK (
                (charge_class = 'regular' AND entry = 'charge' AND correction_seq = 0
                 AND billing_period_start = billing.period_of(usage_date))
                OR (charge_class = 'correction' AND correction_seq > 0
                    AND billing_period_start > billing.period_of(usage_date))
            ),
            -- charges are non-negative; a reversal negates an issued charge and names its run
            ADD CONSTRAINT charge_line_items_signs CHECK (
                (entry = 'charge' AND usage_hours >= 0 AND pricing_quantity >= 0 AND reverses_run_id IS NULL)
                OR (entry = 'reversal' AND usage_hours <= 0 AND pricing_quantity <= 0 AND reverses_run_id IS NOT NULL)
            );
    END IF;
    IF EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname = 'charge_line_items_pkey' AND i.indnatts = 4
    ) THEN
        ALTER TABLE billing.charge_line_items DROP CONSTRAINT charge_line_items_pkey;
        ALTER TABLE billing.charge_line_items ADD CONSTRAINT charge_line_items_pkey PRIMARY KEY (
            org_id, usage_date, profile, instance_key, dimension, charge_class, correction_seq, entry
        );
    END IF;
END
$$;

DROP TRIGGER IF EXISTS charge_line_items_default_period ON billing.charge_line_items;
CREATE TRIGGER charge_line_items_default_period
    BEFORE INSERT ON billing.charge_line_items
    FOR EACH ROW WHEN (NEW.billing_period_start IS NULL) EXECUTE FUNCTION billing.default_billing_period();

CREATE INDEX IF NOT EXISTS charge_line_items_period_idx
    ON billing.charge_line_items (billing_period_start, org_id, currency);

-- a charge must sum landed usage of the run that rated it; a reversal negates issued items instead
CREATE OR REPLACE FUNCTION billing.check_line_items_have_usage() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    orphan record;
BEGIN
    -- set-based (EXCEPT hashes both sides): reads the usage of the slices the statement touched once,
    -- instead of probing it once per new line item
    SELECT o.* INTO orphan FROM (
        SELECT n.org_id, n.usage_date, n.profile, n.instance_key, n.run_id FROM new_items AS n
        WHERE n.entry = 'charge'
        EXCEPT
        SELECT u.org_id, u.usage_date, u.profile, u.instance_key, u.run_id
        FROM billing.usage_records AS u
        WHERE (u.org_id, u.usage_date, u.run_id) IN (SELECT DISTINCT org_id, usage_date, run_id FROM new_items)
    ) AS o
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'line item (%, %, %, %) of run % has no landed usage record of that run',
            orphan.org_id, orphan.usage_date, orphan.profile, orphan.instance_key, orphan.run_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

-- --- immutability after close ----------------------------------------------------------------------
-- Statement-level, on the transition tables: one join per statement, whatever its size.
CREATE OR REPLACE FUNCTION billing.refuse_closed_line_items() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    hit record;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT o.org_id, o.usage_date, o.billing_period_start INTO hit
        FROM old_items AS o JOIN billing.billing_periods AS p ON p.period_start = o.billing_period_start
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'billing period % is closed: its line items cannot be changed or deleted (org %, day %); '
                'a re-billed day writes corrections into the earliest open period instead',
                hit.billing_period_start, hit.org_id, hit.usage_date
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        SELECT n.org_id, n.usage_date, n.billing_period_start, n.charge_class INTO hit
        FROM new_items AS n JOIN billing.billing_periods AS p ON p.period_start = n.billing_period_start
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'billing period % is closed: no % line item may be added to it (org %, day %)',
                hit.billing_period_start, hit.charge_class, hit.org_id, hit.usage_date
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS charge_line_items_closed_insert ON billing.charge_line_items;
CREATE TRIGGER charge_line_items_closed_insert AFTER INSERT ON billing.charge_line_items
    REFERENCING NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_closed_line_items();
DROP TRIGGER IF EXISTS charge_line_items_closed_update ON billing.charge_line_items;
CREATE TRIGGER charge_line_items_closed_update AFTER UPDATE ON billing.charge_line_items
    REFERENCING OLD TABLE AS old_items NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_closed_line_items();
DROP TRIGGER IF EXISTS charge_line_items_closed_delete ON billing.charge_line_items;
CREATE TRIGGER charge_line_items_closed_delete AFTER DELETE ON billing.charge_line_items
    REFERENCING OLD TABLE AS old_items FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_closed_line_items();

CREATE OR REPLACE FUNCTION billing.refuse_closed_usage() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    hit record;
BEGIN
    SELECT o.org_id, o.usage_date INTO hit
    FROM old_rows AS o JOIN billing.billing_periods AS p ON p.period_start = billing.period_of(o.usage_date)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'billing period % is closed: its usage rows are kept as issued (org %, day %); '
            'a new run adds its own rows instead', billing.period_of(hit.usage_date), hit.org_id, hit.usage_date
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS usage_records_closed_update ON billing.usage_records;
CREATE TRIGGER usage_records_closed_update AFTER UPDATE ON billing.usage_records
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_closed_usage();
DROP TRIGGER IF EXISTS usage_records_closed_delete ON billing.usage_records;
CREATE TRIGGER usage_records_closed_delete AFTER DELETE ON billing.usage_records
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_closed_usage();

-- --- invoices -------------------------------------------------------------------------------------
-- Gap-free numbering per issuer: one counter row, taken FOR UPDATE by the issuing transaction.
CREATE TABLE IF NOT EXISTS billing.invoice_counters (
    issuer       text   PRIMARY KEY CHECK (issuer <> ''),
    last_number  bigint NOT NULL CHECK (last_number >= 0)
);

CREATE TABLE IF NOT EXISTS billing.invoices (
    invoice_id      text        PRIMARY KEY,
    issuer          text        NOT NULL,
    invoice_seq     bigint      NOT NULL CHECK (invoice_seq > 0),
    invoice_number  text        NOT NULL UNIQUE,
    org_id          text        NOT NULL,
    organization    text        NOT NULL,
    currency        char(3)     NOT NULL REFERENCES billing.currencies (currency),
    period_start    date        NOT NULL REFERENCES billing.billing_periods (period_start),
    period_end      date        NOT NULL,
    status          text        NOT NULL DEFAULT 'issued' CHECK (status = 'issued'),
    subtotal        numeric     NOT NULL,
    line_count      integer     NOT NULL CHECK (line_count > 0),
    issued_at       timestamptz NOT NULL DEFAULT now(),
    issued_by       text        NOT NULL,
    CONSTRAINT invoices_issuer_seq UNIQUE (issuer, invoice_seq),
    CONSTRAINT invoices_one_per_org_currency_period UNIQUE (org_id, currency, period_start),
    CONSTRAINT invoices_period_end CHECK (period_end = (period_start + interval '1 month')::date)
);

-- The invoice's lines: its period's items grouped by profile type, profile, price, unit price and class.
CREATE TABLE IF NOT EXISTS billing.invoice_lines (
    invoice_id     text    NOT NULL REFERENCES billing.invoices (invoice_id),
    line_no        integer NOT NULL CHECK (line_no > 0),
    profile_type   text    NOT NULL,
    profile        text    NOT NULL,
    price_id       text    NOT NULL,
    pricing_unit   text    NOT NULL,
    unit_price     numeric NOT NULL,
    charge_class   text    NOT NULL CHECK (charge_class IN ('regular', 'correction')),
    quantity       numeric NOT NULL,
    amount         numeric NOT NULL,
    item_count     integer NOT NULL CHECK (item_count > 0),
    CONSTRAINT invoice_lines_pkey PRIMARY KEY (invoice_id, line_no)
);

CREATE OR REPLACE FUNCTION billing.refuse_change_of_issued() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is issued history: % is refused (corrections are new rows on a later invoice)',
        TG_TABLE_NAME, TG_OP USING ERRCODE = 'integrity_constraint_violation';
END
$$;

DROP TRIGGER IF EXISTS invoices_immutable ON billing.invoices;
CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_change_of_issued();
DROP TRIGGER IF EXISTS invoices_no_truncate ON billing.invoices;
CREATE TRIGGER invoices_no_truncate BEFORE TRUNCATE ON billing.invoices
    FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_change_of_issued();
DROP TRIGGER IF EXISTS invoice_lines_immutable ON billing.invoice_lines;
CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE ON billing.invoice_lines
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_change_of_issued();
DROP TRIGGER IF EXISTS invoice_lines_no_truncate ON billing.invoice_lines;
CREATE TRIGGER invoice_lines_no_truncate BEFORE TRUNCATE ON billing.invoice_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_change_of_issued();
DROP TRIGGER IF EXISTS billing_periods_permanent ON billing.billing_periods;
CREATE TRIGGER billing_periods_permanent BEFORE UPDATE OR DELETE ON billing.billing_periods
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_change_of_issued();

-- --- waivers and the audit log ------------------------------------------------------------------------
-- An operator's decision that an unbilled record will not be billed: it closes the exception (of any
-- later rating too, as long as the record keeps its instance, day and reason).
CREATE TABLE IF NOT EXISTS billing.exception_waivers (
    org_id        text        NOT NULL,
    usage_date    date        NOT NULL,
    profile       text        NOT NULL,
    instance_key  text        NOT NULL,
    reason        text        NOT NULL,
    why           text        NOT NULL CHECK (length(trim(why)) > 0),
    waived_by     text        NOT NULL CHECK (waived_by <> ''),
    waived_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT exception_waivers_pkey PRIMARY KEY (org_id, usage_date, profile, instance_key, reason)
);

CREATE TABLE IF NOT EXISTS billing.audit_log (
    audit_id      bigserial   PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    action        text        NOT NULL CHECK (action IN ('close', 'issue', 'correction', 'waiver')),
    actor         text        NOT NULL CHECK (actor <> ''),
    period_start  date        NULL,
    org_id        text        NULL,
    usage_date    date        NULL,
    detail        jsonb       NOT NULL DEFAULT '{}'::jsonb
);

DROP TRIGGER IF EXISTS audit_log_append_only ON billing.audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON billing.audit_log
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_change_of_issued();

-- Open exceptions: not billed, not waived.
CREATE OR REPLACE VIEW billing.open_exceptions AS
SELECT e.*
FROM billing.rating_exceptions AS e
WHERE NOT EXISTS (
    SELECT 1 FROM billing.exception_waivers AS w
    WHERE w.org_id = e.org_id AND w.usage_date = e.usage_date AND w.profile = e.profile
      AND w.instance_key = e.instance_key AND w.reason = e.reason
);

-- --- used prices are versioned ---------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS billing.price_book_history (
    version_id      bigserial   PRIMARY KEY,
    price_id        text        NOT NULL,
    org_id          text        NULL,
    profile_type    text        NULL,
    profile         text        NULL,
    unit            text        NOT NULL,
    unit_price      numeric     NOT NULL,
    currency        char(3)     NOT NULL,
    effective_from  timestamptz NOT NULL,
    effective_to    timestamptz NULL,
    valid_until     timestamptz NOT NULL DEFAULT now(),
    change          text        NOT NULL CHECK (change IN ('UPDATE', 'DELETE'))
);

CREATE OR REPLACE FUNCTION billing.keep_price_version() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO billing.price_book_history (price_id, org_id, profile_type, profile, unit, unit_price, currency,
                                            effective_from, effective_to, change)
    VALUES (OLD.price_id, OLD.org_id, OLD.profile_type, OLD.profile, OLD.unit, OLD.unit_price, OLD.currency,
            OLD.effective_from, OLD.effective_to, TG_OP);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS price_book_versions ON billing.price_book;
CREATE TRIGGER price_book_versions AFTER UPDATE OR DELETE ON billing.price_book
    FOR EACH ROW EXECUTE FUNCTION billing.keep_price_version();
