//! Helpers shared by the format mappings: field access with paths, ids, timestamps, URLs and
//! campaigns, and the final user-agent / IP / scrubbing step.

use std::borrow::Cow;
use std::cell::RefCell;

use crow_core::model::{
    Campaign, Context, DeviceClass, EventType, Interaction, Millis, PageContext, Source, UserAgentInfo,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Everything an event mapping needs besides the event.
pub(crate) struct EventCx<'a> {
    pub org_id: &'a str,
    pub pseudonym_key: &'a [u8],
    pub received_at: Millis,
    /// The batch's `sentAt`.
    pub sent_at: Option<Millis>,
    pub source: Source,
    pub request_ua: Option<&'a str>,
    pub request_ip: Option<&'a str>,
    pub batch_context: Option<&'a Map<String, Value>>,
    /// Segment single-event routes: the type from the path.
    pub forced_type: Option<EventType>,
    pub max_string_bytes: usize,
    /// Some string in the body may exceed `max_string_bytes`: walk each event.
    pub check_strings: bool,
    /// The envelope used compact names (`b`), so missing fields are named compactly.
    pub compact: bool,
    /// The last user agent parsed in this batch: a browser's batch repeats one user agent.
    pub ua_cache: RefCell<Option<(String, UserAgentInfo, bool)>>,
}

impl EventCx<'_> {
    /// Parsed user agent and bot flag, memoized for a repeated string.
    fn user_agent(&self, ua: &str) -> (UserAgentInfo, bool) {
        let mut cache = self.ua_cache.borrow_mut();
        if let Some((raw, info, bot)) = cache.as_ref()
            && raw == ua
        {
            return (info.clone(), *bot);
        }
        let info = crow_core::useragent::parse(ua);
        let bot = info.device == DeviceClass::Bot || crow_core::useragent::is_bot(ua);
        *cache = Some((ua.to_owned(), info.clone(), bot));
        (info, bot)
    }
}

/// A rejected event: the field (a JSON pointer relative to the event) and the reason.
#[derive(Debug)]
pub(crate) struct Bad {
    pub field: Cow<'static, str>,
    pub reason: Cow<'static, str>,
}

