-- 003: the ledger's unit becomes (org, UTC day).
--
-- * usage_records, charge_line_items and rating_exceptions are keyed by (org_id, usage_date, ...):
--   re-billing a day replaces that (org, day) whichever window asked for it, so no hour is billed twice.
-- * Landed usage is kept per run (run_id is part of its key); a line item and an exception name the run
--   whose usage they rate, and each usage row names the raw page file and position it came from.
-- * billing.coverage says, per (org, day), whether it is billed, billed with exceptions, or failed.
-- * billing.currencies holds ISO 4217 minor units (loaded by rafay_billing.db.migrate from the iso4217
--   package); every amount is rounded once to its currency's minor unit, and the schema checks it.
-- * Prices change only at 00:00 UTC, so a day never spans a price change.
--
-- Window-grained tables of 002 and before are renamed legacy_* when they hold rows (nothing is lost)
-- and dropped when empty. Idempotent on its own, like every migration file.

DO $$
BEGIN
    IF to_regclass('billing.usage_records') IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'billing' AND table_name = 'usage_records' AND column_name = 'usage_date'
    ) THEN
        IF EXISTS (SELECT 1 FROM billing.usage_records) OR EXISTS (SELECT 1 FROM billing.charge_line_items)
           OR EXISTS (SELECT 1 FROM billing.rating_exceptions) THEN
            ALTER TABLE billing.usage_records RENAME TO legacy_usage_records;
            ALTER INDEX billing.usage_records_pkey RENAME TO legacy_usage_records_pkey;
            ALTER TABLE billing.charge_line_items RENAME TO legacy_charge_line_items;
            ALTER INDEX billing.charge_line_items_pkey RENAME TO legacy_charge_line_items_pkey;
            ALTER TABLE billing.rating_exceptions RENAME TO legacy_rating_exceptions;
            ALTER INDEX billing.rating_exceptions_pkey RENAME TO legacy_rating_exceptions_pkey;
            ALTER INDEX IF EXISTS billing.rating_exceptions_window_reason_idx
                RENAME TO legacy_rating_exceptions_window_reason_idx;
            -- planner statistics only (002): nothing of value, and their names are wanted below
            DROP STATISTICS IF EXISTS billing.usage_records_window_stats, billing.charge_line_items_window_stats;
        ELSE
            DROP TABLE billing.usage_records, billing.charge_line_items, billing.rating_exceptions;
        END IF;
    END IF;
END
$$;

-- ISO 4217 currencies and their minor units (digits after the decimal point: JPY 0, USD 2, BHD 3).
CREATE TABLE IF NOT EXISTS billing.currencies (
    currency    char(3)  PRIMARY KEY CHECK (currency ~ '^[A-Z]{3}$'),
    minor_unit  smallint NOT NULL CHECK (minor_unit BETWEEN 0 AND 6),
    name        text     NOT NULL DEFAULT ''
);

-- The day a timestamp falls on must be a whole UTC day: its UTC midnight.
CREATE OR REPLACE FUNCTION billing.utc_midnight(d date) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (d::timestamp AT TIME ZONE 'UTC');

CREATE OR REPLACE FUNCTION billing.is_utc_midnight(t timestamptz) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN t IS NULL OR t = date_trunc('day', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';

-- Price rows start and end at 00:00 UTC (NOT VALID: rows from before this rule are not re-checked, new
-- and changed rows are). Their currency must be an ISO 4217 currency with a known minor unit.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'price_book_midnight_utc') THEN
        ALTER TABLE billing.price_book ADD CONSTRAINT price_book_midnight_utc
            CHECK (billing.is_utc_midnight(effective_from) AND billing.is_utc_midnight(effective_to)) NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'price_book_currency_fkey') THEN
        ALTER TABLE billing.price_book ADD CONSTRAINT price_book_currency_fkey
            FOREIGN KEY (currency) REFERENCES billing.currencies (currency) NOT VALID;
    END IF;
END
$$;

-- Organizations the pipeline has listed, and the first day a listing covered: days before it are not
-- expected to be billed for that org (it was not known yet).
CREATE TABLE IF NOT EXISTS billing.org_registry (
    org_id             text        PRIMARY KEY CHECK (org_id <> ''),
    organization       text        NOT NULL,
    first_listed_date  date        NOT NULL,
    last_listed_at     timestamptz NOT NULL DEFAULT now(),
    last_run_id        text        NOT NULL
);

