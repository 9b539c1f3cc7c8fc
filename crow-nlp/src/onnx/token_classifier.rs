//! A generic ONNX token-classification (NER) runner.
//!
//! No model ships with CROW for this: bring any token classifier exported to ONNX in the Hugging
//! Face layout (for example an export of `dslim/bert-base-NER`):
//!
//! - `model.onnx`: int64 inputs `input_ids`, optionally `attention_mask` and `token_type_ids`
//!   (shape `[batch, sequence]`; the runner feeds the ones the model declares), and float32
//!   logits `[batch, sequence, labels]` (the output named `logits`, else the first one);
//! - `tokenizer.json`: the model's tokenizer (its own truncation and padding settings are
//!   replaced: the runner windows and pads itself);
//! - `config.json`: `id2label` (required) and `max_position_embeddings` (default 512);
//! - `tokenizer_config.json` (optional): a `model_max_length` below `max_position_embeddings`
//!   shortens the windows (RoBERTa-style models declare 514 positions but take 512 tokens).
//!
//! # How text becomes entities
//!
//! 1. Each token's label is the argmax of the softmax of its logits. A token whose best
//!    probability is below the minimum score ([`TokenClassifier::with_min_score`], default 0: no
//!    threshold) counts as `O`. Special tokens (`[CLS]`, `[SEP]`, padding, anything with empty
//!    offsets) are skipped. (An entity's confidence would be the mean of its tokens'
//!    probabilities; crow-core's [`Entity`] carries no score, so the minimum score is the knob
//!    that trades recall for precision.)
//! 2. A word split into several pieces takes the label of its first piece, and an entity that
//!    starts or continues there extends to the end of the word (`Okonkwo` = `ok ##on ##k ##wo`
//!    is one word, whatever the model says of `##on`).
//! 3. The labels are decoded as BIO / IOB2 (`B-X`, `I-X`, `O`; an `I-X` that does not continue
//!    an `X` starts one), with the BIOES / BILOU prefixes understood too (`S-`/`U-` a
//!    single-word entity, `E-`/`L-` the last word of one). A label without a prefix (`PER`) is an
//!    entity of one word.
//! 4. Offsets are byte offsets into the original text (the tokenizer's offsets, so lowercasing
//!    and accent stripping do not shift them); an entity's text is the original slice, trimmed of
//!    surrounding whitespace.
//! 5. The kind is the label without its prefix: `PER` → `person`, `ORG` → `organization`,
//!    `LOC` → `location`, `MISC` → `misc`, anything else lowercased. Person entities are
//!    personal data (`pii: true`).
//!
//! # Long texts
//!
//! A text longer than the model's maximum length is cut into overlapping windows (the encoding is
//! truncated with a stride of a quarter of the window, and each part gets the model's special
//! tokens); every window is classified, and each
//! token keeps the prediction of the window where it sits farthest from an edge (where the model
//! saw the most context on both sides). Entities are decoded once, on the merged tokens, so an
//! entity that straddles a window boundary comes out whole. Windows of all the texts of a
//! [`find_batch`](TokenClassifier::find_batch) call are run in batches.
//!
//! ```no_run
//! use std::path::Path;
//! use crow_nlp::onnx::TokenClassifier;
//!
//! let ner = TokenClassifier::load(
//!     Path::new("models/onnxruntime/libonnxruntime.so.1.32.0"),
//!     Path::new("models/bert-base-NER"),
//! )?
//! .with_min_score(0.5);
//! for entity in ner.find("Alice Smith moved to Paris.")? {
//!     println!("{} {:?} at {}..{}", entity.kind, entity.text, entity.start, entity.end);
//! }
//! # Ok::<(), crow_nlp::NlpError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crow_core::ports::Entity;
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, TensorElementType, ValueType};
use tokenizers::{Encoding, PostProcessor, Tokenizer, TruncationDirection};

use crate::error::{NlpError, Result};
use crate::onnx::{InputKind, model_inputs};

/// The maximum tokens per window when `config.json` has no `max_position_embeddings`.
pub const DEFAULT_MAX_LENGTH: usize = 512;
/// Windows per ONNX Runtime call, by default.
pub const DEFAULT_BATCH_SIZE: usize = 16;

/// A token-classification (NER) model: finds entities (people, organizations, places, ...) in
/// text. See the [module docs](self) for the model layout and the decoding rules.
///
/// `Send + Sync`: one instance can serve several threads (runs take turns on the session).
pub struct TokenClassifier {
    dir: PathBuf,
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    labels: Vec<String>,
    tags: Vec<Tag>,
    feeds: Vec<(String, InputKind)>,
    output: String,
    pad_id: u32,
    max_length: usize,
    /// Text tokens per window: `max_length` less the special tokens.
    content: usize,
    stride: usize,
    min_score: f32,
    batch_size: usize,
}

