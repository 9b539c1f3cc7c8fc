//! MJPEG over HTTP (`multipart/x-mixed-replace`) and JPEG snapshot URLs, without ffmpeg.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crow_core::ports::{Frame, FrameSource};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::feed::{Feed, Msg, Queue};
use super::{
    Backoff, FfmpegSource, SourceConfig, SourceKind, WallClock, redact_uri, resize_frame, scheme, scrub, secrets_of,
};
use crate::error::{Result, VisionError};
use crate::image_io::decode_image;

/// A part bigger than this (without a complete JPEG in it) means the stream is not MJPEG.
const MAX_PART: usize = 32 * 1024 * 1024;
/// Snapshot polling rate when `fps` is not configured.
const SNAPSHOT_FPS: f64 = 1.0;

/// MJPEG over HTTP, read natively with reqwest (no ffmpeg).
///
/// On each connection the server's `Content-Type` decides:
/// - `multipart/x-mixed-replace; boundary=...` (any `multipart/*`): the parts are split at the
///   boundary, each read to its `Content-Length`, or, without one, to the JPEG's end (found by
///   walking the JPEG's markers from SOI to EOI), and decoded with
///   [`decode_image`](crate::image_io::decode_image). With `fps` set, frames arriving faster are
///   dropped before decoding.
/// - `image/*`: a snapshot URL, fetched again at `fps` (1 per second by default).
///
/// Timestamps are the wall clock. A dropped connection, an HTTP error or a silent stream is
/// retried with jittered exponential backoff; while no frame comes for `stall_secs`,
/// `next_frame` reports [`VisionError::Stalled`], and resumes by itself when the stream is back.
/// A part that does not decode is logged and skipped. `width`/`height` resize the frames.
#[derive(Debug)]
pub struct MjpegSource {
    name: String,
    feed: Feed,
}

impl MjpegSource {
    /// A source for the `http(s)` URL `config.uri`. Nothing is connected before the first
    /// [`FrameSource::next_frame`].
    pub fn new(config: &SourceConfig) -> Result<Self> {
        config.validate()?;
        if !matches!(scheme(&config.uri).as_deref(), Some("http" | "https")) {
            return Err(VisionError::config(
                "uri",
                "an MJPEG source needs an http:// or https:// URL",
            ));
        }
        let name = redact_uri(&config.uri);
        let client = http_client(config, &name)?;
        let job = Job {
            uri: config.uri.clone(),
            name: name.clone(),
            secrets: secrets_of(&config.uri),
            config: config.clone(),
            client,
        };
        let feed = Feed::new(name.clone(), true, config.stall(), 2, move |queue| job.run(queue));
        Ok(MjpegSource { name, feed })
    }

    /// The URL, credentials removed.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl FrameSource for MjpegSource {
    async fn next_frame(&mut self) -> crow_core::Result<Option<Frame>> {
        Ok(self.feed.next().await?)
    }
}

fn http_client(config: &SourceConfig, name: &str) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(config.stall())
        .build()
        .map_err(|e| VisionError::Source {
            source_name: name.to_string(),
            reason: format!("cannot build an HTTP client: {}", e.without_url()),
        })
}

/// Drops frames that come faster than `fps`.
#[derive(Debug)]
struct RateLimit {
    interval: Option<Duration>,
    next_due: Option<Instant>,
}

impl RateLimit {
    fn new(fps: Option<f64>) -> Self {
        RateLimit {
            interval: fps.map(|f| Duration::from_secs_f64(1.0 / f)),
            next_due: None,
        }
    }

    /// Whether a frame arriving `now` is kept.
    fn allow(&mut self, now: Instant) -> bool {
        let Some(interval) = self.interval else {
            return true;
        };
        match self.next_due {
            Some(due) if now < due => false,
            Some(due) if due + interval > now => {
                self.next_due = Some(due + interval);
                true
            }
            _ => {
                self.next_due = Some(now + interval);
                true
            }
        }
    }
}

/// The producer: connects, parses, decodes, reconnects.
struct Job {
    uri: String,
    name: String,
    secrets: Vec<String>,
    config: SourceConfig,
    client: reqwest::Client,
}

/// State carried across connections.
struct Carry {
    clock: WallClock,
    limit: RateLimit,
    frames: u64,
}

