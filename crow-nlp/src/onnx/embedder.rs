//! Sentence embeddings from an ONNX model: tokenize, run, mean-pool over the attention mask,
//! L2-normalize.
//!
//! Any model directory in the Hugging Face layout works: `model.onnx` (a BERT-like encoder whose
//! inputs are some of `input_ids`, `attention_mask`, `token_type_ids`, int64 `[batch, seq]`, and
//! whose output `last_hidden_state` (or first output) is `[batch, seq, hidden]`), `tokenizer.json`
//! and an optional `config.json` (its `hidden_size` gives the dimension).
//!
//! Texts are tokenized in windows of a few batches, sorted by token count inside a window, split
//! into batches of [`EmbedderOptions::batch_size`], and each batch is padded only to its own
//! longest text, so short texts do not pay for long ones. A batch of long texts holds fewer
//! texts, at most 2,048 word pieces with padding, which bounds ONNX Runtime's working memory.
//! Results come back in input order.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorElementType, TensorRef};
use tokenizers::utils::truncation::{TruncationParams, TruncationStrategy};
use tokenizers::{Encoding, PostProcessor, Tokenizer};

use crate::config::NlpConfig;
use crate::error::{NlpError, Result};
use crate::onnx::{InputKind, model_inputs, runtime};

/// A text is cut to its first `max_tokens * BYTES_PER_TOKEN` bytes before tokenizing, bounding the
/// cost of huge inputs. English averages 4–6 bytes per word piece, so the cut only ever drops text
/// that truncation to `max_tokens` word pieces would drop anyway (bar pathological inputs such as
/// thousands of bytes without a word break).
const BYTES_PER_TOKEN: usize = 24;
/// How far back from the cut a word break is looked for, so the cut does not split a word
/// (WordPiece turns words over 100 chars into one `[UNK]` anyway).
const WORD_BACKOFF: usize = 100;
/// Texts tokenized (and sorted by length) together: this many batches at most.
const BATCHES_PER_WINDOW: usize = 32;
/// Word pieces (padding included) in one batch at most: a batch of long texts holds fewer than
/// `batch_size` texts, bounding ONNX Runtime's working memory (which grows with batch × length,
/// and with its square in attention).
const MAX_BATCH_TOKENS: usize = 2048;
/// Never fewer texts than this in a sort window (batch size 1 still sorts, cheaply).
const MIN_WINDOW: usize = 256;

/// How an [`OnnxEmbedder`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedderOptions {
    /// Sessions run in parallel threads, each on its own share of the batches (default 1; 0:
    /// one per core, at most 4). Small batches leave cores idle inside one session, so two
    /// sessions side by side embed 1.1–1.5× more texts per second on 2 cores than one session
    /// with two threads — but each session holds its own copy of the optimized model, about
    /// 110 MB more memory (BENCHMARKS.md).
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session; 0: one when several sessions run, else ONNX
    /// Runtime's default (one per physical core).
    pub intra_threads: usize,
    /// Texts per inference batch (at least 1). A batch of long texts holds fewer, so that it
    /// stays within 2,048 word pieces with padding (one text always fits).
    pub batch_size: usize,
    /// Word pieces per text, special tokens included; longer texts are truncated.
    pub max_tokens: usize,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        EmbedderOptions {
            sessions: 1,
            intra_threads: 0,
            batch_size: 32,
            max_tokens: 256,
        }
    }
}

impl From<&NlpConfig> for EmbedderOptions {
    fn from(config: &NlpConfig) -> Self {
        EmbedderOptions {
            sessions: config.sessions,
            intra_threads: config.intra_threads,
            batch_size: config.batch_size,
            max_tokens: config.max_tokens,
        }
    }
}

/// The session and the input buffers it is fed from, reused across batches.
#[derive(Debug)]
struct Runner {
    session: Session,
    ids: Vec<i64>,
    mask: Vec<i64>,
    type_ids: Vec<i64>,
}

impl Runner {
    fn new(session: Session) -> Self {
        Runner {
            session,
            ids: Vec::new(),
            mask: Vec::new(),
            type_ids: Vec::new(),
        }
    }
}

