//! [`EventStore`](crow_core::ports::EventStore) on the SQL layer: the ingest path (`append`),
//! enrichment, text analyses, identity links, sessions and the reports.
//!
//! `append` is one [`Sql::batch`] of at most two statements: one `INSERT OR IGNORE … SELECT …
//! FROM json_each(…) RETURNING` storing every event (the events travel as JSON parameters of at
//! most [`APPEND_CHUNK_BYTES`] each, all read by that one statement), then the follow-up jobs, guarded
//! by `changes() > 0` so they are enqueued only when something new was stored. Id lists go as
//! one JSON parameter (`json_each`), never as `?, ?, …`.

use std::collections::{HashMap, HashSet};

use crow_core::model::{
    DeviceClass, Enrichment, EventType, Interaction, InteractionText, Millis, PageContext, ReferrerClass, Session,
};
use crow_core::ports::{
    AppendOutcome, EntityCount, EntityQuery, FunnelCounter, FunnelRow, FunnelStep, InteractionQuery, MAX_TOP_ENTITIES,
    NewJob, Page, SentimentBucket, SentimentSource, SessionQuery, TrafficSummary,
};
use serde::Serialize;

use super::queue::{JobRow, insert_jobs};
use super::{
    Local, Row, Sql, SqlValue, Stmt, clamp_limit, decode_cursor, decode_id_cursor, encode_cursor, encode_id_cursor,
    json_chunks,
};
use crate::error::StoreError;

/// The most bytes of event JSON bound in one parameter (D1 refuses a string over 2 MB; the
/// rows' `data` is escaped once more inside it, so this leaves room). A larger append binds
/// several such parameters to the same statement.
pub const APPEND_CHUNK_BYTES: usize = 1 << 20;

/// At most this many chunk parameters (D1 binds at most 100, one is the org); an append larger
/// than this many [`APPEND_CHUNK_BYTES`] gets larger chunks (fine natively, refused by D1's string
/// limit, as it would refuse the request anyway).
const MAX_CHUNKS: usize = 98;

/// An interaction ready to insert, bound as one element of the JSON arrays the insert reads:
/// itself an array of the columns, in [`EVENT_COLUMNS`] order (reading an array element is
/// cheaper for SQLite than looking up a key).
#[derive(Debug)]
struct EventRow {
    id: String,
    event_type: &'static str,
    name: Option<String>,
    anonymous_id: Option<String>,
    user_id: Option<String>,
    person_id: Option<String>,
    session_id: Option<String>,
    timestamp: i64,
    received_at: i64,
    is_bot: bool,
    pii_scrubbed: u32,
    page_path: Option<String>,
    referrer_class: Option<&'static str>,
    data: String,
}

/// The columns an [`EventRow`] fills, in the order of its JSON array.
const EVENT_COLUMNS: [&str; 14] = [
    "id",
    "type",
    "name",
    "anonymous_id",
    "user_id",
    "person_id",
    "session_id",
    "timestamp",
    "received_at",
    "is_bot",
    "pii_scrubbed",
    "page_path",
    "referrer_class",
    "data",
];

impl Serialize for EventRow {
    /// `[[id, type, …, referrer_class], data]`: the short columns apart from the long `data`, so
    /// reading each of them looks through a few bytes only.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let short = (
            &self.id,
            self.event_type,
            &self.name,
            &self.anonymous_id,
            &self.user_id,
            &self.person_id,
            &self.session_id,
            self.timestamp,
            self.received_at,
            u8::from(self.is_bot),
            self.pii_scrubbed,
            &self.page_path,
            self.referrer_class,
        );
        (short, &self.data).serialize(s)
    }
}

impl EventRow {
    /// `org_id`, then the columns in [`EVENT_COLUMNS`] order: the parameters of one row's insert.
    fn params(self, org_id: &str) -> Vec<SqlValue> {
        vec![
            org_id.into(),
            self.id.into(),
            self.event_type.into(),
            self.name.into(),
            self.anonymous_id.into(),
            self.user_id.into(),
            self.person_id.into(),
            self.session_id.into(),
            self.timestamp.into(),
            self.received_at.into(),
            self.is_bot.into(),
            self.pii_scrubbed.into(),
            self.page_path.into(),
            self.referrer_class.into(),
            self.data.into(),
        ]
    }

    /// The row of `ev`, stored under `org_id` (the event's own `org_id` is overwritten).
    fn new(org_id: &str, mut ev: Interaction) -> Result<EventRow, StoreError> {
        if ev.org_id != org_id {
            org_id.clone_into(&mut ev.org_id);
        }
        let data = serde_json::to_string(&ev)?;
        Ok(EventRow {
            event_type: ev.event_type.as_str(),
            referrer_class: ev.referrer_class.map(ReferrerClass::as_str),
            page_path: page_path(ev.context.page.as_ref()),
            id: ev.id,
            name: ev.name,
            anonymous_id: ev.anonymous_id,
            user_id: ev.user_id,
            person_id: ev.person_id,
            session_id: ev.session_id,
            timestamp: ev.timestamp,
            received_at: ev.received_at,
            is_bot: ev.is_bot,
            pii_scrubbed: ev.pii_scrubbed,
            data,
        })
    }
}

/// Path of a page: `context.page.path`, else the path part of `context.page.url`.
pub(crate) fn page_path(page: Option<&PageContext>) -> Option<String> {
    let page = page?;
    if let Some(p) = &page.path {
        return Some(p.clone());
    }
    let url = page.url.as_deref()?;
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    let end = path.find(['?', '#']).unwrap_or(path.len());
    Some(path[..end].to_owned())
}

/// `rows` as JSON arrays of at most `chunk_bytes` each (at least one row per array, at most
/// [`MAX_CHUNKS`] arrays).
fn chunk_json(rows: &[EventRow], chunk_bytes: usize) -> Result<Vec<String>, StoreError> {
    let encoded = rows.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>()?;
    let total: usize = encoded.iter().map(|e| e.len() + 1).sum();
    let limit = chunk_bytes.max(total.div_ceil(MAX_CHUNKS));
    let mut chunks = Vec::new();
    let mut current = String::from("[");
    for e in encoded {
        if current.len() > 1 && current.len() + e.len() + 1 > limit {
            current.push(']');
            chunks.push(std::mem::replace(&mut current, String::from("[")));
        }
        if current.len() > 1 {
            current.push(',');
        }
        current.push_str(&e);
    }
    current.push(']');
    chunks.push(current);
    Ok(chunks)
}

/// The one statement storing `rows` under `org_id` (`INSERT OR IGNORE`, in input order; the
/// ids it stored come back as `inserted_id`).
fn insert_events(org_id: &str, rows: Vec<EventRow>, chunk_bytes: usize, in_process: bool) -> Result<Stmt, StoreError> {
    // In-process, a prepared insert per row is cheaper than writing and reading JSON (SQLite:
    // about 1.7×); such an executor runs the `Local` form only, so the JSON is not even built.
    let columns = EVENT_COLUMNS.join(", ");
    let placeholders = (1..=EVENT_COLUMNS.len() + 1)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let each_sql = format!(
        "INSERT OR IGNORE INTO interactions (org_id, {columns}) VALUES ({placeholders}) RETURNING id AS inserted_id"
    );
    if in_process {
        // The statement itself is the first row's insert; its `Local` form inserts them all.
        let all: Vec<Vec<SqlValue>> = rows.into_iter().map(|r| r.params(org_id)).collect();
        let first = all.first().cloned().unwrap_or_default();
        let stmt = first.into_iter().fold(Stmt::new(each_sql.clone()), Stmt::bind);
        return Ok(stmt.with_local(Local::Each {
            sql: each_sql.into(),
            rows: all,
        }));
    }
    let chunks = chunk_json(&rows, chunk_bytes)?;
    // One compound scan, arm after arm in order: one statement, so `changes()` counts all.
    let source = (0..chunks.len())
        .map(|i| format!("SELECT value FROM json_each(?{})", i + 2))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    // Materialized once, so json_each renders each element once and every `->>` below reads the
    // same short text (SQLite's JSON cache parses it once).
    let short: Vec<String> = (0..EVENT_COLUMNS.len() - 1).map(|k| format!("e.m ->> {k}")).collect();
    let sql = format!(
        "WITH e(m, d) AS MATERIALIZED (SELECT j.value -> 0, j.value ->> 1 FROM ({source}) AS j) \
         INSERT OR IGNORE INTO interactions (org_id, {columns}) SELECT ?1, {}, e.d FROM e \
         RETURNING id AS inserted_id",
        short.join(", ")
    );
    Ok(chunks.into_iter().fold(Stmt::new(sql).bind(org_id), Stmt::bind))
}

