//! `export-report`: writes one export record's resource to the object store, under
//! `exports/{org}/{id}.{ext}`, and records the outcome on the export.
//!
//! The workflow pages through the resource for the org (1000 rows a page, the store's own
//! order: interactions, sessions and mentions newest first, products by sku, frame events
//! oldest first) with the export's filters, and writes one of:
//!
//! - **CSV** (`.csv`): RFC 4180 (CRLF line ends, fields quoted when needed), a header row,
//!   one row per item; timestamps as RFC 3339; nested values (`properties`, `context`,
//!   `analysis`, `engagement`, ...) as JSON text; absent values as empty fields.
//! - **JSON** (`.ndjson`): newline-delimited JSON, one object per line, each item as the API
//!   renders it (timestamps as RFC 3339, nested values as objects). NDJSON rather than one array
//!   so a consumer can stream it line by line.
//! - **Parquet** (`.parquet`, crow-ingest feature `parquet`): the CSV's columns, typed: strings
//!   as `BYTE_ARRAY (STRING)`, counts as `INT64`, scores as `DOUBLE`, flags as `BOOLEAN`,
//!   timestamps as `INT64 (TIMESTAMP(MILLIS, true))`, nested values as JSON strings; every
//!   column optional; a row group per 10 000 rows; uncompressed.
//!
//! The columns of each resource are fixed ([`columns`]), so every file of a resource has the
//! same header; the org id is left out (an export is one org's).
//!
//! Outcomes: `succeeded` (rows, bytes, key, `finished_at`), or `failed` with the error when it
//! cannot succeed (more than [`MAX_ROWS`] rows, a format this build cannot write, a filter the
//! store refuses) or on the last delivery ([`RetryPolicy::default`]'s `max_attempts`). A
//! transient error (the store, the object store) is noted on the export and the job retried.
//! A redelivered job of a finished export does nothing, so the workflow is idempotent.

use crow_core::export::{Export, ExportFormat, ExportResource, ExportStatus};
use crow_core::model::Millis;
use crow_core::ports::{
    BlobStore, CatalogStore, Embedder, EventStore, ExportStore, InteractionQuery, MentionQuery, RetryPolicy,
    SessionQuery, SocialStore, TextAnalyzer, VideoStore,
};
use crow_core::time::format_millis;
use crow_core::video::FrameEventQuery;
use crow_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Ports;
use crate::jobs::ExportJob;
use crate::search::Indexes;

/// Most rows one export writes; a larger one fails and asks for a narrower time range.
pub const MAX_ROWS: u64 = 1_000_000;
/// Rows per store page.
const PAGE: u32 = 1000;
/// Rows per Parquet row group.
#[cfg(feature = "parquet")]
const ROW_GROUP: usize = 10_000;

/// What one `export-report` run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportOutcome {
    /// The export's status afterwards (`None` when the export does not exist).
    pub status: Option<ExportStatus>,
    /// Rows written (succeeded).
    pub rows: u64,
    /// Bytes written (succeeded).
    pub bytes: u64,
    /// True when the export was already finished (a redelivery) and nothing was done.
    pub skipped: bool,
}

/// The kind of a column: how a value is written in each format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Text (numbers and flags in it are written as text).
    Str,
    /// A signed 64-bit integer.
    Int,
    /// A 64-bit float.
    Float,
    /// A flag.
    Bool,
    /// Milliseconds since the epoch, written as RFC 3339 (CSV, JSON) or a UTC timestamp (Parquet).
    Time,
    /// A nested value, written as JSON text (CSV, Parquet) or as is (JSON).
    Json,
}

use ColumnKind::*;

const INTERACTION_COLUMNS: &[(&str, ColumnKind)] = &[
    ("id", Str),
    ("type", Str),
    ("name", Str),
    ("anonymous_id", Str),
    ("user_id", Str),
    ("session_id", Str),
    ("group_id", Str),
    ("previous_id", Str),
    ("person_id", Str),
    ("timestamp", Time),
    ("original_timestamp", Time),
    ("sent_at", Time),
    ("received_at", Time),
    ("source", Str),
    ("is_bot", Bool),
    ("pii_scrubbed", Int),
    ("referrer_class", Str),
    ("properties", Json),
    ("traits", Json),
    ("context", Json),
    ("analysis", Json),
];

