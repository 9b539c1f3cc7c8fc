//! CROW's CCTV vision.
//!
//! Everything between a camera and the store: frame sources ([`source`]: ffmpeg child processes
//! for files and RTSP/HTTP streams, MJPEG over HTTP, image folders, under a supervisor that
//! restarts a dead ffmpeg and reports a stalled stream), motion gating ([`motion`]), face
//! detection ([`detect`], CenterFace through ONNX Runtime, feature `onnx`), a tracker that
//! carries faces across frames the detector misses ([`track`]), masking (blur, pixelate, solid:
//! [`crow_core::video::MaskedFrame`]), people analytics over zones and lines with heatmaps
//! ([`zones`]), archive encoding ([`encode`]), and whole-file masking of a picture or a video
//! ([`blur`], what `crow blur` runs). [`pipeline::VisionPipeline`] puts them
//! together behind crow-core's [`FrameProcessor`](crow_core::ports::FrameProcessor) port, so the
//! CCTV channel in crow-ingest never sees a model or a raw frame it could store.
//!
//! ```
//! use crow_core::ports::{BoundingBox, Frame, FrameAnalysis, FrameProcessor};
//! use crow_core::testing::FixedFrameAnalyzer;
//! use crow_vision::pipeline::{PipelineConfig, VisionPipeline};
//!
//! let face = BoundingBox { x: 40.0, y: 30.0, w: 30.0, h: 36.0, score: 0.9 };
//! let analyzer = FixedFrameAnalyzer::new(FrameAnalysis { faces: vec![face], people: vec![] });
//! let mut pipeline = VisionPipeline::new(PipelineConfig::default(), analyzer).unwrap();
//! let frame = Frame { width: 160, height: 120, timestamp: 0, rgb: vec![128; 160 * 120 * 3] };
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let out = rt.block_on(pipeline.process(frame)).unwrap();
//! // The first frame always runs the detector; the face is masked in what comes out.
//! assert!(out.analyzed);
//! assert_eq!(out.frame.regions().len(), 1);
//! ```

#![warn(missing_docs)]

#[cfg(feature = "sources")]
pub mod blur;
#[cfg(feature = "onnx")]
pub mod detect;
pub mod encode;
pub mod error;
pub mod geometry;
pub mod image_io;
pub mod motion;
pub mod pipeline;
#[cfg(feature = "sources")]
pub mod source;
pub mod track;
pub mod zones;

pub use error::{Result, VisionError};
