//! A generic ONNX object detector (YOLO- or SSD-style outputs), used to find people.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crow_core::ports::{BoundingBox, Frame, FrameAnalysis, FrameAnalyzer};
use ort::session::{Session, SessionOutputs};
use ort::value::{DynValue, TensorElementType, TensorRef};
use serde::{Deserialize, Serialize};

use super::prep::{self, Affine, Layout, Placement, Port, Resampler};
use crate::error::{Result, VisionError};
use crate::geometry;

/// What the model's outputs look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputLayout {
    /// One output `[1, 4 + C, N]` (YOLOv8 and later): per candidate `cx, cy, w, h` in input
    /// pixels, then `C` class scores. A candidate is its best class.
    Yolo,
    /// One output `[1, N, 5 + C]` (YOLOv5, v7): per candidate `cx, cy, w, h` in input pixels,
    /// an objectness, then `C` class scores; the score is objectness times the best class score.
    YoloObjectness,
    /// SSD-style: boxes `[1, N, 4]` normalized to 0-1 of the input, and either scores
    /// `[1, N, C]` (the best class wins; include the background class in the ids as the model
    /// does) or classes `[1, N]` and scores `[1, N]` (optionally with a count output `[1]`, as
    /// TensorFlow's detection API exports, whose first value limits N).
    Ssd {
        /// The order of the four box values (default `yxyx`, TensorFlow's).
        #[serde(default)]
        box_order: BoxOrder,
        /// The boxes output; by default the output whose name contains `box`, else the one of
        /// shape `[1, N, 4]`.
        #[serde(default)]
        boxes: Option<String>,
        /// The scores output; by default the output whose name contains `score`, else the other
        /// `[1, N, C]` output.
        #[serde(default)]
        scores: Option<String>,
        /// The classes output, when classes and scores come apart; by default the output whose
        /// name contains `class`, if any.
        #[serde(default)]
        classes: Option<String>,
        /// The count output; by default the output whose name contains `num`, if any.
        #[serde(default)]
        count: Option<String>,
    },
}

/// The order of an SSD model's box values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxOrder {
    /// `y0, x0, y1, x1` (TensorFlow).
    #[default]
    Yxyx,
    /// `x0, y0, x1, y1`.
    Xyxy,
}

/// How a frame is fitted to the model's input size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Scaled to fit with its aspect kept, centred, the rest filled with
    /// [`pad_value`](ObjectDetectorConfig::pad_value) (YOLO's letterbox).
    #[default]
    Letterbox,
    /// Stretched over the whole input (most SSD exports).
    Stretch,
}

/// How the input tensor is laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputLayout {
    /// `[1, 3, H, W]`.
    #[default]
    Nchw,
    /// `[1, H, W, 3]`.
    Nhwc,
}

/// How an [`ObjectDetector`] reads its model. The defaults suit a YOLOv8 COCO export: 640x640
/// letterboxed input scaled to 0-1, class 0 is a person.
///
/// ```
/// let config: crow_vision::detect::ObjectDetectorConfig = serde_json::from_str(
///     r#"{"layout": {"kind": "ssd", "box_order": "yxyx"}, "input_size": [300, 300],
///         "resize": "stretch", "person_classes": [1], "pixel_scale": 0.0078431373,
///         "mean": [1.0, 1.0, 1.0]}"#,
/// ).unwrap();
/// assert_eq!(config.person_classes, vec![1]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectDetectorConfig {
    /// The output layout (default [`OutputLayout::Yolo`]).
    pub layout: OutputLayout,
    /// Input `[width, height]`; `None` (default) takes it from the model, which must then fix it.
    pub input_size: Option<[u32; 2]>,
    /// The input tensor's layout (default NCHW).
    pub input_layout: InputLayout,
    /// How frames are fitted to the input (default letterbox).
    pub resize: Resize,
    /// The pixel value (all three channels, 0-255) of letterbox padding (default 114, YOLO's).
    pub pad_value: u8,
    /// Input values are `(pixel * pixel_scale - mean[c]) / std[c]` (defaults: 1/255, 0, 1).
    pub pixel_scale: f32,
    /// Per-channel mean (R, G, B), subtracted after scaling.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (R, G, B), divided by after subtracting the mean.
    pub std: [f32; 3],
    /// The class ids that mean "person" (default `[0]`, COCO's in YOLO exports).
    pub person_classes: Vec<u32>,
    /// Detections scoring below this are dropped (default 0.5).
    pub score_threshold: f32,
    /// Non-maximum suppression IoU (default 0.45): of two overlapping people the weaker goes.
    pub nms_iou: f32,
    /// At most this many people per frame, best first (default 300).
    pub max_detections: usize,
    /// ONNX Runtime's intra-op threads (0, the default: ONNX Runtime's choice).
    pub intra_threads: usize,
}

