//! [`CatalogStore`] over SQLite: `products`, unique by `(org_id, sku)`, `categories`, and
//! `catalog_terms` (brands and competitors).

use crow_core::catalog::{Category, ImportOutcome, ProductQuery};
use crow_core::model::{CatalogTerm, Millis, Product};
use crow_core::ports::{CatalogStore, Page};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, clamp_limit, hex_decode, hex_encode};
use crate::error::StoreError;

/// The columns [`product_row`] reads, in order.
const PRODUCT_COLS: &str =
    "id, org_id, sku, name, brand, category, price_cents, currency, url, description, updated_at";

fn product_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
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
}

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
        let query = ProductQuery {
            limit,
            cursor: cursor.map(str::to_owned),
            ..ProductQuery::default()
        };
        self.query_products(org_id, &query).await
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
    async fn get_product(&self, org_id: &str, id: &str) -> crow_core::Result<Option<Product>> {
        let (org, id) = (org_id.to_owned(), id.to_owned());
        Ok(self.read_point(move |conn| product_by_id(conn, &org, &id))?)
    }

    async fn query_products(&self, org_id: &str, query: &ProductQuery) -> crow_core::Result<Page<Product>> {
        let limit = clamp_limit(query.limit);
        let after = decode_key_cursor(query.cursor.as_deref())?;
        let org = org_id.to_owned();
        let q = query.clone();
        Ok(self
            .read(move |conn| {
                let mut sql = format!("SELECT {PRODUCT_COLS} FROM products WHERE org_id = ?1");
                let mut args: Vec<rusqlite::types::Value> = vec![org.into()];
                let mut arg = |sql: &mut String, clause: &str, v: String| {
                    args.push(v.into());
                    sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
                };
                if let Some(a) = after {
                    arg(&mut sql, " AND sku > ?", a);
                }
                if let Some(c) = q.category {
                    arg(&mut sql, " AND category = ?", c);
                }
                if let Some(b) = q.brand {
                    arg(&mut sql, " AND brand = ?", b);
                }
                if let Some(p) = q.name_prefix {
                    let escaped = p.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                    arg(&mut sql, " AND name LIKE ? ESCAPE '\\'", format!("{escaped}%"));
                }
                args.push((limit as i64 + 1).into());
                sql.push_str(&format!(" ORDER BY sku LIMIT ?{}", args.len()));
                let mut stmt = conn.prepare_cached(&sql)?;
                let data = stmt
                    .query_map(rusqlite::params_from_iter(args), product_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(super::page_of(data, limit, |p| hex_encode(&p.sku)))
            })
            .await?)
    }

    async fn create_product(&self, org_id: &str, product: &Product) -> crow_core::Result<()> {
        if product.sku.is_empty() {
            return Err(StoreError::invalid("sku", "empty sku").into());
        }
        let org = org_id.to_owned();
        let p = product.clone();
        Ok(self
            .write(1, move |conn| {
                if sku_exists(conn, &org, &p.sku)? {
                    return Err(StoreError::Conflict(format!("a product with sku {:?} exists", p.sku)));
                }
                upsert(conn, &org, std::slice::from_ref(&p))?;
                Ok(())
            })
            .await?)
    }

    async fn replace_product(&self, org_id: &str, product: &Product) -> crow_core::Result<bool> {
        if product.sku.is_empty() {
            return Err(StoreError::invalid("sku", "empty sku").into());
        }
        let org = org_id.to_owned();
        let p = product.clone();
        Ok(self
            .write(1, move |conn| {
                let Some(old) = product_by_id(conn, &org, &p.id)? else {
                    return Ok(false);
                };
                if old.sku != p.sku && sku_exists(conn, &org, &p.sku)? {
                    return Err(StoreError::Conflict(format!("a product with sku {:?} exists", p.sku)));
                }
                conn.prepare_cached(
                    "UPDATE products SET sku = ?3, name = ?4, brand = ?5, category = ?6, price_cents = ?7, \
                     currency = ?8, url = ?9, description = ?10, updated_at = ?11 WHERE org_id = ?1 AND id = ?2",
                )?
                .execute(params![
                    org,
                    p.id,
                    p.sku,
                    p.name,
                    p.brand,
                    p.category,
                    p.price_cents,
                    p.currency,
                    p.url,
                    p.description,
                    p.updated_at
                ])?;
                if let Some(c) = &p.category {
                    ensure_category(conn, &org, c, p.updated_at)?;
                }
                Ok(true)
            })
            .await?)
    }

    async fn delete_product(&self, org_id: &str, id: &str) -> crow_core::Result<bool> {
        let (org, id) = (org_id.to_owned(), id.to_owned());
        Ok(self
            .write(1, move |conn| {
                let n = conn
                    .prepare_cached("DELETE FROM products WHERE org_id = ?1 AND id = ?2")?
                    .execute(params![org, id])?;
                Ok(n > 0)
            })
            .await?)
    }

    async fn import_products(&self, org_id: &str, products: &[Product]) -> crow_core::Result<ImportOutcome> {
        for (i, p) in products.iter().enumerate() {
            if p.sku.is_empty() {
                return Err(StoreError::invalid(format!("products[{i}].sku"), "empty sku").into());
            }
        }
        if products.is_empty() {
            return Ok(ImportOutcome::default());
        }
        let org = org_id.to_owned();
        let products = products.to_vec();
        Ok(self
            .write(products.len(), move |conn| {
                let mut out = ImportOutcome::default();
                let mut find = conn.prepare_cached(&format!(
                    "SELECT {PRODUCT_COLS} FROM products WHERE org_id = ?1 AND sku = ?2"
                ))?;
                for p in &products {
                    let old = find.query_row(params![org, p.sku], product_row).optional()?;
                    match old {
                        Some(old) if same_content(&old, p, &org) => {
                            out.unchanged += 1;
                            continue;
                        }
                        Some(_) => out.updated += 1,
                        None => out.inserted += 1,
                    }
                    upsert(conn, &org, std::slice::from_ref(p))?;
                    out.changed.push(p.id.clone());
                }
                Ok(out)
            })
            .await?)
    }

    async fn create_category(&self, org_id: &str, category: &Category) -> crow_core::Result<()> {
        if category.name.is_empty() {
            return Err(StoreError::invalid("name", "empty category name").into());
        }
        let org = org_id.to_owned();
        let c = category.clone();
        Ok(self
            .write(1, move |conn| {
                if category_by_name(conn, &org, &c.name)?.is_some() {
                    return Err(StoreError::Conflict(format!("a category named {:?} exists", c.name)));
                }
                if let Some(parent) = &c.parent
                    && category_by_name(conn, &org, parent)?.is_none()
                {
                    return Err(StoreError::invalid("parent", format!("no category named {parent:?}")));
                }
                conn.prepare_cached(
                    "INSERT INTO categories (org_id, name, parent, created_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![org, c.name, c.parent, c.created_at])?;
                Ok(())
            })
            .await?)
    }

    async fn get_category(&self, org_id: &str, name: &str) -> crow_core::Result<Option<Category>> {
        let (org, name) = (org_id.to_owned(), name.to_owned());
        Ok(self.read_point(move |conn| category_by_name(conn, &org, &name))?)
    }

    async fn list_categories(
        &self,
        org_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> crow_core::Result<Page<Category>> {
        let limit = clamp_limit(limit);
        let after = decode_key_cursor(cursor)?;
        let org = org_id.to_owned();
        Ok(self
            .read(move |conn| {
                let after_clause = if after.is_some() { "name > ?3" } else { "?3 IS NULL" };
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT name, parent, created_at FROM categories WHERE org_id = ?1 AND {after_clause} \
                     ORDER BY name LIMIT ?2"
                ))?;
                let data = stmt
                    .query_map(params![org, limit as i64 + 1, after], category_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(super::page_of(data, limit, |c| hex_encode(&c.name)))
            })
            .await?)
    }

    async fn set_category_parent(
        &self,
        org_id: &str,
        name: &str,
        parent: Option<&str>,
    ) -> crow_core::Result<Option<Category>> {
        let (org, name, parent) = (org_id.to_owned(), name.to_owned(), parent.map(str::to_owned));
        Ok(self
            .write(1, move |conn| {
                let Some(mut cat) = category_by_name(conn, &org, &name)? else {
                    return Ok(None);
                };
                if let Some(parent) = &parent {
                    // Walk up from the new parent: meeting `name` means a cycle.
                    let mut cur = Some(parent.clone());
                    let mut steps = 0;
                    while let Some(c) = cur {
                        if c == name {
                            return Err(StoreError::invalid(
                                "parent",
                                format!(
                                    "{parent:?} is {name:?} itself or one of its subcategories: that would make a cycle"
                                ),
                            ));
                        }
                        let Some(node) = category_by_name(conn, &org, &c)? else {
                            return Err(StoreError::invalid("parent", format!("no category named {c:?}")));
                        };
                        steps += 1;
                        if steps > 10_000 {
                            return Err(StoreError::Internal("category tree too deep".into()));
                        }
                        cur = node.parent;
                    }
                }
                conn.prepare_cached("UPDATE categories SET parent = ?3 WHERE org_id = ?1 AND name = ?2")?
                    .execute(params![org, name, parent])?;
                cat.parent = parent;
                Ok(Some(cat))
            })
            .await?)
    }

    async fn delete_category(&self, org_id: &str, name: &str) -> crow_core::Result<bool> {
        let (org, name) = (org_id.to_owned(), name.to_owned());
        Ok(self
            .write(1, move |conn| {
                if category_by_name(conn, &org, &name)?.is_none() {
                    return Ok(false);
                }
                let children: i64 = conn
                    .prepare_cached("SELECT count(*) FROM categories WHERE org_id = ?1 AND parent = ?2")?
                    .query_row(params![org, name], |r| r.get(0))?;
                let products: i64 = conn
                    .prepare_cached("SELECT count(*) FROM products WHERE org_id = ?1 AND category = ?2")?
                    .query_row(params![org, name], |r| r.get(0))?;
                if children > 0 || products > 0 {
                    return Err(StoreError::Conflict(format!(
                        "category {name:?} is still used by {children} subcategories and {products} products; \
                         move or delete them first"
                    )));
                }
                conn.prepare_cached("DELETE FROM categories WHERE org_id = ?1 AND name = ?2")?
                    .execute(params![org, name])?;
                Ok(true)
            })
            .await?)
    }
}

fn product_by_id(conn: &Connection, org: &str, id: &str) -> Result<Option<Product>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {PRODUCT_COLS} FROM products WHERE org_id = ?1 AND id = ?2"
        ))?
        .query_row(params![org, id], product_row)
        .optional()?)
}

