//! The workflows that run after ingest acknowledged a batch, and the trigger that starts them.
//!
//! Everything here is written against crow-core's ports only and never reads a clock (`now` is
//! passed in), so the same code runs in the native server (over crow-store's SQLite store and
//! object store) and in the Cloudflare Worker (over D1, Queues and R2), and compiles for
//! `wasm32-unknown-unknown`.
//!
//! - [`Ports`]: the bundle of ports a workflow needs; [`PortRefs`] builds one from references.
//! - [`Steps`]: a tiny durable step engine over [`WorkflowStore`]: a finished step's output is
//!   saved, so a crashed run resumes instead of repeating finished steps.
//! - [`process_interaction()`]: identity stitching, referrer enrichment, sessionization and text
//!   analysis (sentiment, entities, embeddings, through [`Ports::analyzer`]) of a stored batch.
//! - [`archive_batch()`]: the gzip NDJSON copy of a stored (scrubbed) batch in the object store.
//! - [`Trigger`] / [`run_once()`]: the queue consumer that starts the workflow each job names.
//!
//! ```
//! use crow_core::ports::{EventStore, JobQueue, NewJob, queues};
//! use crow_core::testing::{MemoryBlobStore, MemoryStore};
//! use crow_ingest::jobs::{InteractionBatch, PROCESS_INTERACTION};
//! use crow_ingest::workflows::{PortRefs, run_once};
//!
//! # futures::executor::block_on(async {
//! let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
//! let ports = PortRefs::shared(&store, &blobs);
//! let batch = InteractionBatch { org_id: "org_a".into(), batch_id: "b1".into(), event_ids: vec![], received_at: 0 };
//! let job = NewJob::new(queues::INTERACTION, PROCESS_INTERACTION, serde_json::to_value(&batch).unwrap());
//! store.append("org_a", vec![], vec![job]).await.unwrap();
//! let report = run_once(&ports, queues::INTERACTION, 10, 1_000, 0.5).await.unwrap();
//! assert_eq!(report.processed, 1);
//! assert_eq!(store.depth(queues::INTERACTION).await.unwrap().ready, 0);
//! # });
//! ```

use std::collections::HashMap;
use std::future::Future;

use crow_core::model::Millis;
use crow_core::ports::{
    BlobStore, Embedder, EventStore, JobQueue, MaybeSend, SocialStore, TextAnalyzer, VideoStore, WorkflowStore,
};

use crate::search::Indexes;
use crow_core::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

pub mod analyze_social;
pub mod archive;
pub mod export_report;
pub mod process_interaction;
pub mod process_video;
pub mod trigger;

pub use analyze_social::{SocialOutcome, analyze_social};
pub use archive::{ArchiveOutcome, archive_batch, archive_key, archive_prefix};
pub use export_report::{ExportOutcome, WithExports, export_report};
pub use process_interaction::{
    Outcome, TEXT_PROPERTIES, WorkflowConfig, process_interaction, process_interaction_with, run_id_for, session_id,
    text_of,
};
pub use process_video::{VideoOutcome, process_video};
pub use trigger::{TickReport, Trigger, handle_job, run_once};

/// The ports the workflows and the trigger use.
///
/// Implement it for whatever holds the backends, or use [`PortRefs`]. One backend may play
/// several roles: crow-store's SQLite store is the event store, the queue and the workflow
/// store at once ([`PortRefs::shared`]).
pub trait Ports: MaybeSend {
    /// Events, sessions and identity links.
    type Events: EventStore + ?Sized;
    /// The durable job queue.
    type Queue: JobQueue + ?Sized;
    /// Step records of workflow runs.
    type Steps: WorkflowStore + ?Sized;
    /// The object store.
    type Blobs: BlobStore + ?Sized;
    /// The event store.
    fn events(&self) -> &Self::Events;
    /// The job queue.
    fn queue(&self) -> &Self::Queue;
    /// The workflow step store.
    fn steps(&self) -> &Self::Steps;
    /// The object store.
    fn blobs(&self) -> &Self::Blobs;
    /// Sentiment, entities and language of texts; `None` (the default) skips text analysis.
    fn analyzer(&self) -> Option<&dyn TextAnalyzer> {
        None
    }
    /// Sentence embeddings of texts; `None` (the default) stores no embeddings.
    fn embedder(&self) -> Option<&dyn Embedder> {
        None
    }
    /// The vector indexes embedded texts go into; `None` (the default) indexes nothing.
    fn indexes(&self) -> Option<&Indexes> {
        None
    }
    /// The social mentions store, for `analyze-social`; `None` (the default) fails its jobs
    /// with a clear error.
    fn social(&self) -> Option<&dyn SocialStore> {
        None
    }
    /// The CCTV results store, for `process-video`; `None` (the default) fails its jobs with a
    /// clear error.
    fn video(&self) -> Option<&dyn VideoStore> {
        None
    }
    /// Export records, for `export-report`; `None` (the default) fails its jobs with a clear
    /// error. See [`WithExports`].
    fn exports(&self) -> Option<&dyn crow_core::ports::ExportStore> {
        None
    }
    /// The product catalog, for product exports; `None` (the default) fails them with a clear
    /// error.
    fn catalog(&self) -> Option<&dyn crow_core::ports::CatalogStore> {
        None
    }
}

