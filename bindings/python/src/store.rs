//! `crow.Store`: a CROW data directory, opened the way the `crow` CLI opens it
//! (`crow_server::Backends`), read through crow-core's ports and written through
//! `IngestService::import` and the workflows (`crow ingest`).

use std::path::PathBuf;

use crow_core::model::{EventType, FrameEventKind};
use crow_core::ports::{
    AccountStore as _, EventStore as _, InteractionQuery, MentionQuery, Page, SessionQuery, SocialStore as _,
    VideoStore as _,
};
use crow_core::video::FrameEventQuery;
use crow_server::{Backends, ServerConfig, now_millis};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::convert::{from_py, millis, ser_to_py, to_py};
use crate::error::{PyResultExt as _, invalid};

/// Largest page the store serves.
const PAGE: u32 = 1000;

/// A CROW data directory (``crow --data DIR``, ``./crow-data`` by default for the CLI): its
/// interactions, sessions, social mentions and CCTV frame events, and ``ingest`` to add events.
///
/// Reads return a :class:`Records` list of dicts (the fields of the REST API's answers);
/// ``.to_pandas()`` turns one into a ``pandas.DataFrame`` with the millisecond timestamps as UTC
/// datetimes. Methods take an ``org`` id; it may be left out when the directory holds one org.
///
/// ``models=DIR`` loads the model tier for what ``ingest``'s workflows do with texts (model
/// sentiment, embeddings into the search indexes); without it they use the lexicon tier.
#[derive(Debug)]
#[pyclass(name = "Store", module = "crow", frozen)]
pub struct Store {
    backends: Backends,
    path: PathBuf,
}

/// Parses a snake_case enum value (`track`, `line_in`) as its serde form.
fn parse_enum<T: DeserializeOwned>(value: Option<&str>, what: &str, allowed: &str) -> PyResult<Option<T>> {
    value
        .map(|v| {
            serde_json::from_value(Value::String(v.to_owned()))
                .map_err(|_| invalid(format!("{what}: {v:?} is not one of {allowed}")))
        })
        .transpose()
}

