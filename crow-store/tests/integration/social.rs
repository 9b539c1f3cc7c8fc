//! SocialStore: one contract, run against `MemoryStore` (the reference) and `SqliteStore`, plus
//! what only a file can show (state that survives reopening it).

use crow_core::Error;
use crow_core::model::{Engagement, Millis, SocialMention};
use crow_core::ports::{JobQueue, MentionOutcome, MentionQuery, NewJob, SocialStore, SourceState, queues};
use crow_store::{SqliteStore, StoreConfig};
use serde_json::json;

const ORG: &str = "org_a";

use crow_core::testing::{sample_duplicate as dup, sample_mention as mention};

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn outcome(stored: usize, existing: usize, duplicates: usize) -> MentionOutcome {
    MentionOutcome {
        stored,
        existing,
        duplicates,
    }
}

async fn stores_and_knows_mentions<S: SocialStore + JobQueue>(s: &S) {
    let (m1, m2) = (mention(ORG, "bluesky", 1, 1_000), mention(ORG, "bluesky", 2, 2_000));
    let links = [
        dup("mastodon:9", "bluesky:1", 1_500),
        dup("reddit:7", "bluesky:1", 1_600),
    ];
    let out = s
        .store_mentions(ORG, &[m1.clone(), m2.clone()], &links, vec![], 5_000)
        .await
        .unwrap();
    assert_eq!(out, outcome(2, 0, 2));
    let asked = strings(&["nope", "reddit:7", "bluesky:2", "bluesky:2", "mastodon:9"]);
    assert_eq!(
        s.known_mentions(ORG, &asked).await.unwrap(),
        ["reddit:7", "bluesky:2", "mastodon:9"]
    );
    // every field comes back as stored; links are not mentions
    let got = s
        .get_mentions(ORG, &strings(&["bluesky:2", "mastodon:9", "bluesky:1"]))
        .await
        .unwrap();
    assert_eq!(got, [m2, m1]);
    assert_eq!(
        s.list_duplicates(ORG, None, 10).await.unwrap(),
        [links[1].clone(), links[0].clone()],
        "newest first"
    );
    assert_eq!(
        s.list_duplicates(ORG, Some("bluesky:1"), 1).await.unwrap(),
        [links[1].clone()]
    );
    assert!(s.list_duplicates(ORG, Some("bluesky:2"), 10).await.unwrap().is_empty());
}

async fn storing_again_changes_nothing<S: SocialStore + JobQueue>(s: &S) {
    let m1 = mention(ORG, "rss", 1, 1_000);
    let link = dup("rss:2", "rss:1", 1_100);
    s.store_mentions(ORG, std::slice::from_ref(&m1), std::slice::from_ref(&link), vec![], 0)
        .await
        .unwrap();
    let mut changed = m1.clone();
    changed.text = "edited".into();
    changed.selected = !changed.selected;
    let mut moved = link.clone();
    moved.original_id = "rss:3".into();
    // the same mention, a link re-sent as a mention, a mention re-sent as a link, the same link
    let out = s
        .store_mentions(
            ORG,
            &[changed, mention(ORG, "rss", 2, 5)],
            &[dup("rss:1", "rss:0", 9), moved],
            vec![],
            1,
        )
        .await
        .unwrap();
    assert_eq!(out, outcome(0, 4, 0));
    assert_eq!(s.get_mentions(ORG, &strings(&["rss:1", "rss:2"])).await.unwrap(), [m1]);
    assert_eq!(s.list_duplicates(ORG, None, 10).await.unwrap(), [link]);
    // an id repeated within one call is stored once
    let m3 = mention(ORG, "rss", 3, 3_000);
    let out = s
        .store_mentions(ORG, &[m3.clone(), m3.clone()], &[dup("rss:3", "rss:1", 1)], vec![], 2)
        .await
        .unwrap();
    assert_eq!(out, outcome(1, 2, 0));
    let out = s
        .store_mentions(
            ORG,
            &[],
            &[dup("rss:4", "rss:1", 1), dup("rss:4", "rss:3", 2)],
            vec![],
            3,
        )
        .await
        .unwrap();
    assert_eq!(out, outcome(0, 1, 1));
    assert!(s.list_duplicates(ORG, Some("rss:3"), 10).await.unwrap().is_empty());
}

