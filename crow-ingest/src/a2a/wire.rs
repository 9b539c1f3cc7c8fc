//! The A2A wire: JSON-RPC 2.0 envelopes and errors, and a stored task rendered as A2A 1.0
//! (ProtoJSON: camelCase, `TASK_STATE_*` enums, parts as `{"text"}`/`{"data"}`) or as A2A 0.3
//! (`kind` tags, `completed`-style states).
//!
//! Tasks are stored in the 1.0 shape; the 0.3 methods convert on the way out.

use serde_json::{Map, Value, json};

use crate::http::HttpResponse;
use crow_core::agent::{AgentTask, TaskState};
use crow_core::time::format_millis;

/// JSON-RPC and A2A error codes this agent answers.
pub mod codes {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// The body is JSON but not a JSON-RPC 2.0 request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The method's parameters are wrong (the message says which and how).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Something broke inside CROW.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// A2A: no task with this id in the caller's org.
    pub const TASK_NOT_FOUND: i64 = -32001;
    /// A2A: the task is finished and cannot be canceled.
    pub const TASK_NOT_CANCELABLE: i64 = -32002;
    /// A2A: push notifications are not supported.
    pub const PUSH_NOTIFICATION_NOT_SUPPORTED: i64 = -32003;
    /// A2A: a known operation this agent does not support (streaming, messages to a task).
    pub const UNSUPPORTED_OPERATION: i64 = -32004;
    /// A2A: the message carries no part this agent reads (free text, files).
    pub const CONTENT_TYPE_NOT_SUPPORTED: i64 = -32005;
    /// A2A: there is no extended agent card.
    pub const EXTENDED_AGENT_CARD_NOT_CONFIGURED: i64 = -32007;
    /// A2A: the `A2A-Version` header names a version this agent does not speak.
    pub const VERSION_NOT_SUPPORTED: i64 = -32009;
    /// CROW: no credentials, or credentials CROW does not accept (HTTP 401). Outside the range
    /// JSON-RPC reserves, so it never collides with a future A2A code.
    pub const UNAUTHENTICATED: i64 = -31401;
    /// CROW: the caller's role lacks the permission a skill needs (the message names it).
    pub const PERMISSION_DENIED: i64 = -31403;
}

const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// A JSON-RPC error: its code, a message that says what to change, and a `google.rpc.ErrorInfo`
/// detail (reason, domain, metadata) as A2A 1.0 attaches to its errors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
    pub reason: &'static str,
    pub metadata: Map<String, Value>,
    pub http_status: u16,
}

impl RpcError {
    pub fn new(code: i64, reason: &'static str, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            reason,
            metadata: Map::new(),
            http_status: 200,
        }
    }

    /// Adds a metadata entry (ErrorInfo metadata is a map of strings).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_owned(), Value::String(value.into()));
        self
    }

    pub fn parse(message: impl Into<String>) -> Self {
        Self::new(codes::PARSE_ERROR, "PARSE_ERROR", message)
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_REQUEST, "INVALID_REQUEST", message)
    }
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, "INVALID_PARAMS", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL_ERROR, "INTERNAL_ERROR", message)
    }
    pub fn task_not_found(id: &str) -> Self {
        Self::new(
            codes::TASK_NOT_FOUND,
            "TASK_NOT_FOUND",
            format!("no task with id {id:?} in your organization"),
        )
        .with("taskId", id)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(codes::UNSUPPORTED_OPERATION, "UNSUPPORTED_OPERATION", message)
    }

    fn domain(&self) -> &'static str {
        if self.code == codes::UNAUTHENTICATED || self.code == codes::PERMISSION_DENIED {
            "crow"
        } else {
            "a2a-protocol.org"
        }
    }

    /// The error object of a response.
    pub fn object(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "data": [{
                "@type": ERROR_INFO,
                "reason": self.reason,
                "domain": self.domain(),
                "metadata": self.metadata,
            }],
        })
    }

    /// The whole response for request `id`.
    pub fn response(&self, id: &Value) -> HttpResponse {
        let mut resp = HttpResponse::json(
            self.http_status,
            &json!({"jsonrpc": "2.0", "id": id, "error": self.object()}),
        );
        if self.http_status == 401 {
            resp = resp.with_header("www-authenticate", "Bearer realm=\"crow\"");
        }
        resp
    }
}

