-- CROW relational schema, version 5: access control for the REST API (roles, named keys,
-- users with roles, an append-only audit log). D1-compatible, like 0001.

-- A secret key acts with a role; keys made before roles existed were the org's only key, so
-- they keep full rights. Write keys only ingest: their role is never consulted.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'owner'
    CHECK (role IN ('owner', 'admin', 'analyst', 'viewer'));
ALTER TABLE api_keys ADD COLUMN name TEXT;
-- Listing an org's keys newest first.
CREATE INDEX api_keys_org_time ON api_keys (org_id, created_at, prefix);

-- Users had a free-form role ('member' by default); roles are now the four of the matrix.
UPDATE users SET role = 'viewer' WHERE role NOT IN ('owner', 'admin', 'analyst', 'viewer');
CREATE INDEX users_org_email ON users (org_id, email);

-- Where a mutation came from.
ALTER TABLE audit_log ADD COLUMN ip TEXT;
CREATE INDEX audit_log_org_seq ON audit_log (org_id, seq);

-- The audit log is append-only: no statement may change or remove a row.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
