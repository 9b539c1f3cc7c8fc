//! Cloudflare Vectorize as the [`VectorIndex`](crow_core::ports::VectorIndex) port (the
//! `VEC_INTERACTIONS`, `VEC_PRODUCTS` and `VEC_SOCIAL` bindings).
//!
//! The mapping (pure functions here, unit-tested natively; the binding calls in `Vectorize`,
//! wasm32 only):
//! - **Vectorize namespace = the org id.** Vectorize applies a namespace *before* the nearest
//!   neighbour search, so a small org in a large shared index still gets its `top_k`, and one
//!   org's records never crowd out another's.
//! - **Vector id = `hex(sha256(org \0 id))`**: 64 characters, Vectorize's limit, whatever the
//!   port's id (up to 64 bytes) and org. The namespace is *not* hashed in: the port's `get` and
//!   `delete` take no namespace ("in any namespace of the org"), so an id is unique per org,
//!   as in crow-store's HNSW index (keyed by org and id; an upsert into another namespace
//!   replaces the record).
//! - **Metadata** carries two reserved keys: `_id` (the port's id) and `_ns` (the port's
//!   namespace, absent without one). They are added on the way in, checked and stripped on the
//!   way out; a record or filter that uses them itself is refused (`Invalid`).
//! - **A namespace restriction** becomes a `{"_ns": {"$eq": ns}}` condition beside the port's
//!   filter (Vectorize's JSON syntax, as [`MetadataFilter::to_json`] writes it). Vectorize only
//!   filters on properties that have a metadata index: `_ns` needs one, and so does every
//!   property a caller filters on (see wrangler.toml).
//! - **Limits**: `topK` ≤ 100, but ≤ 20 when metadata is returned. A query asks for
//!   `returnMetadata: "all"` up to [`MAX_TOP_K_WITH_METADATA`]; above it, the hits' ids and
//!   scores with no metadata, then their metadata through `getByIds` in chunks of
//!   [`GET_CHUNK`]. Upserts go in chunks of [`UPSERT_CHUNK`] (the Workers binding's batch
//!   limit).
//! - **`count`** answers `Unavailable`: Vectorize counts vectors per index, not per namespace.
//! - Vectorize is eventually consistent: an upsert is queryable after a few seconds.

use crow_core::vector::{IndexInfo, MAX_FILTER_BYTES, MAX_METADATA_BYTES, VectorMatch, VectorQuery, VectorRecord};
use crow_core::{Error, Result};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Metadata key of the port's id.
pub const ID_KEY: &str = "_id";
/// Metadata key of the port's namespace.
pub const NS_KEY: &str = "_ns";
/// Largest `topK` Vectorize answers with metadata.
pub const MAX_TOP_K_WITH_METADATA: usize = 20;
/// Vectors per `upsert` call (the Workers binding's limit is 1000).
pub const UPSERT_CHUNK: usize = 1000;
/// Ids per `getByIds` call.
pub const GET_CHUNK: usize = 20;
/// Ids per `deleteByIds` call.
pub const DELETE_CHUNK: usize = 1000;

/// The Vectorize vector id of the port's `id` in `org`: `hex(sha256(org \0 id))`.
pub fn vector_id(org: &str, id: &str) -> String {
    let mut h = Sha256::new();
    h.update(org.as_bytes());
    h.update([0u8]);
    h.update(id.as_bytes());
    hex::encode(h.finalize())
}

fn reserved(key: &str) -> bool {
    key == ID_KEY || key == NS_KEY
}

