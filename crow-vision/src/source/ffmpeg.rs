//! Frames from an `ffmpeg` child process writing raw `rgb24` to its stdout.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use crow_core::ports::{Frame, FrameSource};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tracing::{debug, info, warn};

use super::feed::{Feed, Msg, Queue};
use super::{
    Backoff, SourceConfig, SourceKind, WallClock, fit_size, index_timestamp, redact_uri, scheme, scrub, secrets_of,
};
use crate::error::{Result, VisionError};

/// Lines of ffmpeg's stderr kept for error messages.
const STDERR_LINES: usize = 6;
/// Longest stderr line kept.
const STDERR_LINE_MAX: usize = 300;
/// Frame rate assumed for a file whose rate ffprobe does not know.
const FALLBACK_FPS: f64 = 25.0;

/// A video file or a live stream decoded by an `ffmpeg` child process.
///
/// The frame size is learned first with `ffprobe` (skipped for a live stream whose `width` and
/// `height` are both configured), then ffmpeg runs as
/// `ffmpeg -hide_banner -loglevel error -nostdin [-rtsp_transport tcp] -i URI -an
/// -vf fps=N,scale=W:H -f rawvideo -pix_fmt rgb24 pipe:1`, and every `W*H*3` bytes of its stdout
/// are a frame.
///
/// - A **file** (`kind: file`, or a path under `kind: auto`) is decoded once: timestamps are
///   `start_ms + index * 1000 / rate` (the configured `fps`, else the video's own rate), and the
///   source ends with `Ok(None)`. A truncated video yields the frames that decode, then
///   `Ok(None)` or a [`VisionError::Source`] naming the file with ffmpeg's last stderr lines. A
///   file that is not a video fails on the first frame with ffprobe's message.
/// - A **stream** (`kind: stream`, or an `rtsp://`, `rtmp://`... URL under `kind: auto`) is
///   live: wall-clock timestamps, and a supervisor restarts ffmpeg with jittered exponential
///   backoff (`restart_initial_ms` doubling up to `restart_max_ms`) whenever it exits or sends no
///   frame for `stall_secs`; meanwhile `next_frame` reports [`VisionError::Stalled`] every
///   `stall_secs` and resumes by itself when frames come back.
///
/// A missing ffmpeg/ffprobe binary is a [`VisionError::Source`] telling to run
/// `bash scripts/ffmpeg.sh`. The child is killed when the source is dropped.
#[derive(Debug)]
pub struct FfmpegSource {
    name: String,
    live: bool,
    feed: Feed,
}

impl FfmpegSource {
    /// A source for `config.uri`: live when `config.kind` is `stream` (or `auto` with a URL),
    /// a file when it is `file` (or `auto` with a path). A missing file fails here; ffmpeg is
    /// started by the first [`FrameSource::next_frame`].
    pub fn new(config: &SourceConfig) -> Result<Self> {
        config.validate()?;
        let uri = config.uri.clone();
        let name = redact_uri(&uri);
        let live = match config.kind {
            SourceKind::Stream => true,
            SourceKind::File => false,
            SourceKind::Auto => scheme(&uri).is_some_and(|s| s != "file"),
            SourceKind::Mjpeg | SourceKind::Folder => {
                return Err(VisionError::config(
                    "kind",
                    "an ffmpeg source is `file`, `stream` or `auto`",
                ));
            }
        };
        if scheme(&uri).is_none() {
            let meta = std::fs::metadata(&uri).map_err(|e| VisionError::io(&uri, e))?;
            if meta.is_dir() {
                return Err(VisionError::Source {
                    source_name: name,
                    reason: "is a directory, not a video (use `kind: folder` for a directory of images)".into(),
                });
            }
        }
        let job = Job {
            secrets: secrets_of(&uri),
            uri,
            name: name.clone(),
            config: config.clone(),
            live,
        };
        // Files: a small read-ahead, never dropped. Live: the freshest two frames.
        let feed = Feed::new(name.clone(), live, config.stall(), 2, move |queue| job.run(queue));
        Ok(FfmpegSource { name, live, feed })
    }

    /// The file or URL, credentials removed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a live stream (restarted, wall-clock timestamps) rather than a file.
    pub fn is_live(&self) -> bool {
        self.live
    }
}

