//! The A2A agent through `crow_ingest::a2a::handle` over the in-memory store: the cards, the
//! JSON-RPC error paths, skills run through the tools with their permissions, tasks persisted
//! and scoped to the org, cancel and the export refresh, and what is stored being scrubbed.

use crow_core::access::Role;
use crow_core::agent::TaskState;
use crow_core::export::ExportStatus;
use crow_core::ports::{AccountStore, EventStore, ExportStore, TaskStore};
use crow_core::testing::{MemoryBlobStore, MemoryStore};
use crow_ingest::a2a::{self, codes};
use crow_ingest::api::tools::TOOLS;
use crow_ingest::api::{Api, AuthConfig};
use crow_ingest::http::HttpRequest;
use serde_json::{Value, json};

use crate::support::{NOW, interaction, new_org, request};

struct Fixture {
    store: MemoryStore,
    blobs: MemoryBlobStore,
    auth: AuthConfig,
}

struct Org {
    id: String,
    owner: String,
    write: String,
}

/// A JSON-RPC answer: the HTTP status and the body.
struct Answer {
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn result(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.body);
        assert!(self.body.get("error").is_none(), "an error: {}", self.body);
        &self.body["result"]
    }

    /// The error's code and message.
    fn error(&self) -> (i64, String) {
        let e = &self.body["error"];
        assert!(e.is_object(), "not an error: {}", self.body);
        assert_eq!(e["data"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo", "{e}");
        (e["code"].as_i64().unwrap(), e["message"].as_str().unwrap().to_owned())
    }
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            store: MemoryStore::new(),
            blobs: MemoryBlobStore::new(),
            auth: AuthConfig::new(vec![7; 32]),
        }
    }

    fn api(&self) -> Api<'_> {
        crate::support::api(&self.store, &self.blobs, &self.auth)
    }

    async fn org(&self, name: &str) -> Org {
        let (id, owner, write) = new_org(&self.store, name).await;
        Org { id, owner, write }
    }

    async fn send(&self, req: HttpRequest) -> Answer {
        let resp = a2a::handle(&self.api(), &req).await.expect("an A2A path");
        Answer {
            status: resp.status,
            body: resp.json_body().unwrap_or(Value::Null),
            headers: resp.headers,
        }
    }

    async fn raw(&self, token: Option<&str>, body: &str) -> Answer {
        self.send(request(
            "POST",
            "/a2a",
            token,
            "application/json",
            body.as_bytes().to_vec(),
        ))
        .await
    }

    async fn rpc(&self, token: &str, method: &str, params: Value) -> Answer {
        let body = json!({"jsonrpc": "2.0", "id": "r1", "method": method, "params": params});
        self.raw(Some(token), &body.to_string()).await
    }

    /// `SendMessage` with one DataPart.
    async fn run(&self, token: &str, skill: &str, args: Value) -> Answer {
        self.rpc(token, "SendMessage", send_params(skill, args)).await
    }

    /// A secret key of `org` with `role`, made by its owner through the REST API.
    async fn key(&self, org: &Org, role: Role) -> String {
        let req = request(
            "POST",
            "/api/v1/api-keys",
            Some(&org.owner),
            "application/json",
            json!({"role": role, "name": "a2a"}).to_string().into_bytes(),
        );
        let resp = crow_ingest::api::handle(&self.api(), &req).await.unwrap();
        assert_eq!(resp.status, 201);
        resp.json_body().unwrap()["secret"].as_str().unwrap().to_owned()
    }
}

fn send_params(skill: &str, args: Value) -> Value {
    json!({"message": {
        "messageId": "m1",
        "role": "ROLE_USER",
        "parts": [{"data": {"skill": skill, "args": args}, "mediaType": "application/json"}],
    }})
}

