//! Privacy rules: find and scrub PII in every string of an event, pseudonymize ids, truncate IPs.
//!
//! [`scrub_interaction`] is what ingest calls on every [`Interaction`]; [`Scrubber`] does the
//! work on single strings, URLs and JSON values, and [`Scrubber::findings`] says where the PII
//! of a string is without changing it (crow-nlp's entity extraction uses it, so CROW has one
//! definition of what an e-mail address or a phone number is).
//!
//! ```
//! use crow_core::privacy::{Scrubber, pseudonymize, truncate_ip};
//!
//! let s = Scrubber::global();
//! assert_eq!(s.scrub_text("Add to cart"), None); // clean: nothing allocated
//! let (clean, n) = s.scrub_text("mail john.doe@example.com or call +1 (415) 555-2671").unwrap();
//! assert_eq!((clean.as_str(), n), ("mail [email] or call [phone]", 2));
//! let (url, _) = s.scrub_url("https://shop.example/?token=abc&email=a%40b.com&page=2").unwrap();
//! assert_eq!(url, "https://shop.example/?token=[secret]&email=[email]&page=2");
//! assert_eq!(truncate_ip("203.0.113.77").as_deref(), Some("203.0.113.0"));
//! assert!(pseudonymize(b"org key", "john@example.com").starts_with("psn_"));
//! ```
//!
//! # Detectors and placeholders
//!
//! | finds | placeholder | rule |
//! |---|---|---|
//! | e-mail addresses | `[email]` | `local@domain.tld` (Unicode letters allowed, `@` may be written `%40`); `logo@2x.png` is not one |
//! | phone numbers | `[phone]` | see below |
//! | payment cards | `[card]` | 13–19 digits, no separator or all spaces or all dashes (groups of 3+), a network prefix (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro) and a valid Luhn checksum |
//! | IBANs | `[iban]` | a known country code, its registry length, capitals and digits with or without single spaces, mod-97 checksum = 1 |
//! | IP addresses | `[ip]` | dotted IPv4 without leading zeros (not right after `Name/`, where it is a version: `Chrome/1.2.3.4`); IPv6 as `std::net::Ipv6Addr` parses it, with at least two colons and a decimal digit (`::` alone is not one) |
//! | US social security numbers | `[ssn]` | `123-45-6789` with dashes only; areas 000, 666 and 900–999, group 00 and serial 0000 are invalid and not matched |
//! | secrets in URLs | `[secret]` | user info (`https://user:pass@host`) and the values of query/fragment parameters named like credentials (`token`, `access_token`, `password`, `api_key`, `key`, `code`, `session`, `sig`, ...) or ad click ids (`gclid`, `fbclid`, `msclkid`, ...): these identify one person's click |
//! | personal data by key only | `[redacted]` | values under keys such as `first_name`, `last_name`, `address`, `birthdate` |
//!
//! A value under a sensitive key or parameter is replaced by the placeholder of what a detector
//! recognises it as when it is one whole PII value (`token=a%40b.com` → `token=[email]`), else
//! by the placeholder of what its name says (`email` → `[email]`, `password` → `[secret]`,
//! `first_name` → `[redacted]`).
//!
//! **Phones.** A plain run of digits is never a phone: it is as often an order id, a timestamp
//! or a price. A phone is one of:
//! - `+` and 8 to 15 digits (E.164), any grouping with single ` -./()` separators:
//!   `+4915112345678`, `+1 (415) 555-2671`, `+44 20 7946 0958`, `+49 (0)151 12345678`;
//! - a North American number, groups 3-3-4 whose area code and exchange start with 2–9,
//!   optionally after a `1`: `(415) 555-2671`, `415-555-2671`, `415.555.2671`, `1 415 555 2671`;
//! - a national number with a trunk `0`, split in groups (first 2–5 digits, each ≥ 2, 9–12
//!   digits in all): `0151 12345678`, `020 7946 0958`, `06 12 34 56 78`, `(030) 1234567`; or
//!   with the `00` international prefix, 11–15 digits: `0049 151 12345678`.
//!
//! Without a `+`, dots only count when every separator is a dot, and a leading date
//! (`01.05.2024 12`) disqualifies. So `19.99`, `2024-05-01`, `order 100234`, `1714557600`,
//! `v1.2.3`, UUIDs and hex ids are left alone.
//!
//! **Boundaries.** Numbers glued to a word are not candidates: `SKU-4111111111111111`,
//! `x64`, `1,234,567`, `abc123`, the digit runs inside a UUID or hex id. A placeholder counts
//! as a word for this purpose, and overlapping findings are merged into one, so scrubbing is
//! idempotent: a second pass over scrubbed text finds nothing (a test checks this on generated
//! strings).
//!
//! # Performance
//!
//! Each string first goes through one cheap pass that counts digits and colons, plus a
//! `memchr` for `@` (or `%40`); most detectors need several digits, so `"Add to cart"` or
//! `"/products/42"` return `None` right after it, without allocating. All detectors are
//! hand-written byte scanners (no regex) and nothing is allocated unless PII is found.
//! Measured in release on the 2-core development machine (the ignored `timing` test):
//!
//! | input | `scrub_text` | `scrub_url` |
//! |---|---|---|
//! | `Add to cart`, `/products/42` | 15–20 ns | ~50 ns |
//! | a 130-byte Chrome user agent (30 digits in version numbers) | ~0.35 µs | ~0.4 µs |
//! | `https://shop.example.com/products/42?page=2&utm_source=google&utm_medium=cpc` | ~70 ns | ~0.26 µs |
//! | `jane@example.com` / `call +1 (415) 555-2671` (dirty: allocates the result) | ~100 ns | ~140 ns |
//!
//! # Known limitations
//!
//! - Phones written without `+` in other national formats that have no trunk `0` (Spanish
//!   `612 34 56 78`, 10-digit numbers without separators) are not found: without structure they
//!   cannot be told from ids.
//! - Names, postal addresses and free-text personal details are only caught under a known key;
//!   no named-entity recognition here (that is crow-nlp's job).
//! - A Luhn-valid 13–19 digit number with a card network prefix is always taken for a card.
//! - Lowercase IBANs are not recognised; neither are IPv6 addresses without any decimal digit
//!   (`fe::ab:cd`) nor IPv4 written as `Name/1.2.3.4`.
//! - Pseudonyms are computed on the id exactly as sent (`John@x.com` and `john@x.com` differ).
//!
//! [`Interaction`]: crate::model::Interaction