/// [`EventStore::append`](crow_core::ports::EventStore::append): stores `events` under `org_id`
/// (an event's own `org_id` is overwritten) and, in the same batch, enqueues `follow_up` with
/// `enqueued_at` = the latest `received_at` of the events (0 without events), unless every
/// event was a duplicate: such a batch had its jobs enqueued when it was first stored.
pub async fn append<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    events: Vec<Interaction>,
    follow_up: Vec<NewJob>,
) -> Result<AppendOutcome, StoreError> {
    append_chunked(db, org_id, events, follow_up, APPEND_CHUNK_BYTES).await
}

async fn append_chunked<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    events: Vec<Interaction>,
    follow_up: Vec<NewJob>,
    chunk_bytes: usize,
) -> Result<AppendOutcome, StoreError> {
    if events.is_empty() && follow_up.is_empty() {
        return Ok(AppendOutcome::default());
    }
    let enqueued_at = events.iter().map(|e| e.received_at).max().unwrap_or(0);
    let rows = events
        .into_iter()
        .map(|ev| EventRow::new(org_id, ev))
        .collect::<Result<Vec<_>, _>>()?;
    let jobs = JobRow::all(follow_up)?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut stmts = Vec::with_capacity(2);
    if !rows.is_empty() {
        stmts.push(insert_events(org_id, rows, chunk_bytes, db.in_process())?);
    }
    if !jobs.is_empty() {
        // Right after the insert: only when it stored something (`changes() > 0`).
        stmts.push(insert_jobs(&jobs, enqueued_at, !ids.is_empty()));
    }
    let done = db.batch(stmts).await?;
    if ids.is_empty() {
        return Ok(AppendOutcome::default());
    }
    let first = done
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Internal("append: the batch answered no statement".into()))?;
    let mut stored = first
        .rows
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<HashSet<String>, _>>()?;
    // Input order, whatever order RETURNING used; a repeated id counts once.
    let mut out = AppendOutcome::default();
    for id in ids {
        if stored.remove(&id) {
            out.inserted += 1;
            out.inserted_ids.push(id);
        } else {
            out.duplicates += 1;
        }
    }
    Ok(out)
}

/// Columns [`interaction_from_row`] reads, in order, of `interactions AS i`.
pub(crate) const INTERACTION_COLS: &str = "i.person_id, i.session_id, i.referrer_class, i.data, (SELECT x.analysis \
     FROM interaction_texts x WHERE x.org_id = i.org_id AND x.event_id = i.id)";

/// An interaction read with [`INTERACTION_COLS`] (first, from column 0): the stored JSON, with
/// the columns enrichment and identity links rewrite laid over it, and the text analysis.
pub(crate) fn interaction_from_row(row: &Row) -> Result<Interaction, StoreError> {
    let mut ev: Interaction = row.json(3)?;
    ev.person_id = row.opt_text(0)?;
    ev.session_id = row.opt_text(1)?;
    ev.referrer_class = row.opt_text(2)?.as_deref().and_then(ReferrerClass::parse);
    ev.analysis = row.opt_text(4)?.map(|a| serde_json::from_str(&a)).transpose()?;
    Ok(ev)
}

/// [`EventStore::get_interactions`](crow_core::ports::EventStore::get_interactions): the stored
/// events of `ids`, in the order of `ids` (unknown ids and other orgs' are skipped).
pub async fn get_interactions<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    ids: &[String],
) -> Result<Vec<Interaction>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db
        .query_point(
            Stmt::new(format!(
                "SELECT {INTERACTION_COLS} FROM json_each(?2) AS j CROSS JOIN interactions AS i \
                 WHERE i.org_id = ?1 AND i.id = j.value ORDER BY j.key"
            ))
            .bind(org_id)
            .bind_list(ids),
        )
        .await?;
    rows.iter().map(interaction_from_row).collect()
}

/// [`EventStore::interactions_ndjson`](crow_core::ports::EventStore::interactions_ndjson): the
/// stored JSON of the events of `ids`, one line each in the order of `ids`, and how many.
pub async fn interactions_ndjson<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    ids: &[String],
) -> Result<(Vec<u8>, usize), StoreError> {
    if ids.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let rows = db
        .query_point(
            Stmt::new(
                "SELECT i.data FROM json_each(?2) AS j CROSS JOIN interactions AS i \
                 WHERE i.org_id = ?1 AND i.id = j.value ORDER BY j.key",
            )
            .bind(org_id)
            .bind_list(ids),
        )
        .await?;
    let n = rows.len();
    let mut out = Vec::with_capacity(rows.iter().map(|r| r.0.first().map_or(0, text_len) + 1).sum());
    for Row(cols) in rows {
        match cols.into_iter().next() {
            Some(SqlValue::Text(t)) => out.extend_from_slice(t.as_bytes()),
            other => {
                return Err(StoreError::Column {
                    index: 0,
                    reason: format!("expected the stored JSON text, found {other:?}"),
                });
            }
        }
        out.push(b'\n');
    }
    Ok((out, n))
}

fn text_len(v: &SqlValue) -> usize {
    match v {
        SqlValue::Text(t) => t.len(),
        _ => 0,
    }
}

/// The statement of one page of [`list_interactions`] (one row more than `limit`, to learn
/// whether a next page exists): [`INTERACTION_COLS`], then `timestamp` and `seq`.
pub(crate) fn list_interactions_stmt(org_id: &str, query: &InteractionQuery, limit: usize) -> Result<Stmt, StoreError> {
    let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut sql = format!("SELECT {INTERACTION_COLS}, i.timestamp, i.seq FROM interactions AS i WHERE i.org_id = ?");
    let mut params: Vec<SqlValue> = vec![org_id.into()];
    let mut filter = |clause: &str, v: SqlValue| {
        sql.push_str(clause);
        params.push(v);
    };
    if let Some(t) = query.event_type {
        filter(" AND i.type = ?", t.as_str().into());
    }
    if let Some(n) = &query.name {
        filter(" AND i.name = ?", n.into());
    }
    if let Some(s) = query.since {
        filter(" AND i.timestamp >= ?", s.into());
    }
    if let Some(u) = query.until {
        filter(" AND i.timestamp < ?", u.into());
    }
    if let Some(s) = &query.session_id {
        filter(" AND i.session_id = ?", s.into());
    }
    if let Some(p) = &query.person_id {
        filter(" AND i.person_id = ?", p.into());
    }
    if let Some((t, s)) = cursor {
        // A row value, so the index range starts at the cursor instead of scanning up to it.
        filter(" AND (i.timestamp, i.seq) < (?", t.into());
        filter(", ?)", s.into());
    }
    sql.push_str(" ORDER BY i.timestamp DESC, i.seq DESC LIMIT ?");
    params.push((limit + 1).into());
    Ok(params.into_iter().fold(Stmt::new(sql), Stmt::bind))
}

/// [`EventStore::list_interactions`](crow_core::ports::EventStore::list_interactions): newest
/// first by event time, ties by insertion order; the cursor is the `(timestamp, seq)` of the last
/// event of the page.
pub async fn list_interactions<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    query: &InteractionQuery,
) -> Result<Page<Interaction>, StoreError> {
    let limit = clamp_limit(query.limit);
    let mut rows = db.query(list_interactions_stmt(org_id, query, limit)?).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = match rows.last() {
        Some(last) if more => Some(encode_cursor(last.i64(5)?, last.i64(6)?)),
        _ => None,
    };
    let data = rows.iter().map(interaction_from_row).collect::<Result<_, _>>()?;
    Ok(Page { data, next_cursor })
}

/// [`EventStore::resolve_person`](crow_core::ports::EventStore::resolve_person): the person an
/// alias is linked to (links are flat: one lookup).
pub async fn resolve_person<S: Sql + ?Sized>(db: &S, org_id: &str, id: &str) -> Result<Option<String>, StoreError> {
    db.query_one(
        Stmt::new("SELECT person_id FROM identities WHERE org_id = ?1 AND alias_id = ?2")
            .bind(org_id)
            .bind(id),
    )
    .await?
    .map(|r| r.text(0))
    .transpose()
}

/// Columns [`session_from_row`] reads, in order.
pub(crate) const SESSION_COLS: &str = "id, org_id, person_id, started_at, ended_at, event_count, page_count, \
     entry_path, exit_path, referrer, referrer_class, campaign, device, is_bot";

