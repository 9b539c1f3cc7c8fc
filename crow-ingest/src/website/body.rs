//! Body decoding: content encodings with a decompression cap, PostHog's `data=` base64 form,
//! UTF-8 validation, the nesting-depth scan and the one JSON parse.

use std::io::Read;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use super::{Limits, RequestError, RequestErrorKind, Route};
use crate::http::HttpRequest;

/// What [`scan_json`] learned about a JSON text without parsing it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonScan {
    /// Deepest nesting of arrays and objects.
    pub max_depth: usize,
    /// Longest string (key or value) in raw, still-escaped bytes. Escapes only ever shrink when
    /// decoded, so a text whose longest raw string is within a limit has no decoded string over it.
    pub max_string_bytes: usize,
}

/// The nesting limit was exceeded at this byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// Byte offset of the bracket that went over the limit.
    pub offset: usize,
}

/// Scans a JSON text in one pass without recursion and without allocating: nesting depth of
/// `[`/`{` outside strings, and the longest string. Stops at the first bracket deeper than
/// `max_depth`, so a 100k-deep `[[[[…` is refused in microseconds before any recursive parser
/// sees it. Malformed JSON is not diagnosed here (the parser does that afterwards).
pub fn scan_json(bytes: &[u8], max_depth: usize) -> Result<JsonScan, TooDeep> {
    let n = bytes.len();
    let mut depth = 0usize;
    let mut scan = JsonScan::default();
    let mut i = 0usize;
    while i < n {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                loop {
                    match memchr::memchr2(b'"', b'\\', &bytes[j.min(n)..]) {
                        None => {
                            j = n;
                            break;
                        }
                        Some(k) => {
                            j += k;
                            if bytes[j] == b'\\' {
                                j += 2;
                            } else {
                                break;
                            }
                        }
                    }
                }
                let end = j.min(n);
                scan.max_string_bytes = scan.max_string_bytes.max(end - start);
                i = end + 1;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(TooDeep { offset: i });
                }
                scan.max_depth = scan.max_depth.max(depth);
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(scan)
}

/// Lenient base64: standard or URL-safe alphabet, padding optional (posthog-js pads; hand-made
/// clients often do not).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Identity,
    Gzip,
    Deflate,
}

