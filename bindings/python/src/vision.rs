//! `crow.blur_faces` and `crow.MotionDetector`: crow-vision's CenterFace detector, crow-core's
//! masking ([`MaskedFrame`]) and motion detection, on numpy images.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use crow_core::ports::{BoundingBox, Frame};
use crow_core::video::{MaskMode, MaskSpec, MaskedFrame};
use crow_vision::detect::{CENTERFACE_MODEL, CenterFace, CenterFaceConfig, runtime};
use crow_vision::motion::{MotionConfig, MotionDetector as Motion};
use numpy::ndarray::{Array3, Ix3};
use numpy::{IntoPyArray, PyArray3, PyUntypedArrayMethods as _};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::check_array;
use crate::error::{PyResultExt as _, invalid};

/// Loaded face detectors by (models directory, threshold bits).
type DetectorCache = Mutex<HashMap<(PathBuf, u32), Arc<CenterFace>>>;
static DETECTORS: LazyLock<DetectorCache> = LazyLock::new(Default::default);

/// CenterFace from a models directory, loaded once per threshold.
fn detector(models: PathBuf, threshold: f32) -> Result<Arc<CenterFace>, crow_vision::VisionError> {
    let key = (models, threshold.to_bits());
    if let Some(d) = DETECTORS.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(d.clone());
    }
    let config = CenterFaceConfig {
        threshold,
        ..CenterFaceConfig::default()
    };
    let d = Arc::new(CenterFace::load(
        &runtime::library_path(&key.0),
        &key.0.join(CENTERFACE_MODEL),
        config,
    )?);
    DETECTORS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, d.clone());
    Ok(d)
}

/// A `uint8` `(H, W, 3)` RGB image copied into a [`Frame`].
fn frame_from(image: &Bound<'_, PyAny>, what: &str) -> PyResult<Frame> {
    let array = check_array::<u8, Ix3>(
        image,
        what,
        "of dtype uint8 and shape (height, width, 3) (RGB)",
        &[None, None, Some(3)],
    )?;
    let shape = array.shape();
    let (h, w) = (shape[0], shape[1]);
    if h == 0 || w == 0 {
        return Err(invalid(format!("{what}: the image is empty ({h}x{w})")));
    }
    Ok(Frame {
        width: u32::try_from(w).map_err(|_| invalid(format!("{what}: too wide")))?,
        height: u32::try_from(h).map_err(|_| invalid(format!("{what}: too tall")))?,
        timestamp: 0,
        rgb: array.as_slice()?.to_vec(),
    })
}

fn tuple(b: &BoundingBox) -> (f32, f32, f32, f32, f32) {
    (b.x, b.y, b.w, b.h, b.score)
}

/// Finds every face in an RGB image (``numpy.ndarray`` of shape ``(height, width, 3)``, dtype
/// uint8) with CenterFace and masks it, as ``crow blur`` does: each box grown by ``padding``
/// around its centre, then blurred, pixelated or filled (``mode``: ``"blur"``, ``"pixelate"``,
/// ``"solid"``).
///
/// Returns the masked copy (the input is not changed) and the faces found, as
/// ``(x, y, width, height, score)`` in pixels, best first. Faces scoring below ``threshold`` are
/// left alone. Needs ``centerface/centerface.onnx`` and ONNX Runtime under ``models`` (else
/// ``CROW_MODELS``, else ``./models``).
#[pyfunction]
#[pyo3(signature = (image, mode="blur", *, threshold=0.5, padding=1.3, models=None))]
#[allow(clippy::type_complexity)]
fn blur_faces<'py>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    mode: &str,
    threshold: f32,
    padding: f32,
    models: Option<PathBuf>,
) -> PyResult<(Bound<'py, PyArray3<u8>>, Vec<(f32, f32, f32, f32, f32)>)> {
    let mode: MaskMode = mode.parse().py()?;
    if !(padding.is_finite() && padding >= 1.0) {
        return Err(invalid(format!("padding: {padding} must be at least 1")));
    }
    let frame = frame_from(image, "image")?;
    let (h, w) = (frame.height as usize, frame.width as usize);
    let dir = crate::models_dir(models);
    let (faces, rgb) = py
        .detach(|| -> Result<_, crow_vision::VisionError> {
            let faces = detector(dir, threshold)?.detect(&frame)?;
            let masked = MaskedFrame::mask(frame, &faces, &MaskSpec { mode, padding });
            Ok((faces, masked.frame().rgb.clone()))
        })
        .py()?;
    let out = Array3::from_shape_vec((h, w, 3), rgb).map_err(|e| crate::error::CrowError::new_err(e.to_string()))?;
    Ok((out.into_pyarray(py), faces.iter().map(tuple).collect()))
}

/// Motion detection on a stream of frames (the CCTV channel's gate in front of the face
/// detector): frames are compared with a running-average background at about ``height`` rows;
/// changed areas of at least ``min_area`` cells become boxes; a change over more than
/// ``max_fraction`` of the frame is taken for a lighting change, not motion.
#[derive(Debug)]
#[pyclass(name = "MotionDetector", module = "crow")]
pub struct MotionDetector {
    inner: Motion,
}

#[pymethods]
impl MotionDetector {
    #[new]
    #[pyo3(signature = (*, height=100, threshold=25, alpha=0.05, dilate=2, min_area=12, max_fraction=0.6))]
    fn new(height: u32, threshold: u8, alpha: f32, dilate: u32, min_area: u32, max_fraction: f32) -> PyResult<Self> {
        let config = MotionConfig {
            height,
            threshold,
            alpha,
            dilate,
            min_area,
            max_fraction,
            masks: Vec::new(),
        };
        Ok(MotionDetector {
            inner: Motion::new(config).py()?,
        })
    }

    /// Feeds one RGB frame (uint8, ``(height, width, 3)``) and returns what moved since the
    /// background: ``{"boxes": [(x, y, width, height, fill)], "fraction": float,
    /// "lighting_change": bool}``, boxes largest first in pixels. The first frame (and the first
    /// after a change of size) only sets the background.
    fn detect<'py>(&mut self, py: Python<'py>, frame: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let frame = frame_from(frame, "frame")?;
        let inner = &mut self.inner;
        let motion = py.detach(move || inner.detect(&frame));
        let d = PyDict::new(py);
        d.set_item("boxes", motion.boxes.iter().map(tuple).collect::<Vec<_>>())?;
        d.set_item("fraction", motion.fraction)?;
        d.set_item("lighting_change", motion.lighting_change)?;
        Ok(d)
    }

    /// Forgets the background: the next frame starts afresh.
    fn reset(&mut self) {
        self.inner.reset();
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "MotionDetector(height={}, threshold={}, alpha={}, dilate={}, min_area={}, max_fraction={})",
            c.height, c.threshold, c.alpha, c.dilate, c.min_area, c.max_fraction
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(blur_faces, m)?)?;
    m.add_class::<MotionDetector>()?;
    Ok(())
}
