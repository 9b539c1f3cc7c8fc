//! crow-nlp's integration tests. Tests that need `make models` skip with a message when the files
//! are absent, unless CROW_REQUIRE_MODELS=1 (set by `make test`), where they fail instead.

mod analyzer;
mod embedder;
mod support;
#[cfg(feature = "onnx")]
mod token_classifier;
mod vader;
