//! `crow.analyze`, `crow.embed`, `crow.train_head` and `crow.Head`: crow-nlp, as `crow analyze`
//! and `crow train` call it (deploy/cli/src/nlp.rs).
//!
//! Loaded models are kept per models directory for the life of the process, so the first call
//! pays for loading (about a second) and later calls do not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use crow_nlp::entities::Gazetteer;
use crow_nlp::head::{self, Features, LabeledText, TrainConfig};
use crow_nlp::onnx::{EmbedderOptions, OnnxEmbedder};
use crow_nlp::{Analyzer, NlpConfig, NlpError};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::exceptions::PyRuntimeWarning;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{ser_to_py, to_py};
use crate::error::{PyResultExt as _, invalid};

/// Model-tier analyzers by models directory.
static ANALYZERS: LazyLock<Mutex<HashMap<PathBuf, Arc<Analyzer>>>> = LazyLock::new(Default::default);
/// Embedders by models directory.
static EMBEDDERS: LazyLock<Mutex<HashMap<PathBuf, Arc<OnnxEmbedder>>>> = LazyLock::new(Default::default);
/// The lexicon tier (needs no files).
static LEXICON: LazyLock<Arc<Analyzer>> = LazyLock::new(|| Arc::new(Analyzer::lexicon()));

/// True when the caller named a models directory (argument or `CROW_MODELS`).
fn models_explicit(models: &Option<PathBuf>) -> bool {
    models.is_some() || std::env::var_os("CROW_MODELS").is_some_and(|v| !v.is_empty())
}

/// The model-tier analyzer of a models directory, loaded once.
fn model_analyzer(dir: &Path) -> Result<Arc<Analyzer>, NlpError> {
    if let Some(a) = ANALYZERS.lock().unwrap_or_else(|p| p.into_inner()).get(dir) {
        return Ok(a.clone());
    }
    let a = Arc::new(Analyzer::load(&NlpConfig::with_models_dir(dir))?);
    ANALYZERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(dir.to_path_buf(), a.clone());
    Ok(a)
}

/// The sentence embedder of a models directory, loaded once.
pub(crate) fn embedder(dir: &Path) -> Result<Arc<OnnxEmbedder>, NlpError> {
    if let Some(e) = EMBEDDERS.lock().unwrap_or_else(|p| p.into_inner()).get(dir) {
        return Ok(e.clone());
    }
    let config = NlpConfig::with_models_dir(dir);
    let e = Arc::new(OnnxEmbedder::load(
        &config.onnxruntime_path(),
        &config.embedder_path(),
        EmbedderOptions::from(&config),
    )?);
    EMBEDDERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(dir.to_path_buf(), e.clone());
    Ok(e)
}

/// Embeddings of `texts` as an `(N, dim)` float32 array (moved into numpy, not copied).
fn to_array<'py>(py: Python<'py>, vectors: Vec<Vec<f32>>, dim: usize) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let n = vectors.len();
    let flat: Vec<f32> = vectors.into_iter().flatten().collect();
    let array = Array2::from_shape_vec((n, dim), flat)
        .map_err(|e| crate::error::ModelError::new_err(format!("the embedder returned ragged vectors: {e}")))?;
    Ok(array.into_pyarray(py))
}

