//! [`SocialStore`](crow_core::ports::SocialStore) on the SQL layer: `social_mentions`,
//! `social_duplicates` (links from a repeated post to the stored original) and `social_sources`
//! (each configured source's state).
//!
//! An id is stored at most once per org, in one of the two mention tables. [`store_mentions`]
//! is **one** atomic batch, with no read before it:
//! 1. the follow-up jobs, inserted only when some id of the call is in neither table yet
//!    (checked first in the batch, so it sees the tables as they were before the call: exactly
//!    "the call stores something", without a race between a read and the write);
//! 2. the mentions, `INSERT OR IGNORE … WHERE NOT EXISTS` a link with the same id, in the order
//!    given (so an id repeated in the call is stored once);
//! 3. the links, `INSERT OR IGNORE … WHERE NOT EXISTS` a mention with the same id (the
//!    mentions of step 2 included).
//!
//! `stored` and `duplicates` are the `changes()` of steps 2 and 3; every other mention or link
//! counts as `existing`. So a mention is never visible without its `analyze-social` job.
//!
//! SimHashes are `u64`s kept as the `i64` with the same bits; they (and the engagement counts,
//! capped at `i64::MAX`) are read as `CAST(… AS TEXT)`, since D1 returns integers through JSON
//! numbers, which round above 2^53.

use std::collections::{HashMap, HashSet};

use crow_core::model::{Engagement, MentionDuplicate, Millis, SocialMention};
use crow_core::ports::{MentionOutcome, MentionQuery, NewJob, Page, SourceState};
use serde::Serialize;
use serde_json::Value;

use super::queue::{JobRow, insert_jobs, insert_jobs_where};
use super::{CHUNK_BYTES, Row, Sql, SqlValue, Stmt, clamp_limit, decode_id_cursor, encode_id_cursor, json_chunks};
use crate::error::StoreError;

/// Columns [`mention_from_row`] reads, in order. The integers that may exceed 2^53 are read as
/// text (D1's JSON would round them).
const MENTION_COLS: &str = "id, org_id, platform, platform_id, source, query, author, text, url, language, \
     posted_at, fetched_at, CAST(likes AS TEXT) AS likes, CAST(reposts AS TEXT) AS reposts, \
     CAST(replies AS TEXT) AS replies, CAST(score AS TEXT) AS score, CAST(simhash AS TEXT) AS simhash, \
     lexicon_score, selected, sentiment, analysis";

const DUPLICATE_COLS: &str = "id, original_id, platform, url, distance, fetched_at";

/// Inserts the mentions of the JSON array `?1` (of [`MentionRow`]s) for org `?2`, in array
/// order, skipping ids stored before (in either table) or earlier in the array.
const INSERT_MENTIONS: &str = "INSERT OR IGNORE INTO social_mentions (id, org_id, platform, platform_id, source, \
     query, author, text, url, language, posted_at, fetched_at, likes, reposts, replies, score, simhash, \
     lexicon_score, selected, sentiment, analysis) \
     SELECT j.value ->> '$.id', ?2, j.value ->> '$.platform', j.value ->> '$.platform_id', \
     j.value ->> '$.source', j.value ->> '$.query', j.value ->> '$.author', j.value ->> '$.text', \
     j.value ->> '$.url', j.value ->> '$.language', j.value ->> '$.posted_at', j.value ->> '$.fetched_at', \
     j.value ->> '$.likes', j.value ->> '$.reposts', j.value ->> '$.replies', j.value ->> '$.score', \
     j.value ->> '$.simhash', j.value ->> '$.lexicon_score', j.value ->> '$.selected', \
     j.value ->> '$.sentiment', j.value ->> '$.analysis' \
     FROM json_each(?1) AS j \
     WHERE NOT EXISTS (SELECT 1 FROM social_duplicates AS d WHERE d.org_id = ?2 AND d.id = j.value ->> '$.id') \
     ORDER BY j.key";

