//! The CCTV channel: frames from a [`FrameSource`], through a [`FrameProcessor`] (motion
//! gating, faces masked, people analytics), into frame events and an archive of masked
//! keyframes under a retention budget.
//!
//! The channel only talks to ports: the shell wires in crow-vision's sources and pipeline (or
//! anything else implementing them). The processor hands back a
//! [`MaskedFrame`](crow_core::video::MaskedFrame), and the only image writer here takes that type,
//! so nothing unmasked can reach the object store.
//!
//! Per frame: keyframes are encoded and written to `cctv-frames/{org}/{camera}/{day}/{ts}.{ext}`
//! (recorded in the archive ledger first, so retention always knows about every object), then
//! the oldest objects are deleted while the archive is over its byte or age budget.
//! Observations become [`FrameEvent`]s, batched into `process-video` jobs on the `interaction`
//! queue. A stalled live source is logged and waited on; it resumes by itself.
//!
//! ```
//! use crow_core::ports::{BoundingBox, Frame, FrameAnalysis, ImageEncoder};
//! use crow_core::testing::{MemoryBlobStore, MemoryStore, VecFrameSource};
//! use crow_core::video::{EncodedImage, MaskedFrame, ProcessedFrame};
//! use crow_ingest::cctv::{CameraConfig, CameraPorts, run_camera};
//!
//! // A processor that masks nothing and marks every frame a keyframe, and a raw "encoder".
//! struct Every;
//! #[async_trait::async_trait]
//! impl crow_core::ports::FrameProcessor for Every {
//!     async fn process(&mut self, f: Frame) -> crow_core::Result<ProcessedFrame> {
//!         Ok(ProcessedFrame { frame: MaskedFrame::mask(f, &[], &Default::default()), motion: vec![],
//!             motion_fraction: 0.0, analyzed: false, faces: vec![], people: vec![], observations: vec![], keyframe: true })
//!     }
//!     async fn finish(&mut self, _: i64) -> crow_core::Result<Vec<crow_core::video::FrameObservation>> { Ok(vec![]) }
//!     async fn take_heatmap(&mut self) -> crow_core::Result<Option<EncodedImage>> { Ok(None) }
//! }
//! struct Raw;
//! impl ImageEncoder for Raw {
//!     fn encode(&self, f: &MaskedFrame) -> crow_core::Result<EncodedImage> {
//!         Ok(EncodedImage { bytes: f.frame().rgb.clone(), content_type: "application/octet-stream".into(), extension: "rgb".into() })
//!     }
//! }
//! # futures::executor::block_on(async {
//! let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
//! let frames = (0..3).map(|i| Frame { width: 2, height: 2, timestamp: i * 1000, rgb: vec![0; 12] }).collect();
//! let mut source = VecFrameSource::new(frames);
//! let ports = CameraPorts { queue: &store, blobs: &blobs, video: &store };
//! let report = run_camera("org_a", &CameraConfig::new("door"), &mut source, &mut Every, &Raw, &ports, &|| false)
//!     .await
//!     .unwrap();
//! assert_eq!((report.frames, report.archived), (3, 3));
//! # });
//! ```

use std::collections::VecDeque;

use crow_core::model::{FrameEvent, Millis};
use crow_core::ports::{BlobStore, FrameProcessor, FrameSource, ImageEncoder, JobQueue, NewJob, VideoStore, queues};
use crow_core::video::{ArchiveEntry, FrameObservation, Retention};
use crow_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::jobs::{PROCESS_VIDEO, VideoBatch};
use crate::workflows::archive::{civil_from_days, segment};

/// The object-store prefix of an org's camera archive.
pub fn archive_prefix(org_id: &str) -> String {
    format!("cctv-frames/{}/", segment(org_id))
}

/// Archive settings of a camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Write masked keyframes at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The budget (per org): the oldest objects go first.
    #[serde(default)]
    pub retention: Retention,
}

fn yes() -> bool {
    true
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            enabled: true,
            retention: Retention::default(),
        }
    }
}

/// A camera of the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Camera id: 1–64 of `A-Z a-z 0-9 _ - .`.
    pub id: String,
    /// Keyframe archive.
    #[serde(default)]
    pub archive: ArchiveConfig,
    /// A heatmap is written every this many seconds of video (0: only when the source ends).
    #[serde(default = "default_heatmap_secs")]
    pub heatmap_every_secs: u64,
    /// Events per `process-video` job.
    #[serde(default = "default_batch_events")]
    pub batch_events: usize,
    /// Pending events are flushed at least this often (ms of video time).
    #[serde(default = "default_batch_ms")]
    pub batch_ms: i64,
    /// Give up after this many stalls in a row (`None`: a live camera waits for ever).
    #[serde(default)]
    pub max_stalls: Option<u32>,
}

