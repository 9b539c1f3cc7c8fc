//! Aggregates over the org's data: traffic (visitors, sessions, top pages and referrers), a
//! conversion funnel over named steps with drop-off, sentiment over time, and the entities
//! texts mention most. The store computes them ([`crow_core::ports::EventStore::traffic_summary`],
//! `funnel`, `sentiment_series`, `top_entities`); these handlers parse, call one function, and
//! render.

use serde::Serialize;

use super::openapi::{Denied, ProblemDetails};
use super::problem::{backend, bad_param, render, time_param};
use super::{Answer, Api, Call};
use crate::http::HttpResponse;
use crow_core::model::{EventType, Millis};
use crow_core::ports::{EntityCount, EntityQuery, FunnelStep, Interval, MAX_TOP_ENTITIES, SentimentSource};
use crow_core::time::format_millis;

const DAY_MS: Millis = 86_400_000;
/// Default window: the last 30 days.
const DEFAULT_WINDOW_MS: Millis = 30 * DAY_MS;
/// Longest window an insight covers (about 3 years).
const MAX_WINDOW_MS: Millis = 1_100 * DAY_MS;
/// Most buckets a sentiment series returns.
const MAX_BUCKETS: i64 = 2_000;

/// A page path and its views.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct PathCount {
    /// Page path.
    path: String,
    /// Page views.
    views: u64,
}

/// A referrer (or referrer class) and its sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ReferrerCount {
    /// Referring site, or class (`direct`, `search`, `social`, `email`, `paid`, `internal`, `other`).
    referrer: String,
    /// Sessions it started.
    sessions: u64,
}

/// `GET /api/v1/insights/traffic`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct TrafficAnswer {
    /// Window start (inclusive).
    since: String,
    /// Window end (exclusive).
    until: String,
    /// Events stored.
    events: u64,
    /// Distinct people (after identity stitching), bots excluded.
    visitors: u64,
    /// Sessions, bots excluded.
    sessions: u64,
    /// Page and screen views, bots excluded.
    page_views: u64,
    /// Events from crawlers.
    bot_events: u64,
    /// PII values scrubbed at ingest.
    pii_scrubbed: u64,
    /// Most viewed pages.
    top_pages: Vec<PathCount>,
    /// Sessions per referring site.
    top_referrers: Vec<ReferrerCount>,
    /// Sessions per referrer class.
    referrer_classes: Vec<ReferrerCount>,
}

/// One funnel step's result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct FunnelStepAnswer {
    /// The step as given (`page:/pricing`, `track:Signed Up`, `identify`).
    label: String,
    /// People who reached it after every earlier step, in order.
    people: u64,
    /// Share of the previous step's people lost here (0 for the first step).
    drop_off: f64,
    /// Share of the first step's people who got here.
    conversion: f64,
}

/// `GET /api/v1/insights/funnel`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct FunnelAnswer {
    /// Window start (inclusive).
    since: String,
    /// Window end (exclusive).
    until: String,
    /// The steps, in order.
    steps: Vec<FunnelStepAnswer>,
}

/// One bucket of a sentiment series.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SentimentPoint {
    /// Bucket start.
    #[schema(format = DateTime)]
    start: String,
    /// Texts analyzed.
    count: u64,
    /// Positive texts.
    positive: u64,
    /// Negative texts.
    negative: u64,
    /// Neutral texts.
    neutral: u64,
    /// Mean sentiment score in [-1, 1].
    mean_score: f64,
}

/// `GET /api/v1/insights/sentiment`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SentimentAnswer {
    /// `interactions` or `mentions`.
    source: String,
    /// `hour`, `day` or `week`.
    interval: String,
    /// Window start (inclusive).
    since: String,
    /// Window end (exclusive).
    until: String,
    /// Buckets with at least one text, oldest first.
    data: Vec<SentimentPoint>,
}

/// `GET /api/v1/insights/entities`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct EntitiesAnswer {
    /// `interactions` or `mentions`.
    source: String,
    /// Window start (inclusive).
    since: String,
    /// Window end (exclusive).
    until: String,
    /// The entities, most mentioned first (ties by name). Personal data is never counted.
    data: Vec<EntityCount>,
}

/// The `source` parameter: `interactions` (default) or `mentions`.
fn source_param(call: &Call<'_>) -> Result<SentimentSource, HttpResponse> {
    match call.query("source").as_deref() {
        None | Some("interactions") => Ok(SentimentSource::Interactions),
        Some("mentions") => Ok(SentimentSource::Mentions),
        Some(_) => Err(bad_param("source", "must be interactions or mentions")),
    }
}

