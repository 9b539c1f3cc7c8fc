-- CROW relational schema, version 4: CCTV results (crow-ingest's cctv channel).
-- D1-compatible, like 0001.

-- Events derived from CCTV frames (motion, presence, line crossings, occupancy, dwell times).
-- Never an image: `frame_key` is the object-store key of the masked keyframe, when archived.
-- `kind` is the snake_case name of the kind (`motion`, `line_in`, ...); `value` is the
-- measured value (dwell seconds, motion area fraction), NULL when none. An event id is stored
-- at most once per org (`INSERT OR IGNORE`: a redelivered job stores nothing twice).
CREATE TABLE frame_events (
    org_id     TEXT NOT NULL,
    id         TEXT NOT NULL,
    camera_id  TEXT NOT NULL,
    ts         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    zone       TEXT,
    count      INTEGER NOT NULL DEFAULT 0,
    value      REAL,
    frame_key  TEXT,
    PRIMARY KEY (org_id, id)
);
-- Oldest first, ties broken by id: the listing's order and its cursor.
CREATE INDEX frame_events_time ON frame_events (org_id, ts, id);
CREATE INDEX frame_events_camera ON frame_events (org_id, camera_id, ts, id);
CREATE INDEX frame_events_kind ON frame_events (org_id, kind, ts, id);

-- The archive ledger: every object the cctv channel wrote to the `cctv-frames` bucket (masked
-- keyframes, heatmaps), so retention finds the oldest objects and the total size without
-- listing the bucket. `ts` is the frame (or period end) time, `bytes` the object's size,
-- `kind` `keyframe` or `heatmap`.
CREATE TABLE video_archive (
    org_id     TEXT NOT NULL,
    key        TEXT NOT NULL,
    camera_id  TEXT NOT NULL,
    ts         INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    PRIMARY KEY (org_id, key)
);
-- Oldest first, ties broken by key: what retention deletes first.
CREATE INDEX video_archive_time ON video_archive (org_id, ts, key);