impl fmt::Debug for TokenClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClassifier")
            .field("dir", &self.dir)
            .field("labels", &self.labels)
            .field(
                "inputs",
                &self.feeds.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
            )
            .field("output", &self.output)
            .field("max_length", &self.max_length)
            .field("stride", &self.stride)
            .field("min_score", &self.min_score)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl TokenClassifier {
    /// Loads the model in `model_dir` (`model.onnx`, `tokenizer.json`, `config.json`), with ONNX
    /// Runtime from `ort_library` (see [`runtime::environment`](crate::onnx::runtime::environment)).
    ///
    /// # Errors
    /// [`NlpError::ModelNotFound`] when the directory, `model.onnx`, `tokenizer.json` or the
    /// library is missing; [`NlpError::Model`] naming the file when `config.json` is missing or
    /// has no valid `id2label`, when the tokenizer or the model cannot be loaded, or when the
    /// model's inputs or outputs are not those of a token classifier with these labels;
    /// [`NlpError::Runtime`] when ONNX Runtime fails to start.
    pub fn load(ort_library: &Path, model_dir: &Path) -> Result<Self> {
        if !model_dir.is_dir() {
            return Err(NlpError::missing(model_dir));
        }
        let model_path = model_dir.join("model.onnx");
        let tokenizer_path = model_dir.join("tokenizer.json");
        let config_path = model_dir.join("config.json");
        for file in [&model_path, &tokenizer_path] {
            if !file.is_file() {
                return Err(NlpError::missing(file));
            }
        }
        let config = read_config(&config_path)?;
        let max_length = match tokenizer_max_length(&model_dir.join("tokenizer_config.json")) {
            Some(limit) if limit < config.max_length => limit,
            _ => config.max_length,
        };
        let tags = config.labels.iter().map(|label| Tag::parse(label)).collect();

        let env = crate::onnx::runtime::environment(ort_library)?;

        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| NlpError::Model {
            path: tokenizer_path.clone(),
            reason: e.to_string(),
        })?;
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| {
                ["[PAD]", "<pad>", "<PAD>"]
                    .iter()
                    .find_map(|t| tokenizer.token_to_id(t))
            })
            .unwrap_or(0);
        tokenizer.with_padding(None);
        let added = tokenizer.get_post_processor().map_or(0, |p| p.added_tokens(false));
        let content = max_length.saturating_sub(added);
        if content < 2 {
            return Err(NlpError::Model {
                path: config_path,
                reason: format!(
                    "a maximum length of {max_length} tokens leaves no room for text beside the {added} special tokens"
                ),
            });
        }
        let stride = content / 4;
        // No truncation in the tokenizer: `find_batch` windows whole encodings itself.
        tokenizer.with_truncation(None).map_err(|e| NlpError::Model {
            path: tokenizer_path.clone(),
            reason: e.to_string(),
        })?;

        let session = Session::builder(env)
            .and_then(|mut b| b.commit_from_file(&model_path))
            .map_err(|e| NlpError::Model {
                path: model_path.clone(),
                reason: e.to_string(),
            })?;
        let model_error = |reason: String| NlpError::Model {
            path: model_path.clone(),
            reason,
        };
        let feeds = model_inputs(&session, &model_path, "a token classifier")?;

        let outputs = session.outputs();
        let output = outputs
            .iter()
            .find(|o| o.name() == "logits")
            .or_else(|| outputs.first())
            .ok_or_else(|| model_error("the model has no output".into()))?;
        check_logits(output.name(), output.dtype(), config.labels.len()).map_err(&model_error)?;
        let output = output.name().to_string();

        tracing::debug!(
            dir = %model_dir.display(),
            labels = config.labels.len(),
            max_length,
            stride,
            "token classifier loaded"
        );
        Ok(TokenClassifier {
            dir: model_dir.to_path_buf(),
            session: Mutex::new(session),
            tokenizer,
            labels: config.labels,
            tags,
            feeds,
            output,
            pad_id,
            max_length,
            content,
            stride,
            min_score: 0.0,
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Treats a token whose best label has a softmax probability below `min_score` as `O`
    /// (outside any entity). The default, 0, keeps every prediction; 0.5 to 0.9 trades recall
    /// for precision. Values are clamped to `0..=1` (NaN counts as 0).
    #[must_use]
    pub fn with_min_score(mut self, min_score: f32) -> Self {
        self.min_score = if min_score.is_nan() {
            0.0
        } else {
            min_score.clamp(0.0, 1.0)
        };
        self
    }

    /// Runs at most `windows` windows (texts, or parts of long texts) per ONNX Runtime call
    /// (default [`DEFAULT_BATCH_SIZE`]; 0 counts as 1).
    #[must_use]
    pub fn with_batch_size(mut self, windows: usize) -> Self {
        self.batch_size = windows.max(1);
        self
    }

    /// The model's labels, by class index (from `config.json`'s `id2label`).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The most tokens (special tokens included) the model sees at once; longer texts are
    /// processed in overlapping windows.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The entities in `text`, ordered by start offset, not overlapping.
    ///
    /// # Errors
    /// [`NlpError::Runtime`] when the tokenizer or ONNX Runtime fails.
    pub fn find(&self, text: &str) -> Result<Vec<Entity>> {
        Ok(self.find_batch(&[text])?.pop().unwrap_or_default())
    }

    /// The entities of each text (one list per text, in order), running the texts' windows
    /// together in batches.
    ///
    /// # Errors
    /// [`NlpError::Runtime`] when the tokenizer or ONNX Runtime fails.
    pub fn find_batch(&self, texts: &[&str]) -> Result<Vec<Vec<Entity>>> {
        let mut windows: Vec<(usize, Encoding)> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            // Windowing by hand: since tokenizers 0.23.1 the tokenizer's own truncation stops
            // tokenizing at `max_length` tokens and so loses the overflowing windows
            // (huggingface/tokenizers#2091).
            let mut encoding = self
                .tokenizer
                .encode(*text, false)
                .map_err(|e| NlpError::Runtime(format!("tokenizing: {e}")))?;
            encoding.truncate(self.content, self.stride, TruncationDirection::Right);
            let overflowing = encoding.take_overflowing();
            for part in std::iter::once(encoding).chain(overflowing) {
                let window = self
                    .tokenizer
                    .post_process(part, None, true)
                    .map_err(|e| NlpError::Runtime(format!("adding special tokens: {e}")))?;
                // Windows with no text (an empty text) need no model run.
                if content_positions(&window).next().is_some() {
                    windows.push((i, window));
                }
            }
        }

        let mut merged: Vec<Merged> = (0..texts.len()).map(|_| Merged::default()).collect();
        for chunk in windows.chunks(self.batch_size) {
            let (logits, seq) = self.run(chunk)?;
            let labels = self.labels.len();
            for (row, (text, window)) in chunk.iter().enumerate() {
                let tokens: Vec<Token> = content_positions(window)
                    .map(|pos| {
                        let at = (row * seq + pos) * labels;
                        let (label, prob) = best_label(&logits[at..at + labels]);
                        let (start, end) = window.get_offsets()[pos];
                        Token {
                            start,
                            end,
                            word: window.get_word_ids().get(pos).copied().flatten(),
                            label: (prob >= self.min_score).then_some(label),
                        }
                    })
                    .collect();
                merged[*text].add_window(&tokens);
            }
        }
        Ok(texts
            .iter()
            .zip(merged)
            .map(|(text, merged)| decode(text, &merged.into_tokens(), &self.tags))
            .collect())
    }

    /// Runs one batch of windows; returns the logits (`[windows, seq, labels]`, row-major) and `seq`.
    fn run(&self, windows: &[(usize, Encoding)]) -> Result<(Vec<f32>, usize)> {
        let batch = windows.len();
        let seq = windows.iter().map(|(_, w)| w.len()).max().unwrap_or(0);
        let mut values: Vec<(String, SessionInputValue<'_>)> = Vec::with_capacity(self.feeds.len());
        for (name, feed) in &self.feeds {
            let mut data = vec![0_i64; batch * seq];
            for (row, (_, w)) in windows.iter().enumerate() {
                let out = &mut data[row * seq..(row + 1) * seq];
                match feed {
                    InputKind::Ids => {
                        out.fill(i64::from(self.pad_id));
                        copy_widened(w.get_ids(), out);
                    }
                    InputKind::Mask => copy_widened(w.get_attention_mask(), out),
                    InputKind::TypeIds => copy_widened(w.get_type_ids(), out),
                }
            }
            let tensor = Tensor::from_array(([batch, seq], data))
                .map_err(|e| NlpError::Runtime(format!("building input `{name}`: {e}")))?;
            values.push((name.clone(), tensor.into()));
        }

        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(values)
            .map_err(|e| NlpError::Runtime(format!("running {}: {e}", self.dir.join("model.onnx").display())))?;
        let (shape, logits) = outputs[self.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| NlpError::Runtime(format!("reading output `{}`: {e}", self.output)))?;
        let expected = [batch, seq, self.labels.len()];
        if shape.len() != 3
            || shape
                .iter()
                .zip(expected)
                .any(|(&got, want)| usize::try_from(got) != Ok(want))
        {
            return Err(NlpError::Runtime(format!(
                "output `{}` has shape {:?}, expected {expected:?} (windows, tokens, labels)",
                self.output,
                &shape[..]
            )));
        }
        Ok((logits.to_vec(), seq))
    }
}

/// `src` into the start of `dst`, widened to i64.
fn copy_widened(src: &[u32], dst: &mut [i64]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = i64::from(s);
    }
}

