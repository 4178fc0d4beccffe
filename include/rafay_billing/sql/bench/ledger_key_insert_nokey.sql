-- The day's items into the copy without a key (what the key costs), in (org, day) order.
INSERT INTO lab_key.t_nokey
SELECT * FROM lab_key.source WHERE usage_date = %(day)s
ORDER BY org_id, usage_date;
