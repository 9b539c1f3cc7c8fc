//! The website SDK, `crow.js`, served by CROW itself, so every shell (the native server, the
//! Cloudflare Worker) serves the same bytes with the same caching rules.
//!
//! The minified script is compiled into the crate ([`CROW_JS`], from `sdk/dist/crow.min.js`);
//! its gzip copy, strong ETag and versioned path are computed once, on first use.
//!
//! | Path | `Cache-Control` | Use |
//! |---|---|---|
//! | `GET /sdk/crow.js` | `public, max-age=86400, stale-while-revalidate=604800` | The usual snippet: an upgraded server reaches browsers within a day |
//! | `GET /sdk/crow.<8 hex>.js` ([`versioned_path`]) | `public, max-age=31536000, immutable` | Pinned (e.g. with Subresource Integrity): the bytes behind it never change |
//!
//! Both answer `GET` and `HEAD` (anything else is 405), honour `If-None-Match` (304, weak
//! comparison, `*` and lists) and `Accept-Encoding` (gzip when the client takes it, else the
//! plain bytes; `Vary: Accept-Encoding`), and may be loaded from any origin
//! (`Access-Control-Allow-Origin: *`, `Cross-Origin-Resource-Policy: cross-origin`). A versioned
//! path of an older build answers 404 naming the current one, rather than other bytes than the
//! page pinned. [`crate::ingest::IngestService::dispatch`] routes these paths here, as
//! [`crate::ingest::Routed::Static`].
//!
//! ```
//! use crow_ingest::http::HttpRequest;
//!
//! let req = HttpRequest {
//!     method: "GET".into(),
//!     path: "/sdk/crow.js".into(),
//!     headers: vec![("accept-encoding".into(), "gzip, br".into())],
//!     ..HttpRequest::default()
//! };
//! let resp = crow_ingest::sdk::serve(&req).unwrap();
//! assert_eq!(resp.status, 200);
//! assert_eq!(resp.body.len(), crow_ingest::sdk::gzipped_len());
//! assert!(crow_ingest::sdk::versioned_path().starts_with("/sdk/crow."));
//!
//! // Any other path is not the SDK's.
//! let other = HttpRequest { path: "/healthz".into(), ..req };
//! assert!(crow_ingest::sdk::serve(&other).is_none());
//! ```

use std::io::Write as _;
use std::sync::LazyLock;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::http::{HttpRequest, HttpResponse};

/// The minified SDK, as committed in `crow-ingest/sdk/dist/crow.min.js`.
pub const CROW_JS: &str = include_str!("../sdk/dist/crow.min.js");

/// The SDK's mutable path.
pub const PATH: &str = "/sdk/crow.js";

const CONTENT_TYPE: &str = "text/javascript; charset=utf-8";
const CACHE_MUTABLE: &str = "public, max-age=86400, stale-while-revalidate=604800";
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// What is derived from [`CROW_JS`], once.
struct Asset {
    /// `"` + 16 hex chars of the SHA-256 of the bytes + `"`.
    etag: String,
    /// The bytes, gzip-compressed (best compression; no name, mtime 0: the same on every build).
    gzip: Vec<u8>,
    /// `/sdk/crow.<8 hex chars of the SHA-256>.js`.
    versioned_path: String,
}

static ASSET: LazyLock<Asset> = LazyLock::new(|| {
    let digest = hex::encode(Sha256::digest(CROW_JS.as_bytes()));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let gzip = enc
        .write_all(CROW_JS.as_bytes())
        .and_then(|()| enc.finish())
        .unwrap_or_default();
    Asset {
        etag: format!("\"{}\"", &digest[..16]),
        gzip,
        versioned_path: format!("/sdk/crow.{}.js", &digest[..8]),
    }
});

/// The strong ETag of [`CROW_JS`] (quoted: `"0123456789abcdef"`), for both encodings.
pub fn etag() -> &'static str {
    &ASSET.etag
}

/// The versioned (immutable) path of this build of the SDK, `/sdk/crow.<8 hex>.js`.
pub fn versioned_path() -> &'static str {
    &ASSET.versioned_path
}

/// Size in bytes of the gzip-compressed SDK, what a browser downloads.
pub fn gzipped_len() -> usize {
    ASSET.gzip.len()
}

