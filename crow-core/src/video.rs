//! CCTV types: masked frames, tracks, observations and the archive ledger.
//!
//! The privacy rule of the CCTV channel lives here, in the type system: a [`MaskedFrame`] can
//! only be made by masking a [`Frame`]'s face regions, and every writer of images (the
//! [`ImageEncoder`](crate::ports::ImageEncoder) port, the archive) takes a `MaskedFrame`, never a
//! raw frame. Masking is plain pixel arithmetic (no I/O), so it compiles to wasm32 as well.
//!
//! ```
//! use crow_core::ports::{BoundingBox, Frame};
//! use crow_core::video::{MaskMode, MaskSpec, MaskedFrame};
//!
//! let frame = Frame { width: 64, height: 64, timestamp: 0, rgb: (0..64 * 64 * 3).map(|i| (i % 251) as u8).collect() };
//! let face = BoundingBox { x: 16.0, y: 16.0, w: 20.0, h: 24.0, score: 0.9 };
//! let masked = MaskedFrame::mask(frame, &[face], &MaskSpec { mode: MaskMode::Solid, padding: 1.3 });
//! assert_eq!(masked.regions().len(), 1);
//! let r = masked.regions()[0];
//! let px = ((r.y as usize + 2) * 64 + r.x as usize + 2) * 3;
//! assert_eq!(&masked.frame().rgb[px..px + 3], &[0, 0, 0]);
//! ```

use serde::{Deserialize, Serialize};

use crate::model::FrameEventKind;
use crate::model::Millis;
use crate::ports::{BoundingBox, Frame};
use crate::{Error, Result};

/// How face regions are hidden.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskMode {
    /// A strong box blur (three passes, radius a fifth of the region).
    #[default]
    Blur,
    /// Coarse blocks (about six across the region).
    Pixelate,
    /// A solid black fill.
    Solid,
}

impl std::str::FromStr for MaskMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "blur" => Ok(MaskMode::Blur),
            "pixelate" => Ok(MaskMode::Pixelate),
            "solid" => Ok(MaskMode::Solid),
            other => Err(Error::invalid(
                "mask",
                format!("`{other}` is not one of blur, pixelate, solid"),
            )),
        }
    }
}

impl std::fmt::Display for MaskMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MaskMode::Blur => "blur",
            MaskMode::Pixelate => "pixelate",
            MaskMode::Solid => "solid",
        })
    }
}

/// Mask mode and box padding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    /// How regions are hidden.
    #[serde(default)]
    pub mode: MaskMode,
    /// Each box is scaled by this factor around its centre before masking (detectors box the
    /// face tightly; hair, ears and chin are identifying too). At least 1.
    #[serde(default = "default_padding")]
    pub padding: f32,
}

fn default_padding() -> f32 {
    1.3
}

impl Default for MaskSpec {
    fn default() -> Self {
        MaskSpec {
            mode: MaskMode::Blur,
            padding: default_padding(),
        }
    }
}

/// A frame whose face regions are masked. The only constructor is [`MaskedFrame::mask`]: code
/// that stores, encodes or returns an image takes this type, so an unmasked frame cannot reach
/// storage by mistake.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedFrame {
    frame: Frame,
    regions: Vec<BoundingBox>,
}

