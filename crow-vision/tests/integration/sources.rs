//! Frame sources against real ffmpeg processes and real loopback HTTP servers.
//!
//! The videos are made with ffmpeg's `testsrc` into a temporary directory; the HTTP servers
//! (MJPEG, MPEG-TS) are written here with tokio. Needs `ffmpeg` and `ffprobe` on `PATH`
//! (`bash scripts/ffmpeg.sh`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crow_core::ports::{Frame, FrameSource};
use crow_vision::VisionError;
use crow_vision::source::{FfmpegSource, ImageFolderSource, SourceConfig, SourceKind, open};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Every test is bounded: a hang is a failure, not a stuck CI job.
const TEST_LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_LIMIT, f)
        .await
        .expect("the test took too long (a source hangs?)");
}

/// Makes a `testsrc` video: `size` like "320x240", `rate` fps, `secs` long, plus output options.
fn make_video(dir: &Path, name: &str, size: &str, rate: u32, secs: u32, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc=size={size}:rate={rate}"))
        .args(["-t", &secs.to_string()])
        .args(extra)
        .arg(&path)
        .status()
        .expect("ffmpeg must be installed to run these tests: bash scripts/ffmpeg.sh");
    assert!(status.success(), "ffmpeg could not make {name}");
    path
}

/// Reads until `Ok(None)`, returning the frames and the error that ended it, if any.
async fn drain(source: &mut dyn FrameSource) -> (Vec<Frame>, Option<crow_core::Error>) {
    let mut frames = Vec::new();
    loop {
        match source.next_frame().await {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, None),
            Err(e) => {
                // After an error a file source ends.
                assert!(
                    matches!(source.next_frame().await, Ok(None)),
                    "a file source goes on after {e}"
                );
                return (frames, Some(e));
            }
        }
    }
}

fn config(uri: impl Into<String>) -> SourceConfig {
    SourceConfig {
        stall_secs: 2,
        restart_initial_ms: 100,
        restart_max_ms: 400,
        ..SourceConfig::new(uri)
    }
}

fn jpeg(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb(rgb));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

// ---------------------------------------------------------------------------------------------
// A loopback HTTP server.

#[derive(Clone)]
enum Serve {
    /// `multipart/x-mixed-replace` JPEGs of one color at 20 fps, every other part without
    /// Content-Length.
    Mjpeg { rgb: [u8; 3] },
    /// One body with a content type, then the connection closes.
    Body {
        content_type: &'static str,
        body: Arc<Vec<u8>>,
    },
}

struct Server {
    port: u16,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves on `port` (0: any free port). SO_REUSEADDR lets a restarted server take the port
    /// back at once.
    async fn start(port: u16, what: Serve) -> Server {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(([127, 0, 0, 1], port).into()).unwrap();
        let listener = socket.listen(64).unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) closes every connection.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(handle(stream, what.clone()));
            }
        });
        Server { port, task }
    }

    /// Kills the server and every open connection, as a camera losing power would.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn handle(mut stream: TcpStream, what: Serve) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        if request.len() > 16 * 1024 {
            return;
        }
    }
    match what {
        Serve::Mjpeg { rgb } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=crowframe\r\n\
                        Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let image = jpeg(64, 48, rgb);
            for i in 0u64.. {
                let length = if i % 2 == 0 {
                    format!("Content-Length: {}\r\n", image.len())
                } else {
                    String::new()
                };
                let mut part = format!("--crowframe\r\nContent-Type: image/jpeg\r\n{length}\r\n").into_bytes();
                part.extend_from_slice(&image);
                part.extend_from_slice(b"\r\n");
                if stream.write_all(&part).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Serve::Body { content_type, body } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if stream.write_all(head.as_bytes()).await.is_ok() {
                let _ = stream.write_all(&body).await;
            }
            let _ = stream.shutdown().await;
        }
    }
}

/// A loopback port nobody listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn is_red(f: &Frame) -> bool {
    f.rgb[0] > 180 && f.rgb[1] < 80 && f.rgb[2] < 80
}

