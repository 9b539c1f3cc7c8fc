//! The per-camera pipeline: motion gating → detection → tracking → masking → people analytics,
//! behind crow-core's [`FrameProcessor`] port.
//!
//! The detector (any [`FrameAnalyzer`]: CenterFace natively, a test double in tests) runs on
//! a frame when something moved, when a face is being tracked (so a person who stands still
//! stays masked), after a lighting change, on the first frame, and on every
//! [`PipelineConfig::detect_every`]-th frame as a safety net. Other frames skip it: that is
//! where the speed on real CCTV comes from, since most frames of most cameras show nothing
//! moving. Between detections the tracker carries every face box, and the frame that comes out
//! is a [`MaskedFrame`] with every tracked face masked.

use crow_core::model::Millis;
use crow_core::ports::{BoundingBox, Frame, FrameAnalyzer, FrameProcessor};
use crow_core::video::{EncodedImage, FrameObservation, MaskSpec, MaskedFrame, ProcessedFrame, Track};
use serde::{Deserialize, Serialize};

use crate::motion::{MotionConfig, MotionDetector};
use crate::track::{Tracker, TrackerConfig};
use crate::zones::{PeopleAnalytics, ZonesConfig};
use crate::{Result, VisionError};

/// Where people positions come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeopleFrom {
    /// The analyzer's person boxes once it has reported any, motion blobs (with faces outside
    /// every blob) until then.
    #[default]
    Auto,
    /// Only the analyzer's person boxes (a person detector is configured).
    Detector,
    /// Moving blobs, plus faces outside every blob.
    Motion,
}

/// Pipeline settings (the `[cctv]` part of a camera's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Motion detection.
    pub motion: MotionConfig,
    /// Run the detector on every N-th frame even without motion (the safety net).
    pub detect_every: u32,
    /// Run the detector on every frame (no gating).
    pub detect_all: bool,
    /// Face tracking.
    pub faces: TrackerConfig,
    /// People tracking.
    pub people: TrackerConfig,
    /// How faces are masked.
    pub mask: MaskSpec,
    /// Zones, lines and heatmap.
    pub zones: ZonesConfig,
    /// Where people positions come from.
    pub people_from: PeopleFrom,
    /// While motion lasts, a keyframe at most this often (ms); the first frame of a motion
    /// episode is always one.
    pub keyframe_interval_ms: i64,
    /// Heatmap pixels per grid cell.
    pub heatmap_scale: u32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            motion: MotionConfig::default(),
            detect_every: 12,
            detect_all: false,
            faces: TrackerConfig::default(),
            people: TrackerConfig {
                iou_threshold: 0.1,
                max_misses: 5,
                max_coast_ms: 1_500,
                grow_per_miss: 0.0,
            },
            mask: MaskSpec::default(),
            zones: ZonesConfig::default(),
            people_from: PeopleFrom::Auto,
            keyframe_interval_ms: 5_000,
            heatmap_scale: 8,
        }
    }
}

impl PipelineConfig {
    /// Checks every field; errors name it.
    pub fn validate(&self) -> Result<()> {
        self.motion.validate()?;
        self.zones.validate()?;
        if self.detect_every == 0 {
            return Err(VisionError::config("detect_every", "must be at least 1"));
        }
        if !(self.mask.padding >= 1.0 && self.mask.padding <= 3.0) {
            return Err(VisionError::config("mask.padding", "must be between 1 and 3"));
        }
        if self.keyframe_interval_ms < 0 {
            return Err(VisionError::config("keyframe_interval_ms", "must be ≥ 0"));
        }
        Ok(())
    }
}

/// Counters of a pipeline's run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineStats {
    /// Frames processed.
    pub frames: u64,
    /// Frames the detector ran on.
    pub analyzed: u64,
    /// Frames with motion.
    pub motion_frames: u64,
    /// Face regions masked, summed over frames.
    pub masked_regions: u64,
    /// Keyframes marked.
    pub keyframes: u64,
    /// Most people present at once.
    pub max_people: u32,
}

/// Motion gating, detection, tracking, masking and analytics for one camera.
#[derive(Debug)]
pub struct VisionPipeline<A> {
    config: PipelineConfig,
    analyzer: A,
    motion: MotionDetector,
    faces: Tracker,
    people: Tracker,
    analytics: PeopleAnalytics,
    in_motion: bool,
    last_keyframe: Option<Millis>,
    detector_people: bool,
    size: (u32, u32),
    stats: PipelineStats,
}