impl MaskedFrame {
    /// Masks `faces` (padded by `spec.padding`, clipped to the frame) and wraps the result.
    /// Boxes entirely outside the frame are ignored. A frame whose buffer does not match its
    /// size is blacked out entirely (nothing of it can be trusted to be masked).
    pub fn mask(mut frame: Frame, faces: &[BoundingBox], spec: &MaskSpec) -> MaskedFrame {
        let (w, h) = (frame.width as usize, frame.height as usize);
        if frame.rgb.len() != w * h * 3 {
            frame.rgb.iter_mut().for_each(|b| *b = 0);
            let whole = BoundingBox {
                x: 0.0,
                y: 0.0,
                w: frame.width as f32,
                h: frame.height as f32,
                score: 1.0,
            };
            return MaskedFrame {
                frame,
                regions: vec![whole],
            };
        }
        let mut regions = Vec::with_capacity(faces.len());
        for b in faces {
            let Some(r) = pad_and_clip(b, spec.padding.max(1.0), w, h) else {
                continue;
            };
            match spec.mode {
                MaskMode::Solid => fill(&mut frame.rgb, w, r),
                MaskMode::Pixelate => pixelate(&mut frame.rgb, w, r),
                MaskMode::Blur => blur(&mut frame.rgb, w, r),
            }
            regions.push(BoundingBox {
                x: r.x0 as f32,
                y: r.y0 as f32,
                w: (r.x1 - r.x0) as f32,
                h: (r.y1 - r.y0) as f32,
                score: b.score,
            });
        }
        MaskedFrame { frame, regions }
    }

    /// The masked image.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// The masked regions (padded and clipped), in pixel coordinates.
    pub fn regions(&self) -> &[BoundingBox] {
        &self.regions
    }

    /// Frame time.
    pub fn timestamp(&self) -> Millis {
        self.frame.timestamp
    }

    /// Downscales by an integer factor (box filter): for archive previews. The result stays
    /// masked, since averaging masked pixels cannot bring a face back.
    pub fn downscale(&self, factor: u32) -> MaskedFrame {
        let f = factor.max(1) as usize;
        if f == 1 {
            return self.clone();
        }
        let (w, h) = (self.frame.width as usize, self.frame.height as usize);
        let (nw, nh) = ((w / f).max(1), (h / f).max(1));
        let mut out = vec![0u8; nw * nh * 3];
        for y in 0..nh {
            for x in 0..nw {
                let mut acc = [0u32; 3];
                let mut n = 0u32;
                for yy in y * f..((y + 1) * f).min(h) {
                    for xx in x * f..((x + 1) * f).min(w) {
                        let p = (yy * w + xx) * 3;
                        acc[0] += self.frame.rgb[p] as u32;
                        acc[1] += self.frame.rgb[p + 1] as u32;
                        acc[2] += self.frame.rgb[p + 2] as u32;
                        n += 1;
                    }
                }
                let o = (y * nw + x) * 3;
                for c in 0..3 {
                    out[o + c] = (acc[c] / n.max(1)) as u8;
                }
            }
        }
        let s = 1.0 / f as f32;
        MaskedFrame {
            frame: Frame {
                width: nw as u32,
                height: nh as u32,
                timestamp: self.frame.timestamp,
                rgb: out,
            },
            regions: self
                .regions
                .iter()
                .map(|r| BoundingBox {
                    x: r.x * s,
                    y: r.y * s,
                    w: r.w * s,
                    h: r.h * s,
                    score: r.score,
                })
                .collect(),
        }
    }
}

