//! The ONNX sentence embedder on the real all-MiniLM-L6-v2 (int8) model (feature `onnx`).

#![cfg(feature = "onnx")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crow_nlp::NlpError;
use crow_nlp::config::{EMBEDDER_DIR, ORT_LIBRARY};
use crow_nlp::onnx::{EmbedderOptions, OnnxEmbedder};

use crate::support::require;

const MODEL: &str = "all-MiniLM-L6-v2/model.onnx";

/// A text embedded alone and the same text inside a padded batch agree to this cosine.
///
/// The shipped model is int8 *weight-only*: its int8 initializers are dequantized (Cast, Mul)
/// inside the graph and every activation stays float32, so no quantization scale depends on the
/// batch, and the attention mask removes padding exactly. Measured: the vectors are bit-identical
/// (max |diff| 0) alone and in mixed batches of 4. 0.9999 rather than exact equality leaves room
/// for an ONNX Runtime build whose GEMM kernels block differently by batch shape; an order mix-up
/// or a padding leak gives well under 0.99. (A model with dynamic activation quantization would
/// need a looser bound: its scales are computed over the whole batch tensor.)
const BATCH_TOLERANCE: f32 = 0.9999;

fn ort_library(models: &Path) -> PathBuf {
    models.join(ORT_LIBRARY)
}

fn load(models: &Path, options: EmbedderOptions) -> OnnxEmbedder {
    OnnxEmbedder::load(&ort_library(models), &models.join(EMBEDDER_DIR), options).expect("load the embedder")
}

/// One embedder with the default options, shared by the tests that need no other.
fn shared(models: &Path) -> &'static OnnxEmbedder {
    static EMBEDDER: OnceLock<OnnxEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| load(models, EmbedderOptions::default()))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (norm(a) * norm(b)).max(1e-12)
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

fn mixed_texts() -> Vec<String> {
    let base = [
        "Great phone.",
        "The battery died after two days and support never answered my emails.",
        "ok",
        "I would not recommend this restaurant to anyone: the soup was cold, the waiter was rude, and we waited an hour.",
        "Fast delivery, well packed.",
        "Terrible.",
        "The film's second half drags, but the soundtrack is wonderful and the lead actress carries every scene.",
        "Will buy again!",
    ];
    (0..23)
        .map(|i| {
            let t = base[i % base.len()];
            // Make every text distinct and of varied length.
            format!("{t} {}", "really ".repeat(i % 5)).trim().to_string() + &format!(" #{i}")
        })
        .collect()
}

#[test]
fn vectors_have_the_model_dimension_and_unit_length() {
    let Some(models) = require(MODEL) else { return };
    let e = shared(&models);
    assert_eq!(e.dim(), 384);
    assert_eq!(e.model_dir(), models.join(EMBEDDER_DIR));
    let vs = e
        .embed(&["The staff were friendly.", "Le service était lent.", "!!!", "12345"])
        .unwrap();
    assert_eq!(vs.len(), 4);
    for v in &vs {
        assert_eq!(v.len(), 384);
        assert!((norm(v) - 1.0).abs() < 1e-4, "norm {}", norm(v));
        assert!(v.iter().all(|x| x.is_finite()));
    }
    assert!(e.embed(&[]).unwrap().is_empty());
}

#[test]
fn order_is_kept_and_batching_does_not_change_a_vector() {
    let Some(models) = require(MODEL) else { return };
    // Batches of 4 over 23 texts of mixed lengths: sorted, padded per batch, restored.
    let batched = load(
        &models,
        EmbedderOptions {
            batch_size: 4,
            intra_threads: 1,
            ..EmbedderOptions::default()
        },
    );
    let texts = mixed_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let together = batched.embed(&refs).unwrap();
    assert_eq!(together.len(), texts.len());
    let mut worst = 1f32;
    for (i, text) in refs.iter().enumerate() {
        let alone = batched.embed(&[text]).unwrap().remove(0);
        let same = cosine(&alone, &together[i]);
        worst = worst.min(same);
        assert!(same >= BATCH_TOLERANCE, "text {i} alone vs batched: cosine {same}");
        // And it is closer to itself than to any other text of the batch (order preserved).
        for (j, other) in together.iter().enumerate() {
            if j != i {
                assert!(cosine(&alone, other) < same, "text {i} looks more like text {j}");
            }
        }
    }
    eprintln!("lowest alone-vs-batched cosine: {worst}");
}