impl Bad {
    pub fn new(field: impl Into<Cow<'static, str>>, reason: impl Into<Cow<'static, str>>) -> Self {
        Bad {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub(crate) type R<T> = Result<T, Bad>;

/// `/name` for a key (escaped as RFC 6901 asks).
pub(crate) fn ptr(name: &str) -> Cow<'static, str> {
    let mut s = String::with_capacity(name.len() + 1);
    s.push('/');
    for c in name.chars() {
        match c {
            '~' => s.push_str("~0"),
            '/' => s.push_str("~1"),
            c => s.push(c),
        }
    }
    Cow::Owned(s)
}

/// Removes the first present, non-null key of `names`; returns the name used and the value.
pub(crate) fn take(m: &mut Map<String, Value>, names: &[&'static str]) -> Option<(&'static str, Value)> {
    for &name in names {
        match m.remove(name) {
            None | Some(Value::Null) => {}
            Some(v) => return Some((name, v)),
        }
    }
    None
}

/// A string field; empty strings count as absent.
pub(crate) fn take_str(m: &mut Map<String, Value>, names: &[&'static str], at: &str) -> R<Option<String>> {
    match take(m, names) {
        None => Ok(None),
        Some((_, Value::String(s))) => Ok((!s.is_empty()).then_some(s)),
        Some((name, _)) => Err(Bad::new(format!("{at}{}", ptr(name)), "expected a string")),
    }
}

/// An id field: a string, or a number (some clients send numeric user ids) as its decimal
/// text. Empty strings count as absent.
pub(crate) fn take_id(m: &mut Map<String, Value>, names: &[&'static str], at: &str) -> R<Option<String>> {
    match take(m, names) {
        None => Ok(None),
        Some((name, v)) => id_value(v).map_err(|reason| Bad::new(format!("{at}{}", ptr(name)), reason)),
    }
}

/// Converts an id value.
pub(crate) fn id_value(v: Value) -> Result<Option<String>, &'static str> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                Ok(None)
            } else if t.len() == s.len() {
                Ok(Some(s))
            } else {
                Ok(Some(t.to_owned()))
            }
        }
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Null => Ok(None),
        _ => Err("expected a string id"),
    }
}

/// An object field (`null` counts as absent).
pub(crate) fn take_obj(m: &mut Map<String, Value>, names: &[&'static str], at: &str) -> R<Option<Map<String, Value>>> {
    match take(m, names) {
        None => Ok(None),
        Some((_, Value::Object(o))) => Ok(Some(o)),
        Some((name, _)) => Err(Bad::new(format!("{at}{}", ptr(name)), "expected an object")),
    }
}

/// A timestamp field: ISO 8601 or milliseconds since the epoch.
pub(crate) fn take_ts(m: &mut Map<String, Value>, names: &[&'static str], at: &str) -> R<Option<Millis>> {
    match take(m, names) {
        None => Ok(None),
        Some((name, v)) => crow_core::time::timestamp_from_json(&v).map(Some).ok_or_else(|| {
            Bad::new(
                format!("{at}{}", ptr(name)),
                "not a timestamp (expected ISO 8601 or milliseconds since the epoch)",
            )
        }),
    }
}

/// A non-negative number that fits a `u32` (screen sizes).
pub(crate) fn take_u32(m: &mut Map<String, Value>, names: &[&'static str], at: &str) -> R<Option<u32>> {
    match take(m, names) {
        None => Ok(None),
        Some((name, v)) => match v.as_f64() {
            Some(f) if f.is_finite() && (0.0..=u32::MAX as f64).contains(&f) => Ok(Some(f as u32)),
            _ => Err(Bad::new(format!("{at}{}", ptr(name)), "expected a non-negative number")),
        },
    }
}

/// Validates a client-supplied event id.
pub(crate) fn check_event_id(id: &str, field: &'static str) -> R<()> {
    if id.is_empty() {
        return Err(Bad::new(field, "the event id is empty"));
    }
    if id.chars().count() > 200 {
        return Err(Bad::new(field, "the event id is longer than 200 characters"));
    }
    Ok(())
}

/// Keys left out of the content hash: they change when the same event is sent again.
const VOLATILE: [&str; 5] = ["sentAt", "sent_at", "sa", "offset", "writeKey"];

/// The id of an event the client sent without one: `h_` + 32 hex chars of
/// SHA-256(org, 0, canonical JSON of the event without its volatile keys).
pub(crate) fn content_id(org_id: &str, event: &Map<String, Value>) -> String {
    let mut h = Sha256::new();
    h.update(org_id.as_bytes());
    h.update([0u8]);
    hash_object(&mut h, event, true);
    let digest = h.finalize();
    let mut id = String::with_capacity(34);
    id.push_str("h_");
    id.push_str(&hex::encode(&digest[..16]));
    id
}

/// Feeds a canonical form of a JSON value (type tags, length-prefixed strings, sorted keys)
/// into the hasher without serializing it.
fn hash_value(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"T" } else { b"F" }),
        Value::Number(n) => {
            h.update(b"#");
            hash_str(h, &n.to_string());
        }
        Value::String(s) => {
            h.update(b"s");
            hash_str(h, s);
        }
        Value::Array(a) => {
            h.update(b"[");
            h.update((a.len() as u64).to_le_bytes());
            for x in a {
                hash_value(h, x);
            }
        }
        Value::Object(m) => hash_object(h, m, false),
    }
}

fn hash_object(h: &mut Sha256, m: &Map<String, Value>, top: bool) {
    let mut keys: Vec<&String> = m.keys().filter(|k| !(top && VOLATILE.contains(&k.as_str()))).collect();
    keys.sort_unstable();
    h.update(b"{");
    h.update((keys.len() as u64).to_le_bytes());
    for k in keys {
        hash_str(h, k);
        hash_value(h, &m[k.as_str()]);
    }
}

fn hash_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

/// Length of the longest string (key or value) in a value.
pub(crate) fn longest_string(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(longest_string).max().unwrap_or(0),
        Value::Object(m) => m.iter().map(|(k, v)| k.len().max(longest_string(v))).max().unwrap_or(0),
        _ => 0,
    }
}

/// The JSON pointer of the first string (key or value) longer than `max`.
pub(crate) fn find_long_string(v: &Value, max: usize, path: &mut String) -> bool {
    match v {
        Value::String(s) => s.len() > max,
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                if find_long_string(x, max, path) {
                    return true;
                }
                path.truncate(len);
            }
            false
        }
        Value::Object(m) => {
            for (k, x) in m {
                let len = path.len();
                path.push_str(&ptr(k));
                if k.len() > max || find_long_string(x, max, path) {
                    return true;
                }
                path.truncate(len);
            }
            false
        }
        _ => false,
    }
}

