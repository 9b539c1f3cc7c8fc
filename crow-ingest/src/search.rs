//! Semantic search over CROW's three vector indexes, and what goes into them.
//!
//! - [`Indexes`] bundles `interaction-embeddings`, `product-embeddings` and `social-embeddings`
//!   (any [`VectorIndex`]: the embedded HNSW natively, Vectorize in the Worker).
//! - [`interaction_record`] and [`product_record`] say what a record holds: the id, the metadata
//!   that filters use (`type`, `name`, `field`, `session_id`, `label`, `sentiment`, `ts`,
//!   `product_id`, `category`, `brand`, ...) and a short `snippet` of the text, so a hit shows
//!   what matched without another lookup. Texts are PII-scrubbed at ingest, before they get here.
//! - [`search`] embeds the query and asks one index, org-scoped; `crow search` and
//!   `GET /api/v1/search` both call it.
//!
//! ```
//! use std::sync::Arc;
//! use crow_core::testing::{BruteForceIndex, HashEmbedder};
//! use crow_core::vector::{IndexKind, MetadataFilter};
//! use crow_ingest::search::{Indexes, SearchRequest, search, product_record};
//! # futures::executor::block_on(async {
//! let embedder = HashEmbedder::new(32);
//! let indexes = Indexes::new(
//!     Arc::new(BruteForceIndex::new(32)),
//!     Arc::new(BruteForceIndex::new(32)),
//!     Arc::new(BruteForceIndex::new(32)),
//! );
//! let product: crow_core::model::Product = serde_json::from_value(serde_json::json!({
//!     "id": "prod_1", "org_id": "org_1", "sku": "TR-1", "name": "Trail running shoes",
//!     "updated_at": 0})).unwrap();
//! crow_ingest::search::index_products(&embedder, indexes.get(IndexKind::Products), "org_1", &[product])
//!     .await
//!     .unwrap();
//! let req = SearchRequest::new("trail running shoes", IndexKind::Products);
//! let hits = search(&indexes, &embedder, "org_1", &req).await.unwrap();
//! assert_eq!(hits[0].id, "prod_1");
//! assert_eq!(hits[0].snippet.as_deref(), Some("Trail running shoes"));
//! # });
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crow_core::model::{Interaction, Product, SocialMention};
use crow_core::ports::{Embedder, TextAnalysis, VectorIndex};
use crow_core::vector::{IndexKind, MAX_TOP_K, MetadataFilter, VectorQuery, VectorRecord};
use crow_core::{Error, Result};

/// Metadata key of the text snippet.
pub const SNIPPET: &str = "snippet";
/// Characters of text kept in a snippet.
pub const SNIPPET_CHARS: usize = 200;
/// Longest query text, in bytes.
pub const MAX_QUERY_BYTES: usize = 2048;

/// The three indexes.
#[derive(Clone)]
pub struct Indexes {
    interactions: Arc<dyn VectorIndex>,
    products: Arc<dyn VectorIndex>,
    social: Arc<dyn VectorIndex>,
}

impl std::fmt::Debug for Indexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexes")
            .field("interactions", self.interactions.info())
            .field("products", self.products.info())
            .field("social", self.social.info())
            .finish()
    }
}

impl Indexes {
    /// Bundles the three indexes.
    pub fn new(
        interactions: Arc<dyn VectorIndex>,
        products: Arc<dyn VectorIndex>,
        social: Arc<dyn VectorIndex>,
    ) -> Self {
        Indexes {
            interactions,
            products,
            social,
        }
    }

    /// One of them.
    pub fn get(&self, kind: IndexKind) -> &dyn VectorIndex {
        match kind {
            IndexKind::Interactions => self.interactions.as_ref(),
            IndexKind::Products => self.products.as_ref(),
            IndexKind::Social => self.social.as_ref(),
        }
    }

    /// Snapshots all three (see [`VectorIndex::persist`]).
    pub async fn persist(&self) -> Result<()> {
        for kind in IndexKind::ALL {
            self.get(kind).persist().await?;
        }
        Ok(())
    }
}

/// A search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The query text.
    pub query: String,
    /// Which index.
    pub index: IndexKind,
    /// How many hits (1..=100).
    pub k: usize,
    /// Metadata filter.
    pub filter: MetadataFilter,
}

impl SearchRequest {
    /// The top 10 of `index` for `query`, no filter.
    pub fn new(query: impl Into<String>, index: IndexKind) -> Self {
        SearchRequest {
            query: query.into(),
            index,
            k: 10,
            filter: MetadataFilter::default(),
        }
    }

