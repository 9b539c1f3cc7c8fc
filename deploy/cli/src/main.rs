//! `crow`: the command-line shell of CROW.

mod d1;
mod demo;
mod demo_cctv;
mod demo_social;
mod mcp;
mod nlp;
mod social;
mod video;

/// mimalloc: the ingest path allocates many small JSON values; measured faster than the system
/// allocator in the HTTP benchmark (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use crow_core::model::CatalogTerm;
use crow_core::ports::{AccountStore, CatalogStore};
use crow_core::vector::{IndexKind, MetadataFilter};
use crow_nlp::head::TrainConfig;
use crow_server::{Backends, Server, ServerConfig, now_millis};
use crow_store::Durability;

/// CROW — customer-interaction intelligence on embedded defaults.
///
/// Everything lives in one data directory (SQLite database + object store), `./crow-data`
/// unless `--data` or CROW_DATA says otherwise.
///
/// First steps:
///
///   crow demo                      simulate a shop's visitors and print a report
///
///   crow org create "Acme"         create an org; prints its write key and secret API key
///
///   crow serve                     serve the ingest endpoints and the API on 127.0.0.1:8787
///
///   crow ingest events.jsonl --org ORG_ID
///
///   crow products import catalog.csv --org ORG_ID
///
///   crow analyze "The Trail Runner 42 is not bad at all"
///
///   crow search "delivery took forever" --org ORG_ID --filter label=negative
///
///   crow train --task intent --data labeled.jsonl --out intent.json
///
///   crow social once --config social.toml   pull social mentions (examples/social.toml)
#[derive(Debug, Parser)]
#[command(name = "crow", version, verbatim_doc_comment, propagate_version = true)]
struct Cli {
    /// Data directory (SQLite database and object store).
    #[arg(long, global = true, env = "CROW_DATA", default_value = "./crow-data")]
    data: PathBuf,
    /// Models directory (ONNX Runtime, embedding model, sentiment head), as `make models`
    /// prepares it [default: ./models]. Without it, text analysis runs the lexicon tier.
    #[arg(long, global = true, env = "CROW_MODELS")]
    models: Option<PathBuf>,
    /// Log filter for stderr, e.g. `info`, `debug`, `crow_server=debug`.
    #[arg(long, global = true, env = "CROW_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Serve the ingest endpoints (CROW, Segment, PostHog), the REST API v1, /healthz and /metrics.
    ///
    /// Ingest: POST /api/v1/events (CROW SDK), POST /v1/batch|track|identify|page|screen|group|alias
    /// (Segment), POST /batch/ /capture/ /e/ /i/v0/e/ (PostHog), with the org's public write key.
    ///
    /// REST API v1 (Authorization: Bearer <secret api_key or session token>): organization, users,
    /// api-keys, audit-log, products, categories, interactions, sessions, mentions, cctv/events,
    /// insights/traffic|funnel|sentiment, search, analyze, exports, persons/{id} (GDPR export and
    /// erase). GET /api/v1/openapi.json describes every route (no key needed). Keys and users
    /// carry a role: owner, admin, analyst or viewer; rate limits answer 429 with Retry-After.
    ///
    /// Also: GET /healthz, GET /metrics (Prometheus text), GET /sdk/crow.js (the website SDK).
    ///
    /// The worker analyzes events that carry text (feedback, search queries, chat messages) with
    /// the model tier when `--models` (default ./models, see `make models`) holds it, else with
    /// the lexicon tier.
    ///
    /// Settings are layered: built-in defaults, then a TOML file (`--config`), then CROW_*
    /// environment variables and flags. The file takes any field of the server's configuration,
    /// e.g. `addr = "0.0.0.0:8787"`, `durability = "full"`, `worker_batch = 64`, and an `[ingest]`
    /// table with `max_body_bytes`, `max_batch`, `max_depth`, `max_string_bytes`,
    /// `trust_proxy_headers`, `cors_allowed_origins = ["https://shop.example"]`, and an `[nlp]`
    /// table with `models_dir`, `embedder`, `sentiment_head`, `ner`, `intra_threads`,
    /// `batch_size`, `max_tokens`, `use_models`, and a `[vectors]` table with `m`,
    /// `ef_construction`, `ef_search`, ... (examples/crow.toml shows them all), and a `[social]`
    /// table (or --social FILE) to poll social sources on their schedules, a `[cctv]` table (or
    /// --cameras FILE) to run cameras, a `[limits]` table (`ingest`/`api` = `{ per_minute, burst }`
    /// per key) and an `[auth]` table (`jwt_secret` or `jwt_public_key` for user sessions,
    /// `link_ttl_secs` for export download links).
    Serve {
        /// Listen address [default: 127.0.0.1:8787].
        #[arg(long, env = "CROW_ADDR")]
        addr: Option<SocketAddr>,
        /// TOML configuration file.
        #[arg(long, env = "CROW_CONFIG")]
        config: Option<PathBuf>,
        /// `normal`: survives a crash of the process (SQLite WAL, synchronous=NORMAL);
        /// `full`: also survives power loss (synchronous=FULL), slower [default: normal].
        #[arg(long, env = "CROW_DURABILITY")]
        durability: Option<DurabilityArg>,
        /// Do not run the workflow worker in this process.
        #[arg(long)]
        no_worker: bool,
        /// Trust X-Forwarded-For / CF-Connecting-IP (only behind your own proxy).
        #[arg(long, env = "CROW_TRUST_PROXY")]
        trust_proxy: bool,
        /// Also poll the social sources of this config (the format of `crow social`'s, see
        /// examples/social.toml) on their schedules; the same as a `[social]` table in --config.
        #[arg(long, env = "CROW_SOCIAL")]
        social: Option<PathBuf>,
        /// Also run these cameras (TOML: `org`, an optional `[face]` table and `[[cameras]]`
        /// with `id`, `source = { uri, fps }`, `zones`, `archive`; see examples/cameras.toml),
        /// each restarted with backoff when it fails; the same as a `[cctv]` table in --config.
        #[arg(long, env = "CROW_CAMERAS")]
        cameras: Option<PathBuf>,
    },
    /// Sign a user session token (a JWT) for the REST API, with the `[auth]` settings of
    /// --config (or CROW_JWT_SECRET for HS256). The user must exist (POST /api/v1/users); its
    /// role is read from the store on every request.
    ///
    ///   CROW_JWT_SECRET=... crow token --org ORG_ID --user usr_... --ttl 3600
    Token {
        /// The org.
        #[arg(long)]
        org: String,
        /// The user id (`usr_...`).
        #[arg(long)]
        user: String,
        /// Validity in seconds [default: 3600].
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// The server's TOML configuration (its `[auth]` table).
        #[arg(long, env = "CROW_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Bulk-import events from a JSON Lines file (one Segment-spec or CROW event per line).
    Ingest {
        /// The file (`-` for standard input).
        file: PathBuf,
        /// Org to import into.
        #[arg(long)]
        org: String,
    },
    /// Manage the product catalog.
    #[command(subcommand)]
    Products(ProductsCommand),
    /// Brands and competitors matched in texts (products come from the catalog).
    #[command(subcommand)]
    Terms(TermsCommand),
    /// Analyze texts: one JSON line per text with language, sentiment {label, score, tier},
    /// entities [{kind, text, start, end, product_id?}], key phrases (and, with --embed, the
    /// embedding).
    ///
    /// Texts come from the arguments, else one per line on standard input. The model tier
    /// (embeddings + the trained sentiment head) runs when the models are present (`make
    /// models`); otherwise the lexicon tier runs and a note says so on stderr. With --org,
    /// entities include that org's products, brands and competitors.
    Analyze {
        /// Texts to analyze (none: read lines from standard input).
        texts: Vec<String>,
        /// Also print each text's sentence embedding (needs the embedding model).
        #[arg(long)]
        embed: bool,
        /// Also apply a head trained with `crow train` (repeatable): prints
        /// "heads": {TASK: {"label", "confidence"}}.
        #[arg(long = "head")]
        heads: Vec<PathBuf>,
        /// Match this org's catalog (from --data).
        #[arg(long)]
        org: Option<String>,
        /// Use the lexicon tier even when models are present.
        #[arg(long)]
        lexicon: bool,
    },
    /// Semantic search: the org's records nearest in meaning to a text.
    ///
    /// Indexes: `interactions` (the text of events: feedback, search queries, chat messages),
    /// `products` (the catalog: name, brand, category, description), `social` (mentions). Events
    /// are indexed by the workflows as they are processed, products when imported; both need the
    /// embedding model (`make models`, or --models DIR).
    ///
    /// Filters (repeatable, ANDed) on the records' metadata: `key=value`, `key!=value`,
    /// `key>=v`, `key<=v`, `key>v`, `key<v`, `key=[a,b]` (one of). Interaction keys: type, name,
    /// field, session_id, person_id, ts (ms), label (positive|neutral|negative), sentiment,
    /// language, product_id. Product keys: product_id, sku, name, brand, category, price_cents.
    /// Example: crow search "too small" --org ORG --filter label=negative --filter ts>=1733000000000
    Search {
        /// The text to search for.
        query: String,
        /// The org whose records to search.
        #[arg(long)]
        org: String,
        /// interactions, products or social.
        #[arg(long, default_value = "interactions")]
        index: String,
        /// A metadata filter (repeatable).
        #[arg(long = "filter")]
        filters: Vec<String>,
        /// How many hits (1..=100).
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// One JSON object per hit: {id, score, snippet, metadata}.
        #[arg(long)]
        json: bool,
    },
    /// Train a linear head on sentence embeddings from labelled texts.
    ///
    /// The data is JSON Lines: {"text": "...", "label": "...", "source"?: "..."}; a few hundred
    /// examples per label are enough. Prints held-out accuracy (stratified k-fold, and
    /// leave-one-source-out when sources are given) and writes the head as JSON. A head with
    /// labels `positive` and `negative` can replace the sentiment head (`--models`/heads/sentiment.json).
    Train {
        /// Task name (e.g. sentiment, intent, urgency).
        #[arg(long)]
        task: String,
        /// Labelled JSON Lines file.
        #[arg(long)]
        data: PathBuf,
        /// Where to write the head.
        #[arg(long)]
        out: PathBuf,
        /// `embedding+lexicon` (adds the lexicon tier's scores and negation flag) or `embedding`.
        #[arg(long, default_value = "embedding+lexicon")]
        features: String,
        /// L2 regularization.
        #[arg(long, default_value_t = 1e-4)]
        l2: f32,
        /// Cross-validation folds.
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Sentiment heads: do not add negated variants of the training sentences.
        #[arg(long)]
        no_augment: bool,
        /// Also report accuracy on these labelled files (same format), e.g. a negation set.
        #[arg(long)]
        eval: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Listen to social media: scheduled, rate-limited adapters pull public mentions, drop exact
    /// and near duplicates, score them with the lexicon tier and send those the pre-filter selects
    /// to `analyze-social` (model sentiment, entities, embeddings into the `social` search index).
    ///
    /// Adapters: rss (RSS/Atom/JSON Feed), mastodon (a tag's public timeline, or search with a
    /// token), bluesky (app.bsky.feed.searchPosts), reddit (public search JSON; OAuth token
    /// optional), hackernews (the Algolia search API).
    ///
    /// Sources, queries, cron schedules, rate limits and pre-filter rules live in a TOML file;
    /// examples/social.toml shows every field. Authors are stored as keyed pseudonyms and PII is
    /// scrubbed from texts before anything is stored.
    ///
    ///   crow social once --config social.toml      poll every source once, then analyze
    ///
    ///   crow social run --config social.toml       poll on the schedules until Ctrl-C
    ///
    ///   crow social status --config social.toml    last run, last error of each source
    ///
    ///   crow social mentions --org ORG --selected  what was kept
    #[command(subcommand, verbatim_doc_comment)]
    Social(social::SocialCommand),
    /// Mask every face in an image or a video (CenterFace through ONNX Runtime).
    ///
    /// Images (.jpg .png .webp) are written in the output's format; videos (anything ffmpeg
    /// reads) are written as .mp4/.mkv/.mov (H.264) or .webm (VP9). On videos the detector runs
    /// when something moves, while a face is tracked, and on every 12th frame; between
    /// detections a tracker carries each face, so the mask does not flicker off when the
    /// detector misses a frame. --every-frame runs it on every frame.
    ///
    ///   crow blur photo.jpg photo-blurred.jpg
    ///
    ///   crow blur entrance.mp4 entrance-masked.mp4 --mode pixelate
    #[command(verbatim_doc_comment)]
    Blur {
        /// The image or video to mask.
        input: PathBuf,
        /// Where to write the masked copy (the extension picks the format).
        output: PathBuf,
        #[command(flatten)]
        detect: video::DetectArgs,
        /// JPEG/WebP quality of an image output (1–100).
        #[arg(long, default_value_t = 90)]
        quality: u8,
    },
    /// Run the CCTV channel on a video file, an image folder or a live stream and print counts.
    ///
    /// Frames are motion-gated; faces are detected (CenterFace), tracked and masked before
    /// anything is stored; people are counted from moving blobs (or a person detector); with
    /// --zones, line crossings (in/out), occupancy and dwell time per zone are measured. Masked
    /// keyframes (JPEG or WebP) and hourly heatmaps go to the object store under a byte and age
    /// budget; frame events go through the `process-video` workflow into the store.
    ///
    /// Live sources (rtsp://, http(s):// MJPEG or video) are restarted with backoff when they
    /// drop; a stall is reported every --stall-secs and waited on. Ctrl-C stops cleanly.
    ///
    ///   crow video entrance.mp4 --org ORG --camera entrance --zones examples/zones.json
    ///
    ///   crow video rtsp://user:pass@10.0.0.5/stream1 --org ORG --camera till --fps 5
    #[command(verbatim_doc_comment)]
    Video(video::VideoArgs),
    /// Run CROW's main job end to end on embedded defaults and print a report.
    Demo(demo::DemoArgs),
    /// Serve CROW to an AI assistant over MCP (the Model Context Protocol) on stdin/stdout.
    ///
    /// The assistant starts this command and talks JSON-RPC on its standard input and output;
    /// logs go to stderr only. It acts as the org and role of --api-key (or CROW_API_KEY), checked
    /// once at start. `crow serve` also answers MCP over streamable HTTP at /mcp, with the key in
    /// `Authorization: Bearer` on every request.
    ///
    /// Tools (those the key's role allows): search, sentiment_breakdown, top_entities, funnel,
    /// traffic_summary, list_sessions, list_interactions, list_mentions, find_products,
    /// people_counts, analyze_text, create_export, get_export. Resources: crow://org/schema,
    /// crow://insights/latest. Prompts: weekly_report, investigate_sentiment, funnel_review,
    /// store_footfall. An export created here is written by the running `crow serve` when there
    /// is one, else by this process.
    ///
    /// Claude Desktop (claude_desktop_config.json) or any client's "mcpServers":
    ///
    ///   {"mcpServers": {"crow": {"command": "crow",
    ///     "args": ["--data", "/srv/crow-data", "mcp"], "env": {"CROW_API_KEY": "sk_..."}}}}
    #[command(verbatim_doc_comment)]
    Mcp(mcp::McpArgs),
}

#[derive(Debug, Subcommand)]
enum TermsCommand {
    /// Add brand or competitor names.
    Add {
        /// Org.
        #[arg(long)]
        org: String,
        /// `brand` or `competitor`.
        #[arg(long, default_value = "competitor")]
        kind: String,
        /// Names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List brand and competitor names.
    List {
        /// Org.
        #[arg(long)]
        org: String,
    },
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create an org. Prints org_id, write_key (public, ingest only) and api_key (secret, shown once).
    ///
    /// With --d1 the org goes into the Cloudflare D1 database of the Worker instead of the data
    /// directory, through `wrangler d1 execute` (run from the directory of --wrangler-config, so
    /// the wrangler that `make worker` installs there is used):
    ///
    ///   crow org create "Acme" --d1 crow --local --persist-to .wrangler/state
    ///
    ///   crow org create "Acme" --d1 crow --remote      (your Cloudflare account; `wrangler login` first)
    #[command(verbatim_doc_comment)]
    Create {
        /// Display name.
        name: String,
        /// Print exactly {"org_id", "write_key", "api_key"} as JSON.
        #[arg(long)]
        json: bool,
        /// Create it in this D1 database (its name in wrangler.toml) instead of the data directory.
        #[arg(long, value_name = "DATABASE")]
        d1: Option<String>,
        /// With --d1: the Worker's wrangler.toml.
        #[arg(
            long,
            value_name = "FILE",
            default_value = "deploy/worker/wrangler.toml",
            requires = "d1"
        )]
        wrangler_config: PathBuf,
        /// With --d1: the wrangler environment (`test` has no Vectorize or Workers AI).
        #[arg(long, requires = "d1")]
        env: Option<String>,
        /// With --d1: the local database of `wrangler dev` (the default).
        #[arg(long, requires = "d1", conflicts_with = "remote")]
        local: bool,
        /// With --d1: the database on your Cloudflare account.
        #[arg(long, requires = "d1")]
        remote: bool,
        /// With --d1 --local: wrangler's state directory (`wrangler dev --persist-to`).
        #[arg(long, value_name = "DIR", requires = "d1", conflicts_with = "remote")]
        persist_to: Option<PathBuf>,
    },
    /// List orgs.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ProductsCommand {
    /// Import a catalog: CSV with a header row, a JSON array, or JSON Lines. Columns: sku, name,
    /// brand, category, price, currency, url, description (sku and name required).
    Import {
        /// The file (`.csv` is read as CSV, anything else as JSON).
        file: PathBuf,
        /// Org to import into.
        #[arg(long)]
        org: String,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DurabilityArg {
    Normal,
    Full,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The backends without text models or vector indexes: for commands that only touch the
/// store, so they start fast and leave the indexes to whoever owns them.
fn store_backends(data: &Path) -> Result<Backends> {
    let mut config = ServerConfig::new(data, "127.0.0.1:0".parse()?);
    config.nlp.use_models = false;
    Backends::open(&config).with_context(|| format!("opening the data directory {}", data.display()))
}

/// The backends with text analysis (the model tier when present) and the vector indexes.
fn backends(data: &Path, models: Option<&Path>) -> Result<Backends> {
    let mut config = ServerConfig::new(data, "127.0.0.1:0".parse()?);
    if let Some(m) = models {
        config.nlp.models_dir = m.to_path_buf();
    }
    Backends::open(&config).with_context(|| format!("opening the data directory {}", data.display()))
}

/// The models directory: --models, else ./models.
fn models_dir(models: Option<&Path>) -> PathBuf {
    models.map_or_else(|| PathBuf::from("models"), Path::to_path_buf)
}

/// What to do about an unknown org.
const ORG_HINT: &str = "`crow org list` shows the orgs, `crow org create NAME` makes one";

async fn require_org(b: &Backends, org: &str) -> Result<()> {
    if b.store().get_org(org).await?.is_none() {
        bail!("no org {org:?} in this data directory; {ORG_HINT}");
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Org(OrgCommand::Create {
            name,
            json,
            d1,
            wrangler_config,
            env,
            local: _,
            remote,
            persist_to,
        }) => {
            if name.trim().is_empty() {
                bail!("the org name must not be empty");
            }
            let creds = match d1 {
                Some(database) => {
                    let target = d1::Target {
                        database,
                        config: wrangler_config,
                        env,
                        remote,
                        persist_to,
                    };
                    d1::create_org(&target, name.trim(), now_millis())?
                }
                None => {
                    let b = store_backends(&cli.data)?;
                    b.store().create_org(name.trim(), now_millis()).await?
                }
            };
            if json {
                println!("{}", serde_json::to_string(&creds)?);
            } else {
                println!("org_id     {}", creds.org_id);
                println!(
                    "write_key  {}   (public: put it in your website snippet; can only ingest)",
                    creds.write_key
                );
                println!(
                    "api_key    {}   (secret: shown once, stored hashed; reads your data)",
                    creds.api_key
                );
            }
        }
        Command::Token { org, user, ttl, config } => {
            if !(1..=30 * 86_400).contains(&ttl) {
                bail!("--ttl must be 1 to 2592000 seconds (30 days)");
            }
            let settings = match &config {
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                    toml::from_str::<ServerConfig>(&text)
                        .with_context(|| format!("in {}", path.display()))?
                        .auth
                }
                None => Default::default(),
            };
            let Some(verifier) = settings.verifier()? else {
                bail!(
                    "user sessions are not configured: set CROW_JWT_SECRET (32+ bytes) or an [auth] table in --config"
                );
            };
            let b = store_backends(&cli.data)?;
            if b.store().get_user(&org, &user).await?.is_none() {
                bail!("org {org} has no user {user} (create one with POST /api/v1/users)");
            }
            println!("{}", verifier.issue(&org, &user, now_millis(), ttl)?);
        }
        Command::Org(OrgCommand::List { json }) => {
            let b = store_backends(&cli.data)?;
            let orgs = b.store().list_orgs().await?;
            if json {
                println!("{}", serde_json::to_string(&orgs)?);
            } else {
                for o in orgs {
                    println!(
                        "{}  {}  created {}",
                        o.id,
                        o.name,
                        crow_core::time::format_millis(o.created_at)
                    );
                }
            }
        }
        Command::Serve {
            addr,
            config: file,
            durability,
            no_worker,
            trust_proxy,
            social,
            cameras,
        } => {
            let mut config = match &file {
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                    toml::from_str::<ServerConfig>(&text).with_context(|| format!("in {}", path.display()))?
                }
                None => ServerConfig::default(),
            };
            config.data_dir = cli.data.clone();
            if let Some(m) = &cli.models {
                config.nlp.models_dir = m.clone();
            }
            if let Some(addr) = addr {
                config.addr = addr;
            }
            if let Some(d) = durability {
                config.durability = match d {
                    DurabilityArg::Normal => Durability::Normal,
                    DurabilityArg::Full => Durability::Full,
                };
            }
            if no_worker {
                config.run_worker = false;
            }
            if trust_proxy {
                config.ingest.trust_proxy_headers = true;
            }
            if let Some(path) = &social {
                config.social = Some(social::load_config(path)?);
            }
            if let Some(path) = &cameras {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                config.cctv = Some(
                    toml::from_str::<crow_server::cctv::CctvConfig>(&text)
                        .with_context(|| format!("in {}", path.display()))?,
                );
            }
            if let Some(s) = &config.social {
                require_org(&store_backends(&cli.data)?, &s.org).await?;
            }
            if let Some(c) = &config.cctv {
                require_org(&store_backends(&cli.data)?, &c.org).await?;
            }
            let server = Server::start(config).await?;
            eprintln!(
                "crow: listening on http://{} (data: {})",
                server.addr(),
                cli.data.display()
            );
            server.wait().await?;
        }
        Command::Ingest { file, org } => {
            import_events(&backends(&cli.data, cli.models.as_deref())?, &file, &org).await?;
        }
        Command::Products(ProductsCommand::Import { file, org, json }) => {
            let b = backends(&cli.data, cli.models.as_deref())?;
            require_org(&b, &org).await?;
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let format = crow_ingest::catalog::Format::from_path(&file.to_string_lossy());
            let parsed = crow_ingest::catalog::parse(&org, &bytes, format, now_millis());
            let changed = b.store().upsert_products(&org, &parsed.products).await?;
            match &b.indexes {
                Some(indexes) => {
                    let embedder = crow_server::Blocking(&b.analyzer);
                    crow_ingest::search::index_products(
                        &embedder,
                        indexes.get(IndexKind::Products),
                        &org,
                        &parsed.products,
                    )
                    .await
                    .context("embedding the products for semantic search")?;
                }
                None => eprintln!("note: products are not embedded for search: no embedding model (`make models`)"),
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"imported": parsed.products.len(), "changed": changed, "errors": parsed.errors})
                );
            } else {
                for e in &parsed.errors {
                    eprintln!("row {}: {}: {}", e.row, e.field, e.reason);
                }
                println!(
                    "{} products read, {changed} new or changed, {} rows skipped",
                    parsed.products.len(),
                    parsed.errors.len()
                );
            }
            if parsed.products.is_empty() && !parsed.errors.is_empty() {
                bail!("no product could be imported");
            }
        }
        Command::Search {
            query,
            org,
            index,
            filters,
            k,
            json,
        } => {
            let b = backends(&cli.data, cli.models.as_deref())?;
            require_org(&b, &org).await?;
            let Some(indexes) = &b.indexes else {
                bail!("semantic search needs the embedding model: run `make models` or pass --models DIR");
            };
            let req = crow_ingest::search::SearchRequest {
                query,
                index: index.parse()?,
                k,
                filter: MetadataFilter::parse_exprs(&filters)?,
            };
            let hits = crow_ingest::search::search(indexes, &crow_server::Blocking(&b.analyzer), &org, &req).await?;
            for hit in &hits {
                if json {
                    println!("{}", serde_json::to_string(hit)?);
                } else {
                    let meta: Vec<String> = ["label", "type", "name", "sku", "category"]
                        .iter()
                        .filter_map(|k| {
                            hit.metadata
                                .get(*k)
                                .and_then(|v| v.as_str())
                                .map(|v| format!("{k}={v}"))
                        })
                        .collect();
                    println!(
                        "{:.3}  {}  {}  [{}]",
                        hit.score,
                        hit.id,
                        hit.snippet.as_deref().unwrap_or(""),
                        meta.join(" ")
                    );
                }
            }
            if hits.is_empty() && !json {
                eprintln!("no hits in the {} index of {org}", req.index);
            }
        }
        Command::Terms(TermsCommand::Add { org, kind, names }) => {
            let b = store_backends(&cli.data)?;
            require_org(&b, &org).await?;
            let terms: Vec<CatalogTerm> = names
                .iter()
                .map(|n| CatalogTerm {
                    kind: kind.clone(),
                    name: n.clone(),
                })
                .collect();
            let added = b.store().add_terms(&org, &terms, now_millis()).await?;
            println!("{added} new {kind} names");
        }
        Command::Terms(TermsCommand::List { org }) => {
            let b = store_backends(&cli.data)?;
            require_org(&b, &org).await?;
            for t in b.store().list_terms(&org).await? {
                println!("{:<11} {}", t.kind, t.name);
            }
        }
        Command::Analyze {
            texts,
            embed,
            heads,
            org,
            lexicon,
        } => {
            nlp::analyze(
                &cli.data,
                cli.models.as_deref(),
                texts,
                embed,
                &heads,
                org.as_deref(),
                lexicon,
            )
            .await?
        }
        Command::Train {
            task,
            data,
            out,
            features,
            l2,
            folds,
            no_augment,
            eval,
            json,
        } => nlp::train(
            cli.models.as_deref(),
            &task,
            &data,
            &out,
            &features,
            TrainConfig {
                l2,
                folds,
                augment_negation: !no_augment,
                ..TrainConfig::default()
            },
            &eval,
            json,
        )?,
        Command::Social(cmd) => social::command(&cli.data, cli.models.as_deref(), cmd).await?,
        Command::Demo(args) => demo::run(&cli.data, cli.models.as_deref(), &args).await?,
        Command::Mcp(args) => mcp::run(&cli.data, cli.models.as_deref(), &args).await?,
        Command::Blur {
            input,
            output,
            detect,
            quality,
        } => video::blur(&models_dir(cli.models.as_deref()), &input, &output, &detect, quality).await?,
        Command::Video(args) => {
            let models = models_dir(cli.models.as_deref());
            let b = backends(&cli.data, cli.models.as_deref())?;
            let (report, jobs) = video::run_video(&b, &models, &args).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&serde_json::json!({"report": report, "jobs_run": jobs}))?
                );
            } else {
                video::print_report(&report, &args.camera);
            }
        }
    }
    Ok(())
}

