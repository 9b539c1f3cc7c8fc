//! The CCTV channel from the command line: `crow blur` and `crow video` with the real CenterFace
//! model, on clips made here with ffmpeg from the scikit-image test pictures.
//!
//! The privacy proof runs the channel on a clip with two faces walking through, then runs the
//! face detector (from this test, through crow-vision) over everything the channel left: every
//! image and video under the data directory and under its `TMPDIR`, every image embedded in any
//! other file, the debug log and the API's answers; not one face may be found, while the same
//! detector does find the faces in the input.
//!
//! Needs ffmpeg and the models of `scripts/models.sh` (CenterFace, ONNX Runtime, the test
//! pictures); without the models each test is skipped with a message, unless
//! `CROW_REQUIRE_MODELS=1`, when it fails.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crow_core::ports::{BoundingBox, Frame};
use crow_e2e::*;
use crow_vision::detect::{CENTERFACE_MODEL, CenterFace, CenterFaceConfig, runtime};
use crow_vision::image_io::decode_image;
use crow_vision::source::{SourceConfig, SourceKind};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// The detector the test checks with, clips, frames.

/// CenterFace at threshold 0.2, so what is left of a face shows up with its score; anything
/// scoring above [`FACE`] is a face.
fn checker() -> &'static CenterFace {
    static D: OnceLock<CenterFace> = OnceLock::new();
    D.get_or_init(|| {
        let dir = models_dir();
        let config = CenterFaceConfig {
            threshold: 0.2,
            ..CenterFaceConfig::default()
        };
        CenterFace::load(&runtime::library_path(&dir), &dir.join(CENTERFACE_MODEL), config).expect("loading CenterFace")
    })
}

/// A detection above this is a face (the product masks from 0.5 up).
const FACE: f32 = 0.5;

/// The faces in `frame` scoring above [`FACE`].
fn faces(frame: &Frame) -> Vec<BoundingBox> {
    checker()
        .detect(frame)
        .unwrap()
        .into_iter()
        .filter(|b| b.score > FACE)
        .collect()
}

fn images() -> PathBuf {
    models_dir().join("images")
}

/// Runs ffmpeg; panics with its stderr when it fails.
fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed: bash scripts/ffmpeg.sh");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A patch `(x, y, w, h)` of a clip's frame.
type Rect = (f32, f32, f32, f32);

fn overlaps(b: &BoundingBox, (x, y, w, h): Rect) -> bool {
    b.x < x + w && x < b.x + b.w && b.y < y + h && y < b.y + b.h
}

/// The astronaut's head (108×120) cut from the filter input `[input]`, labelled `[out]`.
fn astronaut(input: &str, out: &str) -> String {
    format!("[{input}]crop=180:200:130:10,scale=108:120[{out}]")
}

/// The cameraman's head (100×114), as [`astronaut`].
fn cameraman(input: &str, out: &str) -> String {
    format!("[{input}]crop=150:170:140:60,format=rgb24,scale=100:114[{out}]")
}

/// 640×360 at 10 fps over the coffee picture, from `graph` (inputs: 0 coffee, 1 astronaut,
/// 2 camera; the background is `[bg]`, the result `[v]`), `secs` long.
fn make_clip(path: &Path, graph: &str, secs: &str, extra: &[&str]) {
    let img = images();
    let (coffee, astro, cam) = (
        img.join("coffee.png"),
        img.join("astronaut.png"),
        img.join("camera.png"),
    );
    let mut args: Vec<&str> = Vec::new();
    for p in [&coffee, &astro, &cam] {
        args.extend(["-framerate", "10", "-loop", "1", "-i", p.to_str().unwrap()]);
    }
    let graph = format!("[0]scale=640:360,format=rgb24[bg];{graph}");
    args.extend(["-filter_complex", &graph, "-map", "[v]", "-t", secs]);
    args.extend(["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p"]);
    args.extend(extra);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
}

/// Where the faces of [`two_faces_clip`] are at second `t`.
fn two_faces_at(t: f32) -> Vec<Rect> {
    let mut out = Vec::new();
    if (0.5..=4.0).contains(&t) {
        out.push((100.0 + (t - 0.5) * 100.0, 40.0, 108.0, 120.0));
    }
    if (7.0..=11.0).contains(&t) {
        out.push((60.0 + (t - 7.0) * 100.0, 40.0, 108.0, 120.0));
        out.push((480.0 - (t - 7.0) * 100.0, 220.0, 100.0, 114.0));
    }
    out
}