impl Default for ObjectDetectorConfig {
    fn default() -> Self {
        ObjectDetectorConfig {
            layout: OutputLayout::Yolo,
            input_size: None,
            input_layout: InputLayout::Nchw,
            resize: Resize::Letterbox,
            pad_value: 114,
            pixel_scale: 1.0 / 255.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            person_classes: vec![0],
            score_threshold: 0.5,
            nms_iou: 0.45,
            max_detections: 300,
            intra_threads: 0,
        }
    }
}

impl ObjectDetectorConfig {
    fn validate(&self) -> Result<()> {
        if self.person_classes.is_empty() {
            return Err(VisionError::config("person_classes", "name at least one class id"));
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return Err(VisionError::config("score_threshold", "must be between 0 and 1"));
        }
        if !(self.nms_iou > 0.0 && self.nms_iou <= 1.0) {
            return Err(VisionError::config("nms_iou", "must be in (0, 1]"));
        }
        if self.std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
            return Err(VisionError::config("std", "must be finite and non-zero"));
        }
        if !self.pixel_scale.is_finite() || self.pixel_scale == 0.0 || self.mean.iter().any(|m| !m.is_finite()) {
            return Err(VisionError::config(
                "pixel_scale",
                "pixel_scale and mean must be finite, pixel_scale non-zero",
            ));
        }
        if self.input_size.is_some_and(|[w, h]| w == 0 || h == 0) {
            return Err(VisionError::config("input_size", "must not be zero"));
        }
        Ok(())
    }
}

/// The outputs an SSD model gives, by name.
#[derive(Debug, Clone)]
struct SsdOutputs {
    order: BoxOrder,
    boxes: String,
    scores: String,
    classes: Option<String>,
    count: Option<String>,
}

#[derive(Debug, Clone)]
enum Decoder {
    Yolo { output: String },
    YoloObjectness { output: String },
    Ssd(SsdOutputs),
}

#[derive(Debug)]
struct Runner {
    session: Session,
    input: Vec<f32>,
    resampler: Resampler,
}

/// A generic ONNX object detector that finds people: YOLO-style (`[1, 4+C, N]`, or
/// `[1, N, 5+C]` with objectness) or SSD-style outputs, configured by an
/// [`ObjectDetectorConfig`]. An [`FrameAnalyzer`] whose analysis holds `people`.
///
/// Frames are fitted to the model's fixed input size (letterboxed or stretched), normalized as
/// configured, run one at a time on one session; detections whose best class is one of
/// [`person_classes`](ObjectDetectorConfig::person_classes) and that score at least the
/// threshold are kept, suppressed class-agnostically, and mapped back to the frame's pixels.
/// Inference is synchronous, [`analyze`](FrameAnalyzer::analyze) included.
#[derive(Debug)]
pub struct ObjectDetector {
    runner: Mutex<Runner>,
    config: ObjectDetectorConfig,
    path: PathBuf,
    input_name: String,
    width: usize,
    height: usize,
    decoder: Decoder,
    norm: Affine,
}