#[async_trait]
impl FrameSource for FfmpegSource {
    async fn next_frame(&mut self) -> crow_core::Result<Option<Frame>> {
        Ok(self.feed.next().await?)
    }
}

/// Why one run of ffmpeg ended (other than a fatal error).
#[derive(Debug)]
enum Ending {
    /// ffmpeg exited 0 after its last frame.
    Done,
    /// ffmpeg (or ffprobe) failed; the message is scrubbed.
    Failed(String),
    /// No frame for `stall_secs`; ffmpeg was killed.
    Stalled,
}

/// The producer: probes, runs ffmpeg, restarts it when live.
struct Job {
    uri: String,
    name: String,
    secrets: Vec<String>,
    config: SourceConfig,
    live: bool,
}

/// The video's size and rate, from ffprobe.
#[derive(Debug, Clone, Copy)]
struct Probe {
    width: u32,
    height: u32,
    fps: Option<f64>,
}

impl Job {
    async fn run(self, queue: Arc<Queue>) {
        if !self.live {
            let mut index = 0u64;
            let result = match self.run_once(&queue, &mut Stamp::Index(&mut index)).await {
                Ok((_, Ending::Done)) => Ok(()),
                Ok((_, Ending::Failed(reason))) => Err(self.error(reason)),
                Ok((_, Ending::Stalled)) => Err(VisionError::Stalled {
                    source_name: self.name.clone(),
                    secs: self.config.stall_secs,
                }),
                Err(fatal) => Err(fatal),
            };
            if let Err(e) = result {
                queue.push(Msg::Error(e)).await;
            }
            return;
        }
        let mut backoff = Backoff::new(&self.config);
        let mut clock = WallClock::default();
        loop {
            let (frames, ending) = match self.run_once(&queue, &mut Stamp::Wall(&mut clock)).await {
                Ok(r) => r,
                Err(fatal) => {
                    queue.push(Msg::Error(fatal)).await;
                    return;
                }
            };
            if frames > 0 {
                backoff.reset();
            }
            let why = match ending {
                Ending::Done => "the stream ended".to_string(),
                Ending::Failed(reason) => reason,
                Ending::Stalled => format!("no frames for {} s", self.config.stall_secs),
            };
            let delay = backoff.next_delay();
            warn!(source = %self.name, frames, "ffmpeg stopped: {why}; restarting in {} ms", delay.as_millis());
            tokio::time::sleep(delay).await;
        }
    }

    fn error(&self, reason: impl Into<String>) -> VisionError {
        VisionError::Source {
            source_name: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// A missing binary is fatal (no restart helps); other spawn errors too.
    fn spawn_error(&self, program: &str, e: &std::io::Error) -> VisionError {
        if e.kind() == std::io::ErrorKind::NotFound {
            self.error(format!(
                "`{program}` not found: install ffmpeg with `bash scripts/ffmpeg.sh` (or set the `ffmpeg`/`ffprobe` paths in the source config)"
            ))
        } else {
            self.error(format!("cannot run `{program}`: {e}"))
        }
    }

    fn stall(&self) -> Duration {
        self.config.stall()
    }

    fn input_args(&self) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let scheme = scheme(&self.uri);
        if matches!(scheme.as_deref(), Some("rtsp" | "rtsps")) {
            args.extend(["-rtsp_transport".into(), "tcp".into()]);
        }
        if self.live {
            args.extend(["-avoid_negative_ts", "make_zero", "-fflags", "+genpts+discardcorrupt"].map(String::from));
            if matches!(scheme.as_deref(), Some("rtsp" | "rtsps")) {
                args.extend(["-use_wallclock_as_timestamps".into(), "1".into()]);
            }
        }
        args
    }

    /// Runs ffprobe for the size and rate. `Err` is fatal; a failed probe is an `Ending`.
    async fn probe(&self) -> Result<std::result::Result<Probe, Ending>> {
        let program = &self.config.ffprobe;
        let mut cmd = Command::new(program);
        cmd.args(["-v", "error"]);
        if matches!(scheme(&self.uri).as_deref(), Some("rtsp" | "rtsps")) {
            cmd.args(["-rtsp_transport", "tcp"]);
        }
        cmd.args([
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,r_frame_rate,avg_frame_rate",
            "-of",
            "json",
        ])
        .arg(&self.uri)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| self.spawn_error(program, &e))?;
        let output = match tokio::time::timeout(self.stall(), child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Ok(Err(Ending::Failed(format!("ffprobe failed: {e}")))),
            Err(_) => {
                return Ok(Err(Ending::Failed(format!(
                    "ffprobe got no answer in {} s",
                    self.config.stall_secs
                ))));
            }
        };
        let stderr = self.tail_of(&String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            let what = if self.live {
                "cannot open the stream"
            } else {
                "not a readable video"
            };
            return Ok(Err(Ending::Failed(format!("{what}: {stderr}"))));
        }
        Ok(parse_probe(&output.stdout).ok_or_else(|| {
            Ending::Failed(if stderr.is_empty() {
                "no video stream found (ffprobe)".into()
            } else {
                format!("no video stream found: {stderr}")
            })
        }))
    }