fn sku_exists(conn: &Connection, org: &str, sku: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM products WHERE org_id = ?1 AND sku = ?2")?
        .query_row(params![org, sku], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Same content as stored under `org` (`updated_at` aside; the product's own org is ignored).
fn same_content(stored: &Product, p: &Product, org: &str) -> bool {
    let norm = |x: &Product| Product {
        org_id: org.to_owned(),
        updated_at: 0,
        ..x.clone()
    };
    norm(stored) == norm(p)
}

fn ensure_category(conn: &Connection, org: &str, name: &str, at: Millis) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR IGNORE INTO categories (org_id, name, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![org, name, at])?;
    Ok(())
}

fn category_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Category> {
    Ok(Category {
        name: r.get(0)?,
        parent: r.get(1)?,
        created_at: r.get(2)?,
    })
}

fn category_by_name(conn: &Connection, org: &str, name: &str) -> Result<Option<Category>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT name, parent, created_at FROM categories WHERE org_id = ?1 AND name = ?2")?
        .query_row(params![org, name], category_row)
        .optional()?)
}

/// The key (sku, category name) a hex cursor of a by-key listing stands for.
fn decode_key_cursor(cursor: Option<&str>) -> Result<Option<String>, StoreError> {
    cursor
        .map(|c| hex_decode(c).ok_or_else(|| StoreError::invalid("cursor", "not a cursor returned by this store")))
        .transpose()
}