async fn follow_up_jobs_commit_with_the_mentions<S: SocialStore + JobQueue>(s: &S) {
    let job = |ids: &[&str]| NewJob::new(queues::SOCIAL, "analyze-social", json!({ "ids": ids }));
    let m = [
        mention(ORG, "hackernews", 1, 1_000),
        mention(ORG, "hackernews", 2, 2_000),
    ];
    s.store_mentions(ORG, &m, &[], vec![job(&["hackernews:2"])], 7_000)
        .await
        .unwrap();
    let jobs = s.reserve(queues::SOCIAL, 10, 1_000, 7_000).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, "analyze-social");
    assert_eq!(jobs[0].payload, json!({"ids": ["hackernews:2"]}));
    assert_eq!(jobs[0].enqueued_at, 7_000);
    s.ack(jobs[0].id).await.unwrap();
    // a re-run of the same batch enqueues nothing more
    let out = s
        .store_mentions(ORG, &m, &[], vec![job(&["hackernews:2"])], 8_000)
        .await
        .unwrap();
    assert_eq!(out, outcome(0, 2, 0));
    assert!(s.reserve(queues::SOCIAL, 10, 1_000, 8_000).await.unwrap().is_empty());
    // a batch with something new enqueues its jobs
    let m3 = mention(ORG, "hackernews", 3, 3_000);
    s.store_mentions(ORG, &[m[0].clone(), m3], &[], vec![job(&["hackernews:3"])], 9_000)
        .await
        .unwrap();
    let jobs = s.reserve(queues::SOCIAL, 10, 1_000, 9_000).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].payload, json!({"ids": ["hackernews:3"]}));
    s.ack(jobs[0].id).await.unwrap();
    // a rejected batch stores nothing and enqueues nothing
    let err = s
        .store_mentions(
            ORG,
            &[mention(ORG, "hackernews", 4, 1), mention("org_b", "hackernews", 5, 1)],
            &[dup("hackernews:6", "hackernews:1", 1)],
            vec![job(&["hackernews:4"])],
            10_000,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "mentions[1].org_id"),
        "{err}"
    );
    let ids = strings(&["hackernews:4", "hackernews:6"]);
    assert!(s.known_mentions(ORG, &ids).await.unwrap().is_empty());
    assert!(s.reserve(queues::SOCIAL, 10, 1_000, 10_000).await.unwrap().is_empty());
}

