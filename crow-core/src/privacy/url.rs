//! URL and query-string scrubbing.
//!
//! A URL is cut into user info, host, path, query and fragment, and each part is scrubbed on
//! its own, so that only the parts that hold PII are rewritten and the rest is kept byte for
//! byte:
//! - user info (`https://user:pass@host`) becomes `[secret]`;
//! - the host and the path are scanned by the text detectors (a percent-encoded path is
//!   decoded segment by segment first, so `/u/john%40example.com` is found);
//! - each query parameter (and each fragment parameter, for OAuth's `#access_token=`) is
//!   decoded (`%XX`, `+` as space); when its name marks a secret or PII
//!   ([`names::sensitive`]) its whole value is replaced, by the placeholder of what the value
//!   is when a detector recognises it whole (`email=a%40b.com` → `email=[email]`), else by the
//!   placeholder of what the name says (`token=abc` → `token=[secret]`); otherwise the value is
//!   scanned by the text detectors and re-encoded only when something was found.
//!
//! Placeholders are written unencoded (`[email]`), for readability; URL parsers accept them.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::detect::{Detectors, Kind, Match, is_placeholder};
use super::names::{self, Place};

/// Characters kept as they are when a scrubbed component is re-encoded (RFC 3986 unreserved).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Builds the scrubbed copy lazily: nothing is allocated until the first replacement.
pub(crate) struct Rewriter<'a> {
    src: &'a str,
    out: Option<String>,
    at: usize,
    pub(crate) count: u32,
}

impl<'a> Rewriter<'a> {
    pub(crate) fn new(src: &'a str) -> Rewriter<'a> {
        Rewriter {
            src,
            out: None,
            at: 0,
            count: 0,
        }
    }

    /// Replaces `src[start..end]`; calls must come in increasing order.
    fn replace(&mut self, start: usize, end: usize, with: &str) {
        debug_assert!(start >= self.at && end >= start);
        let src = self.src;
        let o = self.out.get_or_insert_with(|| String::with_capacity(src.len() + 16));
        o.push_str(&src[self.at..start]);
        o.push_str(with);
        self.at = end;
    }

    pub(crate) fn finish(self) -> Option<(String, u32)> {
        let mut o = self.out?;
        o.push_str(&self.src[self.at..]);
        Some((o, self.count))
    }
}

/// Decodes `%XX` escapes (and `+` as a space when `plus`), lazily.
fn decoded(raw: &[u8], plus: bool) -> impl Iterator<Item = u8> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *raw.get(i)?;
        i += 1;
        if c == b'%' {
            let hex = |k: usize| raw.get(k).and_then(|&x| (x as char).to_digit(16));
            if let (Some(h), Some(l)) = (hex(i), hex(i + 1)) {
                i += 2;
                return Some((h * 16 + l) as u8);
            }
        }
        Some(if plus && c == b'+' { b' ' } else { c })
    })
}

