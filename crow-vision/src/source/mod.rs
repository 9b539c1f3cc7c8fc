//! Frame sources: ffmpeg child processes, MJPEG over HTTP, image folders.
//!
//! Every source implements crow-core's [`FrameSource`] port: frames come in time order, a finite
//! source ends with `Ok(None)`, and a live source that stalls reports
//! [`crow_core::Error::Unavailable`] (from [`VisionError::Stalled`]) instead of blocking forever.
//!
//! - [`FfmpegSource`] runs an `ffmpeg` child process that writes raw `rgb24` frames to its
//!   stdout, the way Frigate drives ffmpeg: video files (finite, timestamps from the frame index
//!   and the rate) and RTSP/RTMP/HTTP streams (live, wall-clock timestamps). A live source runs
//!   under a supervisor that restarts a dead or silent ffmpeg with jittered exponential backoff.
//! - [`MjpegSource`] reads MJPEG over HTTP (`multipart/x-mixed-replace`) natively, or polls a
//!   single-JPEG snapshot URL, with the same supervisor semantics.
//! - [`ImageFolderSource`] reads the images of a directory in name order.
//!
//! [`open`] picks the implementation from a [`SourceConfig`] (`kind: auto` looks at the URI).
//!
//! # Live sources and stalls
//!
//! A live source decodes in a background task, started on the first call to
//! [`FrameSource::next_frame`] (so the call must be made inside a Tokio runtime). When no frame
//! arrives for [`SourceConfig::stall_secs`], `next_frame` returns the stall error; the background
//! task keeps reconnecting, so a caller that logs the error and calls again resumes by itself when
//! the stream comes back. A live source keeps only the newest few frames when the caller is slower
//! than the stream (older frames are dropped, as a camera would); a file source never drops a
//! frame. Dropping a source stops its task and kills its ffmpeg child.
//!
//! Credentials in URLs (`rtsp://user:pass@host/...`) never appear in errors or logs: see
//! [`redact_uri`].
//!
//! # Example
//!
//! ```no_run
//! use crow_core::ports::FrameSource;
//! use crow_vision::source::{SourceConfig, open};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config: SourceConfig = serde_json::from_str(
//!     r#"{ "uri": "rtsp://user:secret@192.168.1.20/stream1", "fps": 5, "width": 640 }"#,
//! )?;
//! let mut source = open(&config)?;
//! loop {
//!     match source.next_frame().await {
//!         Ok(Some(frame)) => println!("{}x{} at {}", frame.width, frame.height, frame.timestamp),
//!         Ok(None) => break,
//!         // A stalled camera: log and call again, the source keeps reconnecting.
//!         Err(e) => eprintln!("{e}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ffmpeg and ffprobe must be installed for [`FfmpegSource`]: `bash scripts/ffmpeg.sh` installs
//! them on Debian/Ubuntu.

use std::path::Path;
use std::time::Duration;

use crow_core::ports::{Frame, FrameSource};
use serde::{Deserialize, Serialize};

use crate::error::{Result, VisionError};

mod feed;
mod ffmpeg;
mod folder;
mod mjpeg;

pub use ffmpeg::FfmpegSource;
pub use folder::ImageFolderSource;
pub use mjpeg::MjpegSource;

/// Which implementation [`open`] uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Decide from the URI: a directory is a folder; an `http(s)` URL is MJPEG when the server
    /// answers with a `multipart/*` (or single `image/*`) content type, else an ffmpeg stream;
    /// `rtsp`/`rtmp`/other URLs are ffmpeg streams; any other path is a video file.
    #[default]
    Auto,
    /// A finite video (a path, or a URL ffmpeg reads to its end): decoded once, no restarts,
    /// timestamps from the frame index.
    File,
    /// A live stream through ffmpeg: restarted when it dies, wall-clock timestamps.
    Stream,
    /// MJPEG over HTTP (or a JPEG snapshot URL polled at `fps`), decoded without ffmpeg.
    Mjpeg,
    /// A directory of images (jpg, jpeg, png, webp) in name order.
    Folder,
}