/// The positions of a window's text tokens: not special, not padding, with a non-empty span.
fn content_positions(window: &Encoding) -> impl Iterator<Item = usize> + '_ {
    let special = window.get_special_tokens_mask();
    let attention = window.get_attention_mask();
    window
        .get_offsets()
        .iter()
        .enumerate()
        .filter(move |&(i, &(start, end))| special.get(i) != Some(&1) && attention.get(i) != Some(&0) && end > start)
        .map(|(i, _)| i)
}

/// The argmax of the softmax of `logits`, and its probability.
fn best_label(logits: &[f32]) -> (usize, f32) {
    let (best, max) =
        logits.iter().copied().enumerate().fold(
            (0, f32::NEG_INFINITY),
            |(bi, bv), (i, v)| if v > bv { (i, v) } else { (bi, bv) },
        );
    if !max.is_finite() {
        return (best, 0.0);
    }
    let sum: f32 = logits.iter().map(|&v| (v - max).exp()).sum();
    (best, 1.0 / sum)
}

/// Checks that `dtype` can be `[batch, seq, labels]` float32 logits.
fn check_logits(name: &str, dtype: &ValueType, labels: usize) -> std::result::Result<(), String> {
    if dtype.tensor_type() != Some(TensorElementType::Float32) {
        return Err(format!(
            "output `{name}` is {dtype}, expected float32 logits [batch, sequence, labels]"
        ));
    }
    if let Some(shape) = dtype.tensor_shape() {
        if shape.len() != 3 {
            return Err(format!(
                "output `{name}` has {} dimensions, expected 3 (batch, sequence, labels)",
                shape.len()
            ));
        }
        let last = shape[2];
        if last > 0 && usize::try_from(last) != Ok(labels) {
            return Err(format!(
                "output `{name}` has {last} labels per token but config.json's id2label has {labels}"
            ));
        }
    }
    Ok(())
}

