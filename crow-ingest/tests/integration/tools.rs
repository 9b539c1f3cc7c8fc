//! The tools every non-REST surface shares (`crow_ingest::api::tools`), over the in-memory
//! store: each runs its REST operation with the same permission check, audit and validation,
//! insights reach the notifier, and answers stay under the size bound with exact cursors.

use std::sync::Mutex;

use crow_core::access::{Actor, Principal, Role};
use crow_core::model::{Insight, Interaction};
use crow_core::ports::{AccountStore, EventStore, Notifier};
use crow_core::testing::{MemoryBlobStore, MemoryStore};
use crow_ingest::api::tools::{self, Failure, TOOLS};
use crow_ingest::api::{Api, AuthConfig};
use serde_json::{Value, json};

use crate::support::{NOW, interaction, new_org};

#[derive(Default)]
struct Heard(Mutex<Vec<Insight>>);

impl Notifier for Heard {
    fn insight(&self, insight: &Insight) {
        self.0.lock().unwrap().push(insight.clone());
    }
}

struct Fixture {
    store: MemoryStore,
    blobs: MemoryBlobStore,
    auth: AuthConfig,
    heard: Heard,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            store: MemoryStore::new(),
            blobs: MemoryBlobStore::new(),
            auth: AuthConfig::new(vec![7; 32]),
            heard: Heard::default(),
        }
    }

    fn api(&self) -> Api<'_> {
        Api {
            notifier: Some(&self.heard),
            ..crate::support::api(&self.store, &self.blobs, &self.auth)
        }
    }

    async fn call(&self, who: &Principal, name: &str, args: Value) -> Result<Value, Failure> {
        tools::call(&self.api(), who, name, &args, Some("192.0.2.9".parse().unwrap())).await
    }
}

fn principal(org: &str, role: Role) -> Principal {
    Principal {
        org_id: org.into(),
        role,
        actor: Actor::ApiKey {
            prefix: format!("{}0000000000", &role.as_str()[..2]),
        },
        pseudonym_key: vec![1; 32],
    }
}

fn sample_args(name: &str) -> Value {
    match name {
        "search" => json!({"query": "boots"}),
        "funnel" => json!({"steps": ["page:/", "track:Searched"]}),
        "analyze_text" => json!({"texts": ["I love these boots", "the zip broke"]}),
        "create_export" => json!({"resource": "interactions", "format": "json"}),
        "get_export" => json!({"id": "exp_missing"}),
        _ => json!({}),
    }
}

#[tokio::test]
async fn every_tool_answers_the_owner_and_refuses_roles_without_its_permission() {
    let f = Fixture::new();
    let (org, _, _) = new_org(&f.store, "Acme").await;
    let events: Vec<Interaction> = (0..6).map(|n| interaction(&org, n)).collect();
    f.store.append(&org, events, vec![]).await.unwrap();
    let owner = principal(&org, Role::Owner);
    for tool in TOOLS {
        let got = f.call(&owner, tool.name, sample_args(tool.name)).await;
        match (tool.name, got) {
            // No embedding model in this fixture: REST's 503, word for word.
            ("search", Err(e)) => assert_eq!(e.status, 503, "{e}"),
            ("get_export", Err(e)) => assert_eq!((e.status, e.code.as_str()), (404, "not_found"), "{e}"),
            (_, Ok(v)) => assert!(v.is_object(), "{}: {v}", tool.name),
            (name, Err(e)) => panic!("{name}: {e}"),
        }
    }
    let got = f
        .call(&owner, "list_interactions", json!({"type": "track"}))
        .await
        .unwrap();
    let rows = got["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{got}");
    assert!(rows.iter().all(|r| r["type"] == "track"), "{got}");

    let viewer = principal(&org, Role::Viewer);
    for tool in TOOLS {
        let got = f.call(&viewer, tool.name, sample_args(tool.name)).await;
        if tool.allowed(&viewer) {
            assert!(got.as_ref().map_or_else(|e| e.status != 403, |_| true), "{}", tool.name);
        } else {
            let e = got.unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (403, "forbidden"), "{}", tool.name);
            assert!(e.detail.contains("permission"), "{}", e.detail);
        }
    }
    assert!(!tools::find("create_export").unwrap().allowed(&viewer));
}

