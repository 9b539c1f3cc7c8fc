//! The generic object detector on tiny models (feature `onnx`).
//!
//! `tests/data/make_tiny_detector.py` builds the models (see its docs for their boxes and
//! scores) with the Python of `$CROW_TEST_PYTHON` (the repo's `.venv/bin/python`, with onnx and
//! numpy) into a temporary folder; ONNX Runtime comes from `$CROW_MODELS` (default
//! `<workspace>/models`) or `ORT_DYLIB_PATH`. Without either the tests are skipped with a
//! message, unless `CROW_REQUIRE_MODELS=1`, when they fail.
#![cfg(feature = "onnx")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crow_core::ports::{BoundingBox, Frame, FrameAnalyzer};
use crow_vision::VisionError;
use crow_vision::detect::{BoxOrder, InputLayout, ObjectDetector, ObjectDetectorConfig, OutputLayout, Resize, runtime};

struct Setup {
    lib: PathBuf,
    models: tempfile::TempDir,
}

fn require() -> bool {
    std::env::var("CROW_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

fn skip(msg: &str) -> Option<Setup> {
    assert!(!require(), "CROW_REQUIRE_MODELS=1 but {msg}");
    eprintln!("skipping: {msg}");
    None
}

fn setup() -> Option<&'static Setup> {
    static SETUP: OnceLock<Option<Setup>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let dir = std::env::var_os("CROW_MODELS")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"));
            let lib = runtime::library_path(&dir);
            if !lib.is_file() {
                return skip(&format!(
                    "no ONNX Runtime at {} (run `bash scripts/models.sh`)",
                    lib.display()
                ));
            }
            let Some(python) = std::env::var_os("CROW_TEST_PYTHON").filter(|p| !p.is_empty()) else {
                return skip("CROW_TEST_PYTHON is not set (a python with onnx and numpy builds the test models)");
            };
            // Under the target dir: a static is never dropped, so the folder outlives the run there.
            let models = tempfile::Builder::new()
                .prefix("tiny-detectors")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap();
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/make_tiny_detector.py");
            let out = std::process::Command::new(&python)
                .arg(&script)
                .arg(models.path())
                .output()
                .unwrap_or_else(|e| panic!("running {python:?}: {e}"));
            assert!(
                out.status.success(),
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(Setup { lib, models })
        })
        .as_ref()
}

fn load(model: &str, config: ObjectDetectorConfig) -> crow_vision::Result<ObjectDetector> {
    let s = setup().unwrap();
    ObjectDetector::load(&s.lib, &s.models.path().join(model), config)
}

fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Frame {
    Frame {
        width,
        height,
        timestamp: 0,
        rgb: rgb.repeat((width * height) as usize),
    }
}

/// A 200x100 frame letterboxed into the 64x64 input: scale 0.32, 16 rows of padding on top.
fn letterboxed(corners: [f32; 4]) -> [f32; 4] {
    let [x0, y0, x1, y1] = corners;
    [x0 / 0.32, (y0 - 16.0) / 0.32, x1 / 0.32, (y1 - 16.0) / 0.32]
}

/// The tiny models' candidate boxes in input pixels (x0, y0, x1, y1).
const BOXES: [[f32; 4]; 4] = [
    [22.0, 22.0, 42.0, 42.0],
    [6.0, 36.0, 14.0, 44.0],
    [43.0, 22.0, 53.0, 34.0],
    [23.0, 23.0, 43.0, 43.0],
];

#[track_caller]
fn assert_box(got: &BoundingBox, want: [f32; 4], score: f32) {
    let corners = [got.x, got.y, got.x + got.w, got.y + got.h];
    for (g, w) in corners.iter().zip(want) {
        assert!((g - w).abs() < 0.6, "{got:?}, expected corners {want:?}");
    }
    assert!((got.score - score).abs() < 1e-3, "{got:?}, expected score {score}");
}

fn yolo_config(threshold: f32) -> ObjectDetectorConfig {
    ObjectDetectorConfig {
        score_threshold: threshold,
        ..ObjectDetectorConfig::default()
    }
}

