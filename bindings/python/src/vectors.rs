//! `crow.VectorIndex`: crow-store's embedded HNSW index (`crow_store::vector::HnswIndex`), the
//! one behind `crow search`, with its metadata filters and persistence.
//!
//! The index is multi-tenant (every call names an org); a Python `VectorIndex` is one tenant,
//! [`ORG`], so ids are unique per index. `save` writes the index's own snapshot layout plus a
//! small `crow-vector-index.json` with its dimensions and metric, which `load` reads first.

use std::path::{Path, PathBuf};

use crow_core::ports::VectorIndex as _;
use crow_core::vector::{self, IndexInfo, MetadataFilter, Metric, VectorQuery, VectorRecord};
use crow_store::vector::{HnswConfig, HnswIndex};
use numpy::ndarray::{Ix1, Ix2};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use serde::{Deserialize, Serialize};

use crate::convert::{check_array, from_py, object_from_py};
use crate::error::{PyResultExt as _, invalid};

/// The org every record of a Python index belongs to.
const ORG: &str = "default";
/// What `save` writes beside the index files.
const INFO_FILE: &str = "crow-vector-index.json";

/// The description `save` writes and `load` reads.
#[derive(Serialize, Deserialize)]
struct SavedInfo {
    format: u32,
    dimensions: usize,
    metric: Metric,
}

/// An approximate nearest-neighbour index (HNSW) of float32 vectors with string ids and
/// filterable JSON metadata.
///
/// ``metric`` is ``"cosine"`` (scores are cosine similarities, higher is closer; vectors are
/// normalized on the way in), ``"euclidean"`` (scores are distances, lower is closer) or
/// ``"dot-product"``. ``m``, ``ef_construction`` and ``ef_search`` tune the graph (see
/// ``crow_store::vector::HnswConfig``): higher is more accurate and slower.
///
/// An index made here lives in memory until :meth:`save`; one opened with :meth:`load` keeps its
/// directory up to date: every ``add`` and ``delete`` is in its log (synced) before the call
/// returns, and :meth:`save` to the same directory compacts it into a snapshot.
#[derive(Debug)]
#[pyclass(name = "VectorIndex", module = "crow", frozen)]
pub struct VectorIndex {
    index: HnswIndex,
}

fn parse_metric(metric: &str) -> PyResult<Metric> {
    metric.parse::<Metric>().py()
}

fn config(m: usize, ef_construction: usize, ef_search: usize) -> HnswConfig {
    HnswConfig {
        m,
        ef_construction,
        ef_search,
        ..HnswConfig::default()
    }
}

/// A metadata filter from a dict (Vectorize's JSON: ``{"label": "negative", "ts": {"$gte": 5}}``)
/// or from ``crow search --filter`` expressions (``"label=negative"``, or a list of them).
fn parse_filter(filter: Option<&Bound<'_, PyAny>>) -> PyResult<MetadataFilter> {
    let Some(f) = filter.filter(|f| !f.is_none()) else {
        return Ok(MetadataFilter::default());
    };
    if let Ok(s) = f.cast::<PyString>() {
        return MetadataFilter::parse_exprs([s.extract::<String>()?]).py();
    }
    if f.is_instance_of::<PyList>() {
        let exprs: Vec<String> = f
            .extract()
            .map_err(|_| invalid("filter: a list of filters must hold strings such as \"label=negative\""))?;
        return MetadataFilter::parse_exprs(&exprs).py();
    }
    MetadataFilter::from_json(&from_py(f, "filter")?).py()
}

#[pymethods]
impl VectorIndex {
    #[new]
    #[pyo3(signature = (dim, metric="cosine", *, m=16, ef_construction=200, ef_search=128))]
    fn new(dim: usize, metric: &str, m: usize, ef_construction: usize, ef_search: usize) -> PyResult<Self> {
        if dim == 0 {
            return Err(invalid("dim: must be at least 1"));
        }
        let info = IndexInfo {
            name: "python".into(),
            dimensions: dim,
            metric: parse_metric(metric)?,
        };
        Ok(VectorIndex {
            index: HnswIndex::in_memory(info, config(m, ef_construction, ef_search)).py()?,
        })
    }

    /// Opens an index saved with :meth:`save`. The directory stays in use by this index (a
    /// second ``load`` of it, here or in another process, raises :class:`UnavailableError`)
    /// and records every later change.
    #[staticmethod]
    #[pyo3(signature = (path, *, ef_search=128))]
    fn load(py: Python<'_>, path: PathBuf, ef_search: usize) -> PyResult<VectorIndex> {
        let info_path = path.join(INFO_FILE);
        let bytes = std::fs::read(&info_path).map_err(|e| {
            crate::error::StoreError::new_err(format!(
                "{}: not a saved crow.VectorIndex ({}: {e})",
                path.display(),
                info_path.display()
            ))
        })?;
        let saved: SavedInfo = serde_json::from_slice(&bytes)
            .map_err(|e| crate::error::StoreError::new_err(format!("{}: {e}", info_path.display())))?;
        let info = IndexInfo {
            name: "python".into(),
            dimensions: saved.dimensions,
            metric: saved.metric,
        };
        let defaults = HnswConfig::default();
        let cfg = config(defaults.m, defaults.ef_construction, ef_search);
        let index = py.detach(|| HnswIndex::open(&path, info, cfg)).py()?;
        Ok(VectorIndex { index })
    }

