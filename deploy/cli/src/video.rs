//! `crow blur` and `crow video`: the CCTV channel from the command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;
use crow_core::video::{ImageFormat, MaskMode, MaskSpec, Retention};
use crow_ingest::cctv::CameraReport;
use crow_server::Backends;
use crow_server::cctv::{ArchiveSpec, CameraSpec, FaceSpec, PeopleSpec, load_face_detector, run_camera};
use crow_vision::blur;
use crow_vision::detect::CenterFace;
use crow_vision::pipeline::PipelineConfig;
use indicatif::{ProgressBar, ProgressStyle};

/// Face detector options shared by `blur` and `video`.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectArgs {
    /// The CenterFace ONNX model [default: MODELS/centerface/centerface.onnx].
    #[arg(long)]
    pub face_model: Option<PathBuf>,
    /// Faces scoring above this are masked (0–1).
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Scale frames down to this longer side before detection (faster, misses tiny faces).
    #[arg(long)]
    pub max_side: Option<u32>,
    /// How faces are hidden: blur, pixelate or solid.
    #[arg(long, default_value = "blur")]
    pub mode: MaskMode,
    /// Each face box is grown by this factor around its centre before masking.
    #[arg(long, default_value_t = 1.3)]
    pub padding: f32,
    /// Run the detector on every frame (no motion gating).
    #[arg(long)]
    pub every_frame: bool,
}

impl DetectArgs {
    /// The face detector settings.
    pub fn face_spec(&self) -> FaceSpec {
        FaceSpec {
            model: self.face_model.clone(),
            threshold: self.threshold,
            max_side: self.max_side,
            intra_threads: 0,
        }
    }

    /// Loads CenterFace as these options say.
    pub fn load(&self, models: &Path) -> Result<CenterFace> {
        Ok(load_face_detector(&self.face_spec(), models)?)
    }

    /// The mask settings.
    pub fn mask_spec(&self) -> MaskSpec {
        MaskSpec {
            mode: self.mode,
            padding: self.padding,
        }
    }
}

/// `crow blur IN OUT`.
pub async fn blur(models: &Path, input: &Path, output: &Path, detect: &DetectArgs, quality: u8) -> Result<()> {
    let detector = detect.load(models)?;
    if blur::is_image_path(input) {
        let n = blur::blur_image(&detector, input, output, &detect.mask_spec(), quality).await?;
        println!("{}: {n} face(s) masked → {}", input.display(), output.display());
        return Ok(());
    }
    // A bar when ffprobe knows the frame count, else a spinner.
    let bar = match blur::frame_count(input) {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} frames, eta {eta} · {msg}").expect("valid template"),
        ),
        None => ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template("{spinner} {pos} frames · {msg}").expect("valid template")),
    };
    let started = Instant::now();
    let config = PipelineConfig {
        detect_all: detect.every_frame,
        mask: detect.mask_spec(),
        ..PipelineConfig::default()
    };
    let mut progress = |frames: u64, s: &crow_vision::pipeline::PipelineStats| {
        bar.set_position(frames);
        if frames.is_multiple_of(10) {
            bar.set_message(format!(
                "{:.1} frames/s, detector on {}, {} face regions masked",
                frames as f64 / started.elapsed().as_secs_f64(),
                s.analyzed,
                s.masked_regions
            ));
        }
    };
    let r = blur::blur_video(detector, input, output, config, &mut progress).await?;
    bar.finish_and_clear();
    println!(
        "{}: {} frames in {:.1} s, detector on {}, {} face regions masked → {}",
        input.display(),
        r.frames,
        started.elapsed().as_secs_f64(),
        r.stats.analyzed,
        r.stats.masked_regions,
        output.display()
    );
    Ok(())
}

