-- A new extraction's place in the order of reads, taken before its first request to Rafay: worker
-- clocks differ, the database's sequence does not.
SELECT nextval('billing.extraction_seq');
