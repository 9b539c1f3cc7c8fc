//! [`VideoStore`] over SQLite: `frame_events` (what the cctv channel derived from frames) and
//! `video_archive` (the ledger of objects written to the `cctv-frames` bucket).
//!
//! Choices the port leaves open, the same as `MemoryStore`'s:
//! - `store_frame_events` checks every event first (nothing is stored on error): an `org_id`
//!   other than the argument is `Invalid` (`events[i].org_id`), a non-finite `value` is `Invalid`
//!   (`events[i].value`; SQLite would store NaN as NULL). Then `INSERT OR IGNORE` in one write:
//!   an id stored before, or earlier in the same call, is left as it was and not counted.
//! - `list_frame_events` and `oldest_archive` take a `limit` of `1..=1000` (else `Invalid`,
//!   field `limit`); a malformed cursor is `Invalid` (field `cursor`). Ties in time are broken by
//!   event id (archive: by key), ascending.
//! - `record_archive` is an upsert by key: recording a key again replaces its entry (the object
//!   was rewritten); the last of a key repeated within one call wins. `remove_archive` counts
//!   each removed key once; unknown keys (and other orgs' keys) are skipped. Sizes above
//!   `i64::MAX` are stored as `i64::MAX`.

use crow_core::model::{FrameEvent, FrameEventKind, Millis};
use crow_core::ports::{Page, VideoStore};
use crow_core::video::{ArchiveEntry, ArchiveUsage, FrameEventQuery};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Row, params, params_from_iter};

use super::{SqliteStore, decode_id_cursor, encode_id_cursor};
use crate::error::StoreError;

/// Columns [`frame_event_from_row`] reads, in order.
const FRAME_EVENT_COLS: &str = "id, org_id, camera_id, ts, kind, zone, count, value, frame_key";

const INSERT_FRAME_EVENT: &str = "INSERT OR IGNORE INTO frame_events (org_id, id, camera_id, ts, kind, zone, \
     count, value, frame_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const UPSERT_ARCHIVE: &str = "INSERT INTO video_archive (org_id, key, camera_id, ts, bytes, kind) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (org_id, key) DO UPDATE SET \
     camera_id = excluded.camera_id, ts = excluded.ts, bytes = excluded.bytes, kind = excluded.kind";

/// Keys deleted per statement by `remove_archive` (well under SQLite's bound-parameter limit).
const REMOVE_CHUNK: usize = 500;

/// Checks a page size that the port requires to be in `1..=1000`.
fn check_limit(limit: u32) -> Result<usize, StoreError> {
    if (1..=1000).contains(&limit) {
        Ok(limit as usize)
    } else {
        Err(StoreError::invalid("limit", format!("{limit} is not in 1..=1000")))
    }
}

/// The kind as stored: its snake_case serde name.
fn kind_to_sql(kind: FrameEventKind) -> &'static str {
    match kind {
        FrameEventKind::Motion => "motion",
        FrameEventKind::Presence => "presence",
        FrameEventKind::LineIn => "line_in",
        FrameEventKind::LineOut => "line_out",
        FrameEventKind::Occupancy => "occupancy",
        FrameEventKind::Dwell => "dwell",
    }
}

fn kind_from_sql(s: &str) -> Option<FrameEventKind> {
    Some(match s {
        "motion" => FrameEventKind::Motion,
        "presence" => FrameEventKind::Presence,
        "line_in" => FrameEventKind::LineIn,
        "line_out" => FrameEventKind::LineOut,
        "occupancy" => FrameEventKind::Occupancy,
        "dwell" => FrameEventKind::Dwell,
        _ => return None,
    })
}

/// A size or count as SQLite's `i64` (beyond `i64::MAX` capped), and back (negative: 0).
fn u64_to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A frame event row (columns [`FRAME_EVENT_COLS`]).
fn frame_event_from_row(row: &Row<'_>) -> Result<FrameEvent, StoreError> {
    let kind: String = row.get(4)?;
    let kind = kind_from_sql(&kind)
        .ok_or_else(|| StoreError::Internal(format!("frame event kind `{kind}` is unknown to this build")))?;
    Ok(FrameEvent {
        id: row.get(0)?,
        org_id: row.get(1)?,
        camera_id: row.get(2)?,
        timestamp: row.get(3)?,
        kind,
        zone: row.get(5)?,
        count: u32::try_from(row.get::<_, i64>(6)?).unwrap_or(u32::MAX),
        value: row.get(7)?,
        frame_key: row.get(8)?,
    })
}

