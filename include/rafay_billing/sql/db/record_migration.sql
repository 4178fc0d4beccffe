-- Record one applied migration.
INSERT INTO billing.schema_migrations (version, name) VALUES (%(version)s, %(name)s);