    fn validate(&self) -> Result<()> {
        let q = self.query.trim();
        if q.is_empty() {
            return Err(Error::invalid("q", "the query text is empty"));
        }
        if q.len() > MAX_QUERY_BYTES {
            return Err(Error::invalid(
                "q",
                format!("{} bytes, the limit is {MAX_QUERY_BYTES}", q.len()),
            ));
        }
        if self.k == 0 || self.k > MAX_TOP_K {
            return Err(Error::invalid("k", format!("{} is outside 1..={MAX_TOP_K}", self.k)));
        }
        Ok(())
    }
}

/// A hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchHit {
    /// Record id: the event id, product id or mention id.
    pub id: String,
    /// Cosine similarity to the query (higher is closer).
    pub score: f32,
    /// The start of the text that matched.
    pub snippet: Option<String>,
    /// The record's metadata (without the snippet).
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// Embeds `req.query` and returns the org's best hits in `req.index`, best first.
pub async fn search(
    indexes: &Indexes,
    embedder: &dyn Embedder,
    org: &str,
    req: &SearchRequest,
) -> Result<Vec<SearchHit>> {
    req.validate()?;
    let mut vectors = embedder.embed(&[req.query.trim().to_string()]).await?;
    let vector = vectors
        .pop()
        .ok_or_else(|| Error::Backend("the embedder returned no vector".into()))?;
    let query = VectorQuery::new(vector, req.k).with_filter(req.filter.clone());
    let matches = indexes.get(req.index).query(org, &query).await?;
    Ok(matches
        .into_iter()
        .map(|mut m| {
            let snippet = match m.metadata.remove(SNIPPET) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
            SearchHit {
                id: m.id,
                score: m.score,
                snippet,
                metadata: m.metadata,
            }
        })
        .collect())
}

/// The first [`SNIPPET_CHARS`] characters of `text`, PII scrubbed (again: texts are scrubbed at
/// ingest, and the index is storage too), with an ellipsis when cut.
pub fn snippet(text: &str) -> String {
    let scrubbed = crow_core::privacy::Scrubber::global().scrub_text(text);
    let text = scrubbed.as_ref().map_or(text, |(s, _)| s.as_str()).trim();
    match text.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text.to_string(),
    }
}

/// The `interaction-embeddings` record of an event's text: id = the event id; metadata `type`,
/// `name`, `field`, `session_id`, `person_id`, `ts` (ms), `label` and `sentiment` (when
/// analyzed), `product_id` (a product the text names, or the event's `product_id` property),
/// `language`, and the snippet.
pub fn interaction_record(
    event: &Interaction,
    field: &str,
    text: &str,
    analysis: Option<&TextAnalysis>,
    embedding: Vec<f32>,
) -> VectorRecord {
    let mut m = Map::new();
    m.insert("type".into(), json!(event.event_type.as_str()));
    if let Some(name) = &event.name {
        m.insert("name".into(), json!(name));
    }
    m.insert("field".into(), json!(field));
    if let Some(s) = &event.session_id {
        m.insert("session_id".into(), json!(s));
    }
    if let Some(p) = event.person_id.as_deref().or(event.person_hint()) {
        m.insert("person_id".into(), json!(p));
    }
    m.insert("ts".into(), json!(event.timestamp));
    let product = event
        .properties
        .get("product_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(s) = analysis.and_then(|a| a.sentiment.as_ref()) {
        m.insert("label".into(), json!(s.label));
        m.insert("sentiment".into(), json!(s.score));
    }
    if let Some(lang) = analysis.and_then(|a| a.language.as_ref()) {
        m.insert("language".into(), json!(lang));
    }
    let named = analysis.and_then(|a| a.entities.iter().find_map(|e| e.product_id.clone()));
    if let Some(p) = product.or(named) {
        m.insert("product_id".into(), json!(p));
    }
    m.insert(SNIPPET.into(), json!(snippet(text)));
    VectorRecord {
        id: event.id.clone(),
        namespace: None,
        values: embedding,
        metadata: m,
    }
}

