//! VADER's constants, word lists and the two embedded lexicons (vaderSentiment 3.3.2).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use super::pytext;

/// Mean intensity increase of a booster word (`very good`).
pub(crate) const B_INCR: f64 = 0.293;
/// Mean intensity decrease of a dampener word (`kind of good`).
pub(crate) const B_DECR: f64 = -0.293;
/// Mean intensity increase of an ALL-CAPS word among lowercase ones.
pub(crate) const C_INCR: f64 = 0.733;
/// The factor a negation multiplies a valence by.
pub(crate) const N_SCALAR: f64 = -0.74;

/// `vader_lexicon.txt` of vaderSentiment 3.3.2: `token \t mean valence \t std dev \t ratings`.
const LEXICON_TXT: &str = include_str!("../../data/vader_lexicon.txt");
/// `emoji_utf8_lexicon.txt` of vaderSentiment 3.3.2: `emoji \t description`.
const EMOJI_TXT: &str = include_str!("../../data/emoji_utf8_lexicon.txt");

/// VADER's `NEGATE` list.
pub(crate) fn is_negate_word(word: &str) -> bool {
    matches!(
        word,
        "aint"
            | "arent"
            | "cannot"
            | "cant"
            | "couldnt"
            | "darent"
            | "didnt"
            | "doesnt"
            | "ain't"
            | "aren't"
            | "can't"
            | "couldn't"
            | "daren't"
            | "didn't"
            | "doesn't"
            | "dont"
            | "hadnt"
            | "hasnt"
            | "havent"
            | "isnt"
            | "mightnt"
            | "mustnt"
            | "neither"
            | "don't"
            | "hadn't"
            | "hasn't"
            | "haven't"
            | "isn't"
            | "mightn't"
            | "mustn't"
            | "neednt"
            | "needn't"
            | "never"
            | "none"
            | "nope"
            | "nor"
            | "not"
            | "nothing"
            | "nowhere"
            | "oughtnt"
            | "shant"
            | "shouldnt"
            | "uhuh"
            | "wasnt"
            | "werent"
            | "oughtn't"
            | "shan't"
            | "shouldn't"
            | "uh-uh"
            | "wasn't"
            | "weren't"
            | "without"
            | "wont"
            | "wouldnt"
            | "won't"
            | "wouldn't"
            | "rarely"
            | "seldom"
            | "despite"
    )
}

/// VADER's `negated([word])` for one lowercased word: a `NEGATE` word, or any word containing `n't`.
pub(crate) fn negated(word: &str) -> bool {
    is_negate_word(word) || word.contains("n't")
}

/// VADER's `BOOSTER_DICT` (lowercase keys): boosters add [`B_INCR`], dampeners [`B_DECR`].
/// The two-word entries (`kind of`, `sort of`, `just enough`) are looked up by
/// [`booster_bigram`].
pub(crate) fn booster(word: &str) -> Option<f64> {
    match word {
        "absolutely" | "amazingly" | "awfully" | "completely" | "considerable" | "considerably" | "decidedly"
        | "deeply" | "effing" | "enormous" | "enormously" | "entirely" | "especially" | "exceptional"
        | "exceptionally" | "extreme" | "extremely" | "fabulously" | "flipping" | "flippin" | "frackin"
        | "fracking" | "fricking" | "frickin" | "frigging" | "friggin" | "fully" | "fuckin" | "fucking" | "fuggin"
        | "fugging" | "greatly" | "hella" | "highly" | "hugely" | "incredible" | "incredibly" | "intensely"
        | "major" | "majorly" | "more" | "most" | "particularly" | "purely" | "quite" | "really" | "remarkably"
        | "so" | "substantially" | "thoroughly" | "total" | "totally" | "tremendous" | "tremendously" | "uber"
        | "unbelievably" | "unusually" | "utter" | "utterly" | "very" => Some(B_INCR),
        "almost" | "barely" | "hardly" | "kinda" | "kindof" | "kind-of" | "less" | "little" | "marginal"
        | "marginally" | "occasional" | "occasionally" | "partly" | "scarce" | "scarcely" | "slight" | "slightly"
        | "somewhat" | "sorta" | "sortof" | "sort-of" => Some(B_DECR),
        _ => None,
    }
}

