//! # crow-server
//!
//! CROW's native HTTP server: a thin axum shell. Every request is turned into a plain
//! [`HttpRequest`] and handed to crow-ingest (the rate limits, the ingest endpoints and the REST
//! API), the same functions the Cloudflare Worker calls; this crate only adds `/healthz`,
//! `/metrics`, the background worker that drains the durable queues into the workflows, and
//! graceful shutdown.
//!
//! ```no_run
//! # async fn run() -> Result<(), crow_server::ServerError> {
//! let config = crow_server::ServerConfig::new("./crow-data", "127.0.0.1:8787".parse().unwrap());
//! let server = crow_server::Server::start(config).await?;
//! println!("listening on http://{}", server.addr());
//! server.wait().await
//! # }
//! ```
#![warn(missing_docs)]

pub mod blocking;
pub mod cctv;
#[cfg(feature = "graphql")]
pub mod graphql;
pub mod live;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use crow_core::ports::{Embedder, EventStore, JobQueue, VectorIndex, queues};
use crow_core::vector::{IndexInfo, IndexKind, Metric};
use crow_ingest::api::AuthConfig;
use crow_ingest::api::auth::JwtVerifier;
use crow_ingest::http::{HttpRequest, HttpResponse};
use crow_ingest::ingest::{IngestConfig, IngestService, Routed};
pub use crow_ingest::limits::RateLimitConfig;
use crow_ingest::limits::RateLimiter;
use crow_ingest::search::Indexes;
use crow_ingest::workflows::{PortRefs, WithExports, WithText};
use crow_nlp::{Analyzer, NlpConfig};
use crow_store::vector::{HnswConfig, HnswIndex};
use crow_store::{Durability, LocalBlobStore, SqliteStore, StoreConfig, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

pub use blocking::Blocking;
pub use metrics::Metrics;

/// Errors of the server shell.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Opening the store failed.
    #[error("cannot open the data directory {path}: {source}")]
    Store {
        /// Data directory.
        path: PathBuf,
        /// Cause.
        source: crow_store::StoreError,
    },
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The `[social]` table is invalid.
    #[error(transparent)]
    Social(#[from] crow_ingest::social::SocialError),
    /// A camera (the `[cctv]` table, or `crow video`) is misconfigured or failed.
    #[error("cctv: {0}")]
    Cctv(String),
    /// The `[auth]` table is invalid.
    #[error("auth: {0}")]
    Auth(String),
}

/// Server configuration. Layered by the CLI: defaults, then a file, then `CROW_*` variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Data directory (SQLite database and object store).
    pub data_dir: PathBuf,
    /// Listen address.
    pub addr: SocketAddr,
    /// `normal` (survives a crash of the process) or `full` (survives power loss).
    pub durability: Durability,
    /// Ingest limits and CORS.
    pub ingest: IngestConfig,
    /// Workflow worker: maximum jobs per reservation.
    pub worker_batch: usize,
    /// Workflow worker: idle poll interval in milliseconds.
    pub worker_poll_ms: u64,
    /// Run the workflow worker in this process.
    pub run_worker: bool,
    /// Text intelligence: where the models are (the `[nlp]` table). Without model files the
    /// lexicon tier runs.
    pub nlp: NlpConfig,
    /// The vector indexes' tuning (the `[vectors]` table: `m`, `ef_construction`, `ef_search`,
    /// `exact_below`, `exact_max_candidates`, `rebuild_tombstones`, `snapshot_log_bytes`, `sync`).
    pub vectors: HnswConfig,
    /// Social listening (the `[social]` table, the same fields as a `crow social` config):
    /// when set, the server also polls these sources on their schedules (with the worker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub social: Option<crow_ingest::social::config::SocialConfig>,
    /// Cameras (the `[cctv]` table, see [`cctv`]): when set, the server runs them, each
    /// restarted with backoff when it fails. The CenterFace model is read from the `[nlp]`
    /// table's `models_dir` unless `[cctv.face] model` names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cctv: Option<cctv::CctvConfig>,
    /// Per-key rate limits of ingest and of the REST API (the `[limits]` table:
    /// `ingest = { per_minute, burst }`, `api = { per_minute, burst }`; `per_minute = 0` is off).
    pub limits: RateLimitConfig,
    /// User sessions and download links (the `[auth]` table).
    pub auth: AuthSettings,
}