/// Answers a request for the SDK; `None` when the path is not [`PATH`] or a versioned SDK path
/// (`/sdk/crow.<hex>.js`). A versioned path other than [`versioned_path`] answers 404.
pub fn serve(req: &HttpRequest) -> Option<HttpResponse> {
    let immutable = if req.path == PATH {
        false
    } else if req.path == versioned_path() {
        true
    } else if is_versioned_path(&req.path) {
        return Some(HttpResponse::problem(
            404,
            "not_found",
            "Unknown SDK version",
            format!(
                "{} is not this server's SDK build; the current one is {} (or {PATH}, which follows upgrades)",
                req.path,
                versioned_path()
            ),
            Some(json!({ "current": versioned_path() })),
        ));
    } else {
        return None;
    };
    let head = req.method.eq_ignore_ascii_case("HEAD");
    if !head && !req.method.eq_ignore_ascii_case("GET") {
        return Some(
            HttpResponse::problem(
                405,
                "method_not_allowed",
                "Method not allowed",
                format!("{} accepts GET and HEAD", req.path),
                None,
            )
            .with_header("allow", "GET, HEAD"),
        );
    }
    let cache = if immutable { CACHE_IMMUTABLE } else { CACHE_MUTABLE };
    if req.header("if-none-match").is_some_and(|v| etag_matches(v, etag())) {
        return Some(HttpResponse {
            status: 304,
            headers: vec![
                ("etag".into(), etag().into()),
                ("cache-control".into(), cache.into()),
                ("vary".into(), "accept-encoding".into()),
            ],
            body: Vec::new(),
        });
    }
    let gzip = req.header("accept-encoding").is_some_and(accepts_gzip);
    let body: &[u8] = if gzip { &ASSET.gzip } else { CROW_JS.as_bytes() };
    let mut resp = HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), CONTENT_TYPE.into()),
            ("etag".into(), etag().into()),
            ("cache-control".into(), cache.into()),
            ("vary".into(), "accept-encoding".into()),
            ("access-control-allow-origin".into(), "*".into()),
            ("cross-origin-resource-policy".into(), "cross-origin".into()),
            ("x-content-type-options".into(), "nosniff".into()),
        ],
        body: Vec::new(),
    };
    if gzip {
        resp = resp.with_header("content-encoding", "gzip");
    }
    if head {
        // What a GET would send; the shell sends no body.
        resp = resp.with_header("content-length", body.len().to_string());
    } else {
        resp.body = body.to_vec();
    }
    Some(resp)
}

