//! Exports: `POST` records an export and queues its `export-report` job (one store write);
//! `GET` reports where it stands and, once it succeeded, a signed download link that expires
//! ([`super::auth::sign_link`]); the download itself needs no bearer credential, only the link.
//!
//! Files: CSV (`text/csv`), JSON as NDJSON (`application/x-ndjson`, one object per line) or
//! Parquet (`application/vnd.apache.parquet`, when CROW is built with the crow-ingest feature
//! `parquet`); see [`crate::workflows::export_report`] for their layout.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::openapi::{Denied, PageParams, ProblemDetails};
use super::problem::{Problem, backend, bad_param, conflict, invalid_body, json_body, limit, not_found};
use super::{Answer, Api, Call};
use crate::http::HttpResponse;
use crate::jobs::{EXPORT_REPORT, ExportJob};
use crow_core::export::{Export, ExportFilters, ExportFormat, ExportResource, ExportStatus};
use crow_core::model::{EventType, FrameEventKind, Millis};
use crow_core::ports::{NewJob, Page, queues};
use crow_core::time::{format_millis, parse_timestamp};

/// The times `since`/`until` take: years 0000 to 9999, as RFC 3339 writes them.
const TIMES: std::ops::RangeInclusive<Millis> = -62_167_219_200_000..=253_402_300_799_999;

/// `POST /api/v1/exports`: what to export. The filters besides `since`/`until` apply to the
/// resources that have the field (`event_type`, `name`, `session_id`, `person_id`:
/// interactions; `person_id`: sessions; `platform`, `source`: mentions; `category`, `brand`:
/// products; `camera_id`, `kind`, `zone`: frame events); another resource refuses them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewExport {
    /// What to export.
    resource: ExportResource,
    /// The file format (`parquet` only when this server was built with it).
    format: ExportFormat,
    /// Rows at or after this time (RFC 3339).
    #[serde(default)]
    #[schema(format = DateTime)]
    since: Option<String>,
    /// Rows before this time (RFC 3339).
    #[serde(default)]
    #[schema(format = DateTime)]
    until: Option<String>,
    /// Interactions of this type.
    #[serde(default)]
    event_type: Option<EventType>,
    /// Interactions with this event name.
    #[serde(default)]
    name: Option<String>,
    /// Interactions of this session.
    #[serde(default)]
    session_id: Option<String>,
    /// Interactions or sessions of this person.
    #[serde(default)]
    person_id: Option<String>,
    /// Mentions from this platform.
    #[serde(default)]
    platform: Option<String>,
    /// Mentions from this configured source.
    #[serde(default)]
    source: Option<String>,
    /// Frame events of this camera.
    #[serde(default)]
    camera_id: Option<String>,
    /// Frame events of this kind.
    #[serde(default)]
    kind: Option<FrameEventKind>,
    /// Frame events of this zone.
    #[serde(default)]
    zone: Option<String>,
    /// Products of this category.
    #[serde(default)]
    category: Option<String>,
    /// Products of this brand.
    #[serde(default)]
    brand: Option<String>,
}

/// The filters an export was asked with.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub(super) struct ExportFiltersView {
    /// Rows at or after.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    since: Option<String>,
    /// Rows before.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    until: Option<String>,
    /// Interactions of this type.
    #[serde(skip_serializing_if = "Option::is_none")]
    event_type: Option<EventType>,
    /// Interactions with this event name.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// Interactions of this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    /// Interactions or sessions of this person.
    #[serde(skip_serializing_if = "Option::is_none")]
    person_id: Option<String>,
    /// Mentions from this platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<String>,
    /// Mentions from this source.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    /// Frame events of this camera.
    #[serde(skip_serializing_if = "Option::is_none")]
    camera_id: Option<String>,
    /// Frame events of this kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<FrameEventKind>,
    /// Frame events of this zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    zone: Option<String>,
    /// Products of this category.
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    /// Products of this brand.
    #[serde(skip_serializing_if = "Option::is_none")]
    brand: Option<String>,
}

/// An export and where it stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ExportView {
    /// Export id.
    id: String,
    /// What it contains.
    resource: ExportResource,
    /// The file format.
    format: ExportFormat,
    /// `queued`, `running`, `succeeded` or `failed`.
    status: ExportStatus,
    /// The filters it was asked with.
    filters: ExportFiltersView,
    /// When it was asked for.
    #[schema(format = DateTime)]
    created_at: String,
    /// When the worker started writing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    started_at: Option<String>,
    /// When it succeeded or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    finished_at: Option<String>,
    /// Rows written (succeeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
    /// File size in bytes (succeeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    /// Why it failed, or the last error while it is retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Where to download the file (succeeded): a signed link that needs no credential and
    /// expires at `download_expires_at`; ask again for a fresh one.
    #[serde(skip_serializing_if = "Option::is_none")]
    download_url: Option<String>,
    /// When `download_url` stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    download_expires_at: Option<String>,
}

/// A page of exports.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ExportPage {
    /// The exports, newest first.
    data: Vec<ExportView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

