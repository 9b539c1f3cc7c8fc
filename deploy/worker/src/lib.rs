//! # crow-worker
//!
//! CROW's Cloudflare Worker: a thin shell that runs crow-ingest's request handling and
//! workflows over Cloudflare's platform, compiled to `wasm32-unknown-unknown`:
//!
//! | port | binding | here |
//! |---|---|---|
//! | every store port | D1 `DB` | [`crow_store::SqlStore`] over `D1` ([`d1`]) |
//! | `BlobStore` | R2 `BLOBS` | `R2` ([`r2`]) |
//! | `JobQueue` | D1 `jobs` table + Queues `JOBS_INTERACTION`, `JOBS_SOCIAL`, `JOBS_PROCESSING`, `JOBS_EXPORT` | the store's SQL; a Queue only rings |
//! | `TextAnalyzer` | Workers AI `AI` (optional) | crow-nlp's lexicon tier, sentiment by sst-2 ([`ai`]) |
//! | `Embedder` | Workers AI `AI` (optional) | bge-small-en-v1.5, 384 dimensions ([`ai`]) |
//! | `VectorIndex` ×3 | Vectorize `VEC_INTERACTIONS`, `VEC_PRODUCTS`, `VEC_SOCIAL` (optional) | `Vectorize` ([`vectorize`]) |
//!
//! Without the `AI` binding the tier is `lexicon` and there is no embedder; without all three
//! Vectorize bindings there are no indexes. Either way semantic search answers 503 and the
//! process-interaction workflow stores texts without embeddings (that is what `--env test` and
//! local runs get: AI and Vectorize cannot run locally). With them, `Api` and the workflow
//! ports (`WithText`) get the model tier, the embedder and the indexes, so process-interaction
//! embeds texts and upserts them into `interaction-embeddings`, analyze-social into
//! `social-embeddings`, catalog writes into `product-embeddings`.
//!
//! Three exports, called from `js/entry.mjs`:
//! - `handle_fetch(env, method, path, query, headers_json, body, ip)` routes a request as the
//!   native server does: the ingest endpoints
//!   ([`IngestService::dispatch`](crow_ingest::ingest::IngestService::dispatch)), then the REST API
//!   (`crow_ingest::api::handle`), then A2A (`crow_ingest::a2a::handle`), then `/healthz`,
//!   `/metrics` (queue depths, Prometheus text) and a 404 problem. Plus `POST /admin/orgs`
//!   (below). It answers `{status, headers, body, ring}`; `ring` names the queues to ring.
//! - `handle_queue(env, queues)` is the Queue consumer; `handle_scheduled(env, cron, time)` the
//!   Cron trigger (`* * * * *`). Both sweep the job queues (below); the Cron trigger then runs
//!   the social sources of `CROW_SOCIAL` that are due ([`social`]).
//!
//! ## Why a JS entry and `wasm-bindgen --target web`, not workers-rs
//! DESIGN §3.7 names workers-rs (`#[event(fetch)]`). This shell takes a small JS entry instead:
//! - workers-rs pins wasm-bindgen (`worker 0.8.7` wants `=0.2.129`), which would force the whole
//!   workspace (chrono, getrandom, uuid, reqwest pull in `0.2.130`) down a version;
//! - it has no Workflows or Vectorize API, so raw `js_sys` glue is needed anyway;
//! - worker-sys, web-sys features and its router add bytes against the 3 MB gzip budget and
//!   compile time, and buy nothing: CROW routes requests itself (crow-ingest), so the Worker's
//!   fetch handler is the few lines of `js/entry.mjs` and `handle_fetch`'s routing.
//!
//! `build.mjs` runs `cargo build --profile worker` → `wasm-bindgen --target web` → `wasm-opt -Oz`
//! and checks the gzip budget; `entry.mjs` imports the `.wasm` as a compiled module (workerd
//! refuses to compile wasm from bytes) and calls `initSync`.
//!
//! ## The job queue: D1 holds the jobs, a Queue message is a doorbell
//! `JobQueue` runs the same `jobs`-table SQL on D1 as on SQLite (enqueue, reserve with a lease,
//! ack, fail with backoff, dead letters, depth). Each CROW job queue (interaction, social,
//! processing, export) has a Cloudflare Queue, produced and consumed by this Worker
//! (`JOBS_INTERACTION`, …); a message carries only `{"queue": name}`: it says "there is work",
//! never what. Reasons:
//! 1. an ingest `append` (and an export request) commits its rows and their jobs in **one** D1
//!    batch; a `Queue.send` after the commit could fail, the client's retry would then be all
//!    duplicates, no job would be enqueued and the work would be lost;
//! 2. the same `crow_ingest::workflows::run_once` (coalescing, retry policy, dead letters)
//!    runs in both shells, and the D1 step log (`workflow_steps`) resumes a redelivered job;
//! 3. queue depths on `/metrics` work as natively.
//!
//! After a request that stored events or changed something, `entry.mjs` sends the doorbells in
//! `ctx.waitUntil` (best effort). The consumer sweeps: `run_once(ports, queue, 16, now, jitter)`
//! for the rung queues first and then the others, round after round until a round finds no work,
//! 20 s pass or 600 D1 statements were sent (D1 allows 1000 per invocation); when work is left it
//! rings again. The Cron trigger runs the same sweep every minute, which covers lost doorbells
//! and retries whose backoff has passed. Export jobs are not run in the sweep when the
//! `EXPORT_WF` Workflow is bound: the sweep leases each one and starts an instance of the
//! Workflow (class `ExportReport` in `entry.mjs`), whose step runs the job with crow-ingest's
//! `Trigger::run_job` (the same export-report workflow the native server runs) and settles it.
//!
//! ## Administration
//! `POST /admin/orgs` with `Authorization: Bearer $CROW_ADMIN_TOKEN` and `{"name": "Acme"}`
//! creates an org and answers `201` with its credentials (`{org_id, write_key, api_key}`, as
//! `crow org create --json` prints them; the secret key is shown once). Without the
//! `CROW_ADMIN_TOKEN` secret the route does not exist (404).
//!
//! ## Configuration
//! - `CROW_LINK_SECRET` (secret, at least 32 bytes): signs export download links. Without it each
//!   isolate draws its own, so a link only works on the isolate that made it.
//! - `CROW_ADMIN_TOKEN` (secret): enables the admin route.
//! - `CROW_INGEST` (var, JSON): the ingest settings (`crow_ingest::ingest::IngestConfig`).
//! - `CROW_SOCIAL` (var, TOML): the social channel's `social.toml` (see examples/social.toml):
//!   Mastodon, Bluesky, Reddit and Hacker News sources polled from the Cron trigger on their
//!   schedules ([`social`]). A source's `auth_token_env` names a secret of the Worker.
//! - Vectorize needs a metadata index on `_ns` in each index, and one on every property
//!   searches filter on (see wrangler.toml).
//!
//! ## Not here yet
//! The catalog gazetteer in text analysis (entities of the org's products), JWT user sessions,
//! rate limits, Parquet exports, RSS sources (native only), CCTV, GraphQL and MCP. Store ports
//! not yet on the SQL layer answer 503. Vectorize's `count` answers 503 (it cannot count one
//! namespace).