fn default_heatmap_secs() -> u64 {
    3_600
}

fn default_batch_events() -> usize {
    200
}

fn default_batch_ms() -> i64 {
    10_000
}

impl CameraConfig {
    /// A camera with default settings.
    pub fn new(id: &str) -> Self {
        CameraConfig {
            id: id.to_owned(),
            archive: ArchiveConfig::default(),
            heatmap_every_secs: default_heatmap_secs(),
            batch_events: default_batch_events(),
            batch_ms: default_batch_ms(),
            max_stalls: None,
        }
    }

    /// Checks the fields; errors name them.
    pub fn validate(&self) -> Result<()> {
        if self.id.is_empty()
            || self.id.len() > 64
            || !self.id.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(Error::invalid(
                "camera.id",
                format!("{:?}: 1–64 characters of A-Z a-z 0-9 _ - .", self.id),
            ));
        }
        if !(1..=10_000).contains(&self.batch_events) {
            return Err(Error::invalid("camera.batch_events", "must be between 1 and 10000"));
        }
        if self.batch_ms < 0 {
            return Err(Error::invalid("camera.batch_ms", "must be ≥ 0"));
        }
        if self.archive.retention.max_bytes == 0 {
            return Err(Error::invalid(
                "camera.archive.retention.max_bytes",
                "must be above 0 (set archive.enabled = false to keep no frames)",
            ));
        }
        Ok(())
    }
}

/// The ports a camera writes to.
pub struct CameraPorts<'a> {
    /// Where `process-video` jobs go.
    pub queue: &'a dyn JobQueue,
    /// The object store (`cctv-frames/...`).
    pub blobs: &'a dyn BlobStore,
    /// The archive ledger.
    pub video: &'a dyn VideoStore,
}

impl std::fmt::Debug for CameraPorts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraPorts").finish_non_exhaustive()
    }
}

/// What a camera's run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CameraReport {
    /// Frames processed.
    pub frames: u64,
    /// Frames the detector ran on.
    pub analyzed: u64,
    /// Frames with motion.
    pub motion_frames: u64,
    /// Face regions masked, summed over frames.
    pub masked_regions: u64,
    /// Keyframes archived.
    pub archived: u64,
    /// Bytes archived.
    pub archived_bytes: u64,
    /// Heatmaps archived.
    pub heatmaps: u64,
    /// Archive objects deleted by retention.
    pub evicted: u64,
    /// Frame events emitted.
    pub events: u64,
    /// `process-video` jobs enqueued.
    pub jobs: u64,
    /// Times the source stalled (and was waited on).
    pub stalls: u64,
    /// Line crossings in and out, summed over lines.
    pub line_in: u64,
    /// See `line_in`.
    pub line_out: u64,
    /// Most people present at once.
    pub max_people: u32,
    /// Time of the first and last frame.
    pub first_ts: Option<Millis>,
    /// See `first_ts`.
    pub last_ts: Option<Millis>,
}

struct Camera<'a> {
    org_id: &'a str,
    cfg: &'a CameraConfig,
    ports: &'a CameraPorts<'a>,
    pending: Vec<FrameEvent>,
    pending_since: Option<Millis>,
    /// Ledger totals, loaded once, then kept up to date locally.
    usage: Option<(u64, VecDeque<ArchiveEntry>)>,
    seq: u64,
    report: CameraReport,
}

/// Runs one camera until its source ends (or `stop()` turns true, checked between frames), then
/// flushes what is pending. Errors from the source other than a stall end the run; a stall is
/// logged and waited on (up to [`CameraConfig::max_stalls`] in a row).
pub async fn run_camera(
    org_id: &str,
    cfg: &CameraConfig,
    source: &mut dyn FrameSource,
    processor: &mut dyn FrameProcessor,
    encoder: &dyn ImageEncoder,
    ports: &CameraPorts<'_>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<CameraReport> {
    run_camera_with(org_id, cfg, source, processor, encoder, ports, stop, &mut |_| {}).await
}

