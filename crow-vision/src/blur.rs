//! Masking every face of a picture or a video file, end to end (`crow blur`, and the Python
//! bindings' `blur`): read, detect, mask, write. Nothing unmasked is written: the writers take
//! only [`MaskedFrame`]s, and a picture is written through a temporary file next to the output
//! that already holds the masked bytes.

use std::path::Path;

use crow_core::ports::{FrameAnalyzer, FrameProcessor, ImageEncoder};
use crow_core::video::{MaskSpec, MaskedFrame};
use serde::Serialize;

use crate::encode::{ArchiveEncoder, VideoWriter, format_for_path, is_video_path};
use crate::pipeline::{PipelineConfig, PipelineStats, VisionPipeline};
use crate::source::{SourceConfig, SourceKind};
use crate::{Result, VisionError};

/// True for the picture formats `blur_image` reads (by extension).
pub fn is_image_path(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("jpg" | "jpeg" | "png" | "webp" | "bmp")
    )
}

/// The video's frame count as its container states it (`ffprobe`), when it does.
pub fn frame_count(path: &Path) -> Option<u64> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// Masks the faces `analyzer` finds in the picture `input` and writes it to `output` in the
/// format its extension names (JPEG/WebP at `quality`). Returns how many faces were masked.
pub async fn blur_image<A: FrameAnalyzer>(
    analyzer: &A,
    input: &Path,
    output: &Path,
    mask: &MaskSpec,
    quality: u8,
) -> Result<usize> {
    same_file_check(input, output)?;
    let format = format_for_path(output)?;
    let encoder = ArchiveEncoder::new(format, quality)?;
    let frame = crate::image_io::read_image(input, 0)?;
    let faces = analyzer
        .analyze(&frame)
        .await
        .map_err(|e| VisionError::Runtime(e.to_string()))?
        .faces;
    let masked = MaskedFrame::mask(frame, &faces, mask);
    let img = encoder.encode(&masked).map_err(|e| VisionError::Encode {
        format: format!("{format:?}"),
        reason: e.to_string(),
    })?;
    let tmp = output.with_extension(format!("{}.part", img.extension));
    std::fs::write(&tmp, &img.bytes).map_err(|e| VisionError::io(&tmp, e))?;
    std::fs::rename(&tmp, output).map_err(|e| VisionError::io(output, e))?;
    Ok(faces.len())
}

/// What [`blur_video`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlurReport {
    /// Frames written.
    pub frames: u64,
    /// The pipeline's counters (detector runs, regions masked).
    pub stats: PipelineStats,
}

/// Masks every face of the video `input` (anything ffmpeg reads) through a
/// [`VisionPipeline`] (motion gating, tracking: see its docs; `config.detect_all` runs the
/// detector on every frame) and writes `output` (.mp4/.mkv/.mov/.avi/.m4v as H.264, .webm as
/// VP9) at the input's frame rate. `progress` is called after every frame.
pub async fn blur_video<A: FrameAnalyzer>(
    analyzer: A,
    input: &Path,
    output: &Path,
    config: PipelineConfig,
    progress: &mut (dyn FnMut(u64, &PipelineStats) + Send),
) -> Result<BlurReport> {
    same_file_check(input, output)?;
    if !is_video_path(output) {
        return Err(VisionError::config(
            "output",
            format!(
                "{}: a video's output must be .mp4, .mkv, .mov, .avi, .webm or .m4v",
                output.display()
            ),
        ));
    }
    let mut cfg = SourceConfig::new(input.to_string_lossy());
    cfg.kind = SourceKind::File;
    let mut source = crate::source::open(&cfg)?;
    let mut pipeline = VisionPipeline::new(config, analyzer)?;
    let core = |e: crow_core::Error| VisionError::Source {
        source_name: input.display().to_string(),
        reason: e.to_string(),
    };
    let mut writer: Option<VideoWriter> = None;
    let mut pending: Option<MaskedFrame> = None;
    let mut frames = 0u64;
    while let Some(frame) = source.next_frame().await.map_err(core)? {
        let out = pipeline.process(frame).await.map_err(core)?;
        frames += 1;
        // The frame rate comes from the first two timestamps.
        match (&mut writer, pending.take()) {
            (Some(w), _) => w.write(&out.frame)?,
            (None, None) => pending = Some(out.frame),
            (None, Some(first)) => {
                let dt = (out.frame.timestamp() - first.timestamp()).max(1) as f32;
                let f = first.frame();
                let mut w = VideoWriter::create(output, f.width, f.height, (1000.0 / dt).clamp(1.0, 240.0))?;
                w.write(&first)?;
                w.write(&out.frame)?;
                writer = Some(w);
            }
        }
        progress(frames, &pipeline.stats());
    }
    if let (None, Some(only)) = (&writer, pending.take()) {
        let f = only.frame();
        let mut w = VideoWriter::create(output, f.width, f.height, 1.0)?;
        w.write(&only)?;
        writer = Some(w);
    }
    let Some(w) = writer else {
        return Err(VisionError::Source {
            source_name: input.display().to_string(),
            reason: "no frames decoded".into(),
        });
    };
    w.finish()?;
    Ok(BlurReport {
        frames,
        stats: pipeline.stats(),
    })
}

fn same_file_check(input: &Path, output: &Path) -> Result<()> {
    if input == output {
        return Err(VisionError::config("output", "must be another file than the input"));
    }
    Ok(())
}