#[test]
fn long_texts_are_batched_by_token_budget_and_keep_their_order() {
    let Some(models) = require(MODEL) else { return };
    let e = shared(&models); // batch_size 32, max_tokens 256
    let topics = [
        "shipping",
        "refunds",
        "the espresso machine",
        "parking",
        "the mobile app",
        "our waiter",
    ];
    // 12 texts truncated to 256 word pieces (batches of at most 2,048 padded word pieces: 8, then 4),
    // interleaved with short ones.
    let mut texts = Vec::new();
    for i in 0..12 {
        let topic = topics[i % topics.len()];
        texts.push(format!("Review {i} about {topic}: ") + &format!("I have many thoughts about {topic}. ").repeat(60));
        texts.push(format!("Short note {i} on {topic}."));
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let together = e.embed(&refs).unwrap();
    for (i, text) in refs.iter().enumerate() {
        let alone = e.embed(&[text]).unwrap().remove(0);
        let same = cosine(&alone, &together[i]);
        assert!(same >= BATCH_TOLERANCE, "text {i}: cosine {same}");
    }
}

#[test]
fn paraphrases_are_closer_than_unrelated_text() {
    let Some(models) = require(MODEL) else { return };
    let vs = shared(&models)
        .embed(&[
            "The delivery arrived three days late.",
            "My package came several days after the promised date.",
            "The pasta at this restaurant is delicious.",
            "How do I reset my password?",
            "I forgot my login credentials and cannot sign in.",
        ])
        .unwrap();
    let late = cosine(&vs[0], &vs[1]);
    assert!(
        late > cosine(&vs[0], &vs[2]) + 0.2,
        "{late} vs {}",
        cosine(&vs[0], &vs[2])
    );
    assert!(late > cosine(&vs[0], &vs[3]));
    let login = cosine(&vs[3], &vs[4]);
    assert!(login > cosine(&vs[3], &vs[2]) + 0.2);
    assert!(login > cosine(&vs[4], &vs[1]));
}

#[test]
fn empty_text_gets_the_models_own_vector() {
    let Some(models) = require(MODEL) else { return };
    let e = shared(&models);
    let vs = e.embed(&["", "Something to pad against, a little longer."]).unwrap();
    assert_eq!(vs[0].len(), 384);
    assert!((norm(&vs[0]) - 1.0).abs() < 1e-4);
    let alone = e.embed(&[""]).unwrap().remove(0);
    assert!(cosine(&alone, &vs[0]) >= BATCH_TOLERANCE);
}

#[test]
fn a_megabyte_of_text_is_truncated_quickly() {
    let Some(models) = require(MODEL) else { return };
    let e = shared(&models);
    let sentence = "The checkout page kept timing out, so I called the store and they fixed my order. ";
    let huge = sentence.repeat(1_000_000 / sentence.len() + 1);
    assert!(huge.len() >= 1_000_000);
    // What truncation to 256 word pieces sees: the same as a text of a few hundred words.
    let prefix = sentence.repeat(40);
    let start = Instant::now();
    let vs = e.embed(&[&huge, &prefix]).unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "1 MB took {took:?}");
    assert!((norm(&vs[0]) - 1.0).abs() < 1e-4);
    let same = cosine(&vs[0], &vs[1]);
    assert!(same > 0.9999, "huge vs its truncated prefix: {same}");
}

#[test]
fn a_missing_model_directory_is_model_not_found_naming_the_path() {
    let Some(models) = require(MODEL) else { return };
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let err = OnnxEmbedder::load(&ort_library(&models), &missing, EmbedderOptions::default()).unwrap_err();
    assert!(matches!(err, NlpError::ModelNotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&missing.join("model.onnx").display().to_string()),
        "{message}"
    );
    assert!(message.contains("make models"), "{message}");
    // And through the port's error: Unavailable, still naming the path.
    let core: crow_core::Error = err.into();
    assert!(core.to_string().contains("no-such-model"), "{core}");
}

#[test]
fn a_broken_tokenizer_is_an_invalid_model() {
    let Some(models) = require(MODEL) else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        models.join(EMBEDDER_DIR).join("model.onnx"),
        dir.path().join("model.onnx"),
    )
    .unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), "{\"not\": \"a tokenizer\"}").unwrap();
    let err = OnnxEmbedder::load(&ort_library(&models), dir.path(), EmbedderOptions::default()).unwrap_err();
    match err {
        NlpError::Model { path, .. } => assert_eq!(path, dir.path().join("tokenizer.json")),
        other => panic!("{other:?}"),
    }
    // Without config.json the dimension comes from the model itself.
    std::fs::copy(
        models.join(EMBEDDER_DIR).join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let e = OnnxEmbedder::load(&ort_library(&models), dir.path(), EmbedderOptions::default()).unwrap();
    assert_eq!(e.dim(), 384);
}