    /// The last lines of a child's stderr, scrubbed, joined with " | ".
    fn tail_of(&self, text: &str) -> String {
        let lines: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| truncate(&scrub(l, &self.secrets)))
            .collect();
        lines[lines.len().saturating_sub(STDERR_LINES)..].join(" | ")
    }

    /// One run of ffmpeg: returns the frames delivered and why it ended; `Err` is fatal.
    async fn run_once(&self, queue: &Queue, stamp: &mut Stamp<'_>) -> Result<(u64, Ending)> {
        let (width, height, fps) = match (self.live, self.config.width, self.config.height) {
            (true, Some(w), Some(h)) => (w, h, self.config.fps),
            _ => match self.probe().await? {
                Ok(p) => {
                    let (w, h) = fit_size(p.width, p.height, self.config.width, self.config.height);
                    (w, h, self.config.fps.or(p.fps))
                }
                Err(ending) => return Ok((0, ending)),
            },
        };
        let fps_filter = self
            .config
            .fps
            .map(|f| format!("fps={},", fmt_rate(f)))
            .unwrap_or_default();
        let program = &self.config.ffmpeg;
        let mut cmd = Command::new(program);
        cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(self.input_args())
            .arg("-i")
            .arg(&self.uri)
            .args(["-an", "-sn", "-vf"])
            .arg(format!("{fps_filter}scale={width}:{height}"))
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(program, &e))?;
        info!(source = %self.name, width, height, fps, live = self.live, "ffmpeg started");
        let stderr_lines = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_task = child.stderr.take().map(|err| {
            tokio::spawn(collect_stderr(
                err,
                stderr_lines.clone(),
                self.secrets.clone(),
                self.name.clone(),
            ))
        });
        let Some(mut stdout) = child.stdout.take() else {
            return Ok((0, Ending::Failed("ffmpeg has no stdout".into())));
        };
        let rate = fps.unwrap_or_else(|| {
            if !self.live {
                warn!(source = %self.name, "the video's frame rate is unknown; assuming {FALLBACK_FPS} fps");
            }
            FALLBACK_FPS
        });
        let frame_len = width as usize * height as usize * 3;
        let mut frames = 0u64;
        let read_ending = loop {
            let mut rgb = vec![0u8; frame_len];
            match tokio::time::timeout(self.stall(), stdout.read_exact(&mut rgb)).await {
                Ok(Ok(_)) => {
                    let timestamp = stamp.next(self.config.start_ms, rate);
                    frames += 1;
                    queue
                        .push(Msg::Frame(Frame {
                            width,
                            height,
                            timestamp,
                            rgb,
                        }))
                        .await;
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break None,
                Ok(Err(e)) => break Some(Ending::Failed(format!("reading ffmpeg's output: {e}"))),
                Err(_) => break Some(Ending::Stalled),
            }
        };
        drop(stdout);
        let ending = match read_ending {
            Some(ending) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                ending
            }
            None => self.exit_status(&mut child, &stderr_lines, stderr_task).await,
        };
        debug!(source = %self.name, frames, ?ending, "ffmpeg run over");
        Ok((frames, ending))
    }

    /// After ffmpeg closed its stdout: its exit status, with its stderr when it failed.
    async fn exit_status(
        &self,
        child: &mut Child,
        lines: &Arc<Mutex<VecDeque<String>>>,
        stderr_task: Option<tokio::task::JoinHandle<()>>,
    ) -> Ending {
        let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
            Ok(Ok(status)) => Some(status),
            Ok(Err(_)) | Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                None
            }
        };
        if let Some(task) = stderr_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        let stderr = lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ");
        match status {
            Some(s) if s.success() => {
                if !stderr.is_empty() {
                    warn!(source = %self.name, "ffmpeg reported: {stderr}");
                }
                Ending::Done
            }
            Some(s) => {
                let code = s
                    .code()
                    .map_or_else(|| "a signal".to_string(), |c| format!("status {c}"));
                if stderr.is_empty() {
                    Ending::Failed(format!("ffmpeg exited with {code}"))
                } else {
                    Ending::Failed(format!("ffmpeg exited with {code}: {stderr}"))
                }
            }
            None => Ending::Failed(format!("ffmpeg did not exit after closing its output: {stderr}")),
        }
    }
}