/// Inserts the links of the JSON array `?1` (of [`MentionDuplicate`]s) for org `?2`, in array
/// order, skipping ids stored before (in either table, the mentions of this call included) or
/// earlier in the array.
const INSERT_DUPLICATES: &str = "INSERT OR IGNORE INTO social_duplicates (org_id, id, original_id, platform, url, \
     distance, fetched_at) \
     SELECT ?2, j.value ->> '$.id', j.value ->> '$.original_id', j.value ->> '$.platform', \
     j.value ->> '$.url', j.value ->> '$.distance', j.value ->> '$.fetched_at' \
     FROM json_each(?1) AS j \
     WHERE NOT EXISTS (SELECT 1 FROM social_mentions AS m WHERE m.org_id = ?2 AND m.id = j.value ->> '$.id') \
     ORDER BY j.key";

/// The guard of the follow-up jobs: some id of the JSON array `?3` is in neither table of org
/// `?4` (the condition of [`insert_jobs_where`], whose own parameters are `?1` and `?2`).
const JOBS_GUARD: &str = "EXISTS (SELECT 1 FROM json_each(?3) AS u \
     WHERE NOT EXISTS (SELECT 1 FROM social_mentions AS m WHERE m.org_id = ?4 AND m.id = u.value) \
     AND NOT EXISTS (SELECT 1 FROM social_duplicates AS d WHERE d.org_id = ?4 AND d.id = u.value))";

/// The `u64` SimHash as the `i64` with the same bits, and back.
fn simhash_to_sql(h: u64) -> i64 {
    h as i64
}

fn simhash_from_sql(v: i64) -> u64 {
    v as u64
}

/// An engagement count as SQLite's `i64` (counts beyond `i64::MAX` are capped).
fn count_to_sql(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn count_from_sql(n: Option<i64>) -> Option<u64> {
    n.map(|n| u64::try_from(n).unwrap_or(0))
}

/// A mention as one element of the JSON array [`INSERT_MENTIONS`] binds (its analysis
/// serialized to text, as stored).
#[derive(Debug, Serialize)]
struct MentionRow<'a> {
    id: &'a str,
    platform: &'a str,
    platform_id: &'a str,
    source: &'a str,
    query: Option<&'a str>,
    author: Option<&'a str>,
    text: &'a str,
    url: Option<&'a str>,
    language: Option<&'a str>,
    posted_at: Millis,
    fetched_at: Millis,
    likes: Option<i64>,
    reposts: Option<i64>,
    replies: Option<i64>,
    score: Option<i64>,
    simhash: Option<i64>,
    lexicon_score: Option<f64>,
    selected: i64,
    sentiment: Option<f64>,
    analysis: Option<String>,
}

impl<'a> MentionRow<'a> {
    fn new(m: &'a SocialMention) -> Result<MentionRow<'a>, StoreError> {
        let e = &m.engagement;
        Ok(MentionRow {
            id: &m.id,
            platform: &m.platform,
            platform_id: &m.platform_id,
            source: &m.source,
            query: m.query.as_deref(),
            author: m.author.as_deref(),
            text: &m.text,
            url: m.url.as_deref(),
            language: m.language.as_deref(),
            posted_at: m.posted_at,
            fetched_at: m.fetched_at,
            likes: count_to_sql(e.likes),
            reposts: count_to_sql(e.reposts),
            replies: count_to_sql(e.replies),
            score: e.score,
            simhash: m.simhash.map(simhash_to_sql),
            lexicon_score: m.lexicon_score.map(f64::from),
            selected: i64::from(m.selected),
            sentiment: m.sentiment.map(f64::from),
            analysis: m.analysis.as_ref().map(serde_json::to_string).transpose()?,
        })
    }
}

/// A mention row (columns [`MENTION_COLS`]).
fn mention_from_row(row: &Row) -> Result<SocialMention, StoreError> {
    let analysis = row
        .opt_text(20)?
        .map(|a| serde_json::from_str::<Value>(&a))
        .transpose()?;
    Ok(SocialMention {
        id: row.text(0)?,
        org_id: row.text(1)?,
        platform: row.text(2)?,
        platform_id: row.text(3)?,
        source: row.text(4)?,
        query: row.opt_text(5)?,
        author: row.opt_text(6)?,
        text: row.text(7)?,
        url: row.opt_text(8)?,
        language: row.opt_text(9)?,
        posted_at: row.i64(10)?,
        fetched_at: row.i64(11)?,
        engagement: Engagement {
            likes: count_from_sql(row.opt_i64(12)?),
            reposts: count_from_sql(row.opt_i64(13)?),
            replies: count_from_sql(row.opt_i64(14)?),
            score: row.opt_i64(15)?,
        },
        simhash: row.opt_i64(16)?.map(simhash_from_sql),
        lexicon_score: row.opt_f64(17)?.map(|v| v as f32),
        selected: row.bool(18)?,
        sentiment: row.opt_f64(19)?.map(|v| v as f32),
        analysis,
    })
}

fn duplicate_from_row(row: &Row) -> Result<MentionDuplicate, StoreError> {
    let distance = row.i64(4)?;
    Ok(MentionDuplicate {
        id: row.text(0)?,
        original_id: row.text(1)?,
        platform: row.text(2)?,
        url: row.opt_text(3)?,
        distance: u32::try_from(distance).map_err(|_| StoreError::Column {
            index: 4,
            reason: format!("distance {distance} out of range"),
        })?,
        fetched_at: row.i64(5)?,
    })
}

/// Mention cursor: `posted_at` and the id of the last mention of a page.
fn encode_mention_cursor(posted_at: i64, id: &str) -> String {
    encode_id_cursor(posted_at, id)
}

fn decode_mention_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    decode_id_cursor(cursor)
}

