//! Encoding masked frames: JPEG or WebP keyframes for the archive, PNG, and masked videos
//! through an ffmpeg child process. Every writer here takes a
//! [`MaskedFrame`](crow_core::video::MaskedFrame), never a raw frame.
//!
//! ```
//! use crow_core::ports::{Frame, ImageEncoder};
//! use crow_core::video::{ImageFormat, MaskSpec, MaskedFrame};
//! use crow_vision::encode::ArchiveEncoder;
//!
//! let frame = Frame { width: 64, height: 48, timestamp: 0, rgb: vec![120; 64 * 48 * 3] };
//! let masked = MaskedFrame::mask(frame, &[], &MaskSpec::default());
//! let jpeg = ArchiveEncoder::new(ImageFormat::Jpeg, 80).unwrap().encode(&masked).unwrap();
//! assert_eq!(&jpeg.bytes[..2], &[0xFF, 0xD8]);
//! assert_eq!(jpeg.content_type, "image/jpeg");
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crow_core::ports::ImageEncoder;
use crow_core::video::{EncodedImage, ImageFormat, MaskedFrame};

use crate::{Result, VisionError};

/// Encodes masked frames as JPEG, WebP or PNG, optionally downscaled to a maximum width.
#[derive(Debug, Clone)]
pub struct ArchiveEncoder {
    format: ImageFormat,
    quality: u8,
    max_width: Option<u32>,
}

impl ArchiveEncoder {
    /// An encoder; `quality` (1–100) applies to JPEG and WebP.
    pub fn new(format: ImageFormat, quality: u8) -> Result<Self> {
        if !(1..=100).contains(&quality) {
            return Err(VisionError::config(
                "quality",
                format!("{quality} is not between 1 and 100"),
            ));
        }
        Ok(ArchiveEncoder {
            format,
            quality,
            max_width: None,
        })
    }

    /// Frames wider than `width` are downscaled by an integer factor first.
    pub fn with_max_width(mut self, width: Option<u32>) -> Self {
        self.max_width = width.filter(|w| *w > 0);
        self
    }

    /// The format.
    pub fn format(&self) -> ImageFormat {
        self.format
    }

    fn encode_rgb(&self, rgb: &[u8], w: u32, h: u32) -> Result<EncodedImage> {
        let err = |format: &str, e: &dyn std::fmt::Display| VisionError::Encode {
            format: format.into(),
            reason: e.to_string(),
        };
        match self.format {
            ImageFormat::Jpeg => {
                let (w16, h16) = (u16::try_from(w), u16::try_from(h));
                let (Ok(w16), Ok(h16)) = (w16, h16) else {
                    return Err(err("jpeg", &"frames over 65,535 pixels a side"));
                };
                let mut bytes = Vec::with_capacity(rgb.len() / 8);
                jpeg_encoder::Encoder::new(&mut bytes, self.quality)
                    .encode(rgb, w16, h16, jpeg_encoder::ColorType::Rgb)
                    .map_err(|e| err("jpeg", &e))?;
                Ok(EncodedImage {
                    bytes,
                    content_type: "image/jpeg".into(),
                    extension: "jpg".into(),
                })
            }
            ImageFormat::Webp => {
                let mem = webp::Encoder::from_rgb(rgb, w, h).encode(self.quality as f32);
                Ok(EncodedImage {
                    bytes: mem.to_vec(),
                    content_type: "image/webp".into(),
                    extension: "webp".into(),
                })
            }
            ImageFormat::Png => {
                let mut bytes = Vec::new();
                image::codecs::png::PngEncoder::new(&mut bytes)
                    .write_image(rgb, w, h, image::ExtendedColorType::Rgb8)
                    .map_err(|e| err("png", &e))?;
                Ok(EncodedImage {
                    bytes,
                    content_type: "image/png".into(),
                    extension: "png".into(),
                })
            }
        }
    }
}

use image::ImageEncoder as _;

impl ImageEncoder for ArchiveEncoder {
    fn encode(&self, frame: &MaskedFrame) -> crow_core::Result<EncodedImage> {
        let f = frame.frame();
        let factor = match self.max_width {
            Some(max) if f.width > max => f.width.div_ceil(max),
            _ => 1,
        };
        if factor > 1 {
            let small = frame.downscale(factor);
            let s = small.frame();
            return Ok(self.encode_rgb(&s.rgb, s.width, s.height)?);
        }
        Ok(self.encode_rgb(&f.rgb, f.width, f.height)?)
    }
}

/// The image format for a file name's extension (`.jpg`, `.jpeg`, `.webp`, `.png`).
pub fn format_for_path(path: &Path) -> Result<ImageFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    ext.parse::<ImageFormat>().map_err(|_| {
        VisionError::config(
            "output",
            format!(
                "{}: the extension must be .jpg, .webp or .png for an image",
                path.display()
            ),
        )
    })
}

/// True when the path names a video container CROW writes through ffmpeg.
pub fn is_video_path(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("mp4" | "mkv" | "mov" | "avi" | "webm" | "m4v")
    )
}

/// Writes masked frames into a video file through an `ffmpeg` child process reading raw RGB
/// from its stdin (H.264 in MP4/MKV/MOV, VP9 in WebM).
#[derive(Debug)]
pub struct VideoWriter {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    path: PathBuf,
    size: (u32, u32),
    frames: u64,
}

