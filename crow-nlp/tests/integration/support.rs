//! Shared helpers: where the models are.

#![allow(dead_code)]

use std::path::PathBuf;

/// The models directory: `CROW_MODELS`, else `<workspace>/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("CROW_MODELS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"),
    }
}

/// `Some(models_dir)` when `file` (relative to it) exists. Otherwise panics when
/// CROW_REQUIRE_MODELS=1, else prints why the test is skipped and returns `None`.
pub fn require(file: &str) -> Option<PathBuf> {
    let dir = models_dir();
    if dir.join(file).exists() {
        return Some(dir);
    }
    if std::env::var("CROW_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!("{} is missing: run `make models`", dir.join(file).display());
    }
    eprintln!("skipped: {} is missing (run `make models`)", dir.join(file).display());
    None
}
