//! The REST catalog's store methods (product get/query/create/replace/delete/import, category
//! CRUD) and ExportStore: one contract, run against `MemoryStore` (the reference) and
//! `SqliteStore`, plus what only a file can show.

use crow_core::Error;
use crow_core::catalog::{Category, ProductQuery};
use crow_core::export::{Export, ExportFilters, ExportFormat, ExportResource, ExportStatus};
use crow_core::model::{EventType, Product};
use crow_core::ports::{CatalogStore, ExportStore, JobQueue, NewJob, queues};
use serde_json::json;

const ORG: &str = "org_a";
const OTHER: &str = "org_b";

fn product(sku: &str, name: &str, category: Option<&str>, brand: Option<&str>) -> Product {
    Product {
        id: format!("prd_{sku}"),
        org_id: ORG.into(),
        sku: sku.into(),
        name: name.into(),
        brand: brand.map(Into::into),
        category: category.map(Into::into),
        price_cents: Some(1299),
        currency: Some("EUR".into()),
        url: Some("https://shop.test/x".into()),
        description: None,
        updated_at: 10,
    }
}

fn category(name: &str, parent: Option<&str>) -> Category {
    Category {
        name: name.into(),
        parent: parent.map(Into::into),
        created_at: 5,
    }
}

fn query(limit: u32) -> ProductQuery {
    ProductQuery {
        limit,
        ..ProductQuery::default()
    }
}

fn skus(p: &[Product]) -> Vec<&str> {
    p.iter().map(|p| p.sku.as_str()).collect()
}

async fn all_products<S: CatalogStore>(s: &S, org: &str, mut q: ProductQuery) -> Vec<Product> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = s.query_products(org, &q).await.unwrap();
        out.extend(page.data);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end")
}

async fn products_crud_by_id_scoped_to_the_org<S: CatalogStore>(s: &S) {
    let p = product("A-1", "Alpha", Some("Shoes"), Some("Acme"));
    s.create_product(ORG, &p).await.unwrap();
    let err = s.create_product(ORG, &p).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(s.get_product(ORG, "prd_A-1").await.unwrap(), Some(p.clone()));
    // another org sees nothing and changes nothing
    assert_eq!(s.get_product(OTHER, "prd_A-1").await.unwrap(), None);
    assert!(!s.replace_product(OTHER, &p).await.unwrap());
    assert!(!s.delete_product(OTHER, "prd_A-1").await.unwrap());
    // the same sku is free in another org
    s.create_product(OTHER, &p).await.unwrap();
    // creating a product creates its category
    assert_eq!(
        s.get_category(ORG, "Shoes").await.unwrap().map(|c| c.parent),
        Some(None)
    );

    let mut changed = p.clone();
    changed.name = "Alpha 2".into();
    changed.brand = None;
    changed.category = Some("Boots".into());
    changed.updated_at = 20;
    assert!(s.replace_product(ORG, &changed).await.unwrap());
    assert_eq!(s.get_product(ORG, "prd_A-1").await.unwrap(), Some(changed.clone()));
    assert!(s.get_category(ORG, "Boots").await.unwrap().is_some());
    assert_eq!(s.get_product(OTHER, "prd_A-1").await.unwrap().unwrap().name, "Alpha");
    // a replace that takes another product's sku conflicts
    s.create_product(ORG, &product("B-2", "Beta", None, None))
        .await
        .unwrap();
    let mut clash = changed.clone();
    clash.sku = "B-2".into();
    assert!(matches!(s.replace_product(ORG, &clash).await, Err(Error::Conflict(_))));
    assert!(
        !s.replace_product(ORG, &product("Z", "missing", None, None))
            .await
            .unwrap()
    );

    assert!(s.delete_product(ORG, "prd_A-1").await.unwrap());
    assert!(!s.delete_product(ORG, "prd_A-1").await.unwrap());
    assert_eq!(s.get_product(ORG, "prd_A-1").await.unwrap(), None);
    assert_eq!(skus(&all_products(s, ORG, query(10)).await), ["B-2"]);
    assert_eq!(skus(&all_products(s, OTHER, query(10)).await), ["A-1"]);
}

