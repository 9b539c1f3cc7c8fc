//! Trainable linear heads on sentence embeddings: sentiment, or any labels a user has examples of.
//!
//! A [`Head`] is a softmax regression over a feature vector built from a text's sentence embedding
//! (and, for [`Features::EmbeddingLexicon`], a few lexicon-tier signals). [`train`] fits one with
//! L2 regularization and balanced class weights, estimates its accuracy by stratified k-fold
//! cross-validation (and leave-one-group-out when examples carry a group, such as their source),
//! and calibrates its probabilities by temperature scaling on the held-out predictions. A few
//! hundred examples per label are enough for intents, topics or urgency.
//!
//! ## Neutral
//! Sentiment heads are usually trained on positive and negative examples only. Their calibrated
//! probability says how sure the head is; [`Head::sentiment`] answers `neutral` when the larger
//! of the two is below [`Head::neutral_below`] (default [`DEFAULT_NEUTRAL_BELOW`] = 0.75: after
//! calibration, a text the head is less than 75 % sure about is reported as neutral). The
//! training report gives the share of held-out texts that fall in that band and how often the
//! head was right on them. A head trained with an explicit `neutral` label uses it directly.
//!
//! ## Negation
//! A bare embedding head reads "not bad at all" as negative: the sentence is close to "bad" in
//! embedding space. [`Features::EmbeddingLexicon`] (the default for sentiment) appends the
//! lexicon tier's compound score, its positive and negative shares and its negation flag to the
//! embedding, so the head learns when to trust VADER's negation rules.
//!
//! ```
//! use crow_nlp::head::{Features, TrainConfig, train};
//!
//! // Two-dimensional toy "embeddings": label 0 on the left, label 1 on the right.
//! let x: Vec<Vec<f32>> = (0..40).map(|i| vec![if i % 2 == 0 { -1.0 } else { 1.0 }, (i as f32) / 40.0]).collect();
//! let y: Vec<usize> = (0..40).map(|i| i % 2).collect();
//! let labels = vec!["left".to_string(), "right".to_string()];
//! let head = train("side", &labels, Features::Embedding, &x, &y, None, &TrainConfig::default()).unwrap();
//! assert_eq!(head.predict(&[0.9, 0.5]).label, "right");
//! assert!(head.report.as_ref().unwrap().cv_accuracy > 0.95);
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use crow_core::ports::Sentiment;
use serde::{Deserialize, Serialize};

use crate::error::{NlpError, Result};
use crate::lexicon::Vader;

/// The head file format version.
pub const FORMAT: u32 = 1;
/// Default calibrated-probability threshold below which a two-label sentiment head says neutral.
pub const DEFAULT_NEUTRAL_BELOW: f32 = 0.75;
/// Number of lexicon features [`Features::EmbeddingLexicon`] appends.
pub const LEXICON_FEATURES: usize = 5;

/// What a head's input vector is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Features {
    /// The sentence embedding alone.
    Embedding,
    /// The embedding followed by the lexicon tier's compound, pos and neg scores, its negation flag,
    /// and the flag times the compound score.
    EmbeddingLexicon,
}

impl Features {
    /// Parses `embedding` or `embedding+lexicon`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "embedding" => Some(Features::Embedding),
            "embedding+lexicon" | "embedding_lexicon" => Some(Features::EmbeddingLexicon),
            _ => None,
        }
    }

    /// The input length for an embedding of length `embedding_dim`.
    pub fn input_dim(self, embedding_dim: usize) -> usize {
        match self {
            Features::Embedding => embedding_dim,
            Features::EmbeddingLexicon => embedding_dim + LEXICON_FEATURES,
        }
    }

    /// The head input of a text whose embedding is `embedding`.
    pub fn build(self, embedding: &[f32], text: &str) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.input_dim(embedding.len()));
        v.extend_from_slice(embedding);
        if self == Features::EmbeddingLexicon {
            let vader = Vader::global();
            let s = vader.polarity_scores(text);
            let negated = if vader.has_negation(text) { 1.0 } else { 0.0 };
            v.extend_from_slice(&[
                s.compound as f32,
                s.pos as f32,
                s.neg as f32,
                negated,
                negated * s.compound as f32,
            ]);
        }
        v
    }
}

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// L2 penalty on the weights (not the biases).
    pub l2: f32,
    /// Full-batch Adam iterations.
    pub epochs: usize,
    /// Adam step size.
    pub learning_rate: f32,
    /// Weigh classes by inverse frequency, so a rare label counts as much as a common one.
    pub balanced: bool,
    /// Cross-validation folds for the report and the calibration (at least 2).
    pub folds: usize,
    /// Shuffling seed (training is deterministic for a seed).
    pub seed: u64,
    /// Neutral threshold for two-label sentiment heads.
    pub neutral_below: f32,
    /// Sentiment heads (labels `positive` and `negative`): also train on a negated variant of
    /// each sentence that has a simple one ([`negation_variant`]), with the opposite label.
    pub augment_negation: bool,
    /// Weight of an augmented example in the loss, relative to an original one.
    pub augment_weight: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            l2: 1e-4,
            epochs: 300,
            learning_rate: 0.05,
            balanced: true,
            folds: 5,
            seed: 7,
            neutral_below: DEFAULT_NEUTRAL_BELOW,
            augment_negation: true,
            augment_weight: 0.5,
        }
    }
}

