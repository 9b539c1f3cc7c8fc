//! Sessions and identity stitching.

use std::collections::HashSet;

use crow_core::model::{Campaign, DeviceClass, Enrichment, EventType, PageContext, ReferrerClass, UserAgentInfo};
use crow_core::ports::{EventStore, InteractionQuery, SessionQuery};

use crate::common::{event, page, store, track};

#[tokio::test]
async fn refresh_recomputes_a_session_from_its_events() {
    let (_dir, s) = store();
    let mut first = page("o", "e1", "anon", "/landing", 1_000);
    first.context.page = Some(PageContext {
        path: Some("/landing".into()),
        referrer: Some("https://news.example/".into()),
        ..Default::default()
    });
    first.context.campaign = Some(Campaign {
        source: Some("news".into()),
        medium: Some("referral".into()),
        ..Default::default()
    });
    first.context.user_agent = Some(UserAgentInfo {
        device: DeviceClass::Mobile,
        ..Default::default()
    });
    let mut events = vec![
        first,
        track("o", "e2", "anon", "Clicked", 2_000),
        page("o", "e3", "anon", "/pricing", 3_000),
        event("o", "e4", EventType::Identify, 4_000),
    ];
    let mut screen = event("o", "e5", EventType::Screen, 3_500);
    screen.name = Some("Home".into()); // a screen's view path is its name
    events.push(screen);
    for e in &mut events {
        e.session_id = Some("s1".into());
    }
    s.append("o", events, vec![]).await.unwrap();
    s.apply_enrichment(
        "o",
        &[Enrichment {
            event_id: "e1".into(),
            person_id: "anon".into(),
            session_id: "s1".into(),
            referrer_class: ReferrerClass::Referral,
        }],
    )
    .await
    .unwrap();
    s.refresh_sessions("o", &["s1".into(), "s1".into()]).await.unwrap();
    let got = s.get_session("o", "s1").await.unwrap().unwrap();
    assert_eq!(got.id, "s1");
    assert_eq!(got.org_id, "o");
    assert_eq!(got.person_id, "anon");
    assert_eq!((got.started_at, got.ended_at), (1_000, 4_000));
    assert_eq!(got.event_count, 5);
    assert_eq!(got.page_count, 3);
    assert_eq!(got.entry_path.as_deref(), Some("/landing"));
    assert_eq!(got.exit_path.as_deref(), Some("Home"));
    assert_eq!(got.referrer.as_deref(), Some("https://news.example/"));
    assert_eq!(got.referrer_class, Some(ReferrerClass::Referral));
    assert_eq!(
        got.campaign,
        Campaign {
            source: Some("news".into()),
            medium: Some("referral".into()),
            ..Default::default()
        }
        .key()
    );
    assert_eq!(got.device, Some(DeviceClass::Mobile));
    assert!(!got.is_bot);

    // Idempotent: refreshing again changes nothing; new events are picked up.
    s.refresh_sessions("o", &["s1".into()]).await.unwrap();
    assert_eq!(s.get_session("o", "s1").await.unwrap().unwrap(), got);
    let mut late = page("o", "e6", "anon", "/bye", 5_000);
    late.session_id = Some("s1".into());
    s.append("o", vec![late], vec![]).await.unwrap();
    s.refresh_sessions("o", &["s1".into()]).await.unwrap();
    let again = s.get_session("o", "s1").await.unwrap().unwrap();
    assert_eq!((again.event_count, again.page_count, again.ended_at), (6, 4, 5_000));
    assert_eq!(again.exit_path.as_deref(), Some("/bye"));

    // A session whose events all moved elsewhere disappears.
    let moved: Vec<Enrichment> = (1..=6)
        .map(|i| Enrichment {
            event_id: format!("e{i}"),
            person_id: "anon".into(),
            session_id: "s2".into(),
            referrer_class: ReferrerClass::Direct,
        })
        .collect();
    s.apply_enrichment("o", &moved).await.unwrap();
    s.refresh_sessions("o", &["s1".into(), "s2".into()]).await.unwrap();
    assert_eq!(s.get_session("o", "s1").await.unwrap(), None);
    assert_eq!(s.get_session("o", "s2").await.unwrap().unwrap().event_count, 6);
}

#[tokio::test]
async fn bot_sessions_are_flagged() {
    let (_dir, s) = store();
    let mut e = page("o", "b1", "bot", "/", 1);
    e.is_bot = true;
    e.session_id = Some("sb".into());
    s.append("o", vec![e], vec![]).await.unwrap();
    s.refresh_sessions("o", &["sb".into()]).await.unwrap();
    assert!(s.get_session("o", "sb").await.unwrap().unwrap().is_bot);
}

