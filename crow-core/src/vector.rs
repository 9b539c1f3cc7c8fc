//! Vector records, queries and metadata filters with Cloudflare Vectorize's semantics.
//!
//! The [`VectorIndex`](crate::ports::VectorIndex) port takes these types; crow-store's embedded
//! HNSW index and the Worker's Vectorize adapter implement it. Everything here is pure and
//! wasm32-clean: validation, the filter language and the scores.
//!
//! - **Ids** are strings of 1..=[`MAX_ID_BYTES`] bytes, unique per org (and namespace).
//! - **Metrics**: `cosine` (score = cosine similarity, higher is closer), `euclidean` (score = the
//!   distance, *lower* is closer), `dot-product` (score = the inner product, higher is closer),
//!   exactly as Vectorize reports them. Hits are always ordered best first.
//! - **Namespaces** partition an org's records: a query with a namespace sees only that namespace,
//!   one without sees all of the org's records.
//! - **Filters** use Vectorize's JSON syntax: `{"channel": "web", "score": {"$gte": 0.5},
//!   "label": {"$in": ["negative", "neutral"]}}`: implicit AND over fields, the operators `$eq`,
//!   `$ne`, `$in`, `$nin`, `$lt`, `$lte`, `$gt`, `$gte`, dotted paths into nested objects.
//!
//! ```
//! use crow_core::vector::MetadataFilter;
//! use serde_json::json;
//!
//! let filter = MetadataFilter::from_json(&json!({"channel": "web", "ts": {"$gte": 100}})).unwrap();
//! let meta = json!({"channel": "web", "ts": 150});
//! assert!(filter.matches(meta.as_object().unwrap()));
//! // The same filter from the CLI's `--filter` expressions.
//! let same = MetadataFilter::parse_exprs(["channel=web", "ts>=100"]).unwrap();
//! assert_eq!(filter, same);
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Longest id, in bytes (Vectorize's limit).
pub const MAX_ID_BYTES: usize = 64;
/// Largest metadata object, serialized, in bytes (Vectorize's limit).
pub const MAX_METADATA_BYTES: usize = 10 * 1024;
/// Largest `top_k` a query may ask for (Vectorize's limit).
pub const MAX_TOP_K: usize = 100;
/// Largest filter, serialized, in bytes (Vectorize's limit).
pub const MAX_FILTER_BYTES: usize = 2048;
/// Longest namespace, in bytes (Vectorize's limit).
pub const MAX_NAMESPACE_BYTES: usize = 64;
/// Most vectors in one upsert call.
pub const MAX_UPSERT_BATCH: usize = 5000;

/// The three indexes CROW keeps, as in the seed's Vectorize bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    /// `interaction-embeddings`: the text of website interactions (feedback, search terms, ...).
    Interactions,
    /// `product-embeddings`: product names and descriptions.
    Products,
    /// `social-embeddings`: social media mentions.
    Social,
}

impl IndexKind {
    /// All three, in a fixed order.
    pub const ALL: [IndexKind; 3] = [IndexKind::Interactions, IndexKind::Products, IndexKind::Social];

    /// The index name (Vectorize's `index_name`, the embedded index's directory).
    pub fn index_name(self) -> &'static str {
        match self {
            IndexKind::Interactions => "interaction-embeddings",
            IndexKind::Products => "product-embeddings",
            IndexKind::Social => "social-embeddings",
        }
    }

    /// The short name used by the CLI and the API (`interactions`, `products`, `social`).
    pub fn as_str(self) -> &'static str {
        match self {
            IndexKind::Interactions => "interactions",
            IndexKind::Products => "products",
            IndexKind::Social => "social",
        }
    }
}

impl FromStr for IndexKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        IndexKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s || k.index_name() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "index",
                    format!("unknown index {s:?}: use interactions, products or social"),
                )
            })
    }
}

impl fmt::Display for IndexKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Distance metric, fixed when an index is created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Cosine similarity (vectors are normalized on the way in).
    #[default]
    Cosine,
    /// Euclidean (L2) distance.
    Euclidean,
    /// Inner product.
    DotProduct,
}

