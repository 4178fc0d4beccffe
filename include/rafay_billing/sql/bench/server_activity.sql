-- Benchmark only: the server's cumulative activity counters, read before and after each timed rating
-- (the differences: WAL written, checkpoints, autovacuum/autoanalyze runs, temporary files).
SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS wal_bytes,
       (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) AS checkpoints,
       (SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0)::bigint FROM pg_stat_all_tables) AS autovacuums,
       (SELECT coalesce(sum(temp_bytes), 0)::bigint FROM pg_stat_database) AS temp_bytes;
