//! Payloads of the jobs that ingest enqueues for the workflows.

use serde::{Deserialize, Serialize};

/// Job kind on the `interaction` queue: run `process-interaction` over a stored batch.
pub const PROCESS_INTERACTION: &str = "interaction";
/// Job kind on the `processing` queue: copy a stored (scrubbed) batch to the object store.
pub const ARCHIVE_BATCH: &str = "archive-batch";

/// Job kind on the `social` queue: run `analyze-social` over stored mentions the pre-filter
/// selected.
pub const ANALYZE_SOCIAL: &str = "analyze-social";

/// Job kind on the `interaction` queue: run `process-video` over a camera's frame events.
pub const PROCESS_VIDEO: &str = "process-video";

/// Frame events of one camera, for `process-video`. Events carry no image; the masked
/// keyframes they point to (`frame_key`) are already in the object store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoBatch {
    /// Org.
    pub org_id: String,
    /// Camera id.
    pub camera_id: String,
    /// The events, in time order.
    pub events: Vec<crow_core::model::FrameEvent>,
}

/// Stored social mentions, by id, for `analyze-social`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MentionBatch {
    /// Org.
    pub org_id: String,
    /// Ids (`platform:platform_id`) of stored mentions.
    pub mention_ids: Vec<String>,
}

/// A batch of stored interactions, referenced by id (the events themselves are already durable
/// in the event store, scrubbed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionBatch {
    /// Org.
    pub org_id: String,
    /// Batch id, unique per accepted request (derived from its event ids).
    pub batch_id: String,
    /// Ids of the events of the batch that were accepted.
    pub event_ids: Vec<String>,
    /// When the batch was received.
    pub received_at: i64,
}

/// Job kind on the `export` queue: run `export-report` for one export record.
pub const EXPORT_REPORT: &str = "export-report";

/// One export to write, for `export-report` (what to write is in the export record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportJob {
    /// Org.
    pub org_id: String,
    /// The export's id.
    pub export_id: String,
}