/// 12 s at 10 fps: the astronaut steps in at 0.5 s and walks right until 4 s; at 7 s she is
/// back walking right while the cameraman walks left below her, until 11 s. Each appearance
/// starts a motion episode, so its first frame (faces in view) is an archived keyframe.
fn two_faces_clip(path: &Path) {
    let graph = format!(
        "[1]split=2[a0][a1];{};{};{};\
         [bg][fa]overlay=x='100+(t-0.5)*100':y=40:enable='between(t,0.5,4)'[s1];\
         [s1][fb]overlay=x='60+(t-7)*100':y=40:enable='between(t,7,11)'[s2];\
         [s2][fc]overlay=x='480-(t-7)*100':y=220:enable='between(t,7,11)'[v]",
        astronaut("a0", "fa"),
        astronaut("a1", "fb"),
        cameraman("2", "fc"),
    );
    make_clip(path, &graph, "12", &[]);
}

/// 4 s at 10 fps: the astronaut's head walking right at 100 px/s, at `(20 + 10 n, 120)` on
/// frame `n`.
fn one_face_clip(path: &Path, extra: &[&str]) {
    let graph = format!("{};[bg][f]overlay=x='20+t*100':y=120[v]", astronaut("1", "f"));
    make_clip(path, &graph, "4", extra);
}

fn one_face_at(n: usize) -> Rect {
    (20.0 + 10.0 * n as f32, 120.0, 108.0, 120.0)
}

/// Every frame of a video file, decoded by the product's ffmpeg source.
fn video_frames(path: &Path) -> Result<Vec<Frame>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = SourceConfig::new(path.to_string_lossy());
        cfg.kind = SourceKind::File;
        let mut source = crow_vision::source::open(&cfg).map_err(|e| e.to_string())?;
        let mut frames = Vec::new();
        while let Some(f) = source.next_frame().await.map_err(|e| e.to_string())? {
            frames.push(f);
        }
        Ok(frames)
    })
}

// ---------------------------------------------------------------------------------------------
// Searching what the channel left behind.

#[derive(Debug, PartialEq)]
enum Kind {
    Jpeg,
    Png,
    Webp,
    Gif,
    Video,
    Other,
}

fn sniff(b: &[u8]) -> Kind {
    if b.starts_with(&[0xff, 0xd8, 0xff]) {
        Kind::Jpeg
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Kind::Png
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Kind::Webp
    } else if b.starts_with(b"GIF8") {
        Kind::Gif
    } else if (b.len() >= 12 && &b[4..8] == b"ftyp")
        || b.starts_with(&[0x1a, 0x45, 0xdf, 0xa3])
        || (b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"AVI ")
        || b.starts_with(&[0x00, 0x00, 0x01, 0xba])
        || (b.len() > 188 && b[0] == 0x47 && b[188] == 0x47)
    {
        Kind::Video
    } else {
        Kind::Other
    }
}

/// Offsets of image signatures inside `b` (after its first byte).
fn embedded_images(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 1..b.len().saturating_sub(12) {
        let w = &b[i..];
        if w.starts_with(&[0xff, 0xd8, 0xff])
            || w.starts_with(b"\x89PNG\r\n\x1a\n")
            || (&w[..4] == b"RIFF" && &w[8..12] == b"WEBP")
        {
            out.push(i);
        }
    }
    out
}

/// What [`scan`] found.
#[derive(Debug, Default)]
struct Scan {
    /// Images checked (files, and images embedded in other files), with their paths.
    images: Vec<PathBuf>,
    /// Video frames checked.
    video_frames: usize,
    /// Faces found: where, and the box.
    faces: Vec<(String, BoundingBox)>,
    /// Image or video files that did not decode.
    broken: Vec<(PathBuf, String)>,
}

/// Runs the face detector over every image and video under `root` (gzip decompressed), and
/// over any image embedded in another file (a database page, a log).
fn scan(root: &Path) -> Scan {
    let mut s = Scan::default();
    for (path, bytes) in read_tree(root) {
        let kind = sniff(&bytes);
        match kind {
            Kind::Jpeg | Kind::Png | Kind::Webp | Kind::Gif => match decode_image(&bytes, 0) {
                Ok(frame) => {
                    for b in faces(&frame) {
                        s.faces.push((path.display().to_string(), b));
                    }
                    s.images.push(path);
                }
                Err(e) => s.broken.push((path, e.to_string())),
            },
            Kind::Video => match video_frames(&path) {
                Ok(frames) => {
                    for (n, f) in frames.iter().enumerate() {
                        for b in faces(f) {
                            s.faces.push((format!("{} frame {n}", path.display()), b));
                        }
                    }
                    s.video_frames += frames.len();
                }
                Err(e) => s.broken.push((path, e)),
            },
            Kind::Other => {
                for at in embedded_images(&bytes) {
                    // Random bytes that look like a signature do not decode; an image that does
                    // is checked like a file.
                    if let Ok(frame) = decode_image(&bytes[at..], 0) {
                        for b in faces(&frame) {
                            s.faces.push((format!("{} at byte {at}", path.display()), b));
                        }
                        s.images.push(path.clone());
                    }
                }
            }
        }
    }
    s
}