/// What training measured on held-out data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Training examples.
    pub examples: usize,
    /// Augmented examples added to the training folds (negated variants; see
    /// [`negation_variant`]); never evaluated on.
    #[serde(default)]
    pub augmented: usize,
    /// Examples per label.
    pub per_label: BTreeMap<String, usize>,
    /// Cross-validation folds.
    pub folds: usize,
    /// Accuracy of the k-fold held-out predictions.
    pub cv_accuracy: f32,
    /// Macro-averaged F1 of the k-fold held-out predictions.
    pub cv_macro_f1: f32,
    /// Accuracy on each group when trained on the others (leave-one-group-out), when examples
    /// had at least two groups.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub leave_one_group_out: BTreeMap<String, f32>,
    /// The fitted temperature.
    pub temperature: f32,
    /// Expected calibration error of held-out predictions before and after temperature scaling.
    pub ece_before: f32,
    /// See `ece_before`.
    pub ece_after: f32,
    /// Two-label sentiment heads: the share of held-out texts reported neutral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutral_share: Option<f32>,
    /// Two-label sentiment heads: the accuracy on held-out texts outside the neutral band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_outside_neutral: Option<f32>,
    /// Two-label sentiment heads: the accuracy of the raw label on texts inside the band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_inside_neutral: Option<f32>,
}

/// A trained linear head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// File format version ([`FORMAT`]).
    pub format: u32,
    /// Task name (`sentiment`, `intent`, ...).
    pub task: String,
    /// Labels, in weight-row order.
    pub labels: Vec<String>,
    /// Input features.
    pub features: Features,
    /// Length of the embeddings it was trained on.
    pub embedding_dim: usize,
    /// The embedding model it was trained with (a directory name), for a sanity check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// One weight row per label.
    pub weights: Vec<Vec<f32>>,
    /// One bias per label.
    pub bias: Vec<f32>,
    /// Logits are divided by this before the softmax (calibration).
    pub temperature: f32,
    /// Two-label sentiment heads: neutral below this calibrated probability.
    pub neutral_below: f32,
    /// What training measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<TrainReport>,
}

/// A head's answer for one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Calibrated probability of each label, in [`Head::labels`] order.
    pub probabilities: Vec<f32>,
}

impl Prediction {
    /// The probability of the predicted label.
    pub fn confidence(&self) -> f32 {
        self.probabilities.iter().copied().fold(0.0, f32::max)
    }
}

impl Head {
    /// Reads a head from a JSON file, checking its shape.
    pub fn load(path: &Path) -> Result<Head> {
        let bytes = std::fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                NlpError::missing(path)
            } else {
                NlpError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        let head: Head = serde_json::from_slice(&bytes).map_err(|e| NlpError::Model {
            path: path.to_path_buf(),
            reason: format!("not a head file: {e}"),
        })?;
        head.validate().map_err(|reason| NlpError::Model {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(head)
    }

    /// Writes the head as JSON (atomically: a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |source| NlpError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("json.part");
        let json = serde_json::to_vec(self).map_err(|e| NlpError::Runtime(e.to_string()))?;
        std::fs::write(&tmp, json).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format {} (this CROW reads {FORMAT})", self.format));
        }
        if self.labels.len() < 2 {
            return Err("a head needs at least two labels".into());
        }
        let dim = self.features.input_dim(self.embedding_dim);
        if self.weights.len() != self.labels.len() || self.bias.len() != self.labels.len() {
            return Err("one weight row and one bias per label expected".into());
        }
        if self.weights.iter().any(|w| w.len() != dim) {
            return Err(format!("weight rows must have {dim} values"));
        }
        let finite = self.weights.iter().flatten().chain(&self.bias).all(|v| v.is_finite());
        if !(finite && self.temperature.is_finite() && self.temperature > 0.0) {
            return Err("weights and temperature must be finite (and the temperature positive)".into());
        }
        Ok(())
    }

    /// The head's input length.
    pub fn input_dim(&self) -> usize {
        self.features.input_dim(self.embedding_dim)
    }