impl Job {
    async fn run(self, queue: Arc<Queue>) {
        let mut backoff = Backoff::new(&self.config);
        let mut carry = Carry {
            clock: WallClock::default(),
            limit: RateLimit::new(self.config.fps),
            frames: 0,
        };
        loop {
            let before = carry.frames;
            let why = self.connect_once(&queue, &mut carry).await;
            let frames = carry.frames - before;
            if frames > 0 {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            warn!(source = %self.name, frames, "MJPEG stream stopped: {why}; reconnecting in {} ms", delay.as_millis());
            tokio::time::sleep(delay).await;
        }
    }

    fn clean(&self, e: reqwest::Error) -> String {
        describe(e, &self.secrets)
    }

    /// One connection: returns why it ended.
    async fn connect_once(&self, queue: &Queue, carry: &mut Carry) -> String {
        let stall = self.config.stall();
        let resp = match tokio::time::timeout(stall, self.client.get(&self.uri).send()).await {
            Err(_) => return format!("no answer in {} s", self.config.stall_secs),
            Ok(Err(e)) => return self.clean(e),
            Ok(Ok(resp)) => resp,
        };
        if !resp.status().is_success() {
            return format!("HTTP status {}", resp.status());
        }
        let content_type = content_type(&resp);
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime.starts_with("multipart/") {
            let boundary = boundary_of(&content_type);
            info!(source = %self.name, boundary = boundary.as_deref().unwrap_or("?"), "MJPEG stream connected");
            self.read_multipart(resp, boundary, queue, carry).await
        } else if mime.starts_with("image/") {
            debug!(source = %self.name, "snapshot URL");
            self.poll_snapshots(resp, queue, carry).await
        } else {
            format!("the server sent `{content_type}`, not MJPEG (multipart/x-mixed-replace) nor an image")
        }
    }

    async fn read_multipart(
        &self,
        mut resp: reqwest::Response,
        boundary: Option<String>,
        queue: &Queue,
        carry: &mut Carry,
    ) -> String {
        let stall = self.config.stall();
        let mut parser = Multipart::new(boundary.as_deref());
        let mut last_part = Instant::now();
        loop {
            let chunk = match tokio::time::timeout_at(last_part + stall, resp.chunk()).await {
                Err(_) => return format!("no frames for {} s", self.config.stall_secs),
                Ok(Err(e)) => return self.clean(e),
                Ok(Ok(None)) => return "the server closed the stream".into(),
                Ok(Ok(Some(chunk))) => chunk,
            };
            parser.push(&chunk);
            loop {
                match parser.next_part() {
                    Ok(Some(part)) => {
                        let now = Instant::now();
                        last_part = now;
                        if carry.limit.allow(now) {
                            self.deliver(part, queue, carry).await;
                        }
                    }
                    Ok(None) => break,
                    Err(reason) => return reason,
                }
            }
        }
    }

    async fn poll_snapshots(&self, first: reqwest::Response, queue: &Queue, carry: &mut Carry) -> String {
        let stall = self.config.stall();
        let interval = Duration::from_secs_f64(1.0 / self.config.fps.unwrap_or(SNAPSHOT_FPS));
        let mut resp = first;
        loop {
            let started = Instant::now();
            let body = match tokio::time::timeout(stall, resp.bytes()).await {
                Err(_) => return format!("no image in {} s", self.config.stall_secs),
                Ok(Err(e)) => return self.clean(e),
                Ok(Ok(body)) => body,
            };
            self.deliver(body.to_vec(), queue, carry).await;
            tokio::time::sleep_until(started + interval).await;
            resp = match tokio::time::timeout(stall, self.client.get(&self.uri).send()).await {
                Err(_) => return format!("no answer in {} s", self.config.stall_secs),
                Ok(Err(e)) => return self.clean(e),
                Ok(Ok(r)) if !r.status().is_success() => return format!("HTTP status {}", r.status()),
                Ok(Ok(r)) => r,
            };
        }
    }

    /// Decodes a JPEG off the runtime's threads and queues it; a bad one is logged and skipped.
    async fn deliver(&self, jpeg: Vec<u8>, queue: &Queue, carry: &mut Carry) {
        let (width, height) = (self.config.width, self.config.height);
        let decoded =
            tokio::task::spawn_blocking(move || decode_image(&jpeg, 0).map(|frame| resize_frame(frame, width, height)))
                .await;
        match decoded {
            Ok(Ok(mut frame)) => {
                frame.timestamp = carry.clock.now();
                carry.frames += 1;
                queue.push(Msg::Frame(frame)).await;
            }
            Ok(Err(e)) => warn!(source = %self.name, "skipping a part that is not a readable JPEG: {e}"),
            Err(e) => warn!(source = %self.name, "decoding a part failed: {e}"),
        }
    }
}

/// A reqwest error without its URL, with its causes ("connection refused"), scrubbed of secrets.
fn describe(e: reqwest::Error, secrets: &[String]) -> String {
    let e = e.without_url();
    let mut s = scrub(&e.to_string(), secrets);
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        s = format!("{s}: {}", scrub(&inner.to_string(), secrets));
        source = inner.source();
    }
    s
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The `boundary` parameter of a multipart content type, unquoted.
fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"').trim();
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// An incremental `multipart/x-mixed-replace` splitter.
#[derive(Debug)]
struct Multipart {
    /// `--boundary` (a boundary given with its dashes, as some cameras do, is used as is, which
    /// also matches the standard `----boundary`).
    delimiter: Option<Vec<u8>>,
    buf: Vec<u8>,
    /// How far the JPEG of the part being received has been scanned.
    scan: JpegScan,
}

impl Multipart {
    fn new(boundary: Option<&str>) -> Self {
        let delimiter = boundary.map(|b| {
            if b.starts_with("--") {
                b.as_bytes().to_vec()
            } else {
                format!("--{b}").into_bytes()
            }
        });
        Multipart {
            delimiter,
            buf: Vec::new(),
            scan: JpegScan::default(),
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Drops the first `n` bytes (a part read, or bytes that cannot start one).
    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.scan = JpegScan::default();
    }

    /// The next complete part's body; `Ok(None)` until more bytes come; `Err` when the stream
    /// cannot be MJPEG.
    fn next_part(&mut self) -> std::result::Result<Option<Vec<u8>>, String> {
        let found = match self.delimiter.clone() {
            Some(delim) => self.next_delimited(&delim),
            None => self.next_jpeg(),
        };
        if found.is_none() && self.buf.len() > MAX_PART {
            return Err(format!(
                "no complete part in {} MiB: not an MJPEG stream",
                MAX_PART >> 20
            ));
        }
        Ok(found)
    }

    fn next_delimited(&mut self, delim: &[u8]) -> Option<Vec<u8>> {
        let Some(pos) = find(&self.buf, delim, 0) else {
            // Keep only what could be the start of a delimiter.
            let keep = delim.len().min(self.buf.len());
            self.consume(self.buf.len() - keep);
            return None;
        };
        let after = pos + delim.len();
        // The delimiter's line ends at the first LF; headers follow up to an empty line. A part
        // starting with the JPEG right after the delimiter line has no headers.
        let line_end = find(&self.buf, b"\n", after)? + 1;
        let rest = &self.buf[line_end..];
        let (headers, body_start) = if rest.starts_with(&[0xFF, 0xD8]) {
            (String::new(), line_end)
        } else if rest.starts_with(b"\r\n") {
            (String::new(), line_end + 2)
        } else if rest.starts_with(b"\n") {
            (String::new(), line_end + 1)
        } else if rest.len() < 2 {
            return None;
        } else {
            let end = header_end(&self.buf, line_end)?;
            (String::from_utf8_lossy(&self.buf[line_end..end.0]).into_owned(), end.1)
        };
        let length = headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        });
        let body_end = match length {
            Some(n) => {
                if self.buf.len() < body_start + n {
                    return None;
                }
                body_start + n
            }
            None => match jpeg_len(&self.buf[body_start..], &mut self.scan) {
                Ok(Some(n)) => body_start + n,
                Ok(None) => return None,
                // Not a JPEG: the body runs to the next delimiter.
                Err(()) => {
                    self.scan = JpegScan::default();
                    let next = find(&self.buf, delim, body_start)?;
                    let mut end = next;
                    while end > body_start && matches!(self.buf[end - 1], b'\r' | b'\n') {
                        end -= 1;
                    }
                    end
                }
            },
        };
        let body = self.buf[body_start..body_end].to_vec();
        self.consume(body_end);
        Some(body)
    }

