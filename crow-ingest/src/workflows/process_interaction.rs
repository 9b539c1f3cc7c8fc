//! The `process-interaction` workflow: identity stitching, referrer enrichment, sessionization
//! and text analysis of a stored batch of interactions.
//!
//! Steps, each recorded by [`Steps`] so a crashed run resumes after the last finished one:
//!
//! 1. `identity`: every `identify` with a user id and an anonymous id links the anonymous id to
//!    the user ([`EventStore::link_identity`], which also re-points the anonymous id's stored
//!    events and sessions); every `alias` links its previous id to its user id.
//! 2. `sessionize` (reads only; its saved output is the decision the later steps write):
//!    - each event's person: its user id, else its anonymous id, resolved through the identity
//!      links ([`EventStore::resolve_person`]);
//!    - each event's referrer class ([`crate::enrich`]); an event that says nothing about its
//!      origin (no page URL, referrer or campaign: a server-side `track`, an `identify`) takes
//!      its session's class;
//!    - each person's events in time order join the person's current session (the latest one
//!      stored, [`EventStore::latest_session`], or one opened earlier in this batch) unless
//!      more than [`WorkflowConfig::session_gap_ms`] (30 min) passed since that session's last
//!      event, or the event carries a campaign ([`Campaign::key`]) other than the session's: then
//!      it opens a new session whose id is derived from org, person and the event's id
//!      ([`session_id`]), so a repeated run finds the same ids. A late event older than a
//!      session's start joins it when it is within the gap of that start and carries the same
//!      campaign (none, or the one that started the session: a campaign's landing starts its
//!      session, so an earlier event without campaign is not part of it).
//!      Bots are sessionized like anyone: they are flagged, and reports exclude them.
//! 3. `enrich`: [`EventStore::apply_enrichment`] writes person, session and referrer class.
//! 4. `refresh`: [`EventStore::refresh_sessions`] recomputes every touched session.
//! 5. `text`, when the ports have an analyzer ([`Ports::analyzer`]): events that carry text (the
//!    first non-empty string among the properties [`TEXT_PROPERTIES`]: a search query, feedback,
//!    a chat message, a review) get sentiment, entities, language and key phrases, and a sentence
//!    embedding when the ports have an embedder; [`EventStore::store_texts`] stores them with the
//!    interaction. The text was scrubbed of PII at ingest; entities marked `pii` are stored
//!    without their text all the same.
//!
//! Loading the batch's events is a plain read, not a recorded step: saving them again in the
//! workflow store would copy every event (and keep it there after an erase request), and the
//! decisions that depend on what was read are saved by `sessionize` anyway.
//!
//! Running the same batch again (a redelivered job, a replay) leaves the same state: links are
//! idempotent, every event finds the session it already belongs to, and writes repeat the same
//! values.
//!
//! Batches of one person are best processed in order by one consumer at a time: two batches of
//! the same person sessionized concurrently may open two sessions where one would do.

use std::collections::{BTreeSet, HashMap};

use crow_core::Result;
use crow_core::model::{Campaign, Enrichment, EventType, Interaction, InteractionText, Millis, ReferrerClass, Session};
use crow_core::ports::{Embedder, EventStore, TextAnalyzer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Ports, Steps};
use crate::enrich::{classify_interaction, has_origin};
use crate::jobs::InteractionBatch;
use crate::search::{self, Indexes};
use crow_core::vector::IndexKind;

/// Settings of `process-interaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkflowConfig {
    /// Inactivity after which the next event starts a new session, in milliseconds (30 min).
    pub session_gap_ms: i64,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            session_gap_ms: 30 * 60_000,
        }
    }
}

/// What a `process-interaction` run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Events of the batch found in the store.
    pub events: usize,
    /// Events with neither a user id nor an anonymous id: left without person and session.
    pub skipped: usize,
    /// Identity links recorded (identify and alias events).
    pub links: usize,
    /// Sessions the batch's events belong to (all refreshed).
    pub sessions: usize,
    /// Of those, sessions this batch opened.
    pub new_sessions: usize,
    /// Events whose text was analyzed.
    pub texts: usize,
    /// Steps skipped because an earlier attempt of the run had finished them.
    pub resumed_steps: usize,
}

/// The `sessionize` decision, saved as the step's output.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Plan {
    enrichment: Vec<Enrichment>,
    sessions: Vec<String>,
    new_sessions: usize,
    skipped: usize,
}

