//! CROW as an A2A agent (Agent2Agent protocol 1.0, and the 0.3 methods for older clients):
//! one crate function from a plain request to a plain response, like [`crate::api::handle`].
//!
//! - **Card**: `GET /.well-known/agent-card.json` (1.0) and `GET /.well-known/agent.json` (the
//!   0.2/0.3 shape), public. Its URLs come from the request's `Host` header and
//!   `x-forwarded-proto`. One skill per tool of [`crate::api::tools::TOOLS`]: the same tools
//!   as MCP, so the surfaces cannot drift.
//! - **JSON-RPC** at `POST /a2a`: `SendMessage`, `GetTask`, `ListTasks`, `CancelTask` (1.0) and
//!   `message/send`, `tasks/get`, `tasks/cancel` (0.3). Every call needs
//!   `Authorization: Bearer <secret API key or session token>` (else HTTP 401 with error
//!   [`codes::UNAUTHENTICATED`]); a skill the caller's role may not run is refused with
//!   [`codes::PERMISSION_DENIED`] naming the permission.
//! - **Messages**: until CROW understands language, a message carries a DataPart
//!   `{"skill": "<skill id>", "args": {...}}`. Free text is refused with
//!   [`codes::CONTENT_TYPE_NOT_SUPPORTED`] and a message that names the skills.
//! - **Tasks**: each message runs its skill at once through [`crate::api::tools::call`] (the
//!   REST operation in-process: same validation, same audit row) and becomes a task stored by
//!   [`crow_core::ports::TaskStore`], scoped to the caller's org: `completed` with an artifact
//!   holding the tool's JSON as a DataPart, or `failed` with the REST problem (its text and, as
//!   a DataPart, the problem document) as the status message. `create_export` stays `working`
//!   until the export is written; `GetTask` refreshes it from the export's status.
//! - **Privacy**: what is stored is scrubbed of PII first
//!   ([`Scrubber::scrub_json`](crow_core::privacy::Scrubber::scrub_json)): the arguments, the
//!   messages and the artifacts. The answer to `SendMessage` (and a refreshing `GetTask`) is
//!   the live one: a download link's token is whole there and reads `[secret]` in the stored copy.
//!   The rows of skills that answer rows about people ([`ROWS_NOT_KEPT`]: events, sessions,
//!   search hits) are not stored at all, only their count and cursor, so a person erased later
//!   leaves no copy in a task. Tasks of a skill the caller's role may not run are listed without
//!   their messages and artifacts, and `GetTask`/`CancelTask` on them are refused.
//!
//! ```
//! use crow_ingest::a2a;
//! assert_eq!(a2a::CARD_PATH, "/.well-known/agent-card.json");
//! assert_eq!(a2a::codes::TASK_NOT_FOUND, -32001);
//! ```

mod card;
mod wire;

use serde_json::{Map, Value, json};

use crate::api::tools::{self, Failure, Tool};
use crate::api::{Api, auth, problem};
use crate::http::{HttpRequest, HttpResponse};
use crow_core::access::Principal;
use crow_core::agent::{AgentTask, TaskQuery, TaskState};
use crow_core::privacy::Scrubber;

pub use wire::codes;
use wire::{Envelope, Part, RpcError, Version, View};

/// The A2A 1.0 agent card.
pub const CARD_PATH: &str = "/.well-known/agent-card.json";
/// The agent card in the A2A 0.2/0.3 shape.
pub const LEGACY_CARD_PATH: &str = "/.well-known/agent.json";
/// The JSON-RPC endpoint.
pub const RPC_PATH: &str = "/a2a";
/// The largest `pageSize` of `ListTasks` (and its default is 50).
pub const MAX_PAGE_SIZE: u32 = 100;

/// The 1.0 methods, then the 0.3 ones, as error messages list them.
const METHODS: &str = "SendMessage, GetTask, ListTasks, CancelTask (A2A 1.0) and message/send, tasks/get, \
                       tasks/cancel (A2A 0.3)";

