//! [`PersonStore`](crow_core::ports::PersonStore) on the SQL layer: a person's export and erasure
//! (GDPR articles 15 and 17).
//!
//! The person is resolved through `identities` (the root and every alias of it); their rows are
//! the interactions whose `person_id`, `anonymous_id` or `user_id` is one of those ids, the
//! sessions of those ids or of those interactions, the identity links of those ids and the
//! `interaction_texts` of those interactions. The ids go to SQL as one JSON list read with
//! `json_each`.
//!
//! Erasure reads who the person is, then deletes everything in **one** [`Sql::batch`] (atomic),
//! together with what the queue and the workflow step log say about them: the erased event ids
//! leave the payloads of the org's jobs (a job left naming no event is deleted), and workflow runs
//! whose step records name the person, their sessions or their events lose those records (a
//! resumed run redoes the steps). Every statement of the batch selects its rows itself, by the
//! person's ids: those read, and the aliases `identities` links to the person when the batch runs.
//! So an event or a link stored between the read and the batch is erased too, and the
//! [`Erasure`] reports what the batch deleted.
//!
//! What a backend keeping files must add (SQLite: `secure_delete`, then a truncating WAL
//! checkpoint) is the executor's: see [`SqliteStore::erase_person_now`](crate::SqliteStore::erase_person_now).
//!
//! The interactions of an org are scanned by each statement (`anonymous_id` and `user_id` have
//! no index; erasures are rare and the scan is sequential).

use std::collections::BTreeSet;

use crow_core::model::{InteractionText, Millis};
use crow_core::person::{Erasure, ErasureCounts, IdentityLink, PersonData};

use super::events::{INTERACTION_COLS, SESSION_COLS, interaction_from_row, session_from_row};
use super::{Row, Sql, SqlValue, Stmt};
use crate::error::StoreError;

/// The person `id` belongs to: the root it is linked to (else `id`), and every id of the person
/// (the root and its aliases), sorted.
async fn resolve<S: Sql + ?Sized>(db: &S, org_id: &str, id: &str) -> Result<(String, Vec<String>), StoreError> {
    let rows = db
        .query_point(
            Stmt::new(
                "WITH p(pid) AS (SELECT coalesce((SELECT person_id FROM identities \
                 WHERE org_id = ?1 AND alias_id = ?2), ?2)) \
                 SELECT p.pid AS pid, NULL AS alias FROM p \
                 UNION ALL SELECT p.pid AS pid, d.alias_id AS alias FROM p \
                 JOIN identities AS d ON d.org_id = ?1 AND d.person_id = p.pid",
            )
            .bind(org_id)
            .bind(id),
        )
        .await?;
    let person_id = match rows.first() {
        Some(r) => r.text(0)?,
        None => id.to_owned(),
    };
    let mut ids = BTreeSet::from([person_id.clone()]);
    for r in &rows {
        ids.extend(r.opt_text(1)?);
    }
    Ok((person_id, ids.into_iter().collect()))
}

/// SQL true for a row of `interactions` (aliased `alias`) that is the person's: its stitched
/// person, anonymous id or user id is one of `ids` (a subquery's text).
fn theirs(alias: &str, ids: &str) -> String {
    format!("({alias}.person_id IN ({ids}) OR {alias}.anonymous_id IN ({ids}) OR {alias}.user_id IN ({ids}))")
}

/// The ids of a read, bound as the JSON list `?2`.
const READ_IDS: &str = "SELECT value FROM json_each(?2)";