const SESSION_COLUMNS: &[(&str, ColumnKind)] = &[
    ("id", Str),
    ("person_id", Str),
    ("started_at", Time),
    ("ended_at", Time),
    ("event_count", Int),
    ("page_count", Int),
    ("entry_path", Str),
    ("exit_path", Str),
    ("referrer", Str),
    ("referrer_class", Str),
    ("campaign", Str),
    ("device", Str),
    ("is_bot", Bool),
];

const MENTION_COLUMNS: &[(&str, ColumnKind)] = &[
    ("id", Str),
    ("platform", Str),
    ("platform_id", Str),
    ("author", Str),
    ("text", Str),
    ("url", Str),
    ("language", Str),
    ("posted_at", Time),
    ("fetched_at", Time),
    ("sentiment", Float),
    ("lexicon_score", Float),
    ("source", Str),
    ("query", Str),
    ("selected", Bool),
    // A 64-bit unsigned hash: text, so no format truncates it.
    ("simhash", Str),
    ("engagement", Json),
    ("analysis", Json),
];

const PRODUCT_COLUMNS: &[(&str, ColumnKind)] = &[
    ("id", Str),
    ("sku", Str),
    ("name", Str),
    ("brand", Str),
    ("category", Str),
    ("price_cents", Int),
    ("currency", Str),
    ("url", Str),
    ("description", Str),
    ("updated_at", Time),
];

const FRAME_EVENT_COLUMNS: &[(&str, ColumnKind)] = &[
    ("id", Str),
    ("camera_id", Str),
    ("timestamp", Time),
    ("kind", Str),
    ("zone", Str),
    ("count", Int),
    ("value", Float),
    ("frame_key", Str),
];

/// The columns of a resource's CSV and Parquet files, in order.
pub fn columns(resource: ExportResource) -> &'static [(&'static str, ColumnKind)] {
    match resource {
        ExportResource::Interactions => INTERACTION_COLUMNS,
        ExportResource::Sessions => SESSION_COLUMNS,
        ExportResource::Mentions => MENTION_COLUMNS,
        ExportResource::Products => PRODUCT_COLUMNS,
        ExportResource::FrameEvents => FRAME_EVENT_COLUMNS,
    }
}

/// A [`Ports`] bundle that can also run `export-report`: `ports` plus the export and catalog
/// stores (and, when `ports` lacks them, the social and video stores for mention and frame
/// event exports).
///
/// ```
/// use crow_core::testing::{MemoryBlobStore, MemoryStore};
/// use crow_ingest::workflows::{PortRefs, Ports, WithExports};
/// let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
/// let ports = WithExports {
///     ports: PortRefs::shared(&store, &blobs),
///     exports: &store,
///     catalog: &store,
///     social: Some(&store),
///     video: Some(&store),
/// };
/// assert!(ports.exports().is_some());
/// ```
pub struct WithExports<'a, P> {
    /// The other ports.
    pub ports: P,
    /// Export records.
    pub exports: &'a dyn ExportStore,
    /// The product catalog.
    pub catalog: &'a dyn CatalogStore,
    /// The social store, when `ports` has none.
    pub social: Option<&'a dyn SocialStore>,
    /// The video store, when `ports` has none.
    pub video: Option<&'a dyn VideoStore>,
}