#[test]
fn yolo_boxes_are_decoded_and_mapped_back_through_the_letterbox() {
    if setup().is_none() {
        return;
    }
    let d = load("yolo.onnx", yolo_config(0.4)).unwrap();
    assert_eq!(d.input_size(), (64, 64));
    // R = G = 1, B = 0: person 1.0 (candidate 0), class 1 (candidate 1, not a person), person
    // 0.5 (candidate 2), person 0.9 (candidate 3, suppressed by candidate 0).
    let people = d.detect(&solid(200, 100, [255, 255, 0])).unwrap();
    assert_eq!(people.len(), 2, "{people:?}");
    assert_box(&people[0], letterboxed(BOXES[0]), 1.0);
    assert_box(&people[1], letterboxed(BOXES[2]), 0.5);

    // Without suppression the overlapping candidate stays.
    let all = load(
        "yolo.onnx",
        ObjectDetectorConfig {
            nms_iou: 1.0,
            ..yolo_config(0.4)
        },
    )
    .unwrap();
    let people = all.detect(&solid(200, 100, [255, 255, 0])).unwrap();
    assert_eq!(people.len(), 3, "{people:?}");
    assert_box(&people[1], letterboxed(BOXES[3]), 0.9);

    // A tall frame: padding left and right instead. 100x200 -> scale 0.32, 16 columns on the left.
    let people = d.detect(&solid(100, 200, [255, 0, 0])).unwrap();
    let [x0, y0, x1, y1] = BOXES[0];
    assert_box(
        &people[0],
        [(x0 - 16.0) / 0.32, y0 / 0.32, (x1 - 16.0) / 0.32, y1 / 0.32],
        1.0,
    );
}

#[test]
fn yolo_threshold_and_classes_filter() {
    if setup().is_none() {
        return;
    }
    let frame = solid(200, 100, [255, 255, 0]);
    // Above 0.5 only candidate 0 is left.
    let people = load("yolo.onnx", yolo_config(0.6)).unwrap().detect(&frame).unwrap();
    assert_eq!(people.len(), 1, "{people:?}");
    assert_box(&people[0], letterboxed(BOXES[0]), 1.0);

    // B = 1: candidate 2's best class is class 2, so it is not a person even at 0.5.
    let people = load("yolo.onnx", yolo_config(0.4))
        .unwrap()
        .detect(&solid(200, 100, [255, 0, 255]))
        .unwrap();
    assert_eq!(people.len(), 1, "{people:?}");

    // Class 1 as the person class: only candidate 1.
    let config = ObjectDetectorConfig {
        person_classes: vec![1],
        ..yolo_config(0.4)
    };
    let people = load("yolo.onnx", config).unwrap().detect(&frame).unwrap();
    assert_eq!(people.len(), 1, "{people:?}");
    assert_box(&people[0], letterboxed(BOXES[1]), 1.0);

    // Classes 0 and 1.
    let config = ObjectDetectorConfig {
        person_classes: vec![0, 1],
        ..yolo_config(0.4)
    };
    assert_eq!(load("yolo.onnx", config).unwrap().detect(&frame).unwrap().len(), 3);

    // A black frame: nothing.
    let people = load("yolo.onnx", yolo_config(0.4))
        .unwrap()
        .detect(&solid(200, 100, [0, 0, 0]))
        .unwrap();
    assert!(people.is_empty(), "{people:?}");
}

#[test]
fn yolo_with_objectness() {
    if setup().is_none() {
        return;
    }
    let config = ObjectDetectorConfig {
        layout: OutputLayout::YoloObjectness,
        ..yolo_config(0.4)
    };
    let people = load("yolo_obj.onnx", config)
        .unwrap()
        .detect(&solid(200, 100, [255, 255, 0]))
        .unwrap();
    assert_eq!(people.len(), 2, "{people:?}");
    assert_box(&people[0], letterboxed(BOXES[0]), 1.0);
    assert_box(&people[1], letterboxed(BOXES[2]), 0.5);
}

