//! The Segment-shaped event layout, shared by CROW's endpoint (with its compact names), the
//! Segment HTTP API and bulk import.

use crow_core::model::{Campaign, Context, EventType, Interaction, Library, PageContext, Screen, Source};
use serde_json::{Map, Value};

use super::common::{
    Bad, EventCx, R, check_event_id, check_strings, content_id, finish, id_value, interaction, ptr, set_times, take,
    take_id, take_obj, take_str, take_ts, take_u32,
};

const TYPES: &str = "expected one of page, track, identify, screen, group, alias";

/// Maps one event.
pub(crate) fn event(v: Value, cx: &EventCx<'_>) -> R<Interaction> {
    check_strings(&v, cx)?;
    let Value::Object(mut m) = v else {
        return Err(Bad::new("", "expected an event object"));
    };
    // Name missing fields the way the client names the others.
    let compact = cx.compact || m.contains_key("t");
    let n = |c: &'static str, l: &'static str| if compact { c } else { l };

    let id = match take(&mut m, &["i", "messageId"]) {
        Some((name, v)) => {
            let field = if name == "i" { "/i" } else { "/messageId" };
            let id = id_value(v)
                .map_err(|r| Bad::new(field, r))?
                .ok_or_else(|| Bad::new(field, "the event id is empty"))?;
            check_event_id(&id, field)?;
            id
        }
        None => content_id(cx.org_id, &m),
    };

    let event_type = match cx.forced_type {
        Some(t) => {
            m.remove("type");
            t
        }
        None => match take(&mut m, &["t", "type"]) {
            None => return Err(Bad::new(ptr(n("t", "type")), format!("missing: {TYPES}"))),
            Some((name, Value::String(s))) => EventType::parse(&s)
                .or_else(|| EventType::parse(&s.to_ascii_lowercase()))
                .ok_or_else(|| Bad::new(ptr(name), format!("unknown type `{}`: {TYPES}", short(&s))))?,
            Some((name, _)) => return Err(Bad::new(ptr(name), format!("expected a string: {TYPES}"))),
        },
    };

    let name = match event_type {
        EventType::Track => Some(
            take_str(&mut m, &["n", "event", "name"], "")?
                .ok_or_else(|| Bad::new(ptr(n("n", "event")), "missing: a track event needs its event name"))?,
        ),
        _ => take_str(&mut m, &["n", "name", "event"], "")?,
    };

    let anonymous_id = take_id(&mut m, &["a", "anonymousId"], "")?;
    let user_id = take_id(&mut m, &["u", "userId"], "")?;
    let previous_id = take_id(&mut m, &["pi", "previousId"], "")?;
    let group_id = take_id(&mut m, &["g", "groupId"], "")?;
    let mut session_id = take_id(&mut m, &["s", "sessionId"], "")?;
    match event_type {
        EventType::Alias => {
            if previous_id.is_none() {
                return Err(Bad::new(
                    ptr(n("pi", "previousId")),
                    "missing: an alias needs the previous id",
                ));
            }
            if user_id.is_none() {
                return Err(Bad::new(
                    ptr(n("u", "userId")),
                    "missing: an alias needs the new user id",
                ));
            }
        }
        _ if user_id.is_none() && anonymous_id.is_none() => {
            let reason = if compact {
                "missing: an event needs `u` or `a`"
            } else {
                "missing: an event needs userId or anonymousId"
            };
            return Err(Bad::new(ptr(n("u", "userId")), reason));
        }
        EventType::Group if group_id.is_none() => {
            return Err(Bad::new(
                ptr(n("g", "groupId")),
                "missing: a group event needs its group id",
            ));
        }
        _ => {}
    }

    let compact_props = take_obj(&mut m, &["p"], "")?;
    let long_props = take_obj(&mut m, &["properties"], "")?;
    let long_traits = take_obj(&mut m, &["traits"], "")?;
    let (properties, traits) = match event_type {
        EventType::Identify | EventType::Group => (long_props, merge(compact_props, long_traits)),
        _ => (merge(compact_props, long_props), long_traits),
    };
    let mut properties = properties.unwrap_or_default();
    let mut traits = traits.unwrap_or_default();

    let timestamp = take_ts(&mut m, &["ts", "timestamp"], "")?;
    let original = take_ts(&mut m, &["originalTimestamp"], "")?.or(timestamp);
    let sent_at = take_ts(&mut m, &["sa", "sentAt"], "")?.or(cx.sent_at);

    if matches!(event_type, EventType::Page | EventType::Screen)
        && let Some(category) = take_str(&mut m, &["category"], "")?
    {
        properties.entry("category").or_insert(Value::String(category));
    }

    let (ctx_name, ctx) = match take(&mut m, &["c", "context"]) {
        None => ("/context", None),
        Some((name, Value::Object(c))) => (if name == "c" { "/c" } else { "/context" }, Some(c)),
        Some((name, _)) => return Err(Bad::new(ptr(name), "expected an object")),
    };
    let ctx = match (ctx, cx.batch_context) {
        (Some(mut c), Some(batch)) => {
            for (k, v) in batch {
                if !c.contains_key(k) {
                    c.insert(k.clone(), v.clone());
                }
            }
            c
        }
        (Some(c), None) => c,
        (None, Some(batch)) => batch.clone(),
        (None, None) => Map::new(),
    };
    let mut parts = context(ctx, ctx_name)?;

    if event_type == EventType::Page {
        // analytics.js repeats the page in the properties
        let page = parts.context.page.get_or_insert_with(PageContext::default);
        for (slot, key) in [
            (&mut page.url, "url"),
            (&mut page.path, "path"),
            (&mut page.referrer, "referrer"),
            (&mut page.title, "title"),
            (&mut page.search, "search"),
        ] {
            if slot.is_none()
                && let Some(Value::String(s)) = properties.get(key)
                && !s.is_empty()
            {
                *slot = Some(s.clone());
            }
        }
    }
    if let Some(t) = parts.traits.take() {
        if event_type == EventType::Identify && traits.is_empty() {
            traits = t;
        } else {
            parts.context.extra.insert("traits".into(), Value::Object(t));
        }
    }
    if session_id.is_none() {
        session_id = parts.session_id.take();
    }

    let browser = match cx.source {
        Source::Crow => true,
        Source::Segment => parts
            .context
            .library
            .as_ref()
            .is_some_and(|l| matches!(l.name.as_str(), "analytics.js" | "analytics-next")),
        Source::Posthog | Source::Import => false,
    };
    let ua = parts.ua.as_deref().or(if browser { cx.request_ua } else { None });
    let ip = parts.ip.as_deref().or(if browser { cx.request_ip } else { None });

    let mut e = interaction(id, event_type, cx);
    e.name = name;
    e.anonymous_id = anonymous_id;
    e.user_id = user_id;
    e.previous_id = previous_id;
    e.group_id = group_id;
    e.session_id = session_id;
    e.properties = properties;
    e.traits = std::mem::take(&mut traits);
    set_times(&mut e, original, sent_at, cx.received_at);
    e.context = std::mem::take(&mut parts.context);
    Ok(finish(e, ua, ip, cx))
}

