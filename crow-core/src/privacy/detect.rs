//! The detectors: find PII spans in a string without allocating when there is none.
//!
//! Every detector is a hand-written scanner behind a cheap gate (a `memchr` for `@` or `%40`,
//! a digit count, a colon count). There is no regex: one for e-mail addresses cost 1-4 µs per
//! string holding an `@`, the scanner a few dozen ns. Matches are collected into a `Vec` that
//! only allocates when something is found; overlapping matches are merged into the earliest.

use std::net::{Ipv4Addr, Ipv6Addr};

use memchr::{memchr, memchr_iter, memchr2};

/// What a detector found; each kind has its own placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Email,
    Phone,
    Card,
    Iban,
    Ip,
    Ssn,
    /// A secret: the value of a query parameter or JSON key that names a credential.
    Secret,
    /// Personal data found by its key only (names, postal addresses, birth dates).
    Redacted,
}

impl Kind {
    /// The kind's public name, as [`Finding::kind`](super::Finding::kind) reports it: the
    /// placeholder without its brackets.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Card => "card",
            Kind::Iban => "iban",
            Kind::Ip => "ip",
            Kind::Ssn => "ssn",
            Kind::Secret => "secret",
            Kind::Redacted => "redacted",
        }
    }

    pub(crate) fn placeholder(self) -> &'static str {
        match self {
            Kind::Email => "[email]",
            Kind::Phone => "[phone]",
            Kind::Card => "[card]",
            Kind::Iban => "[iban]",
            Kind::Ip => "[ip]",
            Kind::Ssn => "[ssn]",
            Kind::Secret => "[secret]",
            Kind::Redacted => "[redacted]",
        }
    }
}

/// Every placeholder, to recognise an already scrubbed value (scrubbing is idempotent).
pub(crate) const PLACEHOLDERS: [&str; 8] = [
    "[email]",
    "[phone]",
    "[card]",
    "[iban]",
    "[ip]",
    "[ssn]",
    "[secret]",
    "[redacted]",
];

/// True when `s` is one of our placeholders.
pub(crate) fn is_placeholder(s: &str) -> bool {
    s.starts_with('[') && PLACEHOLDERS.contains(&s)
}

/// One finding: byte range `start..end` of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Match {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) kind: Kind,
}

/// The detectors. They need no compiled state today (all are hand-written scanners); the
/// struct keeps the door open for configurable ones.
#[derive(Debug, Default)]
pub(crate) struct Detectors {}

impl Detectors {
    pub(crate) fn new() -> Detectors {
        Detectors {}
    }

    /// Appends every PII span of `s` to `out`, sorted and without overlaps.
    ///
    /// The detectors run in order e-mail, IPv6, IBAN, numbers; each one after the first sees
    /// the text with the earlier findings masked as `[xxxx]` (same length), exactly as it would
    /// see their placeholders on a second pass: that keeps scrubbing idempotent and stops a
    /// number scanner from reading into an address. Masking copies the text, so it only
    /// happens when something was found.
    pub(crate) fn find(&self, s: &str, out: &mut Vec<Match>) {
        let b = s.as_bytes();
        let g = Gate::of(b);
        let before = out.len();
        let mut masked: Option<Vec<u8>> = None;
        if g.at {
            find_emails(s, out);
            mask(&mut masked, b, &out[before..]);
        }
        if g.colons >= 2 && g.digits >= 1 {
            let from = out.len();
            scan_ipv6(masked.as_deref().unwrap_or(b), out);
            mask(&mut masked, b, &out[from..]);
        }
        if g.digits >= 10
            && b.windows(2)
                .any(|w| w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase())
        {
            let from = out.len();
            scan_iban(masked.as_deref().unwrap_or(b), out);
            mask(&mut masked, b, &out[from..]);
        }
        if g.digits >= 4 {
            scan_numeric(masked.as_deref().unwrap_or(b), out);
        }
        if out.len() > before + 1 {
            resolve_overlaps(out, before);
        }
    }