fn card_request(path: &str, headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: path.into(),
        headers: headers.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_cards_are_public_list_every_tool_and_point_at_the_request_host() {
    let f = Fixture::new();
    let card = f
        .send(card_request(
            a2a::CARD_PATH,
            &[("host", "crow.example"), ("x-forwarded-proto", "https")],
        ))
        .await;
    assert_eq!(card.status, 200);
    let c = &card.body;
    assert_eq!(c["supportedInterfaces"][0]["url"], "https://crow.example/a2a");
    assert_eq!(c["supportedInterfaces"][0]["protocolBinding"], "JSONRPC");
    assert_eq!(c["supportedInterfaces"][0]["protocolVersion"], "1.0");
    assert_eq!(
        c["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"],
        "Bearer"
    );
    assert_eq!(c["capabilities"]["streaming"], false);
    let skills: Vec<&str> = c["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(skills, TOOLS.iter().map(|t| t.name).collect::<Vec<_>>());

    let legacy = f
        .send(card_request(a2a::LEGACY_CARD_PATH, &[("host", "127.0.0.1:8080")]))
        .await;
    assert_eq!(legacy.status, 200);
    assert_eq!(legacy.body["url"], "http://127.0.0.1:8080/a2a");
    assert_eq!(legacy.body["protocolVersion"], "0.3.0");
    assert_eq!(legacy.body["securitySchemes"]["bearer"]["type"], "http");
    assert_eq!(legacy.body["skills"].as_array().unwrap().len(), TOOLS.len());

    let mut head = card_request(a2a::CARD_PATH, &[]);
    head.method = "HEAD".into();
    let resp = a2a::handle(&f.api(), &head).await.unwrap();
    assert_eq!((resp.status, resp.body.is_empty()), (200, true));
    let mut post = card_request(a2a::CARD_PATH, &[]);
    post.method = "POST".into();
    assert_eq!(f.send(post).await.status, 405);
    let get_rpc = f.send(card_request(a2a::RPC_PATH, &[])).await;
    assert_eq!(get_rpc.status, 405);
    assert!(get_rpc.headers.iter().any(|(k, v)| k == "allow" && v == "POST"));
    // Other paths are not the agent's.
    assert!(a2a::handle(&f.api(), &card_request("/api/v1/org", &[])).await.is_none());
    assert!(a2a::handle(&f.api(), &card_request("/a2a/x", &[])).await.is_none());
}

#[tokio::test]
async fn every_example_on_the_card_passes_its_skills_argument_check() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let card = f.send(card_request(a2a::CARD_PATH, &[])).await.body;
    for skill in card["skills"].as_array().unwrap() {
        let example: Value = serde_json::from_str(skill["examples"][0].as_str().unwrap()).unwrap();
        let answer = f
            .rpc(
                &org.owner,
                "SendMessage",
                json!({"message": {
                    "messageId": "m", "role": "ROLE_USER", "parts": [{"data": example}],
                }}),
            )
            .await;
        let task = &answer.result()["task"];
        let problem_type = task["status"]["message"]["parts"][1]["data"]["type"]
            .as_str()
            .unwrap_or_default();
        assert!(
            !problem_type.ends_with("invalid_arguments") && !problem_type.ends_with("invalid_parameter"),
            "{}: {task}",
            skill["id"]
        );
    }
}

#[tokio::test]
async fn json_rpc_errors_say_what_to_change() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let t = Some(org.owner.as_str());

    let a = f.raw(t, "{not json").await;
    assert_eq!(
        (a.status, a.error().0, &a.body["id"]),
        (200, codes::PARSE_ERROR, &Value::Null)
    );
    assert_eq!(f.raw(t, "[]").await.error().0, codes::INVALID_REQUEST);
    assert_eq!(f.raw(t, "\"x\"").await.error().0, codes::INVALID_REQUEST);
    let a = f.raw(t, r#"{"jsonrpc":"1.0","id":9,"method":"GetTask"}"#).await;
    assert_eq!((a.error().0, &a.body["id"]), (codes::INVALID_REQUEST, &json!(9)));
    assert!(a.error().1.contains("\"2.0\""), "{}", a.error().1);
    let a = f.raw(t, r#"{"jsonrpc":"2.0","method":"GetTask"}"#).await;
    assert!(a.error().1.contains("no \"id\""), "{}", a.error().1);

    let a = f.rpc(&org.owner, "tasks/list-everything", json!({})).await;
    let (code, msg) = a.error();
    assert_eq!(code, codes::METHOD_NOT_FOUND);
    assert!(msg.contains("SendMessage") && msg.contains("message/send"), "{msg}");
    assert_eq!(a.body["id"], "r1");

    let (code, msg) = f.rpc(&org.owner, "GetTask", json!({})).await.error();
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("params.id"), "{msg}");
    let (code, msg) = f.rpc(&org.owner, "GetTask", json!({"id": 7})).await.error();
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("params.id must be a string"), "{msg}");
    let (code, msg) = f.rpc(&org.owner, "ListTasks", json!({"pageSize": 101})).await.error();
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("between 1 and 100"), "{msg}");
    let (code, msg) = f.rpc(&org.owner, "ListTasks", json!({"status": "done"})).await.error();
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("TASK_STATE_COMPLETED"), "{msg}");
    let (code, msg) = f
        .rpc(&org.owner, "ListTasks", json!({"pageToken": "garbage"}))
        .await
        .error();
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("pageToken"), "{msg}");
    let (code, msg) = f
        .rpc(&org.owner, "ListTasks", json!({"statusTimestampAfter": "yesterday"}))
        .await
        .error();
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("RFC 3339"), "{msg}");
    let (code, msg) = f.rpc(&org.owner, "SendMessage", json!({})).await.error();
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("params.message is required"), "{msg}");
    let (code, _) = f
        .rpc(&org.owner, "SendMessage", json!({"message": {"parts": []}}))
        .await
        .error();
    assert_eq!(code, codes::INVALID_PARAMS);
    let (code, msg) = f
        .run(&org.owner, "traffic_summary", json!(["not", "an", "object"]))
        .await
        .error();
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("args must be a JSON object"), "{msg}");
    let (code, msg) = f.run(&org.owner, "summon_demons", json!({})).await.error();
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(
        msg.contains("no skill \"summon_demons\"") && msg.contains("traffic_summary"),
        "{msg}"
    );

    let (code, _) = f.rpc(&org.owner, "SendStreamingMessage", json!({})).await.error();
    assert_eq!(code, codes::UNSUPPORTED_OPERATION);
    let (code, _) = f
        .rpc(&org.owner, "CreateTaskPushNotificationConfig", json!({}))
        .await
        .error();
    assert_eq!(code, codes::PUSH_NOTIFICATION_NOT_SUPPORTED);
    let (code, _) = f.rpc(&org.owner, "GetExtendedAgentCard", json!({})).await.error();
    assert_eq!(code, codes::EXTENDED_AGENT_CARD_NOT_CONFIGURED);

    let mut req = request(
        "POST",
        "/a2a",
        t,
        "application/json",
        br#"{"jsonrpc":"2.0","id":1,"method":"ListTasks"}"#.to_vec(),
    );
    req.headers.push(("a2a-version".into(), "2.0".into()));
    assert_eq!(f.send(req.clone()).await.error().0, codes::VERSION_NOT_SUPPORTED);
    req.headers.last_mut().unwrap().1 = "1.0".into();
    f.send(req.clone()).await.result();
    req.headers.last_mut().unwrap().1 = "0.3".into();
    f.send(req).await.result();

    // Free text is refused with the skills named.
    let text = json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "how was traffic?"}]}});
    let (code, msg) = f.rpc(&org.owner, "SendMessage", text).await.error();
    assert_eq!(code, codes::CONTENT_TYPE_NOT_SUPPORTED);
    assert!(
        msg.contains("free text") && msg.contains("traffic_summary") && msg.contains("\"skill\""),
        "{msg}"
    );
    // Nothing of the above made a task.
    assert_eq!(f.store.count_tasks(&org.id, &Default::default()).await.unwrap(), 0);
}

