//! Text intelligence over the API: semantic search and on-demand analysis.

use serde_json::{Value, json};

use super::openapi::ProblemDetails;
use super::problem::{backend, bad_param};
use super::{Answer, Api, Call};
use crate::http::HttpResponse;
use crow_core::vector::{IndexKind, MetadataFilter};

/// What `GET /api/v1/search` answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct SearchAnswer {
    /// The index searched: interactions, products or social.
    index: String,
    /// The text searched for.
    query: String,
    /// How many hits were asked for.
    k: u32,
    /// Hits, best first.
    data: Vec<crate::search::SearchHit>,
}

/// The body of `POST /api/v1/analyze` (read by hand below, for precise messages; this type
/// only describes it in the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct AnalyzeRequest {
    /// 1 to 100 texts.
    texts: Option<Vec<String>>,
    /// One text (instead of `texts`).
    text: Option<String>,
    /// Also return sentence embeddings.
    embed: Option<bool>,
}

/// What `POST /api/v1/analyze` answers (documentation of [`AnalysisLine`]'s JSON).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct AnalyzeAnswer {
    /// `model` or `lexicon`.
    tier: String,
    /// One analysis per text, in input order.
    data: Vec<AnalysisItem>,
}

/// One text's analysis.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct AnalysisItem {
    #[schema(inline)]
    #[serde(flatten)]
    analysis: crow_core::ports::TextAnalysis,
    /// The sentence embedding (with `embed: true`).
    embedding: Option<Vec<f32>>,
}

/// `GET /api/v1/search`: the org's records nearest in meaning to a text.
///
/// Parameters: `q` (the text, required), `index` (`interactions` (default), `products` or
/// `social`), `k` (1..=100, default 10), `filter` (repeatable, ANDed). Answers
/// `{"index", "query", "k", "data": [{"id", "score", "snippet", "metadata"}]}`, best first. A
/// bad parameter is a 400 naming it; no embedding model is a 503. The index keeps orgs apart.
#[utoipa::path(get, path = "/api/v1/search", tag = "text", operation_id = "search",
    params(
        ("q" = String, Query, min_length = 1, description = "The text to search for"),
        ("index" = Option<String>, Query, description = "interactions (default), products or social"),
        ("k" = Option<u32>, Query, minimum = 1, maximum = 100, description = "How many hits (default 10)"),
        ("filter" = Option<Vec<String>>, Query, description = "Metadata filters, ANDed: `key=value`, `key!=value`, `key>=v`, `key<v`, `key=[a,b]`, or Vectorize's JSON syntax"),
    ),
    responses(
        (status = 200, description = "Hits, best first", body = SearchAnswer),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The role lacks the permission", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "No embedding model, or the store is unavailable", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn search(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let req = call.req;
    let org = call.org();
    let (indexes, embedder) = (api.indexes, api.embedder);
    let query = req
        .query_param("q")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| bad_param("q", "the text to search for is required"))?;
    let index = match req.query_param("index") {
        Some(i) => i.parse::<IndexKind>().map_err(|e| bad_param("index", &e.to_string()))?,
        None => IndexKind::Interactions,
    };
    let k = match req.query_param("k") {
        Some(k) => k
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=crow_core::vector::MAX_TOP_K).contains(k))
            .ok_or_else(|| bad_param("k", "expected an integer in 1..=100"))?,
        None => 10,
    };
    let filter =
        MetadataFilter::parse_exprs(req.query_params("filter")).map_err(|e| bad_param("filter", &e.to_string()))?;
    let (Some(indexes), Some(embedder)) = (indexes, embedder) else {
        return Err(HttpResponse::problem(
            503,
            "search_unavailable",
            "Semantic search unavailable",
            "semantic search needs an embedding model and vector indexes, and this server has none \
             (`crow serve`: run `make models` and restart with --models; the Worker: bind Workers AI \
             and the three Vectorize indexes)",
            None,
        ));
    };
    let request = crate::search::SearchRequest {
        query: query.clone(),
        index,
        k,
        filter,
    };
    let hits = crate::search::search(indexes, embedder, org, &request)
        .await
        .map_err(|e| match e {
            crow_core::Error::Invalid { field, reason } => bad_param(&field, &reason),
            other => backend(other),
        })?;
    let answer = SearchAnswer {
        index: index.to_string(),
        query,
        k: k as u32,
        data: hits,
    };
    Ok(HttpResponse::json(
        200,
        &serde_json::to_value(&answer).unwrap_or(Value::Null),
    ))
}

/// Texts per `POST /api/v1/analyze` request.
pub const ANALYZE_MAX_TEXTS: usize = 100;
/// Body size of `POST /api/v1/analyze` (a 1 MiB text fits, with JSON escaping to spare).
pub const ANALYZE_MAX_BODY: usize = 2 << 20;