impl ObjectDetector {
    /// Loads the model at `model` on the ONNX Runtime library `ort_library`.
    ///
    /// Errors: [`VisionError::ModelNotFound`] for a missing library or model file,
    /// [`VisionError::Config`] for a bad config (or an input size neither the config nor the
    /// model gives), [`VisionError::Model`] for a model whose input or outputs do not fit the
    /// configured layout, [`VisionError::Runtime`] when ONNX Runtime fails.
    pub fn load(ort_library: &Path, model: &Path, config: ObjectDetectorConfig) -> Result<Self> {
        config.validate()?;
        let session = prep::session(ort_library, model, config.intra_threads)?;
        let (inputs, outputs) = prep::ports(&session);
        let (input_name, width, height) = check_input(model, &inputs, &config)?;
        let decoder = check_outputs(model, &outputs, &config)?;
        let norm = Affine::normalize(config.pixel_scale, config.mean, config.std);
        Ok(ObjectDetector {
            runner: Mutex::new(Runner {
                session,
                input: Vec::new(),
                resampler: Resampler::default(),
            }),
            path: model.to_path_buf(),
            input_name,
            width,
            height,
            decoder,
            norm,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ObjectDetectorConfig {
        &self.config
    }

    /// The model's input `(width, height)`.
    pub fn input_size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The people in `frame`, best first, in the frame's pixels. A frame whose buffer does not
    /// match its size is [`VisionError::Image`]; outputs that do not fit the layout are
    /// [`VisionError::Model`].
    pub fn detect(&self, frame: &Frame) -> Result<Vec<BoundingBox>> {
        prep::check_frame(frame)?;
        let (w, h) = (self.width, self.height);
        let place = match self.config.resize {
            Resize::Letterbox => Placement::letterbox(frame, w, h),
            Resize::Stretch => Placement::stretch(frame, w, h),
        };
        let (layout, shape) = match self.config.input_layout {
            InputLayout::Nchw => (Layout::Nchw, [1, 3, h, w]),
            InputLayout::Nhwc => (Layout::Nhwc, [1, h, w, 3]),
        };
        let pad = [0, 1, 2].map(|c| self.norm.scale[c] * f32::from(self.config.pad_value) + self.norm.shift[c]);

        let mut guard = self.runner.lock().unwrap_or_else(|p| p.into_inner());
        let Runner {
            session,
            input,
            resampler,
        } = &mut *guard;
        input.resize(3 * w * h, 0.0);
        resampler.write(frame, input, w, h, layout, &place, &self.norm, pad);
        let tensor = TensorRef::from_array_view((shape, &input[..]))
            .map_err(|e| VisionError::Runtime(format!("building the input tensor: {e}")))?;
        let outputs = session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| VisionError::Runtime(format!("running {}: {e}", self.path.display())))?;

        let candidates = match &self.decoder {
            Decoder::Yolo { output } => self.decode_yolo(&outputs, output, false)?,
            Decoder::YoloObjectness { output } => self.decode_yolo(&outputs, output, true)?,
            Decoder::Ssd(ssd) => self.decode_ssd(&outputs, ssd)?,
        };
        let people: Vec<BoundingBox> = candidates
            .into_iter()
            .filter_map(|(c, s)| place.to_frame(c, s, frame.width, frame.height))
            .collect();
        let mut kept = geometry::nms(people, self.config.nms_iou);
        kept.truncate(self.config.max_detections);
        Ok(kept)
    }

    fn is_person(&self, class: usize) -> bool {
        self.config.person_classes.iter().any(|&p| p as usize == class)
    }

    fn floats<'a>(&self, outputs: &'a SessionOutputs<'_>, name: &str) -> Result<(Vec<usize>, &'a [f32])> {
        let value = outputs
            .get(name)
            .ok_or_else(|| VisionError::Runtime(format!("the model returned no `{name}`")))?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| prep::model_error(&self.path, format!("output `{name}` is not a float tensor: {e}")))?;
        Ok((shape.iter().map(|&d| d.max(0) as usize).collect(), data))
    }

    fn shape_error(&self, name: &str, dims: &[usize], want: &str) -> VisionError {
        prep::model_error(
            &self.path,
            format!("output `{name}` has shape {dims:?}, the configured layout needs {want}"),
        )
    }

    /// YOLO candidates as corners in input pixels with their scores.
    fn decode_yolo(&self, outputs: &SessionOutputs<'_>, name: &str, objectness: bool) -> Result<Vec<([f32; 4], f32)>> {
        let (dims, data) = self.floats(outputs, name)?;
        let head = if objectness { 5 } else { 4 };
        let want = if objectness { "[1, N, 5 + C]" } else { "[1, 4 + C, N]" };
        let (n, fields) = match dims[..] {
            [1, a, b] if objectness && b > head => (a, b),
            [1, a, b] if !objectness && a > head => (b, a),
            _ => return Err(self.shape_error(name, &dims, want)),
        };
        // Element (candidate i, field f).
        let at = |i: usize, f: usize| {
            if objectness {
                data[i * fields + f]
            } else {
                data[f * n + i]
            }
        };
        let threshold = self.config.score_threshold;
        let mut found = Vec::new();
        for i in 0..n {
            let obj = if objectness { at(i, 4) } else { 1.0 };
            if objectness && obj < threshold {
                continue;
            }
            let (mut best, mut best_score) = (0, f32::NEG_INFINITY);
            for c in 0..fields - head {
                let s = at(i, head + c);
                if s > best_score {
                    (best, best_score) = (c, s);
                }
            }
            let score = obj * best_score;
            if score < threshold || !self.is_person(best) {
                continue;
            }
            let (cx, cy, w, h) = (at(i, 0), at(i, 1), at(i, 2), at(i, 3));
            found.push(([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0], score));
        }
        Ok(found)
    }