/// Configuration of a frame source.
///
/// Every field but `uri` has a default; unknown fields are rejected.
///
/// ```
/// use crow_vision::source::{SourceConfig, SourceKind};
///
/// let config: SourceConfig = serde_json::from_str(
///     r#"{ "uri": "rtsp://cam.local/stream1", "kind": "stream", "fps": 5, "width": 640, "height": 360,
///          "stall_secs": 10, "restart_initial_ms": 1000, "restart_max_ms": 30000 }"#,
/// )
/// .unwrap();
/// assert_eq!(config.kind, SourceKind::Stream);
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// A video file, a directory of images, or a stream URL (`rtsp://`, `rtmp://`, `http(s)://`).
    pub uri: String,
    /// Which implementation to use; `auto` decides from `uri`.
    pub kind: SourceKind,
    /// Frames per second to extract (ffmpeg's `fps` filter; MJPEG drops frames in between; a
    /// snapshot URL is polled at this rate, 1 by default). For an image folder, the spacing of
    /// the timestamps (1 by default). `None`: the source's own rate.
    pub fps: Option<f64>,
    /// Output width in pixels. With `height`: exactly that size; alone: the height follows the
    /// source's aspect ratio (rounded to an even number).
    pub width: Option<u32>,
    /// Output height in pixels; see `width`.
    pub height: Option<u32>,
    /// Timestamp (ms) of the first frame of a file or folder; live sources use the wall clock.
    pub start_ms: i64,
    /// Seconds without a frame after which a live source reports a stall (and restarts ffmpeg or
    /// reconnects). Also bounds how long a file's ffprobe or a single frame may take.
    pub stall_secs: u64,
    /// First delay before restarting a dead stream, in ms (doubled at each failure, jittered).
    pub restart_initial_ms: u64,
    /// Longest delay between restarts, in ms.
    pub restart_max_ms: u64,
    /// The ffmpeg binary (a name looked up on `PATH`, or a path).
    pub ffmpeg: String,
    /// The ffprobe binary (a name looked up on `PATH`, or a path).
    pub ffprobe: String,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            uri: String::new(),
            kind: SourceKind::Auto,
            fps: None,
            width: None,
            height: None,
            start_ms: 0,
            stall_secs: 10,
            restart_initial_ms: 1000,
            restart_max_ms: 30_000,
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
        }
    }
}

/// Largest accepted output width or height.
const MAX_SIDE: u32 = 16_384;

impl SourceConfig {
    /// A configuration for `uri` with every other field at its default.
    pub fn new(uri: impl Into<String>) -> Self {
        SourceConfig {
            uri: uri.into(),
            ..SourceConfig::default()
        }
    }

    /// Checks every field; the error names the offending one.
    pub fn validate(&self) -> Result<()> {
        if self.uri.trim().is_empty() {
            return Err(VisionError::config("uri", "must not be empty"));
        }
        if let Some(fps) = self.fps
            && !(fps.is_finite() && fps > 0.0 && fps <= 1000.0)
        {
            return Err(VisionError::config("fps", format!("must be in (0, 1000], got {fps}")));
        }
        for (field, v) in [("width", self.width), ("height", self.height)] {
            if let Some(v) = v
                && !(2..=MAX_SIDE).contains(&v)
            {
                return Err(VisionError::config(
                    field,
                    format!("must be in [2, {MAX_SIDE}], got {v}"),
                ));
            }
        }
        if self.stall_secs == 0 || self.stall_secs > 3600 {
            return Err(VisionError::config(
                "stall_secs",
                format!("must be in [1, 3600], got {}", self.stall_secs),
            ));
        }
        if self.restart_initial_ms == 0 {
            return Err(VisionError::config("restart_initial_ms", "must be at least 1"));
        }
        if self.restart_max_ms < self.restart_initial_ms {
            return Err(VisionError::config(
                "restart_max_ms",
                format!(
                    "must be at least restart_initial_ms ({}), got {}",
                    self.restart_initial_ms, self.restart_max_ms
                ),
            ));
        }
        if self.ffmpeg.trim().is_empty() {
            return Err(VisionError::config("ffmpeg", "must not be empty"));
        }
        if self.ffprobe.trim().is_empty() {
            return Err(VisionError::config("ffprobe", "must not be empty"));
        }
        Ok(())
    }

    pub(crate) fn stall(&self) -> Duration {
        Duration::from_secs(self.stall_secs)
    }
}

