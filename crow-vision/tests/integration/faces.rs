//! CenterFace on real images (feature `onnx`).
//!
//! Needs the models `scripts/models.sh` fetches, in `$CROW_MODELS` (an absolute path; default
//! `<workspace>/models`): the ONNX Runtime library (or `ORT_DYLIB_PATH`), CenterFace and the
//! scikit-image test pictures. Without them each test is skipped with a message, unless
//! `CROW_REQUIRE_MODELS=1`, when it fails. The "not CenterFace" test also builds a tiny model with
//! the Python of `$CROW_TEST_PYTHON` (the repo's `.venv/bin/python`).
#![cfg(feature = "onnx")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use crow_core::ports::{BoundingBox, Frame, FrameAnalyzer};
use crow_vision::VisionError;
use crow_vision::detect::{CENTERFACE_MODEL, CenterFace, CenterFaceConfig, runtime};
use crow_vision::image_io::read_image;

struct Models {
    lib: PathBuf,
    model: PathBuf,
    images: PathBuf,
}

fn require() -> bool {
    std::env::var("CROW_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

fn models() -> Option<&'static Models> {
    static MODELS: OnceLock<Option<Models>> = OnceLock::new();
    MODELS
        .get_or_init(|| {
            let dir = std::env::var_os("CROW_MODELS")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"));
            let m = Models {
                lib: runtime::library_path(&dir),
                model: dir.join(CENTERFACE_MODEL),
                images: dir.join("images"),
            };
            let missing: Vec<PathBuf> = [m.lib.clone(), m.model.clone(), m.images.join("astronaut.png")]
                .into_iter()
                .filter(|p| !p.is_file())
                .collect();
            if missing.is_empty() {
                return Some(m);
            }
            let msg = format!("models missing: {missing:?} (run `bash scripts/models.sh`, set CROW_MODELS)");
            assert!(!require(), "CROW_REQUIRE_MODELS=1 and {msg}");
            eprintln!("skipping: {msg}");
            None
        })
        .as_ref()
}

fn detector() -> Option<&'static CenterFace> {
    static DETECTOR: OnceLock<Option<CenterFace>> = OnceLock::new();
    DETECTOR
        .get_or_init(|| {
            let m = models()?;
            Some(CenterFace::load(&m.lib, &m.model, CenterFaceConfig::default()).expect("loading CenterFace"))
        })
        .as_ref()
}

fn image(name: &str) -> Frame {
    read_image(&models().unwrap().images.join(name), 0).unwrap()
}

fn centre(b: &BoundingBox) -> (f32, f32) {
    (b.x + b.w / 2.0, b.y + b.h / 2.0)
}

fn confident(boxes: Vec<BoundingBox>) -> Vec<BoundingBox> {
    boxes.into_iter().filter(|b| b.score > 0.5).collect()
}

/// `frame` with `src`'s region `(x, y, w, h)` copied to `(at_x, at_y)`.
fn paste(frame: &mut Frame, src: &Frame, (x, y, w, h): (u32, u32, u32, u32), (at_x, at_y): (u32, u32)) {
    for row in 0..h {
        let s = (((y + row) * src.width + x) * 3) as usize;
        let d = (((at_y + row) * frame.width + at_x) * 3) as usize;
        frame.rgb[d..d + w as usize * 3].copy_from_slice(&src.rgb[s..s + w as usize * 3]);
    }
}

fn gray(width: u32, height: u32) -> Frame {
    Frame {
        width,
        height,
        timestamp: 0,
        rgb: vec![96; (width * height * 3) as usize],
    }
}

#[test]
fn astronaut_has_one_face_where_it_is() {
    let Some(d) = detector() else { return };
    let faces = confident(d.detect(&image("astronaut.png")).unwrap());
    eprintln!("astronaut: {faces:?}");
    assert_eq!(faces.len(), 1, "{faces:?}");
    let f = faces[0];
    let (cx, cy) = centre(&f);
    assert!((170.0..270.0).contains(&cx) && (40.0..180.0).contains(&cy), "{f:?}");
    assert!(f.w > 40.0 && f.w < 160.0 && f.h > 50.0 && f.h < 200.0, "{f:?}");
    assert!(f.x >= 0.0 && f.y >= 0.0 && f.x + f.w <= 512.0 && f.y + f.h <= 512.0);
}

#[test]
fn camera_has_one_face() {
    let Some(d) = detector() else { return };
    let faces = confident(d.detect(&image("camera.png")).unwrap());
    eprintln!("camera: {faces:?}");
    assert_eq!(faces.len(), 1, "{faces:?}");
    // The cameraman's face, left of his camera: about x 175-255, y 95-200 of the 512x512 picture.
    let (cx, cy) = centre(&faces[0]);
    assert!(
        (180.0..280.0).contains(&cx) && (100.0..200.0).contains(&cy),
        "{faces:?}"
    );
}

#[test]
fn coffee_and_cat_have_no_face() {
    let Some(d) = detector() else { return };
    for name in ["coffee.png", "chelsea.png"] {
        let faces = confident(d.detect(&image(name)).unwrap());
        assert!(faces.is_empty(), "{name}: {faces:?}");
    }
}