/// What `config.json` says.
#[derive(Debug)]
struct ModelConfig {
    labels: Vec<String>,
    max_length: usize,
}

fn read_config(path: &Path) -> Result<ModelConfig> {
    let invalid = |reason: String| NlpError::Model {
        path: path.to_path_buf(),
        reason,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(invalid(
                "missing: a token classifier needs config.json with id2label (its labels by class index)".into(),
            ));
        }
        Err(e) => {
            return Err(NlpError::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let labels = parse_id2label(json.get("id2label")).map_err(invalid)?;
    let max_length = match json.get("max_position_embeddings") {
        None | Some(serde_json::Value::Null) => DEFAULT_MAX_LENGTH,
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| invalid(format!("max_position_embeddings must be a positive integer, not {v}")))?,
    };
    Ok(ModelConfig { labels, max_length })
}

/// The labels of an `id2label` object (`{"0": "O", "1": "B-PER", ...}`): ids 0..n, each once.
fn parse_id2label(value: Option<&serde_json::Value>) -> std::result::Result<Vec<String>, String> {
    let map = match value {
        Some(serde_json::Value::Object(map)) => map,
        None => return Err("no id2label: a token classifier needs its labels by class index".into()),
        Some(other) => return Err(format!("id2label must be an object of id → label, not {other}")),
    };
    if map.is_empty() {
        return Err("id2label is empty".into());
    }
    let mut labels = vec![None; map.len()];
    for (id, label) in map {
        let index = id
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&i| i < labels.len())
            .ok_or_else(|| format!("id2label key {id:?} is not a class index in 0..{}", map.len()))?;
        let label = label
            .as_str()
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| format!("id2label[{id:?}] must be a non-empty string, not {label}"))?;
        if labels[index].replace(label.trim().to_string()).is_some() {
            return Err(format!("id2label names class {index} twice"));
        }
    }
    // n distinct indices below n: every slot is filled.
    Ok(labels.into_iter().flatten().collect())
}