/// [`SocialStore::known_mentions`](crow_core::ports::SocialStore::known_mentions): which of
/// `ids` the org has, as mentions or as links, each once, in the order asked.
pub async fn known_mentions<S: Sql + ?Sized>(db: &S, org_id: &str, ids: &[String]) -> Result<Vec<String>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db
        .query_point(
            Stmt::new(
                "SELECT id FROM social_mentions WHERE org_id = ?1 AND id IN (SELECT value FROM json_each(?2)) \
                 UNION SELECT id FROM social_duplicates WHERE org_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
            )
            .bind(org_id)
            .bind_list(ids),
        )
        .await?;
    let mut known = rows.iter().map(|r| r.text(0)).collect::<Result<HashSet<_>, _>>()?;
    // Each known id once, at its first place in `ids`.
    Ok(ids.iter().filter(|id| known.remove(id.as_str())).cloned().collect())
}

/// [`SocialStore::store_mentions`](crow_core::ports::SocialStore::store_mentions): checks every
/// mention's org (`Invalid`, nothing stored), then stores the mentions, the links and (unless
/// the call stores nothing new) the follow-up jobs in one atomic batch.
pub async fn store_mentions<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    mentions: &[SocialMention],
    duplicates: &[MentionDuplicate],
    follow_up: Vec<NewJob>,
    now: Millis,
) -> Result<MentionOutcome, StoreError> {
    if let Some(i) = mentions.iter().position(|m| m.org_id != org_id) {
        let reason = format!("`{}` is not the org the mentions are stored for", mentions[i].org_id);
        return Err(StoreError::invalid(format!("mentions[{i}].org_id"), reason));
    }
    if mentions.is_empty() && duplicates.is_empty() && follow_up.is_empty() {
        return Ok(MentionOutcome::default());
    }
    let rows = mentions.iter().map(MentionRow::new).collect::<Result<Vec<_>, _>>()?;
    let jobs = JobRow::all(follow_up)?;
    let given = mentions.len() + duplicates.len();

    let mut stmts = Vec::new();
    if !jobs.is_empty() {
        stmts.push(if given == 0 {
            insert_jobs(&jobs, now, false)
        } else {
            // A re-run (every id given stored before) had its jobs enqueued then.
            let ids: Vec<&str> = mentions
                .iter()
                .map(|m| m.id.as_str())
                .chain(duplicates.iter().map(|d| d.id.as_str()))
                .collect();
            insert_jobs_where(&jobs, now, Some(JOBS_GUARD))
                .bind_list(&ids)
                .bind(org_id)
        });
    }
    let jobs_stmts = stmts.len();
    let mention_chunks = json_chunks(&rows, CHUNK_BYTES)?;
    let mention_stmts = mention_chunks.len();
    for chunk in mention_chunks {
        stmts.push(Stmt::new(INSERT_MENTIONS).bind(chunk).bind(org_id));
    }
    for chunk in json_chunks(duplicates, CHUNK_BYTES)? {
        stmts.push(Stmt::new(INSERT_DUPLICATES).bind(chunk).bind(org_id));
    }
    let done = db.batch(stmts).await?;
    let changed = |range: std::ops::Range<usize>| -> usize {
        done.get(range)
            .unwrap_or_default()
            .iter()
            .map(|d| usize::try_from(d.changes).unwrap_or(usize::MAX))
            .sum()
    };
    let stored = changed(jobs_stmts..jobs_stmts + mention_stmts);
    let linked = changed(jobs_stmts + mention_stmts..done.len());
    Ok(MentionOutcome {
        stored,
        existing: given.saturating_sub(stored + linked),
        duplicates: linked,
    })
}

