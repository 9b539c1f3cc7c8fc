//! The catalog gazetteer: product, brand and competitor names found in free text.
//!
//! # How matching works
//!
//! The text and every term go through the same normalization, which yields a string of
//! *tokens* joined by single spaces, with one space before the first and after the last:
//!
//! 1. each letter or digit is decomposed (NFKD) and stripped of combining marks, then
//!    lowercased (`Café` → `cafe`, `ﬁ` → `fi`, `Ｓ２４` → `s24`, `ß` → `ss`); other characters
//!    are kept, with typographic apostrophes and dashes folded to `'` and `-`;
//! 2. a *word* token is a run of letters and digits; every other character that is not
//!    whitespace is a token of its own (`Wi-Fi` → `wi - fi`, `S24+` → `s24 +`), and runs of
//!    whitespace only separate tokens. Letters of scripts written without spaces (Han, kana,
//!    Thai, Lao, Khmer, Myanmar) are one token each, so names in those scripts are found inside
//!    running text;
//! 3. English plurals are folded on both sides, words of 3 or more ASCII letters only, so that a
//!    plural and its singular meet: first `-ies` → `-ie`, `-es` after `s`/`x`/`z`/`ch`/`sh` →
//!    `-e`, any other `-s` is dropped except after `s`, `u`, `i` (`glass`, `bus`, `this` stay);
//!    then `-ie` and `-y` → `-i`, and a final `e` after `ss`/`x`/`z`/`ch`/`sh` is dropped. So
//!    `batteries`/`battery`, `cases`/`case`, `pros`/`pro`, `boxes`/`box`, `watches`/`watch`,
//!    `hoodies`/`hoodie` match each other. Irregular and ambiguous plurals are missed
//!    (`lenses`/`lens`, `buses`/`bus`, `heroes`/`hero`, `mice`/`mouse`).
//!
//! Every term becomes the pattern ` tok tok `; the spaces at both ends make every match start
//! and end on token boundaries, so a term only ever matches whole words (`pen` is never found
//! in `open`, `S24` is found in `S24+`), and spacing around punctuation does not matter
//! (`AT&T` matches `AT & T`). One Aho-Corasick automaton (`MatchKind::LeftmostLongest`) finds
//! the leftmost match and, among the matches that start there, the longest (`Galaxy S24 Ultra`
//! over `Galaxy S24`); the next search starts on the space that ended the match, so adjacent
//! names (`iPhone 15 case`) are both found.
//!
//! Each token remembers the byte range of the original characters it came from, so a match is
//! reported as the *original* slice with byte offsets into the original text.
//!
//! # Duplicates and skipped terms
//!
//! Terms whose normalized forms are equal (`AirPods Pro`, `airpods pros`, `AIRPODS  PRO`) are
//! one entry: the **first** one given is kept, with its kind and product id, and the later
//! ones are dropped (a catalog lists its own products before brands and competitors, so a
//! product wins over a brand of the same name when given first). Terms without any letter or
//! digit (`""`, `"+"`, `"—"`) are dropped. [`Gazetteer::len`] counts the entries kept.
//!
//! # Cost
//!
//! Building normalizes each term once and builds one automaton; searching is linear in the
//! text. Measured numbers are in the [`entities`](super) module docs.

use aho_corasick::{AhoCorasick, Input, MatchKind};
use crow_core::ports::Entity;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use super::Term;