/// Running totals of an import.
#[derive(Debug, Default)]
struct ImportTotals {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
}

/// Imports one batch; `lines` maps batch positions to input line numbers for error messages.
async fn import_batch(
    b: &Backends,
    grant: &crow_core::ports::KeyGrant,
    batch: &mut Vec<serde_json::Value>,
    lines: &mut Vec<usize>,
    totals: &mut ImportTotals,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let out = b.ingest.import(grant, std::mem::take(batch), now_millis()).await?;
    totals.accepted += out.inserted;
    totals.duplicates += out.duplicates;
    for r in &out.rejected {
        totals.rejected += 1;
        let line = lines.get(r.index).copied().unwrap_or(0);
        bar.suspend(|| eprintln!("line {line}: {}: {}", r.field, r.reason));
    }
    lines.clear();
    Ok(())
}

/// Reads JSON Lines and imports them in batches through the same validation and scrubbing as
/// the HTTP endpoints, then runs the workflows for what was imported.
async fn import_events(b: &Backends, file: &Path, org: &str) -> Result<()> {
    let grant = b
        .store()
        .org_grant(org)
        .await?
        .with_context(|| format!("no org {org:?} in this data directory; {ORG_HINT}"))?;
    let (reader, total): (Box<dyn std::io::BufRead>, u64) = if file == Path::new("-") {
        (Box::new(std::io::BufReader::new(std::io::stdin())), 0)
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(std::io::BufReader::new(f)), len)
    };
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut totals = ImportTotals::default();
    let mut batch = Vec::with_capacity(500);
    let mut lines: Vec<usize> = Vec::with_capacity(500);
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = line.context("reading the input")?;
        bar.inc(line.len() as u64 + 1);
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(v) => {
                batch.push(v);
                lines.push(line_no);
            }
            Err(e) => {
                totals.rejected += 1;
                bar.suspend(|| eprintln!("line {line_no}: invalid JSON: {e}"));
                continue;
            }
        }
        if batch.len() >= 500 {
            import_batch(b, &grant, &mut batch, &mut lines, &mut totals, &bar).await?;
        }
    }
    import_batch(b, &grant, &mut batch, &mut lines, &mut totals, &bar).await?;
    bar.finish_and_clear();
    println!(
        "{} events stored, {} duplicates skipped, {} rejected",
        totals.accepted, totals.duplicates, totals.rejected
    );
    // Run the workflows (identity, sessions, archive) now, unless a running `crow serve` is the
    // worker of this data directory: then it picks the jobs up itself.
    match b.drain_if_worker().await? {
        Some(processed) => println!("{processed} workflow jobs run"),
        None => println!("workflow jobs queued for the running server"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../../../examples/crow.toml");
        let config: crow_server::ServerConfig = toml::from_str(text).unwrap();
        assert_eq!(config.worker_batch, 64);
        assert_eq!(
            config.ingest.cors_allowed_origins.as_deref(),
            Some(&["https://shop.example".to_owned()][..])
        );
        assert!(toml::from_str::<crow_server::ServerConfig>("adress = \"x\"").is_err());
        assert_eq!(config.nlp.batch_size, 32);
        assert!(toml::from_str::<crow_server::ServerConfig>("[nlp]\nmodel_dir = \"x\"").is_err());
    }
}