    /// Predicts from a head input (see [`Features::build`]). Panics if its length is wrong.
    pub fn predict(&self, input: &[f32]) -> Prediction {
        assert_eq!(input.len(), self.input_dim(), "head input has the wrong length");
        let logits: Vec<f32> = self
            .weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| dot(w, input) + b)
            .collect();
        let probabilities = softmax(&logits, self.temperature);
        let best = argmax(&probabilities);
        Prediction {
            label: self.labels[best].clone(),
            probabilities,
        }
    }

    /// Predicts from a text and its embedding.
    pub fn predict_text(&self, embedding: &[f32], text: &str) -> Result<Prediction> {
        if embedding.len() != self.embedding_dim {
            return Err(NlpError::InvalidInput(format!(
                "the head `{}` expects {}-dimensional embeddings, got {}",
                self.task,
                self.embedding_dim,
                embedding.len()
            )));
        }
        Ok(self.predict(&self.features.build(embedding, text)))
    }

    /// True when the labels include `positive` and `negative`.
    pub fn is_sentiment(&self) -> bool {
        self.label_index("positive").is_some() && self.label_index("negative").is_some()
    }

    fn label_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// Sentiment from a prediction of a sentiment head: score = P(positive) − P(negative);
    /// label `neutral` when the head has a `neutral` label and predicts it, or when it has not and
    /// is less sure than [`neutral_below`](Head::neutral_below).
    pub fn sentiment(&self, p: &Prediction) -> Option<Sentiment> {
        let pos = self.label_index("positive")?;
        let neg = self.label_index("negative")?;
        let score = p.probabilities[pos] - p.probabilities[neg];
        let label = if self.label_index("neutral").is_some() {
            p.label.clone()
        } else if p.probabilities[pos].max(p.probabilities[neg]) < self.neutral_below {
            "neutral".to_owned()
        } else if score > 0.0 {
            "positive".to_owned()
        } else {
            "negative".to_owned()
        };
        Some(Sentiment {
            label,
            score,
            tier: "model".into(),
        })
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| ((l - max) / temperature).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Trains a head on inputs `x` (built with `features`) and label indexes `y` into `labels`.
///
/// `groups`, when given (one per example, e.g. the data source), adds a leave-one-group-out
/// estimate to the report. Errors on empty or mismatched input, fewer than two labels present, a
/// label with fewer examples than folds, or non-finite values.
pub fn train(
    task: &str,
    labels: &[String],
    features: Features,
    x: &[Vec<f32>],
    y: &[usize],
    groups: Option<&[String]>,
    cfg: &TrainConfig,
) -> Result<Head> {
    let origin = vec![None; x.len()];
    train_augmented(task, labels, features, x, y, groups, &origin, cfg)
}

/// [`train`] with augmented examples: `origin[i]` is `Some(j)` when example `i` was derived from
/// example `j` (and then shares `j`'s group). Augmented examples are only ever trained on: they
/// sit in their origin's fold, so no held-out estimate sees a variant of a sentence it tests.
#[allow(clippy::too_many_arguments)]
pub fn train_augmented(
    task: &str,
    labels: &[String],
    features: Features,
    x: &[Vec<f32>],
    y: &[usize],
    groups: Option<&[String]>,
    origin: &[Option<usize>],
    cfg: &TrainConfig,
) -> Result<Head> {
    let dim = validate_training(labels, x, y, groups, cfg)?;
    if origin.len() != x.len() || origin.iter().flatten().any(|&j| j >= x.len() || origin[j].is_some()) {
        return Err(NlpError::InvalidInput(
            "each augmented example must name an original example".into(),
        ));
    }
    let embedding_dim = match features {
        Features::Embedding => dim,
        Features::EmbeddingLexicon => dim
            .checked_sub(LEXICON_FEATURES)
            .ok_or_else(|| NlpError::InvalidInput("inputs are shorter than the lexicon features alone".into()))?,
    };
    let n_labels = labels.len();
    let originals: Vec<usize> = (0..x.len()).filter(|&i| origin[i].is_none()).collect();
    let sample_weight: Vec<f32> = origin
        .iter()
        .map(|o| if o.is_some() { cfg.augment_weight } else { 1.0 })
        .collect();

    // k-fold held-out logits of the original examples: the accuracy estimate and the calibration data.
    let orig_y: Vec<usize> = originals.iter().map(|&i| y[i]).collect();
    let orig_folds = stratified_folds(&orig_y, n_labels, cfg.folds, cfg.seed);
    let mut folds = vec![0; x.len()];
    for (k, &i) in originals.iter().enumerate() {
        folds[i] = orig_folds[k];
    }
    for i in 0..x.len() {
        if let Some(j) = origin[i] {
            folds[i] = folds[j];
        }
    }
    let mut held_logits = vec![Vec::new(); x.len()];
    for fold in 0..cfg.folds {
        let train_idx: Vec<usize> = (0..x.len()).filter(|&i| folds[i] != fold).collect();
        let (w, b) = fit(x, y, &sample_weight, &train_idx, n_labels, cfg);
        for &i in originals.iter().filter(|&&i| folds[i] == fold) {
            held_logits[i] = w.iter().zip(&b).map(|(w, b)| dot(w, &x[i]) + b).collect();
        }
    }
    let held: Vec<Vec<f32>> = originals.iter().map(|&i| held_logits[i].clone()).collect();
    let temperature = fit_temperature(&held, &orig_y);
    let raw: Vec<Vec<f32>> = held.iter().map(|l| softmax(l, 1.0)).collect();
    let calibrated: Vec<Vec<f32>> = held.iter().map(|l| softmax(l, temperature)).collect();
    let predicted: Vec<usize> = calibrated.iter().map(|p| argmax(p)).collect();
    let cv_accuracy = accuracy(&predicted, &orig_y);
    let cv_macro_f1 = macro_f1(&predicted, &orig_y, n_labels);

    let mut leave_one_group_out = BTreeMap::new();
    if let Some(groups) = groups {
        let mut names: Vec<&String> = originals.iter().map(|&i| &groups[i]).collect();
        names.sort();
        names.dedup();
        if names.len() >= 2 {
            for g in names {
                let train_idx: Vec<usize> = (0..x.len()).filter(|&i| &groups[i] != g).collect();
                let test_idx: Vec<usize> = originals.iter().copied().filter(|&i| &groups[i] == g).collect();
                let (w, b) = fit(x, y, &sample_weight, &train_idx, n_labels, cfg);
                let right = test_idx
                    .iter()
                    .filter(|&&i| {
                        let l: Vec<f32> = w.iter().zip(&b).map(|(w, b)| dot(w, &x[i]) + b).collect();
                        argmax(&l) == y[i]
                    })
                    .count();
                leave_one_group_out.insert(g.clone(), right as f32 / test_idx.len() as f32);
            }
        }
    }

    let all: Vec<usize> = (0..x.len()).collect();
    let (weights, bias) = fit(x, y, &sample_weight, &all, n_labels, cfg);
    let mut per_label = BTreeMap::new();
    for &l in &orig_y {
        *per_label.entry(labels[l].clone()).or_insert(0) += 1;
    }
    let mut head = Head {
        format: FORMAT,
        task: task.to_owned(),
        labels: labels.to_vec(),
        features,
        embedding_dim,
        embedding_model: None,
        weights,
        bias,
        temperature,
        neutral_below: cfg.neutral_below,
        report: None,
    };
    let mut report = TrainReport {
        examples: originals.len(),
        augmented: x.len() - originals.len(),
        per_label,
        folds: cfg.folds,
        cv_accuracy,
        cv_macro_f1,
        leave_one_group_out,
        temperature,
        ece_before: ece(&raw, &orig_y),
        ece_after: ece(&calibrated, &orig_y),
        neutral_share: None,
        accuracy_outside_neutral: None,
        accuracy_inside_neutral: None,
    };
    if head.is_sentiment() && head.label_index("neutral").is_none() && n_labels == 2 {
        let n = orig_y.len();
        let inside: Vec<usize> = (0..n)
            .filter(|&k| calibrated[k].iter().copied().fold(0.0, f32::max) < cfg.neutral_below)
            .collect();
        let outside: Vec<usize> = (0..n).filter(|k| !inside.contains(k)).collect();
        let acc = |idx: &[usize]| {
            (!idx.is_empty())
                .then(|| idx.iter().filter(|&&k| predicted[k] == orig_y[k]).count() as f32 / idx.len() as f32)
        };
        report.neutral_share = Some(inside.len() as f32 / n as f32);
        report.accuracy_outside_neutral = acc(&outside);
        report.accuracy_inside_neutral = acc(&inside);
    }
    head.report = Some(report);
    Ok(head)
}

fn validate_training(
    labels: &[String],
    x: &[Vec<f32>],
    y: &[usize],
    groups: Option<&[String]>,
    cfg: &TrainConfig,
) -> Result<usize> {
    let bad = |m: String| Err(NlpError::InvalidInput(m));
    if x.is_empty() {
        return bad("no training examples".into());
    }
    if x.len() != y.len() || groups.is_some_and(|g| g.len() != x.len()) {
        return bad("inputs, labels and groups must have the same length".into());
    }
    if labels.len() < 2 {
        return bad("a head needs at least two labels".into());
    }
    if cfg.folds < 2 {
        return bad("cross-validation needs at least 2 folds".into());
    }
    let dim = x[0].len();
    if dim == 0 || x.iter().any(|v| v.len() != dim) {
        return bad("every input must have the same, non-zero length".into());
    }
    if x.iter().flatten().any(|v| !v.is_finite()) {
        return bad("inputs contain NaN or infinite values".into());
    }
    let mut counts = vec![0usize; labels.len()];
    for &l in y {
        match counts.get_mut(l) {
            Some(c) => *c += 1,
            None => return bad(format!("label index {l} is out of range")),
        }
    }
    for (label, &c) in labels.iter().zip(&counts) {
        if c < cfg.folds {
            return bad(format!(
                "label `{label}` has {c} examples; at least {} (one per fold) are needed",
                cfg.folds
            ));
        }
    }
    Ok(dim)
}

/// Assigns each example a fold, stratified by label, deterministically shuffled by `seed`.
fn stratified_folds(y: &[usize], n_labels: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix(seed);
    let mut folds = vec![0; y.len()];
    for label in 0..n_labels {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == label).collect();
        for i in (1..idx.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        for (n, i) in idx.into_iter().enumerate() {
            folds[i] = n % k;
        }
    }
    folds
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Softmax regression by full-batch Adam on the rows `idx`.
fn fit(
    x: &[Vec<f32>],
    y: &[usize],
    sample_weight: &[f32],
    idx: &[usize],
    n_labels: usize,
    cfg: &TrainConfig,
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let dim = x[0].len();
    let mut counts = vec![0f32; n_labels];
    for &i in idx {
        counts[y[i]] += 1.0;
    }
    let class_weight: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if cfg.balanced && c > 0.0 {
                idx.len() as f32 / (n_labels as f32 * c)
            } else {
                1.0
            }
        })
        .collect();
    let norm: f32 = idx.iter().map(|&i| class_weight[y[i]] * sample_weight[i]).sum();

    let mut w = vec![vec![0f32; dim]; n_labels];
    let mut b = vec![0f32; n_labels];
    let (mut mw, mut vw) = (vec![vec![0f32; dim]; n_labels], vec![vec![0f32; dim]; n_labels]);
    let (mut mb, mut vb) = (vec![0f32; n_labels], vec![0f32; n_labels]);
    let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut gw = vec![vec![0f32; dim]; n_labels];
    let mut gb = vec![0f32; n_labels];
    let mut logits = vec![0f32; n_labels];
    for t in 1..=cfg.epochs {
        for g in gw.iter_mut() {
            g.iter_mut().for_each(|v| *v = 0.0);
        }
        gb.iter_mut().for_each(|v| *v = 0.0);
        for &i in idx {
            let xi = &x[i];
            for (l, out) in logits.iter_mut().enumerate() {
                *out = dot(&w[l], xi) + b[l];
            }
            let p = softmax(&logits, 1.0);
            let cw = class_weight[y[i]] * sample_weight[i] / norm;
            for l in 0..n_labels {
                let d = (p[l] - if l == y[i] { 1.0 } else { 0.0 }) * cw;
                if d != 0.0 {
                    for (g, v) in gw[l].iter_mut().zip(xi) {
                        *g += d * v;
                    }
                    gb[l] += d;
                }
            }
        }
        let lr = cfg.learning_rate * (1.0 - beta2.powi(t as i32)).sqrt() / (1.0 - beta1.powi(t as i32));
        for l in 0..n_labels {
            for j in 0..dim {
                let g = gw[l][j] + cfg.l2 * w[l][j];
                mw[l][j] = beta1 * mw[l][j] + (1.0 - beta1) * g;
                vw[l][j] = beta2 * vw[l][j] + (1.0 - beta2) * g * g;
                w[l][j] -= lr * mw[l][j] / (vw[l][j].sqrt() + eps);
            }
            let g = gb[l];
            mb[l] = beta1 * mb[l] + (1.0 - beta1) * g;
            vb[l] = beta2 * vb[l] + (1.0 - beta2) * g * g;
            b[l] -= lr * mb[l] / (vb[l].sqrt() + eps);
        }
    }
    (w, b)
}