/// `crow video` options.
#[derive(Debug, Clone, clap::Args)]
pub struct VideoArgs {
    /// A video file, an image folder, an rtsp:// or http(s):// stream (MJPEG or anything ffmpeg
    /// reads).
    pub source: String,
    /// Org the events belong to.
    #[arg(long)]
    pub org: String,
    /// Camera id (1–64 of A-Z a-z 0-9 _ - .) [default: cam-1].
    #[arg(long, default_value = "cam-1")]
    pub camera: String,
    /// Zones and counting lines (JSON, normalized coordinates; see examples/zones.json).
    #[arg(long)]
    pub zones: Option<PathBuf>,
    /// Frames per second to extract (default: the source's own rate).
    #[arg(long)]
    pub fps: Option<f64>,
    /// A person detector (YOLOv8-style ONNX export, COCO class 0 = person) to count people with;
    /// without one, people are counted from moving blobs. Other layouts: a `[people]` table in
    /// `crow serve --cameras`.
    #[arg(long)]
    pub person_model: Option<PathBuf>,
    #[command(flatten)]
    pub detect: DetectArgs,
    /// Archive format for masked keyframes: jpeg or webp.
    #[arg(long, default_value = "jpeg")]
    pub format: ImageFormat,
    /// Archive quality (1–100).
    #[arg(long, default_value_t = 80)]
    pub quality: u8,
    /// Archive no keyframes.
    #[arg(long)]
    pub no_archive: bool,
    /// Archive byte budget: oldest objects go first beyond it.
    #[arg(long, default_value_t = 1 << 30)]
    pub max_bytes: u64,
    /// Archive age limit in days (0: none).
    #[arg(long, default_value_t = 30)]
    pub max_age_days: u64,
    /// A live source that delivers nothing for this long is reported (and waited on).
    #[arg(long, default_value_t = 10)]
    pub stall_secs: u64,
    /// Give up after this many stalls in a row (default: wait for ever).
    #[arg(long)]
    pub max_stalls: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs one camera into the data directory, then `process-video` (unless `crow serve` is the
/// worker). Returns the report and how many jobs this process ran.
pub async fn run_video(b: &Backends, models: &Path, args: &VideoArgs) -> Result<(CameraReport, usize)> {
    crate::require_org(b, &args.org).await?;
    let mut spec = CameraSpec::new(&args.camera, &args.source);
    spec.source.fps = args.fps;
    spec.source.stall_secs = args.stall_secs;
    spec.zones = args.zones.clone();
    spec.pipeline.detect_all = args.detect.every_frame;
    spec.pipeline.mask = args.detect.mask_spec();
    spec.archive = ArchiveSpec {
        enabled: !args.no_archive,
        format: args.format,
        quality: args.quality,
        max_width: None,
        retention: Retention {
            max_bytes: args.max_bytes,
            max_age_secs: args.max_age_days * 86_400,
        },
    };
    spec.max_stalls = args.max_stalls;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // Ctrl-C or SIGTERM stops between frames and flushes; a second Ctrl-C exits at once.
    tokio::spawn(async move {
        crow_server::shutdown_signal().await;
        flag.store(true, Ordering::SeqCst);
        eprintln!("crow video: stopping (Ctrl-C again to quit at once)");
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    let started = Instant::now();
    let mut frames = 0u64;
    let mut on_frame = |out: &crow_core::video::ProcessedFrame| {
        frames += 1;
        if frames.is_multiple_of(10) {
            bar.set_message(format!(
                "{frames} frames, {:.1} frames/s, {} people in view",
                frames as f64 / started.elapsed().as_secs_f64(),
                out.people.len()
            ));
            bar.tick();
        }
    };
    let stop_fn = move || stop.load(Ordering::SeqCst);
    let face = args.detect.face_spec();
    let people = args.person_model.as_ref().map(|model| PeopleSpec {
        model: model.clone(),
        detector: Default::default(),
    });
    let report = run_camera(
        b,
        &args.org,
        &spec,
        &face,
        people.as_ref(),
        models,
        &stop_fn,
        &mut on_frame,
    )
    .await?;
    bar.finish_and_clear();
    let jobs = b.drain_if_worker().await?.unwrap_or_else(|| {
        eprintln!("crow video: another process (crow serve) is this data directory's worker; it will store the events");
        0
    });
    Ok((report, jobs))
}

/// Prints a camera report.
pub fn print_report(r: &CameraReport, camera: &str) {
    let secs = match (r.first_ts, r.last_ts) {
        (Some(a), Some(b)) => (b - a) as f64 / 1000.0,
        _ => 0.0,
    };
    println!("  camera {camera}: {} frames ({secs:.1} s of video)", r.frames);
    println!(
        "  motion on {} frames; face detector ran on {} ({:.0} % skipped by motion gating)",
        r.motion_frames,
        r.analyzed,
        if r.frames == 0 {
            0.0
        } else {
            100.0 * (1.0 - r.analyzed as f64 / r.frames as f64)
        }
    );
    println!("  face regions masked: {} (summed over frames)", r.masked_regions);
    println!(
        "  people: at most {} at once; line crossings in {} / out {}",
        r.max_people, r.line_in, r.line_out
    );
    println!(
        "  archive: {} masked keyframes ({} KiB), {} heatmaps, {} evicted by retention",
        r.archived,
        r.archived_bytes / 1024,
        r.heatmaps,
        r.evicted
    );
    println!("  frame events: {} in {} process-video jobs", r.events, r.jobs);
    if r.stalls > 0 {
        println!("  the source stalled {} times (and resumed)", r.stalls);
    }
}