/// Decodes, checks and parses a request body into one JSON value.
pub(crate) fn decode(req: &HttpRequest, route: Route, limits: &Limits) -> Result<(Value, JsonScan), RequestError> {
    let cap = limits.max_body_bytes;
    // A compressed or base64 body is never larger than twice what it decodes to for any
    // client we know; refuse obviously oversized bodies before touching them.
    if req.body.len() > cap.saturating_mul(2) {
        return Err(too_large(req.body.len(), cap, false));
    }
    let mut compression = content_encoding(req)?;
    let posthog = route == Route::PostHog;
    let mut form = req
        .header("content-type")
        .is_some_and(|ct| starts_with_ignore_case(ct.trim_start(), "application/x-www-form-urlencoded"));
    if posthog {
        // posthog-js says what it did in the query string: `?compression=gzip-js|base64`.
        match req.query_param("compression").as_deref().map(str::trim) {
            None | Some("") | Some("none") | Some("identity") => {}
            Some("gzip-js") | Some("gzip") => {
                if compression == Compression::Identity {
                    compression = Compression::Gzip;
                }
            }
            Some("base64") => form = true,
            Some(other) => {
                return Err(RequestError::new(
                    RequestErrorKind::UnsupportedEncoding,
                    format!(
                        "unsupported compression `{other}`: send plain JSON, gzip (`compression=gzip-js`) or base64 form data (`compression=base64`)"
                    ),
                ));
            }
        }
        form |= req.body.starts_with(b"data=");
    }
    // Gzip bodies announce themselves with a magic number that no JSON text can start with, so
    // sniffing is safe (sendBeacon cannot set Content-Encoding).
    if compression == Compression::Identity && req.body.starts_with(&[0x1f, 0x8b]) {
        compression = Compression::Gzip;
    }

    let inflated;
    let mut bytes: &[u8] = &req.body;
    match compression {
        Compression::Identity => {}
        Compression::Gzip => {
            inflated = read_capped(flate2::read::MultiGzDecoder::new(bytes), cap, bytes.len(), "gzip")?;
            bytes = &inflated;
        }
        Compression::Deflate => {
            // `deflate` is zlib (RFC 1950) by the HTTP spec, raw deflate in some clients.
            let zlib = bytes.len() >= 2
                && (u16::from(bytes[0]) << 8 | u16::from(bytes[1])).is_multiple_of(31)
                && bytes[0] & 0x0f == 8;
            inflated = if zlib {
                read_capped(flate2::read::ZlibDecoder::new(bytes), cap, bytes.len(), "deflate")?
            } else {
                read_capped(flate2::read::DeflateDecoder::new(bytes), cap, bytes.len(), "deflate")?
            };
            bytes = &inflated;
        }
    }

    let from_form;
    if form {
        from_form = form_data(bytes)?;
        bytes = &from_form;
    }
    if bytes.len() > cap {
        return Err(too_large(bytes.len(), cap, compression != Compression::Identity));
    }

    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Err(RequestError::new(
                RequestErrorKind::InvalidUtf8,
                format!(
                    "the body is not valid UTF-8 (first invalid byte at offset {})",
                    e.valid_up_to()
                ),
            )
            .with_extra(serde_json::json!({ "offset": e.valid_up_to() })));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().is_empty() {
        return Err(RequestError::new(
            RequestErrorKind::BadJson,
            "the body is empty: expected a JSON object or array",
        ));
    }
    let scan = scan_json(text.as_bytes(), limits.max_depth).map_err(|e| {
        RequestError::new(
            RequestErrorKind::TooDeep,
            format!(
                "JSON nesting deeper than {} levels (at byte offset {}); flatten nested properties",
                limits.max_depth, e.offset
            ),
        )
        .with_extra(serde_json::json!({ "max_depth": limits.max_depth, "offset": e.offset }))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        RequestError::new(
            RequestErrorKind::BadJson,
            format!(
                "malformed JSON at line {}, column {}: {}",
                e.line(),
                e.column(),
                strip_position(&e)
            ),
        )
        .with_extra(serde_json::json!({ "line": e.line(), "column": e.column() }))
    })?;
    Ok((value, scan))
}

/// The message of a serde_json error without its trailing " at line X column Y".
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn too_large(len: usize, cap: usize, decompressed: bool) -> RequestError {
    let detail = if decompressed {
        format!("the body decompresses to more than {cap} bytes, the limit; send smaller batches")
    } else {
        format!("the body is {len} bytes, more than the limit of {cap} bytes; send smaller batches")
    };
    RequestError::new(RequestErrorKind::BodyTooLarge, detail).with_extra(serde_json::json!({ "max_body_bytes": cap }))
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn content_encoding(req: &HttpRequest) -> Result<Compression, RequestError> {
    let Some(raw) = req.header("content-encoding") else {
        return Ok(Compression::Identity);
    };
    let mut out = Compression::Identity;
    for token in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let c = if token.eq_ignore_ascii_case("identity") {
            continue;
        } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            Compression::Gzip
        } else if token.eq_ignore_ascii_case("deflate") {
            Compression::Deflate
        } else {
            return Err(unsupported(token));
        };
        if out != Compression::Identity {
            return Err(unsupported(raw));
        }
        out = c;
    }
    Ok(out)
}

fn unsupported(token: &str) -> RequestError {
    let token: String = token.chars().take(64).collect();
    RequestError::new(
        RequestErrorKind::UnsupportedEncoding,
        format!("unsupported Content-Encoding `{token}`: use gzip, deflate or none"),
    )
}

