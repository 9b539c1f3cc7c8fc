//! Semantic search end to end: events and products indexed by a real `crow serve`, searched
//! through `GET /api/v1/search` and `crow search`, org-isolated, persistent across restarts.

use crow_e2e::*;
use serde_json::{Value, json};

fn search(base: &str, key: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .get(format!("{base}/api/v1/search"))
        .bearer_auth(key)
        .query(query)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .map(|hits| hits.iter().map(|h| h["id"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn feedback(base: &str, write_key: &str, items: &[(&str, &str)]) {
    let batch: Vec<Value> = items
        .iter()
        .map(|(id, text)| json!({"i": id, "t": "t", "n": "Feedback Submitted", "a": "anon-1", "p": {"feedback": text}}))
        .collect();
    let r = client()
        .post(format!("{base}/api/v1/events"))
        .json(&json!({"k": write_key, "b": batch}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn events_and_products_are_searchable_per_org_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = create_org(dir.path(), "Trail Shop");
    let b = create_org(dir.path(), "Other Shop");
    if !models_present() {
        let srv = ServerProcess::start(dir.path(), 0, &[]);
        let (status, v) = search(&srv.base, &a.api_key, &[("q", "late delivery")]);
        assert_eq!(status, 503, "no embedding model, no semantic search: {v}");
        return;
    }
    let catalog = dir.path().join("catalog.csv");
    std::fs::write(
        &catalog,
        "sku,name,category,description\nSJ-1,Storm Jacket,Outerwear,Waterproof shell for heavy rain\n\
         TR-42,Trail Runner 42,Shoes,Light running shoe with grippy sole\nDP-20,Day Pack 20L,Bags,Small hiking backpack\n",
    )
    .unwrap();
    crow(
        dir.path(),
        &["products", "import", catalog.to_str().unwrap(), "--org", &a.org_id],
    );

    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let base = srv.base.clone();
    feedback(
        &base,
        &a.write_key,
        &[
            (
                "late",
                "The parcel arrived two weeks late and nobody answered my emails.",
            ),
            ("great", "Love these shoes, super comfortable and light!"),
            ("small", "The jacket runs small, I had to send it back. Disappointed."),
            ("blue", "Does the day pack come in blue?"),
        ],
    );
    feedback(
        &base,
        &b.write_key,
        &[("b-late", "My order was delayed by a month, terrible shipping.")],
    );
    wait_queues_drained(&base);

    // Meaning, not words: no word of the query is in the text it finds.
    let (status, v) = search(
        &base,
        &a.api_key,
        &[("q", "my package took forever to show up"), ("k", "3")],
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v)[0], "late", "{v}");
    let top = &v["data"][0];
    assert!(
        top["snippet"].as_str().unwrap().starts_with("The parcel arrived"),
        "{top}"
    );
    assert_eq!(top["metadata"]["label"], "negative", "{top}");
    assert!(top["score"].as_f64().unwrap() > 0.3, "{top}");
    // Org isolation: the other org's similar text never shows up, and it sees only its own.
    let (_, v) = search(
        &base,
        &a.api_key,
        &[("q", "delayed order, terrible shipping"), ("k", "100")],
    );
    assert!(!ids(&v).contains(&"b-late".to_string()), "{v}");
    assert_eq!(ids(&v).len(), 4);
    let (_, v) = search(&base, &b.api_key, &[("q", "jacket runs small"), ("k", "100")]);
    assert_eq!(ids(&v), ["b-late"], "{v}");
    // Filters.
    let (_, v) = search(
        &base,
        &a.api_key,
        &[
            ("q", "shoes"),
            ("filter", "label=positive"),
            ("filter", "field=feedback"),
        ],
    );
    assert_eq!(ids(&v), ["great"], "{v}");
    let (_, v) = search(
        &base,
        &a.api_key,
        &[("q", "shoes"), ("filter", r#"{"label": {"$in": ["negative"]}}"#)],
    );
    assert!(ids(&v).iter().all(|id| id == "late" || id == "small"), "{v}");
    // Products were embedded at import.
    let (status, v) = search(
        &base,
        &a.api_key,
        &[("q", "something to keep me dry in a storm"), ("index", "products")],
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"][0]["metadata"]["sku"], "SJ-1", "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 3);

    // Bad input: a 400 that names the parameter, and the server stays up.
    for (query, field) in [
        (vec![("k", "3")], "q"),
        (vec![("q", "x"), ("k", "0")], "k"),
        (vec![("q", "x"), ("k", "many")], "k"),
        (vec![("q", "x"), ("index", "tweets")], "index"),
        (vec![("q", "x"), ("filter", "label")], "filter"),
        (vec![("q", "x"), ("filter", r#"{"a": {"$regex": "x"}}"#)], "filter"),
        (vec![("q", "   ")], "q"),
    ] {
        let (status, v) = search(&base, &a.api_key, &query);
        assert_eq!(status, 400, "{query:?} -> {v}");
        assert_eq!(v["type"], "/problems/invalid_parameter", "{v}");
        assert!(v["detail"].as_str().unwrap().starts_with(field), "{query:?} -> {v}");
    }
    let (status, _) = search(&base, &a.write_key, &[("q", "x")]);
    assert_eq!(status, 401, "a public write key cannot search");

    // `crow search` while the server owns the indexes: a read-only open.
    let out = crow(
        dir.path(),
        &["search", "parcel came late", "--org", &a.org_id, "--k", "1", "--json"],
    );
    let hit: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(hit["id"], "late", "{out}");

    // A clean restart (snapshot on shutdown) and a kill -9 (log replay) both keep everything.
    srv.stop();
    let mut srv = ServerProcess::start(dir.path(), 0, &[]);
    let (_, v) = search(
        &srv.base,
        &a.api_key,
        &[("q", "my package took forever to show up"), ("k", "3")],
    );
    assert_eq!(ids(&v)[0], "late", "after a restart: {v}");
    feedback(
        &srv.base,
        &a.write_key,
        &[("lost", "Where is my delivery? It never came.")],
    );
    wait_queues_drained(&srv.base);
    srv.kill9_in_place();
    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let (_, v) = search(&srv.base, &a.api_key, &[("q", "my delivery never came"), ("k", "1")]);
    assert_eq!(ids(&v), ["lost"], "after kill -9: {v}");
}
