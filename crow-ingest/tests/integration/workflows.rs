//! The workflows and the trigger against crow-core's in-memory ports.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

use crow_core::model::*;
use crow_core::ports::*;
use crow_core::testing::{MemoryBlobStore, MemoryStore};
use crow_core::{Error, Result};
use crow_ingest::jobs::{ARCHIVE_BATCH, InteractionBatch, PROCESS_INTERACTION};
use crow_ingest::workflows::{
    Outcome, PortRefs, Trigger, WorkflowConfig, archive_batch, archive_key, process_interaction,
    process_interaction_with, run_once, session_id,
};
use futures::executor::block_on;
use serde_json::Value;

const ORG: &str = "org_test";
const MIN: Millis = 60_000;
/// 2024-05-01T12:00:00Z
const T0: Millis = 1_714_564_800_000;

// ------------------------------------------------------------------------------------------
// events
// ------------------------------------------------------------------------------------------

fn page(id: &str, anon: &str, ts: Millis) -> Interaction {
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
                url: Some(format!("https://shop.example.com/{id}")),
                path: Some(format!("/{id}")),
                referrer: Some("https://shop.example.com/".into()),
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

fn from(mut ev: Interaction, referrer: &str) -> Interaction {
    if let Some(p) = ev.context.page.as_mut() {
        p.referrer = Some(referrer.into());
    }
    ev
}

fn with_campaign(mut ev: Interaction, source: &str, medium: &str) -> Interaction {
    ev.context.campaign = Some(Campaign {
        source: Some(source.into()),
        medium: Some(medium.into()),
        ..Default::default()
    });
    ev
}

fn as_user(mut ev: Interaction, user: &str) -> Interaction {
    ev.user_id = Some(user.into());
    ev
}

fn track(id: &str, anon: &str, name: &str, ts: Millis) -> Interaction {
    Interaction {
        event_type: EventType::Track,
        name: Some(name.into()),
        context: Context::default(),
        ..page(id, anon, ts)
    }
}

fn identify(id: &str, anon: &str, user: &str, ts: Millis) -> Interaction {
    Interaction {
        event_type: EventType::Identify,
        user_id: Some(user.into()),
        context: Context::default(),
        ..page(id, anon, ts)
    }
}

fn alias(id: &str, previous: &str, user: &str, ts: Millis) -> Interaction {
    Interaction {
        event_type: EventType::Alias,
        anonymous_id: None,
        user_id: Some(user.into()),
        previous_id: Some(previous.into()),
        context: Context::default(),
        ..page(id, "unused", ts)
    }
}

// ------------------------------------------------------------------------------------------
// harness
// ------------------------------------------------------------------------------------------

fn batch_of(batch_id: &str, events: &[Interaction]) -> InteractionBatch {
    InteractionBatch {
        org_id: ORG.into(),
        batch_id: batch_id.into(),
        event_ids: events.iter().map(|e| e.id.clone()).collect(),
        received_at: events.iter().map(|e| e.received_at).max().unwrap_or(T0),
    }
}

/// Stores the events as ingest does: with the two follow-up jobs.
async fn ingest(store: &MemoryStore, batch_id: &str, events: Vec<Interaction>) -> InteractionBatch {
    let batch = batch_of(batch_id, &events);
    let payload = serde_json::to_value(&batch).unwrap();
    let jobs = vec![
        NewJob::new(queues::INTERACTION, PROCESS_INTERACTION, payload.clone()),
        NewJob::new(queues::PROCESSING, ARCHIVE_BATCH, payload),
    ];
    store.append(ORG, events, jobs).await.unwrap();
    batch
}

async fn process(store: &MemoryStore, batch: &InteractionBatch) -> Outcome {
    let blobs = MemoryBlobStore::new();
    process_interaction(&PortRefs::shared(store, &blobs), batch, T0)
        .await
        .unwrap()
}

async fn all_events(store: &MemoryStore) -> Vec<Interaction> {
    let mut v = store
        .list_interactions(
            ORG,
            &InteractionQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .data;
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

async fn all_sessions(store: &MemoryStore) -> Vec<Session> {
    let mut v = store
        .list_sessions(
            ORG,
            &SessionQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .data;
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

async fn event(store: &MemoryStore, id: &str) -> Interaction {
    store
        .get_interactions(ORG, &[id.to_owned()])
        .await
        .unwrap()
        .pop()
        .unwrap_or_else(|| panic!("no event {id}"))
}

async fn session_of(store: &MemoryStore, id: &str) -> String {
    event(store, id)
        .await
        .session_id
        .unwrap_or_else(|| panic!("event {id} has no session"))
}

async fn session(store: &MemoryStore, id: &str) -> Session {
    store
        .get_session(ORG, id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no session {id}"))
}

/// An event store that counts the calls the resume test cares about.
struct CountingEvents<'a> {
    inner: &'a MemoryStore,
    calls: Mutex<HashMap<&'static str, usize>>,
}

impl<'a> CountingEvents<'a> {
    fn new(inner: &'a MemoryStore) -> Self {
        CountingEvents {
            inner,
            calls: Mutex::new(HashMap::new()),
        }
    }
    fn count(&self, name: &'static str) {
        *self.calls.lock().unwrap().entry(name).or_default() += 1;
    }
    fn calls(&self, name: &str) -> usize {
        self.calls.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl EventStore for CountingEvents<'_> {
    async fn append(&self, org_id: &str, events: Vec<Interaction>, follow_up: Vec<NewJob>) -> Result<AppendOutcome> {
        self.inner.append(org_id, events, follow_up).await
    }
    async fn get_interactions(&self, org_id: &str, ids: &[String]) -> Result<Vec<Interaction>> {
        self.inner.get_interactions(org_id, ids).await
    }
    async fn list_interactions(&self, org_id: &str, query: &InteractionQuery) -> Result<Page<Interaction>> {
        self.inner.list_interactions(org_id, query).await
    }
    async fn store_texts(&self, org_id: &str, texts: &[crow_core::model::InteractionText]) -> Result<()> {
        self.count("store_texts");
        self.inner.store_texts(org_id, texts).await
    }
    async fn apply_enrichment(&self, org_id: &str, enrichment: &[Enrichment]) -> Result<()> {
        self.count("apply_enrichment");
        self.inner.apply_enrichment(org_id, enrichment).await
    }
    async fn link_identity(&self, org_id: &str, alias_id: &str, person_id: &str, at: Millis) -> Result<()> {
        self.count("link_identity");
        self.inner.link_identity(org_id, alias_id, person_id, at).await
    }
    async fn resolve_person(&self, org_id: &str, id: &str) -> Result<Option<String>> {
        self.inner.resolve_person(org_id, id).await
    }
    async fn latest_session(&self, org_id: &str, person_id: &str, at: Millis) -> Result<Option<Session>> {
        self.count("latest_session");
        self.inner.latest_session(org_id, person_id, at).await
    }
    async fn refresh_sessions(&self, org_id: &str, session_ids: &[String]) -> Result<()> {
        self.count("refresh_sessions");
        self.inner.refresh_sessions(org_id, session_ids).await
    }
    async fn get_session(&self, org_id: &str, id: &str) -> Result<Option<Session>> {
        self.inner.get_session(org_id, id).await
    }
    async fn list_sessions(&self, org_id: &str, query: &SessionQuery) -> Result<Page<Session>> {
        self.inner.list_sessions(org_id, query).await
    }
    async fn traffic_summary(&self, org_id: &str, since: Millis, until: Millis, top: usize) -> Result<TrafficSummary> {
        self.inner.traffic_summary(org_id, since, until, top).await
    }
    async fn funnel(&self, org_id: &str, steps: &[FunnelStep], since: Millis, until: Millis) -> Result<Vec<FunnelRow>> {
        self.inner.funnel(org_id, steps, since, until).await
    }
    async fn sentiment_series(
        &self,
        org_id: &str,
        source: crow_core::ports::SentimentSource,
        since: Millis,
        until: Millis,
        bucket_ms: i64,
    ) -> crow_core::Result<Vec<crow_core::ports::SentimentBucket>> {
        self.inner
            .sentiment_series(org_id, source, since, until, bucket_ms)
            .await
    }
    async fn top_entities(
        &self,
        org_id: &str,
        query: &crow_core::ports::EntityQuery,
    ) -> crow_core::Result<Vec<crow_core::ports::EntityCount>> {
        self.inner.top_entities(org_id, query).await
    }
}

/// A workflow store that "crashes" on its n-th write (1-based; `saves + 1` = `finish_run`),
/// as a process killed between a step's work and its record would.
struct CrashingSteps<'a> {
    inner: &'a MemoryStore,
    crash_at: Mutex<Option<usize>>,
    writes: Mutex<usize>,
}

impl<'a> CrashingSteps<'a> {
    fn new(inner: &'a MemoryStore, crash_at: Option<usize>) -> Self {
        CrashingSteps {
            inner,
            crash_at: Mutex::new(crash_at),
            writes: Mutex::new(0),
        }
    }
    fn disarm(&self) {
        *self.crash_at.lock().unwrap() = None;
    }
    fn write(&self) -> Result<()> {
        let mut w = self.writes.lock().unwrap();
        *w += 1;
        if *self.crash_at.lock().unwrap() == Some(*w) {
            return Err(Error::Unavailable(format!("simulated crash at write {w}")));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl WorkflowStore for CrashingSteps<'_> {
    async fn load_steps(&self, run_id: &str) -> Result<HashMap<String, Value>> {
        self.inner.load_steps(run_id).await
    }
    async fn save_step(&self, run_id: &str, step: &str, output: &Value, now: Millis) -> Result<()> {
        self.write()?;
        self.inner.save_step(run_id, step, output, now).await
    }
    async fn finish_run(&self, run_id: &str, now: Millis) -> Result<()> {
        self.write()?;
        self.inner.finish_run(run_id, now).await
    }
}

/// An object store that is always down.
struct BrokenBlobs;

#[async_trait::async_trait]
impl BlobStore for BrokenBlobs {
    async fn put(&self, _key: &str, _bytes: Vec<u8>) -> Result<()> {
        Err(Error::Backend("disk on fire".into()))
    }
    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>> {
        Err(Error::Backend("disk on fire".into()))
    }
    async fn list(&self, _prefix: &str) -> Result<Vec<String>> {
        Err(Error::Backend("disk on fire".into()))
    }
    async fn delete(&self, _key: &str) -> Result<()> {
        Err(Error::Backend("disk on fire".into()))
    }
}

// ------------------------------------------------------------------------------------------
// sessionization
// ------------------------------------------------------------------------------------------

#[test]
fn sessions_split_after_30_minutes_of_inactivity() {
    block_on(async {
        let store = MemoryStore::new();
        let b1 = ingest(
            &store,
            "b1",
            vec![
                from(page("a1", "anon", T0), "https://www.google.com/search?q=shoes"),
                page("a2", "anon", T0 + 10 * MIN),
                page("a3", "anon", T0 + 40 * MIN), // exactly 30 min later: same visit
                page("a4", "anon", T0 + 70 * MIN + 1), // 30 min + 1 ms later: a new visit
                track("a5", "anon", "Add To Cart", T0 + 75 * MIN),
            ],
        )
        .await;
        let out = process(&store, &b1).await;
        assert_eq!(
            (out.events, out.sessions, out.new_sessions, out.links, out.skipped),
            (5, 2, 2, 0, 0)
        );
        let s1 = session_of(&store, "a1").await;
        assert_eq!(s1, session_id(ORG, "anon", "a1"));
        assert_eq!(session_of(&store, "a2").await, s1);
        assert_eq!(session_of(&store, "a3").await, s1);
        let s2 = session_of(&store, "a4").await;
        assert_ne!(s1, s2);
        assert_eq!(session_of(&store, "a5").await, s2);

        let first = session(&store, &s1).await;
        assert_eq!(
            (first.started_at, first.ended_at, first.event_count, first.page_count),
            (T0, T0 + 40 * MIN, 3, 3)
        );
        assert_eq!(
            (first.entry_path.as_deref(), first.exit_path.as_deref()),
            (Some("/a1"), Some("/a3"))
        );
        assert_eq!(first.referrer_class, Some(ReferrerClass::Search));
        assert_eq!(first.person_id, "anon");
        let a2 = event(&store, "a2").await;
        assert_eq!(
            (a2.person_id.as_deref(), a2.referrer_class),
            (Some("anon"), Some(ReferrerClass::Internal))
        );
        let second = session(&store, &s2).await;
        assert_eq!((second.event_count, second.page_count), (2, 1));
        // the track event has no page: it takes its session's class
        assert_eq!(event(&store, "a5").await.referrer_class, second.referrer_class);

        // a later batch continues the stored session
        let b2 = ingest(&store, "b2", vec![page("a6", "anon", T0 + 90 * MIN)]).await;
        let out = process(&store, &b2).await;
        assert_eq!(out.new_sessions, 0);
        assert_eq!(session_of(&store, "a6").await, s2);
        assert_eq!(session(&store, &s2).await.ended_at, T0 + 90 * MIN);
        assert_eq!(all_sessions(&store).await.len(), 2);

        // people are sessionized separately
        let b3 = ingest(&store, "b3", vec![page("o1", "other", T0 + 91 * MIN)]).await;
        process(&store, &b3).await;
        assert_eq!(session_of(&store, "o1").await, session_id(ORG, "other", "o1"));
    });
}

#[test]
fn the_session_gap_is_configurable() {
    block_on(async {
        let store = MemoryStore::new();
        let blobs = MemoryBlobStore::new();
        let b = ingest(
            &store,
            "b",
            vec![page("a", "anon", T0), page("b", "anon", T0 + 6 * MIN)],
        )
        .await;
        let config = WorkflowConfig {
            session_gap_ms: 5 * MIN,
        };
        let out = process_interaction_with(&PortRefs::shared(&store, &blobs), "run", &b, T0, &config)
            .await
            .unwrap();
        assert_eq!(out.new_sessions, 2);
    });
}

#[test]
fn a_new_campaign_starts_a_session() {
    block_on(async {
        let store = MemoryStore::new();
        let b = ingest(
            &store,
            "b",
            vec![
                page("e1", "anon", T0),
                with_campaign(page("e2", "anon", T0 + MIN), "spring-newsletter", "email"),
                page("e3", "anon", T0 + 2 * MIN),
                with_campaign(page("e4", "anon", T0 + 3 * MIN), "spring-newsletter", "email"),
                with_campaign(page("e5", "anon", T0 + 4 * MIN), "google", "cpc"),
                page("e6", "anon", T0 + 5 * MIN),
            ],
        )
        .await;
        let out = process(&store, &b).await;
        assert_eq!(out.new_sessions, 3);
        let (s1, s2, s3) = (
            session_of(&store, "e1").await,
            session_of(&store, "e2").await,
            session_of(&store, "e5").await,
        );
        assert!(s1 != s2 && s2 != s3 && s1 != s3);
        assert_eq!(
            session_of(&store, "e3").await,
            s2,
            "an event without campaign stays in the visit"
        );
        assert_eq!(
            session_of(&store, "e4").await,
            s2,
            "the same campaign again stays in the visit"
        );
        assert_eq!(session_of(&store, "e6").await, s3);
        let email = session(&store, &s2).await;
        assert_eq!(email.campaign.as_deref(), Some("spring-newsletter|email||"));
        assert_eq!(email.referrer_class, Some(ReferrerClass::Email));
        assert_eq!(email.event_count, 3);
        assert_eq!(session(&store, &s3).await.referrer_class, Some(ReferrerClass::Paid));
        assert_eq!(session(&store, &s1).await.campaign, None);
    });
}

#[test]
fn late_events_join_the_session_they_belong_to() {
    block_on(async {
        let store = MemoryStore::new();
        let b1 = ingest(
            &store,
            "b1",
            vec![page("e10", "anon", T0 + 10 * MIN), page("e15", "anon", T0 + 15 * MIN)],
        )
        .await;
        process(&store, &b1).await;
        let s = session_of(&store, "e10").await;

        // 10 min before the session started, and one in its middle: both join it
        let b2 = ingest(
            &store,
            "b2",
            vec![page("e0", "anon", T0), page("e12", "anon", T0 + 12 * MIN)],
        )
        .await;
        let out = process(&store, &b2).await;
        assert_eq!(out.new_sessions, 0);
        assert_eq!(session_of(&store, "e0").await, s);
        assert_eq!(session_of(&store, "e12").await, s);
        let row = session(&store, &s).await;
        assert_eq!((row.started_at, row.ended_at, row.event_count), (T0, T0 + 15 * MIN, 4));
        assert_eq!(row.entry_path.as_deref(), Some("/e0"));

        // two hours earlier: a visit of its own
        let b3 = ingest(&store, "b3", vec![page("old", "anon", T0 - 120 * MIN)]).await;
        assert_eq!(process(&store, &b3).await.new_sessions, 1);
        assert_ne!(session_of(&store, "old").await, s);
        assert_eq!(all_sessions(&store).await.len(), 2);

        // a campaign's landing starts its visit: a late event just before it is not part of it,
        // and the campaign's later events still are
        let b4 = ingest(
            &store,
            "b4",
            vec![with_campaign(page("k1", "anon", T0 + 200 * MIN), "google", "cpc")],
        )
        .await;
        process(&store, &b4).await;
        let paid = session_of(&store, "k1").await;
        let b5 = ingest(
            &store,
            "b5",
            vec![
                page("k0", "anon", T0 + 195 * MIN),
                with_campaign(page("k2", "anon", T0 + 201 * MIN), "google", "cpc"),
            ],
        )
        .await;
        process(&store, &b5).await;
        assert_ne!(session_of(&store, "k0").await, paid);
        assert_eq!(session_of(&store, "k2").await, paid);
        let row = session(&store, &paid).await;
        assert_eq!((row.started_at, row.event_count), (T0 + 200 * MIN, 2));
        assert_eq!(row.campaign.as_deref(), Some("google|cpc||"));
    });
}

#[test]
fn bots_are_sessionized_and_flagged() {
    block_on(async {
        let store = MemoryStore::new();
        let mut bot = page("b1", "crawler", T0);
        bot.is_bot = true;
        let b = ingest(&store, "b", vec![bot, page("h1", "human", T0)]).await;
        process(&store, &b).await;
        let s = session(&store, &session_of(&store, "b1").await).await;
        assert!(s.is_bot);
        let sum = store.traffic_summary(ORG, T0, T0 + 1, 10).await.unwrap();
        assert_eq!((sum.sessions, sum.visitors, sum.bot_events), (1, 1, 1));
    });
}

// ------------------------------------------------------------------------------------------
// identity
// ------------------------------------------------------------------------------------------

#[test]
fn identify_stitches_earlier_anonymous_events_and_sessions() {
    block_on(async {
        let store = MemoryStore::new();
        let b1 = ingest(
            &store,
            "b1",
            vec![
                from(page("p1", "anon-1", T0), "https://duckduckgo.com/"),
                track("t1", "anon-1", "Add To Cart", T0 + MIN),
            ],
        )
        .await;
        process(&store, &b1).await;
        let s = session_of(&store, "p1").await;
        assert_eq!(session(&store, &s).await.person_id, "anon-1");

        let b2 = ingest(
            &store,
            "b2",
            vec![
                identify("i1", "anon-1", "user-1", T0 + 2 * MIN),
                as_user(track("t2", "anon-1", "Checkout", T0 + 3 * MIN), "user-1"),
            ],
        )
        .await;
        let out = process(&store, &b2).await;
        assert_eq!((out.links, out.new_sessions), (1, 0));

        assert_eq!(
            store.resolve_person(ORG, "anon-1").await.unwrap().as_deref(),
            Some("user-1")
        );
        for id in ["p1", "t1", "i1", "t2"] {
            let ev = event(&store, id).await;
            assert_eq!(ev.person_id.as_deref(), Some("user-1"), "{id}");
            assert_eq!(ev.session_id.as_deref(), Some(s.as_str()), "{id} continues the visit");
        }
        let row = session(&store, &s).await;
        assert_eq!((row.person_id.as_str(), row.event_count), ("user-1", 4));
        assert_eq!(row.referrer_class, Some(ReferrerClass::Search));

        // reports follow the person
        let mine = store
            .list_interactions(
                ORG,
                &InteractionQuery {
                    limit: 100,
                    person_id: Some("user-1".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(mine.data.len(), 4);
        assert_eq!(
            store.traffic_summary(ORG, T0, T0 + 10 * MIN, 5).await.unwrap().visitors,
            1
        );
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
        let funnel = store.funnel(ORG, &steps, T0, T0 + 10 * MIN).await.unwrap();
        assert_eq!((funnel[0].people, funnel[1].people), (1, 1));

        // later anonymous events of that device belong to the user too
        let b3 = ingest(&store, "b3", vec![page("p3", "anon-1", T0 + 4 * MIN)]).await;
        process(&store, &b3).await;
        assert_eq!(event(&store, "p3").await.person_id.as_deref(), Some("user-1"));
        assert_eq!(session_of(&store, "p3").await, s);
    });
}

#[test]
fn identify_in_the_same_batch_stitches_the_events_before_it() {
    block_on(async {
        let store = MemoryStore::new();
        let b = ingest(
            &store,
            "b",
            vec![
                page("p1", "anon-9", T0),
                identify("i1", "anon-9", "user-9", T0 + MIN),
                page("p2", "anon-9", T0 + 2 * MIN),
            ],
        )
        .await;
        let out = process(&store, &b).await;
        assert_eq!((out.links, out.sessions), (1, 1));
        let s = session_of(&store, "p1").await;
        assert_eq!(s, session_id(ORG, "user-9", "p1"));
        assert_eq!(session(&store, &s).await.person_id, "user-9");
        assert_eq!(event(&store, "p2").await.person_id.as_deref(), Some("user-9"));
    });
}

#[test]
fn alias_merges_a_previous_id_into_the_user() {
    block_on(async {
        let store = MemoryStore::new();
        let b1 = ingest(
            &store,
            "b1",
            vec![
                as_user(page("o1", "dev-1", T0), "old-id"),
                as_user(page("o2", "dev-1", T0 + MIN), "old-id"),
            ],
        )
        .await;
        process(&store, &b1).await;
        let old_session = session_of(&store, "o1").await;
        assert_eq!(session(&store, &old_session).await.person_id, "old-id");

        let b2 = ingest(
            &store,
            "b2",
            vec![
                alias("al", "old-id", "new-id", T0 + 60 * MIN),
                as_user(page("n1", "dev-2", T0 + 61 * MIN), "new-id"),
            ],
        )
        .await;
        let out = process(&store, &b2).await;
        assert_eq!(out.links, 1);
        assert_eq!(
            store.resolve_person(ORG, "old-id").await.unwrap().as_deref(),
            Some("new-id")
        );
        assert_eq!(event(&store, "o1").await.person_id.as_deref(), Some("new-id"));
        assert_eq!(session(&store, &old_session).await.person_id, "new-id");
        let new_session = session_of(&store, "n1").await;
        assert_ne!(new_session, old_session, "an hour later is another visit");

        // a client still sending the old id is the same person
        let b3 = ingest(
            &store,
            "b3",
            vec![as_user(page("o3", "dev-1", T0 + 62 * MIN), "old-id")],
        )
        .await;
        process(&store, &b3).await;
        assert_eq!(event(&store, "o3").await.person_id.as_deref(), Some("new-id"));
        assert_eq!(session_of(&store, "o3").await, new_session);
        let sessions = store
            .list_sessions(
                ORG,
                &SessionQuery {
                    limit: 10,
                    person_id: Some("new-id".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(sessions.data.len(), 2);
    });
}

// ------------------------------------------------------------------------------------------
// durability and idempotency
// ------------------------------------------------------------------------------------------

/// Three batches covering stitching, campaigns, late events and several people.
fn scenario() -> Vec<(&'static str, Vec<Interaction>)> {
    vec![
        (
            "b1",
            vec![
                from(page("a1", "anon-a", T0), "https://www.google.co.uk/"),
                page("a2", "anon-a", T0 + 5 * MIN),
                page("c1", "anon-c", T0 + 6 * MIN),
                track("a3", "anon-a", "Add To Cart", T0 + 50 * MIN),
            ],
        ),
        (
            "b2",
            vec![
                identify("ai", "anon-a", "user-a", T0 + 51 * MIN),
                with_campaign(page("a4", "anon-a", T0 + 52 * MIN), "newsletter", "email"),
                as_user(track("a5", "anon-a", "Checkout", T0 + 53 * MIN), "user-a"),
                page("c2", "anon-c", T0 + 7 * MIN),
            ],
        ),
        (
            "b3",
            vec![
                alias("al", "user-a", "user-a2", T0 + 54 * MIN),
                page("c0", "anon-c", T0 + MIN),
                as_user(page("a6", "x", T0 + 55 * MIN), "user-a"),
            ],
        ),
    ]
}

async fn snapshot(store: &MemoryStore) -> (Vec<Interaction>, Vec<Session>) {
    (all_events(store).await, all_sessions(store).await)
}

async fn reference() -> (Vec<Interaction>, Vec<Session>) {
    let store = MemoryStore::new();
    for (id, events) in scenario() {
        let b = ingest(&store, id, events).await;
        process(&store, &b).await;
    }
    snapshot(&store).await
}

#[test]
fn an_interrupted_run_resumes_without_repeating_finished_steps() {
    block_on(async {
        let expected = reference().await;
        // the four step records, then finish_run
        for crash_at in 1..=5usize {
            let store = MemoryStore::new();
            let blobs = MemoryBlobStore::new();
            let events = CountingEvents::new(&store);
            for (id, evs) in scenario() {
                let b = ingest(&store, id, evs).await;
                let crash = (id == "b2").then_some(crash_at);
                let steps = CrashingSteps::new(&store, crash);
                let ports = PortRefs {
                    events: &events,
                    queue: &store,
                    steps: &steps,
                    blobs: &blobs,
                };
                let run = format!("run-{id}");
                if crash.is_none() {
                    process_interaction_with(&ports, &run, &b, T0, &WorkflowConfig::default())
                        .await
                        .unwrap();
                    continue;
                }
                let before = |name| events.calls(name);
                let (links0, latest0, enrich0, refresh0) = (
                    before("link_identity"),
                    before("latest_session"),
                    before("apply_enrichment"),
                    before("refresh_sessions"),
                );
                let err = process_interaction_with(&ports, &run, &b, T0, &WorkflowConfig::default())
                    .await
                    .unwrap_err();
                assert!(matches!(err, Error::Unavailable(_)), "{err}");
                let latest_first = events.calls("latest_session") - latest0;
                steps.disarm();
                let out = process_interaction_with(&ports, &run, &b, T0, &WorkflowConfig::default())
                    .await
                    .unwrap();
                assert_eq!(out.resumed_steps, crash_at - 1, "crash at write {crash_at}");
                assert!(store.is_run_finished(&run));
                // identity (write 1) and sessionize (write 2) ran once when they had been recorded
                let links = events.calls("link_identity") - links0;
                assert_eq!(links, if crash_at > 1 { 1 } else { 2 }, "crash at write {crash_at}");
                let latest = events.calls("latest_session") - latest0;
                if crash_at > 2 {
                    assert_eq!(
                        latest, latest_first,
                        "sessionize is not repeated (crash at write {crash_at})"
                    );
                } else {
                    assert!(latest > latest_first);
                }
                let enrich = events.calls("apply_enrichment") - enrich0;
                assert_eq!(
                    enrich,
                    if crash_at > 3 {
                        1
                    } else if crash_at == 3 {
                        2
                    } else {
                        1
                    }
                );
                let refresh = events.calls("refresh_sessions") - refresh0;
                assert_eq!(refresh, if crash_at == 4 { 2 } else { 1 });
            }
            assert_eq!(snapshot(&store).await, expected, "crash at write {crash_at}");
        }
    });
}

#[test]
fn processing_the_same_batch_twice_is_idempotent() {
    block_on(async {
        let expected = reference().await;
        let store = MemoryStore::new();
        let blobs = MemoryBlobStore::new();
        let ports = PortRefs::shared(&store, &blobs);
        for (id, events) in scenario() {
            let b = ingest(&store, id, events.clone()).await;
            process(&store, &b).await;
            // the same run again (its records were dropped when it finished), another run id,
            // and the batch resent by the client
            let again = process(&store, &b).await;
            assert_eq!(again.new_sessions, 0, "batch {id}");
            process_interaction_with(&ports, "other-run", &b, T0, &WorkflowConfig::default())
                .await
                .unwrap();
            let resent = ingest(&store, id, events).await;
            process(&store, &resent).await;
        }
        assert_eq!(snapshot(&store).await, expected);
    });
}

#[test]
fn events_without_ids_are_skipped() {
    block_on(async {
        let store = MemoryStore::new();
        let mut nobody = page("n", "x", T0);
        nobody.anonymous_id = None;
        let b = ingest(&store, "b", vec![nobody, page("p", "anon", T0)]).await;
        let out = process(&store, &b).await;
        assert_eq!((out.events, out.skipped, out.sessions), (2, 1, 1));
        assert!(event(&store, "n").await.session_id.is_none());
    });
}

// ------------------------------------------------------------------------------------------
// archive
// ------------------------------------------------------------------------------------------

#[test]
fn archive_writes_gzip_ndjson_of_the_stored_events() {
    block_on(async {
        let store = MemoryStore::new();
        let blobs = MemoryBlobStore::new();
        let ports = PortRefs::shared(&store, &blobs);
        let b = ingest(
            &store,
            "batch-1",
            vec![
                page("x1", "anon", T0),
                track("x2", "anon", "Buy", T0 + 1),
                page("x3", "anon", T0 + 2),
            ],
        )
        .await;
        let out = archive_batch(&ports, &b, T0).await.unwrap();
        assert_eq!(out.key, "raw-interactions/org_test/2024/05/01/batch-1.ndjson.gz");
        assert_eq!((out.key.clone(), out.events), (archive_key(&b), 3));
        let gz = blobs.get(&out.key).await.unwrap().unwrap();
        assert_eq!(gz.len(), out.bytes);
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_string(&mut text)
            .unwrap();
        let lines: Vec<Interaction> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines, store.get_interactions(ORG, &b.event_ids).await.unwrap());
        assert!(text.ends_with('\n'));

        // idempotent: same key, same bytes, one object
        archive_batch(&ports, &b, T0 + 1_000).await.unwrap();
        assert_eq!(
            blobs.list("raw-interactions/").await.unwrap(),
            std::slice::from_ref(&out.key)
        );
        assert_eq!(blobs.get(&out.key).await.unwrap().unwrap(), gz);
    });
}

// ------------------------------------------------------------------------------------------
// trigger
// ------------------------------------------------------------------------------------------

#[test]
fn the_trigger_starts_the_workflow_each_job_names() {
    block_on(async {
        let store = MemoryStore::new();
        let blobs = MemoryBlobStore::new();
        let ports = PortRefs::shared(&store, &blobs);
        let b = ingest(&store, "b1", vec![page("p1", "anon", T0), page("p2", "anon", T0 + MIN)]).await;
        let r = run_once(&ports, queues::INTERACTION, 10, T0, 0.3).await.unwrap();
        assert_eq!((r.processed, r.failed, r.dead), (1, 0, 0));
        let r = run_once(&ports, queues::PROCESSING, 10, T0, 0.3).await.unwrap();
        assert_eq!((r.processed, r.failed, r.dead), (1, 0, 0));
        for q in queues::ALL {
            assert_eq!(store.depth(q).await.unwrap(), QueueDepth::default(), "{q}");
        }
        assert_eq!(all_sessions(&store).await.len(), 1);
        assert!(blobs.get(&archive_key(&b)).await.unwrap().is_some());
        // nothing left: an empty tick
        assert_eq!(
            run_once(&ports, queues::INTERACTION, 10, T0, 0.3).await.unwrap(),
            Default::default()
        );
    });
}

#[test]
fn the_trigger_retries_then_dead_letters_a_failing_job() {
    block_on(async {
        let store = MemoryStore::new();
        let ports = PortRefs {
            events: &store,
            queue: &store,
            steps: &store,
            blobs: &BrokenBlobs,
        };
        let trigger = Trigger {
            policy: RetryPolicy {
                max_attempts: 3,
                base_delay_ms: 1_000,
                max_delay_ms: 60_000,
            },
            ..Trigger::default()
        };
        ingest(&store, "b1", vec![page("p1", "anon", T0)]).await;
        let mut now = T0;
        for attempt in 1..=3 {
            let r = trigger
                .run_once(&ports, queues::PROCESSING, 10, now, 0.9)
                .await
                .unwrap();
            assert_eq!((r.processed, r.failed), (0, 1), "attempt {attempt}");
            assert_eq!(r.dead, usize::from(attempt == 3), "attempt {attempt}");
            // the retry waits for its backoff
            assert_eq!(
                trigger
                    .run_once(&ports, queues::PROCESSING, 10, now + 1, 0.9)
                    .await
                    .unwrap(),
                Default::default()
            );
            now += 10 * MIN;
        }
        let dead = store.dead_letters(queues::PROCESSING, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].kind.as_str(), dead[0].attempts), (ARCHIVE_BATCH, 3));
        let error = store.job_error(dead[0].id).unwrap();
        assert!(
            error.contains("archive-batch") && error.contains("disk on fire"),
            "{error}"
        );
        assert_eq!(
            store.depth(queues::PROCESSING).await.unwrap(),
            QueueDepth {
                ready: 0,
                in_flight: 0,
                dead: 1
            }
        );
        // a dead job is not delivered again
        assert_eq!(
            trigger
                .run_once(&ports, queues::PROCESSING, 10, now + 60 * MIN, 0.9)
                .await
                .unwrap(),
            Default::default()
        );
        // the other workflow of the batch is unaffected
        assert_eq!(
            trigger
                .run_once(&ports, queues::INTERACTION, 10, now, 0.9)
                .await
                .unwrap()
                .processed,
            1
        );
    });
}

#[test]
fn jobs_that_can_never_succeed_are_dead_lettered_at_once() {
    block_on(async {
        let store = MemoryStore::new();
        let blobs = MemoryBlobStore::new();
        let ports = PortRefs::shared(&store, &blobs);
        store
            .enqueue(
                vec![
                    NewJob::new(queues::EXPORT, "mystery-report", serde_json::json!({})),
                    NewJob::new(
                        queues::EXPORT,
                        PROCESS_INTERACTION,
                        serde_json::json!({"not": "a batch"}),
                    ),
                ],
                T0,
            )
            .await
            .unwrap();
        let r = run_once(&ports, queues::EXPORT, 10, T0, 0.0).await.unwrap();
        assert_eq!((r.processed, r.failed, r.dead), (0, 2, 2));
        let dead = store.dead_letters(queues::EXPORT, 10).await.unwrap();
        let unknown = store.job_error(dead[0].id).unwrap();
        assert!(unknown.contains("unknown job kind \"mystery-report\""), "{unknown}");
        let malformed = store.job_error(dead[1].id).unwrap();
        assert!(
            malformed.contains("payload") && malformed.contains("not an interaction batch"),
            "{malformed}"
        );
    });
}

#[test]
fn a_redelivered_job_resumes_its_steps() {
    block_on(async {
        let store = MemoryStore::new();
        let blobs = MemoryBlobStore::new();
        let events = CountingEvents::new(&store);
        // crash when recording the third step (enrich): identity and sessionize are recorded
        let steps = CrashingSteps::new(&store, Some(3));
        let ports = PortRefs {
            events: &events,
            queue: &store,
            steps: &steps,
            blobs: &blobs,
        };
        ingest(
            &store,
            "b1",
            vec![page("p1", "anon", T0), identify("i1", "anon", "user", T0 + MIN)],
        )
        .await;
        let r = run_once(&ports, queues::INTERACTION, 10, T0, 0.0).await.unwrap();
        assert_eq!((r.processed, r.failed, r.dead), (0, 1, 0));
        let job_id = 1; // the first job MemoryStore enqueued
        let recorded = store.load_steps(&format!("job-{job_id}")).await.unwrap();
        let mut names: Vec<&str> = recorded.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["identity", "sessionize"]);
        let latest = events.calls("latest_session");

        steps.disarm();
        let r = run_once(&ports, queues::INTERACTION, 10, T0 + 10 * MIN, 0.0)
            .await
            .unwrap();
        assert_eq!(r.processed, 1);
        assert!(store.is_run_finished(&format!("job-{job_id}")));
        assert_eq!(events.calls("link_identity"), 1, "identity ran once");
        assert_eq!(events.calls("latest_session"), latest, "sessionize ran once");
        assert_eq!(event(&store, "p1").await.person_id.as_deref(), Some("user"));
        assert_eq!(store.depth(queues::INTERACTION).await.unwrap(), QueueDepth::default());
    });
}

#[test]
fn workflow_futures_are_send_natively() {
    fn assert_send<T: Send>(_: &T) {}
    let store = MemoryStore::new();
    let blobs = MemoryBlobStore::new();
    let ports = PortRefs::shared(&store, &blobs);
    let batch = batch_of("b", &[]);
    assert_send(&process_interaction(&ports, &batch, T0));
    assert_send(&archive_batch(&ports, &batch, T0));
    assert_send(&run_once(&ports, queues::INTERACTION, 1, T0, 0.0));
}

#[test]
fn coalesced_jobs_end_like_jobs_run_one_by_one() {
    block_on(async {
        // Three batches of the same visitors, plus an identify that arrives in the last one.
        let batches = || {
            vec![
                vec![page("c1", "anon-a", T0), page("c2", "anon-b", T0 + MIN)],
                vec![
                    page("c3", "anon-a", T0 + 5 * MIN),
                    track("c4", "anon-b", "Added", T0 + 50 * MIN),
                ],
                vec![
                    identify("c5", "anon-a", "user-1", T0 + 6 * MIN),
                    page("c6", "anon-a", T0 + 7 * MIN),
                ],
            ]
        };
        // one by one
        let single = MemoryStore::new();
        for (i, events) in batches().into_iter().enumerate() {
            let b = ingest(&single, &format!("s{i}"), events).await;
            process(&single, &b).await;
        }
        // leased together: one run over the union
        let merged = MemoryStore::new();
        let blobs = MemoryBlobStore::new();
        let ports = PortRefs::shared(&merged, &blobs);
        for (i, events) in batches().into_iter().enumerate() {
            ingest(&merged, &format!("m{i}"), events).await;
        }
        let r = run_once(&ports, queues::INTERACTION, 10, T0, 0.5).await.unwrap();
        assert_eq!((r.processed, r.failed), (3, 0));
        assert_eq!(merged.depth(queues::INTERACTION).await.unwrap(), QueueDepth::default());

        let shape = |sessions: Vec<Session>| {
            let mut v: Vec<(String, u32, Millis, Millis)> = sessions
                .into_iter()
                .map(|s| (s.person_id, s.event_count, s.started_at, s.ended_at))
                .collect();
            v.sort();
            v
        };
        let (a, b) = (shape(all_sessions(&single).await), shape(all_sessions(&merged).await));
        assert_eq!(a, b);
        // anon-a became user-1: one session of 4 events; anon-b: two sessions (a 49 min gap)
        assert_eq!(b.iter().filter(|s| s.0 == "user-1").map(|s| s.1).sum::<u32>(), 4);
        assert_eq!(b.iter().filter(|s| s.0 == "anon-b").count(), 2);
        for e in all_events(&merged).await {
            assert!(e.session_id.is_some() && e.person_id.is_some(), "{}", e.id);
        }
        // the three archive jobs become one archive object holding every event once
        let r = run_once(&ports, queues::PROCESSING, 10, T0, 0.5).await.unwrap();
        assert_eq!((r.processed, r.failed), (3, 0));
        let keys = blobs.list("raw-interactions/").await.unwrap();
        assert_eq!(keys.len(), 1, "{keys:?}");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&blobs.get(&keys[0]).await.unwrap().unwrap()[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.lines().count(), 6);
    });
}

#[test]
fn a_visitors_batch_costs_one_session_lookup_not_one_per_event() {
    block_on(async {
        let store = MemoryStore::new();
        let blobs = MemoryBlobStore::new();
        // an earlier session of the visitor is stored
        let b0 = ingest(&store, "b0", vec![page("v0", "anon", T0)]).await;
        process(&store, &b0).await;
        let events: Vec<_> = (1..=20).map(|i| page(&format!("v{i}"), "anon", T0 + i * MIN)).collect();
        let b1 = ingest(&store, "b1", events).await;
        let counting = CountingEvents::new(&store);
        let ports = PortRefs {
            events: &counting,
            queue: &store,
            steps: &store,
            blobs: &blobs,
        };
        process_interaction(&ports, &b1, T0).await.unwrap();
        assert_eq!(counting.calls("latest_session"), 1);
        // and the answer is the same as looking up every event: all 21 events in one session
        let sessions = all_sessions(&store).await;
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].event_count, 21);
    });
}

// ------------------------------------------------------------------------------------------
// text analysis
// ------------------------------------------------------------------------------------------

/// The fake analyzer, plus a PII entity whenever a text mentions an e-mail placeholder.
struct PiiAwareFake;

#[async_trait::async_trait]
impl TextAnalyzer for PiiAwareFake {
    async fn analyze(&self, org_id: &str, texts: &[String]) -> Result<Vec<TextAnalysis>> {
        let mut out = crow_core::testing::FakeTextAnalyzer::new()
            .analyze(org_id, texts)
            .await?;
        for (a, t) in out.iter_mut().zip(texts) {
            if let Some(start) = t.find("me@x.io") {
                a.entities.push(Entity {
                    kind: "email".into(),
                    text: "me@x.io".into(),
                    start,
                    end: start + 7,
                    product_id: None,
                    pii: true,
                });
            }
        }
        Ok(out)
    }
}

fn with_props(mut ev: Interaction, props: Value) -> Interaction {
    ev.properties = props.as_object().unwrap().clone();
    ev
}

#[test]
fn events_with_text_get_sentiment_entities_and_embeddings() {
    block_on(async {
        let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
        let events = vec![
            with_props(
                track("f1", "a1", "Feedback Submitted", T0),
                serde_json::json!({"rating": 1, "feedback": "terrible checkout, ping @acme_help"}),
            ),
            with_props(
                track("s1", "a1", "Products Searched", T0 + MIN),
                serde_json::json!({"query": "  great trail shoes  "}),
            ),
            with_props(
                track("n1", "a1", "Product Viewed", T0 + 2 * MIN),
                serde_json::json!({"sku": "X"}),
            ),
            with_props(
                track("p1", "a1", "Chat Message", T0 + 3 * MIN),
                serde_json::json!({"message": "write me@x.io"}),
            ),
        ];
        let batch = ingest(&store, "b1", events).await;
        let (analyzer, embedder) = (PiiAwareFake, crow_core::testing::HashEmbedder::new(16));
        let index = std::sync::Arc::new(crow_core::testing::BruteForceIndex::new(16));
        let indexes = crow_ingest::search::Indexes::new(index.clone(), index.clone(), index.clone());
        let ports = crow_ingest::workflows::WithText {
            ports: PortRefs::shared(&store, &blobs),
            analyzer: &analyzer,
            embedder: Some(&embedder),
            indexes: Some(&indexes),
            social: None,
            video: None,
        };
        let out = process_interaction(&ports, &batch, T0 + 10 * MIN).await.unwrap();
        assert_eq!(out.texts, 3, "{out:?}");

        let f1 = event(&store, "f1").await;
        let a = f1.analysis.expect("feedback analyzed");
        assert_eq!(a.sentiment.unwrap().label, "negative");
        assert_eq!(a.entities[0].text, "@acme_help");
        let s1 = event(&store, "s1").await.analysis.unwrap();
        assert_eq!(s1.sentiment.unwrap().label, "positive");
        assert!(event(&store, "n1").await.analysis.is_none(), "no text, no analysis");
        // PII entities are stored without their text.
        let p1 = event(&store, "p1").await.analysis.unwrap();
        let email = p1.entities.iter().find(|e| e.kind == "email").unwrap();
        assert!(email.pii && email.text.is_empty(), "{email:?}");
        // The embeddings went into the interaction index, with filterable metadata and a
        // snippet of the scrubbed text: no raw PII reaches the index either.
        use crow_core::ports::VectorIndex;
        let org = &batch.org_id;
        assert_eq!(index.count(org).await.unwrap(), 3);
        let recs = index.get(org, &["f1".into(), "p1".into()]).await.unwrap();
        assert_eq!(recs[0].metadata["label"], "negative");
        assert_eq!(recs[0].metadata["type"], "track");
        let snippet = recs[1].metadata["snippet"].as_str().unwrap();
        assert!(!snippet.contains("me@x.io"), "{snippet}");

        // Without an analyzer the step does not run.
        let batch2 = ingest(
            &store,
            "b2",
            vec![with_props(
                track("f2", "a2", "Feedback Submitted", T0),
                serde_json::json!({"feedback": "great"}),
            )],
        )
        .await;
        let plain = process_interaction(&PortRefs::shared(&store, &blobs), &batch2, T0)
            .await
            .unwrap();
        assert_eq!(plain.texts, 0);
        assert!(event(&store, "f2").await.analysis.is_none());
    });
}
