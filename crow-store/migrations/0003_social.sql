-- CROW relational schema, version 3: social listening (crow-ingest's social channel).
-- D1-compatible, like 0001.
--
-- A mention's id (`platform:platform_id`) is stored at most once per org: as a row of
-- `social_mentions`, or as a row of `social_duplicates` (a repost or near-copy of a stored
-- mention), never both; crow-store checks the other table before inserting into one.

-- Public posts that mention the org. Author handles are pseudonyms, text and URL are
-- PII-scrubbed before they get here. `simhash` is the u64 SimHash stored as the i64 with the
-- same bits (so values with the top bit set are negative). Engagement counts are NULL when the
-- platform does not report them. `sentiment` and `analysis` (JSON) are written by the
-- `analyze-social` workflow; `selected` (0/1) says whether the pre-filter sent the mention there.
CREATE TABLE social_mentions (
    org_id         TEXT NOT NULL,
    id             TEXT NOT NULL,
    platform       TEXT NOT NULL,
    platform_id    TEXT NOT NULL,
    source         TEXT NOT NULL DEFAULT '',
    query          TEXT,
    author         TEXT,
    text           TEXT NOT NULL,
    url            TEXT,
    language       TEXT,
    posted_at      INTEGER NOT NULL,
    fetched_at     INTEGER NOT NULL,
    likes          INTEGER,
    reposts        INTEGER,
    replies        INTEGER,
    score          INTEGER,
    simhash        INTEGER,
    lexicon_score  REAL,
    selected       INTEGER NOT NULL DEFAULT 0,
    sentiment      REAL,
    analysis       TEXT,
    PRIMARY KEY (org_id, id)
);
-- Newest first, ties broken by id: the listing's order and its cursor.
CREATE INDEX social_mentions_time ON social_mentions (org_id, posted_at DESC, id DESC);
CREATE INDEX social_mentions_platform ON social_mentions (org_id, platform);
CREATE INDEX social_mentions_source ON social_mentions (org_id, source);

-- Mentions not stored because they repeat a stored one (`original_id`); `distance` is the
-- Hamming distance between the SimHashes (0 for the same post seen again).
CREATE TABLE social_duplicates (
    org_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    original_id  TEXT NOT NULL,
    platform     TEXT NOT NULL,
    url          TEXT,
    distance     INTEGER NOT NULL,
    fetched_at   INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX social_duplicates_original ON social_duplicates (org_id, original_id);

-- Where each configured social source stands between runs. `cursor` is the adapter's own
-- (opaque here).
CREATE TABLE social_sources (
    org_id           TEXT NOT NULL,
    source           TEXT NOT NULL,
    cursor           TEXT,
    last_run_at      INTEGER,
    last_success_at  INTEGER,
    last_error       TEXT,
    PRIMARY KEY (org_id, source)
);