impl Metric {
    /// Vectorize's name: `cosine`, `euclidean`, `dot-product`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
            Metric::DotProduct => "dot-product",
        }
    }

    /// Whether a higher score is closer (false only for euclidean distance).
    pub fn higher_is_closer(self) -> bool {
        !matches!(self, Metric::Euclidean)
    }

    /// The score of `b` for the query `a`, as the index reports it. For cosine both must already
    /// be normalized (the index normalizes them).
    pub fn score(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Cosine | Metric::DotProduct => dot(a, b),
            Metric::Euclidean => l2_squared(a, b).sqrt(),
        }
    }

    /// Orders two scores best first.
    pub fn compare(self, a: f32, b: f32) -> Ordering {
        if self.higher_is_closer() {
            b.total_cmp(&a)
        } else {
            a.total_cmp(&b)
        }
    }
}

impl FromStr for Metric {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "euclidean" => Ok(Metric::Euclidean),
            "dot-product" | "dot" => Ok(Metric::DotProduct),
            _ => Err(Error::invalid(
                "metric",
                format!("unknown metric {s:?}: use cosine, euclidean or dot-product"),
            )),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Inner product (a plain loop the compiler vectorizes; backends may use their own SIMD).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Squared euclidean distance.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Scales `v` to unit length in place; a zero vector is an error (it has no direction).
pub fn normalize(v: &mut [f32]) -> Result<()> {
    let norm = dot(v, v).sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::invalid(
            "values",
            "a zero vector has no direction under the cosine metric",
        ));
    }
    v.iter_mut().for_each(|x| *x /= norm);
    Ok(())
}

/// Name, dimensions and metric of an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexInfo {
    /// Index name (e.g. `interaction-embeddings`).
    pub name: String,
    /// Vector length.
    pub dimensions: usize,
    /// Metric.
    pub metric: Metric,
}

impl IndexInfo {
    /// Checks a record against the index and Vectorize's limits; `at` names it in the error.
    pub fn validate_record(&self, at: usize, record: &VectorRecord) -> Result<()> {
        let field = |f: &str| format!("vectors[{at}].{f}");
        validate_id(&record.id).map_err(|reason| Error::invalid(field("id"), reason))?;
        if let Some(ns) = &record.namespace {
            validate_namespace(ns).map_err(|reason| Error::invalid(field("namespace"), reason))?;
        }
        self.validate_vector(&record.values)
            .map_err(|reason| Error::invalid(field("values"), reason))?;
        let size = serde_json::to_vec(&record.metadata)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_METADATA_BYTES {
            return Err(Error::invalid(
                field("metadata"),
                format!("{size} bytes serialized, the limit is {MAX_METADATA_BYTES}"),
            ));
        }
        Ok(())
    }

    /// Checks a query: vector length, `top_k`, namespace.
    pub fn validate_query(&self, query: &VectorQuery) -> Result<()> {
        self.validate_vector(&query.vector)
            .map_err(|reason| Error::invalid("vector", reason))?;
        if query.top_k == 0 || query.top_k > MAX_TOP_K {
            return Err(Error::invalid(
                "top_k",
                format!("{} is outside 1..={MAX_TOP_K}", query.top_k),
            ));
        }
        if let Some(ns) = &query.namespace {
            validate_namespace(ns).map_err(|reason| Error::invalid("namespace", reason))?;
        }
        Ok(())
    }

    fn validate_vector(&self, values: &[f32]) -> std::result::Result<(), String> {
        if values.len() != self.dimensions {
            return Err(format!(
                "{} values, the index {} has {} dimensions",
                values.len(),
                self.name,
                self.dimensions
            ));
        }
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(format!("value {i} is not a finite number"));
        }
        if self.metric == Metric::Cosine && values.iter().all(|x| *x == 0.0) {
            return Err("a zero vector has no direction under the cosine metric".into());
        }
        Ok(())
    }
}

fn validate_id(id: &str) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("{} bytes, the limit is {MAX_ID_BYTES}", id.len()));
    }
    Ok(())
}

fn validate_namespace(ns: &str) -> std::result::Result<(), String> {
    if ns.is_empty() || ns.len() > MAX_NAMESPACE_BYTES {
        return Err(format!("must be 1..={MAX_NAMESPACE_BYTES} bytes"));
    }
    Ok(())
}

/// A vector with its id, namespace and metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorRecord {
    /// Id, unique within the org (and namespace).
    pub id: String,
    /// Optional partition inside the org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Values (length = the index's dimensions).
    pub values: Vec<f32>,
    /// JSON metadata, filterable.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// A top-k query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorQuery {
    /// The query vector.
    pub vector: Vec<f32>,
    /// How many hits (1..=[`MAX_TOP_K`]).
    pub top_k: usize,
    /// Only this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only records whose metadata matches.
    #[serde(default)]
    pub filter: MetadataFilter,
}