async fn products_filter_and_page_by_sku<S: CatalogStore>(s: &S) {
    let mut batch = Vec::new();
    for i in 0..30 {
        let cat = ["Shoes", "Jackets", "Bags"][i % 3];
        let brand = if i % 2 == 0 { "Acme" } else { "Other" };
        let name = match i % 4 {
            0 => format!("Trail Runner {i}"),
            1 => format!("trail 50% {i}"),
            2 => format!("Storm_{i}"),
            _ => format!("Strom {i}"),
        };
        batch.push(product(&format!("S{:02}", (i * 7) % 30), &name, Some(cat), Some(brand)));
    }
    s.upsert_products(ORG, &batch).await.unwrap();
    s.upsert_products(OTHER, &batch[..3]).await.unwrap();

    let all = all_products(s, ORG, query(7)).await;
    let mut want: Vec<&str> = batch.iter().map(|p| p.sku.as_str()).collect();
    want.sort();
    assert_eq!(skus(&all), want, "by sku over pages of 7");

    let check = |q: ProductQuery, pred: &dyn Fn(&Product) -> bool| {
        let mut w: Vec<String> = batch.iter().filter(|p| pred(p)).map(|p| p.sku.clone()).collect();
        w.sort();
        (q, w)
    };
    let cases = [
        check(
            ProductQuery {
                category: Some("Shoes".into()),
                ..query(4)
            },
            &|p| p.category.as_deref() == Some("Shoes"),
        ),
        check(
            ProductQuery {
                brand: Some("Acme".into()),
                category: Some("Bags".into()),
                ..query(3)
            },
            &|p| p.brand.as_deref() == Some("Acme") && p.category.as_deref() == Some("Bags"),
        ),
        // ASCII case-insensitive prefix
        check(
            ProductQuery {
                name_prefix: Some("TRAIL".into()),
                ..query(5)
            },
            &|p| p.name.to_ascii_lowercase().starts_with("trail"),
        ),
        // `%` and `_` are literal, not wildcards
        check(
            ProductQuery {
                name_prefix: Some("trail 50%".into()),
                ..query(5)
            },
            &|p| p.name.starts_with("trail 50%"),
        ),
        check(
            ProductQuery {
                name_prefix: Some("St_rm".into()),
                ..query(5)
            },
            &|_| false,
        ),
        check(
            ProductQuery {
                name_prefix: Some("Storm_".into()),
                ..query(5)
            },
            &|p| p.name.starts_with("Storm_"),
        ),
    ];
    for (q, want) in cases {
        let got: Vec<String> = all_products(s, ORG, q.clone())
            .await
            .into_iter()
            .map(|p| p.sku)
            .collect();
        assert!(!want.is_empty() || q.name_prefix.as_deref() == Some("St_rm"));
        assert_eq!(got, want, "{q:?}");
    }
    let bad = ProductQuery {
        cursor: Some("not a cursor".into()),
        ..query(5)
    };
    assert!(matches!(s.query_products(ORG, &bad).await, Err(Error::Invalid { .. })));
}

async fn imports_count_inserted_updated_unchanged<S: CatalogStore>(s: &S) {
    let a = product("A", "Alpha", Some("Shoes"), None);
    let b = product("B", "Beta", None, None);
    let out = s.import_products(ORG, &[a.clone(), b.clone()]).await.unwrap();
    assert_eq!((out.inserted, out.updated, out.unchanged), (2, 0, 0));
    assert_eq!(out.changed, ["prd_A", "prd_B"]);
    let mut a2 = a.clone();
    a2.updated_at = 99; // a newer import of the same content is not a change
    let mut b2 = b.clone();
    b2.price_cents = Some(1);
    b2.updated_at = 99;
    let c = product("C", "Gamma", Some("Bags"), None);
    let out = s.import_products(ORG, &[a2, b2.clone(), c]).await.unwrap();
    assert_eq!((out.inserted, out.updated, out.unchanged), (1, 1, 1));
    assert_eq!(out.changed, ["prd_B", "prd_C"]);
    assert_eq!(s.get_product(ORG, "prd_A").await.unwrap().unwrap().updated_at, 10);
    assert_eq!(s.get_product(ORG, "prd_B").await.unwrap(), Some(b2));
    assert!(s.get_category(ORG, "Bags").await.unwrap().is_some());
    assert!(s.get_product(OTHER, "prd_C").await.unwrap().is_none());
    assert_eq!(s.import_products(ORG, &[]).await.unwrap().changed.len(), 0);
    // an empty sku stores nothing at all
    let err = s
        .import_products(ORG, &[product("D", "Delta", None, None), product("", "x", None, None)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "products[1].sku"),
        "{err}"
    );
    assert!(s.get_product(ORG, "prd_D").await.unwrap().is_none());
}

