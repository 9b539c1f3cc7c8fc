//! Turning frames into model input tensors, and model boxes back into frame boxes.

use std::path::{Path, PathBuf};

use crow_core::ports::{BoundingBox, Frame};
use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

use crate::error::{Result, VisionError};

/// Checks that `frame` is not empty and holds `width * height * 3` bytes.
pub(crate) fn check_frame(frame: &Frame) -> Result<()> {
    let want = frame.width as usize * frame.height as usize * 3;
    if frame.width == 0 || frame.height == 0 {
        return Err(VisionError::image("<frame>", "the frame is empty"));
    }
    if frame.rgb.len() != want {
        return Err(VisionError::image(
            "<frame>",
            format!(
                "a {}x{} RGB frame needs {want} bytes, it has {}",
                frame.width,
                frame.height,
                frame.rgb.len()
            ),
        ));
    }
    Ok(())
}

/// Where a frame's content lies in the model input: frame pixel `(x, y)` lands at
/// `(x * sx + ox, y * sy + oy)`, and the content covers `cw x ch` input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placement {
    pub sx: f32,
    pub sy: f32,
    pub ox: usize,
    pub oy: usize,
    pub cw: usize,
    pub ch: usize,
}

impl Placement {
    /// The frame scaled by `s` (at least one pixel each way) at the top-left corner.
    pub fn scaled(frame: &Frame, s: f32) -> Self {
        let cw = ((frame.width as f32 * s).round() as usize).max(1);
        let ch = ((frame.height as f32 * s).round() as usize).max(1);
        Placement {
            sx: cw as f32 / frame.width as f32,
            sy: ch as f32 / frame.height as f32,
            ox: 0,
            oy: 0,
            cw,
            ch,
        }
    }

    /// The frame letterboxed into `w x h`: scaled to fit, aspect kept, centred.
    pub fn letterbox(frame: &Frame, w: usize, h: usize) -> Self {
        let s = (w as f32 / frame.width as f32).min(h as f32 / frame.height as f32);
        let cw = ((frame.width as f32 * s).round() as usize).clamp(1, w);
        let ch = ((frame.height as f32 * s).round() as usize).clamp(1, h);
        Placement {
            sx: cw as f32 / frame.width as f32,
            sy: ch as f32 / frame.height as f32,
            ox: (w - cw) / 2,
            oy: (h - ch) / 2,
            cw,
            ch,
        }
    }

    /// The frame stretched over `w x h`.
    pub fn stretch(frame: &Frame, w: usize, h: usize) -> Self {
        Placement {
            sx: w as f32 / frame.width as f32,
            sy: h as f32 / frame.height as f32,
            ox: 0,
            oy: 0,
            cw: w,
            ch: h,
        }
    }

    /// A box given by corners in input pixels, mapped to the frame's pixels and clipped to it;
    /// `None` when nothing of it is left.
    pub fn to_frame(self, corners: [f32; 4], score: f32, frame_w: u32, frame_h: u32) -> Option<BoundingBox> {
        let (fw, fh) = (frame_w as f32, frame_h as f32);
        let x0 = ((corners[0] - self.ox as f32) / self.sx).clamp(0.0, fw);
        let y0 = ((corners[1] - self.oy as f32) / self.sy).clamp(0.0, fh);
        let x1 = ((corners[2] - self.ox as f32) / self.sx).clamp(0.0, fw);
        let y1 = ((corners[3] - self.oy as f32) / self.sy).clamp(0.0, fh);
        (x1 > x0 && y1 > y0).then_some(BoundingBox {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
            score,
        })
    }
}

/// How pixel bytes become input values: `v * scale[c] + shift[c]` for channel `c` (R, G, B).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Affine {
    pub scale: [f32; 3],
    pub shift: [f32; 3],
}

impl Affine {
    /// Raw 0-255 values.
    pub const IDENTITY: Affine = Affine {
        scale: [1.0; 3],
        shift: [0.0; 3],
    };

    /// `(v * pixel_scale - mean) / std`.
    pub fn normalize(pixel_scale: f32, mean: [f32; 3], std: [f32; 3]) -> Self {
        let mut a = Affine::IDENTITY;
        for c in 0..3 {
            a.scale[c] = pixel_scale / std[c];
            a.shift[c] = -mean[c] / std[c];
        }
        a
    }