/// One record as Vectorize's `upsert` takes it (`{id, values, namespace, metadata}`), after the
/// port's validation; `at` names it in errors.
pub fn encode_record(info: &IndexInfo, org: &str, at: usize, record: &VectorRecord) -> Result<Value> {
    info.validate_record(at, record)?;
    if let Some(k) = record.metadata.keys().find(|k| reserved(k)) {
        return Err(Error::invalid(
            format!("vectors[{at}].metadata.{k}"),
            "`_id` and `_ns` are reserved by the Vectorize index",
        ));
    }
    let mut metadata = record.metadata.clone();
    metadata.insert(ID_KEY.into(), json!(record.id));
    if let Some(ns) = &record.namespace {
        metadata.insert(NS_KEY.into(), json!(ns));
    }
    let size = Value::Object(metadata.clone()).to_string().len();
    if size > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            format!("vectors[{at}].metadata"),
            format!("{size} bytes serialized with `_id` and `_ns`, the limit is {MAX_METADATA_BYTES}"),
        ));
    }
    Ok(json!({
        "id": vector_id(org, &record.id),
        "values": record.values,
        "namespace": org,
        "metadata": metadata,
    }))
}

/// The filter a query sends: the port's filter plus `_ns` for a namespace; `None` when empty.
pub fn query_filter(query: &VectorQuery) -> Result<Option<Value>> {
    let mut filter = match query.filter.to_json() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(k) = filter.keys().find(|k| reserved(k)) {
        return Err(Error::invalid(
            format!("filter.{k}"),
            "`_id` and `_ns` are reserved by the Vectorize index",
        ));
    }
    if let Some(ns) = &query.namespace {
        filter.insert(NS_KEY.into(), json!({ "$eq": ns }));
    }
    if filter.is_empty() {
        return Ok(None);
    }
    let filter = Value::Object(filter);
    let size = filter.to_string().len();
    if size > MAX_FILTER_BYTES {
        return Err(Error::invalid(
            "filter",
            format!("{size} bytes with the namespace condition, the limit is {MAX_FILTER_BYTES}"),
        ));
    }
    Ok(Some(filter))
}

/// The options of a `query` call. With `metadata`, `returnMetadata: "all"` (then `top_k` must
/// be at most [`MAX_TOP_K_WITH_METADATA`]), else `"none"`.
pub fn query_options(org: &str, query: &VectorQuery, filter: Option<&Value>, metadata: bool) -> Value {
    let mut o = json!({
        "topK": query.top_k,
        "namespace": org,
        "returnValues": false,
        "returnMetadata": if metadata { "all" } else { "none" },
    });
    if let Some(f) = filter {
        o["filter"] = f.clone();
    }
    o
}

/// Splits a stored vector's metadata into the port's id, namespace and metadata; `None` when
/// the vector is not one of `org`'s as this adapter writes them (another org's, or foreign).
pub fn decode_metadata(org: &str, vector: &Value) -> Option<(String, Option<String>, Map<String, Value>)> {
    if vector
        .get("namespace")
        .and_then(Value::as_str)
        .is_some_and(|ns| ns != org)
    {
        return None;
    }
    let mut metadata = vector.get("metadata")?.as_object()?.clone();
    let id = match metadata.remove(ID_KEY)? {
        Value::String(s) => s,
        _ => return None,
    };
    if vector.get("id").and_then(Value::as_str) != Some(vector_id(org, &id).as_str()) {
        return None;
    }
    let ns = match metadata.remove(NS_KEY) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    Some((id, ns, metadata))
}

/// A `getByIds` answer's vector as the port's record.
pub fn decode_record(org: &str, vector: &Value) -> Option<VectorRecord> {
    let (id, namespace, metadata) = decode_metadata(org, vector)?;
    let values = vector
        .get("values")?
        .as_array()?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect::<Option<Vec<f32>>>()?;
    Some(VectorRecord {
        id,
        namespace,
        values,
        metadata,
    })
}

/// A `query` match (with its metadata) as the port's match.
pub fn decode_match(org: &str, m: &Value) -> Option<VectorMatch> {
    let score = m.get("score")?.as_f64()? as f32;
    let (id, namespace, metadata) = decode_metadata(org, m)?;
    Some(VectorMatch {
        id,
        namespace,
        score,
        metadata,
    })
}

