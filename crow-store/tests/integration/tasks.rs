//! TaskStore (the A2A agent's tasks): one contract, run against `MemoryStore` (the reference)
//! and `SqliteStore`, plus what only a file can show.

use crow_core::Error;
use crow_core::agent::{AgentTask, TaskQuery, TaskState};
use crow_core::ports::TaskStore;
use serde_json::json;

const ORG: &str = "org_a";
const OTHER: &str = "org_b";

fn task(id: &str, context: &str, created_at: i64) -> AgentTask {
    AgentTask {
        id: id.into(),
        context_id: context.into(),
        org_id: "ignored: the store sets it".into(),
        state: TaskState::Working,
        skill: "traffic_insights".into(),
        args: json!({"since": "2024-05-01T00:00:00Z"}),
        actor: "key:sk_test_ab12".into(),
        status_message: None,
        history: vec![json!({"role": "ROLE_USER", "parts": [{"data": {"skill": "traffic_insights"}}]})],
        artifacts: vec![],
        created_at,
        updated_at: created_at,
    }
}

fn ids(tasks: &[AgentTask]) -> Vec<&str> {
    tasks.iter().map(|t| t.id.as_str()).collect()
}

async fn all<S: TaskStore>(s: &S, org: &str, mut q: TaskQuery) -> Vec<AgentTask> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = s.list_tasks(org, &q).await.unwrap();
        assert!(page.data.len() <= q.limit.max(1) as usize);
        out.extend(page.data);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end")
}

async fn tasks_round_trip_and_stay_in_their_org<S: TaskStore>(s: &S) {
    let t = task("t1", "ctx", 100);
    s.create_task(ORG, &t).await.unwrap();
    let got = s.get_task(ORG, "t1").await.unwrap().expect("stored");
    assert_eq!(
        got,
        AgentTask {
            org_id: ORG.into(),
            ..t.clone()
        }
    );

    // Another org sees nothing, and may use the same id for its own task.
    assert_eq!(s.get_task(OTHER, "t1").await.unwrap(), None);
    assert!(
        s.list_tasks(OTHER, &TaskQuery::default())
            .await
            .unwrap()
            .data
            .is_empty()
    );
    assert_eq!(s.count_tasks(OTHER, &TaskQuery::default()).await.unwrap(), 0);
    let mut done = t.clone();
    done.state = TaskState::Completed;
    assert!(
        !s.update_task(OTHER, &done).await.unwrap(),
        "another org's task is not changed"
    );
    assert_eq!(s.get_task(ORG, "t1").await.unwrap().unwrap().state, TaskState::Working);
    s.create_task(OTHER, &task("t1", "ctx", 100)).await.unwrap();
    assert_eq!(s.get_task(OTHER, "t1").await.unwrap().unwrap().org_id, OTHER);

    // The same id twice in one org is a conflict; an empty id is invalid.
    assert!(matches!(s.create_task(ORG, &t).await, Err(Error::Conflict(_))));
    assert!(matches!(
        s.create_task(ORG, &task("", "ctx", 1)).await,
        Err(Error::Invalid { field, .. }) if field == "id"
    ));
    assert_eq!(s.get_task(ORG, "nope").await.unwrap(), None);
}

async fn updates_change_progress_until_the_task_is_finished<S: TaskStore>(s: &S) {
    let t = task("t1", "ctx", 100);
    s.create_task(ORG, &t).await.unwrap();

    let mut progress = t.clone();
    progress.state = TaskState::Completed;
    progress.status_message = Some(json!({"role": "ROLE_AGENT", "parts": [{"text": "done"}]}));
    progress.artifacts = vec![json!({"artifactId": "a1", "parts": [{"data": {"visits": 3}}]})];
    progress
        .history
        .push(json!({"role": "ROLE_AGENT", "parts": [{"text": "ok"}]}));
    progress.updated_at = 250;
    // What was asked never changes, whatever the update says.
    progress.skill = "other".into();
    progress.args = json!({"changed": true});
    progress.context_id = "other".into();
    progress.actor = "someone else".into();
    progress.created_at = 1;
    assert!(s.update_task(ORG, &progress).await.unwrap());

    let got = s.get_task(ORG, "t1").await.unwrap().unwrap();
    assert_eq!(got.state, TaskState::Completed);
    assert_eq!(got.status_message, progress.status_message);
    assert_eq!(got.artifacts, progress.artifacts);
    assert_eq!(got.history.len(), 2);
    assert_eq!(got.updated_at, 250);
    assert_eq!(
        (
            got.skill.as_str(),
            &got.args,
            got.context_id.as_str(),
            got.actor.as_str(),
            got.created_at
        ),
        (
            t.skill.as_str(),
            &t.args,
            t.context_id.as_str(),
            t.actor.as_str(),
            t.created_at
        )
    );

    // A finished task never changes again: a late cancel is refused and leaves it as it was.
    let mut cancel = got.clone();
    cancel.state = TaskState::Canceled;
    cancel.updated_at = 300;
    assert!(!s.update_task(ORG, &cancel).await.unwrap());
    assert_eq!(s.get_task(ORG, "t1").await.unwrap().unwrap(), got);

    // Every terminal state is final; every other one is not.
    for (i, state) in TaskState::ALL.into_iter().enumerate() {
        let id = format!("s{i}");
        let mut t = task(&id, "ctx", 500);
        t.state = state;
        s.create_task(ORG, &t).await.unwrap();
        t.state = TaskState::Canceled;
        assert_eq!(s.update_task(ORG, &t).await.unwrap(), !state.is_terminal(), "{state:?}");
    }
    assert!(!s.update_task(ORG, &task("missing", "ctx", 1)).await.unwrap());
}