/// The temperature minimizing the negative log-likelihood of held-out logits (golden-section
/// search over log T in [−3, 3]).
fn fit_temperature(logits: &[Vec<f32>], y: &[usize]) -> f32 {
    let nll = |log_t: f32| -> f32 {
        let t = log_t.exp();
        logits
            .iter()
            .zip(y)
            .map(|(l, &yi)| -softmax(l, t)[yi].max(1e-12).ln())
            .sum()
    };
    let (mut a, mut b) = (-3.0f32, 3.0f32);
    let phi = 0.618_034f32;
    let (mut c, mut d) = (b - phi * (b - a), a + phi * (b - a));
    let (mut fc, mut fd) = (nll(c), nll(d));
    for _ in 0..60 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - phi * (b - a);
            fc = nll(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + phi * (b - a);
            fd = nll(d);
        }
    }
    ((a + b) / 2.0).exp()
}

fn accuracy(predicted: &[usize], y: &[usize]) -> f32 {
    predicted.iter().zip(y).filter(|(p, y)| p == y).count() as f32 / y.len().max(1) as f32
}

fn macro_f1(predicted: &[usize], y: &[usize], n_labels: usize) -> f32 {
    let mut sum = 0.0;
    for l in 0..n_labels {
        let tp = predicted.iter().zip(y).filter(|&(&p, &t)| p == l && t == l).count() as f32;
        let fp = predicted.iter().zip(y).filter(|&(&p, &t)| p == l && t != l).count() as f32;
        let fn_ = predicted.iter().zip(y).filter(|&(&p, &t)| p != l && t == l).count() as f32;
        let denom = 2.0 * tp + fp + fn_;
        sum += if denom > 0.0 { 2.0 * tp / denom } else { 0.0 };
    }
    sum / n_labels as f32
}

