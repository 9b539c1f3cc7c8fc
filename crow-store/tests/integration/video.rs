//! VideoStore: one contract, run against `MemoryStore` (the reference) and `SqliteStore`, plus
//! what only a file can show (frame events and the archive ledger survive reopening it).

use crow_core::Error;
use crow_core::model::{FrameEvent, FrameEventKind, Millis};
use crow_core::ports::VideoStore;
use crow_core::video::{ArchiveEntry, ArchiveUsage, FrameEventQuery};
use crow_store::{SqliteStore, StoreConfig};

const ORG: &str = "org_a";
const OTHER: &str = "org_b";

const KINDS: [FrameEventKind; 6] = [
    FrameEventKind::Motion,
    FrameEventKind::Presence,
    FrameEventKind::LineIn,
    FrameEventKind::LineOut,
    FrameEventKind::Occupancy,
    FrameEventKind::Dwell,
];

fn event(org: &str, id: &str, camera: &str, timestamp: Millis, kind: FrameEventKind) -> FrameEvent {
    FrameEvent {
        id: id.into(),
        org_id: org.into(),
        camera_id: camera.into(),
        timestamp,
        kind,
        zone: None,
        count: 0,
        value: None,
        frame_key: None,
    }
}

fn entry(key: &str, camera: &str, timestamp: Millis, bytes: u64) -> ArchiveEntry {
    ArchiveEntry {
        key: key.into(),
        camera_id: camera.into(),
        timestamp,
        bytes,
        kind: "keyframe".into(),
    }
}

fn query(limit: u32) -> FrameEventQuery {
    FrameEventQuery {
        limit,
        ..Default::default()
    }
}

