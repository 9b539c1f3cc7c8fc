//! JSON scrubbing: every string, every key, and whatever sits under a sensitive key.

use serde_json::{Map, Value};

use super::Scrubber;
use super::detect::{Kind, is_card_number, is_placeholder};
use super::names::{self, Place};
use super::url::whole_value_kind;

/// True for strings scrubbed as URLs: `scheme://...`, a path (`/...`) or a query (`?...`).
pub(crate) fn looks_like_url(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(b'/') | Some(b'?') => true,
        Some(c) if c.is_ascii_alphabetic() => {
            // a scheme: letters, digits, + - . then "://"
            let head = &b[..b.len().min(24)];
            head.windows(3).position(|w| w == b"://").is_some_and(|p| {
                b[..p]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            })
        }
        _ => false,
    }
}

/// Scrubs `v` in place; `forced` is the kind of the nearest sensitive key above it.
pub(crate) fn scrub_value(sc: &Scrubber, v: &mut Value, forced: Option<Kind>) -> u32 {
    match v {
        Value::String(s) => {
            if let Some(k) = forced {
                if s.trim().is_empty() || is_placeholder(s) {
                    return 0;
                }
                let k = whole_value_kind(&sc.det, s).unwrap_or(k);
                *s = k.placeholder().to_owned();
                return 1;
            }
            let r = if looks_like_url(s) {
                sc.scrub_url(s)
            } else {
                sc.scrub_text(s)
            };
            match r {
                Some((clean, n)) => {
                    *s = clean;
                    n
                }
                None => 0,
            }
        }
        Value::Number(n) => {
            let kind = forced.or_else(|| n.as_u64().filter(|&x| is_card_number(x)).map(|_| Kind::Card));
            match kind {
                Some(k) => {
                    *v = Value::String(k.placeholder().to_owned());
                    1
                }
                None => 0,
            }
        }
        Value::Array(a) => a.iter_mut().map(|x| scrub_value(sc, x, forced)).sum(),
        Value::Object(m) => scrub_map(sc, m, forced),
        Value::Bool(_) | Value::Null => 0,
    }
}

/// Scrubs a JSON object: values (by key and by content) and keys that hold PII themselves
/// (`{"john@example.com": 3}` becomes `{"[email]": 3}`; colliding keys get `#2`, `#3`...).
pub(crate) fn scrub_map(sc: &Scrubber, m: &mut Map<String, Value>, forced: Option<Kind>) -> u32 {
    let mut count = 0;
    for (k, v) in m.iter_mut() {
        let f = forced.or_else(|| names::sensitive(k, Place::Json));
        count += scrub_value(sc, v, f);
    }
    let bad: Vec<String> = m.keys().filter(|k| sc.contains_pii(k)).cloned().collect();
    for k in bad {
        let Some((clean, n)) = sc.scrub_text(&k) else {
            continue;
        };
        let Some(v) = m.remove(&k) else { continue };
        let mut key = clean.clone();
        let mut i = 2;
        while m.contains_key(&key) {
            key = format!("{clean}#{i}");
            i += 1;
        }
        m.insert(key, v);
        count += n;
    }
    count
}