/// A sentence embedder over an ONNX model (e.g. all-MiniLM-L6-v2): one L2-normalized vector per
/// text, mean-pooled over the attention mask like sentence-transformers.
///
/// Texts longer than [`max_tokens`](EmbedderOptions::max_tokens) word pieces are truncated (and a
/// huge text is first cut to a prefix of about `max_tokens * 24` bytes, so a megabyte of text
/// costs no more than a paragraph). An empty text is embedded as the model embeds it: the
/// vector of `[CLS] [SEP]`.
///
/// The embedder is `Send + Sync`; one inference runs at a time (ONNX Runtime's session is not
/// reentrant), each using `intra_threads` threads. Inference is CPU-bound and synchronous: in
/// an async server, call [`embed`](OnnxEmbedder::embed) from a blocking task.
///
/// ```no_run
/// use std::path::Path;
/// use crow_nlp::onnx::{EmbedderOptions, OnnxEmbedder};
///
/// # fn main() -> crow_nlp::Result<()> {
/// let embedder = OnnxEmbedder::load(
///     Path::new("models/onnxruntime/libonnxruntime.so.1.32.0"),
///     Path::new("models/all-MiniLM-L6-v2"),
///     EmbedderOptions::default(),
/// )?;
/// let vectors = embedder.embed(&["The parcel came late.", "Delivery was slow."])?;
/// assert_eq!(vectors.len(), 2);
/// assert_eq!(vectors[0].len(), embedder.dim());
/// let cosine: f32 = vectors[0].iter().zip(&vectors[1]).map(|(a, b)| a * b).sum();
/// assert!(cosine > 0.5);
/// # Ok(())
/// # }
/// ```
pub struct OnnxEmbedder {
    /// One runner per session; batches are spread over them.
    runners: Vec<Mutex<Runner>>,
    tokenizer: Tokenizer,
    /// The model's inputs, by name, in the order the session declares them.
    inputs: Vec<(String, InputKind)>,
    output: String,
    dim: usize,
    pad_id: i64,
    pad_type_id: i64,
    options: EmbedderOptions,
    model_dir: PathBuf,
}