/// The heads of `analyze(heads=...)`: `Head` objects or paths of head files.
fn extract_heads(heads: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<head::Head>> {
    let Some(heads) = heads.filter(|h| !h.is_none()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in heads.try_iter()? {
        let item = item?;
        if let Ok(h) = item.cast::<Head>() {
            out.push(h.borrow().inner.clone());
        } else if let Ok(path) = item.extract::<PathBuf>() {
            out.push(head::Head::load(&path).py()?);
        } else {
            return Err(invalid(format!(
                "heads: expected crow.Head objects or paths of head files, got {}",
                item.get_type()
            )));
        }
    }
    Ok(out)
}

/// Analyzes texts: language, sentiment ``{label, score, tier}``, entities
/// ``[{kind, text, start, end, product_id?, pii?}]`` and key phrases, one dict per text, in the
/// shape ``crow analyze`` prints.
///
/// The model tier (MiniLM embeddings and the trained sentiment head) runs when the models are
/// found (``models``, else ``CROW_MODELS``, else ``./models``); a directory that was named but does
/// not load raises :class:`ModelNotFoundError` (or :class:`ModelError`); when none was named and
/// ``./models`` does not load, the lexicon tier (VADER) runs and a :class:`RuntimeWarning` says
/// why. ``lexicon=True`` always runs the lexicon tier.
///
/// ``embed=True`` adds each text's ``"embedding"`` (384 floats); ``heads`` (:class:`Head` objects
/// or head files from ``crow train``) add ``"heads": {task: {"label", "confidence"}}``. Both need
/// the model tier.
#[pyfunction]
#[pyo3(signature = (texts, *, models=None, lexicon=false, embed=false, heads=None))]
fn analyze<'py>(
    py: Python<'py>,
    texts: Vec<String>,
    models: Option<PathBuf>,
    lexicon: bool,
    embed: bool,
    heads: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let heads = extract_heads(heads)?;
    let needs_model = embed || !heads.is_empty();
    let analyzer = if lexicon {
        if needs_model {
            return Err(invalid("embed and heads need the model tier: drop lexicon=True"));
        }
        LEXICON.clone()
    } else {
        let explicit = models_explicit(&models);
        let dir = crate::models_dir(models);
        match py.detach(|| model_analyzer(&dir)) {
            Ok(a) => a,
            Err(e) if explicit || needs_model => return Err(e).py(),
            Err(e) => {
                PyErr::warn(
                    py,
                    &py.get_type::<PyRuntimeWarning>(),
                    &std::ffi::CString::new(format!("crow.analyze: using the lexicon tier ({e})")).unwrap_or_default(),
                    1,
                )?;
                LEXICON.clone()
            }
        }
    };
    let (analyses, embeddings, verdicts) = py
        .detach(|| -> Result<_, NlpError> {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let analyses = analyzer.analyze_texts(&Gazetteer::default(), &refs)?;
            let embeddings = match needs_model {
                true => analyzer.embed_texts(&refs).transpose()?,
                false => None,
            };
            let verdicts = match &embeddings {
                Some(e) if !heads.is_empty() => Some(head::classify(&heads, &refs, e)?),
                _ => None,
            };
            Ok((analyses, embeddings, verdicts))
        })
        .py()?;
    let out = PyList::empty(py);
    for (i, analysis) in analyses.iter().enumerate() {
        let line = crow_ingest::api::AnalysisLine {
            analysis,
            embedding: embeddings.as_ref().filter(|_| embed).map(|e| e[i].as_slice()),
            heads: verdicts.as_ref().map(|v| serde_json::json!(v[i])),
        };
        out.append(ser_to_py(py, &line)?)?;
    }
    Ok(out)
}

/// Sentence embeddings of ``texts`` (all-MiniLM-L6-v2: mean-pooled, L2-normalized) as a
/// ``numpy.ndarray`` of shape ``(len(texts), 384)`` and dtype float32.
///
/// Raises :class:`ModelNotFoundError` when the embedding model or ONNX Runtime is missing from
/// ``models`` (else ``CROW_MODELS``, else ``./models``).
#[pyfunction]
#[pyo3(signature = (texts, *, models=None))]
fn embed<'py>(py: Python<'py>, texts: Vec<String>, models: Option<PathBuf>) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let dir = crate::models_dir(models);
    let (vectors, dim) = py
        .detach(|| -> Result<_, NlpError> {
            let e = embedder(&dir)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            Ok((e.embed(&refs)?, e.dim()))
        })
        .py()?;
    to_array(py, vectors, dim)
}

