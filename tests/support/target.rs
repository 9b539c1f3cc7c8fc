//! The servers one contract suite runs against: `crow serve` ([`NativeTarget`]) and the
//! Cloudflare Worker under `wrangler dev --local` ([`WorkerTarget`]), both on loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Org, ServerProcess, client, create_org};

/// A CROW server a contract runs against.
pub trait Target {
    /// `native` or `worker`, for messages.
    fn name(&self) -> &'static str;
    /// `http://127.0.0.1:PORT`.
    fn base(&self) -> &str;
    /// A new org with its write key and secret API key.
    fn create_org(&self, name: &str) -> Org;
    /// What the server printed so far.
    fn log(&self) -> String;
    /// The data directory of a native server (its `crow.db`); `None` for the Worker.
    fn data_dir(&self) -> Option<&Path> {
        None
    }
}

/// `crow serve` on a fresh data directory.
#[derive(Debug)]
pub struct NativeTarget {
    data: tempfile::TempDir,
    server: ServerProcess,
}

impl NativeTarget {
    pub fn start() -> NativeTarget {
        let data = tempfile::tempdir().unwrap();
        let server = ServerProcess::start(data.path(), 0, &[]);
        NativeTarget { data, server }
    }

    /// With the rate limits off (the Worker has none; a fuzzer sends thousands of requests).
    pub fn unlimited() -> NativeTarget {
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("crow.toml");
        std::fs::write(
            &config,
            "[limits]\ningest = { per_minute = 0, burst = 0 }\napi = { per_minute = 0, burst = 0 }\n",
        )
        .unwrap();
        let server = ServerProcess::start(data.path(), 0, &["--config", config.to_str().unwrap()]);
        NativeTarget { data, server }
    }
}

impl Target for NativeTarget {
    fn name(&self) -> &'static str {
        "native"
    }
    fn base(&self) -> &str {
        &self.server.base
    }
    fn create_org(&self, name: &str) -> Org {
        create_org(self.data.path(), name)
    }
    fn log(&self) -> String {
        self.server.log()
    }
    fn data_dir(&self) -> Option<&Path> {
        Some(self.data.path())
    }
}

/// deploy/worker in this checkout.
pub fn worker_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/worker")
}

/// The Worker as `wrangler dev --local --env test` serves it (workerd, D1, R2 and Queues in
/// memory and on a temp dir), after `wrangler d1 migrations apply` of CROW's migrations.
#[derive(Debug)]
pub struct WorkerTarget {
    _state: tempfile::TempDir,
    child: Child,
    base: String,
    admin_token: String,
    log: Arc<Mutex<String>>,
}

fn wrangler(dir: &Path) -> Command {
    let mut cmd = Command::new(dir.join("node_modules/.bin/wrangler"));
    cmd.current_dir(dir)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "1")
        .env("NO_COLOR", "1");
    cmd
}

/// A TCP port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl WorkerTarget {
    /// Starts the Worker, or `None` (with a message) when it is not built and
    /// `CROW_REQUIRE_WORKER` is not set; `make worker` builds it.
    pub fn start() -> Option<WorkerTarget> {
        Self::start_with(|_| {})
    }

    /// [`start`](Self::start), running `setup` on wrangler's state directory after the
    /// migrations and before the Worker starts (`crow org create --d1` writes there).
    pub fn start_with(setup: impl FnOnce(&Path)) -> Option<WorkerTarget> {
        let dir = worker_dir();
        let built = dir.join("build/crow_worker_bg.wasm").exists() && dir.join("node_modules/.bin/wrangler").exists();
        if !built {
            assert!(
                std::env::var_os("CROW_REQUIRE_WORKER").is_none(),
                "the Worker is not built in {} (run `make worker`)",
                dir.display()
            );
            eprintln!("skipped: the Worker is not built (run `make worker`)");
            return None;
        }
        let state = tempfile::tempdir().unwrap();
        let persist = state.path().to_str().unwrap().to_owned();
        let out = wrangler(&dir)
            .args([
                "d1",
                "migrations",
                "apply",
                "crow",
                "--local",
                "--env",
                "test",
                "--persist-to",
                &persist,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "wrangler d1 migrations apply failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        setup(state.path());
        let admin_token = format!("admin-{}", free_port());
        let port = free_port();
        let mut cmd = wrangler(&dir);
        // Its own inspector port too: the default (9229) is one per machine, and tests run at once.
        cmd.args(["dev", "--local", "--env", "test", "--ip", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--inspector-port")
            .arg(free_port().to_string())
            .args(["--persist-to", &persist, "--var"])
            .arg(format!("CROW_ADMIN_TOKEN:{admin_token}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let target = WorkerTarget {
            _state: state,
            child,
            base: format!("http://127.0.0.1:{port}"),
            admin_token,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let up = client()
                .get(format!("{}/healthz", target.base))
                .timeout(Duration::from_secs(5))
                .send()
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false);
            if up {
                return Some(target);
            }
            assert!(
                Instant::now() < deadline,
                "wrangler dev did not answer /healthz within 90 s:\n{}",
                target.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Target for WorkerTarget {
    fn name(&self) -> &'static str {
        "worker"
    }
    fn base(&self) -> &str {
        &self.base
    }
    fn create_org(&self, name: &str) -> Org {
        let r = client()
            .post(format!("{}/admin/orgs", self.base))
            .bearer_auth(&self.admin_token)
            .json(&json!({ "name": name }))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(status, 201, "POST /admin/orgs: {body}\n{}", self.log());
        Org {
            org_id: body["org_id"].as_str().unwrap().to_owned(),
            write_key: body["write_key"].as_str().unwrap().to_owned(),
            api_key: body["api_key"].as_str().unwrap().to_owned(),
        }
    }
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for WorkerTarget {
    /// SIGTERM to wrangler, which stops its workerd, then SIGKILL if it lingers. (Never a
    /// negative pid to `kill(1)`: the procps one on this kind of machine signals far more than the
    /// group.)
    fn drop(&mut self) {
        crate::terminate(&mut self.child, Duration::from_secs(10));
    }
}