/// A [`Ports`] bundle with text analysis: `ports` plus an analyzer, an optional embedder and
/// optional vector indexes.
///
/// ```
/// use crow_core::testing::{FakeTextAnalyzer, HashEmbedder, MemoryBlobStore, MemoryStore};
/// use crow_ingest::workflows::{PortRefs, Ports, WithText};
/// let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
/// let (analyzer, embedder) = (FakeTextAnalyzer::new(), HashEmbedder::new(16));
/// let ports = WithText {
///     ports: PortRefs::shared(&store, &blobs),
///     analyzer: &analyzer,
///     embedder: Some(&embedder),
///     indexes: None,
///     social: Some(&store),
///     video: Some(&store),
/// };
/// assert!(ports.analyzer().is_some());
/// ```
pub struct WithText<'a, P> {
    /// The other ports.
    pub ports: P,
    /// The text analyzer.
    pub analyzer: &'a dyn TextAnalyzer,
    /// The embedder, if any.
    pub embedder: Option<&'a dyn Embedder>,
    /// The vector indexes embeddings are upserted into, if any (needs the embedder).
    pub indexes: Option<&'a Indexes>,
    /// The social mentions store, for `analyze-social`.
    pub social: Option<&'a dyn SocialStore>,
    /// The CCTV results store, for `process-video`.
    pub video: Option<&'a dyn VideoStore>,
}

impl<P: std::fmt::Debug> std::fmt::Debug for WithText<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithText")
            .field("ports", &self.ports)
            .field("embedder", &self.embedder.map(|e| e.dim()))
            .finish_non_exhaustive()
    }
}

impl<P: Ports> Ports for WithText<'_, P> {
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
        Some(self.analyzer)
    }
    fn embedder(&self) -> Option<&dyn Embedder> {
        self.embedder
    }
    fn indexes(&self) -> Option<&Indexes> {
        self.indexes
    }
    fn social(&self) -> Option<&dyn SocialStore> {
        self.social
    }
    fn video(&self) -> Option<&dyn VideoStore> {
        self.video
    }
    fn exports(&self) -> Option<&dyn crow_core::ports::ExportStore> {
        self.ports.exports()
    }
    fn catalog(&self) -> Option<&dyn crow_core::ports::CatalogStore> {
        self.ports.catalog()
    }
}

/// A [`Ports`] bundle of references.
///
/// ```
/// use crow_core::testing::{MemoryBlobStore, MemoryStore};
/// use crow_ingest::workflows::PortRefs;
/// let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
/// let ports = PortRefs { events: &store, queue: &store, steps: &store, blobs: &blobs };
/// let same = PortRefs::shared(&store, &blobs);
/// # let _ = (ports, same);
/// ```
pub struct PortRefs<'a, E: ?Sized, Q: ?Sized, W: ?Sized, B: ?Sized> {
    /// The event store.
    pub events: &'a E,
    /// The job queue.
    pub queue: &'a Q,
    /// The workflow step store.
    pub steps: &'a W,
    /// The object store.
    pub blobs: &'a B,
}

impl<'a, S: ?Sized, B: ?Sized> PortRefs<'a, S, S, S, B> {
    /// One store as event store, queue and workflow store, plus an object store.
    pub fn shared(store: &'a S, blobs: &'a B) -> Self {
        PortRefs {
            events: store,
            queue: store,
            steps: store,
            blobs,
        }
    }
}

impl<E: ?Sized, Q: ?Sized, W: ?Sized, B: ?Sized> Clone for PortRefs<'_, E, Q, W, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E: ?Sized, Q: ?Sized, W: ?Sized, B: ?Sized> Copy for PortRefs<'_, E, Q, W, B> {}

