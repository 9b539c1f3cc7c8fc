//! [`VideoStore`](crow_core::ports::VideoStore) on the SQL layer: `frame_events` (what the cctv
//! channel derived from frames) and `video_archive` (the ledger of objects written to the
//! `cctv-frames` bucket).
//!
//! Choices the port leaves open, the same as `MemoryStore`'s:
//! - [`store_frame_events`] checks every event first (nothing is stored on error): an `org_id`
//!   other than the argument is `Invalid` (`events[i].org_id`), a non-finite `value` is `Invalid`
//!   (`events[i].value`; SQLite would store NaN as NULL). Then `INSERT OR IGNORE` over the events
//!   as one JSON parameter, in one batch: an id stored before, or earlier in the same call, is
//!   left as it was and not counted.
//! - [`list_frame_events`] and [`oldest_archive`] take a `limit` of `1..=1000` (else `Invalid`,
//!   field `limit`); a malformed cursor is `Invalid` (field `cursor`). Ties in time are broken by
//!   event id (archive: by key), ascending.
//! - [`record_archive`] is an upsert by key: recording a key again replaces its entry (the
//!   object was rewritten); the last of a key repeated within one call wins. [`remove_archive`]
//!   counts each removed key once; unknown keys (and other orgs' keys) are skipped. Sizes above
//!   `i64::MAX` are stored as `i64::MAX`, and sizes are read as `CAST(… AS TEXT)` (D1's JSON
//!   numbers round integers above 2^53).

use crow_core::model::{FrameEvent, FrameEventKind, Millis};
use crow_core::ports::Page;
use crow_core::video::{ArchiveEntry, ArchiveUsage, FrameEventQuery};
use serde::Serialize;

use super::{CHUNK_BYTES, json_chunks};
use super::{Row, Sql, SqlValue, Stmt, decode_id_cursor, encode_id_cursor};
use crate::error::StoreError;

/// Columns [`frame_event_from_row`] reads, in order.
const FRAME_EVENT_COLS: &str = "id, org_id, camera_id, ts, kind, zone, count, value, frame_key";

/// Columns [`archive_from_row`] reads, in order.
const ARCHIVE_COLS: &str = "key, camera_id, ts, CAST(bytes AS TEXT) AS bytes, kind";

/// Inserts the events of the JSON array `?1` (of [`FrameRow`]s) for org `?2`, skipping ids
/// stored before or earlier in the array.
const INSERT_FRAME_EVENTS: &str = "INSERT OR IGNORE INTO frame_events (org_id, id, camera_id, ts, kind, zone, \
     count, value, frame_key) \
     SELECT ?2, j.value ->> '$.id', j.value ->> '$.camera_id', j.value ->> '$.ts', j.value ->> '$.kind', \
     j.value ->> '$.zone', j.value ->> '$.count', j.value ->> '$.value', j.value ->> '$.frame_key' \
     FROM json_each(?1) AS j ORDER BY j.key";

/// Upserts the entries of the JSON array `?1` (of [`ArchiveRow`]s) for org `?2`, in array order
/// (the last of a repeated key wins). `WHERE true` keeps the upsert's `ON` from parsing as a
/// join constraint.
const UPSERT_ARCHIVE: &str = "INSERT INTO video_archive (org_id, key, camera_id, ts, bytes, kind) \
     SELECT ?2, j.value ->> '$.key', j.value ->> '$.camera_id', j.value ->> '$.ts', j.value ->> '$.bytes', \
     j.value ->> '$.kind' FROM json_each(?1) AS j WHERE true ORDER BY j.key \
     ON CONFLICT (org_id, key) DO UPDATE SET \
     camera_id = excluded.camera_id, ts = excluded.ts, bytes = excluded.bytes, kind = excluded.kind";

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

/// A frame event as one element of the JSON array [`INSERT_FRAME_EVENTS`] binds.
#[derive(Debug, Serialize)]
struct FrameRow<'a> {
    id: &'a str,
    camera_id: &'a str,
    ts: Millis,
    kind: &'static str,
    zone: Option<&'a str>,
    count: i64,
    value: Option<f64>,
    frame_key: Option<&'a str>,
}

impl<'a> FrameRow<'a> {
    fn new(e: &'a FrameEvent) -> FrameRow<'a> {
        FrameRow {
            id: &e.id,
            camera_id: &e.camera_id,
            ts: e.timestamp,
            kind: kind_to_sql(e.kind),
            zone: e.zone.as_deref(),
            count: i64::from(e.count),
            value: e.value,
            frame_key: e.frame_key.as_deref(),
        }
    }
}

/// An archive entry as one element of the JSON array [`UPSERT_ARCHIVE`] binds.
#[derive(Debug, Serialize)]
struct ArchiveRow<'a> {
    key: &'a str,
    camera_id: &'a str,
    ts: Millis,
    bytes: i64,
    kind: &'a str,
}

