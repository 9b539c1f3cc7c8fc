//! [`SocialStore`] over SQLite: `social_mentions`, `social_duplicates` (links from a repeated
//! post to the stored original) and `social_sources` (each configured source's state).
//!
//! An id is stored at most once per org, in one of the two mention tables: `store_mentions`
//! checks the other table, then inserts with `INSERT OR IGNORE`, all inside the writer's group
//! transaction together with the follow-up jobs, so a mention is never visible without its
//! `analyze-social` job. SimHashes are `u64`s kept as the `i64` with the same bits.

use std::collections::HashSet;

use crow_core::model::{Engagement, MentionDuplicate, Millis, SocialMention};
use crow_core::ports::{MentionOutcome, MentionQuery, NewJob, Page, SocialStore, SourceState};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::Value;

use super::queue::{JobRow, insert_jobs};
use super::{SqliteStore, clamp_limit, decode_id_cursor, encode_id_cursor};
use crate::error::StoreError;

/// Columns [`mention_from_row`] reads, in order.
const MENTION_COLS: &str = "id, org_id, platform, platform_id, source, query, author, text, url, language, \
     posted_at, fetched_at, likes, reposts, replies, score, simhash, lexicon_score, selected, sentiment, analysis";

const INSERT_MENTION: &str = "INSERT OR IGNORE INTO social_mentions (id, org_id, platform, platform_id, source, \
     query, author, text, url, language, posted_at, fetched_at, likes, reposts, replies, score, simhash, \
     lexicon_score, selected, sentiment, analysis) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)";

const INSERT_DUPLICATE: &str = "INSERT OR IGNORE INTO social_duplicates (org_id, id, original_id, platform, url, \
     distance, fetched_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const IS_MENTION: &str = "SELECT 1 FROM social_mentions WHERE org_id = ?1 AND id = ?2";
const IS_DUPLICATE: &str = "SELECT 1 FROM social_duplicates WHERE org_id = ?1 AND id = ?2";

const DUPLICATE_COLS: &str = "id, original_id, platform, url, distance, fetched_at";

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

/// A mention ready to insert: its analysis serialized by the caller's task.
struct MentionRow {
    mention: SocialMention,
    analysis: Option<String>,
}

/// A mention row (columns [`MENTION_COLS`]); the outer error is SQLite's, the inner the
/// analysis JSON's.
fn mention_from_row(row: &Row<'_>) -> rusqlite::Result<Result<SocialMention, StoreError>> {
    let analysis = match row.get_ref(20)?.as_str_or_null()?.map(serde_json::from_str::<Value>) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => return Ok(Err(e.into())),
    };
    Ok(Ok(SocialMention {
        id: row.get(0)?,
        org_id: row.get(1)?,
        platform: row.get(2)?,
        platform_id: row.get(3)?,
        source: row.get(4)?,
        query: row.get(5)?,
        author: row.get(6)?,
        text: row.get(7)?,
        url: row.get(8)?,
        language: row.get(9)?,
        posted_at: row.get(10)?,
        fetched_at: row.get(11)?,
        engagement: Engagement {
            likes: count_from_sql(row.get(12)?),
            reposts: count_from_sql(row.get(13)?),
            replies: count_from_sql(row.get(14)?),
            score: row.get(15)?,
        },
        simhash: row.get::<_, Option<i64>>(16)?.map(simhash_from_sql),
        lexicon_score: row.get::<_, Option<f64>>(17)?.map(|v| v as f32),
        selected: row.get(18)?,
        sentiment: row.get::<_, Option<f64>>(19)?.map(|v| v as f32),
        analysis,
    }))
}

fn duplicate_from_row(row: &Row<'_>) -> rusqlite::Result<MentionDuplicate> {
    Ok(MentionDuplicate {
        id: row.get(0)?,
        original_id: row.get(1)?,
        platform: row.get(2)?,
        url: row.get(3)?,
        distance: row.get(4)?,
        fetched_at: row.get(5)?,
    })
}

