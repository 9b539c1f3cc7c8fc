//! Motion detection: the gate that keeps the face detector off frames where nothing moves.
//!
//! Per frame (the way Frigate does it, without OpenCV): grayscale and downscale to about
//! [`MotionConfig::height`] rows, compare with a running-average background, threshold, dilate,
//! group changed cells into blobs, keep blobs of at least [`MotionConfig::min_area`] cells.
//! When more than [`MotionConfig::max_fraction`] of the frame changes at once (lights switching,
//! the camera's exposure jumping) the frame reports no motion and the background is reset to it.
//! Masked areas (a clock, a tree in the wind) never count.
//!
//! ```
//! use crow_core::ports::Frame;
//! use crow_vision::motion::{MotionConfig, MotionDetector};
//!
//! let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
//! let still = Frame { width: 320, height: 240, timestamp: 0, rgb: vec![90; 320 * 240 * 3] };
//! assert!(det.detect(&still).boxes.is_empty());
//! let mut moved = still.clone();
//! for y in 100..160 { for x in 100..150 { let p = (y * 320 + x) * 3; moved.rgb[p..p + 3].fill(250); } }
//! let m = det.detect(&moved);
//! assert_eq!(m.boxes.len(), 1);
//! ```

use crow_core::ports::{BoundingBox, Frame};
use serde::{Deserialize, Serialize};

use crate::geometry::Polygon;
use crate::{Result, VisionError};

/// Motion detection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MotionConfig {
    /// Rows of the downscaled grayscale image the detector works on.
    pub height: u32,
    /// Gray-level difference (0–255) from the background that counts as change.
    pub threshold: u8,
    /// Weight of the current frame in the running-average background (0–1): higher forgets
    /// faster.
    pub alpha: f32,
    /// Dilation passes (3×3) that join the pieces of one moving object.
    pub dilate: u32,
    /// Smallest blob: changed cells of the downscaled image (counted before dilation).
    pub min_area: u32,
    /// A change over more than this fraction of the frame is a lighting change, not motion.
    pub max_fraction: f32,
    /// Areas ignored by the detector (normalized polygons).
    pub masks: Vec<Polygon>,
}

impl Default for MotionConfig {
    fn default() -> Self {
        MotionConfig {
            height: 100,
            threshold: 25,
            alpha: 0.05,
            dilate: 2,
            min_area: 12,
            max_fraction: 0.6,
            masks: Vec::new(),
        }
    }
}

impl MotionConfig {
    /// Checks every field; errors name it (`motion.alpha`).
    pub fn validate(&self) -> Result<()> {
        if !(16..=1080).contains(&self.height) {
            return Err(VisionError::config("motion.height", "must be between 16 and 1080 rows"));
        }
        if self.threshold == 0 {
            return Err(VisionError::config("motion.threshold", "must be at least 1"));
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(VisionError::config("motion.alpha", "must be in (0, 1]"));
        }
        if self.dilate > 10 {
            return Err(VisionError::config("motion.dilate", "at most 10 passes"));
        }
        if !(self.max_fraction > 0.0 && self.max_fraction <= 1.0) {
            return Err(VisionError::config("motion.max_fraction", "must be in (0, 1]"));
        }
        for (i, m) in self.masks.iter().enumerate() {
            m.validate(&format!("motion.masks[{i}]"))?;
        }
        Ok(())
    }
}

/// What the detector saw on one frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Motion {
    /// Moving blobs in frame pixel coordinates, largest first (`score` is the blob's fill ratio).
    pub boxes: Vec<BoundingBox>,
    /// Fraction of the (unmasked) frame that changed, in [0, 1].
    pub fraction: f32,
    /// True when the change was too large to be motion and the background was reset.
    pub lighting_change: bool,
}