fn ids(events: &[FrameEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

fn keys(entries: &[ArchiveEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.key.as_str()).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Every page of `q`, following the cursors; checks each page's size.
async fn all_pages<S: VideoStore>(s: &S, org: &str, mut q: FrameEventQuery) -> Vec<FrameEvent> {
    let mut got = Vec::new();
    for _ in 0..1000 {
        let page = s.list_frame_events(org, &q).await.unwrap();
        assert!(page.data.len() <= q.limit as usize);
        let full = page.data.len() == q.limit as usize;
        got.extend(page.data);
        match page.next_cursor {
            Some(c) => {
                assert!(full, "a cursor only after a full page");
                q.cursor = Some(c);
            }
            None => return got,
        }
    }
    panic!("pagination did not end");
}

async fn stores_events_once_with_every_field<S: VideoStore>(s: &S) {
    let mut a = event(ORG, "cam1:1000:motion", "cam1", 1_000, FrameEventKind::Motion);
    a.value = Some(0.125);
    a.frame_key = Some("org_a/cam1/1000.jpg".into());
    let mut b = event(ORG, "cam1:2000:dwell", "cam1", 2_000, FrameEventKind::Dwell);
    b.zone = Some("entrance".into());
    b.count = 3;
    b.value = Some(42.5);
    let c = event(ORG, "cam2:1500:line_in", "cam2", 1_500, FrameEventKind::LineIn);
    let batch = [a.clone(), b.clone(), c.clone()];
    assert_eq!(s.store_frame_events(ORG, &batch).await.unwrap(), 3);
    // a redelivered batch stores nothing
    assert_eq!(s.store_frame_events(ORG, &batch).await.unwrap(), 0);
    // an id stored before keeps its first version; one repeated in a call is stored once
    let mut changed = a.clone();
    changed.count = 99;
    changed.frame_key = None;
    let d = event(ORG, "cam2:3000:presence", "cam2", 3_000, FrameEventKind::Presence);
    assert_eq!(
        s.store_frame_events(ORG, &[changed, d.clone(), d.clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.store_frame_events(ORG, &[]).await.unwrap(), 0);
    let page = s.list_frame_events(ORG, &query(10)).await.unwrap();
    assert_eq!(page.data, [a, c, b, d], "oldest first, every field as stored");
    assert_eq!(page.next_cursor, None);
}

async fn rejected_batches_store_nothing<S: VideoStore>(s: &S) {
    let ok = event(ORG, "e1", "cam1", 1, FrameEventKind::Motion);
    let err = s
        .store_frame_events(
            ORG,
            &[ok.clone(), event(OTHER, "e2", "cam1", 2, FrameEventKind::Motion)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "events[1].org_id"),
        "{err}"
    );
    for v in [f64::NAN, f64::INFINITY] {
        let mut bad = event(ORG, "e3", "cam1", 3, FrameEventKind::Dwell);
        bad.value = Some(v);
        let err = s.store_frame_events(ORG, &[ok.clone(), bad]).await.unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "events[1].value"),
            "{err}"
        );
    }
    assert!(s.list_frame_events(ORG, &query(10)).await.unwrap().data.is_empty());
    assert!(s.list_frame_events(OTHER, &query(10)).await.unwrap().data.is_empty());
}

async fn orgs_are_isolated<S: VideoStore>(s: &S) {
    let mine = event(ORG, "e1", "cam1", 1_000, FrameEventKind::Motion);
    s.store_frame_events(ORG, std::slice::from_ref(&mine)).await.unwrap();
    s.record_archive(ORG, &[entry("k1", "cam1", 1_000, 10), entry("k2", "cam1", 2_000, 20)])
        .await
        .unwrap();
    assert!(s.list_frame_events(OTHER, &query(10)).await.unwrap().data.is_empty());
    assert_eq!(s.archive_usage(OTHER).await.unwrap(), ArchiveUsage::default());
    assert!(s.oldest_archive(OTHER, 10).await.unwrap().is_empty());
    // another org cannot remove this org's entries
    assert_eq!(s.remove_archive(OTHER, &strings(&["k1", "k2"])).await.unwrap(), 0);
    assert_eq!(s.archive_usage(ORG).await.unwrap().objects, 2);
    // the same ids and keys are free in another org
    let theirs = event(OTHER, "e1", "cam9", 5, FrameEventKind::Presence);
    assert_eq!(
        s.store_frame_events(OTHER, std::slice::from_ref(&theirs))
            .await
            .unwrap(),
        1
    );
    s.record_archive(OTHER, &[entry("k1", "cam9", 5, 1_000)]).await.unwrap();
    assert_eq!(s.list_frame_events(OTHER, &query(10)).await.unwrap().data, [theirs]);
    assert_eq!(s.list_frame_events(ORG, &query(10)).await.unwrap().data, [mine]);
    assert_eq!(
        s.archive_usage(OTHER).await.unwrap(),
        ArchiveUsage {
            objects: 1,
            bytes: 1_000,
            oldest: Some(5),
        }
    );
    assert_eq!(
        s.archive_usage(ORG).await.unwrap(),
        ArchiveUsage {
            objects: 2,
            bytes: 30,
            oldest: Some(1_000),
        }
    );
    // removing from one org leaves the other's entry with the same key
    assert_eq!(s.remove_archive(OTHER, &strings(&["k1"])).await.unwrap(), 1);
    assert_eq!(keys(&s.oldest_archive(ORG, 10).await.unwrap()), ["k1", "k2"]);
}

async fn lists_oldest_first_with_filters_and_pages<S: VideoStore>(s: &S) {
    // 40 events over 3 cameras, every kind, 2 zones; groups of 3 share a timestamp, and ids
    // are not in time order, so ties and the id tie-break are exercised
    let all: Vec<FrameEvent> = (0..40u32)
        .map(|n| {
            let camera = ["cam1", "cam2", "cam3"][n as usize % 3];
            let ts = 10_000 - Millis::from(n / 3) * 100;
            let mut e = event(
                ORG,
                &format!("ev-{:02}", (n * 7) % 40),
                camera,
                ts,
                KINDS[n as usize % 6],
            );
            e.zone = match n % 4 {
                0 => Some("entrance".into()),
                1 => Some("till".into()),
                _ => None,
            };
            e.count = n;
            e
        })
        .collect();
    // stored in two batches, out of order
    let (first, second) = all.split_at(17);
    assert_eq!(s.store_frame_events(ORG, second).await.unwrap(), second.len());
    assert_eq!(s.store_frame_events(ORG, first).await.unwrap(), first.len());
    let expect = |f: &dyn Fn(&FrameEvent) -> bool| {
        let mut v: Vec<&FrameEvent> = all.iter().filter(|e| f(e)).collect();
        v.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
        v.into_iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    };
    let cases: Vec<(FrameEventQuery, Vec<String>)> = vec![
        (FrameEventQuery::default(), expect(&|_| true)),
        (
            FrameEventQuery {
                camera_id: Some("cam2".into()),
                ..Default::default()
            },
            expect(&|e| e.camera_id == "cam2"),
        ),
        (
            FrameEventQuery {
                kind: Some(FrameEventKind::LineOut),
                ..Default::default()
            },
            expect(&|e| e.kind == FrameEventKind::LineOut),
        ),
        (
            FrameEventQuery {
                zone: Some("entrance".into()),
                ..Default::default()
            },
            expect(&|e| e.zone.as_deref() == Some("entrance")),
        ),
        (
            FrameEventQuery {
                since: Some(9_000),
                until: Some(9_700),
                ..Default::default()
            },
            expect(&|e| (9_000..9_700).contains(&e.timestamp)),
        ),
        (
            FrameEventQuery {
                camera_id: Some("cam1".into()),
                kind: Some(FrameEventKind::Motion),
                zone: Some("entrance".into()),
                since: Some(9_100),
                ..Default::default()
            },
            expect(&|e| {
                e.camera_id == "cam1"
                    && e.kind == FrameEventKind::Motion
                    && e.zone.as_deref() == Some("entrance")
                    && e.timestamp >= 9_100
            }),
        ),
        (
            FrameEventQuery {
                camera_id: Some("cam404".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            FrameEventQuery {
                since: Some(9_500),
                until: Some(9_500),
                ..Default::default()
            },
            vec![],
        ),
    ];
    assert_eq!(cases[0].1.len(), 40);
    for (q, want) in &cases {
        assert!(q == &cases[0].0 || want.len() < 40, "{q:?} filters nothing");
        for limit in [1, 2, 3, 7, 40, 1000] {
            let got = all_pages(s, ORG, FrameEventQuery { limit, ..q.clone() }).await;
            let got: Vec<String> = got.into_iter().map(|e| e.id).collect();
            assert_eq!(&got, want, "{q:?} limit {limit}");
        }
    }
    // every field comes back as stored
    let got = all_pages(s, ORG, query(1000)).await;
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    assert_eq!(got, sorted);
    // a cursor keeps its place when events arrive before it
    let page = s.list_frame_events(ORG, &query(5)).await.unwrap();
    let cursor = page.next_cursor.clone().unwrap();
    s.store_frame_events(ORG, &[event(ORG, "early", "cam1", 0, FrameEventKind::Motion)])
        .await
        .unwrap();
    let next = s
        .list_frame_events(
            ORG,
            &FrameEventQuery {
                limit: 5,
                cursor: Some(cursor),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&next.data), &expect(&|_| true)[5..10]);
}

async fn bad_limits_and_cursors_are_invalid<S: VideoStore>(s: &S) {
    s.store_frame_events(ORG, &[event(ORG, "e1", "cam1", 1, FrameEventKind::Motion)])
        .await
        .unwrap();
    for limit in [0, 1001, u32::MAX] {
        let err = s.list_frame_events(ORG, &query(limit)).await.unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "limit"),
            "{limit}: {err}"
        );
        let err = s.oldest_archive(ORG, limit).await.unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "limit"),
            "{limit}: {err}"
        );
    }
    assert_eq!(s.list_frame_events(ORG, &query(1000)).await.unwrap().data.len(), 1);
    for cursor in ["garbage", "", "12", "x.y"] {
        let q = FrameEventQuery {
            cursor: Some(cursor.into()),
            ..query(5)
        };
        let err = s.list_frame_events(ORG, &q).await.unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "cursor"),
            "{cursor:?}: {err}"
        );
    }
}