/// Handles an A2A request. Returns `None` for any path other than the two cards and `/a2a`.
pub async fn handle(api: &Api<'_>, req: &HttpRequest) -> Option<HttpResponse> {
    let path = req.path.as_str();
    if path != CARD_PATH && path != LEGACY_CARD_PATH && path != RPC_PATH {
        return None;
    }
    let head = req.method.eq_ignore_ascii_case("HEAD");
    if path == RPC_PATH {
        if !req.method.eq_ignore_ascii_case("POST") {
            return Some(method_not_allowed(req, "POST"));
        }
        return Some(rpc(api, req).await);
    }
    if !head && !req.method.eq_ignore_ascii_case("GET") {
        return Some(method_not_allowed(req, "GET, HEAD"));
    }
    let base = card::base_url(req);
    let body = if path == CARD_PATH {
        card::card(&base)
    } else {
        card::legacy_card(&base)
    };
    let mut resp = HttpResponse::json(200, &body).with_header("cache-control", "public, max-age=300");
    if head {
        resp.body.clear();
    }
    Some(resp)
}

fn method_not_allowed(req: &HttpRequest, allowed: &str) -> HttpResponse {
    HttpResponse::problem(
        405,
        "method_not_allowed",
        "Method not allowed",
        format!("{} is not allowed on {}; it answers {allowed}", req.method, req.path),
        None,
    )
    .with_header("allow", allowed)
}

async fn rpc(api: &Api<'_>, req: &HttpRequest) -> HttpResponse {
    let env = match Envelope::parse(&req.body) {
        Ok(env) => env,
        Err((id, e)) => return e.response(&id),
    };
    if let Err(e) = check_version(req) {
        return e.response(&env.id);
    }
    let principal = match auth::authenticate(api, req).await {
        Ok(p) => p,
        Err(resp) => return auth_error(&resp).response(&env.id),
    };
    let agent = Agent { api, req, principal };
    let out = match env.method.as_str() {
        "SendMessage" => agent.send_message(&env.params, Version::V1).await,
        "message/send" => agent.send_message(&env.params, Version::V03).await,
        "GetTask" => agent.get_task(&env.params, Version::V1).await,
        "tasks/get" => agent.get_task(&env.params, Version::V03).await,
        "ListTasks" => agent.list_tasks(&env.params).await,
        "CancelTask" => agent.cancel_task(&env.params, Version::V1).await,
        "tasks/cancel" => agent.cancel_task(&env.params, Version::V03).await,
        "SendStreamingMessage" | "message/stream" | "SubscribeToTask" | "tasks/resubscribe" => {
            Err(RpcError::unsupported(format!(
                "{} streams, and this agent does not stream (capabilities.streaming is false): use SendMessage, \
                 then GetTask",
                env.method
            )))
        }
        m if m.contains("PushNotificationConfig") || m.starts_with("tasks/pushNotificationConfig/") => {
            Err(RpcError::new(
                codes::PUSH_NOTIFICATION_NOT_SUPPORTED,
                "PUSH_NOTIFICATION_NOT_SUPPORTED",
                "this agent sends no push notifications (capabilities.pushNotifications is false): poll GetTask",
            ))
        }
        "GetExtendedAgentCard" | "agent/getAuthenticatedExtendedCard" => Err(RpcError::new(
            codes::EXTENDED_AGENT_CARD_NOT_CONFIGURED,
            "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
            format!("there is no extended agent card: the public one at {CARD_PATH} is complete"),
        )),
        other => Err(RpcError::new(
            codes::METHOD_NOT_FOUND,
            "METHOD_NOT_FOUND",
            format!("no method {other:?}; this agent answers {METHODS}"),
        )),
    };
    match out {
        Ok(result) => wire::result(&env.id, result),
        Err(e) => e.response(&env.id),
    }
}