/// How the REST API authenticates users (API keys always work).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 secret (at least 32 bytes) that signs user session tokens; also `CROW_JWT_SECRET`.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<String>,
    /// EdDSA instead: the PEM file of the Ed25519 public key that verifies session tokens.
    pub jwt_public_key: Option<PathBuf>,
    /// The matching private key, when this installation also issues tokens (`crow token`).
    pub jwt_private_key: Option<PathBuf>,
    /// Required `iss` claim.
    pub jwt_issuer: Option<String>,
    /// How long export download links stay valid, in seconds (default 900).
    pub link_ttl_secs: Option<u64>,
}

impl AuthSettings {
    /// The session verifier these settings describe, if any; with neither key set, the
    /// `CROW_JWT_SECRET` environment variable is the HS256 secret.
    pub fn verifier(&self) -> Result<Option<JwtVerifier>, ServerError> {
        let env_secret = || std::env::var("CROW_JWT_SECRET").ok().filter(|s| !s.is_empty());
        let bad = |e: crow_ingest::api::auth::JwtConfigError| ServerError::Auth(e.to_string());
        let read =
            |p: &PathBuf| std::fs::read(p).map_err(|e| ServerError::Auth(format!("cannot read {}: {e}", p.display())));
        let v = match (&self.jwt_secret, &self.jwt_public_key) {
            (Some(_), Some(_)) => {
                return Err(ServerError::Auth(
                    "set either jwt_secret (HS256) or jwt_public_key (EdDSA), not both".into(),
                ));
            }
            (Some(secret), None) => JwtVerifier::hs256(secret.as_bytes()).map_err(bad)?,
            (None, Some(public)) => {
                let private = self.jwt_private_key.as_ref().map(read).transpose()?;
                JwtVerifier::eddsa(&read(public)?, private.as_deref()).map_err(bad)?
            }
            (None, None) => match env_secret() {
                Some(secret) => JwtVerifier::hs256(secret.as_bytes()).map_err(bad)?,
                None => return Ok(None),
            },
        };
        Ok(Some(match &self.jwt_issuer {
            Some(iss) => v.with_issuer(iss),
            None => v,
        }))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./crow-data"),
            addr: SocketAddr::from(([127, 0, 0, 1], 8787)),
            durability: Durability::Normal,
            ingest: IngestConfig::default(),
            worker_batch: 64,
            worker_poll_ms: 200,
            run_worker: true,
            nlp: NlpConfig::default(),
            vectors: HnswConfig::default(),
            social: None,
            cctv: None,
            limits: RateLimitConfig::default(),
            auth: AuthSettings::default(),
        }
    }
}

impl ServerConfig {
    /// Defaults with a data directory and an address.
    pub fn new(data_dir: impl Into<PathBuf>, addr: SocketAddr) -> Self {
        ServerConfig {
            data_dir: data_dir.into(),
            addr,
            ..ServerConfig::default()
        }
    }
}

/// The backends the server runs on.
#[derive(Debug)]
pub struct Backends {
    /// Ingest service (owns the SQLite store).
    pub ingest: IngestService<SqliteStore>,
    /// Object store.
    pub blobs: LocalBlobStore,
    /// Metrics.
    pub metrics: Metrics,
    /// Wakes the worker when new jobs were enqueued.
    pub wake: Notify,
    /// Text analysis (model tier when its files are present, else the lexicon tier).
    pub analyzer: Analyzer,
    /// The three vector indexes under `data/vectors/`, when the embedding model is loaded.
    pub indexes: Option<Indexes>,
    /// API authentication: session tokens, download links.
    pub auth: AuthConfig,
    /// Per-key rate limits.
    pub limiter: RateLimiter,
    /// Live notices (interactions stored, insights computed) for GraphQL subscriptions.
    pub live: live::LiveBus,
    data_dir: PathBuf,
}

