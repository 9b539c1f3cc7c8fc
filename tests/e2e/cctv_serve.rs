//! `crow serve --cameras FILE`: the server runs the cameras of a `[cctv]` config next to its
//! worker; their events are served by `GET /api/v1/cctv/events`.

use std::path::Path;
use std::process::Command;

use crow_e2e::target::free_port;
use crow_e2e::*;

/// 12 s at 10 frames/s, 640×360: one face walks in (left to right) from 1 s to 5 s, another
/// walks out (right to left) from 6 s to 10 s.
fn two_walkers_clip(out: &Path) {
    let img = |n: &str| models_dir().join("images").join(n);
    let filter = "[0]scale=640:360,setsar=1[bg];[1]crop=150:190:150:20,scale=90:114[a];\
        [2]crop=110:130:190:60,scale=90:106[c];\
        [bg][a]overlay=x='if(between(t,1,5),(t-1)*170-90,-400)':y=150:eval=frame[v1];\
        [v1][c]overlay=x='if(between(t,6,10),640-(t-6)*170,-400)':y=140:eval=frame[v]";
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y"])
        .args(["-loop", "1", "-framerate", "10", "-i"])
        .arg(img("coffee.png"))
        .args(["-loop", "1", "-framerate", "10", "-i"])
        .arg(img("astronaut.png"))
        .args(["-loop", "1", "-framerate", "10", "-i"])
        .arg(img("camera.png"))
        .args(["-filter_complex", filter, "-map", "[v]", "-t", "12", "-r", "10"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(out)
        .status()
        .expect("ffmpeg runs (bash scripts/ffmpeg.sh)");
    assert!(status.success());
}

#[test]
fn the_server_runs_its_cameras_and_serves_their_events() {
    if !vision_models_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = create_org(&data, "Shop");
    let clip = dir.path().join("entrance.mp4");
    two_walkers_clip(&clip);
    let zones = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/zones.json");
    let cameras = dir.path().join("cameras.toml");
    std::fs::write(
        &cameras,
        format!(
            "org = \"{}\"\n[[cameras]]\nid = \"entrance\"\nzones = {:?}\nsource = {{ uri = {:?}, kind = \"file\" }}\n",
            org.org_id,
            zones.to_str().unwrap(),
            clip.to_str().unwrap()
        ),
    )
    .unwrap();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let server = ServerProcess::start(&data, free_port(), &["--cameras", cameras.to_str().unwrap()]);
    let base = format!("http://127.0.0.1:{}", server.port());
    let count = |kind: &str| {
        let (status, body) = api_get(
            &base,
            &org.api_key,
            &format!("/api/v1/cctv/events?kind={kind}&limit=1000"),
        );
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().unwrap().clone()
    };
    wait_for(90, "the camera's crossings to be stored", || {
        count("line_in").len() == 1 && count("line_out").len() == 1
    });
    // One in, one out, stamped from when the camera started, on the door line.
    let crossing = &count("line_in")[0];
    assert_eq!(crossing["zone"], "door");
    assert_eq!(crossing["camera_id"], "entrance");
    let ts = crow_core::time::parse_timestamp(crossing["timestamp"].as_str().unwrap()).unwrap();
    assert!(ts >= started - 1_000, "{crossing}");
    // Motion episodes point at masked keyframes in the archive.
    let motion = count("motion");
    assert!(!motion.is_empty());
    let key = motion[0]["frame_key"].as_str().unwrap();
    assert!(data.join("objects").join(key).is_file(), "{key}");
    // Another org's key sees none of it.
    let other = create_org(&data, "Other");
    let (_, body) = api_get(&base, &other.api_key, "/api/v1/cctv/events");
    assert_eq!(body["data"].as_array().unwrap().len(), 0);
    // The write key cannot read.
    let (status, _) = api_get(&base, &org.write_key, "/api/v1/cctv/events");
    assert_eq!(status, 401);
    server.stop();
}

#[test]
fn a_bad_camera_config_fails_the_start_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Shop");
    let cameras = dir.path().join("cameras.toml");
    std::fs::write(
        &cameras,
        format!(
            "org = \"{}\"\n[[cameras]]\nid = \"front door\"\nsource = {{ uri = \"rtsp://10.0.0.5/s\" }}\n",
            org.org_id
        ),
    )
    .unwrap();
    let out = Command::new(crow_bin())
        .env("CROW_MODELS", models_dir())
        .arg("--data")
        .arg(dir.path())
        .args(["serve", "--addr", "127.0.0.1:0", "--cameras", cameras.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("camera.id") && err.contains("front door"), "{err}");
}