/// The `A2A-Version` header, when sent, must name 1.0, 0.3 or 0.2 (a patch level is ignored).
fn check_version(req: &HttpRequest) -> Result<(), RpcError> {
    let Some(v) = req.header("a2a-version").map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let mut it = v.split('.');
    let major_minor = (
        it.next().and_then(|s| s.parse::<u32>().ok()),
        it.next().map(|s| s.parse::<u32>().ok()),
    );
    match major_minor {
        (Some(1), Some(Some(0)) | None) | (Some(0), Some(Some(2 | 3))) => Ok(()),
        _ => Err(RpcError::new(
            codes::VERSION_NOT_SUPPORTED,
            "VERSION_NOT_SUPPORTED",
            format!("A2A-Version {v:?} is not supported; this agent speaks 1.0 and 0.3"),
        )
        .with("supported", "1.0, 0.3")),
    }
}

/// The REST API's `401` (or a backend failure while authenticating) as a JSON-RPC error.
fn auth_error(resp: &HttpResponse) -> RpcError {
    let detail = resp
        .json_body()
        .and_then(|b| b.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    if resp.status == 401 {
        let mut e = RpcError::new(
            codes::UNAUTHENTICATED,
            "UNAUTHENTICATED",
            format!("authentication failed: {detail}"),
        );
        e.http_status = 401;
        e
    } else {
        RpcError::internal(format!("the caller could not be authenticated: {detail}"))
    }
}

/// The skills a caller may be told about, for error messages.
fn skill_names() -> String {
    tools::TOOLS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

fn forbidden(principal: &Principal, tool: &Tool) -> RpcError {
    let resp = problem::forbidden(principal, tool.permission);
    let body = resp.json_body().unwrap_or_default();
    let detail = body.get("detail").and_then(Value::as_str).unwrap_or_default();
    let permission = body.get("permission").and_then(Value::as_str).unwrap_or_default();
    RpcError::new(
        codes::PERMISSION_DENIED,
        "PERMISSION_DENIED",
        format!("the skill {} is not allowed: {detail}", tool.name),
    )
    .with("skill", tool.name)
    .with("permission", permission)
    .with("role", principal.role.as_str())
}

fn backend(e: crow_core::Error) -> RpcError {
    tracing::error!(error = %e, "A2A task store failure");
    RpcError::internal(format!("the task store failed: {e}"))
}

/// A string parameter: absent or `null` is `None`; another type is an error naming it.
fn str_param<'a>(params: &'a Value, name: &str) -> Result<Option<&'a str>, RpcError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(RpcError::invalid_params(format!(
            "params.{name} must be a string, not {other}"
        ))),
    }
}

