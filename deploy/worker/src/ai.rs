//! Workers AI (the `AI` binding) as the [`TextAnalyzer`](crow_core::ports::TextAnalyzer) model
//! tier and the [`Embedder`](crow_core::ports::Embedder).
//!
//! - **Embedder**: [`EMBED_MODEL`] (`@cf/baai/bge-small-en-v1.5`, 384 dimensions):
//!   `{text: [..]}` → `{shape, data: [[f32; 384]]}`, at most [`EMBED_BATCH`] texts a call (more
//!   are split). Vectors are L2-normalized here, as the port's contract wants.
//! - **TextAnalyzer**: crow-nlp's lexicon analyzer gives language, entities and key phrases; the
//!   sentiment comes from [`SENTIMENT_MODEL`] (`@cf/huggingface/distilbert-sst-2-int8`, one call
//!   per text, made concurrently): `{text}` → `[{label: "NEGATIVE"|"POSITIVE", score}]`, mapped
//!   by [`sentiment_from_sst2`]: score = p(positive) − p(negative) in −1..1, label `neutral`
//!   when |score| < [`NEUTRAL_BAND`] (a two-class model has no neutral class: a text it is not
//!   sure about is neutral), tier `model`. An empty text is neutral without a call.
//! - Texts are cut to [`MAX_MODEL_TEXT_BYTES`] (at a character boundary) before a model sees
//!   them; both models read at most 512 tokens.
//!
//! Without the binding (local runs, `--env test`) the Worker keeps the lexicon tier and no
//! embedder, and semantic search answers 503.

use crow_core::ports::Sentiment;
use crow_core::{Error, Result};
use serde_json::Value;

/// The embedding model.
pub const EMBED_MODEL: &str = "@cf/baai/bge-small-en-v1.5";
/// The sentiment model.
pub const SENTIMENT_MODEL: &str = "@cf/huggingface/distilbert-sst-2-int8";
/// The embedding model's vector length.
pub const EMBED_DIM: usize = 384;
/// Texts per embedding call (the model's batch limit).
pub const EMBED_BATCH: usize = 100;
/// |p(positive) − p(negative)| below this is `neutral`.
pub const NEUTRAL_BAND: f32 = 0.2;
/// Bytes of a text a model sees.
pub const MAX_MODEL_TEXT_BYTES: usize = 4096;

/// `text` cut to [`MAX_MODEL_TEXT_BYTES`] at a character boundary.
pub fn model_text(text: &str) -> &str {
    if text.len() <= MAX_MODEL_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_MODEL_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The sentiment of an sst-2 answer (`[{label, score}]`, one or both classes).
pub fn sentiment_from_sst2(answer: &Value) -> Result<Sentiment> {
    let bad = || Error::Backend(format!("{SENTIMENT_MODEL} answered an unexpected shape: {answer}"));
    let items = answer.as_array().ok_or_else(bad)?;
    let (mut pos, mut neg) = (None, None);
    for item in items {
        let label = item.get("label").and_then(Value::as_str).ok_or_else(bad)?;
        let p = item.get("score").and_then(Value::as_f64).ok_or_else(bad)? as f32;
        match label.to_ascii_uppercase().as_str() {
            "POSITIVE" => pos = Some(p),
            "NEGATIVE" => neg = Some(p),
            _ => return Err(bad()),
        }
    }
    let (pos, neg) = match (pos, neg) {
        (Some(p), Some(n)) => (p, n),
        (Some(p), None) => (p, 1.0 - p),
        (None, Some(n)) => (1.0 - n, n),
        (None, None) => return Err(bad()),
    };
    let score = (pos - neg).clamp(-1.0, 1.0);
    Ok(model_sentiment(score))
}

/// A `model`-tier sentiment of a score in −1..1, with the neutral band.
pub fn model_sentiment(score: f32) -> Sentiment {
    let label = if score.abs() < NEUTRAL_BAND {
        "neutral"
    } else if score > 0.0 {
        "positive"
    } else {
        "negative"
    };
    Sentiment {
        label: label.into(),
        score,
        tier: "model".into(),
    }
}

/// The vectors of an embedding answer (`{shape, data}`), `n` of them, L2-normalized.
pub fn embeddings_from(answer: &Value, n: usize) -> Result<Vec<Vec<f32>>> {
    let bad = |why: &str| Error::Backend(format!("{EMBED_MODEL} answered an unexpected shape: {why}"));
    let data = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `data`"))?;
    if data.len() != n {
        return Err(bad(&format!("{} vectors for {n} texts", data.len())));
    }
    data.iter()
        .map(|row| {
            let mut v = row
                .as_array()
                .ok_or_else(|| bad("a row is not an array"))?
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| bad("a value is not a number"))?;
            if v.len() != EMBED_DIM {
                return Err(bad(&format!("{} dimensions, expected {EMBED_DIM}", v.len())));
            }
            crow_core::vector::normalize(&mut v).map_err(|_| bad("a zero vector"))?;
            Ok(v)
        })
        .collect()
}

#[cfg(target_arch = "wasm32")]
mod binding {
    use crow_core::ports::{Embedder, TextAnalysis, TextAnalyzer};
    use crow_core::{Error, Result};
    use serde_json::{Value, json};
    use wasm_bindgen::prelude::*;

    use super::*;
    use crate::glue;