/// The deterministic id of the session that `first_event_id` opened for `person_id`:
/// `ses_` + 32 hex chars of SHA-256(org, person, event id).
///
/// ```
/// let id = crow_ingest::workflows::session_id("org_a", "user-1", "evt-1");
/// assert!(id.starts_with("ses_") && id.len() == 36);
/// assert_eq!(id, crow_ingest::workflows::session_id("org_a", "user-1", "evt-1"));
/// ```
pub fn session_id(org_id: &str, person_id: &str, first_event_id: &str) -> String {
    let mut h = Sha256::new();
    for part in [org_id, person_id, first_event_id] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("ses_{}", &hex::encode(h.finalize())[..32])
}

/// The run id [`process_interaction`] uses for a batch.
pub fn run_id_for(batch: &InteractionBatch) -> String {
    format!("process-interaction/{}/{}", batch.org_id, batch.batch_id)
}

/// Runs `process-interaction` over a stored batch with the default settings, as run
/// [`run_id_for`]`(batch)`.
pub async fn process_interaction<P: Ports + ?Sized>(
    ports: &P,
    batch: &InteractionBatch,
    now: Millis,
) -> Result<Outcome> {
    process_interaction_with(ports, &run_id_for(batch), batch, now, &WorkflowConfig::default()).await
}

/// Runs (or resumes) `process-interaction` over a stored batch as the run `run_id`.
pub async fn process_interaction_with<P: Ports + ?Sized>(
    ports: &P,
    run_id: &str,
    batch: &InteractionBatch,
    now: Millis,
    config: &WorkflowConfig,
) -> Result<Outcome> {
    let org = batch.org_id.as_str();
    let events = ports.events();
    let mut steps = Steps::load(ports.steps(), run_id, now).await?;
    let mut batch_events = events.get_interactions(org, &batch.event_ids).await?;
    // Time order; equal times keep the batch's order (the sort is stable).
    batch_events.sort_by_key(|e| e.timestamp);

    let links: usize = steps.step("identity", stitch(events, org, &batch_events)).await?;
    let plan: Plan = steps
        .step("sessionize", sessionize(events, org, &batch_events, config))
        .await?;
    steps
        .step("enrich", events.apply_enrichment(org, &plan.enrichment))
        .await?;
    steps
        .step("refresh", events.refresh_sessions(org, &plan.sessions))
        .await?;
    let texts: usize = match ports.analyzer() {
        Some(analyzer) => {
            steps
                .step(
                    "text",
                    analyze_texts(
                        events,
                        analyzer,
                        ports.embedder(),
                        ports.indexes(),
                        org,
                        &batch_events,
                        now,
                    ),
                )
                .await?
        }
        None => 0,
    };
    let resumed_steps = steps.resumed();
    steps.finish().await?;
    tracing::debug!(
        run_id,
        org,
        events = batch_events.len(),
        sessions = plan.sessions.len(),
        "process-interaction done"
    );
    Ok(Outcome {
        events: batch_events.len(),
        skipped: plan.skipped,
        links,
        sessions: plan.sessions.len(),
        new_sessions: plan.new_sessions,
        texts,
        resumed_steps,
    })
}

/// The properties `process-interaction` reads text from, in order of preference.
pub const TEXT_PROPERTIES: [&str; 12] = [
    "text",
    "message",
    "feedback",
    "comment",
    "review",
    "query",
    "search_query",
    "search",
    "q",
    "question",
    "body",
    "content",
];

/// The text an event carries: the first of [`TEXT_PROPERTIES`] holding a non-blank string, with
/// the property's name.
///
/// ```
/// use crow_core::model::Interaction;
/// # fn ev(props: serde_json::Value) -> Interaction {
/// #     serde_json::from_value(serde_json::json!({"id": "e", "org_id": "o", "type": "track",
/// #         "timestamp": 0, "received_at": 0, "properties": props})).unwrap()
/// # }
/// let e = ev(serde_json::json!({"rating": 2, "feedback": "Checkout keeps failing"}));
/// assert_eq!(crow_ingest::workflows::text_of(&e), Some(("feedback", "Checkout keeps failing")));
/// assert_eq!(crow_ingest::workflows::text_of(&ev(serde_json::json!({"q": "  "}))), None);
/// ```
pub fn text_of(e: &Interaction) -> Option<(&'static str, &str)> {
    TEXT_PROPERTIES.iter().find_map(|&k| {
        let t = e.properties.get(k)?.as_str()?.trim();
        (!t.is_empty()).then_some((k, t))
    })
}