/// A successful response to request `id`.
pub(crate) fn result(id: &Value, result: Value) -> HttpResponse {
    HttpResponse::json(200, &json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// A parsed JSON-RPC request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Envelope {
    pub id: Value,
    pub method: String,
    /// An object, or `Null` when the request has no `params`.
    pub params: Value,
}

impl Envelope {
    /// Parses a request body; an error comes with the id to answer it under (`null` when the
    /// request's own id cannot be used).
    pub fn parse(body: &[u8]) -> Result<Envelope, (Value, RpcError)> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| (Value::Null, RpcError::parse(format!("the body is not valid JSON: {e}"))))?;
        let obj = match v {
            Value::Object(o) => o,
            Value::Array(_) => {
                return Err((
                    Value::Null,
                    RpcError::invalid_request("batch requests are not supported: send one JSON-RPC request object"),
                ));
            }
            _ => {
                return Err((
                    Value::Null,
                    RpcError::invalid_request("the body must be a JSON-RPC 2.0 request object"),
                ));
            }
        };
        let id = match obj.get("id") {
            Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => id.clone(),
            Some(_) => {
                return Err((
                    Value::Null,
                    RpcError::invalid_request("\"id\" must be a string, a number or null"),
                ));
            }
            None => {
                return Err((
                    Value::Null,
                    RpcError::invalid_request("the request has no \"id\": A2A requests are not notifications"),
                ));
            }
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err((id, RpcError::invalid_request("\"jsonrpc\" must be \"2.0\"")));
        }
        let method = match obj.get("method") {
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            _ => {
                return Err((
                    id,
                    RpcError::invalid_request("\"method\" must be a string naming the method, such as \"SendMessage\""),
                ));
            }
        };
        let params = match obj.get("params") {
            None | Some(Value::Null) => Value::Null,
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => {
                return Err((
                    id,
                    RpcError::invalid_params(format!("the params of {method} must be a JSON object")),
                ));
            }
        };
        Ok(Envelope { id, method, params })
    }
}

/// Which protocol version a method belongs to, and so the shape of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// A2A 1.0 (`SendMessage`, ...).
    V1,
    /// A2A 0.3 and 0.2 (`message/send`, ...).
    V03,
}

/// The 1.0 name of a state (`TASK_STATE_COMPLETED`).
pub(crate) fn state_v1(s: TaskState) -> &'static str {
    match s {
        TaskState::Submitted => "TASK_STATE_SUBMITTED",
        TaskState::Working => "TASK_STATE_WORKING",
        TaskState::InputRequired => "TASK_STATE_INPUT_REQUIRED",
        TaskState::Completed => "TASK_STATE_COMPLETED",
        TaskState::Canceled => "TASK_STATE_CANCELED",
        TaskState::Failed => "TASK_STATE_FAILED",
        TaskState::Rejected => "TASK_STATE_REJECTED",
        TaskState::AuthRequired => "TASK_STATE_AUTH_REQUIRED",
    }
}

/// The 0.3 name of a state (`completed`, `input-required`).
pub(crate) fn state_v03(s: TaskState) -> &'static str {
    match s {
        TaskState::InputRequired => "input-required",
        TaskState::AuthRequired => "auth-required",
        s => s.as_str(),
    }
}

/// The 1.0 enum number of a state (ProtoJSON may send enums as numbers).
pub(crate) fn state_number(s: TaskState) -> u64 {
    match s {
        TaskState::Submitted => 1,
        TaskState::Working => 2,
        TaskState::Completed => 3,
        TaskState::Failed => 4,
        TaskState::Canceled => 5,
        TaskState::InputRequired => 6,
        TaskState::Rejected => 7,
        TaskState::AuthRequired => 8,
    }
}

/// Parses a state filter in either version's spelling; `Ok(None)` for "unspecified".
pub(crate) fn parse_state(s: &str) -> Result<Option<TaskState>, RpcError> {
    if s.is_empty() || s == "TASK_STATE_UNSPECIFIED" {
        return Ok(None);
    }
    TaskState::ALL
        .into_iter()
        .find(|t| state_v1(*t) == s || state_v03(*t) == s)
        .map(Some)
        .ok_or_else(|| {
            let names: Vec<&str> = TaskState::ALL.into_iter().map(state_v1).collect();
            RpcError::invalid_params(format!(
                "status {s:?} is not a task state; use one of {}",
                names.join(", ")
            ))
        })
}

/// What a message part is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    /// Structured data (`{"data": ...}` in 1.0, `{"kind": "data", "data": {...}}` in 0.3).
    Data(Value),
    /// Free text.
    Text(String),
    /// A file or anything else.
    Other,
}