/// A frame event row (columns [`FRAME_EVENT_COLS`]).
fn frame_event_from_row(row: &Row) -> Result<FrameEvent, StoreError> {
    let kind = row.text(4)?;
    let kind = kind_from_sql(&kind)
        .ok_or_else(|| StoreError::Internal(format!("frame event kind `{kind}` is unknown to this build")))?;
    Ok(FrameEvent {
        id: row.text(0)?,
        org_id: row.text(1)?,
        camera_id: row.text(2)?,
        timestamp: row.i64(3)?,
        kind,
        zone: row.opt_text(5)?,
        count: u32::try_from(row.i64(6)?).unwrap_or(u32::MAX),
        value: row.opt_f64(7)?,
        frame_key: row.opt_text(8)?,
    })
}

/// An archive row (columns [`ARCHIVE_COLS`]).
fn archive_from_row(row: &Row) -> Result<ArchiveEntry, StoreError> {
    Ok(ArchiveEntry {
        key: row.text(0)?,
        camera_id: row.text(1)?,
        timestamp: row.i64(2)?,
        bytes: u64_from_sql(row.i64(3)?),
        kind: row.text(4)?,
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

/// The sum of the `changes()` of a batch's statements.
fn changes(done: &[super::Done]) -> usize {
    done.iter()
        .map(|d| usize::try_from(d.changes).unwrap_or(usize::MAX))
        .fold(0, usize::saturating_add)
}

/// [`VideoStore::store_frame_events`](crow_core::ports::VideoStore::store_frame_events): checks
/// every event, then stores the new ones; answers how many were stored.
pub async fn store_frame_events<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    events: &[FrameEvent],
) -> Result<usize, StoreError> {
    check_events(org_id, events)?;
    if events.is_empty() {
        return Ok(0);
    }
    let rows: Vec<FrameRow<'_>> = events.iter().map(FrameRow::new).collect();
    let stmts = json_chunks(&rows, CHUNK_BYTES)?
        .into_iter()
        .map(|chunk| Stmt::new(INSERT_FRAME_EVENTS).bind(chunk).bind(org_id))
        .collect();
    Ok(changes(&db.batch(stmts).await?))
}

/// The statement of one page of [`list_frame_events`] (oldest first, ties by id, one row more
/// than `limit`).
fn list_frame_events_stmt(org_id: &str, query: &FrameEventQuery, limit: usize) -> Result<Stmt, StoreError> {
    let cursor = query.cursor.as_deref().map(decode_id_cursor).transpose()?;
    let mut sql = format!("SELECT {FRAME_EVENT_COLS} FROM frame_events WHERE org_id = ?");
    let mut params: Vec<SqlValue> = vec![org_id.into()];
    let mut filter = |clause: &str, v: SqlValue| {
        sql.push_str(clause);
        params.push(v);
    };
    if let Some(c) = &query.camera_id {
        filter(" AND camera_id = ?", c.into());
    }
    if let Some(k) = query.kind {
        filter(" AND kind = ?", kind_to_sql(k).into());
    }
    if let Some(z) = &query.zone {
        filter(" AND zone = ?", z.into());
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
    params.push(limit.saturating_add(1).into());
    Ok(params.into_iter().fold(Stmt::new(sql), Stmt::bind))
}

/// [`VideoStore::list_frame_events`](crow_core::ports::VideoStore::list_frame_events): oldest
/// first, ties by id.
pub async fn list_frame_events<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    query: &FrameEventQuery,
) -> Result<Page<FrameEvent>, StoreError> {
    let limit = check_limit(query.limit)?;
    let mut rows = db.query(list_frame_events_stmt(org_id, query, limit)?).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let data = rows.iter().map(frame_event_from_row).collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if more {
        data.last().map(|e| encode_id_cursor(e.timestamp, &e.id))
    } else {
        None
    };
    Ok(Page { data, next_cursor })
}

/// [`VideoStore::record_archive`](crow_core::ports::VideoStore::record_archive): upserts the
/// entries by key, in one batch.
pub async fn record_archive<S: Sql + ?Sized>(db: &S, org_id: &str, entries: &[ArchiveEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let rows: Vec<ArchiveRow<'_>> = entries
        .iter()
        .map(|e| ArchiveRow {
            key: &e.key,
            camera_id: &e.camera_id,
            ts: e.timestamp,
            bytes: u64_to_sql(e.bytes),
            kind: &e.kind,
        })
        .collect();
    let stmts = json_chunks(&rows, CHUNK_BYTES)?
        .into_iter()
        .map(|chunk| Stmt::new(UPSERT_ARCHIVE).bind(chunk).bind(org_id))
        .collect();
    db.batch(stmts).await?;
    Ok(())
}

/// [`VideoStore::archive_usage`](crow_core::ports::VideoStore::archive_usage): the org's object
/// count, total size and oldest time.
pub async fn archive_usage<S: Sql + ?Sized>(db: &S, org_id: &str) -> Result<ArchiveUsage, StoreError> {
    let row = db
        .query_one(
            Stmt::new(
                "SELECT count(*) AS objects, CAST(coalesce(sum(bytes), 0) AS TEXT) AS bytes, min(ts) AS oldest \
                 FROM video_archive WHERE org_id = ?1",
            )
            .bind(org_id),
        )
        .await?
        .ok_or_else(|| StoreError::Internal("an aggregate returned no row".into()))?;
    Ok(ArchiveUsage {
        objects: u64_from_sql(row.i64(0)?),
        bytes: u64_from_sql(row.i64(1)?),
        oldest: row.opt_i64(2)?,
    })
}

/// [`VideoStore::oldest_archive`](crow_core::ports::VideoStore::oldest_archive): the org's
/// oldest entries, ties by key.
pub async fn oldest_archive<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    limit: u32,
) -> Result<Vec<ArchiveEntry>, StoreError> {
    let limit = check_limit(limit)?;
    let rows = db
        .query(
            Stmt::new(format!(
                "SELECT {ARCHIVE_COLS} FROM video_archive WHERE org_id = ?1 ORDER BY ts, key LIMIT ?2"
            ))
            .bind(org_id)
            .bind(limit),
        )
        .await?;
    rows.iter().map(archive_from_row).collect()
}

/// [`VideoStore::remove_archive`](crow_core::ports::VideoStore::remove_archive): deletes the
/// entries of `keys`; answers how many there were (each once; unknown keys are skipped).
pub async fn remove_archive<S: Sql + ?Sized>(db: &S, org_id: &str, keys: &[String]) -> Result<usize, StoreError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let stmts = json_chunks(keys, CHUNK_BYTES)?
        .into_iter()
        .map(|chunk| {
            Stmt::new("DELETE FROM video_archive WHERE org_id = ?1 AND key IN (SELECT value FROM json_each(?2))")
                .bind(org_id)
                .bind(chunk)
        })
        .collect();
    Ok(changes(&db.batch(stmts).await?))
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

    /// Floats travel inside the JSON parameter and come back with every bit (SQLite's JSON
    /// number parser is exact for magnitudes within about 1e-20..1e22, far beyond what a frame
    /// event measures); sizes above 2^53 are read as text.
    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn values_and_sizes_round_trip_exactly() {
        use crate::{SqliteStore, StoreConfig};

        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut values = vec![
            0.1,
            0.1 + 0.2,
            1.0 / 3.0,
            2.0 / 3.0,
            123_456.789,
            1e-20,
            1e22,
            -7.25,
            0.0,
        ];
        for _ in 0..900 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Every significand, magnitudes from 1e-20 to 1e21.
            let unit = f64::from_bits((state >> 12) | (1023 << 52));
            values.push(unit * 10f64.powi((state % 42) as i32 - 20));
        }
        let events: Vec<FrameEvent> = values
            .iter()
            .enumerate()
            .map(|(i, v)| FrameEvent {
                id: format!("e{i:04}"),
                org_id: "o".into(),
                camera_id: "cam".into(),
                timestamp: i as Millis,
                kind: FrameEventKind::Occupancy,
                zone: None,
                count: u32::MAX,
                value: Some(*v),
                frame_key: None,
            })
            .collect();
        assert_eq!(store_frame_events(&store, "o", &events).await.unwrap(), events.len());
        let page = list_frame_events(
            &store,
            "o",
            &FrameEventQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let back: Vec<u64> = page.data.iter().map(|e| e.value.unwrap().to_bits()).collect();
        let want: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(back, want);
        assert_eq!(page.data, events);

        let big = ArchiveEntry {
            key: "k".into(),
            camera_id: "cam".into(),
            timestamp: 7,
            bytes: u64::MAX,
            kind: "keyframe".into(),
        };
        record_archive(&store, "o", std::slice::from_ref(&big)).await.unwrap();
        let usage = archive_usage(&store, "o").await.unwrap();
        assert_eq!(
            (usage.objects, usage.bytes, usage.oldest),
            (1, i64::MAX as u64, Some(7))
        );
        let oldest = oldest_archive(&store, "o", 10).await.unwrap();
        assert_eq!(oldest[0].bytes, i64::MAX as u64);
        let mut second = big.clone();
        second.bytes = (1 << 53) + 1;
        record_archive(&store, "o", &[big, second]).await.unwrap();
        assert_eq!(
            archive_usage(&store, "o").await.unwrap().bytes,
            (1 << 53) + 1,
            "the last wins"
        );
    }
}
