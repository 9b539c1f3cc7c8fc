//! The lexicon tier: VADER sentiment in pure Rust.
//!
//! A faithful port of vaderSentiment 3.3.2 (Hutto & Gilbert, *VADER: A Parsimonious Rule-based
//! Model for Sentiment Analysis of Social Media Text*, ICWSM 2014; MIT licence, see
//! `crow-nlp/data/VADER-LICENSE.txt`). It gives the Python package's scores, to the rounding, on
//! every sentence of the UCI sentiment sentences (the integration test checks all 3,000), because it
//! keeps the package's rules and their quirks:
//!
//! - emoji are replaced by their descriptions (`😁` → `beaming face with smiling eyes`) first;
//! - tokens are `str.split()` pieces stripped of surrounding ASCII punctuation, unless that leaves
//!   two characters or fewer (so `:)` survives, and so does `a.`);
//! - boosters and dampeners (`very`, `kind of`, ...) up to three words before a lexicon word, fading
//!   with distance; an ALL-CAPS word among lowercase ones is emphasized;
//! - negation (`not`, `never`, any `n't`, ...) up to three words back, with VADER's special cases
//!   (`never so good`, `without a doubt`), `no` before a lexicon word, and `least`;
//! - idioms and phrases (`the bomb`, `kind of`, `yeah right`, `to die for`, ...);
//! - a contrastive `but` halves what precedes it and weighs what follows by 1.5, finding each value
//!   by `list.index` as the Python code does;
//! - `!` (up to four) and `??`+ add emphasis; the compound is `sum / sqrt(sum² + 15)`; shares are
//!   rounded like Python's `round(x, 3)` and the compound like `round(x, 4)`.
//!
//! The lexicons are embedded (`include_str!`) and parsed once per process; no I/O, wasm32-clean.
//! Scoring is linear in the length of the text.
//!
//! ```
//! use crow_nlp::lexicon::Vader;
//!
//! let vader = Vader::global();
//! let scores = vader.polarity_scores("The book was good.");
//! assert_eq!((scores.neg, scores.neu, scores.pos, scores.compound), (0.0, 0.508, 0.492, 0.4404));
//! assert_eq!(vader.sentiment("The book was not good.").label, "negative");
//! assert!(vader.has_negation("It isn't bad"));
//! ```

mod pytext;
mod rules;
mod tables;

use crow_core::ports::Sentiment;

/// VADER's scores of one text.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Negative share of the text, in [0, 1], rounded to 3 decimals.
    pub neg: f64,
    /// Neutral share of the text, in [0, 1], rounded to 3 decimals.
    pub neu: f64,
    /// Positive share of the text, in [0, 1], rounded to 3 decimals.
    pub pos: f64,
    /// Normalized compound score in [-1, 1], rounded to 4 decimals.
    pub compound: f64,
}

/// Compound score at or above which a text is `positive` (VADER's standard threshold).
pub const POSITIVE_THRESHOLD: f64 = 0.05;
/// Compound score at or below which a text is `negative` (VADER's standard threshold).
pub const NEGATIVE_THRESHOLD: f64 = -0.05;
/// The [`Sentiment::tier`] this module reports.
pub const TIER: &str = "lexicon";

/// VADER sentiment with its embedded lexicons (7,506 words and emoticons, 1,212 emoji).
///
/// Cheap to create once the lexicons are parsed (the first [`Vader::new`] or [`Vader::global`]
/// in a process parses them, in a few milliseconds); `Send + Sync`, so one instance serves all
/// threads.
#[derive(Clone, Copy)]
pub struct Vader {
    tables: &'static tables::Tables,
}

impl std::fmt::Debug for Vader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vader")
            .field("lexicon_words", &self.tables.lexicon.len())
            .field("emojis", &self.tables.emojis.len())
            .finish()
    }
}

impl Default for Vader {
    fn default() -> Self {
        Self::new()
    }
}

impl Vader {
    /// VADER with the embedded lexicons of vaderSentiment 3.3.2 (parsed on first use in the
    /// process, then shared).
    pub fn new() -> Self {
        Vader {
            tables: &tables::TABLES,
        }
    }

