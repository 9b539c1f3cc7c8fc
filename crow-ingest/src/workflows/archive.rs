//! The `archive-batch` workflow: a copy of a stored batch in the object store, for replay.
//!
//! The events are read back from the event store, where ingest put them already scrubbed (the
//! raw request is never archived), and written as gzip-compressed NDJSON (one
//! [`Interaction`](crow_core::model::Interaction) as JSON per line) under
//! `raw-interactions/{org_id}/{yyyy}/{mm}/{dd}/{batch_id}.ndjson.gz`, dated by the batch's
//! `received_at` (UTC). The key depends on the batch only, so a repeated run overwrites the
//! object with the same bytes: the workflow is idempotent and needs no step records.

use std::io::Write;

use crow_core::model::Millis;
use crow_core::ports::{BlobStore, EventStore};
use crow_core::{Error, Result};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use super::Ports;
use crate::jobs::InteractionBatch;

/// What [`archive_batch`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveOutcome {
    /// Object key.
    pub key: String,
    /// Events written.
    pub events: usize,
    /// Compressed size in bytes.
    pub bytes: usize,
}

/// Year, month, day of a day number since 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An id made safe as one key segment: characters other than `[A-Za-z0-9._-]` become `_`.
pub(crate) fn segment(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s == "." || s == ".." {
        "_".repeat(s.len().max(1))
    } else {
        s
    }
}

/// The object key of a batch's archive copy.
///
/// ```
/// use crow_ingest::jobs::InteractionBatch;
/// let batch = InteractionBatch { org_id: "org_1".into(), batch_id: "b42".into(), event_ids: vec![], received_at: 1_714_564_800_000 };
/// assert_eq!(crow_ingest::workflows::archive_key(&batch), "raw-interactions/org_1/2024/05/01/b42.ndjson.gz");
/// ```
pub fn archive_key(batch: &InteractionBatch) -> String {
    let (y, m, d) = civil_from_days(batch.received_at.div_euclid(86_400_000));
    format!(
        "{}{y:04}/{m:02}/{d:02}/{}.ndjson.gz",
        archive_prefix(&batch.org_id),
        segment(&batch.batch_id)
    )
}

/// The object-store prefix under which an org's raw-batch archives live (ends with `/`).
pub fn archive_prefix(org_id: &str) -> String {
    format!("raw-interactions/{}/", segment(org_id))
}

/// Writes the batch's stored events to the object store as gzip NDJSON (see the module docs).
pub async fn archive_batch<P: Ports + ?Sized>(
    ports: &P,
    batch: &InteractionBatch,
    _now: Millis,
) -> Result<ArchiveOutcome> {
    // The stored JSON as is (no decode and re-encode), compressed in one call: feeding the
    // encoder token by token cost a buffer reset per write (it once dominated the worker).
    let (ndjson, count) = ports
        .events()
        .interactions_ndjson(&batch.org_id, &batch.event_ids)
        .await?;
    let mut gz = GzEncoder::new(Vec::with_capacity(ndjson.len() / 4), Compression::fast());
    gz.write_all(&ndjson)
        .map_err(|e| Error::backend(format!("archive compression: {e}")))?;
    let bytes = gz
        .finish()
        .map_err(|e| Error::backend(format!("archive compression: {e}")))?;
    let key = archive_key(batch);
    let size = bytes.len();
    ports.blobs().put(&key, bytes).await?;
    tracing::debug!(key, events = count, bytes = size, "batch archived");
    Ok(ArchiveOutcome {
        key,
        events: count,
        bytes: size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_844), (2024, 5, 1));
        assert_eq!(civil_from_days(20_088), (2024, 12, 31));
    }

    #[test]
    fn unsafe_ids_stay_one_segment() {
        assert_eq!(segment("a/../b"), "a_.._b");
        assert_eq!(segment(".."), "__");
        assert_eq!(segment(""), "_");
        assert_eq!(segment("org_1"), "org_1");
    }
}