async fn categories_form_a_forest<S: CatalogStore>(s: &S) {
    s.create_category(ORG, &category("Clothing", None)).await.unwrap();
    s.create_category(ORG, &category("Jackets", Some("Clothing")))
        .await
        .unwrap();
    s.create_category(ORG, &category("Rain", Some("Jackets")))
        .await
        .unwrap();
    assert!(matches!(
        s.create_category(ORG, &category("Clothing", None)).await,
        Err(Error::Conflict(_))
    ));
    let err = s.create_category(ORG, &category("X", Some("Nope"))).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "parent"),
        "{err}"
    );
    // another org's category is no parent here, and it sees none of these
    assert!(
        s.create_category(OTHER, &category("Y", Some("Clothing")))
            .await
            .is_err()
    );
    assert!(s.get_category(OTHER, "Clothing").await.unwrap().is_none());
    assert!(s.list_categories(OTHER, 10, None).await.unwrap().data.is_empty());
    assert_eq!(s.set_category_parent(OTHER, "Rain", None).await.unwrap(), None);
    assert!(!s.delete_category(OTHER, "Rain").await.unwrap());

    // cycles: itself, a child, a grandchild
    for parent in ["Clothing", "Jackets", "Rain"] {
        let err = s.set_category_parent(ORG, "Clothing", Some(parent)).await.unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "parent"),
            "{parent}: {err}"
        );
    }
    assert!(s.set_category_parent(ORG, "Clothing", Some("Nope")).await.is_err());
    assert_eq!(s.set_category_parent(ORG, "Nope", None).await.unwrap(), None);
    let moved = s
        .set_category_parent(ORG, "Rain", Some("Clothing"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved, category("Rain", Some("Clothing")));
    let top = s.set_category_parent(ORG, "Rain", None).await.unwrap().unwrap();
    assert_eq!(top.parent, None);
    assert_eq!(s.get_category(ORG, "Rain").await.unwrap(), Some(top));

    // in use: subcategories, then products
    assert!(matches!(
        s.delete_category(ORG, "Clothing").await,
        Err(Error::Conflict(_))
    ));
    s.create_product(ORG, &product("R", "Raincoat", Some("Rain"), None))
        .await
        .unwrap();
    assert!(matches!(s.delete_category(ORG, "Rain").await, Err(Error::Conflict(_))));
    assert!(s.delete_product(ORG, "prd_R").await.unwrap());
    assert!(s.delete_category(ORG, "Rain").await.unwrap());
    assert!(!s.delete_category(ORG, "Rain").await.unwrap());
    assert!(s.delete_category(ORG, "Jackets").await.unwrap());
    assert!(s.delete_category(ORG, "Clothing").await.unwrap());
}

async fn categories_page_by_name<S: CatalogStore>(s: &S) {
    let mut names: Vec<String> = (0..25).map(|i| format!("cat/{:02} é", (i * 11) % 25)).collect();
    for n in &names {
        s.create_category(ORG, &category(n, None)).await.unwrap();
    }
    names.sort();
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = s.list_categories(ORG, 6, cursor.as_deref()).await.unwrap();
        assert!(page.data.len() <= 6);
        got.extend(page.data.into_iter().map(|c| c.name));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, names);
    assert!(matches!(
        s.list_categories(ORG, 5, Some("garbage!")).await,
        Err(Error::Invalid { .. })
    ));
}