/// A catalog gazetteer: finds catalog terms (products, brands, competitors) in text,
/// case-, accent- and English-plural-insensitively, on whole words only. See the
/// [module docs](self) for the exact rules.
///
/// ```
/// use crow_nlp::entities::{Gazetteer, Term};
///
/// let term = |text: &str, kind: &str, id: Option<&str>| Term {
///     text: text.into(),
///     kind: kind.into(),
///     product_id: id.map(Into::into),
/// };
/// let g = Gazetteer::new(vec![
///     term("Galaxy S24", "product", Some("p1")),
///     term("Galaxy S24 Ultra", "product", Some("p2")),
///     term("Phone Case", "product", Some("p3")),
///     term("Samsung", "brand", None),
/// ]);
/// let text = "My SAMSUNG Galaxy S24 Ultra needs two phone cases";
/// let found = g.find(text);
/// let got: Vec<_> = found.iter().map(|e| (e.text.as_str(), e.kind.as_str(), e.product_id.as_deref())).collect();
/// assert_eq!(got, [
///     ("SAMSUNG", "brand", None),
///     ("Galaxy S24 Ultra", "product", Some("p2")),
///     ("phone cases", "product", Some("p3")),
/// ]);
/// assert_eq!(&text[found[1].start..found[1].end], "Galaxy S24 Ultra");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Gazetteer {
    /// None when there are no terms (or, in theory, when the automaton could not be built).
    ac: Option<AhoCorasick>,
    /// The kept terms; pattern id `i` is `terms[i]`.
    terms: Vec<Term>,
}

impl Gazetteer {
    /// Builds the gazetteer. Terms whose normalized forms are equal keep the first one given;
    /// terms without a letter or digit are dropped (see the [module docs](self)).
    ///
    /// Never fails: if the automaton cannot be built (only when the patterns exceed
    /// aho-corasick's limits, far beyond millions of terms), the error is logged with
    /// `tracing::error!` and the gazetteer finds nothing.
    pub fn new(terms: Vec<Term>) -> Self {
        let mut seen = std::collections::HashSet::with_capacity(terms.len());
        let mut patterns = Vec::with_capacity(terms.len());
        let mut kept = Vec::with_capacity(terms.len());
        for term in terms {
            let norm = normalize(&term.text);
            if !norm.tokens.iter().any(|t| t.word) {
                continue;
            }
            if seen.insert(norm.text.clone()) {
                patterns.push(norm.text);
                kept.push(term);
            }
        }
        drop(seen);
        if patterns.is_empty() {
            return Gazetteer::default();
        }
        match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
        {
            Ok(ac) => Gazetteer {
                ac: Some(ac),
                terms: kept,
            },
            Err(e) => {
                tracing::error!(terms = patterns.len(), error = %e, "catalog gazetteer could not be built");
                Gazetteer::default()
            }
        }
    }

    /// The catalog terms in `text`, sorted by start, never overlapping: for each, the original
    /// slice of `text`, its byte offsets, the term's kind and product id; `pii` is false.
    pub fn find(&self, text: &str) -> Vec<Entity> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        let norm = normalize(text);
        let hay = norm.text.as_str();
        let tokens = &norm.tokens;
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < hay.len() {
            let Some(m) = ac.find(Input::new(hay).range(pos..)) else {
                break;
            };
            // Every pattern is ` tok ... tok ` (3 bytes or more): the match core starts on a
            // token's first byte and ends on a token's last byte.
            let (core_start, core_end) = (m.start() + 1, m.end() - 1);
            pos = core_end;
            let first = tokens.partition_point(|t| t.norm < core_start);
            let last = tokens.partition_point(|t| t.norm < core_end);
            let (Some(a), Some(b), Some(term)) = (
                tokens.get(first),
                last.checked_sub(1).and_then(|i| tokens.get(i)),
                self.terms.get(m.pattern().as_usize()),
            ) else {
                continue; // unreachable by construction; never panic on user text
            };
            out.push(Entity {
                kind: term.kind.clone(),
                text: text[a.start..b.end].to_owned(),
                start: a.start,
                end: b.end,
                product_id: term.product_id.clone(),
                pii: false,
            });
        }
        out
    }

    /// Number of terms kept (distinct normalized forms).
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// True when the gazetteer holds no term.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Bytes of heap used by the automaton (terms not included).
    pub fn automaton_bytes(&self) -> usize {
        self.ac.as_ref().map_or(0, AhoCorasick::memory_usage)
    }
}