    /// The gate of [`Detectors::find`] over already decoded bytes: false when no detector
    /// can match, so the caller need not decode.
    pub(crate) fn gate_iter(bytes: impl Iterator<Item = u8>) -> bool {
        let (mut at, mut digits, mut colons) = (false, 0usize, 0usize);
        for c in bytes {
            at |= c == b'@';
            digits += c.is_ascii_digit() as usize;
            colons += (c == b':') as usize;
        }
        Gate { at, digits, colons }.any()
    }

    /// True when `s` holds at least one PII span (no allocation unless it does).
    pub(crate) fn any(&self, s: &str) -> bool {
        let mut v = Vec::new();
        self.find(s, &mut v);
        !v.is_empty()
    }
}

/// Masks `found` in the working copy (made from `b` on first use) as `[xxxx]`.
fn mask(masked: &mut Option<Vec<u8>>, b: &[u8], found: &[Match]) {
    if found.is_empty() {
        return;
    }
    let m = masked.get_or_insert_with(|| b.to_vec());
    for x in found {
        m[x.start..x.end].fill(b'x');
        m[x.start] = b'[';
        m[x.end - 1] = b']';
    }
}

// ---------------------------------------------------------------------------------------------
// E-mail addresses
// ---------------------------------------------------------------------------------------------

fn is_local_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '\'' | '-')
}

/// Finds e-mail addresses around each `@` (or `%40`): the local part is the run of
/// alphanumerics (Unicode) and `. _ % + ' -` before it (without leading `.`, `-`, `'`); the
/// domain is two or more dot-separated labels of alphanumerics and `-`, whose last label starts
/// with two or more letters (the TLD, cut where its letters end). `logo@2x.png` (a retina
/// image name) is not an address.
fn find_emails(s: &str, out: &mut Vec<Match>) {
    let b = s.as_bytes();
    let mut last_end = 0;
    let mut i = 0;
    while let Some(p) = memchr2(b'@', b'%', &b[i..]) {
        let at = i + p;
        let sep = if b[at] == b'@' {
            1
        } else if b[at + 1..].starts_with(b"40") {
            3
        } else {
            i = at + 1;
            continue;
        };
        i = at + sep;
        if at < last_end {
            continue;
        }
        let mut start = at;
        for (k, c) in s[last_end..at].char_indices().rev() {
            if !is_local_char(c) || at - (last_end + k) > 256 {
                break;
            }
            start = last_end + k;
        }
        while start < at && matches!(b[start], b'.' | b'-' | b'\'') {
            start += 1;
        }
        if start == at {
            continue;
        }
        let Some(end) = domain_end(s, at + sep) else {
            continue;
        };
        out.push(Match {
            start,
            end,
            kind: Kind::Email,
        });
        last_end = end;
        i = i.max(end);
    }
}