/// Reads a part in either version's shape.
pub(crate) fn read_part(p: &Value) -> Part {
    let kind = p.get("kind").and_then(Value::as_str);
    if let Some(d) = p.get("data")
        && kind.is_none_or(|k| k == "data")
    {
        // 0.3 data parts hold objects: a wrapped value says so in its metadata.
        let wrapped = p.pointer("/metadata/data_part_compat") == Some(&Value::Bool(true));
        return Part::Data(match d.get("value") {
            Some(v) if wrapped => v.clone(),
            _ => d.clone(),
        });
    }
    if let Some(t) = p.get("text").and_then(Value::as_str)
        && kind.is_none_or(|k| k == "text")
    {
        return Part::Text(t.to_owned());
    }
    Part::Other
}

/// A part in the 1.0 shape (what is stored).
pub(crate) fn part_v1(p: &Value) -> Value {
    let mut out = Map::new();
    match read_part(p) {
        Part::Data(d) => {
            out.insert("data".into(), d);
            out.insert("mediaType".into(), json!("application/json"));
        }
        Part::Text(t) => {
            out.insert("text".into(), Value::String(t));
        }
        Part::Other => return p.clone(),
    }
    if let Some(Value::Object(m)) = p.get("metadata") {
        let mut m = m.clone();
        m.remove("data_part_compat");
        if !m.is_empty() {
            out.insert("metadata".into(), Value::Object(m));
        }
    }
    Value::Object(out)
}

/// A stored (1.0) part in the 0.3 shape. 0.3 data parts hold an object: anything else is
/// wrapped as `{"value": ...}` with `"data_part_compat": true` in the metadata (as the a2a-sdk
/// converts).
fn part_v03(p: &Value) -> Value {
    let metadata = p.get("metadata").filter(|m| m.is_object()).cloned();
    let mut out = match read_part(p) {
        Part::Data(Value::Object(d)) => json!({"kind": "data", "data": d}),
        Part::Data(d) => {
            let mut m = metadata.clone().unwrap_or_else(|| json!({}));
            m["data_part_compat"] = Value::Bool(true);
            return json!({"kind": "data", "data": {"value": d}, "metadata": m});
        }
        Part::Text(t) => json!({"kind": "text", "text": t}),
        Part::Other => return p.clone(),
    };
    if let Some(m) = metadata {
        out["metadata"] = m;
    }
    out
}

/// A message in the 1.0 shape (role `ROLE_USER`/`ROLE_AGENT`, parts as [`part_v1`]).
pub(crate) fn message_v1(message_id: &str, context_id: &str, task_id: &str, agent: bool, parts: &[Value]) -> Value {
    json!({
        "messageId": message_id,
        "contextId": context_id,
        "taskId": task_id,
        "role": if agent { "ROLE_AGENT" } else { "ROLE_USER" },
        "parts": parts.iter().map(part_v1).collect::<Vec<_>>(),
    })
}

/// A stored (1.0) message in the 0.3 shape.
fn message_v03(m: &Value) -> Value {
    let mut out = m.clone();
    if let Value::Object(o) = &mut out {
        o.insert("kind".into(), json!("message"));
        let role = match o.get("role").and_then(Value::as_str) {
            Some("ROLE_AGENT" | "agent") => "agent",
            _ => "user",
        };
        o.insert("role".into(), json!(role));
        if let Some(Value::Array(parts)) = o.get_mut("parts") {
            *parts = parts.iter().map(part_v03).collect();
        }
    }
    out
}

fn artifact_v03(a: &Value) -> Value {
    let mut out = a.clone();
    if let Some(Value::Array(parts)) = out.get_mut("parts") {
        *parts = parts.iter().map(part_v03).collect();
    }
    out
}

/// How much of a task to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct View {
    /// Only the last `n` messages of the history (`Some(0)`: none).
    pub history_length: Option<usize>,
    /// Leave the artifacts out.
    pub without_artifacts: bool,
}

