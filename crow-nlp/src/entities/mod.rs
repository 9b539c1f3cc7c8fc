//! PLACEHOLDER — being written (entities).
use crow_core::ports::Entity;

/// One catalog term.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Term {
    /// The name as written in the catalog.
    pub text: String,
    /// `product`, `brand` or `competitor`.
    pub kind: String,
    /// The product id, for products.
    pub product_id: Option<String>,
}

/// Catalog gazetteer.
#[derive(Debug, Default)]
pub struct Gazetteer {}

impl Gazetteer {
    /// Builds from terms.
    pub fn new(_terms: Vec<Term>) -> Self {
        Gazetteer {}
    }
    /// Finds terms in a text.
    pub fn find(&self, _text: &str) -> Vec<Entity> {
        Vec::new()
    }
    /// Number of terms.
    pub fn len(&self) -> usize {
        0
    }
    /// No terms.
    pub fn is_empty(&self) -> bool {
        true
    }
}

/// Pattern entities.
pub fn find_patterns(_text: &str) -> Vec<Entity> {
    Vec::new()
}

/// Merges entity lists: sorted by start, overlaps resolved (longest wins, earlier list on ties).
pub fn merge(lists: Vec<Vec<Entity>>) -> Vec<Entity> {
    lists.into_iter().flatten().collect()
}
