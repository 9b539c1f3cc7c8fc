//! [`EventStore`] over SQLite: interactions, sessions, identities and the two reports.

use std::collections::HashMap;

use crow_core::model::{DeviceClass, Enrichment, EventType, Interaction, Millis, ReferrerClass, Session};
use crow_core::ports::{
    AppendOutcome, EventStore, FunnelRow, FunnelStep, InteractionQuery, NewJob, Page, SessionQuery, TrafficSummary,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::queue::{JobRow, insert_jobs};
use super::{SqliteStore, clamp_limit, decode_cursor, encode_cursor, wall_clock_ms};
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
    fn new(ev: Interaction) -> Result<EventRow, StoreError> {
        let data = serde_json::to_string(&ev)?;
        Ok(EventRow {
            event_type: ev.event_type.as_str(),
            referrer_class: ev.referrer_class.map(ReferrerClass::as_str),
            page_path: ev.context.page.and_then(|p| p.path),
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
        }
    }
    Ok(out)
}

/// Columns [`interaction_from_row`] reads, in order.
const INTERACTION_COLS: &str = "person_id, session_id, referrer_class, data";

/// The stored JSON, with the columns enrichment and identity links rewrite laid over it.
fn interaction_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Result<Interaction, StoreError>> {
    let person_id: Option<String> = row.get(first)?;
    let session_id: Option<String> = row.get(first + 1)?;
    let referrer_class: Option<String> = row.get(first + 2)?;
    let data = row.get_ref(first + 3)?.as_str()?;
    Ok(serde_json::from_str::<Interaction>(data)
        .map(|mut ev| {
            ev.person_id = person_id;
            ev.session_id = session_id;
            ev.referrer_class = referrer_class.as_deref().and_then(ReferrerClass::parse);
            ev
        })
        .map_err(StoreError::from))
}

const SESSION_COLS: &str = "seq, id, org_id, person_id, started_at, ended_at, event_count, page_count, entry_path, \
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

/// A session row (columns [`SESSION_COLS`]) and its `seq`.
fn session_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Session)> {
    let referrer_class: Option<String> = row.get(11)?;
    let device: Option<String> = row.get(13)?;
    Ok((
        row.get(0)?,
        Session {
            id: row.get(1)?,
            org_id: row.get(2)?,
            person_id: row.get(3)?,
            started_at: row.get(4)?,
            ended_at: row.get(5)?,
            event_count: row.get(6)?,
            page_count: row.get(7)?,
            entry_path: row.get(8)?,
            exit_path: row.get(9)?,
            referrer: row.get(10)?,
            referrer_class: referrer_class.as_deref().and_then(ReferrerClass::parse),
            campaign: row.get(12)?,
            device: device.as_deref().and_then(parse_device),
            is_bot: row.get(14)?,
        },
    ))
}