/// A stored device class.
pub(crate) fn parse_device(s: &str) -> Option<DeviceClass> {
    Some(match s {
        "desktop" => DeviceClass::Desktop,
        "mobile" => DeviceClass::Mobile,
        "tablet" => DeviceClass::Tablet,
        "bot" => DeviceClass::Bot,
        "other" => DeviceClass::Other,
        _ => return None,
    })
}

fn count(row: &Row, i: usize) -> Result<u32, StoreError> {
    u32::try_from(row.i64(i)?).map_err(|e| StoreError::Column {
        index: i,
        reason: e.to_string(),
    })
}

/// A session read with [`SESSION_COLS`].
pub(crate) fn session_from_row(row: &Row) -> Result<Session, StoreError> {
    Ok(Session {
        id: row.text(0)?,
        org_id: row.text(1)?,
        person_id: row.text(2)?,
        started_at: row.i64(3)?,
        ended_at: row.i64(4)?,
        event_count: count(row, 5)?,
        page_count: count(row, 6)?,
        entry_path: row.opt_text(7)?,
        exit_path: row.opt_text(8)?,
        referrer: row.opt_text(9)?,
        referrer_class: row.opt_text(10)?.as_deref().and_then(ReferrerClass::parse),
        campaign: row.opt_text(11)?,
        device: row.opt_text(12)?.as_deref().and_then(parse_device),
        is_bot: row.bool(13)?,
    })
}

/// [`EventStore::get_session`](crow_core::ports::EventStore::get_session).
pub async fn get_session<S: Sql + ?Sized>(db: &S, org_id: &str, id: &str) -> Result<Option<Session>, StoreError> {
    db.query_one(
        Stmt::new(format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE org_id = ?1 AND id = ?2"
        ))
        .bind(org_id)
        .bind(id),
    )
    .await?
    .map(|r| session_from_row(&r))
    .transpose()
}

/// Session cursor: `started_at` and the id of the last session of a page.
pub(crate) fn encode_session_cursor(started_at: i64, id: &str) -> String {
    encode_id_cursor(started_at, id)
}

fn decode_session_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    decode_id_cursor(cursor)
}

/// The statement of one page of [`list_sessions`] (newest first, ties by id, one row more than
/// `limit`).
pub(crate) fn list_sessions_stmt(org_id: &str, query: &SessionQuery, limit: usize) -> Result<Stmt, StoreError> {
    let cursor = query.cursor.as_deref().map(decode_session_cursor).transpose()?;
    let mut sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE org_id = ?");
    let mut params: Vec<SqlValue> = vec![org_id.into()];
    if let Some(s) = query.since {
        sql.push_str(" AND started_at >= ?");
        params.push(s.into());
    }
    if let Some(p) = &query.person_id {
        sql.push_str(" AND person_id = ?");
        params.push(p.into());
    }
    if let Some((t, id)) = cursor {
        sql.push_str(" AND (started_at, id) < (?, ?)");
        params.extend([t.into(), id.into()]);
    }
    sql.push_str(" ORDER BY started_at DESC, id DESC LIMIT ?");
    params.push((limit + 1).into());
    Ok(params.into_iter().fold(Stmt::new(sql), Stmt::bind))
}

/// [`EventStore::list_sessions`](crow_core::ports::EventStore::list_sessions): newest first by
/// `started_at`, ties by id.
pub async fn list_sessions<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    query: &SessionQuery,
) -> Result<Page<Session>, StoreError> {
    let limit = clamp_limit(query.limit);
    let rows = db.query(list_sessions_stmt(org_id, query, limit)?).await?;
    let sessions = rows.iter().map(session_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(super::page_of(sessions, limit, |s| {
        encode_session_cursor(s.started_at, &s.id)
    }))
}

/// The person behind an event row `i`, as SQL: its stitched person, else its user or anonymous
/// id resolved through `identities`, else that id itself.
const PERSON_OF: &str = "coalesce(i.person_id, (SELECT d.person_id FROM identities d \
     WHERE d.org_id = i.org_id AND d.alias_id = coalesce(i.user_id, i.anonymous_id)), i.user_id, i.anonymous_id)";

/// [`EventStore::apply_enrichment`](crow_core::ports::EventStore::apply_enrichment): one
/// `UPDATE … FROM json_each` per chunk, all in one batch. An event id given twice takes its last
/// enrichment; unknown ids (and other orgs' events) are left alone.
pub async fn apply_enrichment<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    enrichment: &[Enrichment],
) -> Result<(), StoreError> {
    if enrichment.is_empty() {
        return Ok(());
    }
    // The last enrichment of an id wins (UPDATE … FROM would pick any one of several matches).
    let mut seen = HashSet::new();
    let mut rows: Vec<(&str, &str, &str, &str)> = enrichment
        .iter()
        .rev()
        .filter(|e| seen.insert(e.event_id.as_str()))
        .map(|e| {
            (
                e.event_id.as_str(),
                e.person_id.as_str(),
                e.session_id.as_str(),
                e.referrer_class.as_str(),
            )
        })
        .collect();
    rows.reverse();
    let stmts = json_chunks(&rows, super::CHUNK_BYTES)?
        .into_iter()
        .map(|chunk| enrichment_stmt(org_id, chunk))
        .collect();
    db.batch(stmts).await?;
    Ok(())
}

/// The update of [`apply_enrichment`] for `chunk`, a JSON array of `[event id, person id,
/// session id, referrer class]`.
pub(crate) fn enrichment_stmt(org_id: &str, chunk: String) -> Stmt {
    Stmt::new(
        "WITH e AS MATERIALIZED (SELECT i.seq AS seq, j.value AS v FROM json_each(?2) AS j \
         CROSS JOIN interactions AS i ON i.org_id = ?1 AND i.id = j.value ->> 0) \
         UPDATE interactions SET person_id = e.v ->> 1, session_id = e.v ->> 2, referrer_class = e.v ->> 3 \
         FROM e WHERE interactions.seq = e.seq",
    )
    .bind(org_id)
    .bind(chunk)
}

/// Lowercase hex of bytes (bound inside JSON, stored as a BLOB through `unhex`).
fn hex_bytes(bytes: impl Iterator<Item = u8>) -> String {
    use std::fmt::Write;
    bytes.fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// A row of [`store_texts`]: event id, field, timestamp, language, sentiment label, score and
/// tier, the analysis as JSON text, the embedding as hex, `analyzed_at`.
type TextRow<'a> = (
    &'a str,
    &'a str,
    i64,
    Option<&'a str>,
    Option<&'a str>,
    Option<f64>,
    Option<&'a str>,
    String,
    Option<String>,
    i64,
);

/// [`EventStore::store_texts`](crow_core::ports::EventStore::store_texts): one upsert over
/// `json_each` per chunk, all in one batch (a text given twice: the last wins). The embedding
/// (little-endian f32) travels as hex inside the JSON and is stored as a BLOB by `unhex`.
pub async fn store_texts<S: Sql + ?Sized>(db: &S, org_id: &str, texts: &[InteractionText]) -> Result<(), StoreError> {
    if texts.is_empty() {
        return Ok(());
    }
    let rows = texts
        .iter()
        .map(|t| {
            let s = t.analysis.sentiment.as_ref();
            Ok((
                t.event_id.as_str(),
                t.field.as_str(),
                t.timestamp,
                t.analysis.language.as_deref(),
                s.map(|s| s.label.as_str()),
                s.map(|s| f64::from(s.score)),
                s.map(|s| s.tier.as_str()),
                serde_json::to_string(&t.analysis)?,
                t.embedding
                    .as_ref()
                    .map(|v| hex_bytes(v.iter().flat_map(|x| x.to_le_bytes()))),
                t.analyzed_at,
            ))
        })
        .collect::<Result<Vec<TextRow<'_>>, StoreError>>()?;
    let stmts = json_chunks(&rows, super::CHUNK_BYTES)?
        .into_iter()
        .map(|chunk| {
            Stmt::new(
                "INSERT INTO interaction_texts (org_id, event_id, field, timestamp, language, sentiment_label, \
                 sentiment_score, sentiment_tier, analysis, embedding, analyzed_at) \
                 SELECT ?1, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, \
                 j.value ->> 5, j.value ->> 6, j.value ->> 7, unhex(j.value ->> 8), j.value ->> 9 \
                 FROM json_each(?2) AS j WHERE true \
                 ON CONFLICT (org_id, event_id) DO UPDATE SET field = excluded.field, \
                 timestamp = excluded.timestamp, language = excluded.language, \
                 sentiment_label = excluded.sentiment_label, sentiment_score = excluded.sentiment_score, \
                 sentiment_tier = excluded.sentiment_tier, analysis = excluded.analysis, \
                 embedding = excluded.embedding, analyzed_at = excluded.analyzed_at",
            )
            .bind(org_id)
            .bind(chunk)
        })
        .collect();
    db.batch(stmts).await?;
    Ok(())
}