fn merge(a: Option<Map<String, Value>>, b: Option<Map<String, Value>>) -> Option<Map<String, Value>> {
    match (a, b) {
        (Some(mut a), Some(b)) => {
            for (k, v) in b {
                a.entry(k).or_insert(v);
            }
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A context, and what is taken out of it before it is stored.
#[derive(Default)]
struct Parts {
    context: Context,
    ua: Option<String>,
    ip: Option<String>,
    traits: Option<Map<String, Value>>,
    session_id: Option<String>,
}

fn context(mut c: Map<String, Value>, at: &str) -> R<Parts> {
    let mut parts = Parts::default();
    if c.is_empty() {
        return Ok(parts);
    }
    let mut page = PageContext::default();
    if let Some(mut p) = take_obj(&mut c, &["page"], at)? {
        let at = format!("{at}/page");
        page.url = take_str(&mut p, &["url"], &at)?;
        page.path = take_str(&mut p, &["path"], &at)?;
        page.referrer = take_str(&mut p, &["referrer"], &at)?;
        page.title = take_str(&mut p, &["title"], &at)?;
        page.search = take_str(&mut p, &["search"], &at)?;
    }
    if let Some(u) = take_str(&mut c, &["u", "url"], at)? {
        page.url.get_or_insert(u);
    }
    match take(&mut c, &["r", "referrer"]) {
        None => {}
        Some((_, Value::String(s))) if page.referrer.is_none() && !s.is_empty() => page.referrer = Some(s),
        Some((_, Value::String(_))) => {}
        // Segment's mobile `context.referrer` is an object ({type, name, url, link}).
        Some((_, v @ Value::Object(_))) => {
            c.insert("referrer".into(), v);
        }
        Some((name, _)) => return Err(Bad::new(format!("{at}{}", ptr(name)), "expected a string")),
    }
    if let Some(t) = take_str(&mut c, &["ti", "title"], at)? {
        page.title.get_or_insert(t);
    }
    if page != PageContext::default() {
        parts.context.page = Some(page);
    }
    parts.context.locale = take_str(&mut c, &["l", "locale"], at)?;
    parts.context.timezone = take_str(&mut c, &["tz", "timezone"], at)?;

    let mut screen = Screen {
        width: take_u32(&mut c, &["sw"], at)?,
        height: take_u32(&mut c, &["sh"], at)?,
        density: None,
    };
    if let Some(mut s) = take_obj(&mut c, &["screen"], at)? {
        let at = format!("{at}/screen");
        screen.width = screen.width.or(take_u32(&mut s, &["width"], &at)?);
        screen.height = screen.height.or(take_u32(&mut s, &["height"], &at)?);
        screen.density = match take(&mut s, &["density"]) {
            None => None,
            Some((_, v)) => Some(
                v.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .ok_or_else(|| Bad::new(format!("{at}/density"), "expected a non-negative number"))?,
            ),
        };
    }
    if screen != Screen::default() {
        parts.context.screen = Some(screen);
    }

    if let Some(mut cm) = take_obj(&mut c, &["campaign"], at)? {
        let at = format!("{at}/campaign");
        let campaign = Campaign {
            name: take_str(&mut cm, &["name"], &at)?,
            source: take_str(&mut cm, &["source"], &at)?,
            medium: take_str(&mut cm, &["medium"], &at)?,
            term: take_str(&mut cm, &["term"], &at)?,
            content: take_str(&mut cm, &["content"], &at)?,
            click_id: None,
        };
        if !campaign.is_empty() {
            parts.context.campaign = Some(campaign);
        }
    }
    match take(&mut c, &["library"]) {
        None => {}
        Some((_, Value::String(name))) => parts.context.library = Some(Library { name, version: None }),
        Some((_, Value::Object(mut l))) => {
            let at = format!("{at}/library");
            if let Some(name) = take_str(&mut l, &["name"], &at)? {
                let version = match take(&mut l, &["version"]) {
                    Some((_, Value::String(s))) => Some(s),
                    Some((_, Value::Number(n))) => Some(n.to_string()),
                    _ => None,
                };
                parts.context.library = Some(Library { name, version });
            }
        }
        Some(_) => return Err(Bad::new(format!("{at}/library"), "expected an object {name, version}")),
    }
    parts.ua = take_str(&mut c, &["ua", "userAgent"], at)?;
    // Client hints are a fingerprint; the parsed user agent says what CROW keeps.
    c.remove("userAgentData");
    parts.ip = take_str(&mut c, &["ip"], at)?;
    parts.traits = take_obj(&mut c, &["traits"], at)?;
    parts.session_id = take_id(&mut c, &["sessionId"], at)?;
    // Precise location and advertising ids identify a person: never stored.
    if let Some(Value::Object(loc)) = c.get_mut("location") {
        loc.remove("latitude");
        loc.remove("longitude");
    }
    if let Some(Value::Object(dev)) = c.get_mut("device") {
        dev.remove("advertisingId");
    }
    parts.context.extra = c;
    Ok(parts)
}