fn archive_from_row(row: &Row<'_>) -> rusqlite::Result<ArchiveEntry> {
    Ok(ArchiveEntry {
        key: row.get(0)?,
        camera_id: row.get(1)?,
        timestamp: row.get(2)?,
        bytes: u64_from_sql(row.get(3)?),
        kind: row.get(4)?,
    })
}

/// Checks the events of a `store_frame_events` call (org, finite values).
fn check_events(org_id: &str, events: &[FrameEvent]) -> Result<(), StoreError> {
    for (i, e) in events.iter().enumerate() {
        if e.org_id != org_id {
            let reason = format!("`{}` is not the org the events are stored for", e.org_id);
            return Err(StoreError::invalid(format!("events[{i}].org_id"), reason));
        }
        if e.value.is_some_and(|v| !v.is_finite()) {
            return Err(StoreError::invalid(format!("events[{i}].value"), "not a finite number"));
        }
    }
    Ok(())
}

/// The SQL and parameters of one page of [`VideoStore::list_frame_events`] (oldest first, ties
/// by id, one row more than `limit`).
fn list_frame_events_sql(
    org_id: &str,
    query: &FrameEventQuery,
    limit: usize,
) -> Result<(String, Vec<SqlValue>), StoreError> {
    let cursor = query.cursor.as_deref().map(decode_id_cursor).transpose()?;
    let mut sql = format!("SELECT {FRAME_EVENT_COLS} FROM frame_events WHERE org_id = ?");
    let mut params: Vec<SqlValue> = vec![org_id.to_owned().into()];
    let mut filter = |clause: &str, v: SqlValue| {
        sql.push_str(clause);
        params.push(v);
    };
    if let Some(c) = &query.camera_id {
        filter(" AND camera_id = ?", c.clone().into());
    }
    if let Some(k) = query.kind {
        filter(" AND kind = ?", kind_to_sql(k).to_owned().into());
    }
    if let Some(z) = &query.zone {
        filter(" AND zone = ?", z.clone().into());
    }
    if let Some(s) = query.since {
        filter(" AND ts >= ?", s.into());
    }
    if let Some(u) = query.until {
        filter(" AND ts < ?", u.into());
    }
    if let Some((t, id)) = cursor {
        // A row value, so the index range starts at the cursor instead of scanning up to it.
        filter(" AND (ts, id) > (?", t.into());
        filter(", ?)", id.into());
    }
    sql.push_str(" ORDER BY ts, id LIMIT ?");
    params.push((limit as i64 + 1).into());
    Ok((sql, params))
}

#[async_trait::async_trait]
impl VideoStore for SqliteStore {
    async fn store_frame_events(&self, org_id: &str, events: &[FrameEvent]) -> crow_core::Result<usize> {
        check_events(org_id, events)?;
        if events.is_empty() {
            return Ok(0);
        }
        let org = org_id.to_owned();
        let events = events.to_vec();
        Ok(self
            .write(events.len(), move |conn| {
                let mut insert = conn.prepare_cached(INSERT_FRAME_EVENT)?;
                let mut stored = 0;
                for e in &events {
                    stored += insert.execute(params![
                        org,
                        e.id,
                        e.camera_id,
                        e.timestamp,
                        kind_to_sql(e.kind),
                        e.zone,
                        i64::from(e.count),
                        e.value,
                        e.frame_key,
                    ])?;
                }
                Ok(stored)
            })
            .await?)
    }

