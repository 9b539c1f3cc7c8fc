//! Enrichment: where a visit came from (its [`ReferrerClass`]).
//!
//! [`classify_referrer`] looks at the landing page's campaign first, then at the referrer:
//!
//! 1. an **ad click id** (`gclid`, `msclkid`, `ttclid`, ... in [`Campaign::click_id`] or on the
//!    page URL) → [`Paid`](ReferrerClass::Paid);
//! 2. **`utm_medium`**: `cpc`, `ppc`, `paid*`, anything with `cp` (`cpm`, `cpv`, ...), `display`,
//!    `banner`, `retargeting`, `affiliate`, ... → paid; `email`, `e-mail`, `newsletter` → email;
//!    `social`, `social-media`, `sm`, ... → social; `organic` → search; `referral` → referral
//!    (the rules of Google Analytics' default channel grouping, which marketers already follow);
//! 3. **`utm_source`** naming a known search engine, social network or mail provider (by name,
//!    short form like `fb`, or domain) → that class;
//! 4. click ids that platforms add to organic links: `fbclid`, `igshid` → social; e-mail tool
//!    ids (`mc_cid`, `_hsenc`, `mkt_tok`, ...) → email;
//! 5. the **referrer**: none → [`Direct`](ReferrerClass::Direct); the page's own host (or a
//!    subdomain of it, or a parent) → [`Internal`](ReferrerClass::Internal); a host in the
//!    maintained referrer database → search / social / email; anything else →
//!    [`Referral`](ReferrerClass::Referral).
//!
//! The referrer database is Snowplow's referer-parser list (`data/referers.json`, Apache-2.0,
//! vendored from the PyPI package `referer-parser` 0.4.1; see `data/README.md`) plus a few
//! newer hosts in `data/referers-crow.json`. Both are embedded with `include_str!` and parsed once.
//! A host matches its own entry or, failing that, its parent domains' (`news.google.de` →
//! `google.de`), most specific first; `www.` is ignored; entries with a path (`bing.com/images`)
//! match that path prefix. Hosts the database lists as known non-search pages of search
//! companies (`maps.google.com`) are referrals.
//!
//! ```
//! use crow_core::model::ReferrerClass;
//! use crow_ingest::enrich::classify_referrer;
//!
//! let page = Some("https://shop.example/shoes");
//! assert_eq!(classify_referrer(page, Some("https://www.google.co.uk/"), None), ReferrerClass::Search);
//! assert_eq!(classify_referrer(page, Some("https://t.co/x1"), None), ReferrerClass::Social);
//! assert_eq!(classify_referrer(Some("https://shop.example/?gclid=abc"), Some("https://www.google.com/"), None), ReferrerClass::Paid);
//! assert_eq!(classify_referrer(page, None, None), ReferrerClass::Direct);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use crow_core::model::{Campaign, Interaction, ReferrerClass};
use serde_json::Value;

/// Snowplow's referer-parser database (see `data/README.md`).
const SNOWPLOW_REFERERS: &str = include_str!("../data/referers.json");
/// CROW's additions in the same layout.
const CROW_REFERERS: &str = include_str!("../data/referers-crow.json");

/// A referrer the database knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownReferrer {
    /// Its class: search, social, email, or referral for the known non-search hosts.
    pub class: ReferrerClass,
    /// The database's name for it, e.g. `Google`, `Facebook`, `Gmail`.
    pub name: &'static str,
}

#[derive(Debug, Default)]
struct Db {
    /// host (without `www.`) → referrer
    hosts: HashMap<String, KnownReferrer>,
    /// host → (path prefix, referrer), for entries like `bing.com/images/search`
    paths: HashMap<String, Vec<(String, KnownReferrer)>>,
    /// lowercase name (and its alphanumeric form) → class, for `utm_source`
    names: HashMap<String, ReferrerClass>,
}

