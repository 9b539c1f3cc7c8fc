//! Products and categories: CRUD and the all-or-nothing bulk import (CSV or JSON).
//!
//! - A product's id derives from its org and sku ([`crate::catalog::product_id`]), so the sku
//!   never changes (a PATCH cannot name it) and an import updates the products it names.
//! - PATCH bodies are JSON merge patches: an absent member is unchanged, `null` clears an
//!   optional one.
//! - Products stay searchable: with vector indexes and an embedder, a created, changed or
//!   imported product is (re-)embedded into the product index and a deleted one removed from
//!   it. The catalog is the source of truth: an index failure is logged, the answer stands.
//! - Categories are identified by name; a parent must exist and may not be the category or
//!   one of its subcategories. A category still used by subcategories or products cannot be
//!   deleted (`409`).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::openapi::{Denied, PageParams, ProblemDetails};
use super::problem::{MAX_BODY, Problem, backend, bad_param, invalid_body, json_body, limit, not_found, one, page};
use super::{Answer, Api, Call};
use crate::catalog_import::{self, ImportError, ImportFormat, NewProduct, RowError, check_product};
use crate::http::HttpResponse;
use crow_core::catalog::{Category, MAX_CATEGORY_NAME, ProductQuery};
use crow_core::model::Product;
use crow_core::ports::Page;
use crow_core::vector::IndexKind;

/// `PATCH /api/v1/products/{id}`: the members to change (`null` clears an optional one). The
/// sku cannot change.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProductPatch {
    /// New display name (1 to 500 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 500)]
    name: Option<String>,
    /// New brand (1 to 200 characters); `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200)]
    brand: Option<Option<String>>,
    /// New category (1 to 200 characters; created when missing); `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200)]
    category: Option<Option<String>>,
    /// New price in cents (0 or more); `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    // The bound as a float: utoipa keeps integer bounds in `isize`, 32 bits in the wasm32 Worker.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10_000_000_000_000.0)]
    price_cents: Option<Option<i64>>,
    /// New ISO 4217 currency (three uppercase letters); `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, pattern = "^[A-Z]{3}$")]
    currency: Option<Option<String>>,
    /// New product page (an http(s) URL without spaces); `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^https?://\\S+$")]
    url: Option<Option<String>>,
    /// New description (at most 10 000 characters); `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    description: Option<Option<String>>,
}

/// `POST /api/v1/products/import` with `Content-Type: application/json`: an array of
/// products, or an object holding one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum ProductImport {
    /// The products.
    List(Vec<NewProduct>),
    /// The products, wrapped.
    Wrapped(ProductImportObject),
}

/// `{"products": [...]}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct ProductImportObject {
    /// The products (at most 10 000).
    #[schema(max_items = 10000)]
    products: Vec<NewProduct>,
}

/// What an import did: every product is counted once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ImportResult {
    /// Products whose sku was new.
    inserted: usize,
    /// Products that existed and changed.
    updated: usize,
    /// Products that existed unchanged.
    unchanged: usize,
}

/// An import refused because of bad rows: nothing was stored (the schema of that answer).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct ImportProblem {
    /// `/problems/invalid_import`.
    #[serde(rename = "type")]
    kind: String,
    /// Short summary.
    title: String,
    /// 400.
    status: u16,
    /// How many rows are bad, and what to do.
    detail: String,
    /// The first 100 bad rows' problems, by row.
    errors: Vec<RowError>,
    /// How many problems there are in all.
    error_count: usize,
}

/// `POST /api/v1/categories`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCategory {
    /// The name (1 to 200 characters), unique in the org.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// The parent category's name; it must exist.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    parent: Option<String>,
}

