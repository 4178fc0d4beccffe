-- One load of a given (window, org) at a time: a second loader waits, then replaces the first's rows.
SELECT pg_advisory_xact_lock(hashtextextended(%(lock_key)s, 0));
