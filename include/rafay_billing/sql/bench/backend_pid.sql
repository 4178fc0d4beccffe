-- Benchmark only: this connection's server process (its CPU time is read from /proc).
SELECT pg_backend_pid();