    /// SSD candidates as corners in input pixels with their scores.
    fn decode_ssd(&self, outputs: &SessionOutputs<'_>, ssd: &SsdOutputs) -> Result<Vec<([f32; 4], f32)>> {
        let (bdims, boxes) = self.floats(outputs, &ssd.boxes)?;
        let n = match bdims[..] {
            [1, n, 4] => n,
            _ => return Err(self.shape_error(&ssd.boxes, &bdims, "[1, N, 4]")),
        };
        let (sdims, scores) = self.floats(outputs, &ssd.scores)?;
        let mut limit = n;
        if let Some(name) = &ssd.count {
            let value = outputs
                .get(name)
                .ok_or_else(|| VisionError::Runtime(format!("the model returned no `{name}`")))?;
            if let Some(&c) = numbers(value).first() {
                limit = limit.min(c.max(0.0) as usize);
            }
        }
        // (candidate, class, score)
        let mut best: Vec<(usize, usize, f32)> = Vec::with_capacity(n);
        match (&ssd.classes, &sdims[..]) {
            (None, &[1, m, c]) if m == n && c > 0 => {
                for (i, row) in scores.chunks_exact(c).take(limit).enumerate() {
                    let (k, s) = row
                        .iter()
                        .enumerate()
                        .fold((0, f32::NEG_INFINITY), |b, (k, &s)| if s > b.1 { (k, s) } else { b });
                    best.push((i, k, s));
                }
            }
            (Some(cname), &[1, m] | &[1, m, 1]) if m == n => {
                let value = outputs
                    .get(cname)
                    .ok_or_else(|| VisionError::Runtime(format!("the model returned no `{cname}`")))?;
                let classes = numbers(value);
                if classes.len() != n {
                    return Err(prep::model_error(
                        &self.path,
                        format!(
                            "output `{cname}` has {} values, expected {n} (one class per box)",
                            classes.len()
                        ),
                    ));
                }
                for i in 0..limit {
                    best.push((i, classes[i].max(0.0).round() as usize, scores[i]));
                }
            }
            _ => {
                let want = if ssd.classes.is_some() { "[1, N]" } else { "[1, N, C]" };
                return Err(self.shape_error(&ssd.scores, &sdims, want));
            }
        }
        let (w, h) = (self.width as f32, self.height as f32);
        let mut found = Vec::new();
        for (i, class, score) in best {
            if score < self.config.score_threshold || !self.is_person(class) {
                continue;
            }
            let b = &boxes[i * 4..i * 4 + 4];
            let [x0, y0, x1, y1] = match ssd.order {
                BoxOrder::Yxyx => [b[1], b[0], b[3], b[2]],
                BoxOrder::Xyxy => [b[0], b[1], b[2], b[3]],
            };
            found.push(([x0 * w, y0 * h, x1 * w, y1 * h], score));
        }
        Ok(found)
    }
}

/// A tensor's values as floats, whatever its numeric type (classes and counts come as floats or
/// integers); empty for other values.
fn numbers(value: &DynValue) -> Vec<f32> {
    if let Ok((_, d)) = value.try_extract_tensor::<f32>() {
        return d.to_vec();
    }
    if let Ok((_, d)) = value.try_extract_tensor::<i64>() {
        return d.iter().map(|&v| v as f32).collect();
    }
    if let Ok((_, d)) = value.try_extract_tensor::<i32>() {
        return d.iter().map(|&v| v as f32).collect();
    }
    Vec::new()
}

fn check_input(path: &Path, inputs: &[Port], config: &ObjectDetectorConfig) -> Result<(String, usize, usize)> {
    let [input] = inputs else {
        return Err(prep::model_error(
            path,
            format!("the detector takes one image input, the model has {}", inputs.len()),
        ));
    };
    let (c_dim, h_dim, w_dim, want) = match config.input_layout {
        InputLayout::Nchw => (1, 2, 3, "[1, 3, H, W]"),
        InputLayout::Nhwc => (3, 1, 2, "[1, H, W, 3]"),
    };
    if input.dims.len() != 4 || input.fixed(c_dim).is_some_and(|c| c != 3) || input.fixed(0).is_some_and(|b| b != 1) {
        return Err(prep::model_error(
            path,
            format!("input `{}` has shape {}, expected {want}", input.name, input.shape()),
        ));
    }
    if input.ty != Some(TensorElementType::Float32) {
        return Err(prep::model_error(
            path,
            format!(
                "input `{}` is {:?}, only float32 inputs are supported",
                input.name, input.ty
            ),
        ));
    }
    let model_size = input.fixed(w_dim).zip(input.fixed(h_dim));
    let (w, h) = match (config.input_size, model_size) {
        (Some([w, h]), Some((mw, mh))) if (w as usize, h as usize) != (mw, mh) => {
            return Err(VisionError::config(
                "input_size",
                format!("{w}x{h} but the model's input is fixed at {mw}x{mh}"),
            ));
        }
        (Some([w, h]), _) => (w as usize, h as usize),
        (None, Some(size)) => size,
        (None, None) => {
            return Err(VisionError::config(
                "input_size",
                format!("the model's input {} has no fixed size: set input_size", input.shape()),
            ));
        }
    };
    Ok((input.name.clone(), w, h))
}