    /// Without a boundary: the next JPEG from SOI to EOI.
    fn next_jpeg(&mut self) -> Option<Vec<u8>> {
        let Some(start) = find(&self.buf, &[0xFF, 0xD8, 0xFF], 0) else {
            let keep = 2.min(self.buf.len());
            self.consume(self.buf.len() - keep);
            return None;
        };
        match jpeg_len(&self.buf[start..], &mut self.scan) {
            Ok(Some(n)) => {
                let body = self.buf[start..start + n].to_vec();
                self.consume(start + n);
                Some(body)
            }
            Ok(None) => None,
            Err(()) => {
                // A false start: skip it.
                self.consume(start + 2);
                self.next_jpeg()
            }
        }
    }
}

/// The end of the headers starting at `from`: (end of the header text, start of the body).
fn header_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let crlf = find(buf, b"\r\n\r\n", from).map(|i| (i, i + 4));
    let lf = find(buf, b"\n\n", from).map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= haystack.len() || needle.is_empty() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Where a [`jpeg_len`] walk stopped for want of bytes, so the next call goes on from there
/// instead of scanning a large JPEG again for every chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct JpegScan {
    /// Offset of the next marker, or of the entropy-coded bytes not scanned yet.
    pos: usize,
    /// Whether `pos` is inside entropy-coded data (after a start-of-scan header).
    in_entropy: bool,
}