/// A pixel rectangle, half-open.
#[derive(Debug, Clone, Copy)]
struct Rect {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

fn pad_and_clip(b: &BoundingBox, padding: f32, w: usize, h: usize) -> Option<Rect> {
    if !(b.x.is_finite() && b.y.is_finite() && b.w.is_finite() && b.h.is_finite()) || b.w <= 0.0 || b.h <= 0.0 {
        return None;
    }
    let (cx, cy) = (b.x + b.w / 2.0, b.y + b.h / 2.0);
    let (pw, ph) = (b.w * padding, b.h * padding);
    let x0 = (cx - pw / 2.0).floor().max(0.0);
    let y0 = (cy - ph / 2.0).floor().max(0.0);
    let x1 = (cx + pw / 2.0).ceil().min(w as f32);
    let y1 = (cy + ph / 2.0).ceil().min(h as f32);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    Some(Rect {
        x0: x0 as usize,
        y0: y0 as usize,
        x1: x1 as usize,
        y1: y1 as usize,
    })
}

fn fill(rgb: &mut [u8], w: usize, r: Rect) {
    for y in r.y0..r.y1 {
        rgb[(y * w + r.x0) * 3..(y * w + r.x1) * 3].fill(0);
    }
}

fn pixelate(rgb: &mut [u8], w: usize, r: Rect) {
    let side = (r.x1 - r.x0).max(r.y1 - r.y0);
    let block = (side / 6).max(4);
    let mut by = r.y0;
    while by < r.y1 {
        let ey = (by + block).min(r.y1);
        let mut bx = r.x0;
        while bx < r.x1 {
            let ex = (bx + block).min(r.x1);
            let mut acc = [0u32; 3];
            for y in by..ey {
                for x in bx..ex {
                    let p = (y * w + x) * 3;
                    acc[0] += rgb[p] as u32;
                    acc[1] += rgb[p + 1] as u32;
                    acc[2] += rgb[p + 2] as u32;
                }
            }
            let n = ((ey - by) * (ex - bx)) as u32;
            let avg = [(acc[0] / n) as u8, (acc[1] / n) as u8, (acc[2] / n) as u8];
            for y in by..ey {
                for x in bx..ex {
                    let p = (y * w + x) * 3;
                    rgb[p..p + 3].copy_from_slice(&avg);
                }
            }
            bx = ex;
        }
        by = ey;
    }
}

/// Three passes of a separable box blur (close to a Gaussian), confined to the region: edge
/// pixels of the region are repeated, so nothing from outside bleeds in and the face cannot be
/// recovered by subtracting its surroundings.
fn blur(rgb: &mut [u8], w: usize, r: Rect) {
    let (rw, rh) = (r.x1 - r.x0, r.y1 - r.y0);
    let radius = (rw.max(rh) / 5).max(3);
    let mut buf: Vec<[f32; 3]> = Vec::with_capacity(rw * rh);
    for y in r.y0..r.y1 {
        for x in r.x0..r.x1 {
            let p = (y * w + x) * 3;
            buf.push([rgb[p] as f32, rgb[p + 1] as f32, rgb[p + 2] as f32]);
        }
    }
    let mut line: Vec<[f32; 3]> = Vec::with_capacity(rw.max(rh));
    for _ in 0..3 {
        for y in 0..rh {
            line.clear();
            line.extend_from_slice(&buf[y * rw..(y + 1) * rw]);
            box_line(&line, radius, |i, v| buf[y * rw + i] = v);
        }
        for x in 0..rw {
            line.clear();
            line.extend((0..rh).map(|y| buf[y * rw + x]));
            box_line(&line, radius, |i, v| buf[i * rw + x] = v);
        }
    }
    for y in 0..rh {
        for x in 0..rw {
            let p = ((r.y0 + y) * w + r.x0 + x) * 3;
            let v = buf[y * rw + x];
            for c in 0..3 {
                rgb[p + c] = v[c].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// A running-sum box filter over one line, edges clamped.
fn box_line(line: &[[f32; 3]], radius: usize, mut out: impl FnMut(usize, [f32; 3])) {
    let n = line.len();
    let at = |i: isize| line[i.clamp(0, n as isize - 1) as usize];
    let r = radius as isize;
    let mut sum = [0f32; 3];
    for i in -r..=r {
        let v = at(i);
        for c in 0..3 {
            sum[c] += v[c];
        }
    }
    let k = 1.0 / (2 * radius + 1) as f32;
    for i in 0..n as isize {
        out(i as usize, [sum[0] * k, sum[1] * k, sum[2] * k]);
        let (add, sub) = (at(i + r + 1), at(i - r));
        for c in 0..3 {
            sum[c] += add[c] - sub[c];
        }
    }
}

/// A tracked object (a face or a person) carried between detections.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Stable id within one camera's run.
    pub id: u64,
    /// Current box (detected, or predicted when `misses > 0`).
    pub bbox: BoundingBox,
    /// Detections matched so far.
    pub hits: u32,
    /// Frames since the last matched detection (0: detected in this frame).
    pub misses: u32,
}

/// Something the people analytics observed on a frame; the channel turns it into a
/// [`FrameEvent`](crate::model::FrameEvent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameObservation {
    /// What was observed.
    pub kind: FrameEventKind,
    /// Zone or line name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// People count.
    #[serde(default)]
    pub count: u32,
    /// Measured value (dwell seconds, motion area fraction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// What a [`FrameProcessor`](crate::ports::FrameProcessor) made of one frame.
#[derive(Debug, Clone)]
pub struct ProcessedFrame {
    /// The frame with every tracked face masked.
    pub frame: MaskedFrame,
    /// Motion boxes in frame coordinates (empty: no motion).
    pub motion: Vec<BoundingBox>,
    /// Fraction of the (unmasked-area) frame that moved, in [0, 1].
    pub motion_fraction: f32,
    /// True when the detector ran on this frame (motion, or the every-Nth safety net).
    pub analyzed: bool,
    /// Face tracks whose boxes were masked (detected now or carried by the tracker).
    pub faces: Vec<Track>,
    /// People tracks.
    pub people: Vec<Track>,
    /// Line crossings, occupancy changes, dwell times, presence changes.
    pub observations: Vec<FrameObservation>,
    /// True when this frame is worth archiving (the first frame of a motion episode, and then
    /// at the configured keyframe interval while motion lasts).
    pub keyframe: bool,
}

/// An encoded image (a masked keyframe or a heatmap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedImage {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// MIME type (`image/jpeg`, `image/webp`, `image/png`).
    pub content_type: String,
    /// File extension without the dot.
    pub extension: String,
}

/// Image formats of the archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    /// JPEG (lossy, quality 1–100).
    #[default]
    Jpeg,
    /// WebP (lossy, quality 1–100).
    Webp,
    /// PNG (lossless; heatmaps).
    Png,
}

impl std::str::FromStr for ImageFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "jpeg" | "jpg" => Ok(ImageFormat::Jpeg),
            "webp" => Ok(ImageFormat::Webp),
            "png" => Ok(ImageFormat::Png),
            other => Err(Error::invalid(
                "format",
                format!("`{other}` is not one of jpeg, webp, png"),
            )),
        }
    }
}

