-- The preview writes nothing: its transaction refuses any write.
SET TRANSACTION READ ONLY;
