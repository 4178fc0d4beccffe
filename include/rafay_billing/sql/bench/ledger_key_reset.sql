TRUNCATE lab_key.t_full, lab_key.t_hash, lab_key.t_nokey;