/// Expected calibration error over 10 equal-width confidence bins.
fn ece(probs: &[Vec<f32>], y: &[usize]) -> f32 {
    let mut bins = [(0f32, 0f32, 0usize); 10];
    for (p, &yi) in probs.iter().zip(y) {
        let best = argmax(p);
        let conf = p[best];
        let bin = ((conf * 10.0) as usize).min(9);
        bins[bin].0 += conf;
        bins[bin].1 += if best == yi { 1.0 } else { 0.0 };
        bins[bin].2 += 1;
    }
    let n = probs.len().max(1) as f32;
    bins.iter()
        .filter(|b| b.2 > 0)
        .map(|&(conf, right, _)| (conf - right).abs() / n)
        .sum()
}

/// A negated variant of a positive or negative training sentence, with the opposite label, or
/// `None` when the sentence has no simple place for a negation.
///
/// It puts `not` after a copula before a sentiment word (`the food was good` → `the food was
/// not good`, negative), or `don't`/`didn't` before a sentiment verb after a pronoun (`I loved
/// it` → `I didn't love it`), when the word's lexicon polarity agrees with the label; sentences
/// that already contain a negation are left alone. Training sentiment heads on these variants
/// teaches the embedding head what negation does ([`TrainConfig::augment_negation`]).
///
/// ```
/// use crow_nlp::head::negation_variant;
/// assert_eq!(
///     negation_variant("The food was really good.", "positive"),
///     Some(("The food was not really good.".to_string(), "negative"))
/// );
/// assert_eq!(
///     negation_variant("The plot was bad", "negative"),
///     Some(("The plot was not bad".to_string(), "positive"))
/// );
/// assert_eq!(negation_variant("I loved this phone", "positive").unwrap().0, "I didn't love this phone");
/// assert_eq!(negation_variant("It was not good", "negative"), None);
/// assert_eq!(negation_variant("Shipped on Monday", "positive"), None);
/// ```
pub fn negation_variant(text: &str, label: &str) -> Option<(String, &'static str)> {
    static COPULA: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"\b(is|was|are|were|am|looks|look|looked|seems|seemed|feels|felt|tastes|tasted|sounds|sounded)\s+((?:very|really|so|too|pretty|quite|extremely|absolutely|super|just)\s+)?([a-z]+)\b",
        )
        .expect("static regex")
    });
    static VERB: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(i|we|they)\s+(love|like|enjoy|recommend|hate|loved|liked|enjoyed|recommended|hated)\b")
            .expect("static regex")
    });
    let (want_positive, flipped) = match label {
        "positive" => (true, "negative"),
        "negative" => (false, "positive"),
        _ => return None,
    };
    let vader = Vader::global();
    if vader.has_negation(text) {
        return None;
    }
    let agrees = |word: &str| {
        let c = vader.polarity_scores(word).compound;
        if want_positive { c >= 0.3 } else { c <= -0.3 }
    };
    // ASCII lowercasing keeps byte offsets, so matches index the original text.
    let lower = text.to_ascii_lowercase();
    for m in COPULA.captures_iter(&lower) {
        let (Some(copula), Some(word)) = (m.get(1), m.get(3)) else {
            continue;
        };
        if agrees(word.as_str()) {
            let at = copula.end();
            return Some((format!("{} not{}", &text[..at], &text[at..]), flipped));
        }
    }
    for m in VERB.captures_iter(&lower) {
        let Some(verb) = m.get(2) else { continue };
        let v = verb.as_str();
        if !agrees(v) {
            continue;
        }
        let (aux, base) = match v.strip_suffix("ed") {
            Some(stem) if v != "liked" && v != "loved" && v != "hated" => ("didn't", stem.to_owned()),
            _ => match v.strip_suffix('d') {
                Some(stem) => ("didn't", stem.to_owned()),
                None => ("don't", v.to_owned()),
            },
        };
        return Some((
            format!("{}{aux} {base}{}", &text[..verb.start()], &text[verb.end()..]),
            flipped,
        ));
    }
    None
}

