//! Cameras: the CCTV channel wired to crow-vision (sources, CenterFace, the pipeline, the
//! archive encoder) and to the server's store. `crow video` runs one camera through
//! [`run_camera`]; `crow serve` runs the `[cctv]` table's cameras through [`spawn_cameras`],
//! each restarted with backoff when it fails.
//!
//! A `[cctv]` table (TOML):
//!
//! ```toml
//! [cctv]
//! org = "org_..."
//! [cctv.face]                  # optional: the CenterFace model and thresholds
//! threshold = 0.5
//! [[cctv.cameras]]
//! id = "entrance"
//! zones = "zones.json"          # optional: lines and zones (normalized coordinates)
//! source = { uri = "rtsp://user:pass@10.0.0.5/stream1", fps = 5 }
//! archive = { format = "webp", quality = 75, retention = { max_bytes = 5_000_000_000, max_age_secs = 2_592_000 } }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crow_core::ports::FrameSource;
use crow_core::video::{ImageFormat, ProcessedFrame, Retention};
use crow_ingest::cctv::{ArchiveConfig, CameraConfig, CameraPorts, CameraReport, run_camera_with};
use crow_vision::detect::{CenterFace, CenterFaceConfig, Detectors, ObjectDetector, ObjectDetectorConfig, runtime};
use crow_vision::encode::ArchiveEncoder;
use crow_vision::pipeline::{PipelineConfig, VisionPipeline};
use crow_vision::source::SourceConfig;
use crow_vision::zones::ZonesConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{Backends, ServerError};

/// The face detector's settings (the `[cctv.face]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaceSpec {
    /// The CenterFace model [default: MODELS/centerface/centerface.onnx].
    pub model: Option<PathBuf>,
    /// Faces scoring above this are masked.
    pub threshold: f32,
    /// Frames are scaled down to this longer side before detection (faster, misses tiny faces).
    pub max_side: Option<u32>,
    /// ONNX Runtime threads per detector (0: one per core).
    pub intra_threads: usize,
}

fn default_threshold() -> f32 {
    0.5
}

impl Default for FaceSpec {
    fn default() -> Self {
        FaceSpec {
            model: None,
            threshold: default_threshold(),
            max_side: None,
            intra_threads: 0,
        }
    }
}

/// A person detector (the `[cctv.people]` table): any YOLO- or SSD-style ONNX model. Without
/// one, people are counted from motion blobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleSpec {
    /// The ONNX model.
    pub model: PathBuf,
    /// Its input and output layout, person class ids and thresholds (defaults: a YOLOv8 COCO
    /// export).
    #[serde(default)]
    pub detector: ObjectDetectorConfig,
}

/// A camera's archive settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveSpec {
    /// Archive masked keyframes at all.
    pub enabled: bool,
    /// `jpeg` or `webp`.
    pub format: ImageFormat,
    /// Quality 1–100.
    pub quality: u8,
    /// Keyframes wider than this are scaled down first.
    pub max_width: Option<u32>,
    /// Byte and age budget (per org; oldest first).
    pub retention: Retention,
}

impl Default for ArchiveSpec {
    fn default() -> Self {
        ArchiveSpec {
            enabled: true,
            format: ImageFormat::Jpeg,
            quality: 80,
            max_width: None,
            retention: Retention::default(),
        }
    }
}

/// One camera (a `[[cctv.cameras]]` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSpec {
    /// Camera id (1–64 of A-Z a-z 0-9 _ - .).
    pub id: String,
    /// Where frames come from.
    pub source: SourceConfig,
    /// A zones file (JSON); replaces `pipeline.zones`.
    #[serde(default)]
    pub zones: Option<PathBuf>,
    /// Motion, tracking, masking and analytics settings.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Keyframe archive.
    #[serde(default)]
    pub archive: ArchiveSpec,
    /// A heatmap every this many seconds (0: only when the source ends).
    #[serde(default = "default_heatmap_secs")]
    pub heatmap_every_secs: u64,
    /// Give up after this many stalls in a row (default: a live camera waits for ever).
    #[serde(default)]
    pub max_stalls: Option<u32>,
}

fn default_heatmap_secs() -> u64 {
    3_600
}

impl CameraSpec {
    /// A camera reading `uri` with default settings.
    pub fn new(id: &str, uri: &str) -> Self {
        CameraSpec {
            id: id.to_owned(),
            source: SourceConfig::new(uri),
            zones: None,
            pipeline: PipelineConfig::default(),
            archive: ArchiveSpec::default(),
            heatmap_every_secs: default_heatmap_secs(),
            max_stalls: None,
        }
    }