fn decode(raw: &str, plus: bool) -> String {
    let bytes: Vec<u8> = decoded(raw.as_bytes(), plus).collect();
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// What a value is, when a detector recognises all of it (`a@b.com`, `+1 415 555 2671`).
pub(crate) fn whole_value_kind(det: &Detectors, v: &str) -> Option<Kind> {
    let t = v.trim();
    let mut m = Vec::new();
    det.find(t, &mut m);
    match m.as_slice() {
        [one] if one.start == 0 && one.end == t.len() => Some(one.kind),
        _ => None,
    }
}

/// Scrubs one URL component `src[start..end]` with the text detectors, decoding it first when
/// it holds escapes.
fn component(det: &Detectors, rw: &mut Rewriter<'_>, start: usize, end: usize, plus: bool) {
    if start >= end {
        return;
    }
    let raw = &rw.src[start..end];
    let escaped = raw.contains('%') || (plus && raw.contains('+'));
    if !escaped {
        let mut m = Vec::new();
        det.find(raw, &mut m);
        for x in &m {
            rw.replace(start + x.start, start + x.end, x.kind.placeholder());
        }
        rw.count += m.len() as u32;
        return;
    }
    if !Detectors::gate_iter(decoded(raw.as_bytes(), plus)) {
        return;
    }
    let text = decode(raw, plus);
    let mut m: Vec<Match> = Vec::new();
    det.find(&text, &mut m);
    if m.is_empty() {
        return;
    }
    let mut enc = String::with_capacity(raw.len() + 8);
    let mut at = 0;
    for x in &m {
        enc.extend(utf8_percent_encode(&text[at..x.start], COMPONENT));
        enc.push_str(x.kind.placeholder());
        at = x.end;
    }
    enc.extend(utf8_percent_encode(&text[at..], COMPONENT));
    rw.replace(start, end, &enc);
    rw.count += m.len() as u32;
}

/// One `name=value` pair of a query or fragment, at `src[start..end]`.
/// `scan`: false when the whole query is known to hold nothing the text detectors find, so
/// only the names matter.
fn pair(det: &Detectors, rw: &mut Rewriter<'_>, start: usize, end: usize, scan: bool) {
    let raw = &rw.src[start..end];
    let Some(eq) = raw.find('=') else {
        if scan {
            component(det, rw, start, end, true);
        }
        return;
    };
    let name_raw = &raw[..eq];
    let kind = if name_raw.contains('%') || name_raw.contains('+') {
        names::sensitive(&decode(name_raw, true), Place::Query)
    } else {
        names::sensitive(name_raw, Place::Query)
    };
    let (vs, ve) = (start + eq + 1, end);
    match kind {
        Some(k) => {
            if vs == ve {
                return;
            }
            let value = decode(&rw.src[vs..ve], true);
            if value.trim().is_empty() || is_placeholder(&value) {
                return;
            }
            let k = whole_value_kind(det, &value).unwrap_or(k);
            rw.replace(vs, ve, k.placeholder());
            rw.count += 1;
        }
        None if scan => {
            component(det, rw, start, start + eq, true);
            component(det, rw, vs, ve, true);
        }
        None => {}
    }
}

/// Scrubs the `&`-separated pairs of `src[start..end]`.
fn pairs(det: &Detectors, rw: &mut Rewriter<'_>, start: usize, end: usize) {
    let whole = &rw.src.as_bytes()[start..end];
    let scan = memchr::memchr2(b'%', b'+', whole).is_some() || Detectors::gate_iter(whole.iter().copied());
    let mut s = start;
    while s < end {
        let e = rw.src[s..end].find('&').map_or(end, |p| s + p);
        if e > s {
            pair(det, rw, s, e, scan);
        }
        s = e + 1;
    }
}

/// Where the authority starts: after `scheme://` (scheme: a letter, then letters, digits,
/// `+ - .`) or after a leading `//` (protocol-relative URL).
fn authority_start(url: &str) -> Option<usize> {
    let b = url.as_bytes();
    if b.starts_with(b"//") {
        return Some(2);
    }
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let n = b
        .iter()
        .take(32)
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))?;
    b[n..].starts_with(b"://").then_some(n + 3)
}

pub(crate) fn scrub_url(det: &Detectors, url: &str) -> Option<(String, u32)> {
    let mut rw = Rewriter::new(url);
    let len = url.len();
    let hash = url.find('#');
    let before = hash.unwrap_or(len);
    let qmark = url[..before].find('?');
    let auth = authority_start(url).filter(|&a| a <= qmark.unwrap_or(before));
    let bare_query = qmark.is_none() && hash.is_none() && auth.is_none() && !url.starts_with('/') && url.contains('=');
    let head_end = if bare_query { 0 } else { qmark.unwrap_or(before) };

    // scheme://userinfo@host
    let mut path_start = 0;
    if let Some(auth_start) = auth {
        let auth_end = url[auth_start..head_end].find('/').map_or(head_end, |x| auth_start + x);
        let mut host_start = auth_start;
        if let Some(at) = url[auth_start..auth_end].rfind('@') {
            if at > 0 && !is_placeholder(&url[auth_start..auth_start + at]) {
                rw.replace(auth_start, auth_start + at, Kind::Secret.placeholder());
                rw.count += 1;
            }
            host_start = auth_start + at + 1;
        }
        component(det, &mut rw, host_start, auth_end, false);
        path_start = auth_end;
    }
    // path
    if path_start < head_end {
        if url[path_start..head_end].contains('%') {
            let mut s = path_start;
            while s < head_end {
                let e = url[s..head_end].find('/').map_or(head_end, |p| s + p);
                component(det, &mut rw, s, e, false);
                s = e + 1;
            }
        } else {
            component(det, &mut rw, path_start, head_end, false);
        }
    }
    // query
    if bare_query {
        pairs(det, &mut rw, 0, before);
    } else if let Some(q) = qmark {
        pairs(det, &mut rw, q + 1, before);
    }
    // fragment
    if let Some(h) = hash {
        if url[h + 1..].contains('=') {
            pairs(det, &mut rw, h + 1, len);
        } else {
            component(det, &mut rw, h + 1, len, false);
        }
    }
    rw.finish()
}