    /// Writes the index into the directory ``path`` (created; an index saved there before is
    /// replaced atomically), for :meth:`load`.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| -> Result<(), crow_store::StoreError> {
            self.index.save_to(&path)?;
            let saved = SavedInfo {
                format: 1,
                dimensions: self.index.info().dimensions,
                metric: self.index.info().metric,
            };
            write_atomically(&path.join(INFO_FILE), &serde_json::to_vec_pretty(&saved)?)
        })
        .py()
    }

    /// Adds (or replaces, by id) vectors: ``ids`` (strings of 1 to 64 bytes), ``vectors`` a
    /// C-contiguous float32 array of shape ``(len(ids), dim)``, and optional JSON ``metadata``
    /// (one dict per id) to filter on. Every record is checked before any is stored.
    #[pyo3(signature = (ids, vectors, metadata=None))]
    fn add(
        &self,
        py: Python<'_>,
        ids: Vec<String>,
        vectors: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let dim = self.index.info().dimensions;
        let expected = format!("of dtype float32 and shape ({}, {dim})", ids.len());
        let array = check_array::<f32, Ix2>(vectors, "vectors", &expected, &[Some(ids.len()), Some(dim)])?;
        let metadata = match metadata.filter(|m| !m.is_none()) {
            None => vec![serde_json::Map::new(); ids.len()],
            Some(list) => {
                let items: Vec<Bound<'_, PyAny>> = list.try_iter()?.collect::<PyResult<_>>()?;
                if items.len() != ids.len() {
                    return Err(invalid(format!(
                        "metadata: {} dicts for {} ids: one per id",
                        items.len(),
                        ids.len()
                    )));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, m)| object_from_py(Some(m), &format!("metadata[{i}]")))
                    .collect::<PyResult<Vec<_>>>()?
            }
        };
        let values = array.as_slice()?;
        py.detach(|| -> crow_core::Result<()> {
            let info = self.index.info();
            let records: Vec<VectorRecord> = ids
                .into_iter()
                .zip(metadata)
                .zip(values.chunks_exact(dim.max(1)))
                .map(|((id, metadata), v)| VectorRecord {
                    id,
                    namespace: None,
                    values: v.to_vec(),
                    metadata,
                })
                .collect();
            for (i, r) in records.iter().enumerate() {
                info.validate_record(i, r)?;
            }
            let mut records = records.into_iter().peekable();
            while records.peek().is_some() {
                let batch: Vec<VectorRecord> = records.by_ref().take(vector::MAX_UPSERT_BATCH).collect();
                crate::runtime().block_on(self.index.upsert(ORG, batch))?;
            }
            Ok(())
        })
        .py()
    }

    /// The ``k`` nearest records to ``vector`` (float32, shape ``(dim,)``) whose metadata match
    /// ``filter``, best first, as ``(id, score)`` pairs (at most 100). ``filter`` is Vectorize's
    /// JSON (``{"label": {"$in": ["negative"]}, "ts": {"$gte": 1733000000000}}``) or ``crow search``
    /// expressions (``"label=negative"`` or a list of them, ANDed).
    #[pyo3(signature = (vector, k=10, filter=None))]
    fn search(
        &self,
        py: Python<'_>,
        vector: &Bound<'_, PyAny>,
        k: usize,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<(String, f32)>> {
        let dim = self.index.info().dimensions;
        let expected = format!("of dtype float32 and shape ({dim},)");
        let array = check_array::<f32, Ix1>(vector, "vector", &expected, &[Some(dim)])?;
        let filter = parse_filter(filter)?;
        let values = array.as_slice()?;
        let hits = py
            .detach(|| {
                let query = VectorQuery::new(values.to_vec(), k).with_filter(filter);
                crate::runtime().block_on(self.index.query(ORG, &query))
            })
            .py()?;
        Ok(hits.into_iter().map(|h| (h.id, h.score)).collect())
    }

    /// Removes records by id (unknown ids are skipped); returns how many were removed.
    fn delete(&self, py: Python<'_>, ids: Vec<String>) -> PyResult<usize> {
        py.detach(|| crate::runtime().block_on(self.index.delete(ORG, &ids)))
            .py()
    }

    /// The vector length.
    #[getter]
    fn dim(&self) -> usize {
        self.index.info().dimensions
    }

    /// ``"cosine"``, ``"euclidean"`` or ``"dot-product"``.
    #[getter]
    fn metric(&self) -> &'static str {
        self.index.info().metric.as_str()
    }

    fn __len__(&self) -> PyResult<usize> {
        crate::runtime().block_on(self.index.count(ORG)).py()
    }

    fn __repr__(&self) -> PyResult<String> {
        Ok(format!(
            "VectorIndex(dim={}, metric={:?}, len={})",
            self.dim(),
            self.metric(),
            self.__len__()?
        ))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), crow_store::StoreError> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<VectorIndex>()
}
