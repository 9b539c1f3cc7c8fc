//! Pattern entities: money, dates, order numbers, URLs, handles, hashtags, and the personal data
//! crow-core's privacy detectors find (e-mail addresses, phones, cards, IBANs, SSNs, IPs).
//!
//! # Rules
//!
//! | kind | what | examples | not |
//! |---|---|---|---|
//! | `money` | an amount with a currency symbol, ISO code or word before or after it; amounts `1299`, `12.50`, `12,50`, `1,299.00`, `1.299,00` (and `1 299,00` before a currency), optionally `k`/`m`/`bn` or `thousand`/`million`/`billion` | `$12.50`, `US$ 5`, `€30`, `30 €`, `12,50 EUR`, `EUR 30`, `£5`, `¥1200`, `1.299,00 €`, `2k USD`, `20 euros`, `$1.5m` | `19.99`, `1200` (no currency) |
//! | `date` | ISO `2026-12-04` (with an optional time), `2026/12/04`; `04/12/2026`, `12/4/26`, `04.12.2026`, `04-12-2026` (day and month 1–31, one of them ≤ 12); English month names: `4 Dec 2026`, `4th of December`, `December 4th, 2026`, `Dec. 4`, `Monday, December 4`, `December 2026` | | `1.2.3`, `3/4` (no year), `may 4` (lowercase `may`/`march` are verbs), `2026-13-45` |
//! | `order_number` | an order word (`order`, `invoice`, `ticket`, `booking`, `reservation`, `confirmation`, `tracking`, `reference`, `ref`, `rma`, `po`, `case`, `claim`, `return`), then a connector (`number`, `num`, `no.`, `nr.`, `id`, `#`, `:`) and an id of letters, digits and `-` with at least 3 digits; or one of the first ten words directly followed by an id of 5+ characters with 4+ digits. The entity is the id, with its `#` when written | `order #12345`, `order no. AB-1234`, `order number 778812`, `ticket #A12345`, `invoice: INV-2026-001`, `order 1234567` | `order 3 pizzas`, `case 12345` (`case`, `claim` and `return` need a connector), `#12345` alone |
//! | `email`, `phone`, `card`, `iban`, `ssn`, `ip` | crow-core's [`Scrubber::findings`](crow_core::privacy::Scrubber::findings): one definition of PII for all of CROW. `pii: true` | `jo@example.com`, `+1 (415) 555-2671`, `020 7946 0958` | `19.99`, `order 100234`, `v1.2.3` |
//! | `url` | `http://`, `https://`, `ftp://` or `www.` up to whitespace, without trailing punctuation (a closing bracket is kept when it closes one opened inside); bare domains with a common TLD (`.com`, `.net`, `.org`, `.io`, `.shop`, `.store`, `.app`, `.dev`, `.co.uk`, `.de`, `.fr`, `.nl`, `.eu`, `.ch`) and an optional path | `https://shop.example/p?id=1`, `www.example.com`, `amazon.de/orders` | `file.rs`, `e.g.`, the domain of an e-mail address |
//! | `handle` | `@` and 1–30 letters, digits, `_`, `.` (not first or last), with a letter or `_`, not right after a letter, digit or `.` (so never inside an e-mail address) | `@support_team`, `@jane.doe` | `jo@example.com`, `@2026` |
//! | `hashtag` | `#` and letters, digits, `_` (Unicode), with at least one letter, not right after a letter, digit or `&` | `#fail`, `#café`, `#2026goals` | `#12345`, `C#`, `&#39;` |
//!
//! An amount, date or id glued to more digits (`$12.505`, `1.2.2026.4`) is not taken.
//!
//! # Overlaps
//!
//! The kinds are found independently and combined with [`merge`](super::merge()), in the order
//! PII, `url`, `money`, `date`, `order_number`, `handle`, `hashtag`: the longer span wins, ties go
//! to the earlier kind (a Luhn-valid card number after `order` is a `card`). An entity that
//! won over personal data it contains (a URL with an e-mail address in its query) is marked
//! `pii: true` too, so its text is never stored.