mod detect;
mod json;
mod names;
mod url;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::Interaction;
use detect::Detectors;

/// The compiled PII detectors. Build once, share everywhere: [`Scrubber::global`].
#[derive(Debug)]
pub struct Scrubber {
    det: Detectors,
}

impl Scrubber {
    /// The process-wide scrubber, built on first use (`std::sync::OnceLock`).
    pub fn global() -> &'static Scrubber {
        static GLOBAL: OnceLock<Scrubber> = OnceLock::new();
        GLOBAL.get_or_init(|| Scrubber { det: Detectors::new() })
    }

    /// Replaces every PII value in `s` by a placeholder; returns None when `s` holds none (fast
    /// path: no allocation). The u32 is the number of values replaced.
    pub fn scrub_text(&self, s: &str) -> Option<(String, u32)> {
        let mut m = Vec::new();
        self.det.find(s, &mut m);
        if m.is_empty() {
            return None;
        }
        Some((detect::apply(s, &m), m.len() as u32))
    }

    /// A URL or query string: as [`scrub_text`](Scrubber::scrub_text), plus the values of
    /// query parameters whose name marks a secret or PII (token, access_token, id_token, auth,
    /// password, passwd, pwd, secret, api_key, apikey, key, email, e-mail, phone, ssn,
    /// session/sessionid, code, ad click ids, ...) are replaced, and so is the user info of
    /// `scheme://user:pass@host`. Parameters in the fragment (`#access_token=...`) count too.
    /// Everything that holds no PII is kept byte for byte (`page=2` stays).
    pub fn scrub_url(&self, url: &str) -> Option<(String, u32)> {
        url::scrub_url(&self.det, url)
    }

    /// Scrubs every string inside a JSON value in place (objects, arrays, nested), treating
    /// strings that look like URLs (`scheme://`, `/path`, `?query`) with
    /// [`scrub_url`](Scrubber::scrub_url); a value under a key that names a secret or PII
    /// (password, token, email, phone, ssn, card_number, iban, first_name, ...) is replaced
    /// whatever it holds (strings and numbers; booleans and nulls are kept), object keys that
    /// hold PII are scrubbed too, and an integer that is a valid card number becomes `[card]`.
    /// Returns the count.
    pub fn scrub_json(&self, v: &mut serde_json::Value) -> u32 {
        json::scrub_value(self, v, None)
    }

    /// True when `s` holds at least one value a detector finds (no allocation when clean).
    pub fn contains_pii(&self, s: &str) -> bool {
        self.det.any(s)
    }

    /// Where the PII values of `text` are, without changing it: the same detectors and rules
    /// as [`scrub_text`](Scrubber::scrub_text) (one definition of what a phone is for all of
    /// CROW), as byte ranges sorted by start, never overlapping (overlapping findings are
    /// merged into the earliest, as scrubbing does). Kinds: `email`, `phone`, `card`, `iban`,
    /// `ip`, `ssn`. Returns an empty `Vec` (no allocation) for clean text.
    ///
    /// ```
    /// use crow_core::privacy::{Finding, Scrubber};
    ///
    /// let text = "Call +1 (415) 555-2671 or mail jane@example.com, not 19.99";
    /// let found = Scrubber::global().findings(text);
    /// assert_eq!(found, vec![
    ///     Finding { kind: "phone", start: 5, end: 22 },
    ///     Finding { kind: "email", start: 31, end: 47 },
    /// ]);
    /// assert_eq!(&text[found[1].start..found[1].end], "jane@example.com");
    /// assert!(Scrubber::global().findings("Order 100234 costs $19.99").is_empty());
    /// ```
    pub fn findings(&self, text: &str) -> Vec<Finding> {
        let mut m = Vec::new();
        self.det.find(text, &mut m);
        m.into_iter()
            .map(|x| Finding {
                kind: x.kind.name(),
                start: x.start,
                end: x.end,
            })
            .collect()
    }
}