-- Landed usage: one row per usage record of one (org, day), kept per run. COPY cannot take constants,
-- so the loader sets billing.usage_date / billing.run_id / billing.source_dir for its transaction.
CREATE TABLE IF NOT EXISTS billing.usage_records (
    org_id          text        NOT NULL,
    usage_date      date        NOT NULL DEFAULT (nullif(current_setting('billing.usage_date', true), ''))::date,
    run_id          text        NOT NULL DEFAULT nullif(current_setting('billing.run_id', true), ''),
    record_seq      integer     NOT NULL CHECK (record_seq >= 0),
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    organization    text        NOT NULL,
    org_seq         integer     NOT NULL,
    profile_type    text        NOT NULL,
    profile         text        NOT NULL,
    instance        text        NOT NULL,
    instance_id     text        NULL,
    instance_key    text        NOT NULL,
    status          text        NOT NULL,
    seed_usage      text        NOT NULL,
    usage_hours     numeric     NULL,
    gpu_count       integer     NULL,
    invalid_reason  text        NULL,
    record_start    text        NULL,
    record_end      text        NULL,
    -- where the record came from: <source_dir>/<source_page>, entry <source_index> of its items
    source_dir      text        NULL DEFAULT nullif(current_setting('billing.source_dir', true), ''),
    source_page     text        NULL,
    source_index    integer     NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_records_pkey PRIMARY KEY (org_id, usage_date, run_id, record_seq),
    CONSTRAINT usage_records_one_day
        CHECK (window_start = billing.utc_midnight(usage_date) AND window_end = window_start + interval '1 day')
);

-- Line items: one per (org, day, profile, instance). The amount is the quantity times the unit price,
-- rounded once to the currency's minor unit; the row proves it.
CREATE TABLE IF NOT EXISTS billing.charge_line_items (
    org_id            text        NOT NULL,
    usage_date        date        NOT NULL,
    profile           text        NOT NULL,
    instance_key      text        NOT NULL,
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    organization      text        NOT NULL,
    profile_type      text        NOT NULL,
    instance          text        NOT NULL,
    instance_id       text        NULL,
    usage_hours       numeric     NOT NULL CHECK (usage_hours >= 0),
    gpu_count         integer     NULL,
    pricing_unit      text        NOT NULL CHECK (pricing_unit IN ('instance_hour', 'gpu_hour')),
    pricing_quantity  numeric     NOT NULL CHECK (pricing_quantity >= 0),
    unit_price        numeric     NOT NULL CHECK (unit_price >= 0),
    currency          char(3)     NOT NULL,
    minor_unit        smallint    NOT NULL,
    amount            numeric     NOT NULL,
    price_id          text        NOT NULL,
    run_id            text        NOT NULL,
    rated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT charge_line_items_pkey PRIMARY KEY (org_id, usage_date, profile, instance_key),
    CONSTRAINT charge_line_items_one_day
        CHECK (window_start = billing.utc_midnight(usage_date) AND window_end = window_start + interval '1 day'),
    CONSTRAINT charge_line_items_amount_rounded_once
        CHECK (amount = round(pricing_quantity * unit_price, minor_unit))
);

CREATE INDEX IF NOT EXISTS charge_line_items_day_idx ON billing.charge_line_items (usage_date);

-- Usage records that were not billed: one per record of the rated run.
CREATE TABLE IF NOT EXISTS billing.rating_exceptions (
    org_id        text        NOT NULL,
    usage_date    date        NOT NULL,
    record_seq    integer     NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    organization  text        NOT NULL,
    profile_type  text        NOT NULL,
    profile       text        NOT NULL,
    instance      text        NOT NULL,
    instance_id   text        NULL,
    instance_key  text        NOT NULL,
    usage_hours   numeric     NULL,
    gpu_count     integer     NULL,
    price_id      text        NULL,
    reason        text        NOT NULL CHECK (reason IN (
                      'unpriced', 'ambiguous_price', 'missing_gpu_count', 'invalid_usage', 'usage_exceeds_window')),
    detail        text        NOT NULL,
    run_id        text        NOT NULL,
    rated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rating_exceptions_pkey PRIMARY KEY (org_id, usage_date, record_seq),
    CONSTRAINT rating_exceptions_one_day
        CHECK (window_start = billing.utc_midnight(usage_date) AND window_end = window_start + interval '1 day'),
    CONSTRAINT rating_exceptions_usage_fkey FOREIGN KEY (org_id, usage_date, run_id, record_seq)
        REFERENCES billing.usage_records (org_id, usage_date, run_id, record_seq)
);

