-- CROW relational schema, version 2: text intelligence (crow-nlp). D1-compatible, like 0001.

-- What `process-interaction` found in interactions that carry text (search queries, feedback,
-- chat messages, reviews): one row per event. `analysis` is the JSON of crow-core's
-- TextAnalysis (entities marked pii carry no text); the columns beside it are what queries
-- aggregate on. `embedding` is the sentence embedding as little-endian f32, when the model tier ran.
CREATE TABLE interaction_texts (
    org_id           TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    field            TEXT NOT NULL,
    timestamp        INTEGER NOT NULL,
    language         TEXT,
    sentiment_label  TEXT,
    sentiment_score  REAL,
    sentiment_tier   TEXT,
    analysis         TEXT NOT NULL,
    embedding        BLOB,
    analyzed_at      INTEGER NOT NULL,
    PRIMARY KEY (org_id, event_id)
);
CREATE INDEX interaction_texts_time ON interaction_texts (org_id, timestamp);

-- Names matched in texts besides the products: brands and competitors.
CREATE TABLE catalog_terms (
    org_id      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('brand', 'competitor')),
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, kind, name)
);