async fn archive_usage_order_and_removal<S: VideoStore>(s: &S) {
    assert_eq!(s.archive_usage(ORG).await.unwrap(), ArchiveUsage::default());
    assert!(s.oldest_archive(ORG, 10).await.unwrap().is_empty());
    let mut heatmap = entry("heat/cam1/3000.png", "cam1", 3_000, 5_000);
    heatmap.kind = "heatmap".into();
    let entries = [
        entry("cam1/2000.jpg", "cam1", 2_000, 100),
        heatmap.clone(),
        entry("cam2/1000.jpg", "cam2", 1_000, 250),
        // ties in time are ordered by key
        entry("cam2/2000.jpg", "cam2", 2_000, 50),
        entry("cam0/2000.jpg", "cam0", 2_000, 1),
    ];
    s.record_archive(ORG, &entries).await.unwrap();
    s.record_archive(ORG, &[]).await.unwrap();
    assert_eq!(
        s.archive_usage(ORG).await.unwrap(),
        ArchiveUsage {
            objects: 5,
            bytes: 5_401,
            oldest: Some(1_000),
        }
    );
    let oldest = s.oldest_archive(ORG, 1000).await.unwrap();
    assert_eq!(
        keys(&oldest),
        [
            "cam2/1000.jpg",
            "cam0/2000.jpg",
            "cam1/2000.jpg",
            "cam2/2000.jpg",
            "heat/cam1/3000.png"
        ]
    );
    assert_eq!(oldest[4], heatmap, "every field as recorded");
    assert_eq!(
        keys(&s.oldest_archive(ORG, 2).await.unwrap()),
        ["cam2/1000.jpg", "cam0/2000.jpg"]
    );
    // recording again is idempotent by key (a rewritten object replaces its entry)
    s.record_archive(ORG, &entries).await.unwrap();
    assert_eq!(s.archive_usage(ORG).await.unwrap().objects, 5);
    s.record_archive(ORG, &[entry("cam1/2000.jpg", "cam1", 2_000, 300)])
        .await
        .unwrap();
    assert_eq!(s.archive_usage(ORG).await.unwrap().bytes, 5_601);
    // removal counts what was there; unknown and repeated keys are not errors
    let removed = s
        .remove_archive(
            ORG,
            &strings(&["cam2/1000.jpg", "nope.jpg", "cam0/2000.jpg", "cam2/1000.jpg"]),
        )
        .await
        .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(s.remove_archive(ORG, &strings(&["cam2/1000.jpg"])).await.unwrap(), 0);
    assert_eq!(s.remove_archive(ORG, &[]).await.unwrap(), 0);
    assert_eq!(
        s.archive_usage(ORG).await.unwrap(),
        ArchiveUsage {
            objects: 3,
            bytes: 5_350,
            oldest: Some(2_000),
        }
    );
    assert_eq!(
        keys(&s.oldest_archive(ORG, 10).await.unwrap()),
        ["cam1/2000.jpg", "cam2/2000.jpg", "heat/cam1/3000.png"]
    );
    // what retention does: drop oldest first until under budget
    while s.archive_usage(ORG).await.unwrap().bytes > 1_000 {
        let oldest = s.oldest_archive(ORG, 1).await.unwrap();
        let k: Vec<String> = oldest.iter().map(|e| e.key.clone()).collect();
        assert_eq!(s.remove_archive(ORG, &k).await.unwrap(), 1);
    }
    assert_eq!(s.archive_usage(ORG).await.unwrap(), ArchiveUsage::default());
}

