//! CatalogStore: upserts by sku and listing.

use crow_core::model::Product;
use crow_core::ports::CatalogStore;

use crate::common::store;

fn product(org: &str, sku: &str, price: i64) -> Product {
    Product {
        id: format!("prod_{sku}"),
        org_id: org.into(),
        sku: sku.into(),
        name: format!("Product {sku}"),
        brand: Some("Acme".into()),
        category: Some("Shoes".into()),
        price_cents: Some(price),
        currency: Some("EUR".into()),
        url: None,
        description: None,
        updated_at: 1,
    }
}

#[tokio::test]
async fn upsert_counts_inserted_or_changed_products() {
    let (_dir, s) = store();
    let batch: Vec<_> = (0..5).map(|i| product("o", &format!("sku-{i}"), 100)).collect();
    assert_eq!(s.upsert_products("o", &batch).await.unwrap(), 5);
    let mut again = batch.clone();
    for p in &mut again {
        p.updated_at = 2; // a newer crawl of the same content is not a change
    }
    assert_eq!(s.upsert_products("o", &again).await.unwrap(), 0);
    again[1].price_cents = Some(90);
    again[3].description = Some("new".into());
    assert_eq!(s.upsert_products("o", &again).await.unwrap(), 2);
    let page = s.list_products("o", 0, None).await.unwrap();
    assert_eq!(page.data.len(), 5);
    assert_eq!(page.data[1].price_cents, Some(90));
    assert_eq!(page.data[1].updated_at, 2);
    assert_eq!(page.data[0].updated_at, 1);
    assert_eq!(page.data[0], batch[0]);
    // Another org's catalog is separate; products are stored under the org argument.
    assert!(s.list_products("p", 10, None).await.unwrap().data.is_empty());
    assert_eq!(s.upsert_products("p", &batch[..1]).await.unwrap(), 1);
    let p = s.list_products("p", 10, None).await.unwrap();
    assert_eq!(p.data[0].org_id, "p");
    assert_eq!(s.list_products("o", 10, None).await.unwrap().data.len(), 5);
}

#[tokio::test]
async fn products_list_by_sku_with_a_cursor() {
    let (_dir, s) = store();
    let mut skus: Vec<String> = (0..23).map(|i| format!("SKU/{:02}-é", (i * 7) % 23)).collect();
    let batch: Vec<_> = skus.iter().map(|k| product("o", k, 1)).collect();
    s.upsert_products("o", &batch).await.unwrap();
    skus.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let p = s.list_products("o", 5, cursor.as_deref()).await.unwrap();
        seen.extend(p.data.into_iter().map(|p| p.sku));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, skus);
    assert!(s.list_products("o", 5, Some("not hex")).await.is_err());
}

#[tokio::test]
async fn terms_are_scoped_deduplicated_validated_and_change_the_catalog_version() {
    use crow_core::model::CatalogTerm;
    let (_dir, store) = store();
    let v0 = store.catalog_version("org_a").await.unwrap();
    let t = |kind: &str, name: &str| CatalogTerm {
        kind: kind.into(),
        name: name.into(),
    };
    let added = store
        .add_terms(
            "org_a",
            &[
                t("competitor", "Hoka"),
                t("brand", "Trailhead"),
                t("competitor", " Hoka "),
            ],
            1,
        )
        .await
        .unwrap();
    assert_eq!(added, 2);
    assert_eq!(
        store.list_terms("org_a").await.unwrap(),
        vec![t("brand", "Trailhead"), t("competitor", "Hoka")]
    );
    assert!(store.list_terms("org_b").await.unwrap().is_empty());
    let v1 = store.catalog_version("org_a").await.unwrap();
    assert_ne!(v0, v1);
    let err = store.add_terms("org_a", &[t("friend", "X")], 2).await.unwrap_err();
    assert!(err.to_string().contains("terms[0].kind"), "{err}");
    assert!(store.add_terms("org_a", &[t("brand", "  ")], 2).await.is_err());
    assert_eq!(
        store.catalog_version("org_a").await.unwrap(),
        v1,
        "failed adds change nothing"
    );
}