/// A running-average background subtractor over a downscaled grayscale image.
#[derive(Debug)]
pub struct MotionDetector {
    config: MotionConfig,
    /// Frame size the state below belongs to.
    size: (u32, u32),
    /// Downscale step in frame pixels, and the grid size.
    step: usize,
    gw: usize,
    gh: usize,
    background: Vec<f32>,
    gray: Vec<u8>,
    changed: Vec<u8>,
    /// `changed` before dilation: blob areas count these cells only.
    raw: Vec<u8>,
    scratch: Vec<u8>,
    /// 1 where a mask hides the cell.
    masked: Vec<u8>,
    /// Cells no mask hides.
    open: usize,
    /// Sample offsets inside a cell (the same for x and y).
    offsets: Vec<usize>,
    labels: Vec<u32>,
    stack: Vec<usize>,
}

impl MotionDetector {
    /// A detector; the config is validated.
    pub fn new(config: MotionConfig) -> Result<Self> {
        config.validate()?;
        Ok(MotionDetector {
            config,
            size: (0, 0),
            step: 1,
            gw: 0,
            gh: 0,
            background: Vec::new(),
            gray: Vec::new(),
            changed: Vec::new(),
            raw: Vec::new(),
            scratch: Vec::new(),
            masked: Vec::new(),
            open: 0,
            offsets: Vec::new(),
            labels: Vec::new(),
            stack: Vec::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &MotionConfig {
        &self.config
    }

    /// Forgets the background (the next frame becomes it).
    pub fn reset(&mut self) {
        self.size = (0, 0);
    }

    /// Compares a frame with the background, then folds it into the background. The first
    /// frame (and the first after a size change) only sets the background: no motion.
    pub fn detect(&mut self, frame: &Frame) -> Motion {
        let (w, h) = (frame.width as usize, frame.height as usize);
        if w == 0 || h == 0 || frame.rgb.len() != w * h * 3 {
            return Motion::default();
        }
        if self.size != (frame.width, frame.height) {
            self.resize(frame);
            self.downscale(frame);
            self.background
                .iter_mut()
                .zip(&self.gray)
                .for_each(|(b, &g)| *b = g as f32);
            return Motion::default();
        }
        self.downscale(frame);
        let n = self.gw * self.gh;
        let thr = self.config.threshold as f32;
        let mut count = 0usize;
        for i in 0..n {
            let hit = (self.gray[i] as f32 - self.background[i]).abs() > thr && self.masked[i] == 0;
            self.changed[i] = hit as u8;
            count += hit as usize;
        }
        let fraction = if self.open == 0 {
            0.0
        } else {
            count as f32 / self.open as f32
        };
        if fraction > self.config.max_fraction {
            self.background
                .iter_mut()
                .zip(&self.gray)
                .for_each(|(b, &g)| *b = g as f32);
            return Motion {
                boxes: Vec::new(),
                fraction,
                lighting_change: true,
            };
        }
        let a = self.config.alpha;
        if count == 0 {
            for (b, &g) in self.background.iter_mut().zip(&self.gray) {
                *b += (g as f32 - *b) * a;
            }
            return Motion::default();
        }
        self.raw.copy_from_slice(&self.changed);
        for _ in 0..self.config.dilate {
            self.dilate();
        }
        // Selective update: where something moves the background learns ten times slower, so a
        // person walking through is not smeared into it (no ghost trail behind them), while an
        // object that stops for good still fades in.
        for ((b, &g), &c) in self.background.iter_mut().zip(&self.gray).zip(&self.changed) {
            let rate = if c != 0 { a * 0.1 } else { a };
            *b += (g as f32 - *b) * rate;
        }
        let boxes = self.blobs();
        Motion {
            fraction: if boxes.is_empty() { 0.0 } else { fraction },
            boxes,
            lighting_change: false,
        }
    }

    fn resize(&mut self, frame: &Frame) {
        let (w, h) = (frame.width as usize, frame.height as usize);
        self.size = (frame.width, frame.height);
        self.step = (h / self.config.height as usize).max(1);
        self.gw = (w / self.step).max(1);
        self.gh = (h / self.step).max(1);
        let n = self.gw * self.gh;
        self.background = vec![0.0; n];
        self.gray = vec![0; n];
        self.changed = vec![0; n];
        self.raw = vec![0; n];
        self.scratch = vec![0; n];
        self.labels = vec![0; n];
        self.masked = vec![0; n];
        for gy in 0..self.gh {
            for gx in 0..self.gw {
                let p = [(gx as f32 + 0.5) / self.gw as f32, (gy as f32 + 0.5) / self.gh as f32];
                if self.config.masks.iter().any(|m| m.contains(p)) {
                    self.masked[gy * self.gw + gx] = 1;
                }
            }
        }
        self.open = n - self.masked.iter().filter(|&&m| m != 0).count();
        let (step, k) = (self.step, self.step.min(4));
        self.offsets = (0..k).map(|i| i * step / k + step / (2 * k)).collect();
    }

    /// Gray level of each `step × step` cell, averaged over a 4×4 grid of samples inside it
    /// (like a bilinear resize, it reads a fraction of the pixels: 1080p costs ~270k samples).
    fn downscale(&mut self, frame: &Frame) {
        let w = frame.width as usize;
        let step = self.step;
        let offs = &self.offsets;
        let k = offs.len();
        let rgb = &frame.rgb;
        for gy in 0..self.gh {
            let row = &mut self.gray[gy * self.gw..(gy + 1) * self.gw];
            for (gx, out) in row.iter_mut().enumerate() {
                let mut acc = 0u32;
                for &oy in offs {
                    let base = ((gy * step + oy) * w + gx * step) * 3;
                    for &ox in offs {
                        let p = base + ox * 3;
                        acc += 77 * rgb[p] as u32 + 150 * rgb[p + 1] as u32 + 29 * rgb[p + 2] as u32;
                    }
                }
                *out = (acc / (256 * (k * k) as u32)) as u8;
            }
        }
    }

    fn dilate(&mut self) {
        let (gw, gh) = (self.gw, self.gh);
        self.scratch.copy_from_slice(&self.changed);
        for y in 0..gh {
            for x in 0..gw {
                if self.scratch[y * gw + x] == 0 {
                    continue;
                }
                for yy in y.saturating_sub(1)..(y + 2).min(gh) {
                    for xx in x.saturating_sub(1)..(x + 2).min(gw) {
                        self.changed[yy * gw + xx] = 1;
                    }
                }
            }
        }
    }

    /// 8-connected components of the changed cells, as frame-pixel boxes.
    fn blobs(&mut self) -> Vec<BoundingBox> {
        let (gw, gh) = (self.gw, self.gh);
        self.labels.iter_mut().for_each(|l| *l = 0);
        let mut out = Vec::new();
        let mut next = 0u32;
        for start in 0..gw * gh {
            if self.changed[start] == 0 || self.labels[start] != 0 {
                continue;
            }
            next += 1;
            self.labels[start] = next;
            self.stack.clear();
            self.stack.push(start);
            let (mut x0, mut y0, mut x1, mut y1, mut area) = (gw, gh, 0, 0, 0u32);
            while let Some(i) = self.stack.pop() {
                let (x, y) = (i % gw, i / gw);
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
                area += self.raw[i] as u32;
                for yy in y.saturating_sub(1)..(y + 2).min(gh) {
                    for xx in x.saturating_sub(1)..(x + 2).min(gw) {
                        let j = yy * gw + xx;
                        if self.changed[j] != 0 && self.labels[j] == 0 {
                            self.labels[j] = next;
                            self.stack.push(j);
                        }
                    }
                }
            }
            if area < self.config.min_area {
                continue;
            }
            let s = self.step as f32;
            let (bw, bh) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
            out.push(BoundingBox {
                x: x0 as f32 * s,
                y: y0 as f32 * s,
                w: (bw * s).min(self.size.0 as f32 - x0 as f32 * s),
                h: (bh * s).min(self.size.1 as f32 - y0 as f32 * s),
                score: area as f32 / (bw * bh),
            });
        }
        out.sort_by(|a, b| (b.w * b.h).total_cmp(&(a.w * a.h)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, v: u8) -> Frame {
        Frame {
            width: w,
            height: h,
            timestamp: 0,
            rgb: vec![v; (w * h * 3) as usize],
        }
    }

    fn paint(f: &mut Frame, x0: usize, y0: usize, x1: usize, y1: usize, v: u8) {
        let w = f.width as usize;
        for y in y0..y1 {
            for x in x0..x1 {
                let p = (y * w + x) * 3;
                f.rgb[p..p + 3].fill(v);
            }
        }
    }

    #[test]
    fn a_moving_block_is_boxed_in_frame_coordinates() {
        let mut d = MotionDetector::new(MotionConfig::default()).unwrap();
        let bg = frame(640, 480, 60);
        assert!(d.detect(&bg).boxes.is_empty());
        assert!(d.detect(&bg).boxes.is_empty());
        let mut f = bg.clone();
        paint(&mut f, 200, 100, 300, 260, 220);
        let m = d.detect(&f);
        assert_eq!(m.boxes.len(), 1, "{m:?}");
        let b = m.boxes[0];
        // Dilation grows the blob by a couple of cells (4.8 px each at 100 rows).
        assert!(
            b.x >= 180.0 && b.x <= 200.0 && b.x + b.w >= 300.0 && b.x + b.w <= 325.0,
            "{b:?}"
        );
        assert!(
            b.y >= 80.0 && b.y <= 100.0 && b.y + b.h >= 260.0 && b.y + b.h <= 285.0,
            "{b:?}"
        );
        assert!(m.fraction > 0.0 && !m.lighting_change);
    }

    #[test]
    fn noise_and_tiny_changes_are_ignored() {
        let mut d = MotionDetector::new(MotionConfig::default()).unwrap();
        let bg = frame(640, 480, 60);
        d.detect(&bg);
        let mut f = bg.clone();
        // Small sensor noise everywhere.
        for (i, b) in f.rgb.iter_mut().enumerate() {
            *b = (*b as i32 + (i % 7) as i32 - 3) as u8;
        }
        // A 4×4 px speck.
        paint(&mut f, 10, 10, 14, 14, 255);
        assert!(d.detect(&f).boxes.is_empty());
    }

    #[test]
    fn lights_switching_on_is_not_motion_and_resets_the_background() {
        let mut d = MotionDetector::new(MotionConfig::default()).unwrap();
        d.detect(&frame(320, 240, 40));
        let m = d.detect(&frame(320, 240, 200));
        assert!(m.boxes.is_empty() && m.lighting_change, "{m:?}");
        // The new level is the background now.
        assert!(d.detect(&frame(320, 240, 200)).boxes.is_empty());
    }

    #[test]
    fn masked_areas_never_count() {
        let cfg = MotionConfig {
            masks: vec![Polygon(vec![[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]])],
            ..MotionConfig::default()
        };
        let mut d = MotionDetector::new(cfg).unwrap();
        let bg = frame(400, 200, 50);
        d.detect(&bg);
        let mut f = bg.clone();
        paint(&mut f, 20, 20, 120, 150, 240);
        assert!(d.detect(&f).boxes.is_empty());
        paint(&mut f, 260, 20, 360, 150, 240);
        let m = d.detect(&f);
        assert_eq!(m.boxes.len(), 1);
        assert!(m.boxes[0].x >= 240.0);
    }

    #[test]
    fn a_still_object_fades_into_the_background() {
        let mut d = MotionDetector::new(MotionConfig::default()).unwrap();
        let bg = frame(320, 240, 60);
        d.detect(&bg);
        let mut f = bg.clone();
        paint(&mut f, 100, 100, 160, 180, 200);
        assert!(!d.detect(&f).boxes.is_empty());
        let mut still = 0;
        for _ in 0..800 {
            if d.detect(&f).boxes.is_empty() {
                still += 1;
            }
        }
        assert!(still > 300, "{still}");
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = MotionDetector::new(MotionConfig {
            alpha: 0.0,
            ..MotionConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("motion.alpha"), "{err}");
        let err = MotionDetector::new(MotionConfig {
            masks: vec![Polygon(vec![[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])],
            ..MotionConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("motion.masks[0][1]"), "{err}");
    }

    #[test]
    fn a_wrong_sized_frame_is_no_motion() {
        let mut d = MotionDetector::new(MotionConfig::default()).unwrap();
        let mut f = frame(100, 100, 1);
        f.rgb.truncate(10);
        assert_eq!(d.detect(&f), Motion::default());
    }
}