/// Trains a linear head (softmax regression) on the sentence embeddings of labelled texts, as
/// ``crow train`` does: balanced class weights, L2, stratified k-fold accuracy (and
/// leave-one-group-out when ``groups`` are given) and temperature calibration, in
/// :attr:`Head.report`.
///
/// ``features`` is ``"embedding+lexicon"`` (the embedding plus the lexicon tier's scores and
/// negation flag; the default) or ``"embedding"``. Heads with labels ``positive`` and
/// ``negative`` also train on negated variants of their sentences unless ``augment=False``.
/// Each label needs at least ``folds`` examples.
#[pyfunction]
#[pyo3(signature = (texts, labels, *, task="custom", features="embedding+lexicon", groups=None, models=None, l2=1e-4, folds=5, augment=true))]
#[allow(clippy::too_many_arguments)]
fn train_head(
    py: Python<'_>,
    texts: Vec<String>,
    labels: Vec<String>,
    task: &str,
    features: &str,
    groups: Option<Vec<String>>,
    models: Option<PathBuf>,
    l2: f32,
    folds: usize,
    augment: bool,
) -> PyResult<Head> {
    let features = Features::parse(features).ok_or_else(|| {
        invalid(format!(
            "features {features:?}: expected \"embedding+lexicon\" or \"embedding\""
        ))
    })?;
    if texts.len() != labels.len() {
        return Err(invalid(format!(
            "{} texts but {} labels: one label per text",
            texts.len(),
            labels.len()
        )));
    }
    if let Some(g) = &groups
        && g.len() != texts.len()
    {
        return Err(invalid(format!(
            "{} texts but {} groups: one group per text",
            texts.len(),
            g.len()
        )));
    }
    if let Some(i) = labels.iter().position(|l| l.trim().is_empty()) {
        return Err(invalid(format!("labels[{i}] is empty")));
    }
    let rows: Vec<LabeledText> = texts
        .into_iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (text, label))| LabeledText {
            text,
            label,
            group: groups.as_ref().map(|g| g[i].clone()),
        })
        .collect();
    let cfg = TrainConfig {
        l2,
        folds,
        augment_negation: augment,
        ..TrainConfig::default()
    };
    let dir = crate::models_dir(models);
    let inner = py
        .detach(|| -> Result<_, NlpError> {
            let e = embedder(&dir)?;
            let mut h = head::train_texts(task, &rows, features, |t| e.embed(t), &cfg)?;
            h.embedding_model = e.model_dir().file_name().map(|n| n.to_string_lossy().into_owned());
            Ok(h)
        })
        .py()?;
    Ok(Head { inner })
}

/// A trained linear head on sentence embeddings (``crow.train_head``, ``crow train``): a task
/// name, its labels, weights and what training measured.
#[derive(Debug)]
#[pyclass(name = "Head", module = "crow", frozen)]
pub struct Head {
    inner: head::Head,
}

#[pymethods]
impl Head {
    /// Reads a head file (JSON, as ``crow train --out`` and :meth:`save` write it).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Head> {
        Ok(Head {
            inner: head::Head::load(&path).py()?,
        })
    }

    /// Writes the head as JSON (atomically), for :meth:`load`, ``crow analyze --head`` and
    /// ``analyze(heads=[path])``.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).py()
    }

    /// The task name (``sentiment``, ``intent``, ...).
    #[getter]
    fn task(&self) -> &str {
        &self.inner.task
    }

    /// The labels, in the order of the probabilities.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.inner.labels.clone()
    }

    /// ``"embedding"`` or ``"embedding+lexicon"``.
    #[getter]
    fn features(&self) -> &'static str {
        match self.inner.features {
            Features::Embedding => "embedding",
            Features::EmbeddingLexicon => "embedding+lexicon",
        }
    }

    /// The length of the embeddings it was trained on.
    #[getter]
    fn embedding_dim(&self) -> usize {
        self.inner.embedding_dim
    }

    /// What training measured on held-out data (``examples``, ``per_label``, ``cv_accuracy``,
    /// ``cv_macro_f1``, ``temperature``, ...), or None for a head saved without it.
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.inner.report {
            Some(r) => ser_to_py(py, r),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// Classifies texts: one ``{"label", "confidence", "probabilities": {label: p}}`` per text.
    #[pyo3(signature = (texts, *, models=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        models: Option<PathBuf>,
    ) -> PyResult<Bound<'py, PyList>> {
        let dir = crate::models_dir(models);
        let predictions = py
            .detach(|| -> Result<_, NlpError> {
                let e = embedder(&dir)?;
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let vectors = e.embed(&refs)?;
                refs.iter()
                    .zip(&vectors)
                    .map(|(t, v)| self.inner.predict_text(v, t))
                    .collect::<Result<Vec<_>, _>>()
            })
            .py()?;
        let out = PyList::empty(py);
        for p in predictions {
            let d = PyDict::new(py);
            d.set_item("label", &p.label)?;
            d.set_item("confidence", p.confidence())?;
            let probs = PyDict::new(py);
            for (label, prob) in self.inner.labels.iter().zip(&p.probabilities) {
                probs.set_item(label, prob)?;
            }
            d.set_item("probabilities", probs)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// The head as a dict (the JSON of its file).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::to_value(&self.inner).map_err(|e| crate::error::CrowError::new_err(e.to_string()))?;
        to_py(py, &v)
    }

    fn __repr__(&self) -> String {
        format!(
            "Head(task={:?}, labels={:?}, features={:?})",
            self.inner.task,
            self.inner.labels,
            self.features()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    m.add_function(wrap_pyfunction!(embed, m)?)?;
    m.add_function(wrap_pyfunction!(train_head, m)?)?;
    m.add_class::<Head>()?;
    Ok(())
}
