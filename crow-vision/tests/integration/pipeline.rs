//! The CCTV pipeline on real pictures and real video: CenterFace (feature `onnx`) finds the
//! faces and masking hides them in every mode; the mask stays on frames where the detector
//! misses; line crossings on a generated clip are counted exactly.
//!
//! The clips are made here with ffmpeg's `overlay` filter from the scikit-image test pictures in
//! `$CROW_MODELS/images`, so the ground truth (where each face or walker is on each frame) is
//! known from the overlay's expression. Needs `ffmpeg` on `PATH` and the models of
//! `scripts/models.sh` in `$CROW_MODELS`; without the models each test is skipped with a message,
//! unless `CROW_REQUIRE_MODELS=1`, when it fails.
#![cfg(feature = "sources")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use crow_core::model::FrameEventKind;
use crow_core::ports::{Frame, FrameAnalysis, FrameAnalyzer, FrameProcessor};
use crow_core::video::FrameObservation;
use crow_vision::pipeline::{PeopleFrom, PipelineConfig, VisionPipeline};
use crow_vision::source::{SourceConfig, SourceKind, open};
use crow_vision::zones::ZonesConfig;

fn require() -> bool {
    std::env::var("CROW_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

fn models_dir() -> PathBuf {
    std::env::var_os("CROW_MODELS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"))
}

/// The scikit-image pictures, or `None` (skip) when they are missing.
fn images() -> Option<PathBuf> {
    let dir = models_dir().join("images");
    if dir.join("coffee.png").is_file() && dir.join("astronaut.png").is_file() && dir.join("camera.png").is_file() {
        return Some(dir);
    }
    let msg = format!(
        "test images missing in {} (run `bash scripts/models.sh`)",
        dir.display()
    );
    assert!(!require(), "CROW_REQUIRE_MODELS=1 and {msg}");
    eprintln!("skipping: {msg}");
    None
}

/// Runs ffmpeg with `args`; panics with its stderr when it fails.
fn ffmpeg(args: &[&str]) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed to run these tests: bash scripts/ffmpeg.sh");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every frame of a video file, through the product's ffmpeg source.
async fn frames_of(path: &Path) -> Vec<Frame> {
    let mut cfg = SourceConfig::new(path.to_string_lossy());
    cfg.kind = SourceKind::File;
    let mut source = open(&cfg).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = source.next_frame().await.unwrap() {
        frames.push(f);
    }
    frames
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// An analyzer that sees nothing: people come from motion.
struct Blind;

#[async_trait::async_trait]
impl FrameAnalyzer for Blind {
    async fn analyze(&self, _frame: &Frame) -> crow_core::Result<FrameAnalysis> {
        Ok(FrameAnalysis::default())
    }
}

/// Five white "walkers" (40×100) cross a still 640×360 picture of a coffee cup one after the
/// other at 10 fps: left→right, right→left, left→right, left→right, right→left. A vertical line
/// in the middle counts them; "right" is the right 40 % of the picture.
#[test]
fn line_crossings_on_a_generated_clip_are_counted_exactly() {
    let Some(images) = images() else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("walkers.mp4");
    // (start second, left to right?); each crossing takes 2.5 s at 272 px/s.
    let walkers = [(0.5, true), (3.7, false), (6.9, true), (10.1, true), (13.3, false)];
    let mut graph = String::from("[0]scale=640:360,format=rgb24[b0];[1]split=5[w0][w1][w2][w3][w4]");
    for (i, (t0, right)) in walkers.iter().enumerate() {
        let x = if *right {
            format!("-40+(t-{t0})*272")
        } else {
            format!("640-(t-{t0})*272")
        };
        graph.push_str(&format!(
            ";[b{i}][w{i}]overlay=x='{x}':y=230:enable='between(t,{t0},{t0}+2.5)'[b{}]",
            i + 1
        ));
    }
    let coffee = images.join("coffee.png");
    ffmpeg(&[
        "-framerate",
        "10",
        "-loop",
        "1",
        "-i",
        coffee.to_str().unwrap(),
        "-f",
        "lavfi",
        "-i",
        "color=c=white:s=40x100:r=10",
        "-filter_complex",
        &graph,
        "-map",
        "[b5]",
        "-t",
        "16.5",
        "-c:v",
        "libx264",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().unwrap(),
    ]);
    let zones: ZonesConfig = serde_json::from_str(
        r#"{ "lines": [{ "name": "door", "from": [0.5, 0.0], "to": [0.5, 1.0] }],
             "zones": [{ "name": "right", "polygon": [[0.6, 0.0], [1.0, 0.0], [1.0, 1.0], [0.6, 1.0]] }],
             "dwell_min_secs": 0.5 }"#,
    )
    .unwrap();
    let cfg = PipelineConfig {
        zones,
        people_from: PeopleFrom::Motion,
        ..PipelineConfig::default()
    };
    let (observations, frames, max_people) = run(async {
        let frames = frames_of(&clip).await;
        let n = frames.len();
        let end = frames.last().unwrap().timestamp;
        let mut pipeline = VisionPipeline::new(cfg, Blind).unwrap();
        let mut all: Vec<(i64, FrameObservation)> = Vec::new();
        for f in frames {
            let ts = f.timestamp;
            let out = pipeline.process(f).await.unwrap();
            all.extend(out.observations.into_iter().map(|o| (ts, o)));
        }
        all.extend(pipeline.finish(end).await.unwrap().into_iter().map(|o| (end, o)));
        (all, n, pipeline.stats().max_people)
    });
    assert_eq!(frames, 165, "the clip has 16.5 s at 10 fps");
    let of = |kind: FrameEventKind| -> Vec<&(i64, FrameObservation)> {
        observations.iter().filter(|(_, o)| o.kind == kind).collect()
    };
    let crossings: Vec<(i64, FrameEventKind)> = observations
        .iter()
        .filter(|(_, o)| matches!(o.kind, FrameEventKind::LineIn | FrameEventKind::LineOut))
        .map(|(ts, o)| (*ts, o.kind))
        .collect();
    eprintln!("crossings: {crossings:?}");
    // In order, each while its walker crosses the middle (1.3 s after it starts).
    let want = [
        FrameEventKind::LineIn,
        FrameEventKind::LineOut,
        FrameEventKind::LineIn,
        FrameEventKind::LineIn,
        FrameEventKind::LineOut,
    ];
    assert_eq!(
        crossings.iter().map(|c| c.1).collect::<Vec<_>>(),
        want,
        "3 in (left→right) and 2 out, in this order: {crossings:?}"
    );
    for ((ts, _), (t0, _)) in crossings.iter().zip(walkers) {
        let mid = ((t0 + 1.3) * 1000.0) as i64;
        assert!((ts - mid).abs() <= 300, "crossing at {ts} ms, expected near {mid} ms");
    }
    assert!(
        observations
            .iter()
            .all(|(_, o)| o.zone.as_deref() != Some("door") || o.count == 1),
        "{observations:?}"
    );
    // One walker at a time; each passes through the right zone once.
    assert_eq!(max_people, 1, "{observations:?}");
    let occupancy: Vec<u32> = of(FrameEventKind::Occupancy).iter().map(|(_, o)| o.count).collect();
    assert_eq!(occupancy, [1, 0, 1, 0, 1, 0, 1, 0, 1, 0], "{observations:?}");
    let dwell: Vec<f64> = of(FrameEventKind::Dwell)
        .iter()
        .map(|(_, o)| o.value.unwrap())
        .collect();
    eprintln!("dwell: {dwell:?}");
    assert_eq!(dwell.len(), 5, "{observations:?}");
    // 40 % of 640 px at 272 px/s is 0.94 s (plus the time the tracker coasts off screen).
    for d in dwell {
        assert!((0.7..=1.8).contains(&d), "dwell {d} s");
    }
}

#[cfg(feature = "onnx")]
mod faces {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    use crow_core::ports::BoundingBox;
    use crow_core::video::{MaskMode, MaskSpec, MaskedFrame};
    use crow_vision::detect::{CENTERFACE_MODEL, CenterFace, CenterFaceConfig, runtime};
    use crow_vision::image_io::read_image;

    use super::*;

    /// CenterFace at `threshold`, or `None` (skip) without the models.
    fn load(threshold: f32) -> Option<CenterFace> {
        let dir = models_dir();
        let (lib, model) = (runtime::library_path(&dir), dir.join(CENTERFACE_MODEL));
        if !lib.is_file() || !model.is_file() {
            let msg = format!(
                "{} or {} missing (run `bash scripts/models.sh`)",
                lib.display(),
                model.display()
            );
            assert!(!require(), "CROW_REQUIRE_MODELS=1 and {msg}");
            eprintln!("skipping: {msg}");
            return None;
        }
        let config = CenterFaceConfig {
            threshold,
            ..CenterFaceConfig::default()
        };
        Some(CenterFace::load(&lib, &model, config).expect("loading CenterFace"))
    }

    /// The detector the product uses (threshold 0.5).
    fn detector() -> Option<&'static CenterFace> {
        static D: OnceLock<Option<CenterFace>> = OnceLock::new();
        D.get_or_init(|| load(0.5)).as_ref()
    }

    /// A more sensitive one (threshold 0.2) for checking outputs: it reports what is left of a
    /// face with its score, so a failure says how close it was.
    fn checker() -> Option<&'static CenterFace> {
        static D: OnceLock<Option<CenterFace>> = OnceLock::new();
        D.get_or_init(|| load(0.2)).as_ref()
    }

    fn overlaps(a: &BoundingBox, (x, y, w, h): (f32, f32, f32, f32)) -> bool {
        a.x < x + w && x < a.x + a.w && a.y < y + h && y < a.y + a.h
    }

    fn strong(boxes: Vec<BoundingBox>) -> Vec<BoundingBox> {
        boxes.into_iter().filter(|b| b.score > 0.5).collect()
    }

    const MODES: [MaskMode; 3] = [MaskMode::Blur, MaskMode::Pixelate, MaskMode::Solid];

    #[test]
    fn known_faces_are_found_then_gone_after_masking_in_every_mode() {
        let (Some(d), Some(check), Some(images)) = (detector(), checker(), images()) else {
            return;
        };
        for name in ["astronaut.png", "camera.png"] {
            let frame = read_image(&images.join(name), 0).unwrap();
            let faces = d.detect(&frame).unwrap();
            assert_eq!(
                strong(faces.clone()).len(),
                1,
                "{name}: the face is found first: {faces:?}"
            );
            for mode in MODES {
                let spec = MaskSpec { mode, padding: 1.3 };
                let masked = MaskedFrame::mask(frame.clone(), &faces, &spec);
                assert_eq!(masked.regions().len(), faces.len(), "{name} {mode}");
                assert_ne!(masked.frame().rgb, frame.rgb, "{name} {mode}: nothing changed");
                let left = check.detect(masked.frame()).unwrap();
                eprintln!("{name} {mode}: before {faces:?}, after {left:?}");
                assert!(
                    strong(left.clone()).is_empty(),
                    "{name} {mode}: a face is still found after masking: {left:?}"
                );
            }
        }
        for name in ["coffee.png", "chelsea.png"] {
            let frame = read_image(&images.join(name), 0).unwrap();
            let faces = d.detect(&frame).unwrap();
            assert!(faces.is_empty(), "{name}: {faces:?}");
            for mode in MODES {
                let masked = MaskedFrame::mask(frame.clone(), &faces, &MaskSpec { mode, padding: 1.3 });
                assert!(masked.regions().is_empty(), "{name} {mode}");
                assert_eq!(
                    masked.frame().rgb,
                    frame.rgb,
                    "{name} {mode}: a picture without faces is untouched"
                );
            }
        }
    }

    /// CenterFace that reports its faces on one call in `keep` only (a detector that misses).
    struct Flaky {
        inner: &'static CenterFace,
        keep: u64,
        calls: AtomicU64,
        dropped: AtomicU64,
    }

    #[async_trait::async_trait]
    impl FrameAnalyzer for Flaky {
        async fn analyze(&self, frame: &Frame) -> crow_core::Result<FrameAnalysis> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let mut analysis = self.inner.analyze(frame).await?;
            if !n.is_multiple_of(self.keep) && !analysis.faces.is_empty() {
                analysis.faces.clear();
                self.dropped.fetch_add(1, Ordering::SeqCst);
            }
            Ok(analysis)
        }
    }

    /// The astronaut's head (108×120) moving right at 100 px/s over the coffee picture, 10 fps,
    /// 4 s: on frame `n` it covers `(20 + 10 n, 120, 108, 120)`.
    fn moving_face_clip(images: &Path, dir: &Path) -> PathBuf {
        let clip = dir.join("face.mp4");
        let (coffee, astronaut) = (images.join("coffee.png"), images.join("astronaut.png"));
        ffmpeg(&[
            "-framerate",
            "10",
            "-loop",
            "1",
            "-i",
            coffee.to_str().unwrap(),
            "-framerate",
            "10",
            "-loop",
            "1",
            "-i",
            astronaut.to_str().unwrap(),
            "-filter_complex",
            "[0]scale=640:360,format=rgb24[bg];[1]crop=180:200:130:10,scale=108:120[f];[bg][f]overlay=x='20+t*100':y=120",
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-crf",
            "18",
            "-pix_fmt",
            "yuv420p",
            clip.to_str().unwrap(),
        ]);
        clip
    }

    #[test]
    fn the_mask_stays_on_frames_where_the_detector_misses() {
        let (Some(d), Some(check), Some(images)) = (detector(), checker(), images()) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let clip = moving_face_clip(&images, dir.path());
        let frames = run(frames_of(&clip));
        assert_eq!(frames.len(), 40);
        let patch = |n: usize| (20.0 + 10.0 * n as f32, 120.0, 108.0, 120.0);
        // Non-vacuous: the detector does find the face in the input, where it was pasted.
        let found = frames
            .iter()
            .enumerate()
            .filter(|(n, f)| strong(d.detect(f).unwrap()).iter().any(|b| overlaps(b, patch(*n))))
            .count();
        assert!(found >= 38, "the face is found on only {found} of 40 input frames");

        for keep in [2, 4] {
            let flaky = Flaky {
                inner: d,
                keep,
                calls: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            };
            let mut pipeline = VisionPipeline::new(PipelineConfig::default(), flaky).unwrap();
            let outputs = run(async {
                let mut outputs = Vec::new();
                for f in &frames {
                    outputs.push(pipeline.process(f.clone()).await.unwrap());
                }
                outputs
            });
            let mut coasted = 0;
            for (n, out) in outputs.iter().enumerate() {
                coasted += out.faces.iter().any(|t| t.misses > 0) as usize;
                assert!(
                    !out.frame.regions().is_empty(),
                    "keep 1 in {keep}: frame {n} has no mask at all"
                );
                let left = check.detect(out.frame.frame()).unwrap();
                let visible: Vec<_> = left.iter().filter(|b| b.score > 0.5 && overlaps(b, patch(n))).collect();
                assert!(
                    visible.is_empty(),
                    "keep 1 in {keep}: frame {n}: the face is visible in the output: {visible:?} (masked {:?}, tracks {:?})",
                    out.frame.regions(),
                    out.faces
                );
            }
            let dropped = pipeline.analyzer().dropped.load(Ordering::SeqCst);
            eprintln!("keep 1 in {keep}: {dropped} detections dropped, {coasted} frames masked by a coasting track");
            assert!(
                dropped >= 40 * (keep - 1) / keep - 2,
                "the analyzer missed only {dropped} times"
            );
            assert!(
                coasted >= dropped as usize - 2,
                "{coasted} frames with a coasting track"
            );
        }
    }
}