/// `model_max_length` from a `tokenizer_config.json`, when present and sensible (transformers
/// writes 1e30 for "no limit").
fn tokenizer_max_length(path: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let n = json.get("model_max_length")?.as_f64()?;
    (1.0..1e9).contains(&n).then_some(n as usize)
}

/// A label's role in the BIO / BIOES / BILOU scheme, with its entity type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tag {
    /// `O`.
    Outside,
    /// `B-X`: starts an entity.
    Begin(String),
    /// `I-X`: continues an `X`, or starts one.
    Inside(String),
    /// `E-X` / `L-X`: the last word of an `X`.
    Last(String),
    /// `S-X` / `U-X`, or a bare `X`: a one-word entity.
    Single(String),
}

impl Tag {
    fn parse(label: &str) -> Tag {
        if label.eq_ignore_ascii_case("O") {
            return Tag::Outside;
        }
        let mut chars = label.chars();
        if let (Some(prefix), Some('-' | '_')) = (chars.next(), chars.next()) {
            let kind = chars.as_str().to_string();
            if !kind.is_empty() {
                match prefix.to_ascii_uppercase() {
                    'B' => return Tag::Begin(kind),
                    'I' => return Tag::Inside(kind),
                    'E' | 'L' => return Tag::Last(kind),
                    'S' | 'U' => return Tag::Single(kind),
                    _ => {}
                }
            }
        }
        Tag::Single(label.to_string())
    }
}

/// A token of the merged windows, in text order.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Token {
    start: usize,
    end: usize,
    word: Option<u32>,
    /// The label index; `None` below the minimum score.
    label: Option<usize>,
}

/// Identifies a token across windows: its span, and which of the tokens with that span it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct TokenKey {
    start: usize,
    end: usize,
    n: u32,
}

/// A token's prediction in one window, with the distance to that window's nearest edge.
#[derive(Debug, Clone, Copy)]
struct Prediction {
    token: Token,
    context: usize,
}

/// The tokens of a text's overlapping windows, each with the prediction of the window where it
/// sits farthest from an edge (the earlier window on a tie).
#[derive(Debug, Default)]
struct Merged {
    tokens: HashMap<TokenKey, Prediction>,
}

impl Merged {
    /// Adds a window's text tokens, in order.
    fn add_window(&mut self, tokens: &[Token]) {
        let mut seen: HashMap<(usize, usize), u32> = HashMap::new();
        for (rank, token) in tokens.iter().enumerate() {
            let n = seen.entry((token.start, token.end)).or_insert(0);
            let key = TokenKey {
                start: token.start,
                end: token.end,
                n: *n,
            };
            *n += 1;
            let prediction = Prediction {
                token: *token,
                context: rank.min(tokens.len() - 1 - rank),
            };
            self.tokens
                .entry(key)
                .and_modify(|old| {
                    if prediction.context > old.context {
                        *old = prediction;
                    }
                })
                .or_insert(prediction);
        }
    }

    /// The merged tokens, in text order.
    fn into_tokens(self) -> Vec<Token> {
        let mut tokens: Vec<(TokenKey, Token)> = self.tokens.into_iter().map(|(k, p)| (k, p.token)).collect();
        tokens.sort_unstable_by_key(|(k, _)| *k);
        tokens.into_iter().map(|(_, t)| t).collect()
    }
}