    async fn list_frame_events(&self, org_id: &str, query: &FrameEventQuery) -> crow_core::Result<Page<FrameEvent>> {
        let limit = check_limit(query.limit)?;
        let (sql, params) = list_frame_events_sql(org_id, query, limit)?;
        Ok(self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query(params_from_iter(params))?;
                let mut data: Vec<FrameEvent> = Vec::with_capacity(limit.min(64));
                let mut more = false;
                while let Some(row) = rows.next()? {
                    if data.len() == limit {
                        more = true;
                        break;
                    }
                    data.push(frame_event_from_row(row)?);
                }
                let next_cursor = if more {
                    data.last().map(|e| encode_id_cursor(e.timestamp, &e.id))
                } else {
                    None
                };
                Ok(Page { data, next_cursor })
            })
            .await?)
    }

    async fn record_archive(&self, org_id: &str, entries: &[ArchiveEntry]) -> crow_core::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let org = org_id.to_owned();
        let entries = entries.to_vec();
        Ok(self
            .write(entries.len(), move |conn| {
                let mut upsert = conn.prepare_cached(UPSERT_ARCHIVE)?;
                for e in &entries {
                    upsert.execute(params![
                        org,
                        e.key,
                        e.camera_id,
                        e.timestamp,
                        u64_to_sql(e.bytes),
                        e.kind
                    ])?;
                }
                Ok(())
            })
            .await?)
    }

    async fn archive_usage(&self, org_id: &str) -> crow_core::Result<ArchiveUsage> {
        let org = org_id.to_owned();
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT count(*), coalesce(sum(bytes), 0), min(ts) FROM video_archive WHERE org_id = ?1",
                    )?
                    .query_row(params![org], |r| {
                        Ok(ArchiveUsage {
                            objects: u64_from_sql(r.get(0)?),
                            bytes: u64_from_sql(r.get(1)?),
                            oldest: r.get::<_, Option<Millis>>(2)?,
                        })
                    })?)
            })
            .await?)
    }

    async fn oldest_archive(&self, org_id: &str, limit: u32) -> crow_core::Result<Vec<ArchiveEntry>> {
        let limit = check_limit(limit)? as i64;
        let org = org_id.to_owned();
        Ok(self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT key, camera_id, ts, bytes, kind FROM video_archive WHERE org_id = ?1 \
                     ORDER BY ts, key LIMIT ?2",
                )?;
                let rows = stmt
                    .query_map(params![org, limit], archive_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn remove_archive(&self, org_id: &str, keys: &[String]) -> crow_core::Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        let org = org_id.to_owned();
        let keys = keys.to_vec();
        Ok(self
            .write(keys.len(), move |conn| {
                let mut removed = 0;
                for chunk in keys.chunks(REMOVE_CHUNK) {
                    let marks = vec!["?"; chunk.len()].join(", ");
                    let sql = format!("DELETE FROM video_archive WHERE org_id = ? AND key IN ({marks})");
                    let params = params_from_iter(std::iter::once(&org).chain(chunk));
                    // Only full chunks share one statement: caching every tail length would
                    // crowd the other statements out of the cache.
                    removed += if chunk.len() == REMOVE_CHUNK {
                        conn.prepare_cached(&sql)?.execute(params)?
                    } else {
                        conn.prepare(&sql)?.execute(params)?
                    };
                }
                Ok(removed)
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_their_serde_names() {
        for kind in [
            FrameEventKind::Motion,
            FrameEventKind::Presence,
            FrameEventKind::LineIn,
            FrameEventKind::LineOut,
            FrameEventKind::Occupancy,
            FrameEventKind::Dwell,
        ] {
            let name = serde_json::to_value(kind).unwrap();
            assert_eq!(name.as_str(), Some(kind_to_sql(kind)));
            assert_eq!(kind_from_sql(kind_to_sql(kind)), Some(kind));
        }
        assert_eq!(kind_from_sql("loitering"), None);
    }

    #[test]
    fn limits_and_sizes() {
        assert!(check_limit(0).is_err() && check_limit(1001).is_err());
        assert_eq!(check_limit(1).unwrap(), 1);
        assert_eq!(check_limit(1000).unwrap(), 1000);
        assert_eq!(u64_to_sql(u64::MAX), i64::MAX);
        assert_eq!(u64_from_sql(-1), 0);
    }
}
