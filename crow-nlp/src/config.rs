//! Where the models are, and how to run them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The ONNX Runtime library inside a models directory prepared by `make models`.
pub const ORT_LIBRARY: &str = "onnxruntime/libonnxruntime.so.1.32.0";
/// The sentence-embedding model directory inside a models directory.
pub const EMBEDDER_DIR: &str = "all-MiniLM-L6-v2";
/// The default sentiment head inside a models directory.
pub const SENTIMENT_HEAD: &str = "heads/sentiment.json";

/// Text-intelligence settings (the `[nlp]` table of `crow.toml`).
///
/// Every path defaults to its place under [`models_dir`](NlpConfig::models_dir); set one to use
/// your own model instead (any directory in the Hugging Face layout: `model.onnx`,
/// `tokenizer.json`, optional `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NlpConfig {
    /// The models directory (`make models` fills `./models`).
    pub models_dir: PathBuf,
    /// The ONNX Runtime shared library (default: `<models_dir>/onnxruntime/libonnxruntime.so.1.32.0`).
    pub onnxruntime: Option<PathBuf>,
    /// The sentence-embedding model directory (default: `<models_dir>/all-MiniLM-L6-v2`).
    pub embedder: Option<PathBuf>,
    /// The sentiment head (default: `<models_dir>/heads/sentiment.json`).
    pub sentiment_head: Option<PathBuf>,
    /// An optional token-classification (NER) model directory; none by default.
    pub ner: Option<PathBuf>,
    /// Inference sessions run side by side (0: one per core, at most 4). Each adds about 110 MB;
    /// two give 1.1–1.5× the embedding throughput of one on 2 cores.
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session (0: 1 with several sessions, else one per core).
    pub intra_threads: usize,
    /// Texts per inference batch.
    pub batch_size: usize,
    /// Tokens per text; longer texts are truncated (the model was trained on at most 256 word pieces).
    pub max_tokens: usize,
    /// Use the model tier when its files are present (false: the lexicon tier only).
    pub use_models: bool,
}

impl Default for NlpConfig {
    fn default() -> Self {
        NlpConfig {
            models_dir: PathBuf::from("models"),
            onnxruntime: None,
            embedder: None,
            sentiment_head: None,
            ner: None,
            sessions: 1,
            intra_threads: 0,
            batch_size: 32,
            max_tokens: 256,
            use_models: true,
        }
    }
}

impl NlpConfig {
    /// Defaults under `models_dir`.
    pub fn with_models_dir(models_dir: impl Into<PathBuf>) -> Self {
        NlpConfig {
            models_dir: models_dir.into(),
            ..NlpConfig::default()
        }
    }

    /// The ONNX Runtime library path. `ORT_DYLIB_PATH` in the environment wins over the default.
    pub fn onnxruntime_path(&self) -> PathBuf {
        if let Some(p) = &self.onnxruntime {
            return p.clone();
        }
        if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        self.models_dir.join(ORT_LIBRARY)
    }

    /// The embedding model directory.
    pub fn embedder_path(&self) -> PathBuf {
        self.embedder
            .clone()
            .unwrap_or_else(|| self.models_dir.join(EMBEDDER_DIR))
    }

    /// The sentiment head path.
    pub fn sentiment_head_path(&self) -> PathBuf {
        self.sentiment_head
            .clone()
            .unwrap_or_else(|| self.models_dir.join(SENTIMENT_HEAD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_default_under_the_models_dir() {
        let c = NlpConfig::with_models_dir("/m");
        assert_eq!(c.embedder_path(), PathBuf::from("/m/all-MiniLM-L6-v2"));
        assert_eq!(c.sentiment_head_path(), PathBuf::from("/m/heads/sentiment.json"));
        let own = NlpConfig {
            embedder: Some("/mine".into()),
            ..c
        };
        assert_eq!(own.embedder_path(), PathBuf::from("/mine"));
    }

    #[test]
    fn config_rejects_unknown_keys() {
        let err = serde_json::from_str::<NlpConfig>(r#"{"modles_dir": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
