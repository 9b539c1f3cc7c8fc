//! [`CatalogStore`](crow_core::ports::CatalogStore) on the SQL layer: `products`, unique by
//! `(org_id, sku)`, `categories` (a forest by name) and `catalog_terms` (brands and competitors).
//!
//! Each port method is a free function over a [`Sql`] executor. Lists go as JSON parameters read
//! with `json_each`, split into statements of at most 512 KiB of JSON inside one batch.
//! Where the old transactional code read, decided and wrote, the write now carries the decision
//! in SQL and a read after it says why nothing changed:
//!
//! - `create_product` relies on `UNIQUE (org_id, sku)` (a violation is `Conflict`);
//!   `replace_product` updates by id and creates the category only `WHERE changes() > 0`.
//! - `create_category` inserts only when the parent exists; `delete_category` deletes only while
//!   no subcategory or product names the category; `set_category_parent` updates only when the
//!   walk up from the new parent (a recursive CTE) ends at a root without meeting the category.
//!   When nothing changed, one read finds which rule refused, and the write is tried again
//!   (a few times) when none does any more (the state moved in between).
//! - `import_products` reads the stored products of the given skus (one `SELECT` per chunk),
//!   replays the import in Rust to count inserted, updated and unchanged products (a sku given
//!   twice sees its first occurrence, as the sequential code did), then writes the changed ones
//!   as one batch of upserts. The counts describe the catalog as read: a write landing between
//!   the read and the batch is not counted, but the batch still upserts by sku, so the catalog
//!   ends as the import says.
//! - The name prefix filter compares `lower(substr(name, 1, length(prefix)))` with
//!   `lower(prefix)` (D1 caps `LIKE` patterns at 50 bytes): SQLite's `lower` folds ASCII only,
//!   as `LIKE` does, so the results are those of `name LIKE 'prefix%'`.

use std::collections::HashMap;

use crow_core::catalog::{Category, ImportOutcome, ProductQuery};
use crow_core::model::{CatalogTerm, Millis, Product};
use crow_core::ports::Page;
use serde::Serialize;

use super::{CHUNK_BYTES, Row, Sql, SqlValue, Stmt, clamp_limit, hex_decode, hex_encode, json_chunks, page_of};
use crate::error::StoreError;

/// How often a guarded category write is tried when the read after it finds nothing refusing
/// it (the categories changed in between).
const TRIES: usize = 3;

/// The deepest walk up a category tree (as many parents as this, plus the starting category).
const MAX_DEPTH: i64 = 10_000;

/// The columns [`product_of`] reads, in order.
const PRODUCT_COLS: &str =
    "id, org_id, sku, name, brand, category, price_cents, currency, url, description, updated_at";

/// The columns [`category_of`] reads, in order.
const CATEGORY_COLS: &str = "name, parent, created_at";

fn product_of(r: &Row) -> Result<Product, StoreError> {
    Ok(Product {
        id: r.text(0)?,
        org_id: r.text(1)?,
        sku: r.text(2)?,
        name: r.text(3)?,
        brand: r.opt_text(4)?,
        category: r.opt_text(5)?,
        price_cents: r.opt_i64(6)?,
        currency: r.opt_text(7)?,
        url: r.opt_text(8)?,
        description: r.opt_text(9)?,
        updated_at: r.i64(10)?,
    })
}

fn category_of(r: &Row) -> Result<Category, StoreError> {
    Ok(Category {
        name: r.text(0)?,
        parent: r.opt_text(1)?,
        created_at: r.i64(2)?,
    })
}

/// A product as its statements read it from JSON (`j.value ->> '$.field'`).
#[derive(Serialize)]
struct ProductRow<'a> {
    sku: &'a str,
    id: &'a str,
    name: &'a str,
    brand: Option<&'a str>,
    category: Option<&'a str>,
    price_cents: Option<i64>,
    currency: Option<&'a str>,
    url: Option<&'a str>,
    description: Option<&'a str>,
    updated_at: Millis,
}

impl<'a> ProductRow<'a> {
    fn of(p: &'a Product) -> Self {
        ProductRow {
            sku: &p.sku,
            id: &p.id,
            name: &p.name,
            brand: p.brand.as_deref(),
            category: p.category.as_deref(),
            price_cents: p.price_cents,
            currency: p.currency.as_deref(),
            url: p.url.as_deref(),
            description: p.description.as_deref(),
            updated_at: p.updated_at,
        }
    }
}

/// A category created for a product (`INSERT OR IGNORE`: an existing one is left as it is).
#[derive(Serialize)]
struct CategoryRow<'a> {
    name: &'a str,
    created_at: Millis,
}