pub mod ai;
pub mod d1;
#[cfg(target_arch = "wasm32")]
mod glue;
pub mod r2;
pub mod social;
pub mod vectorize;

use crow_ingest::http::{HttpRequest, HttpResponse};
use serde::Deserialize;

#[cfg(target_arch = "wasm32")]
pub use wasm::{handle_fetch, handle_queue, handle_scheduled};

/// Most jobs one `run_once` leases.
pub const SWEEP_BATCH: usize = 16;
/// A sweep stops starting rounds after this long (milliseconds).
pub const SWEEP_BUDGET_MS: f64 = 20_000.0;
/// The lease of an `export-report` job handed to a Workflow instance (milliseconds): the
/// instance's run must finish within it, else the job is delivered (and handed over) again.
pub const WORKFLOW_LEASE_MS: i64 = 30 * 60 * 1000;

/// The Workflow instance id of a job's delivery: `job-<id>-<attempt>`.
pub fn workflow_instance_id(job: &crow_core::ports::Job) -> String {
    format!("job-{}-{}", job.id, job.attempts)
}

/// A sweep stops starting rounds once this many D1 statements were sent.
pub const SWEEP_MAX_STATEMENTS: u32 = 600;

/// Dimensions of the three Vectorize indexes (the embedding model's, [`ai::EMBED_DIM`]).
pub const VECTOR_DIMENSIONS: usize = ai::EMBED_DIM;

