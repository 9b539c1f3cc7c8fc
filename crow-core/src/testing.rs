//! In-memory implementations of the ports, for tests and examples (feature `testing`).
//!
//! They follow each port's written contract, so a test written against them holds for the
//! embedded backends (crow-store) and the Worker's too:
//!
//! - [`MemoryStore`]: [`EventStore`], [`AccountStore`], [`CatalogStore`], [`SocialStore`],
//!   [`VideoStore`], [`JobQueue`] and [`WorkflowStore`] on one struct (like crow-store's SQLite store), behind
//!   one lock, so `append` and `store_mentions` commit together with their follow-up jobs.
//! - [`MemoryBlobStore`]: [`BlobStore`] over a sorted map.
//! - [`FakeTextAnalyzer`]: [`TextAnalyzer`] with a tiny word list and `@handle` entities.
//! - [`HashEmbedder`]: [`Embedder`] by hashed bag of words, L2-normalized.
//! - [`BruteForceIndex`]: [`VectorIndex`] by exhaustive search (the recall reference).
//! - [`VecFrameSource`] and [`FixedFrameAnalyzer`]: [`FrameSource`] and [`FrameAnalyzer`].
//!
//! Everything is std only (a [`Mutex`] per struct) and deterministic, and compiles for
//! `wasm32-unknown-unknown`. Durability is trivially "until the value is dropped".
//!
//! ```
//! use crow_core::model::{EventType, Interaction};
//! use crow_core::ports::{EventStore, InteractionQuery};
//! use crow_core::testing::MemoryStore;
//!
//! # futures::executor::block_on(async {
//! let store = MemoryStore::new();
//! let ev = Interaction {
//!     id: "e1".into(), org_id: "org_a".into(), event_type: EventType::Page, name: None,
//!     anonymous_id: Some("anon".into()), user_id: None, session_id: None, group_id: None,
//!     previous_id: None, properties: Default::default(), traits: Default::default(),
//!     context: Default::default(), timestamp: 1_000, original_timestamp: None, sent_at: None,
//!     received_at: 1_000, source: Default::default(), is_bot: false, pii_scrubbed: 0,
//!     person_id: None, referrer_class: None, analysis: None,
//! };
//! let first = store.append("org_a", vec![ev.clone()], vec![]).await.unwrap();
//! let again = store.append("org_a", vec![ev], vec![]).await.unwrap();
//! assert_eq!((first.inserted, again.duplicates), (1, 1));
//! let page = store.list_interactions("org_a", &InteractionQuery { limit: 10, ..Default::default() }).await.unwrap();
//! assert_eq!(page.data.len(), 1);
//! # });
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use crate::keys::{self, NewOrgKeys};
use crate::model::*;
use crate::ports::*;
use crate::{Error, Result};

mod catalog_exports;
mod tasks;

/// Locks a mutex, ignoring poisoning (a panicking test must not hide the state from others).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The label of a mention's score, as [`SentimentSource::Mentions`] documents.
fn score_label(score: f64) -> &'static str {
    if score > 0.05 {
        "positive"
    } else if score < -0.05 {
        "negative"
    } else {
        "neutral"
    }
}

/// Clamps a page size as the ports document: `1..=1000`.
fn clamp_limit(limit: u32) -> usize {
    limit.clamp(1, 1000) as usize
}

/// Decodes a `time:id` cursor (sessions by start, mentions by post time).
fn decode_id_cursor(cursor: &str) -> Result<(Millis, String)> {
    let (ts, id) = cursor.split_once(':').ok_or_else(bad_cursor)?;
    Ok((ts.parse::<Millis>().map_err(|_| bad_cursor())?, id.to_owned()))
}

/// The first `limit` of sorted rows as a page whose cursor is the last row's `time:id`.
fn id_page<T: Clone>(mut rows: Vec<&T>, limit: usize, key: impl Fn(&T) -> (Millis, &str)) -> Page<T> {
    let next_cursor = (rows.len() > limit).then(|| {
        let (ts, id) = key(rows[limit - 1]);
        format!("{ts}:{id}")
    });
    rows.truncate(limit);
    Page {
        data: rows.into_iter().cloned().collect(),
        next_cursor,
    }
}

fn bad_cursor() -> Error {
    Error::invalid("cursor", "malformed cursor")
}

/// Checks a page size that the port requires to be in `1..=1000`.
fn check_limit(limit: u32) -> Result<usize> {
    if (1..=1000).contains(&limit) {
        Ok(limit as usize)
    } else {
        Err(Error::invalid("limit", format!("{limit} is not in 1..=1000")))
    }
}

/// What [`EventStore::top_entities`] groups by: kind, product id, and the ASCII-lowercased text
/// of an entity without a product (empty for one with).
type EntityKey = (String, Option<String>, String);

/// One entity's counts so far.
#[derive(Debug, Default)]
struct EntityTally {
    mentions: u64,
    positive: u64,
    neutral: u64,
    negative: u64,
    scored: u64,
    score_sum: f64,
    /// Texts per form of the entity.
    forms: BTreeMap<String, u64>,
}

/// Counts entities text by text, as [`EventStore::top_entities`] documents.
#[derive(Debug, Default)]
struct EntityCounter {
    tallies: HashMap<EntityKey, EntityTally>,
}

impl EntityCounter {
    /// One text: its (non-pii) entities as `(kind, text, product_id)`, and its sentiment label
    /// and score, if any.
    fn text<'a>(
        &mut self,
        kind: Option<&str>,
        entities: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>)>,
        sentiment: Option<(&str, f64)>,
    ) {
        let mut keys = HashSet::new();
        let mut forms = HashSet::new();
        for (k, text, product_id) in entities {
            if text.is_empty() || kind.is_some_and(|want| want != k) {
                continue;
            }
            let norm = if product_id.is_some() {
                String::new()
            } else {
                text.to_ascii_lowercase()
            };
            let key: EntityKey = (k.to_owned(), product_id.map(str::to_owned), norm);
            let tally = self.tallies.entry(key.clone()).or_default();
            if forms.insert((key.clone(), text)) {
                *tally.forms.entry(text.to_owned()).or_default() += 1;
            }
            if keys.insert(key) {
                tally.mentions += 1;
                if let Some((label, score)) = sentiment {
                    match label {
                        "positive" => tally.positive += 1,
                        "negative" => tally.negative += 1,
                        _ => tally.neutral += 1,
                    }
                    tally.scored += 1;
                    tally.score_sum += score;
                }
            }
        }
    }

    /// The first `limit` entities in the documented order; `product_name` names a product id.
    fn top(self, limit: usize, product_name: impl Fn(&str) -> Option<String>) -> Vec<EntityCount> {
        let mut rows: Vec<EntityCount> = self
            .tallies
            .into_iter()
            .map(|((kind, product_id, _), t)| {
                let form = t
                    .forms
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    .map(|(f, _)| f.clone())
                    .unwrap_or_default();
                EntityCount {
                    text: product_id.as_deref().and_then(&product_name).unwrap_or(form),
                    kind,
                    product_id,
                    mentions: t.mentions,
                    positive: t.positive,
                    neutral: t.neutral,
                    negative: t.negative,
                    mean_score: (t.scored > 0).then(|| t.score_sum / t.scored as f64),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.mentions
                .cmp(&a.mentions)
                .then_with(|| a.text.cmp(&b.text))
                .then_with(|| a.kind.cmp(&b.kind))
                .then_with(|| a.product_id.cmp(&b.product_id))
        });
        rows.truncate(limit);
        rows
    }
}

// ---------------------------------------------------------------------------------------------
// MemoryStore
// ---------------------------------------------------------------------------------------------

/// An event with its insertion sequence number (the tie-breaker of "newest first").
#[derive(Debug, Clone)]
struct StoredEvent {
    seq: u64,
    ev: Interaction,
}

/// Everything one org owns.
#[derive(Debug, Default)]
struct OrgData {
    events: Vec<StoredEvent>,
    by_id: HashMap<String, usize>,
    sessions: HashMap<String, Session>,
    /// alias id → person id (always a root: never itself an alias).
    links: HashMap<String, String>,
    /// alias id → when its link was recorded or last changed.
    link_times: HashMap<String, Millis>,
    products: BTreeMap<String, Product>,
    terms: BTreeSet<(String, String)>,
    texts: HashMap<String, InteractionText>,
    catalog_changes: u64,
    mentions: HashMap<String, SocialMention>,
    mention_duplicates: HashMap<String, MentionDuplicate>,
    sources: HashMap<String, SourceState>,
    frame_events: HashMap<String, FrameEvent>,
    /// Archive ledger: object key → entry.
    archive: HashMap<String, crate::video::ArchiveEntry>,
    /// Categories by name.
    categories: BTreeMap<String, crate::catalog::Category>,
    /// Exports by id.
    exports: BTreeMap<String, crate::export::Export>,
    /// Agent tasks by id.
    tasks: BTreeMap<String, crate::agent::AgentTask>,
}

impl OrgData {
    /// Follows identity links from `id`; `Some` only when at least one link exists.
    fn resolve(&self, id: &str) -> Option<String> {
        let mut cur = self.links.get(id)?;
        // Links are kept flat, but guard against a cycle anyway.
        for _ in 0..64 {
            match self.links.get(cur.as_str()) {
                Some(next) if next != id => cur = next,
                _ => break,
            }
        }
        Some(cur.clone())
    }