/// How frames are stamped: files by index, live streams by the wall clock.
enum Stamp<'a> {
    Index(&'a mut u64),
    Wall(&'a mut WallClock),
}

impl Stamp<'_> {
    fn next(&mut self, start_ms: i64, fps: f64) -> i64 {
        match self {
            Stamp::Index(i) => {
                let ts = index_timestamp(start_ms, **i, fps);
                **i += 1;
                ts
            }
            Stamp::Wall(clock) => clock.now(),
        }
    }
}

/// Keeps the last lines of a child's stderr (scrubbed of credentials), logging each at debug.
async fn collect_stderr(
    stderr: impl AsyncRead + Unpin,
    lines: Arc<Mutex<VecDeque<String>>>,
    secrets: Vec<String>,
    name: String,
) {
    let mut reader = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let line = truncate(&scrub(line, &secrets));
        debug!(source = %name, "ffmpeg: {line}");
        let mut l = lines.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() == STDERR_LINES {
            l.pop_front();
        }
        l.push_back(line);
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= STDERR_LINE_MAX {
        return s.to_string();
    }
    let mut end = STDERR_LINE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A rate for ffmpeg's `fps` filter (`5`, `2.5`).
fn fmt_rate(fps: f64) -> String {
    if fps.fract() == 0.0 {
        format!("{}", fps as u64)
    } else {
        format!("{fps}")
    }
}

/// Parses ffprobe's JSON: the first stream's size and rate.
fn parse_probe(stdout: &[u8]) -> Option<Probe> {
    let v: serde_json::Value = serde_json::from_slice(stdout).ok()?;
    let s = v.get("streams")?.as_array()?.first()?;
    let dim = |k: &str| {
        s.get(k)?
            .as_u64()
            .filter(|&d| d > 0 && d <= u64::from(u32::MAX))
            .map(|d| d as u32)
    };
    let rate = |k: &str| -> Option<f64> {
        let r = s.get(k)?.as_str()?;
        let (n, d) = r.split_once('/').unwrap_or((r, "1"));
        let f = n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?;
        (f.is_finite() && f > 0.0 && f <= 1000.0).then_some(f)
    };
    Some(Probe {
        width: dim("width")?,
        height: dim("height")?,
        fps: rate("r_frame_rate").or_else(|| rate("avg_frame_rate")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ffprobe_json() {
        let p = parse_probe(br#"{"programs":[],"streams":[{"width":320,"height":240,"r_frame_rate":"30000/1001"}]}"#)
            .unwrap();
        assert_eq!((p.width, p.height), (320, 240));
        assert!((p.fps.unwrap() - 29.97).abs() < 0.01);
        let p = parse_probe(br#"{"streams":[{"width":2,"height":2,"r_frame_rate":"0/0","avg_frame_rate":"5/1"}]}"#)
            .unwrap();
        assert_eq!(p.fps, Some(5.0));
        assert!(parse_probe(br#"{"streams":[]}"#).is_none());
        assert!(parse_probe(b"{").is_none());
    }

    #[test]
    fn formats_rates() {
        assert_eq!(fmt_rate(5.0), "5");
        assert_eq!(fmt_rate(2.5), "2.5");
    }
}
