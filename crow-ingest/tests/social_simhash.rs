//! Precision and recall of "near-duplicate = SimHash distance ≤ 3" on a labelled set.
//!
//! The originals are the distinct posts in `tests/data/social/posts.txt` (several about the
//! same product: hard negatives). Positives are realistic edits of each original: a retweet
//! prefix, trailing hashtags and a link, changed punctuation and case, a cut at 70–85 % with
//! `…`, emoji, a cross-post note, and five combinations of two. Negatives are every pair of
//! distinct originals, plus each edited copy against the next original in the file (often a
//! post about the same product).
//!
//! Run with `--nocapture` to see the numbers; `SOCIAL_SIMHASH_VERBOSE=1` lists the misses.
#![cfg(feature = "social")]

use crow_ingest::social::simhash::{NearDupIndex, hamming, simhash};

const THRESHOLD: u32 = 3;

/// A tiny deterministic xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    /// Uniform in [lo, hi).
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

fn originals() -> Vec<String> {
    let data = include_str!("data/social/posts.txt");
    data.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

const HANDLES: [&str; 6] = [
    "gadgetgal",
    "acme_fan_88",
    "runnerdan",
    "techdeals",
    "coffee_nerd",
    "Marta_K",
];
const TAGS: [&str; 10] = [
    "acme",
    "AcmeBudsPro",
    "tech",
    "review",
    "deal",
    "running",
    "coffee",
    "smarthome",
    "fail",
    "ad",
];
const EMOJI: [&str; 8] = ["😍", "🔥🔥", "🙌", "😤", "🤦‍♂️", "👍", "💯", "😂😂"];

fn retweet(rng: &mut Rng, text: &str) -> String {
    match rng.below(3) {
        0 => format!("RT @{}: {text}", rng.pick(&HANDLES)),
        1 => format!("rt @{} {text}", rng.pick(&HANDLES)),
        _ => format!("Repost: {text}"),
    }
}

fn link(rng: &mut Rng) -> String {
    let code: String = (0..10)
        .map(|_| {
            let c = rng.below(36) as u8;
            (if c < 10 { b'0' + c } else { b'a' + c - 10 }) as char
        })
        .collect();
    format!("https://t.co/{code}")
}

fn hashtags_and_link(rng: &mut Rng, text: &str) -> String {
    let (a, b) = (rng.pick(&TAGS), rng.pick(&TAGS));
    match rng.below(3) {
        0 => format!("{text} #{a} #{b} {}", link(rng)),
        1 => format!("{text} {} #{a}", link(rng)),
        _ => format!("{text}\n\n#{a} #{b}"),
    }
}

fn punctuation_and_case(rng: &mut Rng, text: &str) -> String {
    match rng.below(3) {
        // All lowercase, no sentence punctuation.
        0 => text
            .to_lowercase()
            .chars()
            .filter(|c| !matches!(c, '.' | ',' | '!' | '?' | ':' | ';'))
            .collect(),
        // Exclamation marks instead of full stops, an extra one at the end.
        1 => {
            let t = text.replace(". ", "! ").replace(", ", " - ");
            let t = t.trim_end_matches('.');
            format!("{t}!!")
        }
        // Shouting a few words.
        _ => text
            .split(' ')
            .enumerate()
            .map(|(i, w)| if i % 3 == 1 { w.to_uppercase() } else { w.to_owned() })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn truncate(rng: &mut Rng, text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let keep = (chars.len() as f64 * rng.range(0.70, 0.85)).round() as usize;
    let cut: String = chars[..keep].iter().collect();
    let marker = if rng.below(3) == 0 { "..." } else { "…" };
    format!("{}{marker}", cut.trim_end())
}

fn emoji(rng: &mut Rng, text: &str) -> String {
    let e = rng.pick(&EMOJI);
    match rng.below(3) {
        0 => format!("{text} {e}"),
        1 => format!("{e} {text}"),
        // After the first sentence, if there is one.
        _ => match text.find(". ") {
            Some(i) => format!("{} {e}{}", &text[..=i], &text[i + 1..]),
            None => format!("{text}{e}"),
        },
    }
}

fn cross_post(rng: &mut Rng, text: &str) -> String {
    match rng.below(5) {
        0 => format!("{text} via @{}", rng.pick(&HANDLES)),
        1 => format!("{text} (reposted from Mastodon)"),
        2 => format!("{text} — cross-posted from Bluesky"),
        3 => format!("[x-post r/gadgets] {text}"),
        _ => format!("{text}\n\n(via {})", rng.pick(&["Bluesky", "Reddit", "Threads"])),
    }
}

type Edit = fn(&mut Rng, &str) -> String;

/// Single edits and combinations of two, by name.
fn edits() -> Vec<(&'static str, Vec<Edit>)> {
    vec![
        ("retweet", vec![retweet]),
        ("hashtags+link", vec![hashtags_and_link]),
        ("punctuation+case", vec![punctuation_and_case]),
        ("truncation", vec![truncate]),
        ("emoji", vec![emoji]),
        ("cross-post", vec![cross_post]),
        ("truncation, retweet", vec![truncate, retweet]),
        ("truncation, hashtags+link", vec![truncate, hashtags_and_link]),
        ("emoji, hashtags+link", vec![emoji, hashtags_and_link]),
        ("punctuation+case, cross-post", vec![punctuation_and_case, cross_post]),
        ("emoji, retweet", vec![emoji, retweet]),
    ]
}

#[test]
fn precision_and_recall_on_the_labelled_set() {
    let verbose = std::env::var_os("SOCIAL_SIMHASH_VERBOSE").is_some();
    let originals = originals();
    assert!(originals.len() >= 150, "{} originals", originals.len());
    let mut unique = originals.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), originals.len(), "the originals must be distinct");

    let hashes: Vec<u64> = originals.iter().map(|t| simhash(t)).collect();
    let mut rng = Rng(0x5eed_2024_ac3e_0001);
    let (mut tp, mut fn_, mut fp, mut tn) = (0usize, 0usize, 0usize, 0usize);
    let mut per_edit: Vec<(&str, usize, usize)> = Vec::new();
    // The margin: the closest negative pair, and how many are within twice the threshold.
    let mut closest_negative = u32::MAX;
    let mut within_double = 0usize;

    for (name, chain) in edits() {
        let mut hits = 0;
        for (i, original) in originals.iter().enumerate() {
            let mut text = original.clone();
            for edit in &chain {
                text = edit(&mut rng, &text);
            }
            let h = simhash(&text);
            // Positive: the copy against its original.
            let d = hamming(h, hashes[i]);
            if d <= THRESHOLD {
                tp += 1;
                hits += 1;
            } else {
                fn_ += 1;
                if verbose {
                    eprintln!("MISS [{name}] d={d}\n  {original}\n  {text}");
                }
            }
            // Negative: the copy against the next original (often the same product).
            let j = (i + 1) % originals.len();
            let d = hamming(h, hashes[j]);
            closest_negative = closest_negative.min(d);
            within_double += usize::from(d <= 2 * THRESHOLD);
            if d <= THRESHOLD {
                fp += 1;
                if verbose {
                    eprintln!("FALSE [{name}] d={d}\n  {}\n  {text}", originals[j]);
                }
            } else {
                tn += 1;
            }
        }
        per_edit.push((name, hits, originals.len()));
    }
    for i in 0..originals.len() {
        for j in i + 1..originals.len() {
            let d = hamming(hashes[i], hashes[j]);
            closest_negative = closest_negative.min(d);
            within_double += usize::from(d <= 2 * THRESHOLD);
            if d <= THRESHOLD {
                fp += 1;
                if verbose {
                    eprintln!("FALSE d={d}\n  {}\n  {}", originals[i], originals[j]);
                }
            } else {
                tn += 1;
            }
        }
    }

    let precision = tp as f64 / (tp + fp) as f64;
    let recall = tp as f64 / (tp + fn_) as f64;
    eprintln!(
        "simhash labelled set: {} originals, {} positive pairs, {} negative pairs",
        originals.len(),
        tp + fn_,
        fp + tn
    );
    for (name, hits, n) in &per_edit {
        eprintln!("  recall {:>5.1} %  {name}", 100.0 * *hits as f64 / *n as f64);
    }
    eprintln!("  precision {precision:.4} (fp {fp}), recall {recall:.4} (fn {fn_})");
    eprintln!(
        "  closest negative pair: {closest_negative} bits; negatives within {} bits: {within_double}",
        2 * THRESHOLD
    );
    assert!(precision >= 0.95, "precision {precision:.4}");
    assert!(recall >= 0.90, "recall {recall:.4}");
}

/// The index finds the same originals as comparing every pair.
#[test]
fn index_finds_what_a_scan_finds_on_the_labelled_set() {
    let originals = originals();
    let mut index = NearDupIndex::new(THRESHOLD);
    let mut stored: Vec<(String, u64)> = Vec::new();
    let mut rng = Rng(7);
    for (i, text) in originals.iter().enumerate() {
        for (name, chain) in edits() {
            let mut copy = text.clone();
            for edit in &chain {
                copy = edit(&mut rng, &copy);
            }
            let h = simhash(&copy);
            let scan = stored
                .iter()
                .map(|(id, s)| (id.as_str(), hamming(*s, h)))
                .filter(|(_, d)| *d <= THRESHOLD)
                .min_by_key(|(_, d)| *d);
            assert_eq!(index.nearest(h).map(|(_, d)| d), scan.map(|(_, d)| d), "{name}: {copy}");
        }
        let id = format!("post:{i}");
        let h = simhash(text);
        index.insert(id.clone(), h);
        stored.push((id, h));
    }
    assert_eq!(index.len(), originals.len());
}
