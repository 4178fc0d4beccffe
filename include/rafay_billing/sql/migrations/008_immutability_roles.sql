-- 008: history that cannot be rewritten (issue 21, rule 10).
--
-- TRUNCATE fires no row triggers, so the closed-period and append-only rules of 003/004 did not see
-- it: after a TRUNCATE of the line items, re-billing a closed day charged its hours a second time.
-- Every table of the billing schema now refuses TRUNCATE with a statement-level BEFORE TRUNCATE
-- trigger. billing.guard_truncate() attaches one to each table that has none; it runs here and again
-- after every migrate (rafay_billing.db.migrate), so tables added by later migrations get one too.
--
-- An issued invoice's lines are fixed: the issuing transaction inserts the invoice with its
-- line_count and then its lines; a deferred check at commit holds every invoice that received lines
-- to exactly line_count lines numbered 1..line_count. A later INSERT of a line for an issued invoice
-- (its lines already complete) is refused at commit. Updates and deletes stay refused (004).
--
-- The database roles (owner, writer, reader) are set up by migrate() on every run, from config: see
-- sql/db/ensure_roles.sql and sql/db/grant_roles.sql.

CREATE OR REPLACE FUNCTION billing.refuse_truncate() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'billing.% is ledger history: TRUNCATE is refused (rows leave only through the rules '
        'of the ledger: a re-rating of an open day, a correction of a closed one)', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

-- Attach a BEFORE TRUNCATE trigger to every table of the schema that has none (a table that already
-- refuses TRUNCATE, like invoices since 004, keeps its own). Returns how many were added.
CREATE OR REPLACE FUNCTION billing.guard_truncate() RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    t record;
    added integer := 0;
BEGIN
    FOR t IN
        SELECT c.oid, c.relname
        FROM pg_class AS c
        WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind IN ('r', 'p')
          AND NOT EXISTS (
              SELECT 1 FROM pg_trigger AS g
              WHERE g.tgrelid = c.oid AND NOT g.tgisinternal
                AND (g.tgtype::integer & 32) <> 0   -- TRIGGER_TYPE_TRUNCATE
                AND (g.tgtype::integer & 2) <> 0)   -- TRIGGER_TYPE_BEFORE
        ORDER BY c.relname
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON billing.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_truncate()',
                       left(t.relname, 50) || '_no_truncate', t.relname);
        added := added + 1;
    END LOOP;
    RETURN added;
END
$$;

SELECT billing.guard_truncate();

-- --- an issued invoice's lines are complete and final ------------------------------------------------
CREATE OR REPLACE FUNCTION billing.check_invoice_lines_complete() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    inv record;
    lines integer;
    top integer;
BEGIN
    SELECT i.invoice_id, i.invoice_number, i.line_count INTO inv
    FROM billing.invoices AS i WHERE i.invoice_id = NEW.invoice_id;
    SELECT count(*), max(l.line_no) INTO lines, top FROM billing.invoice_lines AS l WHERE l.invoice_id = NEW.invoice_id;
    IF lines <> inv.line_count OR top <> inv.line_count THEN
        RAISE EXCEPTION 'invoice % (%) is issued with % line(s): its lines cannot change (it would have % line(s), '
            'up to line_no %); corrections are new rows on a later invoice',
            inv.invoice_number, inv.invoice_id, inv.line_count, lines, top
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS invoice_lines_complete ON billing.invoice_lines;
CREATE CONSTRAINT TRIGGER invoice_lines_complete AFTER INSERT ON billing.invoice_lines
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION billing.check_invoice_lines_complete();
