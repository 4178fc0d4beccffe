-- One close at a time.
SELECT pg_advisory_xact_lock(hashtextextended('billing|close', 0));
