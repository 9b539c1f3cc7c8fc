//! Helpers for CROW's end-to-end tests: run the real `crow` binary, talk to it over HTTP on
//! loopback, search a data directory for values that must not be there.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod target;

/// Path of the `crow` binary built by `cargo test --workspace` (or `CROW_BIN`).
pub fn crow_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CROW_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/e2e-xxxx -> target/<profile>/crow
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("crow");
    assert!(
        bin.exists(),
        "{} does not exist: build it with `cargo build -p crow-cli` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// The models directory the `crow` processes of the tests use: `CROW_MODELS`, else the
/// workspace's `models/` (filled by `make models`).
pub fn models_dir() -> PathBuf {
    match std::env::var_os("CROW_MODELS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"),
    }
}

/// True when the model tier's files are present. When they are not, panics if
/// CROW_REQUIRE_MODELS=1 (as `make test` sets), else notes that the test runs without them.
pub fn models_present() -> bool {
    let dir = models_dir();
    let present = dir.join("heads/sentiment.json").is_file() && dir.join("all-MiniLM-L6-v2/model.onnx").is_file();
    if !present {
        assert!(
            std::env::var("CROW_REQUIRE_MODELS").as_deref() != Ok("1"),
            "models are missing in {}: run `make models`",
            dir.display()
        );
        eprintln!("note: no models in {}; testing the lexicon tier only", dir.display());
    }
    present
}