/// The length of the JPEG at the start of `data`, through its EOI marker, found by walking the
/// marker segments (so an EXIF thumbnail's EOI does not end it early). `Ok(None)`: incomplete,
/// `scan` remembers how far it got (pass the same `data`, grown, next time); `Err`: not a JPEG.
fn jpeg_len(data: &[u8], scan: &mut JpegScan) -> std::result::Result<Option<usize>, ()> {
    if scan.pos == 0 {
        if data.len() < 2 {
            return Ok(None);
        }
        if data[0] != 0xFF || data[1] != 0xD8 {
            return Err(());
        }
        scan.pos = 2;
    }
    loop {
        if scan.in_entropy {
            // Entropy-coded data runs to the first 0xFF not followed by 0x00, a restart marker
            // or another fill byte.
            let Some(p) = data.get(scan.pos..).and_then(|d| d.iter().position(|&b| b == 0xFF)) else {
                scan.pos = data.len();
                return Ok(None);
            };
            let j = scan.pos + p;
            match data.get(j + 1) {
                None => {
                    scan.pos = j;
                    return Ok(None);
                }
                Some(0x00 | 0xD0..=0xD7) => scan.pos = j + 2,
                Some(0xFF) => scan.pos = j + 1,
                Some(_) => {
                    scan.pos = j;
                    scan.in_entropy = false;
                }
            }
            continue;
        }
        // A marker: 0xFF (fill bytes allowed) then its code.
        let mut i = scan.pos;
        if i >= data.len() {
            return Ok(None);
        }
        if data[i] != 0xFF {
            return Err(());
        }
        while i < data.len() && data[i] == 0xFF {
            i += 1;
        }
        if i >= data.len() {
            return Ok(None);
        }
        let marker = data[i];
        i += 1;
        match marker {
            0xD9 => return Ok(Some(i)),
            0x01 | 0xD0..=0xD7 => scan.pos = i,
            _ => {
                if i + 2 > data.len() {
                    return Ok(None);
                }
                let len = usize::from(u16::from_be_bytes([data[i], data[i + 1]]));
                if len < 2 {
                    return Err(());
                }
                scan.pos = i + len;
                scan.in_entropy = marker == 0xDA;
            }
        }
    }
}

/// `kind: auto` for an `http(s)` URL: asks the server once which it is, then becomes an
/// [`MjpegSource`] (a `multipart/*` or `image/*` answer) or a live [`FfmpegSource`] (anything
/// else: MPEG-TS, HLS, FLV...). While the server cannot be reached it keeps asking, with the
/// usual stall error every `stall_secs`.
pub(crate) struct HttpAutoSource {
    config: SourceConfig,
    name: String,
    client: reqwest::Client,
    backoff: Backoff,
    inner: Option<Box<dyn FrameSource>>,
}

impl std::fmt::Debug for HttpAutoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpAutoSource")
            .field("name", &self.name)
            .field("decided", &self.inner.is_some())
            .finish()
    }
}

impl HttpAutoSource {
    pub(crate) fn new(config: &SourceConfig) -> Result<Self> {
        config.validate()?;
        let name = redact_uri(&config.uri);
        Ok(HttpAutoSource {
            client: http_client(config, &name)?,
            backoff: Backoff::new(config),
            config: config.clone(),
            name,
            inner: None,
        })
    }

    /// The server's content type, or why it could not be had.
    async fn ask(&self) -> std::result::Result<String, String> {
        let secrets = secrets_of(&self.config.uri);
        match tokio::time::timeout(self.config.stall(), self.client.get(&self.config.uri).send()).await {
            Err(_) => Err(format!("no answer in {} s", self.config.stall_secs)),
            Ok(Err(e)) => Err(describe(e, &secrets)),
            Ok(Ok(resp)) if !resp.status().is_success() => Err(format!("HTTP status {}", resp.status())),
            Ok(Ok(resp)) => Ok(content_type(&resp)),
        }
    }