fn is_blue(f: &Frame) -> bool {
    f.rgb[2] > 180 && f.rgb[0] < 80 && f.rgb[1] < 80
}

// ---------------------------------------------------------------------------------------------
// Files.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_yields_every_frame_in_time_order_then_none() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let video = make_video(dir.path(), "clip.mp4", "320x240", 10, 2, &["-pix_fmt", "yuv420p"]);
        let mut source = open(&SourceConfig {
            start_ms: 5_000,
            ..config(video.to_str().unwrap())
        })
        .unwrap();
        let (frames, error) = drain(source.as_mut()).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(frames.len(), 20);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!((f.width, f.height), (320, 240));
            assert_eq!(f.rgb.len(), 320 * 240 * 3);
            assert_eq!(f.timestamp, 5_000 + 100 * i as i64);
        }
        // testsrc moves: the frames are real pictures, not one repeated buffer.
        assert_ne!(frames[0].rgb, frames[10].rgb);
        assert!(matches!(source.next_frame().await, Ok(None)), "the end is sticky");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fps_extraction_and_scaling_reduce_the_frames() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let video = make_video(dir.path(), "clip.mkv", "320x240", 10, 2, &[]);
        let mut source = FfmpegSource::new(&SourceConfig {
            kind: SourceKind::File,
            fps: Some(2.0),
            width: Some(161),
            ..config(video.to_str().unwrap())
        })
        .unwrap();
        assert!(!source.is_live());
        let (frames, error) = drain(&mut source).await;
        assert!(error.is_none(), "{error:?}");
        assert!((3..=5).contains(&frames.len()), "2 s at 2 fps, got {}", frames.len());
        for (i, f) in frames.iter().enumerate() {
            // 161 wide keeps 4:3 with an even height: 120.
            assert_eq!((f.width, f.height, f.rgb.len()), (161, 120, 161 * 120 * 3));
            assert_eq!(f.timestamp, 500 * i as i64);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_video_ends_cleanly_or_with_a_clear_error() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        // The index up front: the first half holds decodable frames.
        let whole = make_video(
            dir.path(),
            "whole.mp4",
            "320x240",
            10,
            2,
            &["-c:v", "mpeg4", "-q:v", "5", "-movflags", "+faststart"],
        );
        let bytes = std::fs::read(&whole).unwrap();
        let cut = dir.path().join("cut.mp4");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let mut source = open(&config(cut.to_str().unwrap())).unwrap();
        let (frames, error) = drain(source.as_mut()).await;
        assert!(!frames.is_empty() && frames.len() < 20, "got {} frames", frames.len());
        assert!(frames.iter().all(|f| f.rgb.len() == 320 * 240 * 3));
        assert!(frames.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        if let Some(e) = error {
            assert!(e.to_string().contains("cut.mp4"), "{e}");
        }

        // The index at the end (ffmpeg's default): half a file has no index, no frame at all.
        let whole = make_video(dir.path(), "tail.mp4", "320x240", 10, 2, &["-c:v", "mpeg4"]);
        let bytes = std::fs::read(&whole).unwrap();
        let cut = dir.path().join("no-index.mp4");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let mut source = open(&config(cut.to_str().unwrap())).unwrap();
        let (frames, error) = drain(source.as_mut()).await;
        assert!(frames.is_empty());
        let e = error.expect("a video without its index is an error").to_string();
        assert!(e.contains("no-index.mp4") && e.contains("moov atom not found"), "{e}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_a_video_a_missing_file_and_a_missing_ffmpeg_are_clear_errors() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.mp4");
        std::fs::write(&text, "this is not a video\n".repeat(100)).unwrap();
        let mut source = open(&config(text.to_str().unwrap())).unwrap();
        let e = source.next_frame().await.expect_err("a text file is not a video");
        let msg = e.to_string();
        assert!(
            msg.contains("notes.mp4") && msg.contains("not a readable video"),
            "{msg}"
        );
        assert!(matches!(e, crow_core::Error::Unavailable(_)), "{e:?}");
        assert!(matches!(source.next_frame().await, Ok(None)));

        let missing = dir.path().join("missing.mp4");
        let Err(err) = open(&config(missing.to_str().unwrap())) else {
            panic!("a missing file fails at open");
        };
        assert!(err.to_string().contains("missing.mp4"), "{err}");
        assert!(matches!(&err, VisionError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound));

        let video = make_video(dir.path(), "clip.mkv", "64x48", 10, 1, &[]);
        for (ffmpeg, ffprobe) in [("/nonexistent/ffmpeg", "ffprobe"), ("ffmpeg", "/nonexistent/ffprobe")] {
            let mut source = open(&SourceConfig {
                ffmpeg: ffmpeg.into(),
                ffprobe: ffprobe.into(),
                ..config(video.to_str().unwrap())
            })
            .unwrap();
            let msg = source.next_frame().await.expect_err("no ffmpeg, no frames").to_string();
            assert!(
                msg.contains("not found") && msg.contains("bash scripts/ffmpeg.sh"),
                "{msg}"
            );
        }

        // Live: a missing ffmpeg is reported (not retried in silence), and again on every call.
        let port = closed_port().await;
        let mut live = open(&SourceConfig {
            ffmpeg: "/nonexistent/ffmpeg".into(),
            width: Some(64),
            height: Some(48),
            ..config(format!("rtsp://127.0.0.1:{port}/cam"))
        })
        .unwrap();
        for _ in 0..2 {
            let msg = live.next_frame().await.expect_err("no ffmpeg").to_string();
            assert!(msg.contains("scripts/ffmpeg.sh"), "{msg}");
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Live streams.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_stream_reports_a_stall_in_time_and_hides_credentials() {
    bounded(async {
        let port = closed_port().await;
        for uri in [
            format!("rtsp://admin:s3cretpw@127.0.0.1:{port}/stream1"),
            format!("http://admin:s3cretpw@127.0.0.1:{port}/video.mjpg"),
        ] {
            let mut source = open(&SourceConfig {
                stall_secs: 1,
                ..config(uri.as_str())
            })
            .unwrap();
            for round in 0..2 {
                let t = Instant::now();
                let e = source.next_frame().await.expect_err("nothing listens there");
                let waited = t.elapsed();
                let msg = e.to_string();
                assert!(
                    waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
                    "{uri} round {round}: {waited:?}"
                );
                assert!(msg.contains("no frames for 1 s"), "{msg}");
                assert!(matches!(e, crow_core::Error::Unavailable(_)), "{e:?}");
                assert!(
                    !msg.contains("s3cretpw") && !msg.contains("admin"),
                    "credentials leaked: {msg}"
                );
                assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_messages_are_scrubbed_of_credentials() {
    bounded(async {
        // A URL read as a finite file fails with ffprobe's own message, which repeats the URL
        // (credentials included) and, percent-decoded, the password.
        let port = closed_port().await;
        let mut source = open(&SourceConfig {
            kind: SourceKind::File,
            ..config(format!("rtsp://admin:p%40ss-w0rd@127.0.0.1:{port}/stream1"))
        })
        .unwrap();
        let msg = source
            .next_frame()
            .await
            .expect_err("nothing listens there")
            .to_string();
        assert!(msg.contains("Connection refused"), "ffmpeg's reason is kept: {msg}");
        assert!(msg.contains(&format!("rtsp://***@127.0.0.1:{port}/stream1")), "{msg}");
        assert!(
            !msg.contains("p%40ss-w0rd") && !msg.contains("p@ss-w0rd") && !msg.contains("admin"),
            "{msg}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mjpeg_stream_resumes_by_itself_after_the_server_restarts() {
    bounded(async {
        let server = Server::start(0, Serve::Mjpeg { rgb: [230, 20, 20] }).await;
        let port = server.port;
        // `auto` asks the server, sees multipart, reads MJPEG natively.
        let mut source = open(&SourceConfig {
            stall_secs: 1,
            ..config(format!("http://127.0.0.1:{port}/video.mjpg"))
        })
        .unwrap();
        let mut last = i64::MIN;
        for _ in 0..6 {
            let f = source.next_frame().await.unwrap().expect("a live source does not end");
            assert_eq!((f.width, f.height, f.rgb.len()), (64, 48, 64 * 48 * 3));
            assert!(is_red(&f), "{:?}", &f.rgb[..3]);
            assert!(f.timestamp > last);
            last = f.timestamp;
        }

        server.kill().await;
        // A couple of frames may still be queued; then the stall is reported.
        let t = Instant::now();
        let stalled = loop {
            match source.next_frame().await {
                Ok(Some(f)) => {
                    assert!(f.timestamp > last);
                    last = f.timestamp;
                    assert!(t.elapsed() < Duration::from_millis(500), "frames after the server died");
                }
                Ok(None) => panic!("a live source does not end"),
                Err(e) => break e,
            }
        };
        assert!(stalled.to_string().contains("no frames for 1 s"), "{stalled}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

        // The camera comes back on the same port, in another color; the same source resumes.
        let server = Server::start(port, Serve::Mjpeg { rgb: [20, 20, 230] }).await;
        let t = Instant::now();
        let mut errors = 0;
        let resumed = loop {
            match source.next_frame().await {
                Ok(Some(f)) => break f,
                Ok(None) => panic!("a live source does not end"),
                Err(e) => {
                    assert!(e.to_string().contains("no frames"), "{e}");
                    errors += 1;
                }
            }
        };
        assert!(is_blue(&resumed), "{:?}", &resumed.rgb[..3]);
        assert!(resumed.timestamp > last);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "resumed after {:?} ({errors} stalls)",
            t.elapsed()
        );
        for _ in 0..3 {
            assert!(is_blue(&source.next_frame().await.unwrap().unwrap()));
        }
        server.kill().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_fps_drops_the_frames_in_between() {
    bounded(async {
        let server = Server::start(0, Serve::Mjpeg { rgb: [230, 20, 20] }).await;
        let uri = format!("http://127.0.0.1:{}/stream", server.port);
        // Unlimited: 20 fps from the server.
        let mut source = open(&SourceConfig {
            kind: SourceKind::Mjpeg,
            ..config(uri.as_str())
        })
        .unwrap();
        source.next_frame().await.unwrap().unwrap();
        let t = Instant::now();
        for _ in 0..6 {
            source.next_frame().await.unwrap().unwrap();
        }
        let unlimited = t.elapsed();
        // 4 fps: one frame in five kept.
        let mut source = open(&SourceConfig {
            kind: SourceKind::Mjpeg,
            fps: Some(4.0),
            width: Some(32),
            ..config(uri.as_str())
        })
        .unwrap();
        source.next_frame().await.unwrap().unwrap();
        let t = Instant::now();
        let mut stamps = Vec::new();
        for _ in 0..6 {
            let f = source.next_frame().await.unwrap().unwrap();
            assert_eq!((f.width, f.height), (32, 24));
            stamps.push(f.timestamp);
        }
        let limited = t.elapsed();
        assert!(unlimited < Duration::from_millis(900), "unlimited: {unlimited:?}");
        assert!(limited > Duration::from_millis(1_300), "limited to 4 fps: {limited:?}");
        assert!(stamps.windows(2).all(|w| w[1] - w[0] >= 150), "{stamps:?}");
        server.kill().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_video_stream_goes_through_ffmpeg_and_is_restarted() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let ts = make_video(dir.path(), "clip.ts", "160x120", 10, 1, &["-f", "mpegts"]);
        let body = Arc::new(std::fs::read(ts).unwrap());
        let server = Server::start(
            0,
            Serve::Body {
                content_type: "video/mp2t",
                body,
            },
        )
        .await;
        // `auto` sees video/mp2t and runs ffmpeg as a live stream; the 1 s clip ends every time
        // and the supervisor starts ffmpeg again, so more frames come than one clip holds.
        let mut source = open(&config(format!("http://127.0.0.1:{}/live.ts", server.port))).unwrap();
        let mut last = i64::MIN;
        for _ in 0..25 {
            let f = source.next_frame().await.unwrap().expect("a live source does not end");
            assert_eq!((f.width, f.height), (160, 120));
            assert!(f.timestamp > last, "wall-clock timestamps in order");
            last = f.timestamp;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((now - last).abs() < 60_000, "live timestamps are the wall clock");
        drop(source);
        server.kill().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Image folders and configuration.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_folder_reports_a_corrupt_file_and_goes_on() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        image::RgbImage::from_pixel(40, 30, image::Rgb([200, 10, 10]))
            .save(dir.path().join("a.png"))
            .unwrap();
        std::fs::write(dir.path().join("b.jpg"), jpeg(40, 30, [10, 200, 10])).unwrap();
        let half = jpeg(40, 30, [0, 0, 0]);
        std::fs::write(dir.path().join("c.JPG"), &half[..half.len() / 3]).unwrap();
        image::RgbImage::from_pixel(20, 10, image::Rgb([10, 10, 200]))
            .save(dir.path().join("d.png"))
            .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();

        let uri = dir.path().to_str().unwrap();
        let folder = ImageFolderSource::new(&config(uri)).unwrap();
        assert_eq!(folder.files().len(), 4);
        let mut source = open(&SourceConfig {
            fps: Some(2.0),
            start_ms: 1_000,
            ..config(uri)
        })
        .unwrap();
        let a = source.next_frame().await.unwrap().unwrap();
        assert_eq!((a.width, a.height, a.timestamp), (40, 30, 1_000));
        let b = source.next_frame().await.unwrap().unwrap();
        assert_eq!(b.timestamp, 1_500);
        let e = source.next_frame().await.expect_err("c.JPG is cut short");
        assert!(e.to_string().contains("c.JPG"), "{e}");
        let d = source.next_frame().await.unwrap().unwrap();
        assert_eq!((d.width, d.height, d.timestamp), (20, 10, 2_500));
        assert!(source.next_frame().await.unwrap().is_none());
    })
    .await;
}

#[test]
fn the_example_config_parses_and_bad_fields_are_named() {
    let c: SourceConfig = serde_json::from_str(
        r#"{ "uri": "rtsp://cam/1", "kind": "stream", "fps": 5, "width": 640, "height": 360, "start_ms": 0,
             "stall_secs": 10, "restart_initial_ms": 1000, "restart_max_ms": 30000,
             "ffmpeg": "ffmpeg", "ffprobe": "ffprobe" }"#,
    )
    .unwrap();
    assert_eq!(c.kind, SourceKind::Stream);
    c.validate().unwrap();
    assert!(serde_json::from_str::<SourceConfig>(r#"{ "uri": "x", "stall": 3 }"#).is_err());
    let field = |c: SourceConfig| match open(&c) {
        Err(VisionError::Config { field, .. }) => field,
        Err(e) => panic!("expected a config error, got {e}"),
        Ok(_) => panic!("expected a config error"),
    };
    assert_eq!(
        field(SourceConfig {
            fps: Some(-1.0),
            ..SourceConfig::new("rtsp://cam/1")
        }),
        "fps"
    );
    assert_eq!(
        field(SourceConfig {
            stall_secs: 0,
            ..SourceConfig::new("rtsp://cam/1")
        }),
        "stall_secs"
    );
    assert_eq!(field(SourceConfig::new("")), "uri");
    assert_eq!(
        field(SourceConfig {
            kind: SourceKind::Mjpeg,
            ..SourceConfig::new("/tmp/x.mp4")
        }),
        "uri"
    );
}