/// Stores the mentions, then the links, in the order given; an id already stored in either
/// table (or earlier in this call) counts as `existing` and is left as it was.
fn insert_mentions(
    conn: &Connection,
    org_id: &str,
    mentions: &[MentionRow],
    duplicates: &[MentionDuplicate],
) -> Result<MentionOutcome, StoreError> {
    let mut is_mention = conn.prepare_cached(IS_MENTION)?;
    let mut is_duplicate = conn.prepare_cached(IS_DUPLICATE)?;
    let mut out = MentionOutcome::default();
    if !mentions.is_empty() {
        let mut insert = conn.prepare_cached(INSERT_MENTION)?;
        for MentionRow { mention: m, analysis } in mentions {
            if is_duplicate.exists(params![org_id, m.id])? {
                out.existing += 1;
                continue;
            }
            let e = &m.engagement;
            let n = insert.execute(params![
                m.id,
                org_id,
                m.platform,
                m.platform_id,
                m.source,
                m.query,
                m.author,
                m.text,
                m.url,
                m.language,
                m.posted_at,
                m.fetched_at,
                count_to_sql(e.likes),
                count_to_sql(e.reposts),
                count_to_sql(e.replies),
                e.score,
                m.simhash.map(simhash_to_sql),
                m.lexicon_score.map(f64::from),
                m.selected,
                m.sentiment.map(f64::from),
                analysis,
            ])?;
            if n == 0 {
                out.existing += 1;
            } else {
                out.stored += 1;
            }
        }
    }
    if !duplicates.is_empty() {
        let mut insert = conn.prepare_cached(INSERT_DUPLICATE)?;
        for d in duplicates {
            if is_mention.exists(params![org_id, d.id])? {
                out.existing += 1;
                continue;
            }
            let n = insert.execute(params![
                org_id,
                d.id,
                d.original_id,
                d.platform,
                d.url,
                d.distance,
                d.fetched_at
            ])?;
            if n == 0 {
                out.existing += 1;
            } else {
                out.duplicates += 1;
            }
        }
    }
    Ok(out)
}

/// Mention cursor: `posted_at` and the id of the last mention of a page.
fn encode_mention_cursor(posted_at: i64, id: &str) -> String {
    encode_id_cursor(posted_at, id)
}

fn decode_mention_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    decode_id_cursor(cursor)
}

