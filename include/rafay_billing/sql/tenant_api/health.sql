-- Liveness of the tenant API's database connection.
SELECT 1;