/// One PII value found by [`Scrubber::findings`]: its kind and byte range `start..end` in the
/// text (always on `char` boundaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    /// `email`, `phone`, `card`, `iban`, `ip` or `ssn`: the placeholder without brackets.
    pub kind: &'static str,
    /// Start byte offset.
    pub start: usize,
    /// End byte offset (exclusive).
    pub end: usize,
}

/// Keyed pseudonym: `"psn_"` + hex of the first 16 bytes of HMAC-SHA256(key, id). Same input,
/// same output; without the key it cannot be reversed or recomputed.
pub fn pseudonymize(key: &[u8], id: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(36);
    out.push_str("psn_");
    out.push_str(&hex::encode(&tag[..16]));
    out
}

/// Truncates an IP for storage: IPv4 to /24 (last octet 0), IPv6 to /48; None for an
/// unparseable string. Surrounding spaces, a port (`1.2.3.4:80`, `[2001:db8::1]:443`) and
/// brackets are accepted; an IPv4-mapped IPv6 address is truncated as the IPv4 it maps.
pub fn truncate_ip(ip: &str) -> Option<String> {
    let t = ip.trim();
    let addr: IpAddr = t
        .parse()
        .ok()
        .or_else(|| t.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| t.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    let v4 = |a: Ipv4Addr| {
        let o = a.octets();
        Ipv4Addr::new(o[0], o[1], o[2], 0).to_string()
    };
    Some(match addr {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(m) => v4(m),
            None => {
                let s = a.segments();
                Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
            }
        },
    })
}

