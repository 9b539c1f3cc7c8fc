//! `process-video`: stores a camera's frame events (idempotently, so a redelivered job stores
//! nothing twice). The events carry counts, zones and the object-store key of a masked
//! keyframe; no image passes through the queue.

use crow_core::model::Millis;
use crow_core::ports::VideoStore;
use crow_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::jobs::VideoBatch;

/// What one `process-video` run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoOutcome {
    /// Events stored by this run.
    pub stored: usize,
    /// Events that were already stored (a redelivery).
    pub existing: usize,
}

/// Runs `process-video` over one batch: validates that every event belongs to the batch's org
/// and camera, then stores them.
pub async fn process_video(video: &dyn VideoStore, batch: &VideoBatch, _now: Millis) -> Result<VideoOutcome> {
    for (i, e) in batch.events.iter().enumerate() {
        if e.org_id != batch.org_id || e.camera_id != batch.camera_id {
            return Err(Error::invalid(
                format!("events[{i}]"),
                format!(
                    "event {} belongs to {}/{}, not to the batch's {}/{}",
                    e.id, e.org_id, e.camera_id, batch.org_id, batch.camera_id
                ),
            ));
        }
    }
    let stored = video.store_frame_events(&batch.org_id, &batch.events).await?;
    tracing::debug!(org = %batch.org_id, camera = %batch.camera_id, stored, "process-video");
    Ok(VideoOutcome {
        stored,
        existing: batch.events.len() - stored,
    })
}
