-- The day's items into the copy keyed by (org, day, uuid hash of the other identity columns), in its key order.
INSERT INTO lab_key.t_hash
SELECT s.*, md5(concat_ws(chr(31), s.profile_type, s.profile, s.instance_key, s.dimension, s.covered_by,
                          s.charge_level, s.charge_class, s.correction_seq, s.entry))::uuid AS item_key
FROM lab_key.source AS s WHERE s.usage_date = %(day)s
ORDER BY s.org_id, s.usage_date, item_key;