/// The binding of each Vectorize index.
pub fn vectorize_binding(kind: crow_core::vector::IndexKind) -> &'static str {
    use crow_core::vector::IndexKind;
    match kind {
        IndexKind::Interactions => "VEC_INTERACTIONS",
        IndexKind::Products => "VEC_PRODUCTS",
        IndexKind::Social => "VEC_SOCIAL",
    }
}

/// What the Worker assumes of each Vectorize index: CROW's name for it, 384 dimensions, cosine.
pub fn index_info(kind: crow_core::vector::IndexKind) -> crow_core::vector::IndexInfo {
    crow_core::vector::IndexInfo {
        name: kind.index_name().to_owned(),
        dimensions: VECTOR_DIMENSIONS,
        metric: crow_core::vector::Metric::Cosine,
    }
}

/// The body of `POST /admin/orgs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// The org's display name.
    pub name: String,
}

/// Parses the request headers `entry.mjs` sends (`JSON.stringify([...request.headers])`):
/// name/value pairs, names lowercased.
pub fn parse_headers(json: &str) -> Vec<(String, String)> {
    serde_json::from_str::<Vec<(String, String)>>(json)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// Builds the plain request crow-ingest handles.
pub fn request(
    method: String,
    path: String,
    query: String,
    headers_json: &str,
    body: Vec<u8>,
    ip: &str,
) -> HttpRequest {
    HttpRequest {
        method,
        path,
        query: (!query.is_empty()).then_some(query),
        headers: parse_headers(headers_json),
        body,
        peer_ip: ip.parse().ok(),
    }
}

/// True when `authorization` is `Bearer <token>` (compared in constant time).
pub fn bearer_matches(authorization: Option<&str>, token: &str) -> bool {
    let Some(presented) = authorization.and_then(|a| {
        let (scheme, rest) = a.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
    }) else {
        return false;
    };
    let (a, b) = (presented.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the admin request before it touches the store: `Err` is the answer (401, 405, 400),
/// `Ok` the org name.
pub fn admin_precheck(req: &HttpRequest, token: &str) -> Result<String, HttpResponse> {
    if !req.method.eq_ignore_ascii_case("POST") {
        let mut resp = HttpResponse::problem(
            405,
            "method_not_allowed",
            "Method not allowed",
            format!("{} accepts POST", req.path),
            None,
        );
        resp.headers.push(("allow".into(), "POST".into()));
        return Err(resp);
    }
    if !bearer_matches(req.header("authorization"), token) {
        let mut resp = HttpResponse::problem(
            401,
            "unauthorized",
            "Unauthorized",
            "send `Authorization: Bearer <CROW_ADMIN_TOKEN>`",
            None,
        );
        resp.headers.push(("www-authenticate".into(), "Bearer".into()));
        return Err(resp);
    }
    let body: NewOrg = crow_ingest::api::problem::json_body(req)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(crow_ingest::api::problem::invalid_body(
            Some("name"),
            "the org name must be 1 to 200 characters",
        ));
    }
    Ok(name.to_owned())
}

/// `/metrics` in the Prometheus text format: the queue depths the store answered.
pub fn render_metrics(depths: &[(&str, crow_core::ports::QueueDepth)]) -> String {
    use std::fmt::Write;
    let mut out = String::from("# HELP crow_queue_depth Jobs per queue and state.\n# TYPE crow_queue_depth gauge\n");
    for (q, d) in depths {
        for (state, n) in [("ready", d.ready), ("in_flight", d.in_flight), ("dead", d.dead)] {
            let _ = writeln!(out, "crow_queue_depth{{queue=\"{q}\",state=\"{state}\"}} {n}");
        }
    }
    out
}

/// The queues a sweep visits: the rung ones first (known names only, once each), then the rest.
pub fn sweep_order(rung: &[String]) -> Vec<&'static str> {
    let all = crow_core::ports::queues::ALL;
    let mut order: Vec<&'static str> = rung
        .iter()
        .filter_map(|q| all.iter().copied().find(|a| a == q))
        .collect();
    order.dedup();
    let mut seen = std::collections::HashSet::new();
    order.retain(|q| seen.insert(*q));
    order.extend(all.iter().copied().filter(|q| !seen.contains(q)));
    order
}

/// A number in `[0, 1)` from 8 random bytes (the retry jitter).
pub fn unit_interval(bytes: [u8; 8]) -> f64 {
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::sync::Arc;

    use crow_core::keys;
    use crow_core::ports::{AccountStore, Embedder, JobQueue, TextAnalyzer, queues};
    use crow_core::vector::IndexKind;
    use crow_ingest::api::{Api, AuthConfig};
    use crow_ingest::http::{HttpRequest, HttpResponse};
    use crow_ingest::ingest::{IngestConfig, IngestService, Routed};
    use crow_ingest::search::Indexes;
    use crow_ingest::workflows::{PortRefs, TickReport, WithExports, WithText};
    use crow_nlp::Analyzer;
    use crow_store::SqlStore;
    use js_sys::{Array, Object, Reflect, Uint8Array};
    use wasm_bindgen::prelude::*;

    use crate::ai::WorkersAi;
    use crate::d1::D1;
    use crate::glue;
    use crate::r2::R2;
    use crate::vectorize::Vectorize;

    type Store = SqlStore<D1>;

    thread_local! {
        static ANALYZER: &'static Analyzer = Box::leak(Box::new(Analyzer::lexicon()));
        static LINK_SECRET: Vec<u8> = {
            let mut k = vec![0u8; 32];
            glue::fill_random(&mut k);
            k
        };
    }

    fn analyzer() -> &'static Analyzer {
        ANALYZER.with(|a| *a)
    }

    /// The platform's CSPRNG (`crypto.getRandomValues`), as `Api::random`.
    fn fill_random(buf: &mut [u8]) {
        // getRandomValues takes at most 65536 bytes a call.
        for chunk in buf.chunks_mut(65_536) {
            glue::fill_random(chunk);
        }
    }

    fn now() -> i64 {
        js_sys::Date::now() as i64
    }

    fn jitter() -> f64 {
        let mut b = [0u8; 8];
        fill_random(&mut b);
        crate::unit_interval(b)
    }

    /// The bindings and variables of one invocation.
    struct Env {
        /// The JS `env` itself (secrets named by `auth_token_env`).
        raw: JsValue,
        db: Option<JsValue>,
        blobs: JsValue,
        link_secret: Option<String>,
        admin_token: Option<String>,
        ingest: Result<IngestConfig, String>,
        /// The three Vectorize indexes, when all three are bound.
        indexes: Option<Indexes>,
        /// Workers AI.
        ai: Option<JsValue>,
        /// `CROW_SOCIAL`, when set.
        social: Option<String>,
        /// The `export-report` Workflow (`EXPORT_WF`): export jobs run as its instances.
        export_wf: Option<JsValue>,
    }

    /// The models: Workers AI when bound (tier `model`, an embedder), else the lexicon tier.
    struct Models<'a> {
        ai: Option<WorkersAi<'a>>,
    }

    impl<'a> Models<'a> {
        fn new(env: &'a Env) -> Self {
            Models {
                ai: env.ai.as_ref().map(|ai| WorkersAi::new(ai, analyzer())),
            }
        }

        fn analyzer(&self) -> &dyn TextAnalyzer {
            match &self.ai {
                Some(ai) => ai,
                None => analyzer(),
            }
        }

        fn embedder(&self) -> Option<&dyn Embedder> {
            self.ai.as_ref().map(|ai| ai as &dyn Embedder)
        }

        fn tier(&self) -> &'static str {
            if self.ai.is_some() { "model" } else { analyzer().tier() }
        }
    }

    fn indexes(env: &JsValue) -> Option<Indexes> {
        let index = |kind: IndexKind| -> Option<Arc<dyn crow_core::ports::VectorIndex>> {
            let b = binding(env, crate::vectorize_binding(kind))?;
            Some(Arc::new(Vectorize::new(b, crate::index_info(kind))))
        };
        Some(Indexes::new(
            index(IndexKind::Interactions)?,
            index(IndexKind::Products)?,
            index(IndexKind::Social)?,
        ))
    }

    fn binding(env: &JsValue, name: &str) -> Option<JsValue> {
        Reflect::get(env, &JsValue::from_str(name))
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    }

    fn var(env: &JsValue, name: &str) -> Option<String> {
        binding(env, name).and_then(|v| v.as_string()).filter(|s| !s.is_empty())
    }

    impl Env {
        fn read(env: &JsValue) -> Env {
            Env {
                raw: env.clone(),
                indexes: indexes(env),
                ai: binding(env, "AI"),
                social: var(env, "CROW_SOCIAL"),
                export_wf: binding(env, "EXPORT_WF"),
                db: binding(env, "DB"),
                blobs: binding(env, "BLOBS").unwrap_or(JsValue::UNDEFINED),
                link_secret: var(env, "CROW_LINK_SECRET"),
                admin_token: var(env, "CROW_ADMIN_TOKEN"),
                ingest: match var(env, "CROW_INGEST") {
                    None => Ok(IngestConfig::default()),
                    Some(json) => serde_json::from_str(&json).map_err(|e| format!("CROW_INGEST: {e}")),
                },
            }
        }

        fn auth(&self) -> AuthConfig {
            match self.link_secret.as_deref().filter(|s| s.len() >= 32) {
                Some(s) => AuthConfig::new(s.as_bytes().to_vec()),
                None => AuthConfig::new(LINK_SECRET.with(Clone::clone)),
            }
        }
    }

    fn misconfigured(detail: String) -> HttpResponse {
        HttpResponse::problem(500, "misconfigured", "Worker misconfigured", detail, None)
    }

    fn set(obj: &Object, key: &str, value: &JsValue) {
        let _ = Reflect::set(obj, &JsValue::from_str(key), value);
    }

    fn to_js(resp: HttpResponse, ring: &[&str]) -> JsValue {
        let obj = Object::new();
        set(&obj, "status", &JsValue::from(resp.status));
        let headers = Array::new();
        for (k, v) in &resp.headers {
            headers.push(&Array::of2(&JsValue::from_str(k), &JsValue::from_str(v)));
        }
        set(&obj, "headers", &headers);
        set(&obj, "body", &Uint8Array::from(resp.body.as_slice()));
        set(
            &obj,
            "ring",
            &ring.iter().map(|q| JsValue::from_str(q)).collect::<Array>(),
        );
        obj.into()
    }

    /// Handles one request (see the crate docs): `{status, headers: [[name, value]], body:
    /// Uint8Array, ring: [queue]}`.
    #[wasm_bindgen]
    pub async fn handle_fetch(
        env: JsValue,
        method: String,
        path: String,
        query: String,
        headers_json: String,
        body: Vec<u8>,
        ip: String,
    ) -> JsValue {
        let req = crate::request(method, path, query, &headers_json, body, &ip);
        let (resp, ring) = route(&Env::read(&env), &req).await;
        to_js(resp, ring)
    }

    async fn route(env: &Env, req: &HttpRequest) -> (HttpResponse, &'static [&'static str]) {
        const NONE: &[&str] = &[];
        let Some(db) = &env.db else {
            return (misconfigured("the D1 binding `DB` is missing".into()), NONE);
        };
        let config = match &env.ingest {
            Ok(c) => c.clone(),
            Err(e) => return (misconfigured(e.clone()), NONE),
        };
        let now = now();
        let store: Store = SqlStore(D1::new(db.clone()));
        if req.path == "/admin/orgs" {
            return (admin(env, &store, req, now).await, NONE);
        }
        let ingest = IngestService::new(store, config);
        match ingest.dispatch(req, now).await {
            Some(Routed::Ingest(resp, report)) => {
                let ring: &[&str] = if report.accepted > 0 {
                    &[queues::INTERACTION, queues::PROCESSING]
                } else {
                    NONE
                };
                return (resp, ring);
            }
            Some(Routed::Static(resp)) => return (resp, NONE),
            None => {}
        }
        let store = ingest.store();
        let blobs = R2(env.blobs.clone());
        let auth = env.auth();
        let models = Models::new(env);
        let api = Api {
            store,
            blobs: &blobs,
            indexes: env.indexes.as_ref(),
            analyzer: Some(models.analyzer()),
            embedder: models.embedder(),
            tier: models.tier(),
            auth: &auth,
            now,
            random: &fill_random,
            notifier: None,
        };
        let mutation =
            |resp: &HttpResponse| (200..300).contains(&resp.status) && !req.method.eq_ignore_ascii_case("GET");
        // A mutation may have queued work (an export, an erasure).
        const AFTER_MUTATION: &[&str] = &[queues::EXPORT, queues::PROCESSING];
        if let Some(resp) = crow_ingest::api::handle(&api, req).await {
            let ring = if mutation(&resp) { AFTER_MUTATION } else { NONE };
            return (resp, ring);
        }
        if let Some(resp) = crow_ingest::a2a::handle(&api, req).await {
            let ring = if mutation(&resp) { AFTER_MUTATION } else { NONE };
            return (resp, ring);
        }
        let resp = match (req.method.as_str(), req.path.as_str()) {
            ("GET" | "HEAD", "/healthz") => HttpResponse::json(200, &serde_json::json!({"status": "ok"})),
            ("GET", "/metrics") => {
                let mut depths = Vec::new();
                for q in queues::ALL {
                    if let Ok(d) = store.depth(q).await {
                        depths.push((q, d));
                    }
                }
                HttpResponse {
                    status: 200,
                    headers: vec![("content-type".into(), "text/plain; version=0.0.4".into())],
                    body: crate::render_metrics(&depths).into_bytes(),
                }
            }
            _ => HttpResponse::no_route(req),
        };
        (resp, NONE)
    }

    async fn admin(env: &Env, store: &Store, req: &HttpRequest, now: i64) -> HttpResponse {
        let Some(token) = &env.admin_token else {
            return HttpResponse::no_route(req);
        };
        let name = match crate::admin_precheck(req, token) {
            Ok(name) => name,
            Err(resp) => return resp,
        };
        let mut random = [0u8; keys::RANDOM_BYTES];
        fill_random(&mut random);
        let (org, creds, new_keys) = keys::generate(&name, now, &random);
        match AccountStore::create_org(store, &org, &new_keys).await {
            Ok(()) => HttpResponse::json(201, &serde_json::to_value(&creds).unwrap_or_default()),
            Err(e) => {
                glue::log_error(&format!("POST /admin/orgs: {e}"));
                crow_ingest::api::problem::backend(e)
            }
        }
    }

    /// The ports the workflows run on: the D1 store, R2, the models and the indexes.
    macro_rules! workflow_ports {
        ($env:expr, $store:expr, $blobs:expr, $models:expr) => {
            WithExports {
                ports: WithText {
                    ports: PortRefs::shared(&$store, &$blobs),
                    analyzer: $models.analyzer(),
                    embedder: $models.embedder(),
                    indexes: $env.indexes.as_ref(),
                    social: Some(&$store),
                    video: Some(&$store),
                },
                exports: &$store,
                catalog: &$store,
                social: None,
                video: None,
            }
        };
    }

    /// What a sweep did.
    #[derive(Debug, Default)]
    struct Sweep {
        tick: TickReport,
        rounds: u32,
        statements: u32,
        /// `export-report` jobs handed to Workflow instances.
        workflows: usize,
        /// Queues that still had work when the sweep stopped.
        more: Vec<&'static str>,
        errors: Vec<String>,
    }

    async fn sweep(env: &Env, rung: &[String]) -> Result<Sweep, JsValue> {
        let Some(db) = &env.db else {
            return Err(JsValue::from_str("the D1 binding `DB` is missing"));
        };
        let d1 = D1::new(db.clone());
        let store: Store = SqlStore(d1.clone());
        let blobs = R2(env.blobs.clone());
        let models = Models::new(env);
        let ports = workflow_ports!(env, store, blobs, models);
        let started = js_sys::Date::now();
        let mut out = Sweep::default();
        let mut pending = crate::sweep_order(rung);
        while !pending.is_empty() {
            let out_of_budget =
                js_sys::Date::now() - started > crate::SWEEP_BUDGET_MS || d1.calls() > crate::SWEEP_MAX_STATEMENTS;
            if out_of_budget {
                out.more = pending;
                break;
            }
            out.rounds += 1;
            let mut busy = Vec::new();
            for q in pending {
                if q == queues::EXPORT
                    && let Some(wf) = &env.export_wf
                {
                    match hand_to_workflow(&store, wf, now()).await {
                        Ok(0) => {}
                        Ok(n) => out.workflows += n,
                        Err(e) => out.errors.push(format!("{q}: {e}")),
                    }
                    continue;
                }
                match crow_ingest::workflows::run_once(&ports, q, crate::SWEEP_BATCH, now(), jitter()).await {
                    Ok(r) => {
                        if r.processed + r.failed > 0 {
                            busy.push(q);
                        }
                        out.tick.processed += r.processed;
                        out.tick.failed += r.failed;
                        out.tick.dead += r.dead;
                    }
                    Err(e) => out.errors.push(format!("{q}: {e}")),
                }
            }
            // Work a round did may have queued work elsewhere (follow-up jobs): visit every queue
            // again after a busy round, until a round finds nothing.
            pending = if busy.is_empty() {
                Vec::new()
            } else {
                crate::sweep_order(&[])
            };
        }
        out.statements = d1.calls();
        Ok(out)
    }

    /// Leases the ready `export-report` jobs for [`crate::WORKFLOW_LEASE_MS`] and starts one
    /// instance of the `EXPORT_WF` Workflow per job (`job-<id>-<attempt>`, so a redelivery after
    /// an expired lease gets an instance of its own); the instance runs [`run_job`]. A job
    /// whose instance cannot be created goes back to the queue at once.
    async fn hand_to_workflow(store: &Store, wf: &JsValue, now: i64) -> Result<usize, String> {
        let jobs = store
            .reserve(queues::EXPORT, crate::SWEEP_BATCH, crate::WORKFLOW_LEASE_MS, now)
            .await
            .map_err(|e| e.to_string())?;
        let mut started = 0;
        for job in &jobs {
            let id = crate::workflow_instance_id(job);
            let params = serde_json::json!({ "job": job }).to_string();
            let created = match glue::workflow_create(wf, &id, &params) {
                Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await,
                Err(e) => Err(e),
            };
            match created {
                Ok(_) => started += 1,
                Err(e) => {
                    let message = format!("could not start Workflow instance {id}: {}", glue::error_message(&e));
                    glue::log_error(&message);
                    let policy = crow_core::ports::RetryPolicy::default();
                    store
                        .fail(job.id, &message, &policy, now, jitter())
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(started)
    }

    /// An `EXPORT_WF` Workflow instance's one step: runs the `export-report` job `job_json` (a
    /// [`Job`](crow_core::ports::Job) leased by the sweep) with crow-ingest's
    /// [`Trigger::run_job`](crow_ingest::workflows::Trigger::run_job), which acks it, or fails it
    /// under the retry policy (the D1 step log resumes it on its next delivery). Answers
    /// `{processed, failed, dead}` as JSON.
    #[wasm_bindgen]
    pub async fn run_job(env: JsValue, job_json: String) -> Result<JsValue, JsValue> {
        let env = Env::read(&env);
        let job: crow_core::ports::Job =
            serde_json::from_str(&job_json).map_err(|e| JsValue::from_str(&format!("not a job: {e}")))?;
        let Some(db) = &env.db else {
            return Err(JsValue::from_str("the D1 binding `DB` is missing"));
        };
        let store: Store = SqlStore(D1::new(db.clone()));
        let blobs = R2(env.blobs.clone());
        let models = Models::new(&env);
        let ports = workflow_ports!(env, store, blobs, models);
        let report = crow_ingest::workflows::Trigger::default()
            .run_job(&ports, &job, now(), jitter())
            .await;
        let json = serde_json::json!({"processed": report.processed, "failed": report.failed, "dead": report.dead});
        Ok(JsValue::from_str(&json.to_string()))
    }

    /// Runs the due social sources of `CROW_SOCIAL` (see [`crate::social`]): `(reports,
    /// errors)`.
    async fn social(env: &Env) -> (Vec<serde_json::Value>, Vec<String>) {
        let Some(text) = &env.social else {
            return (Vec::new(), Vec::new());
        };
        let config = match crate::social::parse_config(text) {
            Ok(c) => c,
            Err(e) => return (Vec::new(), vec![e]),
        };
        let Some(db) = &env.db else {
            return (Vec::new(), vec!["the D1 binding `DB` is missing".into()]);
        };
        let store: Store = SqlStore(D1::new(db.clone()));
        let ports = crow_ingest::social::run::SocialPorts {
            social: &store,
            accounts: &store,
            lexicon: analyzer(),
        };
        let token = |name: &str| var(&env.raw, name);
        match crate::social::run_due(&config, ports, &token, now()).await {
            Ok(reports) => {
                let errors = reports
                    .iter()
                    .filter_map(|r| Some(format!("social {}: {}", r.get("source")?, r.get("error")?.as_str()?)))
                    .collect();
                (reports, errors)
            }
            Err(e) => (Vec::new(), vec![format!("social: {e}")]),
        }
    }

    fn report(s: &Sweep) -> JsValue {
        let json = serde_json::json!({
            "processed": s.tick.processed,
            "failed": s.tick.failed,
            "dead": s.tick.dead,
            "rounds": s.rounds,
            "workflows": s.workflows,
            "statements": s.statements,
            "more": s.more,
            "errors": s.errors,
        });
        JsValue::from_str(&json.to_string())
    }

    /// The Queue consumer: sweeps the job queues, the rung ones (`queues`, the messages'
    /// `queue` names) first. Answers a JSON report `{processed, failed, dead, rounds,
    /// statements, more, errors}`; `more` lists the queues to ring again.
    #[wasm_bindgen]
    pub async fn handle_queue(env: JsValue, queues: Vec<String>) -> Result<JsValue, JsValue> {
        sweep(&Env::read(&env), &queues).await.map(|s| report(&s))
    }

    /// The Cron trigger (`* * * * *`): sweeps every job queue (lost doorbells, retries whose
    /// backoff has passed), then runs the due social sources of `CROW_SOCIAL` and rings the
    /// `social` queue when they stored mentions (their `analyze-social` jobs). Answers the report of
    /// [`handle_queue`] plus `social` (one report per source that ran); social errors are
    /// added to `errors`.
    #[wasm_bindgen]
    pub async fn handle_scheduled(env: JsValue, cron: String, time: f64) -> Result<JsValue, JsValue> {
        let _ = (cron, time);
        let env = Env::read(&env);
        let mut out = sweep(&env, &[]).await?;
        let (social, errors) = social(&env).await;
        out.errors.extend(errors);
        // Stored mentions queued `analyze-social` jobs: ring the queue, so a fresh invocation
        // (with its own D1 statement budget) runs them.
        let stored = social.iter().any(|r| {
            r.pointer("/pass/stored")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
                > 0
        });
        if stored && !out.more.contains(&queues::SOCIAL) {
            out.more.push(queues::SOCIAL);
        }
        let mut json: serde_json::Value =
            serde_json::from_str(&report(&out).as_string().unwrap_or_default()).unwrap_or_default();
        json["social"] = serde_json::Value::Array(social);
        Ok(JsValue::from_str(&json.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_lowercased_pairs() {
        let h = parse_headers(r#"[["Content-Type","application/json"],["x-a","1"]]"#);
        assert_eq!(
            h,
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-a".into(), "1".into())
            ]
        );
        assert!(parse_headers("nope").is_empty());
        let req = request("GET".into(), "/x".into(), String::new(), "[]", vec![], "203.0.113.9");
        assert_eq!(req.query, None);
        assert_eq!(req.peer_ip, "203.0.113.9".parse().ok());
    }

    #[test]
    fn admin_token_is_checked() {
        assert!(bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(Some("bearer  s3cret "), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
        let mut req = request(
            "POST".into(),
            "/admin/orgs".into(),
            String::new(),
            r#"[["authorization","Bearer t"]]"#,
            br#"{"name":" Acme "}"#.to_vec(),
            "",
        );
        assert_eq!(admin_precheck(&req, "t").unwrap(), "Acme");
        assert_eq!(admin_precheck(&req, "other").unwrap_err().status, 401);
        req.body = br#"{"name":"  "}"#.to_vec();
        assert_eq!(admin_precheck(&req, "t").unwrap_err().status, 400);
        req.body = br#"{"nam":"x"}"#.to_vec();
        assert_eq!(admin_precheck(&req, "t").unwrap_err().status, 400);
        req.method = "GET".into();
        assert_eq!(admin_precheck(&req, "t").unwrap_err().status, 405);
    }

    #[test]
    fn sweeps_visit_rung_queues_first_and_every_queue_once() {
        assert_eq!(
            sweep_order(&["export".into(), "bogus".into(), "export".into()]),
            vec!["export", "interaction", "social", "processing"]
        );
        assert_eq!(sweep_order(&[]), crow_core::ports::queues::ALL.to_vec());
    }

    #[test]
    fn metrics_name_each_state() {
        let text = render_metrics(&[(
            "interaction",
            crow_core::ports::QueueDepth {
                ready: 2,
                in_flight: 1,
                dead: 0,
            },
        )]);
        assert!(text.contains("crow_queue_depth{queue=\"interaction\",state=\"ready\"} 2\n"));
        assert!(text.contains("state=\"in_flight\"} 1\n"));
    }

    #[test]
    fn jitter_is_in_the_unit_interval() {
        assert_eq!(unit_interval([0; 8]), 0.0);
        assert!(unit_interval([255; 8]) < 1.0);
    }
}
