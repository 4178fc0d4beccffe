-- 014: delivery of issued documents to the provider's billing system (connection billing_delivery).
--
-- * One row per (document, endpoint): status 'pending' (to send), 'delivered' (a 2xx acknowledged it),
--   'failed' (a permanent refusal, e.g. 400/401/422: recorded with the response; `rafay-billing deliveries
--   retry` sets it back to pending). attempts counts every request sent, the last response code and a
--   bounded excerpt of its body (1 KB) or the transport error say what happened, with timestamps.
-- * A 2xx is final: the database refuses any change to (or deletion of) a delivered row, so a delivered
--   document is never queued or sent again to that endpoint, whatever code runs.
-- * payload_sha256 is the SHA-256 of the body last sent (the same bytes every time: the document is
--   immutable once issued), so what a receiver stored can be compared with what was sent.
CREATE TABLE IF NOT EXISTS billing.deliveries (
    invoice_id        text        NOT NULL REFERENCES billing.invoices (invoice_id),
    endpoint          text        NOT NULL CHECK (endpoint <> ''),
    status            text        NOT NULL DEFAULT 'pending'
                                  CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_status_code  integer     NULL CHECK (last_status_code BETWEEN 100 AND 599),
    last_response     text        NULL CHECK (octet_length(last_response) <= 1024),
    last_error        text        NULL CHECK (octet_length(last_error) <= 1024),
    payload_sha256    text        NULL CHECK (payload_sha256 ~ '^[0-9a-f]{64}$'),
    enqueued_at       timestamptz NOT NULL DEFAULT now(),
    last_attempt_at   timestamptz NULL,
    delivered_at      timestamptz NULL,
    failed_at         timestamptz NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deliveries_pkey PRIMARY KEY (invoice_id, endpoint),
    CONSTRAINT deliveries_delivered_when CHECK ((status = 'delivered') = (delivered_at IS NOT NULL)),
    CONSTRAINT deliveries_delivered_by_2xx
        CHECK (status <> 'delivered' OR (last_status_code BETWEEN 200 AND 299 AND attempts > 0)),
    CONSTRAINT deliveries_failed_when CHECK ((status = 'failed') = (failed_at IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS deliveries_open ON billing.deliveries (endpoint, status) WHERE status <> 'delivered';

-- A delivered row is final; a failed row goes back to pending (an operator's retry) before it is sent.
CREATE OR REPLACE FUNCTION billing.guard_delivery() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'billing.deliveries cannot be truncated: it records which documents a billing system acknowledged'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.status = 'delivered' THEN
        RAISE EXCEPTION 'document % was delivered to % at % (HTTP %): a delivered document is final and is never sent again',
            OLD.invoice_id, OLD.endpoint, OLD.delivered_at, OLD.last_status_code
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the delivery of document % to % is never deleted: it records what was sent (a failed one goes back to pending with rafay-billing deliveries retry)',
            OLD.invoice_id, OLD.endpoint USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.invoice_id <> OLD.invoice_id OR NEW.endpoint <> OLD.endpoint THEN
        RAISE EXCEPTION 'a delivery''s document and endpoint never change (document %, endpoint %)',
            OLD.invoice_id, OLD.endpoint USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.status = 'failed' AND NEW.status = 'delivered' THEN
        RAISE EXCEPTION 'document % failed at %: set it back to pending (rafay-billing deliveries retry) before it is sent again',
            OLD.invoice_id, OLD.endpoint USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.attempts < OLD.attempts THEN
        RAISE EXCEPTION 'the attempts of document % to % only grow (% -> %)',
            OLD.invoice_id, OLD.endpoint, OLD.attempts, NEW.attempts USING ERRCODE = 'restrict_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS deliveries_guard ON billing.deliveries;
CREATE TRIGGER deliveries_guard BEFORE UPDATE OR DELETE ON billing.deliveries
    FOR EACH ROW EXECUTE FUNCTION billing.guard_delivery();
DROP TRIGGER IF EXISTS deliveries_no_truncate ON billing.deliveries;
CREATE TRIGGER deliveries_no_truncate BEFORE TRUNCATE ON billing.deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION billing.guard_delivery();