/// One archived object, recorded in the store so retention can delete oldest first without
/// listing the object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    /// Object-store key.
    pub key: String,
    /// Camera id.
    pub camera_id: String,
    /// Frame (or period end) time.
    pub timestamp: Millis,
    /// Size in bytes.
    pub bytes: u64,
    /// `keyframe` or `heatmap`.
    pub kind: String,
}

/// Totals of an org's archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveUsage {
    /// Objects recorded.
    pub objects: u64,
    /// Their total size.
    pub bytes: u64,
    /// The oldest object's time.
    pub oldest: Option<Millis>,
}

/// Retention budget of the archive: both limits apply, oldest objects go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Maximum total bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Maximum age in seconds (0: no age limit).
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
}

fn default_max_bytes() -> u64 {
    1 << 30
}

fn default_max_age() -> u64 {
    30 * 24 * 3600
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_bytes: default_max_bytes(),
            max_age_secs: default_max_age(),
        }
    }
}

/// Filters for [`VideoStore::list_frame_events`](crate::ports::VideoStore::list_frame_events).
/// Results are oldest first (by timestamp, then id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameEventQuery {
    /// Page size, `1..=1000`.
    pub limit: u32,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Only this camera.
    pub camera_id: Option<String>,
    /// Only this kind.
    pub kind: Option<FrameEventKind>,
    /// Only this zone.
    pub zone: Option<String>,
    /// At or after.
    pub since: Option<Millis>,
    /// Before.
    pub until: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32) -> Frame {
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                // A checkerboard: any masking changes it visibly.
                let v = if (x / 2 + y / 2) % 2 == 0 { 250 } else { 5 };
                rgb.extend_from_slice(&[v, v / 2, 255 - v]);
            }
        }
        Frame {
            width: w,
            height: h,
            timestamp: 7,
            rgb,
        }
    }

    fn bx(x: f32, y: f32, w: f32, h: f32) -> BoundingBox {
        BoundingBox { x, y, w, h, score: 0.9 }
    }

    fn variance(f: &Frame, r: &BoundingBox) -> f64 {
        let mut vals = Vec::new();
        for y in r.y as usize..(r.y + r.h) as usize {
            for x in r.x as usize..(r.x + r.w) as usize {
                vals.push(f.rgb[(y * f.width as usize + x) * 3] as f64);
            }
        }
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vals.len() as f64
    }

    #[test]
    fn every_mode_destroys_detail_inside_and_keeps_outside() {
        for mode in [MaskMode::Blur, MaskMode::Pixelate, MaskMode::Solid] {
            let orig = frame(120, 90);
            let m = MaskedFrame::mask(
                orig.clone(),
                &[bx(40.0, 30.0, 30.0, 30.0)],
                &MaskSpec { mode, padding: 1.3 },
            );
            let r = m.regions()[0];
            // Padded by 1.3 around the centre (55, 45): 39 px wide.
            assert!((r.w - 39.0).abs() <= 1.0, "{mode}: {r:?}");
            let inner = bx(r.x + r.w / 4.0, r.y + r.h / 4.0, r.w / 2.0, r.h / 2.0);
            assert!(variance(&orig, &inner) > 5000.0);
            assert!(
                variance(m.frame(), &inner) < 400.0,
                "{mode}: {}",
                variance(m.frame(), &inner)
            );
            // Outside the padded box nothing changed.
            let p = (5 * 120 + 5) * 3;
            assert_eq!(m.frame().rgb[p..p + 3], orig.rgb[p..p + 3]);
            assert_eq!(m.timestamp(), 7);
        }
    }

    #[test]
    fn boxes_are_clipped_and_degenerate_ones_ignored() {
        let m = MaskedFrame::mask(
            frame(50, 40),
            &[
                bx(-10.0, -10.0, 30.0, 30.0),
                bx(100.0, 100.0, 5.0, 5.0),
                bx(10.0, 10.0, 0.0, 5.0),
                bx(f32::NAN, 1.0, 5.0, 5.0),
                bx(40.0, 30.0, 30.0, 30.0),
            ],
            &MaskSpec::default(),
        );
        assert_eq!(m.regions().len(), 2);
        for r in m.regions() {
            assert!(
                r.x >= 0.0 && r.y >= 0.0 && r.x + r.w <= 50.0 && r.y + r.h <= 40.0,
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_wrong_sized_buffer_is_blacked_out() {
        let mut f = frame(10, 10);
        f.rgb.truncate(50);
        let m = MaskedFrame::mask(f, &[], &MaskSpec::default());
        assert!(m.frame().rgb.iter().all(|&b| b == 0));
        assert_eq!(m.regions().len(), 1);
    }

    #[test]
    fn downscale_keeps_the_mask() {
        let m = MaskedFrame::mask(
            frame(64, 64),
            &[bx(16.0, 16.0, 20.0, 20.0)],
            &MaskSpec {
                mode: MaskMode::Solid,
                padding: 1.0,
            },
        );
        let d = m.downscale(2);
        assert_eq!((d.frame().width, d.frame().height), (32, 32));
        let p = (13 * 32 + 13) * 3;
        assert_eq!(&d.frame().rgb[p..p + 3], &[0, 0, 0]);
        assert_eq!(d.regions()[0].x, 8.0);
    }

    #[test]
    fn modes_and_formats_parse() {
        assert_eq!("pixelate".parse::<MaskMode>().unwrap(), MaskMode::Pixelate);
        assert!(
            "smudge"
                .parse::<MaskMode>()
                .unwrap_err()
                .to_string()
                .contains("blur, pixelate, solid")
        );
        assert_eq!("jpg".parse::<ImageFormat>().unwrap(), ImageFormat::Jpeg);
    }
}