fn view(api: &Api<'_>, e: &Export) -> ExportView {
    let f = &e.filters;
    let (download_url, download_expires_at) = if e.status == ExportStatus::Succeeded {
        let (token, expires) = super::auth::sign_link(api, &e.org_id, &e.id);
        let token: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
        let id: String = form_urlencoded::byte_serialize(e.id.as_bytes()).collect();
        (
            Some(format!("/api/v1/exports/{id}/download?token={token}")),
            Some(format_millis(expires)),
        )
    } else {
        (None, None)
    };
    ExportView {
        id: e.id.clone(),
        resource: e.resource,
        format: e.format,
        status: e.status,
        filters: ExportFiltersView {
            since: f.since.map(format_millis),
            until: f.until.map(format_millis),
            event_type: f.event_type,
            name: f.name.clone(),
            session_id: f.session_id.clone(),
            person_id: f.person_id.clone(),
            platform: f.platform.clone(),
            source: f.source.clone(),
            camera_id: f.camera_id.clone(),
            kind: f.kind,
            zone: f.zone.clone(),
            category: f.category.clone(),
            brand: f.brand.clone(),
        },
        created_at: format_millis(e.created_at),
        started_at: e.started_at.map(format_millis),
        finished_at: e.finished_at.map(format_millis),
        rows: e.rows,
        bytes: e.bytes,
        error: e.error.clone(),
        download_url,
        download_expires_at,
    }
}

fn time(field: &str, v: Option<&str>) -> Result<Option<Millis>, HttpResponse> {
    match v {
        None => Ok(None),
        Some(s) => match parse_timestamp(s) {
            Some(ms) if TIMES.contains(&ms) => Ok(Some(ms)),
            _ => Err(invalid_body(
                Some(field),
                format!("{s:?} is not an RFC 3339 time (years 0000 to 9999)"),
            )),
        },
    }
}

/// The filters of a request, checked against the resource.
fn filters(body: &NewExport) -> Result<ExportFilters, HttpResponse> {
    let f = ExportFilters {
        since: time("since", body.since.as_deref())?,
        until: time("until", body.until.as_deref())?,
        event_type: body.event_type,
        name: body.name.clone(),
        session_id: body.session_id.clone(),
        person_id: body.person_id.clone(),
        platform: body.platform.clone(),
        source: body.source.clone(),
        camera_id: body.camera_id.clone(),
        kind: body.kind,
        zone: body.zone.clone(),
        category: body.category.clone(),
        brand: body.brand.clone(),
    };
    if let (Some(s), Some(u)) = (f.since, f.until)
        && s >= u
    {
        return Err(invalid_body(Some("until"), "must be after since"));
    }
    let allowed = ExportFilters::allowed(body.resource);
    if let Some(field) = f.set_fields().into_iter().find(|x| !allowed.contains(x)) {
        return Err(invalid_body(
            Some(field),
            format!(
                "does not apply to {}; its filters are since, until{}",
                body.resource.as_str(),
                allowed.iter().map(|a| format!(", {a}")).collect::<String>()
            ),
        ));
    }
    Ok(f)
}

/// A fresh export id: `exp_` and 96 random bits (a clash is a `Conflict` the caller retries).
fn export_id(api: &Api<'_>) -> String {
    format!("exp_{}", hex::encode(api.random_bytes::<12>()))
}

