//! Entities in free text: catalog terms ([`Gazetteer`]), patterns ([`find_patterns`]: money,
//! dates, order numbers, e-mail addresses, phones, URLs, handles, hashtags, ...), and
//! [`merge`] to combine several lists into one without overlaps.
//!
//! Everything here is pure Rust and compiles for `wasm32-unknown-unknown`. Offsets are byte
//! offsets into the text given, always on `char` boundaries, and `Entity::text` is always
//! `text[start..end]`.
//!
//! ```
//! use crow_nlp::entities::{find_patterns, merge, Gazetteer, Term};
//!
//! let catalog = Gazetteer::new(vec![Term {
//!     text: "AirPods Pro".into(),
//!     kind: "product".into(),
//!     product_id: Some("sku-1".into()),
//! }]);
//! let text = "Paid $249.99 for my airpods pros on Dec. 4, order #A12345. Mail me: jo@example.com";
//! let all = merge(vec![catalog.find(text), find_patterns(text)]);
//! let got: Vec<_> = all.iter().map(|e| (e.kind.as_str(), e.text.as_str(), e.pii)).collect();
//! assert_eq!(got, [
//!     ("money", "$249.99", false),
//!     ("product", "airpods pros", false),
//!     ("date", "Dec. 4", false),
//!     ("order_number", "#A12345", false),
//!     ("email", "jo@example.com", true),
//! ]);
//! ```
//!
//! # Cost
//!
//! Measured in release on the 2-core development machine (`cargo test --release -p crow-nlp
//! --lib entities::tests::timing -- --ignored --nocapture`):
//!
//! | what | time | memory |
//! |---|---|---|
//! | `Gazetteer::new`, 10k terms | ~35 ms | automaton 1.2 MB |
//! | `Gazetteer::new`, 100k terms | ~0.4 s | automaton 12 MB |
//! | `Gazetteer::find`, 1 MB of review text (6,300 matches) | 20–40 ms | |
//! | `find_patterns`, 1 MB of review text (23,000 entities) | ~60 ms | |
//! | `find_patterns`, one clean sentence | ~0.3 µs | |
//!
//! Both are linear in the text (a test checks 1 MB against 100 kB).

pub mod gazetteer;
pub mod patterns;

pub use gazetteer::Gazetteer;
pub use patterns::find_patterns;

use crow_core::ports::Entity;

/// One catalog term, as the gazetteer is built from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Term {
    /// The name as written in the catalog (`AirPods Pro`, `Samsung`).
    pub text: String,
    /// What it is: `product`, `brand` or `competitor` (copied into each match's
    /// `Entity::kind`; other values are accepted and copied as they are).
    pub kind: String,
    /// The catalog's product id, for products (copied into each match's `Entity::product_id`).
    pub product_id: Option<String>,
}