/// The `social-embeddings` record of a mention: id = the mention id, or `h:` + 32 hex digits of
/// its SHA-256 when it is longer than the index allows (Bluesky's AT-URIs are); metadata
/// `mention_id` (always the full id), `platform`,
/// `source`, `posted_at`, `author` (a pseudonym), `url`, sentiment `label` and `sentiment`,
/// `language`, `product_id` when the text names a catalog product, and the snippet.
pub fn social_record(m: &SocialMention, analysis: Option<&TextAnalysis>, embedding: Vec<f32>) -> VectorRecord {
    let mut meta = Map::new();
    meta.insert("mention_id".into(), json!(m.id));
    meta.insert("platform".into(), json!(m.platform));
    if !m.source.is_empty() {
        meta.insert("source".into(), json!(m.source));
    }
    meta.insert("ts".into(), json!(m.posted_at));
    if let Some(a) = &m.author {
        meta.insert("author".into(), json!(a));
    }
    if let Some(u) = &m.url {
        meta.insert("url".into(), json!(u));
    }
    if let Some(s) = analysis.and_then(|a| a.sentiment.as_ref()) {
        meta.insert("label".into(), json!(s.label));
        meta.insert("sentiment".into(), json!(s.score));
    }
    if let Some(lang) = analysis.and_then(|a| a.language.as_ref()).or(m.language.as_ref()) {
        meta.insert("language".into(), json!(lang));
    }
    if let Some(p) = analysis.and_then(|a| a.entities.iter().find_map(|e| e.product_id.clone())) {
        meta.insert("product_id".into(), json!(p));
    }
    meta.insert(SNIPPET.into(), json!(snippet(&m.text)));
    VectorRecord {
        id: social_record_id(&m.id),
        namespace: None,
        values: embedding,
        metadata: meta,
    }
}

/// The vector id of a mention: its id when it fits the index's limit, else a hash of it.
pub fn social_record_id(mention_id: &str) -> String {
    if mention_id.len() <= crow_core::vector::MAX_ID_BYTES {
        mention_id.to_owned()
    } else {
        use sha2::{Digest, Sha256};
        format!("h:{}", &hex::encode(Sha256::digest(mention_id.as_bytes()))[..32])
    }
}

/// The text a product is embedded from: name, brand, category and description.
pub fn product_text(p: &Product) -> String {
    [
        Some(p.name.as_str()),
        p.brand.as_deref(),
        p.category.as_deref(),
        p.description.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.trim().is_empty())
    .collect::<Vec<_>>()
    .join(". ")
}

/// The `product-embeddings` record of a product: id = the product id; metadata `product_id`,
/// `sku`, `name`, `category`, `brand`, `price_cents`, `currency`, `updated_at`, the snippet.
pub fn product_record(p: &Product, embedding: Vec<f32>) -> VectorRecord {
    let mut m = Map::new();
    m.insert("product_id".into(), json!(p.id));
    m.insert("sku".into(), json!(p.sku));
    m.insert("name".into(), json!(p.name));
    for (k, v) in [
        ("category", &p.category),
        ("brand", &p.brand),
        ("currency", &p.currency),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(c) = p.price_cents {
        m.insert("price_cents".into(), json!(c));
    }
    m.insert("updated_at".into(), json!(p.updated_at));
    m.insert(SNIPPET.into(), json!(snippet(&product_text(p))));
    VectorRecord {
        id: p.id.clone(),
        namespace: None,
        values: embedding,
        metadata: m,
    }
}

/// Embeds products and upserts them into `index` (the product-embeddings index), in chunks. An
/// unchanged product is a no-op for the index. Returns how many were embedded.
pub async fn index_products(
    embedder: &dyn Embedder,
    index: &dyn VectorIndex,
    org: &str,
    products: &[Product],
) -> Result<usize> {
    for chunk in products.chunks(64) {
        let texts: Vec<String> = chunk.iter().map(product_text).collect();
        let vectors = embedder.embed(&texts).await?;
        if vectors.len() != chunk.len() {
            return Err(Error::Backend(
                "the embedder returned the wrong number of vectors".into(),
            ));
        }
        let records = chunk.iter().zip(vectors).map(|(p, v)| product_record(p, v)).collect();
        index.upsert(org, records).await?;
    }
    Ok(products.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_cut_on_characters() {
        assert_eq!(snippet("  short  "), "short");
        let long = "é".repeat(300);
        let s = snippet(&long);
        assert_eq!(s.chars().count(), SNIPPET_CHARS + 1);
        assert!(s.ends_with('…'));
        assert!(!snippet("mail me at jane.doe@example.com").contains("jane.doe"));
    }

    #[test]
    fn requests_are_validated() {
        let mut r = SearchRequest::new(" ", IndexKind::Interactions);
        assert!(r.validate().is_err());
        r.query = "ok".into();
        r.k = 101;
        assert!(r.validate().unwrap_err().to_string().contains("k"));
        r.k = 5;
        assert!(r.validate().is_ok());
    }
}
