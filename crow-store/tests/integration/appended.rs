//! `AppendOutcome::inserted_ids`, on both backends: the ids stored now, in input order, without
//! the duplicates (of stored events or earlier in the batch).

use crow_core::model::EventType;
use crow_core::ports::{AppendOutcome, EventStore};

use crate::common::event;

const ORG: &str = "org_a";

async fn append_names_the_events_it_stored<S: EventStore>(s: &S) {
    let batch = |ids: &[&str]| {
        ids.iter()
            .enumerate()
            .map(|(i, id)| event(ORG, id, EventType::Track, 1_000 + i as i64))
            .collect::<Vec<_>>()
    };
    let out = s.append(ORG, batch(&["c", "a", "c", "b"]), vec![]).await.unwrap();
    assert_eq!(
        out,
        AppendOutcome {
            inserted: 3,
            duplicates: 1,
            inserted_ids: vec!["c".into(), "a".into(), "b".into()],
        }
    );
    let out = s.append(ORG, batch(&["b", "d", "a", "e"]), vec![]).await.unwrap();
    assert_eq!((out.inserted, out.duplicates), (2, 2));
    assert_eq!(out.inserted_ids, ["d", "e"]);
    let out = s.append(ORG, batch(&["a"]), vec![]).await.unwrap();
    assert!(out.inserted_ids.is_empty());
    // the same id in another org is another event
    let other = event("org_b", "a", EventType::Track, 1);
    assert_eq!(
        s.append("org_b", vec![other], vec![]).await.unwrap().inserted_ids,
        ["a"]
    );
}

crate::common::contract!(append_names_the_events_it_stored);