/// The root person `T` of `?3` (its link, else itself) as SQL, `?1` the org.
const ROOT_OF_PERSON: &str =
    "coalesce((SELECT r.person_id FROM identities AS r WHERE r.org_id = ?1 AND r.alias_id = ?3), ?3)";

/// [`EventStore::link_identity`](crow_core::ports::EventStore::link_identity): links `alias_id`
/// to the root person `T` of `person_id` (its link, else itself) and keeps links flat: the
/// aliases of `alias_id` move to `T`, a self-link that leaves is dropped, and the events and
/// sessions of `alias_id` are re-pointed to `T`. Nothing happens when `T` is `alias_id` (already
/// the same person the other way round, or a self-link).
///
/// One batch and no read: every statement computes `T` in SQL, so a link racing this one cannot
/// slip between a read and the writes. `T` is the same in every statement of the batch: only the
/// link of `person_id` decides it, and the batch changes that link only when `person_id` is `T`
/// itself (a self-link dropped: `T` stays `person_id`) or `alias_id` (re-written to the same
/// `T`). Replaying the call leaves the same state.
pub async fn link_identity<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    alias_id: &str,
    person_id: &str,
    at: Millis,
) -> Result<(), StoreError> {
    db.batch(link_stmts(org_id, alias_id, person_id, at)).await?;
    Ok(())
}

/// The statements of [`link_identity`], in order.
pub(crate) fn link_stmts(org_id: &str, alias_id: &str, person_id: &str, at: Millis) -> Vec<Stmt> {
    let t = ROOT_OF_PERSON;
    let stmt = |sql: String| Stmt::new(sql).bind(org_id).bind(alias_id).bind(person_id);
    vec![
        stmt(format!(
            "INSERT INTO identities (org_id, alias_id, person_id, linked_at) \
             SELECT ?1, ?2, x.root, ?4 FROM (SELECT {t} AS root) AS x WHERE x.root <> ?2 \
             ON CONFLICT (org_id, alias_id) DO UPDATE SET person_id = excluded.person_id, \
             linked_at = excluded.linked_at WHERE identities.person_id <> excluded.person_id"
        ))
        .bind(at),
        stmt(format!(
            "UPDATE identities SET person_id = {t} WHERE org_id = ?1 AND person_id = ?2 AND {t} <> ?2"
        )),
        stmt(format!(
            "DELETE FROM identities WHERE org_id = ?1 AND alias_id = {t} AND person_id = {t} AND {t} <> ?2"
        )),
        stmt(format!(
            "UPDATE interactions SET person_id = {t} WHERE org_id = ?1 AND person_id = ?2 AND {t} <> ?2"
        )),
        stmt(format!(
            "UPDATE sessions SET person_id = {t} WHERE org_id = ?1 AND person_id = ?2 AND {t} <> ?2"
        )),
    ]
}

/// [`EventStore::latest_session`](crow_core::ports::EventStore::latest_session): the person's
/// session with the latest `started_at` at or before `at` (ties: the greatest id).
pub async fn latest_session<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    person_id: &str,
    at: Millis,
) -> Result<Option<Session>, StoreError> {
    db.query_one(
        Stmt::new(format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE org_id = ?1 AND person_id = ?2 \
             AND started_at <= ?3 ORDER BY started_at DESC, id DESC LIMIT 1"
        ))
        .bind(org_id)
        .bind(person_id)
        .bind(at),
    )
    .await?
    .map(|r| session_from_row(&r))
    .transpose()
}

/// One event of a session as [`refresh_sessions`] reads it: the columns that never change once
/// stored (enrichment and identity links change `person_id`, `session_id` and
/// `referrer_class`, which the upsert reads live), and the stored JSON of the first event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionEvent {
    pub seq: i64,
    pub event_type: String,
    pub timestamp: i64,
    pub page_path: Option<String>,
    pub name: Option<String>,
    pub is_bot: bool,
    /// The stored event (read for the session's first event only).
    pub data: Option<String>,
}

/// A session's aggregates from [`aggregate_session`]: everything but `person_id` and
/// `referrer_class`, which the upsert reads live from the events.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionAggregate {
    pub id: String,
    /// `seq` of the first event.
    pub first_seq: i64,
    pub started_at: i64,
    pub ended_at: i64,
    pub event_count: u32,
    pub page_count: u32,
    pub entry_path: Option<String>,
    pub exit_path: Option<String>,
    pub referrer: Option<String>,
    pub campaign: Option<String>,
    pub device: Option<&'static str>,
    pub is_bot: bool,
    /// The `seq`s of the events it was computed from, in order, comma-separated: the upsert
    /// writes the session only while its events are still these ([`session_events_sql`]).
    pub events: String,
}

/// Aggregates one session from its events in time order, then insertion order (`None` without
/// events): `started_at`/`ended_at` are the first/last event times; `entry_path`/`exit_path`
/// the first/last view's path (the page path, or the screen name for screens); `referrer`,
/// `campaign` and `device` come from the first event; `is_bot` is true when any event is a
/// bot's.
pub(crate) fn aggregate_session(id: &str, events: &[SessionEvent]) -> Result<Option<SessionAggregate>, StoreError> {
    let Some(first) = events.first() else {
        return Ok(None);
    };
    let data = first.data.as_deref().ok_or_else(|| {
        StoreError::Internal(format!(
            "refresh_sessions: the first event of session {id} came without its JSON"
        ))
    })?;
    let ev: Interaction = serde_json::from_str(data)?;
    let mut s = SessionAggregate {
        id: id.to_owned(),
        first_seq: first.seq,
        started_at: first.timestamp,
        ended_at: first.timestamp,
        event_count: 0,
        page_count: 0,
        entry_path: None,
        exit_path: None,
        referrer: ev.context.page.as_ref().and_then(|p| p.referrer.clone()),
        campaign: ev.context.campaign.as_ref().and_then(|c| c.key()),
        device: ev.context.user_agent.as_ref().map(|ua| ua.device.as_str()),
        is_bot: false,
        events: String::new(),
    };
    for e in events {
        s.ended_at = e.timestamp;
        s.event_count += 1;
        s.is_bot |= e.is_bot;
        if !s.events.is_empty() {
            s.events.push(',');
        }
        s.events.push_str(&e.seq.to_string());
        let view = match e.event_type.as_str() {
            "page" => Some(&e.page_path),
            "screen" => Some(&e.name),
            _ => None,
        };
        if let Some(path) = view {
            s.page_count += 1;
            if path.is_some() {
                if s.entry_path.is_none() {
                    s.entry_path.clone_from(path);
                }
                s.exit_path.clone_from(path);
            }
        }
    }
    Ok(Some(s))
}

/// The `seq`s of the events of session `{id}` (an SQL expression) in time order, then insertion
/// order, comma-separated, as [`SessionAggregate::events`] holds them.
fn session_events_sql(id: &str) -> String {
    format!(
        "(SELECT group_concat(f.seq, ',') FROM (SELECT e.seq AS seq FROM interactions AS e \
         WHERE e.org_id = ?1 AND e.session_id = {id} ORDER BY e.timestamp, e.seq) AS f)"
    )
}

/// The first stitched person among the events of session `{id}` (an SQL expression).
fn session_stitched_sql(id: &str) -> String {
    format!(
        "(SELECT e.person_id FROM interactions AS e WHERE e.org_id = ?1 AND e.session_id = {id} \
         AND e.person_id IS NOT NULL ORDER BY e.timestamp, e.seq LIMIT 1)"
    )
}

/// How many times [`refresh_sessions`] reads sessions whose events change between its read and
/// its write before it gives up (`Unavailable`: the caller retries later).
const REFRESH_ATTEMPTS: usize = 5;

/// The statement reading the events of sessions `ids` for [`aggregate_session`]: session id,
/// `seq`, type, timestamp, page path, name, `is_bot`, and the stored JSON of each session's
/// first event (NULL for the others), by session, then time, then insertion order.
pub(crate) fn session_events_stmt(org_id: &str, ids: &[&str]) -> Stmt {
    Stmt::new(
        "SELECT i.session_id, i.seq, i.type, i.timestamp, i.page_path, i.name, i.is_bot, \
         CASE WHEN row_number() OVER (PARTITION BY i.session_id ORDER BY i.timestamp, i.seq) = 1 \
         THEN i.data END \
         FROM interactions AS i WHERE i.org_id = ?1 AND i.session_id IN (SELECT value FROM json_each(?2)) \
         ORDER BY i.session_id, i.timestamp, i.seq",
    )
    .bind(org_id)
    .bind_list(ids)
}