    fn apply(&self, c: usize, v: f32) -> f32 {
        v * self.scale[c] + self.shift[c]
    }
}

/// The memory layout of an image in a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Planar: `[3, H, W]`.
    Nchw,
    /// Interleaved: `[H, W, 3]`.
    Nhwc,
}

/// Source positions and weights of a bilinear resize along one axis, reused across frames.
#[derive(Debug, Default)]
pub(crate) struct Resampler {
    xs: Vec<(usize, usize, f32)>,
    ys: Vec<(usize, usize, f32)>,
}

fn taps(out: &mut Vec<(usize, usize, f32)>, src: usize, dst: usize) {
    out.clear();
    let ratio = src as f32 / dst as f32;
    for i in 0..dst {
        let p = ((i as f32 + 0.5) * ratio - 0.5).clamp(0.0, (src - 1) as f32);
        let i0 = p.floor() as usize;
        let i1 = (i0 + 1).min(src - 1);
        out.push((i0, i1, p - i0 as f32));
    }
}

impl Resampler {
    /// Writes `frame` into `dst`, one image of `w x h` in `layout`: the content placed (and
    /// resized bilinearly when its size differs from the frame's) as `place` says, each value
    /// mapped by `norm`, and every other pixel set to `pad` (already normalized). Every value of
    /// `dst` is written once; `dst` must hold `3 * w * h` values.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        frame: &Frame,
        dst: &mut [f32],
        w: usize,
        h: usize,
        layout: Layout,
        place: &Placement,
        norm: &Affine,
        pad: [f32; 3],
    ) {
        debug_assert_eq!(dst.len(), 3 * w * h);
        debug_assert!(place.ox + place.cw <= w && place.oy + place.ch <= h);
        let (fw, fh) = (frame.width as usize, frame.height as usize);
        let resize = place.cw != fw || place.ch != fh;
        if resize {
            taps(&mut self.xs, fw, place.cw);
            taps(&mut self.ys, fh, place.ch);
        }
        let row_bytes = fw * 3;
        match layout {
            Layout::Nchw => {
                let plane = w * h;
                let (r, rest) = dst.split_at_mut(plane);
                let (g, b) = rest.split_at_mut(plane);
                let mut planes = [r, g, b];
                for y in 0..h {
                    let line = y * w..(y + 1) * w;
                    let inside = y >= place.oy && y < place.oy + place.ch;
                    for (c, p) in planes.iter_mut().enumerate() {
                        let row = &mut p[line.clone()];
                        if !inside {
                            row.fill(pad[c]);
                            continue;
                        }
                        row[..place.ox].fill(pad[c]);
                        row[place.ox + place.cw..].fill(pad[c]);
                    }
                    if !inside {
                        continue;
                    }
                    let cy = y - place.oy;
                    let [r, g, b] = &mut planes;
                    let span = y * w + place.ox..y * w + place.ox + place.cw;
                    let (r, g, b) = (&mut r[span.clone()], &mut g[span.clone()], &mut b[span]);
                    if !resize {
                        let src = &frame.rgb[cy * row_bytes..(cy + 1) * row_bytes];
                        for (i, px) in src.chunks_exact(3).enumerate() {
                            r[i] = norm.apply(0, f32::from(px[0]));
                            g[i] = norm.apply(1, f32::from(px[1]));
                            b[i] = norm.apply(2, f32::from(px[2]));
                        }
                    } else {
                        let (y0, y1, fy) = self.ys[cy];
                        let top = &frame.rgb[y0 * row_bytes..(y0 + 1) * row_bytes];
                        let bot = &frame.rgb[y1 * row_bytes..(y1 + 1) * row_bytes];
                        for (i, &(x0, x1, fx)) in self.xs.iter().enumerate() {
                            let v = |c: usize| bilinear(top, bot, x0 * 3 + c, x1 * 3 + c, fx, fy);
                            r[i] = norm.apply(0, v(0));
                            g[i] = norm.apply(1, v(1));
                            b[i] = norm.apply(2, v(2));
                        }
                    }
                }
            }
            Layout::Nhwc => {
                for y in 0..h {
                    let row = &mut dst[y * w * 3..(y + 1) * w * 3];
                    let inside = y >= place.oy && y < place.oy + place.ch;
                    for (x, px) in row.chunks_exact_mut(3).enumerate() {
                        if !inside || x < place.ox || x >= place.ox + place.cw {
                            px.copy_from_slice(&pad);
                        }
                    }
                    if !inside {
                        continue;
                    }
                    let cy = y - place.oy;
                    let out = &mut row[place.ox * 3..(place.ox + place.cw) * 3];
                    if !resize {
                        let src = &frame.rgb[cy * row_bytes..(cy + 1) * row_bytes];
                        for (i, (o, &v)) in out.iter_mut().zip(src).enumerate() {
                            *o = norm.apply(i % 3, f32::from(v));
                        }
                    } else {
                        let (y0, y1, fy) = self.ys[cy];
                        let top = &frame.rgb[y0 * row_bytes..(y0 + 1) * row_bytes];
                        let bot = &frame.rgb[y1 * row_bytes..(y1 + 1) * row_bytes];
                        for (o, &(x0, x1, fx)) in out.chunks_exact_mut(3).zip(&self.xs) {
                            for (c, v) in o.iter_mut().enumerate() {
                                *v = norm.apply(c, bilinear(top, bot, x0 * 3 + c, x1 * 3 + c, fx, fy));
                            }
                        }
                    }
                }
            }
        }
    }
}