impl VideoWriter {
    /// Starts ffmpeg writing `path` at `fps`, for frames of `width × height`.
    pub fn create(path: &Path, width: u32, height: u32, fps: f32) -> Result<Self> {
        if !(fps > 0.0 && fps <= 240.0) {
            return Err(VisionError::config("fps", format!("{fps} is not between 0 and 240")));
        }
        let webm = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("webm"));
        let codec: &[&str] = if webm {
            &["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "32"]
        } else {
            &[
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
            ]
        };
        // libx264 with yuv420p wants even sizes: pad by one pixel when needed.
        let pad = "pad=ceil(iw/2)*2:ceil(ih/2)*2";
        let mut child = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-s",
                &format!("{width}x{height}"),
            ])
            .args(["-r", &fps.to_string(), "-i", "pipe:0", "-vf", pad])
            .args(codec)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| VisionError::Source {
                source_name: "ffmpeg".into(),
                reason: if e.kind() == std::io::ErrorKind::NotFound {
                    "ffmpeg is not installed (run `bash scripts/ffmpeg.sh`)".into()
                } else {
                    e.to_string()
                },
            })?;
        let stdin = child.stdin.take();
        Ok(VideoWriter {
            child: Some(child),
            stdin,
            path: path.to_path_buf(),
            size: (width, height),
            frames: 0,
        })
    }

    /// Appends a frame (it must have the size given to [`create`](Self::create)).
    pub fn write(&mut self, frame: &MaskedFrame) -> Result<()> {
        let f = frame.frame();
        if (f.width, f.height) != self.size {
            return Err(VisionError::config(
                "frame",
                format!(
                    "{}×{} frame in a {}×{} video",
                    f.width, f.height, self.size.0, self.size.1
                ),
            ));
        }
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.failed("ffmpeg's input is closed"));
        };
        if let Err(e) = stdin.write_all(&f.rgb) {
            return Err(self.failed(&e.to_string()));
        }
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Closes the input and waits for ffmpeg to finish the file.
    pub fn finish(mut self) -> Result<u64> {
        drop(self.stdin.take());
        let child = self
            .child
            .take()
            .ok_or_else(|| VisionError::io(&self.path, std::io::ErrorKind::BrokenPipe.into()))?;
        let out = child.wait_with_output().map_err(|e| VisionError::io(&self.path, e))?;
        if !out.status.success() {
            return Err(VisionError::Source {
                source_name: self.path.display().to_string(),
                reason: format!("ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        Ok(self.frames)
    }

    fn failed(&mut self, what: &str) -> VisionError {
        let mut stderr = String::new();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut stderr);
            }
            let _ = child.wait();
        }
        self.stdin = None;
        VisionError::Source {
            source_name: self.path.display().to_string(),
            reason: format!("{what}: {}", stderr.trim()),
        }
    }
}

impl Drop for VideoWriter {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crow_core::ports::Frame;
    use crow_core::video::MaskSpec;

    fn masked(w: u32, h: u32) -> MaskedFrame {
        let rgb = (0..w * h * 3).map(|i| (i % 200) as u8).collect();
        MaskedFrame::mask(
            Frame {
                width: w,
                height: h,
                timestamp: 0,
                rgb,
            },
            &[],
            &MaskSpec::default(),
        )
    }

    #[test]
    fn every_format_decodes_back_to_the_same_size() {
        for (fmt, ct) in [
            (ImageFormat::Jpeg, "image/jpeg"),
            (ImageFormat::Webp, "image/webp"),
            (ImageFormat::Png, "image/png"),
        ] {
            let img = ArchiveEncoder::new(fmt, 75).unwrap().encode(&masked(96, 64)).unwrap();
            assert_eq!(img.content_type, ct);
            let back = image::load_from_memory(&img.bytes).unwrap();
            assert_eq!((back.width(), back.height()), (96, 64), "{fmt:?}");
        }
    }

    #[test]
    fn quality_changes_size_and_max_width_downscales() {
        let f = masked(320, 240);
        let lo = ArchiveEncoder::new(ImageFormat::Jpeg, 20).unwrap().encode(&f).unwrap();
        let hi = ArchiveEncoder::new(ImageFormat::Jpeg, 95).unwrap().encode(&f).unwrap();
        assert!(lo.bytes.len() < hi.bytes.len());
        let small = ArchiveEncoder::new(ImageFormat::Png, 90)
            .unwrap()
            .with_max_width(Some(100))
            .encode(&f)
            .unwrap();
        let back = image::load_from_memory(&small.bytes).unwrap();
        assert_eq!(back.width(), 80);
        assert!(ArchiveEncoder::new(ImageFormat::Jpeg, 0).is_err());
    }

    #[test]
    fn formats_from_paths() {
        assert_eq!(format_for_path(Path::new("a/b.JPG")).unwrap(), ImageFormat::Jpeg);
        assert!(
            format_for_path(Path::new("a/b.gif"))
                .unwrap_err()
                .to_string()
                .contains("output")
        );
        assert!(is_video_path(Path::new("x.mp4")));
        assert!(!is_video_path(Path::new("x.png")));
    }
}
