//! [`MemoryStore`]'s product CRUD, categories and [`ExportStore`], kept beside the rest of
//! the store (a child module sees its private state).
//!
//! Choices the contracts leave open (crow-store makes the same ones):
//! - products and categories page by sku / name (the cursor is the last one, opaque);
//! - storing a product creates its category without a parent when missing;
//! - `import_products` compares products without `updated_at`: an unchanged product keeps its
//!   stored row;
//! - exports page newest first by `(created_at, id)`; the cursor is `created_at:id`.

use std::ops::Bound;

use super::{MemoryStore, OrgData, bad_cursor, clamp_limit, decode_id_cursor, lock};
use crate::catalog::{Category, ImportOutcome, ProductQuery};
use crate::export::Export;
use crate::model::{Millis, Product};
use crate::ports::{ExportStore, NewJob, Page};
use crate::{Error, Result};

/// Two products with the same content (`updated_at` aside).
fn same_content(a: &Product, b: &Product) -> bool {
    Product {
        updated_at: 0,
        ..a.clone()
    } == Product {
        updated_at: 0,
        ..b.clone()
    }
}

fn ensure_category(data: &mut OrgData, category: Option<&str>, at: Millis) {
    if let Some(c) = category {
        data.categories.entry(c.to_owned()).or_insert_with(|| Category {
            name: c.to_owned(),
            parent: None,
            created_at: at,
        });
    }
}

impl OrgData {
    /// Creates the categories products name (called by `upsert_products`).
    pub(super) fn ensure_categories(&mut self, products: &[Product]) {
        for p in products {
            ensure_category(self, p.category.as_deref(), p.updated_at);
        }
    }
}

impl MemoryStore {
    pub(super) fn mem_get_product(&self, org_id: &str, id: &str) -> Option<Product> {
        let inner = lock(&self.inner);
        inner.data.get(org_id)?.products.values().find(|p| p.id == id).cloned()
    }

