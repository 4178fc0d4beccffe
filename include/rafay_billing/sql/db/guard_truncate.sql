-- Every table of the schema refuses TRUNCATE, tables of later migrations too (008).
SELECT billing.guard_truncate();