#[tokio::test]
async fn a_mutation_through_a_tool_leaves_its_audit_row_and_org_scoping_holds() {
    let f = Fixture::new();
    let (a, _, _) = new_org(&f.store, "A").await;
    let (b, _, _) = new_org(&f.store, "B").await;
    let created = f
        .call(
            &principal(&a, Role::Analyst),
            "create_export",
            json!({"resource": "sessions"}),
        )
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "queued", "{created}");
    let audit = f
        .store
        .list_audit(
            &a,
            &crow_core::access::AuditQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(audit.data.len(), 1, "{:?}", audit.data);
    assert_eq!(audit.data[0].target.as_deref(), Some(id.as_str()));
    assert_eq!(audit.data[0].ip.as_deref(), Some("192.0.2.9"));
    // The same id from another org is not found, exactly as over REST.
    let e = f
        .call(&principal(&b, Role::Owner), "get_export", json!({"id": id}))
        .await
        .unwrap_err();
    assert_eq!(e.status, 404);
    let mine = f
        .call(&principal(&a, Role::Viewer), "get_export", json!({"id": id}))
        .await;
    assert_eq!(mine.unwrap_err().status, 403, "a viewer may not read exports");
}

#[tokio::test]
async fn insights_computed_through_tools_are_announced_to_the_notifier() {
    let f = Fixture::new();
    let (org, _, _) = new_org(&f.store, "Acme").await;
    let owner = principal(&org, Role::Owner);
    f.call(&owner, "traffic_summary", json!({"since": "2025-01-01T00:00:00Z"}))
        .await
        .unwrap();
    f.call(&owner, "sentiment_breakdown", json!({"interval": "week"}))
        .await
        .unwrap();
    f.call(&owner, "list_sessions", json!({})).await.unwrap();
    let heard = f.heard.0.lock().unwrap().clone();
    let kinds: Vec<&str> = heard.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(kinds, ["traffic", "sentiment"], "only insights are announced");
    assert!(heard.iter().all(|i| i.org_id == org && i.created_at == NOW));
    assert_eq!(heard[0].period_start, 1_735_689_600_000);
    assert!(
        heard[0].data["since"]
            .as_str()
            .unwrap()
            .starts_with("2025-01-01T00:00:00"),
        "{}",
        heard[0].data
    );
}

#[tokio::test]
async fn arguments_are_validated_before_anything_runs() {
    let f = Fixture::new();
    let (org, _, _) = new_org(&f.store, "Acme").await;
    let owner = principal(&org, Role::Owner);
    let e = f.call(&owner, "nope", json!({})).await.unwrap_err();
    assert_eq!(e.code, "unknown_tool");
    assert!(e.detail.contains("list_sessions"), "{}", e.detail);
    let e = f.call(&owner, "list_sessions", json!([1])).await.unwrap_err();
    assert_eq!(e.code, "invalid_arguments");
    let e = f
        .call(&owner, "list_interactions", json!({"limit": 0}))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.code.as_str()),
        (400, "invalid_parameter"),
        "REST's own check: {e}"
    );
    assert!(e.detail.starts_with("limit"), "{}", e.detail);
    let e = f
        .call(&owner, "traffic_summary", json!({"since": "yesterday"}))
        .await
        .unwrap_err();
    assert!(e.detail.starts_with("since"), "{}", e.detail);
    let e = f
        .call(&owner, "create_export", json!({"resource": "secrets"}))
        .await
        .unwrap_err();
    assert!(
        e.detail.contains("secrets") && e.detail.contains("frame_events"),
        "{}",
        e.detail
    );
}

#[tokio::test]
async fn large_pages_come_back_smaller_and_their_cursor_continues_exactly() {
    let f = Fixture::new();
    let (org, _, _) = new_org(&f.store, "Acme").await;
    let events: Vec<Interaction> = (0..120)
        .map(|n| {
            let mut e = interaction(&org, n);
            e.properties.insert("comment".into(), json!("x".repeat(1500)));
            e
        })
        .collect();
    f.store.append(&org, events, vec![]).await.unwrap();
    let owner = principal(&org, Role::Owner);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = json!({"limit": 100});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let page = f.call(&owner, "list_interactions", args).await.unwrap();
        assert!(page.to_string().len() <= tools::MAX_OUTPUT, "an answer over the bound");
        let rows = page["data"].as_array().unwrap();
        assert!(
            rows.len() < 100,
            "a 100-row page of 1.5 kB rows is over 64 KiB: {}",
            rows.len()
        );
        seen.extend(rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (120, 120), "every row once, none skipped");
}