fn check_outputs(path: &Path, outputs: &[Port], config: &ObjectDetectorConfig) -> Result<Decoder> {
    let listing = || {
        outputs
            .iter()
            .map(|p| format!("`{}` {}", p.name, p.shape()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let bad = |want: &str| prep::model_error(path, format!("outputs {} do not fit the layout: {want}", listing()));
    let classes_fit = |c: Option<usize>| match c {
        Some(c) => config.person_classes.iter().all(|&p| (p as usize) < c),
        None => true,
    };
    match &config.layout {
        OutputLayout::Yolo | OutputLayout::YoloObjectness => {
            let objectness = config.layout == OutputLayout::YoloObjectness;
            let want = if objectness {
                "YOLO with objectness gives one output [1, N, 5 + C]"
            } else {
                "YOLO gives one output [1, 4 + C, N]"
            };
            let [out] = outputs else {
                return Err(bad(want));
            };
            let (fields, head) = if objectness {
                (out.fixed(2), 5)
            } else {
                (out.fixed(1), 4)
            };
            if out.dims.len() != 3 || out.ty != Some(TensorElementType::Float32) || fields.is_some_and(|f| f <= head) {
                return Err(bad(want));
            }
            if !classes_fit(fields.map(|f| f - head)) {
                return Err(bad(&format!(
                    "{want}, with C above the person classes {:?}",
                    config.person_classes
                )));
            }
            let output = out.name.clone();
            Ok(if objectness {
                Decoder::YoloObjectness { output }
            } else {
                Decoder::Yolo { output }
            })
        }
        OutputLayout::Ssd {
            box_order,
            boxes,
            scores,
            classes,
            count,
        } => {
            let want = "SSD gives boxes [1, N, 4] and scores [1, N, C] (or classes [1, N] and scores [1, N])";
            let named = |given: &Option<String>, part: &str| -> Result<Option<String>> {
                match given {
                    Some(n) if outputs.iter().any(|p| &p.name == n) => Ok(Some(n.clone())),
                    Some(n) => Err(bad(&format!("{want}; there is no output `{n}`"))),
                    None => Ok(outputs
                        .iter()
                        .find(|p| p.name.to_ascii_lowercase().contains(part))
                        .map(|p| p.name.clone())),
                }
            };
            let boxes = match named(boxes, "box")? {
                Some(b) => b,
                None => outputs
                    .iter()
                    .find(|p| p.dims.len() == 3 && p.fixed(2) == Some(4))
                    .map(|p| p.name.clone())
                    .ok_or_else(|| bad(want))?,
            };
            let classes = named(classes, "class")?.filter(|c| *c != boxes);
            let count = named(count, "num")?.filter(|c| *c != boxes && Some(c) != classes.as_ref());
            let scores = match named(scores, "score")? {
                Some(s) => s,
                None => outputs
                    .iter()
                    .find(|p| p.name != boxes && Some(&p.name) != classes.as_ref() && Some(&p.name) != count.as_ref())
                    .map(|p| p.name.clone())
                    .ok_or_else(|| bad(want))?,
            };
            let port = |n: &str| outputs.iter().find(|p| p.name == n).expect("named from the outputs");
            let (b, s) = (port(&boxes), port(&scores));
            let scores_ok = match classes {
                Some(_) => matches!(s.dims.len(), 2 | 3),
                None => s.dims.len() == 3 && classes_fit(s.fixed(2)),
            };
            if boxes == scores || b.dims.len() != 3 || b.fixed(2).is_some_and(|d| d != 4) || !scores_ok {
                return Err(bad(want));
            }
            Ok(Decoder::Ssd(SsdOutputs {
                order: *box_order,
                boxes,
                scores,
                classes,
                count,
            }))
        }
    }
}

#[async_trait::async_trait]
impl FrameAnalyzer for ObjectDetector {
    /// The people in `frame` ([`ObjectDetector::detect`]); `faces` is empty.
    async fn analyze(&self, frame: &Frame) -> crow_core::Result<FrameAnalysis> {
        Ok(FrameAnalysis {
            faces: Vec::new(),
            people: self.detect(frame)?,
        })
    }
}
