//! # crow-python: `import crow`
//!
//! CROW's Python bindings, a thin [pyo3] layer over the crates (DESIGN.md §3.6): each Python
//! module of the API is one `.rs` file here that converts arguments, calls one crate function and
//! converts the result back. Nothing in this crate decides anything about the domain.
//!
//! | Python | Rust |
//! |---|---|
//! | `crow.Store(path)` (orgs, interactions, sessions, mentions, frame events, `create_org`, `ingest`) | [`store`]: `crow_server::Backends` (the CLI's way of opening a data directory), `crow_ingest::IngestService::import`, the workflows |
//! | `crow.analyze`, `crow.embed`, `crow.train_head`, `crow.Head` | [`nlp`]: `crow_nlp::Analyzer`, `OnnxEmbedder`, `crow_nlp::head` |
//! | `crow.VectorIndex` | [`vectors`]: `crow_store::vector::HnswIndex` |
//! | `crow.blur_faces`, `crow.MotionDetector` | [`vision`]: `crow_vision::detect::CenterFace`, `crow_core::video::MaskedFrame`, `crow_vision::motion` |
//! | `crow.scrub` | [`privacy`]: `crow_core::privacy::Scrubber` |
//! | `crow.CrowError` and subclasses | [`error`]: every crate error enum mapped in one place |
//!
//! The native module is the private `crow._crow`; `python/crow/__init__.py` re-exports it with
//! `.pyi` stubs and `py.typed` (checked by `mypy.stubtest` in the test suite).
//!
//! ## Threads
//! Every call that does real work (model inference, index build and search, masking, store reads
//! and writes) runs with the GIL released ([`Python::detach`]). The store's ports are async: they
//! run on one process-wide tokio runtime ([`runtime`]) through `block_on`, which any number of
//! Python threads may call at once.
//!
//! ## Arrays
//! numpy arrays come in as read-only views (`PyReadonlyArray`): their dtype, shape and
//! contiguity are checked (a [`error::ValidationError`] says what was expected) and the data is
//! read in place; results (embeddings, masked images) are moved into new arrays without a copy.
//!
//! ## Models
//! Functions that need models take `models=DIR`; without it the `CROW_MODELS` environment
//! variable, then `./models` (what `make models` prepares) are used, as the `crow` CLI does.
//! A missing file raises [`error::ModelNotFoundError`] naming it.

use std::path::PathBuf;
use std::sync::LazyLock;

use pyo3::prelude::*;

mod convert;
mod error;
mod nlp;
mod privacy;
mod store;
mod vectors;
mod vision;

/// The process's tokio runtime for the async ports (current-thread: `block_on` from any Python
/// thread; the store's reads run on its blocking pool).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime")
    });
    &RT
}

/// The models directory for a call: `models`, else `$CROW_MODELS`, else `./models`.
pub(crate) fn models_dir(models: Option<PathBuf>) -> PathBuf {
    models
        .or_else(|| {
            std::env::var_os("CROW_MODELS")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// The native module `crow._crow`.
#[pymodule]
fn _crow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CrowError", py.get_type::<error::CrowError>())?;
    m.add("ValidationError", py.get_type::<error::ValidationError>())?;
    m.add("ModelNotFoundError", py.get_type::<error::ModelNotFoundError>())?;
    m.add("ModelError", py.get_type::<error::ModelError>())?;
    m.add("StoreError", py.get_type::<error::StoreError>())?;
    m.add("UnavailableError", py.get_type::<error::UnavailableError>())?;
    store::register(m)?;
    nlp::register(m)?;
    vectors::register(m)?;
    vision::register(m)?;
    privacy::register(m)?;
    Ok(())
}
