//! [`PersonStore`] over SQLite: a person's export and erasure (GDPR articles 15 and 17).
//!
//! The person is resolved through `identities` (the root and every alias of it); their rows are
//! the interactions whose `person_id`, `anonymous_id` or `user_id` is one of those ids, the
//! sessions of those ids or of those interactions, the identity links of those ids and the
//! `interaction_texts` of those interactions.
//!
//! Erasure deletes all of them in one write transaction, together with what the queue and the
//! workflow step log say about them: the erased event ids leave the payloads of the org's jobs (a
//! job left naming no event is deleted), and unfinished runs whose step records name the person,
//! their sessions or their events lose those records (a resumed run redoes the steps).
//!
//! No byte of it may stay in the files. Every connection runs with `PRAGMA secure_delete = ON`
//! (see [`super::SqliteStore::open`]), so SQLite overwrites deleted cells and freed pages with
//! zeros; what is left is the write-ahead log, which still holds the pages as they were before
//! the erase (and, after a passive checkpoint, keeps old frames past its write position). So the
//! erase ends with `PRAGMA wal_checkpoint(TRUNCATE)`: every page goes to the main file in its
//! erased form and the log is cut to zero bytes. It runs even when the person is unknown, so a
//! retried erase also finishes a checkpoint that an earlier one could not.
//!
//! The interactions of an org are scanned once per call (`anonymous_id` and `user_id` have no
//! index; erasures are rare and the scan is sequential).

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use crow_core::model::{Interaction, InteractionText, Millis, Session};
use crow_core::person::{Erasure, ErasureCounts, IdentityLink, JobScrub, PersonData, names_any, scrub_job_payload};
use crow_core::ports::{EventStore, PersonStore};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};

use super::{SqliteStore, configure};
use crate::error::StoreError;

/// The rows of one person, as found on one connection.
struct Found {
    person_id: String,
    ids: Vec<String>,
    /// Event ids, oldest first.
    events: Vec<String>,
    /// Session ids, sorted.
    sessions: Vec<String>,
    identities: Vec<IdentityLink>,
}

impl Found {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.sessions.is_empty() && self.identities.is_empty()
    }
}

/// `?2, ?3, ...`: one numbered placeholder per id (the org is `?1`), reusable in several `IN`s.
fn placeholders(n: usize) -> String {
    (0..n).map(|i| format!("?{}", i + 2)).collect::<Vec<_>>().join(", ")
}

/// The org and the ids as parameters for [`placeholders`].
fn org_and(org: &str, ids: &[String]) -> Vec<SqlValue> {
    std::iter::once(org.to_owned())
        .chain(ids.iter().cloned())
        .map(SqlValue::from)
        .collect()
}

/// Resolves `id` to its person and finds their rows.
fn find(conn: &Connection, org: &str, id: &str) -> Result<Found, StoreError> {
    let person_id: String = conn
        .prepare_cached("SELECT person_id FROM identities WHERE org_id = ?1 AND alias_id = ?2")?
        .query_row(params![org, id], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| id.to_owned());
    let mut ids: BTreeSet<String> = conn
        .prepare_cached("SELECT alias_id FROM identities WHERE org_id = ?1 AND person_id = ?2")?
        .query_map(params![org, person_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ids.insert(person_id.clone());
    let ids: Vec<String> = ids.into_iter().collect();
    let list = placeholders(ids.len());
    let args = org_and(org, &ids);

    let mut events = Vec::new();
    let mut sessions = BTreeSet::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT id, session_id FROM interactions WHERE org_id = ?1 AND (person_id IN ({list}) \
             OR anonymous_id IN ({list}) OR user_id IN ({list})) ORDER BY timestamp, id"
        ))?;
        let mut rows = stmt.query(params_from_iter(args.iter()))?;
        while let Some(r) = rows.next()? {
            events.push(r.get::<_, String>(0)?);
            if let Some(s) = r.get::<_, Option<String>>(1)? {
                sessions.insert(s);
            }
        }
    }
    // A session named by an event may be gone (refreshed away): keep only stored ones.
    let mut stored = conn.prepare_cached("SELECT 1 FROM sessions WHERE org_id = ?1 AND id = ?2")?;
    let mut kept = BTreeSet::new();
    for s in sessions {
        if stored.query_row(params![org, s], |_| Ok(())).optional()?.is_some() {
            kept.insert(s);
        }
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT id FROM sessions WHERE org_id = ?1 AND person_id IN ({list})"
    ))?;
    for s in stmt.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))? {
        kept.insert(s?);
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT alias_id, person_id, linked_at FROM identities WHERE org_id = ?1 \
         AND (alias_id IN ({list}) OR person_id IN ({list})) ORDER BY alias_id"
    ))?;
    let identities = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            Ok(IdentityLink {
                alias_id: r.get(0)?,
                person_id: r.get(1)?,
                linked_at: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Found {
        person_id,
        ids,
        events,
        sessions: kept.into_iter().collect(),
        identities,
    })
}