    pub(super) fn mem_query_products(&self, org_id: &str, q: &ProductQuery) -> Result<Page<Product>> {
        let inner = lock(&self.inner);
        let limit = if q.limit == 0 { 50 } else { clamp_limit(q.limit) };
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Page {
                data: Vec::new(),
                next_cursor: None,
            });
        };
        let start = match q.cursor.as_deref() {
            Some(c) => Bound::Excluded(c.strip_prefix('p').ok_or_else(bad_cursor)?),
            None => Bound::Unbounded,
        };
        let mut rows: Vec<&Product> = data
            .products
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(_, p)| p)
            .filter(|p| q.matches(p))
            .take(limit + 1)
            .collect();
        let next_cursor = (rows.len() > limit).then(|| format!("p{}", rows[limit - 1].sku));
        rows.truncate(limit);
        Ok(Page {
            data: rows.into_iter().cloned().collect(),
            next_cursor,
        })
    }

    pub(super) fn mem_create_product(&self, org_id: &str, product: &Product) -> Result<()> {
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        if data.products.contains_key(&product.sku) {
            return Err(Error::Conflict(format!("a product with sku {:?} exists", product.sku)));
        }
        let mut p = product.clone();
        p.org_id = org_id.to_owned();
        ensure_category(data, p.category.as_deref(), p.updated_at);
        data.products.insert(p.sku.clone(), p);
        data.catalog_changes += 1;
        Ok(())
    }

    pub(super) fn mem_replace_product(&self, org_id: &str, product: &Product) -> Result<bool> {
        let mut inner = lock(&self.inner);
        let Some(data) = inner.data.get_mut(org_id) else {
            return Ok(false);
        };
        let Some(old_sku) = data
            .products
            .values()
            .find(|p| p.id == product.id)
            .map(|p| p.sku.clone())
        else {
            return Ok(false);
        };
        if old_sku != product.sku && data.products.contains_key(&product.sku) {
            return Err(Error::Conflict(format!("a product with sku {:?} exists", product.sku)));
        }
        data.products.remove(&old_sku);
        let mut p = product.clone();
        p.org_id = org_id.to_owned();
        ensure_category(data, p.category.as_deref(), p.updated_at);
        data.products.insert(p.sku.clone(), p);
        data.catalog_changes += 1;
        Ok(true)
    }

    pub(super) fn mem_delete_product(&self, org_id: &str, id: &str) -> bool {
        let mut inner = lock(&self.inner);
        let Some(data) = inner.data.get_mut(org_id) else {
            return false;
        };
        let Some(sku) = data.products.values().find(|p| p.id == id).map(|p| p.sku.clone()) else {
            return false;
        };
        data.products.remove(&sku);
        data.catalog_changes += 1;
        true
    }

    pub(super) fn mem_import_products(&self, org_id: &str, products: &[Product]) -> Result<ImportOutcome> {
        for (i, p) in products.iter().enumerate() {
            if p.sku.is_empty() {
                return Err(Error::invalid(format!("products[{i}].sku"), "empty sku"));
            }
        }
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        let mut out = ImportOutcome::default();
        for p in products {
            let mut p = p.clone();
            p.org_id = org_id.to_owned();
            match data.products.get(&p.sku) {
                Some(old) if same_content(old, &p) => {
                    out.unchanged += 1;
                    continue;
                }
                Some(_) => out.updated += 1,
                None => out.inserted += 1,
            }
            out.changed.push(p.id.clone());
            ensure_category(data, p.category.as_deref(), p.updated_at);
            data.products.insert(p.sku.clone(), p);
        }
        data.catalog_changes += out.changed.len() as u64;
        Ok(out)
    }

    pub(super) fn mem_create_category(&self, org_id: &str, category: &Category) -> Result<()> {
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        if data.categories.contains_key(&category.name) {
            return Err(Error::Conflict(format!("a category named {:?} exists", category.name)));
        }
        if let Some(parent) = &category.parent
            && !data.categories.contains_key(parent)
        {
            return Err(Error::invalid("parent", format!("no category named {parent:?}")));
        }
        data.categories.insert(category.name.clone(), category.clone());
        Ok(())
    }

    pub(super) fn mem_get_category(&self, org_id: &str, name: &str) -> Option<Category> {
        lock(&self.inner).data.get(org_id)?.categories.get(name).cloned()
    }

    pub(super) fn mem_list_categories(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Category>> {
        let inner = lock(&self.inner);
        let limit = if limit == 0 { 50 } else { clamp_limit(limit) };
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Page {
                data: Vec::new(),
                next_cursor: None,
            });
        };
        let start = match cursor {
            Some(c) => Bound::Excluded(c.strip_prefix('c').ok_or_else(bad_cursor)?),
            None => Bound::Unbounded,
        };
        let mut rows: Vec<&Category> = data
            .categories
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(_, c)| c)
            .take(limit + 1)
            .collect();
        let next_cursor = (rows.len() > limit).then(|| format!("c{}", rows[limit - 1].name));
        rows.truncate(limit);
        Ok(Page {
            data: rows.into_iter().cloned().collect(),
            next_cursor,
        })
    }

    pub(super) fn mem_set_category_parent(
        &self,
        org_id: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<Option<Category>> {
        let mut inner = lock(&self.inner);
        let Some(data) = inner.data.get_mut(org_id) else {
            return Ok(None);
        };
        if !data.categories.contains_key(name) {
            return Ok(None);
        }
        if let Some(parent) = parent {
            // Walk up from the new parent: meeting `name` means a cycle.
            let mut cur = Some(parent.to_owned());
            let mut steps = 0;
            while let Some(c) = cur {
                if c == name {
                    return Err(Error::invalid(
                        "parent",
                        format!("{parent:?} is {name:?} itself or one of its subcategories: that would make a cycle"),
                    ));
                }
                let Some(node) = data.categories.get(&c) else {
                    return Err(Error::invalid("parent", format!("no category named {c:?}")));
                };
                steps += 1;
                if steps > 10_000 {
                    return Err(Error::backend("category tree too deep"));
                }
                cur = node.parent.clone();
            }
        }
        let cat = data.categories.get_mut(name).expect("checked above");
        cat.parent = parent.map(str::to_owned);
        Ok(Some(cat.clone()))
    }

    pub(super) fn mem_delete_category(&self, org_id: &str, name: &str) -> Result<bool> {
        let mut inner = lock(&self.inner);
        let Some(data) = inner.data.get_mut(org_id) else {
            return Ok(false);
        };
        if !data.categories.contains_key(name) {
            return Ok(false);
        }
        let children = data
            .categories
            .values()
            .filter(|c| c.parent.as_deref() == Some(name))
            .count();
        let products = data
            .products
            .values()
            .filter(|p| p.category.as_deref() == Some(name))
            .count();
        if children > 0 || products > 0 {
            return Err(Error::Conflict(format!(
                "category {name:?} is still used by {children} subcategories and {products} products; move or delete them first"
            )));
        }
        data.categories.remove(name);
        Ok(true)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl ExportStore for MemoryStore {
    async fn create_export(&self, org_id: &str, export: &Export, follow_up: Vec<NewJob>) -> Result<()> {
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        if data.exports.contains_key(&export.id) {
            return Err(Error::Conflict(format!("an export with id {:?} exists", export.id)));
        }
        let mut e = export.clone();
        e.org_id = org_id.to_owned();
        data.exports.insert(e.id.clone(), e);
        inner.enqueue(follow_up, export.created_at);
        Ok(())
    }

    async fn get_export(&self, org_id: &str, id: &str) -> Result<Option<Export>> {
        Ok(lock(&self.inner)
            .data
            .get(org_id)
            .and_then(|d| d.exports.get(id))
            .cloned())
    }

    async fn list_exports(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Export>> {
        let limit = if limit == 0 { 50 } else { clamp_limit(limit) };
        let after = cursor.map(decode_id_cursor).transpose()?;
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Page {
                data: Vec::new(),
                next_cursor: None,
            });
        };
        let mut rows: Vec<&Export> = data
            .exports
            .values()
            .filter(|e| {
                after
                    .as_ref()
                    .is_none_or(|(t, id)| (e.created_at, e.id.as_str()) < (*t, id.as_str()))
            })
            .collect();
        rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(super::id_page(rows, limit, |e| (e.created_at, e.id.as_str())))
    }

    async fn update_export(&self, org_id: &str, export: &Export) -> Result<bool> {
        let mut inner = lock(&self.inner);
        let Some(stored) = inner.data.get_mut(org_id).and_then(|d| d.exports.get_mut(&export.id)) else {
            return Ok(false);
        };
        stored.status = export.status;
        stored.started_at = export.started_at;
        stored.finished_at = export.finished_at;
        stored.rows = export.rows;
        stored.bytes = export.bytes;
        stored.error.clone_from(&export.error);
        stored.key.clone_from(&export.key);
        Ok(true)
    }
}