impl<P: std::fmt::Debug> std::fmt::Debug for WithExports<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithExports")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl<P: Ports> Ports for WithExports<'_, P> {
    type Events = P::Events;
    type Queue = P::Queue;
    type Steps = P::Steps;
    type Blobs = P::Blobs;
    fn events(&self) -> &Self::Events {
        self.ports.events()
    }
    fn queue(&self) -> &Self::Queue {
        self.ports.queue()
    }
    fn steps(&self) -> &Self::Steps {
        self.ports.steps()
    }
    fn blobs(&self) -> &Self::Blobs {
        self.ports.blobs()
    }
    fn analyzer(&self) -> Option<&dyn TextAnalyzer> {
        self.ports.analyzer()
    }
    fn embedder(&self) -> Option<&dyn Embedder> {
        self.ports.embedder()
    }
    fn indexes(&self) -> Option<&Indexes> {
        self.ports.indexes()
    }
    fn social(&self) -> Option<&dyn SocialStore> {
        self.ports.social().or(self.social)
    }
    fn video(&self) -> Option<&dyn VideoStore> {
        self.ports.video().or(self.video)
    }
    fn exports(&self) -> Option<&dyn ExportStore> {
        Some(self.exports)
    }
    fn catalog(&self) -> Option<&dyn CatalogStore> {
        Some(self.catalog)
    }
}

/// Runs `export-report` for one export. `attempt` is the job's delivery count: on the last
/// one ([`RetryPolicy::default`]'s `max_attempts`) a transient error fails the export too.
pub async fn export_report<P: Ports + ?Sized>(
    ports: &P,
    job: &ExportJob,
    attempt: u32,
    now: Millis,
) -> Result<ExportOutcome> {
    let Some(store) = ports.exports() else {
        return Err(Error::Backend(
            "export-report needs the export store; this worker has none".into(),
        ));
    };
    let Some(mut export) = store.get_export(&job.org_id, &job.export_id).await? else {
        tracing::warn!(org = %job.org_id, export = %job.export_id, "export-report: no such export");
        return Ok(ExportOutcome::default());
    };
    if matches!(export.status, ExportStatus::Succeeded | ExportStatus::Failed) {
        return Ok(ExportOutcome {
            status: Some(export.status),
            skipped: true,
            ..ExportOutcome::default()
        });
    }
    export.status = ExportStatus::Running;
    export.started_at = Some(now);
    store.update_export(&job.org_id, &export).await?;

    let written = async {
        let (bytes, rows) = write_export(ports, &export).await?;
        let key = Export::object_key(&export.org_id, &export.id, export.format);
        let size = bytes.len() as u64;
        ports.blobs().put(&key, bytes).await?;
        Ok::<_, Error>((key, rows, size))
    }
    .await;
    match written {
        Ok((key, rows, bytes)) => {
            export.status = ExportStatus::Succeeded;
            export.rows = Some(rows);
            export.bytes = Some(bytes);
            export.key = Some(key);
            export.error = None;
            export.finished_at = Some(now);
            store.update_export(&job.org_id, &export).await?;
            tracing::info!(org = %job.org_id, export = %export.id, rows, bytes, "export written");
            Ok(ExportOutcome {
                status: Some(export.status),
                rows,
                bytes,
                skipped: false,
            })
        }
        Err(e) if e.is_client_error() || attempt >= RetryPolicy::default().max_attempts => {
            export.status = ExportStatus::Failed;
            export.error = Some(e.to_string());
            export.finished_at = Some(now);
            store.update_export(&job.org_id, &export).await?;
            tracing::warn!(org = %job.org_id, export = %export.id, error = %e, "export failed");
            Ok(ExportOutcome {
                status: Some(export.status),
                ..ExportOutcome::default()
            })
        }
        Err(e) => {
            export.error = Some(format!("attempt {attempt} failed, retrying: {e}"));
            if let Err(note) = store.update_export(&job.org_id, &export).await {
                tracing::warn!(error = %note, "could not note the export's error");
            }
            Err(e)
        }
    }
}