/// Opens the frame source `config` describes (see [`SourceKind`] for how `auto` decides).
///
/// Validates the configuration, and fails early on a missing file or directory. Nothing is
/// spawned or connected before the first [`FrameSource::next_frame`].
pub fn open(config: &SourceConfig) -> Result<Box<dyn FrameSource>> {
    config.validate()?;
    let uri = config.uri.as_str();
    match config.kind {
        SourceKind::Folder => Ok(Box::new(ImageFolderSource::new(config)?)),
        SourceKind::Mjpeg => Ok(Box::new(MjpegSource::new(config)?)),
        SourceKind::File | SourceKind::Stream => Ok(Box::new(FfmpegSource::new(config)?)),
        SourceKind::Auto => match scheme(uri).as_deref() {
            Some("http" | "https") => Ok(Box::new(mjpeg::HttpAutoSource::new(config)?)),
            Some(_) => {
                let mut c = config.clone();
                c.kind = SourceKind::Stream;
                Ok(Box::new(FfmpegSource::new(&c)?))
            }
            None if Path::new(uri).is_dir() => Ok(Box::new(ImageFolderSource::new(config)?)),
            None => {
                let mut c = config.clone();
                c.kind = SourceKind::File;
                Ok(Box::new(FfmpegSource::new(&c)?))
            }
        },
    }
}

/// The lowercase scheme of a URL (`rtsp`, `http`, ...), `None` for a plain path.
pub(crate) fn scheme(uri: &str) -> Option<String> {
    let (scheme, _) = uri.split_once("://")?;
    let ok = !scheme.is_empty()
        && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    ok.then(|| scheme.to_ascii_lowercase())
}

/// `uri` with any credentials replaced by `***` (`rtsp://***@cam/stream`), for errors and logs.
///
/// ```
/// use crow_vision::source::redact_uri;
///
/// assert_eq!(redact_uri("rtsp://admin:hunter22@10.0.0.5:554/h264"), "rtsp://***@10.0.0.5:554/h264");
/// assert_eq!(redact_uri("/videos/cam1.mp4"), "/videos/cam1.mp4");
/// ```
pub fn redact_uri(uri: &str) -> String {
    redact_text(uri)
}

