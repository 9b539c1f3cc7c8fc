//! GDPR: what is held about a person (article 15) and its erasure (article 17), over
//! [`crate::gdpr`].
//!
//! - `GET /api/v1/persons/{id}/export`: everything held about the person (store, raw-batch
//!   archives, vector index), as JSON with RFC 3339 times.
//! - `DELETE /api/v1/persons/{id}`: erases them everywhere; `200` with what was removed (counts).
//!   A second erasure of the same person is a `404`: nothing is known about them any more.
//!
//! `{id}` is any id of the person: an anonymous id, a previous id or the user id; the whole
//! stitched person is meant. Both need the `manage_persons` permission (owner, admin). The audit
//! row of either names the person only by the org's keyed pseudonym of `{id}` (`psn_...`, see
//! [`crow_core::privacy::pseudonymize`]) and carries counts only, so no audit row keeps an
//! erased id.

use serde_json::{Value, json};

use super::openapi::{Denied, ProblemDetails};
use super::problem::{backend, not_found, render};
use super::{Answer, Api, Call};
use crate::gdpr::{self, ErasureReport, PersonExport};
use crate::http::HttpResponse;
use crow_core::privacy::pseudonymize;
use crow_core::time::format_millis;

/// The export as JSON, every time an RFC 3339 string.
fn render_export(e: &PersonExport) -> Value {
    let p = &e.person;
    let identities: Vec<Value> = p
        .identities
        .iter()
        .map(|l| json!({"alias_id": l.alias_id, "person_id": l.person_id, "linked_at": format_millis(l.linked_at)}))
        .collect();
    let texts: Vec<Value> = p
        .texts
        .iter()
        .map(|t| {
            let mut v = render(t);
            v["analyzed_at"] = json!(format_millis(t.analyzed_at));
            v
        })
        .collect();
    json!({
        "person": {
            "person_id": p.person_id,
            "ids": p.ids,
            "identities": identities,
            "interactions": p.interactions.iter().map(render).collect::<Vec<_>>(),
            "sessions": p.sessions.iter().map(render).collect::<Vec<_>>(),
            "texts": texts,
        },
        "raw_batches": e.raw_batches,
        "vectors": e.vectors,
    })
}

/// Names the person in the audit row by pseudonym only.
fn audit_person(call: &Call<'_>, id: &str) {
    call.audit_target(pseudonymize(&call.principal().pseudonym_key, id));
}