impl<E: ?Sized, Q: ?Sized, W: ?Sized, B: ?Sized> std::fmt::Debug for PortRefs<'_, E, Q, W, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortRefs").finish_non_exhaustive()
    }
}

impl<E, Q, W, B> Ports for PortRefs<'_, E, Q, W, B>
where
    E: EventStore + ?Sized,
    Q: JobQueue + ?Sized,
    W: WorkflowStore + ?Sized,
    B: BlobStore + ?Sized,
{
    type Events = E;
    type Queue = Q;
    type Steps = W;
    type Blobs = B;
    fn events(&self) -> &E {
        self.events
    }
    fn queue(&self) -> &Q {
        self.queue
    }
    fn steps(&self) -> &W {
        self.steps
    }
    fn blobs(&self) -> &B {
        self.blobs
    }
}

/// A durable workflow run: remembers which steps finished and their outputs.
///
/// [`step`](Steps::step) returns the saved output of a step that already finished in an earlier
/// attempt of the same run (same `run_id`), and otherwise runs it and saves its output before
/// returning. So a run that crashed resumes after its last finished step.
///
/// **Steps must be idempotent**: a crash after a step's work but before its output is saved
/// repeats that one step on resume. Steps that only read decide (their saved output is the
/// decision); steps that write should write what an earlier, saved decision says.
///
/// ```
/// use crow_core::testing::MemoryStore;
/// use crow_ingest::workflows::Steps;
/// # futures::executor::block_on(async {
/// let store = MemoryStore::new();
/// let mut run = Steps::load(&store, "run-1", 0).await.unwrap();
/// let n: u32 = run.step("count", async { Ok(41 + 1) }).await.unwrap();
/// // a later attempt of the same run gets the saved output without running the step
/// let mut again = Steps::load(&store, "run-1", 0).await.unwrap();
/// let m: u32 = again.step("count", async { unreachable!() }).await.unwrap();
/// assert_eq!((n, m, again.resumed()), (42, 42, 1));
/// again.finish().await.unwrap();
/// # });
/// ```
pub struct Steps<'a, W: WorkflowStore + ?Sized> {
    store: &'a W,
    run_id: String,
    done: HashMap<String, Value>,
    now: Millis,
    resumed: usize,
}

impl<W: WorkflowStore + ?Sized> std::fmt::Debug for Steps<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steps")
            .field("run_id", &self.run_id)
            .field("done", &self.done.keys().collect::<Vec<_>>())
            .field("resumed", &self.resumed)
            .finish()
    }
}

impl<'a, W: WorkflowStore + ?Sized> Steps<'a, W> {
    /// Starts or resumes the run `run_id`, loading the outputs of its finished steps.
    pub async fn load(store: &'a W, run_id: &str, now: Millis) -> Result<Self> {
        let done = store.load_steps(run_id).await?;
        Ok(Steps {
            store,
            run_id: run_id.to_owned(),
            done,
            now,
            resumed: 0,
        })
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// True when the step finished (in this or an earlier attempt).
    pub fn is_done(&self, name: &str) -> bool {
        self.done.contains_key(name)
    }

    /// How many steps this attempt skipped because an earlier attempt had finished them.
    pub fn resumed(&self) -> usize {
        self.resumed
    }

    /// Runs the step `name` unless it already finished, and saves its output durably.
    ///
    /// `f` is only polled when the step runs. A saved output that no longer deserializes as
    /// `T` (the code changed between attempts) is ignored and the step runs again.
    pub async fn step<T, F>(&mut self, name: &str, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T>>,
    {
        if let Some(saved) = self.done.get(name) {
            match serde_json::from_value::<T>(saved.clone()) {
                Ok(out) => {
                    tracing::debug!(run_id = %self.run_id, step = name, "step already finished");
                    self.resumed += 1;
                    return Ok(out);
                }
                Err(e) => {
                    tracing::warn!(run_id = %self.run_id, step = name, error = %e, "saved step output unreadable; running the step again")
                }
            }
        }
        let span = tracing::debug_span!("workflow_step", run_id = %self.run_id, step = name);
        let out = f.instrument(span).await?;
        let value = serde_json::to_value(&out).map_err(|e| Error::backend(format!("step {name} output: {e}")))?;
        self.store.save_step(&self.run_id, name, &value, self.now).await?;
        self.done.insert(name.to_owned(), value);
        Ok(out)
    }

    /// Marks the run complete.
    pub async fn finish(self) -> Result<()> {
        self.store.finish_run(&self.run_id, self.now).await
    }
}
