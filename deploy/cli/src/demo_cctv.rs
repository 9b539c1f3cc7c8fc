//! The demo's CCTV part: a generated entrance clip (two people walking through a shop door in
//! opposite directions, built by ffmpeg from scikit-image's test photos) through the real
//! channel: motion gating, CenterFace, tracking, masking, line counting, the archive and
//! `process-video`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use crow_core::video::Retention;
use crow_ingest::cctv::CameraReport;
use crow_server::Backends;
use crow_server::cctv::{CameraSpec, FaceSpec, run_camera};
use crow_vision::source::SourceKind;
use crow_vision::zones::ZonesConfig;

/// The demo camera's zones: the door line in the middle, the counter on the right.
const ZONES: &str = r#"{
  "zones": [{ "name": "counter", "polygon": [[0.55, 0.3], [1.0, 0.3], [1.0, 1.0], [0.55, 1.0]] }],
  "lines": [{ "name": "door", "from": [0.5, 0.0], "to": [0.5, 1.0] }],
  "dwell_min_secs": 1.0
}"#;

/// Writes the clip (once): 12 s at 10 frames/s, 640×360, the coffee photo as the shop floor;
/// the astronaut walks in (left to right) from 1 s to 5 s, the cameraman walks out (right to
/// left) from 6 s to 10 s.
pub fn make_clip(models: &Path, out: &Path) -> Result<()> {
    if out.is_file() {
        return Ok(());
    }
    let img = |n: &str| models.join("images").join(n);
    for n in ["coffee.png", "astronaut.png", "camera.png"] {
        if !img(n).is_file() {
            bail!("{} is missing (run `make models`)", img(n).display());
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let filter = "[0]scale=640:360,setsar=1[bg];\
        [1]crop=150:190:150:20,scale=90:114[a];\
        [2]crop=110:130:190:60,scale=90:106[c];\
        [bg][a]overlay=x='if(between(t,1,5),(t-1)*170-90,-400)':y=150:eval=frame[v1];\
        [v1][c]overlay=x='if(between(t,6,10),640-(t-6)*170,-400)':y=140:eval=frame[v]";
    let part = out.with_extension("part.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-loop", "1", "-framerate", "10", "-i"])
        .arg(img("coffee.png"))
        .args(["-loop", "1", "-framerate", "10", "-i"])
        .arg(img("astronaut.png"))
        .args(["-loop", "1", "-framerate", "10", "-i"])
        .arg(img("camera.png"))
        .args(["-filter_complex", filter, "-map", "[v]", "-t", "12", "-r", "10"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&part)
        .status()
        .context("running ffmpeg (install it with `bash scripts/ffmpeg.sh`)")?;
    if !status.success() {
        bail!("ffmpeg could not build the demo clip ({status})");
    }
    std::fs::rename(&part, out)?;
    Ok(())
}

/// Runs the clip through the channel for `org`. The server's worker stores the events.
pub async fn run(b: &Backends, models: &Path, data_dir: &Path, org: &str) -> Result<(CameraReport, PathBuf)> {
    let clip = data_dir.join("demo-cctv").join("entrance.mp4");
    make_clip(models, &clip)?;
    let mut spec = CameraSpec::new("entrance", &clip.to_string_lossy());
    spec.source.kind = SourceKind::File;
    spec.pipeline.zones = serde_json::from_str::<ZonesConfig>(ZONES)?;
    spec.archive.retention = Retention {
        max_bytes: 64 << 20,
        max_age_secs: 7 * 86_400,
    };
    let report = run_camera(
        b,
        org,
        &spec,
        &FaceSpec::default(),
        None,
        models,
        &|| false,
        &mut |_| {},
    )
    .await?;
    Ok((report, clip))
}