/// What in a text (a log, an API answer) looks like an image: image bytes, a `data:` URL, the
/// base64 of an image, or any long base64 run; `None` when nothing does.
fn image_data_in(text: &[u8]) -> Option<String> {
    if !embedded_images(&[&[0u8][..], text].concat()).is_empty() {
        return Some("image bytes".into());
    }
    let t = String::from_utf8_lossy(text);
    for needle in ["data:image", "/9j/", "iVBORw0KGgo", "UklGR"] {
        if t.contains(needle) {
            return Some(format!("{needle:?} (an image in base64?)"));
        }
    }
    let mut run = 0;
    for c in t.chars() {
        if c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=' {
            run += 1;
            if run >= 200 {
                return Some("a base64-like run of 200+ characters".into());
            }
        } else {
            run = 0;
        }
    }
    None
}

fn assert_no_image_data(what: &str, text: &[u8]) {
    if let Some(found) = image_data_in(text) {
        panic!("{what} holds {found}");
    }
}

// ---------------------------------------------------------------------------------------------
// Running `crow`.

/// `crow --data DATA --log LOG_FILTER ARGS` with `TMPDIR=tmp`, stderr into `log`.
fn spawn_crow(data: &Path, tmp: &Path, log: &Path, args: &[&str]) -> Child {
    Command::new(crow_bin())
        .env("CROW_MODELS", models_dir())
        .env("TMPDIR", tmp)
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(File::create(log).unwrap()))
        .spawn()
        .unwrap()
}

/// Waits up to `secs` for `child` (killing it after), returning its status (`None`: it had to be
/// killed), stdout and how long it ran.
fn wait_child(mut child: Child, secs: u64) -> (Option<ExitStatus>, String, Duration) {
    let t = Instant::now();
    let deadline = t + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    (status, out, t.elapsed())
}

/// Runs `crow ARGS` to its end (at most `secs`); returns (status, stdout, stderr, elapsed).
/// `TMPDIR` is `tmp` beside `data`.
fn run_crow(data: &Path, args: &[&str], secs: u64) -> (Option<ExitStatus>, String, String, Duration) {
    let tmp = data.with_file_name("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let log = data.with_file_name("crow-stderr.log");
    let child = spawn_crow(data, &tmp, &log, args);
    let (status, out, took) = wait_child(child, secs);
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    std::fs::remove_file(&log).unwrap();
    (status, out, err, took)
}

fn report_of(stdout: &str) -> Value {
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    v["report"].clone()
}

/// The org's frame events through the API, every page.
fn all_frame_events(base: &str, api_key: &str) -> (Vec<Value>, String) {
    let mut out = Vec::new();
    let mut bodies = String::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/cctv/events?limit=100&cursor={c}"),
            None => "/api/v1/cctv/events?limit=100".to_owned(),
        };
        let (status, body) = api_get(base, api_key, &path);
        assert_eq!(status, 200, "{body}");
        bodies.push_str(&body.to_string());
        out.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (out, bodies),
        }
    }
}

/// Archived objects of the channel (`objects/cctv-frames/...`), as (path, bytes).
fn archive(data: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let root = data.join("objects").join("cctv-frames");
    let mut v = read_tree(&root);
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn zones_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/zones.json")
}

// ---------------------------------------------------------------------------------------------
// The privacy proof.