/// The astronaut's head pasted into a 1280x720 frame: found at the pasted place (padding and
/// coordinates mapped back), at full size and scaled down by `max_side`.
#[test]
fn face_in_a_larger_frame_is_found_where_it_was_pasted() {
    let Some(d) = detector() else { return };
    let astronaut = image("astronaut.png");
    let reference = confident(d.detect(&astronaut).unwrap())[0];
    let region = (100, 0, 260, 260);
    let at = (811, 397);
    let mut big = gray(1280, 720);
    paste(&mut big, &astronaut, region, at);
    let (dx, dy) = ((at.0 - region.0) as f32, (at.1 - region.1) as f32);

    let faces = confident(d.detect(&big).unwrap());
    eprintln!("1280x720: {faces:?}");
    assert_eq!(faces.len(), 1, "{faces:?}");
    let f = faces[0];
    for (got, want) in [
        (f.x, reference.x + dx),
        (f.y, reference.y + dy),
        (f.w, reference.w),
        (f.h, reference.h),
    ] {
        assert!(
            (got - want).abs() < 8.0,
            "{f:?} vs reference {reference:?} moved by ({dx}, {dy})"
        );
    }

    // Latency of one 1280x720 frame (printed; run with --nocapture to see it).
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            d.detect(&big).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    eprintln!("CenterFace 1280x720: median {:.1} ms (min {:.1})", times[2], times[0]);

    let m = models().unwrap();
    let small = CenterFace::load(
        &m.lib,
        &m.model,
        CenterFaceConfig {
            max_side: Some(640),
            ..CenterFaceConfig::default()
        },
    )
    .unwrap();
    let t = Instant::now();
    let faces = confident(small.detect(&big).unwrap());
    eprintln!(
        "1280x720 at max_side 640 ({:.1} ms): {faces:?}",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(faces.len(), 1, "{faces:?}");
    let (cx, cy) = centre(&faces[0]);
    let (rx, ry) = centre(&reference);
    assert!((cx - rx - dx).abs() < 12.0 && (cy - ry - dy).abs() < 12.0, "{faces:?}");
}

#[test]
fn batch_and_single_agree() {
    let Some(d) = detector() else { return };
    let astronaut = image("astronaut.png");
    let mut big = gray(700, 400);
    paste(&mut big, &astronaut, (100, 0, 260, 260), (33, 101));
    let frames = [astronaut, image("camera.png"), image("coffee.png"), big];
    let refs: Vec<&Frame> = frames.iter().collect();
    let batch = d.detect_batch(&refs).unwrap();
    assert_eq!(batch.len(), frames.len());
    for (frame, from_batch) in frames.iter().zip(&batch) {
        let single = d.detect(frame).unwrap();
        assert_eq!(single.len(), from_batch.len(), "{single:?} vs {from_batch:?}");
        for (a, b) in single.iter().zip(from_batch) {
            for (x, y) in [
                (a.x, b.x),
                (a.y, b.y),
                (a.w, b.w),
                (a.h, b.h),
                (a.score * 100.0, b.score * 100.0),
            ] {
                assert!((x - y).abs() < 0.05, "{a:?} vs {b:?}");
            }
        }
    }
    assert!(d.detect_batch(&[]).unwrap().is_empty());
}

#[test]
fn analyzer_reports_faces() {
    let Some(d) = detector() else { return };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let analysis = rt.block_on(d.analyze(&image("astronaut.png"))).unwrap();
    assert_eq!(confident(analysis.faces).len(), 1);
    assert!(analysis.people.is_empty());
}

#[test]
fn a_frame_of_the_wrong_size_is_an_error() {
    let Some(d) = detector() else { return };
    let mut frame = gray(64, 48);
    frame.rgb.pop();
    let err = d.detect(&frame).unwrap_err();
    assert!(matches!(err, VisionError::Image { .. }), "{err}");
    let empty = Frame {
        width: 0,
        height: 0,
        timestamp: 0,
        rgb: Vec::new(),
    };
    assert!(matches!(d.detect(&empty), Err(VisionError::Image { .. })));
}

#[test]
fn missing_files_are_clear_errors() {
    let Some(m) = models() else { return };
    let nowhere = Path::new("/nonexistent/centerface.onnx");
    let err = CenterFace::load(&m.lib, nowhere, CenterFaceConfig::default()).unwrap_err();
    assert!(matches!(&err, VisionError::ModelNotFound(p) if p == nowhere), "{err}");
    assert!(err.to_string().contains("/nonexistent/centerface.onnx"), "{err}");

    let no_lib = Path::new("/nonexistent/libonnxruntime.so");
    let err = CenterFace::load(no_lib, &m.model, CenterFaceConfig::default()).unwrap_err();
    assert!(matches!(&err, VisionError::ModelNotFound(p) if p == no_lib), "{err}");

    let bad = CenterFaceConfig {
        threshold: 1.5,
        ..CenterFaceConfig::default()
    };
    let err = CenterFace::load(&m.lib, &m.model, bad).unwrap_err();
    assert!(
        matches!(&err, VisionError::Config { field, .. } if field == "threshold"),
        "{err}"
    );
}

#[test]
fn a_model_that_is_not_centerface_is_a_clear_error() {
    let Some(m) = models() else { return };
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is not an onnx model").unwrap();
    let err = CenterFace::load(&m.lib, &garbage, CenterFaceConfig::default()).unwrap_err();
    assert!(
        matches!(&err, VisionError::Model { path, .. } if path == &garbage),
        "{err}"
    );

    let python = std::env::var_os("CROW_TEST_PYTHON").filter(|p| !p.is_empty());
    let Some(python) = python else {
        assert!(!require(), "CROW_REQUIRE_MODELS=1 but CROW_TEST_PYTHON is not set");
        eprintln!("skipping the tiny-model half: CROW_TEST_PYTHON is not set");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/make_tiny_detector.py");
    let status = std::process::Command::new(python)
        .arg(&script)
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "{} failed", script.display());
    let yolo = dir.path().join("yolo.onnx");
    let err = CenterFace::load(&m.lib, &yolo, CenterFaceConfig::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(&err, VisionError::Model { .. }), "{text}");
    assert!(
        text.contains("not a CenterFace model") && text.contains("output0"),
        "{text}"
    );
}