/// Proof that this process is the only workflow worker on a data directory: an exclusive lock
/// on `worker.lock`, released by the OS when the process exits, however it exits.
#[derive(Debug)]
pub struct WorkerLock {
    _file: std::fs::File,
}

impl Backends {
    /// Opens the store and object store under the data directory.
    pub fn open(config: &ServerConfig) -> Result<Self, ServerError> {
        let store_err = |source| ServerError::Store {
            path: config.data_dir.clone(),
            source,
        };
        let store = SqliteStore::open(
            &config.data_dir,
            StoreConfig {
                durability: config.durability,
                ..StoreConfig::default()
            },
        )
        .map_err(store_err)?;
        let blobs = LocalBlobStore::new(&config.data_dir.join("objects")).map_err(store_err)?;
        let (analyzer, fallback) = Analyzer::from_config(&config.nlp);
        match fallback {
            Some(reason) => {
                tracing::warn!(%reason, "text analysis runs the lexicon tier: the model tier could not load")
            }
            None => tracing::info!(tier = analyzer.tier(), "text analysis ready"),
        }
        let analyzer = analyzer.with_catalog(Arc::new(store.clone()));
        let indexes = match analyzer.embedding_dim() {
            Some(dim) => Some(open_indexes(&config.data_dir, dim, &config.vectors).map_err(store_err)?),
            None => None,
        };
        let mut auth = AuthConfig::new(link_secret(&config.data_dir)?);
        if let Some(ttl) = config.auth.link_ttl_secs {
            auth.link_ttl_ms = (ttl.clamp(1, 7 * 86_400) * 1000) as i64;
        }
        if let Some(v) = config.auth.verifier()? {
            auth = auth.with_sessions(v);
        }
        Ok(Backends {
            ingest: IngestService::new(store, config.ingest.clone()),
            blobs,
            metrics: Metrics::default(),
            wake: Notify::new(),
            analyzer,
            indexes,
            auth,
            limiter: RateLimiter::new(&config.limits),
            live: live::LiveBus::default(),
            data_dir: config.data_dir.clone(),
        })
    }

