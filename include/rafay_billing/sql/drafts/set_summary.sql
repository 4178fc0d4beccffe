-- What the reviewer is shown (totals, changes, exceptions, corrections), kept with the set.
UPDATE billing.invoice_draft_sets SET summary = %(summary)s WHERE draft_set_id = %(draft_set_id)s AND status = 'pending';