#[test]
fn no_face_survives_anywhere_the_channel_writes() {
    if !vision_models_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let clip = work.path().join("two-faces.mp4");
    two_faces_clip(&clip);

    // Non-vacuous: the detector finds both faces in the input, where they were pasted.
    let input = video_frames(&clip).unwrap();
    assert_eq!(input.len(), 120);
    let (mut shown, mut found) = (0, 0);
    let mut found_cameraman = 0;
    for (n, f) in input.iter().enumerate() {
        let got = faces(f);
        for patch in two_faces_at(n as f32 / 10.0) {
            shown += 1;
            let hit = got.iter().any(|b| overlaps(b, patch));
            found += hit as usize;
            found_cameraman += (hit && patch.1 > 200.0) as usize;
        }
    }
    eprintln!("input: {found} of {shown} face appearances detected ({found_cameraman} of the cameraman)");
    assert!(
        found * 10 >= shown * 9,
        "the detector finds only {found} of {shown} faces in the input"
    );
    assert!(
        found_cameraman >= 30,
        "the cameraman is found on {found_cameraman} frames only"
    );

    let data = work.path().join("data");
    let tmp = work.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let org = create_org(&data, "Cameras");
    let log = work.path().join("video.log");
    let child = spawn_crow(
        &data,
        &tmp,
        &log,
        &[
            "--log",
            "debug",
            "video",
            clip.to_str().unwrap(),
            "--org",
            &org.org_id,
            "--camera",
            "entrance",
            "--zones",
            zones_example().to_str().unwrap(),
            "--json",
        ],
    );
    let (status, stdout, took) = wait_child(child, 180);
    let video_log = std::fs::read(&log).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "crow video failed ({status:?} after {took:?}):\n{}",
        String::from_utf8_lossy(&video_log)
    );
    eprintln!("crow video: {took:?}: {stdout}");
    let report = report_of(&stdout);
    assert_eq!(report["frames"], 120, "{report}");
    let masked = report["masked_regions"].as_u64().unwrap();
    let archived = report["archived"].as_u64().unwrap();
    assert!(masked >= 100, "the channel masked only {masked} face regions: {report}");
    assert!(archived >= 2, "{report}");
    let events = report["events"].as_u64().unwrap();
    assert!(
        events > 0 && report["line_in"].as_u64().unwrap() + report["line_out"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(
        String::from_utf8_lossy(&video_log).contains("DEBUG"),
        "the debug log was captured"
    );

    // Keyframes were archived while faces were in view (the first frame of each appearance):
    // the archive holds masked pictures of faces, not just of the table.
    let first_ts = report["first_ts"].as_i64().unwrap();
    let mut keyframes_with_faces = 0;
    for (path, bytes) in archive(&data) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            path.to_string_lossy()
                .contains(&format!("cctv-frames/{}/entrance/", org.org_id)),
            "{}",
            path.display()
        );
        if name.contains("heatmap") {
            assert_eq!(sniff(&bytes), Kind::Png, "{name}");
            continue;
        }
        assert_eq!(sniff(&bytes), Kind::Jpeg, "{name}");
        let ts: i64 = name.split('.').next().unwrap().parse().unwrap();
        let n = ((ts - first_ts) as f64 / 100.0).round() as usize;
        assert!(n < input.len(), "{name}: keyframe of frame {n}");
        if !two_faces_at(n as f32 / 10.0).is_empty() {
            keyframes_with_faces += 1;
            assert!(!faces(&input[n]).is_empty(), "input frame {n} shows a face");
        }
    }
    assert!(
        keyframes_with_faces >= 2,
        "{keyframes_with_faces} keyframes with faces in view"
    );

    // The API: every event stored, each keyframe key pointing at an archived object.
    let srv = ServerProcess::start_logging(&data, 0, "debug", &[]);
    let (stored, bodies) = all_frame_events(&srv.base, &org.api_key);
    assert_eq!(stored.len() as u64, events, "{bodies}");
    let line_in = stored.iter().filter(|e| e["kind"] == "line_in").count() as u64;
    assert_eq!(line_in, report["line_in"].as_u64().unwrap(), "{bodies}");
    let (status, by_kind) = api_get(
        &srv.base,
        &org.api_key,
        "/api/v1/cctv/events?kind=motion&camera=entrance",
    );
    assert_eq!(status, 200, "{by_kind}");
    assert!(!by_kind["data"].as_array().unwrap().is_empty(), "{by_kind}");
    let mut keyed = 0;
    for e in &stored {
        if let Some(key) = e["frame_key"].as_str() {
            keyed += 1;
            assert!(
                data.join("objects").join(key).is_file(),
                "{key} is not in the object store"
            );
        }
    }
    assert!(keyed > 0, "no event points at a keyframe: {bodies}");
    let metrics = client()
        .get(format!("{}/metrics", srv.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let mut srv = srv;
    srv.stop_ref();
    let serve_log = srv.log();

    // Now everything the channel wrote, read back and searched for faces.
    let stored_scan = scan(&data);
    let tmp_scan = scan(&tmp);
    eprintln!(
        "data: {} images ({} archived), {} video frames; TMPDIR: {} files",
        stored_scan.images.len(),
        archive(&data).len(),
        stored_scan.video_frames,
        read_tree(&tmp).len()
    );
    for s in [&stored_scan, &tmp_scan] {
        assert!(
            s.faces.is_empty(),
            "faces found in what the channel wrote: {:?}",
            s.faces
        );
        assert!(s.broken.is_empty(), "undecodable images or videos: {:?}", s.broken);
    }
    assert!(
        stored_scan.images.len() as u64 >= archived,
        "every archived keyframe was checked: {:?}",
        stored_scan.images
    );
    for (what, text) in [
        ("the crow video log", video_log.as_slice()),
        ("the crow serve log", serve_log.as_bytes()),
        ("the API answers", bodies.as_bytes()),
        ("the metrics", metrics.as_bytes()),
    ] {
        assert_no_image_data(what, text);
    }
}

/// The search above can fail: a face leaked as a picture, inside a database-like file, gzipped,
/// as a video, or as base64 in a log is found.
#[test]
fn the_leak_search_finds_a_face_in_every_form() {
    if !vision_models_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let png = std::fs::read(images().join("astronaut.png")).unwrap();
    let leak = dir.path().join("leak");
    std::fs::create_dir_all(leak.join("deep")).unwrap();
    std::fs::write(leak.join("deep/0001.bin"), &png).unwrap();
    let mut page = vec![0u8; 4096];
    page.extend_from_slice(&png);
    page.extend_from_slice(&[0u8; 100]);
    std::fs::write(leak.join("store.sqlite"), &page).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&png).unwrap();
    std::fs::write(leak.join("raw.gz"), gz.finish().unwrap()).unwrap();
    one_face_clip(&leak.join("clip.mp4"), &["-t", "0.5"]);
    let s = scan(&leak);
    let mut wheres: Vec<&str> = s.faces.iter().map(|(w, _)| w.as_str()).collect();
    wheres.dedup();
    for what in ["0001.bin", "store.sqlite at byte 4096", "raw.gz", "clip.mp4 frame 0"] {
        assert!(
            wheres.iter().any(|w| w.contains(what)),
            "no face found in {what}: {wheres:?}"
        );
    }
    let b64 = format!(
        "DEBUG frame=data {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png[..300])
    );
    assert!(
        image_data_in(b64.as_bytes()).is_some(),
        "base64 image data in a log is caught"
    );
    assert!(image_data_in(&png[..64]).is_some(), "image bytes in a log are caught");
    let long = format!("token={}", "QUJD".repeat(60));
    assert!(image_data_in(long.as_bytes()).is_some(), "a long base64 run is caught");
    assert_no_image_data(
        "a clean log",
        b"INFO camera=cam-1 frames=120 key=cctv-frames/org_x/cam-1/0001.jpg",
    );
}