/// One token of a normalized text.
#[derive(Debug, Clone, Copy)]
struct Token {
    /// Byte offset of the token in the normalized text.
    norm: usize,
    /// Byte range of the original characters it came from.
    start: usize,
    end: usize,
    /// A word (letters and digits) rather than a punctuation or symbol token.
    word: bool,
}

/// A normalized text: ` tok tok ... tok ` and where each token came from.
#[derive(Debug)]
struct Normalized {
    text: String,
    tokens: Vec<Token>,
}

/// Scripts written without spaces between words: each letter is a token of its own.
fn is_unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x31F0..=0x31FF // Katakana extensions
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0x20000..=0x3FFFF // CJK extensions B and later
    )
}

/// Builds the normalized text. See the module docs for the rules.
fn normalize(text: &str) -> Normalized {
    let mut n = Builder {
        out: String::with_capacity(text.len() + 2),
        tokens: Vec::new(),
        word: String::new(),
        word_span: None,
    };
    n.out.push(' ');
    let mut folded: Vec<char> = Vec::with_capacity(4);
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        if c.is_ascii() {
            let l = c.to_ascii_lowercase();
            if l.is_ascii_alphanumeric() {
                n.push_word_char(l, i, end);
            } else if l.is_ascii_whitespace() {
                n.flush_word();
            } else {
                n.single(l, i, end, false);
            }
            continue;
        }
        if c.is_alphanumeric() {
            folded.clear();
            decompose_compatible(c, |d| {
                if is_combining_mark(d) {
                    return;
                }
                for l in d.to_lowercase() {
                    if l == 'ß' {
                        folded.extend(['s', 's']);
                    } else if !is_combining_mark(l) {
                        folded.push(l);
                    }
                }
            });
            for &d in &folded {
                if is_unspaced(d) {
                    n.single(d, i, end, true);
                } else if d.is_alphanumeric() {
                    n.push_word_char(d, i, end);
                } else if d.is_whitespace() {
                    n.flush_word();
                } else {
                    n.single(d, i, end, false);
                }
            }
        } else if is_combining_mark(c) {
            // A mark in decomposed input (`e\u{301}`): part of the word it follows.
            if let Some((_, e)) = &mut n.word_span {
                *e = end;
            }
        } else if c.is_whitespace() {
            n.flush_word();
        } else if matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}') {
            // Zero-width spaces/joiners and soft hyphens: invisible, ignored.
        } else {
            let p = match c {
                '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{2032}' => '\'',
                '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
                other => other,
            };
            n.single(p, i, end, false);
        }
    }
    n.flush_word();
    Normalized {
        text: n.out,
        tokens: n.tokens,
    }
}

struct Builder {
    out: String,
    tokens: Vec<Token>,
    /// The word being read (already lowercased and stripped of marks).
    word: String,
    /// Original byte range of the word being read.
    word_span: Option<(usize, usize)>,
}

impl Builder {
    fn push_word_char(&mut self, c: char, start: usize, end: usize) {
        self.word.push(c);
        match &mut self.word_span {
            Some((_, e)) => *e = end,
            None => self.word_span = Some((start, end)),
        }
    }

    fn flush_word(&mut self) {
        let Some((start, end)) = self.word_span.take() else {
            return;
        };
        self.tokens.push(Token {
            norm: self.out.len(),
            start,
            end,
            word: true,
        });
        let (stem, suffix) = fold_plural(&self.word);
        self.out.push_str(stem);
        self.out.push_str(suffix);
        self.out.push(' ');
        self.word.clear();
    }

    fn single(&mut self, c: char, start: usize, end: usize, word: bool) {
        self.flush_word();
        self.tokens.push(Token {
            norm: self.out.len(),
            start,
            end,
            word,
        });
        self.out.push(c);
        self.out.push(' ');
    }
}