impl<A: FrameAnalyzer> VisionPipeline<A> {
    /// A pipeline over `analyzer`; the config is validated.
    pub fn new(config: PipelineConfig, analyzer: A) -> Result<Self> {
        config.validate()?;
        Ok(VisionPipeline {
            motion: MotionDetector::new(config.motion.clone())?,
            faces: Tracker::new(config.faces.clone()),
            people: Tracker::new(config.people.clone()),
            analytics: PeopleAnalytics::new(config.zones.clone())?,
            detector_people: config.people_from == PeopleFrom::Detector,
            config,
            analyzer,
            in_motion: false,
            last_keyframe: None,
            size: (0, 0),
            stats: PipelineStats::default(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// The settings.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The analyzer.
    pub fn analyzer(&self) -> &A {
        &self.analyzer
    }

    async fn step(&mut self, frame: Frame) -> crow_core::Result<ProcessedFrame> {
        let ts = frame.timestamp;
        self.size = (frame.width, frame.height);
        let first = self.stats.frames == 0;
        self.stats.frames += 1;
        let motion = self.motion.detect(&frame);
        let moving = !motion.boxes.is_empty();
        let mut observations = Vec::new();
        let mut keyframe = false;
        if moving {
            self.stats.motion_frames += 1;
            if !self.in_motion {
                observations.push(FrameObservation {
                    kind: crow_core::model::FrameEventKind::Motion,
                    zone: None,
                    count: motion.boxes.len() as u32,
                    value: Some(motion.fraction as f64),
                });
                keyframe = true;
            } else if self
                .last_keyframe
                .is_none_or(|k| ts - k >= self.config.keyframe_interval_ms)
            {
                keyframe = true;
            }
        }
        self.in_motion = moving;
        let run = self.config.detect_all
            || first
            || moving
            || motion.lighting_change
            || !self.faces.is_empty()
            || self.stats.frames.is_multiple_of(self.config.detect_every as u64);
        let (faces, detected_people) = if run {
            self.stats.analyzed += 1;
            let analysis = self.analyzer.analyze(&frame).await?;
            let faces = self.faces.update(&analysis.faces, ts);
            if !analysis.people.is_empty() && self.config.people_from == PeopleFrom::Auto {
                self.detector_people = true;
            }
            (faces, Some(analysis.people))
        } else {
            (self.faces.coast(ts), None)
        };
        self.faces.take_ended();
        let people = if self.detector_people && self.config.people_from != PeopleFrom::Motion {
            match detected_people {
                Some(p) => self.people.update(&p, ts),
                None => self.people.coast(ts),
            }
        } else {
            let candidates = blobs_and_faces(&motion.boxes, &faces);
            self.people.update(&candidates, ts)
        };
        let ended = self.people.take_ended();
        observations.extend(self.analytics.update(&people, &ended, ts, frame.width, frame.height));
        self.stats.max_people = self.stats.max_people.max(people.len() as u32);
        if keyframe {
            self.last_keyframe = Some(ts);
            self.stats.keyframes += 1;
        }
        let boxes: Vec<BoundingBox> = faces.iter().map(|t| t.bbox).collect();
        let masked = MaskedFrame::mask(frame, &boxes, &self.config.mask);
        self.stats.masked_regions += masked.regions().len() as u64;
        Ok(ProcessedFrame {
            frame: masked,
            motion: motion.boxes,
            motion_fraction: motion.fraction,
            analyzed: run,
            faces,
            people,
            observations,
            keyframe,
        })
    }
}

/// People candidates from motion: every blob, plus each face that is not inside a blob (a
/// person who stopped moving but is still tracked by face).
fn blobs_and_faces(blobs: &[BoundingBox], faces: &[Track]) -> Vec<BoundingBox> {
    let mut out = blobs.to_vec();
    for f in faces {
        let (cx, cy) = crate::geometry::center(&f.bbox);
        if !blobs
            .iter()
            .any(|b| cx >= b.x && cx <= b.x + b.w && cy >= b.y && cy <= b.y + b.h)
        {
            // The face stands for the person: extend it downwards to a rough body box so the
            // position (the box's bottom centre) is near the feet.
            out.push(BoundingBox {
                x: f.bbox.x - f.bbox.w * 0.5,
                y: f.bbox.y,
                w: f.bbox.w * 2.0,
                h: f.bbox.h * 6.0,
                score: f.bbox.score,
            });
        }
    }
    out
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<A: FrameAnalyzer> FrameProcessor for VisionPipeline<A> {
    async fn process(&mut self, frame: Frame) -> crow_core::Result<ProcessedFrame> {
        self.step(frame).await
    }

    async fn finish(&mut self, at: Millis) -> crow_core::Result<Vec<FrameObservation>> {
        self.people.end_all();
        self.faces.end_all();
        self.faces.take_ended();
        let ended = self.people.take_ended();
        Ok(self.analytics.update(&[], &ended, at, self.size.0, self.size.1))
    }

    async fn take_heatmap(&mut self) -> crow_core::Result<Option<EncodedImage>> {
        Ok(self
            .analytics
            .take_heatmap_png(self.config.heatmap_scale)?
            .map(|bytes| EncodedImage {
                bytes,
                content_type: "image/png".into(),
                extension: "png".into(),
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crow_core::model::FrameEventKind;
    use crow_core::ports::FrameAnalysis;
    use crow_core::testing::FixedFrameAnalyzer;

    fn frame(ts: Millis) -> Frame {
        Frame {
            width: 320,
            height: 240,
            timestamp: ts,
            rgb: vec![80; 320 * 240 * 3],
        }
    }

    fn face(x: f32) -> BoundingBox {
        BoundingBox {
            x,
            y: 60.0,
            w: 40.0,
            h: 48.0,
            score: 0.9,
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn still_frames_skip_the_detector_except_the_safety_net() {
        run(async {
            let an = FixedFrameAnalyzer::new(FrameAnalysis::default());
            let mut p = VisionPipeline::new(PipelineConfig::default(), an).unwrap();
            for i in 0..48 {
                p.process(frame(i * 100)).await.unwrap();
            }
            // The first frame, then frames 12, 24, 36 and 48.
            assert_eq!(p.stats().analyzed, 5);
            assert_eq!(p.analyzer().calls(), 5);
        });
    }

    #[test]
    fn a_face_seen_once_stays_masked_while_the_detector_misses_it() {
        run(async {
            // The detector sees the face on the first frame only.
            let an = FixedFrameAnalyzer::new(FrameAnalysis::default()).with_frame(
                0,
                FrameAnalysis {
                    faces: vec![face(100.0)],
                    people: vec![],
                },
            );
            let mut p = VisionPipeline::new(PipelineConfig::default(), an).unwrap();
            let first = p.process(frame(0)).await.unwrap();
            assert_eq!(first.frame.regions().len(), 1);
            for i in 1..=8 {
                let out = p.process(frame(i * 40)).await.unwrap();
                assert!(out.analyzed, "a tracked face keeps the detector on");
                assert_eq!(out.frame.regions().len(), 1, "frame {i}: the mask must not flicker off");
            }
            // After max_misses detector misses the track ends.
            let out = p.process(frame(400)).await.unwrap();
            assert!(out.frame.regions().is_empty());
        });
    }

    #[test]
    fn motion_starts_an_episode_with_a_keyframe_and_people_from_blobs() {
        run(async {
            let an = FixedFrameAnalyzer::new(FrameAnalysis::default());
            let mut p = VisionPipeline::new(PipelineConfig::default(), an).unwrap();
            p.process(frame(0)).await.unwrap();
            let mut moved = frame(100);
            for y in 80..200 {
                for x in 100..150 {
                    let i = (y * 320 + x) * 3;
                    moved.rgb[i..i + 3].fill(230);
                }
            }
            let out = p.process(moved).await.unwrap();
            assert!(out.keyframe && out.analyzed);
            assert_eq!(out.motion.len(), 1);
            assert!(out.observations.iter().any(|o| o.kind == FrameEventKind::Motion));
            assert!(
                out.observations
                    .iter()
                    .any(|o| o.kind == FrameEventKind::Presence && o.count == 1)
            );
            assert_eq!(out.people.len(), 1);
            let fin = p.finish(200).await.unwrap();
            assert!(fin.iter().any(|o| o.kind == FrameEventKind::Presence && o.count == 0));
            assert!(p.take_heatmap().await.unwrap().is_some());
        });
    }

    #[test]
    fn bad_config_is_refused() {
        let an = FixedFrameAnalyzer::new(FrameAnalysis::default());
        let cfg = PipelineConfig {
            detect_every: 0,
            ..PipelineConfig::default()
        };
        assert!(
            VisionPipeline::new(cfg, an)
                .unwrap_err()
                .to_string()
                .contains("detect_every")
        );
    }
}
