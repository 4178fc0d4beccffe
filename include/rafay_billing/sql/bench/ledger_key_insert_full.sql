-- The day's items into the copy with the ledger's key, in its key order (as insert_rated_items.sql does).
INSERT INTO lab_key.t_full
SELECT * FROM lab_key.source WHERE usage_date = %(day)s
ORDER BY org_id, usage_date, profile_type, profile, instance_key, dimension, covered_by;
