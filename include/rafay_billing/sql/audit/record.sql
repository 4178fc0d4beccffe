-- One entry of the append-only audit log: closes, issues, corrections and waivers.
INSERT INTO billing.audit_log (action, actor, period_start, org_id, usage_date, detail)
VALUES (%(action)s, %(actor)s, %(period_start)s, %(org_id)s, %(usage_date)s, %(detail)s);
