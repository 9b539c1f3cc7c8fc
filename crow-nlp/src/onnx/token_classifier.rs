//! TEMPORARY STUB.
#![allow(missing_docs, dead_code)]
use std::path::Path;

use crate::error::{NlpError, Result};
use crow_core::ports::Entity;

#[derive(Debug)]
pub struct TokenClassifier {}
impl TokenClassifier {
    pub fn load(_lib: &Path, dir: &Path) -> Result<Self> {
        Err(NlpError::missing(dir))
    }
    pub fn find_batch(&self, _t: &[&str]) -> Result<Vec<Vec<Entity>>> {
        Ok(vec![])
    }
}