/// Decodes labelled tokens (in text order) into entities of `text`.
fn decode(text: &str, tokens: &[Token], tags: &[Tag]) -> Vec<Entity> {
    // Words: runs of pieces of the same word, touching each other. A word takes its first
    // piece's label.
    let mut words: Vec<(usize, usize, Option<usize>)> = Vec::new();
    let mut previous: Option<&Token> = None;
    for token in tokens {
        let continues = previous.is_some_and(|p| p.word.is_some() && p.word == token.word && token.start <= p.end);
        match words.last_mut() {
            Some(word) if continues => word.1 = word.1.max(token.end),
            _ => words.push((token.start, token.end, token.label)),
        }
        previous = Some(token);
    }

    let mut entities = Vec::new();
    let mut open: Option<(&str, usize, usize)> = None;
    let close = |open: &mut Option<(&str, usize, usize)>, entities: &mut Vec<Entity>| {
        if let Some((kind, start, end)) = open.take()
            && let Some(entity) = make_entity(text, kind, start, end)
        {
            entities.push(entity);
        }
    };
    for (start, end, label) in words {
        let tag = label.and_then(|l| tags.get(l)).unwrap_or(&Tag::Outside);
        match tag {
            Tag::Outside => close(&mut open, &mut entities),
            Tag::Begin(kind) => {
                close(&mut open, &mut entities);
                open = Some((kind, start, end));
            }
            Tag::Inside(kind) | Tag::Last(kind) => {
                match &mut open {
                    Some((open_kind, _, open_end)) if *open_kind == kind.as_str() => *open_end = end,
                    _ => {
                        close(&mut open, &mut entities);
                        open = Some((kind, start, end));
                    }
                }
                if matches!(tag, Tag::Last(_)) {
                    close(&mut open, &mut entities);
                }
            }
            Tag::Single(kind) => {
                close(&mut open, &mut entities);
                open = Some((kind, start, end));
                close(&mut open, &mut entities);
            }
        }
    }
    close(&mut open, &mut entities);
    entities
}

