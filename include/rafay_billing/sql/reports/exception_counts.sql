-- Usage records of the days of one window that were not billed, by reason.
SELECT reason, count(*) AS records
FROM billing.rating_exceptions
WHERE window_start >= %(ws)s AND window_end <= %(we)s
GROUP BY reason
ORDER BY reason;