fn source_name(source: SentimentSource) -> String {
    match source {
        SentimentSource::Interactions => "interactions".into(),
        SentimentSource::Mentions => "mentions".into(),
    }
}

/// The `since`/`until` window: defaults to the last 30 days, at most about 3 years.
fn window(api: &Api<'_>, call: &Call<'_>) -> Result<(Millis, Millis), HttpResponse> {
    let until = time_param(call.req, "until")?.unwrap_or(api.now + 1);
    let since = time_param(call.req, "since")?.unwrap_or(until.saturating_sub(DEFAULT_WINDOW_MS));
    if since >= until {
        return Err(bad_param("since", "must be before until"));
    }
    if until - since > MAX_WINDOW_MS {
        return Err(bad_param("since", "the window is at most 1100 days"));
    }
    Ok((since, until))
}

fn json<T: Serialize>(value: &T) -> HttpResponse {
    HttpResponse::json(200, &render(value))
}

/// Traffic in a window: events, visitors, sessions, page views, top pages and referrers.
#[utoipa::path(get, path = "/api/v1/insights/traffic", tag = "insights", operation_id = "traffic_insights",
    params(
        ("since" = Option<String>, Query, description = "Window start (RFC 3339 or epoch ms; default 30 days before until)"),
        ("until" = Option<String>, Query, description = "Window end (default now)"),
        ("top" = Option<u32>, Query, minimum = 1, maximum = 100, description = "How many top pages and referrers (default 10)"),
    ),
    responses(
        (status = 200, description = "The traffic summary", body = TrafficAnswer),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn traffic(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let (since, until) = window(api, call)?;
    let top = match call.query("top") {
        None => 10,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|t| (1..=100).contains(t))
            .ok_or_else(|| bad_param("top", "must be an integer from 1 to 100"))?,
    };
    let t = api
        .store
        .traffic_summary(call.org(), since, until, top)
        .await
        .map_err(backend)?;
    let counts = |v: Vec<(String, u64)>| {
        v.into_iter()
            .map(|(referrer, sessions)| ReferrerCount { referrer, sessions })
            .collect()
    };
    Ok(json(&TrafficAnswer {
        since: format_millis(since),
        until: format_millis(until),
        events: t.events,
        visitors: t.visitors,
        sessions: t.sessions,
        page_views: t.page_views,
        bot_events: t.bot_events,
        pii_scrubbed: t.pii_scrubbed,
        top_pages: t
            .top_pages
            .into_iter()
            .map(|(path, views)| PathCount { path, views })
            .collect(),
        top_referrers: counts(t.top_referrers.into_iter().take(top).collect()),
        referrer_classes: counts(t.referrer_classes),
    }))
}

/// Parses a funnel step: `page:/path`, `track:Event Name`, `screen:Name`, or a bare type.
fn parse_step(raw: &str) -> Result<FunnelStep, HttpResponse> {
    let (kind, name) = match raw.split_once(':') {
        Some((k, n)) => (k, Some(n)),
        None => (raw, None),
    };
    let event_type = EventType::parse(kind).filter(|_| kind.len() > 1).ok_or_else(|| {
        bad_param(
            "step",
            &format!("{raw:?}: expected TYPE or TYPE:NAME with TYPE page, track, identify, screen, group or alias"),
        )
    })?;
    if name.is_some_and(|n| n.is_empty() || n.len() > 500) {
        return Err(bad_param(
            "step",
            &format!("{raw:?}: the name after ':' must be 1 to 500 bytes"),
        ));
    }
    Ok(FunnelStep {
        label: raw.to_owned(),
        event_type,
        name: name.map(str::to_owned),
    })
}

