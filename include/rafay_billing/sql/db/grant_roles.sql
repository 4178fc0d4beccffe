-- What the writer and the reader may do, granted afresh by the owner on every migrate (tables of later
-- migrations included; ALTER DEFAULT PRIVILEGES covers tables created between two migrates).
--   writer: SELECT everything; INSERT, UPDATE, DELETE where the ledger's triggers decide what may
--           change (closed periods refuse it); INSERT only on the append-only history; nothing on the
--           migration record and the currencies (migrate keeps them); the sequences it draws from.
--           Never TRUNCATE, TRIGGER, REFERENCES, ALTER or DROP: those stay with the owner.
--   reader: SELECT only.
--   tenant API (rafay-billing serve-tenant-api): SELECT on what it serves (issued documents and their
--           lines, line items, currencies, the API tokens it checks) and UPDATE of api_tokens.last_used_at;
--           nothing else: no other table (audit log, usage records, price book, ...), no sequence, and
--           no default privileges, so a table a later migration adds stays closed to it until named here.
DO $$
DECLARE
    owner_role text := current_setting('rafay_billing.owner_role');
    writer text := current_setting('rafay_billing.writer_role');
    reader text := current_setting('rafay_billing.reader_role');
    tenant text := current_setting('rafay_billing.tenant_api_role');
    served text;
    t record;
    privileges text;
BEGIN
    EXECUTE format('REVOKE ALL ON SCHEMA billing FROM PUBLIC, %I, %I, %I', writer, reader, tenant);
    EXECUTE format('GRANT USAGE ON SCHEMA billing TO %I, %I, %I', writer, reader, tenant);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA billing FROM PUBLIC, %I, %I, %I', writer, reader, tenant);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA billing FROM PUBLIC, %I, %I, %I', writer, reader, tenant);
    FOREACH served IN ARRAY ARRAY['invoices', 'invoice_lines', 'charge_line_items', 'currencies', 'api_tokens']
    LOOP
        IF to_regclass('billing.' || served) IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON billing.%I TO %I', served, tenant);
        END IF;
    END LOOP;
    IF to_regclass('billing.api_tokens') IS NOT NULL THEN
        EXECUTE format('GRANT UPDATE (last_used_at) ON billing.api_tokens TO %I', tenant);
    END IF;
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA billing TO %I, %I', writer, reader);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA billing TO %I', writer);
    FOR t IN
        SELECT c.relname FROM pg_class AS c
        WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind IN ('r', 'p')
        ORDER BY c.relname
    LOOP
        privileges := CASE
            WHEN t.relname IN ('schema_migrations', 'currencies') THEN NULL
            WHEN t.relname IN ('audit_log', 'invoices', 'invoice_lines', 'billing_periods', 'price_book_history',
                               'exception_waivers', 'document_references', 'invoice_drafts',
                               'invoice_draft_lines') THEN 'INSERT'
            -- versions and delivery states move forward only (their triggers); no DELETE
            WHEN t.relname IN ('invoice_counters', 'contract_versions', 'deliveries', 'api_tokens', 'extractions',
                               'invoice_draft_sets')
                THEN 'INSERT, UPDATE'
            ELSE 'INSERT, UPDATE, DELETE'
        END;
        IF privileges IS NOT NULL THEN
            EXECUTE format('GRANT %s ON billing.%I TO %I', privileges, t.relname, writer);
        END IF;
    END LOOP;
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA billing '
                   'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', owner_role, writer);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA billing GRANT SELECT ON TABLES TO %I',
                   owner_role, reader);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA billing '
                   'GRANT USAGE, SELECT ON SEQUENCES TO %I', owner_role, writer);
END
$$;