/// The text analyses of these events, by event id.
fn texts(conn: &Connection, org: &str, events: &[String]) -> Result<Vec<InteractionText>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT field, timestamp, analysis, embedding, analyzed_at FROM interaction_texts \
         WHERE org_id = ?1 AND event_id = ?2",
    )?;
    let mut sorted: Vec<&String> = events.iter().collect();
    sorted.sort();
    let mut out = Vec::new();
    for id in sorted {
        let row = stmt
            .query_row(params![org, id], |r| {
                let embedding: Option<Vec<u8>> = r.get(3)?;
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    embedding,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()?;
        if let Some((field, timestamp, analysis, embedding, analyzed_at)) = row {
            out.push(InteractionText {
                event_id: id.clone(),
                field,
                timestamp,
                analysis: serde_json::from_str(&analysis)?,
                embedding: embedding.map(|b| {
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect()
                }),
                analyzed_at,
            });
        }
    }
    Ok(out)
}

/// Deletes the person's rows and scrubs the queue and the step log (one savepoint of the
/// writer's transaction).
fn erase(conn: &Connection, org: &str, id: &str) -> Result<Option<Erasure>, StoreError> {
    let found = find(conn, org, id)?;
    if found.is_empty() {
        return Ok(None);
    }
    let mut counts = ErasureCounts::default();
    let mut stmt = conn.prepare_cached("DELETE FROM interaction_texts WHERE org_id = ?1 AND event_id = ?2")?;
    for e in &found.events {
        counts.texts += stmt.execute(params![org, e])? as u64;
    }
    let mut stmt = conn.prepare_cached("DELETE FROM interactions WHERE org_id = ?1 AND id = ?2")?;
    for e in &found.events {
        counts.interactions += stmt.execute(params![org, e])? as u64;
    }
    let mut stmt = conn.prepare_cached("DELETE FROM sessions WHERE org_id = ?1 AND id = ?2")?;
    for s in &found.sessions {
        counts.sessions += stmt.execute(params![org, s])? as u64;
    }
    let mut stmt = conn.prepare_cached("DELETE FROM identities WHERE org_id = ?1 AND alias_id = ?2")?;
    for l in &found.identities {
        counts.identities += stmt.execute(params![org, l.alias_id])? as u64;
    }

    let erased: HashSet<&str> = found.events.iter().map(String::as_str).collect();
    // Only payloads that mention the org can name its events.
    let org_json = serde_json::to_string(org)?;
    let jobs: Vec<(i64, String)> = conn
        .prepare_cached("SELECT id, payload FROM jobs WHERE instr(payload, ?1) > 0")?
        .query_map([org_json], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (job, payload) in jobs {
        let Ok(payload) = serde_json::from_str::<serde_json::Value>(&payload) else {
            continue;
        };
        match scrub_job_payload(&payload, org, &erased) {
            JobScrub::Keep => continue,
            JobScrub::Rewrite(p) => {
                conn.prepare_cached("UPDATE jobs SET payload = ?2 WHERE id = ?1")?
                    .execute(params![job, serde_json::to_string(&p)?])?;
            }
            JobScrub::Delete => {
                conn.prepare_cached("DELETE FROM jobs WHERE id = ?1")?.execute([job])?;
            }
        }
        counts.jobs += 1;
    }

    let mut needles = erased.clone();
    needles.extend(found.ids.iter().map(String::as_str));
    needles.extend(found.sessions.iter().map(String::as_str));
    let mut runs = BTreeSet::new();
    {
        let mut stmt = conn.prepare_cached("SELECT run_id, output FROM workflow_steps")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let run: String = r.get(0)?;
            if runs.contains(&run) {
                continue;
            }
            let names = match serde_json::from_str::<serde_json::Value>(r.get_ref(1)?.as_str()?) {
                Ok(v) => names_any(&v, &needles),
                // Not JSON: look for the needles as text.
                Err(_) => {
                    let text = r.get_ref(1)?.as_str()?;
                    needles.iter().any(|n| text.contains(n))
                }
            };
            if names {
                runs.insert(run);
            }
        }
    }
    let mut stmt = conn.prepare_cached("DELETE FROM workflow_steps WHERE run_id = ?1")?;
    for run in &runs {
        stmt.execute([run])?;
    }
    counts.workflow_runs = runs.len() as u64;

    Ok(Some(Erasure {
        person_id: found.person_id,
        ids: found.ids,
        event_ids: {
            let mut e = found.events;
            e.sort();
            e
        },
        counts,
    }))
}

/// Attempts at a truncating checkpoint before giving up (each waits up to the busy timeout).
const CHECKPOINT_ATTEMPTS: u32 = 5;

impl SqliteStore {
    /// Copies every page of the write-ahead log into the main file and truncates the log to zero
    /// bytes (`PRAGMA wal_checkpoint(TRUNCATE)`), on a connection of its own. Waits for readers
    /// and the writer to let it (the busy timeout, a few times); `Unavailable` when they never do.
    ///
    /// With `secure_delete` on (it always is), deleted rows are zeros in the main file, so after
    /// this no deleted byte is left in the database's files.
    pub async fn truncate_wal(&self) -> Result<(), StoreError> {
        let path = self.inner.path.clone();
        let config = self.inner.config.clone();
        tokio::task::spawn_blocking(move || {
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&conn, &config)?;
            for attempt in 1..=CHECKPOINT_ATTEMPTS {
                let (busy, log, done): (i64, i64, i64) =
                    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
                if busy == 0 {
                    tracing::debug!(log, done, attempt, "write-ahead log truncated");
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
            }
            Err(StoreError::Closed(
                "the write-ahead log could not be truncated: readers or the writer kept it busy; retry".into(),
            ))
        })
        .await
        .map_err(|e| StoreError::Internal(format!("checkpoint task failed: {e}")))?
    }

    /// [`PersonStore::erase_person`] with this crate's error type.
    pub async fn erase_person_now(&self, org_id: &str, id: &str) -> Result<Option<Erasure>, StoreError> {
        let (org, id) = (org_id.to_owned(), id.to_owned());
        let erased = self.write(1, move |conn| erase(conn, &org, &id)).await?;
        // Also when nothing was found: a retry finishes what a failed checkpoint left.
        self.truncate_wal().await?;
        if let Some(e) = &erased {
            tracing::debug!(
                interactions = e.counts.interactions,
                sessions = e.counts.sessions,
                identities = e.counts.identities,
                texts = e.counts.texts,
                jobs = e.counts.jobs,
                workflow_runs = e.counts.workflow_runs,
                "person erased"
            );
        }
        Ok(erased)
    }
}

#[async_trait::async_trait]
impl PersonStore for SqliteStore {
    async fn person_data(&self, org_id: &str, id: &str) -> crow_core::Result<Option<PersonData>> {
        let (org, id) = (org_id.to_owned(), id.to_owned());
        let found = self
            .read(move |conn| {
                let found = find(conn, &org, &id)?;
                let texts = texts(conn, &org, &found.events)?;
                Ok((found, texts))
            })
            .await?;
        let (found, texts) = found;
        if found.is_empty() {
            return Ok(None);
        }
        let interactions: Vec<Interaction> = self.get_interactions(org_id, &found.events).await?;
        let mut sessions: Vec<Session> = Vec::with_capacity(found.sessions.len());
        for s in &found.sessions {
            sessions.extend(self.get_session(org_id, s).await?);
        }
        sessions.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(Some(PersonData {
            person_id: found.person_id,
            ids: found.ids,
            identities: found.identities,
            interactions,
            sessions,
            texts,
        }))
    }

    async fn erase_person(&self, org_id: &str, id: &str, _now: Millis) -> crow_core::Result<Option<Erasure>> {
        Ok(self.erase_person_now(org_id, id).await?)
    }
}