/// The upsert of the aggregates in `chunk` (a JSON array of [`SessionAggregate`] rows), with
/// `person_id` and `referrer_class` read live: the person is the first stitched person among the
/// events, else the row's previous person, else the first event's user or anonymous id resolved
/// through `identities`; the referrer class is the first event's. A session is written only
/// while its events are still those it was computed from; the written ids come back.
pub(crate) fn upsert_sessions_stmt(org_id: &str, chunk: String) -> Stmt {
    let events = session_events_sql("s.id");
    let stitched_new = session_stitched_sql("s.id");
    let stitched_old = session_stitched_sql("excluded.id");
    Stmt::new(format!(
        "INSERT INTO sessions (org_id, id, person_id, started_at, ended_at, event_count, page_count, entry_path, \
         exit_path, referrer, referrer_class, campaign, device, is_bot) \
         SELECT ?1, s.id, coalesce({stitched_new}, {PERSON_OF}, ''), s.started_at, s.ended_at, s.event_count, \
         s.page_count, s.entry_path, s.exit_path, s.referrer, i.referrer_class, s.campaign, s.device, s.is_bot \
         FROM (SELECT j.value ->> 0 AS id, j.value ->> 1 AS first_seq, j.value ->> 2 AS started_at, \
         j.value ->> 3 AS ended_at, j.value ->> 4 AS event_count, j.value ->> 5 AS page_count, \
         j.value ->> 6 AS entry_path, j.value ->> 7 AS exit_path, j.value ->> 8 AS referrer, \
         j.value ->> 9 AS campaign, j.value ->> 10 AS device, j.value ->> 11 AS is_bot, j.value ->> 12 AS events \
         FROM json_each(?2) AS j) AS s \
         CROSS JOIN interactions AS i ON i.seq = s.first_seq AND i.org_id = ?1 \
         WHERE {events} = s.events \
         ON CONFLICT (org_id, id) DO UPDATE SET person_id = coalesce({stitched_old}, sessions.person_id), \
         started_at = excluded.started_at, ended_at = excluded.ended_at, event_count = excluded.event_count, \
         page_count = excluded.page_count, entry_path = excluded.entry_path, exit_path = excluded.exit_path, \
         referrer = excluded.referrer, referrer_class = excluded.referrer_class, campaign = excluded.campaign, \
         device = excluded.device, is_bot = excluded.is_bot \
         RETURNING id AS refreshed_id"
    ))
    .bind(org_id)
    .bind(chunk)
}

/// The rows of [`session_events_stmt`] as each session's events, in order.
pub(crate) fn session_events(rows: &[Row]) -> Result<HashMap<String, Vec<SessionEvent>>, StoreError> {
    let mut by_session: HashMap<String, Vec<SessionEvent>> = HashMap::new();
    for r in rows {
        by_session.entry(r.text(0)?).or_default().push(SessionEvent {
            seq: r.i64(1)?,
            event_type: r.text(2)?,
            timestamp: r.i64(3)?,
            page_path: r.opt_text(4)?,
            name: r.opt_text(5)?,
            is_bot: r.bool(6)?,
            data: r.opt_text(7)?,
        });
    }
    Ok(by_session)
}

/// `sessions` as the JSON chunks [`upsert_sessions_stmt`] reads: one array per session, its
/// fields in [`SessionAggregate`] order.
pub(crate) fn session_chunks(sessions: &[SessionAggregate]) -> Result<Vec<String>, StoreError> {
    let rows: Vec<_> = sessions
        .iter()
        .map(|s| {
            (
                &s.id,
                s.first_seq,
                s.started_at,
                s.ended_at,
                s.event_count,
                s.page_count,
                &s.entry_path,
                &s.exit_path,
                &s.referrer,
                &s.campaign,
                s.device,
                u8::from(s.is_bot),
                &s.events,
            )
        })
        .collect();
    json_chunks(&rows, super::CHUNK_BYTES)
}

/// [`EventStore::refresh_sessions`](crow_core::ports::EventStore::refresh_sessions): one read of
/// the sessions' events, the aggregates in Rust (`aggregate_session`), then one batch: the
/// upserts (`upsert_sessions_stmt`) and the deletion of the sessions without events (while
/// they still have none; one that gains events is refreshed by whoever moved them in).
///
/// A refresh racing a change of the same sessions' events (an enrichment moving events, an
/// erasure) writes only the sessions whose events are still those it read, and reads the others
/// again, up to `REFRESH_ATTEMPTS` (5) times before it answers `Unavailable`. So the last
/// refresh leaves the aggregates of the events as they are, as when each refresh was one
/// transaction.
pub async fn refresh_sessions<S: Sql + ?Sized>(db: &S, org_id: &str, session_ids: &[String]) -> Result<(), StoreError> {
    let mut pending: Vec<&str> = session_ids.iter().map(String::as_str).collect();
    pending.sort_unstable();
    pending.dedup();
    for _ in 0..REFRESH_ATTEMPTS {
        if pending.is_empty() {
            return Ok(());
        }
        let rows = db.query(session_events_stmt(org_id, &pending)).await?;
        let by_session = session_events(&rows)?;
        let mut upserts = Vec::new();
        let mut gone = Vec::new();
        for &id in &pending {
            match by_session.get(id).map(|events| aggregate_session(id, events)) {
                Some(s) => upserts.extend(s?),
                None => gone.push(id),
            }
        }
        let mut stmts: Vec<Stmt> = session_chunks(&upserts)?
            .into_iter()
            .map(|chunk| upsert_sessions_stmt(org_id, chunk))
            .collect();
        let upsert_stmts = stmts.len();
        if !gone.is_empty() {
            stmts.push(
                Stmt::new(
                    "DELETE FROM sessions WHERE org_id = ?1 AND id IN (SELECT value FROM json_each(?2)) \
                     AND NOT EXISTS (SELECT 1 FROM interactions AS e WHERE e.org_id = ?1 \
                     AND e.session_id = sessions.id)",
                )
                .bind(org_id)
                .bind_list(&gone),
            );
        }
        let done = db.batch(stmts).await?;
        let mut written = HashSet::new();
        for d in done.iter().take(upsert_stmts) {
            for r in &d.rows {
                written.insert(r.text(0)?);
            }
        }
        pending.retain(|id| upserts.iter().any(|s| s.id == *id) && !written.contains(*id));
    }
    if pending.is_empty() {
        return Ok(());
    }
    Err(StoreError::Unavailable(format!(
        "refresh_sessions: the events of {} session(s) kept changing; retry",
        pending.len()
    )))
}

/// [`EventStore::traffic_summary`](crow_core::ports::EventStore::traffic_summary) in one
/// statement of four parts (column 0): 0 the event counts from `interactions` (by event time),
/// 1 the top pages, 2 the sessions per referrer class and 3 the top referrers from `sessions`
/// (by `started_at`), bots excluded; columns 1 and 2 are a part's key and count. `?4` is `top`.
pub(crate) fn traffic_stmt(org_id: &str, since: Millis, until: Millis, top: usize) -> Stmt {
    Stmt::new(format!(
        "SELECT 0 AS part, NULL AS k, count(*) AS n, coalesce(sum(is_bot), 0), coalesce(sum(pii_scrubbed), 0), \
         count(DISTINCT CASE WHEN is_bot = 0 THEN {PERSON_OF} END), \
         coalesce(sum(is_bot = 0 AND type IN ('page', 'screen')), 0) \
         FROM interactions i WHERE org_id = ?1 AND timestamp >= ?2 AND timestamp < ?3 \
         UNION ALL SELECT * FROM (SELECT 1, page_path, count(*) AS n, 0, 0, 0, 0 FROM interactions \
         WHERE org_id = ?1 AND timestamp >= ?2 AND timestamp < ?3 AND is_bot = 0 AND type = 'page' \
         AND page_path IS NOT NULL GROUP BY page_path ORDER BY n DESC, page_path LIMIT ?4) \
         UNION ALL SELECT * FROM (SELECT 2, referrer_class, count(*) AS n, 0, 0, 0, 0 FROM sessions \
         WHERE org_id = ?1 AND started_at >= ?2 AND started_at < ?3 AND is_bot = 0 GROUP BY referrer_class) \
         UNION ALL SELECT * FROM (SELECT 3, referrer, count(*) AS n, 0, 0, 0, 0 FROM sessions \
         WHERE org_id = ?1 AND started_at >= ?2 AND started_at < ?3 AND is_bot = 0 AND referrer IS NOT NULL \
         GROUP BY referrer ORDER BY n DESC, referrer LIMIT ?4)"
    ))
    .bind(org_id)
    .bind(since)
    .bind(until)
    .bind(top)
}