/// Inserts or updates the products of one JSON chunk under `?1` by `(org_id, sku)`, in order;
/// a row counts as changed (`changes()`) when inserted or when its content (anything but
/// `updated_at`) differs: an unchanged product keeps its stored row, `updated_at` included.
const UPSERT_SQL: &str = "INSERT INTO products (org_id, sku, id, name, brand, category, price_cents, currency, url, \
     description, updated_at) \
     SELECT ?1, j.value ->> '$.sku', j.value ->> '$.id', j.value ->> '$.name', j.value ->> '$.brand', \
     j.value ->> '$.category', j.value ->> '$.price_cents', j.value ->> '$.currency', j.value ->> '$.url', \
     j.value ->> '$.description', j.value ->> '$.updated_at' FROM json_each(?2) AS j WHERE true \
     ON CONFLICT (org_id, sku) DO UPDATE SET id = excluded.id, name = excluded.name, brand = excluded.brand, \
     category = excluded.category, price_cents = excluded.price_cents, currency = excluded.currency, \
     url = excluded.url, description = excluded.description, updated_at = excluded.updated_at \
     WHERE products.id IS NOT excluded.id OR products.name IS NOT excluded.name \
     OR products.brand IS NOT excluded.brand OR products.category IS NOT excluded.category \
     OR products.price_cents IS NOT excluded.price_cents OR products.currency IS NOT excluded.currency \
     OR products.url IS NOT excluded.url OR products.description IS NOT excluded.description";

/// The statements upserting `products` under `org_id` and creating their missing categories
/// (`created_at` = the `updated_at` of the first product naming one). The first `n` statements
/// are the product upserts, whose `changes` add up to the products inserted or changed.
fn upsert_stmts(org_id: &str, products: &[Product], chunk_bytes: usize) -> Result<(Vec<Stmt>, usize), StoreError> {
    let rows: Vec<ProductRow<'_>> = products.iter().map(ProductRow::of).collect();
    let mut stmts: Vec<Stmt> = json_chunks(&rows, chunk_bytes)?
        .into_iter()
        .map(|json| Stmt::new(UPSERT_SQL).bind(org_id).bind(json))
        .collect();
    let n = stmts.len();
    let mut seen = std::collections::HashSet::new();
    let categories: Vec<CategoryRow<'_>> = products
        .iter()
        .filter_map(|p| p.category.as_deref().map(|c| (c, p.updated_at)))
        .filter(|(c, _)| seen.insert(*c))
        .map(|(name, created_at)| CategoryRow { name, created_at })
        .collect();
    for json in json_chunks(&categories, chunk_bytes)? {
        stmts.push(
            Stmt::new(
                "INSERT OR IGNORE INTO categories (org_id, name, created_at) \
                 SELECT ?1, j.value ->> '$.name', j.value ->> '$.created_at' FROM json_each(?2) AS j",
            )
            .bind(org_id)
            .bind(json),
        );
    }
    Ok((stmts, n))
}

fn check_skus(products: &[Product]) -> Result<(), StoreError> {
    match products.iter().position(|p| p.sku.is_empty()) {
        Some(i) => Err(StoreError::invalid(format!("products[{i}].sku"), "empty sku")),
        None => Ok(()),
    }
}

/// [`CatalogStore::upsert_products`](crow_core::ports::CatalogStore::upsert_products): inserts
/// or updates products under `org_id` (a product's own `org_id` is ignored), all or none, and
/// counts those inserted or whose content changed (`updated_at` alone is not a change). An
/// empty sku is `Invalid` (`products[i].sku`) and stores nothing.
pub async fn upsert_products<S: Sql + ?Sized>(db: &S, org_id: &str, products: &[Product]) -> Result<usize, StoreError> {
    upsert_chunked(db, org_id, products, CHUNK_BYTES).await
}

async fn upsert_chunked<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    products: &[Product],
    chunk_bytes: usize,
) -> Result<usize, StoreError> {
    if products.is_empty() {
        return Ok(0);
    }
    check_skus(products)?;
    let (stmts, n) = upsert_stmts(org_id, products, chunk_bytes)?;
    let done = db.batch(stmts).await?;
    Ok(done.iter().take(n).map(|d| d.changes as usize).sum())
}

/// [`CatalogStore::list_products`](crow_core::ports::CatalogStore::list_products): products by
/// sku, [`query_products`] without filters.
pub async fn list_products<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<Product>, StoreError> {
    let query = ProductQuery {
        limit,
        cursor: cursor.map(str::to_owned),
        ..ProductQuery::default()
    };
    query_products(db, org_id, &query).await
}

#[derive(Serialize)]
struct TermRow<'a> {
    kind: &'a str,
    name: &'a str,
}