/// Everything held about a person (GDPR article 15).
#[utoipa::path(get, path = "/api/v1/persons/{id}/export", tag = "persons", operation_id = "export_person",
    params(("id" = String, Path, description = "Any id of the person: an anonymous id, a previous id or the user id")),
    responses(
        (status = 200, description = "Everything held about the person: their interactions, sessions, identity links, \
            text analyses, the raw-batch archives holding copies of their events, and their vector records", body = PersonExport),
        Denied,
        (status = 404, description = "Nothing is held about this id in the org", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn export_person(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    audit_person(call, id);
    let export = gdpr::person_export(api.store, api.blobs, api.indexes, call.org(), id)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("person", id))?;
    call.audit_detail(json!({
        "interactions": export.person.interactions.len(),
        "sessions": export.person.sessions.len(),
        "texts": export.person.texts.len(),
        "raw_batches": export.raw_batches.len(),
        "vectors": export.vectors.len(),
    }));
    Ok(HttpResponse::json(200, &render_export(&export)))
}

/// Erases a person everywhere (GDPR article 17).
#[utoipa::path(delete, path = "/api/v1/persons/{id}", tag = "persons", operation_id = "erase_person",
    params(("id" = String, Path, description = "Any id of the person: an anonymous id, a previous id or the user id; \
        the whole stitched person is erased")),
    responses(
        (status = 200, description = "The person is erased from the store, the vector index (compacted) and the \
            raw-batch archives; the counts say what was removed", body = ErasureReport),
        (status = 401, description = "No valid credential", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The role lacks the permission", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "Nothing is held about this id in the org (also: already erased)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The store, the object store or the vector index failed; nothing the store \
            holds was erased yet, so retrying erases everything", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn erase_person(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    audit_person(call, id);
    let report: ErasureReport = gdpr::erase_person(api.store, api.blobs, api.indexes, call.org(), id, api.now)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("person", id))?;
    let counts = serde_json::to_value(report).unwrap_or(Value::Null);
    call.audit_detail(counts.clone());
    Ok(HttpResponse::json(200, &counts))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use crow_core::access::Role;
    use crow_core::keys;
    use crow_core::model::Interaction;
    use crow_core::ports::{AccountStore, BlobStore, EventStore, VectorRecord};
    use crow_core::testing::{BruteForceIndex, MemoryBlobStore, MemoryStore};
    use serde_json::{Value, json};

    use crate::api::{Api, AuthConfig};
    use crate::http::HttpRequest;
    use crate::search::Indexes;

    const NOW: i64 = 1_767_000_000_000;
    const ANON: &str = "anon-zz9-plural";
    const USER: &str = "user-arthur-dent";

    fn random(buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
    }

    struct Fixture {
        store: MemoryStore,
        blobs: MemoryBlobStore,
        indexes: Indexes,
        auth: AuthConfig,
    }

    impl Fixture {
        fn api(&self) -> Api<'_> {
            Api {
                store: &self.store,
                blobs: &self.blobs,
                indexes: Some(&self.indexes),
                analyzer: None,
                embedder: None,
                tier: "lexicon",
                auth: &self.auth,
                now: NOW,
                random: &random,
                notifier: None,
            }
        }

        async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
            let req = HttpRequest {
                method: method.into(),
                path: path.into(),
                headers: vec![
                    ("authorization".into(), format!("Bearer {token}")),
                    ("content-type".into(), "application/json".into()),
                ],
                body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
                ..HttpRequest::default()
            };
            let resp = crate::api::handle(&self.api(), &req).await.expect("an API route");
            (resp.status, resp.json_body().unwrap_or(Value::Null))
        }
    }

    fn ev(org: &str, v: Value) -> Interaction {
        let mut v = v;
        v["org_id"] = json!(org);
        v["received_at"] = v["timestamp"].clone();
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn export_and_erase_through_the_api_keep_ids_out_of_the_audit_log() {
        let f = Fixture {
            store: MemoryStore::new(),
            blobs: MemoryBlobStore::new(),
            indexes: Indexes::new(
                Arc::new(BruteForceIndex::new(4)),
                Arc::new(BruteForceIndex::new(4)),
                Arc::new(BruteForceIndex::new(4)),
            ),
            auth: AuthConfig::new(vec![7; 32]),
        };
        let (org, creds, new_keys) = keys::generate("Acme", NOW, &[3; keys::RANDOM_BYTES]);
        AccountStore::create_org(&f.store, &org, &new_keys).await.unwrap();
        let (org, owner) = (org.id, creds.api_key);
        let events = vec![
            ev(
                &org,
                json!({"id": "p1", "type": "track", "name": "Searched", "anonymous_id": ANON,
                "properties": {"query": "babel fish"}, "timestamp": NOW - 60_000}),
            ),
            ev(
                &org,
                json!({"id": "p2", "type": "identify", "anonymous_id": ANON, "user_id": USER,
                "timestamp": NOW - 50_000}),
            ),
            ev(
                &org,
                json!({"id": "q1", "type": "page", "anonymous_id": "anon-q", "timestamp": NOW - 40_000}),
            ),
        ];
        let mut ndjson = Vec::new();
        for e in &events {
            serde_json::to_writer(&mut ndjson, e).unwrap();
            ndjson.push(b'\n');
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&ndjson).unwrap();
        let key = format!("raw-interactions/{org}/2025/12/29/b1.ndjson.gz");
        f.blobs.put(&key, gz.finish().unwrap()).await.unwrap();
        f.store.append(&org, events, vec![]).await.unwrap();
        f.store.link_identity(&org, ANON, USER, NOW - 50_000).await.unwrap();
        let record = VectorRecord {
            id: "p1".into(),
            namespace: None,
            values: vec![1.0, 0.0, 0.0, 0.0],
            metadata: json!({"person_id": USER}).as_object().cloned().unwrap(),
        };
        f.indexes
            .get(crow_core::vector::IndexKind::Interactions)
            .upsert(&org, vec![record])
            .await
            .unwrap();

        // Analysts and viewers may not; the owner may.
        let (status, body) = f
            .call(
                "POST",
                "/api/v1/api-keys",
                &owner,
                Some(json!({"role": Role::Analyst, "name": "a"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let analyst = body["secret"].as_str().unwrap().to_owned();
        for (method, path) in [
            ("GET", format!("/api/v1/persons/{ANON}/export")),
            ("DELETE", format!("/api/v1/persons/{ANON}")),
        ] {
            let (status, body) = f.call(method, &path, &analyst, None).await;
            assert_eq!(status, 403, "{method} {path}: {body}");
        }

        let (status, body) = f
            .call("GET", &format!("/api/v1/persons/{USER}/export"), &owner, None)
            .await;
        assert_eq!(status, 200, "{body}");
        let p = &body["person"];
        assert_eq!(
            (p["person_id"].as_str(), p["ids"].clone()),
            (Some(USER), json!([ANON, USER]))
        );
        assert_eq!(p["interactions"].as_array().unwrap().len(), 2);
        assert!(
            p["interactions"][0]["timestamp"].as_str().unwrap().ends_with('Z'),
            "{body}"
        );
        assert!(
            p["identities"][0]["linked_at"].as_str().unwrap().ends_with('Z'),
            "{body}"
        );
        assert_eq!(body["raw_batches"], json!([{"key": key, "events": 2}]));
        assert_eq!(body["vectors"][0]["id"], "p1");

        let (status, body) = f.call("DELETE", &format!("/api/v1/persons/{ANON}"), &owner, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"interactions": 2, "sessions": 0, "identities": 1, "texts": 0, "jobs": 0, "workflow_runs": 0,
                "vectors": 1, "raw_batches_rewritten": 1, "raw_batches_deleted": 0, "raw_events": 2})
        );
        for (method, path) in [
            ("GET", format!("/api/v1/persons/{ANON}/export")),
            ("DELETE", format!("/api/v1/persons/{USER}")),
        ] {
            let (status, body) = f.call(method, &path, &owner, None).await;
            assert_eq!(status, 404, "{method} {path}: {body}");
        }

        // The audit log names the person by pseudonym only.
        let (status, log) = f.call("GET", "/api/v1/audit-log", &owner, None).await;
        assert_eq!(status, 200, "{log}");
        let rows: Vec<&Value> = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"].as_str().is_some_and(|a| a.starts_with("person.")))
            .collect();
        assert_eq!(rows.len(), 2, "{log}");
        for r in &rows {
            assert!(r["target"].as_str().unwrap().starts_with("psn_"), "{r}");
        }
        let text = log.to_string();
        assert!(!text.contains(ANON) && !text.contains(USER), "{text}");
        assert_eq!(
            rows.iter().find(|r| r["action"] == "person.erase").unwrap()["detail"]["interactions"],
            2
        );
    }
}