use std::sync::OnceLock;

use crow_core::ports::Entity;
use crow_core::privacy::Scrubber;
use regex::Regex;

use super::merge;

/// Compiles one of the constant patterns below, with every `\b` made an ASCII word boundary:
/// a Unicode `\b` stops the regex crate's fast DFA at the first non-ASCII byte of the text
/// (1 MB of mixed text took 1.3 s instead of tens of ms), and every boundary here sits next to
/// ASCII digits, letters or currency codes anyway.
fn compile(pattern: &str) -> Regex {
    Regex::new(&pattern.replace(r"\b", r"(?-u:\b)")).expect("the entity patterns are valid")
}

/// Currency symbols written before or after an amount.
const SYMBOL: &str = r"(?:(?:\b(?:US|CA|C|AU|A|NZ|HK|S|R|MX|NT))?\$|€|£|¥|₹|₩|₽|₺|₪|₫|฿|₴|₦|₱|₡|₵|₸|円|元)";
/// ISO 4217 codes of the common currencies (upper case only: `eur` in a word is not one).
const CODE: &str = r"(?:USD|EUR|GBP|JPY|CNY|RMB|CHF|CAD|AUD|NZD|HKD|SGD|INR|KRW|RUB|TRY|PLN|SEK|NOK|DKK|CZK|HUF|RON|BGN|BRL|MXN|ARS|CLP|COP|ZAR|AED|SAR|ILS|THB|IDR|MYR|PHP|VND|TWD|UAH|NGN|EGP|KES|PKR|BDT)";
/// Currency words after an amount.
const WORD: &str = r"(?i-u:euros?|dollars?|bucks|yen|francs?|rupees?)";
/// An amount without spaces: `1,299.00`, `1.299,00`, `12.50`, `12,50`, `1299`.
const AMOUNT: &str = r"(?:[0-9]{1,3}(?:[.,'][0-9]{3})+(?:[.,][0-9]{1,2})?|[0-9]+(?:[.,][0-9]{1,2})?)";
/// An amount that may group thousands with spaces (`1 299,00`): only before a currency.
const AMOUNT_SP: &str =
    r"(?:[0-9]{1,3}(?:[.,'\x20\u{A0}\u{202F}][0-9]{3})+(?:[.,][0-9]{1,2})?|[0-9]+(?:[.,][0-9]{1,2})?)";
/// A multiplier after an amount: `2k`, `1.5m`, `3bn`, `3 million`.
const MULT: &str = r"(?:(?:[kKmM]|bn|BN)\b|\s(?i-u:thousand|million|billion)\b)?";

fn money_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let pattern = format!(
            r"{SYMBOL}\s?{AMOUNT}{MULT}|\b{CODE}\s?{AMOUNT}{MULT}|\b{AMOUNT_SP}{MULT}\s?(?:{SYMBOL}|{CODE}\b|{WORD}\b)"
        );
        compile(&pattern)
    })
}

/// Month names, ASCII case-insensitive (capture group `m`).
const MONTH: &str = r"(?P<m>(?i-u:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?))";
/// Day of month with an optional ordinal suffix.
const DAY: &str = r"(?:3[01]|[12][0-9]|0?[1-9])(?i-u:st|nd|rd|th)?";
const YEAR: &str = r"(?:1[89][0-9]{2}|2[0-9]{3})";
const WEEKDAY: &str =
    r"(?:(?i-u:mon|tue|tues|wed|wednes|thu|thur|thurs|fri|sat|satur|sun)(?i-u:day)?\.?,?\s+(?:the\s+)?)?";

