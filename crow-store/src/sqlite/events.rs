//! [`EventStore`] over SQLite: interactions, sessions, identities and the two reports.

use crow_core::model::{
    DeviceClass, Enrichment, EventType, Interaction, InteractionText, Millis, PageContext, ReferrerClass, Session,
};
use crow_core::ports::{
    AppendOutcome, EntityCount, EntityQuery, EventStore, FunnelCounter, FunnelRow, FunnelStep, InteractionQuery,
    MAX_TOP_ENTITIES, NewJob, Page, SentimentBucket, SentimentSource, SessionQuery, TrafficSummary,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::queue::{JobRow, insert_jobs};
use super::{SqliteStore, clamp_limit, decode_cursor, decode_id_cursor, encode_cursor, encode_id_cursor};
use crate::error::StoreError;

/// An interaction ready to insert: serialized off the writer thread, by the caller's task.
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

impl EventRow {
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
fn page_path(page: Option<&PageContext>) -> Option<String> {
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

/// The person behind an event row `i`, as SQL: its stitched person, else its user or anonymous
/// id resolved through `identities`, else that id itself.
const PERSON_OF: &str = "coalesce(i.person_id, (SELECT d.person_id FROM identities d \
     WHERE d.org_id = i.org_id AND d.alias_id = coalesce(i.user_id, i.anonymous_id)), i.user_id, i.anonymous_id)";

const INSERT_EVENT: &str = "INSERT OR IGNORE INTO interactions (org_id, id, type, name, anonymous_id, user_id, \
     person_id, session_id, timestamp, received_at, is_bot, pii_scrubbed, page_path, referrer_class, data) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

fn insert_events(conn: &Connection, org_id: &str, rows: &[EventRow]) -> Result<AppendOutcome, StoreError> {
    let mut stmt = conn.prepare_cached(INSERT_EVENT)?;
    let mut out = AppendOutcome::default();
    for r in rows {
        let n = stmt.execute(params![
            org_id,
            r.id,
            r.event_type,
            r.name,
            r.anonymous_id,
            r.user_id,
            r.person_id,
            r.session_id,
            r.timestamp,
            r.received_at,
            r.is_bot,
            r.pii_scrubbed,
            r.page_path,
            r.referrer_class,
            r.data,
        ])?;
        if n == 0 {
            out.duplicates += 1;
        } else {
            out.inserted += 1;
            out.inserted_ids.push(r.id.clone());
        }
    }
    Ok(out)
}

/// Columns [`interaction_from_row`] reads, in order.
const INTERACTION_COLS: &str = "person_id, session_id, referrer_class, data, (SELECT x.analysis FROM \
     interaction_texts x WHERE x.org_id = interactions.org_id AND x.event_id = interactions.id)";

/// The stored JSON, with the columns enrichment and identity links rewrite laid over it.
fn interaction_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Result<Interaction, StoreError>> {
    let person_id: Option<String> = row.get(first)?;
    let session_id: Option<String> = row.get(first + 1)?;
    let referrer_class: Option<String> = row.get(first + 2)?;
    let data = row.get_ref(first + 3)?.as_str()?;
    let analysis = row.get_ref(first + 4)?.as_str_or_null()?;
    let parsed = serde_json::from_str::<Interaction>(data).and_then(|mut ev| {
        ev.person_id = person_id;
        ev.session_id = session_id;
        ev.referrer_class = referrer_class.as_deref().and_then(ReferrerClass::parse);
        ev.analysis = analysis.map(serde_json::from_str).transpose()?;
        Ok(ev)
    });
    Ok(parsed.map_err(StoreError::from))
}

const SESSION_COLS: &str = "id, org_id, person_id, started_at, ended_at, event_count, page_count, entry_path, \
     exit_path, referrer, referrer_class, campaign, device, is_bot";

fn parse_device(s: &str) -> Option<DeviceClass> {
    Some(match s {
        "desktop" => DeviceClass::Desktop,
        "mobile" => DeviceClass::Mobile,
        "tablet" => DeviceClass::Tablet,
        "bot" => DeviceClass::Bot,
        "other" => DeviceClass::Other,
        _ => return None,
    })
}

/// A session row (columns [`SESSION_COLS`]).
fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    let referrer_class: Option<String> = row.get(10)?;
    let device: Option<String> = row.get(12)?;
    Ok(Session {
        id: row.get(0)?,
        org_id: row.get(1)?,
        person_id: row.get(2)?,
        started_at: row.get(3)?,
        ended_at: row.get(4)?,
        event_count: row.get(5)?,
        page_count: row.get(6)?,
        entry_path: row.get(7)?,
        exit_path: row.get(8)?,
        referrer: row.get(9)?,
        referrer_class: referrer_class.as_deref().and_then(ReferrerClass::parse),
        campaign: row.get(11)?,
        device: device.as_deref().and_then(parse_device),
        is_bot: row.get(13)?,
    })
}

/// Session cursor: `started_at` and the id of the last session of a page.
fn encode_session_cursor(started_at: i64, id: &str) -> String {
    encode_id_cursor(started_at, id)
}

fn decode_session_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    decode_id_cursor(cursor)
}

/// Recomputes one session from its events; deletes the row when no event is left.
///
/// Aggregates: `started_at`/`ended_at` are the first/last event times; `entry_path`/`exit_path`
/// the first/last view's path (the page path, or the screen name for screens); `referrer`,
/// `referrer_class`, `campaign` and `device` come from the first event; `is_bot` is true when any
/// event is a bot's; `person_id` is the first stitched person among the events, else the row's
/// previous person, else the first event's user or anonymous id resolved through `identities`.
fn refresh_session(conn: &Connection, org_id: &str, session_id: &str) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT type, timestamp, page_path, name, referrer_class, is_bot, person_id, {PERSON_OF}, data \
         FROM interactions i WHERE org_id = ?1 AND session_id = ?2 ORDER BY timestamp, seq"
    ))?;
    let mut rows = stmt.query(params![org_id, session_id])?;
    let mut s: Option<Session> = None;
    let mut stitched: Option<String> = None;
    let mut first_person: Option<String> = None;
    while let Some(row) = rows.next()? {
        let event_type: String = row.get(0)?;
        let ts: i64 = row.get(1)?;
        let is_bot: bool = row.get(5)?;
        if stitched.is_none() {
            stitched = row.get(6)?;
        }
        let view = match event_type.as_str() {
            "page" => Some(row.get::<_, Option<String>>(2)?),
            "screen" => Some(row.get::<_, Option<String>>(3)?),
            _ => None,
        };
        let s = match &mut s {
            Some(s) => s,
            None => {
                // The first event decides referrer, campaign and device.
                let first: Interaction = serde_json::from_str(row.get_ref(8)?.as_str()?)?;
                let referrer_class: Option<String> = row.get(4)?;
                first_person = row.get(7)?;
                s.insert(Session {
                    id: session_id.to_owned(),
                    org_id: org_id.to_owned(),
                    person_id: String::new(),
                    started_at: ts,
                    ended_at: ts,
                    event_count: 0,
                    page_count: 0,
                    entry_path: None,
                    exit_path: None,
                    referrer: first.context.page.as_ref().and_then(|p| p.referrer.clone()),
                    referrer_class: referrer_class.as_deref().and_then(ReferrerClass::parse),
                    campaign: first.context.campaign.as_ref().and_then(|c| c.key()),
                    device: first.context.user_agent.as_ref().map(|ua| ua.device),
                    is_bot: false,
                })
            }
        };
        s.ended_at = ts;
        s.event_count += 1;
        s.is_bot |= is_bot;
        if let Some(path) = view {
            s.page_count += 1;
            if path.is_some() {
                if s.entry_path.is_none() {
                    s.entry_path = path.clone();
                }
                s.exit_path = path;
            }
        }
    }
    drop(rows);
    let Some(mut s) = s else {
        conn.prepare_cached("DELETE FROM sessions WHERE org_id = ?1 AND id = ?2")?
            .execute(params![org_id, session_id])?;
        return Ok(());
    };
    let previous: Option<String> = if stitched.is_none() {
        conn.prepare_cached("SELECT person_id FROM sessions WHERE org_id = ?1 AND id = ?2")?
            .query_row(params![org_id, session_id], |r| r.get(0))
            .optional()?
    } else {
        None
    };
    s.person_id = stitched.or(previous).or(first_person).unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO sessions (org_id, id, person_id, started_at, ended_at, event_count, page_count, entry_path, \
         exit_path, referrer, referrer_class, campaign, device, is_bot) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT (org_id, id) DO UPDATE SET person_id = excluded.person_id, started_at = excluded.started_at, \
         ended_at = excluded.ended_at, event_count = excluded.event_count, page_count = excluded.page_count, \
         entry_path = excluded.entry_path, exit_path = excluded.exit_path, referrer = excluded.referrer, \
         referrer_class = excluded.referrer_class, campaign = excluded.campaign, device = excluded.device, \
         is_bot = excluded.is_bot",
    )?
    .execute(params![
        s.org_id,
        s.id,
        s.person_id,
        s.started_at,
        s.ended_at,
        s.event_count,
        s.page_count,
        s.entry_path,
        s.exit_path,
        s.referrer,
        s.referrer_class.map(ReferrerClass::as_str),
        s.campaign,
        s.device.map(DeviceClass::as_str),
        s.is_bot,
    ])?;
    Ok(())
}