#[tokio::test]
async fn every_call_needs_a_secret_key_or_session() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let body = r#"{"jsonrpc":"2.0","id":"x","method":"ListTasks","params":{}}"#;
    for token in [None, Some(org.write.as_str()), Some("sk_live_nope"), Some("a.b.c")] {
        let a = f.raw(token, body).await;
        assert_eq!(a.status, 401, "{token:?}: {}", a.body);
        let (code, msg) = a.error();
        assert_eq!(code, codes::UNAUTHENTICATED);
        assert!(msg.starts_with("authentication failed: "), "{msg}");
        assert_eq!(a.body["id"], "x");
        assert!(a.headers.iter().any(|(k, _)| k == "www-authenticate"));
    }
    // The cards need nothing.
    assert_eq!(f.send(card_request(a2a::CARD_PATH, &[])).await.status, 200);
}

#[tokio::test]
async fn a_data_part_runs_its_skill_and_the_task_persists() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let a = f.run(&org.owner, "traffic_summary", json!({"top": 3})).await;
    let task = a.result()["task"].clone();
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let context = task["contextId"].as_str().unwrap().to_owned();
    let artifact = &task["artifacts"][0];
    assert_eq!(artifact["name"], "traffic_summary");
    assert_eq!(artifact["parts"][0]["mediaType"], "application/json");
    assert!(artifact["parts"][0]["data"].is_object(), "{artifact}");
    assert_eq!(task["history"][0]["role"], "ROLE_USER");
    assert_eq!(task["history"][0]["messageId"], "m1");
    assert_eq!(task["history"][0]["taskId"], id.as_str());
    assert_eq!(task["metadata"]["skill"], "traffic_summary");

    // Stored: GetTask answers the same task, and the store holds it in the org.
    let got = f.rpc(&org.owner, "GetTask", json!({"id": id})).await.result().clone();
    assert_eq!(got, task);
    let stored = f.store.get_task(&org.id, &id).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.skill.as_str()),
        (TaskState::Completed, "traffic_summary")
    );
    assert_eq!(stored.args, json!({"top": 3}));
    assert!(stored.actor.starts_with("key:"), "{}", stored.actor);
    let short = f
        .rpc(&org.owner, "GetTask", json!({"id": id, "historyLength": 0}))
        .await;
    assert!(short.result().get("history").is_none());

    // ProtoJSON clients send whole numbers as doubles (a DataPart is a protobuf Value).
    let doubles = f.run(&org.owner, "find_products", json!({"limit": 2.0})).await;
    assert_eq!(
        doubles.result()["task"]["status"]["state"],
        "TASK_STATE_COMPLETED",
        "{}",
        doubles.body
    );
    let fraction = f.run(&org.owner, "find_products", json!({"limit": 2.5})).await;
    assert_eq!(fraction.result()["task"]["status"]["state"], "TASK_STATE_FAILED");

    // The same conversation continues under its contextId.
    let mut params = send_params("traffic_summary", json!({}));
    params["message"]["contextId"] = json!(context);
    let second = f.rpc(&org.owner, "SendMessage", params).await;
    assert_eq!(second.result()["task"]["contextId"], context.as_str());

    // A0.3: message/send and tasks/get answer the older shape over the same store.
    let old = f
        .rpc(
            &org.owner,
            "message/send",
            json!({"message": {
                "kind": "message", "messageId": "m2", "role": "user",
                "parts": [{"kind": "data", "data": {"skill": "find_products", "args": {"limit": 2}}}],
            }}),
        )
        .await;
    let t = old.result();
    assert_eq!(
        (t["kind"].as_str(), t["status"]["state"].as_str()),
        (Some("task"), Some("completed"))
    );
    assert_eq!(t["artifacts"][0]["parts"][0]["kind"], "data");
    assert_eq!(t["history"][0]["role"], "user");
    assert_eq!(t["history"][0]["parts"][0]["kind"], "data");
    let again = f.rpc(&org.owner, "tasks/get", json!({"id": t["id"]})).await;
    assert_eq!(again.result(), t);
    // ... and 1.0's GetTask reads a task made by 0.3's message/send.
    let v1 = f.rpc(&org.owner, "GetTask", json!({"id": t["id"]})).await;
    assert_eq!(v1.result()["status"]["state"], "TASK_STATE_COMPLETED");

    // A message to an existing task is refused (tasks here finish at once).
    let mut params = send_params("traffic_summary", json!({}));
    params["message"]["taskId"] = json!(id);
    assert_eq!(
        f.rpc(&org.owner, "SendMessage", params.clone()).await.error().0,
        codes::UNSUPPORTED_OPERATION
    );
    params["message"]["taskId"] = json!("no-such-task");
    assert_eq!(
        f.rpc(&org.owner, "SendMessage", params).await.error().0,
        codes::TASK_NOT_FOUND
    );
}

