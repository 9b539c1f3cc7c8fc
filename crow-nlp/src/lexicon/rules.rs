//! VADER's scoring rules, in the order and with the arithmetic of vaderSentiment 3.3.2's
//! `SentimentIntensityAnalyzer.polarity_scores`, quirks included (each is marked "VADER quirk").

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use super::Scores;
use super::pytext;
use super::tables::{self, C_INCR, N_SCALAR, Tables};

/// One token of `SentiText.words_and_emoticons`, with what the rules ask of it precomputed.
#[derive(Debug)]
struct Token<'a> {
    /// `str.lower()` of the token.
    lower: Cow<'a, str>,
    /// `token.isupper()`.
    upper: bool,
    /// The token's lexicon valence (`lower in lexicon`).
    valence: Option<f64>,
    /// The token's booster or dampener value (`lower in BOOSTER_DICT`).
    booster: Option<f64>,
}

impl Token<'_> {
    fn is(&self, word: &str) -> bool {
        self.lower == word
    }
}

/// VADER's tokens of a text: `text.split()`, each stripped of surrounding punctuation unless that
/// leaves two characters or fewer (emoticons such as `:)` survive).
pub(crate) fn words(text: &str) -> impl Iterator<Item = &str> {
    pytext::split(text).map(pytext::strip_punc_if_word)
}

/// VADER's `polarity_scores`.
pub(crate) fn polarity_scores(tables: &Tables, text: &str) -> Scores {
    let replaced = replace_emojis(tables, text);
    let text = pytext::strip(&replaced);

    let tokens: Vec<Token<'_>> = words(text)
        .map(|word| {
            let lower = pytext::lower(word);
            let valence = tables.lexicon.get(lower.as_ref()).copied();
            let booster = tables::booster(&lower);
            Token {
                lower,
                upper: pytext::is_upper(word),
                valence,
                booster,
            }
        })
        .collect();

    // allcap_differential: some, but not all, tokens are ALL CAPS.
    let allcaps = tokens.iter().filter(|t| t.upper).count();
    let cap_diff = allcaps > 0 && allcaps < tokens.len();

    let mut sentiments = Vec::with_capacity(tokens.len());
    for i in 0..tokens.len() {
        let valence = if tokens[i].booster.is_some()
            || (tokens[i].is("kind") && tokens.get(i + 1).is_some_and(|next| next.is("of")))
        {
            // Modifiers carry no valence of their own.
            0.0
        } else {
            sentiment_valence(&tokens, i, cap_diff)
        };
        sentiments.push(valence);
    }

    but_check(&tokens, &mut sentiments);
    score_valence(&sentiments, text)
}

/// VADER's emoji step: each character that is an emoji is replaced by its description, with a
/// space before it unless the previous character was a space (nothing is added after it).
fn replace_emojis<'a>(tables: &Tables, text: &'a str) -> Cow<'a, str> {
    let is_emoji = |c: char| c >= tables.min_emoji && tables.emojis.contains_key(&c);
    if text.is_ascii() || !text.chars().any(is_emoji) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 32);
    let mut prev_space = true;
    for c in text.chars() {
        match tables.emojis.get(&c).filter(|_| c >= tables.min_emoji) {
            Some(description) => {
                if !prev_space {
                    out.push(' ');
                }
                out.push_str(description);
                prev_space = false;
            }
            None => {
                out.push(c);
                prev_space = c == ' ';
            }
        }
    }
    Cow::Owned(out)
}

