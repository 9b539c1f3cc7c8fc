//! EventStore: append, reads, pagination, isolation, group commit, reports.

use std::collections::HashSet;
use std::sync::Arc;

use crow_core::model::{
    Campaign, DeviceClass, Enrichment, EventType, Interaction, Library, PageContext, ReferrerClass, Screen, Source,
    UserAgentInfo,
};
use crow_core::ports::{EventStore, FunnelStep, InteractionQuery, JobQueue, NewJob, SessionQuery, queues};
use crow_store::{Durability, SqliteStore, StoreConfig};
use serde_json::json;

use crate::common::{event, page, store, track};

fn rich_event(org: &str) -> Interaction {
    let mut e = event(org, "evt-rich", EventType::Track, 1_700_000_000_123);
    e.name = Some("Order Completed".into());
    e.anonymous_id = Some("anon-1".into());
    e.user_id = Some("user-1".into());
    e.session_id = Some("client-session".into());
    e.group_id = Some("grp".into());
    e.previous_id = Some("prev".into());
    e.properties = json!({"total": 42.5, "items": [{"sku": "A-1", "qty": 2}], "coupon": null})
        .as_object()
        .unwrap()
        .clone();
    e.traits = json!({"plan": "pro"}).as_object().unwrap().clone();
    e.context.page = Some(PageContext {
        url: Some("https://shop.example/checkout?step=2".into()),
        path: Some("/checkout".into()),
        referrer: Some("https://www.google.com/".into()),
        title: Some("Checkout — Shop".into()),
        search: Some("?step=2".into()),
    });
    e.context.user_agent = Some(UserAgentInfo {
        browser: Some("Firefox".into()),
        browser_version: Some("125".into()),
        os: Some("Linux".into()),
        device: DeviceClass::Desktop,
    });
    e.context.locale = Some("fr-FR".into());
    e.context.timezone = Some("Europe/Paris".into());
    e.context.screen = Some(Screen {
        width: Some(1920),
        height: Some(1080),
        density: Some(1.5),
    });
    e.context.campaign = Some(Campaign {
        name: Some("spring".into()),
        source: Some("newsletter".into()),
        medium: Some("email".into()),
        term: None,
        content: Some("hero".into()),
        click_id: Some("gclid".into()),
    });
    e.context.ip = Some("203.0.113.0".into());
    e.context.library = Some(Library {
        name: "crow.js".into(),
        version: Some("1.2.3".into()),
    });
    e.context.extra = json!({"app": {"build": 7}}).as_object().unwrap().clone();
    e.original_timestamp = Some(1_700_000_000_000);
    e.sent_at = Some(1_700_000_000_050);
    e.received_at = 1_700_000_000_200;
    e.source = Source::Segment;
    e.is_bot = true;
    e.pii_scrubbed = 3;
    e.person_id = Some("person-9".into());
    e.referrer_class = Some(ReferrerClass::Email);
    e
}

