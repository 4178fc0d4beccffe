-- This transaction's rating stage (dropped at commit): the slices' resolved prices, and their fresh
-- line items, which rating then applies to the ledger (open periods) or compares with what was issued
-- (closed periods). Emptied first, in case an earlier statement of the transaction used them.
CREATE TEMPORARY TABLE IF NOT EXISTS rating_prices (
    org_id          text     NOT NULL,
    usage_date      date     NOT NULL,
    profile_type    text     NOT NULL,
    profile         text     NOT NULL,
    labels          jsonb    NOT NULL,
    dim             text     NOT NULL,
    winners         bigint   NOT NULL,
    specificity     integer  NOT NULL,
    price_id        text     NULL,      -- NULL: the instance row of a key only dimensions price (rule 8)
    unit            text     NULL,
    unit_price      numeric  NULL,
    currency        char(3)  NULL,
    price_dimension text     NULL,
    tied            text     NOT NULL,
    minor_unit      smallint NULL,
    item_labels     jsonb    NOT NULL,  -- the labels its line items carry (rule 6)
    gpu_conflict    text     NULL       -- why its GPU-hours are priced twice (rule 7)
) ON COMMIT DROP;
CREATE TEMPORARY TABLE IF NOT EXISTS rated_days (LIKE billing.charge_line_items INCLUDING DEFAULTS) ON COMMIT DROP;
TRUNCATE rating_prices, rated_days;
