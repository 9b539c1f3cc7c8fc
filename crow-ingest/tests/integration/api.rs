//! The REST API through `crow_ingest::api::handle` over the in-memory store: the permission
//! matrix on every route, roles and grants, user sessions (JWT), org isolation and the audit log.

use crow_core::access::{Permission, Role};
use crow_core::keys;
use crow_core::testing::{MemoryBlobStore, MemoryStore};
#[cfg(feature = "jwt")]
use crow_ingest::api::auth::JwtVerifier;
use crow_ingest::api::routes::{Access, ROUTES};
use crow_ingest::api::{Api, AuthConfig};
use serde_json::{Value, json};

use crate::support::{NOW, new_org, request};
#[cfg(feature = "jwt")]
const JWT_SECRET: &[u8] = b"an-hs256-secret-of-32-bytes-ok!!";

#[cfg(feature = "jwt")]
fn sessions(auth: AuthConfig) -> AuthConfig {
    auth.with_sessions(JwtVerifier::hs256(JWT_SECRET).unwrap())
}

#[cfg(not(feature = "jwt"))]
fn sessions(auth: AuthConfig) -> AuthConfig {
    auth
}

struct Fixture {
    store: MemoryStore,
    blobs: MemoryBlobStore,
    auth: AuthConfig,
}