fn export(id: &str, created_at: i64) -> Export {
    Export {
        id: id.into(),
        org_id: ORG.into(),
        resource: ExportResource::Interactions,
        format: ExportFormat::Csv,
        filters: ExportFilters {
            since: Some(1),
            event_type: Some(EventType::Track),
            ..ExportFilters::default()
        },
        status: ExportStatus::Queued,
        created_at,
        started_at: None,
        finished_at: None,
        rows: None,
        bytes: None,
        error: None,
        key: None,
    }
}

async fn exports_commit_with_their_job_and_stay_in_their_org<S: ExportStore + JobQueue>(s: &S) {
    let e = export("exp_1", 1_000);
    let job = NewJob::new(
        queues::EXPORT,
        "export-report",
        json!({"org_id": ORG, "export_id": "exp_1"}),
    );
    s.create_export(ORG, &e, vec![job]).await.unwrap();
    assert_eq!(s.depth(queues::EXPORT).await.unwrap().ready, 1);
    let jobs = s.reserve(queues::EXPORT, 10, 1_000, 2_000).await.unwrap();
    assert_eq!(jobs[0].payload["export_id"], "exp_1");
    assert!(matches!(
        s.create_export(ORG, &e, vec![]).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(s.get_export(ORG, "exp_1").await.unwrap(), Some(e.clone()));
    assert_eq!(s.get_export(OTHER, "exp_1").await.unwrap(), None);

    let mut done = e.clone();
    done.status = ExportStatus::Succeeded;
    done.started_at = Some(1_500);
    done.finished_at = Some(2_000);
    done.rows = Some(42);
    done.bytes = Some(4_096);
    done.key = Some("exports/org_a/exp_1.csv".into());
    // what was asked never changes
    let mut sneaky = done.clone();
    sneaky.resource = ExportResource::Products;
    sneaky.created_at = 7;
    assert!(!s.update_export(OTHER, &sneaky).await.unwrap());
    assert!(s.update_export(ORG, &sneaky).await.unwrap());
    assert_eq!(s.get_export(ORG, "exp_1").await.unwrap(), Some(done));
    let mut missing = e.clone();
    missing.id = "exp_nope".into();
    assert!(!s.update_export(ORG, &missing).await.unwrap());
}

async fn exports_list_newest_first<S: ExportStore>(s: &S) {
    // ties in created_at are broken by id, descending
    let mut all = Vec::new();
    for i in 0..13 {
        let e = export(&format!("exp_{i:02}"), 1_000 + (i / 3) * 10);
        s.create_export(ORG, &e, vec![]).await.unwrap();
        all.push(e);
    }
    s.create_export(OTHER, &export("exp_x", 5), vec![]).await.unwrap();
    all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = s.list_exports(ORG, 4, cursor.as_deref()).await.unwrap();
        got.extend(page.data);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, all);
    assert_eq!(s.list_exports(OTHER, 10, None).await.unwrap().data.len(), 1);
    assert!(matches!(
        s.list_exports(ORG, 4, Some("zz")).await,
        Err(Error::Invalid { .. })
    ));
}

crate::common::contract!(
    products_crud_by_id_scoped_to_the_org,
    products_filter_and_page_by_sku,
    imports_count_inserted_updated_unchanged,
    categories_form_a_forest,
    categories_page_by_name,
    exports_commit_with_their_job_and_stay_in_their_org,
    exports_list_newest_first,
);

#[tokio::test]
async fn exports_and_categories_survive_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = crow_store::SqliteStore::open(dir.path(), crow_store::StoreConfig::default()).unwrap();
        s.create_category(ORG, &category("Shoes", None)).await.unwrap();
        s.create_export(ORG, &export("exp_1", 1), vec![]).await.unwrap();
    }
    let s = crow_store::SqliteStore::open(dir.path(), crow_store::StoreConfig::default()).unwrap();
    assert_eq!(
        s.get_category(ORG, "Shoes").await.unwrap(),
        Some(category("Shoes", None))
    );
    assert_eq!(s.get_export(ORG, "exp_1").await.unwrap(), Some(export("exp_1", 1)));
}