/// A count column.
fn count_u64(row: &Row, i: usize) -> Result<u64, StoreError> {
    u64::try_from(row.i64(i)?).map_err(|e| StoreError::Column {
        index: i,
        reason: e.to_string(),
    })
}

/// [`EventStore::traffic_summary`](crow_core::ports::EventStore::traffic_summary): events,
/// visitors, views and top pages from `interactions` (by event time); sessions and their
/// referrer classes from `sessions` (by `started_at`), bots excluded. Lists are by count
/// descending, then key.
pub async fn traffic_summary<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    since: Millis,
    until: Millis,
    top: usize,
) -> Result<TrafficSummary, StoreError> {
    let rows = db.query(traffic_stmt(org_id, since, until, top)).await?;
    let mut t = TrafficSummary::default();
    for r in &rows {
        match r.i64(0)? {
            0 => {
                t.events = count_u64(r, 2)?;
                t.bot_events = count_u64(r, 3)?;
                t.pii_scrubbed = count_u64(r, 4)?;
                t.visitors = count_u64(r, 5)?;
                t.page_views = count_u64(r, 6)?;
            }
            1 => t.top_pages.push((r.text(1)?, count_u64(r, 2)?)),
            2 => {
                let n = count_u64(r, 2)?;
                t.sessions += n;
                if let Some(class) = r.opt_text(1)? {
                    t.referrer_classes.push((class, n));
                }
            }
            _ => t.top_referrers.push((r.text(1)?, count_u64(r, 2)?)),
        }
    }
    // Each part's own order, whatever order the compound answered its parts in.
    for list in [&mut t.top_pages, &mut t.referrer_classes, &mut t.top_referrers] {
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    Ok(t)
}

/// The statement of [`funnel`]: each person's events of the types `types` in the window (bots
/// excluded), by person, then time, then insertion order: person, type, name, page path.
pub(crate) fn funnel_stmt(org_id: &str, types: &[&str], since: Millis, until: Millis) -> Stmt {
    Stmt::new(format!(
        "SELECT p, type, name, page_path FROM (SELECT {PERSON_OF} AS p, type, name, page_path, timestamp, seq \
         FROM interactions i WHERE org_id = ?1 AND timestamp >= ?2 AND timestamp < ?3 AND is_bot = 0 \
         AND type IN (SELECT value FROM json_each(?4))) WHERE p IS NOT NULL ORDER BY p, timestamp, seq"
    ))
    .bind(org_id)
    .bind(since)
    .bind(until)
    .bind_list(types)
}

/// [`EventStore::funnel`](crow_core::ports::EventStore::funnel), person by person: each person's
/// events (bots excluded) in time order, then insertion order; step `k` counts when an event
/// matching it comes at or after the event that matched step `k - 1` (one event advances one
/// step).
pub async fn funnel<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    steps: &[FunnelStep],
    since: Millis,
    until: Millis,
) -> Result<Vec<FunnelRow>, StoreError> {
    let mut counter = FunnelCounter::new(steps);
    if steps.is_empty() {
        return Ok(counter.rows());
    }
    let mut types: Vec<&'static str> = steps.iter().map(|s| s.event_type.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    let rows = db.query(funnel_stmt(org_id, &types, since, until)).await?;
    let mut person: Option<&str> = None;
    for Row(cols) in &rows {
        let text = |i: usize| match cols.get(i) {
            Some(SqlValue::Text(t)) => Ok(Some(t.as_str())),
            Some(SqlValue::Null) => Ok(None),
            other => Err(StoreError::Column {
                index: i,
                reason: format!("expected TEXT, found {other:?}"),
            }),
        };
        let p = text(0)?.unwrap_or_default();
        if person != Some(p) {
            person = Some(p);
            counter.next_person();
        }
        if counter.person_done() {
            continue;
        }
        let Some(event_type) = text(1)?.and_then(EventType::parse) else {
            continue;
        };
        counter.event(event_type, text(2)?, text(3)?);
    }
    Ok(counter.rows())
}

/// [`EventStore::sentiment_series`](crow_core::ports::EventStore::sentiment_series): interaction
/// texts by their label, or mentions by their analyzed (else lexicon) score with the ±0.05
/// thresholds the port documents. `Invalid` naming `bucket_ms` unless it is positive.
pub async fn sentiment_series<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    source: SentimentSource,
    since: Millis,
    until: Millis,
    bucket_ms: i64,
) -> Result<Vec<SentimentBucket>, StoreError> {
    if bucket_ms <= 0 {
        return Err(StoreError::invalid("bucket_ms", "must be positive"));
    }
    let sql = match source {
        SentimentSource::Interactions => {
            "SELECT (timestamp - ?2) / ?4 AS b, count(*), sum(sentiment_label = 'positive'), \
             sum(sentiment_label = 'negative'), avg(sentiment_score) FROM interaction_texts \
             WHERE org_id = ?1 AND timestamp >= ?2 AND timestamp < ?3 AND sentiment_label IS NOT NULL \
             GROUP BY b ORDER BY b"
        }
        SentimentSource::Mentions => {
            "SELECT (posted_at - ?2) / ?4 AS b, count(*), sum(coalesce(sentiment, lexicon_score) > 0.05), \
             sum(coalesce(sentiment, lexicon_score) < -0.05), avg(coalesce(sentiment, lexicon_score)) \
             FROM social_mentions WHERE org_id = ?1 AND posted_at >= ?2 AND posted_at < ?3 \
             AND coalesce(sentiment, lexicon_score) IS NOT NULL GROUP BY b ORDER BY b"
        }
    };
    let rows = db
        .query(Stmt::new(sql).bind(org_id).bind(since).bind(until).bind(bucket_ms))
        .await?;
    rows.iter()
        .map(|r| {
            let (b, count, positive, negative) = (r.i64(0)?, count_u64(r, 1)?, count_u64(r, 2)?, count_u64(r, 3)?);
            Ok(SentimentBucket {
                start: since + b * bucket_ms,
                count,
                positive,
                negative,
                neutral: count.saturating_sub(positive + negative),
                mean_score: r.opt_f64(4)?.unwrap_or(0.0),
            })
        })
        .collect()
}

/// The entities of the texts in the window, one row per entity entry: text id, sentiment label
/// and score, kind, form, product id, and the grouping form (`norm`: the ASCII-lowercased form
/// of an entity without a product, `''` for one with). Entries marked `pii` (anything but absent,
/// `null` or `false`), without a string kind or with an empty or non-string text are left out.
/// `?1` org, `?2`/`?3` window, `?4` kind or NULL.
fn entity_rows_sql(source: SentimentSource) -> String {
    let (texts, id, time, label, score) = match source {
        SentimentSource::Interactions => (
            "interaction_texts",
            "t.event_id",
            "t.timestamp",
            "t.sentiment_label",
            "t.sentiment_score",
        ),
        SentimentSource::Mentions => (
            "social_mentions",
            "t.id",
            "t.posted_at",
            "CASE WHEN coalesce(t.sentiment, t.lexicon_score) > 0.05 THEN 'positive' \
             WHEN coalesce(t.sentiment, t.lexicon_score) < -0.05 THEN 'negative' \
             WHEN coalesce(t.sentiment, t.lexicon_score) IS NOT NULL THEN 'neutral' END",
            "coalesce(t.sentiment, t.lexicon_score)",
        ),
    };
    format!(
        "SELECT tid, label, score, kind, text, pid, CASE WHEN pid IS NULL THEN lower(text) ELSE '' END AS norm \
         FROM (SELECT {id} AS tid, {label} AS label, {score} AS score, \
         json_extract(j.value, '$.kind') AS kind, json_extract(j.value, '$.text') AS text, \
         CASE WHEN json_type(j.value, '$.product_id') = 'text' THEN json_extract(j.value, '$.product_id') END AS pid \
         FROM {texts} t, json_each(t.analysis, '$.entities') j \
         WHERE t.org_id = ?1 AND {time} >= ?2 AND {time} < ?3 AND json_type(t.analysis, '$.entities') = 'array' \
         AND j.type = 'object' AND json_type(j.value, '$.kind') = 'text' AND json_type(j.value, '$.text') = 'text' \
         AND coalesce(json_type(j.value, '$.pii'), 'null') IN ('null', 'false')) \
         WHERE text <> '' AND (?4 IS NULL OR kind = ?4)"
    )
}