fn medium_class(medium: &str) -> Option<ReferrerClass> {
    Some(match medium {
        "search" => ReferrerClass::Search,
        "social" => ReferrerClass::Social,
        "email" => ReferrerClass::Email,
        "unknown" => ReferrerClass::Referral,
        _ => return None,
    })
}

impl Db {
    /// Adds one file's entries; `overwrite` lets a later file replace earlier entries.
    fn load(&mut self, json: &str, overwrite: bool) {
        // BTreeMaps: a deterministic order, so duplicate domains always resolve the same way.
        let parsed: BTreeMap<String, BTreeMap<String, Value>> = match serde_json::from_str(json) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "embedded referrer database does not parse");
                return;
            }
        };
        // Specific kinds first, so a domain listed twice keeps its search/social/email class.
        for medium in ["search", "social", "email", "unknown"] {
            let Some(entries) = parsed.get(medium) else {
                continue;
            };
            let Some(class) = medium_class(medium) else {
                continue;
            };
            for (name, entry) in entries {
                let name: &'static str = Box::leak(name.clone().into_boxed_str());
                let known = KnownReferrer { class, name };
                if class != ReferrerClass::Referral {
                    let lower = name.to_lowercase();
                    let alnum: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
                    for key in [lower, alnum].into_iter().filter(|k| !k.is_empty()) {
                        if overwrite {
                            self.names.insert(key, class);
                        } else {
                            self.names.entry(key).or_insert(class);
                        }
                    }
                }
                let domains = entry
                    .get("domains")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                for d in domains.iter().filter_map(Value::as_str) {
                    let d = d.trim().to_lowercase();
                    let (host, path) = match d.find('/') {
                        Some(i) => (&d[..i], Some(&d[i..])),
                        None => (d.as_str(), None),
                    };
                    let host = strip_www(host).to_owned();
                    match path {
                        Some(p) => {
                            let list = self.paths.entry(host).or_default();
                            match list.iter_mut().find(|(prefix, _)| prefix == p) {
                                Some(slot) if overwrite => slot.1 = known,
                                Some(_) => {}
                                None => list.push((p.to_owned(), known)),
                            }
                        }
                        None if overwrite => {
                            self.hosts.insert(host, known);
                        }
                        None => {
                            self.hosts.entry(host).or_insert(known);
                        }
                    }
                }
            }
        }
    }

    fn lookup(&self, host: &str, path: &str) -> Option<KnownReferrer> {
        let mut h = strip_www(host);
        loop {
            if let Some(list) = self.paths.get(h)
                && let Some((_, k)) = list.iter().find(|(prefix, _)| path.starts_with(prefix.as_str()))
            {
                return Some(*k);
            }
            if let Some(k) = self.hosts.get(h) {
                return Some(*k);
            }
            let (_, parent) = h.split_once('.')?;
            h = parent;
        }
    }
}

fn db() -> &'static Db {
    static DB: OnceLock<Db> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = Db::default();
        db.load(SNOWPLOW_REFERERS, false);
        db.load(CROW_REFERERS, true);
        db
    })
}

fn strip_www(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

/// The parts of a URL the classification needs.
#[derive(Debug, PartialEq)]
struct UrlParts<'a> {
    /// Lowercase host without `www.`, port or userinfo.
    host: String,
    path: &'a str,
    query: Option<&'a str>,
}

