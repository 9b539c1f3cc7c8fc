//! The OpenAPI 3.1 document of the REST API, generated from the handlers' `#[utoipa::path]`
//! annotations and the model types' `ToSchema` derives, served at `/api/v1/openapi.json`.
//!
//! A test checks that the document and [`super::routes::ROUTES`] list the same operations, so
//! a route cannot go undocumented (and the contract tests, which read their route list from the
//! served document, cannot miss one).

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::HttpResponse;

/// An RFC 9457 problem: every error answer of the API.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ProblemDetails {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong and what to change.
    pub detail: String,
    /// Per-field errors, when a field is at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// One field's problem.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field (or `row`/`field` of an import).
    pub field: Option<String>,
    /// What is wrong with it.
    pub reason: String,
}

/// The problems every authenticated route can answer: no valid credential (401), a role without
/// the route's permission (403), a store that cannot answer (503).
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)] // describes answers; the values are built as problem responses elsewhere
pub enum Denied {
    /// 401.
    #[response(
        status = 401,
        description = "No valid credential",
        content_type = "application/problem+json"
    )]
    Unauthorized(ProblemDetails),
    /// 403.
    #[response(
        status = 403,
        description = "The role lacks the permission",
        content_type = "application/problem+json"
    )]
    Forbidden(ProblemDetails),
    /// 503.
    #[response(
        status = 503,
        description = "The store is unavailable",
        content_type = "application/problem+json"
    )]
    Unavailable(ProblemDetails),
}

/// The paging parameters of every list.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes parameters; `problem::limit` and the stores read them
pub struct PageParams {
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A secret API key (`sk_...`) or a user session token (JWT, HS256 or EdDSA)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CROW REST API",
        version = "1",
        description = "Customer-interaction intelligence: events, sessions, mentions, CCTV counts, \
                       catalog, insights, exports, access control and GDPR requests. Errors are \
                       RFC 9457 problem+json; lists are cursor-paged.",
    ),
    servers((url = "/", description = "This server")),
    paths(
        super::accounts::get_org,
        super::accounts::update_org,
        super::accounts::list_users,
        super::accounts::create_user,
        super::accounts::get_user,
        super::accounts::update_user,
        super::accounts::delete_user,
        super::accounts::list_api_keys,
        super::accounts::create_api_key,
        super::accounts::get_api_key,
        super::accounts::revoke_api_key,
        super::accounts::list_audit,
        super::events::list_interactions,
        super::events::get_interaction,
        super::events::list_sessions,
        super::events::get_session,
        super::events::list_mentions,
        super::events::get_mention,
        super::events::list_frame_events,
        super::insights::traffic,
        super::insights::funnel,
        super::insights::sentiment,
        super::insights::entities,
        super::text::search,
        super::text::analyze,
        super::catalog::list_products,
        super::catalog::create_product,
        super::catalog::import_products,
        super::catalog::get_product,
        super::catalog::update_product,
        super::catalog::delete_product,
        super::catalog::list_categories,
        super::catalog::create_category,
        super::catalog::get_category,
        super::catalog::update_category,
        super::catalog::delete_category,
        super::exports::list_exports,
        super::exports::create_export,
        super::exports::get_export,
        super::exports::download_export,
        super::persons::export_person,
        super::persons::erase_person,
        openapi_json,
    ),
    components(schemas(ProblemDetails, FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "organization", description = "The org, its users, API keys and audit log"),
        (name = "events", description = "Interactions, sessions, social mentions, CCTV frame events"),
        (name = "catalog", description = "Products and categories"),
        (name = "insights", description = "Traffic, funnels, sentiment over time, most mentioned entities"),
        (name = "text", description = "Semantic search and text analysis"),
        (name = "exports", description = "CSV, JSON and Parquet exports"),
        (name = "persons", description = "GDPR access and erasure"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

/// This OpenAPI document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
#[allow(dead_code)]
fn openapi_json() {}

/// The document.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The document as JSON bytes (built once).
pub fn json() -> &'static [u8] {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    JSON.get_or_init(|| document().to_json().unwrap_or_default().into_bytes())
}

/// `GET /api/v1/openapi.json`.
pub fn serve() -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "public, max-age=300".into()),
        ],
        body: json().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::routes::ROUTES;
    use super::*;

    /// The document and the route table list the same operations.
    #[test]
    fn every_route_is_documented_and_every_documented_path_is_routed() {
        let doc = document();
        let mut documented = Vec::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PATCH", &item.patch),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
            ] {
                if op.is_some() {
                    documented.push((method.to_owned(), path.clone()));
                }
            }
        }
        let routed: Vec<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        for r in &routed {
            assert!(documented.contains(r), "{} {} is routed but not documented", r.0, r.1);
        }
        for d in &documented {
            assert!(routed.contains(d), "{} {} is documented but not routed", d.0, d.1);
        }
        let v: serde_json::Value = serde_json::from_slice(json()).unwrap();
        assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
        // the shared pieces expand where they are used
        let users = &v["paths"]["/api/v1/users"]["get"];
        let limit = users["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap();
        assert_eq!(
            (limit["in"].as_str(), limit["schema"]["maximum"].as_f64()),
            (Some("query"), Some(1000.0))
        );
        for status in ["401", "403", "503"] {
            let r = &users["responses"][status]["content"]["application/problem+json"];
            assert!(
                r["schema"]["$ref"].as_str().unwrap().ends_with("ProblemDetails"),
                "{status}: {users}"
            );
        }
    }
}