fn link(conn: &Connection, org_id: &str, alias_id: &str, person_id: &str, at: Millis) -> Result<(), StoreError> {
    // Keep identities flat: every alias points at a root person, never at another alias.
    let target: String = conn
        .prepare_cached("SELECT person_id FROM identities WHERE org_id = ?1 AND alias_id = ?2")?
        .query_row(params![org_id, person_id], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| person_id.to_owned());
    if target == alias_id {
        // Already the same person the other way round (or a self-link): nothing to record.
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO identities (org_id, alias_id, person_id, linked_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (org_id, alias_id) DO UPDATE SET person_id = excluded.person_id, linked_at = excluded.linked_at \
         WHERE identities.person_id <> excluded.person_id",
    )?
    .execute(params![org_id, alias_id, target, at])?;
    for sql in [
        "UPDATE identities SET person_id = ?3 WHERE org_id = ?1 AND person_id = ?2",
        "DELETE FROM identities WHERE org_id = ?1 AND alias_id = ?3 AND person_id = ?3",
        "UPDATE interactions SET person_id = ?3 WHERE org_id = ?1 AND person_id = ?2",
        "UPDATE sessions SET person_id = ?3 WHERE org_id = ?1 AND person_id = ?2",
    ] {
        conn.prepare_cached(sql)?.execute(params![org_id, alias_id, target])?;
    }
    Ok(())
}

/// The SQL and parameters of one page of [`EventStore::list_interactions`] (one row more than
/// `limit`, to learn whether a next page exists).
fn list_interactions_sql(
    org_id: &str,
    query: &InteractionQuery,
    limit: usize,
) -> Result<(String, Vec<SqlValue>), StoreError> {
    let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut sql = format!("SELECT seq, timestamp, {INTERACTION_COLS} FROM interactions WHERE org_id = ?");
    let mut params: Vec<SqlValue> = vec![org_id.to_owned().into()];
    let mut filter = |clause: &str, v: SqlValue| {
        sql.push_str(clause);
        params.push(v);
    };
    if let Some(t) = query.event_type {
        filter(" AND type = ?", t.as_str().to_owned().into());
    }
    if let Some(n) = &query.name {
        filter(" AND name = ?", n.clone().into());
    }
    if let Some(s) = query.since {
        filter(" AND timestamp >= ?", s.into());
    }
    if let Some(u) = query.until {
        filter(" AND timestamp < ?", u.into());
    }
    if let Some(s) = &query.session_id {
        filter(" AND session_id = ?", s.clone().into());
    }
    if let Some(p) = &query.person_id {
        filter(" AND person_id = ?", p.clone().into());
    }
    if let Some((t, s)) = cursor {
        // A row value, so the index range starts at the cursor instead of scanning up to it.
        filter(" AND (timestamp, seq) < (?", t.into());
        filter(", ?)", s.into());
    }
    sql.push_str(" ORDER BY timestamp DESC, seq DESC LIMIT ?");
    params.push((limit as i64 + 1).into());
    Ok((sql, params))
}

/// The SQL and parameters of one page of [`EventStore::list_sessions`] (newest first, ties by
/// id, one row more than `limit`).
fn list_sessions_sql(org_id: &str, query: &SessionQuery, limit: usize) -> Result<(String, Vec<SqlValue>), StoreError> {
    let cursor = query.cursor.as_deref().map(decode_session_cursor).transpose()?;
    let mut sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE org_id = ?");
    let mut params: Vec<SqlValue> = vec![org_id.to_owned().into()];
    if let Some(s) = query.since {
        sql.push_str(" AND started_at >= ?");
        params.push(s.into());
    }
    if let Some(p) = &query.person_id {
        sql.push_str(" AND person_id = ?");
        params.push(p.clone().into());
    }
    if let Some((t, id)) = cursor {
        sql.push_str(" AND (started_at, id) < (?, ?)");
        params.extend([t.into(), id.into()]);
    }
    sql.push_str(" ORDER BY started_at DESC, id DESC LIMIT ?");
    params.push((limit as i64 + 1).into());
    Ok((sql, params))
}

/// The funnel, person by person: each person's events (bots excluded) in time order, then
/// insertion order; step `k` counts when an event matching it comes at or after the event that
/// matched step `k - 1` (one event advances one step).
fn funnel_query(
    conn: &Connection,
    org_id: &str,
    steps: &[FunnelStep],
    since: Millis,
    until: Millis,
) -> Result<Vec<FunnelRow>, StoreError> {
    let mut counter = FunnelCounter::new(steps);
    if !steps.is_empty() {
        let mut types: Vec<&'static str> = steps.iter().map(|s| s.event_type.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        let placeholders = vec!["?"; types.len()].join(", ");
        let sql = format!(
            "SELECT p, type, name, page_path FROM (SELECT {PERSON_OF} AS p, type, name, page_path, timestamp, seq \
             FROM interactions i WHERE org_id = ? AND timestamp >= ? AND timestamp < ? AND is_bot = 0 \
             AND type IN ({placeholders})) WHERE p IS NOT NULL ORDER BY p, timestamp, seq"
        );
        let mut params: Vec<SqlValue> = vec![org_id.to_owned().into(), since.into(), until.into()];
        params.extend(types.iter().map(|t| SqlValue::from(t.to_string())));
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        let mut person: Option<String> = None;
        while let Some(row) = rows.next()? {
            let p = row.get_ref(0)?.as_str()?;
            if person.as_deref() != Some(p) {
                person = Some(p.to_owned());
                counter.next_person();
            }
            if counter.person_done() {
                continue;
            }
            let Some(event_type) = EventType::parse(row.get_ref(1)?.as_str()?) else {
                continue;
            };
            counter.event(
                event_type,
                row.get_ref(2)?.as_str_or_null()?,
                row.get_ref(3)?.as_str_or_null()?,
            );
        }
    }
    Ok(counter.rows())
}

/// Events, visitors, views and top pages from `interactions` (by event time); sessions and
/// their referrer classes from `sessions` (by `started_at`), bots excluded.
fn traffic_query(
    conn: &Connection,
    org_id: &str,
    since: Millis,
    until: Millis,
    top: usize,
) -> Result<TrafficSummary, StoreError> {
    let mut t = conn
        .prepare_cached(&format!(
            "SELECT count(*), coalesce(sum(is_bot), 0), coalesce(sum(pii_scrubbed), 0), \
             count(DISTINCT CASE WHEN is_bot = 0 THEN {PERSON_OF} END), \
             coalesce(sum(is_bot = 0 AND type IN ('page', 'screen')), 0) \
             FROM interactions i WHERE org_id = ?1 AND timestamp >= ?2 AND timestamp < ?3"
        ))?
        .query_row(params![org_id, since, until], |r| {
            Ok(TrafficSummary {
                events: r.get(0)?,
                bot_events: r.get(1)?,
                pii_scrubbed: r.get(2)?,
                visitors: r.get(3)?,
                page_views: r.get(4)?,
                ..Default::default()
            })
        })?;
    t.top_pages = conn
        .prepare_cached(
            "SELECT page_path, count(*) AS n FROM interactions WHERE org_id = ?1 AND timestamp >= ?2 \
             AND timestamp < ?3 AND is_bot = 0 AND type = 'page' AND page_path IS NOT NULL \
             GROUP BY page_path ORDER BY n DESC, page_path LIMIT ?4",
        )?
        .query_map(params![org_id, since, until, top.min(i64::MAX as usize) as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut sessions = 0;
    let mut classes = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT referrer_class, count(*) AS n FROM sessions WHERE org_id = ?1 AND started_at >= ?2 \
         AND started_at < ?3 AND is_bot = 0 GROUP BY referrer_class ORDER BY n DESC, referrer_class",
    )?;
    let mut rows = stmt.query(params![org_id, since, until])?;
    while let Some(r) = rows.next()? {
        let n: u64 = r.get(1)?;
        sessions += n;
        if let Some(class) = r.get::<_, Option<String>>(0)? {
            classes.push((class, n));
        }
    }
    t.sessions = sessions;
    t.referrer_classes = classes;
    t.top_referrers = conn
        .prepare_cached(
            "SELECT referrer, count(*) AS n FROM sessions WHERE org_id = ?1 AND started_at >= ?2 \
             AND started_at < ?3 AND is_bot = 0 AND referrer IS NOT NULL \
             GROUP BY referrer ORDER BY n DESC, referrer LIMIT ?4",
        )?
        .query_map(params![org_id, since, until, top.min(i64::MAX as usize) as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(t)
}

/// Sentiment per bucket: interaction texts by their label, or mentions by their analyzed (else
/// lexicon) score with the ±0.05 thresholds the port documents.
fn sentiment_query(
    conn: &Connection,
    org_id: &str,
    source: SentimentSource,
    since: Millis,
    until: Millis,
    bucket: i64,
) -> Result<Vec<SentimentBucket>, StoreError> {
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
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params![org_id, since, until, bucket], |r| {
            let (b, count, positive, negative): (i64, u64, u64, u64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            Ok(SentimentBucket {
                start: since + b * bucket,
                count,
                positive,
                negative,
                neutral: count.saturating_sub(positive + negative),
                mean_score: r.get::<_, Option<f64>>(4)?.unwrap_or(0.0),
            })
        })?
        .collect::<Result<_, _>>()?)
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

/// [`EventStore::top_entities`] in one statement: per entity (kind, product id, norm) the texts
/// and their sentiments, its name (the catalog product's, else the form found in the most texts,
/// ties to the smallest), in the documented order. `?5` is the limit.
fn top_entities_sql(source: SentimentSource) -> String {
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

fn top_entities_query(conn: &Connection, org_id: &str, query: &EntityQuery) -> Result<Vec<EntityCount>, StoreError> {
    if query.since >= query.until {
        return Ok(Vec::new());
    }
    Ok(conn
        .prepare_cached(&top_entities_sql(query.source))?
        .query_map(
            params![org_id, query.since, query.until, query.kind, i64::from(query.limit)],
            |r| {
                let (mentions, positive, negative, scored): (u64, u64, u64, u64) =
                    (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
                Ok(EntityCount {
                    kind: r.get(0)?,
                    text: r.get(1)?,
                    product_id: r.get(2)?,
                    mentions,
                    positive,
                    neutral: scored.saturating_sub(positive + negative),
                    negative,
                    mean_score: r.get(7)?,
                })
            },
        )?
        .collect::<Result<_, _>>()?)
}

impl SqliteStore {
    /// [`EventStore::append`] with this crate's error type.
    pub async fn append_events(
        &self,
        org_id: &str,
        events: Vec<Interaction>,
        follow_up: Vec<NewJob>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.is_empty() && follow_up.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let enqueued_at = events.iter().map(|e| e.received_at).max().unwrap_or(0);
        let rows = events
            .into_iter()
            .map(|ev| EventRow::new(org_id, ev))
            .collect::<Result<Vec<_>, _>>()?;
        let jobs = follow_up.into_iter().map(JobRow::new).collect::<Result<Vec<_>, _>>()?;
        let org = org_id.to_owned();
        self.write(rows.len() + jobs.len(), move |conn| {
            let out = insert_events(conn, &org, &rows)?;
            // A batch that was stored before (all duplicates) had its jobs enqueued then.
            if out.inserted > 0 || rows.is_empty() {
                insert_jobs(conn, &jobs, enqueued_at)?;
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait::async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        org_id: &str,
        events: Vec<Interaction>,
        follow_up: Vec<NewJob>,
    ) -> crow_core::Result<AppendOutcome> {
        Ok(self.append_events(org_id, events, follow_up).await?)
    }

    async fn get_interactions(&self, org_id: &str, ids: &[String]) -> crow_core::Result<Vec<Interaction>> {
        let org = org_id.to_owned();
        let ids = ids.to_vec();
        Ok(self.read_point(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {INTERACTION_COLS} FROM interactions WHERE org_id = ?1 AND id = ?2"
            ))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(ev) = stmt
                    .query_row(params![org, id], |r| interaction_from_row(r, 0))
                    .optional()?
                {
                    out.push(ev?);
                }
            }
            Ok(out)
        })?)
    }

    async fn interactions_ndjson(&self, org_id: &str, ids: &[String]) -> crow_core::Result<(Vec<u8>, usize)> {
        let org = org_id.to_owned();
        let ids = ids.to_vec();
        Ok(self.read_point(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT data FROM interactions WHERE org_id = ?1 AND id = ?2")?;
            let mut out = Vec::with_capacity(ids.len() * 1024);
            let mut n = 0;
            for id in &ids {
                let found = stmt
                    .query_row(params![org, id], |r| {
                        out.extend_from_slice(r.get_ref(0)?.as_bytes()?);
                        Ok(())
                    })
                    .optional()?;
                if found.is_some() {
                    out.push(b'\n');
                    n += 1;
                }
            }
            Ok((out, n))
        })?)
    }

    async fn list_interactions(&self, org_id: &str, query: &InteractionQuery) -> crow_core::Result<Page<Interaction>> {
        let limit = clamp_limit(query.limit);
        let (sql, params) = list_interactions_sql(org_id, query, limit)?;
        Ok(self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query(params_from_iter(params))?;
                let mut data = Vec::with_capacity(limit.min(64));
                let mut last = None;
                let mut more = false;
                while let Some(row) = rows.next()? {
                    if data.len() == limit {
                        more = true;
                        break;
                    }
                    last = Some((row.get::<_, i64>(1)?, row.get::<_, i64>(0)?));
                    data.push(interaction_from_row(row, 2)??);
                }
                let next_cursor = if more {
                    last.map(|(t, s)| encode_cursor(t, s))
                } else {
                    None
                };
                Ok(Page { data, next_cursor })
            })
            .await?)
    }

    async fn store_texts(&self, org_id: &str, texts: &[InteractionText]) -> crow_core::Result<()> {
        if texts.is_empty() {
            return Ok(());
        }
        let org = org_id.to_owned();
        let rows = texts
            .iter()
            .map(|t| {
                let analysis = serde_json::to_string(&t.analysis).map_err(StoreError::from)?;
                let embedding = t
                    .embedding
                    .as_ref()
                    .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
                Ok((t.clone(), analysis, embedding))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(self
            .write(rows.len(), move |conn| {
                let mut stmt = conn.prepare_cached(
                    "INSERT INTO interaction_texts (org_id, event_id, field, timestamp, language, sentiment_label, \
                     sentiment_score, sentiment_tier, analysis, embedding, analyzed_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT (org_id, event_id) DO UPDATE SET field = excluded.field, \
                     timestamp = excluded.timestamp, language = excluded.language, \
                     sentiment_label = excluded.sentiment_label, sentiment_score = excluded.sentiment_score, \
                     sentiment_tier = excluded.sentiment_tier, analysis = excluded.analysis, \
                     embedding = excluded.embedding, analyzed_at = excluded.analyzed_at",
                )?;
                for (t, analysis, embedding) in &rows {
                    let s = t.analysis.sentiment.as_ref();
                    stmt.execute(params![
                        org,
                        t.event_id,
                        t.field,
                        t.timestamp,
                        t.analysis.language,
                        s.map(|s| s.label.as_str()),
                        s.map(|s| f64::from(s.score)),
                        s.map(|s| s.tier.as_str()),
                        analysis,
                        embedding,
                        t.analyzed_at,
                    ])?;
                }
                Ok(())
            })
            .await?)
    }

    async fn apply_enrichment(&self, org_id: &str, enrichment: &[Enrichment]) -> crow_core::Result<()> {
        if enrichment.is_empty() {
            return Ok(());
        }
        let org = org_id.to_owned();
        let items = enrichment.to_vec();
        Ok(self
            .write(items.len(), move |conn| {
                let mut stmt = conn.prepare_cached(
                    "UPDATE interactions SET person_id = ?3, session_id = ?4, referrer_class = ?5 \
                     WHERE org_id = ?1 AND id = ?2",
                )?;
                for e in &items {
                    stmt.execute(params![
                        org,
                        e.event_id,
                        e.person_id,
                        e.session_id,
                        e.referrer_class.as_str()
                    ])?;
                }
                Ok(())
            })
            .await?)
    }

    async fn link_identity(&self, org_id: &str, alias_id: &str, person_id: &str, at: Millis) -> crow_core::Result<()> {
        let (org, alias, person) = (org_id.to_owned(), alias_id.to_owned(), person_id.to_owned());
        Ok(self.write(1, move |conn| link(conn, &org, &alias, &person, at)).await?)
    }

    async fn resolve_person(&self, org_id: &str, id: &str) -> crow_core::Result<Option<String>> {
        let (org, id) = (org_id.to_owned(), id.to_owned());
        Ok(self.read_point(move |conn| {
            Ok(conn
                .prepare_cached("SELECT person_id FROM identities WHERE org_id = ?1 AND alias_id = ?2")?
                .query_row(params![org, id], |r| r.get(0))
                .optional()?)
        })?)
    }

    async fn latest_session(&self, org_id: &str, person_id: &str, at: Millis) -> crow_core::Result<Option<Session>> {
        let (org, person) = (org_id.to_owned(), person_id.to_owned());
        Ok(self.read_point(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLS} FROM sessions WHERE org_id = ?1 AND person_id = ?2 \
                         AND started_at <= ?3 ORDER BY started_at DESC, id DESC LIMIT 1"
                ))?
                .query_row(params![org, person, at], session_from_row)
                .optional()?)
        })?)
    }

    async fn refresh_sessions(&self, org_id: &str, session_ids: &[String]) -> crow_core::Result<()> {
        if session_ids.is_empty() {
            return Ok(());
        }
        let org = org_id.to_owned();
        let mut ids = session_ids.to_vec();
        ids.sort();
        ids.dedup();
        Ok(self
            .write(ids.len(), move |conn| {
                for id in &ids {
                    refresh_session(conn, &org, id)?;
                }
                Ok(())
            })
            .await?)
    }

    async fn get_session(&self, org_id: &str, id: &str) -> crow_core::Result<Option<Session>> {
        let (org, id) = (org_id.to_owned(), id.to_owned());
        Ok(self.read_point(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLS} FROM sessions WHERE org_id = ?1 AND id = ?2"
                ))?
                .query_row(params![org, id], session_from_row)
                .optional()?)
        })?)
    }

    async fn list_sessions(&self, org_id: &str, query: &SessionQuery) -> crow_core::Result<Page<Session>> {
        let limit = clamp_limit(query.limit);
        let (sql, params) = list_sessions_sql(org_id, query, limit)?;
        Ok(self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let all = stmt
                    .query_map(params_from_iter(params), session_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(super::page_of(all, limit, |s| {
                    encode_session_cursor(s.started_at, &s.id)
                }))
            })
            .await?)
    }

    async fn traffic_summary(
        &self,
        org_id: &str,
        since: Millis,
        until: Millis,
        top: usize,
    ) -> crow_core::Result<TrafficSummary> {
        let org = org_id.to_owned();
        Ok(self
            .read(move |conn| traffic_query(conn, &org, since, until, top))
            .await?)
    }

    async fn funnel(
        &self,
        org_id: &str,
        steps: &[FunnelStep],
        since: Millis,
        until: Millis,
    ) -> crow_core::Result<Vec<FunnelRow>> {
        let org = org_id.to_owned();
        let steps = steps.to_vec();
        Ok(self
            .read(move |conn| funnel_query(conn, &org, &steps, since, until))
            .await?)
    }

    async fn sentiment_series(
        &self,
        org_id: &str,
        source: SentimentSource,
        since: Millis,
        until: Millis,
        bucket_ms: i64,
    ) -> crow_core::Result<Vec<SentimentBucket>> {
        if bucket_ms <= 0 {
            return Err(crow_core::Error::invalid("bucket_ms", "must be positive"));
        }
        let org = org_id.to_owned();
        Ok(self
            .read(move |conn| sentiment_query(conn, &org, source, since, until, bucket_ms))
            .await?)
    }

    async fn top_entities(&self, org_id: &str, query: &EntityQuery) -> crow_core::Result<Vec<EntityCount>> {
        if !(1..=MAX_TOP_ENTITIES).contains(&query.limit) {
            let reason = format!("{} is not in 1..={MAX_TOP_ENTITIES}", query.limit);
            return Err(StoreError::invalid("limit", reason).into());
        }
        let (org, query) = (org_id.to_owned(), query.clone());
        Ok(self.read(move |conn| top_entities_query(conn, &org, &query)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str, params: Vec<SqlValue>) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(params_from_iter(params), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    /// Every page of every listing is an index range read in order: no full scan, no sort.
    #[test]
    fn listings_use_an_index_and_no_sort() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::apply(&mut conn).unwrap();
        let cursor = Some(encode_cursor(1_000, 5));
        let queries = [
            InteractionQuery::default(),
            InteractionQuery {
                cursor: cursor.clone(),
                ..Default::default()
            },
            InteractionQuery {
                cursor: cursor.clone(),
                event_type: Some(EventType::Track),
                since: Some(0),
                until: Some(10),
                ..Default::default()
            },
            InteractionQuery {
                cursor: cursor.clone(),
                person_id: Some("p".into()),
                ..Default::default()
            },
            InteractionQuery {
                cursor,
                session_id: Some("s".into()),
                ..Default::default()
            },
        ];
        for q in &queries {
            let (sql, params) = list_interactions_sql("o", q, 10).unwrap();
            let p = plan(&conn, &sql, params);
            assert!(p.contains("USING INDEX interactions_"), "{q:?}: {p}");
            assert!(!p.contains("TEMP B-TREE") && !p.starts_with("SCAN"), "{q:?}: {p}");
        }
        let cursor = Some(encode_session_cursor(1_000, "s-1"));
        for q in [
            SessionQuery {
                cursor: cursor.clone(),
                ..Default::default()
            },
            SessionQuery {
                cursor,
                person_id: Some("p".into()),
                since: Some(5),
                ..Default::default()
            },
        ] {
            let (sql, params) = list_sessions_sql("o", &q, 10).unwrap();
            let p = plan(&conn, &sql, params);
            assert!(p.contains("USING INDEX sessions_"), "{q:?}: {p}");
            assert!(!p.contains("TEMP B-TREE"), "{q:?}: {p}");
        }
    }

    /// The entity aggregate reads the texts of the window through the time index.
    #[test]
    fn top_entities_read_the_window_through_the_time_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::apply(&mut conn).unwrap();
        for (source, index) in [
            (SentimentSource::Interactions, "interaction_texts_time"),
            (SentimentSource::Mentions, "social_mentions_time"),
        ] {
            let params: Vec<SqlValue> = vec!["o".to_owned().into(), 0.into(), 10.into(), SqlValue::Null, 5.into()];
            let p = plan(&conn, &top_entities_sql(source), params);
            assert!(p.contains(&format!("USING INDEX {index}")), "{source:?}: {p}");
        }
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
}