/// Rejects an event holding a string longer than the limit, naming it.
pub(crate) fn check_strings(event: &Value, cx: &EventCx<'_>) -> R<()> {
    if !cx.check_strings {
        return Ok(());
    }
    let mut path = String::new();
    if find_long_string(event, cx.max_string_bytes, &mut path) {
        return Err(Bad::new(
            path,
            format!("string longer than {} bytes", cx.max_string_bytes),
        ));
    }
    Ok(())
}

/// Ad click ids: their presence says "paid"; their values identify a person.
pub(crate) const CLICK_IDS: [&str; 9] = [
    "gclid",
    "fbclid",
    "msclkid",
    "ttclid",
    "li_fat_id",
    "twclid",
    "dclid",
    "wbraid",
    "gbraid",
];

/// The path of a URL (`https://h/p?q#f` → `/p`, `/p?q` → `/p`), `/` for a bare host.
pub(crate) fn url_path(url: &str) -> Option<&str> {
    let rest = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            match after.find(['/', '?', '#']) {
                Some(j) if after.as_bytes()[j] == b'/' => &after[j..],
                _ => return Some("/"),
            }
        }
        None if url.starts_with('/') => url,
        None => return None,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The query of a URL including `?`, without the fragment; `None` when empty.
pub(crate) fn url_search(url: &str) -> Option<&str> {
    let q = &url[url.find('?')?..];
    let q = &q[..q.find('#').unwrap_or(q.len())];
    (q.len() > 1).then_some(q)
}

/// UTM parameters and the first click id of a query string (with or without `?`).
pub(crate) fn campaign_from_query(search: &str) -> Option<Campaign> {
    let q = search.strip_prefix('?').unwrap_or(search);
    if !q.contains("utm_") && !CLICK_IDS.iter().any(|c| q.contains(c)) {
        return None;
    }
    let mut c = Campaign::default();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        let slot = match k.as_ref() {
            "utm_campaign" => &mut c.name,
            "utm_source" => &mut c.source,
            "utm_medium" => &mut c.medium,
            "utm_term" => &mut c.term,
            "utm_content" => &mut c.content,
            other => {
                if c.click_id.is_none()
                    && let Some(name) = CLICK_IDS.iter().find(|n| **n == other)
                {
                    c.click_id = Some((*name).to_owned());
                }
                continue;
            }
        };
        if slot.is_none() && !v.is_empty() {
            *slot = Some(v.into_owned());
        }
    }
    (!c.is_empty()).then_some(c)
}

/// The URL (or query string) without its click-id parameters, when it has any.
pub(crate) fn strip_click_ids(url: &str) -> Option<String> {
    let qstart = url.find('?')?;
    let fstart = url[qstart..].find('#').map_or(url.len(), |i| qstart + i);
    let query = &url[qstart + 1..fstart];
    let is_click = |pair: &str| {
        let key = pair.split('=').next().unwrap_or("");
        CLICK_IDS.contains(&key)
    };
    if !query.split('&').any(is_click) {
        return None;
    }
    let kept: Vec<&str> = query.split('&').filter(|p| !p.is_empty() && !is_click(p)).collect();
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..qstart]);
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    out.push_str(&url[fstart..]);
    Some(out)
}

/// Fills a page context's path and search from its URL, derives the campaign when the client
/// sent none, and removes click-id values from the URL and query.
pub(crate) fn finish_page(context: &mut Context) {
    let Some(page) = context.page.as_mut() else {
        return;
    };
    if let Some(url) = page.url.as_deref() {
        if page.path.is_none() {
            page.path = url_path(url).map(str::to_owned);
        }
        if page.search.is_none() {
            page.search = url_search(url).map(str::to_owned);
        }
    }
    if context.campaign.as_ref().is_none_or(Campaign::is_empty) {
        context.campaign = page.search.as_deref().and_then(campaign_from_query);
    }
    if let Some(stripped) = page.url.as_deref().and_then(strip_click_ids) {
        page.url = Some(stripped);
    }
    if let Some(stripped) = page.search.as_deref().and_then(strip_click_ids) {
        page.search = (stripped.len() > 1).then_some(stripped);
    }
    if page == &PageContext::default() {
        context.page = None;
    }
}

