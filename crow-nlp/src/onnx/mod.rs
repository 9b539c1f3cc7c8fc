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
pub use token_classifier::TokenClassifier;

use std::path::Path;

use ort::session::Session;
use ort::value::TensorElementType;

use crate::error::{NlpError, Result};

/// Which of a transformer encoder's standard inputs a model input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputKind {
    /// `input_ids`.
    Ids,
    /// `attention_mask`.
    Mask,
    /// `token_type_ids`.
    TypeIds,
}

/// The session's inputs in its order, each one of the three standard int64 inputs, `input_ids`
/// among them; anything else is [`NlpError::Model`] naming `model_path`. `what` names the kind of
/// model in the message ("an embedding model", "a token classifier").
pub(crate) fn model_inputs(session: &Session, model_path: &Path, what: &str) -> Result<Vec<(String, InputKind)>> {
    let model_error = |reason: String| NlpError::Model {
        path: model_path.to_path_buf(),
        reason,
    };
    let mut inputs = Vec::new();
    for input in session.inputs() {
        let kind = match input.name() {
            "input_ids" => InputKind::Ids,
            "attention_mask" => InputKind::Mask,
            "token_type_ids" => InputKind::TypeIds,
            other => {
                return Err(model_error(format!(
                    "unsupported input `{other}` ({what} takes input_ids, attention_mask and token_type_ids)"
                )));
            }
        };
        if input.dtype().tensor_type() != Some(TensorElementType::Int64) {
            return Err(model_error(format!(
                "input `{}` is {}, expected an int64 tensor",
                input.name(),
                input.dtype()
            )));
        }
        inputs.push((input.name().to_owned(), kind));
    }
    if !inputs.iter().any(|(_, kind)| *kind == InputKind::Ids) {
        return Err(model_error("the model has no `input_ids` input".into()));
    }
    Ok(inputs)
}