/// [`CatalogStore::add_terms`](crow_core::ports::CatalogStore::add_terms): adds brand or
/// competitor names (trimmed; duplicates ignored) and returns how many were new. An unknown kind
/// (`terms[i].kind`) or a blank name (`terms[i].name`) is `Invalid` and adds nothing.
pub async fn add_terms<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    terms: &[CatalogTerm],
    now: Millis,
) -> Result<usize, StoreError> {
    for (i, t) in terms.iter().enumerate() {
        if !CatalogTerm::KINDS.contains(&t.kind.as_str()) {
            return Err(StoreError::invalid(
                format!("terms[{i}].kind"),
                "must be `brand` or `competitor`",
            ));
        }
        if t.name.trim().is_empty() {
            return Err(StoreError::invalid(format!("terms[{i}].name"), "must not be empty"));
        }
    }
    if terms.is_empty() {
        return Ok(0);
    }
    let rows: Vec<TermRow<'_>> = terms
        .iter()
        .map(|t| TermRow {
            kind: &t.kind,
            name: t.name.trim(),
        })
        .collect();
    let stmts = json_chunks(&rows, CHUNK_BYTES)?
        .into_iter()
        .map(|json| {
            Stmt::new(
                "INSERT OR IGNORE INTO catalog_terms (org_id, kind, name, created_at) \
                 SELECT ?1, j.value ->> '$.kind', j.value ->> '$.name', ?2 FROM json_each(?3) AS j",
            )
            .bind(org_id)
            .bind(now)
            .bind(json)
        })
        .collect();
    let done = db.batch(stmts).await?;
    Ok(done.iter().map(|d| d.changes as usize).sum())
}

/// [`CatalogStore::list_terms`](crow_core::ports::CatalogStore::list_terms): by kind, then name.
pub async fn list_terms<S: Sql + ?Sized>(db: &S, org_id: &str) -> Result<Vec<CatalogTerm>, StoreError> {
    db.query(Stmt::new("SELECT kind, name FROM catalog_terms WHERE org_id = ?1 ORDER BY kind, name").bind(org_id))
        .await?
        .iter()
        .map(|r| {
            Ok(CatalogTerm {
                kind: r.text(0)?,
                name: r.text(1)?,
            })
        })
        .collect()
}

/// [`CatalogStore::catalog_version`](crow_core::ports::CatalogStore::catalog_version):
/// `products:last_update:terms:last_term`.
pub async fn catalog_version<S: Sql + ?Sized>(db: &S, org_id: &str) -> Result<String, StoreError> {
    let rows = db
        .query(
            Stmt::new(
                "SELECT (SELECT count(*) FROM products WHERE org_id = ?1) AS n_products, \
                 (SELECT coalesce(max(updated_at), 0) FROM products WHERE org_id = ?1) AS last_product, \
                 (SELECT count(*) FROM catalog_terms WHERE org_id = ?1) AS n_terms, \
                 (SELECT coalesce(max(created_at), 0) FROM catalog_terms WHERE org_id = ?1) AS last_term",
            )
            .bind(org_id),
        )
        .await?;
    let r = rows
        .first()
        .ok_or_else(|| StoreError::Internal("catalog version: no row".into()))?;
    Ok(format!("{}:{}:{}:{}", r.i64(0)?, r.i64(1)?, r.i64(2)?, r.i64(3)?))
}

/// [`CatalogStore::get_product`](crow_core::ports::CatalogStore::get_product).
pub async fn get_product<S: Sql + ?Sized>(db: &S, org_id: &str, id: &str) -> Result<Option<Product>, StoreError> {
    db.query_one(
        Stmt::new(format!(
            "SELECT {PRODUCT_COLS} FROM products WHERE org_id = ?1 AND id = ?2 LIMIT 1"
        ))
        .bind(org_id)
        .bind(id),
    )
    .await?
    .as_ref()
    .map(product_of)
    .transpose()
}