    /// The person behind an event: its stitched person, else its user or anonymous id
    /// resolved through the links.
    fn person_of(&self, ev: &Interaction) -> Option<String> {
        if let Some(p) = &ev.person_id {
            return Some(p.clone());
        }
        let hint = ev.person_hint()?;
        Some(self.resolve(hint).unwrap_or_else(|| hint.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobState {
    Ready,
    InFlight,
    Dead,
}

#[derive(Debug, Clone)]
struct JobRow {
    job: Job,
    state: JobState,
    available_at: Millis,
    last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    data: HashMap<String, OrgData>,
    orgs: Vec<(Organization, NewOrgKeys)>,
    /// Keys created after their org: (org, key as listed, hash).
    extra_keys: Vec<(String, crate::access::ApiKey, String)>,
    /// Revocations of the keys an org was created with: prefix → when.
    revoked: HashMap<String, Millis>,
    users: Vec<(String, crate::access::User)>,
    audit: Vec<(String, crate::access::AuditEntry)>,
    jobs: BTreeMap<i64, JobRow>,
    next_job_id: i64,
    runs: HashMap<String, HashMap<String, Value>>,
    finished_runs: HashSet<String>,
}

impl Inner {
    /// Every key: those orgs were created with (owner role) and those created later.
    fn all_keys(&self) -> Vec<(String, crate::access::ApiKey, String)> {
        let mut all = Vec::new();
        for (o, k) in &self.orgs {
            let listed = |prefix: &str, kind| crate::access::ApiKey {
                prefix: prefix.to_owned(),
                kind,
                role: crate::access::Role::Owner,
                name: None,
                created_at: o.created_at,
                revoked_at: self.revoked.get(prefix).copied(),
            };
            all.push((
                o.id.clone(),
                listed(&k.write_key, KeyKind::Write),
                keys::hash_secret(&k.write_key),
            ));
            all.push((
                o.id.clone(),
                listed(&k.api_key_prefix, KeyKind::Secret),
                k.api_key_hash.clone(),
            ));
        }
        all.extend(self.extra_keys.iter().cloned());
        all
    }

    fn enqueue(&mut self, jobs: Vec<NewJob>, now: Millis) {
        for j in jobs {
            self.next_job_id += 1;
            let id = self.next_job_id;
            self.jobs.insert(
                id,
                JobRow {
                    // No `not_before`: deliverable at once, whatever clock the consumer passes.
                    available_at: j.not_before.unwrap_or(Millis::MIN),
                    job: Job {
                        id,
                        queue: j.queue,
                        kind: j.kind,
                        payload: j.payload,
                        attempts: 0,
                        enqueued_at: now,
                        lease_until: 0,
                    },
                    state: JobState::Ready,
                    last_error: None,
                },
            );
        }
    }
}

/// In-memory [`EventStore`], [`AccountStore`], [`CatalogStore`], [`SocialStore`], [`VideoStore`],
/// [`JobQueue`] and [`WorkflowStore`], all behind one lock.
///
/// Notes on choices the contracts leave open (crow-store makes the same ones):
/// - `append` stores each event under the `org_id` argument (an event's own `org_id` is
///   overwritten), and enqueues the follow-up jobs in the same critical section, with
///   `enqueued_at` = the latest `received_at` of the events (0 without events). A job without
///   `not_before` is deliverable at once.
/// - `refresh_sessions` deletes the row of a session that has no events left.
/// - Session aggregates: `started_at`/`ended_at` are the first/last event times; `entry_path`
///   and `exit_path` the first/last page path (screen name for screens); `referrer`,
///   `referrer_class`, `campaign` (its [`Campaign::key`]) and `device` come from the first
///   event; `is_bot` is true when any event is a bot's.
/// - `traffic_summary` counts sessions (and their referrer classes) by `started_at` in the
///   range; `top_pages` uses page paths.
/// - `fail` on a job that is already dead answers `true` and changes nothing; on an unknown
///   job it is [`Error::NotFound`].
/// - `store_mentions` checks every mention's `org_id` before storing anything; then stores the
///   mentions, then the duplicate links, in the order given (an id seen earlier in the same call
///   counts as `existing`). A link's `original_id` is not checked. The follow-up jobs are
///   enqueued in the same critical section with `enqueued_at = now`, except when the call gave
///   mentions or links and every one of them already existed (a re-run: the first call
///   enqueued them), like `append`.
/// - `known_mentions` answers each known id once, in the order asked; `get_mentions` answers
///   in the order asked (a repeated id repeatedly). `list_duplicates` orders by `fetched_at`,
///   then id, both descending; `mention_simhashes` by `posted_at`, then id, ascending.
/// - `set_mention_analysis` only reaches mentions: a duplicate link's id is `NotFound` too.
/// - `store_frame_events` checks every event first (nothing is stored on error): an `org_id`
///   other than the argument is `Invalid` (`events[i].org_id`), a non-finite `value` is
///   `Invalid` (`events[i].value`). An id stored before, or earlier in the same call, is left as
///   it was and not counted.
/// - `list_frame_events` and `oldest_archive` take a `limit` of `1..=1000` (else `Invalid`,
///   field `limit`); a malformed cursor is `Invalid` (field `cursor`). Ties in time are broken
///   by event id (archive: by key), ascending.
/// - `record_archive` is an upsert by key: recording a key again replaces its entry (the
///   object was rewritten), the last of a key repeated within one call wins. `remove_archive`
///   counts each removed key once; unknown keys (and other orgs' keys) are skipped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last error recorded by [`JobQueue::fail`] for a job (for tests).
    pub fn job_error(&self, job_id: i64) -> Option<String> {
        lock(&self.inner).jobs.get(&job_id).and_then(|r| r.last_error.clone())
    }

    /// True when [`WorkflowStore::finish_run`] was called for the run (for tests).
    pub fn is_run_finished(&self, run_id: &str) -> bool {
        lock(&self.inner).finished_runs.contains(run_id)
    }

    /// Number of stored events of an org (for tests).
    pub fn event_count(&self, org_id: &str) -> usize {
        lock(&self.inner).data.get(org_id).map_or(0, |d| d.events.len())
    }
}

/// Path of a page: `context.page.path`, else the path part of `context.page.url`.
fn page_path(ev: &Interaction) -> Option<String> {
    let page = ev.context.page.as_ref()?;
    if let Some(p) = &page.path {
        return Some(p.clone());
    }
    let url = page.url.as_deref()?;
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    let end = path.find(['?', '#']).unwrap_or(path.len());
    Some(path[..end].to_owned())
}

/// What a view event shows: the page path for pages, the screen name for screens.
fn view_path(ev: &Interaction) -> Option<String> {
    match ev.event_type {
        EventType::Page => page_path(ev),
        EventType::Screen => ev.name.clone(),
        _ => None,
    }
}

fn is_view(ev: &Interaction) -> bool {
    matches!(ev.event_type, EventType::Page | EventType::Screen)
}

fn sorted_counts(map: HashMap<String, u64>, top: Option<usize>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if let Some(top) = top {
        v.truncate(top);
    }
    v
}

fn compute_session(
    org_id: &str,
    id: &str,
    events: &[&StoredEvent],
    previous: Option<&Session>,
    data: &OrgData,
) -> Session {
    let first = &events[0].ev;
    let last = &events[events.len() - 1].ev;
    let person_id = events
        .iter()
        .find_map(|e| e.ev.person_id.clone())
        .or_else(|| previous.map(|s| s.person_id.clone()))
        .or_else(|| data.person_of(first))
        .unwrap_or_default();
    let views: Vec<&Interaction> = events.iter().map(|e| &e.ev).filter(|e| is_view(e)).collect();
    Session {
        id: id.to_owned(),
        org_id: org_id.to_owned(),
        person_id,
        started_at: first.timestamp,
        ended_at: last.timestamp,
        event_count: events.len() as u32,
        page_count: views.len() as u32,
        entry_path: views.iter().find_map(|e| view_path(e)),
        exit_path: views.iter().rev().find_map(|e| view_path(e)),
        referrer: first.context.page.as_ref().and_then(|p| p.referrer.clone()),
        referrer_class: first.referrer_class,
        campaign: first.context.campaign.as_ref().and_then(Campaign::key),
        device: first.context.user_agent.as_ref().map(|u| u.device),
        is_bot: events.iter().any(|e| e.ev.is_bot),
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl EventStore for MemoryStore {
    async fn append(&self, org_id: &str, events: Vec<Interaction>, follow_up: Vec<NewJob>) -> Result<AppendOutcome> {
        let mut inner = lock(&self.inner);
        let enqueued_at = events.iter().map(|e| e.received_at).max().unwrap_or(0);
        let mut out = AppendOutcome::default();
        for mut ev in events {
            inner.seq += 1;
            let seq = inner.seq;
            let data = inner.data.entry(org_id.to_owned()).or_default();
            if data.by_id.contains_key(&ev.id) {
                out.duplicates += 1;
                continue;
            }
            ev.org_id = org_id.to_owned();
            data.by_id.insert(ev.id.clone(), data.events.len());
            out.inserted_ids.push(ev.id.clone());
            data.events.push(StoredEvent { seq, ev });
            out.inserted += 1;
        }
        if out.inserted > 0 || out.duplicates == 0 {
            inner.enqueue(follow_up, enqueued_at);
        }
        Ok(out)
    }

    async fn get_interactions(&self, org_id: &str, ids: &[String]) -> Result<Vec<Interaction>> {
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .filter_map(|id| data.by_id.get(id).map(|&i| data.events[i].ev.clone()))
            .collect())
    }

    async fn list_interactions(&self, org_id: &str, query: &InteractionQuery) -> Result<Page<Interaction>> {
        let after = match &query.cursor {
            None => None,
            Some(c) => {
                let (ts, seq) = c.split_once(':').ok_or_else(bad_cursor)?;
                Some((
                    ts.parse::<Millis>().map_err(|_| bad_cursor())?,
                    seq.parse::<u64>().map_err(|_| bad_cursor())?,
                ))
            }
        };
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Page {
                data: Vec::new(),
                next_cursor: None,
            });
        };
        let mut rows: Vec<&StoredEvent> = data
            .events
            .iter()
            .filter(|s| {
                let e = &s.ev;
                query.event_type.is_none_or(|t| e.event_type == t)
                    && query.name.as_ref().is_none_or(|n| e.name.as_ref() == Some(n))
                    && query.since.is_none_or(|t| e.timestamp >= t)
                    && query.until.is_none_or(|t| e.timestamp < t)
                    && query
                        .session_id
                        .as_ref()
                        .is_none_or(|sid| e.session_id.as_ref() == Some(sid))
                    && query
                        .person_id
                        .as_ref()
                        .is_none_or(|p| data.person_of(e).as_ref() == Some(p))
                    && after.is_none_or(|c| (e.timestamp, s.seq) < c)
            })
            .collect();
        rows.sort_by_key(|s| std::cmp::Reverse((s.ev.timestamp, s.seq)));
        let limit = clamp_limit(query.limit);
        let next_cursor = (rows.len() > limit).then(|| {
            let last = rows[limit - 1];
            format!("{}:{}", last.ev.timestamp, last.seq)
        });
        rows.truncate(limit);
        Ok(Page {
            data: rows.into_iter().map(|s| s.ev.clone()).collect(),
            next_cursor,
        })
    }

    async fn store_texts(&self, org_id: &str, texts: &[InteractionText]) -> Result<()> {
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        for t in texts {
            if let Some(&i) = data.by_id.get(&t.event_id) {
                data.events[i].ev.analysis = Some(t.analysis.clone());
            }
            data.texts.insert(t.event_id.clone(), t.clone());
        }
        Ok(())
    }

    async fn apply_enrichment(&self, org_id: &str, enrichment: &[Enrichment]) -> Result<()> {
        let mut inner = lock(&self.inner);
        let Some(data) = inner.data.get_mut(org_id) else {
            return Ok(());
        };
        for en in enrichment {
            if let Some(&i) = data.by_id.get(&en.event_id) {
                let ev = &mut data.events[i].ev;
                ev.person_id = Some(en.person_id.clone());
                ev.session_id = Some(en.session_id.clone());
                ev.referrer_class = Some(en.referrer_class);
            }
        }
        Ok(())
    }

    async fn link_identity(&self, org_id: &str, alias_id: &str, person_id: &str, at: Millis) -> Result<()> {
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        let target = data.resolve(person_id).unwrap_or_else(|| person_id.to_owned());
        if target == alias_id {
            // Already the same person.
            return Ok(());
        }
        if data.links.get(alias_id) != Some(&target) {
            data.link_times.insert(alias_id.to_owned(), at);
        }
        data.links.insert(alias_id.to_owned(), target.clone());
        // Keep the links flat: whatever pointed at the alias now points at the person.
        for v in data.links.values_mut() {
            if v == alias_id {
                *v = target.clone();
            }
        }
        for s in &mut data.events {
            if s.ev.person_id.as_deref() == Some(alias_id) {
                s.ev.person_id = Some(target.clone());
            }
        }
        for s in data.sessions.values_mut() {
            if s.person_id == alias_id {
                s.person_id = target.clone();
            }
        }
        Ok(())
    }

    async fn resolve_person(&self, org_id: &str, id: &str) -> Result<Option<String>> {
        Ok(lock(&self.inner).data.get(org_id).and_then(|d| d.resolve(id)))
    }

    async fn latest_session(&self, org_id: &str, person_id: &str, at: Millis) -> Result<Option<Session>> {
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(None);
        };
        Ok(data
            .sessions
            .values()
            .filter(|s| s.person_id == person_id && s.started_at <= at)
            .max_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)))
            .cloned())
    }

    async fn refresh_sessions(&self, org_id: &str, session_ids: &[String]) -> Result<()> {
        let mut inner = lock(&self.inner);
        let Some(data) = inner.data.get_mut(org_id) else {
            return Ok(());
        };
        for id in session_ids {
            let mut events: Vec<&StoredEvent> = data
                .events
                .iter()
                .filter(|s| s.ev.session_id.as_deref() == Some(id.as_str()))
                .collect();
            if events.is_empty() {
                data.sessions.remove(id);
                continue;
            }
            events.sort_by_key(|s| (s.ev.timestamp, s.seq));
            let session = compute_session(org_id, id, &events, data.sessions.get(id), data);
            data.sessions.insert(id.clone(), session);
        }
        Ok(())
    }

    async fn get_session(&self, org_id: &str, id: &str) -> Result<Option<Session>> {
        Ok(lock(&self.inner)
            .data
            .get(org_id)
            .and_then(|d| d.sessions.get(id).cloned()))
    }

    async fn list_sessions(&self, org_id: &str, query: &SessionQuery) -> Result<Page<Session>> {
        let after = query.cursor.as_deref().map(decode_id_cursor).transpose()?;
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Page {
                data: Vec::new(),
                next_cursor: None,
            });
        };
        let mut rows: Vec<&Session> = data
            .sessions
            .values()
            .filter(|s| {
                query.since.is_none_or(|t| s.started_at >= t)
                    && query.person_id.as_ref().is_none_or(|p| &s.person_id == p)
                    && after.as_ref().is_none_or(|(ts, id)| (s.started_at, &s.id) < (*ts, id))
            })
            .collect();
        rows.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        let limit = clamp_limit(query.limit);
        Ok(id_page(rows, limit, |r| (r.started_at, r.id.as_str())))
    }

    async fn traffic_summary(&self, org_id: &str, since: Millis, until: Millis, top: usize) -> Result<TrafficSummary> {
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(TrafficSummary::default());
        };
        let mut sum = TrafficSummary::default();
        let mut visitors = HashSet::new();
        let mut pages: HashMap<String, u64> = HashMap::new();
        for s in data
            .events
            .iter()
            .filter(|s| s.ev.timestamp >= since && s.ev.timestamp < until)
        {
            let e = &s.ev;
            sum.events += 1;
            sum.pii_scrubbed += u64::from(e.pii_scrubbed);
            if e.is_bot {
                sum.bot_events += 1;
                continue;
            }
            if let Some(p) = data.person_of(e) {
                visitors.insert(p);
            }
            if is_view(e) {
                sum.page_views += 1;
                if e.event_type == EventType::Page
                    && let Some(path) = page_path(e)
                {
                    *pages.entry(path).or_default() += 1;
                }
            }
        }
        sum.visitors = visitors.len() as u64;
        let mut classes: HashMap<String, u64> = HashMap::new();
        for s in data
            .sessions
            .values()
            .filter(|s| !s.is_bot && s.started_at >= since && s.started_at < until)
        {
            sum.sessions += 1;
            if let Some(c) = s.referrer_class {
                *classes.entry(c.as_str().to_owned()).or_default() += 1;
            }
        }
        sum.top_pages = sorted_counts(pages, Some(top));
        sum.referrer_classes = sorted_counts(classes, None);
        let mut referrers: HashMap<String, u64> = HashMap::new();
        for s in data
            .sessions
            .values()
            .filter(|s| !s.is_bot && s.started_at >= since && s.started_at < until)
        {
            if let Some(r) = &s.referrer {
                *referrers.entry(r.clone()).or_default() += 1;
            }
        }
        sum.top_referrers = sorted_counts(referrers, Some(top));
        Ok(sum)
    }

    async fn sentiment_series(
        &self,
        org_id: &str,
        source: SentimentSource,
        since: Millis,
        until: Millis,
        bucket_ms: i64,
    ) -> Result<Vec<SentimentBucket>> {
        if bucket_ms <= 0 {
            return Err(Error::invalid("bucket_ms", "must be positive"));
        }
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Vec::new());
        };
        // (time, label, score) of every scored text in the window
        let points: Vec<(Millis, String, f64)> = match source {
            SentimentSource::Interactions => data
                .texts
                .values()
                .filter_map(|t| {
                    let s = t.analysis.sentiment.as_ref()?;
                    Some((t.timestamp, s.label.clone(), f64::from(s.score)))
                })
                .collect(),
            SentimentSource::Mentions => data
                .mentions
                .values()
                .filter_map(|m| {
                    let score = f64::from(m.sentiment.or(m.lexicon_score)?);
                    Some((m.posted_at, score_label(score).to_owned(), score))
                })
                .collect(),
        };
        let mut buckets: BTreeMap<i64, (SentimentBucket, f64)> = BTreeMap::new();
        for (at, label, score) in points.into_iter().filter(|(at, _, _)| *at >= since && *at < until) {
            let start = since + (at - since) / bucket_ms * bucket_ms;
            let (b, sum) = buckets.entry(start).or_insert_with(|| {
                (
                    SentimentBucket {
                        start,
                        count: 0,
                        positive: 0,
                        negative: 0,
                        neutral: 0,
                        mean_score: 0.0,
                    },
                    0.0,
                )
            });
            b.count += 1;
            *sum += score;
            match label.as_str() {
                "positive" => b.positive += 1,
                "negative" => b.negative += 1,
                _ => b.neutral += 1,
            }
        }
        Ok(buckets
            .into_values()
            .map(|(mut b, sum)| {
                b.mean_score = sum / b.count as f64;
                b
            })
            .collect())
    }

    async fn top_entities(&self, org_id: &str, query: &EntityQuery) -> Result<Vec<EntityCount>> {
        if !(1..=MAX_TOP_ENTITIES).contains(&query.limit) {
            return Err(Error::invalid(
                "limit",
                format!("{} is not in 1..={MAX_TOP_ENTITIES}", query.limit),
            ));
        }
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Vec::new());
        };
        let window = |at: Millis| at >= query.since && at < query.until;
        let mut counter = EntityCounter::default();
        match query.source {
            SentimentSource::Interactions => {
                for t in data.texts.values().filter(|t| window(t.timestamp)) {
                    let entities = t
                        .analysis
                        .entities
                        .iter()
                        .filter(|e| !e.pii)
                        .map(|e| (e.kind.as_str(), e.text.as_str(), e.product_id.as_deref()));
                    let sentiment = t.analysis.sentiment.as_ref().map(|s| {
                        let label = match s.label.as_str() {
                            l @ ("positive" | "negative") => l,
                            _ => "neutral",
                        };
                        (label, f64::from(s.score))
                    });
                    counter.text(query.kind.as_deref(), entities, sentiment);
                }
            }
            SentimentSource::Mentions => {
                for m in data.mentions.values().filter(|m| window(m.posted_at)) {
                    let Some(Value::Array(list)) = m.analysis.as_ref().and_then(|a| a.get("entities")) else {
                        continue;
                    };
                    let entities = list.iter().filter_map(|e| {
                        let pii = e.get("pii");
                        if !(pii.is_none_or(Value::is_null) || pii == Some(&Value::Bool(false))) {
                            return None;
                        }
                        let product_id = e.get("product_id").and_then(Value::as_str);
                        Some((e.get("kind")?.as_str()?, e.get("text")?.as_str()?, product_id))
                    });
                    let sentiment = m.sentiment.or(m.lexicon_score).map(|s| {
                        let score = f64::from(s);
                        (score_label(score), score)
                    });
                    counter.text(query.kind.as_deref(), entities, sentiment);
                }
            }
        }
        let product_name = |id: &str| {
            data.products
                .values()
                .filter(|p| p.id == id)
                .map(|p| p.name.as_str())
                .min()
                .map(str::to_owned)
        };
        Ok(counter.top(query.limit as usize, product_name))
    }

    async fn funnel(&self, org_id: &str, steps: &[FunnelStep], since: Millis, until: Millis) -> Result<Vec<FunnelRow>> {
        let inner = lock(&self.inner);
        let mut counter = FunnelCounter::new(steps);
        if let Some(data) = inner.data.get(org_id) {
            let mut by_person: HashMap<String, Vec<&StoredEvent>> = HashMap::new();
            for s in data
                .events
                .iter()
                .filter(|s| !s.ev.is_bot && s.ev.timestamp >= since && s.ev.timestamp < until)
            {
                if let Some(p) = data.person_of(&s.ev) {
                    by_person.entry(p).or_default().push(s);
                }
            }
            for events in by_person.values_mut() {
                events.sort_by_key(|s| (s.ev.timestamp, s.seq));
                counter.next_person();
                for s in events.iter() {
                    counter.event(s.ev.event_type, s.ev.name.as_deref(), page_path(&s.ev).as_deref());
                }
            }
        }
        Ok(counter.rows())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl AccountStore for MemoryStore {
    async fn create_org(&self, org: &Organization, keys: &NewOrgKeys) -> Result<()> {
        let mut inner = lock(&self.inner);
        if inner.orgs.iter().any(|(o, _)| o.id == org.id) {
            return Err(Error::Conflict(format!("organization {} exists", org.id)));
        }
        inner.orgs.push((org.clone(), keys.clone()));
        Ok(())
    }

    async fn get_org(&self, org_id: &str) -> Result<Option<Organization>> {
        Ok(lock(&self.inner)
            .orgs
            .iter()
            .find(|(o, _)| o.id == org_id)
            .map(|(o, _)| o.clone()))
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>> {
        let inner = lock(&self.inner);
        let mut orgs: Vec<Organization> = inner.orgs.iter().map(|(o, _)| o.clone()).collect();
        // Stable: equal creation times keep their insertion order.
        orgs.sort_by_key(|o| o.created_at);
        Ok(orgs)
    }

    async fn authenticate(&self, presented: &str) -> Result<Option<KeyGrant>> {
        let inner = lock(&self.inner);
        let (prefix, kind) = if keys::is_write_key(presented) {
            (presented, KeyKind::Write)
        } else if let Some(prefix) = keys::api_key_prefix(presented) {
            (prefix, KeyKind::Secret)
        } else {
            return Ok(None);
        };
        let hash = keys::hash_secret(presented);
        Ok(inner
            .all_keys()
            .into_iter()
            .find(|(_, k, h)| {
                k.prefix == prefix
                    && k.kind == kind
                    && k.revoked_at.is_none()
                    && keys::constant_time_eq(h.as_bytes(), hash.as_bytes())
            })
            .and_then(|(org, k, _)| {
                let (_, ok) = inner.orgs.iter().find(|(o, _)| o.id == org)?;
                Some(KeyGrant {
                    org_id: org,
                    kind,
                    prefix: k.prefix,
                    role: k.role,
                    pseudonym_key: ok.pseudonym_key.clone(),
                })
            }))
    }

    async fn org_grant(&self, org_id: &str) -> Result<Option<KeyGrant>> {
        let inner = lock(&self.inner);
        Ok(inner.orgs.iter().find(|(o, _)| o.id == org_id).map(|(o, k)| KeyGrant {
            org_id: o.id.clone(),
            kind: KeyKind::Write,
            prefix: k.write_key.clone(),
            role: crate::access::Role::Viewer,
            pseudonym_key: k.pseudonym_key.clone(),
        }))
    }

    async fn update_org(&self, org_id: &str, name: &str) -> Result<Organization> {
        let mut inner = lock(&self.inner);
        let (o, _) = inner
            .orgs
            .iter_mut()
            .find(|(o, _)| o.id == org_id)
            .ok_or_else(|| Error::NotFound(format!("organization {org_id}")))?;
        o.name = name.to_owned();
        Ok(o.clone())
    }

    async fn create_api_key(&self, org_id: &str, key: &crate::access::NewApiKey) -> Result<crate::access::ApiKey> {
        let mut inner = lock(&self.inner);
        if !inner.orgs.iter().any(|(o, _)| o.id == org_id) {
            return Err(Error::NotFound(format!("organization {org_id}")));
        }
        if inner.all_keys().iter().any(|(_, k, _)| k.prefix == key.prefix) {
            return Err(Error::Conflict("a key with this prefix exists".into()));
        }
        let listed = crate::access::ApiKey {
            prefix: key.prefix.clone(),
            kind: key.kind,
            role: key.role,
            name: key.name.clone(),
            created_at: key.created_at,
            revoked_at: None,
        };
        inner
            .extra_keys
            .push((org_id.to_owned(), listed.clone(), key.hash.clone()));
        Ok(listed)
    }

    async fn list_api_keys(
        &self,
        org_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<crate::access::ApiKey>> {
        let inner = lock(&self.inner);
        let mut keys: Vec<crate::access::ApiKey> = inner
            .all_keys()
            .into_iter()
            .filter(|(o, _, _)| o == org_id)
            .map(|(_, k, _)| k)
            .collect();
        keys.sort_by(|a, b| (b.created_at, &b.prefix).cmp(&(a.created_at, &a.prefix)));
        let after = cursor.map(decode_id_cursor).transpose()?;
        let rows: Vec<&crate::access::ApiKey> = keys
            .iter()
            .filter(|k| {
                after
                    .as_ref()
                    .is_none_or(|(t, id)| (k.created_at, k.prefix.as_str()) < (*t, id.as_str()))
            })
            .collect();
        Ok(id_page(rows, clamp_limit(limit), |k| (k.created_at, k.prefix.as_str())))
    }

    async fn get_api_key(&self, org_id: &str, prefix: &str) -> Result<Option<crate::access::ApiKey>> {
        let inner = lock(&self.inner);
        Ok(inner
            .all_keys()
            .into_iter()
            .find(|(o, k, _)| o == org_id && k.prefix == prefix)
            .map(|(_, k, _)| k))
    }

    async fn revoke_api_key(&self, org_id: &str, prefix: &str, now: Millis) -> Result<Option<crate::access::ApiKey>> {
        let mut inner = lock(&self.inner);
        let Some((_, key, _)) = inner
            .all_keys()
            .into_iter()
            .find(|(o, k, _)| o == org_id && k.prefix == prefix)
        else {
            return Ok(None);
        };
        if key.revoked_at.is_some() {
            return Ok(Some(key));
        }
        if let Some((_, k, _)) = inner
            .extra_keys
            .iter_mut()
            .find(|(o, k, _)| o == org_id && k.prefix == prefix)
        {
            k.revoked_at = Some(now);
        } else {
            inner.revoked.insert(prefix.to_owned(), now);
        }
        Ok(Some(crate::access::ApiKey {
            revoked_at: Some(now),
            ..key
        }))
    }

    async fn create_user(&self, org_id: &str, user: &crate::access::User) -> Result<()> {
        let mut inner = lock(&self.inner);
        if inner
            .users
            .iter()
            .any(|(o, u)| o == org_id && (u.email == user.email || u.id == user.id))
        {
            return Err(Error::Conflict(format!("a user with email {} exists", user.email)));
        }
        inner.users.push((org_id.to_owned(), user.clone()));
        Ok(())
    }

    async fn list_users(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<crate::access::User>> {
        let inner = lock(&self.inner);
        let mut users: Vec<&crate::access::User> = inner
            .users
            .iter()
            .filter(|(o, u)| o == org_id && cursor.is_none_or(|c| u.email.as_str() > c))
            .map(|(_, u)| u)
            .collect();
        users.sort_by(|a, b| a.email.cmp(&b.email));
        let limit = clamp_limit(limit);
        let next_cursor = (users.len() > limit).then(|| users[limit - 1].email.clone());
        users.truncate(limit);
        Ok(Page {
            data: users.into_iter().cloned().collect(),
            next_cursor,
        })
    }

    async fn get_user(&self, org_id: &str, user_id: &str) -> Result<Option<crate::access::User>> {
        Ok(lock(&self.inner)
            .users
            .iter()
            .find(|(o, u)| o == org_id && u.id == user_id)
            .map(|(_, u)| u.clone()))
    }

    async fn update_user(
        &self,
        org_id: &str,
        user_id: &str,
        name: Option<Option<String>>,
        role: Option<crate::access::Role>,
    ) -> Result<Option<crate::access::User>> {
        let mut inner = lock(&self.inner);
        let Some((_, u)) = inner.users.iter_mut().find(|(o, u)| o == org_id && u.id == user_id) else {
            return Ok(None);
        };
        if let Some(n) = name {
            u.name = n;
        }
        if let Some(r) = role {
            u.role = r;
        }
        Ok(Some(u.clone()))
    }

    async fn delete_user(&self, org_id: &str, user_id: &str) -> Result<bool> {
        let mut inner = lock(&self.inner);
        let before = inner.users.len();
        inner.users.retain(|(o, u)| !(o == org_id && u.id == user_id));
        Ok(inner.users.len() < before)
    }

    async fn append_audit(&self, entries: &[crate::access::NewAuditEntry]) -> Result<()> {
        let mut inner = lock(&self.inner);
        for e in entries {
            inner.seq += 1;
            let seq = inner.seq as i64;
            inner.audit.push((
                e.org_id.clone(),
                crate::access::AuditEntry {
                    seq,
                    at: e.at,
                    actor: e.actor.clone(),
                    action: e.action.clone(),
                    target: e.target.clone(),
                    ip: e.ip.clone(),
                    detail: e.detail.clone(),
                },
            ));
        }
        Ok(())
    }

    async fn list_audit(
        &self,
        org_id: &str,
        query: &crate::access::AuditQuery,
    ) -> Result<Page<crate::access::AuditEntry>> {
        let inner = lock(&self.inner);
        let before = match &query.cursor {
            Some(c) => Some(
                c.parse::<i64>()
                    .map_err(|_| Error::invalid("cursor", "not a cursor of this listing"))?,
            ),
            None => None,
        };
        let mut rows: Vec<&crate::access::AuditEntry> = inner
            .audit
            .iter()
            .filter(|(o, e)| {
                o == org_id
                    && before.is_none_or(|b| e.seq < b)
                    && query.action.as_ref().is_none_or(|a| &e.action == a)
                    && query.actor.as_ref().is_none_or(|a| &e.actor == a)
                    && query.since.is_none_or(|s| e.at >= s)
            })
            .map(|(_, e)| e)
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse(e.seq));
        let limit = clamp_limit(query.limit);
        let next_cursor = (rows.len() > limit).then(|| rows[limit - 1].seq.to_string());
        rows.truncate(limit);
        Ok(Page {
            data: rows.into_iter().cloned().collect(),
            next_cursor,
        })
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl CatalogStore for MemoryStore {
    async fn upsert_products(&self, org_id: &str, products: &[Product]) -> Result<usize> {
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        let mut changed = 0;
        for p in products {
            let mut p = p.clone();
            p.org_id = org_id.to_owned();
            if data.products.get(&p.sku) != Some(&p) {
                data.products.insert(p.sku.clone(), p);
                changed += 1;
            }
        }
        data.catalog_changes += changed as u64;
        data.ensure_categories(products);
        Ok(changed)
    }

    async fn get_product(&self, org_id: &str, id: &str) -> Result<Option<Product>> {
        Ok(self.mem_get_product(org_id, id))
    }

    async fn query_products(&self, org_id: &str, query: &crate::catalog::ProductQuery) -> Result<Page<Product>> {
        self.mem_query_products(org_id, query)
    }

    async fn create_product(&self, org_id: &str, product: &Product) -> Result<()> {
        self.mem_create_product(org_id, product)
    }

    async fn replace_product(&self, org_id: &str, product: &Product) -> Result<bool> {
        self.mem_replace_product(org_id, product)
    }

    async fn delete_product(&self, org_id: &str, id: &str) -> Result<bool> {
        Ok(self.mem_delete_product(org_id, id))
    }

    async fn import_products(&self, org_id: &str, products: &[Product]) -> Result<crate::catalog::ImportOutcome> {
        self.mem_import_products(org_id, products)
    }

    async fn create_category(&self, org_id: &str, category: &crate::catalog::Category) -> Result<()> {
        self.mem_create_category(org_id, category)
    }

    async fn get_category(&self, org_id: &str, name: &str) -> Result<Option<crate::catalog::Category>> {
        Ok(self.mem_get_category(org_id, name))
    }

    async fn list_categories(
        &self,
        org_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<crate::catalog::Category>> {
        self.mem_list_categories(org_id, limit, cursor)
    }

    async fn set_category_parent(
        &self,
        org_id: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<Option<crate::catalog::Category>> {
        self.mem_set_category_parent(org_id, name, parent)
    }

    async fn delete_category(&self, org_id: &str, name: &str) -> Result<bool> {
        self.mem_delete_category(org_id, name)
    }

    async fn add_terms(&self, org_id: &str, terms: &[CatalogTerm], _now: Millis) -> Result<usize> {
        for (i, t) in terms.iter().enumerate() {
            if !CatalogTerm::KINDS.contains(&t.kind.as_str()) {
                return Err(Error::invalid(
                    format!("terms[{i}].kind"),
                    "must be `brand` or `competitor`",
                ));
            }
            if t.name.trim().is_empty() {
                return Err(Error::invalid(format!("terms[{i}].name"), "must not be empty"));
            }
        }
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        let mut added = 0;
        for t in terms {
            if data.terms.insert((t.kind.clone(), t.name.trim().to_owned())) {
                added += 1;
            }
        }
        data.catalog_changes += added as u64;
        Ok(added)
    }

    async fn list_terms(&self, org_id: &str) -> Result<Vec<CatalogTerm>> {
        let inner = lock(&self.inner);
        Ok(inner
            .data
            .get(org_id)
            .map(|d| {
                d.terms
                    .iter()
                    .map(|(kind, name)| CatalogTerm {
                        kind: kind.clone(),
                        name: name.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn catalog_version(&self, org_id: &str) -> Result<String> {
        let inner = lock(&self.inner);
        Ok(inner.data.get(org_id).map_or(0, |d| d.catalog_changes).to_string())
    }

    async fn list_products(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Product>> {
        let query = crate::catalog::ProductQuery {
            limit,
            cursor: cursor.map(str::to_owned),
            ..Default::default()
        };
        self.mem_query_products(org_id, &query)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl JobQueue for MemoryStore {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: Millis) -> Result<()> {
        lock(&self.inner).enqueue(jobs, now);
        Ok(())
    }

    async fn reserve(&self, queue: &str, max: usize, lease_ms: i64, now: Millis) -> Result<Vec<Job>> {
        let mut inner = lock(&self.inner);
        let mut ready: Vec<(Millis, i64)> = inner
            .jobs
            .values()
            .filter(|r| {
                r.job.queue == queue
                    && match r.state {
                        JobState::Ready => r.available_at <= now,
                        JobState::InFlight => r.job.lease_until <= now,
                        JobState::Dead => false,
                    }
            })
            .map(|r| (r.job.enqueued_at, r.job.id))
            .collect();
        ready.sort_unstable();
        ready.truncate(max);
        let mut out = Vec::with_capacity(ready.len());
        for (_, id) in ready {
            if let Some(row) = inner.jobs.get_mut(&id) {
                row.state = JobState::InFlight;
                row.job.attempts += 1;
                row.job.lease_until = now.saturating_add(lease_ms);
                out.push(row.job.clone());
            }
        }
        Ok(out)
    }

    async fn ack(&self, job_id: i64) -> Result<()> {
        lock(&self.inner).jobs.remove(&job_id);
        Ok(())
    }

    async fn release_leases(&self, queue: &str) -> Result<u64> {
        let mut inner = lock(&self.inner);
        let mut n = 0;
        for row in inner.jobs.values_mut() {
            if row.job.queue == queue && row.state == JobState::InFlight {
                row.state = JobState::Ready;
                row.job.lease_until = 0;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn fail(&self, job_id: i64, error: &str, policy: &RetryPolicy, now: Millis, jitter: f64) -> Result<bool> {
        let mut inner = lock(&self.inner);
        let row = inner
            .jobs
            .get_mut(&job_id)
            .ok_or_else(|| Error::NotFound(format!("job {job_id}")))?;
        if row.state == JobState::Dead {
            return Ok(true);
        }
        row.last_error = Some(error.to_owned());
        if row.job.attempts >= policy.max_attempts {
            row.state = JobState::Dead;
            return Ok(true);
        }
        row.state = JobState::Ready;
        row.available_at = now.saturating_add(policy.backoff(row.job.attempts, jitter));
        Ok(false)
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        let inner = lock(&self.inner);
        let mut d = QueueDepth::default();
        for r in inner.jobs.values().filter(|r| r.job.queue == queue) {
            match r.state {
                JobState::Ready => d.ready += 1,
                JobState::InFlight => d.in_flight += 1,
                JobState::Dead => d.dead += 1,
            }
        }
        Ok(d)
    }

    async fn dead_letters(&self, queue: &str, limit: u32) -> Result<Vec<Job>> {
        let inner = lock(&self.inner);
        let mut dead: Vec<&JobRow> = inner
            .jobs
            .values()
            .filter(|r| r.job.queue == queue && r.state == JobState::Dead)
            .collect();
        dead.sort_by_key(|r| (r.job.enqueued_at, r.job.id));
        Ok(dead.into_iter().take(limit as usize).map(|r| r.job.clone()).collect())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl WorkflowStore for MemoryStore {
    async fn load_steps(&self, run_id: &str) -> Result<HashMap<String, Value>> {
        Ok(lock(&self.inner).runs.get(run_id).cloned().unwrap_or_default())
    }

    async fn save_step(&self, run_id: &str, step: &str, output: &Value, _now: Millis) -> Result<()> {
        lock(&self.inner)
            .runs
            .entry(run_id.to_owned())
            .or_default()
            .insert(step.to_owned(), output.clone());
        Ok(())
    }

    async fn finish_run(&self, run_id: &str, _now: Millis) -> Result<()> {
        let mut inner = lock(&self.inner);
        inner.runs.remove(run_id);
        inner.finished_runs.insert(run_id.to_owned());
        Ok(())
    }
}

/// The person `id` belongs to in an org: the root, every id of it (sorted), and the indexes of
/// their events (`PersonStore`'s contract says which).
fn person_in(data: &OrgData, id: &str) -> (String, Vec<String>, Vec<usize>) {
    let root = data.resolve(id).unwrap_or_else(|| id.to_owned());
    let mut ids: BTreeSet<String> = data
        .links
        .iter()
        .filter(|(_, p)| **p == root)
        .map(|(a, _)| a.clone())
        .collect();
    ids.insert(root.clone());
    let mine = |v: &Option<String>| v.as_ref().is_some_and(|v| ids.contains(v));
    let events = (0..data.events.len())
        .filter(|&i| {
            let e = &data.events[i].ev;
            mine(&e.person_id) || mine(&e.anonymous_id) || mine(&e.user_id)
        })
        .collect();
    (root, ids.into_iter().collect(), events)
}

/// The person's sessions: those of their ids and those their events belong to, sorted by id.
fn person_sessions(data: &OrgData, ids: &[String], events: &[usize]) -> Vec<String> {
    let of_events: HashSet<&str> = events
        .iter()
        .filter_map(|&i| data.events[i].ev.session_id.as_deref())
        .collect();
    let mut out: Vec<String> = data
        .sessions
        .values()
        .filter(|s| ids.contains(&s.person_id) || of_events.contains(s.id.as_str()))
        .map(|s| s.id.clone())
        .collect();
    out.sort();
    out
}

/// The identity links of the person's ids, by alias.
fn person_links(data: &OrgData, ids: &[String]) -> Vec<crate::person::IdentityLink> {
    let mut out: Vec<crate::person::IdentityLink> = data
        .links
        .iter()
        .filter(|(a, p)| ids.contains(a) || ids.contains(p))
        .map(|(a, p)| crate::person::IdentityLink {
            alias_id: a.clone(),
            person_id: p.clone(),
            linked_at: data.link_times.get(a).copied().unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| a.alias_id.cmp(&b.alias_id));
    out
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl crate::ports::PersonStore for MemoryStore {
    async fn person_data(&self, org_id: &str, id: &str) -> Result<Option<crate::person::PersonData>> {
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(None);
        };
        let (person_id, ids, events) = person_in(data, id);
        let sessions = person_sessions(data, &ids, &events);
        let identities = person_links(data, &ids);
        if events.is_empty() && sessions.is_empty() && identities.is_empty() {
            return Ok(None);
        }
        let mut interactions: Vec<Interaction> = events.iter().map(|&i| data.events[i].ev.clone()).collect();
        interactions.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
        let mut texts: Vec<InteractionText> = interactions
            .iter()
            .filter_map(|e| data.texts.get(&e.id).cloned())
            .collect();
        texts.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        let mut sessions: Vec<Session> = sessions.iter().filter_map(|s| data.sessions.get(s).cloned()).collect();
        sessions.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(Some(crate::person::PersonData {
            person_id,
            ids,
            identities,
            interactions,
            sessions,
            texts,
        }))
    }

    async fn erase_person(&self, org_id: &str, id: &str, _now: Millis) -> Result<Option<crate::person::Erasure>> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let Some(data) = inner.data.get_mut(org_id) else {
            return Ok(None);
        };
        let (person_id, ids, events) = person_in(data, id);
        let sessions = person_sessions(data, &ids, &events);
        let identities = person_links(data, &ids);
        if events.is_empty() && sessions.is_empty() && identities.is_empty() {
            return Ok(None);
        }
        let mut counts = crate::person::ErasureCounts::default();
        let mut event_ids: Vec<String> = events.iter().map(|&i| data.events[i].ev.id.clone()).collect();
        event_ids.sort();
        let erased: HashSet<usize> = events.into_iter().collect();
        let mut i = 0;
        data.events.retain(|_| {
            i += 1;
            !erased.contains(&(i - 1))
        });
        data.by_id = data
            .events
            .iter()
            .enumerate()
            .map(|(i, s)| (s.ev.id.clone(), i))
            .collect();
        counts.interactions = event_ids.len() as u64;
        for s in &sessions {
            data.sessions.remove(s);
        }
        counts.sessions = sessions.len() as u64;
        for l in &identities {
            data.links.remove(&l.alias_id);
            data.link_times.remove(&l.alias_id);
        }
        counts.identities = identities.len() as u64;
        for e in &event_ids {
            counts.texts += u64::from(data.texts.remove(e).is_some());
        }
        let erased_ids: HashSet<&str> = event_ids.iter().map(String::as_str).collect();
        let mut dropped = Vec::new();
        for row in inner.jobs.values_mut() {
            match crate::person::scrub_job_payload(&row.job.payload, org_id, &erased_ids) {
                crate::person::JobScrub::Keep => continue,
                crate::person::JobScrub::Rewrite(p) => row.job.payload = p,
                crate::person::JobScrub::Delete => dropped.push(row.job.id),
            }
            counts.jobs += 1;
        }
        for j in dropped {
            inner.jobs.remove(&j);
        }
        let mut needles = erased_ids;
        needles.extend(ids.iter().map(String::as_str));
        needles.extend(sessions.iter().map(String::as_str));
        let before = inner.runs.len();
        inner
            .runs
            .retain(|_, steps| !steps.values().any(|v| crate::person::names_any(v, &needles)));
        counts.workflow_runs = (before - inner.runs.len()) as u64;
        Ok(Some(crate::person::Erasure {
            person_id,
            ids,
            event_ids,
            counts,
        }))
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl SocialStore for MemoryStore {
    async fn known_mentions(&self, org_id: &str, ids: &[String]) -> Result<Vec<String>> {
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Vec::new());
        };
        let mut seen = HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| {
                (data.mentions.contains_key(*id) || data.mention_duplicates.contains_key(*id))
                    && seen.insert(id.as_str())
            })
            .cloned()
            .collect())
    }

    async fn store_mentions(
        &self,
        org_id: &str,
        mentions: &[SocialMention],
        duplicates: &[MentionDuplicate],
        follow_up: Vec<NewJob>,
        now: Millis,
    ) -> Result<MentionOutcome> {
        if let Some(i) = mentions.iter().position(|m| m.org_id != org_id) {
            return Err(Error::invalid(
                format!("mentions[{i}].org_id"),
                format!("`{}` is not the org the mentions are stored for", mentions[i].org_id),
            ));
        }
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        let mut out = MentionOutcome::default();
        for m in mentions {
            if data.mentions.contains_key(&m.id) || data.mention_duplicates.contains_key(&m.id) {
                out.existing += 1;
            } else {
                data.mentions.insert(m.id.clone(), m.clone());
                out.stored += 1;
            }
        }
        for d in duplicates {
            if data.mentions.contains_key(&d.id) || data.mention_duplicates.contains_key(&d.id) {
                out.existing += 1;
            } else {
                data.mention_duplicates.insert(d.id.clone(), d.clone());
                out.duplicates += 1;
            }
        }
        if out.stored + out.duplicates > 0 || out.existing == 0 {
            inner.enqueue(follow_up, now);
        }
        Ok(out)
    }

    async fn mention_simhashes(&self, org_id: &str, since: Millis) -> Result<Vec<(String, u64)>> {
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Vec::new());
        };
        let mut rows: Vec<(Millis, &str, u64)> = data
            .mentions
            .values()
            .filter(|m| m.posted_at >= since)
            .filter_map(|m| m.simhash.map(|h| (m.posted_at, m.id.as_str(), h)))
            .collect();
        rows.sort_unstable();
        Ok(rows.into_iter().map(|(_, id, h)| (id.to_owned(), h)).collect())
    }

    async fn get_mentions(&self, org_id: &str, ids: &[String]) -> Result<Vec<SocialMention>> {
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Vec::new());
        };
        Ok(ids.iter().filter_map(|id| data.mentions.get(id).cloned()).collect())
    }

    async fn list_mentions(&self, org_id: &str, query: &MentionQuery) -> Result<Page<SocialMention>> {
        let after = query.cursor.as_deref().map(decode_id_cursor).transpose()?;
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Page {
                data: Vec::new(),
                next_cursor: None,
            });
        };
        let mut rows: Vec<&SocialMention> = data
            .mentions
            .values()
            .filter(|m| {
                query.platform.as_ref().is_none_or(|p| &m.platform == p)
                    && query.source.as_ref().is_none_or(|s| &m.source == s)
                    && query.selected.is_none_or(|s| m.selected == s)
                    && query.since.is_none_or(|t| m.posted_at >= t)
                    && query.until.is_none_or(|t| m.posted_at < t)
                    && after.as_ref().is_none_or(|(ts, id)| (m.posted_at, &m.id) < (*ts, id))
            })
            .collect();
        rows.sort_by(|a, b| (b.posted_at, &b.id).cmp(&(a.posted_at, &a.id)));
        let limit = clamp_limit(query.limit);
        Ok(id_page(rows, limit, |r| (r.posted_at, r.id.as_str())))
    }

    async fn list_duplicates(
        &self,
        org_id: &str,
        original_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MentionDuplicate>> {
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Vec::new());
        };
        let mut rows: Vec<&MentionDuplicate> = data
            .mention_duplicates
            .values()
            .filter(|d| original_id.is_none_or(|o| d.original_id == o))
            .collect();
        rows.sort_by(|a, b| (b.fetched_at, &b.id).cmp(&(a.fetched_at, &a.id)));
        rows.truncate(clamp_limit(limit));
        Ok(rows.into_iter().cloned().collect())
    }

    async fn set_mention_analysis(
        &self,
        org_id: &str,
        id: &str,
        sentiment: Option<f32>,
        analysis: &Value,
    ) -> Result<()> {
        let mut inner = lock(&self.inner);
        let m = inner
            .data
            .get_mut(org_id)
            .and_then(|d| d.mentions.get_mut(id))
            .ok_or_else(|| Error::NotFound(format!("mention {id}")))?;
        m.sentiment = sentiment;
        m.analysis = Some(analysis.clone());
        Ok(())
    }

    async fn source_state(&self, org_id: &str, source: &str) -> Result<Option<SourceState>> {
        Ok(lock(&self.inner)
            .data
            .get(org_id)
            .and_then(|d| d.sources.get(source).cloned()))
    }

    async fn set_source_state(&self, org_id: &str, source: &str, state: &SourceState) -> Result<()> {
        lock(&self.inner)
            .data
            .entry(org_id.to_owned())
            .or_default()
            .sources
            .insert(source.to_owned(), state.clone());
        Ok(())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl VideoStore for MemoryStore {
    async fn store_frame_events(&self, org_id: &str, events: &[FrameEvent]) -> Result<usize> {
        for (i, e) in events.iter().enumerate() {
            if e.org_id != org_id {
                return Err(Error::invalid(
                    format!("events[{i}].org_id"),
                    format!("`{}` is not the org the events are stored for", e.org_id),
                ));
            }
            if e.value.is_some_and(|v| !v.is_finite()) {
                return Err(Error::invalid(format!("events[{i}].value"), "not a finite number"));
            }
        }
        if events.is_empty() {
            return Ok(0);
        }
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        let mut stored = 0;
        for e in events {
            if !data.frame_events.contains_key(&e.id) {
                data.frame_events.insert(e.id.clone(), e.clone());
                stored += 1;
            }
        }
        Ok(stored)
    }

    async fn list_frame_events(&self, org_id: &str, query: &crate::video::FrameEventQuery) -> Result<Page<FrameEvent>> {
        let limit = check_limit(query.limit)?;
        let after = query.cursor.as_deref().map(decode_id_cursor).transpose()?;
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Page {
                data: Vec::new(),
                next_cursor: None,
            });
        };
        let mut rows: Vec<&FrameEvent> = data
            .frame_events
            .values()
            .filter(|e| {
                query.camera_id.as_ref().is_none_or(|c| &e.camera_id == c)
                    && query.kind.is_none_or(|k| e.kind == k)
                    && query.zone.as_ref().is_none_or(|z| e.zone.as_ref() == Some(z))
                    && query.since.is_none_or(|t| e.timestamp >= t)
                    && query.until.is_none_or(|t| e.timestamp < t)
                    && after.as_ref().is_none_or(|(ts, id)| (e.timestamp, &e.id) > (*ts, id))
            })
            .collect();
        rows.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
        Ok(id_page(rows, limit, |r| (r.timestamp, r.id.as_str())))
    }

    async fn record_archive(&self, org_id: &str, entries: &[crate::video::ArchiveEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        for e in entries {
            data.archive.insert(e.key.clone(), e.clone());
        }
        Ok(())
    }

    async fn archive_usage(&self, org_id: &str) -> Result<crate::video::ArchiveUsage> {
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(crate::video::ArchiveUsage::default());
        };
        Ok(crate::video::ArchiveUsage {
            objects: data.archive.len() as u64,
            bytes: data.archive.values().map(|e| e.bytes).sum(),
            oldest: data.archive.values().map(|e| e.timestamp).min(),
        })
    }

    async fn oldest_archive(&self, org_id: &str, limit: u32) -> Result<Vec<crate::video::ArchiveEntry>> {
        let limit = check_limit(limit)?;
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Vec::new());
        };
        let mut rows: Vec<&crate::video::ArchiveEntry> = data.archive.values().collect();
        rows.sort_by(|a, b| (a.timestamp, &a.key).cmp(&(b.timestamp, &b.key)));
        rows.truncate(limit);
        Ok(rows.into_iter().cloned().collect())
    }

    async fn remove_archive(&self, org_id: &str, keys: &[String]) -> Result<usize> {
        let mut inner = lock(&self.inner);
        let Some(data) = inner.data.get_mut(org_id) else {
            return Ok(0);
        };
        Ok(keys
            .iter()
            .filter(|k| data.archive.remove(k.as_str()).is_some())
            .count())
    }
}

// ---------------------------------------------------------------------------------------------
// MemoryBlobStore
// ---------------------------------------------------------------------------------------------

/// In-memory [`BlobStore`]. Rejects keys that are empty, start with `/`, or contain an empty,
/// `.` or `..` segment, with [`Error::Invalid`] (field `key`).
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of objects (for tests).
    pub fn len(&self) -> usize {
        lock(&self.objects).len()
    }

    /// True when no object is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.starts_with('/') || key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(Error::invalid(
            "key",
            format!("{key:?} is not a relative `/`-separated path"),
        ));
    }
    Ok(())
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        check_key(key)?;
        lock(&self.objects).insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        Ok(lock(&self.objects).get(key).cloned())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(lock(&self.objects)
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        lock(&self.objects).remove(key);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// FakeTextAnalyzer
// ---------------------------------------------------------------------------------------------

const POSITIVE: &[&str] = &[
    "good",
    "great",
    "love",
    "loved",
    "excellent",
    "amazing",
    "awesome",
    "happy",
    "best",
    "fantastic",
    "nice",
    "perfect",
    "recommend",
    "wonderful",
    "like",
    "fast",
];
const NEGATIVE: &[&str] = &[
    "bad",
    "terrible",
    "hate",
    "awful",
    "worst",
    "poor",
    "broken",
    "slow",
    "disappointed",
    "horrible",
    "refund",
    "angry",
    "sad",
    "useless",
];

/// Deterministic [`TextAnalyzer`]: counts words of a tiny positive and negative list
/// (score = (pos − neg) / (pos + neg), tier `fake`), finds `@handle` entities (kind `handle`)
/// and detects no language.
#[derive(Debug, Default, Clone, Copy)]
pub struct FakeTextAnalyzer;

impl FakeTextAnalyzer {
    /// The analyzer.
    pub fn new() -> Self {
        FakeTextAnalyzer
    }

    /// Analyzes one text.
    pub fn analyze_one(text: &str) -> TextAnalysis {
        let (mut pos, mut neg) = (0u32, 0u32);
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let w = word.to_lowercase();
            if POSITIVE.contains(&w.as_str()) {
                pos += 1;
            } else if NEGATIVE.contains(&w.as_str()) {
                neg += 1;
            }
        }
        let score = if pos + neg == 0 {
            0.0
        } else {
            (pos as f32 - neg as f32) / (pos + neg) as f32
        };
        let label = if score > 0.0 {
            "positive"
        } else if score < 0.0 {
            "negative"
        } else {
            "neutral"
        };
        TextAnalysis {
            language: None,
            sentiment: Some(Sentiment {
                label: label.into(),
                score,
                tier: "fake".into(),
            }),
            entities: handles(text),
            key_phrases: Vec::new(),
        }
    }
}

/// `@handle` mentions: an `@` at the start or after a non-word character, then word characters,
/// dots, dashes and `@` (for `@user@host` and `@user.bsky.social`), trailing punctuation trimmed.
fn handles(text: &str) -> Vec<Entity> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if c == '@' && prev.is_none_or(|p| !is_word(p) && p != '@') {
            let start = i;
            let mut end = i + 1;
            while let Some(&(j, d)) = iter.peek() {
                if is_word(d) || d == '.' || d == '-' || d == '@' {
                    end = j + d.len_utf8();
                    iter.next();
                } else {
                    break;
                }
            }
            let mut handle = &text[start..end];
            handle = handle.trim_end_matches(['.', '-', '@']);
            if handle.len() > 1 {
                out.push(Entity {
                    kind: "handle".into(),
                    text: handle.to_owned(),
                    start,
                    end: start + handle.len(),
                    product_id: None,
                    pii: false,
                });
            }
            prev = text[..end].chars().next_back();
            continue;
        }
        prev = Some(c);
    }
    out
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl TextAnalyzer for FakeTextAnalyzer {
    async fn analyze(&self, _org_id: &str, texts: &[String]) -> Result<Vec<TextAnalysis>> {
        Ok(texts.iter().map(|t| Self::analyze_one(t)).collect())
    }
}

// ---------------------------------------------------------------------------------------------
// HashEmbedder
// ---------------------------------------------------------------------------------------------

/// FNV-1a, 64 bit: stable across platforms and releases (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Deterministic [`Embedder`]: a hashed bag of lowercase words (FNV-1a picks the dimension and
/// the sign), L2-normalized. Texts sharing words are close; a text without words embeds to the
/// first unit vector, so every output is normalized.
#[derive(Debug, Clone, Copy)]
pub struct HashEmbedder {
    dim: usize,
}

impl HashEmbedder {
    /// An embedder of `dim` dimensions.
    ///
    /// # Panics
    /// When `dim` is 0.
    pub fn new(dim: usize) -> Self {
        assert!(dim > 0, "HashEmbedder needs at least one dimension");
        HashEmbedder { dim }
    }

    /// Embeds one text.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let h = fnv1a(word.to_lowercase().as_bytes());
            let i = (h % self.dim as u64) as usize;
            v[i] += if h >> 63 == 1 { -1.0 } else { 1.0 };
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 {
            v[0] = 1.0;
        } else {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

impl Default for HashEmbedder {
    /// 64 dimensions.
    fn default() -> Self {
        HashEmbedder::new(64)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl Embedder for HashEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

// ---------------------------------------------------------------------------------------------
// BruteForceIndex
// ---------------------------------------------------------------------------------------------

/// [`VectorIndex`] by exhaustive search: the reference the approximate indexes are measured
/// against. Validates like every backend ([`IndexInfo::validate_record`]); ties are broken by id,
/// so results are deterministic.
#[derive(Debug)]
pub struct BruteForceIndex {
    info: IndexInfo,
    /// `(org, namespace, id)` → record (values normalized for cosine).
    records: Mutex<BTreeMap<RecordKey, VectorRecord>>,
}

/// `(org, namespace, id)`.
type RecordKey = (String, Option<String>, String);

impl BruteForceIndex {
    /// An empty cosine index of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Self {
        Self::with_metric(dim, crate::vector::Metric::Cosine)
    }

    /// An empty index with the given metric.
    pub fn with_metric(dim: usize, metric: crate::vector::Metric) -> Self {
        BruteForceIndex {
            info: IndexInfo {
                name: "brute-force".into(),
                dimensions: dim,
                metric,
            },
            records: Mutex::new(BTreeMap::new()),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl VectorIndex for BruteForceIndex {
    fn info(&self) -> &IndexInfo {
        &self.info
    }

    async fn upsert(&self, org_id: &str, mut records: Vec<VectorRecord>) -> Result<usize> {
        for (i, r) in records.iter_mut().enumerate() {
            self.info.validate_record(i, r)?;
            if self.info.metric == crate::vector::Metric::Cosine {
                crate::vector::normalize(&mut r.values)?;
            }
        }
        let n = records.len();
        let mut map = lock(&self.records);
        for r in records {
            // An id lives in one namespace of an org: a new namespace replaces the old record.
            map.retain(|(o, _, id), _| !(o == org_id && id == &r.id));
            map.insert((org_id.to_string(), r.namespace.clone(), r.id.clone()), r);
        }
        Ok(n)
    }

    async fn delete(&self, org_id: &str, ids: &[String]) -> Result<usize> {
        let mut map = lock(&self.records);
        let before = map.len();
        map.retain(|(o, _, id), _| !(o == org_id && ids.contains(id)));
        Ok(before - map.len())
    }

    async fn get(&self, org_id: &str, ids: &[String]) -> Result<Vec<VectorRecord>> {
        let map = lock(&self.records);
        Ok(ids
            .iter()
            .filter_map(|id| {
                map.iter()
                    .find(|((o, _, i), _)| o == org_id && i == id)
                    .map(|(_, r)| r.clone())
            })
            .collect())
    }

    async fn query(&self, org_id: &str, query: &VectorQuery) -> Result<Vec<VectorMatch>> {
        self.info.validate_query(query)?;
        let metric = self.info.metric;
        let mut q = query.vector.clone();
        if metric == crate::vector::Metric::Cosine {
            crate::vector::normalize(&mut q)?;
        }
        let map = lock(&self.records);
        let scored = map
            .iter()
            .filter(|((o, ns, _), r)| {
                o == org_id
                    && (query.namespace.is_none() || ns == &query.namespace)
                    && query.filter.matches(&r.metadata)
            })
            .map(|(_, r)| (metric.score(&q, &r.values), r));
        Ok(crate::vector::top_k(metric, scored, query.top_k, |r| r.id.clone())
            .into_iter()
            .map(|(score, r)| VectorMatch {
                id: r.id.clone(),
                namespace: r.namespace.clone(),
                score,
                metadata: r.metadata.clone(),
            })
            .collect())
    }

    async fn count(&self, org_id: &str) -> Result<usize> {
        Ok(lock(&self.records).keys().filter(|(o, _, _)| o == org_id).count())
    }
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// [`FrameSource`] over a list of frames, delivered in time order (the constructor sorts them,
/// stably), then `Ok(None)`.
#[derive(Debug, Default)]
pub struct VecFrameSource {
    frames: VecDeque<Frame>,
}

impl VecFrameSource {
    /// A source of these frames.
    pub fn new(mut frames: Vec<Frame>) -> Self {
        frames.sort_by_key(|f| f.timestamp);
        VecFrameSource { frames: frames.into() }
    }

    /// Frames not delivered yet.
    pub fn remaining(&self) -> usize {
        self.frames.len()
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl FrameSource for VecFrameSource {
    async fn next_frame(&mut self) -> Result<Option<Frame>> {
        Ok(self.frames.pop_front())
    }
}

/// [`FrameAnalyzer`] that answers configured boxes: the analysis set for a frame's timestamp
/// with [`with_frame`](FixedFrameAnalyzer::with_frame), else the default one.
#[derive(Debug, Default)]
pub struct FixedFrameAnalyzer {
    default: FrameAnalysis,
    by_timestamp: HashMap<Millis, FrameAnalysis>,
    calls: Mutex<usize>,
}

impl FixedFrameAnalyzer {
    /// Answers `analysis` for every frame.
    pub fn new(analysis: FrameAnalysis) -> Self {
        FixedFrameAnalyzer {
            default: analysis,
            ..Default::default()
        }
    }

    /// Answers `analysis` for the frame at `timestamp`.
    pub fn with_frame(mut self, timestamp: Millis, analysis: FrameAnalysis) -> Self {
        self.by_timestamp.insert(timestamp, analysis);
        self
    }

    /// Frames analyzed so far.
    pub fn calls(&self) -> usize {
        *lock(&self.calls)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl FrameAnalyzer for FixedFrameAnalyzer {
    async fn analyze(&self, frame: &Frame) -> Result<FrameAnalysis> {
        *lock(&self.calls) += 1;
        Ok(self.by_timestamp.get(&frame.timestamp).unwrap_or(&self.default).clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A social mention for contract tests: id `platform:n`, posted at `posted_at`, fetched 10 ms
/// later, with every optional field set (so a store that drops one is caught); even `n` are
/// `selected`.
pub fn sample_mention(org: &str, platform: &str, n: u32, posted_at: Millis) -> SocialMention {
    SocialMention {
        id: format!("{platform}:{n}"),
        org_id: org.into(),
        platform: platform.into(),
        platform_id: n.to_string(),
        author: Some(format!("author-{n}")),
        text: format!("post {n} about acme"),
        url: Some(format!("https://{platform}.example/{n}")),
        language: Some("en".into()),
        posted_at,
        fetched_at: posted_at + 10,
        sentiment: None,
        source: "watch".into(),
        query: Some("acme".into()),
        engagement: Engagement {
            likes: Some(3),
            reposts: None,
            replies: Some(1),
            score: Some(-2),
        },
        simhash: Some((u64::from(n) << 32) | 0xABCD),
        lexicon_score: Some(0.25),
        selected: n.is_multiple_of(2),
        analysis: None,
    }
}

/// A duplicate link for contract tests: `id` (`platform:n`) points at `original`.
pub fn sample_duplicate(id: &str, original: &str, fetched_at: Millis) -> MentionDuplicate {
    MentionDuplicate {
        id: id.into(),
        original_id: original.into(),
        platform: id.split(':').next().unwrap_or_default().into(),
        url: Some(format!("https://example.org/{id}")),
        distance: 2,
        fetched_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::{sample_duplicate as dup, sample_mention as mention};
    use futures::executor::block_on;
    use serde_json::json;

    const ORG: &str = "org_a";
    const MIN: Millis = 60_000;

    fn ev(id: &str, anon: &str, ts: Millis) -> Interaction {
        Interaction {
            id: id.into(),
            org_id: ORG.into(),
            event_type: EventType::Page,
            name: None,
            anonymous_id: Some(anon.into()),
            user_id: None,
            session_id: None,
            group_id: None,
            previous_id: None,
            properties: Default::default(),
            traits: Default::default(),
            context: Context {
                page: Some(PageContext {
                    path: Some(format!("/{id}")),
                    ..Default::default()
                }),
                ..Default::default()
            },
            timestamp: ts,
            original_timestamp: None,
            sent_at: None,
            received_at: ts,
            source: Source::Crow,
            is_bot: false,
            pii_scrubbed: 0,
            person_id: None,
            referrer_class: None,
            analysis: None,
        }
    }

    fn track(id: &str, anon: &str, name: &str, ts: Millis) -> Interaction {
        Interaction {
            event_type: EventType::Track,
            name: Some(name.into()),
            context: Context::default(),
            ..ev(id, anon, ts)
        }
    }

    fn enrich(id: &str, person: &str, session: &str) -> Enrichment {
        Enrichment {
            event_id: id.into(),
            person_id: person.into(),
            session_id: session.into(),
            referrer_class: ReferrerClass::Direct,
        }
    }

    fn q(limit: u32) -> InteractionQuery {
        InteractionQuery {
            limit,
            ..Default::default()
        }
    }

    #[test]
    fn append_is_idempotent_and_enqueues_follow_up() {
        block_on(async {
            let s = MemoryStore::new();
            let job = NewJob::new(queues::INTERACTION, "interaction", json!({"b": 1}));
            let out = s
                .append(
                    ORG,
                    vec![ev("a", "x", 1), ev("a", "x", 1), ev("b", "x", 2)],
                    vec![job.clone()],
                )
                .await
                .unwrap();
            assert_eq!(
                out,
                AppendOutcome {
                    inserted: 2,
                    duplicates: 1,
                    inserted_ids: vec!["a".into(), "b".into()],
                }
            );
            let mut changed = ev("a", "x", 99);
            changed.name = Some("changed".into());
            let out = s.append(ORG, vec![changed], vec![job]).await.unwrap();
            assert_eq!(
                out,
                AppendOutcome {
                    inserted: 0,
                    duplicates: 1,
                    inserted_ids: vec![],
                }
            );
            let got = s.get_interactions(ORG, &["a".into()]).await.unwrap();
            assert_eq!(got[0].timestamp, 1, "a duplicate leaves the stored event unchanged");
            // an all-duplicate (resent) batch does not enqueue its follow-up again
            assert_eq!(s.depth(queues::INTERACTION).await.unwrap().ready, 1);
            // the same id in another org is another event
            assert_eq!(
                s.append("org_b", vec![ev("a", "x", 1)], vec![]).await.unwrap().inserted,
                1
            );
        });
    }

    #[test]
    fn reads_are_scoped_to_the_org() {
        block_on(async {
            let s = MemoryStore::new();
            s.append(ORG, vec![ev("a", "x", 1)], vec![]).await.unwrap();
            assert!(s.get_interactions("org_b", &["a".into()]).await.unwrap().is_empty());
            assert!(s.list_interactions("org_b", &q(10)).await.unwrap().data.is_empty());
            s.apply_enrichment(ORG, &[enrich("a", "x", "s1")]).await.unwrap();
            s.refresh_sessions(ORG, &["s1".into()]).await.unwrap();
            assert!(s.get_session("org_b", "s1").await.unwrap().is_none());
            assert!(s.get_session(ORG, "s1").await.unwrap().is_some());
            assert_eq!(
                s.traffic_summary("org_b", 0, 100, 5).await.unwrap(),
                TrafficSummary::default()
            );
            // an event appended under another org's id is stored under the caller's org
            let mut foreign = ev("f", "x", 1);
            foreign.org_id = "org_evil".into();
            s.append(ORG, vec![foreign], vec![]).await.unwrap();
            assert_eq!(s.get_interactions(ORG, &["f".into()]).await.unwrap()[0].org_id, ORG);
        });
    }

    #[test]
    fn get_follows_id_order_and_skips_unknown() {
        block_on(async {
            let s = MemoryStore::new();
            s.append(ORG, vec![ev("a", "x", 1), ev("b", "x", 2)], vec![])
                .await
                .unwrap();
            let got = s
                .get_interactions(ORG, &["b".into(), "zz".into(), "a".into()])
                .await
                .unwrap();
            assert_eq!(got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        });
    }

    #[test]
    fn list_is_newest_first_with_cursor_and_filters() {
        block_on(async {
            let s = MemoryStore::new();
            // c and d share a timestamp: the later insert comes first
            let mut t = track("t", "x", "Checkout", 3);
            t.is_bot = true;
            s.append(
                ORG,
                vec![ev("a", "x", 1), ev("b", "x", 5), ev("c", "x", 3), ev("d", "x", 3), t],
                vec![],
            )
            .await
            .unwrap();
            let mut ids = Vec::new();
            let mut cursor = None;
            loop {
                let page = s
                    .list_interactions(
                        ORG,
                        &InteractionQuery {
                            limit: 2,
                            cursor,
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                assert!(page.data.len() <= 2);
                ids.extend(page.data.into_iter().map(|e| e.id));
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            assert_eq!(ids, ["b", "t", "d", "c", "a"]);
            let tracks = s
                .list_interactions(
                    ORG,
                    &InteractionQuery {
                        limit: 10,
                        event_type: Some(EventType::Track),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(tracks.data.len(), 1);
            let named = s
                .list_interactions(
                    ORG,
                    &InteractionQuery {
                        limit: 10,
                        name: Some("Checkout".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(named.data.len(), 1);
            let window = s
                .list_interactions(
                    ORG,
                    &InteractionQuery {
                        limit: 10,
                        since: Some(3),
                        until: Some(5),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(window.data.len(), 3);
            // limit 0 is clamped to 1
            let one = s.list_interactions(ORG, &q(0)).await.unwrap();
            assert_eq!(one.data.len(), 1);
            assert!(one.next_cursor.is_some());
            let bad = s
                .list_interactions(
                    ORG,
                    &InteractionQuery {
                        limit: 1,
                        cursor: Some("nope".into()),
                        ..Default::default()
                    },
                )
                .await;
            assert!(matches!(bad, Err(Error::Invalid { .. })));
            // last page has no cursor
            assert!(s.list_interactions(ORG, &q(5)).await.unwrap().next_cursor.is_none());
        });
    }

    #[test]
    fn enrichment_and_session_refresh() {
        block_on(async {
            let s = MemoryStore::new();
            let mut first = ev("a", "x", 10);
            if let Some(p) = first.context.page.as_mut() {
                p.referrer = Some("https://www.google.com/".into());
            }
            first.context.campaign = Some(Campaign {
                source: Some("news".into()),
                ..Default::default()
            });
            first.context.user_agent = Some(UserAgentInfo {
                device: DeviceClass::Mobile,
                ..Default::default()
            });
            let mut last = track("c", "x", "Signup", 30);
            last.is_bot = true;
            s.append(ORG, vec![first, ev("b", "x", 20), last], vec![])
                .await
                .unwrap();
            let mut en = vec![
                enrich("a", "x", "s1"),
                enrich("b", "x", "s1"),
                enrich("c", "x", "s1"),
                enrich("unknown", "x", "s1"),
            ];
            en[0].referrer_class = ReferrerClass::Search;
            s.apply_enrichment(ORG, &en).await.unwrap();
            s.apply_enrichment(ORG, &en).await.unwrap(); // idempotent
            s.refresh_sessions(ORG, &["s1".into()]).await.unwrap();
            let ses = s.get_session(ORG, "s1").await.unwrap().unwrap();
            assert_eq!(
                (ses.started_at, ses.ended_at, ses.event_count, ses.page_count),
                (10, 30, 3, 2)
            );
            assert_eq!(ses.entry_path.as_deref(), Some("/a"));
            assert_eq!(ses.exit_path.as_deref(), Some("/b"));
            assert_eq!(ses.referrer.as_deref(), Some("https://www.google.com/"));
            assert_eq!(ses.referrer_class, Some(ReferrerClass::Search));
            assert_eq!(ses.campaign.as_deref(), Some("news|||"));
            assert_eq!(ses.device, Some(DeviceClass::Mobile));
            assert!(ses.is_bot);
            assert_eq!(ses.person_id, "x");
            let by_session = s
                .list_interactions(
                    ORG,
                    &InteractionQuery {
                        limit: 10,
                        session_id: Some("s1".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(by_session.data.len(), 3);
            // refresh again: same row
            s.refresh_sessions(ORG, &["s1".into()]).await.unwrap();
            assert_eq!(s.get_session(ORG, "s1").await.unwrap().unwrap(), ses);
            // a session without events disappears
            s.apply_enrichment(
                ORG,
                &[enrich("a", "x", "s2"), enrich("b", "x", "s2"), enrich("c", "x", "s2")],
            )
            .await
            .unwrap();
            s.refresh_sessions(ORG, &["s1".into(), "s2".into()]).await.unwrap();
            assert!(s.get_session(ORG, "s1").await.unwrap().is_none());
            assert_eq!(s.get_session(ORG, "s2").await.unwrap().unwrap().event_count, 3);
        });
    }

    #[test]
    fn latest_session_and_listing() {
        block_on(async {
            let s = MemoryStore::new();
            s.append(
                ORG,
                vec![ev("a", "x", 0), ev("b", "x", 40 * MIN), ev("c", "y", 50 * MIN)],
                vec![],
            )
            .await
            .unwrap();
            s.apply_enrichment(
                ORG,
                &[enrich("a", "x", "s1"), enrich("b", "x", "s2"), enrich("c", "y", "s3")],
            )
            .await
            .unwrap();
            s.refresh_sessions(ORG, &["s1".into(), "s2".into(), "s3".into()])
                .await
                .unwrap();
            assert!(s.latest_session(ORG, "x", -1).await.unwrap().is_none());
            assert_eq!(s.latest_session(ORG, "x", 0).await.unwrap().unwrap().id, "s1");
            assert_eq!(s.latest_session(ORG, "x", 39 * MIN).await.unwrap().unwrap().id, "s1");
            assert_eq!(s.latest_session(ORG, "x", 41 * MIN).await.unwrap().unwrap().id, "s2");
            let all = s
                .list_sessions(
                    ORG,
                    &SessionQuery {
                        limit: 2,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(all.data.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["s3", "s2"]);
            let rest = s
                .list_sessions(
                    ORG,
                    &SessionQuery {
                        limit: 2,
                        cursor: all.next_cursor,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(rest.data.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["s1"]);
            assert!(rest.next_cursor.is_none());
            let x = s
                .list_sessions(
                    ORG,
                    &SessionQuery {
                        limit: 10,
                        person_id: Some("x".into()),
                        since: Some(1),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(x.data.len(), 1);
        });
    }

    #[test]
    fn identity_links_repoint_events_and_sessions() {
        block_on(async {
            let s = MemoryStore::new();
            s.append(ORG, vec![ev("a", "anon1", 0), ev("b", "anon2", 1)], vec![])
                .await
                .unwrap();
            s.apply_enrichment(ORG, &[enrich("a", "anon1", "s1"), enrich("b", "anon2", "s2")])
                .await
                .unwrap();
            s.refresh_sessions(ORG, &["s1".into(), "s2".into()]).await.unwrap();
            assert_eq!(s.resolve_person(ORG, "anon1").await.unwrap(), None);
            s.link_identity(ORG, "anon1", "user", 5).await.unwrap();
            s.link_identity(ORG, "anon1", "user", 5).await.unwrap(); // idempotent
            assert_eq!(s.resolve_person(ORG, "anon1").await.unwrap().as_deref(), Some("user"));
            assert_eq!(s.get_session(ORG, "s1").await.unwrap().unwrap().person_id, "user");
            assert_eq!(
                s.get_interactions(ORG, &["a".into()]).await.unwrap()[0]
                    .person_id
                    .as_deref(),
                Some("user")
            );
            // alias: the user's previous id becomes another person; the links stay flat
            s.link_identity(ORG, "user", "user2", 6).await.unwrap();
            assert_eq!(s.resolve_person(ORG, "anon1").await.unwrap().as_deref(), Some("user2"));
            assert_eq!(s.get_session(ORG, "s1").await.unwrap().unwrap().person_id, "user2");
            // linking to an id that is itself an alias links to its person
            s.link_identity(ORG, "anon2", "anon1", 7).await.unwrap();
            assert_eq!(s.get_session(ORG, "s2").await.unwrap().unwrap().person_id, "user2");
            let mine = s
                .list_interactions(
                    ORG,
                    &InteractionQuery {
                        limit: 10,
                        person_id: Some("user2".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(mine.data.len(), 2);
            // a link back to the alias is a no-op, not a cycle
            s.link_identity(ORG, "user2", "anon1", 8).await.unwrap();
            assert_eq!(s.resolve_person(ORG, "anon1").await.unwrap().as_deref(), Some("user2"));
            assert_eq!(s.resolve_person(ORG, "user2").await.unwrap(), None);
            // unenriched events follow the links too
            s.append(ORG, vec![ev("c", "anon3", 9)], vec![]).await.unwrap();
            s.link_identity(ORG, "anon3", "user2", 10).await.unwrap();
            let mine = s
                .list_interactions(
                    ORG,
                    &InteractionQuery {
                        limit: 10,
                        person_id: Some("user2".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(mine.data.len(), 3);
        });
    }

    #[test]
    fn traffic_summary_and_funnel_exclude_bots() {
        block_on(async {
            let s = MemoryStore::new();
            let mut bot = ev("bot", "crawler", 5);
            bot.is_bot = true;
            let mut pii = track("t1", "x", "Add To Cart", 2);
            pii.pii_scrubbed = 3;
            let events = vec![
                ev("a", "x", 1), // path /a
                pii,
                track("t2", "x", "Checkout", 3),
                ev("b", "y", 1),
                track("t3", "y", "Checkout", 2), // before add-to-cart: not in order
                track("t4", "y", "Add To Cart", 3),
                bot,
                ev("late", "z", 1_000),
            ];
            s.append(ORG, events, vec![]).await.unwrap();
            s.apply_enrichment(
                ORG,
                &[
                    enrich("a", "x", "sx"),
                    enrich("b", "y", "sy"),
                    enrich("bot", "crawler", "sb"),
                ],
            )
            .await
            .unwrap();
            s.refresh_sessions(ORG, &["sx".into(), "sy".into(), "sb".into()])
                .await
                .unwrap();
            let sum = s.traffic_summary(ORG, 0, 100, 1).await.unwrap();
            assert_eq!(sum.events, 7);
            assert_eq!(sum.visitors, 2);
            assert_eq!(sum.sessions, 2);
            assert_eq!(sum.page_views, 2);
            assert_eq!(sum.bot_events, 1);
            assert_eq!(sum.pii_scrubbed, 3);
            assert_eq!(sum.top_pages, vec![("/a".to_owned(), 1)]);
            assert_eq!(sum.referrer_classes, vec![("direct".to_owned(), 2)]);
            let steps = [
                FunnelStep {
                    label: "cart".into(),
                    event_type: EventType::Track,
                    name: Some("Add To Cart".into()),
                },
                FunnelStep {
                    label: "checkout".into(),
                    event_type: EventType::Track,
                    name: Some("Checkout".into()),
                },
            ];
            let rows = s.funnel(ORG, &steps, 0, 100).await.unwrap();
            assert_eq!((rows[0].people, rows[1].people), (2, 1));
            assert_eq!((rows[0].drop_off, rows[1].drop_off), (0.0, 0.5));
            let page_step = [FunnelStep {
                label: "a".into(),
                event_type: EventType::Page,
                name: Some("/a".into()),
            }];
            assert_eq!(s.funnel(ORG, &page_step, 0, 100).await.unwrap()[0].people, 1);
        });
    }

    #[test]
    fn accounts_authenticate_by_key() {
        block_on(async {
            let s = MemoryStore::new();
            let (org, creds, keys) = keys::generate("Acme", 1, &[3u8; keys::RANDOM_BYTES]);
            s.create_org(&org, &keys).await.unwrap();
            assert!(matches!(s.create_org(&org, &keys).await, Err(Error::Conflict(_))));
            let w = s.authenticate(&creds.write_key).await.unwrap().unwrap();
            assert_eq!((w.org_id.as_str(), w.kind), (org.id.as_str(), KeyKind::Write));
            let k = s.authenticate(&creds.api_key).await.unwrap().unwrap();
            assert_eq!(k.kind, KeyKind::Secret);
            assert_eq!(k.pseudonym_key, keys.pseudonym_key);
            let mut wrong = creds.api_key.clone();
            wrong.pop();
            wrong.push('x');
            assert!(s.authenticate(&wrong).await.unwrap().is_none());
            assert!(s.authenticate("garbage").await.unwrap().is_none());
            let (org2, _, keys2) = keys::generate("Beta", 0, &[4u8; keys::RANDOM_BYTES]);
            s.create_org(&org2, &keys2).await.unwrap();
            let names: Vec<String> = s.list_orgs().await.unwrap().into_iter().map(|o| o.name).collect();
            assert_eq!(names, ["Beta", "Acme"]);
            assert_eq!(s.get_org(&org.id).await.unwrap(), Some(org));
        });
    }

    #[test]
    fn catalog_upserts_by_sku() {
        block_on(async {
            let s = MemoryStore::new();
            let p = |sku: &str, price| Product {
                id: format!("p_{sku}"),
                org_id: ORG.into(),
                sku: sku.into(),
                name: sku.into(),
                brand: None,
                category: None,
                price_cents: Some(price),
                currency: None,
                url: None,
                description: None,
                updated_at: 0,
            };
            assert_eq!(
                s.upsert_products(ORG, &[p("b", 1), p("a", 1), p("c", 1)])
                    .await
                    .unwrap(),
                3
            );
            assert_eq!(s.upsert_products(ORG, &[p("b", 1), p("a", 2)]).await.unwrap(), 1);
            let first = s.list_products(ORG, 2, None).await.unwrap();
            assert_eq!(
                first.data.iter().map(|p| p.sku.as_str()).collect::<Vec<_>>(),
                ["a", "b"]
            );
            assert_eq!(first.data[0].price_cents, Some(2));
            let rest = s.list_products(ORG, 2, first.next_cursor.as_deref()).await.unwrap();
            assert_eq!(rest.data.len(), 1);
            assert!(rest.next_cursor.is_none());
            assert!(s.list_products("org_b", 10, None).await.unwrap().data.is_empty());
        });
    }

    #[test]
    fn queue_leases_retries_and_dead_letters() {
        block_on(async {
            let s = MemoryStore::new();
            let policy = RetryPolicy {
                max_attempts: 2,
                base_delay_ms: 1_000,
                max_delay_ms: 10_000,
            };
            s.enqueue(
                vec![
                    NewJob::new("q", "k", json!(1)),
                    NewJob::new("q", "k", json!(2)),
                    NewJob::new("other", "k", json!(3)),
                ],
                0,
            )
            .await
            .unwrap();
            let mut delayed = NewJob::new("q", "k", json!(4));
            delayed.not_before = Some(500);
            s.enqueue(vec![delayed], 0).await.unwrap();
            let jobs = s.reserve("q", 10, 100, 0).await.unwrap();
            assert_eq!(
                jobs.iter().map(|j| j.payload.clone()).collect::<Vec<_>>(),
                [json!(1), json!(2)]
            );
            assert_eq!((jobs[0].attempts, jobs[0].lease_until), (1, 100));
            assert_eq!(
                s.depth("q").await.unwrap(),
                QueueDepth {
                    ready: 1,
                    in_flight: 2,
                    dead: 0
                }
            );
            // leased jobs are not delivered again before the lease ends
            assert!(s.reserve("q", 10, 100, 50).await.unwrap().is_empty());
            s.ack(jobs[0].id).await.unwrap();
            s.ack(jobs[0].id).await.unwrap(); // acking twice is fine
            // the unacked job comes back after its lease, with the delayed one
            let again = s.reserve("q", 10, 100, 600).await.unwrap();
            assert_eq!(again.len(), 2);
            let retried = again.iter().find(|j| j.id == jobs[1].id).unwrap();
            assert_eq!(retried.attempts, 2);
            // 2 deliveries = max_attempts: dead
            assert!(s.fail(retried.id, "boom", &policy, 600, 0.0).await.unwrap());
            assert!(s.fail(retried.id, "boom", &policy, 600, 0.0).await.unwrap());
            assert_eq!(s.job_error(retried.id).as_deref(), Some("boom"));
            let fresh = again.iter().find(|j| j.id != jobs[1].id).unwrap();
            // first failure: retry after backoff(1) in [500, 1000]
            assert!(!s.fail(fresh.id, "flaky", &policy, 600, 1.0).await.unwrap());
            assert!(s.reserve("q", 10, 100, 1_599).await.unwrap().is_empty());
            assert_eq!(s.reserve("q", 10, 100, 1_600).await.unwrap().len(), 1);
            assert_eq!(
                s.depth("q").await.unwrap(),
                QueueDepth {
                    ready: 0,
                    in_flight: 1,
                    dead: 1
                }
            );
            let dead = s.dead_letters("q", 10).await.unwrap();
            assert_eq!(dead.len(), 1);
            assert_eq!(dead[0].payload, json!(2));
            assert!(matches!(
                s.fail(999, "x", &policy, 0, 0.0).await,
                Err(Error::NotFound(_))
            ));
            assert_eq!(s.depth("other").await.unwrap().ready, 1);
        });
    }

    #[test]
    fn workflow_steps_are_recorded_until_finished() {
        block_on(async {
            let s = MemoryStore::new();
            assert!(s.load_steps("r").await.unwrap().is_empty());
            s.save_step("r", "one", &json!({"n": 1}), 0).await.unwrap();
            s.save_step("r", "two", &json!(2), 0).await.unwrap();
            s.save_step("other", "one", &json!(3), 0).await.unwrap();
            let steps = s.load_steps("r").await.unwrap();
            assert_eq!(steps.len(), 2);
            assert_eq!(steps["one"], json!({"n": 1}));
            s.finish_run("r", 1).await.unwrap();
            assert!(s.is_run_finished("r"));
            assert!(s.load_steps("r").await.unwrap().is_empty());
            assert_eq!(s.load_steps("other").await.unwrap().len(), 1);
        });
    }

    #[test]
    fn blob_store_puts_lists_and_validates_keys() {
        block_on(async {
            let b = MemoryBlobStore::new();
            b.put("raw/b/2", vec![2]).await.unwrap();
            b.put("raw/a/1", vec![1]).await.unwrap();
            b.put("raw/a/1", vec![9]).await.unwrap();
            b.put("rawx", vec![0]).await.unwrap();
            assert_eq!(b.get("raw/a/1").await.unwrap(), Some(vec![9]));
            assert_eq!(b.list("raw/").await.unwrap(), ["raw/a/1", "raw/b/2"]);
            b.delete("raw/a/1").await.unwrap();
            b.delete("raw/a/1").await.unwrap();
            assert_eq!(b.get("raw/a/1").await.unwrap(), None);
            for bad in ["", "/abs", "a/../b", "a//b", "./a"] {
                assert!(matches!(b.put(bad, vec![]).await, Err(Error::Invalid { .. })), "{bad}");
            }
            assert_eq!(b.len(), 2);
        });
    }

    #[test]
    fn fake_text_analyzer_is_deterministic() {
        block_on(async {
            let a = FakeTextAnalyzer::new();
            let texts = vec![
                "I love it, great stuff @shop!".to_owned(),
                "terrible and broken, want a refund".to_owned(),
                String::new(),
                "mail me at bob@example.com or ping @alice@mastodon.social.".to_owned(),
            ];
            let out = a.analyze(ORG, &texts).await.unwrap();
            assert_eq!(out.len(), 4);
            let s = |i: usize| out[i].sentiment.clone().unwrap();
            assert_eq!((s(0).label.as_str(), s(0).score), ("positive", 1.0));
            assert_eq!(s(1).label, "negative");
            assert_eq!((s(2).label.as_str(), s(2).score), ("neutral", 0.0));
            assert_eq!(out[0].entities.len(), 1);
            assert_eq!(out[0].entities[0].text, "@shop");
            assert_eq!(&texts[0][out[0].entities[0].start..out[0].entities[0].end], "@shop");
            assert_eq!(
                out[3].entities.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
                ["@alice@mastodon.social"]
            );
            assert_eq!(out, a.analyze(ORG, &texts).await.unwrap());
        });
    }

    #[test]
    fn hash_embedder_is_normalized_and_similar_for_shared_words() {
        block_on(async {
            let e = HashEmbedder::new(32);
            assert_eq!(e.dim(), 32);
            let v = e
                .embed(&[
                    "red running shoes".into(),
                    "Red shoes for running".into(),
                    "tax invoice pdf".into(),
                    "".into(),
                ])
                .await
                .unwrap();
            for x in &v {
                assert_eq!(x.len(), 32);
                assert!((x.iter().map(|a| a * a).sum::<f32>() - 1.0).abs() < 1e-5);
            }
            let dot = crate::vector::dot;
            assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]));
            assert_eq!(v[0], e.embed_one("red running shoes"));
        });
    }

    #[test]
    fn brute_force_index_isolates_orgs_filters_and_ranks() {
        block_on(async {
            let idx = BruteForceIndex::new(2);
            let rec = |id: &str, values: Vec<f32>, label: &str| VectorRecord {
                id: id.into(),
                namespace: None,
                values,
                metadata: json!({"label": label}).as_object().cloned().unwrap(),
            };
            idx.upsert("o1", vec![rec("a", vec![1.0, 0.0], "x"), rec("b", vec![0.0, 1.0], "y")])
                .await
                .unwrap();
            idx.upsert("o2", vec![rec("a", vec![1.0, 0.1], "x")]).await.unwrap();
            idx.upsert("o1", vec![rec("b", vec![0.7, 0.7], "y")]).await.unwrap();
            assert_eq!(idx.count("o1").await.unwrap(), 2);
            let q = VectorQuery::new(vec![1.0, 0.0], 5);
            let hits = idx.query("o1", &q).await.unwrap();
            assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
            assert!((hits[0].score - 1.0).abs() < 1e-6);
            let only_y = q.clone().with_filter(MetadataFilter::parse_exprs(["label=y"]).unwrap());
            assert_eq!(idx.query("o1", &only_y).await.unwrap()[0].id, "b");
            assert_eq!(idx.delete("o1", &["a".into()]).await.unwrap(), 1);
            assert_eq!(idx.query("o1", &q).await.unwrap()[0].id, "b");
            assert_eq!(
                idx.query("o2", &q).await.unwrap()[0].id,
                "a",
                "o2's a survives o1's delete"
            );
            assert!(matches!(
                idx.query("o1", &VectorQuery::new(vec![1.0], 1)).await,
                Err(Error::Invalid { .. })
            ));
            assert!(matches!(
                idx.upsert("o1", vec![rec("d", vec![1.0], "x")]).await,
                Err(Error::Invalid { .. })
            ));
        });
    }

    #[test]
    fn frames_come_in_order_and_analysis_is_fixed() {
        block_on(async {
            let frame = |ts| Frame {
                width: 1,
                height: 1,
                timestamp: ts,
                rgb: vec![0, 0, 0],
            };
            let mut src = VecFrameSource::new(vec![frame(2), frame(1)]);
            assert_eq!(src.remaining(), 2);
            let face = BoundingBox {
                x: 0.0,
                y: 0.0,
                w: 1.0,
                h: 1.0,
                score: 0.9,
            };
            let an = FixedFrameAnalyzer::new(FrameAnalysis::default()).with_frame(
                2,
                FrameAnalysis {
                    faces: vec![face],
                    people: vec![],
                },
            );
            let f1 = src.next_frame().await.unwrap().unwrap();
            assert_eq!(f1.timestamp, 1);
            assert!(an.analyze(&f1).await.unwrap().faces.is_empty());
            let f2 = src.next_frame().await.unwrap().unwrap();
            assert_eq!(an.analyze(&f2).await.unwrap().faces, vec![face]);
            assert!(src.next_frame().await.unwrap().is_none());
            assert_eq!(an.calls(), 2);
        });
    }

    #[test]
    fn mentions_are_stored_once_per_org_with_their_jobs() {
        block_on(async {
            let s = MemoryStore::new();
            let m1 = mention(ORG, "bluesky", 1, 1_000);
            let m2 = mention(ORG, "bluesky", 2, 2_000);
            let job = NewJob::new(queues::SOCIAL, "analyze-social", json!({"ids": ["bluesky:2"]}));
            let out = s
                .store_mentions(
                    ORG,
                    &[m1.clone(), m2.clone()],
                    &[dup("mastodon:9", "bluesky:1", 1_500)],
                    vec![job.clone()],
                    5_000,
                )
                .await
                .unwrap();
            assert_eq!(
                out,
                MentionOutcome {
                    stored: 2,
                    existing: 0,
                    duplicates: 1
                }
            );
            let asked: Vec<String> = ["nope", "mastodon:9", "bluesky:1", "bluesky:1"]
                .map(String::from)
                .into();
            assert_eq!(
                s.known_mentions(ORG, &asked).await.unwrap(),
                ["mastodon:9", "bluesky:1"]
            );
            // the jobs committed with the mentions
            let jobs = s.reserve(queues::SOCIAL, 10, 1_000, 5_000).await.unwrap();
            assert_eq!(jobs.len(), 1);
            assert_eq!((jobs[0].kind.as_str(), jobs[0].enqueued_at), ("analyze-social", 5_000));
            assert_eq!(jobs[0].payload, job.payload);

            // a re-run changes nothing and enqueues nothing
            let mut changed = m1.clone();
            changed.text = "changed".into();
            let out = s
                .store_mentions(
                    ORG,
                    &[changed, mention(ORG, "mastodon", 9, 1)],
                    &[dup("bluesky:2", "bluesky:1", 9), dup("mastodon:9", "bluesky:1", 9)],
                    vec![job.clone()],
                    6_000,
                )
                .await
                .unwrap();
            assert_eq!(
                out,
                MentionOutcome {
                    stored: 0,
                    existing: 4,
                    duplicates: 0
                }
            );
            assert_eq!(s.depth(queues::SOCIAL).await.unwrap().ready, 0);
            let ids = [m1.id.clone(), "mastodon:9".into(), m2.id.clone()];
            assert_eq!(s.get_mentions(ORG, &ids).await.unwrap(), [m1.clone(), m2.clone()]);
            let links = s.list_duplicates(ORG, Some("bluesky:1"), 10).await.unwrap();
            assert_eq!(links, [dup("mastodon:9", "bluesky:1", 1_500)]);
            // the same id twice in one call is stored once
            let m3 = mention(ORG, "reddit", 3, 3_000);
            let out = s
                .store_mentions(
                    ORG,
                    &[m3.clone(), m3.clone()],
                    &[dup(&m3.id, "bluesky:1", 1)],
                    vec![],
                    7_000,
                )
                .await
                .unwrap();
            assert_eq!((out.stored, out.existing, out.duplicates), (1, 2, 0));

            // another org sees nothing and may store the same ids
            assert!(s.known_mentions("org_b", &ids).await.unwrap().is_empty());
            assert!(s.get_mentions("org_b", &ids).await.unwrap().is_empty());
            assert!(s.list_duplicates("org_b", None, 10).await.unwrap().is_empty());
            assert!(s.mention_simhashes("org_b", 0).await.unwrap().is_empty());
            let page = s.list_mentions("org_b", &MentionQuery::default()).await.unwrap();
            assert!(page.data.is_empty());
            let other = mention("org_b", "bluesky", 1, 1_000);
            assert_eq!(
                s.store_mentions("org_b", &[other], &[], vec![], 0)
                    .await
                    .unwrap()
                    .stored,
                1
            );
            assert_eq!(s.get_mentions(ORG, &ids[..1]).await.unwrap(), [m1]);
        });
    }

    #[test]
    fn store_mentions_rejects_another_orgs_mention_and_stores_nothing() {
        block_on(async {
            let s = MemoryStore::new();
            let job = NewJob::new(queues::SOCIAL, "analyze-social", json!({}));
            let err = s
                .store_mentions(
                    ORG,
                    &[mention(ORG, "rss", 1, 1), mention("org_b", "rss", 2, 2)],
                    &[],
                    vec![job],
                    0,
                )
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field, .. } if field == "mentions[1].org_id"),
                "{err}"
            );
            assert!(s.known_mentions(ORG, &["rss:1".into()]).await.unwrap().is_empty());
            assert_eq!(s.depth(queues::SOCIAL).await.unwrap().ready, 0);
        });
    }

    #[test]
    fn mentions_list_newest_first_with_filters_and_cursor() {
        block_on(async {
            let s = MemoryStore::new();
            // 25 mentions over 3 platforms; pairs share a posted_at so the id breaks ties
            let all: Vec<SocialMention> = (0..25)
                .map(|n| {
                    let platform = ["bluesky", "mastodon", "reddit"][n as usize % 3];
                    let mut m = mention(ORG, platform, n, 1_000 + Millis::from(n / 2) * 100);
                    if n >= 20 {
                        m.source = "other".into();
                    }
                    m
                })
                .collect();
            s.store_mentions(ORG, &all, &[], vec![], 0).await.unwrap();
            let collect = |query: MentionQuery| {
                let s = &s;
                async move {
                    let mut out = Vec::new();
                    let mut q = query;
                    loop {
                        let page = s.list_mentions(ORG, &q).await.unwrap();
                        assert!(page.data.len() <= q.limit.max(1) as usize);
                        out.extend(page.data.into_iter().map(|m| m.id));
                        match page.next_cursor {
                            Some(c) => q.cursor = Some(c),
                            None => break out,
                        }
                    }
                }
            };
            let expect = |f: &dyn Fn(&SocialMention) -> bool| {
                let mut v: Vec<&SocialMention> = all.iter().filter(|m| f(m)).collect();
                v.sort_by(|a, b| (b.posted_at, &b.id).cmp(&(a.posted_at, &a.id)));
                v.into_iter().map(|m| m.id.clone()).collect::<Vec<_>>()
            };
            let q = |limit| MentionQuery {
                limit,
                ..Default::default()
            };
            let everything = collect(q(4)).await;
            assert_eq!(everything.len(), 25);
            assert_eq!(everything, expect(&|_| true));
            assert_eq!(collect(q(1000)).await, everything);
            let by_platform = MentionQuery {
                platform: Some("mastodon".into()),
                ..q(3)
            };
            assert_eq!(collect(by_platform).await, expect(&|m| m.platform == "mastodon"));
            let by_source = MentionQuery {
                source: Some("other".into()),
                selected: Some(true),
                ..q(2)
            };
            assert_eq!(collect(by_source).await, expect(&|m| m.source == "other" && m.selected));
            let window = MentionQuery {
                since: Some(1_200),
                until: Some(1_700),
                selected: Some(false),
                ..q(2)
            };
            let got = collect(window).await;
            assert!(!got.is_empty());
            assert_eq!(got, expect(&|m| (1_200..1_700).contains(&m.posted_at) && !m.selected));
            let bad = MentionQuery {
                cursor: Some("garbage".into()),
                ..q(2)
            };
            assert!(matches!(s.list_mentions(ORG, &bad).await, Err(Error::Invalid { .. })));
        });
    }

    #[test]
    fn simhashes_analysis_and_source_state() {
        block_on(async {
            let s = MemoryStore::new();
            let mut a = mention(ORG, "hackernews", 1, 2_000);
            a.simhash = Some(u64::MAX);
            let mut b = mention(ORG, "hackernews", 2, 1_000);
            b.simhash = Some(1 << 63);
            let mut c = mention(ORG, "hackernews", 3, 3_000);
            c.simhash = None;
            let d = mention(ORG, "hackernews", 4, 500);
            s.store_mentions(ORG, &[a.clone(), b.clone(), c.clone(), d], &[], vec![], 0)
                .await
                .unwrap();
            assert_eq!(
                s.mention_simhashes(ORG, 1_000).await.unwrap(),
                [(b.id.clone(), 1 << 63), (a.id.clone(), u64::MAX)]
            );

            let analysis = json!({"sentiment": {"label": "negative", "score": -0.5}, "entities": []});
            s.set_mention_analysis(ORG, &a.id, Some(-0.5), &analysis).await.unwrap();
            let got = s.get_mentions(ORG, &[a.id.clone()]).await.unwrap();
            assert_eq!(got[0].sentiment, Some(-0.5));
            assert_eq!(got[0].analysis.as_ref(), Some(&analysis));
            assert_eq!(got[0].simhash, Some(u64::MAX));
            for (org, id) in [(ORG, "hackernews:404"), ("org_b", a.id.as_str())] {
                let err = s.set_mention_analysis(org, id, None, &analysis).await.unwrap_err();
                assert!(matches!(err, Error::NotFound(_)), "{err}");
            }

            assert_eq!(s.source_state(ORG, "watch").await.unwrap(), None);
            let state = SourceState {
                cursor: Some("since=42".into()),
                last_run_at: Some(10),
                last_success_at: Some(5),
                last_error: Some("HTTP 503".into()),
            };
            s.set_source_state(ORG, "watch", &state).await.unwrap();
            assert_eq!(s.source_state(ORG, "watch").await.unwrap(), Some(state));
            assert_eq!(s.source_state("org_b", "watch").await.unwrap(), None);
            let ok = SourceState {
                last_error: None,
                ..Default::default()
            };
            s.set_source_state(ORG, "watch", &ok).await.unwrap();
            assert_eq!(s.source_state(ORG, "watch").await.unwrap(), Some(ok));
        });
    }
}
