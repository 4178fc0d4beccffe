-- Re-rating replaces the window's line items.
DELETE FROM billing.charge_line_items WHERE window_start = %(window_start)s AND window_end = %(window_end)s;