async fn lists_newest_first_with_filters_and_counts<S: TaskStore>(s: &S) {
    // Ties on created_at are broken by id, descending.
    let specs = [
        ("a", "c1", 10, TaskState::Completed),
        ("b", "c2", 20, TaskState::Failed),
        ("c", "c1", 20, TaskState::Completed),
        ("d", "c1", 30, TaskState::Working),
        ("e", "c2", 40, TaskState::Completed),
    ];
    for (id, ctx, at, state) in specs {
        let mut t = task(id, ctx, at);
        t.state = state;
        s.create_task(ORG, &t).await.unwrap();
    }
    s.create_task(OTHER, &task("z", "c1", 99)).await.unwrap();

    let q = |limit, context: Option<&str>, state| TaskQuery {
        limit,
        cursor: None,
        context_id: context.map(Into::into),
        state,
        updated_since: None,
    };
    assert_eq!(ids(&all(s, ORG, q(2, None, None)).await), ["e", "d", "c", "b", "a"]);
    assert_eq!(ids(&all(s, ORG, q(1, Some("c1"), None)).await), ["d", "c", "a"]);
    assert_eq!(
        ids(&all(s, ORG, q(1, None, Some(TaskState::Completed))).await),
        ["e", "c", "a"]
    );
    assert_eq!(
        ids(&all(s, ORG, q(10, Some("c1"), Some(TaskState::Completed))).await),
        ["c", "a"]
    );
    assert!(all(s, ORG, q(10, Some("nope"), None)).await.is_empty());
    let mut recent = q(10, None, None);
    recent.updated_since = Some(30);
    assert_eq!(ids(&all(s, ORG, recent.clone()).await), ["e", "d"]);
    assert_eq!(s.count_tasks(ORG, &recent).await.unwrap(), 2);

    // A full page says there is more only when there is.
    let first = s.list_tasks(ORG, &q(5, None, None)).await.unwrap();
    assert_eq!(first.data.len(), 5);
    assert_eq!(first.next_cursor, None);
    // limit 0 means the default page of 50.
    assert_eq!(s.list_tasks(ORG, &q(0, None, None)).await.unwrap().data.len(), 5);

    // Counts take the filters and ignore limit and cursor.
    assert_eq!(s.count_tasks(ORG, &q(1, None, None)).await.unwrap(), 5);
    assert_eq!(s.count_tasks(ORG, &q(1, Some("c2"), None)).await.unwrap(), 2);
    assert_eq!(
        s.count_tasks(ORG, &q(1, Some("c1"), Some(TaskState::Completed)))
            .await
            .unwrap(),
        2
    );
    let mut with_cursor = q(1, None, None);
    with_cursor.cursor = s.list_tasks(ORG, &with_cursor).await.unwrap().next_cursor;
    assert!(with_cursor.cursor.is_some());
    assert_eq!(s.count_tasks(ORG, &with_cursor).await.unwrap(), 5);

    // A cursor the store did not make is invalid.
    let mut bad = q(1, None, None);
    bad.cursor = Some("not-a-cursor".into());
    assert!(matches!(
        s.list_tasks(ORG, &bad).await,
        Err(Error::Invalid { field, .. }) if field == "cursor"
    ));
}

crate::common::contract!(
    tasks_round_trip_and_stay_in_their_org,
    updates_change_progress_until_the_task_is_finished,
    lists_newest_first_with_filters_and_counts,
);

#[tokio::test]
async fn tasks_survive_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = task("t1", "ctx", 7);
    t.state = TaskState::Completed;
    t.artifacts = vec![json!({"artifactId": "a", "parts": [{"data": {"n": 1}}]})];
    {
        let s = crow_store::SqliteStore::open(dir.path(), crow_store::StoreConfig::default()).unwrap();
        s.create_task(ORG, &t).await.unwrap();
    }
    let s = crow_store::SqliteStore::open(dir.path(), crow_store::StoreConfig::default()).unwrap();
    assert_eq!(
        s.get_task(ORG, "t1").await.unwrap(),
        Some(AgentTask {
            org_id: ORG.into(),
            ..t
        })
    );
}