/// A head's verdict on one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The most probable label.
    pub label: String,
    /// Its calibrated probability.
    pub confidence: f32,
}

/// Applies trained heads to texts and their embeddings: for each text, each head's task and its
/// verdict (`{"intent": {"label": "refund", "confidence": 0.93}}`).
///
/// Errors when an embedding does not fit a head (a head trained with another embedding model).
pub fn classify(heads: &[Head], texts: &[&str], embeddings: &[Vec<f32>]) -> Result<Vec<BTreeMap<String, Verdict>>> {
    if texts.len() != embeddings.len() {
        return Err(NlpError::InvalidInput("one embedding per text is needed".into()));
    }
    texts
        .iter()
        .zip(embeddings)
        .map(|(text, e)| {
            heads
                .iter()
                .map(|h| {
                    let p = h.predict_text(e, text)?;
                    Ok((
                        h.task.clone(),
                        Verdict {
                            confidence: p.confidence(),
                            label: p.label,
                        },
                    ))
                })
                .collect()
        })
        .collect()
}

/// The head's accuracy on labelled texts and their embeddings: the share whose most probable
/// label is the text's label. (A sentiment head's neutral band is not applied: the question is
/// whether it leans the right way.)
pub fn accuracy_on(head: &Head, rows: &[LabeledText], embeddings: &[Vec<f32>]) -> Result<f32> {
    if rows.len() != embeddings.len() {
        return Err(NlpError::InvalidInput("one embedding per text is needed".into()));
    }
    let mut right = 0;
    for (row, e) in rows.iter().zip(embeddings) {
        right += usize::from(head.predict_text(e, &row.text)?.label == row.label);
    }
    Ok(right as f32 / rows.len().max(1) as f32)
}

