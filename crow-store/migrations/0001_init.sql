-- CROW relational schema, version 1.
--
-- Kept Cloudflare D1-compatible: the same file runs as a D1 migration (`wrangler d1 migrations
-- apply`, which records it in `d1_migrations`) and through crow-store's own runner (which records
-- it in `schema_migrations`). So: no PRAGMA, no ATTACH, no user-defined functions, no STRICT
-- tables; only TEXT, INTEGER, REAL and BLOB columns. Times are Unix milliseconds (INTEGER);
-- booleans are INTEGER 0/1; JSON is TEXT.
--
-- Foreign keys tie the account tables to `organizations`. The high-volume tables (interactions,
-- sessions, identities, products, jobs) carry `org_id` without a foreign key: rows are scoped by
-- every query, and a per-row parent lookup would slow the ingest path down.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Per-org secret for keyed pseudonyms (HMAC-SHA256). Never returned by any API.
CREATE TABLE org_secrets (
    org_id         TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    pseudonym_key  BLOB NOT NULL,
    created_at     INTEGER NOT NULL
);

-- Dashboard users of an org.
CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    name        TEXT,
    role        TEXT NOT NULL DEFAULT 'member',
    created_at  INTEGER NOT NULL,
    UNIQUE (org_id, email)
);

-- API keys. `prefix` is the lookup key, stored in clear: the whole key for a (public) write
-- key, the 12-hex public prefix for a secret key. `hash` is the SHA-256 (hex) of the whole key.
CREATE TABLE api_keys (
    prefix      TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('write', 'secret')),
    hash        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_org ON api_keys (org_id);

-- Product catalog.
CREATE TABLE categories (
    org_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    parent      TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE products (
    seq          INTEGER PRIMARY KEY,
    org_id       TEXT NOT NULL,
    sku          TEXT NOT NULL,
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    brand        TEXT,
    category     TEXT,
    price_cents  INTEGER,
    currency     TEXT,
    url          TEXT,
    description  TEXT,
    updated_at   INTEGER NOT NULL,
    UNIQUE (org_id, sku)
);

-- Website/app interactions. `seq` is the insertion order; `id` is the client's event id (the
-- idempotency key). `data` holds the whole Interaction as JSON; the columns beside it are what
-- queries filter and aggregate on. person_id, session_id and referrer_class are rewritten by
-- enrichment and identity links: the columns are authoritative over `data` for those three.
CREATE TABLE interactions (
    seq             INTEGER PRIMARY KEY,
    org_id          TEXT NOT NULL,
    id              TEXT NOT NULL,
    type            TEXT NOT NULL,
    name            TEXT,
    anonymous_id    TEXT,
    user_id         TEXT,
    person_id       TEXT,
    session_id      TEXT,
    timestamp       INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    is_bot          INTEGER NOT NULL DEFAULT 0,
    pii_scrubbed    INTEGER NOT NULL DEFAULT 0,
    page_path       TEXT,
    referrer_class  TEXT,
    data            TEXT NOT NULL,
    UNIQUE (org_id, id)
);
-- `seq` (the rowid) is the implicit last column of every index: (org_id, timestamp) serves
-- ORDER BY timestamp DESC, seq DESC without a sort. person_id is NULL until enrichment, so its
-- index is partial: inserts skip it (queries on `person_id = ?` still use it).
CREATE INDEX interactions_time ON interactions (org_id, timestamp);
CREATE INDEX interactions_person ON interactions (org_id, person_id, timestamp) WHERE person_id IS NOT NULL;
CREATE INDEX interactions_session ON interactions (org_id, session_id, timestamp) WHERE session_id IS NOT NULL;

-- Sessions, recomputed from their interactions by `refresh_sessions`.
CREATE TABLE sessions (
    seq             INTEGER PRIMARY KEY,
    org_id          TEXT NOT NULL,
    id              TEXT NOT NULL,
    person_id       TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER NOT NULL,
    event_count     INTEGER NOT NULL,
    page_count      INTEGER NOT NULL,
    entry_path      TEXT,
    exit_path       TEXT,
    referrer        TEXT,
    referrer_class  TEXT,
    campaign        TEXT,
    device          TEXT,
    is_bot          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (org_id, id)
);
-- Sessions list newest first, ties broken by id.
CREATE INDEX sessions_time ON sessions (org_id, started_at, id);
CREATE INDEX sessions_person ON sessions (org_id, person_id, started_at, id);

-- Identity stitching: alias (anonymous or previous id) -> person.
CREATE TABLE identities (
    org_id     TEXT NOT NULL,
    alias_id   TEXT NOT NULL,
    person_id  TEXT NOT NULL,
    linked_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, alias_id)
);
CREATE INDEX identities_person ON identities (org_id, person_id);

-- Durable job queue. AUTOINCREMENT: a job id is never reused, so a late ack of an old job
-- cannot delete a new one. A job is in flight while `lease_until` is set and status is ready.
-- jobs_ready ends with the implicit rowid (= id), so "oldest first" needs no sort.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    not_before   INTEGER NOT NULL DEFAULT 0,
    lease_until  INTEGER,
    last_error   TEXT,
    enqueued_at  INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs (queue, status);

-- Finished workflow steps, so a crashed workflow resumes instead of repeating them.
CREATE TABLE workflow_steps (
    run_id       TEXT NOT NULL,
    step         TEXT NOT NULL,
    output       TEXT NOT NULL,
    finished_at  INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
);

-- Key/value settings; org_id '' holds installation-wide settings. `value` is JSON.
CREATE TABLE settings (
    org_id      TEXT NOT NULL DEFAULT '',
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, key)
);

-- Who did what: org creation, key revocation, ...
CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY,
    org_id  TEXT,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT,
    detail  TEXT
);
CREATE INDEX audit_log_org ON audit_log (org_id, at);
