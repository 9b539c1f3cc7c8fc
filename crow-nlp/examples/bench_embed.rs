//! Embedding throughput of [`OnnxEmbedder`] on the UCI sentences, the Rust half of
//! `scripts/bench_nlp.sh` (its Python twin is `bench/nlp_python.py`: same model, tokenizer,
//! sentences, threads, batching and pooling).
//!
//! ```text
//! cargo run --release -p crow-nlp --features onnx --example bench_embed -- \
//!     [--models DIR] [--data FILE] [--batch 1,8,32] [--threads 2] [--passes 3] \
//!     [--warmup 256] [--max-tokens 256] [--mode embed|sentiment] [--sessions 1]
//! ```
//!
//! For each batch size: load the model, warm up on the first `--warmup` texts, then time
//! `--passes` passes over all texts and keep the fastest. Prints one JSON line per batch size,
//! `{"impl":"rust","batch":N,"texts_per_s":..,"peak_rss_mb":..}`, the peak RSS being the
//! process's VmHWM so far (run one batch size per process for a per-batch figure, as the script
//! does). Progress and settings go to stderr.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crow_nlp::config::{EMBEDDER_DIR, ORT_LIBRARY, SENTIMENT_HEAD};
use crow_nlp::head::Head;
use crow_nlp::onnx::{EmbedderOptions, OnnxEmbedder};

/// What one timed pass does over the texts.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Sentence embeddings only.
    Embed,
    /// The model tier's sentiment: embeddings, the lexicon features, the trained head
    /// (`models/heads/sentiment.json`).
    Sentiment,
}

impl Mode {
    fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "embed" => Ok(Mode::Embed),
            "sentiment" => Ok(Mode::Sentiment),
            other => Err(format!("unknown mode `{other}` (expected: embed, sentiment)")),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Mode::Embed => "embed",
            Mode::Sentiment => "sentiment",
        }
    }
}

/// The model and head a pass runs.
#[derive(Debug)]
struct Pipeline {
    embedder: OnnxEmbedder,
    head: Option<Head>,
}

impl Pipeline {
    /// One pass over `texts`; returns a checksum so no work can be optimized away.
    fn pass(&self, texts: &[&str]) -> crow_nlp::Result<f64> {
        let vectors = self.embedder.embed(texts)?;
        match &self.head {
            None => Ok(vectors.iter().map(|v| f64::from(v[0])).sum()),
            Some(head) => {
                let mut sum = 0.0;
                for (v, t) in vectors.iter().zip(texts) {
                    let p = head.predict_text(v, t)?;
                    sum += f64::from(head.sentiment(&p).map_or(0.0, |s| s.score));
                }
                Ok(sum)
            }
        }
    }
}

#[derive(Debug)]
struct Args {
    models: PathBuf,
    data: Option<PathBuf>,
    batches: Vec<usize>,
    threads: usize,
    sessions: usize,
    passes: usize,
    warmup: usize,
    max_tokens: usize,
    mode: Mode,
}

fn parse_args() -> Result<Args, String> {
    let default_models = match std::env::var_os("CROW_MODELS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"),
    };
    let mut args = Args {
        models: default_models,
        data: None,
        batches: vec![1, 8, 32],
        threads: 2,
        sessions: 1,
        passes: 3,
        warmup: 256,
        max_tokens: 256,
        mode: Mode::Embed,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--models" => args.models = PathBuf::from(value),
            "--data" => args.data = Some(PathBuf::from(value)),
            "--batch" => args.batches = value.split(',').map(number).collect::<Result<_, _>>()?,
            "--threads" => args.threads = number(&value)?,
            "--sessions" => args.sessions = number(&value)?,
            "--passes" => args.passes = number(&value)?.max(1),
            "--warmup" => args.warmup = number(&value)?,
            "--max-tokens" => args.max_tokens = number(&value)?,
            "--mode" => args.mode = Mode::parse(&value)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// The `text` of every line of a JSONL file.
fn read_texts(path: &Path) -> Result<Vec<String>, String> {
    let content = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let row: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
            row.get("text")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("{}:{}: no \"text\"", path.display(), i + 1))
        })
        .collect()
}

/// Peak resident set size of this process, in MB (VmHWM in /proc/self/status).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn run(args: &Args) -> Result<(), String> {
    let data = args.data.clone().unwrap_or_else(|| args.models.join("data/uci.jsonl"));
    let texts = read_texts(&data)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let warmup = &refs[..args.warmup.min(refs.len())];
    eprintln!(
        "rust: {} texts, mode {}, {} intra-op threads, batches {:?}, best of {} passes",
        refs.len(),
        args.mode.name(),
        args.threads,
        args.batches,
        args.passes
    );
    for &batch in &args.batches {
        let options = EmbedderOptions {
            sessions: args.sessions,
            intra_threads: args.threads,
            batch_size: batch,
            max_tokens: args.max_tokens,
        };
        let embedder = OnnxEmbedder::load(&args.models.join(ORT_LIBRARY), &args.models.join(EMBEDDER_DIR), options)
            .map_err(|e| e.to_string())?;
        let head = match args.mode {
            Mode::Embed => None,
            Mode::Sentiment => Some(Head::load(&args.models.join(SENTIMENT_HEAD)).map_err(|e| e.to_string())?),
        };
        let pipeline = Pipeline { embedder, head };
        black_box(pipeline.pass(warmup).map_err(|e| e.to_string())?);
        let mut best = f64::INFINITY;
        for _ in 0..args.passes {
            let start = Instant::now();
            black_box(pipeline.pass(black_box(&refs)).map_err(|e| e.to_string())?);
            best = best.min(start.elapsed().as_secs_f64());
        }
        let line = serde_json::json!({
            "impl": if args.sessions == 1 { "rust" } else { "rust-parallel" },
            "mode": args.mode.name(),
            "batch": batch,
            "texts_per_s": (refs.len() as f64 / best * 10.0).round() / 10.0,
            "peak_rss_mb": (peak_rss_mb() * 10.0).round() / 10.0,
        });
        println!("{line}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("bench_embed: {message}");
            }
            eprintln!(
                "usage: bench_embed [--models DIR] [--data FILE] [--batch 1,8,32] [--threads 2] [--passes 3] \
                 [--warmup 256] [--max-tokens 256] [--mode embed|sentiment] [--sessions 1]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench_embed: {message}");
            ExitCode::FAILURE
        }
    }
}