impl fmt::Debug for OnnxEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnnxEmbedder")
            .field("model_dir", &self.model_dir)
            .field("dim", &self.dim)
            .field("inputs", &self.inputs)
            .field("output", &self.output)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl OnnxEmbedder {
    /// Loads the model in `model_dir` (`model.onnx`, `tokenizer.json`, optional `config.json`)
    /// on the ONNX Runtime library at `ort_library`.
    ///
    /// Errors: a missing file is [`NlpError::ModelNotFound`] naming it; a file that cannot be
    /// used (unreadable JSON, a model without the expected inputs and outputs, a dimension that
    /// disagrees with `config.json`) is [`NlpError::Model`]; `batch_size` 0 or a `max_tokens`
    /// too small for the special tokens (or over the model's `max_position_embeddings`) is
    /// [`NlpError::InvalidInput`]; a library that fails to load is [`NlpError::Runtime`].
    pub fn load(ort_library: &Path, model_dir: &Path, options: EmbedderOptions) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(NlpError::InvalidInput("batch_size must be at least 1".into()));
        }
        let model_path = model_dir.join("model.onnx");
        let tokenizer_path = model_dir.join("tokenizer.json");
        let config_path = model_dir.join("config.json");
        for path in [&model_path, &tokenizer_path] {
            if !path.is_file() {
                return Err(NlpError::missing(path));
            }
        }
        let config = ModelConfig::read(&config_path)?;
        if let Some(max_positions) = config.max_position_embeddings
            && options.max_tokens > max_positions
        {
            return Err(NlpError::InvalidInput(format!(
                "max_tokens {} exceeds the model's max_position_embeddings {max_positions} ({})",
                options.max_tokens,
                config_path.display()
            )));
        }

        let (tokenizer, pad_id, pad_type_id) = load_tokenizer(&tokenizer_path, options.max_tokens, &config)?;
        let sessions = match options.sessions {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
            n => n,
        };
        let intra_threads = match options.intra_threads {
            0 if sessions > 1 => 1,
            n => n,
        };
        let session = build_session(ort_library, &model_path, intra_threads)?;
        let model_error = |reason: String| NlpError::Model {
            path: model_path.clone(),
            reason,
        };

        let inputs = model_inputs(&session, &model_path, "an embedding model")?;

        let outlet = session
            .outputs()
            .iter()
            .find(|o| o.name() == "last_hidden_state")
            .or_else(|| session.outputs().first())
            .ok_or_else(|| model_error("the model has no outputs".into()))?;
        if outlet.dtype().tensor_type() != Some(TensorElementType::Float32) {
            return Err(model_error(format!(
                "output `{}` is {}, expected a float32 [batch, seq, hidden] tensor",
                outlet.name(),
                outlet.dtype()
            )));
        }
        let output = outlet.name().to_owned();
        let declared_dim = match outlet.dtype().tensor_shape() {
            Some(shape) if shape.len() != 3 => {
                return Err(model_error(format!(
                    "output `{output}` has {} dimensions, expected [batch, seq, hidden]",
                    shape.len()
                )));
            }
            Some(shape) => usize::try_from(shape[2]).ok().filter(|&d| d > 0),
            None => None,
        };
        let dim = match (config.hidden_size, declared_dim) {
            (Some(a), Some(b)) if a != b => {
                return Err(NlpError::Model {
                    path: config_path,
                    reason: format!("hidden_size {a} disagrees with the model's output dimension {b}"),
                });
            }
            (Some(d), _) | (None, Some(d)) => d,
            (None, None) => 0, // found out by a first run below
        };

        let mut runners = vec![Mutex::new(Runner::new(session))];
        for _ in 1..sessions {
            runners.push(Mutex::new(Runner::new(build_session(
                ort_library,
                &model_path,
                intra_threads,
            )?)));
        }
        let mut embedder = OnnxEmbedder {
            runners,
            tokenizer,
            inputs,
            output,
            dim,
            pad_id,
            pad_type_id,
            options,
            model_dir: model_dir.to_path_buf(),
        };
        if embedder.dim == 0 {
            let probe = embedder.embed(&["dimension probe"])?;
            embedder.dim = probe.first().map_or(0, Vec::len);
            if embedder.dim == 0 {
                return Err(model_error(format!(
                    "output `{}` has a zero hidden dimension",
                    embedder.output
                )));
            }
        }
        tracing::debug!(
            model = %model_dir.display(),
            dim = embedder.dim,
            batch_size = options.batch_size,
            max_tokens = options.max_tokens,
            intra_threads = options.intra_threads,
            "loaded ONNX embedder"
        );
        Ok(embedder)
    }

    /// The vector length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The model directory this embedder was loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }

    /// The options it runs with.
    pub fn options(&self) -> EmbedderOptions {
        self.options
    }

    /// Embeds `texts`: one L2-normalized vector of length [`dim`](Self::dim) per text, in order.
    ///
    /// Texts longer than `max_tokens` word pieces are truncated; an empty text gets the
    /// embedding of `[CLS] [SEP]`. Errors are [`NlpError::Runtime`] (the tokenizer or ONNX
    /// Runtime failed); no input panics.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = vec![Vec::new(); texts.len()];
        if texts.is_empty() {
            return Ok(out);
        }
        let batch_size = self.options.batch_size;
        let window = batch_size.saturating_mul(BATCHES_PER_WINDOW).max(MIN_WINDOW);
        let byte_limit = self.options.max_tokens.saturating_mul(BYTES_PER_TOKEN);
        for (w, chunk) in texts.chunks(window).enumerate() {
            let clipped: Vec<&str> = chunk.iter().map(|t| clip(t, byte_limit)).collect();
            let encodings = self
                .tokenizer
                .encode_batch_fast(clipped, true)
                .map_err(|e| NlpError::Runtime(format!("tokenizing: {e}")))?;
            let mut order: Vec<usize> = (0..encodings.len()).collect();
            order.sort_by_key(|&i| encodings[i].len());
            let mut batches: Vec<&[usize]> = Vec::new();
            let mut rest = &order[..];
            while !rest.is_empty() {
                let take = batch_len(rest, batch_size, |i| encodings[i].len());
                let (batch, tail) = rest.split_at(take);
                batches.push(batch);
                rest = tail;
            }
            // Tokenizing ran unlocked: another caller's inference may overlap it.
            for (batch, vectors) in self.run_batches(&batches, &encodings)? {
                for (&i, v) in batch.iter().zip(vectors) {
                    out[w * window + i] = v;
                }
            }
        }
        Ok(out)
    }

    /// Runs the batches on the sessions, in parallel threads when there are several of both;
    /// returns each batch with its vectors (in any order).
    #[allow(clippy::type_complexity)]
    fn run_batches<'b>(
        &self,
        batches: &[&'b [usize]],
        encodings: &[Encoding],
    ) -> Result<Vec<(&'b [usize], Vec<Vec<f32>>)>> {
        let run = |runner: &Mutex<Runner>, batch: &'b [usize]| -> Result<(&'b [usize], Vec<Vec<f32>>)> {
            let rows: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
            let mut runner = runner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            Ok((batch, self.run_batch(&mut runner, &rows)?))
        };
        let workers = self.runners.len().min(batches.len());
        if workers <= 1 {
            return batches.iter().map(|b| run(&self.runners[0], b)).collect();
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let handles: Vec<_> = self.runners[..workers]
                .iter()
                .map(|runner| {
                    let (next, run) = (&next, &run);
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        loop {
                            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(batch) = batches.get(k) else { break };
                            done.push(run(runner, batch)?);
                        }
                        Ok::<_, NlpError>(done)
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(batches.len());
            for h in handles {
                let done = h
                    .join()
                    .map_err(|_| NlpError::Runtime("an inference thread panicked".into()))??;
                all.extend(done);
            }
            Ok(all)
        })
    }

    /// Runs one batch, padded to its longest encoding; returns one normalized vector per row.
    fn run_batch(&self, runner: &mut Runner, rows: &[&Encoding]) -> Result<Vec<Vec<f32>>> {
        let batch = rows.len();
        let seq = rows.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let Runner {
            session,
            ids,
            mask,
            type_ids,
        } = runner;
        ids.clear();
        mask.clear();
        type_ids.clear();
        for row in rows {
            let n = row.len();
            ids.extend(row.get_ids().iter().map(|&x| i64::from(x)));
            ids.resize(ids.len() + (seq - n), self.pad_id);
            mask.resize(mask.len() + n, 1);
            mask.resize(mask.len() + (seq - n), 0);
            type_ids.extend(row.get_type_ids().iter().map(|&x| i64::from(x)));
            type_ids.resize(type_ids.len() + (seq - n), self.pad_type_id);
        }

        let shape = [batch, seq];
        let mut feed = Vec::with_capacity(self.inputs.len());
        for (name, kind) in &self.inputs {
            let data = match kind {
                InputKind::Ids => &ids[..],
                InputKind::Mask => &mask[..],
                InputKind::TypeIds => &type_ids[..],
            };
            let tensor = TensorRef::from_array_view((shape, data))
                .map_err(|e| NlpError::Runtime(format!("building input `{name}`: {e}")))?;
            feed.push((name.as_str(), tensor));
        }
        let outputs = session
            .run(feed)
            .map_err(|e| NlpError::Runtime(format!("running {}: {e}", self.model_dir.display())))?;
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| NlpError::Runtime(format!("the model returned no `{}`", self.output)))?;
        let (out_shape, hidden) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| NlpError::Runtime(format!("reading `{}`: {e}", self.output)))?;
        let dims: Vec<usize> = out_shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
        let width = match dims[..] {
            [b, s, h]
                if b == batch
                    && s == seq
                    && h > 0
                    && (self.dim == 0 || h == self.dim)
                    && hidden.len() == batch * seq * h =>
            {
                h
            }
            _ => {
                return Err(NlpError::Runtime(format!(
                    "`{}` has shape {dims:?}, expected [{batch}, {seq}, {}]",
                    self.output,
                    if self.dim == 0 {
                        "hidden".to_string()
                    } else {
                        self.dim.to_string()
                    }
                )));
            }
        };
        Ok(rows
            .iter()
            .enumerate()
            .map(|(b, row)| {
                let start = b * seq * width;
                mean_pool_normalized(&hidden[start..start + seq * width], width, row.len())
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl crow_core::ports::Embedder for OnnxEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    async fn embed(&self, texts: &[String]) -> crow_core::Result<Vec<Vec<f32>>> {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(OnnxEmbedder::embed(self, &texts)?)
    }
}

/// What `config.json` says, when present.
#[derive(Debug, Default)]
struct ModelConfig {
    hidden_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    pad_token_id: Option<u32>,
}

impl ModelConfig {
    fn read(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ModelConfig::default()),
            Err(source) => {
                return Err(NlpError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let invalid = |reason: String| NlpError::Model {
            path: path.to_path_buf(),
            reason,
        };
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let field = |name: &str| -> Result<Option<usize>> {
            match json.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| invalid(format!("`{name}` is {v}, expected a non-negative integer"))),
            }
        };
        let hidden_size = field("hidden_size")?;
        if hidden_size == Some(0) {
            return Err(invalid("`hidden_size` is 0".into()));
        }
        Ok(ModelConfig {
            hidden_size,
            max_position_embeddings: field("max_position_embeddings")?,
            pad_token_id: field("pad_token_id")?.and_then(|n| u32::try_from(n).ok()),
        })
    }
}

/// Loads `tokenizer.json`, clears its padding (batches are padded here, each to its own longest
/// text) and sets truncation to `max_tokens`. Returns it with the pad id and pad type id.
fn load_tokenizer(path: &Path, max_tokens: usize, config: &ModelConfig) -> Result<(Tokenizer, i64, i64)> {
    let invalid = |reason: String| NlpError::Model {
        path: path.to_path_buf(),
        reason,
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| invalid(e.to_string()))?;
    let (pad_id, pad_type_id) = match tokenizer.get_padding() {
        Some(p) => (p.pad_id, p.pad_type_id),
        None => (
            tokenizer
                .token_to_id("[PAD]")
                .or_else(|| tokenizer.token_to_id("<pad>"))
                .or(config.pad_token_id)
                .unwrap_or(0),
            0,
        ),
    };
    tokenizer.with_padding(None);
    let special = tokenizer.get_post_processor().map_or(0, |p| p.added_tokens(false));
    if max_tokens <= special {
        return Err(NlpError::InvalidInput(format!(
            "max_tokens {max_tokens} leaves no room for text beside the {special} special tokens"
        )));
    }
    let truncation = TruncationParams {
        max_length: max_tokens,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
        ..TruncationParams::default()
    };
    tokenizer
        .with_truncation(Some(truncation))
        .map_err(|e| invalid(format!("setting truncation: {e}")))?;
    Ok((tokenizer, i64::from(pad_id), i64::from(pad_type_id)))
}

fn build_session(ort_library: &Path, model_path: &Path, intra_threads: usize) -> Result<Session> {
    let env = runtime::environment(ort_library)?;
    let runtime_error = |e: ort::Error<ort::session::builder::SessionBuilder>| {
        NlpError::Runtime(format!("configuring a session for {}: {e}", model_path.display()))
    };
    let mut builder = Session::builder(env)
        .map_err(|e| NlpError::Runtime(format!("creating a session: {e}")))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(runtime_error)?;
    if intra_threads > 0 {
        builder = builder.with_intra_threads(intra_threads).map_err(runtime_error)?;
    }
    // Input shapes change with every batch: a memory pattern cached per shape only grows the
    // arena (measured: +60 MB per pass over 3,000 texts at batch 32, never given back).
    builder = builder.with_memory_pattern(false).map_err(runtime_error)?;

    builder.commit_from_file(model_path).map_err(|e| NlpError::Model {
        path: model_path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// How many of `sorted` (text indices in ascending token count) go into the next batch: up to
/// `batch_size`, and no more than fit [`MAX_BATCH_TOKENS`] once padded to the longest (the last);
/// always at least one.
fn batch_len(sorted: &[usize], batch_size: usize, tokens: impl Fn(usize) -> usize) -> usize {
    let mut n = 1;
    while n < batch_size.min(sorted.len()) && (n + 1) * tokens(sorted[n]) <= MAX_BATCH_TOKENS {
        n += 1;
    }
    n
}

/// `text` cut to at most `limit` bytes, on a char boundary, backing off to a word break when one
/// is near.
fn clip(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let cut = &text[..text.floor_char_boundary(limit)];
    let floor = cut.len().saturating_sub(WORD_BACKOFF);
    match cut.rfind(char::is_whitespace) {
        Some(at) if at >= floor && at > 0 => &cut[..at],
        _ => cut,
    }
}

/// The mean of the first `len` rows of `hidden` (rows of `width` floats: the unpadded tokens),
/// L2-normalized.
fn mean_pool_normalized(hidden: &[f32], width: usize, len: usize) -> Vec<f32> {
    let mut sum = vec![0f32; width];
    for token in hidden.chunks_exact(width).take(len) {
        for (s, x) in sum.iter_mut().zip(token) {
            *s += x;
        }
    }
    // Dividing by the token count before normalizing does not change the direction; it is kept
    // so the arithmetic matches sentence-transformers' (sum / count, then x / max(|x|, 1e-12)).
    let count = len.max(1) as f32;
    for s in &mut sum {
        *s /= count;
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for s in &mut sum {
        *s /= norm;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedder_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<OnnxEmbedder>();
    }

    #[test]
    fn options_default_and_follow_the_config() {
        let d = EmbedderOptions::default();
        assert_eq!((d.intra_threads, d.batch_size, d.max_tokens), (0, 32, 256));
        let config = NlpConfig {
            intra_threads: 2,
            batch_size: 8,
            max_tokens: 128,
            ..NlpConfig::default()
        };
        assert_eq!(
            EmbedderOptions::from(&config),
            EmbedderOptions {
                sessions: 1,
                intra_threads: 2,
                batch_size: 8,
                max_tokens: 128
            }
        );
    }

    #[test]
    fn clip_keeps_short_texts_and_cuts_on_char_and_word_boundaries() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("", 0), "");
        // 'é' is two bytes: a cut at 3 would split it.
        assert_eq!(clip("aéé", 4), "aé");
        assert_eq!(clip("hello world again", 13), "hello world");
        let long_word = "x".repeat(500);
        assert_eq!(clip(&long_word, 300).len(), 300);
        // A word break far from the cut is not used.
        let text = format!("a {}", "y".repeat(500));
        assert_eq!(clip(&text, 300).len(), 300);
        // Every cut is valid UTF-8 whatever the limit.
        let mixed = "日本語のテキスト and more 😀 text ".repeat(20);
        for limit in 0..mixed.len() {
            assert!(clip(&mixed, limit).len() <= limit);
        }
    }

    #[test]
    fn batches_are_cut_by_count_and_by_padded_tokens() {
        let lens = [3usize, 5, 5, 8, 60, 100, 300, 900, 1200];
        let order: Vec<usize> = (0..lens.len()).collect();
        let len = |i: usize| lens[i];
        assert_eq!(batch_len(&order, 2, len), 2);
        assert_eq!(batch_len(&order, 32, len), 6); // 6 × 100 fits in 2,048, 7 × 300 does not
        assert_eq!(batch_len(&order[5..], 32, len), 2); // 2 × 300 fits, 3 × 900 does not
        assert_eq!(batch_len(&order[7..], 32, len), 1); // 2 × 1,200 does not fit
        assert_eq!(batch_len(&[0], 1, len), 1);
        // A single text over the budget still forms a batch of one.
        assert_eq!(batch_len(&[0, 1], 8, |_| 5000), 1);
    }

    #[test]
    fn mean_pool_ignores_padding_and_normalizes() {
        // Two real tokens, one padding row that must not count.
        let hidden = [1.0, 0.0, 3.0, 0.0, 100.0, 100.0];
        let v = mean_pool_normalized(&hidden, 2, 2);
        assert_eq!(v, vec![1.0, 0.0]);
        let v = mean_pool_normalized(&[3.0, 4.0], 2, 1);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        // All zeros stays finite.
        let v = mean_pool_normalized(&[0.0, 0.0], 2, 1);
        assert_eq!(v, vec![0.0, 0.0]);
    }

    #[test]
    fn model_config_reads_the_fields_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert!(ModelConfig::read(&path).unwrap().hidden_size.is_none());
        std::fs::write(
            &path,
            r#"{"hidden_size": 384, "max_position_embeddings": 512, "pad_token_id": 0}"#,
        )
        .unwrap();
        let c = ModelConfig::read(&path).unwrap();
        assert_eq!(
            (c.hidden_size, c.max_position_embeddings, c.pad_token_id),
            (Some(384), Some(512), Some(0))
        );
        std::fs::write(&path, r#"{"hidden_size": "big"}"#).unwrap();
        assert!(matches!(ModelConfig::read(&path), Err(NlpError::Model { .. })));
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(ModelConfig::read(&path), Err(NlpError::Model { .. })));
    }

    #[test]
    fn load_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = OnnxEmbedder::load(
            Path::new("/nonexistent/libonnxruntime.so"),
            dir.path(),
            EmbedderOptions::default(),
        )
        .unwrap_err();
        match err {
            NlpError::ModelNotFound { path, .. } => assert_eq!(path, dir.path().join("model.onnx")),
            other => panic!("{other:?}"),
        }
        let err = OnnxEmbedder::load(
            Path::new("/nonexistent/libonnxruntime.so"),
            dir.path(),
            EmbedderOptions {
                batch_size: 0,
                ..EmbedderOptions::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, NlpError::InvalidInput(_)), "{err:?}");
    }
}