/// Recomputes one session from its events; deletes the row when no event is left.
fn refresh_session(conn: &Connection, org_id: &str, session_id: &str) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT type, timestamp, page_path, referrer_class, is_bot, person_id, user_id, anonymous_id, data \
         FROM interactions WHERE org_id = ?1 AND session_id = ?2 ORDER BY timestamp, seq",
    )?;
    let mut rows = stmt.query(params![org_id, session_id])?;
    let mut s: Option<Session> = None;
    let mut last_person: Option<String> = None;
    while let Some(row) = rows.next()? {
        let event_type: String = row.get(0)?;
        let ts: i64 = row.get(1)?;
        let path: Option<String> = row.get(2)?;
        let is_bot: bool = row.get(4)?;
        if let Some(p) = row.get::<_, Option<String>>(5)? {
            last_person = Some(p);
        }
        let is_view = event_type == "page" || event_type == "screen";
        let s = match &mut s {
            Some(s) => s,
            None => {
                // The first event decides referrer, campaign and device.
                let first: Interaction = serde_json::from_str(row.get_ref(8)?.as_str()?)?;
                let referrer_class: Option<String> = row.get(3)?;
                let hint: Option<String> = row.get::<_, Option<String>>(6)?.or(row.get(7)?);
                s.insert(Session {
                    id: session_id.to_owned(),
                    org_id: org_id.to_owned(),
                    person_id: hint.unwrap_or_default(),
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
        if is_view {
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
    if let Some(p) = last_person {
        s.person_id = p;
    }
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

/// What a funnel step matches on.
fn step_filter(step: &FunnelStep) -> (&'static str, Option<&str>) {
    match (step.event_type, step.name.as_deref()) {
        (_, None) => ("", None),
        (EventType::Page, Some(n)) => (" AND page_path = ?5", Some(n)),
        (_, Some(n)) => (" AND name = ?5", Some(n)),
    }
}

fn funnel_query(
    conn: &Connection,
    org_id: &str,
    steps: &[FunnelStep],
    since: Millis,
    until: Millis,
) -> Result<Vec<FunnelRow>, StoreError> {
    // person → the time they reached the previous step (the earliest time that keeps them in).
    let mut reached: HashMap<String, i64> = HashMap::new();
    let mut rows = Vec::with_capacity(steps.len());
    let mut previous: Option<u64> = None;
    for (i, step) in steps.iter().enumerate() {
        let (filter, name) = step_filter(step);
        // The first step needs each person's earliest time; later ones every (person, time).
        let (select, group) = if i == 0 {
            ("SELECT", "GROUP BY 1")
        } else {
            ("SELECT DISTINCT", "")
        };
        let time = if i == 0 { "min(timestamp)" } else { "timestamp" };
        let sql = format!(
            "{select} coalesce(person_id, anonymous_id, user_id), {time} FROM interactions \
             WHERE org_id = ?1 AND timestamp >= ?2 AND timestamp < ?3 AND is_bot = 0 AND type = ?4{filter} \
             AND coalesce(person_id, anonymous_id, user_id) IS NOT NULL {group}"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut params: Vec<SqlValue> = vec![
            org_id.to_owned().into(),
            since.into(),
            until.into(),
            step.event_type.as_str().to_owned().into(),
        ];
        if let Some(n) = name {
            params.push(n.to_owned().into());
        }
        let mut q = stmt.query(params_from_iter(params))?;
        let mut next: HashMap<String, i64> = HashMap::new();
        while let Some(row) = q.next()? {
            let person: String = row.get(0)?;
            let ts: i64 = row.get(1)?;
            let keep = if i == 0 {
                true
            } else {
                reached.get(&person).is_some_and(|&prev| ts >= prev)
            };
            if keep {
                next.entry(person)
                    .and_modify(|t| *t = (*t).min(ts))
                    .or_insert(ts);
            }
        }
        reached = next;
        let people = reached.len() as u64;
        let drop_off = match previous {
            Some(p) if p > 0 => 1.0 - people as f64 / p as f64,
            _ => 0.0,
        };
        rows.push(FunnelRow {
            label: step.label.clone(),
            people,
            drop_off,
        });
        previous = Some(people);
    }
    Ok(rows)
}

fn traffic_query(conn: &Connection, org_id: &str, since: Millis, until: Millis, top: usize) -> Result<TrafficSummary, StoreError> {
    let mut t = conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(is_bot), 0), coalesce(sum(pii_scrubbed), 0), \
             count(DISTINCT CASE WHEN is_bot = 0 THEN coalesce(person_id, anonymous_id, user_id) END), \
             count(DISTINCT CASE WHEN is_bot = 0 THEN session_id END), \
             coalesce(sum(is_bot = 0 AND type IN ('page', 'screen')), 0) \
             FROM interactions WHERE org_id = ?1 AND timestamp >= ?2 AND timestamp < ?3",
        )?
        .query_row(params![org_id, since, until], |r| {
            Ok(TrafficSummary {
                events: r.get(0)?,
                bot_events: r.get(1)?,
                pii_scrubbed: r.get(2)?,
                visitors: r.get(3)?,
                sessions: r.get(4)?,
                page_views: r.get(5)?,
                top_pages: Vec::new(),
                referrer_classes: Vec::new(),
            })
        })?;
    t.top_pages = conn
        .prepare_cached(
            "SELECT page_path, count(*) AS n FROM interactions WHERE org_id = ?1 AND timestamp >= ?2 \
             AND timestamp < ?3 AND is_bot = 0 AND type IN ('page', 'screen') AND page_path IS NOT NULL \
             GROUP BY page_path ORDER BY n DESC, page_path LIMIT ?4",
        )?
        .query_map(params![org_id, since, until, top.min(i64::MAX as usize) as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    t.referrer_classes = conn
        .prepare_cached(
            "SELECT referrer_class, count(*) AS n FROM sessions WHERE org_id = ?1 AND started_at >= ?2 \
             AND started_at < ?3 AND is_bot = 0 AND referrer_class IS NOT NULL \
             GROUP BY referrer_class ORDER BY n DESC, referrer_class",
        )?
        .query_map(params![org_id, since, until], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(t)
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
        let enqueued_at = events
            .iter()
            .map(|e| e.received_at)
            .max()
            .unwrap_or_else(wall_clock_ms);
        let mut rows = Vec::with_capacity(events.len());
        for (i, ev) in events.into_iter().enumerate() {
            if ev.org_id != org_id {
                return Err(StoreError::invalid(
                    format!("events[{i}].org_id"),
                    format!("event of org {:?} appended to org {org_id:?}", ev.org_id),
                ));
            }
            rows.push(EventRow::new(ev)?);
        }
        let jobs = follow_up
            .into_iter()
            .map(JobRow::new)
            .collect::<Result<Vec<_>, _>>()?;
        let org = org_id.to_owned();
        self.write(rows.len() + jobs.len(), move |conn| {
            let out = insert_events(conn, &org, &rows)?;
            insert_jobs(conn, &jobs, enqueued_at)?;
            Ok(out)
        })
        .await
    }
}

#[async_trait::async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, org_id: &str, events: Vec<Interaction>, follow_up: Vec<NewJob>) -> crow_core::Result<AppendOutcome> {
        Ok(self.append_events(org_id, events, follow_up).await?)
    }

    async fn get_interactions(&self, org_id: &str, ids: &[String]) -> crow_core::Result<Vec<Interaction>> {
        let org = org_id.to_owned();
        let ids = ids.to_vec();
        Ok(self
            .read(move |conn| {
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
            })
            .await?)
    }

    async fn list_interactions(&self, org_id: &str, query: &InteractionQuery) -> crow_core::Result<Page<Interaction>> {
        let limit = clamp_limit(query.limit);
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
            filter(" AND (timestamp < ?", t.into());
            filter(" OR (timestamp = ?", t.into());
            filter(" AND seq < ?))", s.into());
        }
        sql.push_str(" ORDER BY timestamp DESC, seq DESC LIMIT ?");
        params.push((limit as i64 + 1).into());
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
                let next_cursor = if more { last.map(|(t, s)| encode_cursor(t, s)) } else { None };
                Ok(Page { data, next_cursor })
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
                    stmt.execute(params![org, e.event_id, e.person_id, e.session_id, e.referrer_class.as_str()])?;
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
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT person_id FROM identities WHERE org_id = ?1 AND alias_id = ?2")?
                    .query_row(params![org, id], |r| r.get(0))
                    .optional()?)
            })
            .await?)
    }

    async fn latest_session(&self, org_id: &str, person_id: &str, at: Millis) -> crow_core::Result<Option<Session>> {
        let (org, person) = (org_id.to_owned(), person_id.to_owned());
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(&format!(
                        "SELECT {SESSION_COLS} FROM sessions WHERE org_id = ?1 AND person_id = ?2 \
                         AND started_at <= ?3 ORDER BY started_at DESC, seq DESC LIMIT 1"
                    ))?
                    .query_row(params![org, person, at], session_from_row)
                    .optional()?
                    .map(|(_, s)| s))
            })
            .await?)
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
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(&format!("SELECT {SESSION_COLS} FROM sessions WHERE org_id = ?1 AND id = ?2"))?
                    .query_row(params![org, id], session_from_row)
                    .optional()?
                    .map(|(_, s)| s))
            })
            .await?)
    }

    async fn list_sessions(&self, org_id: &str, query: &SessionQuery) -> crow_core::Result<Page<Session>> {
        let limit = clamp_limit(query.limit);
        let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
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
        if let Some((t, s)) = cursor {
            sql.push_str(" AND (started_at < ? OR (started_at = ? AND seq < ?))");
            params.extend([t.into(), t.into(), s.into()]);
        }
        sql.push_str(" ORDER BY started_at DESC, seq DESC LIMIT ?");
        params.push((limit as i64 + 1).into());
        Ok(self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut all = stmt
                    .query_map(params_from_iter(params), session_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                let next_cursor = if all.len() > limit {
                    all.truncate(limit);
                    all.last().map(|(seq, s)| encode_cursor(s.started_at, *seq))
                } else {
                    None
                };
                Ok(Page {
                    data: all.into_iter().map(|(_, s)| s).collect(),
                    next_cursor,
                })
            })
            .await?)
    }

    async fn traffic_summary(&self, org_id: &str, since: Millis, until: Millis, top: usize) -> crow_core::Result<TrafficSummary> {
        let org = org_id.to_owned();
        Ok(self.read(move |conn| traffic_query(conn, &org, since, until, top)).await?)
    }

    async fn funnel(&self, org_id: &str, steps: &[FunnelStep], since: Millis, until: Millis) -> crow_core::Result<Vec<FunnelRow>> {
        let org = org_id.to_owned();
        let steps = steps.to_vec();
        Ok(self
            .read(move |conn| funnel_query(conn, &org, &steps, since, until))
            .await?)
    }
}