/// The end of the domain that starts at `from`, when there is one (see [`find_emails`]).
fn domain_end(s: &str, from: usize) -> Option<usize> {
    let rest = &s[from..];
    let mut labels = 0;
    let mut first = (0, 0);
    let mut last = (0, 0);
    let mut pos = 0;
    let mut chars = rest.char_indices().peekable();
    loop {
        let ls = pos;
        while let Some(&(k, c)) = chars.peek() {
            if c.is_alphanumeric() || c == '-' {
                pos = k + c.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        if pos == ls || pos - ls > 63 {
            break;
        }
        labels += 1;
        if labels == 1 {
            first = (ls, pos);
        }
        last = (ls, pos);
        // a dot continues the domain only when a label character follows it
        if rest[pos..].starts_with('.') && rest[pos + 1..].chars().next().is_some_and(char::is_alphanumeric) {
            chars.next();
            pos += 1;
        } else {
            break;
        }
    }
    if labels < 2 {
        return None;
    }
    // `logo@2x.png`: a retina image name, not an address.
    let fl = &rest[first.0..first.1];
    if fl.len() >= 2 && fl.ends_with(['x', 'X']) && fl[..fl.len() - 1].bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let tld = &rest[last.0..last.1];
    let letters = tld
        .char_indices()
        .find(|(_, c)| !c.is_alphabetic())
        .map_or(tld.len(), |(k, _)| k);
    if tld[..letters].chars().count() < 2 {
        return None;
    }
    Some(from + last.0 + letters)
}

/// Cheap statistics that decide which detectors can possibly match.
#[derive(Debug, Clone, Copy, Default)]
struct Gate {
    at: bool,
    digits: usize,
    colons: usize,
}

impl Gate {
    fn of(b: &[u8]) -> Gate {
        // separate simple loops: each one vectorizes
        let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
        let colons = b.iter().filter(|&&c| c == b':').count();
        let at =
            memchr(b'@', b).is_some() || (digits >= 2 && memchr_iter(b'%', b).any(|i| b[i + 1..].starts_with(b"40")));
        Gate { at, digits, colons }
    }

    /// True when some detector may match.
    fn any(&self) -> bool {
        self.at || self.digits >= 4 || (self.colons >= 2 && self.digits >= 1)
    }
}

/// Sorts `out[from..]` by start (longest first on ties) and merges overlapping matches into
/// the earliest one (its kind wins): a partial overlap never leaves a piece of PII behind.
fn resolve_overlaps(out: &mut Vec<Match>, from: usize) {
    out[from..].sort_unstable_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut kept = from;
    for i in from..out.len() {
        let m = out[i];
        if kept > from && m.start < out[kept - 1].end {
            let last = &mut out[kept - 1];
            last.end = last.end.max(m.end);
            continue;
        }
        out[kept] = m;
        kept += 1;
    }
    out.truncate(kept);
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

// ---------------------------------------------------------------------------------------------
// Numbers: phones, cards, SSNs, IPv4 addresses.
// ---------------------------------------------------------------------------------------------

/// Characters that may separate the digit groups of one number.
fn is_sep(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.' | b'/' | b'(' | b')')
}

/// Maximum digit groups classified at once (longer runs are lists, cut at a word boundary).
const MAX_GROUPS: usize = 24;

/// A run of digits inside a span.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    start: usize,
    end: usize,
    /// Written as `(415)`.
    paren: bool,
}

impl Group {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// Finds numeric spans and classifies them: SSN, IPv4, card, phone (in that order).
///
/// A span starts at a digit, `+` or `(` that is not glued to a preceding word (`v1.2`,
/// `abc-123`, `x64`, `1,234` are never candidates), and is a run of digit groups separated by
/// at most three characters of ` -./()` (one space at most). A span glued to a following word
/// (`123abc`, `4111-XL`) is skipped whole. Inside a span, candidates are runs of whole
/// space-separated words, tried longest first, so `415-555-2671 4111 1111 1111 1111` yields a
/// phone and a card.
fn scan_numeric(b: &[u8], out: &mut Vec<Match>) {
    let n = b.len();
    let mut groups = [Group::default(); MAX_GROUPS];
    let mut i = 0;
    while i < n {
        let c = b[i];
        // First digit of the span, after an optional "+", "(" or "+(".
        let d0 = if c.is_ascii_digit() {
            i
        } else if c == b'+' || c == b'(' {
            let mut k = i + 1;
            if c == b'+' && k < n && b[k] == b'(' {
                k += 1;
            }
            if k < n && b[k].is_ascii_digit() {
                k
            } else {
                i += 1;
                continue;
            }
        } else {
            i += 1;
            continue;
        };
        // Left boundary: not inside a word, not the tail of `word.123` / `word-123` / `1,234`.
        if i > 0 {
            let p = b[i - 1];
            // `]`: right after a placeholder (keeps scrubbing idempotent)
            let glued = is_word(p)
                || p == b']'
                || (matches!(p, b'.' | b'-' | b',') && i >= 2 && (is_word(b[i - 2]) || b[i - 2] == b']'));
            if glued {
                i = d0;
                while i < n && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                continue;
            }
        }
        let version_ctx = i >= 2 && b[i - 1] == b'/' && is_word(b[i - 2]);
        let plus = c == b'+';
        let mut ng = 0usize;
        let mut overflow = false;
        let mut k = d0;
        loop {
            let gs = k;
            while k < n && b[k].is_ascii_digit() {
                k += 1;
            }
            let ge = k;
            if ng == MAX_GROUPS {
                overflow = true;
                break;
            }
            groups[ng] = Group {
                start: gs,
                end: ge,
                paren: gs > 0 && b[gs - 1] == b'(' && ge < n && b[ge] == b')',
            };
            ng += 1;
            let mut m = ge;
            let mut spaces = 0;
            while m < n && m - ge < 3 && is_sep(b[m]) {
                spaces += (b[m] == b' ') as usize;
                m += 1;
            }
            if m == ge || m >= n || spaces > 1 || !b[m].is_ascii_digit() {
                break;
            }
            k = m;
        }
        let last = groups[ng - 1];
        let end = if last.paren { last.end + 1 } else { last.end };
        let start = if plus {
            i
        } else if groups[0].paren {
            groups[0].start - 1
        } else {
            groups[0].start
        };
        if overflow {
            // A long run of numbers: classify the words so far, then rescan from the last
            // complete word (a list of phone numbers must not hide them all).
            let cut = (1..ng)
                .rev()
                .find(|&gi| b[groups[gi - 1].end..groups[gi].start].contains(&b' '));
            if let Some(ws) = cut {
                classify_span(b, start, plus, &groups[..ws], version_ctx, out);
                let g = groups[ws];
                i = if g.paren { g.start - 1 } else { g.start };
                continue;
            }
        }
        // Right boundary: not glued to a following word.
        let glued_right = end < n
            && (is_word(b[end])
                || b[end] == b'['
                || (matches!(b[end], b'.' | b'-' | b'/')
                    && end + 1 < n
                    && (b[end + 1].is_ascii_alphanumeric() || b[end + 1] == b'[')));
        if !glued_right && !overflow {
            classify_span(b, start, plus, &groups[..ng], version_ctx, out);
        }
        i = end.max(i + 1);
        if glued_right || overflow {
            while i < n && (b[i].is_ascii_alphanumeric() || is_sep(b[i])) {
                i += 1;
            }
        }
    }
}

/// Classifies the words of one span; records matches.
fn classify_span(b: &[u8], span_start: usize, plus: bool, groups: &[Group], version_ctx: bool, out: &mut Vec<Match>) {
    let digits: usize = groups.iter().map(Group::len).sum();
    if digits < 7 && !(groups.len() == 4 && digits >= 4) {
        return; // shorter than any phone, card or SSN, and not an IPv4 shape
    }
    // Group indices where a new space-separated word begins.
    let mut word_starts = [0usize; MAX_GROUPS + 1];
    let mut nw = 0;
    for (gi, g) in groups.iter().enumerate() {
        if gi == 0 || b[groups[gi - 1].end..g.start].contains(&b' ') {
            word_starts[nw] = gi;
            nw += 1;
        }
    }
    word_starts[nw] = groups.len();
    let mut w = 0;
    'outer: while w < nw {
        let mut we = nw;
        while we > w {
            let (ga, gb) = (word_starts[w], word_starts[we]);
            let item = Item {
                b,
                g: &groups[ga..gb],
                plus: plus && ga == 0,
                version_ctx: version_ctx && ga == 0,
            };
            if let Some(kind) = item.classify() {
                let first = item.g[0];
                let last = item.g[item.g.len() - 1];
                let start = if ga == 0 {
                    span_start
                } else if first.paren {
                    first.start - 1
                } else {
                    first.start
                };
                let end = if last.paren { last.end + 1 } else { last.end };
                out.push(Match { start, end, kind });
                w = we;
                continue 'outer;
            }
            we -= 1;
        }
        w += 1;
    }
}

/// A candidate number: consecutive digit groups of one span.
struct Item<'a> {
    b: &'a [u8],
    g: &'a [Group],
    plus: bool,
    version_ctx: bool,
}

impl<'a> Item<'a> {
    fn len(&self, k: usize) -> usize {
        self.g.get(k).map_or(0, Group::len)
    }

    fn digits_of(&self, k: usize) -> &'a [u8] {
        &self.b[self.g[k].start..self.g[k].end]
    }

    /// The separator between groups `k` and `k + 1`, without the parentheses of a `(415)`.
    fn sep(&self, k: usize) -> &'a [u8] {
        let (x, y) = (self.g[k], self.g[k + 1]);
        let mut s = &self.b[x.end..y.start];
        if x.paren {
            s = &s[1..];
        }
        if y.paren && !s.is_empty() {
            s = &s[..s.len() - 1];
        }
        s
    }

    fn seps_all(&self, want: &[u8]) -> bool {
        (0..self.g.len() - 1).all(|k| self.sep(k) == want)
    }

    fn classify(&self) -> Option<Kind> {
        let g = self.g;
        let digits: usize = g.iter().map(Group::len).sum();
        if digits < 4 {
            return None;
        }
        let any_paren = g.iter().any(|x| x.paren);
        if !self.plus && !any_paren {
            // US SSN: 123-45-6789, excluding areas 000, 666, 900-999, group 00, serial 0000.
            if g.len() == 3 && self.len(0) == 3 && self.len(1) == 2 && self.len(2) == 4 && self.seps_all(b"-") {
                let (area, grp, serial) = (self.digits_of(0), self.digits_of(1), self.digits_of(2));
                let valid = area != b"000" && area != b"666" && area[0] != b'9' && grp != b"00" && serial != b"0000";
                return valid.then_some(Kind::Ssn);
            }
            // IPv4: four dotted decimal octets, no leading zeros; not `Name/1.2.3.4` (a version).
            if g.len() == 4 && self.seps_all(b".") {
                if self.version_ctx {
                    return None;
                }
                let text = std::str::from_utf8(&self.b[g[0].start..g[3].end]).ok()?;
                return text.parse::<Ipv4Addr>().is_ok().then_some(Kind::Ip);
            }
            // Payment cards: 13-19 digits, one kind of separator (space or dash) or none, groups
            // of 3+ digits, a known network prefix and a valid Luhn checksum.
            if (13..=19).contains(&digits)
                && (g.len() == 1 || (g.iter().all(|x| x.len() >= 3) && (self.seps_all(b" ") || self.seps_all(b"-"))))
            {
                let mut buf = [0u8; 19];
                let mut k = 0;
                for x in g {
                    for &c in &self.b[x.start..x.end] {
                        buf[k] = c - b'0';
                        k += 1;
                    }
                }
                let num = &buf[..k];
                if card_prefix_ok(num) && luhn_ok(num) {
                    return Some(Kind::Card);
                }
            }
        }
        self.is_phone(digits).then_some(Kind::Phone)
    }

    /// The phone rule. Plain digit strings are never phones (they are ids, timestamps, prices);
    /// a phone is one of:
    /// - `+` and 8 to 15 digits, any grouping (`+4915112345678`, `+1 (415) 555-2671`,
    ///   `+44 20 7946 0958`);
    /// - a North American number: groups 3-3-4 (optionally after a `1`), area code and
    ///   exchange starting with 2-9 (`(415) 555-2671`, `415-555-2671`, `415.555.2671`);
    /// - a national number with a trunk `0`, in groups: the first of 2-5 digits, every group of
    ///   2 or more, 9-12 digits in all (`0151 12345678`, `020 7946 0958`, `06 12 34 56 78`,
    ///   `(030) 1234567`); or with the international `00` prefix, 11-15 digits
    ///   (`0049 151 12345678`).
    ///
    /// Without a `+`, dots only count when every separator is a dot (`06.12.34.56.78`), a
    /// separator is at most two characters, and a leading date (`01.05.2024 12`) disqualifies.
    fn is_phone(&self, digits: usize) -> bool {
        let g = self.g;
        if self.plus {
            return (8..=15).contains(&digits);
        }
        if g.len() < 2 {
            return false;
        }
        let nseps = g.len() - 1;
        if (0..nseps).any(|k| self.sep(k).len() > 2) {
            return false;
        }
        let has_dot = (0..nseps).any(|k| self.sep(k).contains(&b'.'));
        if has_dot && !self.seps_all(b".") {
            return false;
        }
        let first = |k: usize| self.digits_of(k)[0];
        // North American numbering plan.
        let nanp_at = |o: usize| {
            g.len() == o + 3
                && self.len(o) == 3
                && self.len(o + 1) == 3
                && self.len(o + 2) == 4
                && (b'2'..=b'9').contains(&first(o))
                && (b'2'..=b'9').contains(&first(o + 1))
        };
        if nanp_at(0) || (self.digits_of(0) == b"1" && nanp_at(1)) {
            return true;
        }
        // Trunk-prefixed national numbers and 00-international numbers.
        let lead = self.digits_of(0);
        if lead[0] != b'0' {
            return false;
        }
        let intl = lead.len() >= 2 && lead[1] == b'0';
        let ok_len = if intl {
            (11..=15).contains(&digits)
        } else {
            (9..=12).contains(&digits)
        };
        if !ok_len || !(2..=5).contains(&lead.len()) || g.iter().any(|x| x.len() < 2) {
            return false;
        }
        // A date with a time after it (`01.05.2024 12`, `2024/05/01 10`).
        if g.len() >= 3 {
            let (a, b2, c) = (self.len(0), self.len(1), self.len(2));
            let dateish = ((1..=2).contains(&a) && (1..=2).contains(&b2) && c == 4)
                || (a == 4 && (1..=2).contains(&b2) && (1..=2).contains(&c));
            if dateish && !(self.sep(0) == b" " && self.sep(1) == b" ") {
                return false;
            }
        }
        true
    }
}