/// [`SocialStore::mention_simhashes`](crow_core::ports::SocialStore::mention_simhashes):
/// `(id, simhash)` of the org's mentions posted at or after `since`, oldest first, then by id.
pub async fn mention_simhashes<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    since: Millis,
) -> Result<Vec<(String, u64)>, StoreError> {
    let rows = db
        .query(
            Stmt::new(
                "SELECT id, CAST(simhash AS TEXT) AS simhash FROM social_mentions WHERE org_id = ?1 \
                 AND posted_at >= ?2 AND simhash IS NOT NULL ORDER BY posted_at, id",
            )
            .bind(org_id)
            .bind(since),
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.text(0)?, simhash_from_sql(r.i64(1)?))))
        .collect()
}

/// [`SocialStore::get_mentions`](crow_core::ports::SocialStore::get_mentions): mentions by id,
/// in the order asked (an id asked twice comes twice); unknown ids (and links) are skipped.
pub async fn get_mentions<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    ids: &[String],
) -> Result<Vec<SocialMention>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db
        .query_point(
            Stmt::new(format!(
                "SELECT {MENTION_COLS} FROM social_mentions WHERE org_id = ?1 \
                 AND id IN (SELECT value FROM json_each(?2))"
            ))
            .bind(org_id)
            .bind_list(ids),
        )
        .await?;
    let found = rows
        .iter()
        .map(|r| mention_from_row(r).map(|m| (m.id.clone(), m)))
        .collect::<Result<HashMap<_, _>, _>>()?;
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

/// The statement of one page of [`list_mentions`] (newest first, ties by id, one row more than
/// `limit`).
fn list_mentions_stmt(org_id: &str, query: &MentionQuery, limit: usize) -> Result<Stmt, StoreError> {
    let cursor = query.cursor.as_deref().map(decode_mention_cursor).transpose()?;
    let mut sql = format!("SELECT {MENTION_COLS} FROM social_mentions WHERE org_id = ?");
    let mut params: Vec<SqlValue> = vec![org_id.into()];
    let mut filter = |clause: &str, v: SqlValue| {
        sql.push_str(clause);
        params.push(v);
    };
    if let Some(p) = &query.platform {
        filter(" AND platform = ?", p.into());
    }
    if let Some(s) = &query.source {
        filter(" AND source = ?", s.into());
    }
    if let Some(s) = query.selected {
        filter(" AND selected = ?", s.into());
    }
    if let Some(s) = query.since {
        filter(" AND posted_at >= ?", s.into());
    }
    if let Some(u) = query.until {
        filter(" AND posted_at < ?", u.into());
    }
    if let Some((t, id)) = cursor {
        // A row value, so the index range starts at the cursor instead of scanning up to it.
        filter(" AND (posted_at, id) < (?", t.into());
        filter(", ?)", id.into());
    }
    sql.push_str(" ORDER BY posted_at DESC, id DESC LIMIT ?");
    params.push(limit.saturating_add(1).into());
    Ok(params.into_iter().fold(Stmt::new(sql), Stmt::bind))
}