    /// The `AI` binding, with the lexicon analyzer whose sentiment it replaces.
    #[derive(Clone, Copy)]
    pub struct WorkersAi<'a> {
        ai: &'a JsValue,
        lexicon: &'a crow_nlp::Analyzer,
    }

    impl std::fmt::Debug for WorkersAi<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("WorkersAi").finish_non_exhaustive()
        }
    }

    impl<'a> WorkersAi<'a> {
        /// Over `env.AI`, with the lexicon tier for everything but sentiment.
        pub fn new(ai: &'a JsValue, lexicon: &'a crow_nlp::Analyzer) -> Self {
            WorkersAi { ai, lexicon }
        }

        async fn run(&self, model: &str, promise: std::result::Result<js_sys::Promise, JsValue>) -> Result<Value> {
            let v = match promise {
                Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await,
                Err(e) => Err(e),
            }
            .map_err(|e| Error::Backend(format!("Workers AI {model}: {}", glue::error_message(&e))))?;
            serde_json::from_str(&v.as_string().unwrap_or_else(|| "null".into()))
                .map_err(|e| Error::Backend(format!("Workers AI {model}: unexpected answer: {e}")))
        }
    }

    #[async_trait::async_trait(?Send)]
    impl TextAnalyzer for WorkersAi<'_> {
        async fn analyze(&self, org_id: &str, texts: &[String]) -> Result<Vec<TextAnalysis>> {
            let mut out = self.lexicon.analyze(org_id, texts).await?;
            let asked: Vec<usize> = (0..texts.len()).filter(|&i| !texts[i].trim().is_empty()).collect();
            let inputs: Vec<Value> = asked
                .iter()
                .map(|&i| json!({ "text": model_text(&texts[i]) }))
                .collect();
            let answers = if inputs.is_empty() {
                Vec::new()
            } else {
                let json = Value::Array(inputs).to_string();
                match self
                    .run(SENTIMENT_MODEL, glue::ai_run_each(self.ai, SENTIMENT_MODEL, &json))
                    .await?
                {
                    Value::Array(a) if a.len() == asked.len() => a,
                    other => {
                        return Err(Error::Backend(format!(
                            "Workers AI {SENTIMENT_MODEL}: {} answers for {} texts",
                            other.as_array().map_or(0, Vec::len),
                            asked.len()
                        )));
                    }
                }
            };
            for a in &mut out {
                a.sentiment = Some(model_sentiment(0.0));
            }
            for (i, answer) in asked.into_iter().zip(answers) {
                out[i].sentiment = Some(sentiment_from_sst2(&answer)?);
            }
            Ok(out)
        }
    }

    #[async_trait::async_trait(?Send)]
    impl Embedder for WorkersAi<'_> {
        fn dim(&self) -> usize {
            EMBED_DIM
        }

        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
            let mut out = Vec::with_capacity(texts.len());
            for chunk in texts.chunks(EMBED_BATCH) {
                let inputs = json!({ "text": chunk.iter().map(|t| model_text(t)).collect::<Vec<_>>() });
                let answer = self
                    .run(EMBED_MODEL, glue::ai_run(self.ai, EMBED_MODEL, &inputs.to_string()))
                    .await?;
                out.extend(embeddings_from(&answer, chunk.len())?);
            }
            Ok(out)
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use binding::WorkersAi;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sst2_maps_onto_crow_sentiment_with_a_neutral_band() {
        let s =
            sentiment_from_sst2(&json!([{"label": "NEGATIVE", "score": 0.02}, {"label": "POSITIVE", "score": 0.98}]))
                .unwrap();
        assert_eq!(s.label, "positive");
        assert!((s.score - 0.96).abs() < 1e-6);
        assert_eq!(s.tier, "model");
        let s = sentiment_from_sst2(&json!([{"label": "NEGATIVE", "score": 0.9}, {"label": "POSITIVE", "score": 0.1}]))
            .unwrap();
        assert_eq!(s.label, "negative");
        assert!((s.score + 0.8).abs() < 1e-6);
        // Unsure: within the band.
        let s =
            sentiment_from_sst2(&json!([{"label": "POSITIVE", "score": 0.55}, {"label": "NEGATIVE", "score": 0.45}]))
                .unwrap();
        assert_eq!(s.label, "neutral");
        // One class only: the other is its complement.
        let s = sentiment_from_sst2(&json!([{"label": "NEGATIVE", "score": 0.75}])).unwrap();
        assert_eq!((s.label.as_str(), s.score), ("negative", -0.5));
        assert!(sentiment_from_sst2(&json!({"label": "x"})).is_err());
        assert!(sentiment_from_sst2(&json!([{"label": "MAYBE", "score": 1}])).is_err());
        assert!(sentiment_from_sst2(&json!([])).is_err());
    }

    #[test]
    fn embeddings_are_checked_and_normalized() {
        let mut row = vec![0.0f32; EMBED_DIM];
        row[0] = 3.0;
        row[1] = 4.0;
        let v = embeddings_from(&json!({"shape": [1, EMBED_DIM], "data": [row]}), 1).unwrap();
        assert_eq!(v.len(), 1);
        assert!((v[0][0] - 0.6).abs() < 1e-6 && (v[0][1] - 0.8).abs() < 1e-6);
        assert!(embeddings_from(&json!({"data": []}), 1).is_err());
        assert!(embeddings_from(&json!({"data": [[1.0, 2.0]]}), 1).is_err());
        assert!(embeddings_from(&json!({}), 0).is_err());
    }

    #[test]
    fn model_texts_are_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_MODEL_TEXT_BYTES);
        let cut = model_text(&long);
        assert!(cut.len() <= MAX_MODEL_TEXT_BYTES && cut.len() >= MAX_MODEL_TEXT_BYTES - 1);
        assert_eq!(model_text("short"), "short");
    }
}
