-- First statement of an export's own transaction: every query of the export sees one snapshot.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;