/// [`CatalogStore::query_products`](crow_core::ports::CatalogStore::query_products): products
/// by sku with the filters of `query`; the cursor is the last sku in hex (a malformed one is
/// `Invalid { field: "cursor" }`).
pub async fn query_products<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    query: &ProductQuery,
) -> Result<Page<Product>, StoreError> {
    let limit = clamp_limit(query.limit);
    let after = decode_key_cursor(query.cursor.as_deref())?;
    let mut sql = format!("SELECT {PRODUCT_COLS} FROM products WHERE org_id = ?1");
    let mut args: Vec<SqlValue> = vec![org_id.into()];
    let mut arg = |sql: &mut String, clause: &str, v: String| {
        args.push(v.into());
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(a) = after {
        arg(&mut sql, " AND sku > ?", a);
    }
    if let Some(c) = &query.category {
        arg(&mut sql, " AND category = ?", c.clone());
    }
    if let Some(b) = &query.brand {
        arg(&mut sql, " AND brand = ?", b.clone());
    }
    if let Some(p) = &query.name_prefix {
        // `name LIKE 'p%'` without D1's 50-byte cap on patterns: `lower` folds ASCII only, as
        // `LIKE` does, and `substr`/`length` count characters, as `LIKE` matches them.
        arg(&mut sql, " AND lower(substr(name, 1, length(?))) = lower(?)", p.clone());
    }
    args.push((limit as i64 + 1).into());
    sql.push_str(&format!(" ORDER BY sku LIMIT ?{}", args.len()));
    let stmt = args.into_iter().fold(Stmt::new(sql), Stmt::bind);
    let data = db
        .query(stmt)
        .await?
        .iter()
        .map(product_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(data, limit, |p| hex_encode(&p.sku)))
}

fn sku_taken(sku: &str) -> StoreError {
    StoreError::Conflict(format!("a product with sku {sku:?} exists"))
}

/// Whether the org has a product with this sku.
async fn sku_exists<S: Sql + ?Sized>(db: &S, org_id: &str, sku: &str) -> Result<bool, StoreError> {
    Ok(db
        .query_one(
            Stmt::new("SELECT 1 FROM products WHERE org_id = ?1 AND sku = ?2")
                .bind(org_id)
                .bind(sku),
        )
        .await?
        .is_some())
}

/// Creates the category of a product written by the statement before it, when that one changed
/// a row and the category is missing.
fn ensure_category_after(org_id: &str, p: &Product) -> Option<Stmt> {
    p.category.as_ref().map(|c| {
        Stmt::new("INSERT OR IGNORE INTO categories (org_id, name, created_at) SELECT ?1, ?2, ?3 WHERE changes() > 0")
            .bind(org_id)
            .bind(c)
            .bind(p.updated_at)
    })
}

/// [`CatalogStore::create_product`](crow_core::ports::CatalogStore::create_product): stores a
/// new product under `org_id` and creates its category when missing. `Conflict` when the org has
/// a product with this sku; an empty sku is `Invalid`.
pub async fn create_product<S: Sql + ?Sized>(db: &S, org_id: &str, product: &Product) -> Result<(), StoreError> {
    let p = product;
    if p.sku.is_empty() {
        return Err(StoreError::invalid("sku", "empty sku"));
    }
    let mut stmts = vec![with_product(
        Stmt::new(
            "INSERT INTO products (org_id, sku, id, name, brand, category, price_cents, currency, url, \
                 description, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        ),
        org_id,
        p,
    )];
    stmts.extend(ensure_category_after(org_id, p));
    match db.batch(stmts).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_constraint_violation() && sku_exists(db, org_id, &p.sku).await? => Err(sku_taken(&p.sku)),
        Err(e) => Err(e),
    }
}

/// `stmt` with a product's columns bound as `?1` org, `?2` sku, `?3` id, `?4` name, `?5` brand,
/// `?6` category, `?7` price, `?8` currency, `?9` url, `?10` description, `?11` updated_at.
fn with_product(stmt: Stmt, org_id: &str, p: &Product) -> Stmt {
    stmt.bind(org_id)
        .bind(&p.sku)
        .bind(&p.id)
        .bind(&p.name)
        .bind(p.brand.as_deref())
        .bind(p.category.as_deref())
        .bind(p.price_cents)
        .bind(p.currency.as_deref())
        .bind(p.url.as_deref())
        .bind(p.description.as_deref())
        .bind(p.updated_at)
}

/// [`CatalogStore::replace_product`](crow_core::ports::CatalogStore::replace_product): replaces
/// every field of the org's product with `product.id`, the sku too (`Conflict` when another
/// product has it), and creates the category when missing; `false` when the org has no such
/// product. An empty sku is `Invalid`.
pub async fn replace_product<S: Sql + ?Sized>(db: &S, org_id: &str, product: &Product) -> Result<bool, StoreError> {
    let p = product;
    if p.sku.is_empty() {
        return Err(StoreError::invalid("sku", "empty sku"));
    }
    let mut stmts = vec![with_product(
        Stmt::new(
            "UPDATE products SET sku = ?2, name = ?4, brand = ?5, category = ?6, price_cents = ?7, \
                 currency = ?8, url = ?9, description = ?10, updated_at = ?11 WHERE org_id = ?1 AND id = ?3",
        ),
        org_id,
        p,
    )];
    stmts.extend(ensure_category_after(org_id, p));
    match db.batch(stmts).await {
        Ok(done) => Ok(done.first().is_some_and(|d| d.changes > 0)),
        Err(e) if e.is_constraint_violation() && sku_exists(db, org_id, &p.sku).await? => Err(sku_taken(&p.sku)),
        Err(e) => Err(e),
    }
}

/// [`CatalogStore::delete_product`](crow_core::ports::CatalogStore::delete_product): `false`
/// when the org has no product with this id.
pub async fn delete_product<S: Sql + ?Sized>(db: &S, org_id: &str, id: &str) -> Result<bool, StoreError> {
    let done = db
        .execute(
            Stmt::new("DELETE FROM products WHERE org_id = ?1 AND id = ?2")
                .bind(org_id)
                .bind(id),
        )
        .await?;
    Ok(done.changes > 0)
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

/// What an import does, replayed in order over the products stored before it (`stored`, by
/// sku): the outcome, and the products to write (the inserted and updated ones, in order).
fn replay_import(
    org_id: &str,
    mut stored: HashMap<String, Product>,
    products: &[Product],
) -> (ImportOutcome, Vec<Product>) {
    let mut out = ImportOutcome::default();
    let mut write = Vec::new();
    for p in products {
        match stored.get(&p.sku) {
            Some(old) if same_content(old, p, org_id) => {
                out.unchanged += 1;
                continue;
            }
            Some(_) => out.updated += 1,
            None => out.inserted += 1,
        }
        out.changed.push(p.id.clone());
        stored.insert(p.sku.clone(), p.clone());
        write.push(p.clone());
    }
    (out, write)
}

/// [`CatalogStore::import_products`](crow_core::ports::CatalogStore::import_products): upserts
/// by sku like [`upsert_products`], all or none, and says which products were new, changed or
/// the same (an unchanged product is not written, nor is its category created). An empty sku is
/// `Invalid` (`products[i].sku`) and stores nothing.
pub async fn import_products<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    products: &[Product],
) -> Result<ImportOutcome, StoreError> {
    import_chunked(db, org_id, products, CHUNK_BYTES).await
}

async fn import_chunked<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    products: &[Product],
    chunk_bytes: usize,
) -> Result<ImportOutcome, StoreError> {
    check_skus(products)?;
    if products.is_empty() {
        return Ok(ImportOutcome::default());
    }
    let skus: Vec<&str> = products.iter().map(|p| p.sku.as_str()).collect();
    let mut stored = HashMap::new();
    for json in json_chunks(&skus, chunk_bytes)? {
        let rows = db
            .query(
                Stmt::new(format!(
                    "SELECT {PRODUCT_COLS} FROM products \
                     WHERE org_id = ?1 AND sku IN (SELECT value FROM json_each(?2))"
                ))
                .bind(org_id)
                .bind(json),
            )
            .await?;
        for r in &rows {
            let p = product_of(r)?;
            stored.insert(p.sku.clone(), p);
        }
    }
    let (out, write) = replay_import(org_id, stored, products);
    if !write.is_empty() {
        let (stmts, _) = upsert_stmts(org_id, &write, chunk_bytes)?;
        db.batch(stmts).await?;
    }
    Ok(out)
}

