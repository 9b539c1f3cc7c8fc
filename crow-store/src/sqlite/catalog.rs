//! [`CatalogStore`] over SQLite: `products`, unique by `(org_id, sku)`, `categories`, and
//! `catalog_terms` (brands and competitors).

use crow_core::model::{CatalogTerm, Millis, Product};
use crow_core::ports::{CatalogStore, Page};
use rusqlite::{Connection, params};

use super::{SqliteStore, clamp_limit, hex_decode, hex_encode};
use crate::error::StoreError;

/// Inserts or updates products under `org_id` (a product's own `org_id` is ignored); counts rows
/// inserted or whose content changed (`updated_at` alone is not a change: an unchanged product
/// keeps its stored row, `updated_at` included, so a re-crawl reports only real changes).
fn upsert(conn: &Connection, org_id: &str, products: &[Product]) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO products (org_id, sku, id, name, brand, category, price_cents, currency, url, description, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT (org_id, sku) DO UPDATE SET id = excluded.id, name = excluded.name, brand = excluded.brand, \
         category = excluded.category, price_cents = excluded.price_cents, currency = excluded.currency, \
         url = excluded.url, description = excluded.description, updated_at = excluded.updated_at \
         WHERE products.id IS NOT excluded.id OR products.name IS NOT excluded.name \
         OR products.brand IS NOT excluded.brand OR products.category IS NOT excluded.category \
         OR products.price_cents IS NOT excluded.price_cents OR products.currency IS NOT excluded.currency \
         OR products.url IS NOT excluded.url OR products.description IS NOT excluded.description",
    )?;
    let mut category =
        conn.prepare_cached("INSERT OR IGNORE INTO categories (org_id, name, created_at) VALUES (?1, ?2, ?3)")?;
    let mut changed = 0;
    for p in products {
        changed += stmt.execute(params![
            org_id,
            p.sku,
            p.id,
            p.name,
            p.brand,
            p.category,
            p.price_cents,
            p.currency,
            p.url,
            p.description,
            p.updated_at,
        ])?;
        if let Some(c) = &p.category {
            category.execute(params![org_id, c, p.updated_at])?;
        }
    }
    Ok(changed)
}

#[async_trait::async_trait]
impl CatalogStore for SqliteStore {
    async fn upsert_products(&self, org_id: &str, products: &[Product]) -> crow_core::Result<usize> {
        if products.is_empty() {
            return Ok(0);
        }
        for (i, p) in products.iter().enumerate() {
            if p.sku.is_empty() {
                return Err(StoreError::invalid(format!("products[{i}].sku"), "empty sku").into());
            }
        }
        let org = org_id.to_owned();
        let products = products.to_vec();
        Ok(self
            .write(products.len(), move |conn| upsert(conn, &org, &products))
            .await?)
    }

    async fn list_products(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> crow_core::Result<Page<Product>> {
        let limit = clamp_limit(limit);
        let after = match cursor {
            Some(c) => Some(
                hex_decode(c).ok_or_else(|| StoreError::invalid("cursor", "not a cursor returned by this store"))?,
            ),
            None => None,
        };
        let org = org_id.to_owned();
        Ok(self
            .read(move |conn| {
                // Two statements rather than `(?2 IS NULL OR sku > ?2)`, which defeats the index.
                let after_clause = if after.is_some() { "sku > ?3" } else { "?3 IS NULL" };
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT id, org_id, sku, name, brand, category, price_cents, currency, url, description, updated_at \
                     FROM products WHERE org_id = ?1 AND {after_clause} ORDER BY sku LIMIT ?2"
                ))?;
                let mut data = stmt
                    .query_map(params![org, limit as i64 + 1, after], |r| {
                        Ok(Product {
                            id: r.get(0)?,
                            org_id: r.get(1)?,
                            sku: r.get(2)?,
                            name: r.get(3)?,
                            brand: r.get(4)?,
                            category: r.get(5)?,
                            price_cents: r.get(6)?,
                            currency: r.get(7)?,
                            url: r.get(8)?,
                            description: r.get(9)?,
                            updated_at: r.get(10)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let next_cursor = if data.len() > limit {
                    data.truncate(limit);
                    data.last().map(|p| hex_encode(&p.sku))
                } else {
                    None
                };
                Ok(Page { data, next_cursor })
            })
            .await?)
    }

    async fn add_terms(&self, org_id: &str, terms: &[CatalogTerm], now: Millis) -> crow_core::Result<usize> {
        for (i, t) in terms.iter().enumerate() {
            if !CatalogTerm::KINDS.contains(&t.kind.as_str()) {
                return Err(StoreError::invalid(format!("terms[{i}].kind"), "must be `brand` or `competitor`").into());
            }
            if t.name.trim().is_empty() {
                return Err(StoreError::invalid(format!("terms[{i}].name"), "must not be empty").into());
            }
        }
        if terms.is_empty() {
            return Ok(0);
        }
        let org = org_id.to_owned();
        let terms = terms.to_vec();
        Ok(self
            .write(terms.len(), move |conn| {
                let mut stmt = conn.prepare_cached(
                    "INSERT OR IGNORE INTO catalog_terms (org_id, kind, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                )?;
                let mut added = 0;
                for t in &terms {
                    added += stmt.execute(params![org, t.kind, t.name.trim(), now])?;
                }
                Ok(added)
            })
            .await?)
    }

    async fn list_terms(&self, org_id: &str) -> crow_core::Result<Vec<CatalogTerm>> {
        let org = org_id.to_owned();
        Ok(self
            .read(move |conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT kind, name FROM catalog_terms WHERE org_id = ?1 ORDER BY kind, name")?;
                let rows = stmt
                    .query_map(params![org], |r| {
                        Ok(CatalogTerm {
                            kind: r.get(0)?,
                            name: r.get(1)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn catalog_version(&self, org_id: &str) -> crow_core::Result<String> {
        let org = org_id.to_owned();
        Ok(self
            .read(move |conn| {
                let (n, last): (i64, i64) = conn
                    .prepare_cached("SELECT count(*), coalesce(max(updated_at), 0) FROM products WHERE org_id = ?1")?
                    .query_row(params![org], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let (terms, last_term): (i64, i64) = conn
                    .prepare_cached(
                        "SELECT count(*), coalesce(max(created_at), 0) FROM catalog_terms WHERE org_id = ?1",
                    )?
                    .query_row(params![org], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(format!("{n}:{last}:{terms}:{last_term}"))
            })
            .await?)
    }
}