#[inline]
fn bilinear(top: &[u8], bot: &[u8], i0: usize, i1: usize, fx: f32, fy: f32) -> f32 {
    let t = f32::from(top[i0]) + (f32::from(top[i1]) - f32::from(top[i0])) * fx;
    let b = f32::from(bot[i0]) + (f32::from(bot[i1]) - f32::from(bot[i0])) * fx;
    t + (b - t) * fy
}

/// A model's float tensor input or output: its name and static dims (`-1` where dynamic).
#[derive(Debug, Clone)]
pub(crate) struct Port {
    pub name: String,
    pub dims: Vec<i64>,
    pub ty: Option<TensorElementType>,
}

impl Port {
    /// A dimension when the model fixes it.
    pub fn fixed(&self, i: usize) -> Option<usize> {
        self.dims
            .get(i)
            .and_then(|&d| usize::try_from(d).ok())
            .filter(|&d| d > 0)
    }

    /// The shape as a reader would write it: `[1, 3, H, W]` with `?` for dynamic dims.
    pub fn shape(&self) -> String {
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|&d| if d > 0 { d.to_string() } else { "?".into() })
            .collect();
        format!("[{}]", dims.join(", "))
    }
}

fn port(name: &str, dtype: &ValueType) -> Port {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => Port {
            name: name.to_owned(),
            dims: shape.to_vec(),
            ty: Some(*ty),
        },
        _ => Port {
            name: name.to_owned(),
            dims: Vec::new(),
            ty: None,
        },
    }
}

/// The session's inputs and outputs.
pub(crate) fn ports(session: &Session) -> (Vec<Port>, Vec<Port>) {
    let inputs = session.inputs().iter().map(|o| port(o.name(), o.dtype())).collect();
    let outputs = session.outputs().iter().map(|o| port(o.name(), o.dtype())).collect();
    (inputs, outputs)
}

/// Builds a session for `model` on the library `ort_library`. A missing model is
/// [`VisionError::ModelNotFound`]; a file ONNX Runtime cannot load is [`VisionError::Model`].
pub(crate) fn session(ort_library: &Path, model: &Path, intra_threads: usize) -> Result<Session> {
    if !model.is_file() {
        return Err(VisionError::ModelNotFound(model.to_path_buf()));
    }
    let env = super::runtime::environment(ort_library)?;
    let runtime_error = |e: ort::Error<ort::session::builder::SessionBuilder>| {
        VisionError::Runtime(format!("configuring a session for {}: {e}", model.display()))
    };
    let mut builder = Session::builder(env)
        .map_err(|e| VisionError::Runtime(format!("creating a session: {e}")))?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
        .map_err(runtime_error)?
        // Between two frames the caller decodes, masks and encodes (ffmpeg children included):
        // ONNX Runtime's workers spinning for more work would take those cores from it.
        .with_intra_op_spinning(false)
        .map_err(runtime_error)?;
    if intra_threads > 0 {
        builder = builder.with_intra_threads(intra_threads).map_err(runtime_error)?;
    }
    builder
        .commit_from_file(model)
        .map_err(|e| model_error(model, e.to_string()))
}