/// [`CatalogStore::create_category`](crow_core::ports::CatalogStore::create_category):
/// `Conflict` when the name exists in the org, else `Invalid` (field `parent`) when the parent
/// does not exist; an empty name is `Invalid` (field `name`).
pub async fn create_category<S: Sql + ?Sized>(db: &S, org_id: &str, category: &Category) -> Result<(), StoreError> {
    let c = category;
    if c.name.is_empty() {
        return Err(StoreError::invalid("name", "empty category name"));
    }
    for _ in 0..TRIES {
        let done = db
            .execute(
                Stmt::new(
                    "INSERT OR IGNORE INTO categories (org_id, name, parent, created_at) SELECT ?1, ?2, ?3, ?4 \
                     WHERE ?3 IS NULL OR EXISTS (SELECT 1 FROM categories WHERE org_id = ?1 AND name = ?3)",
                )
                .bind(org_id)
                .bind(&c.name)
                .bind(c.parent.as_deref())
                .bind(c.created_at),
            )
            .await?;
        if done.changes > 0 {
            return Ok(());
        }
        let row = db
            .query_one(
                Stmt::new(
                    "SELECT EXISTS (SELECT 1 FROM categories WHERE org_id = ?1 AND name = ?2) AS name_taken, \
                     EXISTS (SELECT 1 FROM categories WHERE org_id = ?1 AND name = ?3) AS parent_found",
                )
                .bind(org_id)
                .bind(&c.name)
                .bind(c.parent.as_deref()),
            )
            .await?
            .ok_or_else(|| StoreError::Internal("create category: no row".into()))?;
        if row.bool(0)? {
            return Err(StoreError::Conflict(format!("a category named {:?} exists", c.name)));
        }
        if let Some(parent) = &c.parent
            && !row.bool(1)?
        {
            return Err(StoreError::invalid("parent", format!("no category named {parent:?}")));
        }
    }
    Err(changing(&c.name))
}

fn changing(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "category {name:?} kept changing while it was written; try again"
    ))
}

/// [`CatalogStore::get_category`](crow_core::ports::CatalogStore::get_category).
pub async fn get_category<S: Sql + ?Sized>(db: &S, org_id: &str, name: &str) -> Result<Option<Category>, StoreError> {
    db.query_one(
        Stmt::new(format!(
            "SELECT {CATEGORY_COLS} FROM categories WHERE org_id = ?1 AND name = ?2"
        ))
        .bind(org_id)
        .bind(name),
    )
    .await?
    .as_ref()
    .map(category_of)
    .transpose()
}