/// Reads a decompressing reader through a cap of `cap + 1` bytes: a gzip bomb stops after
/// `cap + 1` bytes of output, so it costs at most the time to inflate the limit.
fn read_capped(r: impl Read, cap: usize, compressed_len: usize, what: &str) -> Result<Vec<u8>, RequestError> {
    let mut out = Vec::with_capacity(compressed_len.saturating_mul(6).min(cap + 1));
    match r.take(cap as u64 + 1).read_to_end(&mut out) {
        Ok(_) if out.len() > cap => Err(too_large(out.len(), cap, true)),
        Ok(_) => Ok(out),
        Err(e) => Err(RequestError::new(
            RequestErrorKind::BadEncoding,
            format!("the {what} body cannot be decompressed: {e}"),
        )),
    }
}

/// `data=<base64 of JSON>` (posthog-js' `compression=base64`), or `data=<JSON>`.
fn form_data(body: &[u8]) -> Result<Vec<u8>, RequestError> {
    let Some(data) = form_urlencoded::parse(body).find(|(k, _)| k == "data").map(|(_, v)| v) else {
        return Err(RequestError::new(
            RequestErrorKind::BadRequest,
            "form-encoded body without a `data` field: expected `data=<base64 of the JSON batch>`",
        ));
    };
    let data = data.trim();
    if data.starts_with('{') || data.starts_with('[') {
        return Ok(data.as_bytes().to_vec());
    }
    // Form decoding turns an unescaped `+` into a space; base64 has no spaces.
    let fixed: std::borrow::Cow<'_, str> = if data.contains(' ') {
        data.replace(' ', "+").into()
    } else {
        data.into()
    };
    B64.decode(fixed.as_bytes())
        .or_else(|_| B64_URL.decode(fixed.as_bytes()))
        .map_err(|e| {
            RequestError::new(
                RequestErrorKind::BadEncoding,
                format!("the `data` form field is not valid base64: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn req(route_path: &str, headers: &[(&str, &str)], query: Option<&str>, body: Vec<u8>) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: route_path.into(),
            query: query.map(str::to_owned),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
            peer_ip: None,
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn depth_scanner_counts_outside_strings_only() {
        let s = scan_json(br#"{"a":[1,{"b":"[[[[{{{"}],"c\"[":"x"}"#, 32).unwrap();
        assert_eq!(s.max_depth, 3);
        assert_eq!(s.max_string_bytes, 7);
        assert!(scan_json(b"[[[[1]]]]", 4).is_ok());
        assert_eq!(scan_json(b"[[[[[1]]]]]", 4), Err(TooDeep { offset: 4 }));
        // unterminated string / escape at the end must not panic
        assert!(scan_json(br#"{"a":"abc\"#, 4).is_ok());
        assert!(scan_json(br#""\"#, 4).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let e = decode(
            &req("/api/v1/events", &[], None, deep.into_bytes()),
            Route::Crow,
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind, RequestErrorKind::TooDeep);
        assert_eq!(e.kind.status(), 400);
    }

    #[test]
    fn gzip_bomb_costs_nothing() {
        // 100 MB of zeros compresses to ~100 KB.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..100 {
            enc.write_all(&chunk).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let r = req("/v1/batch", &[("content-encoding", "gzip")], None, bomb);
        let e = decode(&r, Route::Segment(None), &Limits::default()).unwrap_err();
        assert_eq!(e.kind, RequestErrorKind::BodyTooLarge);
        assert_eq!(e.kind.status(), 413);
    }

    #[test]
    fn gzip_and_sniffing_and_encodings() {
        let body = br#"{"batch":[]}"#;
        let limits = Limits::default();
        let (v, _) = decode(
            &req("/v1/batch", &[("content-encoding", "gzip")], None, gzip(body)),
            Route::Segment(None),
            &limits,
        )
        .unwrap();
        assert_eq!(v["batch"], serde_json::json!([]));
        // no header: sniffed (posthog-js gzip-js sends text/plain)
        let (v, _) = decode(
            &req(
                "/e/",
                &[("content-type", "text/plain")],
                Some("compression=gzip-js"),
                gzip(body),
            ),
            Route::PostHog,
            &limits,
        )
        .unwrap();
        assert_eq!(v["batch"], serde_json::json!([]));
        let e = decode(
            &req("/v1/batch", &[("content-encoding", "br")], None, body.to_vec()),
            Route::Segment(None),
            &limits,
        )
        .unwrap_err();
        assert_eq!((e.kind, e.kind.status()), (RequestErrorKind::UnsupportedEncoding, 415));
        let e = decode(
            &req(
                "/v1/batch",
                &[("content-encoding", "gzip")],
                None,
                b"\x1f\x8bgarbage".to_vec(),
            ),
            Route::Segment(None),
            &limits,
        )
        .unwrap_err();
        assert_eq!((e.kind, e.kind.status()), (RequestErrorKind::BadEncoding, 400));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(body).unwrap();
        let (v, _) = decode(
            &req(
                "/v1/batch",
                &[("content-encoding", "deflate")],
                None,
                z.finish().unwrap(),
            ),
            Route::Segment(None),
            &limits,
        )
        .unwrap();
        assert!(v.get("batch").is_some());
        let e = decode(
            &req("/e/", &[], Some("compression=lz64"), body.to_vec()),
            Route::PostHog,
            &limits,
        )
        .unwrap_err();
        assert_eq!(e.kind.status(), 415);
    }

    #[test]
    fn base64_form_as_posthog_js_sends_it() {
        let json = r#"[{"event":"$pageview","properties":{"distinct_id":"d1","token":"wk"}}]"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        let encoded: String = form_urlencoded::byte_serialize(b64.as_bytes()).collect();
        let body = format!("data={encoded}");
        let r = req(
            "/e/",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some("compression=base64&ver=1.0"),
            body.into_bytes(),
        );
        let (v, _) = decode(&r, Route::PostHog, &Limits::default()).unwrap();
        assert_eq!(v[0]["event"], "$pageview");
        // unescaped `+` turned into spaces, no padding
        let raw = format!("data={}", b64.trim_end_matches('=').replace('+', " "));
        let (v, _) = decode(
            &req("/e/", &[], None, raw.into_bytes()),
            Route::PostHog,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(v[0]["properties"]["token"], "wk");
        let e = decode(
            &req("/e/", &[], Some("compression=base64"), b"data=%%%".to_vec()),
            Route::PostHog,
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind, RequestErrorKind::BadEncoding);
    }

    #[test]
    fn utf8_json_and_size_errors() {
        let limits = Limits {
            max_body_bytes: 64,
            ..Limits::default()
        };
        let e = decode(
            &req("/api/v1/events", &[], None, b"{\"a\":\"\xff\"}".to_vec()),
            Route::Crow,
            &limits,
        )
        .unwrap_err();
        assert_eq!((e.kind, e.kind.status()), (RequestErrorKind::InvalidUtf8, 400));
        assert!(e.detail.contains("offset 6"), "{}", e.detail);
        let e = decode(
            &req("/api/v1/events", &[], None, b"{\"a\":\n  tru}".to_vec()),
            Route::Crow,
            &limits,
        )
        .unwrap_err();
        assert_eq!(e.kind, RequestErrorKind::BadJson);
        assert!(e.detail.contains("line 2, column"), "{}", e.detail);
        let e = decode(&req("/api/v1/events", &[], None, vec![b' '; 65]), Route::Crow, &limits).unwrap_err();
        assert_eq!((e.kind, e.kind.status()), (RequestErrorKind::BodyTooLarge, 413));
        let e = decode(&req("/api/v1/events", &[], None, Vec::new()), Route::Crow, &limits).unwrap_err();
        assert_eq!(e.kind, RequestErrorKind::BadJson);
    }
}