fn date_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let iso = r"(?P<iso>[12][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])(?:[T\x20][0-2][0-9]:[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,9})?)?(?:Z|[+-][0-2][0-9]:?[0-5][0-9])?)?|[12][0-9]{3}/(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12][0-9]|3[01]))";
        let num = r"(?P<num>[0-9]{1,2}/[0-9]{1,2}/(?:[0-9]{4}|[0-9]{2})|[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}|[0-9]{1,2}-[0-9]{1,2}-[0-9]{4})";
        let dmy = format!(r"{WEEKDAY}{DAY}\s+(?:of\s+)?{MONTH}\b\.?(?:,?\s+{YEAR}\b)?");
        let mdy = format!(r"{WEEKDAY}{MONTH}\b\.?\s+(?:{DAY}\b(?:,?\s+{YEAR}\b)?|{YEAR}\b)").replace("?P<m>", "?P<m2>");
        let pattern = format!(r"\b(?:{iso}|{num})\b|\b{dmy}|\b{mdy}");
        compile(&pattern)
    })
}

/// Order words that may be followed directly by an id.
const STRONG_ORDER_WORDS: &[&str] = &[
    "order",
    "invoice",
    "ticket",
    "booking",
    "reservation",
    "confirmation",
    "tracking",
    "reference",
    "ref",
    "rma",
    "po",
];

fn order_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let pattern = r"\b(?P<kw>(?i-u:order|invoice|ticket|booking|reservation|confirmation|tracking|reference|ref|rma|po|case|claim|return))(?i-u:s)?\b(?P<conn>\s*(?i-u:number|num|no|nr|id)\b\.?)?\s*(?P<colon>:)?\s*(?P<id>#?[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}[A-Za-z0-9])?)";
        compile(pattern)
    })
}

fn url_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let scheme = r#"\b(?i-u:https?://|ftp://|www\.)[^\s<>"'`]+"#;
        let label = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
        let bare = format!(
            r#"\b{label}(?:\.{label})*\.(?i-u:com|net|org|io|shop|store|app|dev|co\.uk|de|fr|nl|eu|ch)\b(?:/[^\s<>"'`]*)?"#
        );
        compile(&format!("{scheme}|{bare}"))
    })
}

fn handle_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| compile(r"@[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?"))
}

fn hashtag_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| compile(r"#\w+"))
}

/// The pattern entities of `text` (see the [module docs](self) for every rule), sorted by
/// start, never overlapping. `pii` is true for personal data (`email`, `phone`, `card`,
/// `iban`, `ssn`, `ip`) and for any entity that contains some.
///
/// ```
/// use crow_nlp::entities::find_patterns;
///
/// let text = "Refund 1.299,00 € for order no. AB-1234 by 04/12/2026, call +1 (415) 555-2671 #fail";
/// let got: Vec<_> = find_patterns(text).into_iter().map(|e| (e.kind, e.text, e.pii)).collect();
/// assert_eq!(got, [
///     ("money".into(), "1.299,00 €".into(), false),
///     ("order_number".into(), "AB-1234".into(), false),
///     ("date".into(), "04/12/2026".into(), false),
///     ("phone".into(), "+1 (415) 555-2671".into(), true),
///     ("hashtag".into(), "#fail".into(), false),
/// ]);
/// // Plain numbers, versions and prices without a currency are not entities.
/// assert!(find_patterns("v1.2.3 costs 19.99, ref 12, 3.14 and 1714557600").is_empty());
/// ```
pub fn find_patterns(text: &str) -> Vec<Entity> {
    if text.is_empty() {
        return Vec::new();
    }
    let pii: Vec<Entity> = Scrubber::global()
        .findings(text)
        .into_iter()
        .map(|f| entity(text, f.kind, f.start, f.end, true))
        .collect();
    let lists = vec![
        pii.clone(),
        urls(text),
        money(text),
        dates(text),
        order_numbers(text),
        handles(text),
        hashtags(text),
    ];
    let mut out = merge(lists);
    if !pii.is_empty() {
        // Both lists are sorted by start: mark entities that swallowed personal data.
        let mut j = 0;
        for e in &mut out {
            while j < pii.len() && pii[j].end <= e.start {
                j += 1;
            }
            if j < pii.len() && pii[j].start < e.end {
                e.pii = true;
            }
        }
    }
    out
}