#[tokio::test]
async fn a_failing_skill_is_a_failed_task_with_the_problem() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let a = f.run(&org.owner, "funnel", json!({"steps": ["page:/"]})).await;
    let task = &a.result()["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_FAILED", "{task}");
    let message = &task["status"]["message"];
    assert_eq!(message["role"], "ROLE_AGENT");
    let text = message["parts"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("funnel failed (400") && text.contains("2 to 10 steps"),
        "{text}"
    );
    assert_eq!(message["parts"][1]["data"]["status"], 400);
    assert!(task.get("artifacts").is_none());
    let stored = f
        .store
        .get_task(&org.id, task["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, TaskState::Failed);
    // A failed task cannot be canceled.
    let (code, msg) = f.rpc(&org.owner, "CancelTask", json!({"id": task["id"]})).await.error();
    assert_eq!(code, codes::TASK_NOT_CANCELABLE);
    assert!(msg.contains("already failed"), "{msg}");
}

#[tokio::test]
async fn roles_decide_which_skills_run_and_which_tasks_show() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let viewer = f.key(&org, Role::Viewer).await;
    let analyst = f.key(&org, Role::Analyst).await;

    let (code, msg) = f
        .run(&viewer, "analyze_text", json!({"texts": ["great boots"]}))
        .await
        .error();
    assert_eq!(code, codes::PERMISSION_DENIED);
    assert!(msg.contains("analyze permission") && msg.contains("viewer"), "{msg}");
    let (code, msg) = f
        .run(&viewer, "create_export", json!({"resource": "sessions"}))
        .await
        .error();
    assert_eq!(code, codes::PERMISSION_DENIED);
    assert!(msg.contains("export permission"), "{msg}");
    assert_eq!(f.store.count_tasks(&org.id, &Default::default()).await.unwrap(), 0);

    // A viewer runs what viewers may.
    let mine = f.run(&viewer, "list_sessions", json!({})).await;
    assert_eq!(mine.result()["task"]["status"]["state"], "TASK_STATE_COMPLETED");

    // The analyst's analysis is listed to the viewer without its content, and not shown.
    let theirs = f.run(&analyst, "analyze_text", json!({"texts": ["great boots"]})).await;
    let theirs_id = theirs.result()["task"]["id"].as_str().unwrap().to_owned();
    let list = f
        .rpc(&viewer, "ListTasks", json!({"includeArtifacts": true}))
        .await
        .result()
        .clone();
    assert_eq!(list["totalSize"], 2);
    let listed = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == theirs_id.as_str())
        .unwrap();
    assert!(
        listed.get("artifacts").is_none() && listed.get("history").is_none(),
        "{listed}"
    );
    assert_eq!(listed["status"]["state"], "TASK_STATE_COMPLETED");
    let (code, msg) = f.rpc(&viewer, "GetTask", json!({"id": theirs_id})).await.error();
    assert_eq!(code, codes::PERMISSION_DENIED);
    assert!(msg.contains("analyze permission"), "{msg}");
    // The analyst sees it whole.
    let whole = f.rpc(&analyst, "GetTask", json!({"id": theirs_id})).await;
    assert!(whole.result()["artifacts"][0]["parts"][0]["data"].is_object());
}

