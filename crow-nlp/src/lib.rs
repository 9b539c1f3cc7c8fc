//! CROW's text intelligence.
//!
//! Two tiers behind crow-core's [`TextAnalyzer`](crow_core::ports::TextAnalyzer) port:
//!
//! - the **lexicon tier** ([`lexicon`]): VADER's rules in pure Rust, with its lexicons embedded.
//!   It needs no model files and compiles for `wasm32-unknown-unknown`, so the Cloudflare Worker
//!   and the social channel's pre-filter use it;
//! - the **model tier** (feature `onnx`): sentence embeddings from an ONNX model through ONNX
//!   Runtime ([`onnx::OnnxEmbedder`]) and trainable linear [`head`]s on them (sentiment, or any
//!   labels a user trains: intents, topics, urgency).
//!
//! Beside sentiment: [`entities`] (a catalog gazetteer, patterns, and an optional ONNX
//! token-classification model) and [`lang`] (language detection and key phrases). [`Analyzer`]
//! combines them into one `TextAnalyzer`.
//!
//! Models are files in the Hugging Face layout (`model.onnx`, `tokenizer.json`, optional
//! `config.json`) at any path; [`NlpConfig`] says where. `make models` fetches the defaults.
//!
//! ```
//! use crow_nlp::lexicon::Vader;
//!
//! let scores = Vader::global().polarity_scores("The delivery was fast and the staff were GREAT!!");
//! assert!(scores.compound > 0.5);
//! let scores = Vader::global().polarity_scores("not good at all");
//! assert!(scores.compound < 0.0);
//! ```

pub mod analyzer;
pub mod config;
pub mod entities;
pub mod error;
pub mod head;
pub mod lang;
pub mod lexicon;
#[cfg(feature = "onnx")]
pub mod onnx;

pub use analyzer::Analyzer;
pub use config::NlpConfig;
pub use error::{NlpError, Result};

/// The first `max` bytes of `s`, cut back to a `char` boundary.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