    /// The channel's camera settings.
    pub fn channel_config(&self) -> CameraConfig {
        let mut c = CameraConfig::new(&self.id);
        c.archive = ArchiveConfig {
            enabled: self.archive.enabled,
            retention: self.archive.retention,
        };
        c.heatmap_every_secs = self.heatmap_every_secs;
        c.max_stalls = self.max_stalls;
        c
    }

    /// Checks everything that can be checked without opening the source; errors name the
    /// camera and the field.
    pub fn validate(&self) -> Result<(), ServerError> {
        let at = |e: &dyn std::fmt::Display| ServerError::Cctv(format!("camera {:?}: {e}", self.id));
        self.channel_config().validate().map_err(|e| at(&e))?;
        self.source.validate().map_err(|e| at(&e))?;
        self.pipeline.validate().map_err(|e| at(&e))?;
        if let Some(z) = &self.zones {
            ZonesConfig::load(z).map_err(|e| at(&e))?;
        }
        ArchiveEncoder::new(self.archive.format, self.archive.quality).map_err(|e| at(&e))?;
        if self.archive.format == ImageFormat::Png {
            return Err(at(&"archive.format: keyframes are jpeg or webp"));
        }
        Ok(())
    }
}

/// The `[cctv]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CctvConfig {
    /// The org the cameras belong to.
    pub org: String,
    /// Face detector settings.
    #[serde(default)]
    pub face: FaceSpec,
    /// A person detector, if any.
    #[serde(default)]
    pub people: Option<PeopleSpec>,
    /// The cameras.
    pub cameras: Vec<CameraSpec>,
}

