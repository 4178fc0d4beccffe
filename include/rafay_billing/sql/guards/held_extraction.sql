-- The newest extraction a run landed for an (org, day), with the seq of the one the day holds (and that
-- seq or a later read's that confirmed it, whichever is higher).
SELECT e.extraction_seq, e.status, e.records, e.instance_hours, e.accepted_at,
       (SELECT r.extraction_seq FROM billing.extractions AS r
        WHERE r.org_id = e.org_id AND r.usage_date = e.usage_date AND r.status = 'rated') AS rated_seq,
       (SELECT greatest(r.extraction_seq, r.confirmed_seq) FROM billing.extractions AS r
        WHERE r.org_id = e.org_id AND r.usage_date = e.usage_date AND r.status = 'rated') AS current_seq,
       (SELECT c.organization FROM billing.coverage AS c
        WHERE c.org_id = e.org_id AND c.usage_date = e.usage_date) AS organization
FROM billing.extractions AS e
WHERE e.org_id = %(org_id)s AND e.usage_date = %(usage_date)s AND e.run_id = %(run_id)s
ORDER BY e.extraction_seq DESC
LIMIT 1;
