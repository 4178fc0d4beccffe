-- No month closes while the sync decides which closed months a change touches (the close's own lock,
-- taken first as the close takes it), and one contracts sync at a time (readers keep reading the
-- committed versions meanwhile).
SELECT pg_advisory_xact_lock(hashtextextended('billing|close', 0));
LOCK TABLE billing.contract_versions IN SHARE ROW EXCLUSIVE MODE;
