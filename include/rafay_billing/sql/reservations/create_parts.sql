-- This transaction's coverage parts (dropped at commit): per touched instance item of the stage, its
-- covered parts (covered_by = the reservation) and its on-demand rest (covered_by ''), filled by
-- insert_parts.sql and analyzed, so the split joins them with the stage by hash, not row by row.
CREATE TEMPORARY TABLE IF NOT EXISTS coverage_parts (
    org_id       text    NOT NULL,
    usage_date   date    NOT NULL,
    profile_type text    NOT NULL,
    profile      text    NOT NULL,
    instance_key text    NOT NULL,
    covered_by   text    NOT NULL,
    quantity     numeric NOT NULL,
    hours        numeric NOT NULL
) ON COMMIT DROP;
TRUNCATE coverage_parts;