/// `POST /api/v1/analyze`: sentiment, entities (with the key's org catalog), language and key
/// phrases of texts; with `"embed": true` also their sentence embeddings.
///
/// Body: `{"texts": ["...", ...], "embed": false}` (or `{"text": "..."}`), at most
/// [`ANALYZE_MAX_TEXTS`] texts and [`ANALYZE_MAX_BODY`] bytes; answers
/// `{"tier": "model"|"lexicon", "data": [{"language", "sentiment": {label, score, tier},
/// "entities": [...], "key_phrases": [...], "embedding"?}]}` in input order. A body that is not
/// UTF-8 or not such JSON is a 400 naming the problem; `embed` without an embedding model is a 503.
/// Nothing is stored. Authentication as for the read API (the secret API key).
#[utoipa::path(post, path = "/api/v1/analyze", tag = "text", operation_id = "analyze",
    request_body(content = AnalyzeRequest, description = "`texts` (1 to 100) or `text`; `embed` adds sentence embeddings"),
    responses(
        (status = 200, description = "One analysis per text, in input order", body = AnalyzeAnswer),
        (status = 400, description = "A bad body", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The role lacks the permission", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 2 MiB", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "No embedding model for `embed`, or the analyzer is unavailable", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn analyze(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let req = call.req;
    let org = call.org();
    let Some(analyzer) = api.analyzer else {
        return Err(HttpResponse::problem(
            503,
            "analyzer_unavailable",
            "Text analysis unavailable",
            "this server runs without a text analyzer",
            None,
        ));
    };
    let (embedder, tier) = (api.embedder, api.tier);
    let invalid = |detail: String| HttpResponse::problem(400, "invalid_body", "Invalid body", detail, None);
    if req.body.len() > ANALYZE_MAX_BODY {
        return Err(HttpResponse::problem(
            413,
            "payload_too_large",
            "Payload too large",
            format!(
                "the body is {} bytes; at most {ANALYZE_MAX_BODY} are accepted",
                req.body.len()
            ),
            None,
        ));
    }
    let text = std::str::from_utf8(&req.body).map_err(|e| {
        HttpResponse::problem(
            400,
            "invalid_utf8",
            "Body is not UTF-8",
            format!(
                "the body is not valid UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
            None,
        )
    })?;
    let body: Value = serde_json::from_str(text).map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(invalid("expected an object like {\"texts\": [\"...\"]}".into()));
    };
    if let Some(k) = body.keys().find(|k| !["texts", "text", "embed"].contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown field `{k}`; expected `texts`, `text` or `embed`"
        )));
    }
    let texts: Vec<String> = match (body.get("texts"), body.get("text")) {
        (Some(Value::Array(items)), None) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("texts[{i}] must be a string")))
            })
            .collect::<Result<_, _>>()?,
        (None, Some(Value::String(t))) => vec![t.clone()],
        (Some(_), Some(_)) => return Err(invalid("send either `texts` or `text`, not both".into())),
        _ => {
            return Err(invalid(
                "`texts` must be an array of strings (or `text` a string)".into(),
            ));
        }
    };
    if texts.is_empty() || texts.len() > ANALYZE_MAX_TEXTS {
        return Err(invalid(format!(
            "send 1 to {ANALYZE_MAX_TEXTS} texts (got {})",
            texts.len()
        )));
    }
    let embed = match body.get("embed") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(invalid("`embed` must be true or false".into())),
    };
    let embeddings = match (embed, embedder) {
        (false, _) => None,
        (true, Some(e)) => Some(e.embed(&texts).await.map_err(backend)?),
        (true, None) => {
            return Err(HttpResponse::problem(
                503,
                "model_unavailable",
                "Embedding model unavailable",
                "this server runs the lexicon tier only: no embedding model is installed (run `make models`)",
                None,
            ));
        }
    };
    let analyses = analyzer.analyze(org, &texts).await.map_err(backend)?;
    let data: Vec<AnalysisLine<'_>> = analyses
        .iter()
        .enumerate()
        .map(|(i, analysis)| AnalysisLine {
            analysis,
            embedding: embeddings.as_ref().map(|e| e[i].as_slice()),
            heads: None,
        })
        .collect();
    Ok(HttpResponse::json(200, &json!({"tier": tier, "data": data})))
}

/// One text's analysis as `crow analyze` and `POST /api/v1/analyze` print it: `language`,
/// `sentiment`, `entities`, `key_phrases` (in that order), then `embedding` when asked for.
#[derive(Debug, serde::Serialize)]
pub struct AnalysisLine<'a> {
    /// The analysis.
    #[serde(flatten)]
    pub analysis: &'a crow_core::ports::TextAnalysis,
    /// The sentence embedding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<&'a [f32]>,
    /// Verdicts of user-trained heads, by task (`crow analyze --head`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads: Option<Value>,
}
