//! PLACEHOLDER — being written (VADER lexicon tier).

/// VADER's scores of one text.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Negative share.
    pub neg: f64,
    /// Neutral share.
    pub neu: f64,
    /// Positive share.
    pub pos: f64,
    /// Normalized compound score in [-1, 1].
    pub compound: f64,
}

/// VADER sentiment with its embedded lexicons.
#[derive(Debug)]
pub struct Vader {}

impl Vader {
    /// The shared instance (lexicons parsed once).
    pub fn global() -> &'static Vader {
        static V: Vader = Vader {};
        &V
    }
    /// VADER's polarity scores.
    pub fn polarity_scores(&self, _text: &str) -> Scores {
        Scores::default()
    }
    /// Placeholder.
    pub fn sentiment(&self, _text: &str) -> crow_core::ports::Sentiment {
        crow_core::ports::Sentiment {
            label: "neutral".into(),
            score: 0.0,
            tier: "lexicon".into(),
        }
    }
    /// True when the text contains a negation VADER knows (`not`, `never`, `n't`, ...).
    pub fn has_negation(&self, _text: &str) -> bool {
        false
    }
}
