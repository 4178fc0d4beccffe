-- 001: the billing schema (price book, landed usage, charge line items, rating exceptions).
--
-- Idempotent on its own (IF NOT EXISTS everywhere) even though rafay_billing.db.migrate runs it once
-- and records it in billing.schema_migrations. Money and quantities are NUMERIC, never float.

CREATE SCHEMA IF NOT EXISTS billing;

CREATE TABLE IF NOT EXISTS billing.schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- The effective-dated price book. NULL org_id / profile_type / profile = matches any.
-- The CSV sync (rafay_billing.price_book) refuses overlapping rows with the same match key; rows
-- inserted by hand are not checked here, and a tie at rating time becomes an ambiguous_price exception.
CREATE TABLE IF NOT EXISTS billing.price_book (
    price_id        text        PRIMARY KEY CHECK (price_id <> ''),
    org_id          text        NULL CHECK (org_id <> ''),
    profile_type    text        NULL CHECK (profile_type <> ''),
    profile         text        NULL CHECK (profile <> ''),
    unit            text        NOT NULL CHECK (unit IN ('instance_hour', 'gpu_hour')),
    unit_price      numeric     NOT NULL CHECK (unit_price >= 0),
    currency        char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    effective_from  timestamptz NOT NULL,
    effective_to    timestamptz NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT price_book_effective_range CHECK (effective_to IS NULL OR effective_to > effective_from)
);

-- Rating looks prices up by exact match key (unset parts as ''), one probe per usage key and pattern.
CREATE INDEX IF NOT EXISTS price_book_match_idx ON billing.price_book (
    (coalesce(org_id, '')), (coalesce(profile, '')), (coalesce(profile_type, '')), effective_from
);

-- Landed usage: the normalised usage row columns of docs/design.md, in that order, plus run_id/loaded_at.
-- One row per usage record. The key is the record's position within its org for the window, not the
-- instance: seed-era records without ids may name the same instance twice (rating sums them).
CREATE TABLE IF NOT EXISTS billing.usage_records (
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    org_id          text        NOT NULL,
    organization    text        NOT NULL,
    org_seq         integer     NOT NULL,
    record_seq      integer     NOT NULL,
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
    -- COPY cannot take constants, so the loader sets billing.run_id for its transaction.
    run_id          text        NOT NULL DEFAULT nullif(current_setting('billing.run_id', true), ''),
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_records_pkey PRIMARY KEY (window_start, window_end, org_id, record_seq),
    CONSTRAINT usage_records_window CHECK (window_end > window_start)
);

-- Line items: one per (window, org, profile, instance).
CREATE TABLE IF NOT EXISTS billing.charge_line_items (
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    org_id            text        NOT NULL,
    organization      text        NOT NULL,
    profile_type      text        NOT NULL,
    profile           text        NOT NULL,
    instance          text        NOT NULL,
    instance_id       text        NULL,
    instance_key      text        NOT NULL,
    usage_hours       numeric     NOT NULL,
    gpu_count         integer     NULL,
    pricing_unit      text        NOT NULL CHECK (pricing_unit IN ('instance_hour', 'gpu_hour')),
    pricing_quantity  numeric     NOT NULL,
    unit_price        numeric     NOT NULL,
    currency          char(3)     NOT NULL,
    amount            numeric     NOT NULL CHECK (scale(amount) <= 2),
    price_id          text        NOT NULL,
    run_id            text        NOT NULL,
    rated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT charge_line_items_pkey PRIMARY KEY (window_start, window_end, org_id, profile, instance_key)
);

-- Usage records that were not billed: one per record (so its key is the record's).
CREATE TABLE IF NOT EXISTS billing.rating_exceptions (
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    org_id        text        NOT NULL,
    organization  text        NOT NULL,
    profile_type  text        NOT NULL,
    profile       text        NOT NULL,
    instance      text        NOT NULL,
    instance_id   text        NULL,
    instance_key  text        NOT NULL,
    record_seq    integer     NOT NULL,
    usage_hours   numeric     NULL,
    gpu_count     integer     NULL,
    price_id      text        NULL,
    reason        text        NOT NULL
                  CHECK (reason IN ('unpriced', 'ambiguous_price', 'missing_gpu_count', 'invalid_usage')),
    detail        text        NOT NULL,
    run_id        text        NOT NULL,
    rated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rating_exceptions_pkey PRIMARY KEY (window_start, window_end, org_id, record_seq)
);

CREATE INDEX IF NOT EXISTS rating_exceptions_window_reason_idx
    ON billing.rating_exceptions (window_start, window_end, reason);
