//! `crow demo`: CROW's main job on its embedded defaults, end to end.
//!
//! Starts the real server on a free loopback port, creates an org, simulates a few hundred
//! visitors of a small shop (page views, product views, searches, add-to-cart, checkout; some
//! crawlers; some PII typed where it should not be), sends their events over HTTP the way the
//! website SDK and Segment's libraries do, waits for the workflows to drain the queues, and
//! prints a report computed by the store.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use crow_core::model::{CatalogTerm, EventType, OrgCredentials, Product};
use crow_core::ports::{
    BlobStore, CatalogStore, EventStore, FunnelStep, InteractionQuery, JobQueue, VideoStore, queues,
};
use crow_core::vector::IndexKind;
use crow_nlp::analyzer::{TextSummary, summarize};
use crow_server::{Server, ServerConfig, now_millis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Options of `crow demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Number of simulated visitors.
    #[arg(long, default_value_t = 300)]
    pub visitors: usize,
    /// Random seed, for a reproducible run.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

const CATALOG: [(&str, &str, i64); 8] = [
    ("TRAIL-42", "Trail Runner 42", 12900),
    ("ROAD-7", "Road Racer 7", 15900),
    ("HIKE-3", "Summit Hiker", 17900),
    ("SOCK-1", "Merino Socks", 1900),
    ("JACK-9", "Storm Jacket", 22900),
    ("CAP-2", "Sun Cap", 2500),
    ("BAG-5", "Day Pack 20L", 8900),
    ("BOTL-8", "Steel Bottle", 3500),
];

const BROWSERS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
];

const BOTS: [&str; 4] = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
];

/// Values a careless visitor types into search boxes and form fields. None of them may survive
/// into storage: the report counts how many were scrubbed.
const PII_SEARCHES: [&str; 5] = [
    "order status for jane.doe@example.com",
    "call me at +44 20 7946 0958",
    "refund to card 4111 1111 1111 1111",
    "my iban is DE89 3704 0044 0532 0130 00",
    "ssn 123-45-6789 for the warranty",
];

/// Competitors the shop watches for in feedback.
const COMPETITORS: [&str; 2] = ["Salomon", "Hoka"];

/// Feedback visitors leave after an order (`{p}` is the product they bought). Sentiment and
/// entities are computed by the `process-interaction` workflow.
const FEEDBACK: [&str; 10] = [
    "The {p} is not bad at all, much lighter than my old Salomon pair.",
    "Love the {p}! Arrived in two days and fits perfectly.",
    "The {p} fell apart after a week. I want a refund of €45.",
    "Delivery was late and nobody answered my emails about order ORD-10042.",
    "Great price for the {p}, better than what Hoka charges.",
    "The {p} is okay, nothing special.",
    "Terrible customer service, never ordering again!!",
    "Super comfortable {p}, I wear it every day #trailrunning",
    "Sizing guide was wrong, the {p} is too small. Not happy.",
    "Does the {p} come in blue?",
];

const SHOP: &str = "https://shop.example";

/// The demo's closing semantic query.
const DEMO_QUERY: &str = "my package took forever to show up";

struct Visitor {
    anon: String,
    ua: &'static str,
    bot: bool,
}

/// One simulated event, in Segment's spec layout (the CROW endpoint accepts the long names too).
fn event(
    v: &Visitor,
    ty: EventType,
    name: Option<&str>,
    (path, referrer): (&str, Option<&str>),
    properties: Value,
    ts: i64,
    n: &mut u64,
) -> Value {
    *n += 1;
    let url = format!("{SHOP}{path}");
    let mut e = json!({
        "messageId": format!("demo-{}-{n}", v.anon),
        "type": ty.as_str(),
        "anonymousId": v.anon,
        "properties": properties,
        "timestamp": crow_core::time::format_millis(ts),
        "context": {
            "page": {"url": url, "path": path.split('?').next().unwrap_or(path), "referrer": referrer, "title": "Trail Shop"},
            "userAgent": v.ua,
            "locale": "en-US",
            "ip": "203.0.113.77",
        }
    });
    if let Some(name) = name {
        e["event"] = json!(name);
        e["name"] = json!(name);
    }
    e
}

/// Simulates the visitors; returns their events, oldest first per visitor.
fn simulate(args: &DemoArgs, now: i64) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut out = Vec::new();
    let mut n = 0u64;
    for i in 0..args.visitors {
        let bot = rng.random_bool(0.08);
        let v = Visitor {
            anon: format!("anon-{:08x}-{i}", rng.random::<u32>()),
            ua: if bot {
                BOTS[rng.random_range(0..BOTS.len())]
            } else {
                BROWSERS[rng.random_range(0..BROWSERS.len())]
            },
            bot,
        };
        // visits happen over the last six hours
        let mut t = now - rng.random_range(10 * 60_000..6 * 3_600_000i64);
        let (landing, referrer) = match rng.random_range(0..5) {
            0 => ("/", Some("https://www.google.com/search?q=trail+shoes")),
            1 => ("/?utm_source=newsletter&utm_medium=email&utm_campaign=spring", None),
            2 => ("/?gclid=Cj0KCQjw", Some("https://www.google.com/")),
            3 => ("/", Some("https://www.facebook.com/")),
            _ => ("/", None),
        };
        let sessions = if !v.bot && rng.random_bool(0.2) { 2 } else { 1 };
        for s in 0..sessions {
            if s == 1 {
                t += rng.random_range(45 * 60_000..90 * 60_000); // comes back later: a new session
            }
            let step = |t: &mut i64, rng: &mut StdRng| {
                *t += rng.random_range(5_000..120_000);
                *t
            };
            out.push(event(
                &v,
                EventType::Page,
                None,
                (landing, referrer),
                json!({}),
                t,
                &mut n,
            ));
            if v.bot {
                for (sku, _, _) in CATALOG.iter().take(rng.random_range(2..6)) {
                    let path = format!("/products/{sku}");
                    out.push(event(
                        &v,
                        EventType::Page,
                        None,
                        (&path, None),
                        json!({}),
                        step(&mut t, &mut rng),
                        &mut n,
                    ));
                }
                continue;
            }
            if rng.random_bool(0.35) {
                let query = if rng.random_bool(0.15) {
                    PII_SEARCHES[rng.random_range(0..PII_SEARCHES.len())].to_owned()
                } else {
                    ["trail shoes", "rain jacket", "socks", "backpack"][rng.random_range(0..4)].to_owned()
                };
                out.push(event(
                    &v,
                    EventType::Track,
                    Some("Products Searched"),
                    ("/search", None),
                    json!({"query": query}),
                    step(&mut t, &mut rng),
                    &mut n,
                ));
            }
            let (sku, name, price) = CATALOG[rng.random_range(0..CATALOG.len())];
            let path = format!("/products/{sku}");
            let product = json!({"product_id": sku, "name": name, "price": price as f64 / 100.0, "currency": "EUR"});
            out.push(event(
                &v,
                EventType::Page,
                None,
                (&path, None),
                json!({}),
                step(&mut t, &mut rng),
                &mut n,
            ));
            out.push(event(
                &v,
                EventType::Track,
                Some("Product Viewed"),
                (&path, None),
                product.clone(),
                step(&mut t, &mut rng),
                &mut n,
            ));
            if !rng.random_bool(0.45) {
                continue;
            }
            out.push(event(
                &v,
                EventType::Track,
                Some("Product Added"),
                (&path, None),
                product.clone(),
                step(&mut t, &mut rng),
                &mut n,
            ));
            out.push(event(
                &v,
                EventType::Page,
                None,
                ("/cart", None),
                json!({}),
                step(&mut t, &mut rng),
                &mut n,
            ));
            if !rng.random_bool(0.6) {
                continue;
            }
            let mut checkout = json!({"value": price as f64 / 100.0, "currency": "EUR"});
            if rng.random_bool(0.2) {
                checkout["note"] = json!("deliver to +1 (415) 555-2671, ring twice");
            }
            out.push(event(
                &v,
                EventType::Track,
                Some("Checkout Started"),
                ("/checkout", None),
                checkout,
                step(&mut t, &mut rng),
                &mut n,
            ));
            if !rng.random_bool(0.55) {
                continue;
            }
            // the shop identifies buyers by e-mail: CROW replaces it with a keyed pseudonym
            let email = format!("buyer{i}@example.com");
            let mut identify = event(
                &v,
                EventType::Identify,
                None,
                ("/checkout", None),
                json!({}),
                step(&mut t, &mut rng),
                &mut n,
            );
            identify["userId"] = json!(email);
            identify["traits"] = json!({"email": email, "plan": "member"});
            out.push(identify);
            let mut order = event(
                &v,
                EventType::Track,
                Some("Order Completed"),
                ("/checkout/done", None),
                json!({"order_id": format!("ORD-{}", 10_000 + i), "revenue": price as f64 / 100.0, "currency": "EUR", "products": [product]}),
                step(&mut t, &mut rng),
                &mut n,
            );
            order["userId"] = json!(email);
            out.push(order);
            if rng.random_bool(0.5) {
                let text = FEEDBACK[rng.random_range(0..FEEDBACK.len())].replace("{p}", name);
                let mut feedback = event(
                    &v,
                    EventType::Track,
                    Some("Feedback Submitted"),
                    ("/checkout/done", None),
                    json!({"feedback": text, "product_id": sku}),
                    step(&mut t, &mut rng),
                    &mut n,
                );
                feedback["userId"] = json!(email);
                out.push(feedback);
            }
        }
    }
    out
}

/// Runs the demo against a data directory.
pub async fn run(data_dir: &std::path::Path, models: Option<&std::path::Path>, args: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    let mut config = ServerConfig::new(data_dir, "127.0.0.1:0".parse()?);
    if let Some(m) = models {
        config.nlp.models_dir = m.to_path_buf();
    }
    let server = Server::start(config).await.context("starting the server")?;
    let base = format!("http://{}", server.addr());
    let store = server.backends().store();
    let creds: OrgCredentials = store
        .create_org("Demo Trail Shop", now_millis())
        .await
        .context("creating the demo org")?;
    eprintln!("crow demo: server on {base}, org {}", creds.org_id);
    eprintln!(
        "crow demo: text analysis runs the {} tier{}",
        server.backends().analyzer.tier(),
        if server.backends().analyzer.tier() == "lexicon" {
            " (run `make models` for the model tier)"
        } else {
            ""
        }
    );
    // The shop's catalog and competitors: feedback mentioning them is linked to them.
    let products: Vec<Product> = CATALOG
        .iter()
        .map(|(sku, name, price)| Product {
            id: crow_ingest::catalog::product_id(&creds.org_id, sku),
            org_id: creds.org_id.clone(),
            sku: (*sku).to_owned(),
            name: (*name).to_owned(),
            brand: Some("Trailhead".into()),
            category: None,
            price_cents: Some(*price),
            currency: Some("EUR".into()),
            url: Some(format!("{SHOP}/products/{sku}")),
            description: None,
            updated_at: now_millis(),
        })
        .collect();
    store.upsert_products(&creds.org_id, &products).await?;
    if let Some(indexes) = &server.backends().indexes {
        let embedder = crow_server::Blocking(&server.backends().analyzer);
        crow_ingest::search::index_products(&embedder, indexes.get(IndexKind::Products), &creds.org_id, &products)
            .await
            .context("embedding the catalog")?;
    }
    let competitors: Vec<CatalogTerm> = COMPETITORS
        .iter()
        .map(|c| CatalogTerm {
            kind: "competitor".into(),
            name: (*c).to_owned(),
        })
        .collect();
    store.add_terms(&creds.org_id, &competitors, now_millis()).await?;

    let events = simulate(args, now_millis());
    let client = reqwest::Client::new();
    let mut sent = 0usize;
    let mut requests = 0usize;
    // Most traffic arrives like the website SDK sends it; a quarter through Segment's API.
    for (i, chunk) in events.chunks(50).enumerate() {
        let sent_at = crow_core::time::format_millis(now_millis());
        let resp = if i % 4 == 3 {
            client
                .post(format!("{base}/v1/batch"))
                .basic_auth(&creds.write_key, Some(""))
                .json(&json!({"batch": chunk, "sentAt": sent_at}))
                .send()
                .await?
        } else {
            client
                .post(format!("{base}/api/v1/events"))
                .header("content-type", "text/plain")
                .body(serde_json::to_vec(
                    &json!({"writeKey": creds.write_key, "sentAt": sent_at, "batch": chunk}),
                )?)
                .send()
                .await?
        };
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("ingest answered {status}: {body}");
        }
        sent += chunk.len();
        requests += 1;
    }
    eprintln!("crow demo: sent {sent} events in {requests} requests; waiting for the workflows");

    // Social listening: the real channel against a local server in each platform's format.
    let social = crate::demo_social::run(server.backends(), &creds.org_id, now_millis()).await?;
    let social_total = crate::social::total(&social);

    // CCTV: a generated entrance clip through the real channel (faces masked before storage).
    let models_dir = crate::models_dir(models);
    let cctv = match crate::demo_cctv::run(server.backends(), &models_dir, data_dir, &creds.org_id).await {
        Ok((report, _clip)) => Ok(report),
        Err(e) => {
            eprintln!("crow demo: the CCTV part did not run: {e:#}");
            Err(format!("{e:#}"))
        }
    };

    // Wait for the queues to drain.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut pending = 0;
        for q in [queues::INTERACTION, queues::SOCIAL, queues::PROCESSING] {
            let d = store.depth(q).await?;
            pending += d.ready + d.in_flight;
        }
        if pending == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the workflows did not drain the queues within 120 s ({pending} jobs left)");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let org = &creds.org_id;
    let summary = store.traffic_summary(org, 0, i64::MAX, 5).await?;
    let steps: Vec<FunnelStep> = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]
        .iter()
        .map(|s| FunnelStep {
            label: (*s).to_owned(),
            event_type: EventType::Track,
            name: Some((*s).to_owned()),
        })
        .collect();
    let funnel = store.funnel(org, &steps, 0, i64::MAX).await?;
    let archived = server
        .backends()
        .blobs
        .list(&crow_ingest::workflows::archive_prefix(org))
        .await?
        .len();
    let dead: u64 = {
        let mut d = 0;
        for q in queues::ALL {
            d += store.depth(q).await?.dead;
        }
        d
    };
    let feedback = feedback_report(store, org).await?;
    // A semantic query over the feedback, through the real endpoint: no word of it appears in
    // the text it should find ("Delivery was late ...").
    let search = match &server.backends().indexes {
        Some(_) => {
            let resp = client
                .get(format!("{base}{}", crow_ingest::api::SEARCH_ROUTE))
                .bearer_auth(&creds.api_key)
                .query(&[("q", DEMO_QUERY), ("k", "20"), ("filter", "label=negative")])
                .send()
                .await?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!("search answered {status}: {body}");
            }
            body
        }
        None => Value::Null,
    };
    let cctv_events = store
        .list_frame_events(
            org,
            &crow_core::video::FrameEventQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await?
        .data
        .len();
    let elapsed = started.elapsed().as_secs_f64();

    if args.json {
        let report = json!({
            "org_id": org, "events_sent": sent, "summary": summary, "funnel": funnel,
            "raw_batches_archived": archived, "dead_jobs": dead, "seconds": elapsed, "feedback": feedback,
            "search": search, "social": social,
            "cctv": match &cctv { Ok(r) => json!(r), Err(e) => json!({"error": e}) },
            "cctv_events_stored": cctv_events,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        println!(
            "CROW demo — {} simulated visitors, {sent} events over HTTP ({requests} requests)",
            args.visitors
        );
        println!("  stored events      {:>7}", summary.events);
        println!("  visitors (humans)  {:>7}", summary.visitors);
        println!("  sessions (humans)  {:>7}", summary.sessions);
        println!("  page views         {:>7}", summary.page_views);
        println!("  bot events flagged {:>7}", summary.bot_events);
        println!("  PII values scrubbed{:>7}", summary.pii_scrubbed);
        println!("  raw-batch archive objects (gzip NDJSON, scrubbed) {archived}");
        println!();
        println!("  top pages");
        for (path, n) in &summary.top_pages {
            println!("    {n:>6}  {path}");
        }
        println!();
        println!("  traffic sources (sessions)");
        for (class, n) in &summary.referrer_classes {
            println!("    {n:>6}  {class}");
        }
        println!();
        println!("  checkout funnel (people)");
        for row in &funnel {
            println!(
                "    {:>6}  {:<18} drop-off {:>5.1}%",
                row.people,
                row.label,
                row.drop_off * 100.0
            );
        }
        println!();
        let f = &feedback.summary;
        println!(
            "  customer feedback ({} texts, {} tier)",
            f.texts,
            f.tier.as_deref().unwrap_or("no")
        );
        println!(
            "    sentiment  {} positive, {} neutral, {} negative",
            f.positive, f.neutral, f.negative
        );
        let mentions: Vec<String> = f
            .top_entities
            .iter()
            .map(|(kind, text, n)| format!("{text} ({kind}) {n}"))
            .collect();
        println!("    mentioned  {}", mentions.join(", "));
        if let Some((text, label)) = feedback.example.as_ref() {
            println!("    e.g. {label:<8} \"{text}\"");
        }
        println!();
        match search["data"].as_array() {
            Some(hits) => {
                println!("  semantic search: \"{DEMO_QUERY}\" (negative feedback)");
                // Many customers send the same words: show each text once, with its count.
                let mut seen: Vec<(&str, f64, usize)> = Vec::new();
                for hit in hits {
                    let text = hit["snippet"].as_str().unwrap_or("");
                    match seen.iter_mut().find(|(t, _, _)| *t == text) {
                        Some(entry) => entry.2 += 1,
                        None => seen.push((text, hit["score"].as_f64().unwrap_or(0.0), 1)),
                    }
                }
                for (text, score, n) in seen.iter().take(3) {
                    println!("    {score:.2}  {n:>2}×  \"{text}\"");
                }
            }
            None => println!("  semantic search: needs the embedding model (`make models`)"),
        }
        println!();
        let t = &social_total;
        println!(
            "  social listening ({} sources on a local fixture server: mastodon, bluesky, reddit, hackernews, rss)",
            social.len()
        );
        println!("    posts fetched      {:>5}", t.fetched);
        println!("    mentions kept      {:>5}", t.stored);
        println!(
            "    duplicates dropped {:>5}  ({} exact, {} near: reposts, cross-posts, copy-pasted spam)",
            t.exact_duplicates + t.near_duplicates,
            t.exact_duplicates,
            t.near_duplicates
        );
        println!(
            "    sentiment (lexicon) {:>4} positive, {} neutral, {} negative; {} sent to analyze-social",
            t.sentiment.positive, t.sentiment.neutral, t.sentiment.negative, t.selected
        );
        for r in social.iter().filter(|r| r.error.is_some()) {
            println!("    {} failed: {}", r.source, r.error.as_deref().unwrap_or(""));
        }
        println!();
        match &cctv {
            Ok(r) => {
                println!(
                    "  CCTV (a generated entrance clip: {} frames, two people walking through the door)",
                    r.frames
                );
                println!(
                    "    face detector ran on {:>4} frames ({:.0} % skipped by motion gating)",
                    r.analyzed,
                    100.0 * (1.0 - r.analyzed as f64 / r.frames.max(1) as f64)
                );
                println!(
                    "    face regions masked {:>3}  (before anything was stored; the tracker bridges missed detections)",
                    r.masked_regions
                );
                println!("    door crossings      in {} / out {}", r.line_in, r.line_out);
                println!(
                    "    archive             {} masked keyframes, {} heatmap(s), {} KiB",
                    r.archived,
                    r.heatmaps,
                    r.archived_bytes / 1024
                );
                println!("    frame events stored {cctv_events}");
            }
            Err(e) => println!("  CCTV: skipped ({e})"),
        }
        println!();
        println!("  done in {elapsed:.1} s; data in {}", data_dir.display());
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| {
                std::env::current_dir()
                    .ok()
                    .and_then(|d| p.strip_prefix(d).ok().map(|r| format!("./{}", r.display())))
            })
            .unwrap_or_else(|| "crow".to_owned());
        println!("  explore: {exe} --data {} serve, then", data_dir.display());
        println!(
            "    curl -H 'Authorization: Bearer {}' http://127.0.0.1:8787/api/v1/sessions",
            creds.api_key
        );
        println!(
            "    {exe} --data {} search \"{DEMO_QUERY}\" --org {} --filter label=negative",
            data_dir.display(),
            org
        );
    }
    if dead > 0 {
        bail!("{dead} jobs went to the dead-letter queue");
    }
    server.shutdown().await?;
    Ok(())
}

/// What the workflows made of the simulated feedback.
#[derive(Debug, Default, serde::Serialize)]
struct FeedbackReport {
    #[serde(flatten)]
    summary: TextSummary,
    /// A negated sentence and the label it got.
    example: Option<(String, String)>,
}

async fn feedback_report(store: &crow_store::SqliteStore, org: &str) -> Result<FeedbackReport> {
    let mut events = Vec::new();
    let mut query = InteractionQuery {
        limit: 1000,
        name: Some("Feedback Submitted".into()),
        ..InteractionQuery::default()
    };
    loop {
        let page = store.list_interactions(org, &query).await?;
        events.extend(page.data);
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    let kinds = ["product", "competitor", "brand", "money", "order_number", "hashtag"];
    let summary = summarize(events.iter().filter_map(|e| e.analysis.as_ref()), &kinds, 6);
    let example = events.iter().find_map(|e| {
        let text = e.properties.get("feedback")?.as_str()?;
        let label = &e.analysis.as_ref()?.sentiment.as_ref()?.label;
        text.contains("not bad").then(|| (text.to_owned(), label.clone()))
    });
    Ok(FeedbackReport { summary, example })
}
