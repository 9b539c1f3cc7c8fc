//! Products, categories and exports through `crow_ingest::api::handle` over the in-memory store,
//! and the `export-report` workflow through the trigger: CRUD and merge patches, bulk imports,
//! the product index kept in step, org isolation, exports in every format read back, and the
//! signed download links (expired, forged, another export's).

use std::sync::Arc;

use crow_core::export::ExportResource;
use crow_core::model::{FrameEvent, FrameEventKind, Interaction, Product, ReferrerClass, Session};
use crow_core::ports::{BlobStore, EventStore, JobQueue, SocialStore, VectorIndex, VideoStore, queues};
use crow_core::testing::{BruteForceIndex, HashEmbedder, MemoryBlobStore, MemoryStore, sample_mention};
use crow_core::vector::IndexKind;
use crow_ingest::api::{Api, AuthConfig};
use crow_ingest::http::HttpResponse;
use crow_ingest::search::Indexes;
use crow_ingest::workflows::export_report::{ColumnKind, columns};
use crow_ingest::workflows::{PortRefs, WithExports, run_once};
use serde_json::{Value, json};

use crate::support::{NOW, interaction, new_org, request};

struct Fixture {
    store: MemoryStore,
    blobs: MemoryBlobStore,
    auth: AuthConfig,
    indexes: Indexes,
    embedder: HashEmbedder,
}

struct Org {
    id: String,
    key: String,
}

impl Fixture {
    fn new() -> Self {
        let index = || Arc::new(BruteForceIndex::new(16)) as Arc<dyn VectorIndex>;
        Fixture {
            store: MemoryStore::new(),
            blobs: MemoryBlobStore::new(),
            auth: AuthConfig::new(vec![9; 32]),
            indexes: Indexes::new(index(), index(), index()),
            embedder: HashEmbedder::new(16),
        }
    }

    fn api(&self, now: i64) -> Api<'_> {
        Api {
            indexes: Some(&self.indexes),
            analyzer: None,
            embedder: Some(&self.embedder),
            now,
            ..crate::support::api(&self.store, &self.blobs, &self.auth)
        }
    }

    async fn org(&self, name: &str) -> Org {
        let (id, key, _) = new_org(&self.store, name).await;
        Org { id, key }
    }

    async fn raw(
        &self,
        now: i64,
        method: &str,
        path: &str,
        token: Option<&str>,
        ct: &str,
        body: Vec<u8>,
    ) -> HttpResponse {
        let req = request(method, path, token, ct, body);
        crow_ingest::api::handle(&self.api(now), &req)
            .await
            .expect("an API route")
    }

    async fn call(&self, org: &Org, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let resp = self
            .raw(NOW, method, path, Some(&org.key), "application/json", body)
            .await;
        if resp.status >= 400 {
            let ct = resp
                .headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map(|(_, v)| v.as_str());
            assert_eq!(ct, Some("application/problem+json"), "{method} {path}");
        }
        (resp.status, resp.json_body().unwrap_or(Value::Null))
    }

    async fn work(&self, now: i64) -> usize {
        let ports = WithExports {
            ports: PortRefs::shared(&self.store, &self.blobs),
            exports: &self.store,
            catalog: &self.store,
            social: Some(&self.store),
            video: Some(&self.store),
        };
        let report = run_once(&ports, queues::EXPORT, 10, now, 0.5).await.unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        report.processed
    }

    async fn product_index_count(&self, org: &Org) -> usize {
        self.indexes.get(IndexKind::Products).count(&org.id).await.unwrap()
    }
}

fn header<'a>(resp: &'a HttpResponse, name: &str) -> Option<&'a str> {
    resp.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn fields(problem: &Value) -> Vec<String> {
    let mut f: Vec<String> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    f.sort();
    f
}

