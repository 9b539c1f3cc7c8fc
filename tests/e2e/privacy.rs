//! Privacy: events full of PII in many formats; afterwards no raw value appears anywhere under
//! the data directory (SQLite file and WAL, object store decompressed, logs) nor in API answers.

use crow_e2e::*;
use serde_json::json;

/// Raw values that must never be stored, and where they are sent.
const PII: [&str; 14] = [
    "jane.doe@example.com",
    "+44 20 7946 0958",
    "+1 (415) 555-2671",
    "+4915112345678",
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32",
    "123-45-6789",
    "198.51.100.23",
    "2001:db8:85a3::8a2e:370:7334",
    "hunter2-password",
    "tok_live_abcdef123456",
    "bob.smith@example.org",
];

#[test]
fn no_raw_pii_reaches_storage_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Private");
    // debug logs every request and workflow step: none of it may carry PII
    let mut srv = ServerProcess::start_logging(dir.path(), 0, "debug", &[]);
    let c = client();
    let batch = json!({"writeKey": org.write_key, "batch": [
        {"type": "track", "event": "Form Submitted", "anonymousId": "anon-p", "messageId": "p-1",
         "properties": {"comment": "mail me at jane.doe@example.com or call +44 20 7946 0958",
                        "nested": {"deep": ["card 4111 1111 1111 1111", {"iban": "DE89370400440532013000"}]},
                        "password": "hunter2-password", "note": "ssn 123-45-6789, alt +1 (415) 555-2671"},
         "context": {"ip": "198.51.100.23", "page": {"url": "https://shop.test/account?token=tok_live_abcdef123456&email=bob.smith%40example.org&tab=2",
                     "referrer": "https://mail.test/?to=jane.doe@example.com", "title": "Pay with 5500-0000-0000-0004"},
                     "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"}},
        {"type": "identify", "userId": "bob.smith@example.org", "anonymousId": "anon-p", "messageId": "p-2",
         "traits": {"phone": "+4915112345678", "bank": "GB82 WEST 1234 5698 7654 32"},
         "context": {"ip": "2001:db8:85a3::8a2e:370:7334"}},
        {"type": "track", "event": "Bought", "userId": "bob.smith@example.org", "messageId": "p-3", "properties": {"ok": true}}
    ]});
    let r = c.post(format!("{}/v1/batch", srv.base)).json(&batch).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    wait_queues_drained(&srv.base);

    let api = serde_json::to_string(&all_interactions(&srv.base, &org.api_key)).unwrap();
    let sessions = api_get(&srv.base, &org.api_key, "/api/v1/sessions").1.to_string();
    // The user id was an e-mail: it is replaced by a keyed pseudonym, the same on both events,
    // so identity stitching still joins them.
    let all = all_interactions(&srv.base, &org.api_key);
    let ids: Vec<&str> = all.iter().filter_map(|e| e["user_id"].as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert!(ids[0].starts_with("psn_"), "{ids:?}");
    // IPs are truncated, not dropped.
    assert!(api.contains("198.51.100.0"), "{api}");
    srv.stop_ref();
    let log = srv.log();
    assert!(
        log.contains("listening") && log.contains("DEBUG"),
        "the debug log was captured: {log}"
    );
    for value in PII {
        assert!(!log.contains(value), "{value:?} in the server log");
        let hits = files_containing(dir.path(), value);
        assert!(hits.is_empty(), "{value:?} stored raw in {hits:?}");
        assert!(
            !api.contains(value) && !sessions.contains(value),
            "{value:?} in an API answer"
        );
    }
    // the object store got the raw-batch copy, and it was searched decompressed
    let archived: Vec<_> = read_tree(&dir.path().join("objects"))
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains("raw-interactions"))
        .collect();
    assert!(!archived.is_empty(), "no raw batch archived");
    assert!(String::from_utf8_lossy(&archived[0].1).contains("Form Submitted"));
}
