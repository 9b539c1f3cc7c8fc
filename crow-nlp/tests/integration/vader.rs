//! The lexicon tier against Python vaderSentiment 3.3.2: every one of the 3,000 UCI sentences
//! in `models/data/vader_reference.jsonl` (scores printed by the Python package) must match.

use crow_nlp::lexicon::{Scores, Vader};

/// Largest difference allowed per score (the reference values are rounded to 3 or 4 decimals).
const TOLERANCE: f64 = 1e-3;

#[derive(serde::Deserialize)]
struct Reference {
    text: String,
    neg: f64,
    neu: f64,
    pos: f64,
    compound: f64,
}

#[test]
fn matches_python_vader_on_all_reference_sentences() {
    let Some(dir) = crate::support::require("data/vader_reference.jsonl") else {
        return;
    };
    let path = dir.join("data/vader_reference.jsonl");
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let references: Vec<Reference> = body
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1)))
        .collect();
    assert_eq!(references.len(), 3000, "expected the 3,000 UCI sentences");

    let vader = Vader::global();
    let mut mismatches: Vec<(&Reference, Scores)> = Vec::new();
    for r in &references {
        let got = vader.polarity_scores(&r.text);
        let close = (got.compound - r.compound).abs() <= TOLERANCE
            && (got.neg - r.neg).abs() <= TOLERANCE
            && (got.neu - r.neu).abs() <= TOLERANCE
            && (got.pos - r.pos).abs() <= TOLERANCE;
        if !close {
            mismatches.push((r, got));
        }
    }

    if !mismatches.is_empty() {
        let mut report = format!(
            "{} of {} sentences differ from Python VADER:\n",
            mismatches.len(),
            references.len()
        );
        for (r, got) in mismatches.iter().take(10) {
            report.push_str(&format!(
                "  {:?}\n    python: neg {} neu {} pos {} compound {}\n    rust:   neg {} neu {} pos {} compound {}\n",
                r.text, r.neg, r.neu, r.pos, r.compound, got.neg, got.neu, got.pos, got.compound
            ));
        }
        panic!("{report}");
    }
    eprintln!(
        "{} of {} sentences match Python VADER",
        references.len(),
        references.len()
    );
}

#[test]
fn labels_follow_the_standard_thresholds_on_the_reference() {
    let Some(dir) = crate::support::require("data/vader_reference.jsonl") else {
        return;
    };
    let body = std::fs::read_to_string(dir.join("data/vader_reference.jsonl")).unwrap();
    let vader = Vader::global();
    for line in body.lines().filter(|l| !l.trim().is_empty()).take(500) {
        let r: Reference = serde_json::from_str(line).unwrap();
        let s = vader.sentiment(&r.text);
        let expected = if r.compound >= 0.05 {
            "positive"
        } else if r.compound <= -0.05 {
            "negative"
        } else {
            "neutral"
        };
        assert_eq!(s.label, expected, "{:?}", r.text);
        assert_eq!(s.tier, "lexicon");
        assert!((f64::from(s.score) - r.compound).abs() <= TOLERANCE);
    }
}
