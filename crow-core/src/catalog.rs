//! Catalog types beside [`Product`](crate::model::Product): categories, the product list
//! filters and what a bulk import did. The port is [`CatalogStore`](crate::ports::CatalogStore).

use serde::{Deserialize, Serialize};

use crate::model::Millis;

/// Longest category name, in characters.
pub const MAX_CATEGORY_NAME: usize = 200;

/// A product category of an org: a name, unique in the org, and an optional parent category
/// (categories form a forest: a parent always exists and no category is its own ancestor).
///
/// Products name their category in [`Product::category`](crate::model::Product::category);
/// storing a product whose category does not exist yet creates it (without a parent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Category {
    /// The name (1 to 200 characters), unique in the org; the category's id in the API.
    pub name: String,
    /// The parent category's name; absent for a top-level category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// When it was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
}

/// Filters for [`CatalogStore::query_products`](crate::ports::CatalogStore::query_products).
/// Results are ordered by sku; filters combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductQuery {
    /// Page size (`0` means 50; clamped to 1..=1000).
    pub limit: u32,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Only products of this category (exact name; subcategories are not included).
    pub category: Option<String>,
    /// Only products of this brand (exact).
    pub brand: Option<String>,
    /// Only products whose name starts with this, ASCII case-insensitively.
    pub name_prefix: Option<String>,
}

impl ProductQuery {
    /// True when `p` passes the filters (for backends that filter in memory).
    pub fn matches(&self, p: &crate::model::Product) -> bool {
        self.category.as_ref().is_none_or(|c| p.category.as_ref() == Some(c))
            && self.brand.as_ref().is_none_or(|b| p.brand.as_ref() == Some(b))
            && self.name_prefix.as_ref().is_none_or(|q| {
                p.name
                    .as_bytes()
                    .get(..q.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(q.as_bytes()))
            })
    }
}

/// What [`CatalogStore::import_products`](crate::ports::CatalogStore::import_products) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// Products whose sku was new to the org.
    pub inserted: usize,
    /// Products that existed and changed.
    pub updated: usize,
    /// Products that existed with the same content (left as stored, `updated_at` included).
    pub unchanged: usize,
    /// Ids of the inserted and updated products, in input order (what a search index must
    /// re-embed).
    pub changed: Vec<String>,
}