/// One labelled text of a training file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabeledText {
    /// The text.
    pub text: String,
    /// Its label.
    pub label: String,
    /// Optional group (its source), for the leave-one-group-out estimate.
    #[serde(default, alias = "source", skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Reads a JSON Lines file of `{"text": ..., "label": ..., "source"?: ...}`; blank lines are
/// skipped; a bad line is an error naming its number.
pub fn read_labeled(path: &Path) -> Result<Vec<LabeledText>> {
    let data = std::fs::read_to_string(path).map_err(|source| NlpError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (n, line) in data.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: LabeledText = serde_json::from_str(line).map_err(|e| {
            NlpError::InvalidInput(format!(
                "{} line {}: expected {{\"text\": ..., \"label\": ...}}: {e}",
                path.display(),
                n + 1
            ))
        })?;
        if row.label.trim().is_empty() {
            return Err(NlpError::InvalidInput(format!(
                "{} line {}: empty label",
                path.display(),
                n + 1
            )));
        }
        out.push(row);
    }
    Ok(out)
}

/// Trains a head on labelled texts, embedding them with `embed` (called once with all texts,
/// the negated variants included).
///
/// Labels are sorted; the texts' `group`s feed the leave-one-group-out estimate. For sentiment
/// labels with [`TrainConfig::augment_negation`], negated variants ([`negation_variant`]) join
/// the training folds of their sentence.
pub fn train_texts(
    task: &str,
    data: &[LabeledText],
    features: Features,
    embed: impl FnOnce(&[&str]) -> Result<Vec<Vec<f32>>>,
    cfg: &TrainConfig,
) -> Result<Head> {
    let mut labels: Vec<String> = data.iter().map(|d| d.label.clone()).collect();
    labels.sort();
    labels.dedup();
    let sentiment = labels.iter().any(|l| l == "positive") && labels.iter().any(|l| l == "negative");
    let mut texts: Vec<String> = data.iter().map(|d| d.text.clone()).collect();
    let mut y: Vec<usize> = data
        .iter()
        .map(|d| labels.iter().position(|l| *l == d.label).unwrap_or(0))
        .collect();
    let mut origin: Vec<Option<usize>> = vec![None; data.len()];
    let mut groups: Option<Vec<String>> = data.iter().map(|d| d.group.clone()).collect::<Option<Vec<String>>>();
    if sentiment && cfg.augment_negation {
        for (i, d) in data.iter().enumerate() {
            if let Some((variant, label)) = negation_variant(&d.text, &d.label) {
                texts.push(variant);
                y.push(labels.iter().position(|l| l == label).unwrap_or(0));
                origin.push(Some(i));
                if let Some(g) = groups.as_mut() {
                    let group = g[i].clone();
                    g.push(group);
                }
            }
        }
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let embeddings = embed(&refs)?;
    if embeddings.len() != texts.len() {
        return Err(NlpError::Runtime(
            "the embedder returned the wrong number of vectors".into(),
        ));
    }
    let x: Vec<Vec<f32>> = embeddings
        .iter()
        .zip(&refs)
        .map(|(e, t)| features.build(e, t))
        .collect();
    train_augmented(task, &labels, features, &x, &y, groups.as_deref(), &origin, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut rng = SplitMix(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let label = i % 3;
            let center = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.5]][label];
            let noise = |r: &mut SplitMix| (r.next() % 1000) as f32 / 1000.0 - 0.5;
            x.push(vec![center[0] + noise(&mut rng), center[1] + noise(&mut rng)]);
            y.push(label);
        }
        (x, y)
    }

    /// A head on the bare inputs with the default settings.
    fn fit(task: &str, labels: &[String], x: &[Vec<f32>], y: &[usize]) -> Head {
        train(task, labels, Features::Embedding, x, y, None, &TrainConfig::default()).unwrap()
    }

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn learns_three_separable_classes_and_reports_held_out_accuracy() {
        let (x, y) = blobs(300, 1);
        let head = fit("t", &labels(&["a", "b", "c"]), &x, &y);
        let r = head.report.as_ref().unwrap();
        assert!(r.cv_accuracy > 0.97, "{r:?}");
        assert!(r.cv_macro_f1 > 0.97, "{r:?}");
        assert_eq!(head.predict(&[0.9, 0.1]).label, "a");
        assert_eq!(head.predict(&[-0.9, 0.1]).label, "b");
        assert_eq!(head.predict(&[0.0, 1.4]).label, "c");
        let p = head.predict(&[0.0, 1.4]);
        assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn training_is_deterministic_and_round_trips_through_json() {
        let (x, y) = blobs(90, 2);
        let l = labels(&["a", "b", "c"]);
        let a = fit("t", &l, &x, &y);
        let b = fit("t", &l, &x, &y);
        assert_eq!(a, b);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heads/t.json");
        a.save(&path).unwrap();
        assert_eq!(Head::load(&path).unwrap(), a);
    }

    #[test]
    fn balanced_weights_keep_a_rare_label_alive() {
        // 95 % "common" on the left, 5 % "rare" on the right.
        let x: Vec<Vec<f32>> = (0..200)
            .map(|i| vec![if i % 20 == 0 { 1.0 } else { -1.0 } + (i % 7) as f32 * 0.01])
            .collect();
        let y: Vec<usize> = (0..200).map(|i| usize::from(i % 20 == 0)).collect();
        let head = fit("t", &labels(&["common", "rare"]), &x, &y);
        assert_eq!(head.predict(&[1.0]).label, "rare");
        assert_eq!(head.report.unwrap().per_label["rare"], 10);
    }

    #[test]
    fn leave_one_group_out_is_reported_per_group() {
        let (x, y) = blobs(120, 3);
        let groups: Vec<String> = (0..120).map(|i| ["g1", "g2"][i % 2].to_string()).collect();
        let head = train(
            "t",
            &labels(&["a", "b", "c"]),
            Features::Embedding,
            &x,
            &y,
            Some(&groups),
            &TrainConfig::default(),
        )
        .unwrap();
        let logo = &head.report.unwrap().leave_one_group_out;
        assert_eq!(logo.len(), 2);
        assert!(logo.values().all(|&a| a > 0.9), "{logo:?}");
    }

    #[test]
    fn bad_training_input_is_a_precise_error() {
        let l = labels(&["a", "b"]);
        let cfg = TrainConfig::default();
        let err = |x: &[Vec<f32>], y: &[usize], l: &[String]| {
            train("t", l, Features::Embedding, x, y, None, &cfg)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[], &[], &l).contains("no training examples"));
        assert!(err(&[vec![1.0]], &[0, 1], &l).contains("same length"));
        assert!(err(&[vec![1.0]], &[0], &labels(&["a"])).contains("two labels"));
        let x: Vec<Vec<f32>> = (0..10).map(|i| vec![i as f32]).collect();
        let y: Vec<usize> = (0..10).map(|i| usize::from(i == 0)).collect();
        assert!(err(&x, &y, &l).contains("label `b` has 1 examples"));
        let mut nan = x.clone();
        nan[3][0] = f32::NAN;
        assert!(err(&nan, &y, &l).contains("NaN"));
    }

    #[test]
    fn a_corrupt_head_file_is_a_model_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.json");
        std::fs::write(&path, b"{\"format\": 1}").unwrap();
        let e = Head::load(&path).unwrap_err();
        assert!(matches!(e, NlpError::Model { .. }), "{e}");
        assert!(e.to_string().contains("h.json"));
        let missing = Head::load(&dir.path().join("nope.json")).unwrap_err();
        assert!(missing.to_string().contains("make models"), "{missing}");
    }

    #[test]
    fn sentiment_heads_answer_neutral_when_unsure() {
        let x: Vec<Vec<f32>> = (0..100).map(|i| vec![(i as f32 - 49.5) / 50.0]).collect();
        // Near zero the labels alternate: the head cannot be sure there.
        let y: Vec<usize> = (0..100)
            .map(|i| {
                if (40..60).contains(&i) {
                    i % 2
                } else {
                    usize::from(i >= 50)
                }
            })
            .collect();
        let head = fit("sentiment", &labels(&["negative", "positive"]), &x, &y);
        let s = |v: f32| head.sentiment(&head.predict(&[v])).unwrap();
        assert_eq!(s(1.0).label, "positive");
        assert_eq!(s(-1.0).label, "negative");
        assert_eq!(s(0.0).label, "neutral");
        assert!(s(1.0).score > 0.5 && s(-1.0).score < -0.5);
        let r = head.report.unwrap();
        assert!(
            r.neutral_share.unwrap() > 0.0 && r.neutral_share.unwrap() < 0.5,
            "{r:?}"
        );
    }

    #[test]
    fn labeled_files_name_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        std::fs::write(
            &p,
            "{\"text\":\"a\",\"label\":\"x\",\"source\":\"s\"}\n\n{\"text\":\"b\"}\n",
        )
        .unwrap();
        let e = read_labeled(&p).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        std::fs::write(&p, "{\"text\":\"a\",\"label\":\"x\",\"source\":\"s\"}\n").unwrap();
        assert_eq!(read_labeled(&p).unwrap()[0].group.as_deref(), Some("s"));
    }
}
