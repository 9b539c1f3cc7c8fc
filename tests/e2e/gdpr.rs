//! GDPR end to end: a real `crow serve` ingests two people, stitches, analyzes and (with the
//! models) embeds their texts, and archives their batches; `GET /api/v1/persons/{id}/export`
//! returns one of them and `DELETE /api/v1/persons/{id}` erases them. Then every file under the
//! data directory (gzip files decompressed) is searched for their ids and values: none is left,
//! while the other person's are all still there (so the search is not vacuous).

use crow_e2e::*;
use serde_json::{Value, json};

const P_ANON: &str = "anon-zaphod-7c1e";
const P_USER: &str = "user-trillian-42b9";
const P_QUERY: &str = "waterproof towel for hitchhiking quarkly";
const P_FEEDBACK: &str = "the improbability drive in checkout is broken zorblax";
const P_TRAIT: &str = "heart-of-gold-plan";
const Q_ANON: &str = "anon-marvin-5d3a";
const Q_QUERY: &str = "brain the size of a planet umbrella pqxvel";

fn send(base: &str, write_key: &str, batch: Value) {
    let r = client()
        .post(format!("{base}/api/v1/events"))
        .json(&json!({"k": write_key, "b": batch}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
    // One batch at a time through the workers, so each gets an archive object of its own.
    wait_queues_drained(base);
}

fn delete(base: &str, api_key: &str, path: &str) -> (u16, Value) {
    let r = client()
        .delete(format!("{base}{path}"))
        .bearer_auth(api_key)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn an_erased_person_leaves_nothing_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let org = create_org(data, "Guide");
    let models = models_present();
    let srv = ServerProcess::start(data, 0, &[]);
    let base = srv.base.clone();

    // P browses anonymously, searches, then signs in (identify) and sends feedback; Q browses
    // and searches. Three batches: one shared by P and Q, one of P only, one of Q only.
    send(
        &base,
        &org.write_key,
        json!([
            {"i": "p-1", "t": "p", "a": P_ANON, "n": "Towels"},
            {"i": "p-2", "t": "t", "n": "Products Searched", "a": P_ANON, "p": {"query": P_QUERY}},
            {"i": "q-1", "t": "p", "a": Q_ANON, "n": "Home"},
        ]),
    );
    send(
        &base,
        &org.write_key,
        json!([
            {"i": "p-3", "t": "i", "a": P_ANON, "u": P_USER, "p": {"plan": P_TRAIT}},
            {"i": "p-4", "t": "t", "n": "Feedback Submitted", "u": P_USER, "p": {"feedback": P_FEEDBACK}},
        ]),
    );
    send(
        &base,
        &org.write_key,
        json!([{"i": "q-2", "t": "t", "n": "Products Searched", "a": Q_ANON, "p": {"query": Q_QUERY}}]),
    );

    // Stored everywhere before the erase (the search below is meaningful).
    for needle in [P_ANON, P_USER, P_QUERY, P_FEEDBACK, P_TRAIT] {
        assert!(
            !files_containing(data, needle).is_empty(),
            "{needle} is not stored at all"
        );
    }

    // The export, by the anonymous id: the whole stitched person.
    let (status, export) = api_get(&base, &org.api_key, &format!("/api/v1/persons/{P_ANON}/export"));
    assert_eq!(status, 200, "{export}");
    let person = &export["person"];
    assert_eq!(person["person_id"], P_USER, "{export}");
    assert_eq!(person["ids"], json!([P_ANON, P_USER]));
    let ids: Vec<&str> = person["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "{export}");
    for id in ["p-1", "p-2", "p-3", "p-4"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert!(
        person["interactions"][0]["timestamp"].as_str().is_some(),
        "RFC 3339 times"
    );
    assert_eq!(person["identities"][0]["alias_id"], P_ANON);
    assert!(!person["sessions"].as_array().unwrap().is_empty(), "{export}");
    assert_eq!(person["texts"].as_array().unwrap().len(), 2, "{export}");
    assert_eq!(export["raw_batches"].as_array().unwrap().len(), 2, "{export}");
    let vectors = if models { 2 } else { 0 };
    assert_eq!(export["vectors"].as_array().unwrap().len(), vectors, "{export}");
    let text = export.to_string();
    assert!(!text.contains(Q_ANON) && !text.contains(Q_QUERY), "Q is not P: {text}");

    // The erasure, by the user id.
    let (status, report) = delete(&base, &org.api_key, &format!("/api/v1/persons/{P_USER}"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["interactions"], 4, "{report}");
    assert_eq!(report["identities"], 1, "{report}");
    assert_eq!(report["texts"], 2, "{report}");
    assert_eq!(report["vectors"], vectors, "{report}");
    assert_eq!(
        (
            &report["raw_batches_rewritten"],
            &report["raw_batches_deleted"],
            &report["raw_events"]
        ),
        (&json!(1), &json!(1), &json!(4)),
        "{report}"
    );
    // Nothing is known of them now; Q is intact.
    let (status, _) = delete(&base, &org.api_key, &format!("/api/v1/persons/{P_ANON}"));
    assert_eq!(status, 404);
    let (status, _) = api_get(&base, &org.api_key, &format!("/api/v1/persons/{P_USER}/export"));
    assert_eq!(status, 404);
    let (status, q) = api_get(&base, &org.api_key, &format!("/api/v1/persons/{Q_ANON}/export"));
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["person"]["interactions"].as_array().unwrap().len(), 2, "{q}");
    let all = serde_json::to_string(&all_interactions(&base, &org.api_key)).unwrap();
    assert!(!all.contains(P_ANON) && !all.contains(P_USER), "{all}");
    // The audit log has both requests, naming the person by pseudonym only.
    let (status, log) = api_get(&base, &org.api_key, "/api/v1/audit-log");
    assert_eq!(status, 200, "{log}");
    let log = log.to_string();
    assert!(log.contains("person.erase") && log.contains("person.export"), "{log}");
    if models {
        // Semantic search no longer finds their text.
        let (status, hits) = api_get(&base, &org.api_key, "/api/v1/search?q=waterproof%20towel&k=10");
        assert_eq!(status, 200, "{hits}");
        assert!(!hits.to_string().contains("p-2"), "{hits}");
    }

    // The server's log names the person routes by their pattern, never the person's ids.
    let server_log = srv.log();
    for needle in [P_ANON, P_USER, P_QUERY, P_FEEDBACK] {
        assert!(
            !server_log.contains(needle),
            "the server log holds {needle}:\n{server_log}"
        );
    }
    assert!(server_log.contains("/api/v1/persons/{id}"), "{server_log}");

    // A clean stop (the server snapshots its vector indexes), then every file, decompressed.
    srv.stop();
    for needle in [P_ANON, P_USER, P_QUERY, P_FEEDBACK, P_TRAIT] {
        let left = files_containing(data, needle);
        assert!(left.is_empty(), "{needle} is still in {left:?}");
    }
    for needle in [Q_ANON, Q_QUERY] {
        assert!(
            !files_containing(data, needle).is_empty(),
            "{needle} (another person) was lost"
        );
    }
    // Q's archived batch survived the rewrite as valid gzip NDJSON.
    let archived: Vec<(std::path::PathBuf, Vec<u8>)> = read_tree(data)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains("raw-interactions"))
        .collect();
    assert_eq!(
        archived.len(),
        2,
        "the shared batch rewritten, Q's own kept, P's own deleted"
    );
    for (path, bytes) in &archived {
        for line in String::from_utf8_lossy(bytes).lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()));
            assert_eq!(v["anonymous_id"], Q_ANON, "{line}");
        }
    }
}
