//! Helpers the adapters share: plain text from HTML, timestamps, JSON bodies, URLs.
//!
//! Compiled with any adapter feature (each adapter uses a part of it); nothing here does
//! I/O, so it stays wasm32-clean.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use crow_core::model::Millis;
use serde::de::DeserializeOwned;

use crate::social::{Platform, SocialError};

/// The largest body a parser accepts (5 MiB).
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// At most this many posts on one page of a JSON API (the documented maxima are 40 and 100);
/// a page with more is refused.
pub const MAX_POSTS_PER_PAGE: usize = 250;

/// At most this many characters of a body in an error message.
pub const SNIPPET_CHARS: usize = 120;

/// A [`SocialError::Malformed`].
pub fn malformed(platform: Platform, detail: impl Into<String>) -> SocialError {
    SocialError::Malformed {
        platform,
        detail: detail.into(),
    }
}

/// The start of a body, as text: at most [`SNIPPET_CHARS`] characters, whitespace collapsed.
pub fn snippet(body: &[u8]) -> String {
    let head = &body[..body.len().min(SNIPPET_CHARS * 4)];
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    let mut chars = 0;
    let mut last_space = true;
    for c in text.chars() {
        if chars >= SNIPPET_CHARS {
            out.push('…');
            break;
        }
        if c.is_whitespace() {
            if last_space {
                continue;
            }
            last_space = true;
            out.push(' ');
        } else {
            last_space = false;
            out.push(c);
        }
        chars += 1;
    }
    out.trim_end().to_string()
}

/// Refuses empty and oversized bodies.
pub fn check_body(platform: Platform, body: &[u8]) -> Result<(), SocialError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(malformed(
            platform,
            format!("body of {} bytes is over the {MAX_BODY_BYTES}-byte limit", body.len()),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(malformed(platform, "empty body"));
    }
    Ok(())
}