/// VADER's `sentiment_valence` for the token at `i` (not a booster).
fn sentiment_valence(tokens: &[Token<'_>], i: usize, cap_diff: bool) -> f64 {
    let Some(base) = tokens[i].valence else {
        return 0.0;
    };
    let word = |j: usize| tokens[j].lower.as_ref();
    let mut valence = base;

    // "no" before a lexicon word negates that word instead of counting itself.
    if tokens[i].is("no") && i + 1 < tokens.len() && tokens[i + 1].valence.is_some() {
        valence = 0.0;
    }
    if (i > 0 && word(i - 1) == "no")
        || (i > 1 && word(i - 2) == "no")
        || (i > 2 && word(i - 3) == "no" && matches!(word(i - 1), "or" | "nor"))
    {
        valence = base * N_SCALAR;
    }

    // An ALL-CAPS word among others that are not. VADER quirk: a valence of exactly 0 (a "no"
    // before a lexicon word) counts as negative here.
    if tokens[i].upper && cap_diff {
        if valence > 0.0 {
            valence += C_INCR;
        } else {
            valence -= C_INCR;
        }
    }

    for start_i in 0..3 {
        // Boosters, dampeners and negations up to three words back, fading with distance; words
        // that are themselves in the lexicon are skipped.
        if i > start_i && tokens[i - (start_i + 1)].valence.is_none() {
            let mut s = scalar_inc_dec(&tokens[i - (start_i + 1)], valence, cap_diff);
            if start_i == 1 && s != 0.0 {
                s *= 0.95;
            }
            if start_i == 2 && s != 0.0 {
                s *= 0.9;
            }
            valence += s;
            valence = negation_check(valence, tokens, start_i, i);
            if start_i == 2 {
                valence = special_idioms_check(valence, tokens, i);
            }
        }
    }

    least_check(valence, tokens, i)
}

/// VADER's `scalar_inc_dec`: the change a booster or dampener makes to a following valence.
fn scalar_inc_dec(token: &Token<'_>, valence: f64, cap_diff: bool) -> f64 {
    let Some(mut scalar) = token.booster else {
        return 0.0;
    };
    if valence < 0.0 {
        scalar *= -1.0;
    }
    if token.upper && cap_diff {
        if valence > 0.0 {
            scalar += C_INCR;
        } else {
            scalar -= C_INCR;
        }
    }
    scalar
}

/// VADER's `_negation_check` for the word `start_i + 1` places before `i`.
fn negation_check(valence: f64, tokens: &[Token<'_>], start_i: usize, i: usize) -> f64 {
    let word = |j: usize| tokens[j].lower.as_ref();
    let so_or_this = |w: &str| matches!(w, "so" | "this");
    match start_i {
        0 if tables::negated(word(i - 1)) => valence * N_SCALAR,
        1 if word(i - 2) == "never" && so_or_this(word(i - 1)) => valence * 1.25,
        1 if word(i - 2) == "without" && word(i - 1) == "doubt" => valence,
        1 if tables::negated(word(i - 2)) => valence * N_SCALAR,
        // VADER quirk (operator precedence): `never so|this _ X` OR any `so|this X`.
        2 if (word(i - 3) == "never" && so_or_this(word(i - 2))) || so_or_this(word(i - 1)) => valence * 1.25,
        2 if word(i - 3) == "without" && (word(i - 2) == "doubt" || word(i - 1) == "doubt") => valence,
        2 if tables::negated(word(i - 3)) => valence * N_SCALAR,
        _ => valence,
    }
}

/// VADER's `_special_idioms_check` at `i` (only reached with `i >= 3`).
fn special_idioms_check(mut valence: f64, tokens: &[Token<'_>], i: usize) -> f64 {
    let word = |j: usize| tokens[j].lower.as_ref();
    let (w3, w2, w1, w0) = (word(i - 3), word(i - 2), word(i - 1), word(i));
    let sequences: [&[&str]; 5] = [&[w1, w0], &[w2, w1, w0], &[w2, w1], &[w3, w2, w1], &[w3, w2]];
    if let Some(v) = sequences.iter().find_map(|seq| tables::special_case(seq)) {
        valence = v;
    }
    if tokens.len() - 1 > i
        && let Some(v) = tables::special_case(&[w0, word(i + 1)])
    {
        valence = v;
    }
    if tokens.len() - 1 > i + 1
        && let Some(v) = tables::special_case(&[w0, word(i + 1), word(i + 2)])
    {
        valence = v;
    }
    // Two-word dampeners ("kind of", "sort of", "just enough") before the word. (VADER also tries
    // the three-word sequence, which no entry can match.)
    for (first, second) in [(w3, w2), (w2, w1)] {
        if let Some(b) = tables::booster_bigram(first, second) {
            valence += b;
        }
    }
    valence
}

/// VADER's `_least_check`: "least X" negates X, except in "at least" and "very least".
fn least_check(valence: f64, tokens: &[Token<'_>], i: usize) -> f64 {
    let is_least = |j: usize| tokens[j].valence.is_none() && tokens[j].is("least");
    if i > 1 && is_least(i - 1) {
        if !tokens[i - 2].is("at") && !tokens[i - 2].is("very") {
            return valence * N_SCALAR;
        }
    } else if i > 0 && is_least(i - 1) {
        return valence * N_SCALAR;
    }
    valence
}

/// Up to this many sentiments, [`but_check`] searches linearly like Python's `list.index`.
const BUT_LINEAR_MAX: usize = 256;

/// VADER's `_but_check`: sentiments before the first "but" are halved, those after it are
/// multiplied by 1.5.
///
/// VADER quirk: each one is found again with `sentiments.index(value)`, i.e. the *first* position
/// holding an equal value is the one changed; with repeated values an earlier one may be scaled
/// several times and a later one not at all. That is reproduced exactly, in O(n log n) for long
/// texts.
fn but_check(tokens: &[Token<'_>], sentiments: &mut [f64]) {
    let Some(bi) = tokens.iter().position(|t| t.is("but")) else {
        return;
    };
    let scale = |si: usize, value: f64| {
        if si < bi {
            Some(value * 0.5)
        } else if si > bi {
            Some(value * 1.5)
        } else {
            None
        }
    };
    if sentiments.len() <= BUT_LINEAR_MAX {
        for k in 0..sentiments.len() {
            let value = sentiments[k];
            // The value at k itself is equal, so a first match at or before k always exists.
            let si = sentiments.iter().position(|&s| s == value).unwrap_or(k);
            if let Some(scaled) = scale(si, value) {
                sentiments[si] = scaled;
            }
        }
        return;
    }

    // Positions grouped by value (0.0 and -0.0 are equal, as in Python).
    let key = |v: f64| if v == 0.0 { 0u64 } else { v.to_bits() };
    let mut positions: HashMap<u64, BTreeSet<usize>> = HashMap::new();
    for (k, &value) in sentiments.iter().enumerate() {
        positions.entry(key(value)).or_default().insert(k);
    }
    for k in 0..sentiments.len() {
        let value = sentiments[k];
        let si = positions
            .get(&key(value))
            .and_then(|set| set.first().copied())
            .unwrap_or(k);
        if let Some(scaled) = scale(si, value) {
            if key(scaled) != key(value) {
                if let Some(set) = positions.get_mut(&key(value)) {
                    set.remove(&si);
                }
                positions.entry(key(scaled)).or_default().insert(si);
            }
            sentiments[si] = scaled;
        }
    }
}

/// VADER's `_punctuation_emphasis`: up to four `!` and, from two on, `?`.
fn punctuation_emphasis(text: &str) -> f64 {
    let ep_count = text.bytes().filter(|&b| b == b'!').count().min(4);
    let ep_amplifier = ep_count as f64 * 0.292;
    let qm_count = text.bytes().filter(|&b| b == b'?').count();
    let qm_amplifier = match qm_count {
        0 | 1 => 0.0,
        2 | 3 => qm_count as f64 * 0.18,
        _ => 0.96,
    };
    ep_amplifier + qm_amplifier
}

/// VADER's `normalize` with alpha 15.
fn normalize(score: f64) -> f64 {
    (score / (score * score + 15.0).sqrt()).clamp(-1.0, 1.0)
}

/// VADER's `score_valence`.
fn score_valence(sentiments: &[f64], text: &str) -> Scores {
    if sentiments.is_empty() {
        return Scores::default();
    }
    // Python 3.11's `sum`: left to right.
    let mut sum_s: f64 = sentiments.iter().fold(0.0, |acc, &s| acc + s);
    let punct = punctuation_emphasis(text);
    if sum_s > 0.0 {
        sum_s += punct;
    } else if sum_s < 0.0 {
        sum_s -= punct;
    }
    let compound = normalize(sum_s);

    // _sift_sentiment_scores
    let (mut pos_sum, mut neg_sum, mut neu_count) = (0.0f64, 0.0f64, 0usize);
    for &s in sentiments {
        if s > 0.0 {
            pos_sum += s + 1.0;
        }
        if s < 0.0 {
            neg_sum += s - 1.0;
        }
        if s == 0.0 {
            neu_count += 1;
        }
    }
    if pos_sum > neg_sum.abs() {
        pos_sum += punct;
    } else if pos_sum < neg_sum.abs() {
        neg_sum -= punct;
    }
    let total = pos_sum + neg_sum.abs() + neu_count as f64;
    Scores {
        neg: pytext::round((neg_sum / total).abs(), 3),
        neu: pytext::round((neu_count as f64 / total).abs(), 3),
        pos: pytext::round((pos_sum / total).abs(), 3),
        compound: pytext::round(compound, 4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(words: &[&'static str]) -> Vec<Token<'static>> {
        words
            .iter()
            .map(|w| Token {
                lower: Cow::Borrowed(w),
                upper: false,
                valence: None,
                booster: None,
            })
            .collect()
    }

    /// The `list.index` emulation agrees with the linear search on long inputs with many repeats.
    #[test]
    fn but_check_long_path_matches_linear() {
        let n = BUT_LINEAR_MAX * 3;
        let mut words = vec!["x"; n];
        words[n / 3] = "but";
        let toks = tokens(&words);
        // A deterministic sequence with many repeated values, zeros and -0.0.
        let base: Vec<f64> = (0..n)
            .map(|k| match (k * 7919) % 11 {
                0 => 0.0,
                1 => -0.0,
                2 | 3 => 1.9,
                4 => 0.95,
                5 => -2.1,
                6 => 3.8,
                7 => 2.85,
                8 => -1.05,
                _ => (k % 5) as f64 * 0.5,
            })
            .collect();
        let mut fast = base.clone();
        but_check(&toks, &mut fast);

        let mut slow = base;
        let bi = n / 3;
        for k in 0..slow.len() {
            let value = slow[k];
            let si = slow.iter().position(|&s| s == value).unwrap();
            if si < bi {
                slow[si] = value * 0.5;
            } else if si > bi {
                slow[si] = value * 1.5;
            }
        }
        assert_eq!(
            fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            slow.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn but_check_first_index_quirk() {
        // Python's _but_check(['a','b','but','c'], [1.0, 1.0, 0, 2.0]) == [0.5, 0.5, 0, 3.0].
        let toks = tokens(&["a", "b", "but", "c"]);
        let mut s = vec![1.0, 1.0, 0.0, 2.0];
        but_check(&toks, &mut s);
        assert_eq!(s, vec![0.5, 0.5, 0.0, 3.0]);
        // Python's _but_check(.., [2.0, 1.0, 0, 1.0]) == [0.5, 0.5, 0, 1.0]: 2.0 → 1.0 at 0; then value 1.0 at k=1 is found at index 0 → 0.5;
        // at k=3 value 1.0 is found at index 1 → 0.5 (before "but"), and index 3 stays 1.0.
        let mut s = vec![2.0, 1.0, 0.0, 1.0];
        but_check(&toks, &mut s);
        assert_eq!(s, vec![0.5, 0.5, 0.0, 1.0]);
    }

    #[test]
    fn punctuation() {
        assert_eq!(punctuation_emphasis("a!"), 0.292);
        assert_eq!(punctuation_emphasis("a!!!!!!"), 4.0 * 0.292);
        assert_eq!(punctuation_emphasis("a?"), 0.0);
        assert_eq!(punctuation_emphasis("a??"), 2.0 * 0.18);
        assert_eq!(punctuation_emphasis("a????"), 0.96);
    }
}