/// Texts per analyzer call.
const TEXT_CHUNK: usize = 64;

/// Step `text`: analyzes (and embeds) the batch's texts, stores the results and upserts the
/// embeddings into the interaction-embeddings index (an upsert by event id: a retried step
/// changes nothing).
async fn analyze_texts<E: EventStore + ?Sized>(
    events: &E,
    analyzer: &dyn TextAnalyzer,
    embedder: Option<&dyn Embedder>,
    indexes: Option<&Indexes>,
    org: &str,
    batch: &[Interaction],
    now: Millis,
) -> Result<usize> {
    let found: Vec<(&Interaction, &'static str, String)> = batch
        .iter()
        .filter_map(|e| text_of(e).map(|(field, text)| (e, field, text.to_owned())))
        .collect();
    let mut stored = 0;
    for chunk in found.chunks(TEXT_CHUNK) {
        let texts: Vec<String> = chunk.iter().map(|(_, _, t)| t.clone()).collect();
        let analyses = analyzer.analyze(org, &texts).await?;
        let embeddings = match embedder {
            Some(e) => Some(e.embed(&texts).await?),
            None => None,
        };
        if analyses.len() != texts.len() || embeddings.as_ref().is_some_and(|v| v.len() != texts.len()) {
            return Err(crow_core::Error::Backend(
                "the text analyzer or embedder returned the wrong number of results".into(),
            ));
        }
        let mut embeddings = embeddings.map(Vec::into_iter);
        let rows: Vec<InteractionText> = chunk
            .iter()
            .zip(analyses)
            .map(|((e, field, _), mut analysis)| {
                for entity in analysis.entities.iter_mut().filter(|x| x.pii) {
                    entity.text.clear();
                }
                InteractionText {
                    event_id: e.id.clone(),
                    field: (*field).to_owned(),
                    timestamp: e.timestamp,
                    analysis,
                    embedding: embeddings.as_mut().and_then(Iterator::next),
                    analyzed_at: now,
                }
            })
            .collect();
        events.store_texts(org, &rows).await?;
        if let Some(indexes) = indexes {
            let records: Vec<_> = chunk
                .iter()
                .zip(&rows)
                .filter_map(|((e, field, text), row)| {
                    let v = row.embedding.clone()?;
                    Some(search::interaction_record(e, field, text, Some(&row.analysis), v))
                })
                .collect();
            if !records.is_empty() {
                indexes.get(IndexKind::Interactions).upsert(org, records).await?;
            }
        }
        stored += rows.len();
    }
    Ok(stored)
}

/// Step `identity`: links from identify and alias events.
async fn stitch<E: EventStore + ?Sized>(events: &E, org: &str, batch: &[Interaction]) -> Result<usize> {
    let mut links = 0;
    for e in batch {
        let pair = match e.event_type {
            EventType::Identify => e.anonymous_id.as_deref().zip(e.user_id.as_deref()),
            EventType::Alias => e.previous_id.as_deref().zip(e.user_id.as_deref()),
            _ => None,
        };
        if let Some((alias, person)) = pair
            && !alias.is_empty()
            && !person.is_empty()
            && alias != person
        {
            events.link_identity(org, alias, person, e.timestamp).await?;
            links += 1;
        }
    }
    Ok(links)
}

/// A session as sessionization sees it.
#[derive(Debug, Clone)]
struct Open {
    id: String,
    started_at: Millis,
    ended_at: Millis,
    campaign: Option<String>,
    class: Option<ReferrerClass>,
}

impl From<Session> for Open {
    fn from(s: Session) -> Self {
        Open {
            id: s.id,
            started_at: s.started_at,
            ended_at: s.ended_at,
            campaign: s.campaign,
            class: s.referrer_class,
        }
    }
}

fn order(s: &Open) -> (Millis, &str) {
    (s.started_at, s.id.as_str())
}

/// Step `sessionize`: persons, referrer classes and sessions.
async fn sessionize<E: EventStore + ?Sized>(
    events: &E,
    org: &str,
    batch: &[Interaction],
    config: &WorkflowConfig,
) -> Result<Plan> {
    let gap = config.session_gap_ms.max(0);
    let mut plan = Plan::default();

    // Persons, in order of first appearance (deterministic).
    let mut resolved: HashMap<&str, String> = HashMap::new();
    let mut people: Vec<(String, Vec<&Interaction>)> = Vec::new();
    let mut slot: HashMap<String, usize> = HashMap::new();
    for e in batch {
        let hint = e
            .user_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(e.anonymous_id.as_deref().filter(|s| !s.is_empty()));
        let Some(hint) = hint else {
            plan.skipped += 1;
            continue;
        };
        let person = match resolved.get(hint) {
            Some(p) => p.clone(),
            None => {
                let p = events
                    .resolve_person(org, hint)
                    .await?
                    .unwrap_or_else(|| hint.to_owned());
                resolved.insert(hint, p.clone());
                p
            }
        };
        let i = *slot.entry(person.clone()).or_insert_with(|| {
            people.push((person.clone(), Vec::new()));
            people.len() - 1
        });
        people[i].1.push(e);
    }

    let mut touched = BTreeSet::new();
    for (person, evs) in &people {
        // Sessions of this person as this batch leaves them (stored ones loaded on demand).
        let mut local: HashMap<String, Open> = HashMap::new();
        // The loop asks for the latest stored session as of instants in [first event, last event
        // + gap]. When the latest one as of the end of that range started before the first event
        // (or there is none), it is the answer to every one of those questions: one read per
        // person instead of one or two per event (a website batch is mostly one visitor's).
        let first = evs.iter().map(|e| e.timestamp).min().unwrap_or(0);
        let last = evs.iter().map(|e| e.timestamp).max().unwrap_or(0).saturating_add(gap);
        let known: Option<Option<Session>> = match events.latest_session(org, person, last).await? {
            None => Some(None),
            Some(s) if s.started_at <= first => Some(Some(s)),
            Some(_) => None,
        };
        for e in evs {
            let ts = e.timestamp;
            let key = e.context.campaign.as_ref().and_then(Campaign::key);
            let fits = |s: &Open| key.is_none() || key == s.campaign;
            let current = |s: Open, local: &HashMap<String, Open>| local.get(&s.id).cloned().unwrap_or(s);

            // The session the event continues: the latest one started at or before it...
            let stored = match &known {
                Some(k) => k.clone(),
                None => events.latest_session(org, person, ts).await?,
            }
            .map(|s| current(s.into(), &local));
            let opened = local
                .values()
                .filter(|s| s.started_at <= ts)
                .max_by(|a, b| order(a).cmp(&order(b)))
                .cloned();
            let latest = [stored, opened]
                .into_iter()
                .flatten()
                .max_by(|a, b| order(a).cmp(&order(b)));
            let mut chosen = latest.filter(|s| ts <= s.ended_at.saturating_add(gap) && fits(s));
            // ...or, for a late event, the first one that starts after it within the gap.
            if chosen.is_none() {
                let horizon = ts.saturating_add(gap);
                let stored = match &known {
                    Some(k) => k.clone(),
                    None => events.latest_session(org, person, horizon).await?,
                }
                .map(|s| current(s.into(), &local))
                .filter(|s| s.started_at > ts);
                let opened = local
                    .values()
                    .filter(|s| s.started_at > ts && s.started_at <= horizon)
                    .min_by(|a, b| order(a).cmp(&order(b)))
                    .cloned();
                chosen = [stored, opened]
                    .into_iter()
                    .flatten()
                    .min_by(|a, b| order(a).cmp(&order(b)))
                    // A campaign starts its session: an earlier event is not part of it.
                    .filter(|s| s.campaign == key);
            }

            let own_class = has_origin(e).then(|| classify_interaction(e));
            let session = match chosen {
                Some(mut s) => {
                    s.started_at = s.started_at.min(ts);
                    s.ended_at = s.ended_at.max(ts);
                    if s.class.is_none() {
                        s.class = own_class;
                    }
                    s
                }
                None => {
                    plan.new_sessions += 1;
                    Open {
                        id: session_id(org, person, &e.id),
                        started_at: ts,
                        ended_at: ts,
                        campaign: key,
                        class: own_class,
                    }
                }
            };
            plan.enrichment.push(Enrichment {
                event_id: e.id.clone(),
                person_id: person.clone(),
                session_id: session.id.clone(),
                referrer_class: own_class.or(session.class).unwrap_or(ReferrerClass::Direct),
            });
            touched.insert(session.id.clone());
            local.insert(session.id.clone(), session);
        }
    }
    plan.sessions = touched.into_iter().collect();
    Ok(plan)
}