    /// The shared instance.
    pub fn global() -> &'static Vader {
        static GLOBAL: std::sync::LazyLock<Vader> = std::sync::LazyLock::new(Vader::new);
        &GLOBAL
    }

    /// VADER's polarity scores of `text`, equal to Python vaderSentiment 3.3.2's
    /// `polarity_scores`. Empty or whitespace-only text gives all zeros.
    pub fn polarity_scores(&self, text: &str) -> Scores {
        rules::polarity_scores(self.tables, text)
    }

    /// True when a word of `text` is one of VADER's negations (its `NEGATE` list: `not`, `never`,
    /// `without`, `nothing`, `cannot`, `dont`, ...) or contains `n't`. Words are VADER's tokens,
    /// compared in lowercase.
    pub fn has_negation(&self, text: &str) -> bool {
        rules::words(text).any(|word| tables::negated(&pytext::lower(word)))
    }

    /// The sentiment label of `text` by VADER's standard thresholds on the compound score:
    /// `positive` at or above [`POSITIVE_THRESHOLD`], `negative` at or below
    /// [`NEGATIVE_THRESHOLD`], `neutral` between; `score` is the compound, `tier` is
    /// [`TIER`] (`lexicon`).
    pub fn sentiment(&self, text: &str) -> Sentiment {
        let compound = self.polarity_scores(text).compound;
        let label = if compound >= POSITIVE_THRESHOLD {
            "positive"
        } else if compound <= NEGATIVE_THRESHOLD {
            "negative"
        } else {
            "neutral"
        };
        Sentiment {
            label: label.to_string(),
            score: compound as f32,
            tier: TIER.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts VADER's scores of each text; the expected values were printed by Python
    /// vaderSentiment 3.3.2's `SentimentIntensityAnalyzer().polarity_scores`.
    #[track_caller]
    fn check(cases: &[(&str, [f64; 4])]) {
        let vader = Vader::global();
        for &(text, [neg, neu, pos, compound]) in cases {
            let expected = Scores {
                neg,
                neu,
                pos,
                compound,
            };
            assert_eq!(vader.polarity_scores(text), expected, "{text:?}");
        }
    }

    #[test]
    fn empty_text_is_all_zeros() {
        check(&[
            ("", [0.0, 0.0, 0.0, 0.0]),
            ("   \n\t", [0.0, 0.0, 0.0, 0.0]),
            ("!!!", [0.0, 1.0, 0.0, 0.0]),
        ]);
        let s = Vader::global().sentiment("");
        assert_eq!(
            (s.label.as_str(), s.score, s.tier.as_str()),
            ("neutral", 0.0, "lexicon")
        );
    }

    #[test]
    fn plain_lexicon_words() {
        check(&[
            ("The book was good.", [0.0, 0.508, 0.492, 0.4404]),
            ("VADER is smart, handsome, and funny.", [0.0, 0.254, 0.746, 0.8316]),
            ("Make sure you :) or :D today!", [0.0, 0.294, 0.706, 0.8633]),
        ]);
    }

    #[test]
    fn negation() {
        check(&[
            ("The book was not good.", [0.376, 0.624, 0.0, -0.3412]),
            ("Not bad at all", [0.0, 0.513, 0.487, 0.431]),
            ("It isn't a horrible book.", [0.0, 0.584, 0.416, 0.431]),
            ("Sentiment analysis has never been good.", [0.325, 0.675, 0.0, -0.3412]),
            (
                "Sentiment analysis has never been this good!",
                [0.0, 0.621, 0.379, 0.5672],
            ),
            ("Without a doubt, excellent idea.", [0.0, 0.341, 0.659, 0.7013]),
            ("Without a doubt, an excellent idea.", [0.0, 0.408, 0.592, 0.7013]),
            // The `so|this` quirk of the third word back.
            ("It was so good", [0.0, 0.445, 0.555, 0.5777]),
            ("it was so very good", [0.0, 0.535, 0.465, 0.5379]),
        ]);
    }

    #[test]
    fn no_rule() {
        check(&[
            ("no problem", [0.0, 0.307, 0.693, 0.3089]),
            ("no good", [0.706, 0.294, 0.0, -0.3412]),
            ("there is no way", [0.423, 0.577, 0.0, -0.296]),
            ("NO good at all ok", [0.496, 0.24, 0.264, -0.2356]),
            ("no no good", [0.454, 0.189, 0.357, -0.1326]),
            ("no, not bad or good", [0.291, 0.363, 0.345, 0.1139]),
        ]);
    }

    #[test]
    fn least() {
        check(&[
            (
                "Roger Dodger is one of the least compelling variations on this theme.",
                [0.132, 0.868, 0.0, -0.1695],
            ),
            (
                "Roger Dodger is at least compelling as a variation on the theme.",
                [0.0, 0.853, 0.147, 0.2263],
            ),
            ("least good", [0.706, 0.294, 0.0, -0.3412]),
        ]);
    }

    #[test]
    fn boosters_and_dampeners() {
        check(&[
            ("VADER is very smart, handsome, and funny.", [0.0, 0.299, 0.701, 0.8545]),
            ("The book was only kind of good.", [0.0, 0.697, 0.303, 0.3832]),
            ("It is sort of nice", [0.0, 0.615, 0.385, 0.3626]),
            ("kinda good", [0.0, 0.277, 0.723, 0.3832]),
            ("barely acceptable", [0.0, 0.333, 0.667, 0.2516]),
        ]);
    }

    #[test]
    fn but() {
        check(&[
            (
                "The plot was good, but the characters are uncompelling and the dialog is not great.",
                [0.327, 0.579, 0.094, -0.7042],
            ),
            ("good good but good good", [0.0, 0.079, 0.921, 0.891]),
        ]);
    }

    #[test]
    fn caps() {
        check(&[
            ("VADER is VERY SMART, handsome, and FUNNY.", [0.0, 0.246, 0.754, 0.9227]),
            ("Today SUX!", [0.779, 0.221, 0.0, -0.5461]),
            // All words in caps: no differential, no emphasis.
            ("GREAT", [0.0, 0.0, 1.0, 0.6249]),
            (
                "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
                [0.0, 0.294, 0.706, 0.9469],
            ),
        ]);
    }

    #[test]
    fn punctuation() {
        check(&[
            ("VADER is smart, handsome, and funny!", [0.0, 0.248, 0.752, 0.8439]),
            ("good!!!!!!", [0.0, 0.0, 1.0, 0.6209]),
            ("good?", [0.0, 0.0, 1.0, 0.4404]),
            ("good???", [0.0, 0.0, 1.0, 0.533]),
            ("good????", [0.0, 0.0, 1.0, 0.594]),
        ]);
    }

    #[test]
    fn emoji() {
        check(&[
            ("Catch utf-8 emoji such as 💘 and 💋 and 😁", [0.0, 0.583, 0.417, 0.875]),
            ("I love it😁", [0.0, 0.455, 0.545, 0.802]),
            ("😁😁", [0.0, 0.571, 0.429, 0.7184]),
            ("© 2024 acme", [0.0, 1.0, 0.0, 0.0]),
            ("🔛", [0.0, 1.0, 0.0, 0.0]),
        ]);
    }

    #[test]
    fn idioms() {
        check(&[
            (
                "With VADER, sentiment analysis is the shit!",
                [0.0, 0.583, 0.417, 0.6476],
            ),
            ("On the other hand, VADER is quite bad ass", [0.0, 0.423, 0.577, 0.802]),
            ("yeah right, what a great idea", [0.0, 0.388, 0.612, 0.743]),
            ("this is the kiss of death for us", [0.455, 0.545, 0.0, -0.6124]),
            ("a cake to die for", [0.494, 0.506, 0.0, -0.5994]),
            // VADER only checks idioms when the third word back is not itself a lexicon word.
            ("that party was the bomb", [0.36, 0.337, 0.303, -0.128]),
            // Sentiment-laden idioms are "future work" in VADER 3.3.2: not applied.
            ("cut the mustard", [0.512, 0.488, 0.0, -0.2732]),
        ]);
    }

    #[test]
    fn sentiment_labels() {
        let vader = Vader::new();
        let s = vader.sentiment("The book was good.");
        assert_eq!(
            (s.label.as_str(), s.score, s.tier.as_str()),
            ("positive", 0.4404, "lexicon")
        );
        assert_eq!(vader.sentiment("The book was not good.").label, "negative");
        assert_eq!(vader.sentiment("The book is on the table.").label, "neutral");
    }

    #[test]
    fn negation_detection() {
        let vader = Vader::default();
        assert!(vader.has_negation("This is NOT what I ordered"));
        assert!(vader.has_negation("it doesn't work"));
        assert!(vader.has_negation("I shouldn't've bought it"));
        assert!(vader.has_negation("never again."));
        assert!(vader.has_negation("(without) a box"));
        assert!(!vader.has_negation("no way")); // "no" is not in VADER's NEGATE list
        assert!(!vader.has_negation("Nothingness is fine"));
        assert!(!vader.has_negation(""));
    }

    #[test]
    fn long_text_is_linear() {
        // 200k words, half of them the same value around a "but": must finish quickly.
        let text = "good but ".repeat(100_000);
        let s = Vader::global().polarity_scores(&text);
        assert!(s.compound > 0.99 && s.pos > 0.0);
    }

    #[test]
    fn scores_roundtrip_through_serde() {
        let s = Vader::global().polarity_scores("good");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Scores>(&json).unwrap(), s);
    }

    #[test]
    fn debug_is_short() {
        assert_eq!(
            format!("{:?}", Vader::global()),
            "Vader { lexicon_words: 7506, emojis: 1212 }"
        );
    }
}
