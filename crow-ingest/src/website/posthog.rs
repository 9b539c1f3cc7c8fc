//! PostHog's capture event layout (posthog-python, posthog-js).

use crow_core::model::{Campaign, DeviceClass, EventType, Interaction, Library, PageContext, Screen, UserAgentInfo};
use serde_json::Value;

use super::common::{
    Bad, CLICK_IDS, EventCx, R, check_event_id, check_strings, content_id, finish, id_value, interaction, set_times,
    take, take_id, take_obj, take_str, take_ts, take_u32,
};

/// The project key of a PostHog request without `api_key`: the first event's `token` property
/// (what posthog-js sends), or its top-level `api_key`/`token`.
pub(crate) fn token(events: &[Value]) -> Option<String> {
    let first = events.first()?;
    [
        first.pointer("/properties/token"),
        first.get("api_key"),
        first.get("token"),
    ]
    .into_iter()
    .flatten()
    .find_map(|v| v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned))
}

/// Bookkeeping properties that carry nothing once mapped.
const DROPPED: [&str; 8] = [
    "token",
    "$insert_id",
    "$host",
    "$referring_domain",
    "$geoip_disable",
    "$is_server",
    "$process_person_profile",
    "$lib_custom_api_host",
];

/// Maps one event.
pub(crate) fn event(v: Value, cx: &EventCx<'_>) -> R<Interaction> {
    check_strings(&v, cx)?;
    let Value::Object(mut m) = v else {
        return Err(Bad::new("", "expected an event object"));
    };

    let id = match take(&mut m, &["uuid"]) {
        Some((_, v)) => id_value(v)
            .map_err(|r| Bad::new("/uuid", r))?
            .ok_or_else(|| Bad::new("/uuid", "the event id is empty"))?,
        None => match m
            .get("properties")
            .and_then(|p| p.get("$insert_id"))
            .and_then(Value::as_str)
        {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => content_id(cx.org_id, &m),
        },
    };
    check_event_id(&id, "/uuid")?;

    let event = take_str(&mut m, &["event"], "")?.ok_or_else(|| Bad::new("/event", "missing: the event name"))?;
    let mut props = take_obj(&mut m, &["properties"], "")?.unwrap_or_default();
    const P: &str = "/properties";
    let distinct_id = match take_id(&mut m, &["distinct_id"], "")? {
        Some(d) => {
            props.remove("distinct_id");
            Some(d)
        }
        None => take_id(&mut props, &["distinct_id"], P)?,
    }
    .ok_or_else(|| Bad::new("/distinct_id", "missing: every PostHog event needs a distinct_id"))?;
    let identified = matches!(props.remove("$is_identified"), Some(Value::Bool(true)));
    let anon_distinct_id = take_id(&mut props, &["$anon_distinct_id"], P)?;
    let device_id = take_id(&mut props, &["$device_id"], P)?;

    let mut traits = take_obj(&mut m, &["$set_once"], "")?.unwrap_or_default();
    if let Some(once) = take_obj(&mut props, &["$set_once"], P)? {
        for (k, v) in once {
            traits.entry(k).or_insert(v);
        }
    }
    for set in [take_obj(&mut m, &["$set"], "")?, take_obj(&mut props, &["$set"], P)?]
        .into_iter()
        .flatten()
    {
        traits.extend(set);
    }

    let (event_type, name) = match event.as_str() {
        "$pageview" => (EventType::Page, None),
        "$screen" => (EventType::Screen, take_str(&mut props, &["$screen_name"], P)?),
        "$identify" | "$set" | "$set_once" => (EventType::Identify, None),
        "$create_alias" => (EventType::Alias, None),
        "$groupidentify" => (EventType::Group, None),
        _ => (EventType::Track, Some(event.clone())),
    };

    let mut e = interaction(id, event_type, cx);
    e.name = name;
    match event_type {
        EventType::Alias => {
            e.previous_id = Some(distinct_id);
            e.user_id = Some(
                take_id(&mut props, &["alias"], P)?
                    .ok_or_else(|| Bad::new("/properties/alias", "missing: the alias (new id) of $create_alias"))?,
            );
        }
        _ if event == "$identify" || identified => {
            let anon = if event == "$identify" {
                anon_distinct_id.or(device_id)
            } else {
                device_id.or(anon_distinct_id)
            };
            e.anonymous_id = anon.filter(|a| *a != distinct_id);
            e.user_id = Some(distinct_id);
        }
        _ => e.anonymous_id = Some(distinct_id),
    }
    if event_type == EventType::Group {
        e.group_id = Some(
            take_id(&mut props, &["$group_key"], P)?
                .ok_or_else(|| Bad::new("/properties/$group_key", "missing: the group key of $groupidentify"))?,
        );
        if let Some(t) = take_str(&mut props, &["$group_type"], P)? {
            props.insert("group_type".into(), Value::String(t));
        }
        if let Some(set) = take_obj(&mut props, &["$group_set"], P)? {
            traits.extend(set);
        }
    }
    e.session_id = take_id(&mut props, &["$session_id"], P)?;

    // Page.
    let page = PageContext {
        url: take_str(&mut props, &["$current_url"], P)?,
        path: take_str(&mut props, &["$pathname"], P)?,
        referrer: take_str(&mut props, &["$referrer"], P)?.filter(|r| r != "$direct"),
        title: take_str(&mut props, &["$title"], P)?,
        search: None,
    };
    if page != PageContext::default() {
        e.context.page = Some(page);
    }

    // Library; posthog-js (`web`) requests come from the visitor's browser.
    let lib = take_str(&mut props, &["$lib"], P)?;
    let lib_version = match take(&mut props, &["$lib_version"]) {
        Some((_, Value::String(s))) => Some(s),
        Some((_, Value::Number(n))) => Some(n.to_string()),
        _ => None,
    };
    let browser = lib.as_deref() == Some("web");
    if let Some(name) = lib {
        e.context.library = Some(Library {
            name,
            version: lib_version,
        });
    }

    // User agent: the raw string when there is one (parsed in `finish`), else PostHog's fields
    // — but only for clients on the visitor's device: server SDKs (posthog-python adds
    // `$is_server`) report the *server's* `$os`, which stays an ordinary property.
    let raw_ua = take_str(&mut props, &["$raw_user_agent"], P)?;
    let on_device = browser || props.contains_key("$browser") || props.contains_key("$device_type");
    let server = matches!(props.get("$is_server"), Some(Value::Bool(true)));
    if on_device && !server {
        let ua_info = UserAgentInfo {
            browser: take_str(&mut props, &["$browser"], P)?,
            browser_version: match take(&mut props, &["$browser_version"]) {
                Some((_, Value::Number(n))) => n.as_f64().map(|f| (f.trunc() as i64).to_string()),
                Some((_, Value::String(s))) => s.split('.').next().filter(|s| !s.is_empty()).map(str::to_owned),
                _ => None,
            },
            os: take_str(&mut props, &["$os"], P)?,
            device: match take_str(&mut props, &["$device_type"], P)?.as_deref() {
                Some(d) if d.eq_ignore_ascii_case("mobile") => DeviceClass::Mobile,
                Some(d) if d.eq_ignore_ascii_case("tablet") => DeviceClass::Tablet,
                Some(d) if d.eq_ignore_ascii_case("desktop") => DeviceClass::Desktop,
                _ => DeviceClass::Other,
            },
        };
        if ua_info != UserAgentInfo::default() {
            e.context.user_agent = Some(ua_info);
        }
    }
    let ua = raw_ua.as_deref().or(if browser { cx.request_ua } else { None });

    let screen = Screen {
        width: take_u32(&mut props, &["$screen_width"], P)?,
        height: take_u32(&mut props, &["$screen_height"], P)?,
        density: None,
    };
    if screen != Screen::default() {
        e.context.screen = Some(screen);
    }
    let ip = take_str(&mut props, &["$ip"], P)?;
    let ip = ip.as_deref().or(if browser { cx.request_ip } else { None });
    e.context.timezone = take_str(&mut props, &["$timezone"], P)?;
    e.context.locale = take_str(&mut props, &["$browser_language", "$locale"], P)?;

    // Campaign: posthog-js copies utm_* and click ids from the URL into the properties.
    let mut campaign = Campaign {
        name: take_str(&mut props, &["utm_campaign"], P)?,
        source: take_str(&mut props, &["utm_source"], P)?,
        medium: take_str(&mut props, &["utm_medium"], P)?,
        term: take_str(&mut props, &["utm_term"], P)?,
        content: take_str(&mut props, &["utm_content"], P)?,
        click_id: None,
    };
    for name in CLICK_IDS {
        if props.remove(name).is_some_and(|v| !v.is_null()) && campaign.click_id.is_none() {
            campaign.click_id = Some(name.to_owned());
        }
    }
    if !campaign.is_empty() {
        e.context.campaign = Some(campaign);
    }

    // Time: `timestamp` corrected with `sent_at`; else `offset` (ms before sending); else `$time`.
    let timestamp = take_ts(&mut m, &["timestamp"], "")?;
    let offset = match take(&mut m, &["offset"]) {
        None => None,
        Some((_, v)) => Some(
            v.as_i64()
                .filter(|o| *o >= 0)
                .ok_or_else(|| Bad::new("/offset", "expected a non-negative number of milliseconds"))?,
        ),
    };
    let time = match props.remove("$time") {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite() && *f > 0.0)
            .map(|s| (s * 1000.0) as i64),
        _ => None,
    };
    let sent_at = take_ts(&mut m, &["sent_at"], "")?.or(cx.sent_at);
    match (timestamp, offset) {
        (None, Some(offset)) => {
            e.sent_at = sent_at;
            e.timestamp = cx.received_at.saturating_sub(offset);
        }
        (t, _) => set_times(&mut e, t.or(time), sent_at, cx.received_at),
    }

    for k in DROPPED {
        props.remove(k);
    }
    e.properties = props;
    e.traits = traits;
    Ok(finish(e, ua, ip, cx))
}