struct Org {
    id: String,
    owner: String,
    write: String,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            store: MemoryStore::new(),
            blobs: MemoryBlobStore::new(),
            auth: sessions(AuthConfig::new(vec![7; 32])),
        }
    }

    fn api(&self) -> Api<'_> {
        crate::support::api(&self.store, &self.blobs, &self.auth)
    }

    async fn org(&self, name: &str) -> Org {
        let (id, owner, write) = new_org(&self.store, name).await;
        Org { id, owner, write }
    }

    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = request(method, path, token, "application/json", body);
        let resp = crow_ingest::api::handle(&self.api(), &req).await.expect("an API route");
        let json = resp.json_body().unwrap_or(Value::Null);
        (resp.status, json)
    }

    /// A secret key of `org` with `role`, made by its owner through the API.
    async fn key(&self, org: &Org, role: Role) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/api-keys",
                Some(&org.owner),
                Some(json!({"role": role, "name": "t"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["secret"].as_str().unwrap().to_owned()
    }
}

/// The table test: every route, every role; a role the matrix denies gets 403 and nothing
/// else does.
#[tokio::test]
async fn every_route_enforces_the_permission_matrix_for_every_role() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let mut tokens = vec![(Role::Owner, org.owner.clone())];
    for role in [Role::Admin, Role::Analyst, Role::Viewer] {
        tokens.push((role, f.key(&org, role).await));
    }
    let mut checked = 0;
    for route in ROUTES {
        let Access::Role(permission) = route.access else {
            continue;
        };
        let path = route.path.replace("{id}", "does-not-exist");
        for (role, token) in &tokens {
            let body = (route.method != "GET" && route.method != "DELETE").then(|| json!({}));
            let (status, answer) = f.call(route.method, &path, Some(token), body).await;
            if role.allows(permission) {
                assert!(
                    status != 403 && status != 401 && status < 500,
                    "{role} on {} {}: {status} {answer}",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(status, 403, "{role} on {} {}: {answer}", route.method, route.path);
                assert!(answer["detail"].as_str().unwrap().contains("permission"), "{answer}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 4 * 35, "{checked}");
    for p in Permission::ALL {
        assert!(
            ROUTES.iter().any(|r| r.access == Access::Role(p)),
            "no route needs {p:?}: the matrix has a dead entry"
        );
    }
}

#[tokio::test]
async fn write_keys_unknown_keys_and_missing_credentials_get_401() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    for token in [
        Some(org.write.as_str()),
        Some("sk_0123456789ab_nope"),
        Some("a.b.c"),
        Some("junk"),
        None,
    ] {
        let (status, body) = f.call("GET", "/api/v1/interactions", token, None).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(body["detail"].is_string());
    }
    let (status, _) = f.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let (status, body) = f.call("PUT", "/api/v1/products", Some(&org.owner), None).await;
    assert_eq!((status, body["type"].as_str().is_some()), (405, true));
    let (status, _) = f.call("GET", "/api/v1/nothing-here", Some(&org.owner), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn members_grant_only_roles_at_or_below_their_own() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let admin = f.key(&org, Role::Admin).await;
    let (status, body) = f
        .call("POST", "/api/v1/api-keys", Some(&admin), Some(json!({"role": "owner"})))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = f
        .call(
            "POST",
            "/api/v1/api-keys",
            Some(&admin),
            Some(json!({"role": "analyst"})),
        )
        .await;
    assert_eq!(status, 201);
    // the admin cannot revoke the owner's key, the owner can revoke the admin's
    let owner_prefix = keys::api_key_prefix(&org.owner).unwrap();
    let (status, _) = f
        .call(
            "DELETE",
            &format!("/api/v1/api-keys/{owner_prefix}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let admin_prefix = keys::api_key_prefix(&admin).unwrap();
    let (status, body) = f
        .call(
            "DELETE",
            &format!("/api/v1/api-keys/{admin_prefix}"),
            Some(&org.owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["revoked_at"].is_string());
    let (status, _) = f.call("GET", "/api/v1/organization", Some(&admin), None).await;
    assert_eq!(status, 401, "a revoked key stops working at once");
    // keys are listed without secrets or hashes
    let (_, list) = f.call("GET", "/api/v1/api-keys", Some(&org.owner), None).await;
    let text = list.to_string();
    assert!(!text.contains(&admin) && !text.contains("hash"), "{text}");
    assert_eq!(list["data"].as_array().unwrap().len(), 4, "{list}");
}

/// (`cargo test --workspace` builds crow-ingest with `jwt`, which the server enables.)
#[cfg(feature = "jwt")]
#[tokio::test]
async fn user_sessions_take_their_role_from_the_store() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let (status, user) = f
        .call(
            "POST",
            "/api/v1/users",
            Some(&org.owner),
            Some(json!({"email": "Ana@Example.com", "name": "Ana", "role": "analyst"})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["email"], "ana@example.com");
    let id = user["id"].as_str().unwrap().to_owned();
    let jwt = JwtVerifier::hs256(JWT_SECRET).unwrap();
    let token = jwt.issue(&org.id, &id, NOW, 3600).unwrap();
    let (status, body) = f.call("GET", "/api/v1/interactions", Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = f.call("GET", "/api/v1/users", Some(&token), None).await;
    assert_eq!(status, 403, "an analyst does not manage members");
    // demoted to viewer: exports are refused at once
    let (status, _) = f
        .call(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            Some(&org.owner),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = f.call("GET", "/api/v1/exports", Some(&token), None).await;
    assert_eq!(status, 403);
    // expired, not yet valid, or signed by another key
    for bad in [
        jwt.issue(&org.id, &id, NOW - 7_200_000, 60).unwrap(),
        jwt.issue(&org.id, &id, NOW + 7_200_000, 60).unwrap(),
        JwtVerifier::hs256(b"another-secret-another-secret-xx")
            .unwrap()
            .issue(&org.id, &id, NOW, 60)
            .unwrap(),
    ] {
        let (status, body) = f.call("GET", "/api/v1/interactions", Some(&bad), None).await;
        assert_eq!(status, 401, "{body}");
    }
    // removed: the token stops working
    let (status, _) = f
        .call("DELETE", &format!("/api/v1/users/{id}"), Some(&org.owner), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = f.call("GET", "/api/v1/interactions", Some(&token), None).await;
    assert_eq!(status, 401);
    // a token for a user of another org cannot read this org
    let other = f.org("Other").await;
    let (_, u) = f
        .call(
            "POST",
            "/api/v1/users",
            Some(&other.owner),
            Some(json!({"email": "b@b.io", "role": "owner"})),
        )
        .await;
    let forged = jwt.issue(&org.id, u["id"].as_str().unwrap(), NOW, 60).unwrap();
    let (status, _) = f.call("GET", "/api/v1/interactions", Some(&forged), None).await;
    assert_eq!(status, 401, "the user is not a member of the org the token names");
}

#[tokio::test]
async fn mutations_leave_audit_rows_that_only_owners_and_admins_read() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    let viewer = f.key(&org, Role::Viewer).await;
    let (status, _) = f
        .call(
            "PATCH",
            "/api/v1/organization",
            Some(&org.owner),
            Some(json!({"name": "Acme Inc"})),
        )
        .await;
    assert_eq!(status, 200);
    // a refused mutation leaves no row
    let (status, _) = f
        .call(
            "PATCH",
            "/api/v1/organization",
            Some(&viewer),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, log) = f.call("GET", "/api/v1/audit-log", Some(&org.owner), None).await;
    assert_eq!(status, 200, "{log}");
    let rows = log["data"].as_array().unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["organization.update", "api_key.create"], "{log}");
    let owner_prefix = keys::api_key_prefix(&org.owner).unwrap();
    assert_eq!(rows[0]["actor"], format!("key:{owner_prefix}"));
    assert_eq!(rows[0]["ip"], "192.0.2.7");
    assert_eq!(rows[0]["detail"]["route"], "/api/v1/organization");
    assert_eq!(rows[0]["target"], org.id.as_str());
    assert!(rows[0]["at"].is_string());
    let (status, _) = f.call("GET", "/api/v1/audit-log", Some(&viewer), None).await;
    assert_eq!(status, 403);
    // another org sees none of it
    let other = f.org("Other").await;
    let (_, log) = f.call("GET", "/api/v1/audit-log", Some(&other.owner), None).await;
    assert_eq!(log["data"], json!([]));
}

#[tokio::test]
async fn bad_bodies_get_400s_that_name_the_field() {
    let f = Fixture::new();
    let org = f.org("Acme").await;
    for (body, field) in [
        (json!({"email": "not-an-email", "role": "viewer"}), "email"),
        (json!({"email": "a@b.io", "role": "king"}), ""),
        (json!({"email": "a@b.io", "role": "viewer", "extra": 1}), ""),
    ] {
        let (status, answer) = f.call("POST", "/api/v1/users", Some(&org.owner), Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["detail"].as_str().unwrap().contains(field), "{answer}");
    }
    let (status, answer) = f
        .call("GET", "/api/v1/insights/funnel?step=page:/a", Some(&org.owner), None)
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = f
        .call(
            "GET",
            "/api/v1/insights/funnel?step=page:/a&step=track:Buy",
            Some(&org.owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["steps"].as_array().unwrap().len(), 2);
}

/// `GET /api/v1/insights/entities`: the entities of the org's analyzed texts and mentions, most
/// mentioned first, never personal data, never another org's.
#[tokio::test]
async fn entity_insights_count_the_orgs_own_entities() {
    use crow_core::model::InteractionText;
    use crow_core::ports::{CatalogStore, Entity, EventStore, Sentiment, SocialStore, TextAnalysis};

    let f = Fixture::new();
    let org = f.org("Acme").await;
    let other = f.org("Other").await;
    let viewer = f.key(&org, Role::Viewer).await;
    let entity = |kind: &str, text: &str, product_id: Option<&str>, pii: bool| Entity {
        kind: kind.into(),
        text: text.into(),
        start: 0,
        end: text.len(),
        product_id: product_id.map(Into::into),
        pii,
    };
    let text = |id: &str, at: i64, label: &str, score: f32, entities: Vec<Entity>| InteractionText {
        event_id: id.into(),
        field: "feedback".into(),
        timestamp: at,
        analysis: TextAnalysis {
            language: Some("en".into()),
            sentiment: Some(Sentiment {
                label: label.into(),
                score,
                tier: "lexicon".into(),
            }),
            entities,
            key_phrases: vec![],
        },
        embedding: None,
        analyzed_at: at,
    };
    let (status, body) = f
        .call(
            "POST",
            "/api/v1/products",
            Some(&org.owner),
            Some(json!({"sku": "X-1", "name": "Acme Phone X"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let product_id = body["id"].as_str().unwrap().to_owned();
    let day = 86_400_000;
    f.store
        .store_texts(
            &org.id,
            &[
                text(
                    "e1",
                    NOW - day,
                    "positive",
                    0.5,
                    vec![
                        entity("product", "acme phone x", Some(&product_id), false),
                        entity("brand", "Acme", None, false),
                        entity("email", "", None, true),
                    ],
                ),
                text(
                    "e2",
                    NOW - 2 * day,
                    "negative",
                    -0.5,
                    vec![
                        entity("product", "Acme Phone X", Some(&product_id), false),
                        entity("competitor", "Globex", None, false),
                        entity("person", "Ana Lima", None, true),
                    ],
                ),
                // older than the default 30 days
                text(
                    "e3",
                    NOW - 40 * day,
                    "negative",
                    -1.0,
                    vec![entity("brand", "Initech", None, false)],
                ),
            ],
        )
        .await
        .unwrap();
    f.store
        .store_texts(
            &other.id,
            &[text(
                "e1",
                NOW - day,
                "positive",
                1.0,
                vec![entity("brand", "Umbrella", None, false)],
            )],
        )
        .await
        .unwrap();
    assert!(
        f.store
            .list_products(&other.id, 10, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );

    let (status, answer) = f.call("GET", "/api/v1/insights/entities", Some(&viewer), None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["source"], "interactions");
    assert!(answer["since"].is_string() && answer["until"].is_string(), "{answer}");
    assert_eq!(
        answer["data"],
        json!([
            {"kind": "product", "text": "Acme Phone X", "product_id": product_id, "mentions": 2,
             "positive": 1, "neutral": 0, "negative": 1, "mean_score": 0.0},
            {"kind": "brand", "text": "Acme", "mentions": 1, "positive": 1, "neutral": 0, "negative": 0,
             "mean_score": 0.5},
            {"kind": "competitor", "text": "Globex", "mentions": 1, "positive": 0, "neutral": 0, "negative": 1,
             "mean_score": -0.5},
        ])
    );
    let all = answer.to_string();
    assert!(
        !all.contains("Umbrella") && !all.contains("Ana") && !all.contains("email"),
        "{all}"
    );
    // kind, limit and an explicit window
    let (_, answer) = f
        .call(
            "GET",
            "/api/v1/insights/entities?kind=competitor",
            Some(&org.owner),
            None,
        )
        .await;
    assert_eq!(answer["data"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(answer["data"][0]["text"], "Globex");
    let (_, answer) = f
        .call("GET", "/api/v1/insights/entities?limit=1", Some(&org.owner), None)
        .await;
    assert_eq!(answer["data"].as_array().unwrap().len(), 1, "{answer}");
    let since = NOW - 41 * day;
    let until = NOW - 39 * day;
    let (status, answer) = f
        .call(
            "GET",
            &format!("/api/v1/insights/entities?since={since}&until={until}"),
            Some(&org.owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"][0]["text"], "Initech", "{answer}");
    // the other org sees only its own
    let (_, answer) = f
        .call("GET", "/api/v1/insights/entities", Some(&other.owner), None)
        .await;
    assert_eq!(answer["data"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(answer["data"][0]["text"], "Umbrella");

    // social mentions, by their analysis
    let mut m = crow_core::testing::sample_mention(&org.id, "bluesky", 1, NOW - day);
    m.sentiment = Some(-0.5);
    m.analysis = Some(json!({"entities": [
        {"kind": "brand", "text": "Acme", "start": 0, "end": 4},
        {"kind": "person", "text": "", "start": 5, "end": 9, "pii": true},
    ]}));
    f.store.store_mentions(&org.id, &[m], &[], vec![], NOW).await.unwrap();
    let (status, answer) = f
        .call(
            "GET",
            "/api/v1/insights/entities?source=mentions",
            Some(&org.owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["source"], "mentions");
    assert_eq!(
        answer["data"],
        json!([{"kind": "brand", "text": "Acme", "mentions": 1, "positive": 0, "neutral": 0, "negative": 1,
                "mean_score": -0.5}])
    );
    let (_, answer) = f
        .call(
            "GET",
            "/api/v1/insights/entities?source=mentions",
            Some(&other.owner),
            None,
        )
        .await;
    assert_eq!(answer["data"], json!([]));

    // bad parameters name themselves
    for (query, field) in [
        ("source=tweets", "source"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("kind=", "kind"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
    ] {
        let (status, answer) = f
            .call(
                "GET",
                &format!("/api/v1/insights/entities?{query}"),
                Some(&org.owner),
                None,
            )
            .await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(answer["detail"].as_str().unwrap().contains(field), "{query}: {answer}");
    }

    // documented, with the shape it answers
    let (_, doc) = f.call("GET", "/api/v1/openapi.json", None, None).await;
    let op = &doc["paths"]["/api/v1/insights/entities"]["get"];
    assert_eq!(op["operationId"], "entity_insights", "{op}");
    let schemas = &doc["components"]["schemas"];
    let data = &schemas["EntitiesAnswer"]["properties"]["data"]["items"]["$ref"];
    assert!(data.as_str().unwrap().ends_with("/EntityCount"), "{data}");
    assert!(
        schemas["EntityCount"]["properties"]["mentions"].is_object(),
        "{schemas}"
    );
}