#[tokio::test]
async fn tasks_are_scoped_to_the_callers_org() {
    let f = Fixture::new();
    let a = f.org("A").await;
    let b = f.org("B").await;
    let task = f.run(&a.owner, "traffic_summary", json!({})).await.result()["task"].clone();
    let id = task["id"].as_str().unwrap();
    for method in ["GetTask", "CancelTask", "tasks/get", "tasks/cancel"] {
        let (code, msg) = f.rpc(&b.owner, method, json!({"id": id})).await.error();
        assert_eq!(code, codes::TASK_NOT_FOUND, "{method}");
        assert!(msg.contains(id), "{msg}");
    }
    let list = f.rpc(&b.owner, "ListTasks", json!({})).await;
    assert_eq!(list.result()["tasks"], json!([]));
    assert_eq!(list.result()["totalSize"], 0);
    assert_eq!(f.rpc(&a.owner, "ListTasks", json!({})).await.result()["totalSize"], 1);
}

#[tokio::test]
async fn list_tasks_pages_and_filters() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let mut ids = Vec::new();
    for skill in ["traffic_summary", "list_sessions", "find_products"] {
        ids.push(
            f.run(&org.owner, skill, json!({})).await.result()["task"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let failed = f.run(&org.owner, "funnel", json!({"steps": []})).await;
    let failed_id = failed.result()["task"]["id"].as_str().unwrap().to_owned();

    let mut seen = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let page = f
            .rpc(&org.owner, "ListTasks", json!({"pageSize": 3, "pageToken": token}))
            .await
            .result()
            .clone();
        assert_eq!(
            (page["pageSize"].as_u64(), page["totalSize"].as_u64()),
            (Some(3), Some(4))
        );
        for t in page["tasks"].as_array().unwrap() {
            assert!(t.get("artifacts").is_none(), "artifacts only on request: {t}");
            seen.push(t["id"].as_str().unwrap().to_owned());
        }
        token = page["nextPageToken"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    let mut all = ids.clone();
    all.push(failed_id.clone());
    seen.sort();
    all.sort();
    assert_eq!(seen, all);

    let failed_only = f
        .rpc(
            &org.owner,
            "ListTasks",
            json!({"status": "TASK_STATE_FAILED", "includeArtifacts": true}),
        )
        .await;
    let tasks = failed_only.result()["tasks"].as_array().unwrap().clone();
    let by_number = f.rpc(&org.owner, "ListTasks", json!({"status": 4})).await;
    assert_eq!(by_number.result()["totalSize"], 1);
    assert_eq!(
        f.rpc(&org.owner, "ListTasks", json!({"status": 0})).await.result()["totalSize"],
        4
    );
    assert_eq!(
        f.rpc(&org.owner, "ListTasks", json!({"status": 42})).await.error().0,
        codes::INVALID_PARAMS
    );
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["id"], failed_id.as_str());
    let with = f
        .rpc(
            &org.owner,
            "ListTasks",
            json!({"status": "TASK_STATE_COMPLETED", "includeArtifacts": true}),
        )
        .await;
    assert!(
        with.result()["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["artifacts"].is_array())
    );
    let context = f.rpc(&org.owner, "GetTask", json!({"id": ids[0]})).await.result()["contextId"].clone();
    let by_context = f.rpc(&org.owner, "ListTasks", json!({"contextId": context})).await;
    assert_eq!(by_context.result()["totalSize"], 1);
    let later = f
        .rpc(
            &org.owner,
            "ListTasks",
            json!({"statusTimestampAfter": "2100-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(later.result()["totalSize"], 0);
}

#[tokio::test]
async fn an_export_task_works_until_the_export_is_written_and_can_be_canceled() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let a = f
        .run(
            &org.owner,
            "create_export",
            json!({"resource": "sessions", "format": "json"}),
        )
        .await;
    let task = a.result()["task"].clone();
    assert_eq!(task["status"]["state"], "TASK_STATE_WORKING", "{task}");
    let export_id = task["artifacts"][0]["parts"][0]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = task["id"].as_str().unwrap().to_owned();
    // The export went through REST in-process: it exists and its audit row names it.
    let audit = f
        .store
        .list_audit(
            &org.id,
            &crow_core::access::AuditQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        audit
            .data
            .iter()
            .any(|e| e.target.as_deref() == Some(export_id.as_str()))
    );

    // Still queued: still working.
    let got = f.rpc(&org.owner, "GetTask", json!({"id": id})).await;
    assert_eq!(got.result()["status"]["state"], "TASK_STATE_WORKING");

    // The worker writes it: GetTask completes the task with the download link.
    let mut export = f.store.get_export(&org.id, &export_id).await.unwrap().unwrap();
    export.status = ExportStatus::Succeeded;
    export.rows = Some(0);
    export.bytes = Some(0);
    export.key = Some(format!("exports/{}/{export_id}.ndjson", org.id));
    export.finished_at = Some(NOW);
    assert!(f.store.update_export(&org.id, &export).await.unwrap());
    let done = f.rpc(&org.owner, "GetTask", json!({"id": id})).await.result().clone();
    assert_eq!(done["status"]["state"], "TASK_STATE_COMPLETED", "{done}");
    let record = &done["artifacts"][0]["parts"][0]["data"];
    assert_eq!(record["status"], "succeeded");
    let link = record["download_url"].as_str().unwrap();
    assert!(
        link.contains("token=") && !link.contains("[secret]"),
        "live answer: {link}"
    );
    // Stored for good, with the link's token scrubbed.
    let stored = f.store.get_task(&org.id, &id).await.unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Completed);
    let stored_link = stored.artifacts[0]["parts"][0]["data"]["download_url"]
        .as_str()
        .unwrap();
    assert!(stored_link.contains("[secret]"), "{stored_link}");
    let (code, _) = f.rpc(&org.owner, "CancelTask", json!({"id": id})).await.error();
    assert_eq!(code, codes::TASK_NOT_CANCELABLE);

    // Another export, canceled while it works.
    let second = f
        .run(&org.owner, "create_export", json!({"resource": "mentions"}))
        .await;
    let second_id = second.result()["task"]["id"].as_str().unwrap().to_owned();
    let canceled = f.rpc(&org.owner, "CancelTask", json!({"id": second_id})).await;
    assert_eq!(canceled.result()["status"]["state"], "TASK_STATE_CANCELED");
    let text = canceled.result()["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("export itself still runs"), "{text}");
    let again = f.rpc(&org.owner, "tasks/cancel", json!({"id": second_id})).await;
    assert_eq!(again.error().0, codes::TASK_NOT_CANCELABLE);
    let old = f.rpc(&org.owner, "tasks/get", json!({"id": second_id})).await;
    assert_eq!(old.result()["status"]["state"], "canceled");
}

#[tokio::test]
async fn what_is_stored_is_scrubbed_of_pii() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let text = "mail me at jane.doe@example.com or call +1 (415) 555-2671";
    let a = f.run(&org.owner, "analyze_text", json!({"texts": [text]})).await;
    let task = &a.result()["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{task}");
    let id = task["id"].as_str().unwrap();
    let stored = f.store.get_task(&org.id, id).await.unwrap().unwrap();
    let all = serde_json::to_string(&stored).unwrap();
    assert!(
        !all.contains("jane.doe@example.com") && !all.contains("555-2671"),
        "{all}"
    );
    assert_eq!(stored.args["texts"][0], "mail me at [email] or call [phone]");
    // Rows about people are answered but not kept.
    for name in a2a::ROWS_NOT_KEPT {
        assert!(crow_ingest::api::tools::find(name).is_some(), "{name} is a tool");
    }
    let events: Vec<_> = (0..3).map(|n| interaction(&org.id, n)).collect();
    f.store.append(&org.id, events, vec![]).await.unwrap();
    let rows = f.run(&org.owner, "list_interactions", json!({"limit": 2})).await;
    let live = &rows.result()["task"]["artifacts"][0]["parts"][0]["data"];
    assert_eq!(live["data"].as_array().unwrap().len(), 2, "{live}");
    let rows_id = rows.result()["task"]["id"].as_str().unwrap();
    let kept = f.rpc(&org.owner, "GetTask", json!({"id": rows_id})).await;
    let kept = &kept.result()["artifacts"][0]["parts"][0]["data"];
    assert_eq!(
        (&kept["rows"], &kept["next_cursor"]),
        (&json!(2), &live["next_cursor"]),
        "{kept}"
    );
    assert!(kept["not_kept"].as_str().unwrap().contains("erased"), "{kept}");
    assert!(!kept.to_string().contains("anon-"), "{kept}");

    // GetTask answers the stored copy.
    let got = f.rpc(&org.owner, "GetTask", json!({"id": id})).await;
    assert!(!got.result().to_string().contains("jane.doe@example.com"));
}
