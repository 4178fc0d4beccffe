-- bench/bench_ledger_key.py: three copies of billing.charge_line_items's columns, checks and secondary
-- indexes (no triggers), differing only in the key: the ledger's 11-column key, a 3-column key
-- (org, day, a uuid hash of the other identity columns) and none. Plus the source rows of two days.
DROP SCHEMA IF EXISTS lab_key CASCADE;
CREATE SCHEMA lab_key;
CREATE UNLOGGED TABLE lab_key.source (LIKE billing.charge_line_items INCLUDING DEFAULTS);
CREATE TABLE lab_key.t_full (LIKE billing.charge_line_items INCLUDING ALL);
CREATE TABLE lab_key.t_hash (LIKE billing.charge_line_items INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE lab_key.t_hash ADD COLUMN item_key uuid NOT NULL;
ALTER TABLE lab_key.t_hash ADD PRIMARY KEY (org_id, usage_date, item_key);
CREATE INDEX ON lab_key.t_hash (usage_date, org_id);
CREATE INDEX ON lab_key.t_hash (billing_period_start, org_id, currency);
CREATE TABLE lab_key.t_nokey (LIKE billing.charge_line_items INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE INDEX ON lab_key.t_nokey (usage_date, org_id);
CREATE INDEX ON lab_key.t_nokey (billing_period_start, org_id, currency);