async fn large_removals_span_chunks<S: VideoStore>(s: &S) {
    let entries: Vec<ArchiveEntry> = (0..1_234u64)
        .map(|n| entry(&format!("cam1/{n:05}.jpg"), "cam1", n as Millis, n))
        .collect();
    s.record_archive(ORG, &entries).await.unwrap();
    let mut asked: Vec<String> = entries.iter().step_by(2).map(|e| e.key.clone()).collect();
    asked.extend((0..300).map(|n| format!("missing/{n}")));
    assert_eq!(s.remove_archive(ORG, &asked).await.unwrap(), 617);
    let usage = s.archive_usage(ORG).await.unwrap();
    assert_eq!(usage.objects, 617);
    assert_eq!(usage.bytes, (0..1_234u64).filter(|n| n % 2 == 1).sum::<u64>());
    assert_eq!(usage.oldest, Some(1));
    let oldest = s.oldest_archive(ORG, 1000).await.unwrap();
    assert_eq!(oldest.len(), 617);
    assert!(oldest.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
}

crate::common::contract!(
    stores_events_once_with_every_field,
    rejected_batches_store_nothing,
    orgs_are_isolated,
    lists_oldest_first_with_filters_and_pages,
    bad_limits_and_cursors_are_invalid,
    archive_usage_order_and_removal,
    large_removals_span_chunks,
);

#[tokio::test]
async fn video_state_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = event(ORG, "e1", "cam1", 1_000, FrameEventKind::Occupancy);
    a.zone = Some("till".into());
    a.count = u32::MAX;
    a.value = Some(-0.5);
    a.frame_key = Some("org_a/cam1/1000.jpg".into());
    let b = event(ORG, "e2", "cam1", 1_000, FrameEventKind::LineOut);
    let archived = [entry("org_a/cam1/1000.jpg", "cam1", 1_000, u64::from(u32::MAX) + 7)];
    let cursor = {
        let s = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        assert_eq!(s.store_frame_events(ORG, &[a.clone(), b.clone()]).await.unwrap(), 2);
        s.record_archive(ORG, &archived).await.unwrap();
        s.list_frame_events(ORG, &query(1)).await.unwrap().next_cursor.unwrap()
    };
    let s = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(
        s.list_frame_events(ORG, &query(10)).await.unwrap().data,
        [a.clone(), b.clone()]
    );
    // a cursor from before the reopen still works
    let q = FrameEventQuery {
        cursor: Some(cursor),
        ..query(10)
    };
    assert_eq!(s.list_frame_events(ORG, &q).await.unwrap().data, [b]);
    assert_eq!(s.oldest_archive(ORG, 10).await.unwrap(), archived);
    assert_eq!(
        s.archive_usage(ORG).await.unwrap(),
        ArchiveUsage {
            objects: 1,
            bytes: u64::from(u32::MAX) + 7,
            oldest: Some(1_000),
        }
    );
    assert_eq!(s.store_frame_events(ORG, &[a]).await.unwrap(), 0);
}