impl VectorQuery {
    /// A query for the `top_k` nearest records, no filter.
    pub fn new(vector: Vec<f32>, top_k: usize) -> Self {
        VectorQuery {
            vector,
            top_k,
            namespace: None,
            filter: MetadataFilter::default(),
        }
    }

    /// With a metadata filter.
    pub fn with_filter(mut self, filter: MetadataFilter) -> Self {
        self.filter = filter;
        self
    }
}

/// A search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorMatch {
    /// Id.
    pub id: String,
    /// Namespace, when the record has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Score under the index's metric (see [`Metric`]).
    pub score: f32,
    /// Metadata.
    pub metadata: Map<String, Value>,
}

/// One condition on one metadata field.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Equal (`$eq`, or a bare value).
    Eq(Value),
    /// Not equal (`$ne`); a missing field matches.
    Ne(Value),
    /// One of (`$in`).
    In(Vec<Value>),
    /// None of (`$nin`); a missing field matches.
    Nin(Vec<Value>),
    /// Range (`$lt`, `$lte`, `$gt`, `$gte`) on numbers or on strings (byte order).
    Range {
        /// Lower bound and whether it is inclusive.
        lower: Option<(Value, bool)>,
        /// Upper bound and whether it is inclusive.
        upper: Option<(Value, bool)>,
    },
}

impl Condition {
    fn matches(&self, value: Option<&Value>) -> bool {
        match self {
            Condition::Eq(v) => value.is_some_and(|x| scalar_eq(x, v)),
            Condition::Ne(v) => !value.is_some_and(|x| scalar_eq(x, v)),
            Condition::In(vs) => value.is_some_and(|x| vs.iter().any(|v| scalar_eq(x, v))),
            Condition::Nin(vs) => !value.is_some_and(|x| vs.iter().any(|v| scalar_eq(x, v))),
            Condition::Range { lower, upper } => {
                let Some(x) = value else { return false };
                let lower_ok = lower.as_ref().is_none_or(|(b, incl)| match compare(x, b) {
                    Some(Ordering::Greater) => true,
                    Some(Ordering::Equal) => *incl,
                    _ => false,
                });
                let upper_ok = upper.as_ref().is_none_or(|(b, incl)| match compare(x, b) {
                    Some(Ordering::Less) => true,
                    Some(Ordering::Equal) => *incl,
                    _ => false,
                });
                lower_ok && upper_ok
            }
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        match self {
            Condition::Eq(v) => return v.clone(),
            Condition::Ne(v) => {
                m.insert("$ne".into(), v.clone());
            }
            Condition::In(vs) => {
                m.insert("$in".into(), Value::Array(vs.clone()));
            }
            Condition::Nin(vs) => {
                m.insert("$nin".into(), Value::Array(vs.clone()));
            }
            Condition::Range { lower, upper } => {
                if let Some((v, incl)) = lower {
                    m.insert(if *incl { "$gte" } else { "$gt" }.into(), v.clone());
                }
                if let Some((v, incl)) = upper {
                    m.insert(if *incl { "$lte" } else { "$lt" }.into(), v.clone());
                }
            }
        }
        Value::Object(m)
    }
}

/// Numbers compare by value (so `1` equals `1.0`), everything else structurally.
fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.as_str().cmp(y.as_str())),
        _ => None,
    }
}

/// A metadata filter: every `(field, condition)` must hold (implicit AND). The empty filter
/// matches everything. Serializes to and from Vectorize's JSON syntax.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataFilter {
    conditions: Vec<(String, Condition)>,
}

impl MetadataFilter {
    /// Whether there is no condition.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// The conditions, in the order given.
    pub fn conditions(&self) -> &[(String, Condition)] {
        &self.conditions
    }

    /// Adds a condition (builder style).
    pub fn and(mut self, field: impl Into<String>, condition: Condition) -> Self {
        self.conditions.push((field.into(), condition));
        self
    }