// ---------------------------------------------------------------------------------------------
// crow blur.

#[test]
fn crow_blur_hides_the_face_of_a_picture_in_every_mode() {
    if !vision_models_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let astronaut = images().join("astronaut.png");
    let original = decode_image(&std::fs::read(&astronaut).unwrap(), 0).unwrap();
    assert_eq!(
        faces(&original).len(),
        1,
        "the astronaut's face is found in the original"
    );
    for (mode, ext) in [("blur", "jpg"), ("pixelate", "png"), ("solid", "webp")] {
        let out = dir.path().join(format!("astronaut-{mode}.{ext}"));
        let printed = crow(
            dir.path(),
            &[
                "blur",
                astronaut.to_str().unwrap(),
                out.to_str().unwrap(),
                "--mode",
                mode,
            ],
        );
        assert!(printed.contains("1 face(s) masked"), "{printed}");
        let frame = decode_image(&std::fs::read(&out).unwrap(), 0).unwrap();
        assert_eq!((frame.width, frame.height), (original.width, original.height));
        let left = checker().detect(&frame).unwrap();
        assert!(left.iter().all(|b| b.score <= FACE), "{mode}: a face is left: {left:?}");
    }
    // No face, nothing masked.
    let coffee = images().join("coffee.png");
    let out = dir.path().join("coffee.png");
    let printed = crow(dir.path(), &["blur", coffee.to_str().unwrap(), out.to_str().unwrap()]);
    assert!(printed.contains("0 face(s) masked"), "{printed}");
}