/// Merges entity lists into one, sorted by start, with no two entities overlapping.
///
/// Where entities overlap, the **longer** span wins; between spans of equal length the one from
/// the **earlier list** wins, and within one list the one that starts first. A span that lost
/// is dropped whole (never trimmed). Empty spans (`start >= end`) are dropped. Entities that
/// merely touch (`a.end == b.start`) do not overlap. Put the list you trust most first
/// (e.g. `merge(vec![catalog, model_ner, patterns])`).
///
/// ```
/// use crow_core::ports::Entity;
/// use crow_nlp::entities::merge;
///
/// let e = |kind: &str, start: usize, end: usize| Entity {
///     kind: kind.into(),
///     text: String::new(),
///     start,
///     end,
///     product_id: None,
///     pii: false,
/// };
/// let merged = merge(vec![vec![e("brand", 0, 7), e("product", 20, 30)], vec![e("product", 0, 10), e("money", 20, 30)]]);
/// let kinds: Vec<_> = merged.iter().map(|e| (e.kind.as_str(), e.start)).collect();
/// assert_eq!(kinds, [("product", 0), ("product", 20)]);
/// ```
pub fn merge(lists: Vec<Vec<Entity>>) -> Vec<Entity> {
    let total: usize = lists.iter().map(Vec::len).sum();
    // (list index, position in list, entity)
    let mut all: Vec<(usize, usize, Entity)> = Vec::with_capacity(total);
    for (li, list) in lists.into_iter().enumerate() {
        for (pi, e) in list.into_iter().enumerate() {
            if e.start < e.end {
                all.push((li, pi, e));
            }
        }
    }
    all.sort_by(|a, b| {
        let (la, lb) = (a.2.end - a.2.start, b.2.end - b.2.start);
        lb.cmp(&la)
            .then(a.0.cmp(&b.0))
            .then(a.2.start.cmp(&b.2.start))
            .then(a.1.cmp(&b.1))
    });
    // Accepted spans by start; they never overlap, so a candidate only needs checking against
    // its neighbours: the last one starting before its end.
    let mut taken: std::collections::BTreeMap<usize, Entity> = std::collections::BTreeMap::new();
    for (_, _, e) in all {
        let clash = taken
            .range(..e.end)
            .next_back()
            .is_some_and(|(_, prev)| prev.end > e.start);
        if !clash {
            taken.insert(e.start, e);
        }
    }
    taken.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: &str, start: usize, end: usize) -> Entity {
        Entity {
            kind: kind.into(),
            text: String::new(),
            start,
            end,
            product_id: None,
            pii: false,
        }
    }

    fn spans(es: &[Entity]) -> Vec<(&str, usize, usize)> {
        es.iter().map(|e| (e.kind.as_str(), e.start, e.end)).collect()
    }

    #[test]
    fn merge_longer_wins() {
        let m = merge(vec![vec![e("a", 0, 5), e("a", 10, 12)], vec![e("b", 3, 11)]]);
        assert_eq!(spans(&m), [("b", 3, 11)]);
        let m = merge(vec![vec![e("a", 0, 5)], vec![e("b", 4, 6), e("b", 5, 9)]]);
        assert_eq!(spans(&m), [("a", 0, 5), ("b", 5, 9)]);
    }

    #[test]
    fn merge_ties_go_to_the_earlier_list_then_the_earlier_start() {
        let m = merge(vec![vec![e("first", 2, 6)], vec![e("second", 2, 6), e("second", 8, 9)]]);
        assert_eq!(spans(&m), [("first", 2, 6), ("second", 8, 9)]);
        let m = merge(vec![vec![e("second", 4, 8)], vec![e("first", 2, 6)]]);
        assert_eq!(spans(&m), [("second", 4, 8)]);
        // Same list, same length, overlapping: the earlier start wins.
        let m = merge(vec![vec![e("y", 4, 8), e("x", 2, 6)]]);
        assert_eq!(spans(&m), [("x", 2, 6)]);
    }

    #[test]
    fn merge_sorts_drops_empty_and_keeps_touching() {
        let m = merge(vec![
            vec![e("c", 20, 25), e("a", 0, 5)],
            vec![e("b", 5, 10), e("empty", 12, 12), e("bad", 15, 14)],
            vec![],
        ]);
        assert_eq!(spans(&m), [("a", 0, 5), ("b", 5, 10), ("c", 20, 25)]);
        assert!(merge(vec![]).is_empty());
        assert!(merge(vec![vec![], vec![]]).is_empty());
    }

    #[test]
    fn merge_chain_of_overlaps() {
        // The longest (middle) one wins and knocks out both neighbours.
        let m = merge(vec![vec![e("a", 0, 10), e("b", 8, 20), e("c", 18, 25)]]);
        assert_eq!(spans(&m), [("b", 8, 20)]);
        // Nested spans: the outer one wins.
        let m = merge(vec![vec![e("in", 3, 4)], vec![e("out", 0, 10)], vec![e("in2", 5, 7)]]);
        assert_eq!(spans(&m), [("out", 0, 10)]);
    }

    /// A review-like text of about `bytes` bytes with products, prices, dates and contacts.
    fn corpus(bytes: usize) -> String {
        let lines = [
            "Bought the Galaxy S24 Ultra for $1,199.99 on Dec. 4, 2026 and the phone cases were 12,50 EUR. ",
            "Order #A12345 arrived late 😡 — call me at +44 20 7946 0958 or mail jo.doe@example.com. ",
            "Ünïcödé text: the AirPods Pro 2 sound great, battery life is fine, see https://shop.example/x?y=1 ",
            "Version 1.2.3 broke things; order number 778812 is still open #fail @support_team 2026-12-04. ",
            "Plain numbers 12345 67890 3.14 and 19.99 and 2024 are not entities; neither is v2.0.1 or x64. ",
        ];
        let mut s = String::with_capacity(bytes + 200);
        let mut i = 0;
        while s.len() < bytes {
            s.push_str(lines[i % lines.len()]);
            i += 1;
        }
        s
    }

    fn catalog(n: usize) -> Gazetteer {
        let mut terms = vec![
            Term {
                text: "Galaxy S24 Ultra".into(),
                kind: "product".into(),
                product_id: Some("s24u".into()),
            },
            Term {
                text: "AirPods Pro".into(),
                kind: "product".into(),
                product_id: Some("app".into()),
            },
            Term {
                text: "Phone Case".into(),
                kind: "product".into(),
                product_id: Some("case".into()),
            },
        ];
        terms.extend((0..n).map(|i| Term {
            text: format!("Gadget {i} Series {}", i % 13),
            kind: if i % 10 == 0 { "brand" } else { "product" }.into(),
            product_id: Some(format!("g{i}")),
        }));
        Gazetteer::new(terms)
    }

    fn check(text: &str, es: &[Entity]) {
        for e in es {
            assert_eq!(&text[e.start..e.end], e.text);
        }
        assert!(es.windows(2).all(|w| w[0].end <= w[1].start));
    }

    /// 1 MB of text goes through every extractor without panicking, in time linear in its size.
    #[test]
    fn one_megabyte_is_handled_linearly() {
        let g = catalog(2_000);
        let run = |text: &str| {
            let t = std::time::Instant::now();
            let found = g.find(text);
            let pats = find_patterns(text);
            let all = merge(vec![found.clone(), pats.clone()]);
            let _ = crate::lang::detect_language(text);
            let phrases = crate::lang::key_phrases(text, 10);
            let took = t.elapsed();
            check(text, &found);
            check(text, &pats);
            check(text, &all);
            assert!(!phrases.is_empty());
            (found.len(), pats.len(), took)
        };
        let small = corpus(100_000);
        let big = corpus(1_000_000);
        let (f_small, p_small, t_small) = run(&small);
        let (f_big, p_big, t_big) = run(&big);
        assert!(
            f_small > 500 && p_small > 2_000,
            "{f_small} catalog, {p_small} pattern entities"
        );
        // Ten times the text, about ten times the entities and the time; quadratic work would
        // take ~100x. The bound is loose for debug builds on a loaded machine.
        assert!(f_big >= 9 * f_small && p_big >= 9 * p_small);
        assert!(
            t_big < t_small * 30 + std::time::Duration::from_millis(500),
            "100 kB: {t_small:?}, 1 MB: {t_big:?}"
        );
    }

    /// Timings for the module docs; run in release with `--ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check; run in release"]
    fn timing() {
        for n in [10_000, 100_000] {
            let t = std::time::Instant::now();
            let g = catalog(n);
            println!(
                "Gazetteer::new({n} terms): {:?}, automaton {:.1} MB",
                t.elapsed(),
                g.automaton_bytes() as f64 / 1e6
            );
            let text = corpus(1_000_000);
            let t = std::time::Instant::now();
            let found = g.find(&text);
            println!("  find on 1 MB: {:?} ({} entities)", t.elapsed(), found.len());
        }
        let text = corpus(1_000_000);
        let t = std::time::Instant::now();
        let pats = find_patterns(&text);
        println!("find_patterns on 1 MB: {:?} ({} entities)", t.elapsed(), pats.len());
        let t = std::time::Instant::now();
        let phrases = crate::lang::key_phrases(&text, 10);
        println!("key_phrases on 1 MB: {:?} ({phrases:?})", t.elapsed());
        let t = std::time::Instant::now();
        let lang = crate::lang::detect_language(&text);
        println!("detect_language on 1 MB: {:?} ({lang:?})", t.elapsed());
        let short = "The delivery was late but the staff were very friendly.";
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            std::hint::black_box(crate::lang::detect_language(std::hint::black_box(short)));
        }
        println!("detect_language on one sentence: {:?}", t.elapsed() / 1000);
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            std::hint::black_box(find_patterns(std::hint::black_box(short)));
        }
        println!("find_patterns on one sentence: {:?}", t.elapsed() / 1000);
    }
}
