//! The org itself, its users and API keys, and its audit log.
//!
//! Role changes follow [`Role::can_grant`]: a member grants only roles at or below their own,
//! and cannot change, remove or revoke a member (or key) ranked above them.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::openapi::{Denied, PageParams, ProblemDetails};
use super::problem::{
    backend, bad_param, forbidden_detail, invalid_body, json_body, limit, not_found, one, page, time_param,
};
use super::{Answer, Api, Call};
use crate::http::HttpResponse;
use crow_core::access::{ApiKey, AuditEntry, AuditQuery, NewApiKey, Role, User};
use crow_core::keys;
use crow_core::model::{KeyKind, Organization};
use crow_core::ports::Page;

/// `PATCH /api/v1/organization`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OrgUpdate {
    /// The new display name (1 to 200 characters).
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// `POST /api/v1/users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    /// Email address, unique within the org.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// Display name.
    #[serde(default)]
    name: Option<String>,
    /// Role (at or below the caller's own).
    role: Role,
}

/// `PATCH /api/v1/users/{id}`: the fields to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserUpdate {
    /// New display name; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    name: Option<Option<String>>,
    /// New role (at or below the caller's own).
    #[serde(default)]
    role: Option<Role>,
}

/// `POST /api/v1/api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    /// A label (up to 100 characters).
    #[serde(default)]
    name: Option<String>,
    /// `secret` (default: reads and manages with `role`) or `write` (public, ingest only).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "secret")]
    kind: Option<KeyKind>,
    /// The role of a secret key (at or below the caller's own); default `viewer`.
    #[serde(default)]
    role: Option<Role>,
}