#[test]
fn ssd_with_class_scores_stretched() {
    if setup().is_none() {
        return;
    }
    // Background first: the person is class 1. Boxes are normalized y0, x0, y1, x1.
    let config = ObjectDetectorConfig {
        layout: OutputLayout::Ssd {
            box_order: BoxOrder::Yxyx,
            boxes: None,
            scores: None,
            classes: None,
            count: None,
        },
        resize: Resize::Stretch,
        person_classes: vec![1],
        score_threshold: 0.4,
        ..ObjectDetectorConfig::default()
    };
    let d = load("ssd.onnx", config).unwrap();
    // 128x64 stretched over 64x64: x halves, y stays.
    let people = d.detect(&solid(128, 64, [255, 255, 0])).unwrap();
    assert_eq!(people.len(), 2, "{people:?}");
    let stretched = |[x0, y0, x1, y1]: [f32; 4]| [x0 * 2.0, y0, x1 * 2.0, y1];
    assert_box(&people[0], stretched(BOXES[0]), 1.0);
    assert_box(&people[1], stretched(BOXES[2]), 0.5);
    // The colour that makes every candidate's best class the background or another class.
    assert!(d.detect(&solid(128, 64, [0, 255, 255])).unwrap().is_empty());
}

#[test]
fn ssd_tensorflow_style_nhwc_with_a_count() {
    if setup().is_none() {
        return;
    }
    let config = ObjectDetectorConfig {
        layout: OutputLayout::Ssd {
            box_order: BoxOrder::Yxyx,
            boxes: None,
            scores: None,
            classes: None,
            count: None,
        },
        input_layout: InputLayout::Nhwc,
        resize: Resize::Stretch,
        person_classes: vec![1],
        score_threshold: 0.4,
        nms_iou: 1.0,
        ..ObjectDetectorConfig::default()
    };
    let d = load("ssd_tf.onnx", config).unwrap();
    // Classes 1, 2, 1, 1; scores = each candidate's best: 1, 1, 0.5, 0.9; the count (3) leaves
    // candidate 3 out even without suppression.
    let people = d.detect(&solid(64, 64, [255, 255, 0])).unwrap();
    assert_eq!(people.len(), 2, "{people:?}");
    assert_box(&people[0], BOXES[0], 1.0);
    assert_box(&people[1], BOXES[2], 0.5);
}