/// [`run_camera`] with a callback after every processed frame (a progress bar, a preview):
/// it only ever sees the masked frame.
#[allow(clippy::too_many_arguments)]
pub async fn run_camera_with(
    org_id: &str,
    cfg: &CameraConfig,
    source: &mut dyn FrameSource,
    processor: &mut dyn FrameProcessor,
    encoder: &dyn ImageEncoder,
    ports: &CameraPorts<'_>,
    stop: &(dyn Fn() -> bool + Sync),
    on_frame: &mut (dyn FnMut(&crow_core::video::ProcessedFrame) + Send),
) -> Result<CameraReport> {
    cfg.validate()?;
    let mut cam = Camera {
        org_id,
        cfg,
        ports,
        pending: Vec::new(),
        pending_since: None,
        usage: None,
        seq: 0,
        report: CameraReport::default(),
    };
    let mut stalls_in_row = 0u32;
    let mut last_heatmap: Option<Millis> = None;
    // A source that fails and then ends (a file ffmpeg cannot read) failed: the run is an error.
    let mut failed: Option<String> = None;
    while !stop() {
        let frame = match source.next_frame().await {
            Ok(Some(f)) => {
                stalls_in_row = 0;
                failed = None;
                f
            }
            Ok(None) => {
                if let Some(msg) = failed {
                    cam.flush().await?;
                    return Err(Error::Unavailable(format!("camera {}: {msg}", cfg.id)));
                }
                break;
            }
            Err(Error::Unavailable(msg)) => {
                failed = Some(msg.clone());
                cam.report.stalls += 1;
                stalls_in_row += 1;
                tracing::warn!(camera = %cfg.id, "{msg}; waiting for the source to come back");
                // Pending events should not wait for a dead stream.
                cam.flush().await?;
                if cfg.max_stalls.is_some_and(|m| stalls_in_row >= m) {
                    return Err(Error::Unavailable(format!(
                        "camera {}: {msg} ({stalls_in_row} times in a row)",
                        cfg.id
                    )));
                }
                continue;
            }
            Err(e) => {
                cam.flush().await?;
                return Err(e);
            }
        };
        let ts = frame.timestamp;
        cam.report.first_ts.get_or_insert(ts);
        cam.report.last_ts = Some(ts);
        let out = processor.process(frame).await?;
        cam.report.frames += 1;
        cam.report.analyzed += out.analyzed as u64;
        cam.report.motion_frames += (!out.motion.is_empty()) as u64;
        cam.report.masked_regions += out.frame.regions().len() as u64;
        cam.report.max_people = cam.report.max_people.max(out.people.len() as u32);
        let frame_key = if out.keyframe && cfg.archive.enabled {
            let img = encoder.encode(&out.frame)?;
            Some(cam.archive(ts, "keyframe", img.extension.as_str(), img.bytes).await?)
        } else {
            None
        };
        on_frame(&out);
        cam.observe(ts, &out.observations, frame_key);
        if cfg.heatmap_every_secs > 0 {
            let since = *last_heatmap.get_or_insert(ts);
            if ts - since >= cfg.heatmap_every_secs as i64 * 1000 {
                cam.heatmap(processor, ts).await?;
                last_heatmap = Some(ts);
            }
        }
        if cam.pending.len() >= cfg.batch_events || cam.pending_since.is_some_and(|s| ts - s >= cfg.batch_ms) {
            cam.flush().await?;
        }
    }
    let end = cam.report.last_ts.unwrap_or(0);
    let fin = processor.finish(end).await?;
    cam.observe(end, &fin, None);
    cam.heatmap(processor, end).await?;
    cam.flush().await?;
    Ok(cam.report)
}