impl Store {
    /// The org a call is about: `org`, else the directory's only org.
    fn org(&self, py: Python<'_>, org: Option<String>) -> PyResult<String> {
        let orgs = py
            .detach(|| crate::runtime().block_on(self.backends.store().list_orgs()))
            .py()?;
        match org {
            Some(id) if orgs.iter().any(|o| o.id == id) => Ok(id),
            Some(id) => Err(invalid(format!(
                "org: no org {id:?} in {} (it has {})",
                self.path.display(),
                orgs.iter().map(|o| o.id.as_str()).collect::<Vec<_>>().join(", ")
            ))),
            None => match orgs.as_slice() {
                [only] => Ok(only.id.clone()),
                [] => Err(invalid(format!(
                    "{} holds no org yet (`crow org create NAME`, or `crow demo`)",
                    self.path.display()
                ))),
                many => Err(invalid(format!(
                    "{} holds {} orgs: pass org= one of {}",
                    self.path.display(),
                    many.len(),
                    many.iter()
                        .map(|o| format!("{} ({})", o.id, o.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            },
        }
    }

    /// Reads pages until `limit` items (all when None), with the GIL released for each page.
    fn collect<'py, T, F>(&self, py: Python<'py>, limit: Option<usize>, mut fetch: F) -> PyResult<Bound<'py, PyAny>>
    where
        T: Serialize + Send,
        F: FnMut(&Backends, u32, Option<String>) -> crow_core::Result<Page<T>> + Send,
    {
        let mut items: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let want = limit.map_or(PAGE as usize, |l| (l - items.len()).min(PAGE as usize));
            if want == 0 {
                break;
            }
            let page_cursor = cursor.take();
            let (values, next) = py
                .detach(|| -> crow_core::Result<_> {
                    let page = fetch(&self.backends, want as u32, page_cursor)?;
                    let values = page
                        .data
                        .iter()
                        .map(|x| serde_json::to_value(x).map_err(crow_core::Error::backend))
                        .collect::<crow_core::Result<Vec<_>>>()?;
                    Ok((values, page.next_cursor))
                })
                .py()?;
            items.extend(values);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        records(py, &items)
    }
}

/// A `crow.Records` (a list of dicts with `to_pandas()`) of JSON values.
fn records<'py>(py: Python<'py>, items: &[Value]) -> PyResult<Bound<'py, PyAny>> {
    let list = PyList::empty(py);
    for v in items {
        list.append(to_py(py, v)?)?;
    }
    py.import("crow._records")?.getattr("Records")?.call1((list,))
}

#[pymethods]
impl Store {
    #[new]
    #[pyo3(signature = (path, *, models=None))]
    fn new(py: Python<'_>, path: PathBuf, models: Option<PathBuf>) -> PyResult<Self> {
        let mut config = ServerConfig::new(&path, ([127, 0, 0, 1], 0).into());
        match models {
            Some(dir) => config.nlp.models_dir = dir,
            None => config.nlp.use_models = false,
        }
        let backends = py
            .detach(|| {
                let _rt = crate::runtime().enter();
                Backends::open(&config)
            })
            .py()?;
        Ok(Store { backends, path })
    }

    /// The data directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// ``"model"`` when ``ingest``'s workflows analyze texts with the model tier, else
    /// ``"lexicon"``.
    #[getter]
    fn text_tier(&self) -> &'static str {
        self.backends.analyzer.tier()
    }

    /// The orgs of the directory: ``[{"id", "name", "created_at"}]``, oldest first.
    fn orgs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let orgs = py
            .detach(|| crate::runtime().block_on(self.backends.store().list_orgs()))
            .py()?;
        let values = orgs
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| crate::error::CrowError::new_err(e.to_string()))?;
        records(py, &values)
    }

    /// Creates an org, as ``crow org create NAME``: returns ``{"org_id", "write_key",
    /// "api_key"}`` (the secret API key is shown this once; only its hash is stored).
    fn create_org<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        if name.trim().is_empty() {
            return Err(invalid("name: the org name must not be empty"));
        }
        let creds = py
            .detach(|| crate::runtime().block_on(self.backends.store().create_org(name.trim(), now_millis())))
            .py()?;
        ser_to_py(py, &creds)
    }

    /// Interactions (page views, tracked actions, identifies, ...), newest first. Filters:
    /// ``type`` (``page``, ``track``, ``identify``, ``screen``, ``group``, ``alias``), ``name``
    /// (of a tracked action), ``since``/``until`` (milliseconds since the epoch, or datetimes),
    /// ``session_id``, ``person_id``; ``limit`` (None: all).
    #[pyo3(signature = (org=None, *, r#type=None, name=None, since=None, until=None, session_id=None, person_id=None, limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn interactions<'py>(
        &self,
        py: Python<'py>,
        org: Option<String>,
        r#type: Option<&str>,
        name: Option<String>,
        since: Option<&Bound<'py, PyAny>>,
        until: Option<&Bound<'py, PyAny>>,
        session_id: Option<String>,
        person_id: Option<String>,
        limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let org = self.org(py, org)?;
        let query = InteractionQuery {
            event_type: parse_enum::<EventType>(r#type, "type", "page, track, identify, screen, group, alias")?,
            name,
            since: millis(since, "since")?,
            until: millis(until, "until")?,
            session_id,
            person_id,
            ..InteractionQuery::default()
        };
        self.collect(py, limit, |b, n, cursor| {
            let q = InteractionQuery {
                limit: n,
                cursor,
                ..query.clone()
            };
            crate::runtime().block_on(b.store().list_interactions(&org, &q))
        })
    }

    /// Sessions, newest first by start. Filters: ``since`` (started at or after), ``person_id``;
    /// ``limit`` (None: all).
    #[pyo3(signature = (org=None, *, since=None, person_id=None, limit=None))]
    fn sessions<'py>(
        &self,
        py: Python<'py>,
        org: Option<String>,
        since: Option<&Bound<'py, PyAny>>,
        person_id: Option<String>,
        limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let org = self.org(py, org)?;
        let query = SessionQuery {
            since: millis(since, "since")?,
            person_id,
            ..SessionQuery::default()
        };
        self.collect(py, limit, |b, n, cursor| {
            let q = SessionQuery {
                limit: n,
                cursor,
                ..query.clone()
            };
            crate::runtime().block_on(b.store().list_sessions(&org, &q))
        })
    }

    /// Social mentions (``crow social``), newest first. Filters: ``platform``, ``source`` (a
    /// configured source's name), ``selected`` (kept by the pre-filter or not), ``since``/``until``
    /// (posted); ``limit`` (None: all).
    #[pyo3(signature = (org=None, *, platform=None, source=None, selected=None, since=None, until=None, limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn mentions<'py>(
        &self,
        py: Python<'py>,
        org: Option<String>,
        platform: Option<String>,
        source: Option<String>,
        selected: Option<bool>,
        since: Option<&Bound<'py, PyAny>>,
        until: Option<&Bound<'py, PyAny>>,
        limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let org = self.org(py, org)?;
        let query = MentionQuery {
            platform,
            source,
            selected,
            since: millis(since, "since")?,
            until: millis(until, "until")?,
            ..MentionQuery::default()
        };
        self.collect(py, limit, |b, n, cursor| {
            let q = MentionQuery {
                limit: n,
                cursor,
                ..query.clone()
            };
            crate::runtime().block_on(b.store().list_mentions(&org, &q))
        })
    }

    /// CCTV frame events (``crow video``), oldest first. Filters: ``camera``, ``kind``
    /// (``motion``, ``presence``, ``line_in``, ``line_out``, ``occupancy``, ``dwell``), ``zone``,
    /// ``since``/``until``; ``limit`` (None: all).
    #[pyo3(signature = (org=None, *, camera=None, kind=None, zone=None, since=None, until=None, limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn frame_events<'py>(
        &self,
        py: Python<'py>,
        org: Option<String>,
        camera: Option<String>,
        kind: Option<&str>,
        zone: Option<String>,
        since: Option<&Bound<'py, PyAny>>,
        until: Option<&Bound<'py, PyAny>>,
        limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let org = self.org(py, org)?;
        let query = FrameEventQuery {
            camera_id: camera,
            kind: parse_enum::<FrameEventKind>(kind, "kind", "motion, presence, line_in, line_out, occupancy, dwell")?,
            zone,
            since: millis(since, "since")?,
            until: millis(until, "until")?,
            ..FrameEventQuery::default()
        };
        self.collect(py, limit, |b, n, cursor| {
            let q = FrameEventQuery {
                limit: n,
                cursor,
                ..query.clone()
            };
            crate::runtime().block_on(b.store().list_frame_events(&org, &q))
        })
    }

    /// Imports events, as ``crow ingest`` does: each a dict in Segment's layout
    /// (``{"type": "track", "event": "Order Completed", "userId": ..., "properties": ...}``) or
    /// CROW's long one, validated and PII-scrubbed like ingested HTTP events, deduplicated by
    /// ``messageId``. Then the workflows run (sessions, identity, text analysis) unless
    /// ``run_workflows=False`` or a running ``crow serve`` is this directory's worker.
    ///
    /// Returns ``{"inserted", "duplicates", "rejected": [{"index", "field", "reason"}],
    /// "jobs_run"}`` (``jobs_run`` is None when the workflows were left to another process).
    #[pyo3(signature = (events, org=None, *, run_workflows=true))]
    fn ingest<'py>(
        &self,
        py: Python<'py>,
        events: &Bound<'py, PyAny>,
        org: Option<String>,
        run_workflows: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let org = self.org(py, org)?;
        let mut values = Vec::new();
        for (i, e) in events.try_iter()?.enumerate() {
            let v = from_py(&e?, &format!("events[{i}]"))?;
            if !v.is_object() {
                return Err(invalid(format!("events[{i}]: expected a dict")));
            }
            values.push(v);
        }
        let (outcome, jobs) = py
            .detach(|| {
                crate::runtime().block_on(async {
                    let grant = self
                        .backends
                        .store()
                        .org_grant(&org)
                        .await
                        .py_core()?
                        .ok_or_else(|| crow_core::Error::NotFound(format!("org {org}")))
                        .py_core()?;
                    let outcome = self
                        .backends
                        .ingest
                        .import(&grant, values, now_millis())
                        .await
                        .py_core()?;
                    let jobs = match run_workflows {
                        true => self.backends.drain_if_worker().await.map_err(Failure::Server)?,
                        false => None,
                    };
                    Ok::<_, Failure>((outcome, jobs))
                })
            })
            .map_err(Failure::into_py)?;
        let d = PyDict::new(py);
        d.set_item("inserted", outcome.inserted)?;
        d.set_item("duplicates", outcome.duplicates)?;
        d.set_item("rejected", ser_to_py(py, &outcome.rejected)?)?;
        d.set_item("jobs_run", jobs)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Store({:?}, text_tier={:?})",
            self.path.display().to_string(),
            self.text_tier()
        )
    }
}

/// An error inside `ingest`'s async block (converted to a Python exception with the GIL held).
enum Failure {
    Core(crow_core::Error),
    Server(crow_server::ServerError),
}

impl Failure {
    fn into_py(self) -> PyErr {
        use crate::error::IntoPyErr as _;
        match self {
            Failure::Core(e) => e.into_py_err(),
            Failure::Server(e) => e.into_py_err(),
        }
    }
}

trait CoreExt<T> {
    fn py_core(self) -> Result<T, Failure>;
}

impl<T> CoreExt<T> for crow_core::Result<T> {
    fn py_core(self) -> Result<T, Failure> {
        self.map_err(Failure::Core)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Store>()
}
