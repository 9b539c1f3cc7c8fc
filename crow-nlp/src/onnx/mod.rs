//! The model tier: ONNX Runtime, loaded from a library file at run time (feature `onnx`).
//!
//! - [`runtime`]: loads the ONNX Runtime library once per process.
//! - [`OnnxEmbedder`]: sentence embeddings (mean-pooled, L2-normalized), an
//!   [`Embedder`](crow_core::ports::Embedder).
//! - [`TokenClassifier`]: a generic BIO token-classification (NER) runner.

pub mod embedder;
pub mod runtime;
pub mod token_classifier;

pub use embedder::{EmbedderOptions, OnnxEmbedder};
