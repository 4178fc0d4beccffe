-- Re-rating replaces the window's exceptions.
DELETE FROM billing.rating_exceptions WHERE window_start = %(window_start)s AND window_end = %(window_end)s;
