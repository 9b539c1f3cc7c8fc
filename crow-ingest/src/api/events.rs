//! What customers did: interactions, sessions, social mentions and CCTV frame events.

use serde_json::Value;

use super::openapi::{Denied, PageParams, ProblemDetails};
use super::problem::{backend, bad_param, limit, not_found, one, page, time_param};
use super::{Answer, Api, Call};
use crow_core::model::{EventType, FrameEvent, Interaction, Session, SocialMention};
use crow_core::ports::{InteractionQuery, MentionQuery, Page, SessionQuery};

/// Interactions, newest first.
#[utoipa::path(get, path = "/api/v1/interactions", tag = "events", operation_id = "list_interactions",
    params(
        PageParams,
        ("type" = Option<String>, Query, description = "page, track, identify, screen, group or alias"),
        ("name" = Option<String>, Query, description = "Event name (track) or page name"),
        ("session_id" = Option<String>, Query, description = "Only this session"),
        ("person_id" = Option<String>, Query, description = "Only this person (after identity stitching)"),
        ("since" = Option<String>, Query, description = "From this time (RFC 3339 or epoch ms)"),
        ("until" = Option<String>, Query, description = "Before this time (RFC 3339 or epoch ms)"),
    ),
    responses(
        (status = 200, description = "A page of interactions", body = Page<Interaction>),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_interactions(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let req = call.req;
    let event_type = match req.query_param("type") {
        Some(t) => Some(EventType::parse(&t).filter(|_| t.len() > 1).ok_or_else(|| {
            bad_param(
                "type",
                &format!("unknown type {t:?}; expected page, track, identify, screen, group or alias"),
            )
        })?),
        None => None,
    };
    let q = InteractionQuery {
        limit: limit(req)?,
        cursor: req.query_param("cursor"),
        event_type,
        name: req.query_param("name"),
        since: time_param(req, "since")?,
        until: time_param(req, "until")?,
        session_id: req.query_param("session_id"),
        person_id: req.query_param("person_id"),
    };
    Ok(page(
        &api.store
            .list_interactions(call.org(), &q)
            .await
            .map_err(cursor_or_backend)?,
    ))
}

/// One interaction by its (client-supplied) event id.
#[utoipa::path(get, path = "/api/v1/interactions/{id}", tag = "events", operation_id = "get_interaction",
    params(("id" = String, Path, description = "The event id")),
    responses(
        (status = 200, description = "The interaction", body = Interaction),
        Denied,
        (status = 404, description = "No such interaction in the org", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_interaction(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id").to_owned();
    let found = api
        .store
        .get_interactions(call.org(), std::slice::from_ref(&id))
        .await
        .map_err(backend)?;
    found.first().map(one).ok_or_else(|| not_found("interaction", &id))
}

/// Sessions, newest first.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "events", operation_id = "list_sessions",
    params(
        PageParams,
        ("person_id" = Option<String>, Query, description = "Only this person"),
        ("since" = Option<String>, Query, description = "Started at or after (RFC 3339 or epoch ms)"),
    ),
    responses(
        (status = 200, description = "A page of sessions", body = Page<Session>),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_sessions(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let req = call.req;
    let q = SessionQuery {
        limit: limit(req)?,
        cursor: req.query_param("cursor"),
        since: time_param(req, "since")?,
        person_id: req.query_param("person_id"),
    };
    Ok(page(
        &api.store
            .list_sessions(call.org(), &q)
            .await
            .map_err(cursor_or_backend)?,
    ))
}

/// One session.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "events", operation_id = "get_session",
    params(("id" = String, Path, description = "The session id")),
    responses(
        (status = 200, description = "The session", body = Session),
        Denied,
        (status = 404, description = "No such session in the org", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_session(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    match api.store.get_session(call.org(), id).await.map_err(backend)? {
        Some(s) => Ok(one(&s)),
        None => Err(not_found("session", id)),
    }
}

/// Social mentions, newest first.
#[utoipa::path(get, path = "/api/v1/mentions", tag = "events", operation_id = "list_mentions",
    params(
        PageParams,
        ("platform" = Option<String>, Query, description = "Only this platform (rss, mastodon, bluesky, reddit, hackernews)"),
        ("source" = Option<String>, Query, description = "Only this configured source"),
        ("selected" = Option<bool>, Query, description = "Only mentions the sentiment pre-filter selected (true) or passed over (false)"),
        ("since" = Option<String>, Query, description = "Posted at or after (RFC 3339 or epoch ms)"),
        ("until" = Option<String>, Query, description = "Posted before (RFC 3339 or epoch ms)"),
    ),
    responses(
        (status = 200, description = "A page of mentions", body = Page<SocialMention>),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_mentions(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let req = call.req;
    let selected = match req.query_param("selected").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(bad_param("selected", "must be true or false")),
    };
    let q = MentionQuery {
        limit: limit(req)?,
        cursor: req.query_param("cursor"),
        platform: req.query_param("platform"),
        source: req.query_param("source"),
        selected,
        since: time_param(req, "since")?,
        until: time_param(req, "until")?,
    };
    Ok(page(
        &api.store
            .list_mentions(call.org(), &q)
            .await
            .map_err(cursor_or_backend)?,
    ))
}

/// One social mention (`platform:platform_id`).
#[utoipa::path(get, path = "/api/v1/mentions/{id}", tag = "events", operation_id = "get_mention",
    params(("id" = String, Path, description = "The mention id, `platform:platform_id`")),
    responses(
        (status = 200, description = "The mention", body = SocialMention),
        Denied,
        (status = 404, description = "No such mention in the org", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_mention(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id").to_owned();
    let found = api
        .store
        .get_mentions(call.org(), std::slice::from_ref(&id))
        .await
        .map_err(backend)?;
    found.first().map(one).ok_or_else(|| not_found("mention", &id))
}

/// CCTV frame events (motion, presence, line crossings, occupancy, dwell), oldest first. They
/// carry counts and the object-store key of a masked keyframe, never an image.
#[utoipa::path(get, path = "/api/v1/cctv/events", tag = "events", operation_id = "list_frame_events",
    params(
        PageParams,
        ("camera" = Option<String>, Query, description = "Only this camera"),
        ("kind" = Option<String>, Query, description = "motion, presence, line_in, line_out, occupancy or dwell"),
        ("zone" = Option<String>, Query, description = "Only this zone or line"),
        ("since" = Option<String>, Query, description = "From this time (RFC 3339 or epoch ms)"),
        ("until" = Option<String>, Query, description = "Before this time (RFC 3339 or epoch ms)"),
    ),
    responses(
        (status = 200, description = "A page of frame events", body = Page<FrameEvent>),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_frame_events(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let req = call.req;
    let kind = match req.query_param("kind") {
        Some(k) => Some(serde_json::from_value(Value::String(k.clone())).map_err(|_| {
            bad_param(
                "kind",
                &format!("unknown kind {k:?}; expected motion, presence, line_in, line_out, occupancy or dwell"),
            )
        })?),
        None => None,
    };
    let q = crow_core::video::FrameEventQuery {
        limit: limit(req)?,
        cursor: req.query_param("cursor"),
        camera_id: req.query_param("camera"),
        kind,
        zone: req.query_param("zone"),
        since: time_param(req, "since")?,
        until: time_param(req, "until")?,
    };
    Ok(page(
        &api.store
            .list_frame_events(call.org(), &q)
            .await
            .map_err(cursor_or_backend)?,
    ))
}

/// A query the store refuses (an unreadable cursor, say) is the caller's mistake: a 400 naming it.
fn cursor_or_backend(e: crow_core::Error) -> crate::http::HttpResponse {
    match e {
        crow_core::Error::Invalid { field, reason } => bad_param(&field, &reason),
        e => backend(e),
    }
}