/// Folds an English plural and its singular onto one form, returned as a stem and a suffix
/// to append. It is applied to every word of both the terms and the text, so only
/// consistency matters, not linguistic truth. Words that are not all ASCII lowercase letters,
/// or shorter than 3 letters, are left alone. In order:
///
/// 1. plural endings: `-ies` → `-ie` (`batteries` → `batterie`); `-es` after `s`, `x`, `z`,
///    `ch`, `sh` → `-e` (`boxes` → `boxe`, `cases` → `case`, `watches` → `watche`); any other
///    `-s` is dropped except after `s`, `u`, `i` (`pros` → `pro`; `glass`, `bus`, `this` stay);
/// 2. singular endings: `-ie` and `-y` → `-i` (`batterie` and `battery` → `batteri`, `hoodie`
///    and `hoody` → `hoodi`); a final `e` after `ss`, `x`, `z`, `ch`, `sh` is dropped (`boxe`
///    → `box`, `watche` → `watch`, `glasse` → `glass`).
///
/// Known misses (irregular or ambiguous plurals): `lens`/`lenses`, `bus`/`buses`,
/// `hero`/`heroes`, `mouse`/`mice`.
fn fold_plural(w: &str) -> (&str, &'static str) {
    let b = w.as_bytes();
    if b.len() < 3 || !b.iter().all(u8::is_ascii_lowercase) {
        return (w, "");
    }
    // Step 1: strip the plural `s` (keeping the `e` of `-es`, which step 2 handles).
    let mut s = w;
    if s.ends_with("ies") && s.len() >= 4 {
        s = &s[..s.len() - 1];
    } else if s.ends_with('s') {
        let stem = &s[..s.len() - 1];
        let es_after_sibilant = stem.ends_with('e') && ends_sibilant(&stem[..stem.len() - 1]);
        let keep = stem.ends_with('s') || stem.ends_with('u') || stem.ends_with('i');
        if es_after_sibilant || !keep {
            s = stem;
        }
    }
    // Step 2: fold the singular endings.
    if s.len() >= 3 && s.ends_with("ie") {
        return (&s[..s.len() - 1], "");
    }
    if s.len() >= 3 && s.ends_with('y') {
        return (&s[..s.len() - 1], "i");
    }
    if s.ends_with('e') && ends_sibilant(&s[..s.len() - 1]) {
        return (&s[..s.len() - 1], "");
    }
    (s, "")
}