/// Writes an export's file in memory: the bytes and the number of rows. Errors with
/// `TooLarge` past [`MAX_ROWS`] rows and `Invalid` for a format this build cannot write.
pub async fn write_export<P: Ports + ?Sized>(ports: &P, export: &Export) -> Result<(Vec<u8>, u64)> {
    let cols = columns(export.resource);
    let mut sink = Sink::new(export.format, cols)?;
    let f = &export.filters;
    let org = export.org_id.as_str();
    let mut cursor: Option<String> = None;
    loop {
        let (items, next) = match export.resource {
            ExportResource::Interactions => {
                let q = InteractionQuery {
                    limit: PAGE,
                    cursor: cursor.clone(),
                    event_type: f.event_type,
                    name: f.name.clone(),
                    since: f.since,
                    until: f.until,
                    session_id: f.session_id.clone(),
                    person_id: f.person_id.clone(),
                };
                let p = ports.events().list_interactions(org, &q).await?;
                (values(&p.data)?, p.next_cursor)
            }
            ExportResource::Sessions => {
                let q = SessionQuery {
                    limit: PAGE,
                    cursor: cursor.clone(),
                    since: f.since,
                    person_id: f.person_id.clone(),
                };
                let p = ports.events().list_sessions(org, &q).await?;
                let kept: Vec<_> = p
                    .data
                    .into_iter()
                    .filter(|s| f.until.is_none_or(|u| s.started_at < u))
                    .collect();
                (values(&kept)?, p.next_cursor)
            }
            ExportResource::Mentions => {
                let social = ports.social().ok_or_else(|| {
                    Error::Backend("a mentions export needs the social store; this worker has none".into())
                })?;
                let q = MentionQuery {
                    limit: PAGE,
                    cursor: cursor.clone(),
                    platform: f.platform.clone(),
                    source: f.source.clone(),
                    selected: None,
                    since: f.since,
                    until: f.until,
                };
                let p = social.list_mentions(org, &q).await?;
                (values(&p.data)?, p.next_cursor)
            }
            ExportResource::Products => {
                let catalog = ports.catalog().ok_or_else(|| {
                    Error::Backend("a products export needs the catalog store; this worker has none".into())
                })?;
                let q = crow_core::catalog::ProductQuery {
                    limit: PAGE,
                    cursor: cursor.clone(),
                    category: f.category.clone(),
                    brand: f.brand.clone(),
                    name_prefix: None,
                };
                let p = catalog.query_products(org, &q).await?;
                let kept: Vec<_> = p
                    .data
                    .into_iter()
                    .filter(|x| f.since.is_none_or(|s| x.updated_at >= s) && f.until.is_none_or(|u| x.updated_at < u))
                    .collect();
                (values(&kept)?, p.next_cursor)
            }
            ExportResource::FrameEvents => {
                let video = ports.video().ok_or_else(|| {
                    Error::Backend("a frame events export needs the video store; this worker has none".into())
                })?;
                let q = FrameEventQuery {
                    limit: PAGE,
                    cursor: cursor.clone(),
                    camera_id: f.camera_id.clone(),
                    kind: f.kind,
                    zone: f.zone.clone(),
                    since: f.since,
                    until: f.until,
                };
                let p = video.list_frame_events(org, &q).await?;
                (values(&p.data)?, p.next_cursor)
            }
        };
        for item in &items {
            if sink.rows >= MAX_ROWS {
                return Err(Error::TooLarge(format!(
                    "the export has more than {MAX_ROWS} rows; narrow it with since/until or filters"
                )));
            }
            sink.row(item)?;
        }
        match next {
            Some(c) if cursor.as_deref() != Some(c.as_str()) => cursor = Some(c),
            _ => break,
        }
    }
    let rows = sink.rows;
    Ok((sink.finish()?, rows))
}

fn values<T: Serialize>(items: &[T]) -> Result<Vec<Map<String, Value>>> {
    items
        .iter()
        .map(|x| match serde_json::to_value(x) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(Error::backend("an exported item is not a JSON object")),
            Err(e) => Err(Error::backend(e)),
        })
        .collect()
}

/// A value as CSV text (`None`: an empty field).
fn text(v: Option<&Value>, kind: ColumnKind) -> Option<String> {
    match (v?, kind) {
        (Value::Null, _) => None,
        (Value::Number(n), Time) => n.as_i64().map(format_millis),
        (Value::String(s), _) => Some(s.clone()),
        (other @ (Value::Object(_) | Value::Array(_)), _) => Some(other.to_string()),
        (other, _) => Some(other.to_string()),
    }
}