/// Plausible issuer prefix (IIN) for a card number of this length.
fn card_prefix_ok(d: &[u8]) -> bool {
    let len = d.len();
    let p2 = d[0] as u32 * 10 + d[1] as u32;
    let p4 = p2 * 100 + d[2] as u32 * 10 + d[3] as u32;
    match d[0] {
        // Visa
        4 => matches!(len, 13 | 16 | 19),
        // Mastercard 51-55, 2221-2720; Maestro 50, 56-58
        5 => (51..=55).contains(&p2) && len == 16 || matches!(p2, 50 | 56..=58) && (12..=19).contains(&len),
        2 => (2221..=2720).contains(&p4) && len == 16,
        // Amex 34/37 (15), Diners 30/36/38/39 (14-19), JCB 3528-3589 (16-19)
        3 => match p2 {
            34 | 37 => len == 15,
            30 | 36 | 38 | 39 => (14..=19).contains(&len),
            35 => (3528..=3589).contains(&p4) && (16..=19).contains(&len),
            _ => false,
        },
        // Discover 6011/644-649/65, UnionPay 62, Maestro 6x, RuPay 60/65
        6 => (16..=19).contains(&len) || (12..=19).contains(&len) && matches!(p2, 63 | 67),
        _ => false,
    }
}

/// Luhn checksum over decimal digits (values 0-9).
pub(crate) fn luhn_ok(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &x) in d.iter().rev().enumerate() {
        let mut v = x as u32;
        if k % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

// ---------------------------------------------------------------------------------------------
// IBAN
// ---------------------------------------------------------------------------------------------

/// IBAN length by country (SWIFT IBAN registry).
fn iban_len(cc: [u8; 2]) -> Option<usize> {
    Some(match &cc {
        b"NO" => 15,
        b"BE" => 16,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"MN" | b"XK" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"OM" | b"SO" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"LY" | b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"BI" | b"DJ" | b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"NI" | b"PL" | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" | b"YE" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        b"DK" | b"FI" | b"FO" | b"GL" | b"NL" | b"SD" | b"FK" => 18,
        _ => return None,
    })
}

/// Finds IBANs: a known country code, two check digits and the country's BBAN length of
/// capitals and digits, optionally grouped by single spaces, with a valid mod-97 checksum.
fn scan_iban(b: &[u8], out: &mut Vec<Match>) {
    let n = b.len();
    if n < 15 {
        return;
    }
    let mut i = 0;
    while i + 4 <= n {
        let ok_head = b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && (i == 0 || !is_word(b[i - 1]));
        if !ok_head {
            i += 1;
            continue;
        }
        let Some(len) = iban_len([b[i], b[i + 1]]) else {
            i += 1;
            continue;
        };
        // mod 97 over BBAN, then country letters, then check digits.
        let mut rem = 0u32;
        let mut j = i + 4;
        let mut count = 4;
        let mut ok = true;
        while count < len {
            if j < n && b[j] == b' ' && j + 1 < n && b[j + 1] != b' ' {
                j += 1;
            }
            if j >= n {
                ok = false;
                break;
            }
            let c = b[j];
            if c.is_ascii_digit() {
                rem = (rem * 10 + (c - b'0') as u32) % 97;
            } else if c.is_ascii_uppercase() {
                rem = (rem * 100 + (c - b'A' + 10) as u32) % 97;
            } else {
                ok = false;
                break;
            }
            j += 1;
            count += 1;
        }
        if ok && (j == n || !is_word(b[j])) {
            for &c in &b[i..i + 4] {
                rem = if c.is_ascii_digit() {
                    (rem * 10 + (c - b'0') as u32) % 97
                } else {
                    (rem * 100 + (c - b'A' + 10) as u32) % 97
                };
            }
            if rem == 1 {
                out.push(Match {
                    start: i,
                    end: j,
                    kind: Kind::Iban,
                });
                i = j;
                continue;
            }
        }
        i += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// IPv6
// ---------------------------------------------------------------------------------------------

fn is_v6_char(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

/// Finds IPv6 addresses: a token of hex digits, `:` and `.` with at least two colons and one
/// decimal digit, not glued to a word, that `std::net::Ipv6Addr` parses (so `12:30:45`, MAC
/// addresses and `std::vec` are not addresses). `::` alone is ignored.
fn scan_ipv6(b: &[u8], out: &mut Vec<Match>) {
    let n = b.len();
    let mut from = 0;
    while let Some(p) = memchr(b':', &b[from..]) {
        let c = from + p;
        let mut l = c;
        while l > 0 && is_v6_char(b[l - 1]) {
            l -= 1;
        }
        let mut r = c;
        while r < n && is_v6_char(b[r]) {
            r += 1;
        }
        from = r.max(c + 1);
        // `]` / `[`: next to a placeholder (keeps scrubbing idempotent)
        if (l > 0 && (is_word(b[l - 1]) || b[l - 1] == b']')) || (r < n && (is_word(b[r]) || b[r] == b'[')) {
            continue;
        }
        // Trim trailing sentence dots.
        let mut e = r;
        while e > l && b[e - 1] == b'.' {
            e -= 1;
        }
        let Ok(tok) = std::str::from_utf8(&b[l..e]) else {
            continue;
        };
        let colons = tok.bytes().filter(|&c| c == b':').count();
        if colons < 2 || !tok.bytes().any(|c| c.is_ascii_digit()) {
            continue;
        }
        let parsed = tok.parse::<Ipv6Addr>().ok().or_else(|| {
            // "2001:db8::1:" at the end of a clause
            let t = tok.strip_suffix(':').filter(|t| !t.ends_with(':'))?;
            e -= 1;
            t.parse::<Ipv6Addr>().ok()
        });
        if let Some(a) = parsed
            && !a.is_unspecified()
        {
            out.push(Match {
                start: l,
                end: e,
                kind: Kind::Ip,
            });
        }
    }
}

/// Writes `s` with every match replaced by its placeholder.
pub(crate) fn apply(s: &str, matches: &[Match]) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    let mut at = 0;
    for m in matches {
        o.push_str(&s[at..m.start]);
        o.push_str(m.kind.placeholder());
        at = m.end;
    }
    o.push_str(&s[at..]);
    o
}

/// True for an integer that is a plausible payment card number (13-19 digits, network prefix,
/// Luhn), e.g. a card stored as a JSON number.
pub(crate) fn is_card_number(n: u64) -> bool {
    let mut buf = [0u8; 20];
    let mut k = 20;
    let mut x = n;
    while x > 0 {
        k -= 1;
        buf[k] = (x % 10) as u8;
        x /= 10;
    }
    let d = &buf[k..];
    (13..=19).contains(&d.len()) && card_prefix_ok(d) && luhn_ok(d)
}