/// A new key, with its secret: shown in this answer only, stored only as a hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CreatedKey {
    /// The key as listed from now on.
    #[serde(flatten)]
    #[schema(inline)]
    key: ApiKey,
    /// The whole key: copy it now, it is not shown again.
    secret: String,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), HttpResponse> {
    let n = value.chars().count();
    if value.trim().is_empty() || n > max {
        return Err(invalid_body(
            Some(field),
            format!("must be 1 to {max} characters (got {n})"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid_body(Some(field), "must not contain control characters"));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<(), HttpResponse> {
    check_text("email", email, 254)?;
    let ok = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
    }) && !email.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(invalid_body(Some("email"), "is not an email address"))
    }
}

/// A member may give only roles at or below their own.
fn check_grant(call: &Call<'_>, role: Role) -> Result<(), HttpResponse> {
    let me = call.principal().role;
    if me.can_grant(role) {
        Ok(())
    } else {
        Err(forbidden_detail(format!(
            "a {me} cannot grant the {role} role; only roles at or below one's own"
        )))
    }
}

/// A member may not act on a member or key ranked above them.
fn check_rank(call: &Call<'_>, theirs: Role, what: &str) -> Result<(), HttpResponse> {
    let me = call.principal().role;
    if theirs >= me {
        Ok(())
    } else {
        Err(forbidden_detail(format!(
            "a {me} cannot change a {what} with the {theirs} role"
        )))
    }
}

/// The caller's organization.
#[utoipa::path(get, path = "/api/v1/organization", tag = "organization", operation_id = "get_organization",
    responses(
        (status = 200, description = "The organization", body = Organization),
        (status = 401, description = "No valid credential", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "The organization no longer exists", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_org(api: &Api<'_>, call: &Call<'_>) -> Answer {
    match api.store.get_org(call.org()).await.map_err(backend)? {
        Some(o) => Ok(one(&o)),
        None => Err(not_found("organization", call.org())),
    }
}

/// Renames the caller's organization (owners only).
#[utoipa::path(patch, path = "/api/v1/organization", tag = "organization", operation_id = "update_organization",
    request_body = OrgUpdate,
    responses(
        (status = 200, description = "The organization as changed", body = Organization),
        (status = 400, description = "A bad body", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
        (status = 404, description = "The organization no longer exists", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn update_org(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let body: OrgUpdate = json_body(call.req)?;
    check_text("name", &body.name, 200)?;
    let org = api
        .store
        .update_org(call.org(), body.name.trim())
        .await
        .map_err(backend)?;
    call.audit_target(call.org());
    Ok(one(&org))
}

/// The org's users, by email.
#[utoipa::path(get, path = "/api/v1/users", tag = "organization", operation_id = "list_users",
    params(
        PageParams,
    ),
    responses(
        (status = 200, description = "A page of users", body = Page<User>),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_users(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let cursor = call.query("cursor");
    let p = api
        .store
        .list_users(call.org(), limit(call.req)?, cursor.as_deref())
        .await
        .map_err(param_or_backend)?;
    Ok(page(&p))
}

/// Adds a user with a role at or below the caller's own.
#[utoipa::path(post, path = "/api/v1/users", tag = "organization", operation_id = "create_user",
    request_body = NewUser,
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 400, description = "A bad body", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The role lacks the permission, or cannot grant that role", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken in the org", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn create_user(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let body: NewUser = json_body(call.req)?;
    check_email(&body.email)?;
    if let Some(n) = &body.name {
        check_text("name", n, 200)?;
    }
    check_grant(call, body.role)?;
    let user = User {
        id: keys::new_user_id(&api.random_bytes()),
        email: body.email.trim().to_lowercase(),
        name: body.name.map(|n| n.trim().to_owned()),
        role: body.role,
        created_at: api.now,
    };
    api.store.create_user(call.org(), &user).await.map_err(backend)?;
    call.audit_target(&user.id);
    call.audit_detail(json!({"role": user.role}));
    Ok(HttpResponse::json(201, &super::render(&user)).with_header("location", format!("/api/v1/users/{}", user.id)))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "organization", operation_id = "get_user",
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user", body = User),
        Denied,
        (status = 404, description = "No such user in the org", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_user(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    match api.store.get_user(call.org(), id).await.map_err(backend)? {
        Some(u) => Ok(one(&u)),
        None => Err(not_found("user", id)),
    }
}

/// Changes a user's name or role.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "organization", operation_id = "update_user",
    params(("id" = String, Path, description = "The user id")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The user as changed", body = User),
        (status = 400, description = "A bad body", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The role lacks the permission, or the user ranks above the caller", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the org", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn update_user(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    let body: UserUpdate = json_body(call.req)?;
    if let Some(Some(n)) = &body.name {
        check_text("name", n, 200)?;
    }
    let current = api
        .store
        .get_user(call.org(), id)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("user", id))?;
    check_rank(call, current.role, "user")?;
    if let Some(role) = body.role {
        check_grant(call, role)?;
    }
    let name = body.name.map(|n| n.map(|n| n.trim().to_owned()));
    let user = api
        .store
        .update_user(call.org(), id, name, body.role)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("user", id))?;
    call.audit_detail(json!({"role": body.role}));
    Ok(one(&user))
}

/// Removes a user.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "organization", operation_id = "delete_user",
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid credential", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The role lacks the permission, or the user ranks above the caller", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the org", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn delete_user(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    let current = api
        .store
        .get_user(call.org(), id)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("user", id))?;
    check_rank(call, current.role, "user")?;
    if !api.store.delete_user(call.org(), id).await.map_err(backend)? {
        return Err(not_found("user", id));
    }
    Ok(no_content())
}

/// The org's API keys (revoked ones too), newest first. Secrets are never listed.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "organization", operation_id = "list_api_keys",
    params(
        PageParams,
    ),
    responses(
        (status = 200, description = "A page of keys", body = Page<ApiKey>),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_api_keys(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let cursor = call.query("cursor");
    let p = api
        .store
        .list_api_keys(call.org(), limit(call.req)?, cursor.as_deref())
        .await
        .map_err(param_or_backend)?;
    Ok(page(&p))
}

/// Creates a key. The whole secret is in this answer only; the store keeps its hash.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "organization", operation_id = "create_api_key",
    request_body = NewKey,
    responses(
        (status = 201, description = "The new key and its secret (shown once)", body = CreatedKey),
        (status = 400, description = "A bad body", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The role lacks the permission, or cannot grant that role", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "A key with this prefix exists (retry)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn create_api_key(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let body: NewKey = if call.req.body.is_empty() {
        NewKey {
            name: None,
            kind: None,
            role: None,
        }
    } else {
        json_body(call.req)?
    };
    if let Some(n) = &body.name {
        check_text("name", n, 100)?;
    }
    let kind = body.kind.unwrap_or(KeyKind::Secret);
    let role = match (kind, body.role) {
        (KeyKind::Write, Some(_)) => {
            return Err(invalid_body(
                Some("role"),
                "a write key only ingests and carries no role",
            ));
        }
        (KeyKind::Write, None) => Role::Viewer,
        (KeyKind::Secret, role) => role.unwrap_or(Role::Viewer),
    };
    check_grant(call, role)?;
    let (secret, prefix, hash) = keys::new_key(kind, &api.random_bytes());
    let new = NewApiKey {
        prefix,
        hash,
        kind,
        role,
        name: body.name.map(|n| n.trim().to_owned()),
        created_at: api.now,
    };
    let key = api.store.create_api_key(call.org(), &new).await.map_err(backend)?;
    call.audit_target(&key.prefix);
    call.audit_detail(json!({"kind": kind, "role": role}));
    let location = format!("/api/v1/api-keys/{}", key.prefix);
    let created = CreatedKey { key, secret };
    Ok(HttpResponse::json(201, &super::render(&created)).with_header("location", location))
}

/// One key by its public prefix.
#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "organization", operation_id = "get_api_key",
    params(("id" = String, Path, description = "The key's public prefix")),
    responses(
        (status = 200, description = "The key", body = ApiKey),
        Denied,
        (status = 404, description = "No such key in the org", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_api_key(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    match api.store.get_api_key(call.org(), id).await.map_err(backend)? {
        Some(k) => Ok(one(&k)),
        None => Err(not_found("API key", id)),
    }
}

/// Revokes a key: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "organization", operation_id = "revoke_api_key",
    params(("id" = String, Path, description = "The key's public prefix")),
    responses(
        (status = 200, description = "The key as revoked", body = ApiKey),
        (status = 401, description = "No valid credential", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The role lacks the permission, or the key ranks above the caller", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such key in the org", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn revoke_api_key(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    let current = api
        .store
        .get_api_key(call.org(), id)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("API key", id))?;
    if current.kind == KeyKind::Secret {
        check_rank(call, current.role, "key")?;
    }
    let key = api
        .store
        .revoke_api_key(call.org(), id, api.now)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("API key", id))?;
    Ok(one(&key))
}

/// The org's audit log, newest first: one row per mutation.
#[utoipa::path(get, path = "/api/v1/audit-log", tag = "organization", operation_id = "list_audit_log",
    params(
        PageParams,
        ("action" = Option<String>, Query, description = "Only this action, e.g. `product.create`"),
        ("actor" = Option<String>, Query, description = "Only this actor, e.g. `key:0123456789ab` or `user:usr_...`"),
        ("since" = Option<String>, Query, description = "From this time (RFC 3339 or epoch ms)"),
    ),
    responses(
        (status = 200, description = "A page of audit rows", body = Page<AuditEntry>),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_audit(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let q = AuditQuery {
        limit: limit(call.req)?,
        cursor: call.query("cursor"),
        action: call.query("action"),
        actor: call.query("actor"),
        since: time_param(call.req, "since")?,
    };
    let p = api.store.list_audit(call.org(), &q).await.map_err(param_or_backend)?;
    Ok(page(&p))
}

fn no_content() -> HttpResponse {
    HttpResponse {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn param_or_backend(e: crow_core::Error) -> HttpResponse {
    match e {
        crow_core::Error::Invalid { field, reason } => bad_param(&field, &reason),
        e => backend(e),
    }
}