/// Splits `scheme://user@host:port/path?query#frag` (scheme optional, as in `google.com/x`).
fn parse_url(s: &str) -> Option<UrlParts<'_>> {
    let s = s.trim();
    let rest = match s.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            rest
        }
        _ => s.strip_prefix("//").unwrap_or(s),
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    let host = strip_www(host.trim_end_matches('.').to_ascii_lowercase().as_str()).to_owned();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let frag_cut = tail.find('#').unwrap_or(tail.len());
    let tail = &tail[..frag_cut];
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    Some(UrlParts {
        host,
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

/// Looks a referrer URL (or a bare host) up in the referrer database.
///
/// ```
/// use crow_core::model::ReferrerClass;
/// use crow_ingest::enrich::lookup_referrer;
/// let k = lookup_referrer("https://mail.google.com/mail/u/0/").unwrap();
/// assert_eq!((k.class, k.name), (ReferrerClass::Email, "Gmail"));
/// assert!(lookup_referrer("https://example.org/").is_none());
/// ```
pub fn lookup_referrer(url_or_host: &str) -> Option<KnownReferrer> {
    let u = parse_url(url_or_host)?;
    db().lookup(&u.host, u.path)
}

/// Ad click ids: their presence means a paid click.
const PAID_CLICK_IDS: &[&str] = &[
    "gclid",
    "gbraid",
    "wbraid",
    "dclid",
    "gclsrc",
    "msclkid",
    "ttclid",
    "twclid",
    "li_fat_id",
    "yclid",
    "epik",
    "sccid",
    "scclid",
    "rdt_cid",
    "qclid",
    "s_kwcid",
    "ef_id",
    "irclickid",
];
/// Ids that social platforms add to every outbound link, paid or organic.
const SOCIAL_CLICK_IDS: &[&str] = &["fbclid", "igshid"];
/// Ids that e-mail tools add to the links of their mails.
const EMAIL_CLICK_IDS: &[&str] = &["mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok"];

/// Class of a `utm_medium` value (Google Analytics' default channel rules, plus common variants).
fn utm_medium_class(medium: &str) -> Option<ReferrerClass> {
    let m = medium.trim().to_ascii_lowercase();
    let paid = m.starts_with("paid")
        || m.contains("cp")
        || matches!(
            m.as_str(),
            "ppc"
                | "retargeting"
                | "remarketing"
                | "display"
                | "banner"
                | "sem"
                | "ad"
                | "ads"
                | "affiliate"
                | "affiliates"
                | "sponsored"
                | "interstitial"
                | "native"
        );
    if paid {
        return Some(ReferrerClass::Paid);
    }
    Some(match m.as_str() {
        "email" | "e-mail" | "e_mail" | "e mail" | "mail" | "newsletter" => ReferrerClass::Email,
        "social" | "social-network" | "social-media" | "social_network" | "social_media" | "social network"
        | "social media" | "sm" | "organic_social" | "organic-social" | "organicsocial" => ReferrerClass::Social,
        "organic" | "organic_search" | "organic-search" | "seo" => ReferrerClass::Search,
        "referral" | "referrer" => ReferrerClass::Referral,
        _ => return None,
    })
}

/// Class of a `utm_source` value: a short form, a database name, or a domain.
fn utm_source_class(source: &str) -> Option<ReferrerClass> {
    let s = source.trim().to_lowercase();
    if s.is_empty() {
        return None;
    }
    let short = match s.as_str() {
        "fb" | "ig" | "insta" | "tw" | "x" | "li" | "yt" | "pin" | "tiktok" | "reddit" | "threads" | "bluesky"
        | "mastodon" | "whatsapp" | "telegram" | "snapchat" | "discord" => Some(ReferrerClass::Social),
        "email" | "e-mail" | "newsletter" | "mailchimp" | "klaviyo" | "sendgrid" | "hubspot" | "brevo"
        | "sendinblue" | "mailerlite" | "campaignmonitor" | "substack" => Some(ReferrerClass::Email),
        "ddg" => Some(ReferrerClass::Search),
        _ => None,
    };
    if short.is_some() {
        return short;
    }
    let db = db();
    if let Some(c) = db.names.get(&s) {
        return Some(*c);
    }
    let alnum: String = s.chars().filter(|c| c.is_alphanumeric()).collect();
    if let Some(c) = db.names.get(&alnum) {
        return Some(*c);
    }
    if s.contains('.') {
        return lookup_referrer(&s)
            .map(|k| k.class)
            .filter(|c| *c != ReferrerClass::Referral);
    }
    None
}

/// True when `a` and `b` are the same site: equal hosts, or one a subdomain of the other.
fn same_site(a: &str, b: &str) -> bool {
    let sub = |x: &str, y: &str| x.len() > y.len() && x.ends_with(y) && x.as_bytes()[x.len() - y.len() - 1] == b'.';
    a == b || sub(a, b) || sub(b, a)
}

/// Classifies where a visit came from; see the [module docs](self) for the rules in order.
///
/// `page_url` is the landing page (its query string supplies click ids and `utm_*` values the
/// `campaign` lacks), `referrer` the referring URL, `campaign` the parsed UTM parameters.
pub fn classify_referrer(page_url: Option<&str>, referrer: Option<&str>, campaign: Option<&Campaign>) -> ReferrerClass {
    let page = page_url.and_then(parse_url);
    let params: Vec<(String, String)> = page
        .as_ref()
        .and_then(|p| p.query)
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let has_param = |names: &[&str]| params.iter().any(|(k, _)| names.contains(&k.as_str()));

    // 1. ad click ids
    let click_id = campaign
        .and_then(|c| c.click_id.as_deref())
        .map(str::to_ascii_lowercase);
    let click_class = click_id.as_deref().map(|id| {
        if SOCIAL_CLICK_IDS.contains(&id) {
            ReferrerClass::Social
        } else if EMAIL_CLICK_IDS.contains(&id) {
            ReferrerClass::Email
        } else {
            ReferrerClass::Paid
        }
    });
    if click_class == Some(ReferrerClass::Paid) || has_param(PAID_CLICK_IDS) {
        return ReferrerClass::Paid;
    }
    // 2. utm_medium, 3. utm_source
    let medium = campaign
        .and_then(|c| c.medium.as_deref())
        .or_else(|| param("utm_medium"));
    if let Some(class) = medium.and_then(utm_medium_class) {
        return class;
    }
    let source = campaign
        .and_then(|c| c.source.as_deref())
        .or_else(|| param("utm_source"));
    if let Some(class) = source.and_then(utm_source_class) {
        return class;
    }
    // 4. platform ids on organic links
    if let Some(class) = click_class {
        return class;
    }
    if has_param(EMAIL_CLICK_IDS) {
        return ReferrerClass::Email;
    }
    if has_param(SOCIAL_CLICK_IDS) {
        return ReferrerClass::Social;
    }
    // 5. the referrer
    let referrer = referrer.map(str::trim).unwrap_or_default();
    if referrer.is_empty()
        || referrer.starts_with('$')
        || matches!(
            referrer.to_ascii_lowercase().as_str(),
            "direct" | "(direct)" | "about:blank" | "null"
        )
    {
        return ReferrerClass::Direct;
    }
    let Some(r) = parse_url(referrer) else {
        return ReferrerClass::Referral;
    };
    if page.as_ref().is_some_and(|p| same_site(&p.host, &r.host)) {
        return ReferrerClass::Internal;
    }
    db().lookup(&r.host, r.path)
        .map_or(ReferrerClass::Referral, |k| k.class)
}

/// Classifies an event by its page URL, referrer and campaign.
pub fn classify_interaction(ev: &Interaction) -> ReferrerClass {
    let page = ev.context.page.as_ref();
    classify_referrer(
        page.and_then(|p| p.url.as_deref()),
        page.and_then(|p| p.referrer.as_deref()),
        ev.context.campaign.as_ref(),
    )
}

/// True when the event says anything about where the visit came from (a page URL, a referrer
/// or a campaign). Events without (a `track` from a server, an `identify`) take their session's
/// class instead of being called direct.
pub fn has_origin(ev: &Interaction) -> bool {
    ev.context
        .page
        .as_ref()
        .is_some_and(|p| p.url.is_some() || p.referrer.is_some())
        || ev.context.campaign.as_ref().is_some_and(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReferrerClass::*;

    const PAGE: Option<&str> = Some("https://shop.example.com/products/42");

    fn by_ref(referrer: &str) -> ReferrerClass {
        classify_referrer(PAGE, Some(referrer), None)
    }

    fn camp(source: Option<&str>, medium: Option<&str>, click_id: Option<&str>) -> Campaign {
        Campaign {
            source: source.map(Into::into),
            medium: medium.map(Into::into),
            click_id: click_id.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn database_loads() {
        let db = db();
        assert!(db.hosts.len() > 1_000, "{}", db.hosts.len());
        assert!(db.paths.contains_key("google.com"));
    }

    #[test]
    fn search_engines() {
        for url in [
            "https://www.google.com/search?q=running+shoes",
            "https://www.google.co.uk/",
            "https://google.de/url?sa=t&url=https%3A%2F%2Fshop.example.com",
            "HTTPS://WWW.Google.COM:443/search?q=x",
            "https://www.bing.com/search?q=shoes&form=QBLH",
            "https://www.bing.com/images/search?q=shoes",
            "https://duckduckgo.com/",
            "https://html.duckduckgo.com/html/",
            "https://search.yahoo.com/search?p=shoes",
            "https://yandex.ru/search/?text=shoes",
            "https://www.baidu.com/s?wd=shoes",
            "https://www.ecosia.org/search?q=shoes",
            "https://search.brave.com/search?q=shoes",
            "android-app://com.google.android.googlequicksearchbox/",
        ] {
            assert_eq!(by_ref(url), Search, "{url}");
        }
    }

    #[test]
    fn social_networks() {
        for url in [
            "https://www.facebook.com/",
            "https://m.facebook.com/story.php?id=1",
            "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example.com",
            "https://t.co/AbCdEf123",
            "https://twitter.com/someone/status/1",
            "https://x.com/someone/status/1",
            "https://www.linkedin.com/feed/",
            "https://lnkd.in/eXyZ",
            "https://www.reddit.com/r/running/comments/abc/",
            "https://out.reddit.com/t3_abc",
            "https://l.instagram.com/?u=https%3A%2F%2Fshop.example.com",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://news.ycombinator.com/item?id=1",
            "https://bsky.app/profile/someone",
            "https://www.pinterest.com/pin/1/",
        ] {
            assert_eq!(by_ref(url), Social, "{url}");
        }
    }

    #[test]
    fn email_providers() {
        for url in [
            "https://mail.google.com/mail/u/0/",
            "https://outlook.live.com/mail/0/inbox",
            "https://outlook.office.com/mail/",
            "https://mail.yahoo.com/d/folders/1",
            "https://mail.yandex.ru/",
            "https://mail.proton.me/u/0/inbox",
            "android-app://com.google.android.gm/",
        ] {
            assert_eq!(by_ref(url), Email, "{url}");
        }
    }

    #[test]
    fn known_non_search_hosts_and_others_are_referrals() {
        for url in [
            "https://maps.google.com/",
            "https://some-blog.net/post/1",
            "https://example.org",
            "not a url at all",
        ] {
            assert_eq!(by_ref(url), Referral, "{url}");
        }
        assert_eq!(
            lookup_referrer("https://news.yahoo.com/").map(|k| k.class),
            Some(Referral)
        );
    }

    #[test]
    fn direct_and_internal() {
        assert_eq!(classify_referrer(PAGE, None, None), Direct);
        assert_eq!(classify_referrer(PAGE, Some(""), None), Direct);
        assert_eq!(classify_referrer(PAGE, Some("$direct"), None), Direct);
        assert_eq!(classify_referrer(None, None, None), Direct);
        assert_eq!(by_ref("https://shop.example.com/cart"), Internal);
        assert_eq!(by_ref("http://shop.example.com:8080/"), Internal);
        assert_eq!(
            classify_referrer(Some("https://www.example.com/"), Some("https://example.com/a"), None),
            Internal
        );
        assert_eq!(by_ref("https://checkout.shop.example.com/"), Internal);
        assert_eq!(by_ref("https://example.com/"), Internal);
        assert_eq!(by_ref("https://otherexample.com/"), Referral);
        // a site that is also in the database is still internal on its own pages
        assert_eq!(
            classify_referrer(Some("https://www.google.com/x"), Some("https://www.google.com/y"), None),
            Internal
        );
    }

    #[test]
    fn click_ids_and_utm_come_first() {
        let google = Some("https://www.google.com/");
        assert_eq!(
            classify_referrer(Some("https://shop.example.com/?gclid=abc123"), google, None),
            Paid
        );
        assert_eq!(
            classify_referrer(
                Some("https://shop.example.com/?msclkid=1"),
                Some("https://www.bing.com/"),
                None
            ),
            Paid
        );
        assert_eq!(
            classify_referrer(PAGE, google, Some(&camp(None, None, Some("gclid")))),
            Paid
        );
        assert_eq!(
            classify_referrer(PAGE, google, Some(&camp(Some("google"), Some("cpc"), None))),
            Paid
        );
        for m in [
            "cpc",
            "ppc",
            "paid",
            "paidsearch",
            "paid_social",
            "display",
            "cpm",
            "retargeting",
            "affiliate",
        ] {
            assert_eq!(
                classify_referrer(PAGE, google, Some(&camp(None, Some(m), None))),
                Paid,
                "{m}"
            );
        }
        for m in ["email", "E-Mail", "newsletter"] {
            assert_eq!(
                classify_referrer(PAGE, google, Some(&camp(None, Some(m), None))),
                Email,
                "{m}"
            );
        }
        assert_eq!(
            classify_referrer(
                Some("https://shop.example.com/?utm_medium=email&utm_source=spring"),
                None,
                None
            ),
            Email
        );
        assert_eq!(
            classify_referrer(PAGE, None, Some(&camp(None, Some("social"), None))),
            Social
        );
        assert_eq!(
            classify_referrer(PAGE, None, Some(&camp(None, Some("organic"), None))),
            Search
        );
        // utm_source naming a network, with a medium that says nothing
        assert_eq!(
            classify_referrer(PAGE, None, Some(&camp(Some("facebook"), None, None))),
            Social
        );
        assert_eq!(
            classify_referrer(PAGE, None, Some(&camp(Some("fb"), Some("post"), None))),
            Social
        );
        assert_eq!(
            classify_referrer(PAGE, None, Some(&camp(Some("Google"), None, None))),
            Search
        );
        assert_eq!(
            classify_referrer(PAGE, None, Some(&camp(Some("newsletter"), None, None))),
            Email
        );
        assert_eq!(
            classify_referrer(PAGE, None, Some(&camp(Some("linkedin.com"), None, None))),
            Social
        );
        // an unknown source falls through to the referrer
        assert_eq!(
            classify_referrer(PAGE, google, Some(&camp(Some("partner-x"), None, None))),
            Search
        );
        // organic platform ids
        assert_eq!(
            classify_referrer(Some("https://shop.example.com/?fbclid=IwAR0"), None, None),
            Social
        );
        assert_eq!(
            classify_referrer(PAGE, None, Some(&camp(None, None, Some("fbclid")))),
            Social
        );
        assert_eq!(
            classify_referrer(Some("https://shop.example.com/?mc_cid=1&mc_eid=2"), None, None),
            Email
        );
        // paid medium beats an organic click id
        assert_eq!(
            classify_referrer(
                PAGE,
                None,
                Some(&camp(Some("facebook"), Some("paid_social"), Some("fbclid")))
            ),
            Paid
        );
    }

    #[test]
    fn urls_parse() {
        let u = parse_url("https://user:pw@WWW.Example.COM.:8443/a/b?x=1#frag").unwrap();
        assert_eq!(
            u,
            UrlParts {
                host: "example.com".into(),
                path: "/a/b",
                query: Some("x=1")
            }
        );
        assert_eq!(parse_url("google.com").unwrap().host, "google.com");
        assert_eq!(parse_url("//cdn.example.com/x").unwrap().host, "cdn.example.com");
        assert_eq!(parse_url("http://[::1]:80/").unwrap().host, "::1");
        assert!(parse_url("https:///nohost").is_none());
        assert!(same_site("a.b.com", "b.com") && !same_site("ab.com", "b.com"));
    }
}