    /// Whether `metadata` satisfies every condition. Dotted fields reach into nested objects.
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        self.conditions
            .iter()
            .all(|(field, cond)| cond.matches(lookup(metadata, field)))
    }

    /// Parses Vectorize's JSON syntax. Errors name the offending field.
    pub fn from_json(value: &Value) -> Result<Self> {
        let size = value.to_string().len();
        if size > MAX_FILTER_BYTES {
            return Err(Error::invalid(
                "filter",
                format!("{size} bytes, the limit is {MAX_FILTER_BYTES}"),
            ));
        }
        let obj = match value {
            Value::Null => return Ok(MetadataFilter::default()),
            Value::Object(o) => o,
            _ => return Err(Error::invalid("filter", "must be a JSON object of field conditions")),
        };
        let mut conditions = Vec::new();
        for (field, spec) in obj {
            if field.is_empty() || field.starts_with('$') {
                return Err(Error::invalid("filter", format!("{field:?} is not a field name")));
            }
            let at = |reason: String| Error::invalid(format!("filter.{field}"), reason);
            match spec {
                Value::Object(ops) => {
                    let mut range_lower = None;
                    let mut range_upper = None;
                    for (op, v) in ops {
                        match op.as_str() {
                            "$eq" => conditions.push((field.clone(), Condition::Eq(scalar(v).map_err(at)?))),
                            "$ne" => conditions.push((field.clone(), Condition::Ne(scalar(v).map_err(at)?))),
                            "$in" | "$nin" => {
                                let list = scalar_list(v).map_err(at)?;
                                let cond = if op == "$in" {
                                    Condition::In(list)
                                } else {
                                    Condition::Nin(list)
                                };
                                conditions.push((field.clone(), cond));
                            }
                            "$gt" | "$gte" => range_lower = Some((orderable(v).map_err(at)?, op == "$gte")),
                            "$lt" | "$lte" => range_upper = Some((orderable(v).map_err(at)?, op == "$lte")),
                            other => {
                                return Err(at(format!(
                                    "unknown operator {other:?}: use $eq, $ne, $in, $nin, $lt, $lte, $gt or $gte"
                                )));
                            }
                        }
                    }
                    if ops.is_empty() {
                        return Err(at("an empty operator object".into()));
                    }
                    if range_lower.is_some() || range_upper.is_some() {
                        conditions.push((
                            field.clone(),
                            Condition::Range {
                                lower: range_lower,
                                upper: range_upper,
                            },
                        ));
                    }
                }
                v => conditions.push((field.clone(), Condition::Eq(scalar(v).map_err(at)?))),
            }
        }
        Ok(MetadataFilter { conditions })
    }

    /// Vectorize's JSON syntax.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (field, cond) in &self.conditions {
            let json = cond.to_json();
            match (out.get_mut(field), json) {
                (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
                (Some(existing), Value::Object(mut more)) => {
                    more.insert("$eq".into(), existing.clone());
                    *existing = Value::Object(more);
                }
                (Some(existing), scalar) => {
                    let mut m = Map::new();
                    if let Value::Object(ops) = existing.take() {
                        m.extend(ops);
                    }
                    m.insert("$eq".into(), scalar);
                    *existing = Value::Object(m);
                }
                (None, json) => {
                    out.insert(field.clone(), json);
                }
            }
        }
        Value::Object(out)
    }

    /// Parses command-line style expressions, ANDed: `key=value`, `key!=value`, `key>=v`,
    /// `key<=v`, `key>v`, `key<v`, and `key=[a,b]` / `key!=[a,b]` for set membership. A value
    /// that parses as a JSON number, boolean or null is one; anything else is a string (quote a
    /// number to keep it a string: `sku="123"`). One expression that starts with `{` is read as
    /// a whole filter in Vectorize's JSON syntax.
    pub fn parse_exprs<I, S>(exprs: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut filter = MetadataFilter::default();
        for expr in exprs {
            let expr = expr.as_ref().trim();
            if expr.starts_with('{') {
                let json: Value =
                    serde_json::from_str(expr).map_err(|e| Error::invalid("filter", format!("not valid JSON: {e}")))?;
                filter.conditions.extend(MetadataFilter::from_json(&json)?.conditions);
                continue;
            }
            let (field, cond) = parse_expr(expr)?;
            filter.conditions.push((field, cond));
        }
        Ok(filter)
    }
}

impl Serialize for MetadataFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for MetadataFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        MetadataFilter::from_json(&v).map_err(serde::de::Error::custom)
    }
}