#[test]
fn the_port_embeds_in_order() {
    let Some(models) = require(MODEL) else { return };
    let e = shared(&models);
    let texts = vec![
        "first text".to_string(),
        String::new(),
        "third, a longer text than the others".to_string(),
    ];
    let port: &dyn crow_core::ports::Embedder = e;
    assert_eq!(port.dim(), 384);
    let vs = futures::executor::block_on(port.embed(&texts)).unwrap();
    let direct = e
        .embed(&["first text", "", "third, a longer text than the others"])
        .unwrap();
    assert_eq!(vs.len(), 3);
    for (a, b) in vs.iter().zip(&direct) {
        assert!(cosine(a, b) > 0.9999);
    }
}

/// Parity with Python's onnxruntime + tokenizers on the same files: set CROW_TEST_PYTHON to a
/// python that has onnxruntime, tokenizers and numpy (e.g. `.venv/bin/python`).
#[test]
fn matches_python_onnxruntime() {
    let Some(models) = require(MODEL) else { return };
    let Some(python) = std::env::var_os("CROW_TEST_PYTHON").filter(|p| !p.is_empty()) else {
        eprintln!("skipped: set CROW_TEST_PYTHON to a python with onnxruntime, tokenizers, numpy");
        return;
    };
    // CROW_TEST_PYTHON is shared with the Python-client tests: its venv may lack onnxruntime.
    let probe = std::process::Command::new(&python)
        .args(["-c", "import onnxruntime, tokenizers, numpy"])
        .output()
        .expect("run CROW_TEST_PYTHON");
    if !probe.status.success() {
        let why = format!(
            "{} lacks onnxruntime, tokenizers or numpy (pip install onnxruntime==1.32.0 tokenizers==0.22.1 numpy)",
            python.to_string_lossy()
        );
        if std::env::var("CROW_REQUIRE_MODELS").as_deref() == Ok("1") {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return;
    }
    let sentences = [
        "The delivery arrived three days late.",
        "Absolutely loved the new store layout, the staff were so helpful!",
        "",
        "Why was I charged twice for the same order? This is the third time.",
        "ok",
    ];
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("embed.py");
    std::fs::write(&script, PYTHON_EMBED).unwrap();
    let input = dir.path().join("sentences.json");
    std::fs::write(&input, serde_json::to_string(&sentences).unwrap()).unwrap();
    let output = std::process::Command::new(&python)
        .arg(&script)
        .arg(models.join(EMBEDDER_DIR))
        .arg(&input)
        .output()
        .expect("run CROW_TEST_PYTHON");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Vec<Vec<f32>> = serde_json::from_slice(&output.stdout).expect("python prints a JSON list of vectors");

    // One text per batch on both sides, so the comparison does not depend on batching at all.
    let ours = load(
        &models,
        EmbedderOptions {
            batch_size: 1,
            ..EmbedderOptions::default()
        },
    )
    .embed(&sentences)
    .unwrap();
    assert_eq!(theirs.len(), ours.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let c = cosine(a, b);
        assert!(c >= 0.999, "sentence {i} {:?}: cosine {c}", sentences[i]);
    }
}

/// sentence-transformers' recipe with Python onnxruntime and tokenizers, one text at a time.
const PYTHON_EMBED: &str = r#"
import json, sys
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

model_dir, sentences = sys.argv[1], json.load(open(sys.argv[2]))
tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tok.no_padding()
tok.enable_truncation(256)
sess = ort.InferenceSession(f"{model_dir}/model.onnx", providers=["CPUExecutionProvider"])
names = [i.name for i in sess.get_inputs()]
out = []
for text in sentences:
    enc = tok.encode(text)
    feed = {
        "input_ids": np.array([enc.ids], dtype=np.int64),
        "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
        "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
    }
    hidden = sess.run(["last_hidden_state"], {n: feed[n] for n in names})[0]
    mask = feed["attention_mask"][..., None].astype(np.float32)
    v = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    v = v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)
    out.append(v[0].tolist())
print(json.dumps(out))
"#;

#[test]
fn parallel_sessions_give_the_same_vectors_in_the_same_order() {
    let Some(models) = crate::support::require("all-MiniLM-L6-v2/model.onnx") else {
        return;
    };
    let lib = models.join("onnxruntime/libonnxruntime.so.1.32.0");
    let dir = models.join("all-MiniLM-L6-v2");
    let one = OnnxEmbedder::load(
        &lib,
        &dir,
        EmbedderOptions {
            batch_size: 4,
            ..EmbedderOptions::default()
        },
    )
    .unwrap();
    let two = OnnxEmbedder::load(
        &lib,
        &dir,
        EmbedderOptions {
            sessions: 2,
            batch_size: 4,
            ..EmbedderOptions::default()
        },
    )
    .unwrap();
    let texts: Vec<String> = (0..37)
        .map(|i| format!("review number {i}: {}", "good ".repeat(i % 9)))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (a, b) = (one.embed(&refs).unwrap(), two.embed(&refs).unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        let cos: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        assert!(cos > 0.9999, "{cos}");
    }
}