/// The event's raw user agent and IP (or the request's, for browser-originated events) are
/// reduced (parsed UA, bot flag, truncated IP), then every string is scrubbed.
pub(crate) fn finish(mut e: Interaction, ua: Option<&str>, ip: Option<&str>, cx: &EventCx<'_>) -> Interaction {
    if let Some(ua) = ua.map(str::trim).filter(|s| !s.is_empty()) {
        let (info, bot) = cx.user_agent(ua);
        e.is_bot = bot;
        e.context.user_agent = Some(info);
    } else if e
        .context
        .user_agent
        .as_ref()
        .is_some_and(|u| u.device == DeviceClass::Bot)
    {
        e.is_bot = true;
    }
    e.context.ip = ip
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(crow_core::privacy::truncate_ip);
    finish_page(&mut e.context);
    crow_core::privacy::scrub_interaction(&mut e, cx.pseudonym_key);
    e
}

/// A skeleton interaction; the mappings fill the rest.
pub(crate) fn interaction(id: String, event_type: EventType, cx: &EventCx<'_>) -> Interaction {
    Interaction {
        id,
        org_id: cx.org_id.to_owned(),
        event_type,
        name: None,
        anonymous_id: None,
        user_id: None,
        session_id: None,
        group_id: None,
        previous_id: None,
        properties: Map::new(),
        traits: Map::new(),
        context: Context::default(),
        timestamp: cx.received_at,
        original_timestamp: None,
        sent_at: None,
        received_at: cx.received_at,
        source: cx.source,
        is_bot: false,
        pii_scrubbed: 0,
        person_id: None,
        referrer_class: None,
        analysis: None,
    }
}

/// Sets `timestamp`, `original_timestamp` and `sent_at` with skew correction.
pub(crate) fn set_times(e: &mut Interaction, original: Option<Millis>, sent_at: Option<Millis>, received_at: Millis) {
    e.original_timestamp = original;
    e.sent_at = sent_at;
    e.timestamp = crow_core::time::corrected_timestamp(original, sent_at, received_at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url_path("https://a.example/p/42?x=1#f"), Some("/p/42"));
        assert_eq!(url_path("https://a.example"), Some("/"));
        assert_eq!(url_path("https://a.example?x"), Some("/"));
        assert_eq!(url_path("/p?x"), Some("/p"));
        assert_eq!(url_path("nonsense"), None);
        assert_eq!(url_search("https://a.example/p?x=1#f"), Some("?x=1"));
        assert_eq!(url_search("https://a.example/p?#f"), None);
        assert_eq!(
            strip_click_ids("https://a.example/p?utm_source=x&gclid=SECRET&b=2#top").as_deref(),
            Some("https://a.example/p?utm_source=x&b=2#top")
        );
        assert_eq!(
            strip_click_ids("https://a.example/p?fbclid=SECRET").as_deref(),
            Some("https://a.example/p")
        );
        assert_eq!(strip_click_ids("https://a.example/p?q=gclid"), None);
    }

    #[test]
    fn campaign_keeps_click_id_name_only() {
        let c = campaign_from_query("?utm_source=news%20letter&utm_medium=email&utm_campaign=spring&msclkid=abc123")
            .unwrap();
        assert_eq!(c.source.as_deref(), Some("news letter"));
        assert_eq!(c.medium.as_deref(), Some("email"));
        assert_eq!(c.name.as_deref(), Some("spring"));
        assert_eq!(c.click_id.as_deref(), Some("msclkid"));
        assert!(!format!("{c:?}").contains("abc123"));
        assert_eq!(campaign_from_query("?a=b"), None);
    }

    #[test]
    fn content_id_is_canonical_and_ignores_sent_at() {
        let a: Map<String, Value> =
            serde_json::from_str(r#"{"t":"p","a":"x","p":{"b":1,"a":[1,"2"]},"sa":5}"#).unwrap();
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"p":{"a":[1,"2"],"b":1},"a":"x","t":"p","sa":9}"#).unwrap();
        let c: Map<String, Value> = serde_json::from_str(r#"{"p":{"a":[1,"2"],"b":2},"a":"x","t":"p"}"#).unwrap();
        assert_eq!(content_id("org_1", &a), content_id("org_1", &b));
        assert_ne!(content_id("org_1", &a), content_id("org_1", &c));
        assert_ne!(content_id("org_1", &a), content_id("org_2", &a));
        assert_eq!(content_id("org_1", &a).len(), 34);
    }

    #[test]
    fn long_strings_are_found_with_their_path() {
        let v: Value = serde_json::json!({"a": {"b/c": ["x", "yyyyy"]}});
        let mut p = String::new();
        assert!(find_long_string(&v, 4, &mut p));
        assert_eq!(p, "/a/b~1c/1");
        assert_eq!(longest_string(&v), 5);
    }
}
