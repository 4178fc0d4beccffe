-- One rating of a given window at a time (two runs of the same window take turns).
SELECT pg_advisory_xact_lock(hashtextextended(%(lock_key)s, 0));
