-- One rating of a given (org, day) at a time: two runs re-billing the same day take turns. The caller
-- takes the slices' locks in sorted order, so overlapping ratings cannot deadlock.
SELECT pg_advisory_xact_lock(hashtextextended(key, 0))
FROM unnest(%(lock_keys)s::text[]) AS key
ORDER BY key;