CREATE INDEX IF NOT EXISTS rating_exceptions_day_reason_idx ON billing.rating_exceptions (usage_date, reason);

-- Coverage: what the ledger holds for each (org, day). `billed`: every usage record is in a line item;
-- `exceptions`: billed, but some records are rating exceptions; `failed`: the latest attempt could not
-- extract or load the day (line items of an earlier good run, if any, stand: billed_run_id).
CREATE TABLE IF NOT EXISTS billing.coverage (
    org_id         text        NOT NULL,
    usage_date     date        NOT NULL,
    organization   text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('billed', 'exceptions', 'failed')),
    run_id         text        NOT NULL,
    billed_run_id  text        NULL,
    usage_rows     integer     NOT NULL DEFAULT 0 CHECK (usage_rows >= 0),
    line_items     integer     NOT NULL DEFAULT 0 CHECK (line_items >= 0),
    exceptions     integer     NOT NULL DEFAULT 0 CHECK (exceptions >= 0),
    totals         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    detail         text        NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT coverage_pkey PRIMARY KEY (org_id, usage_date),
    CONSTRAINT coverage_billed_by_this_run CHECK (status = 'failed' OR billed_run_id = run_id),
    CONSTRAINT coverage_exceptions_counted CHECK ((status = 'exceptions') = (exceptions > 0) OR status = 'failed'),
    CONSTRAINT coverage_failure_explained CHECK (status <> 'failed' OR detail IS NOT NULL)
);

CREATE INDEX IF NOT EXISTS coverage_day_idx ON billing.coverage (usage_date, status);

-- A line item must sum landed usage of the run that rated it (checked once per statement, on the
-- statement's new rows, so a million-row rating pays one set difference, not a million probes).
CREATE OR REPLACE FUNCTION billing.check_line_items_have_usage() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    orphan record;
BEGIN
    -- set-based (EXCEPT hashes both sides): reads the usage of the slices the statement touched once,
    -- instead of probing it once per new line item
    SELECT o.* INTO orphan FROM (
        SELECT n.org_id, n.usage_date, n.profile, n.instance_key, n.run_id FROM new_items AS n
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

DROP TRIGGER IF EXISTS charge_line_items_have_usage_insert ON billing.charge_line_items;
CREATE TRIGGER charge_line_items_have_usage_insert
    AFTER INSERT ON billing.charge_line_items
    REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION billing.check_line_items_have_usage();

DROP TRIGGER IF EXISTS charge_line_items_have_usage_update ON billing.charge_line_items;
CREATE TRIGGER charge_line_items_have_usage_update
    AFTER UPDATE ON billing.charge_line_items
    REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION billing.check_line_items_have_usage();

-- Traceability in SQL alone: every line item with the usage records it sums and the raw page each
-- record came from (<source_dir>/<source_page>, entry source_index of the page's items).
CREATE OR REPLACE VIEW billing.line_item_sources AS
SELECT li.org_id, li.usage_date, li.profile, li.instance_key, li.run_id, li.amount, li.currency,
       u.record_seq, u.usage_hours, u.record_start, u.record_end,
       u.source_dir, u.source_page, u.source_index,
       u.source_dir || '/' || u.source_page AS source_uri
FROM billing.charge_line_items AS li
JOIN billing.usage_records AS u
  ON u.org_id = li.org_id AND u.usage_date = li.usage_date AND u.run_id = li.run_id
 AND u.profile = li.profile AND u.instance_key = li.instance_key
WHERE NOT EXISTS (
    SELECT 1 FROM billing.rating_exceptions AS e
    WHERE e.org_id = u.org_id AND e.usage_date = u.usage_date AND e.record_seq = u.record_seq
      AND e.run_id = u.run_id
);