/// The SQL and parameters of one page of [`SocialStore::list_mentions`] (newest first, ties by
/// id, one row more than `limit`).
fn list_mentions_sql(org_id: &str, query: &MentionQuery, limit: usize) -> Result<(String, Vec<SqlValue>), StoreError> {
    let cursor = query.cursor.as_deref().map(decode_mention_cursor).transpose()?;
    let mut sql = format!("SELECT {MENTION_COLS} FROM social_mentions WHERE org_id = ?");
    let mut params: Vec<SqlValue> = vec![org_id.to_owned().into()];
    let mut filter = |clause: &str, v: SqlValue| {
        sql.push_str(clause);
        params.push(v);
    };
    if let Some(p) = &query.platform {
        filter(" AND platform = ?", p.clone().into());
    }
    if let Some(s) = &query.source {
        filter(" AND source = ?", s.clone().into());
    }
    if let Some(s) = query.selected {
        filter(" AND selected = ?", i64::from(s).into());
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
    params.push((limit as i64 + 1).into());
    Ok((sql, params))
}

#[async_trait::async_trait]
impl SocialStore for SqliteStore {
    async fn known_mentions(&self, org_id: &str, ids: &[String]) -> crow_core::Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let org = org_id.to_owned();
        let ids = ids.to_vec();
        Ok(self.read_point(move |conn| {
            let mut is_mention = conn.prepare_cached(IS_MENTION)?;
            let mut is_duplicate = conn.prepare_cached(IS_DUPLICATE)?;
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for id in &ids {
                if !seen.contains(id.as_str())
                    && (is_mention.exists(params![org, id])? || is_duplicate.exists(params![org, id])?)
                {
                    seen.insert(id.as_str());
                    out.push(id.clone());
                }
            }
            Ok(out)
        })?)
    }

    async fn store_mentions(
        &self,
        org_id: &str,
        mentions: &[SocialMention],
        duplicates: &[MentionDuplicate],
        follow_up: Vec<NewJob>,
        now: Millis,
    ) -> crow_core::Result<MentionOutcome> {
        if let Some(i) = mentions.iter().position(|m| m.org_id != org_id) {
            let reason = format!("`{}` is not the org the mentions are stored for", mentions[i].org_id);
            return Err(StoreError::invalid(format!("mentions[{i}].org_id"), reason).into());
        }
        if mentions.is_empty() && duplicates.is_empty() && follow_up.is_empty() {
            return Ok(MentionOutcome::default());
        }
        let rows = mentions
            .iter()
            .map(|m| {
                let analysis = m.analysis.as_ref().map(serde_json::to_string).transpose()?;
                Ok(MentionRow {
                    mention: m.clone(),
                    analysis,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let duplicates = duplicates.to_vec();
        let jobs = follow_up.into_iter().map(JobRow::new).collect::<Result<Vec<_>, _>>()?;
        let org = org_id.to_owned();
        let weight = rows.len() + duplicates.len() + jobs.len();
        Ok(self
            .write(weight, move |conn| {
                let out = insert_mentions(conn, &org, &rows, &duplicates)?;
                // A re-run (everything given was stored before) had its jobs enqueued then.
                if out.stored + out.duplicates > 0 || out.existing == 0 {
                    insert_jobs(conn, &jobs, now)?;
                }
                Ok(out)
            })
            .await?)
    }

    async fn mention_simhashes(&self, org_id: &str, since: Millis) -> crow_core::Result<Vec<(String, u64)>> {
        let org = org_id.to_owned();
        Ok(self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, simhash FROM social_mentions WHERE org_id = ?1 AND posted_at >= ?2 \
                     AND simhash IS NOT NULL ORDER BY posted_at, id",
                )?;
                let rows = stmt
                    .query_map(params![org, since], |r| {
                        Ok((r.get::<_, String>(0)?, simhash_from_sql(r.get(1)?)))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn get_mentions(&self, org_id: &str, ids: &[String]) -> crow_core::Result<Vec<SocialMention>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let org = org_id.to_owned();
        let ids = ids.to_vec();
        Ok(self.read_point(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {MENTION_COLS} FROM social_mentions WHERE org_id = ?1 AND id = ?2"
            ))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(m) = stmt.query_row(params![org, id], mention_from_row).optional()? {
                    out.push(m?);
                }
            }
            Ok(out)
        })?)
    }

    async fn list_mentions(&self, org_id: &str, query: &MentionQuery) -> crow_core::Result<Page<SocialMention>> {
        let limit = clamp_limit(query.limit);
        let (sql, params) = list_mentions_sql(org_id, query, limit)?;
        Ok(self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query(params_from_iter(params))?;
                let mut data: Vec<SocialMention> = Vec::with_capacity(limit.min(64));
                let mut more = false;
                while let Some(row) = rows.next()? {
                    if data.len() == limit {
                        more = true;
                        break;
                    }
                    data.push(mention_from_row(row)??);
                }
                let next_cursor = if more {
                    data.last().map(|m| encode_mention_cursor(m.posted_at, &m.id))
                } else {
                    None
                };
                Ok(Page { data, next_cursor })
            })
            .await?)
    }

    async fn list_duplicates(
        &self,
        org_id: &str,
        original_id: Option<&str>,
        limit: u32,
    ) -> crow_core::Result<Vec<MentionDuplicate>> {
        let limit = clamp_limit(limit) as i64;
        let org = org_id.to_owned();
        let original = original_id.map(str::to_owned);
        Ok(self
            .read(move |conn| {
                // Two statements rather than `(?3 IS NULL OR original_id = ?3)`, which defeats the index.
                let original_clause = if original.is_some() {
                    "original_id = ?3"
                } else {
                    "?3 IS NULL"
                };
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {DUPLICATE_COLS} FROM social_duplicates WHERE org_id = ?1 AND {original_clause} \
                     ORDER BY fetched_at DESC, id DESC LIMIT ?2"
                ))?;
                let rows = stmt
                    .query_map(params![org, limit, original], duplicate_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn set_mention_analysis(
        &self,
        org_id: &str,
        id: &str,
        sentiment: Option<f32>,
        analysis: &Value,
    ) -> crow_core::Result<()> {
        let analysis = serde_json::to_string(analysis).map_err(StoreError::from)?;
        let (org, id) = (org_id.to_owned(), id.to_owned());
        Ok(self
            .write(1, move |conn| {
                let n = conn
                    .prepare_cached(
                        "UPDATE social_mentions SET sentiment = ?3, analysis = ?4 WHERE org_id = ?1 AND id = ?2",
                    )?
                    .execute(params![org, id, sentiment.map(f64::from), analysis])?;
                if n == 0 {
                    return Err(StoreError::NotFound(format!("mention {id}")));
                }
                Ok(())
            })
            .await?)
    }

    async fn source_state(&self, org_id: &str, source: &str) -> crow_core::Result<Option<SourceState>> {
        let (org, source) = (org_id.to_owned(), source.to_owned());
        Ok(self.read_point(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT cursor, last_run_at, last_success_at, last_error FROM social_sources \
                     WHERE org_id = ?1 AND source = ?2",
                )?
                .query_row(params![org, source], |r| {
                    Ok(SourceState {
                        cursor: r.get(0)?,
                        last_run_at: r.get(1)?,
                        last_success_at: r.get(2)?,
                        last_error: r.get(3)?,
                    })
                })
                .optional()?)
        })?)
    }

    async fn set_source_state(&self, org_id: &str, source: &str, state: &SourceState) -> crow_core::Result<()> {
        let (org, source, state) = (org_id.to_owned(), source.to_owned(), state.clone());
        Ok(self
            .write(1, move |conn| {
                conn.prepare_cached(
                    "INSERT INTO social_sources (org_id, source, cursor, last_run_at, last_success_at, last_error) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (org_id, source) DO UPDATE SET \
                     cursor = excluded.cursor, last_run_at = excluded.last_run_at, \
                     last_success_at = excluded.last_success_at, last_error = excluded.last_error",
                )?
                .execute(params![
                    org,
                    source,
                    state.cursor,
                    state.last_run_at,
                    state.last_success_at,
                    state.last_error
                ])?;
                Ok(())
            })
            .await?)
    }
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
}