/// Parses a JSON body into `T`, refusing HTML pages, truncated JSON and the wrong shape with a
/// [`SocialError::Malformed`] that says what was wrong (serde names the field) and how the body
/// starts.
pub fn parse_json<T: DeserializeOwned>(platform: Platform, body: &[u8]) -> Result<T, SocialError> {
    check_body(platform, body)?;
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    if first == Some(b'<') {
        return Err(malformed(
            platform,
            format!("expected JSON, got HTML/XML: {}", snippet(body)),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| malformed(platform, format!("not the documented JSON ({e}): {}", snippet(body))))
}

/// Refuses a page with more than [`MAX_POSTS_PER_PAGE`] posts.
pub fn check_count(platform: Platform, field: &str, n: usize) -> Result<(), SocialError> {
    if n > MAX_POSTS_PER_PAGE {
        return Err(malformed(
            platform,
            format!("{field}: {n} posts on one page, over the limit of {MAX_POSTS_PER_PAGE}"),
        ));
    }
    Ok(())
}

/// Parses an RFC 3339 timestamp (or one without an offset, taken as UTC) into ms since the
/// epoch.
pub fn parse_time_ms(s: &str) -> Option<Millis> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// ms since the epoch as RFC 3339 with milliseconds and `Z`.
pub fn format_time_ms(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The primary subtag of a BCP 47 language tag, lowercased (`en-US` → `en`); `None` for
/// anything that is not 2 or 3 ASCII letters.
pub fn language(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?;
    if (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        Some(primary.to_ascii_lowercase())
    } else {
        None
    }
}

/// Checks a configured base URL (http or https, no query or fragment) and drops a trailing
/// slash.
pub fn base_url(platform: Platform, url: &str) -> Result<String, SocialError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| SocialError::Config(format!("{platform}: base URL {url:?} is not http(s)")))?;
    if rest.is_empty() || rest.starts_with('/') || url.contains(['?', '#', ' ']) {
        return Err(SocialError::Config(format!(
            "{platform}: base URL {url:?} must be scheme://host[:port][/path] without query"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The host (and port) of an http(s) URL.
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

/// `application/x-www-form-urlencoded` query string.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Percent-encodes a path segment (everything but RFC 3986 unreserved characters).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Plain text from an HTML fragment: tags dropped (`<script>`, `<style>` and comments with
/// their content), `<br>` and block ends become line breaks, entities decoded, whitespace
/// collapsed as a browser would.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut skipping: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        let (text, tail) = rest.split_at(lt);
        if skipping.is_none() {
            push_text(&mut out, text);
        }
        if let Some(after) = tail.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        if let Some(after) = tail.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").unwrap_or(after.len());
            if skipping.is_none() {
                push_raw(&mut out, &after[..end]);
            }
            rest = after.get(end + 3..).unwrap_or("");
            continue;
        }
        let Some(end) = tag_end(tail) else {
            // A lone '<' (e.g. "a < b"): text.
            if skipping.is_none() {
                push_text(&mut out, "<");
            }
            rest = &tail[1..];
            continue;
        };
        let inner = &tail[1..end];
        let closing = inner.starts_with('/');
        let name: String = inner
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() && !inner.starts_with('!') && !inner.starts_with('?') {
            if skipping.is_none() {
                push_text(&mut out, "<");
            }
            rest = &tail[1..];
            continue;
        }
        rest = &tail[end + 1..];
        if let Some(skip) = &skipping {
            if closing && *skip == name {
                skipping = None;
            }
            continue;
        }
        match name.as_str() {
            "script" | "style" | "template" | "noscript" if !closing => skipping = Some(name),
            "br" => out.push('\n'),
            "p" | "div" | "blockquote" | "pre" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "table"
            | "section" | "article" | "header" | "footer" | "figure" => {
                out.push_str("\n\n");
            }
            "li" | "tr" | "dt" | "dd" if !closing => out.push('\n'),
            "hr" => out.push('\n'),
            "td" | "th" => out.push(' '),
            _ => {}
        }
    }
    if skipping.is_none() {
        push_text(&mut out, rest);
    }
    tidy(&out)
}

/// Where the tag starting at `s[0] == '<'` ends ('>' outside quotes).
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, b) in s.bytes().enumerate().skip(1) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(i),
            (None, b'<') => return None,
            _ => {}
        }
    }
    None
}

/// Appends HTML text: entities decoded, source whitespace as spaces.
fn push_text(out: &mut String, text: &str) {
    push_raw(out, &decode_entities(text));
}

fn push_raw(out: &mut String, text: &str) {
    for c in text.chars() {
        out.push(if c.is_whitespace() { ' ' } else { c });
    }
}

/// Collapses runs of spaces, trims around line breaks, keeps at most one blank line.
fn tidy(s: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in s.split('\n') {
        let mut l = String::with_capacity(line.len());
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            if !l.is_empty() {
                l.push(' ');
            }
            l.push_str(word);
        }
        lines.push(l);
    }
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for l in lines {
        if l.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(&l);
    }
    out
}