    async fn decide(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.config.stall();
        loop {
            match self.ask().await {
                Ok(content_type) => {
                    let mime = content_type.to_ascii_lowercase();
                    let source: Box<dyn FrameSource> = if mime.starts_with("multipart/") || mime.starts_with("image/") {
                        info!(source = %self.name, content_type, "reading as MJPEG");
                        Box::new(MjpegSource::new(&self.config)?)
                    } else {
                        info!(source = %self.name, content_type, "reading through ffmpeg");
                        let mut config = self.config.clone();
                        config.kind = SourceKind::Stream;
                        Box::new(FfmpegSource::new(&config)?)
                    };
                    self.inner = Some(source);
                    return Ok(());
                }
                Err(why) => {
                    let delay = self.backoff.next_delay();
                    warn!(source = %self.name, "cannot reach the stream: {why}; retrying in {} ms", delay.as_millis());
                    if Instant::now() + delay > deadline {
                        tokio::time::sleep_until(deadline).await;
                        return Err(VisionError::Stalled {
                            source_name: self.name.clone(),
                            secs: self.config.stall_secs,
                        });
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

#[async_trait]
impl FrameSource for HttpAutoSource {
    async fn next_frame(&mut self) -> crow_core::Result<Option<Frame>> {
        if self.inner.is_none() {
            self.decide().await?;
        }
        match self.inner.as_mut() {
            Some(inner) => inner.next_frame().await,
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 200, 30]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn walks_jpeg_markers() {
        let j = jpeg(33, 17);
        let len = |d: &[u8]| jpeg_len(d, &mut JpegScan::default());
        assert_eq!(len(&j), Ok(Some(j.len())));
        assert_eq!(len(&j[..j.len() - 1]), Ok(None));
        // Resumed byte by byte, the walk finds the same end.
        let mut scan = JpegScan::default();
        let found = (1..=j.len()).find_map(|n| jpeg_len(&j[..n], &mut scan).unwrap());
        assert_eq!(found, Some(j.len()));
        let mut more = j.clone();
        more.extend_from_slice(b"\r\n--x");
        assert_eq!(len(&more), Ok(Some(j.len())));
        assert_eq!(len(b"hello"), Err(()));
        // An APP1 segment holding a thumbnail with its own EOI does not end the JPEG.
        let thumb = jpeg(2, 2);
        let mut exif = vec![0xFF, 0xD8, 0xFF, 0xE1];
        exif.extend_from_slice(&u16::try_from(thumb.len() + 2).unwrap().to_be_bytes());
        exif.extend_from_slice(&thumb);
        exif.extend_from_slice(&j[2..]);
        assert_eq!(len(&exif), Ok(Some(exif.len())));
    }

    #[test]
    fn splits_parts_with_and_without_length_in_any_chunking() {
        let (a, b) = (jpeg(8, 8), jpeg(16, 4));
        let mut stream = Vec::new();
        stream.extend_from_slice(b"--frame\r\nContent-Type: image/jpeg\r\n");
        stream.extend_from_slice(format!("Content-Length: {}\r\n\r\n", a.len()).as_bytes());
        stream.extend_from_slice(&a);
        stream.extend_from_slice(b"\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n");
        stream.extend_from_slice(&b);
        stream.extend_from_slice(b"\r\n--frame\r\n");
        for chunk in [1, 7, 100, stream.len()] {
            let mut p = Multipart::new(Some("frame"));
            let mut parts = Vec::new();
            for c in stream.chunks(chunk) {
                p.push(c);
                while let Some(part) = p.next_part().unwrap() {
                    parts.push(part);
                }
            }
            assert_eq!(parts, vec![a.clone(), b.clone()], "chunk size {chunk}");
        }
        // No boundary known: SOI..EOI scanning.
        let mut p = Multipart::new(None);
        p.push(&stream);
        assert_eq!(p.next_part().unwrap(), Some(a.clone()));
        assert_eq!(p.next_part().unwrap(), Some(b.clone()));
        assert_eq!(p.next_part().unwrap(), None);
    }

    #[test]
    fn boundary_parameter() {
        assert_eq!(
            boundary_of("multipart/x-mixed-replace; boundary=frame").as_deref(),
            Some("frame")
        );
        assert_eq!(
            boundary_of("multipart/x-mixed-replace;boundary=\"--ab\"").as_deref(),
            Some("--ab")
        );
        assert_eq!(boundary_of("multipart/x-mixed-replace"), None);
    }

    #[test]
    fn rate_limit_keeps_one_per_interval() {
        let mut r = RateLimit::new(Some(10.0));
        let t0 = Instant::now();
        let kept = (0..100).filter(|i| r.allow(t0 + Duration::from_millis(i * 10))).count();
        assert!((9..=11).contains(&kept), "{kept}");
        let mut all = RateLimit::new(None);
        assert!(all.allow(t0) && all.allow(t0));
    }
}
