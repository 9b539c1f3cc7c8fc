//! TEMPORARY STUB (replaced by the real embedder).
#![allow(missing_docs, dead_code)]
use std::path::{Path, PathBuf};

use crate::error::{NlpError, Result};

#[derive(Debug, Clone, Copy)]
pub struct EmbedderOptions {
    pub intra_threads: usize,
    pub batch_size: usize,
    pub max_tokens: usize,
}
impl Default for EmbedderOptions {
    fn default() -> Self {
        EmbedderOptions {
            intra_threads: 0,
            batch_size: 32,
            max_tokens: 256,
        }
    }
}
#[derive(Debug)]
pub struct OnnxEmbedder {
    dir: PathBuf,
}
impl OnnxEmbedder {
    pub fn load(_lib: &Path, dir: &Path, _o: EmbedderOptions) -> Result<Self> {
        Err(NlpError::missing(dir))
    }
    pub fn dim(&self) -> usize {
        384
    }
    pub fn embed(&self, _t: &[&str]) -> Result<Vec<Vec<f32>>> {
        Err(NlpError::Runtime("stub".into()))
    }
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }
}