/// A text analysis read as `event_id, field, timestamp, analysis, embedding, analyzed_at`; the
/// embedding is little-endian f32.
fn text_of(row: &Row) -> Result<InteractionText, StoreError> {
    let embedding = match row.0.get(4) {
        None | Some(SqlValue::Null) => None,
        Some(_) => Some(
            row.blob(4)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
    };
    Ok(InteractionText {
        event_id: row.text(0)?,
        field: row.text(1)?,
        timestamp: row.i64(2)?,
        analysis: row.json(3)?,
        embedding,
        analyzed_at: row.i64(5)?,
    })
}

/// [`PersonStore::person_data`](crow_core::ports::PersonStore::person_data): everything held
/// about the person `id` belongs to (interactions oldest first, sessions by `started_at` then id,
/// links and texts by id); `None` when no interaction, session or link is theirs.
pub async fn person_data<S: Sql + ?Sized>(db: &S, org_id: &str, id: &str) -> Result<Option<PersonData>, StoreError> {
    let (person_id, ids) = resolve(db, org_id, id).await?;
    let read = |sql: String| Stmt::new(sql).bind(org_id).bind_list(&ids);
    let mine = theirs("i", READ_IDS);
    let interactions = db
        .query(read(format!(
            "SELECT {INTERACTION_COLS} FROM interactions AS i WHERE i.org_id = ?1 AND {mine} \
             ORDER BY i.timestamp, i.id"
        )))
        .await?
        .iter()
        .map(interaction_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let sessions = db
        .query(read(format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE org_id = ?1 AND (person_id IN ({READ_IDS}) \
             OR id IN (SELECT i.session_id FROM interactions AS i WHERE i.org_id = ?1 AND {mine})) \
             ORDER BY started_at, id"
        )))
        .await?
        .iter()
        .map(session_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let identities = db
        .query(read(format!(
            "SELECT alias_id AS alias_id, person_id AS person_id, linked_at AS linked_at FROM identities \
             WHERE org_id = ?1 AND (alias_id IN ({READ_IDS}) OR person_id IN ({READ_IDS})) ORDER BY alias_id"
        )))
        .await?
        .iter()
        .map(|r| {
            Ok(IdentityLink {
                alias_id: r.text(0)?,
                person_id: r.text(1)?,
                linked_at: r.i64(2)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if interactions.is_empty() && sessions.is_empty() && identities.is_empty() {
        return Ok(None);
    }
    let texts = if interactions.is_empty() {
        Vec::new()
    } else {
        db.query(read(format!(
            "SELECT x.event_id AS event_id, x.field AS field, x.timestamp AS timestamp, x.analysis AS analysis, \
             x.embedding AS embedding, x.analyzed_at AS analyzed_at FROM interaction_texts AS x \
             WHERE x.org_id = ?1 AND x.event_id IN \
             (SELECT i.id FROM interactions AS i WHERE i.org_id = ?1 AND {mine}) ORDER BY x.event_id"
        )))
        .await?
        .iter()
        .map(text_of)
        .collect::<Result<Vec<_>, _>>()?
    };
    Ok(Some(PersonData {
        person_id,
        ids,
        identities,
        interactions,
        sessions,
        texts,
    }))
}

/// The common table expressions of every erasure statement, over `?1` the org, `?2` the root
/// person and `?3` the ids read (a JSON list):
/// - `ids(v)`: the ids read and every alias linked to the root now;
/// - `ev(id, session_id)`: the person's interactions;
/// - `ses(id)`: their sessions (of their ids, or of their interactions).
fn erase_ctes() -> String {
    let mine = theirs("i", "SELECT v FROM ids");
    format!(
        "WITH ids(v) AS (SELECT value FROM json_each(?3) \
         UNION SELECT alias_id FROM identities WHERE org_id = ?1 AND person_id = ?2), \
         ev(id, session_id) AS (SELECT i.id, i.session_id FROM interactions AS i WHERE i.org_id = ?1 AND {mine}), \
         ses(id) AS (SELECT s.id FROM sessions AS s WHERE s.org_id = ?1 \
         AND (s.person_id IN (SELECT v FROM ids) OR s.id IN (SELECT session_id FROM ev)))"
    )
}

/// The queued or dead-lettered jobs of `?1` that name its erased events (`?4`: the org id as a
/// JSON string, a cheap filter before parsing): `touched(id, erased, total)`, how many of the
/// payload's `event_ids` are erased and how many it has. A payload that is not JSON is left
/// alone, as is one whose `org_id` is not `?1` or whose `event_ids` is not an array.
const TOUCHED: &str = ", touched(id, erased, total) AS (SELECT j.id, \
     (SELECT count(*) FROM json_each(CASE WHEN json_valid(j.payload) THEN j.payload ELSE 'null' END, \
     '$.event_ids') AS k WHERE k.type = 'text' AND k.value IN (SELECT id FROM ev)), \
     json_array_length(CASE WHEN json_valid(j.payload) THEN j.payload ELSE 'null' END, '$.event_ids') \
     FROM jobs AS j WHERE instr(j.payload, ?4) > 0 \
     AND json_type(CASE WHEN json_valid(j.payload) THEN j.payload ELSE 'null' END, '$.org_id') = 'text' \
     AND json_extract(CASE WHEN json_valid(j.payload) THEN j.payload ELSE 'null' END, '$.org_id') = ?1 \
     AND json_type(CASE WHEN json_valid(j.payload) THEN j.payload ELSE 'null' END, '$.event_ids') = 'array')";

/// The statements of an erasure, in order: jobs naming only erased events are deleted, the
/// others lose the erased ids; workflow runs naming the person are dropped; then the texts, the
/// sessions, the interactions (returning their ids) and the identity links (returning them).
fn erase_stmts(org_id: &str, person_id: &str, ids: &[String]) -> Result<Vec<Stmt>, StoreError> {
    let ctes = erase_ctes();
    let org_json = serde_json::to_string(org_id)?;
    let stmt = |sql: String| Stmt::new(sql).bind(org_id).bind(person_id).bind_list(ids);
    Ok(vec![
        stmt(format!(
            "{ctes}{TOUCHED} DELETE FROM jobs WHERE id IN (SELECT id FROM touched WHERE total > 0 AND erased = total)"
        ))
        .bind(org_json.clone()),
        // A JSON element keeps its kind (`json()` marks objects, arrays and booleans as JSON).
        stmt(format!(
            "{ctes}{TOUCHED} UPDATE jobs SET payload = json_set(payload, '$.event_ids', json((\
             SELECT json_group_array(CASE k.type WHEN 'object' THEN json(k.value) WHEN 'array' THEN json(k.value) \
             WHEN 'true' THEN json('true') WHEN 'false' THEN json('false') ELSE k.value END) \
             FROM json_each(jobs.payload, '$.event_ids') AS k \
             WHERE NOT (k.type = 'text' AND k.value IN (SELECT id FROM ev))))) \
             WHERE id IN (SELECT id FROM touched WHERE erased > 0)"
        ))
        .bind(org_json),
        // A run names the person when a string or an object key of a step's output is one of
        // their ids, events or sessions (an output that is not JSON: when it contains one).
        stmt(format!(
            "{ctes}, needles(n) AS (SELECT v FROM ids UNION SELECT id FROM ev UNION SELECT id FROM ses) \
             DELETE FROM workflow_steps WHERE run_id IN (SELECT w.run_id FROM workflow_steps AS w WHERE \
             CASE WHEN json_valid(w.output) THEN EXISTS (SELECT 1 FROM json_tree(w.output) AS t \
             WHERE (t.type = 'text' AND t.atom IN (SELECT n FROM needles)) \
             OR (typeof(t.key) = 'text' AND t.key IN (SELECT n FROM needles))) \
             ELSE EXISTS (SELECT 1 FROM needles WHERE instr(w.output, needles.n) > 0) END) \
             RETURNING run_id AS run_id"
        )),
        stmt(format!(
            "{ctes} DELETE FROM interaction_texts WHERE org_id = ?1 AND event_id IN (SELECT id FROM ev)"
        )),
        stmt(format!(
            "{ctes} DELETE FROM sessions WHERE org_id = ?1 AND id IN (SELECT id FROM ses)"
        )),
        stmt(format!(
            "{ctes} DELETE FROM interactions WHERE org_id = ?1 AND id IN (SELECT id FROM ev) RETURNING id AS event_id"
        )),
        stmt(format!(
            "{ctes} DELETE FROM identities WHERE org_id = ?1 \
             AND (alias_id IN (SELECT v FROM ids) OR person_id IN (SELECT v FROM ids)) \
             RETURNING alias_id AS alias_id, person_id AS person_id"
        )),
    ])
}

/// [`PersonStore::erase_person`](crow_core::ports::PersonStore::erase_person): deletes the person
/// `id` belongs to and scrubs the queue and the step log, in one batch. `None` when nothing is
/// held about them (then nothing is written). The caller's clock `now` is not needed.
pub async fn erase_person<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    id: &str,
    _now: Millis,
) -> Result<Option<Erasure>, StoreError> {
    let (person_id, ids) = resolve(db, org_id, id).await?;
    let mine = theirs("i", READ_IDS);
    let held = db
        .query(
            Stmt::new(format!(
                "SELECT EXISTS (SELECT 1 FROM interactions AS i WHERE i.org_id = ?1 AND {mine}) \
                 OR EXISTS (SELECT 1 FROM sessions WHERE org_id = ?1 AND person_id IN ({READ_IDS})) \
                 OR EXISTS (SELECT 1 FROM identities WHERE org_id = ?1 \
                 AND (alias_id IN ({READ_IDS}) OR person_id IN ({READ_IDS}))) AS held"
            ))
            .bind(org_id)
            .bind_list(&ids),
        )
        .await?;
    if !held.first().map(|r| r.bool(0)).transpose()?.unwrap_or(false) {
        return Ok(None);
    }
    let done = db.batch(erase_stmts(org_id, &person_id, &ids)?).await?;
    let [
        jobs_deleted,
        jobs_rewritten,
        steps,
        texts,
        sessions,
        interactions,
        identities,
    ] = done.as_slice()
    else {
        return Err(StoreError::Internal(format!(
            "an erasure batch answered {} results for 7 statements",
            done.len()
        )));
    };
    let runs = steps
        .rows
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let mut event_ids = interactions
        .rows
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    event_ids.sort();
    let mut all_ids: BTreeSet<String> = ids.into_iter().collect();
    for r in &identities.rows {
        if r.text(1)? == person_id {
            all_ids.insert(r.text(0)?);
        }
    }
    let counts = ErasureCounts {
        interactions: interactions.changes,
        sessions: sessions.changes,
        identities: identities.changes,
        texts: texts.changes,
        jobs: jobs_deleted.changes + jobs_rewritten.changes,
        workflow_runs: runs.len() as u64,
    };
    if counts == ErasureCounts::default() {
        // Erased in between by someone else.
        return Ok(None);
    }
    Ok(Some(Erasure {
        person_id,
        ids: all_ids.into_iter().collect(),
        event_ids,
        counts,
    }))
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use crow_core::model::Interaction;
    use crow_core::ports::{EventStore, NewJob};
    use serde_json::json;

    use super::*;
    use crate::sql::Done;
    use crate::{SqliteStore, StoreConfig};

    const ORG: &str = "org_a";

    fn track(id: &str, anon: &str, ts: i64) -> Interaction {
        serde_json::from_value(json!({
            "id": id, "org_id": ORG, "type": "track", "name": "Clicked",
            "anonymous_id": anon, "timestamp": ts, "received_at": ts,
        }))
        .unwrap()
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        (dir, s)
    }

    async fn payloads(s: &SqliteStore) -> Vec<String> {
        s.query(Stmt::new("SELECT payload FROM jobs ORDER BY id"))
            .await
            .unwrap()
            .iter()
            .map(|r| r.text(0).unwrap())
            .collect()
    }

    /// An executor that, once, stores an event (with its follow-up job) and a new alias of the
    /// person between the erasure's reads and its batch.
    struct Racy {
        inner: SqliteStore,
        raced: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl Sql for Racy {
        async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
            self.inner.query(stmt).await
        }

        async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Done>, StoreError> {
            let erasing = stmts.iter().any(|s| s.sql().contains("DELETE FROM identities"));
            if erasing && !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let job = NewJob::new(
                    "q",
                    "interaction",
                    json!({"org_id": ORG, "event_ids": ["late", "keep"]}),
                );
                self.inner
                    .append(ORG, vec![track("late", "anon-late", 50)], vec![job])
                    .await
                    .unwrap();
                self.inner.link_identity(ORG, "anon-late", "user-p", 60).await.unwrap();
            }
            self.inner.batch(stmts).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_is_stored_between_the_read_and_the_batch_is_erased_too() {
        let (_dir, inner) = store();
        inner
            .append(ORG, vec![track("e1", "anon-p", 10), track("q1", "anon-q", 20)], vec![])
            .await
            .unwrap();
        inner.link_identity(ORG, "anon-p", "user-p", 30).await.unwrap();
        let db = Racy {
            inner: inner.clone(),
            raced: false.into(),
        };
        let e = erase_person(&db, ORG, "anon-p", 100).await.unwrap().unwrap();
        assert_eq!(e.person_id, "user-p");
        assert_eq!(e.ids, ["anon-late", "anon-p", "user-p"], "the alias linked in between");
        assert_eq!(e.event_ids, ["e1", "late"], "the event stored in between");
        assert_eq!((e.counts.interactions, e.counts.identities, e.counts.jobs), (2, 2, 1));
        let left: Vec<serde_json::Value> = payloads(&inner)
            .await
            .iter()
            .map(|p| serde_json::from_str(p).unwrap())
            .collect();
        assert_eq!(left, [json!({"org_id": ORG, "event_ids": ["keep"]})]);
        assert_eq!(person_data(&inner, ORG, "anon-late").await.unwrap(), None);
        let q = person_data(&inner, ORG, "anon-q").await.unwrap().unwrap();
        assert_eq!(q.interactions.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn job_payloads_keep_every_other_element_and_odd_rows_are_handled() {
        let (_dir, s) = store();
        s.append(ORG, vec![track("e1", "anon-p", 10)], vec![]).await.unwrap();
        let raw = |sql: &'static str, v: &str| Stmt::new(sql).bind(v);
        let job = "INSERT INTO jobs (queue, kind, payload, enqueued_at) VALUES ('q', 'k', ?1, 0)";
        let step = "INSERT INTO workflow_steps (run_id, step, output, finished_at) VALUES (?1, 's', ?2, 0)";
        s.batch(vec![
            raw(
                job,
                r#"{"org_id":"org_a","event_ids":[5,"e1",{"a":[1,"e1"]},true,false,null,1.5,"e2"],"z":"e1"}"#,
            ),
            // Not JSON, though it names the org and the event: left alone.
            raw(job, r#"not json "org_a" e1"#),
            // Another org's job naming an event with the same id.
            raw(job, r#"{"org_id":"org_b","event_ids":["e1"]}"#),
            raw(step, "run-text").bind("plain text naming anon-p"),
            raw(step, "run-key").bind(r#"{"by_event":{"e1":1}}"#),
            raw(step, "run-none").bind(r#"{"anon-q":"e2","n":[1,2]}"#),
        ])
        .await
        .unwrap();
        let e = erase_person(&s, ORG, "anon-p", 100).await.unwrap().unwrap();
        assert_eq!((e.counts.jobs, e.counts.workflow_runs), (1, 2), "{:?}", e.counts);
        let kept: serde_json::Value = serde_json::from_str(&payloads(&s).await[0]).unwrap();
        assert_eq!(
            kept,
            json!({"org_id": "org_a", "event_ids": [5, {"a": [1, "e1"]}, true, false, null, 1.5, "e2"], "z": "e1"})
        );
        assert_eq!(
            payloads(&s).await[1..],
            [r#"not json "org_a" e1"#, r#"{"org_id":"org_b","event_ids":["e1"]}"#]
        );
        let runs: Vec<String> = s
            .query(Stmt::new("SELECT DISTINCT run_id FROM workflow_steps"))
            .await
            .unwrap()
            .iter()
            .map(|r| r.text(0).unwrap())
            .collect();
        assert_eq!(runs, ["run-none"]);
        assert_eq!(erase_person(&s, ORG, "anon-p", 101).await.unwrap(), None);
    }
}