/// [`CatalogStore::list_categories`](crow_core::ports::CatalogStore::list_categories): by name;
/// the cursor is the last name in hex (a malformed one is `Invalid { field: "cursor" }`).
pub async fn list_categories<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<Category>, StoreError> {
    let limit = clamp_limit(limit);
    let after = decode_key_cursor(cursor)?;
    let after_clause = if after.is_some() { "name > ?3" } else { "?3 IS NULL" };
    let data = db
        .query(
            Stmt::new(format!(
                "SELECT {CATEGORY_COLS} FROM categories WHERE org_id = ?1 AND {after_clause} ORDER BY name LIMIT ?2"
            ))
            .bind(org_id)
            .bind(limit as i64 + 1)
            .bind(after),
        )
        .await?
        .iter()
        .map(category_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(data, limit, |c| hex_encode(&c.name)))
}

/// The walk up from the new parent `?3` of category `?2` (org `?1`): `up(n, step)`, the parent
/// at step 0, then each found node's parent. It stops at a root, at a missing node, at `?2`
/// itself (a cycle) and after [`MAX_DEPTH`] steps.
fn walk_up_cte() -> String {
    format!(
        "WITH RECURSIVE up(n, step) AS (SELECT ?3, 0 UNION ALL \
         SELECT c.parent, up.step + 1 FROM up JOIN categories AS c ON c.org_id = ?1 AND c.name = up.n \
         WHERE up.n <> ?2 AND c.parent IS NOT NULL AND up.step < {MAX_DEPTH}) "
    )
}

/// [`CatalogStore::set_category_parent`](crow_core::ports::CatalogStore::set_category_parent):
/// moves a category under `parent` (to the top with `None`); `None` when the org has no such
/// category. `Invalid` (field `parent`) when the parent, or a category on the way up from it,
/// does not exist, or when it is the category itself or one of its descendants (a cycle).
pub async fn set_category_parent<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    name: &str,
    parent: Option<&str>,
) -> Result<Option<Category>, StoreError> {
    let cte = walk_up_cte();
    for _ in 0..TRIES {
        // Moved only when the walk up from the new parent meets neither the category, nor a
        // missing category, nor the depth limit.
        let done = db
            .execute(
                Stmt::new(format!(
                    "{cte}UPDATE categories SET parent = ?3 WHERE org_id = ?1 AND name = ?2 AND (?3 IS NULL OR \
                     NOT EXISTS (SELECT 1 FROM up WHERE up.n = ?2 OR up.step >= {MAX_DEPTH} OR NOT EXISTS \
                     (SELECT 1 FROM categories AS p WHERE p.org_id = ?1 AND p.name = up.n))) \
                     RETURNING name AS cat_name, parent AS cat_parent, created_at AS cat_created_at"
                ))
                .bind(org_id)
                .bind(name)
                .bind(parent),
            )
            .await?;
        if let Some(row) = done.rows.first() {
            return category_of(row).map(Some);
        }
        // Why not: the category is missing, or the walk shows the refusal.
        let rows = db
            .query(
                Stmt::new(format!(
                    "{cte}SELECT up.n, up.step, \
                     EXISTS (SELECT 1 FROM categories AS p WHERE p.org_id = ?1 AND p.name = up.n) AS found, \
                     EXISTS (SELECT 1 FROM categories AS s WHERE s.org_id = ?1 AND s.name = ?2) AS own \
                     FROM up ORDER BY up.step"
                ))
                .bind(org_id)
                .bind(name)
                .bind(parent),
            )
            .await?;
        if !rows.first().map(|r| r.bool(3)).transpose()?.unwrap_or(false) {
            return Ok(None);
        }
        if let Some(parent) = parent {
            for r in &rows {
                let n = r.text(0)?;
                if n == name {
                    return Err(StoreError::invalid(
                        "parent",
                        format!("{parent:?} is {name:?} itself or one of its subcategories: that would make a cycle"),
                    ));
                }
                if !r.bool(2)? {
                    return Err(StoreError::invalid("parent", format!("no category named {n:?}")));
                }
                if r.i64(1)? >= MAX_DEPTH {
                    return Err(StoreError::Internal("category tree too deep".into()));
                }
            }
        }
    }
    Err(changing(name))
}