/// An ordered conversion funnel over people: who did step 1, then step 2, ... with drop-off.
#[utoipa::path(get, path = "/api/v1/insights/funnel", tag = "insights", operation_id = "funnel_insights",
    params(
        ("step" = Vec<String>, Query, min_items = 2, max_items = 10, description = "2 to 10 steps in order: `page:/pricing`, `track:Signed Up`, `identify`"),
        ("since" = Option<String>, Query, description = "Window start (RFC 3339 or epoch ms; default 30 days before until)"),
        ("until" = Option<String>, Query, description = "Window end (default now)"),
    ),
    responses(
        (status = 200, description = "People per step", body = FunnelAnswer),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn funnel(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let raw = call.req.query_params("step");
    if !(2..=10).contains(&raw.len()) {
        return Err(bad_param(
            "step",
            &format!("give 2 to 10 `step` parameters in order (got {})", raw.len()),
        ));
    }
    let steps = raw.iter().map(|s| parse_step(s)).collect::<Result<Vec<_>, _>>()?;
    let (since, until) = window(api, call)?;
    let rows = api
        .store
        .funnel(call.org(), &steps, since, until)
        .await
        .map_err(backend)?;
    let first = rows.first().map(|r| r.people).unwrap_or(0);
    Ok(json(&FunnelAnswer {
        since: format_millis(since),
        until: format_millis(until),
        steps: rows
            .into_iter()
            .map(|r| FunnelStepAnswer {
                conversion: if first > 0 { r.people as f64 / first as f64 } else { 0.0 },
                label: r.label,
                people: r.people,
                drop_off: r.drop_off,
            })
            .collect(),
    }))
}

/// Sentiment over time of the org's texts (interactions) or social mentions.
#[utoipa::path(get, path = "/api/v1/insights/sentiment", tag = "insights", operation_id = "sentiment_insights",
    params(
        ("source" = Option<String>, Query, description = "`interactions` (default) or `mentions`"),
        ("interval" = Option<String>, Query, description = "`hour`, `day` (default) or `week`"),
        ("since" = Option<String>, Query, description = "Window start (RFC 3339 or epoch ms; default 30 days before until)"),
        ("until" = Option<String>, Query, description = "Window end (default now)"),
    ),
    responses(
        (status = 200, description = "Sentiment per bucket", body = SentimentAnswer),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn sentiment(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let source = source_param(call)?;
    let interval = match call.query("interval") {
        None => Interval::default(),
        Some(i) => Interval::parse(&i).ok_or_else(|| bad_param("interval", "must be hour, day or week"))?,
    };
    let bucket = interval.millis();
    let (since, until) = window(api, call)?;
    // Buckets align to whole intervals (UTC), so two windows agree on their buckets.
    let since = since.div_euclid(bucket) * bucket;
    if (until - since) / bucket > MAX_BUCKETS {
        return Err(bad_param(
            "interval",
            &format!("the window holds more than {MAX_BUCKETS} buckets; use a longer interval"),
        ));
    }
    let buckets = api
        .store
        .sentiment_series(call.org(), source, since, until, bucket)
        .await
        .map_err(backend)?;
    Ok(json(&SentimentAnswer {
        source: source_name(source),
        interval: interval.as_str().into(),
        since: format_millis(since),
        until: format_millis(until),
        data: buckets
            .into_iter()
            .map(|b| SentimentPoint {
                start: format_millis(b.start),
                count: b.count,
                positive: b.positive,
                negative: b.negative,
                neutral: b.neutral,
                mean_score: b.mean_score,
            })
            .collect(),
    }))
}

/// Longest `kind` accepted, in bytes.
const MAX_KIND_BYTES: usize = 100;

/// The entities the org's texts (interactions) or social mentions name most: products, brands,
/// competitors and the like, with the sentiment of the texts that name them.
#[utoipa::path(get, path = "/api/v1/insights/entities", tag = "insights", operation_id = "entity_insights",
    params(
        ("source" = Option<String>, Query, description = "`interactions` (default) or `mentions`"),
        ("kind" = Option<String>, Query, description = "Only entities of this kind: `product`, `brand`, `competitor`, ..."),
        ("since" = Option<String>, Query, description = "Window start (RFC 3339 or epoch ms; default 30 days before until)"),
        ("until" = Option<String>, Query, description = "Window end (default now)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "How many entities (default 20)"),
    ),
    responses(
        (status = 200, description = "The entities, most mentioned first", body = EntitiesAnswer),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn entities(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let source = source_param(call)?;
    let kind = match call.query("kind") {
        None => None,
        Some(k) if !k.is_empty() && k.len() <= MAX_KIND_BYTES => Some(k),
        Some(_) => return Err(bad_param("kind", "must be 1 to 100 bytes")),
    };
    let limit = match call.query("limit") {
        None => 20,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_TOP_ENTITIES).contains(l))
            .ok_or_else(|| bad_param("limit", "must be an integer from 1 to 100"))?,
    };
    let (since, until) = window(api, call)?;
    let query = EntityQuery {
        source,
        kind,
        since,
        until,
        limit,
    };
    let data = api.store.top_entities(call.org(), &query).await.map_err(backend)?;
    Ok(json(&EntitiesAnswer {
        source: source_name(source),
        since: format_millis(since),
        until: format_millis(until),
        data,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funnel_steps_parse() {
        let s = parse_step("page:/pricing").unwrap();
        assert_eq!((s.event_type, s.name.as_deref()), (EventType::Page, Some("/pricing")));
        assert_eq!(parse_step("identify").unwrap().name, None);
        assert!(parse_step("p").is_err() && parse_step("nope:x").is_err() && parse_step("track:").is_err());
    }
}