/// Replaces the user-info part of every `scheme://user:pass@host` in `text` by `***`.
pub(crate) fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; user-info is up to its last '@'.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Secrets of a URL (the password, raw and percent-decoded, and the user name) to scrub from text
/// a child process printed, where they may appear outside a URL.
pub(crate) fn secrets_of(uri: &str) -> Vec<String> {
    let Ok(url) = reqwest::Url::parse(uri) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for raw in [url.password().unwrap_or(""), url.username()] {
        for s in [raw.to_string(), percent_decode(raw)] {
            if s.len() >= 3 && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Redacts URL credentials and the given secrets from a line of text.
pub(crate) fn scrub(line: &str, secrets: &[String]) -> String {
    let mut s = redact_text(line);
    for secret in secrets {
        s = s.replace(secret.as_str(), "***");
    }
    s
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The output size for a `src_w`x`src_h` source given the configured `width`/`height`: both set,
/// exactly that; one set, the other follows the aspect ratio (even, at least 2); none, the source.
pub(crate) fn fit_size(src_w: u32, src_h: u32, width: Option<u32>, height: Option<u32>) -> (u32, u32) {
    let even = |v: f64| (((v / 2.0).round() as u32) * 2).max(2);
    match (width, height) {
        (Some(w), Some(h)) => (w, h),
        (Some(w), None) if src_w > 0 => (w, even(f64::from(src_h) * f64::from(w) / f64::from(src_w))),
        (None, Some(h)) if src_h > 0 => (even(f64::from(src_w) * f64::from(h) / f64::from(src_h)), h),
        _ => (src_w, src_h),
    }
}

/// Resizes a frame to the configured size (see [`fit_size`]); a no-op when it already fits.
pub(crate) fn resize_frame(frame: Frame, width: Option<u32>, height: Option<u32>) -> Frame {
    let (w, h) = fit_size(frame.width, frame.height, width, height);
    if (w, h) == (frame.width, frame.height) {
        return frame;
    }
    let Some(img) = image::RgbImage::from_raw(frame.width, frame.height, frame.rgb) else {
        // Cannot happen for frames this module builds; keep the contract by returning a black frame.
        return Frame {
            width: w,
            height: h,
            timestamp: frame.timestamp,
            rgb: vec![0; w as usize * h as usize * 3],
        };
    };
    let out = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
    Frame {
        width: w,
        height: h,
        timestamp: frame.timestamp,
        rgb: out.into_raw(),
    }
}

/// Timestamp of frame `index` at `fps` after `start_ms`.
pub(crate) fn index_timestamp(start_ms: i64, index: u64, fps: f64) -> i64 {
    start_ms + (index as f64 * 1000.0 / fps).round() as i64
}

/// Wall-clock timestamps that never go backwards (a clock step does not reorder frames).
#[derive(Debug, Default)]
pub(crate) struct WallClock {
    last: Option<i64>,
}

impl WallClock {
    pub(crate) fn now(&mut self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let ts = match self.last {
            Some(last) if now <= last => last + 1,
            _ => now,
        };
        self.last = Some(ts);
        ts
    }
}

/// Jittered exponential backoff between restarts.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(config: &SourceConfig) -> Self {
        Backoff {
            initial: Duration::from_millis(config.restart_initial_ms),
            max: Duration::from_millis(config.restart_max_ms),
            attempt: 0,
        }
    }

    /// The next delay: `initial * 2^attempt` capped at `max`, then a random point in its upper half.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.initial.saturating_mul(1u32 << self.attempt.min(20)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let ms = base.as_millis() as u64;
        let jittered = rand::Rng::random_range(&mut rand::rng(), ms / 2..=ms);
        Duration::from_millis(jittered.max(1))
    }

    /// Back to the initial delay (after a run that delivered frames).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact_uri("rtsp://u:p@h/x"), "rtsp://***@h/x");
        assert_eq!(redact_uri("rtsp://u:p@h"), "rtsp://***@h");
        assert_eq!(redact_uri("http://h/a@b"), "http://h/a@b");
        assert_eq!(
            redact_text("rtsp://a:b@c:554/s: Connection refused, http://x:y@z"),
            "rtsp://***@c:554/s: Connection refused, http://***@z"
        );
        let secrets = secrets_of("rtsp://admin:p%40ssword@h/");
        assert_eq!(scrub("auth failed for p@ssword", &secrets), "auth failed for ***");
    }

    #[test]
    fn fits_sizes() {
        assert_eq!(fit_size(1920, 1080, Some(640), None), (640, 360));
        assert_eq!(fit_size(1920, 1080, None, Some(101)), (180, 101));
        assert_eq!(fit_size(320, 240, Some(100), Some(50)), (100, 50));
        assert_eq!(fit_size(320, 240, None, None), (320, 240));
        assert_eq!(fit_size(1000, 3, Some(10), None), (10, 2));
    }

    #[test]
    fn validates_fields() {
        let bad = |c: SourceConfig, field: &str| match c.validate() {
            Err(VisionError::Config { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a config error on {field}, got {other:?}"),
        };
        bad(SourceConfig::default(), "uri");
        bad(
            SourceConfig {
                fps: Some(0.0),
                ..SourceConfig::new("x")
            },
            "fps",
        );
        bad(
            SourceConfig {
                width: Some(0),
                ..SourceConfig::new("x")
            },
            "width",
        );
        bad(
            SourceConfig {
                stall_secs: 0,
                ..SourceConfig::new("x")
            },
            "stall_secs",
        );
        bad(
            SourceConfig {
                restart_max_ms: 1,
                ..SourceConfig::new("x")
            },
            "restart_max_ms",
        );
        assert!(serde_json::from_str::<SourceConfig>(r#"{"uri":"x","fsp":1}"#).is_err());
        SourceConfig::new("x").validate().unwrap();
    }

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::new(&SourceConfig {
            restart_initial_ms: 100,
            restart_max_ms: 800,
            ..SourceConfig::new("x")
        });
        let d: Vec<u64> = (0..6).map(|_| b.next_delay().as_millis() as u64).collect();
        assert!((50..=100).contains(&d[0]), "{d:?}");
        assert!((200..=400).contains(&d[2]), "{d:?}");
        assert!((400..=800).contains(&d[5]), "{d:?}");
        b.reset();
        assert!(b.next_delay().as_millis() <= 100);
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme("RTSP://x").as_deref(), Some("rtsp"));
        assert_eq!(scheme("/a/b.mp4"), None);
        assert_eq!(scheme("/a/x://b"), None);
    }
}