#[tokio::test]
async fn an_interaction_round_trips_through_append_and_get() {
    let (_dir, s) = store();
    let e = rich_event("org_a");
    let out = s.append("org_a", vec![e.clone()], vec![]).await.unwrap();
    assert_eq!((out.inserted, out.duplicates), (1, 0));
    let got = s
        .get_interactions("org_a", &["evt-rich".into(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(got, vec![e.clone()]);
    let page = s
        .list_interactions("org_a", &InteractionQuery::default())
        .await
        .unwrap();
    assert_eq!(page.data, vec![e]);
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn ndjson_export_is_the_stored_events_in_order() {
    let (_dir, s) = store();
    let e = rich_event("org_a");
    let other = page("org_a", "p-1", "a", "/", 5);
    s.append("org_a", vec![e.clone(), other.clone()], vec![]).await.unwrap();
    s.append("org_b", vec![page("org_b", "b-1", "a", "/", 5)], vec![])
        .await
        .unwrap();
    let ids: Vec<String> = ["p-1", "nope", "evt-rich", "b-1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (bytes, n) = s.interactions_ndjson("org_a", &ids).await.unwrap();
    assert_eq!(n, 2, "unknown ids and other orgs' ids are skipped");
    let lines: Vec<Interaction> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, vec![other, e]);
}

#[tokio::test]
async fn get_interactions_follows_the_order_of_ids() {
    let (_dir, s) = store();
    let events: Vec<_> = (0..5).map(|i| page("o", &format!("e{i}"), "a", "/", i)).collect();
    s.append("o", events, vec![]).await.unwrap();
    let ids: Vec<String> = ["e3", "nope", "e0", "e4"].iter().map(|s| s.to_string()).collect();
    let got: Vec<String> = s
        .get_interactions("o", &ids)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(got, ["e3", "e0", "e4"]);
}

#[tokio::test]
async fn appending_the_same_ids_again_counts_duplicates() {
    let (_dir, s) = store();
    let batch: Vec<_> = (0..10).map(|i| page("o", &format!("e{i}"), "a", "/", i)).collect();
    let first = s.append("o", batch.clone(), vec![]).await.unwrap();
    assert_eq!((first.inserted, first.duplicates), (10, 0));
    // Resent batch with two new events; a changed duplicate is left unchanged.
    let mut again = batch.clone();
    again[0].name = Some("changed".into());
    again.push(page("o", "e10", "a", "/", 10));
    again.push(page("o", "e10", "a", "/", 10)); // twice in the same batch
    let second = s.append("o", again, vec![]).await.unwrap();
    assert_eq!((second.inserted, second.duplicates), (1, 11));
    let got = s.get_interactions("o", &["e0".into()]).await.unwrap();
    assert_eq!(got[0].name, None);
    // The same id in another org is a different event.
    let other = s.append("p", vec![page("p", "e0", "a", "/", 0)], vec![]).await.unwrap();
    assert_eq!(other.inserted, 1);
}

#[tokio::test]
async fn events_are_stored_under_the_org_argument() {
    let (_dir, s) = store();
    s.append("org_a", vec![page("org_b", "e", "a", "/", 0)], vec![])
        .await
        .unwrap();
    assert!(s.get_interactions("org_b", &["e".into()]).await.unwrap().is_empty());
    let got = s.get_interactions("org_a", &["e".into()]).await.unwrap();
    assert_eq!(got[0].org_id, "org_a");
}

#[tokio::test]
async fn follow_up_jobs_are_enqueued_with_the_events() {
    let (_dir, s) = store();
    let job = NewJob::new(queues::INTERACTION, "interaction", json!({"ids": ["e1"]}));
    s.append("o", vec![page("o", "e1", "a", "/", 1)], vec![job.clone()])
        .await
        .unwrap();
    let jobs = s.reserve(queues::INTERACTION, 10, 1_000, 0).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].payload, job.payload);
    assert_eq!(jobs[0].kind, "interaction");
}

/// Two orgs with overlapping ids, people and sessions.
async fn two_orgs(s: &SqliteStore) {
    for org in ["org_a", "org_b"] {
        let n = if org == "org_a" { 30 } else { 3 };
        let mut events = Vec::new();
        for i in 0..n {
            let mut e = page(org, &format!("e{i}"), "anon-1", &format!("/{org}/{i}"), 1_000 + i);
            e.session_id = Some(format!("s-{org}"));
            events.push(e);
        }
        s.append(org, events, vec![]).await.unwrap();
        s.refresh_sessions(org, &[format!("s-{org}")]).await.unwrap();
    }
    s.link_identity("org_a", "anon-1", "user-a", 2_000).await.unwrap();
}

#[tokio::test]
async fn org_b_never_sees_org_a() {
    let (_dir, s) = store();
    two_orgs(&s).await;
    let b = "org_b";
    let all = s
        .list_interactions(
            b,
            &InteractionQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.data.len(), 3);
    assert!(all.data.iter().all(|e| e.org_id == b));
    let ids: Vec<String> = (0..30).map(|i| format!("e{i}")).collect();
    let got = s.get_interactions(b, &ids).await.unwrap();
    assert!(got.iter().all(|e| e.org_id == b) && got.len() == 3);
    assert_eq!(s.get_session(b, "s-org_a").await.unwrap(), None);
    let sessions = s.list_sessions(b, &SessionQuery::default()).await.unwrap();
    assert_eq!(sessions.data.len(), 1);
    assert_eq!(sessions.data[0].org_id, b);
    // The link was made in org_a only.
    assert_eq!(s.resolve_person(b, "anon-1").await.unwrap(), None);
    assert_eq!(s.latest_session(b, "user-a", i64::MAX).await.unwrap(), None);
    let by_person = s
        .list_interactions(
            b,
            &InteractionQuery {
                person_id: Some("user-a".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(by_person.data.is_empty());
    let t = s.traffic_summary(b, 0, i64::MAX, 100).await.unwrap();
    assert_eq!((t.events, t.page_views), (3, 3));
    assert!(t.top_pages.iter().all(|(p, _)| p.starts_with("/org_b/")));
    let f = s
        .funnel(
            b,
            &[FunnelStep {
                label: "any page".into(),
                event_type: EventType::Page,
                name: None,
            }],
            0,
            i64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(f[0].people, 1);
    // A cursor from org_a's listing does not leak org_a rows either.
    let a_page = s
        .list_interactions(
            "org_a",
            &InteractionQuery {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let leaked = s
        .list_interactions(
            b,
            &InteractionQuery {
                cursor: a_page.next_cursor,
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(leaked.data.iter().all(|e| e.org_id == b));
}

#[tokio::test]
async fn pagination_returns_every_row_exactly_once_newest_first() {
    let (_dir, s) = store();
    // 257 events over 40 distinct timestamps (many ties), appended out of order.
    let mut events: Vec<_> = (0..257)
        .map(|i| {
            let mut e = page("o", &format!("e{i:03}"), "a", "/", ((i * 7919) % 40) as i64);
            e.event_type = if i % 3 == 0 { EventType::Track } else { EventType::Page };
            e
        })
        .collect();
    events.reverse();
    for chunk in events.chunks(50) {
        s.append("o", chunk.to_vec(), vec![]).await.unwrap();
    }
    for (limit, event_type, expected) in [(7, None, 257), (1000, None, 257), (10, Some(EventType::Track), 86)] {
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let p = s
                .list_interactions(
                    "o",
                    &InteractionQuery {
                        limit,
                        cursor: cursor.clone(),
                        event_type,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert!(p.data.len() <= limit as usize);
            pages += 1;
            seen.extend(p.data);
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), expected, "limit {limit}");
        let ids: HashSet<_> = seen.iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids.len(), expected, "duplicates across pages");
        assert!(seen.windows(2).all(|w| w[0].timestamp >= w[1].timestamp));
        assert_eq!(pages, expected.div_ceil(limit as usize));
    }
    // since/until, then a bad cursor.
    let p = s
        .list_interactions(
            "o",
            &InteractionQuery {
                since: Some(10),
                until: Some(20),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!p.data.is_empty() && p.data.iter().all(|e| (10..20).contains(&e.timestamp)));
    let err = s
        .list_interactions(
            "o",
            &InteractionQuery {
                cursor: Some("garbage".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, crow_core::Error::Invalid { ref field, .. } if field == "cursor"));
    // limit 0 means 50
    let p = s.list_interactions("o", &InteractionQuery::default()).await.unwrap();
    assert_eq!(p.data.len(), 50);
}

#[tokio::test]
async fn name_filter_matches_track_names() {
    let (_dir, s) = store();
    s.append(
        "o",
        vec![track("o", "1", "a", "Signed Up", 1), track("o", "2", "a", "Other", 2)],
        vec![],
    )
    .await
    .unwrap();
    let p = s
        .list_interactions(
            "o",
            &InteractionQuery {
                name: Some("Signed Up".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.data.len(), 1);
    assert_eq!(p.data[0].id, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_commits() {
    let (_dir, s) = store();
    let s = Arc::new(s);
    let before = s.commit_count();
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let s = s.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let events: Vec<_> = (0..20).map(|i| page("o", &format!("t{t}-e{i}"), "a", "/", i)).collect();
                barrier.wait().await;
                s.append("o", events, vec![]).await.unwrap()
            })
        })
        .collect();
    let mut inserted = 0;
    for t in tasks {
        inserted += t.await.unwrap().inserted;
    }
    let commits = s.commit_count() - before;
    assert_eq!(inserted, 64 * 20);
    assert!(commits < 64, "64 concurrent appends took {commits} commits");
    let t = s.traffic_summary("o", 0, i64::MAX, 1).await.unwrap();
    assert_eq!(t.events, 64 * 20);
}

#[tokio::test]
async fn enrichment_is_returned_by_reads_and_filters() {
    let (_dir, s) = store();
    let mut e1 = page("o", "e1", "anon", "/", 10);
    e1.session_id = Some("client-s".into());
    s.append("o", vec![e1, page("o", "e2", "anon", "/b", 20)], vec![])
        .await
        .unwrap();
    let enrich = |id: &str| Enrichment {
        event_id: id.into(),
        person_id: "p1".into(),
        session_id: "crow-s1".into(),
        referrer_class: ReferrerClass::Search,
    };
    let items = [enrich("e1"), enrich("e2"), enrich("unknown")];
    s.apply_enrichment("o", &items).await.unwrap();
    s.apply_enrichment("o", &items).await.unwrap(); // idempotent
    let got = s.get_interactions("o", &["e1".into()]).await.unwrap();
    assert_eq!(got[0].person_id.as_deref(), Some("p1"));
    assert_eq!(got[0].session_id.as_deref(), Some("crow-s1"));
    assert_eq!(got[0].referrer_class, Some(ReferrerClass::Search));
    for q in [
        InteractionQuery {
            person_id: Some("p1".into()),
            ..Default::default()
        },
        InteractionQuery {
            session_id: Some("crow-s1".into()),
            ..Default::default()
        },
    ] {
        let p = s.list_interactions("o", &q).await.unwrap();
        let ids: Vec<_> = p.data.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e2", "e1"]);
        assert!(p.data.iter().all(|e| e.referrer_class == Some(ReferrerClass::Search)));
    }
    // Enrichment from another org touches nothing.
    s.apply_enrichment(
        "other",
        &[Enrichment {
            event_id: "e1".into(),
            person_id: "x".into(),
            session_id: "x".into(),
            referrer_class: ReferrerClass::Paid,
        }],
    )
    .await
    .unwrap();
    let got = s.get_interactions("o", &["e1".into()]).await.unwrap();
    assert_eq!(got[0].person_id.as_deref(), Some("p1"));
}

#[tokio::test]
async fn traffic_summary_counts_a_small_dataset() {
    let (_dir, s) = store();
    let mut events = vec![
        page("o", "1", "a", "/", 100),
        page("o", "2", "a", "/pricing", 110),
        page("o", "3", "b", "/", 120),
        track("o", "4", "b", "Signed Up", 130),
        page("o", "5", "c", "/", 5_000), // outside the range
    ];
    let mut screen = page("o", "6", "c", "/app", 140);
    screen.event_type = EventType::Screen;
    events.push(screen);
    let mut bot = page("o", "7", "crawler", "/", 150);
    bot.is_bot = true;
    events.push(bot);
    events[0].pii_scrubbed = 2;
    events[3].pii_scrubbed = 1;
    for (e, sid) in events.iter_mut().zip(["sa", "sa", "sb", "sb", "sc2", "sc", "sbot"]) {
        e.session_id = Some(sid.into());
    }
    s.append("o", events, vec![]).await.unwrap();
    let enrich = |id: &str, person: &str, session: &str, class| Enrichment {
        event_id: id.into(),
        person_id: person.into(),
        session_id: session.into(),
        referrer_class: class,
    };
    s.apply_enrichment(
        "o",
        &[
            enrich("1", "pa", "sa", ReferrerClass::Search),
            enrich("2", "pa", "sa", ReferrerClass::Internal),
            enrich("3", "pb", "sb", ReferrerClass::Search),
            enrich("4", "pb", "sb", ReferrerClass::Internal),
            enrich("6", "pc", "sc", ReferrerClass::Direct),
        ],
    )
    .await
    .unwrap();
    s.refresh_sessions("o", &["sa".into(), "sb".into(), "sc".into(), "sbot".into()])
        .await
        .unwrap();
    let t = s.traffic_summary("o", 100, 1_000, 2).await.unwrap();
    assert_eq!(t.events, 6);
    assert_eq!(t.bot_events, 1);
    assert_eq!(t.pii_scrubbed, 3);
    assert_eq!(t.visitors, 3);
    assert_eq!(t.sessions, 3);
    assert_eq!(t.page_views, 4); // 3 pages + 1 screen, bot excluded
    // Page paths only: the screen is a view but not a page.
    assert_eq!(t.top_pages, vec![("/".to_string(), 2), ("/pricing".to_string(), 1)]);
    assert_eq!(
        t.referrer_classes,
        vec![("search".to_string(), 2), ("direct".to_string(), 1)]
    );
}

#[tokio::test]
async fn funnel_counts_people_in_order() {
    let (_dir, s) = store();
    let events = vec![
        // a: home -> pricing -> signed up (complete)
        page("o", "a1", "a", "/", 10),
        page("o", "a2", "a", "/pricing", 20),
        track("o", "a3", "a", "Signed Up", 30),
        // b: home -> pricing, no signup
        page("o", "b1", "b", "/", 10),
        page("o", "b2", "b", "/pricing", 15),
        // c: signed up before pricing: counts for steps 1-2 only
        page("o", "c1", "c", "/", 10),
        track("o", "c2", "c", "Signed Up", 12),
        page("o", "c3", "c", "/pricing", 14),
        // d: pricing only (never step 1)
        page("o", "d1", "d", "/pricing", 10),
        // e: home twice; pricing between the two: the first visit counts
        page("o", "e1", "e", "/", 10),
        page("o", "e2", "e", "/pricing", 11),
        page("o", "e3", "e", "/", 12),
        // f: everything at the same instant (later-or-equal)
        page("o", "f1", "f", "/", 50),
        page("o", "f2", "f", "/pricing", 50),
        track("o", "f3", "f", "Signed Up", 50),
        // i: home only
        page("o", "i1", "i", "/", 10),
    ];
    let mut events = events;
    // g: a bot doing everything is ignored
    for (i, step) in ["/", "/pricing"].iter().enumerate() {
        let mut e = page("o", &format!("g{i}"), "g", step, 10 + i as i64);
        e.is_bot = true;
        events.push(e);
    }
    // h: stitched: the anonymous page view and the user's signup belong to one person
    let mut h1 = page("o", "h1", "h-anon", "/", 10);
    h1.person_id = Some("h".into());
    let mut h2 = page("o", "h2", "h-anon", "/pricing", 11);
    h2.person_id = Some("h".into());
    let mut h3 = track("o", "h3", "h-other-device", "Signed Up", 12);
    h3.person_id = Some("h".into());
    events.extend([h1, h2, h3]);
    s.append("o", events, vec![]).await.unwrap();
    let steps = [
        FunnelStep {
            label: "Home".into(),
            event_type: EventType::Page,
            name: Some("/".into()),
        },
        FunnelStep {
            label: "Pricing".into(),
            event_type: EventType::Page,
            name: Some("/pricing".into()),
        },
        FunnelStep {
            label: "Signup".into(),
            event_type: EventType::Track,
            name: Some("Signed Up".into()),
        },
    ];
    let rows = s.funnel("o", &steps, 0, 1_000).await.unwrap();
    let people: Vec<u64> = rows.iter().map(|r| r.people).collect();
    // Home: a b c e f h i (not d: no home; not g: bot). Pricing after home: a b c e f h.
    // Signup after pricing: a f h (c signed up before pricing).
    assert_eq!(people, [7, 6, 3]);
    assert_eq!(rows[0].drop_off, 0.0);
    assert!((rows[1].drop_off - (1.0 - 6.0 / 7.0)).abs() < 1e-9);
    assert!((rows[2].drop_off - 0.5).abs() < 1e-9);
    assert_eq!(rows[2].label, "Signup");
    // The time range cuts f out.
    let rows = s.funnel("o", &steps, 0, 50).await.unwrap();
    assert_eq!(rows[0].people, 6);
    assert!(s.funnel("o", &[], 0, 1_000).await.unwrap().is_empty());
}

#[tokio::test]
async fn data_survives_drop_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open(
            dir.path(),
            StoreConfig {
                durability: Durability::Full,
                ..Default::default()
            },
        )
        .unwrap();
        s.append("o", vec![page("o", "e1", "a", "/", 1)], vec![]).await.unwrap();
        s.refresh_sessions("o", &["none".into()]).await.unwrap();
        assert!(s.commit_count() >= 1);
    }
    let s = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(s.commit_count(), 0);
    let got = s.get_interactions("o", &["e1".into()]).await.unwrap();
    assert_eq!(got.len(), 1);
    let again = s.append("o", vec![page("o", "e1", "a", "/", 1)], vec![]).await.unwrap();
    assert_eq!(again.duplicates, 1);
    assert!(s.path().ends_with("crow.db"));
}

#[tokio::test]
async fn reports_resolve_unenriched_events_through_identity_links() {
    let (_dir, s) = store();
    let mut home = page("o", "1", "anon-x", "/", 10);
    home.context.page = Some(PageContext {
        url: Some("https://shop.example/?utm_source=x".into()), // no path: taken from the URL
        ..Default::default()
    });
    let mut signup = track("o", "2", "unused", "Signed Up", 20);
    signup.anonymous_id = None;
    signup.user_id = Some("user-x".into());
    s.append("o", vec![home, signup], vec![]).await.unwrap();
    let steps = [
        FunnelStep {
            label: "Home".into(),
            event_type: EventType::Page,
            name: Some("/".into()),
        },
        FunnelStep {
            label: "Signup".into(),
            event_type: EventType::Track,
            name: Some("Signed Up".into()),
        },
    ];
    let before: Vec<u64> = s
        .funnel("o", &steps, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.people)
        .collect();
    assert_eq!(before, [1, 0], "two ids, two people");
    assert_eq!(s.traffic_summary("o", 0, 100, 5).await.unwrap().visitors, 2);

    s.link_identity("o", "anon-x", "user-x", 15).await.unwrap();
    let after: Vec<u64> = s
        .funnel("o", &steps, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.people)
        .collect();
    assert_eq!(after, [1, 1], "one person once linked");
    let t = s.traffic_summary("o", 0, 100, 5).await.unwrap();
    assert_eq!(t.visitors, 1);
    assert_eq!(t.top_pages, vec![("/".to_string(), 1)]);
}

#[tokio::test]
async fn text_analyses_are_stored_with_the_interaction_and_scoped_to_the_org() {
    use crow_core::model::InteractionText;
    use crow_core::ports::{Entity, Sentiment, TextAnalysis};
    let (dir, store) = store();
    let ev = track("org_a", "e1", "anon", "Feedback Submitted", 1_000);
    store.append("org_a", vec![ev.clone()], vec![]).await.unwrap();
    store.append("org_b", vec![ev], vec![]).await.unwrap();
    let analysis = TextAnalysis {
        language: Some("en".into()),
        sentiment: Some(Sentiment {
            label: "negative".into(),
            score: -0.8,
            tier: "model".into(),
        }),
        entities: vec![Entity {
            kind: "email".into(),
            text: String::new(),
            start: 3,
            end: 10,
            product_id: None,
            pii: true,
        }],
        key_phrases: vec!["late delivery".into()],
    };
    let row = InteractionText {
        event_id: "e1".into(),
        field: "feedback".into(),
        timestamp: 1_000,
        analysis: analysis.clone(),
        embedding: Some(vec![0.25, -0.5, 1.0]),
        analyzed_at: 2_000,
    };
    store.store_texts("org_a", std::slice::from_ref(&row)).await.unwrap();
    store.store_texts("org_a", &[row]).await.unwrap(); // idempotent
    let got = store.get_interactions("org_a", &["e1".into()]).await.unwrap();
    assert_eq!(got[0].analysis.as_ref(), Some(&analysis));
    let listed = store
        .list_interactions("org_a", &crow_core::ports::InteractionQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.data[0].analysis.as_ref(), Some(&analysis));
    let other = store.get_interactions("org_b", &["e1".into()]).await.unwrap();
    assert!(
        other[0].analysis.is_none(),
        "another org's event with the same id has no analysis"
    );
    drop(store);
    // The embedding is stored as little-endian f32.
    let conn = rusqlite::Connection::open(dir.path().join("crow.db")).unwrap();
    let (blob, label): (Vec<u8>, String) = conn
        .query_row(
            "SELECT embedding, sentiment_label FROM interaction_texts WHERE org_id = 'org_a' AND event_id = 'e1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let floats: Vec<f32> = blob
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!((floats, label.as_str()), (vec![0.25, -0.5, 1.0], "negative"));
}
