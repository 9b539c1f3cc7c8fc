//! Text intelligence end to end: `POST /api/v1/analyze`, the workflow's analysis of feedback
//! events, `crow analyze` and `crow train`.

use std::process::{Command, Stdio};

use crow_e2e::*;
use serde_json::{Value, json};

fn analyze(base: &str, key: &str, body: Vec<u8>) -> (u16, Value) {
    let r = client()
        .post(format!("{base}/api/v1/analyze"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn the_analyze_endpoint_answers_validates_and_stays_up() {
    let models = models_present();
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Acme");
    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let base = &srv.base;
    let tier = if models { "model" } else { "lexicon" };

    let body = json!({"texts": [
        "The delivery was fast and the staff were GREAT!",
        "Refund of $45 still missing, I am not happy. Order #A12345",
        ""
    ]});
    let (status, v) = analyze(base, &org.api_key, body.to_string().into_bytes());
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tier"], tier);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["sentiment"]["label"], "positive", "{v}");
    assert_eq!(data[0]["sentiment"]["tier"], tier);
    assert_eq!(data[0]["language"], "en");
    assert_eq!(data[1]["sentiment"]["label"], "negative", "{v}");
    let entities = data[1]["entities"].as_array().unwrap();
    assert!(
        entities.iter().any(|e| e["kind"] == "money" && e["text"] == "$45"),
        "{entities:?}"
    );
    assert_eq!(
        data[2]["sentiment"]["label"], "neutral",
        "an empty text is neutral: {v}"
    );
    assert!(data[0].get("embedding").is_none());

    // Embeddings on request.
    let (status, v) = analyze(
        base,
        &org.api_key,
        json!({"text": "hello", "embed": true}).to_string().into_bytes(),
    );
    if models {
        assert_eq!(status, 200, "{v}");
        let e = v["data"][0]["embedding"].as_array().unwrap();
        assert_eq!(e.len(), 384);
        let norm: f64 = e.iter().map(|x| x.as_f64().unwrap().powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    } else {
        assert_eq!((status, v["type"].as_str()), (503, Some("/problems/model_unavailable")));
    }

    // A 1 MB text is analyzed (the model truncates it to its token limit).
    let long = "the checkout was slow but support was helpful. ".repeat(22_000);
    assert!(long.len() > 1_000_000);
    let (status, v) = analyze(base, &org.api_key, json!({"text": long}).to_string().into_bytes());
    assert_eq!(status, 200, "{v}");

    // Bad input: precise 4xx answers.
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{\"text\": \"caf\xe9\"}".to_vec(), 400, "invalid_utf8"),
        (b"not json".to_vec(), 400, "invalid_body"),
        (json!({"texts": []}).to_string().into_bytes(), 400, "invalid_body"),
        (json!({"texts": [1]}).to_string().into_bytes(), 400, "invalid_body"),
        (
            json!({"texts": vec!["a"; 101]}).to_string().into_bytes(),
            400,
            "invalid_body",
        ),
        (
            json!({"text": "a", "texts": ["b"]}).to_string().into_bytes(),
            400,
            "invalid_body",
        ),
        (json!({"txt": "a"}).to_string().into_bytes(), 400, "invalid_body"),
        (
            json!({"text": "a", "embed": "yes"}).to_string().into_bytes(),
            400,
            "invalid_body",
        ),
    ];
    for (body, want, kind) in cases {
        let (status, v) = analyze(base, &org.api_key, body.clone());
        assert_eq!(status, want, "{} -> {v}", String::from_utf8_lossy(&body));
        assert_eq!(v["type"], format!("/problems/{kind}"), "{v}");
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
    }
    let (status, _) = analyze(base, &org.write_key, json!({"text": "a"}).to_string().into_bytes());
    assert_eq!(status, 401, "a public write key cannot analyze");
    let r = client()
        .get(format!("{base}/api/v1/analyze"))
        .bearer_auth(&org.api_key)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);

    let (status, _) = analyze(
        base,
        &org.api_key,
        json!({"text": "still up?"}).to_string().into_bytes(),
    );
    assert_eq!(status, 200);
}

#[test]
fn feedback_events_are_analyzed_with_the_org_catalog() {
    let models = models_present();
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Trail Shop");
    let catalog = dir.path().join("catalog.csv");
    std::fs::write(
        &catalog,
        "sku,name,brand,price,currency\nTR-42,Trail Runner 42,Trailhead,129.00,EUR\nSJ-1,Storm Jacket,Trailhead,229.00,EUR\n",
    )
    .unwrap();
    crow(
        dir.path(),
        &["products", "import", catalog.to_str().unwrap(), "--org", &org.org_id],
    );
    crow(
        dir.path(),
        &["terms", "add", "--org", &org.org_id, "--kind", "competitor", "Hoka"],
    );
    let listed = crow(dir.path(), &["terms", "list", "--org", &org.org_id]);
    assert!(listed.contains("competitor") && listed.contains("Hoka"), "{listed}");

    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let base = &srv.base;
    let r = client()
        .post(format!("{base}/api/v1/events"))
        .json(&json!({"k": org.write_key, "b": [
            {"i": "fb-1", "t": "t", "n": "Feedback Submitted", "a": "anon-1",
             "p": {"feedback": "My trail runners 42 are great, way better than Hoka. Mail me at jane.doe@example.com"}},
            {"i": "fb-2", "t": "t", "n": "Products Searched", "a": "anon-1", "p": {"query": "storm jackets"}},
            {"i": "fb-3", "t": "t", "n": "Product Viewed", "a": "anon-1", "p": {"sku": "TR-42"}}
        ]}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    wait_queues_drained(base);

    let (status, fb) = api_get(base, &org.api_key, "/api/v1/interactions/fb-1");
    assert_eq!(status, 200);
    let a = &fb["analysis"];
    assert_eq!(a["sentiment"]["label"], "positive", "{fb}");
    assert_eq!(a["sentiment"]["tier"], if models { "model" } else { "lexicon" });
    let entities = a["entities"].as_array().unwrap();
    let product = entities
        .iter()
        .find(|e| e["kind"] == "product")
        .expect("product entity");
    assert_eq!(
        product["product_id"],
        crow_ingest::catalog::product_id(&org.org_id, "TR-42"),
        "{entities:?}"
    );
    assert!(
        entities
            .iter()
            .any(|e| e["kind"] == "competitor" && e["text"] == "Hoka"),
        "{entities:?}"
    );
    // The e-mail was scrubbed at ingest, so neither the text nor any entity carries it.
    assert!(!fb.to_string().contains("jane.doe@example.com"), "{fb}");

    let (_, search) = api_get(base, &org.api_key, "/api/v1/interactions/fb-2");
    let entities = search["analysis"]["entities"].as_array().unwrap();
    assert!(
        entities
            .iter()
            .any(|e| e["kind"] == "product" && e["text"] == "storm jackets"),
        "plural-insensitive catalog match: {entities:?}"
    );
    let (_, viewed) = api_get(base, &org.api_key, "/api/v1/interactions/fb-3");
    assert!(viewed.get("analysis").is_none(), "no text, no analysis: {viewed}");
    drop(srv);
    assert!(
        files_containing(dir.path(), "jane.doe@example.com").is_empty(),
        "the e-mail reached storage"
    );
}

#[test]
fn crow_analyze_prints_one_json_line_per_text() {
    let models = models_present();
    let dir = tempfile::tempdir().unwrap();
    let out = crow(dir.path(), &["analyze", "I love it", "Terrible, never again!"]);
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{out}");
    for l in &lines {
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["language", "sentiment", "entities"] {
            assert!(keys.contains(&k), "{l}");
        }
        assert!(l["sentiment"]["score"].as_f64().is_some());
    }
    assert_eq!(lines[0]["sentiment"]["label"], "positive");
    assert_eq!(lines[1]["sentiment"]["label"], "negative");

    // One text per line on standard input.
    let mut child = Command::new(crow_bin())
        .env("CROW_MODELS", models_dir())
        .args(["--data", dir.path().to_str().unwrap(), "analyze"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"first text\nsecond, with $5\nthird\n").unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    // Missing models: the lexicon tier answers, and says so on stderr.
    let missing = dir.path().join("no-models");
    let out = Command::new(crow_bin())
        .args([
            "--data",
            dir.path().to_str().unwrap(),
            "--models",
            missing.to_str().unwrap(),
        ])
        .args(["analyze", "great stuff"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lexicon tier") && stderr.contains("make models"),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sentiment"]["tier"], "lexicon");
    // --embed cannot fall back: an error naming the missing file.
    let out = Command::new(crow_bin())
        .args([
            "--data",
            dir.path().to_str().unwrap(),
            "--models",
            missing.to_str().unwrap(),
        ])
        .args(["analyze", "--embed", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-models") && stderr.contains("make models"),
        "{stderr}"
    );

    if models {
        let out = crow(dir.path(), &["analyze", "--embed", "hello world"]);
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["embedding"].as_array().unwrap().len(), 384);
        assert_eq!(v["sentiment"]["tier"], "model");
    }
}

#[test]
fn crow_train_writes_a_head_and_names_bad_lines() {
    let models = models_present();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("intents.jsonl");
    let mut lines = String::new();
    let examples = [
        (
            "refund",
            [
                "I want my money back",
                "please refund my order",
                "how do I get a refund",
                "return and refund this",
            ],
        ),
        (
            "shipping",
            [
                "where is my parcel",
                "when will my order arrive",
                "tracking number please",
                "delivery is late",
            ],
        ),
        (
            "sizing",
            [
                "what size should I buy",
                "do these run small",
                "size chart please",
                "is a 42 too big",
            ],
        ),
    ];
    for (label, texts) in examples {
        for t in texts {
            lines.push_str(&json!({"text": t, "label": label}).to_string());
            lines.push('\n');
        }
    }
    std::fs::write(&data, &lines).unwrap();
    let out_path = dir.path().join("intent.json");
    let args = [
        "train",
        "--task",
        "intent",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
        "--folds",
        "2",
        "--features",
        "embedding",
        "--json",
    ];
    if models {
        let out = crow(dir.path(), &args);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(v["report"]["cv_accuracy"].as_f64().unwrap() > 0.5, "{v}");
        let head: Value = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
        assert_eq!(head["labels"], json!(["refund", "shipping", "sizing"]));
        assert_eq!(head["weights"][0].as_array().unwrap().len(), 384);
        // The head classifies new texts.
        let out = crow(
            dir.path(),
            &[
                "analyze",
                "--head",
                out_path.to_str().unwrap(),
                "I would like a refund for my order",
            ],
        );
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["heads"]["intent"]["label"], "refund", "{v}");
        assert!(v["heads"]["intent"]["confidence"].as_f64().unwrap() > 0.34);
        assert!(v.get("embedding").is_none());
    }
    std::fs::write(&data, format!("{lines}{{\"text\": \"no label\"}}\n")).unwrap();
    let out = crow_output(dir.path(), &args, 60);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 13"), "{stderr}");
}
