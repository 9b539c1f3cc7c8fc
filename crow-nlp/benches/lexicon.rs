//! Throughput of the lexicon tier (VADER) on the 3,000 UCI sentences, one text at a time.
//!
//! `taskset -c 0 cargo bench -p crow-nlp --bench lexicon` (pinned to one core). The sentences come
//! from `models/data/uci.jsonl` (`make models`; `CROW_MODELS` moves the folder); without it a small
//! built-in sample is used. Criterion reports texts/s ("elements/s").

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crow_nlp::lexicon::Vader;

/// Used when `models/data/uci.jsonl` is absent: review sentences in the style of the UCI set.
const SAMPLE: &[&str] = &[
    "So there is no way for me to plug it in here in the US unless I go by a converter.",
    "Good case, Excellent value.",
    "Great for the jawbone.",
    "Tied to charger for conversations lasting more than 45 minutes.MAJOR PROBLEMS!!",
    "The mic is great.",
    "I have to jiggle the plug to get it to line up right to get decent volume.",
    "If you have several dozen or several hundred contacts, then imagine the fun of sending each of them one by one.",
    "If you are Razr owner...you must have this!",
    "Needless to say, I wasted my money.",
    "What a waste of money and time!.",
    "A very, very, very slow-moving, aimless movie about a distressed, drifting young man.",
    "Not sure who was more lost - the flat characters or the audience, nearly half of whom walked out.",
    "Wow... Loved this place.",
    "Crust is not good.",
    "Not tasty and the texture was just nasty.",
    "Stopped by during the late May bank holiday off Rick Steve recommendation and loved it.",
];

fn texts() -> (Vec<String>, &'static str) {
    let dir = match std::env::var_os("CROW_MODELS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"),
    };
    let texts: Vec<String> = std::fs::read_to_string(dir.join("data/uci.jsonl"))
        .map(|body| {
            body.lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if texts.is_empty() {
        eprintln!(
            "models/data/uci.jsonl not found: using the built-in sample of {} sentences",
            SAMPLE.len()
        );
        (SAMPLE.iter().map(|s| s.to_string()).collect(), "sample")
    } else {
        (texts, "uci")
    }
}

fn bench(c: &mut Criterion) {
    let (texts, source) = texts();
    let vader = Vader::global();
    let mut group = c.benchmark_group("lexicon");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function(format!("vader_polarity_scores/{source}_{}", texts.len()), |b| {
        b.iter(|| {
            for text in &texts {
                black_box(vader.polarity_scores(black_box(text)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