/// The org's exports, newest first.
#[utoipa::path(get, path = "/api/v1/exports", tag = "exports", operation_id = "list_exports",
    params(
        PageParams,
    ),
    responses(
        (status = 200, description = "A page of exports", body = ExportPage),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_exports(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let cursor = call.query("cursor");
    let p: Page<Export> = api
        .store
        .list_exports(call.org(), limit(call.req)?, cursor.as_deref())
        .await
        .map_err(|e| match e {
            crow_core::Error::Invalid { field, reason } => bad_param(&field, &reason),
            e => backend(e),
        })?;
    let body = ExportPage {
        data: p.data.iter().map(|e| view(api, e)).collect(),
        next_cursor: p.next_cursor,
    };
    Ok(HttpResponse::json(200, &json!(body)))
}

/// Asks for an export: answers `202` at once with the queued export; poll it until it
/// `succeeded` (then it carries a `download_url`) or `failed`.
#[utoipa::path(post, path = "/api/v1/exports", tag = "exports", operation_id = "create_export",
    request_body = NewExport,
    responses(
        (status = 202, description = "The export, queued", body = ExportView,
            headers(("location" = String, description = "The export's URL, to poll"))),
        (status = 400, description = "A bad body, a filter the resource does not take, or a format this server cannot write", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
        (status = 413, description = "The body is too large", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn create_export(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let body: NewExport = json_body(call.req)?;
    if body.format == ExportFormat::Parquet && !cfg!(feature = "parquet") {
        return Err(invalid_body(
            Some("format"),
            "this server was built without Parquet support (crow-ingest feature `parquet`); ask for csv or json",
        ));
    }
    let filters = filters(&body)?;
    let mut attempt = 0;
    loop {
        let export = Export {
            id: export_id(api),
            org_id: call.org().to_owned(),
            resource: body.resource,
            format: body.format,
            filters: filters.clone(),
            status: ExportStatus::Queued,
            created_at: api.now,
            started_at: None,
            finished_at: None,
            rows: None,
            bytes: None,
            error: None,
            key: None,
        };
        let job = ExportJob {
            org_id: export.org_id.clone(),
            export_id: export.id.clone(),
        };
        let job = NewJob::new(queues::EXPORT, EXPORT_REPORT, json!(job));
        match api.store.create_export(call.org(), &export, vec![job]).await {
            Ok(()) => {
                call.audit_target(&export.id);
                call.audit_detail(json!({"resource": export.resource, "format": export.format}));
                let location = format!("/api/v1/exports/{}", export.id);
                return Ok(HttpResponse::json(202, &json!(view(api, &export))).with_header("location", location));
            }
            Err(crow_core::Error::Conflict(_)) if attempt < 3 => attempt += 1,
            Err(e) => return Err(backend(e)),
        }
    }
}

/// One export and where it stands.
#[utoipa::path(get, path = "/api/v1/exports/{id}", tag = "exports", operation_id = "get_export",
    params(("id" = String, Path, description = "The export id")),
    responses(
        (status = 200, description = "The export", body = ExportView),
        Denied,
        (status = 404, description = "No such export in the org", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_export(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    match api.store.get_export(call.org(), id).await.map_err(backend)? {
        Some(e) => Ok(HttpResponse::json(200, &json!(view(api, &e)))),
        None => Err(not_found("export", id)),
    }
}

/// Downloads an export's file through the signed link its `download_url` gives (no bearer
/// credential). An expired, forged or other export's token is a `403`.
#[utoipa::path(get, path = "/api/v1/exports/{id}/download", tag = "exports", operation_id = "download_export",
    params(
        ("id" = String, Path, description = "The export id"),
        ("token" = String, Query, description = "The signed token of `download_url`"),
    ),
    responses(
        (status = 200, description = "The file, as an attachment", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
            (String = "application/vnd.apache.parquet"),
        ), headers(("content-disposition" = String, description = "attachment; filename=..."))),
        (status = 403, description = "A missing, malformed, forged or expired token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such export, or its file is gone", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The export has not succeeded", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(())
)]
pub(super) async fn download_export(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    let org = super::auth::check_link(api, call.req, id)?;
    let export = api
        .store
        .get_export(&org, id)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("export", id))?;
    let key = match (&export.status, &export.key) {
        (ExportStatus::Succeeded, Some(key)) => key,
        _ => {
            return Err(conflict(format!(
                "export {id} is {}; only a succeeded export can be downloaded",
                export.status.as_str()
            )));
        }
    };
    let bytes = api.blobs.get(key).await.map_err(backend)?.ok_or_else(|| {
        Problem::new(
            404,
            "not_found",
            "Not found",
            format!("the file of export {id} is gone"),
        )
        .response()
    })?;
    let content_type = match export.format {
        ExportFormat::Csv => "text/csv",
        f => f.content_type(),
    };
    let filename = format!(
        "{}-{}.{}",
        export.resource.as_str(),
        export.id,
        export.format.extension()
    );
    let filename: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), content_type.into()),
            (
                "content-disposition".into(),
                format!("attachment; filename=\"{filename}\""),
            ),
            ("cache-control".into(), "private, no-store".into()),
        ],
        body: bytes,
    })
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    #[derive(OpenApi)]
    #[openapi(paths(
        super::super::catalog::list_products,
        super::super::catalog::create_product,
        super::super::catalog::import_products,
        super::super::catalog::get_product,
        super::super::catalog::update_product,
        super::super::catalog::delete_product,
        super::super::catalog::list_categories,
        super::super::catalog::create_category,
        super::super::catalog::get_category,
        super::super::catalog::update_category,
        super::super::catalog::delete_category,
        super::list_exports,
        super::create_export,
        super::get_export,
        super::download_export,
    ))]
    struct Doc;

    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    /// The catalog and export operations document themselves completely: every schema they
    /// reference is in the document, every timestamp is a date-time string.
    #[test]
    fn catalog_and_export_operations_are_documented() {
        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.trim_start_matches("#/components/schemas/");
            assert!(schemas.get(name).is_some(), "{r} is not in the document");
        }
        for name in [
            "NewProduct",
            "ProductPatch",
            "ImportResult",
            "ImportProblem",
            "Category",
            "ExportView",
        ] {
            assert!(schemas.get(name).is_some(), "{name}");
        }
        let view = &schemas["ExportView"]["properties"];
        assert_eq!(view["created_at"]["format"], "date-time");
        assert_eq!(schemas["Category"]["properties"]["created_at"]["format"], "date-time");
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 8);
        let import = &paths["/api/v1/products/import"]["post"]["requestBody"]["content"];
        assert!(import.get("text/csv").is_some() && import.get("application/json").is_some());
        let download = &paths["/api/v1/exports/{id}/download"]["get"];
        assert!(download["responses"].get("401").is_none());
        assert!(download["responses"]["403"].is_object());
    }
}