/// A task as the protocol `version` answers it.
pub(crate) fn task(t: &AgentTask, version: Version, view: View) -> Value {
    let history: &[Value] = match view.history_length {
        Some(n) => &t.history[t.history.len().saturating_sub(n)..],
        None => &t.history,
    };
    let artifacts: &[Value] = if view.without_artifacts { &[] } else { &t.artifacts };
    let mut status = Map::new();
    let mut out = Map::new();
    out.insert("id".into(), json!(t.id));
    out.insert("contextId".into(), json!(t.context_id));
    match version {
        Version::V1 => {
            status.insert("state".into(), json!(state_v1(t.state)));
            if let Some(m) = &t.status_message {
                status.insert("message".into(), m.clone());
            }
            if !artifacts.is_empty() {
                out.insert("artifacts".into(), Value::Array(artifacts.to_vec()));
            }
            if !history.is_empty() {
                out.insert("history".into(), Value::Array(history.to_vec()));
            }
        }
        Version::V03 => {
            out.insert("kind".into(), json!("task"));
            status.insert("state".into(), json!(state_v03(t.state)));
            if let Some(m) = &t.status_message {
                status.insert("message".into(), message_v03(m));
            }
            if !artifacts.is_empty() {
                out.insert("artifacts".into(), artifacts.iter().map(artifact_v03).collect());
            }
            if !history.is_empty() {
                out.insert("history".into(), history.iter().map(message_v03).collect());
            }
        }
    }
    status.insert("timestamp".into(), json!(format_millis(t.updated_at)));
    out.insert("status".into(), Value::Object(status));
    out.insert(
        "metadata".into(),
        json!({"skill": t.skill, "createdAt": format_millis(t.created_at)}),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_checked_in_order() {
        let bad = |body: &str| Envelope::parse(body.as_bytes()).unwrap_err();
        assert_eq!(bad("{").1.code, codes::PARSE_ERROR);
        assert_eq!(bad("[]").1.code, codes::INVALID_REQUEST);
        assert_eq!(bad("7").1.code, codes::INVALID_REQUEST);
        assert_eq!(
            bad(r#"{"jsonrpc":"2.0","method":"GetTask"}"#).1.code,
            codes::INVALID_REQUEST
        );
        assert_eq!(bad(r#"{"jsonrpc":"2.0","id":{},"method":"GetTask"}"#).0, Value::Null);
        let (id, e) = bad(r#"{"jsonrpc":"1.0","id":3,"method":"GetTask"}"#);
        assert_eq!((id, e.code), (json!(3), codes::INVALID_REQUEST));
        let (id, e) = bad(r#"{"jsonrpc":"2.0","id":"a","method":""}"#);
        assert_eq!((id, e.code), (json!("a"), codes::INVALID_REQUEST));
        let (_, e) = bad(r#"{"jsonrpc":"2.0","id":"a","method":"GetTask","params":[1]}"#);
        assert_eq!(e.code, codes::INVALID_PARAMS);
        let ok = Envelope::parse(br#"{"jsonrpc":"2.0","id":null,"method":"ListTasks"}"#).unwrap();
        assert_eq!(
            (ok.id, ok.method.as_str(), ok.params),
            (Value::Null, "ListTasks", Value::Null)
        );
    }

    #[test]
    fn parts_read_in_both_shapes_and_convert() {
        assert_eq!(
            read_part(&json!({"data": {"skill": "x"}})),
            Part::Data(json!({"skill": "x"}))
        );
        assert_eq!(
            read_part(&json!({"kind": "data", "data": {"skill": "x"}})),
            Part::Data(json!({"skill": "x"}))
        );
        assert_eq!(
            read_part(&json!({"kind": "text", "text": "hi"})),
            Part::Text("hi".into())
        );
        assert_eq!(read_part(&json!({"text": "hi"})), Part::Text("hi".into()));
        assert_eq!(read_part(&json!({"kind": "file", "file": {"uri": "x"}})), Part::Other);
        assert_eq!(
            part_v1(&json!({"kind": "data", "data": {"a": 1}})),
            json!({"data": {"a": 1}, "mediaType": "application/json"})
        );
        let wrapped = part_v03(&json!({"data": [1, 2]}));
        assert_eq!(
            wrapped,
            json!({"kind": "data", "data": {"value": [1, 2]}, "metadata": {"data_part_compat": true}})
        );
        assert_eq!(read_part(&wrapped), Part::Data(json!([1, 2])));
        assert_eq!(
            part_v1(&wrapped),
            json!({"data": [1, 2], "mediaType": "application/json"})
        );
    }

    #[test]
    fn states_have_both_spellings() {
        for s in TaskState::ALL {
            assert_eq!(parse_state(state_v1(s)).unwrap(), Some(s));
            assert_eq!(parse_state(state_v03(s)).unwrap(), Some(s));
        }
        assert_eq!(parse_state("TASK_STATE_UNSPECIFIED").unwrap(), None);
        let numbers: Vec<u64> = TaskState::ALL.into_iter().map(state_number).collect();
        assert_eq!(numbers, [1, 2, 6, 3, 5, 4, 7, 8]);
        assert!(
            parse_state("done")
                .unwrap_err()
                .message
                .contains("TASK_STATE_COMPLETED")
        );
    }
}