/// `/sdk/crow.<1 to 64 hex digits>.js`.
fn is_versioned_path(path: &str) -> bool {
    path.strip_prefix("/sdk/crow.")
        .and_then(|rest| rest.strip_suffix(".js"))
        .is_some_and(|h| (1..=64).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether an `If-None-Match` value matches `etag` by RFC 9110's weak comparison: `*`, or any
/// entity tag of the list whose opaque part equals ours, `W/` or not.
fn etag_matches(header: &str, etag: &str) -> bool {
    let ours = etag.strip_prefix("W/").unwrap_or(etag);
    let mut rest = header.trim();
    if rest == "*" {
        return true;
    }
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return false;
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(inner) = tag.strip_prefix('"') else {
            // Not an entity tag: skip to the next list member.
            match rest.find(',') {
                Some(i) => {
                    rest = &rest[i..];
                    continue;
                }
                None => return false,
            }
        };
        let Some(end) = inner.find('"') else {
            return false;
        };
        let candidate = &tag[..end + 2];
        if candidate == ours {
            return true;
        }
        rest = &inner[end + 1..];
    }
}

/// Whether an `Accept-Encoding` value accepts gzip: `gzip` or `x-gzip` with a non-zero weight,
/// or, when neither is named, `*` with a non-zero weight.
fn accepts_gzip(header: &str) -> bool {
    let mut star = None;
    for member in header.split(',') {
        let mut parts = member.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut q = 1.0f32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return q > 0.0;
        }
        if coding == "*" {
            star = Some(q > 0.0);
        }
    }
    star.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn get(path: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..HttpRequest::default()
        }
    }

    fn header<'a>(resp: &'a HttpResponse, name: &str) -> Option<&'a str> {
        resp.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut out = String::new();
        flate2::read::GzDecoder::new(bytes).read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn derived_values() {
        let e = etag();
        assert_eq!(e.len(), 18);
        assert!(e.starts_with('"') && e.ends_with('"'));
        assert!(e[1..17].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(versioned_path(), format!("/sdk/crow.{}.js", &e[1..9]));
        assert!(gzipped_len() > 0 && gzipped_len() < CROW_JS.len());
        assert_eq!(gunzip(&ASSET.gzip), CROW_JS);
    }

    #[test]
    fn serves_plain_with_headers() {
        let resp = serve(&get(PATH, &[])).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, CROW_JS.as_bytes());
        assert_eq!(header(&resp, "content-type"), Some("text/javascript; charset=utf-8"));
        assert_eq!(header(&resp, "etag"), Some(etag()));
        assert_eq!(header(&resp, "cache-control"), Some(CACHE_MUTABLE));
        assert_eq!(header(&resp, "vary"), Some("accept-encoding"));
        assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
        assert_eq!(header(&resp, "cross-origin-resource-policy"), Some("cross-origin"));
        assert_eq!(header(&resp, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&resp, "content-encoding"), None);
        assert_eq!(header(&resp, "content-length"), None, "the shell sets it from the body");

        let pinned = serve(&get(versioned_path(), &[])).unwrap();
        assert_eq!(pinned.status, 200);
        assert_eq!(pinned.body, CROW_JS.as_bytes());
        assert_eq!(header(&pinned, "cache-control"), Some(CACHE_IMMUTABLE));
        assert_eq!(header(&pinned, "etag"), Some(etag()));
    }

    #[test]
    fn gzip_when_accepted() {
        for ae in [
            "gzip",
            "br, gzip, deflate",
            "GZIP;q=0.5",
            "x-gzip",
            "*",
            "br;q=1, *;q=0.1",
        ] {
            let resp = serve(&get(PATH, &[("accept-encoding", ae)])).unwrap();
            assert_eq!(header(&resp, "content-encoding"), Some("gzip"), "{ae}");
            assert_eq!(resp.body.len(), gzipped_len());
            assert_eq!(gunzip(&resp.body), CROW_JS, "{ae}");
        }
        for ae in [
            "",
            "identity",
            "br",
            "gzip;q=0",
            "gzip; q=0.000, br",
            "*;q=0",
            "gzip;q=0, *",
        ] {
            let resp = serve(&get(PATH, &[("accept-encoding", ae)])).unwrap();
            assert_eq!(header(&resp, "content-encoding"), None, "{ae}");
            assert_eq!(resp.body, CROW_JS.as_bytes(), "{ae}");
        }
    }

    #[test]
    fn not_modified() {
        let strong = etag().to_owned();
        let weak = format!("W/{strong}");
        for inm in [
            strong.clone(),
            weak.clone(),
            "*".to_owned(),
            format!("\"other\", {weak}"),
            format!("W/\"a,b\",{strong} , \"c\""),
        ] {
            for path in [PATH, versioned_path()] {
                let resp = serve(&get(path, &[("if-none-match", &inm), ("accept-encoding", "gzip")])).unwrap();
                assert_eq!(resp.status, 304, "{inm}");
                assert!(resp.body.is_empty());
                assert_eq!(header(&resp, "etag"), Some(etag()));
                assert_eq!(header(&resp, "vary"), Some("accept-encoding"));
                let cache = if path == PATH { CACHE_MUTABLE } else { CACHE_IMMUTABLE };
                assert_eq!(header(&resp, "cache-control"), Some(cache));
                assert_eq!(header(&resp, "content-encoding"), None);
            }
        }
        let unquoted = strong.trim_matches('"').to_owned();
        for inm in [
            "\"0000000000000000\"",
            "W/\"x\", \"y\"",
            "",
            unquoted.as_str(),
            "\"unterminated",
        ] {
            let resp = serve(&get(PATH, &[("if-none-match", inm)])).unwrap();
            assert_eq!(resp.status, 200, "{inm}");
        }
    }

    #[test]
    fn head_has_the_headers_and_no_body() {
        let mut req = get(PATH, &[("accept-encoding", "gzip")]);
        req.method = "HEAD".into();
        let resp = serve(&req).unwrap();
        assert_eq!(resp.status, 200);
        assert!(resp.body.is_empty());
        assert_eq!(header(&resp, "content-encoding"), Some("gzip"));
        assert_eq!(
            header(&resp, "content-length"),
            Some(gzipped_len().to_string().as_str())
        );
        assert_eq!(header(&resp, "etag"), Some(etag()));
        req.headers.clear();
        let resp = serve(&req).unwrap();
        assert_eq!(
            header(&resp, "content-length"),
            Some(CROW_JS.len().to_string().as_str())
        );
        assert_eq!(header(&resp, "content-type"), Some(CONTENT_TYPE));
    }

    #[test]
    fn other_methods_are_405() {
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let mut req = get(PATH, &[]);
            req.method = method.into();
            let resp = serve(&req).unwrap();
            assert_eq!(resp.status, 405, "{method}");
            assert_eq!(header(&resp, "allow"), Some("GET, HEAD"));
            assert_eq!(header(&resp, "content-type"), Some("application/problem+json"));
        }
    }

    #[test]
    fn stale_versioned_path_is_404_and_others_are_not_ours() {
        let resp = serve(&get("/sdk/crow.0badc0de.js", &[])).unwrap();
        assert_eq!(resp.status, 404);
        let body = resp.json_body().unwrap();
        assert_eq!(body["current"], versioned_path());
        assert!(body["detail"].as_str().unwrap().contains(versioned_path()));
        for path in [
            "/sdk/crow.min.js",
            "/sdk/crow.js/",
            "/sdk/other.js",
            "/crow.js",
            "/sdk/crow..js",
            "/",
        ] {
            assert!(serve(&get(path, &[])).is_none(), "{path}");
        }
    }
}
