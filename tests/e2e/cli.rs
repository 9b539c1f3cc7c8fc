//! The `crow` CLI: org creation, bulk import, catalog import, the demo.

use crow_e2e::*;

#[test]
fn org_create_json_has_exactly_three_keys_and_keys_work() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Keys");
    assert!(org.org_id.starts_with("org_") && org.write_key.starts_with("wk_") && org.api_key.starts_with("sk_"));
    // The secret key is stored hashed: its raw value is nowhere in the data directory.
    assert!(files_containing(dir.path(), &org.api_key).is_empty());
}

#[test]
fn ingest_jsonl_and_products_import() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Bulk");
    let file = dir.path().join("events.jsonl");
    let mut lines = String::new();
    for i in 0..1200 {
        lines.push_str(&format!(
            "{{\"type\":\"track\",\"event\":\"Imported\",\"anonymousId\":\"v{}\",\"messageId\":\"imp-{i}\",\"timestamp\":\"2024-03-01T10:{:02}:00Z\"}}\n",
            i % 40,
            i % 60
        ));
    }
    lines.push_str("not json\n{\"type\":\"bogus\"}\n");
    std::fs::write(&file, &lines).unwrap();
    let out = crow(dir.path(), &["ingest", file.to_str().unwrap(), "--org", &org.org_id]);
    assert!(out.contains("1200 events stored"), "{out}");
    assert!(out.contains("2 rejected"), "{out}");
    // again: nothing stored twice
    let out = crow(dir.path(), &["ingest", file.to_str().unwrap(), "--org", &org.org_id]);
    assert!(out.contains("0 events stored, 1200 duplicates"), "{out}");

    let csv = dir.path().join("catalog.csv");
    std::fs::write(&csv, "sku,name,brand,category,price,url,description\nTR-1,Trail Runner,Acme,Shoes,129.90,https://shop.test/tr-1,Light\nBAD,,,,,,\n").unwrap();
    let out = crow(
        dir.path(),
        &[
            "products",
            "import",
            csv.to_str().unwrap(),
            "--org",
            &org.org_id,
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["imported"], 1);
    assert_eq!(v["errors"][0]["field"], "name");

    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let all = all_interactions(&srv.base, &org.api_key);
    assert_eq!(all.len(), 1200);
    assert!(
        all.iter()
            .all(|e| e["source"] == "import" && e["session_id"].is_string())
    );
}

#[test]
fn demo_runs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = crow(dir.path(), &["demo", "--visitors", "120", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &v["summary"];
    assert!(s["visitors"].as_u64().unwrap() > 50, "{v}");
    assert!(
        s["sessions"].as_u64().unwrap() >= s["visitors"].as_u64().unwrap(),
        "{v}"
    );
    assert!(s["bot_events"].as_u64().unwrap() > 0, "{v}");
    assert!(s["pii_scrubbed"].as_u64().unwrap() > 0, "{v}");
    let funnel = v["funnel"].as_array().unwrap();
    assert_eq!(funnel.len(), 4);
    let people: Vec<u64> = funnel.iter().map(|r| r["people"].as_u64().unwrap()).collect();
    assert!(people.windows(2).all(|w| w[0] >= w[1]) && people[3] > 0, "{people:?}");
    assert!(v["raw_batches_archived"].as_u64().unwrap() > 0);
    assert_eq!(v["dead_jobs"], 0);
    // The social channel ran once against its local fixture server.
    let social = v["social"].as_array().unwrap();
    assert_eq!(social.len(), 5, "{social:?}");
    assert!(social.iter().all(|r| r["error"].is_null()), "{social:?}");
    let sum = |k: &str| -> u64 { social.iter().map(|r| r["pass"][k].as_u64().unwrap()).sum() };
    assert_eq!(sum("fetched"), 16);
    assert_eq!(sum("stored"), 13);
    assert_eq!(sum("near_duplicates"), 3, "a cross-post, copy-pasted spam, a repost");
    assert!(sum("selected") > 0 && sum("selected") < 13);
    for raw in [
        "jane.doe@example.com",
        "4111 1111 1111 1111",
        "buyer1@example.com",
        "maya.r@example.com",
        "trailfan@mastodon.example",
        "maya.bsky.social",
        "did:plc:demo",
    ] {
        assert!(files_containing(dir.path(), raw).is_empty(), "{raw} stored raw");
    }
}

#[test]
fn serve_reads_a_config_file_and_rejects_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Configured");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "adress = \"127.0.0.1:0\"\n").unwrap();
    let out = crow_output(
        dir.path(),
        &["serve", "--addr", "127.0.0.1:0", "--config", bad.to_str().unwrap()],
        20,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("adress") && err.contains("bad.toml"), "{err}");

    let good = dir.path().join("crow.toml");
    std::fs::write(&good, "worker_batch = 8\n[ingest]\nmax_batch = 2\n").unwrap();
    let srv = ServerProcess::start(dir.path(), 0, &["--config", good.to_str().unwrap()]);
    let events: Vec<_> = (0..3)
        .map(|i| serde_json::json!({"type": "track", "event": "E", "anonymousId": "a", "messageId": format!("c{i}")}))
        .collect();
    let r = client()
        .post(format!("{}/v1/batch", srv.base))
        .basic_auth(&org.write_key, Some(""))
        .json(&serde_json::json!({"batch": events}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413, "the file's max_batch = 2 applies");
    let r = client()
        .post(format!("{}/v1/batch", srv.base))
        .basic_auth(&org.write_key, Some(""))
        .json(&serde_json::json!({"batch": &events[..2]}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