/// Writes rows in one format.
struct Sink {
    cols: &'static [(&'static str, ColumnKind)],
    out: Out,
    rows: u64,
}

enum Out {
    Csv(Box<csv::Writer<Vec<u8>>>),
    Json(Vec<u8>),
    #[cfg(feature = "parquet")]
    Parquet(Box<parquet_sink::ParquetSink>),
}

impl Sink {
    fn new(format: ExportFormat, cols: &'static [(&'static str, ColumnKind)]) -> Result<Self> {
        let out = match format {
            ExportFormat::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(Vec::new());
                w.write_record(cols.iter().map(|(name, _)| *name))
                    .map_err(Error::backend)?;
                Out::Csv(Box::new(w))
            }
            ExportFormat::Json => Out::Json(Vec::new()),
            #[cfg(feature = "parquet")]
            ExportFormat::Parquet => Out::Parquet(Box::new(parquet_sink::ParquetSink::new(cols)?)),
            #[cfg(not(feature = "parquet"))]
            ExportFormat::Parquet => {
                return Err(Error::invalid(
                    "format",
                    "this build of CROW writes no Parquet (crow-ingest feature `parquet`); ask for csv or json",
                ));
            }
        };
        Ok(Sink { cols, out, rows: 0 })
    }

    fn row(&mut self, item: &Map<String, Value>) -> Result<()> {
        match &mut self.out {
            Out::Csv(w) => {
                let fields = self
                    .cols
                    .iter()
                    .map(|(name, kind)| text(item.get(*name), *kind).unwrap_or_default());
                w.write_record(fields).map_err(Error::backend)?;
            }
            Out::Json(buf) => {
                let mut obj = item.clone();
                for (name, kind) in self.cols {
                    if *kind == Time
                        && let Some(ms) = obj.get(*name).and_then(Value::as_i64)
                    {
                        obj.insert((*name).to_owned(), Value::String(format_millis(ms)));
                    }
                }
                serde_json::to_writer(&mut *buf, &obj).map_err(Error::backend)?;
                buf.push(b'\n');
            }
            #[cfg(feature = "parquet")]
            Out::Parquet(p) => p.row(item)?,
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>> {
        match self.out {
            Out::Csv(w) => (*w).into_inner().map_err(|e| Error::backend(e.error())),
            Out::Json(buf) => Ok(buf),
            #[cfg(feature = "parquet")]
            Out::Parquet(p) => (*p).finish(),
        }
    }
}

#[cfg(feature = "parquet")]
mod parquet_sink {
    //! The Parquet writer: rows buffered per row group, written column by column.

    use std::sync::Arc;

    use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use serde_json::{Map, Value};

    use super::{ColumnKind, ROW_GROUP, text};
    use crow_core::{Error, Result};

    fn err(e: parquet::errors::ParquetError) -> Error {
        Error::backend(format!("parquet: {e}"))
    }

    /// One buffered cell.
    enum Cell {
        Str(Option<ByteArray>),
        Int(Option<i64>),
        Float(Option<f64>),
        Bool(Option<bool>),
    }

    pub(super) struct ParquetSink {
        cols: &'static [(&'static str, ColumnKind)],
        writer: SerializedFileWriter<Vec<u8>>,
        /// Buffered rows of the current row group, column-major.
        buffer: Vec<Vec<Cell>>,
        buffered: usize,
    }

    /// The schema of a column list: every column optional.
    pub(super) fn message_type(cols: &[(&str, ColumnKind)]) -> String {
        let mut s = String::from("message export {\n");
        for (name, kind) in cols {
            let ty = match kind {
                ColumnKind::Str | ColumnKind::Json => "binary",
                ColumnKind::Int => "int64",
                ColumnKind::Float => "double",
                ColumnKind::Bool => "boolean",
                ColumnKind::Time => "int64",
            };
            let logical = match kind {
                ColumnKind::Str | ColumnKind::Json => " (STRING)",
                ColumnKind::Time => " (TIMESTAMP(MILLIS,true))",
                _ => "",
            };
            s.push_str(&format!("  optional {ty} {name}{logical};\n"));
        }
        s.push('}');
        s
    }

    impl ParquetSink {
        pub(super) fn new(cols: &'static [(&'static str, ColumnKind)]) -> Result<Self> {
            let schema = Arc::new(parse_message_type(&message_type(cols)).map_err(err)?);
            let props = Arc::new(WriterProperties::builder().set_created_by("crow".into()).build());
            let writer = SerializedFileWriter::new(Vec::new(), schema, props).map_err(err)?;
            Ok(ParquetSink {
                cols,
                writer,
                buffer: cols.iter().map(|_| Vec::new()).collect(),
                buffered: 0,
            })
        }

        pub(super) fn row(&mut self, item: &Map<String, Value>) -> Result<()> {
            for ((name, kind), column) in self.cols.iter().zip(self.buffer.iter_mut()) {
                let v = item.get(*name).filter(|v| !v.is_null());
                column.push(match kind {
                    ColumnKind::Str | ColumnKind::Json => {
                        Cell::Str(text(v, *kind).map(|s| ByteArray::from(s.into_bytes())))
                    }
                    ColumnKind::Int | ColumnKind::Time => Cell::Int(v.and_then(Value::as_i64)),
                    ColumnKind::Float => Cell::Float(v.and_then(Value::as_f64)),
                    ColumnKind::Bool => Cell::Bool(v.and_then(Value::as_bool)),
                });
            }
            self.buffered += 1;
            if self.buffered >= ROW_GROUP {
                self.flush()?;
            }
            Ok(())
        }

        fn flush(&mut self) -> Result<()> {
            if self.buffered == 0 {
                return Ok(());
            }
            let mut rg = self.writer.next_row_group().map_err(err)?;
            for column in self.buffer.iter_mut() {
                let cells = std::mem::take(column);
                let Some(mut w) = rg.next_column().map_err(err)? else {
                    return Err(Error::backend("parquet: fewer columns than the schema"));
                };
                let defs: Vec<i16> = cells
                    .iter()
                    .map(|c| match c {
                        Cell::Str(v) => v.is_some(),
                        Cell::Int(v) => v.is_some(),
                        Cell::Float(v) => v.is_some(),
                        Cell::Bool(v) => v.is_some(),
                    } as i16)
                    .collect();
                match cells.first() {
                    Some(Cell::Str(_)) => {
                        let vals: Vec<ByteArray> = cells
                            .into_iter()
                            .filter_map(|c| if let Cell::Str(v) = c { v } else { None })
                            .collect();
                        w.typed::<ByteArrayType>()
                            .write_batch(&vals, Some(&defs), None)
                            .map_err(err)?;
                    }
                    Some(Cell::Int(_)) => {
                        let vals: Vec<i64> = cells
                            .into_iter()
                            .filter_map(|c| if let Cell::Int(v) = c { v } else { None })
                            .collect();
                        w.typed::<Int64Type>()
                            .write_batch(&vals, Some(&defs), None)
                            .map_err(err)?;
                    }
                    Some(Cell::Float(_)) => {
                        let vals: Vec<f64> = cells
                            .into_iter()
                            .filter_map(|c| if let Cell::Float(v) = c { v } else { None })
                            .collect();
                        w.typed::<DoubleType>()
                            .write_batch(&vals, Some(&defs), None)
                            .map_err(err)?;
                    }
                    Some(Cell::Bool(_)) => {
                        let vals: Vec<bool> = cells
                            .into_iter()
                            .filter_map(|c| if let Cell::Bool(v) = c { v } else { None })
                            .collect();
                        w.typed::<BoolType>()
                            .write_batch(&vals, Some(&defs), None)
                            .map_err(err)?;
                    }
                    None => {}
                }
                w.close().map_err(err)?;
            }
            rg.close().map_err(err)?;
            self.buffered = 0;
            Ok(())
        }

        pub(super) fn finish(mut self) -> Result<Vec<u8>> {
            self.flush()?;
            self.writer.into_inner().map_err(err)
        }
    }
}
