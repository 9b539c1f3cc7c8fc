//! `crow analyze` and `crow train`: thin shells over crow-nlp.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use crow_core::ports::TextAnalyzer;
use crow_nlp::head::{self, Features, TrainConfig};
use crow_nlp::onnx::{EmbedderOptions, OnnxEmbedder};
use crow_nlp::{Analyzer, NlpConfig};
use serde_json::json;

use crate::{require_org, store_backends};

fn nlp_config(models: Option<&Path>) -> NlpConfig {
    NlpConfig::with_models_dir(models.map_or_else(|| PathBuf::from("models"), Path::to_path_buf))
}

/// `crow analyze`.
pub async fn analyze(
    data_dir: &Path,
    models: Option<&Path>,
    texts: Vec<String>,
    embed: bool,
    head_files: &[PathBuf],
    org: Option<&str>,
    lexicon: bool,
) -> Result<()> {
    let config = NlpConfig {
        use_models: !lexicon,
        ..nlp_config(models)
    };
    let (mut analyzer, fallback) = Analyzer::from_config(&config);
    if let Some(reason) = &fallback {
        eprintln!("crow analyze: using the lexicon tier ({reason})");
    }
    let needs_model = embed || !head_files.is_empty();
    if needs_model && analyzer.embedding_dim().is_none() {
        match fallback {
            Some(reason) => bail!("--embed and --head need the embedding model: {reason}"),
            None => bail!("--embed and --head need the embedding model; drop --lexicon"),
        }
    }
    let heads = head_files
        .iter()
        .map(|p| head::Head::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(org) = org {
        let b = store_backends(data_dir)?;
        require_org(&b, org).await?;
        analyzer = analyzer.with_catalog(Arc::new(b.store().clone()));
    }
    let texts = if texts.is_empty() {
        let mut lines = Vec::new();
        for line in std::io::stdin().lock().lines() {
            lines.push(line.context("reading standard input (it must be UTF-8 text, one text per line)")?);
        }
        lines
    } else {
        texts
    };
    let mut out = std::io::stdout().lock();
    for chunk in texts.chunks(64) {
        let analyses = analyzer.analyze(org.unwrap_or(""), chunk).await?;
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let embeddings = if needs_model {
            analyzer.embed_texts(&refs).transpose()?
        } else {
            None
        };
        let verdicts = match &embeddings {
            Some(e) if !heads.is_empty() => Some(head::classify(&heads, &refs, e)?),
            _ => None,
        };
        for (i, analysis) in analyses.iter().enumerate() {
            let line = crow_ingest::api::AnalysisLine {
                analysis,
                embedding: embeddings.as_ref().filter(|_| embed).map(|e| e[i].as_slice()),
                heads: verdicts.as_ref().map(|v| json!(v[i])),
            };
            serde_json::to_writer(&mut out, &line)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
    }
    Ok(())
}

/// `crow train`.
#[allow(clippy::too_many_arguments)]
pub fn train(
    models: Option<&Path>,
    task: &str,
    data: &Path,
    out: &Path,
    features: &str,
    cfg: TrainConfig,
    eval: &[PathBuf],
    json_out: bool,
) -> Result<()> {
    let features = Features::parse(features)
        .with_context(|| format!("--features {features:?}: expected `embedding+lexicon` or `embedding`"))?;
    let config = nlp_config(models);
    let examples = head::read_labeled(data)?;
    let evals = eval
        .iter()
        .map(|p| Ok((p.clone(), head::read_labeled(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let embedder = OnnxEmbedder::load(
        &config.onnxruntime_path(),
        &config.embedder_path(),
        EmbedderOptions::default(),
    )?;
    eprintln!(
        "crow train: embedding {} texts with {}",
        examples.len(),
        config.embedder_path().display()
    );
    let mut head = head::train_texts(task, &examples, features, |t| embedder.embed(t), &cfg)?;
    head.embedding_model = config
        .embedder_path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mut eval_results = Vec::new();
    for (path, rows) in &evals {
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        let accuracy = head::accuracy_on(&head, rows, &embedder.embed(&texts)?)?;
        eval_results.push(json!({
            "file": path.display().to_string(),
            "examples": rows.len(),
            "accuracy": (f64::from(accuracy) * 1000.0).round() / 1000.0,
        }));
    }
    head.save(out)?;
    let report = head.report.clone();
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"head": out.display().to_string(), "report": report, "eval": eval_results})
            )?
        );
    } else if let Some(r) = report {
        println!("head `{task}` written to {}", out.display());
        println!("  examples          {} {:?}", r.examples, r.per_label);
        if r.augmented > 0 {
            println!(
                "  augmented         {} negated variants (training folds only)",
                r.augmented
            );
        }
        println!(
            "  {}-fold accuracy   {:.3} (macro-F1 {:.3})",
            r.folds, r.cv_accuracy, r.cv_macro_f1
        );
        for (g, a) in &r.leave_one_group_out {
            println!("  held-out {g:<8}  {a:.3} (trained on the other sources)");
        }
        println!(
            "  calibration       temperature {:.2}, ECE {:.3} -> {:.3}",
            r.temperature, r.ece_before, r.ece_after
        );
        if let Some(n) = r.neutral_share {
            println!(
                "  neutral band      {:.1} % of held-out texts (p < {}); accuracy outside {:.3}",
                n * 100.0,
                head.neutral_below,
                r.accuracy_outside_neutral.unwrap_or(0.0)
            );
        }
        for e in &eval_results {
            println!("  eval {}: {:.3} on {} texts", e["file"], e["accuracy"], e["examples"]);
        }
    }
    Ok(())
}