async fn sessions_of(s: &crow_store::SqliteStore, person: &str, n: usize) {
    let mut events = Vec::new();
    for i in 0..n {
        let mut e = page("o", &format!("{person}-{i}"), person, "/", 1_000 * i as i64);
        e.session_id = Some(format!("{person}-s{i}"));
        events.push(e);
    }
    s.append("o", events, vec![]).await.unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("{person}-s{i}")).collect();
    s.refresh_sessions("o", &ids).await.unwrap();
}

#[tokio::test]
async fn latest_session_and_session_pages() {
    let (_dir, s) = store();
    sessions_of(&s, "p", 25).await;
    sessions_of(&s, "q", 3).await;
    let latest = s.latest_session("o", "p", 7_500).await.unwrap().unwrap();
    assert_eq!(latest.id, "p-s7");
    let latest = s.latest_session("o", "p", 7_000).await.unwrap().unwrap();
    assert_eq!(latest.id, "p-s7", "a session starting exactly at `at` counts");
    assert_eq!(s.latest_session("o", "p", -1).await.unwrap(), None);
    assert_eq!(s.latest_session("o", "nobody", i64::MAX).await.unwrap(), None);

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = s
            .list_sessions(
                "o",
                &SessionQuery {
                    limit: 4,
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(p.data);
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 28);
    assert_eq!(seen.iter().map(|x| &x.id).collect::<HashSet<_>>().len(), 28);
    assert!(seen.windows(2).all(|w| w[0].started_at >= w[1].started_at));
    let q = s
        .list_sessions(
            "o",
            &SessionQuery {
                person_id: Some("q".into()),
                since: Some(1_000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ids: Vec<_> = q.data.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, ["q-s2", "q-s1"]);
}

#[tokio::test]
async fn link_identity_re_points_events_and_sessions() {
    let (_dir, s) = store();
    let mut events = vec![page("o", "e1", "anon-1", "/", 10), page("o", "e2", "anon-1", "/b", 20)];
    for e in &mut events {
        e.session_id = Some("s1".into());
    }
    s.append("o", events, vec![]).await.unwrap();
    let enrich: Vec<Enrichment> = ["e1", "e2"]
        .iter()
        .map(|id| Enrichment {
            event_id: id.to_string(),
            person_id: "anon-1".into(),
            session_id: "s1".into(),
            referrer_class: ReferrerClass::Direct,
        })
        .collect();
    s.apply_enrichment("o", &enrich).await.unwrap();
    s.refresh_sessions("o", &["s1".into()]).await.unwrap();
    assert_eq!(s.resolve_person("o", "anon-1").await.unwrap(), None);

    s.link_identity("o", "anon-1", "user-1", 100).await.unwrap();
    s.link_identity("o", "anon-1", "user-1", 100).await.unwrap(); // replay: same state
    assert_eq!(
        s.resolve_person("o", "anon-1").await.unwrap().as_deref(),
        Some("user-1")
    );
    let by_person = s
        .list_interactions(
            "o",
            &InteractionQuery {
                person_id: Some("user-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_person.data.len(), 2);
    assert!(by_person.data.iter().all(|e| e.person_id.as_deref() == Some("user-1")));
    assert_eq!(s.get_session("o", "s1").await.unwrap().unwrap().person_id, "user-1");
    assert_eq!(s.latest_session("o", "user-1", 1_000).await.unwrap().unwrap().id, "s1");
    assert_eq!(s.latest_session("o", "anon-1", 1_000).await.unwrap(), None);
    // A refresh keeps the stitched person.
    s.refresh_sessions("o", &["s1".into()]).await.unwrap();
    assert_eq!(s.get_session("o", "s1").await.unwrap().unwrap().person_id, "user-1");

    // Chains stay flat: user-1 merged into user-2 moves anon-1 along.
    s.link_identity("o", "user-1", "user-2", 200).await.unwrap();
    assert_eq!(
        s.resolve_person("o", "anon-1").await.unwrap().as_deref(),
        Some("user-2")
    );
    assert_eq!(
        s.resolve_person("o", "user-1").await.unwrap().as_deref(),
        Some("user-2")
    );
    // Linking a new alias to an alias lands on the root.
    s.link_identity("o", "anon-2", "anon-1", 300).await.unwrap();
    assert_eq!(
        s.resolve_person("o", "anon-2").await.unwrap().as_deref(),
        Some("user-2")
    );
    // The reverse link of an existing one is a no-op, not a cycle.
    s.link_identity("o", "user-2", "user-1", 400).await.unwrap();
    assert_eq!(
        s.resolve_person("o", "user-1").await.unwrap().as_deref(),
        Some("user-2")
    );
    assert_eq!(s.resolve_person("o", "user-2").await.unwrap(), None);
    let got = s.get_interactions("o", &["e1".into()]).await.unwrap();
    assert_eq!(got[0].person_id.as_deref(), Some("user-2"));
}