/// Scrubs an Interaction in place: every string in properties, traits, context (page
/// url/path/referrer/title/search, extra, campaign fields, locale, timezone, library...), name;
/// ids (anonymous_id, user_id, previous_id, group_id, session_id, and person_id when set) that
/// contain PII are replaced by [`pseudonymize`]`(key, id)` (not destroyed: joins and erase
/// requests still work); context.ip truncated ([`truncate_ip`]; the first address of a
/// comma-separated list; dropped when it is not an IP at all).
/// Sets `e.pii_scrubbed += count` and returns the count (pseudonymized ids count too, a truncated
/// IP does not). The event id and org id are system ids and are left alone.
pub fn scrub_interaction(e: &mut Interaction, pseudonym_key: &[u8]) -> u32 {
    let sc = Scrubber::global();
    let text = |s: &mut Option<String>| -> u32 {
        match s.as_deref().and_then(|v| sc.scrub_text(v)) {
            Some((clean, n)) => {
                *s = Some(clean);
                n
            }
            None => 0,
        }
    };
    let url = |s: &mut Option<String>| -> u32 {
        match s.as_deref().and_then(|v| sc.scrub_url(v)) {
            Some((clean, n)) => {
                *s = Some(clean);
                n
            }
            None => 0,
        }
    };
    let mut n = text(&mut e.name);
    for id in [
        &mut e.anonymous_id,
        &mut e.user_id,
        &mut e.previous_id,
        &mut e.group_id,
        &mut e.session_id,
        &mut e.person_id,
    ] {
        if let Some(v) = id
            && sc.contains_pii(v)
        {
            *v = pseudonymize(pseudonym_key, v);
            n += 1;
        }
    }
    n += json::scrub_map(sc, &mut e.properties, None);
    n += json::scrub_map(sc, &mut e.traits, None);

    let c = &mut e.context;
    if let Some(p) = &mut c.page {
        n += url(&mut p.url) + url(&mut p.path) + url(&mut p.referrer) + url(&mut p.search);
        n += text(&mut p.title);
    }
    n += text(&mut c.locale) + text(&mut c.timezone);
    if let Some(k) = &mut c.campaign {
        n += text(&mut k.name) + text(&mut k.source) + text(&mut k.medium);
        n += text(&mut k.term) + text(&mut k.content) + text(&mut k.click_id);
    }
    if let Some(l) = &mut c.library {
        if let Some((clean, k)) = sc.scrub_text(&l.name) {
            l.name = clean;
            n += k;
        }
        n += text(&mut l.version);
    }
    n += json::scrub_map(sc, &mut c.extra, None);
    if let Some(ip) = c.ip.take() {
        c.ip = truncate_ip(&ip).or_else(|| ip.split(',').next().and_then(truncate_ip));
    }
    e.pii_scrubbed = e.pii_scrubbed.saturating_add(n);
    n
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod findings_tests {
    use super::{Finding, Scrubber};

    fn kinds(text: &str) -> Vec<(&'static str, &str)> {
        Scrubber::global()
            .findings(text)
            .into_iter()
            .map(|f| (f.kind, &text[f.start..f.end]))
            .collect()
    }

    #[test]
    fn every_kind_with_offsets() {
        let text = "Mail josé@exemple.fr, call 020 7946 0958, card 4111 1111 1111 1111, \
                    IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, from 203.0.113.7";
        assert_eq!(
            kinds(text),
            vec![
                ("email", "josé@exemple.fr"),
                ("phone", "020 7946 0958"),
                ("card", "4111 1111 1111 1111"),
                ("iban", "DE89 3704 0044 0532 0130 00"),
                ("ssn", "123-45-6789"),
                ("ip", "203.0.113.7"),
            ]
        );
        let found = Scrubber::global().findings(text);
        assert!(found.windows(2).all(|w| w[0].end <= w[1].start), "sorted, no overlaps");
    }

    #[test]
    fn agrees_with_scrub_text() {
        for text in [
            "😀 call (415) 555-2671 now",
            "jane@example.com / +44 20 7946 0958",
            "nothing here: v1.2.3, 19.99 EUR, order 100234, 2024-05-01",
            "",
        ] {
            let found = Scrubber::global().findings(text);
            let scrubbed = Scrubber::global().scrub_text(text);
            assert_eq!(found.len() as u32, scrubbed.as_ref().map_or(0, |s| s.1), "{text:?}");
            for f in &found {
                assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
            }
        }
        assert_eq!(
            Scrubber::global().findings("😀 call (415) 555-2671 now"),
            vec![Finding {
                kind: "phone",
                start: 10,
                end: 24
            }]
        );
    }
}
