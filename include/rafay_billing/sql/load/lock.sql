-- One load of a given (org, day) at a time: a second loader waits, then replaces its own run's rows.
SELECT pg_advisory_xact_lock(hashtextextended(%(lock_key)s, 0));