/// [`SocialStore::list_mentions`](crow_core::ports::SocialStore::list_mentions): newest first by
/// `posted_at`, then id; `limit` 0 means 50, else at most 1000.
pub async fn list_mentions<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    query: &MentionQuery,
) -> Result<Page<SocialMention>, StoreError> {
    let limit = clamp_limit(query.limit);
    let mut rows = db.query(list_mentions_stmt(org_id, query, limit)?).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let data = rows.iter().map(mention_from_row).collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if more {
        data.last().map(|m| encode_mention_cursor(m.posted_at, &m.id))
    } else {
        None
    };
    Ok(Page { data, next_cursor })
}

/// [`SocialStore::list_duplicates`](crow_core::ports::SocialStore::list_duplicates): newest
/// first by `fetched_at`, then id; of one original when `original_id` is given.
pub async fn list_duplicates<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    original_id: Option<&str>,
    limit: u32,
) -> Result<Vec<MentionDuplicate>, StoreError> {
    // Two statements rather than `(?3 IS NULL OR original_id = ?3)`, which defeats the index.
    let original_clause = if original_id.is_some() {
        "original_id = ?3"
    } else {
        "?3 IS NULL"
    };
    let rows = db
        .query(
            Stmt::new(format!(
                "SELECT {DUPLICATE_COLS} FROM social_duplicates WHERE org_id = ?1 AND {original_clause} \
                 ORDER BY fetched_at DESC, id DESC LIMIT ?2"
            ))
            .bind(org_id)
            .bind(clamp_limit(limit))
            .bind(original_id),
        )
        .await?;
    rows.iter().map(duplicate_from_row).collect()
}

/// [`SocialStore::set_mention_analysis`](crow_core::ports::SocialStore::set_mention_analysis):
/// `NotFound` for an id that is not a stored mention (a link's id included).
pub async fn set_mention_analysis<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    id: &str,
    sentiment: Option<f32>,
    analysis: &Value,
) -> Result<(), StoreError> {
    let analysis = serde_json::to_string(analysis)?;
    let done = db
        .execute(
            Stmt::new("UPDATE social_mentions SET sentiment = ?3, analysis = ?4 WHERE org_id = ?1 AND id = ?2")
                .bind(org_id)
                .bind(id)
                .bind(sentiment.map(f64::from))
                .bind(analysis),
        )
        .await?;
    if done.changes == 0 {
        return Err(StoreError::NotFound(format!("mention {id}")));
    }
    Ok(())
}

/// [`SocialStore::source_state`](crow_core::ports::SocialStore::source_state): `None` before
/// the source's first run.
pub async fn source_state<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    source: &str,
) -> Result<Option<SourceState>, StoreError> {
    let row = db
        .query_one(
            Stmt::new(
                "SELECT cursor, last_run_at, last_success_at, last_error FROM social_sources \
                 WHERE org_id = ?1 AND source = ?2",
            )
            .bind(org_id)
            .bind(source),
        )
        .await?;
    row.map(|r| {
        Ok(SourceState {
            cursor: r.opt_text(0)?,
            last_run_at: r.opt_i64(1)?,
            last_success_at: r.opt_i64(2)?,
            last_error: r.opt_text(3)?,
        })
    })
    .transpose()
}