/// A non-negative integer parameter (ProtoJSON may send 64-bit integers as strings).
fn uint_param(params: &Value, name: &str) -> Result<Option<u64>, RpcError> {
    let bad = || RpcError::invalid_params(format!("params.{name} must be a non-negative integer"));
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

fn task_id_param(params: &Value, method: &str) -> Result<String, RpcError> {
    match str_param(params, "id")? {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(RpcError::invalid_params(format!(
            "params.id is required: the id of the task to {method}"
        ))),
    }
}

/// A random UUID (version 4) from the platform's CSPRNG.
fn uuid(api: &Api<'_>) -> String {
    let mut b = api.random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Skills that answer rows about people (events, sessions, their texts). Their rows are answered
/// but not stored with the task, so a person erased later (GDPR article 17) leaves no copy here.
pub const ROWS_NOT_KEPT: &[&str] = &["list_interactions", "list_sessions", "search"];

/// The task as it is stored: its free-form JSON scrubbed of PII, and the rows of a
/// [`ROWS_NOT_KEPT`] skill replaced by their count and cursor.
fn scrubbed(task: &AgentTask) -> AgentTask {
    let s = Scrubber::global();
    let mut t = task.clone();
    if ROWS_NOT_KEPT.contains(&t.skill.as_str())
        && let Some(data) = t.artifacts.first_mut().and_then(|a| a.pointer_mut("/parts/0/data"))
    {
        let rows = data.get("data").and_then(Value::as_array).map_or(0, Vec::len);
        let cursor = data.get("next_cursor").cloned().unwrap_or(Value::Null);
        *data = json!({
            "rows": rows,
            "next_cursor": cursor,
            "not_kept": format!(
                "{} answers rows about people; they were answered, not stored, so that an erased person leaves \
                 no copy: run the skill again to see them",
                t.skill
            ),
        });
    }
    s.scrub_json(&mut t.args);
    if let Some(m) = &mut t.status_message {
        s.scrub_json(m);
    }
    for v in t.history.iter_mut().chain(t.artifacts.iter_mut()) {
        s.scrub_json(v);
    }
    t
}

/// Turns numbers with no fraction into integers, everywhere in `v`. A DataPart is a
/// `google.protobuf.Value`, which holds every number as a double, so ProtoJSON clients (the
/// a2a-sdk among them) send `"limit": 5.0` for 5; the tools take integers.
fn whole_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n
                .as_f64()
                .filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15)
            {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// What a message asks: the skill and its arguments.
struct Ask<'a> {
    tool: &'static Tool,
    args: Value,
    /// The message's parts as sent (the history stores them in the 1.0 shape).
    parts: &'a [Value],
}

/// One authenticated caller.
struct Agent<'a, 'r> {
    api: &'a Api<'a>,
    req: &'r HttpRequest,
    principal: Principal,
}

impl Agent<'_, '_> {
    /// Finds the skill a message asks for.
    fn ask<'p>(&self, parts: &'p [Value]) -> Result<Ask<'p>, RpcError> {
        let mut saw_text = false;
        for (i, p) in parts.iter().enumerate() {
            match wire::read_part(p) {
                Part::Data(Value::Object(data)) => {
                    let skill = match data.get("skill") {
                        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
                        _ => {
                            return Err(RpcError::invalid_params(format!(
                                "params.message.parts[{i}].data.skill must name the skill to run, one of: {}",
                                skill_names()
                            )));
                        }
                    };
                    let tool = tools::find(skill).ok_or_else(|| {
                        RpcError::invalid_params(format!(
                            "params.message.parts[{i}].data.skill: there is no skill {skill:?}; the skills are: {}",
                            skill_names()
                        ))
                        .with("skills", skill_names())
                    })?;
                    let mut args = match data.get("args") {
                        None | Some(Value::Null) => Value::Object(Map::new()),
                        Some(a @ Value::Object(_)) => a.clone(),
                        Some(_) => {
                            return Err(RpcError::invalid_params(format!(
                                "params.message.parts[{i}].data.args must be a JSON object: the arguments of {skill}"
                            )));
                        }
                    };
                    whole_numbers(&mut args);
                    return Ok(Ask { tool, args, parts });
                }
                Part::Data(_) => {
                    return Err(RpcError::invalid_params(format!(
                        "params.message.parts[{i}].data must be an object {{\"skill\": ..., \"args\": {{...}}}}"
                    )));
                }
                Part::Text(_) => saw_text = true,
                Part::Other => {}
            }
        }
        let what = if saw_text { "free text" } else { "this kind of part" };
        Err(RpcError::new(
            codes::CONTENT_TYPE_NOT_SUPPORTED,
            "CONTENT_TYPE_NOT_SUPPORTED",
            format!(
                "this agent does not understand {what} yet: send a DataPart {{\"skill\": \"<skill>\", \"args\": {{...}}}} \
                 (media type application/json); the skills are: {} (their arguments are on the agent card at {CARD_PATH})",
                skill_names()
            ),
        )
        .with("skills", skill_names()))
    }

    async fn send_message(&self, params: &Value, version: Version) -> Result<Value, RpcError> {
        let message = match params.get("message") {
            Some(m @ Value::Object(_)) => m,
            _ => {
                return Err(RpcError::invalid_params(
                    "params.message is required: {\"message\": {\"role\": \"ROLE_USER\", \"parts\": [{\"data\": \
                     {\"skill\": ..., \"args\": {...}}}]}}",
                ));
            }
        };
        let parts = match message.get("parts") {
            Some(Value::Array(p)) if !p.is_empty() => p.as_slice(),
            _ => {
                return Err(RpcError::invalid_params(
                    "params.message.parts must be a non-empty array",
                ));
            }
        };
        if let Some(task_id) = str_param(message, "taskId")?.filter(|t| !t.is_empty()) {
            let org = &self.principal.org_id;
            let task = self.api.store.get_task(org, task_id).await.map_err(backend)?;
            let Some(task) = task else {
                return Err(RpcError::task_not_found(task_id));
            };
            return Err(RpcError::unsupported(format!(
                "task {task_id:?} is {} and takes no further messages; send a new message without taskId \
                 (use the same contextId to keep the conversation)",
                task.state.as_str()
            ))
            .with("taskId", task_id));
        }
        let history_length = uint_param(params.get("configuration").unwrap_or(&Value::Null), "historyLength")?;
        let ask = self.ask(parts)?;
        if !ask.tool.allowed(&self.principal) {
            return Err(forbidden(&self.principal, ask.tool));
        }
        let id = uuid(self.api);
        let context_id = match str_param(message, "contextId")? {
            Some(c) if !c.is_empty() => c.to_owned(),
            _ => uuid(self.api),
        };
        let message_id = match str_param(message, "messageId")? {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => uuid(self.api),
        };
        let user = wire::message_v1(&message_id, &context_id, &id, false, ask.parts);
        let outcome = tools::call(self.api, &self.principal, ask.tool.name, &ask.args, self.req.peer_ip).await;
        let now = self.api.now;
        let mut task = AgentTask {
            id: id.clone(),
            context_id,
            org_id: self.principal.org_id.clone(),
            state: TaskState::Completed,
            skill: ask.tool.name.to_owned(),
            args: ask.args.clone(),
            actor: self.principal.actor.label(),
            status_message: None,
            history: vec![user],
            artifacts: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        self.settle(&mut task, outcome);
        self.api
            .store
            .create_task(&self.principal.org_id, &scrubbed(&task))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, skill = ask.tool.name, "A2A task ran but was not stored");
                RpcError::internal(format!(
                    "the skill {} ran but its task could not be stored: {e}",
                    ask.tool.name
                ))
            })?;
        let view = View {
            history_length: history_length.map(|n| n as usize),
            without_artifacts: false,
        };
        let rendered = wire::task(&task, version, view);
        Ok(match version {
            Version::V1 => json!({"task": rendered}),
            Version::V03 => rendered,
        })
    }

    /// Sets a task's state, status message and artifacts from what its tool answered. An
    /// export (`create_export`, or the `get_export` answer that refreshes it) is `working` while
    /// queued or running and `failed` when it failed.
    fn settle(&self, task: &mut AgentTask, outcome: Result<Value, Failure>) {
        let title = tools::find(&task.skill).map_or_else(|| task.skill.clone(), |t| t.title.to_owned());
        match outcome {
            Ok(value) => {
                let export_status = if task.skill == "create_export" {
                    value.get("status").and_then(Value::as_str).unwrap_or_default()
                } else {
                    ""
                };
                let (state, note) = match export_status {
                    "queued" | "running" => (
                        TaskState::Working,
                        Some("the export is being written; GetTask follows it until it succeeds or fails".to_owned()),
                    ),
                    "failed" => {
                        let why = value.get("error").and_then(Value::as_str).unwrap_or("no reason given");
                        (TaskState::Failed, Some(format!("the export failed: {why}")))
                    }
                    _ => (TaskState::Completed, None),
                };
                task.state = state;
                task.status_message = note.map(|text| self.agent_message(task, &[json!({"text": text})]));
                let artifact_id = match task.artifacts.first().and_then(|a| a.get("artifactId")) {
                    Some(Value::String(a)) => a.clone(),
                    _ => uuid(self.api),
                };
                task.artifacts = vec![json!({
                    "artifactId": artifact_id,
                    "name": task.skill,
                    "description": title,
                    "parts": [{"data": value, "mediaType": "application/json"}],
                })];
            }
            Err(f) => {
                task.state = TaskState::Failed;
                let text = format!("{} failed ({} {}): {}", task.skill, f.status, f.title, f.detail);
                let parts = [json!({"text": text}), json!({"data": f.body})];
                task.status_message = Some(self.agent_message(task, &parts));
            }
        }
        task.updated_at = self.api.now;
    }

    fn agent_message(&self, task: &AgentTask, parts: &[Value]) -> Value {
        wire::message_v1(&uuid(self.api), &task.context_id, &task.id, true, parts)
    }

    /// The caller's task `id`; refused when its skill is not the caller's to run.
    async fn load(&self, id: &str) -> Result<AgentTask, RpcError> {
        let task = self
            .api
            .store
            .get_task(&self.principal.org_id, id)
            .await
            .map_err(backend)?
            .ok_or_else(|| RpcError::task_not_found(id))?;
        if let Some(tool) = tools::find(&task.skill)
            && !tool.allowed(&self.principal)
        {
            return Err(forbidden(&self.principal, tool));
        }
        Ok(task)
    }

    async fn get_task(&self, params: &Value, version: Version) -> Result<Value, RpcError> {
        let id = task_id_param(params, "get")?;
        let history_length = uint_param(params, "historyLength")?;
        let mut task = self.load(&id).await?;
        if task.state == TaskState::Working && task.skill == "create_export" {
            task = self.refresh_export(task).await?;
        }
        let view = View {
            history_length: history_length.map(|n| n as usize),
            without_artifacts: false,
        };
        Ok(wire::task(&task, version, view))
    }

    /// Follows a working `create_export` task: asks `get_export` for its export and records
    /// the new state. Answers the live task (with the download link whole).
    async fn refresh_export(&self, task: AgentTask) -> Result<AgentTask, RpcError> {
        let export_id = task
            .artifacts
            .first()
            .and_then(|a| a.pointer("/parts/0/data/id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(export_id) = export_id else {
            return Ok(task);
        };
        let outcome = tools::call(
            self.api,
            &self.principal,
            "get_export",
            &json!({"id": export_id}),
            self.req.peer_ip,
        )
        .await;
        let Ok(value) = outcome else {
            // The export is gone or unreadable now: keep the task as it was.
            return Ok(task);
        };
        let mut next = task.clone();
        self.settle(&mut next, Ok(value));
        if next.state == task.state && next.artifacts == task.artifacts {
            return Ok(task);
        }
        let stored = self
            .api
            .store
            .update_task(&self.principal.org_id, &scrubbed(&next))
            .await
            .map_err(backend)?;
        if stored {
            Ok(next)
        } else {
            // Canceled (or refreshed) meanwhile: the stored task is the truth.
            self.load(&task.id).await
        }
    }

    async fn list_tasks(&self, params: &Value) -> Result<Value, RpcError> {
        let page_size = match uint_param(params, "pageSize")? {
            None | Some(0) => 50,
            Some(n) if n <= u64::from(MAX_PAGE_SIZE) => n as u32,
            Some(n) => {
                return Err(RpcError::invalid_params(format!(
                    "params.pageSize must be between 1 and {MAX_PAGE_SIZE}, not {n}"
                )));
            }
        };
        let state = match params.get("status") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => wire::parse_state(s)?,
            Some(Value::Number(n)) if n.as_u64() == Some(0) => None,
            Some(Value::Number(n)) => Some(
                TaskState::ALL
                    .into_iter()
                    .find(|s| Some(wire::state_number(*s)) == n.as_u64())
                    .ok_or_else(|| RpcError::invalid_params(format!("params.status {n} is not a task state")))?,
            ),
            Some(other) => {
                return Err(RpcError::invalid_params(format!(
                    "params.status must be a task state such as \"TASK_STATE_COMPLETED\", not {other}"
                )));
            }
        };
        let updated_since = match str_param(params, "statusTimestampAfter")? {
            Some(t) => Some(crow_core::time::parse_timestamp(t).ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "params.statusTimestampAfter {t:?} is not an RFC 3339 timestamp such as 2025-01-01T00:00:00Z"
                ))
            })?),
            None => None,
        };
        let include_artifacts = match params.get("includeArtifacts") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "params.includeArtifacts must be true or false",
                ));
            }
        };
        let history_length = uint_param(params, "historyLength")?;
        let query = TaskQuery {
            limit: page_size,
            cursor: str_param(params, "pageToken")?
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            context_id: str_param(params, "contextId")?
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            state,
            updated_since,
        };
        let org = &self.principal.org_id;
        let page = self.api.store.list_tasks(org, &query).await.map_err(|e| match e {
            crow_core::Error::Invalid { field, .. } if field == "cursor" => RpcError::invalid_params(
                "params.pageToken is not a nextPageToken this agent gave out (or its filters changed)",
            ),
            e => backend(e),
        })?;
        let total = self.api.store.count_tasks(org, &query).await.map_err(backend)?;
        let tasks: Vec<Value> = page
            .data
            .iter()
            .map(|t| {
                let allowed = tools::find(&t.skill).is_none_or(|tool| tool.allowed(&self.principal));
                let view = View {
                    history_length: if allowed {
                        history_length.map(|n| n as usize)
                    } else {
                        Some(0)
                    },
                    without_artifacts: !include_artifacts || !allowed,
                };
                let mut v = wire::task(t, Version::V1, view);
                if !allowed && let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
                    status.remove("message");
                }
                v
            })
            .collect();
        Ok(json!({
            "tasks": tasks,
            "nextPageToken": page.next_cursor.unwrap_or_default(),
            "pageSize": page_size,
            "totalSize": total,
        }))
    }

    async fn cancel_task(&self, params: &Value, version: Version) -> Result<Value, RpcError> {
        let id = task_id_param(params, "cancel")?;
        let task = self.load(&id).await?;
        let not_cancelable = |t: &AgentTask| {
            RpcError::new(
                codes::TASK_NOT_CANCELABLE,
                "TASK_NOT_CANCELABLE",
                format!(
                    "task {:?} is already {} and cannot be canceled; only a working task can",
                    t.id,
                    t.state.as_str()
                ),
            )
            .with("taskId", t.id.as_str())
            .with("state", wire::state_v1(t.state))
        };
        if task.state.is_terminal() {
            return Err(not_cancelable(&task));
        }
        let mut next = task.clone();
        next.state = TaskState::Canceled;
        next.updated_at = self.api.now;
        let text = if task.skill == "create_export" {
            "canceled: the agent stops following the export; the export itself still runs to its end (get_export shows it)"
        } else {
            "canceled by the client"
        };
        next.status_message = Some(self.agent_message(&next, &[json!({"text": text})]));
        let stored = self
            .api
            .store
            .update_task(&self.principal.org_id, &scrubbed(&next))
            .await
            .map_err(backend)?;
        if !stored {
            // It finished meanwhile.
            let now = self.load(&id).await?;
            return Err(not_cancelable(&now));
        }
        Ok(wire::task(&next, version, View::default()))
    }
}
