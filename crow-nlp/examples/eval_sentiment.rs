//! Accuracy of both sentiment tiers on the UCI Sentiment Labelled Sentences (3,000 sentences
//! from Amazon, IMDb and Yelp), and on the committed negation set; prints a Markdown table.
//!
//! ```text
//! cargo run --release -p crow-nlp --features onnx --example eval_sentiment -- [MODELS_DIR]
//! ```
//!
//! - lexicon tier (VADER): it is not trained, so its k-fold accuracy is its accuracy on all
//!   sentences, and its "leave-one-source-out" accuracy is its accuracy on each source. A
//!   sentence counts as positive when the compound score is ≥ 0 (ties are rare: 0 means no
//!   sentiment word at all).
//! - model tier: a head trained with 5-fold stratified cross-validation and leave-one-source-out,
//!   for both feature sets (the bare embedding, and the embedding plus lexicon signals).

use std::path::PathBuf;

use crow_nlp::NlpConfig;
use crow_nlp::head::{self, Features, TrainConfig};
use crow_nlp::lexicon::Vader;
use crow_nlp::onnx::{EmbedderOptions, OnnxEmbedder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let models = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("models"), PathBuf::from);
    let config = NlpConfig::with_models_dir(&models);
    let data = head::read_labeled(&models.join("data/uci.jsonl"))?;
    let negation = head::read_labeled(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/negation.jsonl"))?;
    let embedder = OnnxEmbedder::load(
        &config.onnxruntime_path(),
        &config.embedder_path(),
        EmbedderOptions::default(),
    )?;
    let texts: Vec<&str> = data.iter().map(|d| d.text.as_str()).collect();
    let vectors = embedder.embed(&texts)?;

    let vader = Vader::global();
    let vader_right = |rows: &[&head::LabeledText]| {
        let right = rows
            .iter()
            .filter(|r| {
                let c = vader.polarity_scores(&r.text).compound;
                (if c >= 0.0 { "positive" } else { "negative" }) == r.label
            })
            .count();
        right as f32 / rows.len() as f32
    };
    let all: Vec<&head::LabeledText> = data.iter().collect();
    println!("| tier | 5-fold | amazon (held out) | imdb (held out) | yelp (held out) | negation set (40) |");
    println!("|---|---|---|---|---|---|");
    let by_source = |s: &str| {
        data.iter()
            .filter(|d| d.group.as_deref() == Some(s))
            .collect::<Vec<_>>()
    };
    let neg_rows: Vec<&head::LabeledText> = negation.iter().collect();
    println!(
        "| lexicon (VADER) | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
        vader_right(&all),
        vader_right(&by_source("amazon")),
        vader_right(&by_source("imdb")),
        vader_right(&by_source("yelp")),
        vader_right(&neg_rows)
    );
    let neg_texts: Vec<&str> = negation.iter().map(|d| d.text.as_str()).collect();
    let neg_vectors = embedder.embed(&neg_texts)?;
    // Embed every text once (the negated variants too), then train each configuration.
    let mut cache: std::collections::HashMap<String, Vec<f32>> =
        texts.iter().map(|t| t.to_string()).zip(vectors).collect();
    for (name, features, augment) in [
        ("model: embedding head", Features::Embedding, false),
        (
            "model: embedding head + negation augmentation",
            Features::Embedding,
            true,
        ),
        ("model: embedding + lexicon head", Features::EmbeddingLexicon, false),
        (
            "model: embedding + lexicon head + negation augmentation (default)",
            Features::EmbeddingLexicon,
            true,
        ),
    ] {
        let cfg = TrainConfig {
            augment_negation: augment,
            ..TrainConfig::default()
        };
        let embed = |t: &[&str]| -> crow_nlp::Result<Vec<Vec<f32>>> {
            let missing: Vec<&str> = t.iter().copied().filter(|x| !cache.contains_key(*x)).collect();
            if !missing.is_empty() {
                for (m, v) in missing.iter().zip(embedder.embed(&missing)?) {
                    cache.insert(m.to_string(), v);
                }
            }
            Ok(t.iter().map(|x| cache[*x].clone()).collect())
        };
        let head = head::train_texts("sentiment", &data, features, embed, &cfg)?;
        let r = head
            .report
            .clone()
            .unwrap_or_else(|| unreachable!("train always reports"));
        let neg_accuracy = head::accuracy_on(&head, &negation, &neg_vectors)?;
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            r.cv_accuracy,
            r.leave_one_group_out.get("amazon").copied().unwrap_or(0.0),
            r.leave_one_group_out.get("imdb").copied().unwrap_or(0.0),
            r.leave_one_group_out.get("yelp").copied().unwrap_or(0.0),
            neg_accuracy
        );
        eprintln!(
            "{name}: temperature {:.2}, ECE {:.3} -> {:.3}, neutral band {:.1} % (accuracy outside {:.3}, inside {:.3})",
            r.temperature,
            r.ece_before,
            r.ece_after,
            r.neutral_share.unwrap_or(0.0) * 100.0,
            r.accuracy_outside_neutral.unwrap_or(0.0),
            r.accuracy_inside_neutral.unwrap_or(0.0)
        );
    }
    Ok(())
}