#[tokio::test]
async fn products_crud_with_merge_patches_index_and_org_isolation() {
    let f = Fixture::new();
    let (a, b) = (f.org("Acme").await, f.org("Other").await);
    let new = json!({"sku": "TR-1", "name": "Trail Runner", "brand": "Acme", "category": "Shoes",
                     "price_cents": 12990, "currency": "EUR", "url": "https://shop.test/tr-1"});
    let (status, p) = f.call(&a, "POST", "/api/v1/products", Some(new.clone())).await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(id, crow_ingest::catalog::product_id(&a.id, "TR-1"));
    assert_eq!(p["updated_at"], "2025-12-29T09:20:00.000Z");
    assert_eq!(f.product_index_count(&a).await, 1);
    assert_eq!(f.call(&a, "POST", "/api/v1/products", Some(new)).await.0, 409);

    // every field at fault is listed
    let (status, problem) = f
        .call(
            &a,
            "POST",
            "/api/v1/products",
            Some(json!({"sku": "", "name": "x", "currency": "eur", "price_cents": -1, "url": "ftp://x"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(fields(&problem), ["currency", "price_cents", "sku", "url"]);
    assert_eq!(
        f.call(
            &a,
            "POST",
            "/api/v1/products",
            Some(json!({"sku": "x", "name": "y", "colour": 1}))
        )
        .await
        .0,
        400
    );

    let path = format!("/api/v1/products/{id}");
    let (status, got) = f.call(&a, "GET", &path, None).await;
    assert_eq!((status, got["name"].as_str()), (200, Some("Trail Runner")));
    // another org's id answers exactly like a missing one
    let (status, theirs) = f.call(&b, "GET", &path, None).await;
    let (_, missing) = f.call(&b, "GET", "/api/v1/products/prd_nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(theirs["title"], missing["title"]);
    assert_eq!(f.call(&b, "PATCH", &path, Some(json!({"name": "x"}))).await.0, 404);
    assert_eq!(f.call(&b, "DELETE", &path, None).await.0, 404);

    // merge patch: absent unchanged, null clears, the sku cannot change
    let (status, patched) = f
        .call(
            &a,
            "PATCH",
            &path,
            Some(json!({"brand": null, "price_cents": 9990, "description": "Light"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert!(patched.get("brand").is_none());
    assert_eq!(
        (patched["price_cents"].as_i64(), patched["name"].as_str()),
        (Some(9990), Some("Trail Runner"))
    );
    assert_eq!(patched["description"], "Light");
    assert_eq!(f.call(&a, "PATCH", &path, Some(json!({"sku": "TR-2"}))).await.0, 400);
    let (status, problem) = f
        .call(&a, "PATCH", &path, Some(json!({"currency": "euro", "name": ""})))
        .await;
    assert_eq!(
        (status, fields(&problem)),
        (400, vec!["currency".to_owned(), "name".to_owned()])
    );
    let hits = crow_ingest::search::search(
        &f.indexes,
        &f.embedder,
        &a.id,
        &crow_ingest::search::SearchRequest::new("Light", IndexKind::Products),
    )
    .await
    .unwrap();
    assert_eq!(hits[0].id, id, "the patched product was re-embedded");

    let (status, _) = f.call(&a, "DELETE", &path, None).await;
    assert_eq!(status, 204);
    assert_eq!(f.call(&a, "GET", &path, None).await.0, 404);
    assert_eq!(f.call(&a, "DELETE", &path, None).await.0, 404);
    assert_eq!(f.product_index_count(&a).await, 0, "deleted from the index");
}

#[tokio::test]
async fn products_list_with_filters_and_cursors() {
    let f = Fixture::new();
    let a = f.org("Acme").await;
    for (sku, name, cat, brand) in [
        ("A", "Trail Runner", "Shoes", "Acme"),
        ("B", "trail Jacket", "Jackets", "Acme"),
        ("C", "Storm Jacket", "Jackets", "Other"),
        ("D", "Road Runner", "Shoes", "Other"),
    ] {
        let body = json!({"sku": sku, "name": name, "category": cat, "brand": brand});
        assert_eq!(f.call(&a, "POST", "/api/v1/products", Some(body)).await.0, 201);
    }
    let skus = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = f.call(&a, "GET", "/api/v1/products?limit=3", None).await;
    assert_eq!(skus(&all), ["A", "B", "C"]);
    let cursor = all["next_cursor"].as_str().unwrap();
    let (_, rest) = f
        .call(&a, "GET", &format!("/api/v1/products?limit=3&cursor={cursor}"), None)
        .await;
    assert_eq!(
        (skus(&rest), rest["next_cursor"].is_null()),
        (vec!["D".to_owned()], true)
    );
    assert_eq!(
        skus(&f.call(&a, "GET", "/api/v1/products?category=Jackets", None).await.1),
        ["B", "C"]
    );
    assert_eq!(
        skus(
            &f.call(&a, "GET", "/api/v1/products?brand=Other&category=Shoes", None)
                .await
                .1
        ),
        ["D"]
    );
    assert_eq!(
        skus(&f.call(&a, "GET", "/api/v1/products?q=TRAIL", None).await.1),
        ["A", "B"]
    );
    assert_eq!(f.call(&a, "GET", "/api/v1/products?cursor=bogus", None).await.0, 400);
    assert_eq!(f.call(&a, "GET", "/api/v1/products?limit=0", None).await.0, 400);
    let b = f.org("Other").await;
    assert!(skus(&f.call(&b, "GET", "/api/v1/products", None).await.1).is_empty());
}

#[tokio::test]
async fn imports_are_all_or_nothing_and_count_what_changed() {
    let f = Fixture::new();
    let a = f.org("Acme").await;
    let csv = "sku,name,brand,category,price,currency,url,description\n\
               A-1,\"Alpha, \"\"the first\"\"\",Acme,Shoes,12.99,EUR,https://x.test/a,\"two\nlines\"\n\
               B-2,Beta,,,7,,,\n";
    let import = |body: &str, ct: &str| {
        let body = body.as_bytes().to_vec();
        let ct = ct.to_owned();
        let f = &f;
        let key = a.key.clone();
        async move {
            f.raw(NOW, "POST", "/api/v1/products/import", Some(&key), &ct, body)
                .await
        }
    };
    let resp = import(csv, "text/csv; charset=utf-8").await;
    assert_eq!(resp.status, 200, "{:?}", resp.json_body());
    assert_eq!(
        resp.json_body().unwrap(),
        json!({"inserted": 2, "updated": 0, "unchanged": 0})
    );
    assert_eq!(f.product_index_count(&a).await, 2);
    let id = crow_ingest::catalog::product_id(&a.id, "A-1");
    let (_, p) = f.call(&a, "GET", &format!("/api/v1/products/{id}"), None).await;
    assert_eq!(
        (p["name"].as_str(), p["price_cents"].as_i64()),
        (Some("Alpha, \"the first\""), Some(1299))
    );
    assert_eq!(p["description"], "two\nlines");

    // the same file again, one product changed, one new, as JSON
    let json_body = json!({"products": [
        {"sku": "A-1", "name": "Alpha, \"the first\"", "brand": "Acme", "category": "Shoes", "price_cents": 1299,
         "currency": "EUR", "url": "https://x.test/a", "description": "two\nlines"},
        {"sku": "B-2", "name": "Beta", "price_cents": 800},
        {"sku": "C-3", "name": "Gamma"},
    ]});
    let resp = import(&json_body.to_string(), "application/json").await;
    assert_eq!(
        resp.json_body().unwrap(),
        json!({"inserted": 1, "updated": 1, "unchanged": 1})
    );

    // bad rows: every one reported, nothing stored
    let bad = "sku,name,price\nD-4,Delta,1.00\n,No sku,1\nE-5,Eps,1.999\nD-4,Again,1\n";
    let resp = import(bad, "text/csv").await;
    assert_eq!(resp.status, 400);
    let problem = resp.json_body().unwrap();
    assert_eq!(problem["error_count"], 3);
    let rows: Vec<(u64, &str)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [(2, "sku"), (3, "price"), (4, "sku")]);
    let (_, listed) = f.call(&a, "GET", "/api/v1/products", None).await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        3,
        "nothing of the bad file was stored"
    );

    assert_eq!(import("sku,name\n", "text/plain").await.status, 415);
    let mut big = String::from("sku,name\n");
    for i in 0..10_001 {
        big.push_str(&format!("s{i},n\n"));
    }
    assert_eq!(import(&big, "text/csv").await.status, 413);
    assert_eq!(import("[1]", "application/json").await.status, 400);
}

#[tokio::test]
async fn categories_crud_without_cycles() {
    let f = Fixture::new();
    let (a, b) = (f.org("Acme").await, f.org("Other").await);
    let (status, c) = f
        .call(&a, "POST", "/api/v1/categories", Some(json!({"name": "Rain / Wear"})))
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["created_at"], "2025-12-29T09:20:00.000Z");
    assert_eq!(
        f.call(&a, "POST", "/api/v1/categories", Some(json!({"name": "Rain / Wear"})))
            .await
            .0,
        409
    );
    let (status, child) = f
        .call(
            &a,
            "POST",
            "/api/v1/categories",
            Some(json!({"name": "Jackets", "parent": "Rain / Wear"})),
        )
        .await;
    assert_eq!((status, child["parent"].as_str()), (201, Some("Rain / Wear")));
    let (status, problem) = f
        .call(
            &a,
            "POST",
            "/api/v1/categories",
            Some(json!({"name": "X", "parent": "Nope"})),
        )
        .await;
    assert_eq!((status, fields(&problem)), (400, vec!["parent".to_owned()]));
    assert_eq!(
        f.call(&a, "POST", "/api/v1/categories", Some(json!({"name": ""})))
            .await
            .0,
        400
    );

    let parent_path = "/api/v1/categories/Rain%20%2F%20Wear";
    let (status, got) = f.call(&a, "GET", parent_path, None).await;
    assert_eq!((status, got["name"].as_str()), (200, Some("Rain / Wear")));
    assert_eq!(f.call(&b, "GET", parent_path, None).await.0, 404);
    // a cycle is refused; moving to the top works
    let (status, problem) = f
        .call(&a, "PATCH", parent_path, Some(json!({"parent": "Jackets"})))
        .await;
    assert_eq!((status, fields(&problem)), (400, vec!["parent".to_owned()]));
    assert_eq!(
        f.call(
            &a,
            "PATCH",
            "/api/v1/categories/Jackets",
            Some(json!({"parent": "Jackets"}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        f.call(&a, "PATCH", "/api/v1/categories/Jackets", Some(json!({})))
            .await
            .1["parent"],
        "Rain / Wear"
    );
    let (status, top) = f
        .call(&a, "PATCH", "/api/v1/categories/Jackets", Some(json!({"parent": null})))
        .await;
    assert_eq!((status, top.get("parent")), (200, None));
    assert_eq!(
        f.call(&b, "PATCH", "/api/v1/categories/Jackets", Some(json!({"parent": null})))
            .await
            .0,
        404
    );

    // a product's category exists from then on, and keeps it from being deleted
    let body = json!({"sku": "R", "name": "Raincoat", "category": "Coats"});
    assert_eq!(f.call(&a, "POST", "/api/v1/products", Some(body)).await.0, 201);
    let (_, list) = f.call(&a, "GET", "/api/v1/categories", None).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Coats", "Jackets", "Rain / Wear"]);
    assert_eq!(f.call(&a, "DELETE", "/api/v1/categories/Coats", None).await.0, 409);
    assert_eq!(f.call(&b, "DELETE", "/api/v1/categories/Jackets", None).await.0, 404);
    assert_eq!(f.call(&a, "DELETE", "/api/v1/categories/Jackets", None).await.0, 204);
    assert_eq!(f.call(&a, "DELETE", "/api/v1/categories/Jackets", None).await.0, 404);
}

fn frame_event(org: &str, n: i64) -> FrameEvent {
    FrameEvent {
        id: format!("cam1:{n}"),
        org_id: org.into(),
        camera_id: "cam1".into(),
        timestamp: NOW - 5_000 + n,
        kind: FrameEventKind::Presence,
        zone: (n % 2 == 0).then(|| "door".into()),
        count: n as u32,
        value: (n % 3 == 0).then_some(0.5),
        frame_key: None,
    }
}

/// Creates an export through the API, runs the worker, and fetches the file via its link.
async fn export_file(f: &Fixture, org: &Org, body: Value) -> (Value, HttpResponse) {
    let (status, created) = f.call(org, "POST", "/api/v1/exports", Some(body)).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["status"], "queued");
    assert_eq!(f.work(NOW + 1_000).await, 1);
    let id = created["id"].as_str().unwrap();
    let (status, done) = f.call(org, "GET", &format!("/api/v1/exports/{id}"), None).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("succeeded")), "{done}");
    let url = done["download_url"].as_str().unwrap();
    let resp = f.raw(NOW + 2_000, "GET", url, None, "", Vec::new()).await;
    assert_eq!(resp.status, 200, "{:?}", resp.json_body());
    assert_eq!(done["bytes"].as_u64(), Some(resp.body.len() as u64));
    (done, resp)
}

#[tokio::test]
async fn exports_queue_run_and_download_through_signed_links() {
    let f = Fixture::new();
    let (a, b) = (f.org("Acme").await, f.org("Other").await);
    for (sku, name) in [("A", "Alpha, \"quoted\""), ("B", "Beta\nnewline")] {
        let body = json!({"sku": sku, "name": name, "category": "Shoes", "price_cents": 100});
        assert_eq!(f.call(&a, "POST", "/api/v1/products", Some(body)).await.0, 201);
    }
    let body = json!({"resource": "products", "format": "csv", "category": "Shoes"});
    let resp = f
        .raw(
            NOW,
            "POST",
            "/api/v1/exports",
            Some(&a.key),
            "application/json",
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(resp.status, 202);
    let created = resp.json_body().unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        header(&resp, "location"),
        Some(format!("/api/v1/exports/{id}").as_str())
    );
    assert!(created.get("download_url").is_none());
    assert_eq!(created["filters"], json!({"category": "Shoes"}));
    assert_eq!(
        f.store.depth(queues::EXPORT).await.unwrap().ready,
        1,
        "the job was queued with the record"
    );

    // not downloadable before it succeeded, even with a valid token
    let (token, _) = crow_ingest::api::auth::sign_link(&f.api(NOW), &a.id, &id);
    let early = f
        .raw(
            NOW,
            "GET",
            &format!("/api/v1/exports/{id}/download?token={token}"),
            None,
            "",
            vec![],
        )
        .await;
    assert_eq!(early.status, 409);
    assert_eq!(f.call(&b, "GET", &format!("/api/v1/exports/{id}"), None).await.0, 404);

    assert_eq!(f.work(NOW + 1_000).await, 1);
    let (_, done) = f.call(&a, "GET", &format!("/api/v1/exports/{id}"), None).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["rows"], 2);
    assert_eq!(done["finished_at"], "2025-12-29T09:20:01.000Z");
    let (_, listed) = f.call(&a, "GET", "/api/v1/exports", None).await;
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert!(listed["data"][0]["download_url"].is_string());
    assert!(
        f.call(&b, "GET", "/api/v1/exports", None).await.1["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let url = done["download_url"].as_str().unwrap().to_owned();
    let resp = f.raw(NOW + 60_000, "GET", &url, None, "", vec![]).await;
    assert_eq!(resp.status, 200);
    assert_eq!(header(&resp, "content-type"), Some("text/csv"));
    assert_eq!(
        header(&resp, "content-disposition"),
        Some(format!("attachment; filename=\"products-{id}.csv\"").as_str())
    );
    let text = String::from_utf8(resp.body.clone()).unwrap();
    assert!(text.starts_with("id,sku,name,brand,category,price_cents,currency,url,description,updated_at\r\n"));
    let mut rdr = csv::Reader::from_reader(resp.body.as_slice());
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!((&rows[0][2], &rows[1][2]), ("Alpha, \"quoted\"", "Beta\nnewline"));
    assert_eq!(&rows[0][9], "2025-12-29T09:20:00.000Z");
    let stored = f
        .blobs
        .get(&format!("exports/{}/{id}.csv", a.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, resp.body);

    // expired, forged, another export's, missing: 403; an unknown export with a valid token: 404
    let ttl = f.auth.link_ttl_ms;
    let expired = f.raw(NOW + 1_000 + ttl + 1, "GET", &url, None, "", vec![]).await;
    assert_eq!(expired.status, 403);
    let forged_url = {
        let mut u = url.clone().into_bytes();
        let last = u.len() - 1;
        u[last] = if u[last] == b'0' { b'1' } else { b'0' };
        String::from_utf8(u).unwrap()
    };
    assert_eq!(
        f.raw(NOW + 2_000, "GET", &forged_url, None, "", vec![]).await.status,
        403
    );
    let (other, _) = crow_ingest::api::auth::sign_link(&f.api(NOW), &a.id, "exp_other");
    let wrong = f
        .raw(
            NOW,
            "GET",
            &format!("/api/v1/exports/{id}/download?token={other}"),
            None,
            "",
            vec![],
        )
        .await;
    assert_eq!(wrong.status, 403);
    let problem = wrong.json_body().unwrap();
    assert_eq!(problem["status"], 403);
    assert_eq!(header(&wrong, "content-type"), Some("application/problem+json"));
    assert_eq!(
        f.raw(NOW, "GET", &format!("/api/v1/exports/{id}/download"), None, "", vec![])
            .await
            .status,
        403
    );
    let (ghost, _) = crow_ingest::api::auth::sign_link(&f.api(NOW), &a.id, "exp_ghost");
    let missing = f
        .raw(
            NOW,
            "GET",
            &format!("/api/v1/exports/exp_ghost/download?token={ghost}"),
            None,
            "",
            vec![],
        )
        .await;
    assert_eq!(missing.status, 404);
    // another org's token for this id does not open it either
    let (theirs, _) = crow_ingest::api::auth::sign_link(&f.api(NOW), &b.id, &id);
    let cross = f
        .raw(
            NOW,
            "GET",
            &format!("/api/v1/exports/{id}/download?token={theirs}"),
            None,
            "",
            vec![],
        )
        .await;
    assert_eq!(cross.status, 404);

    // a redelivered job of a finished export does nothing
    let job = crow_ingest::jobs::ExportJob {
        org_id: a.id.clone(),
        export_id: id.clone(),
    };
    let ports = WithExports {
        ports: PortRefs::shared(&f.store, &f.blobs),
        exports: &f.store,
        catalog: &f.store,
        social: None,
        video: None,
    };
    let again = crow_ingest::workflows::export_report(&ports, &job, 2, NOW + 5_000)
        .await
        .unwrap();
    assert!(again.skipped);
}

#[tokio::test]
async fn export_requests_are_validated() {
    let f = Fixture::new();
    let a = f.org("Acme").await;
    let bad = |body: Value| {
        let f = &f;
        let a = &a;
        async move { f.call(a, "POST", "/api/v1/exports", Some(body)).await }
    };
    let (status, p) = bad(json!({"resource": "sessions", "format": "csv", "camera_id": "cam1"})).await;
    assert_eq!((status, fields(&p)), (400, vec!["camera_id".to_owned()]));
    let (status, p) = bad(json!({"resource": "interactions", "format": "json", "since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"})).await;
    assert_eq!((status, fields(&p)), (400, vec!["until".to_owned()]));
    assert_eq!(
        bad(json!({"resource": "interactions", "format": "json", "since": "yesterday"}))
            .await
            .0,
        400
    );
    assert_eq!(bad(json!({"resource": "everything", "format": "csv"})).await.0, 400);
    assert_eq!(
        bad(json!({"resource": "products", "format": "csv", "extra": 1}))
            .await
            .0,
        400
    );
    assert_eq!(f.call(&a, "GET", "/api/v1/exports/exp_nope", None).await.0, 404);
    assert_eq!(f.call(&a, "GET", "/api/v1/exports?cursor=zz", None).await.0, 400);
    let parquet = bad(json!({"resource": "products", "format": "parquet"})).await.0;
    assert_eq!(parquet, if cfg!(feature = "parquet") { 202 } else { 400 });
    assert_eq!(
        f.store.depth(queues::EXPORT).await.unwrap().ready,
        u64::from(parquet == 202)
    );
}

#[tokio::test]
async fn exports_write_ndjson_and_csv_for_every_resource() {
    let f = Fixture::new();
    let a = f.org("Acme").await;
    let events: Vec<Interaction> = (0..5).map(|n| interaction(&a.id, n)).collect();
    f.store.append(&a.id, events, vec![]).await.unwrap();
    f.store
        .store_frame_events(&a.id, &(0..4).map(|n| frame_event(&a.id, n)).collect::<Vec<_>>())
        .await
        .unwrap();
    let mentions: Vec<_> = (0..3)
        .map(|n| sample_mention(&a.id, "mastodon", n, NOW - 100 + i64::from(n)))
        .collect();
    f.store
        .store_mentions(&a.id, &mentions, &[], vec![], NOW)
        .await
        .unwrap();

    // interactions, newest first, tracks only, as NDJSON with RFC 3339 times
    let (done, resp) = export_file(
        &f,
        &a,
        json!({"resource": "interactions", "format": "json", "event_type": "track"}),
    )
    .await;
    assert_eq!(done["rows"], 3);
    assert_eq!(header(&resp, "content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = String::from_utf8(resp.body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ev-4", "ev-2", "ev-0"]);
    assert_eq!(lines[0]["timestamp"], "2025-12-29T09:19:50.004Z");
    assert_eq!(
        lines[0]["properties"]["query"], "boots, \"size\" 4",
        "nested values stay objects"
    );

    // interactions as CSV: nested values as a JSON string column
    let (_, resp) = export_file(
        &f,
        &a,
        json!({"resource": "interactions", "format": "csv", "since": "2025-12-29T09:19:50.003Z"}),
    )
    .await;
    let mut rdr = csv::Reader::from_reader(resp.body.as_slice());
    let header_row: Vec<String> = rdr.headers().unwrap().iter().map(str::to_owned).collect();
    let col = |name: &str| header_row.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let props: Value = serde_json::from_str(&rows[0][col("properties")]).unwrap();
    assert_eq!(props["query"], "boots, \"size\" 4");
    assert_eq!(&rows[0][col("is_bot")], "false");
    assert_eq!(&rows[0][col("user_id")], "");

    // frame events, oldest first, one zone
    let (_, resp) = export_file(
        &f,
        &a,
        json!({"resource": "frame_events", "format": "csv", "zone": "door"}),
    )
    .await;
    let text = String::from_utf8(resp.body).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("cam1:0,cam1,2025-12-29T09:19:55.000Z,presence,door,0,0.5,")
    );

    // mentions: the 64-bit simhash survives as text
    let (_, resp) = export_file(&f, &a, json!({"resource": "mentions", "format": "json"})).await;
    let first: Value = serde_json::from_str(String::from_utf8(resp.body).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["id"], "mastodon:2");

    // sessions (none yet): a header and nothing else
    let (done, resp) = export_file(&f, &a, json!({"resource": "sessions", "format": "csv"})).await;
    assert_eq!(done["rows"], 0);
    assert_eq!(String::from_utf8(resp.body).unwrap().lines().count(), 1);
}

#[cfg(feature = "parquet")]
#[tokio::test]
async fn parquet_exports_read_back_typed() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    let f = Fixture::new();
    let a = f.org("Acme").await;
    f.store
        .store_frame_events(&a.id, &(0..25).map(|n| frame_event(&a.id, n)).collect::<Vec<_>>())
        .await
        .unwrap();
    let (done, resp) = export_file(&f, &a, json!({"resource": "frame_events", "format": "parquet"})).await;
    assert_eq!(done["rows"], 25);
    assert_eq!(header(&resp, "content-type"), Some("application/vnd.apache.parquet"));
    let reader = SerializedFileReader::new(bytes::Bytes::from(resp.body)).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 25);
    let names: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(
        names,
        columns(ExportResource::FrameEvents)
            .iter()
            .map(|(n, _)| n.to_string())
            .collect::<Vec<_>>()
    );
    let rows: Vec<parquet::record::Row> = reader.get_row_iter(None).unwrap().map(Result::unwrap).collect();
    let get = |row: &parquet::record::Row, name: &str| -> Field {
        row.get_column_iter()
            .find(|(n, _)| n.as_str() == name)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(get(&rows[0], "id"), Field::Str("cam1:0".into()));
    assert_eq!(get(&rows[0], "timestamp"), Field::TimestampMillis(NOW - 5_000));
    assert_eq!(get(&rows[3], "count"), Field::Long(3));
    assert_eq!(get(&rows[3], "value"), Field::Double(0.5));
    assert_eq!(get(&rows[1], "value"), Field::Null);
    assert_eq!(get(&rows[1], "zone"), Field::Null);
    assert_eq!(get(&rows[2], "zone"), Field::Str("door".into()));

    // products: ints, strings, times; an empty export is a valid file too
    let body = json!({"sku": "P", "name": "Päckchen", "price_cents": 250});
    assert_eq!(f.call(&a, "POST", "/api/v1/products", Some(body)).await.0, 201);
    let (_, resp) = export_file(&f, &a, json!({"resource": "products", "format": "parquet"})).await;
    let reader = SerializedFileReader::new(bytes::Bytes::from(resp.body)).unwrap();
    let row = reader.get_row_iter(None).unwrap().next().unwrap().unwrap();
    assert_eq!(get(&row, "name"), Field::Str("Päckchen".into()));
    assert_eq!(get(&row, "price_cents"), Field::Long(250));
    assert_eq!(get(&row, "updated_at"), Field::TimestampMillis(NOW));
    let (done, resp) = export_file(&f, &a, json!({"resource": "sessions", "format": "parquet"})).await;
    assert_eq!(done["rows"], 0);
    let reader = SerializedFileReader::new(bytes::Bytes::from(resp.body)).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
}

/// Every field of a fully populated item has a column (or is the org id), so a model change
/// cannot silently drop a field from CSV and Parquet files.
#[test]
fn export_columns_cover_every_field() {
    let mut ev = interaction("o", 1);
    ev.user_id = Some("u".into());
    ev.session_id = Some("s".into());
    ev.group_id = Some("g".into());
    ev.previous_id = Some("p".into());
    ev.traits.insert("plan".into(), json!("pro"));
    ev.original_timestamp = Some(1);
    ev.sent_at = Some(1);
    ev.person_id = Some("p".into());
    ev.referrer_class = Some(ReferrerClass::Search);
    ev.analysis = Some(Default::default());
    let mut m = sample_mention("o", "x", 1, 1);
    m.sentiment = Some(0.1);
    m.analysis = Some(json!({}));
    let mut fe = frame_event("o", 0);
    fe.value = Some(1.0);
    fe.frame_key = Some("k".into());
    let session = Session {
        id: "s".into(),
        org_id: "o".into(),
        person_id: "p".into(),
        started_at: 1,
        ended_at: 2,
        event_count: 1,
        page_count: 1,
        entry_path: Some("/".into()),
        exit_path: Some("/".into()),
        referrer: Some("r".into()),
        referrer_class: Some(ReferrerClass::Search),
        campaign: Some("c".into()),
        device: Some(Default::default()),
        is_bot: false,
    };
    let product = Product {
        id: "i".into(),
        org_id: "o".into(),
        sku: "s".into(),
        name: "n".into(),
        brand: Some("b".into()),
        category: Some("c".into()),
        price_cents: Some(1),
        currency: Some("EUR".into()),
        url: Some("https://x".into()),
        description: Some("d".into()),
        updated_at: 1,
    };
    for (resource, item) in [
        (ExportResource::Interactions, serde_json::to_value(&ev).unwrap()),
        (ExportResource::Mentions, serde_json::to_value(&m).unwrap()),
        (ExportResource::FrameEvents, serde_json::to_value(&fe).unwrap()),
        (ExportResource::Sessions, serde_json::to_value(&session).unwrap()),
        (ExportResource::Products, serde_json::to_value(&product).unwrap()),
    ] {
        let cols = columns(resource);
        for key in item.as_object().unwrap().keys() {
            assert!(
                key == "org_id" || cols.iter().any(|(c, _)| c == key),
                "{resource:?} has no column for {key}"
            );
        }
        assert!(cols.iter().any(|(_, k)| *k == ColumnKind::Time));
    }
}

/// A job leased by someone else (the Worker leases `export-report` jobs and hands each to a
/// Cloudflare Workflow instance) runs through `Trigger::run_job`: the file is written and the
/// job acked; a job whose workflow fails goes back to the queue under the retry policy.
#[tokio::test]
async fn a_job_leased_elsewhere_runs_and_settles_through_run_job() {
    let f = Fixture::new();
    let a = f.org("Acme").await;
    let (status, created) = f
        .call(
            &a,
            "POST",
            "/api/v1/exports",
            Some(json!({"resource": "interactions", "format": "json"})),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let ports = WithExports {
        ports: PortRefs::shared(&f.store, &f.blobs),
        exports: &f.store,
        catalog: &f.store,
        social: Some(&f.store),
        video: Some(&f.store),
    };
    let trigger = crow_ingest::workflows::Trigger::default();
    let leased = f
        .store
        .reserve(queues::EXPORT, 10, 1_800_000, NOW + 1_000)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    let report = trigger.run_job(&ports, &leased[0], NOW + 1_000, 0.5).await;
    assert_eq!((report.processed, report.failed), (1, 0), "{report:?}");
    let id = created["id"].as_str().unwrap();
    let (_, done) = f.call(&a, "GET", &format!("/api/v1/exports/{id}"), None).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(f.store.depth(queues::EXPORT).await.unwrap().ready, 0, "acked");

    // A job whose payload names no export fails, and is dead-lettered at once (invalid input).
    f.store
        .enqueue(
            vec![crow_core::ports::NewJob {
                queue: queues::EXPORT.into(),
                kind: "export-report".into(),
                payload: json!({"nonsense": true}),
                not_before: None,
            }],
            NOW,
        )
        .await
        .unwrap();
    let leased = f
        .store
        .reserve(queues::EXPORT, 10, 1_800_000, NOW + 2_000)
        .await
        .unwrap();
    let report = trigger.run_job(&ports, &leased[0], NOW + 2_000, 0.5).await;
    assert_eq!((report.processed, report.failed, report.dead), (0, 1, 1), "{report:?}");
    assert_eq!(f.store.dead_letters(queues::EXPORT, 10).await.unwrap().len(), 1);
}