/// Decodes HTML character references: numeric (`&#39;`, `&#x1F600;`) and the common named
/// ones. Unknown names are left as they are; invalid code points become U+FFFD.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let semi = tail[1..]
            .char_indices()
            .take(32)
            .find(|&(_, c)| c == ';' || c == '&' || c.is_whitespace())
            .filter(|&(_, c)| c == ';')
            .map(|(i, _)| i + 1);
        let decoded = semi.and_then(|semi| {
            let name = &tail[1..semi];
            let c = if let Some(num) = name.strip_prefix('#') {
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => num.parse::<u32>().ok(),
                }?;
                Some(char::from_u32(code).filter(|&c| c != '\0').unwrap_or('\u{FFFD}'))
            } else {
                named_entity(name)
            }?;
            Some((c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "nbsp" => '\u{A0}',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "thinsp" => '\u{2009}',
        "zwnj" => '\u{200C}',
        "zwj" => '\u{200D}',
        "lrm" => '\u{200E}',
        "rlm" => '\u{200F}',
        "shy" => '\u{AD}',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "plusmn" => '±',
        "times" => '×',
        "divide" => '÷',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "para" => '¶',
        "iexcl" => '¡',
        "iquest" => '¿',
        "aacute" => 'á',
        "Aacute" => 'Á',
        "agrave" => 'à',
        "Agrave" => 'À',
        "acirc" => 'â',
        "auml" => 'ä',
        "Auml" => 'Ä',
        "aring" => 'å',
        "Aring" => 'Å',
        "aelig" => 'æ',
        "AElig" => 'Æ',
        "ccedil" => 'ç',
        "Ccedil" => 'Ç',
        "eacute" => 'é',
        "Eacute" => 'É',
        "egrave" => 'è',
        "Egrave" => 'È',
        "ecirc" => 'ê',
        "euml" => 'ë',
        "iacute" => 'í',
        "igrave" => 'ì',
        "icirc" => 'î',
        "iuml" => 'ï',
        "ntilde" => 'ñ',
        "Ntilde" => 'Ñ',
        "oacute" => 'ó',
        "Oacute" => 'Ó',
        "ograve" => 'ò',
        "ocirc" => 'ô',
        "ouml" => 'ö',
        "Ouml" => 'Ö',
        "oslash" => 'ø',
        "Oslash" => 'Ø',
        "szlig" => 'ß',
        "uacute" => 'ú',
        "Uacute" => 'Ú',
        "ugrave" => 'ù',
        "ucirc" => 'û',
        "uuml" => 'ü',
        "Uuml" => 'Ü',
        "yacute" => 'ý',
        "yuml" => 'ÿ',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_to_text_strips_and_decodes() {
        let html = "<p>Hello <span class=\"h-card\"><a href=\"https://x/@bob\" class=\"u-url mention\">@<span>bob</span></a></span> &amp; friends&#x1F389;</p><p>Line&nbsp;two<br>three &lt;3 &#39;ok&#39;</p><script>alert(1)</script><!-- c -->";
        assert_eq!(html_to_text(html), "Hello @bob & friends🎉\n\nLine two\nthree <3 'ok'");
        assert_eq!(html_to_text("a < b and c > d"), "a < b and c > d");
        assert_eq!(html_to_text("x &unknown; &amp y"), "x &unknown; &amp y");
        assert_eq!(html_to_text("<a title='x>y'>t</a>"), "t");
    }

    #[test]
    fn times_languages_urls() {
        assert_eq!(parse_time_ms("2024-01-02T03:04:05.678Z"), Some(1_704_164_645_678));
        assert_eq!(parse_time_ms("2024-01-02T03:04:05"), Some(1_704_164_645_000));
        assert_eq!(parse_time_ms("yesterday"), None);
        assert_eq!(format_time_ms(1_704_164_645_678), "2024-01-02T03:04:05.678Z");
        assert_eq!(language("en-US").as_deref(), Some("en"));
        assert_eq!(language("x"), None);
        assert_eq!(
            host_of("https://u@mastodon.social:443/x?y"),
            Some("mastodon.social:443")
        );
        assert_eq!(path_segment("café bar"), "caf%C3%A9%20bar");
        assert!(base_url(Platform::Reddit, "ftp://x").is_err());
        assert_eq!(base_url(Platform::Reddit, "https://x/").unwrap(), "https://x");
    }

    #[test]
    fn json_refusals() {
        let e = parse_json::<serde_json::Value>(Platform::Bluesky, b"<!DOCTYPE html><html>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bluesky") && e.contains("HTML"), "{e}");
        let e = parse_json::<serde_json::Value>(Platform::Bluesky, b"{\"posts\": [")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the documented JSON"), "{e}");
        assert!(parse_json::<serde_json::Value>(Platform::Bluesky, b"  ").is_err());
    }
}