    /// Becomes the data directory's workflow worker if no other live process is: takes the
    /// exclusive worker lock and then ends the leases a killed worker left behind, so their jobs
    /// run now instead of after the lease expires. `None` when another process holds the lock.
    pub async fn become_worker(&self) -> Result<Option<WorkerLock>, ServerError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.data_dir.join("worker.lock"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(ServerError::Io(e)),
        }
        for q in queues::ALL {
            match self.store().release_leases(q).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queue = q, jobs = n, "re-delivering jobs leased by a previous worker"),
                Err(e) => tracing::warn!(queue = q, error = %e, "could not release stale leases"),
            }
        }
        Ok(Some(WorkerLock { _file: file }))
    }

    /// Runs every queued job now when this process can be the data directory's worker (a CLI
    /// command that just enqueued work); returns how many ran, or `None` when another process
    /// (`crow serve`) is the worker and will run them.
    pub async fn drain_if_worker(&self) -> Result<Option<usize>, ServerError> {
        let Some(_lock) = self.become_worker().await? else {
            return Ok(None);
        };
        let mut jobs = 0;
        loop {
            let n = self.work_once(64).await;
            if n == 0 {
                return Ok(Some(jobs));
            }
            jobs += n;
        }
    }

    /// The SQLite store.
    pub fn store(&self) -> &SqliteStore {
        self.ingest.store()
    }

    /// Handles one plain request: rate limits, ingest routes, the REST API, health and metrics.
    pub async fn handle(&self, req: &HttpRequest) -> (HttpResponse, &'static str) {
        if let Err(resp) = self.limiter.check(req) {
            return (resp, "limited");
        }
        match self.ingest.dispatch(req, now_millis()).await {
            Some(Routed::Ingest(resp, report)) => {
                self.metrics.record_ingest(&report);
                if report.accepted > 0 {
                    self.wake.notify_one();
                    self.publish_stored(&report).await;
                }
                return (resp, "ingest");
            }
            Some(Routed::Static(resp)) => return (resp, "sdk"),
            None => {}
        }
        let text = self.text();
        let api = self.api(&text);
        if let Some(resp) = crow_ingest::api::handle(&api, req).await {
            if (200..300).contains(&resp.status) && !req.method.eq_ignore_ascii_case("GET") {
                // A mutation may have queued work (an export).
                self.wake.notify_one();
            }
            return (resp, "api");
        }
        if let Some(resp) = crow_ingest::a2a::handle(&api, req).await {
            if resp.status == 200 && req.method.eq_ignore_ascii_case("POST") {
                // A skill may have queued work (an export).
                self.wake.notify_one();
            }
            return (resp, "a2a");
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET" | "HEAD", "/healthz") => (HttpResponse::json(200, &serde_json::json!({"status": "ok"})), "healthz"),
            ("GET", "/metrics") => {
                let mut depths = Vec::new();
                for q in queues::ALL {
                    if let Ok(d) = self.store().depth(q).await {
                        depths.push((q, d));
                    }
                }
                let text = self.metrics.render(&depths, self.store().commit_count());
                (
                    HttpResponse {
                        status: 200,
                        headers: vec![("content-type".into(), "text/plain; version=0.0.4".into())],
                        body: text.into_bytes(),
                    },
                    "metrics",
                )
            }
            _ => (HttpResponse::no_route(req), "other"),
        }
    }

    /// The text models as ports that run off the async threads (hand it to [`Backends::api`]).
    pub fn text(&self) -> Blocking<'_> {
        Blocking(&self.analyzer)
    }

    /// What the API functions run on (`crow_ingest::api` and its tools), at this moment.
    pub fn api<'a>(&'a self, text: &'a Blocking<'a>) -> crow_ingest::api::Api<'a> {
        crow_ingest::api::Api {
            store: self.store(),
            blobs: &self.blobs,
            indexes: self.indexes.as_ref(),
            analyzer: Some(text),
            embedder: self.analyzer.embedding_dim().map(|_| text as &dyn Embedder),
            tier: self.analyzer.tier(),
            auth: &self.auth,
            now: now_millis(),
            random: &fill_random,
            notifier: Some(&self.live),
        }
    }

    /// The caller behind an `Authorization` header value (`Bearer <secret key or JWT>`), as the
    /// REST API authenticates it: a `401` problem response otherwise. For the surfaces that do
    /// not go through [`Backends::handle`] (GraphQL, MCP).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        peer: Option<std::net::IpAddr>,
    ) -> Result<crow_core::access::Principal, HttpResponse> {
        let req = HttpRequest {
            method: "POST".into(),
            path: "/".into(),
            query: None,
            headers: authorization
                .map(|a| vec![("authorization".to_owned(), a.to_owned())])
                .unwrap_or_default(),
            body: Vec::new(),
            peer_ip: peer,
        };
        let text = self.text();
        crow_ingest::api::auth::authenticate(&self.api(&text), &req).await
    }

    /// Counts a request to `path` (one of `crow_ingest::api::SURFACES`) against the caller's
    /// API rate limit: a `429` with `Retry-After` when it is over. For the surfaces that do not
    /// go through [`Backends::handle`] (GraphQL, MCP).
    pub fn rate_limit(
        &self,
        path: &str,
        authorization: Option<&str>,
        peer: Option<std::net::IpAddr>,
    ) -> Result<(), HttpResponse> {
        self.limiter.check(&HttpRequest {
            method: "POST".into(),
            path: path.into(),
            headers: authorization
                .map(|a| vec![("authorization".to_owned(), a.to_owned())])
                .unwrap_or_default(),
            peer_ip: peer,
            ..HttpRequest::default()
        })
    }

    /// Tells live subscribers about the interactions an ingest request stored.
    async fn publish_stored(&self, report: &crow_ingest::ingest::IngestReport) {
        let Some(org_id) = &report.org_id else { return };
        if report.inserted_ids.is_empty() || !self.live.has_subscribers() {
            return;
        }
        match self.store().get_interactions(org_id, &report.inserted_ids).await {
            Ok(stored) => {
                for interaction in stored {
                    self.live.publish(live::Live::InteractionCreated {
                        org_id: org_id.clone(),
                        interaction: Box::new(interaction),
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read back stored interactions for subscribers"),
        }
    }

    /// Drains the queues once; returns how many jobs were handled.
    pub async fn work_once(&self, max: usize) -> usize {
        let mut handled = 0;
        for queue in queues::ALL {
            let jitter = rand::random::<f64>();
            let text = Blocking(&self.analyzer);
            let ports = WithExports {
                ports: WithText {
                    ports: PortRefs::shared(self.store(), &self.blobs),
                    analyzer: &text,
                    embedder: self.analyzer.embedding_dim().map(|_| &text as &dyn Embedder),
                    indexes: self.indexes.as_ref(),
                    social: Some(self.store()),
                    video: Some(self.store()),
                },
                exports: self.store(),
                catalog: self.store(),
                social: None,
                video: None,
            };
            match crow_ingest::workflows::trigger::run_once(&ports, queue, max, now_millis(), jitter).await {
                Ok(report) => {
                    self.metrics
                        .record_jobs(report.processed as u64, report.failed as u64, report.dead as u64);
                    handled += report.processed + report.failed;
                }
                Err(e) => tracing::warn!(queue, error = %e, "worker tick failed"),
            }
        }
        handled
    }
}

/// Fills a buffer from the operating system's CSPRNG (what the API draws new keys and ids from).
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random source failed");
}

/// The installation's secret for signed download links: `data_dir/link.key`, 32 random bytes
/// made on first start (owner-only permissions), so links survive restarts.
fn link_secret(data_dir: &std::path::Path) -> Result<Vec<u8>, ServerError> {
    let path = data_dir.join("link.key");
    match std::fs::read(&path) {
        Ok(k) if k.len() >= 32 => return Ok(k),
        Ok(_) => {
            return Err(ServerError::Auth(format!(
                "{} is shorter than 32 bytes",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ServerError::Io(e)),
    }
    let mut key = vec![0u8; 32];
    fill_random(&mut key);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(&path) {
        Ok(mut f) => {
            std::io::Write::write_all(&mut f, &key)?;
            f.sync_all()?;
            Ok(key)
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(std::fs::read(&path)?),
        Err(e) => Err(ServerError::Io(e)),
    }
}

/// Opens (creating) the three vector indexes under `data_dir/vectors/` for `dim`-dimensional
/// cosine embeddings. An index another process owns (a running `crow serve` while the CLI
/// searches) is opened read-only: searches work, writes answer "unavailable".
pub fn open_indexes(data_dir: &std::path::Path, dim: usize, config: &HnswConfig) -> Result<Indexes, StoreError> {
    let open = |kind: IndexKind| -> Result<Arc<dyn VectorIndex>, StoreError> {
        let info = IndexInfo {
            name: kind.index_name().to_string(),
            dimensions: dim,
            metric: Metric::Cosine,
        };
        let dir = data_dir.join("vectors").join(kind.index_name());
        let index = match HnswIndex::open(&dir, info.clone(), config.clone()) {
            Err(StoreError::Locked(_)) => {
                tracing::info!(index = kind.index_name(), "opened read-only: another process owns it");
                HnswIndex::open_read_only(&dir, info, config.clone())?
            }
            other => other?,
        };
        Ok(Arc::new(index))
    };
    Ok(Indexes::new(
        open(IndexKind::Interactions)?,
        open(IndexKind::Products)?,
        open(IndexKind::Social)?,
    ))
}

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    backends: Arc<Backends>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
    worker: Option<tokio::task::JoinHandle<()>>,
    social: Option<tokio::task::JoinHandle<()>>,
    cameras: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Opens the backends, binds the address (port 0 picks a free port) and starts serving and
    /// working in the background.
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        // A bad [social] table fails the start, before anything listens.
        let social_runner = match (&config.social, config.run_worker) {
            (Some(social), true) => Some(crow_ingest::social::runner::Runner::new(social.clone(), |name| {
                std::env::var(name).ok()
            })?),
            _ => None,
        };
        // So does a bad [cctv] table.
        if let Some(c) = &config.cctv {
            c.validate()?;
        }
        let backends = Arc::new(Backends::open(&config)?);
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr()?;
        let (shutdown, mut rx) = watch::channel(false);
        let app = axum::Router::new();
        // MCP over streamable HTTP (crate::mcp): authenticated and rate-limited per request.
        #[cfg(feature = "mcp")]
        let app = app.route(mcp::PATH, mcp::route(backends.clone(), shutdown.subscribe()));
        // GraphQL (crate::graphql): POST /graphql, and GET /graphql for subscriptions over WebSocket.
        #[cfg(feature = "graphql")]
        let app = app.merge(graphql::router(backends.clone()));
        let app = app
            .fallback(dispatch)
            .with_state(backends.clone())
            .into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
                .map_err(ServerError::Io)
        });
        let lock = if config.run_worker {
            let lock = backends.become_worker().await?;
            if lock.is_none() {
                tracing::warn!(
                    "another process is the workflow worker of {}; this server only serves",
                    config.data_dir.display()
                );
            }
            lock
        } else {
            None
        };
        let worker = lock.map(|lock| {
            let backends = backends.clone();
            let mut rx = shutdown.subscribe();
            let poll = Duration::from_millis(config.worker_poll_ms.max(1));
            let batch = config.worker_batch.max(1);
            tokio::spawn(async move {
                let _lock = lock;
                loop {
                    if *rx.borrow() {
                        break;
                    }
                    let handled = backends.work_once(batch).await;
                    if handled == 0 {
                        tokio::select! {
                            _ = backends.wake.notified() => {}
                            _ = tokio::time::sleep(poll) => {}
                            _ = rx.changed() => {}
                        }
                    }
                }
            })
        });
        let social = match (social_runner, worker.is_some()) {
            (Some(runner), true) => Some(spawn_social(runner, backends.clone(), shutdown.subscribe())),
            (Some(_), false) => {
                tracing::warn!("another process is the worker: it, not this server, must poll the [social] sources");
                None
            }
            (None, _) => None,
        };
        let cameras = match &config.cctv {
            Some(c) => cctv::spawn_cameras(
                backends.clone(),
                c.clone(),
                config.nlp.models_dir.clone(),
                shutdown.subscribe(),
            ),
            None => Vec::new(),
        };
        {
            // Forget rate-limit buckets that are full again, so made-up keys cannot grow memory.
            let backends = backends.clone();
            let mut rx = shutdown.subscribe();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(60)) => backends.limiter.shrink(),
                        _ = rx.changed() => break,
                    }
                }
            });
        }
        tracing::info!(%addr, data = %config.data_dir.display(), "crow server listening");
        Ok(Server {
            addr,
            backends,
            shutdown,
            task,
            worker,
            social,
            cameras,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The backends (store, object store, metrics).
    pub fn backends(&self) -> &Arc<Backends> {
        &self.backends
    }

    /// Stops accepting requests, lets in-flight ones finish, stops the worker.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.shutdown.send(true);
        if let Some(s) = self.social {
            let _ = s.await;
        }
        // Cameras flush their pending events into the queue before the worker stops.
        for c in self.cameras {
            let _ = c.await;
        }
        if let Some(w) = self.worker {
            let _ = w.await;
        }
        let served = self.task.await.unwrap_or(Ok(()));
        // Compact the indexes' logs into snapshots so the next start loads fast (nothing is
        // lost without it: the logs replay).
        if let Some(indexes) = &self.backends.indexes
            && let Err(e) = indexes.persist().await
        {
            tracing::warn!(error = %e, "could not snapshot the vector indexes");
        }
        served
    }

    /// Serves until Ctrl-C or SIGTERM, then shuts down gracefully.
    pub async fn wait(self) -> Result<(), ServerError> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

/// Polls the `[social]` sources on their schedules until shutdown; the worker analyzes what the
/// pre-filter selects. Each run's reports are logged.
fn spawn_social(
    mut runner: crow_ingest::social::runner::Runner,
    backends: Arc<Backends>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let catalog: Arc<dyn crow_core::ports::CatalogStore> = Arc::new(backends.store().clone());
        let lexicon = Analyzer::lexicon().with_catalog(catalog);
        let ports = crow_ingest::social::runner::SocialPorts {
            social: backends.store(),
            accounts: backends.store(),
            lexicon: &lexicon,
        };
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tracing::info!(
            org = runner.org(),
            sources = runner.sources().count(),
            "polling social sources"
        );
        let result = runner
            .run_scheduled(ports, &now_millis, shutdown, |reports| {
                for r in reports {
                    match &r.error {
                        Some(e) => tracing::warn!(source = %r.source, error = %e, "social source failed"),
                        None => tracing::info!(
                            source = %r.source,
                            fetched = r.pass.fetched,
                            stored = r.pass.stored,
                            near_duplicates = r.pass.near_duplicates,
                            selected = r.pass.selected,
                            "social source polled"
                        ),
                    }
                }
                backends.wake.notify_one();
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "the social poller stopped");
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM (what systemd and Docker send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Most bytes read from a request body before answering 413 (compressed bodies are capped
/// again after decompression by crow-ingest).
const MAX_WIRE_BODY: usize = 2 * 1024 * 1024;
/// The bulk product import takes larger bodies (crow-ingest caps it at 16 MiB).
const MAX_IMPORT_BODY: usize = 17 * 1024 * 1024;

async fn dispatch(
    State(backends): State<Arc<Backends>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let cap = if parts.uri.path().trim_end_matches('/') == "/api/v1/products/import" {
        MAX_IMPORT_BODY
    } else {
        MAX_WIRE_BODY
    };
    let body = match axum::body::to_bytes(body, cap).await {
        Ok(b) => b.to_vec(),
        Err(_) => {
            let resp = HttpResponse::problem(
                413,
                "body_too_large",
                "Request body too large",
                format!("the request body exceeds {cap} bytes"),
                None,
            );
            return to_axum(resp);
        }
    };
    let plain = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
        peer_ip: Some(peer.ip()),
    };
    // Logs name a REST route by its pattern: ids (a person's, for an erasure) stay out of them.
    let path = crow_ingest::api::log_path(&plain.method, &plain.path).into_owned();
    let span = tracing::info_span!("request", method = %plain.method, path = %path);
    let (resp, route) = tracing::Instrument::instrument(backends.handle(&plain), span).await;
    backends
        .metrics
        .record_request(route, resp.status, started.elapsed().as_secs_f64());
    if resp.status >= 500 {
        tracing::warn!(method = %plain.method, path = %path, status = resp.status, "request failed");
    } else {
        tracing::debug!(method = %plain.method, path = %path, status = resp.status, "request");
    }
    to_axum(resp)
}

fn to_axum(resp: HttpResponse) -> Response<Body> {
    let mut out = Response::new(Body::from(resp.body));
    *out.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    for (k, v) in resp.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            headers.append(k, v);
        }
    }
    out
}