async fn orgs_are_isolated<S: SocialStore + JobQueue>(s: &S) {
    let m = mention(ORG, "bluesky", 1, 1_000);
    s.store_mentions(
        ORG,
        std::slice::from_ref(&m),
        &[dup("bluesky:2", "bluesky:1", 1)],
        vec![],
        0,
    )
    .await
    .unwrap();
    s.set_source_state(
        ORG,
        "watch",
        &SourceState {
            cursor: Some("c".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ids = strings(&["bluesky:1", "bluesky:2"]);
    let other = "org_b";
    assert!(s.known_mentions(other, &ids).await.unwrap().is_empty());
    assert!(s.get_mentions(other, &ids).await.unwrap().is_empty());
    assert!(s.list_duplicates(other, None, 10).await.unwrap().is_empty());
    assert!(s.mention_simhashes(other, 0).await.unwrap().is_empty());
    let q = MentionQuery {
        limit: 10,
        ..Default::default()
    };
    assert!(s.list_mentions(other, &q).await.unwrap().data.is_empty());
    assert_eq!(s.source_state(other, "watch").await.unwrap(), None);
    let err = s
        .set_mention_analysis(other, "bluesky:1", None, &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    // the same ids are free in another org
    let theirs = mention(other, "bluesky", 1, 5);
    let out = s
        .store_mentions(
            other,
            std::slice::from_ref(&theirs),
            &[dup("bluesky:2", "bluesky:1", 1)],
            vec![],
            0,
        )
        .await
        .unwrap();
    assert_eq!(out, outcome(1, 0, 1));
    assert_eq!(s.get_mentions(other, &ids).await.unwrap(), [theirs]);
    assert_eq!(s.get_mentions(ORG, &ids).await.unwrap(), [m]);
}

async fn lists_newest_first_with_filters_and_pages<S: SocialStore + JobQueue>(s: &S) {
    // 25 mentions over 3 platforms and 2 sources; pairs share a posted_at, so ids break ties
    let all: Vec<SocialMention> = (0..25)
        .map(|n| {
            let platform = ["bluesky", "mastodon", "reddit"][n as usize % 3];
            let mut m = mention(ORG, platform, n, 1_000 + Millis::from(n / 2) * 100);
            if n >= 17 {
                m.source = "other".into();
            }
            m
        })
        .collect();
    s.store_mentions(ORG, &all, &[], vec![], 0).await.unwrap();
    let expect = |f: &dyn Fn(&SocialMention) -> bool| {
        let mut v: Vec<&SocialMention> = all.iter().filter(|m| f(m)).collect();
        v.sort_by(|a, b| (b.posted_at, &b.id).cmp(&(a.posted_at, &a.id)));
        v.into_iter().map(|m| m.id.clone()).collect::<Vec<_>>()
    };
    let cases: Vec<(MentionQuery, Vec<String>)> = vec![
        (MentionQuery::default(), expect(&|_| true)),
        (
            MentionQuery {
                platform: Some("mastodon".into()),
                ..Default::default()
            },
            expect(&|m| m.platform == "mastodon"),
        ),
        (
            MentionQuery {
                source: Some("other".into()),
                selected: Some(true),
                ..Default::default()
            },
            expect(&|m| m.source == "other" && m.selected),
        ),
        (
            MentionQuery {
                since: Some(1_200),
                until: Some(1_700),
                selected: Some(false),
                ..Default::default()
            },
            expect(&|m| (1_200..1_700).contains(&m.posted_at) && !m.selected),
        ),
        (
            MentionQuery {
                platform: Some("twitter".into()),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (query, want) in cases {
        for limit in [1, 2, 3, 7, 1000] {
            let mut q = MentionQuery { limit, ..query.clone() };
            let mut got = Vec::new();
            let mut pages = 0;
            loop {
                let page = s.list_mentions(ORG, &q).await.unwrap();
                assert!(page.data.len() <= limit as usize);
                pages += 1;
                got.extend(page.data.into_iter().map(|m| m.id));
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(got, want, "{query:?} limit {limit}");
            assert!(pages <= want.len().div_ceil(limit as usize).max(1) + 1);
        }
    }
    assert_eq!(expect(&|_| true).len(), 25);
    let bad = MentionQuery {
        limit: 5,
        cursor: Some("garbage".into()),
        ..Default::default()
    };
    assert!(matches!(s.list_mentions(ORG, &bad).await, Err(Error::Invalid { .. })));
}

async fn simhashes_analysis_and_source_state<S: SocialStore + JobQueue>(s: &S) {
    let mut a = mention(ORG, "hackernews", 1, 2_000);
    a.simhash = Some(u64::MAX);
    let mut b = mention(ORG, "hackernews", 2, 1_000);
    b.simhash = Some(1 << 63);
    let mut c = mention(ORG, "hackernews", 3, 3_000);
    c.simhash = None;
    let mut d = mention(ORG, "hackernews", 4, 500);
    d.simhash = Some(7);
    let mut e = mention(ORG, "hackernews", 5, 1_000);
    e.simhash = Some((1 << 63) | 1);
    e.engagement = Engagement::default();
    e.lexicon_score = None;
    e.author = None;
    e.url = None;
    e.language = None;
    e.query = None;
    e.source = String::new();
    s.store_mentions(
        ORG,
        &[a.clone(), b.clone(), c.clone(), d.clone(), e.clone()],
        &[],
        vec![],
        0,
    )
    .await
    .unwrap();
    assert_eq!(
        s.mention_simhashes(ORG, 1_000).await.unwrap(),
        [
            (b.id.clone(), 1 << 63),
            (e.id.clone(), (1 << 63) | 1),
            (a.id.clone(), u64::MAX)
        ]
    );
    assert_eq!(s.mention_simhashes(ORG, 0).await.unwrap()[0], (d.id.clone(), 7));
    let ids = strings(&[
        "hackernews:1",
        "hackernews:2",
        "hackernews:3",
        "hackernews:4",
        "hackernews:5",
    ]);
    assert_eq!(s.get_mentions(ORG, &ids).await.unwrap(), [a.clone(), b, c, d, e]);

    let analysis = json!({"sentiment": {"label": "negative", "score": -0.5, "tier": "model"}, "entities": []});
    s.set_mention_analysis(ORG, &a.id, Some(-0.5), &analysis).await.unwrap();
    let got = s.get_mentions(ORG, &[a.id.clone()]).await.unwrap().remove(0);
    assert_eq!(got.sentiment, Some(-0.5));
    assert_eq!(got.analysis.as_ref(), Some(&analysis));
    assert_eq!(
        SocialMention {
            sentiment: None,
            analysis: None,
            ..got
        },
        a,
        "nothing else changed"
    );
    // replaced by a second analysis
    s.set_mention_analysis(ORG, &a.id, None, &json!({"v": 2}))
        .await
        .unwrap();
    let got = s.get_mentions(ORG, &[a.id.clone()]).await.unwrap().remove(0);
    assert_eq!((got.sentiment, got.analysis), (None, Some(json!({"v": 2}))));
    s.store_mentions(ORG, &[], &[dup("hackernews:9", "hackernews:1", 1)], vec![], 0)
        .await
        .unwrap();
    for id in ["hackernews:404", "hackernews:9"] {
        let err = s.set_mention_analysis(ORG, id, None, &analysis).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{id}: {err}");
    }

    assert_eq!(s.source_state(ORG, "watch").await.unwrap(), None);
    let failed = SourceState {
        cursor: Some("since=42".into()),
        last_run_at: Some(10),
        last_success_at: Some(5),
        last_error: Some("HTTP 503".into()),
    };
    s.set_source_state(ORG, "watch", &failed).await.unwrap();
    assert_eq!(s.source_state(ORG, "watch").await.unwrap(), Some(failed.clone()));
    let ok = SourceState {
        cursor: Some("since=50".into()),
        last_run_at: Some(20),
        last_success_at: Some(20),
        last_error: None,
    };
    s.set_source_state(ORG, "watch", &ok).await.unwrap();
    assert_eq!(s.source_state(ORG, "watch").await.unwrap(), Some(ok));
    assert_eq!(s.source_state(ORG, "other").await.unwrap(), None);
    s.set_source_state(ORG, "other", &SourceState::default()).await.unwrap();
    assert_eq!(
        s.source_state(ORG, "other").await.unwrap(),
        Some(SourceState::default())
    );
}

crate::common::contract!(
    stores_and_knows_mentions,
    storing_again_changes_nothing,
    follow_up_jobs_commit_with_the_mentions,
    orgs_are_isolated,
    lists_newest_first_with_filters_and_pages,
    simhashes_analysis_and_source_state,
);

#[tokio::test]
async fn social_state_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = mention(ORG, "mastodon", 1, 1_000);
    a.simhash = Some(u64::MAX);
    let link = dup("bluesky:1", "mastodon:1", 1_100);
    let state = SourceState {
        cursor: Some("max_id=110".into()),
        last_run_at: Some(1_000),
        last_success_at: Some(1_000),
        last_error: None,
    };
    let analysis = json!({"language": "en"});
    {
        let s = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        let job = NewJob::new(queues::SOCIAL, "analyze-social", json!({"ids": ["mastodon:1"]}));
        s.store_mentions(
            ORG,
            std::slice::from_ref(&a),
            std::slice::from_ref(&link),
            vec![job],
            1_200,
        )
        .await
        .unwrap();
        s.set_mention_analysis(ORG, &a.id, Some(0.75), &analysis).await.unwrap();
        s.set_source_state(ORG, "fediverse", &state).await.unwrap();
    }
    let s = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
    a.sentiment = Some(0.75);
    a.analysis = Some(analysis);
    assert_eq!(s.get_mentions(ORG, &[a.id.clone()]).await.unwrap(), [a.clone()]);
    assert_eq!(s.mention_simhashes(ORG, 0).await.unwrap(), [(a.id.clone(), u64::MAX)]);
    assert_eq!(s.list_duplicates(ORG, Some("mastodon:1"), 10).await.unwrap(), [link]);
    assert_eq!(s.source_state(ORG, "fediverse").await.unwrap(), Some(state));
    let ids = strings(&["mastodon:1", "bluesky:1"]);
    assert_eq!(s.known_mentions(ORG, &ids).await.unwrap(), ids);
    let out = s
        .store_mentions(ORG, std::slice::from_ref(&a), &[], vec![], 2_000)
        .await
        .unwrap();
    assert_eq!(out, outcome(0, 1, 0));
    let jobs = s.reserve(queues::SOCIAL, 10, 1_000, 2_000).await.unwrap();
    assert_eq!(jobs.len(), 1, "the job committed with the mention survived too");
    // limit 0 means 50 here (the MemoryStore clamps it to 1)
    let page = s.list_mentions(ORG, &MentionQuery::default()).await.unwrap();
    assert_eq!((page.data.len(), page.next_cursor), (1, None));
}
