//! [`CatalogStore`] over SQLite: the statements live in [`crate::sql::catalog`].

use crow_core::catalog::{Category, ImportOutcome, ProductQuery};
use crow_core::model::{CatalogTerm, Millis, Product};
use crow_core::ports::{CatalogStore, Page};

use super::SqliteStore;
use crate::sql::catalog as sql;

#[async_trait::async_trait]
impl CatalogStore for SqliteStore {
    async fn upsert_products(&self, org_id: &str, products: &[Product]) -> crow_core::Result<usize> {
        Ok(sql::upsert_products(self, org_id, products).await?)
    }

    async fn list_products(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> crow_core::Result<Page<Product>> {
        Ok(sql::list_products(self, org_id, limit, cursor).await?)
    }

    async fn add_terms(&self, org_id: &str, terms: &[CatalogTerm], now: Millis) -> crow_core::Result<usize> {
        Ok(sql::add_terms(self, org_id, terms, now).await?)
    }

    async fn list_terms(&self, org_id: &str) -> crow_core::Result<Vec<CatalogTerm>> {
        Ok(sql::list_terms(self, org_id).await?)
    }

    async fn catalog_version(&self, org_id: &str) -> crow_core::Result<String> {
        Ok(sql::catalog_version(self, org_id).await?)
    }

    async fn get_product(&self, org_id: &str, id: &str) -> crow_core::Result<Option<Product>> {
        Ok(sql::get_product(self, org_id, id).await?)
    }

    async fn query_products(&self, org_id: &str, query: &ProductQuery) -> crow_core::Result<Page<Product>> {
        Ok(sql::query_products(self, org_id, query).await?)
    }

    async fn create_product(&self, org_id: &str, product: &Product) -> crow_core::Result<()> {
        Ok(sql::create_product(self, org_id, product).await?)
    }

    async fn replace_product(&self, org_id: &str, product: &Product) -> crow_core::Result<bool> {
        Ok(sql::replace_product(self, org_id, product).await?)
    }

    async fn delete_product(&self, org_id: &str, id: &str) -> crow_core::Result<bool> {
        Ok(sql::delete_product(self, org_id, id).await?)
    }

    async fn import_products(&self, org_id: &str, products: &[Product]) -> crow_core::Result<ImportOutcome> {
        Ok(sql::import_products(self, org_id, products).await?)
    }

    async fn create_category(&self, org_id: &str, category: &Category) -> crow_core::Result<()> {
        Ok(sql::create_category(self, org_id, category).await?)
    }

    async fn get_category(&self, org_id: &str, name: &str) -> crow_core::Result<Option<Category>> {
        Ok(sql::get_category(self, org_id, name).await?)
    }

    async fn list_categories(
        &self,
        org_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> crow_core::Result<Page<Category>> {
        Ok(sql::list_categories(self, org_id, limit, cursor).await?)
    }

    async fn set_category_parent(
        &self,
        org_id: &str,
        name: &str,
        parent: Option<&str>,
    ) -> crow_core::Result<Option<Category>> {
        Ok(sql::set_category_parent(self, org_id, name, parent).await?)
    }

    async fn delete_category(&self, org_id: &str, name: &str) -> crow_core::Result<bool> {
        Ok(sql::delete_category(self, org_id, name).await?)
    }
}