/// [`SocialStore::set_source_state`](crow_core::ports::SocialStore::set_source_state): replaces
/// the source's state.
pub async fn set_source_state<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    source: &str,
    state: &SourceState,
) -> Result<(), StoreError> {
    db.execute(
        Stmt::new(
            "INSERT INTO social_sources (org_id, source, cursor, last_run_at, last_success_at, last_error) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (org_id, source) DO UPDATE SET \
             cursor = excluded.cursor, last_run_at = excluded.last_run_at, \
             last_success_at = excluded.last_success_at, last_error = excluded.last_error",
        )
        .bind(org_id)
        .bind(source)
        .bind(state.cursor.as_deref())
        .bind(state.last_run_at)
        .bind(state.last_success_at)
        .bind(state.last_error.as_deref()),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simhashes_keep_their_bits_and_cursors_round_trip() {
        for h in [0, 1, u64::MAX, 1 << 63, (1 << 63) - 1, 0xDEAD_BEEF_0000_0001] {
            assert_eq!(simhash_from_sql(simhash_to_sql(h)), h);
        }
        assert!(simhash_to_sql(1 << 63) < 0);
        assert_eq!(count_to_sql(Some(u64::MAX)), Some(i64::MAX));
        assert_eq!(count_from_sql(Some(-1)), Some(0));
        for (t, id) in [(0, "bluesky:at://did.plc/1"), (-5, "rss:é.x"), (1_700_000_000_000, "")] {
            assert_eq!(
                decode_mention_cursor(&encode_mention_cursor(t, id)).unwrap(),
                (t, id.to_owned())
            );
        }
        for bad in ["", "x", "1.zz", "a.00"] {
            assert!(decode_mention_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_chunks_hold_at_least_one_row_and_stay_under_the_limit() {
        let rows: Vec<String> = (0..10).map(|i| format!("row-{i}")).collect();
        assert_eq!(
            json_chunks(&rows, 1 << 20).unwrap(),
            [serde_json::to_string(&rows).unwrap()]
        );
        let tiny = json_chunks(&rows, 1).unwrap();
        assert_eq!(tiny.len(), 10);
        assert_eq!(tiny[9], r#"["row-9"]"#);
        let three = json_chunks(&rows, 26).unwrap();
        assert!(three.iter().all(|c| c.len() <= 26), "{three:?}");
        let back: Vec<String> = three
            .iter()
            .flat_map(|c| serde_json::from_str::<Vec<String>>(c).unwrap())
            .collect();
        assert_eq!(back, rows);
        assert!(json_chunks::<String>(&[], 10).unwrap().is_empty());
    }

    #[cfg(feature = "sqlite")]
    mod on_sqlite {
        use crow_core::testing::{sample_duplicate as dup, sample_mention as mention};

        use super::*;
        use crate::{SqliteStore, StoreConfig};

        const ORG: &str = "org_a";

        fn open() -> (tempfile::TempDir, SqliteStore) {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
            (dir, store)
        }

        async fn jobs(store: &SqliteStore) -> usize {
            store.query(Stmt::new("SELECT id FROM jobs")).await.unwrap().len()
        }

        fn job() -> Vec<NewJob> {
            vec![NewJob::new("social", "analyze-social", serde_json::json!({"n": 1}))]
        }

        /// Integers above 2^53 (SimHashes, capped engagement counts) keep every bit: they are
        /// read as text, which D1's JSON cannot round.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn big_integers_round_trip_exactly() {
            let (_dir, store) = open();
            let hashes = [(1u64 << 53) + 1, u64::MAX, 1 << 63, (1 << 63) + 1, u64::MAX - 2, 0];
            let mut given = Vec::new();
            for (n, h) in (1u32..).zip(hashes) {
                let mut m = mention(ORG, "bluesky", n, i64::from(n) * 1_000);
                m.simhash = Some(h);
                m.engagement.likes = Some(u64::MAX);
                m.engagement.reposts = Some((1 << 53) + 3);
                m.engagement.score = Some(i64::MIN + 1);
                m.lexicon_score = Some(0.1);
                m.sentiment = Some(-1.0 / 3.0);
                given.push(m);
            }
            let out = store_mentions(&store, ORG, &given, &[], vec![], 1).await.unwrap();
            assert_eq!(out.stored, hashes.len());
            let got = mention_simhashes(&store, ORG, 0).await.unwrap();
            let want: Vec<(String, u64)> = given.iter().map(|m| (m.id.clone(), m.simhash.unwrap())).collect();
            assert_eq!(got, want);
            let ids: Vec<String> = given.iter().map(|m| m.id.clone()).collect();
            let back = get_mentions(&store, ORG, &ids).await.unwrap();
            let mut capped = given.clone();
            for m in &mut capped {
                m.engagement.likes = Some(i64::MAX as u64);
            }
            assert_eq!(back, capped);
            let raw = store
                .query(Stmt::new("SELECT typeof(simhash), typeof(likes) FROM social_mentions"))
                .await
                .unwrap();
            assert!(
                raw.iter()
                    .all(|r| r.text(0).unwrap() == "integer" && r.text(1).unwrap() == "integer")
            );
        }

        /// The jobs are enqueued exactly when the call stores a mention or a link, whichever
        /// of the two tables an id was known in.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn jobs_follow_whatever_is_stored_new() {
            let (_dir, store) = open();
            let (m1, m2) = (mention(ORG, "x", 1, 1_000), mention(ORG, "x", 2, 2_000));
            let l1 = dup("y:1", "x:1", 1_500);
            let out = store_mentions(
                &store,
                ORG,
                std::slice::from_ref(&m1),
                std::slice::from_ref(&l1),
                job(),
                1,
            )
            .await
            .unwrap();
            assert_eq!((out.stored, out.existing, out.duplicates), (1, 0, 1));
            assert_eq!(jobs(&store).await, 1);
            // everything known: a re-run
            let out = store_mentions(
                &store,
                ORG,
                std::slice::from_ref(&m1),
                std::slice::from_ref(&l1),
                job(),
                2,
            )
            .await
            .unwrap();
            assert_eq!((out.stored, out.existing, out.duplicates), (0, 2, 0));
            assert_eq!(jobs(&store).await, 1);
            // only a new link
            let l2 = dup("y:2", "x:1", 1_600);
            let out = store_mentions(&store, ORG, std::slice::from_ref(&m1), &[l1.clone(), l2], job(), 3)
                .await
                .unwrap();
            assert_eq!((out.stored, out.existing, out.duplicates), (0, 2, 1));
            assert_eq!(jobs(&store).await, 2);
            // a mention whose id is a stored link, and a link whose id is a mention not stored yet
            let mut as_mention = mention(ORG, "y", 1, 3_000);
            as_mention.id = l1.id.clone();
            let link_of_m2 = dup(&m2.id, "x:1", 1_700);
            let out = store_mentions(&store, ORG, &[as_mention], std::slice::from_ref(&link_of_m2), job(), 4)
                .await
                .unwrap();
            assert_eq!((out.stored, out.existing, out.duplicates), (0, 1, 1));
            assert_eq!(jobs(&store).await, 3);
            // the link stored just now makes the mention with its id existing; repeats count once
            let out = store_mentions(&store, ORG, &[m2.clone(), m2], &[link_of_m2], job(), 5)
                .await
                .unwrap();
            assert_eq!((out.stored, out.existing, out.duplicates), (0, 3, 0));
            assert_eq!(jobs(&store).await, 3);
            // jobs alone are enqueued
            store_mentions(&store, ORG, &[], &[], job(), 6).await.unwrap();
            assert_eq!(jobs(&store).await, 4);
        }

        /// A call larger than one statement's JSON goes as several statements of one batch and
        /// counts as one statement would.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_chunked_store_counts_across_chunks() {
            let (_dir, store) = open();
            let mut given: Vec<SocialMention> = (0..40)
                .map(|n| {
                    let mut m = mention(ORG, "big", n, i64::from(n));
                    m.text = "é".repeat(20_000);
                    m
                })
                .collect();
            assert!(
                json_chunks(
                    &given.iter().map(|m| MentionRow::new(m).unwrap()).collect::<Vec<_>>(),
                    CHUNK_BYTES
                )
                .unwrap()
                .len()
                    > 1
            );
            given.push(given[0].clone());
            let links: Vec<MentionDuplicate> = (0..3).map(|n| dup(&format!("big:{n}"), "big:0", 5)).collect();
            let out = store_mentions(&store, ORG, &given, &links, job(), 1).await.unwrap();
            assert_eq!((out.stored, out.existing, out.duplicates), (40, 4, 0));
            assert_eq!(jobs(&store).await, 1);
            let page = list_mentions(
                &store,
                ORG,
                &MentionQuery {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(page.data.len(), 40);
            assert_eq!(page.data[0].text, given[39].text);
        }
    }
}