/// `PATCH /api/v1/categories/{id}`: a new parent (it must exist and not be the category or one
/// of its subcategories), or `null` to make it top-level. The name cannot change.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CategoryPatch {
    /// The new parent's name; `null` for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200)]
    parent: Option<Option<String>>,
}

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn no_content() -> HttpResponse {
    HttpResponse {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Percent-encodes a path segment (everything but RFC 3986's unreserved characters).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A 400 listing every field at fault.
fn invalid_fields(errors: Vec<catalog_import::FieldError>) -> HttpResponse {
    let detail = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.reason))
        .collect::<Vec<_>>()
        .join("; ");
    Problem::new(400, "invalid_body", "Invalid body", detail)
        .with(json!({"errors": errors}))
        .response()
}

/// A query parameter the store refuses (a cursor it did not give) is a 400 naming it.
fn param_or_backend(e: crow_core::Error) -> HttpResponse {
    match e {
        crow_core::Error::Invalid { field, reason } => bad_param(&field, &reason),
        e => backend(e),
    }
}

/// Embeds products into the product index, when the API has one (failures are logged).
async fn index(api: &Api<'_>, org: &str, products: &[Product]) {
    if let (Some(indexes), Some(embedder), false) = (api.indexes, api.embedder, products.is_empty())
        && let Err(e) = crate::search::index_products(embedder, indexes.get(IndexKind::Products), org, products).await
    {
        tracing::warn!(error = %e, count = products.len(), "products stored but not indexed");
    }
}

/// Removes a product from the product index, when the API has one (failures are logged).
async fn unindex(api: &Api<'_>, org: &str, id: &str) {
    if let Some(indexes) = api.indexes
        && let Err(e) = indexes.get(IndexKind::Products).delete(org, &[id.to_owned()]).await
    {
        tracing::warn!(error = %e, "product deleted but still indexed");
    }
}

/// The org's products by sku, with filters.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog", operation_id = "list_products",
    params(
        PageParams,
        ("category" = Option<String>, Query, description = "Only this category (exact name)"),
        ("brand" = Option<String>, Query, description = "Only this brand (exact)"),
        ("q" = Option<String>, Query, description = "Only names starting with this (ASCII case-insensitive)"),
    ),
    responses(
        (status = 200, description = "A page of products", body = Page<Product>),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_products(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let q = ProductQuery {
        limit: limit(call.req)?,
        cursor: call.query("cursor"),
        category: call.query("category"),
        brand: call.query("brand"),
        name_prefix: call.query("q").filter(|q| !q.is_empty()),
    };
    let p = api
        .store
        .query_products(call.org(), &q)
        .await
        .map_err(param_or_backend)?;
    Ok(page(&p))
}

/// Adds a product.
#[utoipa::path(post, path = "/api/v1/products", tag = "catalog", operation_id = "create_product",
    request_body = NewProduct,
    responses(
        (status = 201, description = "The new product", body = Product,
            headers(("location" = String, description = "The product's URL"))),
        (status = 400, description = "A bad body (every field at fault is listed)", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
        (status = 409, description = "The org has a product with this sku", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn create_product(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let body: NewProduct = json_body(call.req)?;
    let errors = check_product(&body);
    if !errors.is_empty() {
        return Err(invalid_fields(errors));
    }
    let product = body.into_product(call.org(), api.now);
    api.store.create_product(call.org(), &product).await.map_err(backend)?;
    index(api, call.org(), std::slice::from_ref(&product)).await;
    call.audit_target(&product.id);
    let location = format!("/api/v1/products/{}", path_segment(&product.id));
    Ok(HttpResponse::json(201, &super::render(&product)).with_header("location", location))
}

/// Adds or updates many products at once, all or nothing: `text/csv` (a header row; columns
/// `sku`, `name`, `brand`, `category`, `price` as a decimal like `12.99`, `currency`, `url`,
/// `description`) or `application/json` (an array of products or `{"products": [...]}`), up to
/// 16 MiB and 10 000 rows. Products are matched by sku. When any row is bad nothing is stored
/// and every problem is listed (the first 100), by row: 1 is the first product (CSV: the first
/// record after the header row, which is row 0).
#[utoipa::path(post, path = "/api/v1/products/import", tag = "catalog", operation_id = "import_products",
    request_body(description = "The products, as CSV or JSON", content(
        (String = "text/csv"),
        (ProductImport = "application/json"),
    )),
    responses(
        (status = 200, description = "Every product was stored", body = ImportResult),
        (status = 400, description = "Bad rows (nothing was stored)", body = ImportProblem, content_type = "application/problem+json"),
        Denied,
        (status = 413, description = "More than 16 MiB or 10 000 rows", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 415, description = "Neither text/csv nor application/json", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn import_products(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let content_type = call.req.header("content-type").unwrap_or("");
    let Some(format) = ImportFormat::from_content_type(content_type) else {
        return Err(Problem::new(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            format!("send the products as text/csv or application/json, not {content_type:?}"),
        )
        .response());
    };
    let max = MAX_BODY.min(catalog_import::MAX_BYTES);
    if call.req.body.len() > max {
        return Err(Problem::new(
            413,
            "payload_too_large",
            "Payload too large",
            format!(
                "the body is {} bytes; an import takes at most {max}",
                call.req.body.len()
            ),
        )
        .response());
    }
    let products = match catalog_import::parse(call.org(), &call.req.body, format, api.now) {
        Ok(p) => p,
        Err(ImportError::TooLarge(detail)) => {
            return Err(Problem::new(413, "payload_too_large", "Payload too large", detail).response());
        }
        Err(ImportError::Rows { errors, total }) => {
            let first = errors
                .first()
                .map(|e| format!("; first: row {}, {}: {}", e.row, e.field, e.reason));
            return Err(Problem::new(
                400,
                "invalid_import",
                "Invalid import",
                format!(
                    "{total} problem(s) in the import; nothing was stored{}",
                    first.unwrap_or_default()
                ),
            )
            .with(json!({"errors": errors, "error_count": total}))
            .response());
        }
    };
    let outcome = api
        .store
        .import_products(call.org(), &products)
        .await
        .map_err(backend)?;
    let changed: std::collections::HashSet<&str> = outcome.changed.iter().map(String::as_str).collect();
    let to_index: Vec<Product> = products
        .into_iter()
        .filter(|p| changed.contains(p.id.as_str()))
        .collect();
    index(api, call.org(), &to_index).await;
    call.audit_target("products");
    call.audit_detail(json!({
        "inserted": outcome.inserted,
        "updated": outcome.updated,
        "unchanged": outcome.unchanged,
    }));
    let result = ImportResult {
        inserted: outcome.inserted,
        updated: outcome.updated,
        unchanged: outcome.unchanged,
    };
    Ok(HttpResponse::json(200, &json!(result)))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog", operation_id = "get_product",
    params(("id" = String, Path, description = "The product id")),
    responses(
        (status = 200, description = "The product", body = Product),
        Denied,
        (status = 404, description = "No such product in the org", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_product(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    match api.store.get_product(call.org(), id).await.map_err(backend)? {
        Some(p) => Ok(one(&p)),
        None => Err(not_found("product", id)),
    }
}

/// Changes a product (a JSON merge patch: `null` clears an optional member).
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "catalog", operation_id = "update_product",
    params(("id" = String, Path, description = "The product id")),
    request_body = ProductPatch,
    responses(
        (status = 200, description = "The product as changed", body = Product),
        (status = 400, description = "A bad body (every field at fault is listed)", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
        (status = 404, description = "No such product in the org", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn update_product(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    let patch: ProductPatch = json_body(call.req)?;
    let current = api
        .store
        .get_product(call.org(), id)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("product", id))?;
    let mut next = NewProduct::from_product(&current);
    let mut fields = Vec::new();
    if let Some(name) = patch.name {
        next.name = name;
        fields.push("name");
    }
    for (name, value, slot) in [
        ("brand", patch.brand, &mut next.brand),
        ("category", patch.category, &mut next.category),
        ("currency", patch.currency, &mut next.currency),
        ("url", patch.url, &mut next.url),
        ("description", patch.description, &mut next.description),
    ] {
        if let Some(v) = value {
            *slot = v;
            fields.push(name);
        }
    }
    if let Some(v) = patch.price_cents {
        next.price_cents = v;
        fields.push("price_cents");
    }
    let errors = check_product(&next);
    if !errors.is_empty() {
        return Err(invalid_fields(errors));
    }
    let mut product = next.into_product(call.org(), api.now);
    product.id.clone_from(&current.id);
    let unchanged = Product {
        updated_at: current.updated_at,
        ..product.clone()
    } == current;
    call.audit_detail(json!({"fields": fields}));
    if unchanged {
        return Ok(one(&current));
    }
    if !api.store.replace_product(call.org(), &product).await.map_err(backend)? {
        return Err(not_found("product", id));
    }
    index(api, call.org(), std::slice::from_ref(&product)).await;
    Ok(one(&product))
}

/// Removes a product (and its search index entry).
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "catalog", operation_id = "delete_product",
    params(("id" = String, Path, description = "The product id")),
    responses(
        (status = 204, description = "Removed"),
        Denied,
        (status = 404, description = "No such product in the org", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn delete_product(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let id = call.param("id");
    if !api.store.delete_product(call.org(), id).await.map_err(backend)? {
        return Err(not_found("product", id));
    }
    unindex(api, call.org(), id).await;
    Ok(no_content())
}

/// The org's categories by name.
#[utoipa::path(get, path = "/api/v1/categories", tag = "catalog", operation_id = "list_categories",
    params(
        PageParams,
    ),
    responses(
        (status = 200, description = "A page of categories", body = Page<Category>),
        (status = 400, description = "A bad parameter", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_categories(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let cursor = call.query("cursor");
    let p = api
        .store
        .list_categories(call.org(), limit(call.req)?, cursor.as_deref())
        .await
        .map_err(param_or_backend)?;
    Ok(page(&p))
}

fn check_name(field: &str, name: &str) -> Result<(), HttpResponse> {
    let n = name.chars().count();
    if n == 0 {
        Err(invalid_body(Some(field), "must not be empty"))
    } else if n > MAX_CATEGORY_NAME {
        Err(invalid_body(
            Some(field),
            format!("is {n} characters long; at most {MAX_CATEGORY_NAME} are allowed"),
        ))
    } else {
        Ok(())
    }
}

/// Adds a category.
#[utoipa::path(post, path = "/api/v1/categories", tag = "catalog", operation_id = "create_category",
    request_body = NewCategory,
    responses(
        (status = 201, description = "The new category", body = Category,
            headers(("location" = String, description = "The category's URL"))),
        (status = 400, description = "A bad body, or a parent that does not exist", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
        (status = 409, description = "The org has a category with this name", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn create_category(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let body: NewCategory = json_body(call.req)?;
    check_name("name", &body.name)?;
    if let Some(p) = &body.parent {
        check_name("parent", p)?;
    }
    let category = Category {
        name: body.name,
        parent: body.parent,
        created_at: api.now,
    };
    api.store
        .create_category(call.org(), &category)
        .await
        .map_err(backend)?;
    call.audit_target(&category.name);
    let location = format!("/api/v1/categories/{}", path_segment(&category.name));
    Ok(HttpResponse::json(201, &super::render(&category)).with_header("location", location))
}

/// One category.
#[utoipa::path(get, path = "/api/v1/categories/{id}", tag = "catalog", operation_id = "get_category",
    params(("id" = String, Path, description = "The category name (percent-encoded)")),
    responses(
        (status = 200, description = "The category", body = Category),
        Denied,
        (status = 404, description = "No such category in the org", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_category(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let name = call.param("id");
    match api.store.get_category(call.org(), name).await.map_err(backend)? {
        Some(c) => Ok(one(&c)),
        None => Err(not_found("category", name)),
    }
}

/// Moves a category under another parent (or to the top with `"parent": null`).
#[utoipa::path(patch, path = "/api/v1/categories/{id}", tag = "catalog", operation_id = "update_category",
    params(("id" = String, Path, description = "The category name (percent-encoded)")),
    request_body = CategoryPatch,
    responses(
        (status = 200, description = "The category as changed", body = Category),
        (status = 400, description = "A bad body, a parent that does not exist, or a cycle", body = ProblemDetails, content_type = "application/problem+json"),
        Denied,
        (status = 404, description = "No such category in the org", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn update_category(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let name = call.param("id");
    let patch: CategoryPatch = json_body(call.req)?;
    let updated = match patch.parent {
        None => api.store.get_category(call.org(), name).await.map_err(backend)?,
        Some(parent) => {
            if let Some(p) = &parent {
                check_name("parent", p)?;
            }
            call.audit_detail(json!({"parent": parent}));
            api.store
                .set_category_parent(call.org(), name, parent.as_deref())
                .await
                .map_err(backend)?
        }
    };
    updated.map(|c| one(&c)).ok_or_else(|| not_found("category", name))
}

/// Removes a category that no subcategory or product uses.
#[utoipa::path(delete, path = "/api/v1/categories/{id}", tag = "catalog", operation_id = "delete_category",
    params(("id" = String, Path, description = "The category name (percent-encoded)")),
    responses(
        (status = 204, description = "Removed"),
        Denied,
        (status = 404, description = "No such category in the org", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Subcategories or products still use it", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn delete_category(api: &Api<'_>, call: &Call<'_>) -> Answer {
    let name = call.param("id");
    if !api.store.delete_category(call.org(), name).await.map_err(backend)? {
        return Err(not_found("category", name));
    }
    Ok(no_content())
}