#[cfg(target_arch = "wasm32")]
mod index {
    use std::collections::HashMap;

    use crow_core::ports::VectorIndex;
    use crow_core::vector::{IndexInfo, VectorMatch, VectorQuery, VectorRecord};
    use crow_core::{Error, Result};
    use serde_json::Value;
    use wasm_bindgen::prelude::*;

    use super::*;
    use crate::glue;

    /// A Vectorize index binding with the info CROW created it with (384 dimensions, cosine).
    #[derive(Debug, Clone)]
    pub struct Vectorize {
        binding: JsValue,
        info: IndexInfo,
    }

    impl Vectorize {
        /// The binding `env.<name>`, for an index described by `info`.
        pub fn new(binding: JsValue, info: IndexInfo) -> Self {
            Vectorize { binding, info }
        }

        async fn call(&self, what: &str, promise: std::result::Result<js_sys::Promise, JsValue>) -> Result<Value> {
            let v = match promise {
                Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await,
                Err(e) => Err(e),
            }
            .map_err(|e| {
                Error::Backend(format!(
                    "Vectorize {} {what}: {}",
                    self.info.name,
                    glue::error_message(&e)
                ))
            })?;
            let text = v.as_string().unwrap_or_else(|| "null".into());
            serde_json::from_str(&text)
                .map_err(|e| Error::Backend(format!("Vectorize {} {what}: unexpected answer: {e}", self.info.name)))
        }

        /// The raw vectors of these Vectorize ids (chunked).
        async fn get_raw(&self, ids: &[String]) -> Result<Vec<Value>> {
            let mut out = Vec::new();
            for chunk in ids.chunks(GET_CHUNK) {
                let json = serde_json::to_string(chunk).unwrap_or_default();
                match self
                    .call("getByIds", glue::vec_get_by_ids(&self.binding, &json))
                    .await?
                {
                    Value::Array(items) => out.extend(items),
                    Value::Null => {}
                    other => return Err(Error::Backend(format!("Vectorize getByIds answered {other}"))),
                }
            }
            Ok(out)
        }
    }