/// An entity of `kind` over `text[start..end]`, snapped to char boundaries and trimmed of
/// whitespace; `None` when nothing is left.
fn make_entity(text: &str, kind: &str, start: usize, end: usize) -> Option<Entity> {
    let mut start = start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = end.clamp(start, text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let slice = &text[start..end];
    let trimmed = slice.trim_start();
    let start = start + (slice.len() - trimmed.len());
    let trimmed = trimmed.trim_end();
    if trimmed.is_empty() {
        return None;
    }
    let kind = entity_kind(kind);
    Some(Entity {
        pii: kind == "person",
        kind,
        text: trimmed.to_string(),
        start,
        end: start + trimmed.len(),
        product_id: None,
    })
}

/// CROW's kind for an entity type of the model.
fn entity_kind(kind: &str) -> String {
    match kind {
        "PER" => "person".into(),
        "ORG" => "organization".into(),
        "LOC" => "location".into(),
        "MISC" => "misc".into(),
        other => other.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(labels: &[&str]) -> Vec<Tag> {
        labels.iter().map(|l| Tag::parse(l)).collect()
    }

    /// Tokens for whitespace-separated words of `text`, each word one token labelled by `labels`
    /// (indices into `tags`, `None` for O).
    fn words(text: &str, labels: &[Option<usize>]) -> Vec<Token> {
        let mut tokens = Vec::new();
        let mut offset = 0;
        for (i, word) in text.split(' ').enumerate() {
            tokens.push(Token {
                start: offset,
                end: offset + word.len(),
                word: Some(i as u32),
                label: labels[i],
            });
            offset += word.len() + 1;
        }
        tokens
    }

    fn spans(entities: &[Entity]) -> Vec<(&str, &str, usize, usize)> {
        entities
            .iter()
            .map(|e| (e.kind.as_str(), e.text.as_str(), e.start, e.end))
            .collect()
    }

    #[test]
    fn parses_bio_bioes_bilou_and_bare_labels() {
        assert_eq!(Tag::parse("O"), Tag::Outside);
        assert_eq!(Tag::parse("B-PER"), Tag::Begin("PER".into()));
        assert_eq!(Tag::parse("I-ORG"), Tag::Inside("ORG".into()));
        assert_eq!(Tag::parse("E-LOC"), Tag::Last("LOC".into()));
        assert_eq!(Tag::parse("L-LOC"), Tag::Last("LOC".into()));
        assert_eq!(Tag::parse("S-MISC"), Tag::Single("MISC".into()));
        assert_eq!(Tag::parse("U-MISC"), Tag::Single("MISC".into()));
        assert_eq!(Tag::parse("b_product"), Tag::Begin("product".into()));
        assert_eq!(Tag::parse("DATE"), Tag::Single("DATE".into()));
        assert_eq!(Tag::parse("B-"), Tag::Single("B-".into()));
        assert_eq!(Tag::parse("X-FOO"), Tag::Single("X-FOO".into()));
    }

    #[test]
    fn decodes_bio_with_orphan_inside_and_adjacent_entities() {
        let t = tags(&["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]);
        let text = "Alice Smith met Smith Bob in New York";
        let tokens = words(
            text,
            &[Some(1), Some(2), None, Some(2), Some(1), None, Some(4), Some(4)],
        );
        let got = decode(text, &tokens, &t);
        assert_eq!(
            spans(&got),
            vec![
                ("person", "Alice Smith", 0, 11),
                ("person", "Smith", 16, 21),
                ("person", "Bob", 22, 25),
                ("location", "New York", 29, 37),
            ]
        );
        assert!(got.iter().all(|e| e.pii == (e.kind == "person")));
        assert!(!got[3].pii);
    }

    #[test]
    fn inside_of_another_type_starts_a_new_entity() {
        let t = tags(&["O", "B-PER", "I-ORG"]);
        let text = "Ann Acme";
        let got = decode(text, &words(text, &[Some(1), Some(2)]), &t);
        assert_eq!(
            spans(&got),
            vec![("person", "Ann", 0, 3), ("organization", "Acme", 4, 8)]
        );
    }

    #[test]
    fn decodes_bioes_and_bilou() {
        let t = tags(&["O", "B-ORG", "I-ORG", "E-ORG", "S-LOC", "U-PER", "L-ORG"]);
        let text = "Bank of New England Paris Ann Foo Bar";
        let tokens = words(
            text,
            &[Some(1), Some(2), Some(2), Some(3), Some(4), Some(5), Some(1), Some(6)],
        );
        assert_eq!(
            spans(&decode(text, &tokens, &t)),
            vec![
                ("organization", "Bank of New England", 0, 19),
                ("location", "Paris", 20, 25),
                ("person", "Ann", 26, 29),
                ("organization", "Foo Bar", 30, 37),
            ]
        );
        // An E- closes: the next I- starts anew.
        let text = "A B C";
        let got = decode(text, &words(text, &[Some(1), Some(3), Some(2)]), &t);
        assert_eq!(
            spans(&got),
            vec![("organization", "A B", 0, 3), ("organization", "C", 4, 5)]
        );
    }

    #[test]
    fn bare_labels_are_one_word_entities_and_lowercased() {
        let t = tags(&["O", "DATE", "Product"]);
        let text = "May June Widget";
        let got = decode(text, &words(text, &[Some(1), Some(1), Some(2)]), &t);
        assert_eq!(
            spans(&got),
            vec![
                ("date", "May", 0, 3),
                ("date", "June", 4, 8),
                ("product", "Widget", 9, 15)
            ]
        );
    }

    #[test]
    fn a_word_takes_its_first_piece_label_to_its_end() {
        let t = tags(&["O", "B-PER", "B-LOC"]);
        let text = "Okonkwo said";
        let tokens = vec![
            Token {
                start: 0,
                end: 2,
                word: Some(0),
                label: Some(1),
            },
            Token {
                start: 2,
                end: 4,
                word: Some(0),
                label: None,
            },
            Token {
                start: 4,
                end: 7,
                word: Some(0),
                label: Some(2),
            },
            Token {
                start: 8,
                end: 12,
                word: Some(1),
                label: None,
            },
        ];
        assert_eq!(spans(&decode(text, &tokens, &t)), vec![("person", "Okonkwo", 0, 7)]);
        // A word whose first piece is O stays O, whatever its later pieces say.
        let tokens = vec![
            Token {
                start: 0,
                end: 2,
                word: Some(0),
                label: None,
            },
            Token {
                start: 2,
                end: 7,
                word: Some(0),
                label: Some(1),
            },
        ];
        assert!(decode(text, &tokens, &t).is_empty());
        // Without word ids every token is its own word.
        let tokens = vec![
            Token {
                start: 0,
                end: 2,
                word: None,
                label: Some(1),
            },
            Token {
                start: 2,
                end: 7,
                word: None,
                label: Some(2),
            },
        ];
        assert_eq!(
            spans(&decode(text, &tokens, &t)),
            vec![("person", "Ok", 0, 2), ("location", "onkwo", 2, 7)]
        );
    }

    #[test]
    fn entities_snap_to_char_boundaries_and_trim_whitespace() {
        let text = "é  Zoë ";
        // A span starting inside "é" and ending inside "ë", with the spaces in between.
        let e = make_entity(text, "PER", 1, 7).unwrap();
        assert_eq!((e.text.as_str(), e.start, e.end), ("é  Zoë", 0, 8));
        let e = make_entity(text, "X", 2, 9).unwrap();
        assert_eq!((e.text.as_str(), e.start, e.end, e.kind.as_str()), ("Zoë", 4, 8, "x"));
        assert!(make_entity(text, "PER", 2, 4).is_none());
        assert!(make_entity(text, "PER", 50, 60).is_none());
    }

    #[test]
    fn overlapping_windows_keep_the_most_central_prediction() {
        let token = |i: usize, label: usize| Token {
            start: i * 2,
            end: i * 2 + 1,
            word: Some(i as u32),
            label: Some(label),
        };
        let mut merged = Merged::default();
        // Window A: tokens 0..6 labelled 1; window B: tokens 3..9 labelled 2.
        merged.add_window(&(0..6).map(|i| token(i, 1)).collect::<Vec<_>>());
        merged.add_window(&(3..9).map(|i| token(i, 2)).collect::<Vec<_>>());
        let labels: Vec<_> = merged.into_tokens().iter().map(|t| t.label.unwrap()).collect();
        // Token 3: A has 2 tokens right of it, B none left; token 4: 1 each, A (earlier) wins;
        // token 5: B.
        assert_eq!(labels, vec![1, 1, 1, 1, 1, 2, 2, 2, 2]);
        // Tokens with the same span (a character split into byte-level pieces) stay apart.
        let mut merged = Merged::default();
        merged.add_window(&[token(0, 1), token(0, 2), token(1, 0)]);
        let labels: Vec<_> = merged.into_tokens().iter().map(|t| t.label.unwrap()).collect();
        assert_eq!(labels, vec![1, 2, 0]);
    }

    #[test]
    fn best_label_is_a_softmax_argmax() {
        let (label, p) = best_label(&[0.0, 2.0, 1.0]);
        assert_eq!(label, 1);
        let expected = 1.0 / (1.0 + (-2.0_f32).exp() + (-1.0_f32).exp());
        assert!((p - expected).abs() < 1e-6, "{p}");
        assert_eq!(best_label(&[3.0, 3.0]).0, 0);
        assert_eq!(best_label(&[f32::NAN, f32::NAN]), (0, 0.0));
        assert_eq!(best_label(&[]), (0, 0.0));
    }

    #[test]
    fn id2label_must_be_complete_indices() {
        let parse = |s: &str| parse_id2label(Some(&serde_json::from_str(s).unwrap()));
        assert_eq!(parse(r#"{"1": "B-PER", "0": "O"}"#).unwrap(), vec!["O", "B-PER"]);
        assert!(parse(r#"{"0": "O", "2": "B-PER"}"#).unwrap_err().contains("\"2\""));
        assert!(parse(r#"{"0": "O", "x": "B-PER"}"#).unwrap_err().contains("\"x\""));
        assert!(parse(r#"{"0": 3}"#).unwrap_err().contains("non-empty string"));
        assert!(parse(r#"{}"#).unwrap_err().contains("empty"));
        assert!(parse(r#"["O"]"#).unwrap_err().contains("object"));
        assert!(parse_id2label(None).unwrap_err().contains("no id2label"));
    }

    #[test]
    fn config_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let err = read_config(&path).unwrap_err();
        assert!(matches!(&err, NlpError::Model { path: p, reason } if p == &path && reason.contains("missing")));
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(read_config(&path).unwrap_err(), NlpError::Model { reason, .. } if reason.contains("JSON")));
        std::fs::write(&path, r#"{"id2label": {"0": "O"}, "max_position_embeddings": -3}"#).unwrap();
        let err = read_config(&path).unwrap_err();
        assert!(matches!(err, NlpError::Model { reason, .. } if reason.contains("max_position_embeddings")));
        std::fs::write(&path, r#"{"id2label": {"0": "O", "1": "B-PER"}}"#).unwrap();
        let config = read_config(&path).unwrap();
        assert_eq!((config.labels.len(), config.max_length), (2, DEFAULT_MAX_LENGTH));
    }

    #[test]
    fn tokenizer_config_limits_only_when_sensible() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer_config.json");
        assert_eq!(tokenizer_max_length(&path), None);
        std::fs::write(&path, r#"{"model_max_length": 512}"#).unwrap();
        assert_eq!(tokenizer_max_length(&path), Some(512));
        std::fs::write(&path, r#"{"model_max_length": 1e30}"#).unwrap();
        assert_eq!(tokenizer_max_length(&path), None);
    }

    #[test]
    fn kinds_map_conll_types() {
        assert_eq!(entity_kind("PER"), "person");
        assert_eq!(entity_kind("ORG"), "organization");
        assert_eq!(entity_kind("LOC"), "location");
        assert_eq!(entity_kind("MISC"), "misc");
        assert_eq!(entity_kind("PERSON"), "person");
        assert_eq!(entity_kind("GPE"), "gpe");
    }

    #[test]
    fn token_classifier_is_send_sync_debug() {
        fn check<T: Send + Sync + fmt::Debug>() {}
        check::<TokenClassifier>();
    }
}