/// [`CatalogStore::delete_category`](crow_core::ports::CatalogStore::delete_category): `false`
/// when the org has no such category; `Conflict` while subcategories or products name it.
pub async fn delete_category<S: Sql + ?Sized>(db: &S, org_id: &str, name: &str) -> Result<bool, StoreError> {
    for _ in 0..TRIES {
        let done = db
            .execute(
                Stmt::new(
                    "DELETE FROM categories WHERE org_id = ?1 AND name = ?2 \
                     AND NOT EXISTS (SELECT 1 FROM categories AS c WHERE c.org_id = ?1 AND c.parent = ?2) \
                     AND NOT EXISTS (SELECT 1 FROM products AS p WHERE p.org_id = ?1 AND p.category = ?2)",
                )
                .bind(org_id)
                .bind(name),
            )
            .await?;
        if done.changes > 0 {
            return Ok(true);
        }
        let row = db
            .query(
                Stmt::new(
                    "SELECT EXISTS (SELECT 1 FROM categories WHERE org_id = ?1 AND name = ?2) AS found, \
                     (SELECT count(*) FROM categories WHERE org_id = ?1 AND parent = ?2) AS children, \
                     (SELECT count(*) FROM products WHERE org_id = ?1 AND category = ?2) AS products",
                )
                .bind(org_id)
                .bind(name),
            )
            .await?;
        let row = row
            .first()
            .ok_or_else(|| StoreError::Internal("delete category: no row".into()))?;
        if !row.bool(0)? {
            return Ok(false);
        }
        let (children, products) = (row.i64(1)?, row.i64(2)?);
        if children > 0 || products > 0 {
            return Err(StoreError::Conflict(format!(
                "category {name:?} is still used by {children} subcategories and {products} products; \
                 move or delete them first"
            )));
        }
    }
    Err(changing(name))
}