fn parse_expr(expr: &str) -> Result<(String, Condition)> {
    // Longest operators first so `>=` is not read as `>`.
    const OPS: [&str; 6] = ["!=", ">=", "<=", "=", ">", "<"];
    let found = OPS
        .iter()
        .filter_map(|op| expr.find(op).map(|i| (i, *op)))
        .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())));
    let Some((i, op)) = found else {
        return Err(Error::invalid(
            "filter",
            format!("{expr:?} has no operator: write key=value, key!=value, key>=value, key<value, key=[a,b]"),
        ));
    };
    let field = expr[..i].trim();
    let raw = expr[i + op.len()..].trim();
    if field.is_empty() || field.starts_with('$') {
        return Err(Error::invalid("filter", format!("{expr:?} has no field name")));
    }
    let at = |reason: String| Error::invalid(format!("filter.{field}"), reason);
    let cond = match op {
        "=" | "!=" if raw.starts_with('[') && raw.ends_with(']') => {
            let items = raw[1..raw.len() - 1]
                .split(',')
                .map(|s| cli_value(s.trim()))
                .collect::<Vec<_>>();
            if items.iter().any(|v| v == &Value::String(String::new())) {
                return Err(at("an empty item in the list".into()));
            }
            if op == "=" {
                Condition::In(items)
            } else {
                Condition::Nin(items)
            }
        }
        "=" => Condition::Eq(cli_value(raw)),
        "!=" => Condition::Ne(cli_value(raw)),
        _ => {
            let v = orderable(&cli_value(raw)).map_err(at)?;
            match op {
                ">" => Condition::Range {
                    lower: Some((v, false)),
                    upper: None,
                },
                ">=" => Condition::Range {
                    lower: Some((v, true)),
                    upper: None,
                },
                "<" => Condition::Range {
                    lower: None,
                    upper: Some((v, false)),
                },
                _ => Condition::Range {
                    lower: None,
                    upper: Some((v, true)),
                },
            }
        }
    };
    Ok((field.to_string(), cond))
}

fn cli_value(raw: &str) -> Value {
    if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        return Value::String(raw[1..raw.len() - 1].to_string());
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => v,
        _ => Value::String(raw.to_string()),
    }
}

fn scalar(v: &Value) -> std::result::Result<Value, String> {
    match v {
        Value::Array(_) | Value::Object(_) => Err("must be a string, number, boolean or null".into()),
        v => Ok(v.clone()),
    }
}

fn scalar_list(v: &Value) -> std::result::Result<Vec<Value>, String> {
    match v {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect(),
        _ => Err("must be a non-empty array of scalars".into()),
    }
}

fn orderable(v: &Value) -> std::result::Result<Value, String> {
    match v {
        Value::Number(_) | Value::String(_) => Ok(v.clone()),
        _ => Err("a range bound must be a number or a string".into()),
    }
}

fn lookup<'a>(metadata: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    if let Some(v) = metadata.get(field) {
        return Some(v);
    }
    let mut parts = field.split('.');
    let mut cur = metadata.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// Keeps the `k` best of scored items under `metric` (ties broken by `tie`, ascending), best