    fn matches_of(v: Value) -> Vec<Value> {
        match v {
            Value::Object(mut o) => match o.remove("matches") {
                Some(Value::Array(m)) => m,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    #[async_trait::async_trait(?Send)]
    impl VectorIndex for Vectorize {
        fn info(&self) -> &IndexInfo {
            &self.info
        }

        async fn upsert(&self, org_id: &str, records: Vec<VectorRecord>) -> Result<usize> {
            let encoded = records
                .iter()
                .enumerate()
                .map(|(i, r)| encode_record(&self.info, org_id, i, r))
                .collect::<Result<Vec<Value>>>()?;
            for chunk in encoded.chunks(UPSERT_CHUNK) {
                let json = Value::Array(chunk.to_vec()).to_string();
                self.call("upsert", glue::vec_upsert(&self.binding, &json)).await?;
            }
            Ok(records.len())
        }

        async fn delete(&self, org_id: &str, ids: &[String]) -> Result<usize> {
            let mut hashed: Vec<String> = ids.iter().map(|id| vector_id(org_id, id)).collect();
            hashed.sort();
            hashed.dedup();
            // deleteByIds does not say how many existed: count them first.
            let present = self
                .get_raw(&hashed)
                .await?
                .iter()
                .filter(|v| decode_metadata(org_id, v).is_some())
                .count();
            for chunk in hashed.chunks(DELETE_CHUNK) {
                let json = serde_json::to_string(chunk).unwrap_or_default();
                self.call("deleteByIds", glue::vec_delete_by_ids(&self.binding, &json))
                    .await?;
            }
            Ok(present)
        }

        async fn get(&self, org_id: &str, ids: &[String]) -> Result<Vec<VectorRecord>> {
            let hashed: Vec<String> = ids.iter().map(|id| vector_id(org_id, id)).collect();
            let mut found: HashMap<String, VectorRecord> = self
                .get_raw(&hashed)
                .await?
                .iter()
                .filter_map(|v| decode_record(org_id, v))
                .map(|r| (r.id.clone(), r))
                .collect();
            Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
        }

        async fn query(&self, org_id: &str, query: &VectorQuery) -> Result<Vec<VectorMatch>> {
            self.info.validate_query(query)?;
            let filter = query_filter(query)?;
            let vector = serde_json::to_string(&query.vector).unwrap_or_default();
            let with_metadata = query.top_k <= MAX_TOP_K_WITH_METADATA;
            let options = query_options(org_id, query, filter.as_ref(), with_metadata).to_string();
            let answer = self
                .call("query", glue::vec_query(&self.binding, &vector, &options))
                .await?;
            let mut out: Vec<VectorMatch> = if with_metadata {
                matches_of(answer)
                    .iter()
                    .filter_map(|m| decode_match(org_id, m))
                    .collect()
            } else {
                // Above 20 hits Vectorize returns no metadata: fetch it for the hits.
                let hits: Vec<(String, f32)> = matches_of(answer)
                    .iter()
                    .filter_map(|m| Some((m.get("id")?.as_str()?.to_owned(), m.get("score")?.as_f64()? as f32)))
                    .collect();
                let ids: Vec<String> = hits.iter().map(|(id, _)| id.clone()).collect();
                let mut by_id: HashMap<String, Value> = self
                    .get_raw(&ids)
                    .await?
                    .into_iter()
                    .filter_map(|v| Some((v.get("id")?.as_str()?.to_owned(), v)))
                    .collect();
                hits.into_iter()
                    .filter_map(|(id, score)| {
                        let (id, namespace, metadata) = decode_metadata(org_id, &by_id.remove(&id)?)?;
                        Some(VectorMatch {
                            id,
                            namespace,
                            score,
                            metadata,
                        })
                    })
                    .collect()
            };
            let metric = self.info.metric;
            out.sort_by(|a, b| metric.compare(a.score, b.score).then_with(|| a.id.cmp(&b.id)));
            out.truncate(query.top_k);
            Ok(out)
        }

        async fn count(&self, _org_id: &str) -> Result<usize> {
            Err(Error::Unavailable(format!(
                "Vectorize cannot count the vectors of one org (namespace) in {}; `wrangler vectorize info` \
                 counts the whole index",
                self.info.name
            )))
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use index::Vectorize;

#[cfg(test)]
mod tests {
    use super::*;
    use crow_core::vector::{MetadataFilter, Metric};

    fn info() -> IndexInfo {
        IndexInfo {
            name: "interaction-embeddings".into(),
            dimensions: 3,
            metric: Metric::Cosine,
        }
    }

    fn record(id: &str, ns: Option<&str>) -> VectorRecord {
        VectorRecord {
            id: id.into(),
            namespace: ns.map(Into::into),
            values: vec![1.0, 0.0, 0.5],
            metadata: json!({"type": "track", "snippet": "hi"}).as_object().unwrap().clone(),
        }
    }

    #[test]
    fn ids_hash_org_and_id_into_64_hex_digits() {
        let a = vector_id("org_1", "ev-1");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        // sha256("org_1\0ev-1"), as `printf 'org_1\0ev-1' | sha256sum` prints it.
        assert_eq!(a, hex::encode(Sha256::digest(b"org_1\0ev-1")));
        assert_ne!(a, vector_id("org_2", "ev-1"), "orgs never share a vector id");
        assert_eq!(vector_id("o", &"x".repeat(64)).len(), 64);
    }

    #[test]
    fn records_carry_the_org_as_namespace_and_the_id_and_ns_in_metadata() {
        let v = encode_record(&info(), "org_1", 0, &record("ev-1", Some("web"))).unwrap();
        assert_eq!(v["id"], json!(vector_id("org_1", "ev-1")));
        assert_eq!(v["namespace"], json!("org_1"));
        assert_eq!(v["values"], json!([1.0, 0.0, 0.5]));
        assert_eq!(
            v["metadata"],
            json!({"type": "track", "snippet": "hi", "_id": "ev-1", "_ns": "web"})
        );
        let plain = encode_record(&info(), "org_1", 0, &record("ev-1", None)).unwrap();
        assert!(plain["metadata"].get("_ns").is_none());

        // Round trip through a getByIds answer, reserved keys stripped.
        let back = decode_record("org_1", &v).unwrap();
        assert_eq!(back, record("ev-1", Some("web")));
        // Another org's vector (or a forged one) is never decoded as this org's.
        assert!(decode_record("org_2", &v).is_none());
        let mut forged = v.clone();
        forged["namespace"] = json!("org_2");
        forged["id"] = json!(vector_id("org_2", "other"));
        assert!(decode_record("org_2", &forged).is_none());
    }

    #[test]
    fn records_are_validated_and_reserved_keys_refused() {
        let mut bad = record("ev-1", None);
        bad.values = vec![1.0];
        let e = encode_record(&info(), "o", 3, &bad).unwrap_err().to_string();
        assert!(e.contains("vectors[3].values"), "{e}");
        let mut bad = record("ev-1", None);
        bad.metadata.insert("_id".into(), json!("x"));
        let e = encode_record(&info(), "o", 0, &bad).unwrap_err().to_string();
        assert!(e.contains("vectors[0].metadata._id") && e.contains("reserved"), "{e}");
    }

    #[test]
    fn matches_decode_with_scores() {
        let m = json!({
            "id": vector_id("org_1", "ev-9"),
            "score": 0.75,
            "namespace": "org_1",
            "metadata": {"_id": "ev-9", "label": "negative"},
        });
        let got = decode_match("org_1", &m).unwrap();
        assert_eq!(got.id, "ev-9");
        assert_eq!(got.namespace, None);
        assert_eq!(got.score, 0.75);
        assert_eq!(Value::Object(got.metadata), json!({"label": "negative"}));
        assert!(decode_match("org_1", &json!({"id": "x", "score": 1.0, "metadata": {}})).is_none());
    }

    #[test]
    fn namespaces_become_an_ns_filter_beside_the_port_filter() {
        let mut q = VectorQuery::new(vec![1.0, 0.0, 0.0], 5)
            .with_filter(MetadataFilter::parse_exprs(["label=negative", "ts>=5"]).unwrap());
        assert_eq!(
            query_filter(&q).unwrap(),
            Some(json!({"label": "negative", "ts": {"$gte": 5}}))
        );
        q.namespace = Some("web".into());
        let f = query_filter(&q).unwrap();
        assert_eq!(
            f,
            Some(json!({"label": "negative", "ts": {"$gte": 5}, "_ns": {"$eq": "web"}}))
        );
        let o = query_options("org_1", &q, f.as_ref(), true);
        assert_eq!(o["topK"], json!(5));
        assert_eq!(o["namespace"], json!("org_1"));
        assert_eq!(o["returnMetadata"], json!("all"));
        assert_eq!(o["returnValues"], json!(false));
        assert_eq!(o["filter"]["_ns"], json!({"$eq": "web"}));
        assert_eq!(
            query_options("o", &VectorQuery::new(vec![1.0], 50), None, false)["returnMetadata"],
            json!("none")
        );
        assert_eq!(query_filter(&VectorQuery::new(vec![1.0], 5)).unwrap(), None);
        let reserved = VectorQuery::new(vec![1.0], 5).with_filter(MetadataFilter::parse_exprs(["_ns=x"]).unwrap());
        assert!(query_filter(&reserved).is_err());
    }
}