fn entity(text: &str, kind: &str, start: usize, end: usize, pii: bool) -> Entity {
    Entity {
        kind: kind.to_owned(),
        text: text[start..end].to_owned(),
        start,
        end,
        product_id: None,
        pii,
    }
}

/// The char before byte `i` (None at the start).
fn before(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// The char at byte `i` (None at the end).
fn after(text: &str, i: usize) -> Option<char> {
    text[i..].chars().next()
}

/// True when the text at `i` continues a number: a digit, or `.`/`,`/`/`/`-` then a digit.
fn number_continues(text: &str, i: usize) -> bool {
    let b = text.as_bytes();
    match b.get(i) {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'.' | b',' | b'/' | b'-') => b.get(i + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// True when the text before `i` ends a number: a digit, or a digit then `.`/`,`/`/`/`-`.
fn number_precedes(text: &str, i: usize) -> bool {
    let b = text.as_bytes();
    if i == 0 {
        return false;
    }
    match b[i - 1] {
        c if c.is_ascii_digit() => true,
        b'.' | b',' | b'/' | b'-' => i >= 2 && b[i - 2].is_ascii_digit(),
        _ => false,
    }
}

/// Every match of `re` that `accept` takes (it returns the entity's byte range), left to
/// right, without overlaps. A rejected match does not hide the matches that start inside it:
/// the search resumes on the next character after the rejected match's start.
fn scan(
    re: &Regex,
    text: &str,
    kind: &str,
    mut accept: impl FnMut(&regex::Captures<'_>) -> Option<(usize, usize)>,
) -> Vec<Entity> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let Some(c) = re.captures_at(text, pos) else {
            break;
        };
        let Some(m) = c.get(0) else { break };
        let next_char = m.start() + after(text, m.start()).map_or(1, char::len_utf8);
        match accept(&c) {
            Some((start, end)) if start < end => {
                out.push(entity(text, kind, start, end, false));
                pos = end.max(next_char);
            }
            _ => pos = next_char,
        }
    }
    out
}

fn money(text: &str) -> Vec<Entity> {
    if !text.bytes().any(|c| c.is_ascii_digit()) {
        return Vec::new();
    }
    scan(money_re(), text, "money", |c| {
        let m = c.get(0)?;
        (!number_continues(text, m.end()) && !number_precedes(text, m.start())).then_some((m.start(), m.end()))
    })
}

fn dates(text: &str) -> Vec<Entity> {
    if !text.bytes().any(|c| c.is_ascii_digit()) {
        return Vec::new();
    }
    scan(date_re(), text, "date", |c| {
        let m = c.get(0)?;
        if number_continues(text, m.end()) || number_precedes(text, m.start()) {
            return None;
        }
        if let Some(num) = c.name("num")
            && !numeric_date_ok(num.as_str())
        {
            return None;
        }
        // `may` and `march` written in lower case are verbs, not months.
        if let Some(month) = c.name("m").or_else(|| c.name("m2"))
            && matches!(month.as_str(), "may" | "mar" | "march")
        {
            return None;
        }
        Some((m.start(), m.end()))
    })
}

/// `a/b/y`, `a.b.yyyy`, `a-b-yyyy`: both a and b in 1..=31 and at least one of them ≤ 12.
fn numeric_date_ok(s: &str) -> bool {
    let mut parts = s.split(['/', '.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        return false;
    };
    (1..=31).contains(&a) && (1..=31).contains(&b) && (a <= 12 || b <= 12)
}

fn order_numbers(text: &str) -> Vec<Entity> {
    if !text.bytes().any(|c| c.is_ascii_digit()) {
        return Vec::new();
    }
    scan(order_re(), text, "order_number", |c| {
        let (kw, id) = (c.name("kw")?, c.name("id")?);
        let ids = id.as_str();
        let hash = ids.starts_with('#');
        let digits = ids.bytes().filter(u8::is_ascii_digit).count();
        let connected = hash || c.name("conn").is_some() || c.name("colon").is_some();
        let strong = STRONG_ORDER_WORDS.iter().any(|w| kw.as_str().eq_ignore_ascii_case(w));
        let ok = if connected {
            digits >= 3
        } else {
            strong && digits >= 4 && ids.len() >= 5
        };
        let glued = number_continues(text, id.end()) || after(text, id.end()).is_some_and(char::is_alphanumeric);
        (ok && !glued).then_some((id.start(), id.end()))
    })
}

fn urls(text: &str) -> Vec<Entity> {
    if !text.contains('.') {
        return Vec::new();
    }
    let mut out = Vec::new();
    for m in url_re().find_iter(text) {
        // Not the domain of an e-mail address, not inside a longer dotted or dashed word.
        if before(text, m.start()).is_some_and(|c| matches!(c, '@' | '.' | '-' | '_' | '/') || c.is_alphanumeric()) {
            continue;
        }
        let s = m.as_str();
        let end = m.start() + trim_url(s);
        if end > m.start() {
            out.push(entity(text, "url", m.start(), end, false));
        }
    }
    out
}

/// The length of `url` without trailing punctuation; a closing bracket stays when it closes
/// one opened inside the URL (`https://en.wikipedia.org/wiki/Rust_(language)`).
fn trim_url(url: &str) -> usize {
    let mut end = url.len();
    loop {
        let Some(c) = url[..end].chars().next_back() else {
            return end;
        };
        let drop = match c {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' | '*' | '…' => true,
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                let s = &url[..end];
                s.matches(open).count() < s.matches(c).count()
            }
            _ => false,
        };
        if !drop {
            return end;
        }
        end -= c.len_utf8();
    }
}

fn handles(text: &str) -> Vec<Entity> {
    if !text.contains('@') {
        return Vec::new();
    }
    handle_re()
        .find_iter(text)
        .filter(|m| {
            let name = &m.as_str()[1..];
            let ok_before =
                before(text, m.start()).is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '@')));
            let ok_after = after(text, m.end()).is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '@' | '_')));
            ok_before && ok_after && name.bytes().any(|c| c.is_ascii_alphabetic() || c == b'_')
        })
        .map(|m| entity(text, "handle", m.start(), m.end(), false))
        .collect()
}