#[test]
fn analyzer_reports_people() {
    if setup().is_none() {
        return;
    }
    let d = load("yolo.onnx", yolo_config(0.6)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let analysis = rt.block_on(d.analyze(&solid(200, 100, [255, 0, 0]))).unwrap();
    assert_eq!(analysis.people.len(), 1);
    assert!(analysis.faces.is_empty());
}

#[test]
fn models_that_do_not_fit_are_clear_errors() {
    if setup().is_none() {
        return;
    }
    let model_error = |r: crow_vision::Result<ObjectDetector>, needle: &str| {
        let err = r.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, VisionError::Model { .. }), "{text}");
        assert!(text.contains(needle), "`{text}` lacks `{needle}`");
    };
    let ssd = ObjectDetectorConfig {
        layout: OutputLayout::Ssd {
            box_order: BoxOrder::Xyxy,
            boxes: None,
            scores: None,
            classes: None,
            count: None,
        },
        ..ObjectDetectorConfig::default()
    };
    model_error(load("wrong.onnx", ObjectDetectorConfig::default()), "[1, 4 + C, N]");
    model_error(load("wrong.onnx", ssd.clone()), "boxes [1, N, 4]");
    model_error(load("ssd.onnx", ObjectDetectorConfig::default()), "`boxes` [1, 4, 4]");
    model_error(
        load(
            "yolo.onnx",
            ObjectDetectorConfig {
                layout: OutputLayout::YoloObjectness,
                ..ObjectDetectorConfig::default()
            },
        ),
        "[1, N, 5 + C]",
    );
    model_error(load("yolo.onnx", ssd), "SSD");
    // A class the model does not have.
    let config = ObjectDetectorConfig {
        person_classes: vec![7],
        ..ObjectDetectorConfig::default()
    };
    model_error(load("yolo.onnx", config), "person classes");
    // An NHWC reading of an NCHW model.
    let config = ObjectDetectorConfig {
        input_layout: InputLayout::Nhwc,
        ..ObjectDetectorConfig::default()
    };
    model_error(load("yolo.onnx", config), "[1, H, W, 3]");

    // Configuration mistakes.
    let config = ObjectDetectorConfig {
        input_size: Some([320, 320]),
        ..ObjectDetectorConfig::default()
    };
    let err = load("yolo.onnx", config).unwrap_err();
    assert!(
        matches!(&err, VisionError::Config { field, .. } if field == "input_size"),
        "{err}"
    );
    let config = ObjectDetectorConfig {
        person_classes: vec![],
        ..ObjectDetectorConfig::default()
    };
    assert!(matches!(load("yolo.onnx", config), Err(VisionError::Config { .. })));

    // Missing files.
    let s = setup().unwrap();
    let err = ObjectDetector::load(
        &s.lib,
        Path::new("/nonexistent/yolo.onnx"),
        ObjectDetectorConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, VisionError::ModelNotFound(_)), "{err}");
    let err = ObjectDetector::load(
        Path::new("/nonexistent/libonnxruntime.so"),
        &s.models.path().join("yolo.onnx"),
        ObjectDetectorConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, VisionError::ModelNotFound(_)), "{err}");
}

#[test]
fn config_parses_from_json() {
    let config: ObjectDetectorConfig = serde_json::from_str(
        r#"{"layout": {"kind": "yolo_objectness"}, "input_size": [640, 384], "person_classes": [0],
            "score_threshold": 0.3, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}"#,
    )
    .unwrap();
    assert_eq!(config.layout, OutputLayout::YoloObjectness);
    assert_eq!(config.input_size, Some([640, 384]));
    assert_eq!(config.resize, Resize::Letterbox);
    let err = serde_json::from_str::<ObjectDetectorConfig>(r#"{"layout": {"kind": "detr"}}"#).unwrap_err();
    assert!(err.to_string().contains("detr"), "{err}");
}

/// Another crate of the process (crow-nlp in the CLI) initializing ONNX Runtime on its own,
/// before or after crow-vision (test order varies): both keep working, and a second
/// `init_from` naming another file neither loads it nor fails.
#[test]
fn another_crate_shares_the_one_ort_environment() {
    let Some(s) = setup() else { return };
    let d = load("yolo.onnx", yolo_config(0.6)).unwrap();
    assert_eq!(d.detect(&solid(200, 100, [255, 0, 0])).unwrap().len(), 1);
    // ONNX Runtime allows one environment per process: a second one cannot be built...
    let second = ort::init_from(&s.lib).expect("init_from on the loaded library").build();
    assert!(second.is_err());
    // ...so every crate (crow-nlp in the CLI) takes the one crow-onnx holds, and its sessions run.
    assert_eq!(crow_onnx::loaded_from(), Some(s.lib.as_path()));
    let env = crow_onnx::environment(&s.lib).unwrap();
    let mut session = ort::session::Session::builder(env)
        .unwrap()
        .commit_from_file(s.models.path().join("wrong.onnx"))
        .unwrap();
    let input = vec![0.5f32; 3 * 64 * 64];
    let tensor = ort::value::TensorRef::from_array_view(([1usize, 3, 64, 64], &input[..])).unwrap();
    let out = session.run(ort::inputs!["image" => tensor]).unwrap();
    let (_, logits) = out["logits"].try_extract_tensor::<f32>().unwrap();
    assert_eq!(logits, &[1.5f32; 10][..]);
    drop(out);
    drop(session);
    assert_eq!(d.detect(&solid(200, 100, [255, 0, 0])).unwrap().len(), 1);
}