/// The key (sku, category name) a hex cursor of a by-key listing stands for.
fn decode_key_cursor(cursor: Option<&str>) -> Result<Option<String>, StoreError> {
    cursor
        .map(|c| hex_decode(c).ok_or_else(|| StoreError::invalid("cursor", "not a cursor returned by this store")))
        .transpose()
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::{SqliteStore, StoreConfig};

    const ORG: &str = "org_1";

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        (dir, store)
    }

    fn product(sku: &str, name: &str, price: i64, category: Option<&str>, at: Millis) -> Product {
        Product {
            id: format!("prd_{sku}"),
            org_id: "ignored".into(),
            sku: sku.into(),
            name: name.into(),
            brand: None,
            category: category.map(Into::into),
            price_cents: Some(price),
            currency: Some("EUR".into()),
            url: None,
            description: Some("it's \"quoted\" \\ é".into()),
            updated_at: at,
        }
    }

    fn category(name: &str, parent: Option<&str>) -> Category {
        Category {
            name: name.into(),
            parent: parent.map(Into::into),
            created_at: 1,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_name_prefix_matches_like_beyond_d1s_pattern_cap() {
        let (_dir, db) = open();
        let long = "Trailrunner Ultra Storm 50% Waterproof_Edition \\ extra long name beyond fifty bytes";
        let names = [
            long,
            "trailrunner ultra storm 50% waterproof_edition \\ EXTRA LONG NAME beyond fifty bytes!",
            "Trailrunner Ultra Storm 50x Waterproof_Edition",
            "Éclair Ünïcode",
            "éclair ünïcode",
            "Storm_",
            "StormX",
            "",
        ];
        let products: Vec<Product> = names
            .iter()
            .enumerate()
            .map(|(i, n)| product(&format!("sku{i}"), n, 1, None, 1))
            .collect();
        upsert_products(&db, ORG, &products).await.unwrap();
        let prefixes = [
            &long[..70],
            "TRAILRUNNER ULTRA STORM 50% WATERPROOF_EDITION \\ EXTRA LONG",
            "Trailrunner Ultra Storm 50",
            "Éclair",
            "ÉCLAIR",
            "éc",
            "Storm_",
            "storm%",
            "",
            "nothing matches this prefix at all, however long it happens to be",
        ];
        for prefix in prefixes {
            let query = ProductQuery {
                name_prefix: Some(prefix.into()),
                limit: 1000,
                ..ProductQuery::default()
            };
            let got: Vec<String> = query_products(&db, ORG, &query)
                .await
                .unwrap()
                .data
                .into_iter()
                .map(|p| p.sku)
                .collect();
            let escaped = prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let want: Vec<String> = db
                .query(
                    Stmt::new("SELECT sku FROM products WHERE org_id = ?1 AND name LIKE ?2 ESCAPE '\\' ORDER BY sku")
                        .bind(ORG)
                        .bind(format!("{escaped}%")),
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.text(0).unwrap())
                .collect();
            assert_eq!(got, want, "prefix {prefix:?}");
            let by_core: Vec<String> = products
                .iter()
                .filter(|p| query.matches(p))
                .map(|p| p.sku.clone())
                .collect();
            assert_eq!(got, by_core, "prefix {prefix:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunked_upserts_and_imports_count_like_the_sequential_code() {
        let (_dir, db) = open();
        let first = vec![
            product("a", "A", 1, Some("Shoes"), 10),
            product("b", "B", 1, Some("Shoes"), 20),
            product("c", "C", 1, Some("Hats"), 30),
        ];
        assert_eq!(upsert_chunked(&db, ORG, &first, 64).await.unwrap(), 3);
        let shoes = get_category(&db, ORG, "Shoes").await.unwrap().unwrap();
        assert_eq!(shoes.created_at, 10, "the first product naming a category dates it");
        // Only `updated_at` moves: nothing changes, the stored row stays as it was.
        let recrawl: Vec<Product> = first
            .iter()
            .map(|p| Product {
                updated_at: 99,
                ..p.clone()
            })
            .collect();
        assert_eq!(upsert_chunked(&db, ORG, &recrawl, 64).await.unwrap(), 0);
        assert_eq!(get_product(&db, ORG, "prd_a").await.unwrap().unwrap().updated_at, 10);

        // A sku given twice sees its first occurrence; an unchanged product creates no category.
        let import = vec![
            product("a", "A", 2, None, 40),            // updated
            product("a", "A", 2, Some("Ignored"), 41), // updated again (category differs)
            product("b", "B", 1, Some("Shoes"), 42),   // unchanged
            product("d", "D", 1, Some("Socks"), 43),   // inserted
            product("d", "D", 1, Some("Socks"), 44),   // unchanged (same as the one before)
            product("e", "E", 1, None, 45),            // inserted
            product("e", "E", 3, None, 46),            // updated
        ];
        let out = import_chunked(&db, ORG, &import, 64).await.unwrap();
        assert_eq!((out.inserted, out.updated, out.unchanged), (2, 3, 2));
        assert_eq!(out.changed, ["prd_a", "prd_a", "prd_d", "prd_e", "prd_e"]);
        let a = get_product(&db, ORG, "prd_a").await.unwrap().unwrap();
        assert_eq!((a.category.as_deref(), a.updated_at), (Some("Ignored"), 41));
        assert_eq!(
            get_product(&db, ORG, "prd_e").await.unwrap().unwrap().price_cents,
            Some(3)
        );
        assert_eq!(get_product(&db, ORG, "prd_b").await.unwrap().unwrap().updated_at, 20);
        // Idempotent: the same import again changes nothing.
        let again = import_chunked(&db, ORG, &import[..1], 64).await.unwrap();
        assert_eq!((again.inserted, again.updated, again.unchanged), (0, 1, 0));
        let last: Vec<Product> = vec![import[1].clone(), import[3].clone(), import[6].clone()];
        let again = import_chunked(&db, ORG, &last, 64).await.unwrap();
        assert_eq!((again.inserted, again.updated, again.unchanged), (0, 1, 2));
        assert!(again.changed == ["prd_a"]);
        let version = catalog_version(&db, ORG).await.unwrap();
        assert!(version.starts_with("5:"), "{version}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn category_writes_say_why_they_were_refused() {
        let (_dir, db) = open();
        create_category(&db, ORG, &category("Top", None)).await.unwrap();
        // The name is checked before the parent.
        let err = create_category(&db, ORG, &category("Top", Some("Missing")))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let err = create_category(&db, ORG, &category("Self", Some("Self")))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid { field, .. } if field == "parent"),
            "{err}"
        );

        // A dangling parent on the way up is named.
        db.execute(Stmt::new(
            "INSERT INTO categories (org_id, name, parent, created_at) VALUES ('org_1', 'Orphan', 'Gone', 1)",
        ))
        .await
        .unwrap();
        let err = set_category_parent(&db, ORG, "Top", Some("Orphan")).await.unwrap_err();
        assert!(err.to_string().contains("\"Gone\""), "{err}");
        assert_eq!(
            set_category_parent(&db, ORG, "Nope", Some("Orphan")).await.unwrap(),
            None
        );

        // A replace that finds no product creates no category.
        assert!(
            !replace_product(&db, ORG, &product("x", "X", 1, Some("New"), 1))
                .await
                .unwrap()
        );
        assert_eq!(get_category(&db, ORG, "New").await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_walk_up_stops_at_the_depth_limit() {
        let (_dir, db) = open();
        // c0 is a root; c{i} is under c{i-1}, up to c10000.
        db.execute(Stmt::new(
            "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 10000) \
             INSERT INTO categories (org_id, name, parent, created_at) \
             SELECT 'org_1', 'c' || i, CASE WHEN i > 0 THEN 'c' || (i - 1) END, 1 FROM k",
        ))
        .await
        .unwrap();
        create_category(&db, ORG, &category("leaf", None)).await.unwrap();
        // 10 000 categories up from the new parent: allowed.
        let moved = set_category_parent(&db, ORG, "leaf", Some("c9999"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(moved.parent.as_deref(), Some("c9999"));
        // 10 001: too deep.
        let err = set_category_parent(&db, ORG, "leaf", Some("c10000")).await.unwrap_err();
        assert!(matches!(err, StoreError::Internal(_)), "{err}");
        // A cycle deep down is found too.
        let err = set_category_parent(&db, ORG, "c0", Some("c9000")).await.unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
        assert_eq!(get_category(&db, ORG, "c0").await.unwrap().unwrap().parent, None);
    }
}