/// [`EventStore::top_entities`](crow_core::ports::EventStore::top_entities) in one statement:
/// per entity (kind, product id, norm) the texts and their sentiments, its name (the catalog
/// product's, else the form found in the most texts, ties to the smallest), in the documented
/// order. `?5` is the limit.
pub(crate) fn top_entities_sql(source: SentimentSource) -> String {
    let rows = entity_rows_sql(source);
    format!(
        "WITH e AS ({rows}), \
         k AS (SELECT kind, pid, norm, tid, label, score FROM e GROUP BY kind, pid, norm, tid), \
         a AS (SELECT kind, pid, norm, count(*) AS n, coalesce(sum(label = 'positive'), 0) AS pos, \
               coalesce(sum(label = 'negative'), 0) AS neg, count(label) AS scored, avg(score) AS mean \
               FROM k GROUP BY kind, pid, norm), \
         f AS (SELECT kind, pid, norm, text, count(DISTINCT tid) AS c FROM e GROUP BY kind, pid, norm, text), \
         b AS (SELECT kind, pid, norm, text, \
               row_number() OVER (PARTITION BY kind, pid, norm ORDER BY c DESC, text) AS r FROM f) \
         SELECT a.kind, coalesce((SELECT min(p.name) FROM products p WHERE p.org_id = ?1 AND p.id = a.pid), b.text) \
         AS name, a.pid, a.n, a.pos, a.neg, a.scored, a.mean \
         FROM a JOIN b ON b.kind = a.kind AND b.pid IS a.pid AND b.norm = a.norm AND b.r = 1 \
         ORDER BY a.n DESC, name, a.kind, a.pid LIMIT ?5"
    )
}