#[test]
fn crow_blur_masks_every_frame_of_a_video() {
    if !vision_models_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("face.mp4");
    one_face_clip(&clip, &[]);
    let input = video_frames(&clip).unwrap();
    assert_eq!(input.len(), 40);
    let found = input
        .iter()
        .enumerate()
        .filter(|(n, f)| faces(f).iter().any(|b| overlaps(b, one_face_at(*n))))
        .count();
    assert!(found >= 38, "the face is found in {found} of 40 input frames");

    for (mode, extra) in [("blur", None), ("pixelate", Some("--every-frame"))] {
        let out = dir.path().join(format!("masked-{mode}.mp4"));
        let mut args = vec!["blur", clip.to_str().unwrap(), out.to_str().unwrap(), "--mode", mode];
        args.extend(extra);
        let printed = crow(dir.path(), &args);
        assert!(printed.contains("40 frames"), "{printed}");
        let output = video_frames(&out).unwrap();
        assert_eq!(output.len(), input.len(), "{mode}: the frame count changed");
        assert_eq!((output[0].width, output[0].height), (640, 360));
        for (n, f) in output.iter().enumerate() {
            let left = faces(f);
            assert!(
                left.is_empty(),
                "{mode}: frame {n} of the output shows a face: {left:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clear errors.

/// No face in anything under the data directory or the `TMPDIR` of [`run_crow`].
fn assert_nothing_unmasked(data: &Path) {
    for dir in [data.to_path_buf(), data.with_file_name("tmp")] {
        let s = scan(&dir);
        assert!(s.faces.is_empty() && s.broken.is_empty(), "{}: {s:?}", dir.display());
    }
}

#[test]
fn a_corrupt_picture_is_a_clear_error_and_leaves_no_output() {
    if !vision_models_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let png = std::fs::read(images().join("astronaut.png")).unwrap();
    let cut = dir.path().join("cut.png");
    std::fs::write(&cut, &png[..png.len() / 2]).unwrap();
    let out = dir.path().join("cut-out.png");
    let (status, _, err, took) = run_crow(&data, &["blur", cut.to_str().unwrap(), out.to_str().unwrap()], 60);
    eprintln!("corrupt png ({took:?}): {err}");
    assert!(status.is_some_and(|s| !s.success()), "{status:?}: {err}");
    assert!(
        err.contains("cut.png") && err.contains("unexpected end of file"),
        "the error names the file and the problem: {err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("cut-out"))
        .collect();
    assert!(left.is_empty(), "an output was written for a corrupt input: {left:?}");
}

/// Half a recording whose mp4 index (moov) is at the end: not one frame can be read. That is
/// an error naming the file and the problem, not a successful run of no frames.
#[test]
fn a_video_cut_before_its_index_is_a_clear_error() {
    if !vision_models_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = create_org(&data, "Errors");
    let whole = dir.path().join("whole.mp4");
    one_face_clip(&whole, &[]);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("no-index.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (status, stdout, err, took) = run_crow(
        &data,
        &["video", cut.to_str().unwrap(), "--org", &org.org_id, "--json"],
        60,
    );
    eprintln!("no-index.mp4 ({took:?}): {status:?}\n{stdout}\n{err}");
    assert!(
        status.is_some_and(|s| !s.success()),
        "a video without a readable frame is reported as a success ({status:?}): {stdout}\n{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("no-index.mp4") && last.contains("moov atom not found"),
        "the error names the file and the problem: {err}"
    );
    assert!(archive(&data).is_empty());
}

/// A recording with its index up front (faststart) cut at 60 %: the part before the cut is
/// processed and masked, and the cut is reported (naming the file), not passed over in silence.
#[test]
fn a_truncated_faststart_video_is_processed_up_to_the_cut_and_reported() {
    if !vision_models_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = create_org(&data, "Errors");
    let whole = dir.path().join("whole.mp4");
    one_face_clip(&whole, &["-g", "10", "-movflags", "+faststart"]);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut-faststart.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let (status, stdout, err, took) = run_crow(
        &data,
        &["video", cut.to_str().unwrap(), "--org", &org.org_id, "--json"],
        60,
    );
    eprintln!("cut-faststart.mp4 ({took:?}): {status:?}\n{stdout}\n{err}");
    let status = status.expect("crow video hung on a truncated file");
    assert!(
        err.contains("cut-faststart.mp4"),
        "the cut is reported, naming the file: {err}"
    );
    assert!(
        err.contains("partial file") || err.contains("Invalid data"),
        "the problem is named: {err}"
    );
    if status.success() {
        // Processed up to the cut.
        let frames = report_of(&stdout)["frames"].as_u64().unwrap();
        assert!((10..40).contains(&frames), "{stdout}");
    }
    let archived = archive(&data);
    assert!(!archived.is_empty(), "the part before the cut was archived");
    assert_nothing_unmasked(&data);
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

#[test]
fn an_unreachable_stream_gives_up_after_max_stalls_with_a_clear_error() {
    if !vision_models_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = create_org(&data, "Unreachable");
    let port = closed_port();
    for uri in [
        format!("rtsp://admin:s3cret@127.0.0.1:{port}/x"),
        format!("http://admin:s3cret@127.0.0.1:{port}/stream"),
    ] {
        let (status, _, err, took) = run_crow(
            &data,
            &[
                "video",
                &uri,
                "--org",
                &org.org_id,
                "--stall-secs",
                "1",
                "--max-stalls",
                "2",
            ],
            60,
        );
        eprintln!("{uri} ({took:?}): {err}");
        assert!(status.is_some_and(|s| !s.success()), "{uri}: {status:?}: {err}");
        assert!(took < Duration::from_secs(20), "{uri}: gave up after {took:?}");
        assert!(
            err.contains("no frames for 1 s") && err.contains("2 times in a row"),
            "{err}"
        );
        assert!(
            err.contains(&format!("127.0.0.1:{port}")),
            "the error names the stream: {err}"
        );
        assert!(!err.contains("s3cret"), "the password leaked: {err}");
    }
    assert!(archive(&data).is_empty(), "nothing was archived from no frames");
    assert_nothing_unmasked(&data);
}

// ---------------------------------------------------------------------------------------------
// A live MJPEG camera that goes away and comes back.

/// An MJPEG camera on 127.0.0.1: `multipart/x-mixed-replace` JPEGs at 10 fps, 160×120, a white
/// square sliding over a plain background of `rgb`.
struct Camera {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Camera {
    fn start(port: u16, rgb: [u8; 3]) -> Camera {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let flag = flag.clone();
                        conns.push(std::thread::spawn(move || serve_mjpeg(s, rgb, &flag)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            drop(listener);
            for c in conns {
                let _ = c.join();
            }
        });
        Camera {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listener and every connection.
    fn kill(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn camera_jpeg(rgb: [u8; 3], k: u32) -> Vec<u8> {
    let mut img = image::RgbImage::from_pixel(160, 120, image::Rgb(rgb));
    let x0 = 10 + (k * 7) % 110;
    for y in 40..80 {
        for x in x0..x0 + 40 {
            img.put_pixel(x, y, image::Rgb([255, 255, 255]));
        }
    }
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .unwrap();
    out
}

fn serve_mjpeg(mut s: TcpStream, rgb: [u8; 3], stop: &AtomicBool) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf);
    if s
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return;
    }
    let mut k = 0;
    while !stop.load(Ordering::SeqCst) {
        let jpeg = camera_jpeg(rgb, k);
        let head = format!(
            "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        if s.write_all(head.as_bytes()).is_err() || s.write_all(&jpeg).is_err() || s.write_all(b"\r\n").is_err() {
            return;
        }
        k += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
}

/// Colors of the archived keyframes (their top-left pixel), oldest first.
fn keyframe_colors(data: &Path) -> Vec<[u8; 3]> {
    archive(data)
        .into_iter()
        .filter(|(p, b)| !p.to_string_lossy().contains("heatmap") && sniff(b) == Kind::Jpeg)
        .filter_map(|(_, b)| decode_image(&b, 0).ok())
        .map(|f| [f.rgb[0], f.rgb[1], f.rgb[2]])
        .collect()
}

fn is_red(c: &[u8; 3]) -> bool {
    c[0] > 150 && c[1] < 80 && c[2] < 80
}

fn is_blue(c: &[u8; 3]) -> bool {
    c[2] > 150 && c[0] < 80 && c[1] < 80
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

#[test]
fn a_live_mjpeg_camera_that_restarts_is_resumed_and_ctrl_c_stops_cleanly() {
    if !vision_models_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let org = create_org(&data, "Live");
    let red = Camera::start(0, [220, 30, 30]);
    let port = red.port;
    let url = format!("http://127.0.0.1:{port}/stream");
    let log = dir.path().join("live.log");
    let mut child = spawn_crow(
        &data,
        &tmp,
        &log,
        &[
            "video",
            &url,
            "--org",
            &org.org_id,
            "--camera",
            "live",
            "--stall-secs",
            "1",
            "--json",
        ],
    );
    let alive = |child: &mut Child| {
        if let Some(s) = child.try_wait().unwrap() {
            panic!(
                "crow video exited ({s}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    wait_for(90, "a keyframe of the first camera", || {
        alive(&mut child);
        keyframe_colors(&data).iter().any(is_red)
    });
    red.kill();
    wait_for(20, "the stall to be reported", || {
        alive(&mut child);
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("waiting for the source to come back")
    });
    // The camera comes back on the same port, blue now.
    let blue = Camera::start(port, [30, 30, 220]);
    wait_for(30, "a keyframe of the restarted camera", || {
        alive(&mut child);
        keyframe_colors(&data).iter().any(is_blue)
    });
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "INT");
    let (status, stdout, took) = wait_child(child, 30);
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "crow video did not stop cleanly on SIGINT ({status:?} after {took:?}):\n{err}"
    );
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    blue.kill();
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{err}"));
    let report = &v["report"];
    eprintln!("live: {v}");
    assert!(report["stalls"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["frames"].as_u64().unwrap() >= 4, "{report}");
    let events = report["events"].as_u64().unwrap();
    assert!(events > 0, "{report}");
    assert!(v["jobs_run"].as_u64().unwrap() >= 1, "{v}");
    let colors = keyframe_colors(&data);
    assert!(
        colors.iter().position(is_red) < colors.iter().position(is_blue),
        "red keyframes come before blue ones: {colors:?}"
    );

    // The events were stored (the worker ran before crow video exited).
    let srv = ServerProcess::start(&data, 0, &[]);
    let (stored, bodies) = all_frame_events(&srv.base, &org.api_key);
    assert_eq!(stored.len() as u64, events, "{bodies}");
    assert!(stored.iter().all(|e| e["camera_id"] == "live"), "{bodies}");
    srv.stop();
}

/// SIGTERM (what systemd, Docker and Kubernetes send) stops `crow video` as Ctrl-C does: the
/// pending events are flushed and stored, the report printed, exit 0. (`crow serve` already
/// handles both signals.)
#[test]
fn sigterm_stops_a_live_camera_cleanly() {
    if !vision_models_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let org = create_org(&data, "Term");
    let cam = Camera::start(0, [220, 30, 30]);
    let url = format!("http://127.0.0.1:{}/stream", cam.port);
    let log = dir.path().join("term.log");
    let child = spawn_crow(&data, &tmp, &log, &["video", &url, "--org", &org.org_id, "--json"]);
    wait_for(90, "a keyframe", || !keyframe_colors(&data).is_empty());
    signal(&child, "TERM");
    let (status, stdout, took) = wait_child(child, 30);
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    cam.kill();
    assert!(
        status.is_some_and(|s| s.success()),
        "crow video did not stop cleanly on SIGTERM ({status:?} after {took:?}):\n{err}"
    );
    let report = report_of(&stdout);
    assert!(report["events"].as_u64().unwrap() > 0, "{report}");
}

// ---------------------------------------------------------------------------------------------
// Help and configuration errors.

#[test]
fn help_names_the_options_and_a_bad_zones_file_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let help = crow(dir.path(), &["video", "--help"]);
    for opt in [
        "--org",
        "--camera",
        "--zones",
        "--fps",
        "--stall-secs",
        "--max-stalls",
        "--json",
        "--no-archive",
        "--format",
        "--mode",
        "--every-frame",
        "rtsp://",
    ] {
        assert!(
            help.contains(opt),
            "`crow video --help` does not mention {opt}:\n{help}"
        );
    }
    let help = crow(dir.path(), &["blur", "--help"]);
    for opt in [
        "--mode",
        "blur",
        "pixelate",
        "solid",
        "--every-frame",
        "--padding",
        "--threshold",
    ] {
        assert!(help.contains(opt), "`crow blur --help` does not mention {opt}:\n{help}");
    }

    let data = dir.path().join("data");
    let org = create_org(&data, "Zones");
    let clip = dir.path().join("clip.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=5",
        "-t",
        "1",
        clip.to_str().unwrap(),
    ]);
    for (zones, field) in [
        (
            r#"{"zones": [{"name": "till", "polygon": [[0.1, 0.1], [0.5, 0.1]]}]}"#,
            "zones[0].polygon",
        ),
        (
            r#"{"lines": [{"name": "door", "from": [0.5, 0.0], "to": [0.5, 0.0]}]}"#,
            "lines[0]",
        ),
        (
            r#"{"lines": [{"name": "door", "from": [0.5, 0.0], "to": [1.5, 1.0]}]}"#,
            "lines[0]",
        ),
        (r#"{"zones": [], "dwell_min_secs": -1}"#, "dwell_min_secs"),
        (r#"{"zone": []}"#, "unknown field `zone`"),
        (
            r#"{"lines": [{"name": "door", "from": [0.5, 0.0]}]}"#,
            "missing field `to`",
        ),
    ] {
        let file = dir.path().join("zones.json");
        std::fs::write(&file, zones).unwrap();
        let (status, _, err, _) = run_crow(
            &data,
            &[
                "video",
                clip.to_str().unwrap(),
                "--org",
                &org.org_id,
                "--zones",
                file.to_str().unwrap(),
            ],
            60,
        );
        assert!(status.is_some_and(|s| !s.success()), "{zones}: {status:?}");
        assert!(err.contains(field), "{zones}: the error does not name {field}: {err}");
    }
    assert!(archive(&data).is_empty(), "nothing ran with a bad zones file");
}