/// The two-word entries of VADER's `BOOSTER_DICT`.
pub(crate) fn booster_bigram(first: &str, second: &str) -> Option<f64> {
    match (first, second) {
        ("just", "enough") | ("kind", "of") | ("sort", "of") => Some(B_DECR),
        _ => None,
    }
}

/// VADER's `SPECIAL_CASES`: idioms and phrases containing lexicon words, with the valence that
/// replaces the word's own. (The one-word entry `badass` can never match a sequence of two or
/// three words, as in VADER.)
pub(crate) const SPECIAL_CASES: &[(&[&str], f64)] = &[
    (&["the", "shit"], 3.0),
    (&["the", "bomb"], 3.0),
    (&["bad", "ass"], 1.5),
    (&["badass"], 1.5),
    (&["bus", "stop"], 0.0),
    (&["yeah", "right"], -2.0),
    (&["kiss", "of", "death"], -1.5),
    (&["to", "die", "for"], 3.0),
    (&["beating", "heart"], 3.5),
];

/// The valence of a special-case phrase, if `words` (lowercase) is one.
pub(crate) fn special_case(words: &[&str]) -> Option<f64> {
    SPECIAL_CASES
        .iter()
        .find(|(phrase, _)| *phrase == words)
        .map(|&(_, valence)| valence)
}

/// VADER's `SENTIMENT_LADEN_IDIOMS`: idioms without lexicon words. VADER 3.3.2 marks their check
/// "future work" and never applies it, so they do not change any score here either.
pub(crate) const SENTIMENT_LADEN_IDIOMS: &[(&str, f64)] = &[
    ("cut the mustard", 2.0),
    ("hand to mouth", -2.0),
    ("back handed", -2.0),
    ("blow smoke", -2.0),
    ("blowing smoke", -2.0),
    ("upper hand", 1.0),
    ("break a leg", 2.0),
    ("cooking with gas", 2.0),
    ("in the black", 2.0),
    ("in the red", -2.0),
    ("on the ball", 2.0),
    ("under the weather", -2.0),
];

/// VADER's `_sentiment_laden_idioms_check` (without its debugging `print`): the mean valence of
/// the sentiment-laden idioms found in `text_lower`, else `valence`. Ported for completeness but,
/// exactly as in VADER 3.3.2, never called while scoring.
#[allow(dead_code)]
pub(crate) fn sentiment_laden_idioms_check(valence: f64, text_lower: &str) -> f64 {
    let found: Vec<f64> = SENTIMENT_LADEN_IDIOMS
        .iter()
        .filter(|(idiom, _)| text_lower.contains(idiom))
        .map(|&(_, v)| v)
        .collect();
    if found.is_empty() {
        valence
    } else {
        found.iter().sum::<f64>() / found.len() as f64
    }
}

/// A fast hasher for the fixed lexicon (FxHash's mixing). The table is built once from embedded
/// data, so hostile lookups cannot lengthen its probe chains: no need for SipHash's DoS defence.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The parsed lexicons, shared by every [`Vader`](super::Vader).
#[derive(Debug)]
pub(crate) struct Tables {
    /// Token (lowercase as in the file) → mean valence.
    pub(crate) lexicon: FxMap<&'static str, f64>,
    /// Emoji (one character) → its description. VADER replaces emoji character by character, so
    /// entries of several code points (flags, skin tones, ZWJ sequences) can never match and are
    /// left out.
    pub(crate) emojis: FxMap<char, &'static str>,
    /// The smallest emoji character: text below it (e.g. ASCII) needs no replacement.
    pub(crate) min_emoji: char,
}