/// True when `s` ends in `ss`, `x`, `z`, `ch` or `sh` (the endings that take `-es`).
fn ends_sibilant(s: &str) -> bool {
    s.ends_with("ss") || s.ends_with('x') || s.ends_with('z') || s.ends_with("ch") || s.ends_with("sh")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(text: &str, kind: &str, id: Option<&str>) -> Term {
        Term {
            text: text.into(),
            kind: kind.into(),
            product_id: id.map(Into::into),
        }
    }

    fn product(text: &str) -> Term {
        term(text, "product", Some(&format!("id:{text}")))
    }

    /// (original slice, kind) of every match, and checks the offsets.
    fn found(g: &Gazetteer, text: &str) -> Vec<(String, String)> {
        let es = g.find(text);
        for e in &es {
            assert_eq!(&text[e.start..e.end], e.text, "offsets of {e:?}");
            assert!(!e.pii);
        }
        assert!(
            es.windows(2).all(|w| w[0].end <= w[1].start),
            "sorted, no overlaps: {es:?}"
        );
        es.into_iter().map(|e| (e.text, e.kind)).collect()
    }

    fn texts(g: &Gazetteer, text: &str) -> Vec<String> {
        found(g, text).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn normalization_tokens() {
        assert_eq!(normalize("Wi-Fi  S24+").text, " wi - fi s24 + ");
        assert_eq!(normalize("Café CRÈME").text, " cafe creme ");
        assert_eq!(normalize("Straße ﬁt Ｓ２４").text, " strass fit s24 "); // `-sse` folds like `-sses`
        assert_eq!(normalize("Mc\u{2019}Donald\u{2019}s").text, " mc ' donald ' s ");
        assert_eq!(normalize("").text, " ");
        assert_eq!(normalize("   ").text, " ");
        assert_eq!(normalize("ソニー製品").text, " ソ ニ ー 製 品 ");
    }

    fn folded(w: &str) -> String {
        let (stem, suffix) = fold_plural(w);
        format!("{stem}{suffix}")
    }

    #[test]
    fn plural_folding_is_consistent() {
        for (a, b) in [
            ("batteries", "battery"),
            ("cases", "case"),
            ("pros", "pro"),
            ("airpods", "airpod"),
            ("boxes", "box"),
            ("watches", "watch"),
            ("glasses", "glass"),
            ("dresses", "dress"),
            ("brushes", "brush"),
            ("hoodies", "hoodie"),
            ("phones", "phone"),
            ("shoes", "shoe"),
            ("prizes", "prize"),
            ("caches", "cache"),
            ("tvs", "tv"),
            ("keys", "key"),
            ("hoodies", "hoody"),
            ("series", "series"),
        ] {
            assert_eq!(folded(a), folded(b), "{a} / {b}");
        }
        for w in ["glass", "bus", "this", "as", "s24", "ab", "café", "by"] {
            assert_eq!(folded(w), w);
        }
        assert_ne!(folded("case"), folded("cas"));
        assert_ne!(folded("pen"), folded("pension"));
    }

    #[test]
    fn case_accent_and_plural_insensitive() {
        let g = Gazetteer::new(vec![
            product("AirPods Pro"),
            product("Phone Case"),
            product("Battery"),
            term("Crème Brûlée", "product", Some("cb")),
            term("Nestlé", "brand", None),
        ]);
        assert_eq!(
            texts(&g, "two airpods pros and phone cases"),
            ["airpods pros", "phone cases"]
        );
        assert_eq!(texts(&g, "AIRPODS PRO"), ["AIRPODS PRO"]);
        assert_eq!(
            texts(&g, "the batteries died; one battery left"),
            ["batteries", "battery"]
        );
        assert_eq!(texts(&g, "creme brulee by NESTLE"), ["creme brulee", "NESTLE"]);
        assert_eq!(texts(&g, "CRÈME BRÛLÉE by nestlé"), ["CRÈME BRÛLÉE", "nestlé"]);
        // Decomposed input (e + combining acute) keeps its marks inside the slice.
        assert_eq!(texts(&g, "Nestle\u{301} rocks"), ["Nestle\u{301}"]);
        // Whitespace and line breaks inside a name.
        assert_eq!(texts(&g, "Phone\n  Case"), ["Phone\n  Case"]);
    }

    #[test]
    fn whole_words_only() {
        let g = Gazetteer::new(vec![product("pen"), product("S24"), product("AT&T"), product("iPhone")]);
        assert!(texts(&g, "open the pencil, happen").is_empty());
        assert_eq!(texts(&g, "a pen, a (pen) and pens."), ["pen", "pen", "pens"]);
        assert_eq!(texts(&g, "S24+ vs S24Ultra vs S24"), ["S24", "S24"]);
        assert_eq!(texts(&g, "AT & T and AT&T, not ATT"), ["AT & T", "AT&T"]);
        assert!(texts(&g, "iPhones4ever").is_empty());
        assert_eq!(texts(&g, "#iphone"), ["iphone"]);
    }

    #[test]
    fn longest_match_wins_and_adjacent_matches() {
        let g = Gazetteer::new(vec![
            product("Galaxy S24"),
            product("Galaxy S24 Ultra"),
            term("Galaxy", "brand", None),
            product("iPhone 15"),
            product("Case"),
        ]);
        assert_eq!(
            found(&g, "Galaxy S24 Ultra, Galaxy S24, Galaxy S2"),
            [
                ("Galaxy S24 Ultra".into(), "product".into()),
                ("Galaxy S24".into(), "product".into()),
                ("Galaxy".into(), "brand".into())
            ]
        );
        assert_eq!(texts(&g, "iPhone 15 case"), ["iPhone 15", "case"]);
        assert_eq!(texts(&g, "case case case"), ["case", "case", "case"]);
    }

    #[test]
    fn unicode_offsets() {
        let g = Gazetteer::new(vec![product("Phone Case"), term("Zoë", "brand", None)]);
        let text = "😀🎉 Ünïcödé — my phone cases from ZOË 👍";
        let es = g.find(text);
        assert_eq!(es.len(), 2);
        assert_eq!(es[0].text, "phone cases");
        assert_eq!(es[0].start, text.find("phone").unwrap());
        assert_eq!(es[0].end, es[0].start + "phone cases".len());
        assert_eq!(es[0].product_id.as_deref(), Some("id:Phone Case"));
        assert_eq!(es[1].text, "ZOË");
        assert_eq!(
            (es[1].start, es[1].end),
            (text.find("ZOË").unwrap(), text.find(" 👍").unwrap())
        );
        // Ligatures and full-width forms map back to the original characters.
        let g = Gazetteer::new(vec![product("fit"), product("S24")]);
        assert_eq!(texts(&g, "ﬁt Ｓ２４"), ["ﬁt", "Ｓ２４"]);
    }

    #[test]
    fn unspaced_scripts_match_inside_text() {
        let g = Gazetteer::new(vec![term("ソニー", "brand", None), product("华为手机")]);
        assert_eq!(texts(&g, "私はソニーが好き、华为手机も"), ["ソニー", "华为手机"]);
    }

    #[test]
    fn duplicates_keep_the_first_and_junk_is_dropped() {
        let g = Gazetteer::new(vec![
            term("Apple", "brand", None),
            term("APPLE", "competitor", None),
            term("apples", "product", Some("fruit")),
            term("", "product", None),
            term("  +  ", "product", None),
            term("—", "brand", None),
        ]);
        assert_eq!(g.len(), 1);
        assert_eq!(found(&g, "apple"), [("apple".into(), "brand".into())]);
        assert!(g.find("").is_empty());
        let empty = Gazetteer::new(Vec::new());
        assert!(empty.is_empty() && empty.find("anything").is_empty());
        assert!(Gazetteer::default().is_empty());
    }

    #[test]
    fn ten_thousand_terms_quickly() {
        let terms: Vec<Term> = (0..10_000)
            .map(|i| product(&format!("Model {i} Pro{}", if i % 7 == 0 { " Max" } else { "" })))
            .collect();
        let t0 = std::time::Instant::now();
        let g = Gazetteer::new(terms);
        let built = t0.elapsed();
        assert_eq!(g.len(), 10_000);
        let text = "I bought a model 4243 pros and a MODEL 7 PRO MAX and model 99999 pro";
        assert_eq!(texts(&g, text), ["model 4243 pros", "MODEL 7 PRO MAX"]);
        // Generous bound for unoptimized test builds on a loaded machine.
        assert!(built.as_secs() < 20, "building 10k terms took {built:?}");
    }

    #[test]
    fn noise_never_panics() {
        let g = Gazetteer::new(vec![product("a b"), product("ß"), product("İstanbul"), product("ǅ")]);
        let mut s = String::new();
        for i in 0..3000u32 {
            if let Some(c) = char::from_u32((i * 7919) % 0x3_0000) {
                s.push(c);
            }
            if i % 5 == 0 {
                s.push(' ');
            }
        }
        for e in g.find(&s) {
            assert_eq!(&s[e.start..e.end], e.text);
        }
        assert_eq!(texts(&g, "istanbul İSTANBUL"), ["istanbul", "İSTANBUL"]);
        assert_eq!(texts(&g, "SS"), ["SS"]);
    }
}