fn hashtags(text: &str) -> Vec<Entity> {
    if !text.contains('#') {
        return Vec::new();
    }
    hashtag_re()
        .find_iter(text)
        .filter(|m| {
            let ok_before =
                before(text, m.start()).is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '&' | '_' | '#')));
            ok_before && m.as_str()[1..].chars().any(char::is_alphabetic)
        })
        .map(|m| entity(text, "hashtag", m.start(), m.end(), false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (kind, text) of every pattern entity, checking offsets and order.
    fn pats(text: &str) -> Vec<(String, String)> {
        let es = find_patterns(text);
        for e in &es {
            assert_eq!(&text[e.start..e.end], e.text);
        }
        assert!(es.windows(2).all(|w| w[0].end <= w[1].start), "{es:?}");
        es.into_iter().map(|e| (e.kind, e.text)).collect()
    }

    fn only(kind: &str, text: &str) -> Vec<String> {
        pats(text)
            .into_iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, t)| t)
            .collect()
    }

    #[track_caller]
    fn whole(kind: &str, text: &str) {
        assert_eq!(
            pats(text),
            [(kind.to_owned(), text.to_owned())],
            "{text:?} should be one {kind}"
        );
    }

    #[test]
    fn regexes_compile() {
        money_re();
        date_re();
        order_re();
        url_re();
        handle_re();
        hashtag_re();
    }

    #[test]
    fn money_forms() {
        for m in [
            "$12.50",
            "US$ 5",
            "US$5",
            "€30",
            "30 €",
            "30€",
            "12,50 EUR",
            "EUR 30",
            "£5",
            "¥1200",
            "1.299,00 €",
            "1 299,00 €",
            "1,299.00 USD",
            "$1,299",
            "2k USD",
            "$2k",
            "$1.5m",
            "$3 million",
            "20 euros",
            "5 bucks",
            "CHF 49.90",
            "₹ 4,999",
            "R$ 99,90",
            "300 JPY",
        ] {
            whole("money", m);
        }
        assert_eq!(only("money", "It cost me $12.50, not €30."), ["$12.50", "€30"]);
        assert_eq!(only("money", "paid 49,99€ + 4,99 € shipping"), ["49,99€", "4,99 €"]);
    }

    #[test]
    fn money_false_positives() {
        for t in [
            "19.99",
            "1200 items",
            "version 1.2.3",
            "EUROPE 30",
            "3.14",
            "call 415 555 2671",
            "USD",
            "$",
            "€",
            "$1.23456",
            "eur 30",
        ] {
            assert!(only("money", t).is_empty(), "{t:?}: {:?}", pats(t));
        }
    }

    #[test]
    fn date_forms() {
        for d in [
            "2026-12-04",
            "2026-12-04T10:30:00Z",
            "2026-12-04 10:30",
            "2026/12/04",
            "04/12/2026",
            "12/4/26",
            "04.12.2026",
            "04-12-2026",
            "4 Dec 2026",
            "4th of December",
            "December 4th, 2026",
            "Dec. 4",
            "Dec 4",
            "Sept. 30, 2025",
            "Monday, December 4",
            "December 2026",
            "1st Jan",
            "May 4",
        ] {
            whole("date", d);
        }
        assert_eq!(
            only("date", "Ordered on 2026-12-04, arrived 12/9/26."),
            ["2026-12-04", "12/9/26"]
        );
    }

    #[test]
    fn date_false_positives() {
        for t in [
            "1.2.3",
            "v1.2.30",
            "3/4",
            "13/13/2026",
            "2026-13-45",
            "you may 4 times",
            "march 3 miles",
            "Dec 40",
            "1.2.2026.4",
            "192.168.2026.1",
            "10/10",
            "rated 5/5",
        ] {
            assert!(only("date", t).is_empty(), "{t:?}: {:?}", pats(t));
        }
    }

    #[test]
    fn order_numbers_forms() {
        for (text, id) in [
            ("order #12345", "#12345"),
            ("Order no. AB-1234", "AB-1234"),
            ("order number 778812", "778812"),
            ("ORDER NUMBER: 778812", "778812"),
            ("ticket #A12345", "#A12345"),
            ("case #A12345", "#A12345"),
            ("invoice: INV-2026-001", "INV-2026-001"),
            ("order 1234567 never came", "1234567"),
            ("my order id 55-12-999", "55-12-999"),
            ("claim no. 4451", "4451"),
            ("Booking ref XK12345", "XK12345"),
            ("orders #123 and", "#123"),
        ] {
            assert_eq!(only("order_number", text), [id], "{text:?}: {:?}", pats(text));
        }
    }

    #[test]
    fn order_number_false_positives() {
        for t in [
            "order 3 pizzas",
            "in case 12345 people",
            "#12345",
            "order 100 pcs",
            "order now",
            "case closed",
            "return 2 items",
            "order #12",
            "recorder 123456",
            "order $1299",
            "order 1,299.00",
        ] {
            assert!(only("order_number", t).is_empty(), "{t:?}: {:?}", pats(t));
        }
    }

    #[test]
    fn pii_from_the_privacy_detectors() {
        let text = "mail jo.doe@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, \
                    IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, from 203.0.113.7";
        let es = find_patterns(text);
        let got: Vec<_> = es.iter().map(|e| (e.kind.as_str(), e.text.as_str(), e.pii)).collect();
        assert_eq!(
            got,
            [
                ("email", "jo.doe@example.com", true),
                ("phone", "+44 20 7946 0958", true),
                ("card", "4111 1111 1111 1111", true),
                ("iban", "DE89 3704 0044 0532 0130 00", true),
                ("ssn", "123-45-6789", true),
                ("ip", "203.0.113.7", true),
            ]
        );
        // A card number after `order` is a card, not an order number.
        assert_eq!(
            pats("order 4111111111111111"),
            [("card".into(), "4111111111111111".into())]
        );
    }

    #[test]
    fn prices_versions_and_plain_numbers_are_not_phones() {
        for t in [
            "19.99",
            "$19.99",
            "1,234,567",
            "v1.2.3",
            "2024-05-01",
            "order 100234",
            "1714557600",
            "12345 67890",
            "3.14",
            "x64",
            "Chrome/120.0.6099.109",
        ] {
            let es = find_patterns(t);
            assert!(es.iter().all(|e| !e.pii), "{t:?}: {es:?}");
        }
        assert_eq!(pats("$415.55"), [("money".into(), "$415.55".into())]);
    }

    #[test]
    fn urls_handles_hashtags() {
        assert_eq!(
            only(
                "url",
                "see https://shop.example/p?id=1&x=2. Or (www.example.com), amazon.de/orders!"
            ),
            ["https://shop.example/p?id=1&x=2", "www.example.com", "amazon.de/orders"]
        );
        assert_eq!(
            only("url", "https://en.wikipedia.org/wiki/Rust_(language)"),
            ["https://en.wikipedia.org/wiki/Rust_(language)"]
        );
        assert!(only("url", "file.rs, e.g. this, node.js and 1.5").is_empty());
        assert_eq!(
            only("handle", "thanks @support_team and @jane.doe."),
            ["@support_team", "@jane.doe"]
        );
        assert!(only("handle", "jo@example.com, logo@2x.png, @2026, a@b").is_empty());
        assert_eq!(
            only("hashtag", "#fail #café #2026goals"),
            ["#fail", "#café", "#2026goals"]
        );
        assert!(only("hashtag", "#12345 C# &#39; a#b").is_empty());
        // An e-mail address wins over the domain and the handle inside it.
        assert_eq!(pats("jo@example.com"), [("email".into(), "jo@example.com".into())]);
        // A URL that carries an e-mail address is personal data too.
        let es = find_patterns("https://x.example/?e=jo@example.com");
        assert_eq!((es.len(), es[0].kind.as_str(), es[0].pii), (1, "url", true));
    }

    #[test]
    fn unicode_offsets() {
        let text = "😀 Ünïcödé: 30 € — order #A12345 — 4 déc? no: 4 Dec 2026 😀 #fête";
        let got = pats(text);
        assert_eq!(
            got,
            [
                ("money".into(), "30 €".into()),
                ("order_number".into(), "#A12345".into()),
                ("date".into(), "4 Dec 2026".into()),
                ("hashtag".into(), "#fête".into()),
            ]
        );
    }

    #[test]
    fn empty_and_noise() {
        assert!(find_patterns("").is_empty());
        assert!(find_patterns("Great product, fast delivery!").is_empty());
        let mut s = String::new();
        for i in 0..4000u32 {
            if let Some(c) = char::from_u32((i * 104_729) % 0x11_0000) {
                s.push(c);
            }
            s.push_str(["$", "#", "@", " ", "1", ".", "order ", "/"][i as usize % 8]);
        }
        for e in find_patterns(&s) {
            assert_eq!(&s[e.start..e.end], e.text);
        }
    }
}