/// The lexicons, parsed on first use.
pub(crate) static TABLES: LazyLock<Tables> = LazyLock::new(Tables::parse);

impl Tables {
    fn parse() -> Self {
        let lexicon = parse_lexicon(LEXICON_TXT);
        let emojis = parse_emojis(EMOJI_TXT);
        let min_emoji = emojis.keys().copied().min().unwrap_or(char::MAX);
        Tables {
            lexicon,
            emojis,
            min_emoji,
        }
    }
}

/// VADER's `make_lex_dict`: per non-empty line, `line.strip().split('\t')[0:2]`, the measure read
/// as a float; later lines win.
fn parse_lexicon(src: &'static str) -> FxMap<&'static str, f64> {
    let mut map = FxMap::default();
    for line in src.trim_end_matches('\n').split('\n') {
        if line.is_empty() {
            continue;
        }
        let mut fields = pytext::strip(line).split('\t');
        if let (Some(word), Some(measure)) = (fields.next(), fields.next())
            && let Ok(measure) = measure.parse::<f64>()
        {
            map.insert(word, measure);
        }
    }
    map
}

/// VADER's `make_emoji_dict`: per line, `line.strip().split('\t')[0:2]`; later lines win.
fn parse_emojis(src: &'static str) -> FxMap<char, &'static str> {
    let mut map = FxMap::default();
    for line in src.trim_end_matches('\n').split('\n') {
        let mut fields = pytext::strip(line).split('\t');
        if let (Some(emoji), Some(description)) = (fields.next(), fields.next()) {
            let mut chars = emoji.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                map.insert(c, description);
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicons_parse_like_python() {
        // Python: len(S().lexicon) == 7506; 1212 of the 3570 emoji keys are one code point.
        let t = &*TABLES;
        assert_eq!(t.lexicon.len(), 7506);
        assert_eq!(t.emojis.len(), 1212);
        assert_eq!(t.lexicon.get("no"), Some(&-1.2));
        assert_eq!(t.lexicon.get("kind"), Some(&2.4));
        assert_eq!(t.lexicon.get(":)"), Some(&2.0));
        assert_eq!(t.lexicon.get("can't stand"), Some(&-2.0));
        assert_eq!(t.emojis.get(&'😁').copied(), Some("beaming face with smiling eyes"));
        assert_eq!(t.emojis.get(&'©').copied(), Some("copyright"));
        assert_eq!(t.min_emoji, '©');
    }

    #[test]
    fn word_lists() {
        assert!(negated("not") && negated("isn't") && negated("ain't") && negated("shouldn't've"));
        assert!(!negated("no") && !negated("nt"));
        assert_eq!(booster("very"), Some(B_INCR));
        assert_eq!(booster("kinda"), Some(B_DECR));
        assert_eq!(booster("kind of"), None);
        assert_eq!(booster_bigram("sort", "of"), Some(B_DECR));
        assert_eq!(special_case(&["the", "bomb"]), Some(3.0));
        assert_eq!(special_case(&["kiss", "of", "death"]), Some(-1.5));
        assert_eq!(special_case(&["bomb"]), None);
    }

    #[test]
    fn sentiment_laden_idioms() {
        // Python: S._sentiment_laden_idioms_check(0.5, "we are in the red but on the ball") == 0.0
        assert_eq!(
            sentiment_laden_idioms_check(0.5, "we are in the red but on the ball"),
            0.0
        );
        assert_eq!(sentiment_laden_idioms_check(0.5, "upper hand"), 1.0);
        assert_eq!(sentiment_laden_idioms_check(0.5, "nothing here"), 0.5);
    }

    #[test]
    fn fx_hasher_spreads_keys() {
        let t = &*TABLES;
        // Every lexicon word is found again through the hasher.
        assert!(t.lexicon.keys().all(|k| t.lexicon.contains_key(k)));
    }
}