/// Runs `crow` with arguments against a data dir; returns stdout, panics with stderr on failure.
pub fn crow(data: &Path, args: &[&str]) -> String {
    let out = Command::new(crow_bin())
        .env("CROW_MODELS", models_dir())
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "crow {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `crow` with arguments; kills it after `secs` (then the test fails on its status).
pub fn crow_output(data: &Path, args: &[&str], secs: u64) -> std::process::Output {
    let mut child = Command::new(crow_bin())
        .env("CROW_MODELS", models_dir())
        .arg("--data")
        .arg(data)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

/// Credentials of an org created with `crow org create --json`.
#[derive(Debug, Clone)]
pub struct Org {
    pub org_id: String,
    pub write_key: String,
    pub api_key: String,
}

/// Creates an org in the data dir.
pub fn create_org(data: &Path, name: &str) -> Org {
    let out = crow(data, &["org", "create", name, "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 3, "org create --json prints exactly three keys: {v}");
    Org {
        org_id: v["org_id"].as_str().unwrap().to_owned(),
        write_key: v["write_key"].as_str().unwrap().to_owned(),
        api_key: v["api_key"].as_str().unwrap().to_owned(),
    }
}

/// A `crow serve` child process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pub base: String,
    pub stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `crow serve --addr 127.0.0.1:PORT` (0 = any free port) and waits until it listens.
    pub fn start(data: &Path, port: u16, extra: &[&str]) -> ServerProcess {
        Self::start_logging(data, port, "info", extra)
    }

    /// As [`start`](Self::start), with a log filter (`debug` logs every request).
    pub fn start_logging(data: &Path, port: u16, log: &str, extra: &[&str]) -> ServerProcess {
        let mut child = Command::new(crow_bin())
            .env("CROW_MODELS", models_dir())
            .arg("--data")
            .arg(data)
            .args(["--log", log, "serve", "--addr", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        let log = stderr.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if !sent && let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                    sent = true;
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("crow serve did not start: {}", stderr.lock().unwrap());
            }
        };
        ServerProcess {
            child,
            base: format!("http://{addr}"),
            stderr,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// kill -9, keeping the handle (dropping it later is harmless).
    pub fn kill9_in_place(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// kill -9.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (graceful).
    pub fn stop(mut self) {
        self.stop_ref();
    }

    /// SIGTERM and wait (graceful), keeping the handle (for its log).
    pub fn stop_ref(&mut self) {
        terminate(&mut self.child, Duration::from_secs(20));
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM to `child`, then SIGKILL when it has not exited within `grace`; reaps it.
pub fn terminate(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A blocking HTTP client with a short timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GET with the org's secret key; returns (status, JSON body).
pub fn api_get(base: &str, api_key: &str, path: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{base}{path}"))
        .bearer_auth(api_key)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// All interactions of the org through the paginated API.
pub fn all_interactions(base: &str, api_key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/interactions?limit=1000&cursor={c}"),
            None => "/api/v1/interactions?limit=1000".to_owned(),
        };
        let (status, body) = api_get(base, api_key, &path);
        assert_eq!(status, 200, "{body}");
        out.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Waits until `f` is true (polling), panicking with `what` after `secs`.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Waits until the server's queues are empty (read from /metrics).
pub fn wait_queues_drained(base: &str) {
    let metrics = || {
        client()
            .get(format!("{base}/metrics"))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = metrics();
        let pending: u64 = text
            .lines()
            .filter(|l| {
                l.starts_with("crow_queue_depth")
                    && (l.contains("state=\"ready\"") || l.contains("state=\"in_flight\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if text.contains("crow_queue_depth") && pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the queues did not drain within 60 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every file under `dir`, with gzip files decompressed, as (path, bytes).
pub fn read_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
                    let mut d = flate2::read::MultiGzDecoder::new(&bytes[..]);
                    let mut v = Vec::new();
                    d.read_to_end(&mut v).unwrap();
                    v
                } else {
                    bytes
                };
                out.push((p, bytes));
            }
        }
    }
    out
}

/// Paths of the files under `dir` (gzip decompressed) that contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let n = needle.as_bytes();
    read_tree(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(n.len()).any(|w| w == n))
        .map(|(p, _)| p)
        .collect()
}

/// The Python interpreter of the venv with the real Segment and PostHog clients.
pub fn python() -> PathBuf {
    let p = std::env::var("CROW_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(
        p.exists(),
        "{} not found: run `make python-clients` (make test does) to install segment-analytics-python and posthog",
        p.display()
    );
    p
}

/// Runs a Python script with the venv's interpreter; panics with its output on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// True when the vision models are present: CenterFace, the ONNX Runtime library and the
/// scikit-image test pictures under [`models_dir`]. When they are not, panics if
/// CROW_REQUIRE_MODELS=1, else notes that the test is skipped.
pub fn vision_models_present() -> bool {
    let dir = models_dir();
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("onnxruntime/libonnxruntime.so.1.32.0"));
    let missing: Vec<PathBuf> = [
        lib,
        dir.join("centerface/centerface.onnx"),
        dir.join("images/astronaut.png"),
        dir.join("images/camera.png"),
        dir.join("images/coffee.png"),
    ]
    .into_iter()
    .filter(|p| !p.is_file())
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CROW_REQUIRE_MODELS").as_deref() != Ok("1"),
        "CROW_REQUIRE_MODELS=1 but {missing:?} are missing: run `make models`"
    );
    eprintln!("skipping: no vision models ({missing:?} missing; run `make models`)");
    false
}

/// A shop for the tests of the agent surfaces (MCP, A2A): an org with three products (one of
/// them `Trail Runner 42`), a running `crow serve`, and a pricing funnel ingested and processed
/// (three visitors see `/pricing`, `anon-1` then signs up).
pub fn shop(dir: &Path, name: &str) -> (Org, ServerProcess) {
    let data = dir.join("data");
    let org = create_org(&data, name);
    let catalog = dir.join("catalog.csv");
    std::fs::write(
        &catalog,
        "sku,name,brand,category,price,currency\nTR-42,Trail Runner 42,Trailhead,Shoes,129.00,EUR\n\
         SJ-1,Storm Jacket,Trailhead,Outerwear,229.00,EUR\nDP-20,Day Pack 20L,Trailhead,Bags,59.00,EUR\n",
    )
    .unwrap();
    crow(
        &data,
        &["products", "import", catalog.to_str().unwrap(), "--org", &org.org_id],
    );
    let server = ServerProcess::start(&data, 0, &[]);
    let mut batch = Vec::new();
    for (i, anon) in ["anon-1", "anon-2", "anon-3"].iter().enumerate() {
        batch.push(
            serde_json::json!({"type": "page", "messageId": format!("pg-{i}"), "anonymousId": anon,
            "properties": {"path": "/pricing"}}),
        );
    }
    batch
        .push(serde_json::json!({"type": "track", "messageId": "su-1", "anonymousId": "anon-1", "event": "Signed Up"}));
    let r = client()
        .post(format!("{}/v1/batch", server.base))
        .basic_auth(&org.write_key, Some(""))
        .json(&serde_json::json!({ "batch": batch }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
    wait_queues_drained(&server.base);
    (org, server)
}

/// `POST`s a JSON text (sent as it is, so tests can send broken JSON) with an optional bearer
/// key; answers the status and the body as JSON (a string when it is not JSON). It accepts an
/// event stream too, as streamable-HTTP clients (MCP) must.
pub fn post_text(url: &str, key: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = client()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}