impl Camera<'_> {
    fn observe(&mut self, ts: Millis, observations: &[FrameObservation], frame_key: Option<String>) {
        use crow_core::model::FrameEventKind as K;
        for o in observations {
            self.seq += 1;
            match o.kind {
                K::LineIn => self.report.line_in += 1,
                K::LineOut => self.report.line_out += 1,
                _ => {}
            }
            let id = event_id(self.org_id, &self.cfg.id, ts, o, self.seq);
            self.pending.push(FrameEvent {
                id,
                org_id: self.org_id.to_owned(),
                camera_id: self.cfg.id.clone(),
                timestamp: ts,
                kind: o.kind,
                zone: o.zone.clone(),
                count: o.count,
                value: o.value,
                frame_key: frame_key.clone(),
            });
            self.pending_since.get_or_insert(ts);
        }
    }

    async fn flush(&mut self) -> Result<()> {
        self.pending_since = None;
        if self.pending.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.pending);
        self.report.events += events.len() as u64;
        let batch = VideoBatch {
            org_id: self.org_id.to_owned(),
            camera_id: self.cfg.id.clone(),
            events,
        };
        let payload = serde_json::to_value(&batch).map_err(Error::backend)?;
        let now = batch.events.last().map_or(0, |e| e.timestamp);
        self.ports
            .queue
            .enqueue(vec![NewJob::new(queues::INTERACTION, PROCESS_VIDEO, payload)], now)
            .await?;
        self.report.jobs += 1;
        Ok(())
    }

    async fn heatmap(&mut self, processor: &mut dyn FrameProcessor, ts: Millis) -> Result<()> {
        if !self.cfg.archive.enabled {
            // Still reset it, so memory does not grow.
            processor.take_heatmap().await?;
            return Ok(());
        }
        if let Some(img) = processor.take_heatmap().await? {
            self.archive(ts, "heatmap", &img.extension, img.bytes).await?;
            self.report.heatmaps += 1;
        }
        Ok(())
    }

    /// Records, writes, then applies retention. Returns the key.
    async fn archive(&mut self, ts: Millis, kind: &str, ext: &str, bytes: Vec<u8>) -> Result<String> {
        let (y, m, d) = civil_from_days(ts.div_euclid(86_400_000));
        let suffix = if kind == "heatmap" { "-heatmap" } else { "" };
        let key = format!(
            "{}{}/{y:04}-{m:02}-{d:02}/{ts:013}{suffix}.{}",
            archive_prefix(self.org_id),
            segment(&self.cfg.id),
            segment(ext)
        );
        let entry = ArchiveEntry {
            key: key.clone(),
            camera_id: self.cfg.id.clone(),
            timestamp: ts,
            bytes: bytes.len() as u64,
            kind: kind.to_owned(),
        };
        let n = bytes.len() as u64;
        self.load_usage().await?;
        // The ledger first: an object is never in the store without retention knowing of it.
        self.ports
            .video
            .record_archive(self.org_id, std::slice::from_ref(&entry))
            .await?;
        self.ports.blobs.put(&key, bytes).await?;
        if let Some((total, entries)) = &mut self.usage {
            *total += n;
            entries.push_back(entry);
        }
        if kind == "keyframe" {
            self.report.archived += 1;
        }
        self.report.archived_bytes += n;
        self.retain(ts).await?;
        Ok(key)
    }

    async fn load_usage(&mut self) -> Result<()> {
        if self.usage.is_some() {
            return Ok(());
        }
        let usage = self.ports.video.archive_usage(self.org_id).await?;
        // The oldest entries, enough to cover evictions for a while; refilled when used up.
        let oldest = self.ports.video.oldest_archive(self.org_id, 1_000).await?;
        self.usage = Some((usage.bytes, oldest.into()));
        Ok(())
    }

    /// Deletes oldest first while over the byte budget or holding objects past the age limit.
    async fn retain(&mut self, now: Millis) -> Result<()> {
        let r = self.cfg.archive.retention;
        loop {
            let Some((total, entries)) = &mut self.usage else {
                return Ok(());
            };
            let Some(oldest) = entries.front() else {
                return Ok(());
            };
            let too_old = r.max_age_secs > 0 && now - oldest.timestamp > r.max_age_secs as i64 * 1000;
            if *total <= r.max_bytes && !too_old {
                return Ok(());
            }
            let victim = entries.pop_front().expect("front exists");
            *total = total.saturating_sub(victim.bytes);
            let refill = entries.is_empty();
            self.ports.blobs.delete(&victim.key).await?;
            self.ports
                .video
                .remove_archive(self.org_id, std::slice::from_ref(&victim.key))
                .await?;
            self.report.evicted += 1;
            if refill {
                let more = self.ports.video.oldest_archive(self.org_id, 1_000).await?;
                if let Some((_, entries)) = &mut self.usage {
                    entries.extend(more);
                }
            }
        }
    }
}

/// A stable id: the same observation of the same frame always gets the same id, so a
/// redelivered job stores nothing twice.
fn event_id(org: &str, camera: &str, ts: Millis, o: &FrameObservation, seq: u64) -> String {
    let mut h = Sha256::new();
    h.update(org.as_bytes());
    h.update([0]);
    h.update(camera.as_bytes());
    h.update([0]);
    h.update(ts.to_le_bytes());
    h.update(serde_json::to_vec(o).unwrap_or_default());
    h.update(seq.to_le_bytes());
    format!("fe_{}", &hex::encode(h.finalize())[..24])
}
