//! Plain HTTP types, so the native server (axum) and the Worker route requests to the same
//! crate functions in a few lines each.

use serde_json::{Value, json};

/// A request as a shell hands it to CROW.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path without the query string, e.g. `/v1/batch`.
    pub path: String,
    /// Raw query string without `?`, if any.
    pub query: Option<String>,
    /// Headers with lowercase names.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes, as received (possibly compressed).
    pub body: Vec<u8>,
    /// The client address as seen by the shell (before any proxy header).
    pub peer_ip: Option<std::net::IpAddr>,
}

impl HttpRequest {
    /// First header value with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a query parameter (in order), percent-decoded.
    pub fn query_params(&self, name: &str) -> Vec<String> {
        let Some(q) = self.query.as_deref() else {
            return Vec::new();
        };
        form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    /// First query parameter with this name, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A response for the shell to send.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A JSON response.
    pub fn json(status: u16, value: &Value) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// The 404 problem for a request no route took (every shell answers it the same way).
    pub fn no_route(req: &HttpRequest) -> Self {
        HttpResponse::problem(
            404,
            "not_found",
            "Not found",
            format!("no route {} {}", req.method, req.path),
            None,
        )
    }

    /// An RFC 9457 `application/problem+json` response. `kind` becomes the `type` URI
    /// (`/problems/{kind}`, resolved against the server's address) and names the error for machines.
    pub fn problem(status: u16, kind: &str, title: &str, detail: impl Into<String>, extra: Option<Value>) -> Self {
        let mut body = json!({
            "type": format!("/problems/{kind}"),
            "title": title,
            "status": status,
            "detail": detail.into(),
        });
        if let (Some(Value::Object(extra)), Value::Object(map)) = (extra, &mut body) {
            map.extend(extra);
        }
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/problem+json".into())],
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The body parsed as JSON (for tests).
    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}