/// first. Shared by exact search in every backend.
pub fn top_k<T, K: Ord>(
    metric: Metric,
    items: impl IntoIterator<Item = (f32, T)>,
    k: usize,
    tie: impl Fn(&T) -> K,
) -> Vec<(f32, T)> {
    let mut all: Vec<(f32, T)> = items.into_iter().collect();
    let cmp = |a: &(f32, T), b: &(f32, T)| metric.compare(a.0, b.0).then_with(|| tie(&a.1).cmp(&tie(&b.1)));
    if all.len() > k && k > 0 {
        all.select_nth_unstable_by(k - 1, cmp);
        all.truncate(k);
    }
    all.sort_by(cmp);
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn operators_follow_vectorize() {
        let m = meta(json!({"channel": "web", "score": 0.7, "ts": 100, "tags": "a", "nested": {"k": 2}}));
        let ok = |f: Value| MetadataFilter::from_json(&f).unwrap().matches(&m);
        assert!(ok(json!({"channel": "web"})));
        assert!(!ok(json!({"channel": "email"})));
        assert!(ok(json!({"channel": {"$ne": "email"}})));
        assert!(ok(json!({"missing": {"$ne": 1}})), "a missing field is not equal");
        assert!(!ok(json!({"missing": {"$eq": 1}})));
        assert!(ok(json!({"channel": {"$in": ["web", "app"]}})));
        assert!(!ok(json!({"channel": {"$nin": ["web", "app"]}})));
        assert!(ok(json!({"ts": {"$gte": 100, "$lt": 101}})));
        assert!(!ok(json!({"ts": {"$gt": 100}})));
        assert!(ok(json!({"ts": 100.0})), "numbers compare by value");
        assert!(ok(json!({"score": {"$lte": 0.7}})));
        assert!(ok(json!({"channel": {"$gte": "w"}})), "strings order bytewise");
        assert!(
            !ok(json!({"channel": {"$gt": 5}})),
            "a string is not comparable with a number"
        );
        assert!(ok(json!({"nested.k": 2})));
        assert!(ok(json!({})));
    }

    #[test]
    fn bad_filters_name_the_field() {
        let err = |f: Value| MetadataFilter::from_json(&f).unwrap_err().to_string();
        assert!(err(json!({"a": {"$regex": "x"}})).contains("filter.a"));
        assert!(err(json!({"a": {"$in": []}})).contains("non-empty"));
        assert!(err(json!({"a": [1, 2]})).contains("string, number"));
        assert!(err(json!({"a": {"$gt": true}})).contains("range bound"));
        assert!(err(json!(["a"])).contains("JSON object"));
        assert!(err(json!({"a": "x".repeat(3000)})).contains("limit"));
    }

    #[test]
    fn cli_expressions() {
        let f =
            MetadataFilter::parse_exprs(["label=negative", "ts>=5", "ts<10", "sku=\"123\"", "ch=[web,app]"]).unwrap();
        assert_eq!(
            f.to_json(),
            json!({"label": "negative", "ts": {"$gte": 5, "$lt": 10}, "sku": "123", "ch": {"$in": ["web", "app"]}})
        );
        // Two range expressions on one field combine into one range object, and round-trip.
        let back = MetadataFilter::from_json(&f.to_json()).unwrap();
        assert_eq!(back.to_json(), f.to_json());
        assert!(MetadataFilter::parse_exprs(["novalue"]).is_err());
        assert!(MetadataFilter::parse_exprs(["=x"]).is_err());
        assert!(MetadataFilter::parse_exprs(["a>true"]).is_err());
        let json = MetadataFilter::parse_exprs([r#"{"a": {"$in": [1, 2]}}"#]).unwrap();
        assert!(json.matches(&meta(json!({"a": 2}))));
    }

    #[test]
    fn records_and_queries_are_validated() {
        let info = IndexInfo {
            name: "t".into(),
            dimensions: 3,
            metric: Metric::Cosine,
        };
        let rec = |id: &str, values: Vec<f32>| VectorRecord {
            id: id.into(),
            namespace: None,
            values,
            metadata: Map::new(),
        };
        assert!(info.validate_record(0, &rec("a", vec![1.0, 0.0, 0.0])).is_ok());
        let e = info.validate_record(2, &rec("a", vec![1.0])).unwrap_err().to_string();
        assert!(e.contains("vectors[2].values") && e.contains("3 dimensions"), "{e}");
        assert!(info.validate_record(0, &rec("", vec![1.0, 0.0, 0.0])).is_err());
        assert!(
            info.validate_record(0, &rec(&"x".repeat(65), vec![1.0, 0.0, 0.0]))
                .is_err()
        );
        assert!(info.validate_record(0, &rec("a", vec![f32::NAN, 0.0, 0.0])).is_err());
        assert!(info.validate_record(0, &rec("a", vec![0.0; 3])).is_err());
        assert!(info.validate_query(&VectorQuery::new(vec![1.0, 0.0, 0.0], 0)).is_err());
        assert!(
            info.validate_query(&VectorQuery::new(vec![1.0, 0.0, 0.0], 101))
                .is_err()
        );
        assert!(info.validate_query(&VectorQuery::new(vec![1.0, 0.0, 0.0], 10)).is_ok());
    }

    #[test]
    fn scores_and_order() {
        assert_eq!(Metric::Euclidean.score(&[0.0, 0.0], &[3.0, 4.0]), 5.0);
        assert_eq!(Metric::DotProduct.score(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
        let best = top_k(
            Metric::Euclidean,
            [(3.0, "c"), (1.0, "b"), (1.0, "a"), (2.0, "d")],
            3,
            |s| *s,
        );
        assert_eq!(best.iter().map(|x| x.1).collect::<Vec<_>>(), ["a", "b", "d"]);
        let best = top_k(Metric::Cosine, [(0.1, "x"), (0.9, "y")], 5, |s| *s);
        assert_eq!(best[0].1, "y");
        assert_eq!("products".parse::<IndexKind>().unwrap(), IndexKind::Products);
        assert_eq!("dot-product".parse::<Metric>().unwrap(), Metric::DotProduct);
    }
}