impl CctvConfig {
    /// Checks every camera; camera ids are unique.
    pub fn validate(&self) -> Result<(), ServerError> {
        if self.cameras.is_empty() {
            return Err(ServerError::Cctv("[cctv] has no cameras".into()));
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.cameras {
            if !ids.insert(c.id.as_str()) {
                return Err(ServerError::Cctv(format!("camera id {:?} is used twice", c.id)));
            }
            c.validate()?;
        }
        Ok(())
    }
}

/// Loads CenterFace from `models` (or the spec's own model path).
pub fn load_face_detector(face: &FaceSpec, models: &Path) -> Result<CenterFace, ServerError> {
    let model = face
        .model
        .clone()
        .unwrap_or_else(|| models.join(crow_vision::detect::CENTERFACE_MODEL));
    let config = CenterFaceConfig {
        threshold: face.threshold,
        max_side: face.max_side,
        intra_threads: face.intra_threads,
        ..CenterFaceConfig::default()
    };
    CenterFace::load(&runtime::library_path(models), &model, config).map_err(|e| {
        ServerError::Cctv(format!(
            "loading the face detector {}: {e} (run `make models`)",
            model.display()
        ))
    })
}

/// Loads the face detector and, when `people` names one, the person detector.
pub fn load_detectors(face: &FaceSpec, people: Option<&PeopleSpec>, models: &Path) -> Result<Detectors, ServerError> {
    let faces = load_face_detector(face, models)?;
    let people = match people {
        Some(p) => Some(
            ObjectDetector::load(&runtime::library_path(models), &p.model, p.detector.clone())
                .map_err(|e| ServerError::Cctv(format!("loading the person detector {}: {e}", p.model.display())))?,
        ),
        None => None,
    };
    Ok(Detectors { faces, people })
}

/// Runs one camera until its source ends or `stop` turns true. The events go to the queue as
/// `process-video` jobs (the worker stores them); masked keyframes go to the object store.
#[allow(clippy::too_many_arguments)]
pub async fn run_camera(
    b: &Backends,
    org: &str,
    spec: &CameraSpec,
    face: &FaceSpec,
    people: Option<&PeopleSpec>,
    models: &Path,
    stop: &(dyn Fn() -> bool + Sync),
    on_frame: &mut (dyn FnMut(&ProcessedFrame) + Send),
) -> Result<CameraReport, ServerError> {
    spec.validate()?;
    let camera = spec.channel_config();
    let mut pipeline_cfg = spec.pipeline.clone();
    if let Some(z) = &spec.zones {
        pipeline_cfg.zones = ZonesConfig::load(z).map_err(|e| ServerError::Cctv(e.to_string()))?;
    }
    let detector = crate::blocking::BlockingDetectors(load_detectors(face, people, models)?);
    let mut pipeline = VisionPipeline::new(pipeline_cfg, detector).map_err(|e| ServerError::Cctv(e.to_string()))?;
    let encoder = ArchiveEncoder::new(spec.archive.format, spec.archive.quality)
        .map_err(|e| ServerError::Cctv(e.to_string()))?
        .with_max_width(spec.archive.max_width);
    // A file's (or folder's) frames are stamped from when the camera started, unless the spec
    // gives a start time; live streams use the clock anyway.
    let mut source_cfg = spec.source.clone();
    if source_cfg.start_ms == 0 {
        source_cfg.start_ms = crate::now_millis();
    }
    let mut source: Box<dyn FrameSource> =
        crow_vision::source::open(&source_cfg).map_err(|e| ServerError::Cctv(e.to_string()))?;
    let ports = CameraPorts {
        queue: b.store(),
        blobs: &b.blobs,
        video: b.store(),
    };
    let report = run_camera_with(
        org,
        &camera,
        source.as_mut(),
        &mut pipeline,
        &encoder,
        &ports,
        stop,
        on_frame,
    )
    .await
    .map_err(|e| ServerError::Cctv(format!("camera {:?}: {e}", spec.id)))?;
    b.wake.notify_one();
    Ok(report)
}

/// Runs every camera of the `[cctv]` table until shutdown. A camera that fails (its stream
/// refuses, the model is missing) is logged and started again with backoff (1 s doubling to
/// 5 min); a file source that ends is not restarted.
pub fn spawn_cameras(
    backends: Arc<Backends>,
    config: CctvConfig,
    models: PathBuf,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let config = Arc::new(config);
    (0..config.cameras.len())
        .map(|i| {
            let (b, cfg, models, mut stop_rx) = (backends.clone(), config.clone(), models.clone(), stop.clone());
            tokio::spawn(async move {
                let flag = Arc::new(AtomicBool::new(false));
                let f = flag.clone();
                let mut watcher = stop_rx.clone();
                tokio::spawn(async move {
                    let _ = watcher.wait_for(|s| *s).await;
                    f.store(true, Ordering::SeqCst);
                });
                let spec = &cfg.cameras[i];
                let mut delay = Duration::from_secs(1);
                loop {
                    let stopped = || flag.load(Ordering::SeqCst);
                    tracing::info!(camera = %spec.id, source = %crow_vision::source::redact_uri(&spec.source.uri), "camera starting");
                    match run_camera(&b, &cfg.org, spec, &cfg.face, cfg.people.as_ref(), &models, &stopped, &mut |_| {}).await {
                        Ok(r) => {
                            tracing::info!(
                                camera = %spec.id,
                                frames = r.frames,
                                masked = r.masked_regions,
                                line_in = r.line_in,
                                line_out = r.line_out,
                                "camera source ended"
                            );
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(camera = %spec.id, error = %e, retry_in_s = delay.as_secs(), "camera failed");
                        }
                    }
                    if stopped() {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop_rx.wait_for(|s| *s) => break,
                    }
                    delay = (delay * 2).min(Duration::from_secs(300));
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> CctvConfig {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let text = std::fs::read_to_string(root.join("examples/cameras.toml")).unwrap();
        let mut cfg: CctvConfig = toml::from_str(&text).unwrap();
        for c in &mut cfg.cameras {
            if let Some(z) = &c.zones {
                c.zones = Some(root.join(z));
            }
        }
        cfg
    }

    #[test]
    fn the_example_parses_and_validates() {
        let cfg = example();
        cfg.validate().unwrap();
        assert_eq!(cfg.cameras.len(), 2);
        assert_eq!(cfg.face.threshold, 0.5);
        let c = &cfg.cameras[0];
        assert_eq!(c.archive.format, ImageFormat::Webp);
        assert_eq!(c.channel_config().archive.retention.max_bytes, 2_000_000_000);
        assert_eq!(cfg.cameras[1].archive, ArchiveSpec::default());
    }

    #[test]
    fn mistakes_name_the_camera_and_the_field() {
        let mut cfg = example();
        cfg.cameras[1].id = "entrance".into();
        assert!(cfg.validate().unwrap_err().to_string().contains("used twice"));
        let mut cfg = example();
        cfg.cameras[0].source.fps = Some(-1.0);
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("\"entrance\"") && e.contains("fps"), "{e}");
        let mut cfg = example();
        cfg.cameras[0].zones = Some(PathBuf::from("/nonexistent/zones.json"));
        assert!(cfg.validate().unwrap_err().to_string().contains("zones.json"));
        let mut cfg = example();
        cfg.cameras[0].archive.format = ImageFormat::Png;
        assert!(cfg.validate().unwrap_err().to_string().contains("archive.format"));
        let bad = toml::from_str::<CctvConfig>("org = \"o\"\n[[cameras]]\nid = \"a\"\nsorce = { uri = \"x\" }");
        assert!(bad.unwrap_err().to_string().contains("sorce"));
        assert!(
            toml::from_str::<CctvConfig>("org = \"o\"\ncameras = []")
                .unwrap()
                .validate()
                .is_err()
        );
    }

    #[test]
    fn face_defaults_are_the_detectors() {
        let f: FaceSpec = toml::from_str("").unwrap();
        assert_eq!(f, FaceSpec::default());
        assert_eq!(f.threshold, 0.5);
    }
}
