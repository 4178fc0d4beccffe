-- First statement of publish_reports' own transaction: both ncp-metrics files and the line items are
-- read from one snapshot, so a rating committed while they stream cannot make them disagree.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;