/// [`EventStore::top_entities`](crow_core::ports::EventStore::top_entities): `Invalid` naming
/// `limit` outside `1..=`[`MAX_TOP_ENTITIES`]; an empty window answers no entity.
pub async fn top_entities<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    query: &EntityQuery,
) -> Result<Vec<EntityCount>, StoreError> {
    if !(1..=MAX_TOP_ENTITIES).contains(&query.limit) {
        let reason = format!("{} is not in 1..={MAX_TOP_ENTITIES}", query.limit);
        return Err(StoreError::invalid("limit", reason));
    }
    if query.since >= query.until {
        return Ok(Vec::new());
    }
    let rows = db
        .query(
            Stmt::new(top_entities_sql(query.source))
                .bind(org_id)
                .bind(query.since)
                .bind(query.until)
                .bind(query.kind.as_deref())
                .bind(query.limit),
        )
        .await?;
    rows.iter()
        .map(|r| {
            let (positive, negative, scored) = (count_u64(r, 4)?, count_u64(r, 5)?, count_u64(r, 6)?);
            Ok(EntityCount {
                kind: r.text(0)?,
                text: r.text(1)?,
                product_id: r.opt_text(2)?,
                mentions: count_u64(r, 3)?,
                positive,
                neutral: scored.saturating_sub(positive + negative),
                negative,
                mean_score: r.opt_f64(7)?,
            })
        })
        .collect()
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use crow_core::ports::{Sentiment, TextAnalysis};

    use super::*;
    use crate::{SqliteStore, StoreConfig};

    fn event(id: &str, ts: i64) -> Interaction {
        serde_json::from_value(serde_json::json!({
            "id": id, "org_id": "elsewhere", "type": "track", "name": "it's \"quoted\" \\ é \u{1}",
            "properties": {"n": 1.5, "s": "x\ny"},
            "timestamp": ts, "received_at": ts + 10,
        }))
        .unwrap()
    }

    #[test]
    fn page_path_falls_back_to_the_url() {
        let page = |path: Option<&str>, url: Option<&str>| PageContext {
            path: path.map(Into::into),
            url: url.map(Into::into),
            ..Default::default()
        };
        assert_eq!(
            page_path(Some(&page(Some("/a"), Some("https://x/b")))).as_deref(),
            Some("/a")
        );
        assert_eq!(
            page_path(Some(&page(None, Some("https://x.io/b/c?q=1#f")))).as_deref(),
            Some("/b/c")
        );
        assert_eq!(page_path(Some(&page(None, Some("https://x.io")))).as_deref(), Some("/"));
        assert_eq!(page_path(Some(&page(None, None))), None);
        assert_eq!(page_path(None), None);
    }

    #[test]
    fn session_cursors_round_trip() {
        let c = encode_session_cursor(-3, "s.1/é");
        assert_eq!(decode_session_cursor(&c).unwrap(), (-3, "s.1/é".to_owned()));
        assert!(decode_session_cursor("12").is_err() && decode_session_cursor("x.00").is_err());
    }

    #[test]
    fn chunks_hold_at_least_one_row_and_stay_under_the_limit() {
        let rows: Vec<EventRow> = (0..10)
            .map(|i| EventRow::new("o", event(&format!("e{i}"), i)).unwrap())
            .collect();
        let one = serde_json::to_string(&rows[0]).unwrap().len();
        assert_eq!(chunk_json(&rows, 1 << 20).unwrap().len(), 1);
        let chunks = chunk_json(&rows, one * 3 + 4).unwrap();
        assert_eq!(chunks.len(), 4, "3, 3, 3, 1");
        let tiny = chunk_json(&rows, 1).unwrap();
        assert_eq!(tiny.len(), 10);
        let back: Vec<serde_json::Value> = tiny
            .iter()
            .flat_map(|c| serde_json::from_str::<Vec<serde_json::Value>>(c).unwrap())
            .collect();
        assert_eq!(back.len(), 10);
        assert_eq!(back[9][0][0], "e9");
        assert_eq!(back[9][0].as_array().unwrap().len() + 1, EVENT_COLUMNS.len());
        assert!(insert_events("o", rows, 1, false).unwrap().check_d1().is_ok());
    }

    /// D1's forms of the statements (the JSON insert, the `changes()` guard), run natively: what
    /// the Worker sends.
    struct D1Form<'a>(&'a SqliteStore);

    #[async_trait::async_trait]
    impl Sql for D1Form<'_> {
        async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
            self.0.query(stmt.without_local()).await
        }
        async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<crate::sql::Done>, StoreError> {
            self.0.batch(stmts.into_iter().map(Stmt::without_local).collect()).await
        }
    }

    /// A chunked append is still one statement: its rows keep input order (`seq`), and the jobs
    /// follow whenever any chunk stored something, not only the last. Returns every stored row.
    async fn chunked_append<S: Sql>(db: &S, store: &SqliteStore) -> Vec<Row> {
        let job = || vec![NewJob::new("q", "k", serde_json::json!({"x": 1}))];
        let first: Vec<_> = (0..3).map(|i| event(&format!("e{i}"), 100 - i)).collect();
        let out = append_chunked(db, "o", first.clone(), job(), 1).await.unwrap();
        assert_eq!(out.inserted_ids, ["e0", "e1", "e2"]);
        // New events only in the first chunk; the last is all duplicates.
        let mut second: Vec<_> = (3..5).map(|i| event(&format!("e{i}"), 100 - i)).collect();
        second.extend(first.clone());
        let out = append_chunked(db, "o", second, job(), 1).await.unwrap();
        assert_eq!((out.inserted, out.duplicates), (2, 3));
        assert_eq!(out.inserted_ids, ["e3", "e4"]);
        let out = append_chunked(db, "o", first, job(), 1).await.unwrap();
        assert_eq!((out.inserted, out.duplicates), (0, 3));
        let jobs = store
            .query(Stmt::new("SELECT enqueued_at FROM jobs ORDER BY id"))
            .await
            .unwrap();
        let at: Vec<i64> = jobs.iter().map(|r| r.i64(0).unwrap()).collect();
        assert_eq!(
            at,
            [110, 110],
            "one job per append that stored something, at its latest received_at"
        );
        let seqs: Vec<String> = store
            .query(Stmt::new("SELECT id FROM interactions ORDER BY seq"))
            .await
            .unwrap()
            .iter()
            .map(|r| r.text(0).unwrap())
            .collect();
        assert_eq!(seqs, ["e0", "e1", "e2", "e3", "e4"]);
        let got = get_interactions(store, "o", &["e4".into(), "e0".into(), "e4".into()])
            .await
            .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].org_id, "o");
        assert_eq!(got[1].name.as_deref(), Some("it's \"quoted\" \\ é \u{1}"));
        assert_eq!(got[0].event_type, EventType::Track);
        store
            .query(Stmt::new(format!(
                "SELECT org_id, {}, seq FROM interactions ORDER BY seq",
                EVENT_COLUMNS.join(", ")
            )))
            .await
            .unwrap()
    }

    /// Both forms of `append` (the Worker's JSON statement, the in-process insert per row) store
    /// exactly the same rows and jobs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chunked_append_keeps_order_and_enqueues_its_jobs_once_in_both_forms() {
        let (_a, local) = open();
        let (_b, d1) = open();
        let native = chunked_append(&local, &local).await;
        let worker = chunked_append(&D1Form(&d1), &d1).await;
        assert_eq!(native.len(), 5);
        assert_eq!(native, worker, "the two forms stored different rows");
    }

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        (dir, store)
    }

    fn enrich(id: &str, person: &str, session: &str) -> Enrichment {
        Enrichment {
            event_id: id.into(),
            person_id: person.into(),
            session_id: session.into(),
            referrer_class: ReferrerClass::Direct,
        }
    }

    #[test]
    fn json_chunks_split_rows_and_skip_an_empty_list() {
        let rows: Vec<(u8, &str)> = (0..5).map(|i| (i, "abc")).collect();
        assert!(json_chunks::<u8>(&[], 10).unwrap().is_empty());
        assert_eq!(json_chunks(&rows, 1 << 20).unwrap().len(), 1);
        let one = json_chunks(&rows, 1).unwrap();
        assert_eq!(one.len(), 5, "at least one row per chunk");
        let back: Vec<(u8, String)> = one
            .iter()
            .flat_map(|c| serde_json::from_str::<Vec<(u8, String)>>(c).unwrap())
            .collect();
        assert_eq!(back.len(), 5);
        assert_eq!(back[4], (4, "abc".to_owned()));
    }

    /// Scores (f32) and embeddings come back bit for bit through the JSON and `unhex`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn texts_keep_their_score_and_embedding_exactly() {
        let (_dir, store) = open();
        let scores = [0.1f32, -0.333_333_34, 0.8, 1.0, f32::MIN_POSITIVE];
        let texts: Vec<InteractionText> = scores
            .iter()
            .enumerate()
            .map(|(i, &score)| InteractionText {
                event_id: format!("e{i}"),
                field: "feedback".into(),
                timestamp: 5,
                analysis: TextAnalysis {
                    language: Some("en".into()),
                    sentiment: Some(Sentiment {
                        label: "positive".into(),
                        score,
                        tier: "lexicon".into(),
                    }),
                    ..Default::default()
                },
                embedding: (i % 2 == 0).then(|| vec![score, -0.0, f32::MAX, 1e-39]),
                analyzed_at: 9,
            })
            .collect();
        store_texts(&store, "o", &texts).await.unwrap();
        let rows = store
            .query(Stmt::new(
                "SELECT sentiment_score, embedding, analysis FROM interaction_texts ORDER BY event_id",
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), scores.len());
        for (r, t) in rows.iter().zip(&texts) {
            let score = t.analysis.sentiment.as_ref().unwrap().score;
            assert_eq!(r.f64(0).unwrap().to_bits(), f64::from(score).to_bits(), "{score}");
            let bytes = t
                .embedding
                .as_ref()
                .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
            match bytes {
                Some(b) => assert_eq!(r.blob(1).unwrap(), b),
                None => assert_eq!(r.0[1], SqlValue::Null),
            }
            assert_eq!(r.text(2).unwrap(), serde_json::to_string(&t.analysis).unwrap());
        }
    }

    /// An id enriched twice in one call takes its last enrichment.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_enrichment_of_an_id_wins() {
        let (_dir, store) = open();
        append(&store, "o", vec![event("e0", 1), event("e1", 2)], vec![])
            .await
            .unwrap();
        let items = [
            enrich("e0", "p1", "s1"),
            enrich("e1", "p1", "s1"),
            enrich("e0", "p2", "s2"),
        ];
        apply_enrichment(&store, "o", &items).await.unwrap();
        let got = get_interactions(&store, "o", &["e0".into(), "e1".into()])
            .await
            .unwrap();
        assert_eq!(got[0].person_id.as_deref(), Some("p2"));
        assert_eq!(got[0].session_id.as_deref(), Some("s2"));
        assert_eq!(got[1].session_id.as_deref(), Some("s1"));
    }

    /// Links stay flat through chains in either direction, and a replay changes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn links_stay_flat() {
        let (_dir, store) = open();
        let links = || async {
            let rows = store
                .query(Stmt::new(
                    "SELECT alias_id, person_id FROM identities ORDER BY alias_id",
                ))
                .await
                .unwrap();
            rows.iter()
                .map(|r| (r.text(0).unwrap(), r.text(1).unwrap()))
                .collect::<Vec<_>>()
        };
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        link_identity(&store, "o", "a", "b", 1).await.unwrap();
        link_identity(&store, "o", "b", "c", 2).await.unwrap();
        assert_eq!(links().await, [pair("a", "c"), pair("b", "c")]);
        link_identity(&store, "o", "d", "a", 3).await.unwrap();
        assert_eq!(links().await, [pair("a", "c"), pair("b", "c"), pair("d", "c")]);
        // The root linked to one of its aliases: already the same person, nothing to record.
        link_identity(&store, "o", "c", "b", 4).await.unwrap();
        link_identity(&store, "o", "b", "b", 4).await.unwrap();
        assert_eq!(links().await, [pair("a", "c"), pair("b", "c"), pair("d", "c")]);
        // The root becomes an alias of a new person: its aliases move along.
        link_identity(&store, "o", "c", "x", 5).await.unwrap();
        let flat = [pair("a", "x"), pair("b", "x"), pair("c", "x"), pair("d", "x")];
        assert_eq!(links().await, flat);
        link_identity(&store, "o", "c", "x", 5).await.unwrap();
        link_identity(&store, "o", "b", "d", 6).await.unwrap();
        assert_eq!(
            links().await,
            flat,
            "replays and links within one person change nothing"
        );
        assert_eq!(resolve_person(&store, "o", "d").await.unwrap().as_deref(), Some("x"));
    }

    /// An aggregate computed before the session's events changed is not written; the refresh
    /// reads such a session again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_session_aggregate_is_not_written() {
        let (_dir, store) = open();
        let events = vec![event("e0", 1), event("e1", 2), event("e2", 3)];
        append(&store, "o", events, vec![]).await.unwrap();
        apply_enrichment(&store, "o", &[enrich("e0", "p", "s"), enrich("e1", "p", "s")])
            .await
            .unwrap();
        let ids = ["s".to_owned()];
        refresh_sessions(&store, "o", &ids).await.unwrap();
        let stale = session_events(&store.query(session_events_stmt("o", &["s"])).await.unwrap()).unwrap();
        let stale = aggregate_session("s", &stale["s"]).unwrap().unwrap();
        assert_eq!((stale.event_count, stale.first_seq > 0), (2, true));
        // e2 moves into the session after the read.
        apply_enrichment(&store, "o", &[enrich("e2", "p", "s")]).await.unwrap();
        let chunks = session_chunks(std::slice::from_ref(&stale)).unwrap();
        let done = store
            .batch(chunks.into_iter().map(|c| upsert_sessions_stmt("o", c)).collect())
            .await
            .unwrap();
        assert!(done[0].rows.is_empty(), "the stale aggregate was written");
        refresh_sessions(&store, "o", &ids).await.unwrap();
        let s = get_session(&store, "o", "s").await.unwrap().unwrap();
        assert_eq!((s.event_count, s.started_at, s.ended_at), (3, 1, 3));
        assert_eq!(s.person_id, "p");
        // A session whose events all left is deleted; the same refresh again changes nothing.
        let moved = [enrich("e0", "p", "t"), enrich("e1", "p", "t"), enrich("e2", "p", "t")];
        apply_enrichment(&store, "o", &moved).await.unwrap();
        let both = ["s".to_owned(), "t".to_owned(), "s".to_owned()];
        refresh_sessions(&store, "o", &both).await.unwrap();
        refresh_sessions(&store, "o", &both).await.unwrap();
        assert!(get_session(&store, "o", "s").await.unwrap().is_none());
        assert_eq!(get_session(&store, "o", "t").await.unwrap().unwrap().event_count, 3);
    }
}