/// [`VisionError::Model`] for `path`.
pub(crate) fn model_error(path: &Path, reason: impl Into<String>) -> VisionError {
    VisionError::Model {
        path: PathBuf::from(path),
        reason: reason.into(),
    }
}

/// Greedy non-maximum suppression over `(corners, score)` exactly as CenterFace's reference
/// does: best score first, a box is dropped when its IoU with a kept one is `>= threshold`.
pub(crate) fn nms_corners(mut boxes: Vec<([f32; 4], f32)>, threshold: f32) -> Vec<([f32; 4], f32)> {
    boxes.sort_by(|a, b| b.1.total_cmp(&a.1));
    let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let mut kept: Vec<([f32; 4], f32)> = Vec::with_capacity(boxes.len());
    for (b, s) in boxes {
        let suppressed = kept.iter().any(|(k, _)| {
            let w = (k[2].min(b[2]) - k[0].max(b[0])).max(0.0);
            let h = (k[3].min(b[3]) - k[1].max(b[1])).max(0.0);
            let inter = w * h;
            let union = area(k) + area(&b) - inter;
            union > 0.0 && inter / union >= threshold
        });
        if !suppressed {
            kept.push((b, s));
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32) -> Frame {
        let rgb = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        Frame {
            width: w,
            height: h,
            timestamp: 0,
            rgb,
        }
    }

    #[test]
    fn identity_write_copies_and_pads() {
        let f = frame(5, 3);
        let place = Placement::scaled(&f, 1.0);
        let mut dst = vec![f32::NAN; 3 * 8 * 4];
        Resampler::default().write(&f, &mut dst, 8, 4, Layout::Nchw, &place, &Affine::IDENTITY, [0.0; 3]);
        assert!(dst.iter().all(|v| v.is_finite()));
        for y in 0..3 {
            for x in 0..5 {
                for c in 0..3 {
                    assert_eq!(dst[c * 32 + y * 8 + x], f32::from(f.rgb[(y * 5 + x) * 3 + c]));
                }
            }
        }
        assert_eq!(dst[5], 0.0);
        assert_eq!(dst[3 * 8], 0.0);
        let mut nhwc = vec![f32::NAN; 3 * 8 * 4];
        Resampler::default().write(&f, &mut nhwc, 8, 4, Layout::Nhwc, &place, &Affine::IDENTITY, [0.0; 3]);
        for y in 0..4 {
            for x in 0..8 {
                for c in 0..3 {
                    assert_eq!(nhwc[(y * 8 + x) * 3 + c], dst[c * 32 + y * 8 + x]);
                }
            }
        }
    }

    #[test]
    fn letterbox_maps_back() {
        let f = frame(200, 100);
        let place = Placement::letterbox(&f, 64, 64);
        assert_eq!((place.cw, place.ch, place.ox, place.oy), (64, 32, 0, 16));
        let b = place.to_frame([16.0, 24.0, 32.0, 40.0], 0.9, 200, 100).unwrap();
        assert!((b.x - 50.0).abs() < 1e-3 && (b.y - 25.0).abs() < 1e-3);
        assert!((b.w - 50.0).abs() < 1e-3 && (b.h - 50.0).abs() < 1e-3);
        let mut dst = vec![f32::NAN; 3 * 64 * 64];
        Resampler::default().write(&f, &mut dst, 64, 64, Layout::Nchw, &place, &Affine::IDENTITY, [7.0; 3]);
        assert!(dst.iter().all(|v| v.is_finite()));
        assert_eq!(dst[0], 7.0);
        assert_eq!(dst[64 * 63], 7.0);
    }

    #[test]
    fn nms_drops_overlaps_at_the_threshold() {
        let kept = nms_corners(
            vec![
                ([0.0, 0.0, 10.0, 10.0], 0.6),
                ([0.0, 0.0, 10.0, 10.0], 0.9),
                ([20.0, 0.0, 30.0, 10.0], 0.7),
            ],
            0.3,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].1, 0.9);
    }
}
