//! Product validation and the all-or-nothing bulk import of `POST /api/v1/products/import`:
//! pure (no I/O, wasm32-clean), so the REST API, the CLI and the Worker share one set of rules.
//!
//! - [`NewProduct`] is a product as a client sends it; [`check_product`] lists everything wrong
//!   with one (every rule is also in its OpenAPI schema); [`NewProduct::into_product`] gives it
//!   its id ([`crate::catalog::product_id`]: derived from org and sku, so a re-import updates the
//!   same product).
//! - [`parse`] reads a whole file, **CSV** (RFC 4180 with a header row; columns `sku`, `name`,
//!   `brand`, `category`, `price`, `currency`, `url`, `description`, any order, case-insensitive;
//!   `price` is a decimal like `12.99`, turned into cents; empty cells are absent values) or
//!   **JSON** (an array of [`NewProduct`] objects, or `{"products": [...]}`), and answers every
//!   product or every bad row ([`RowError`]; the first [`MAX_ERRORS`] are kept, all are counted).
//!   Rows are numbered from 1: CSV data records after the header (the header is row 0), JSON
//!   array elements. A sku repeated in the file is an error on its later rows.
//!
//! ```
//! use crow_ingest::catalog_import::{ImportFormat, parse};
//! let csv = b"sku,name,price,currency\nTR-1,\"Trail Runner, 42\",129.9,EUR\n";
//! let products = parse("org_1", csv, ImportFormat::Csv, 0).unwrap();
//! assert_eq!(products[0].price_cents, Some(12_990));
//! assert_eq!(products[0].name, "Trail Runner, 42");
//! let bad = parse("org_1", b"sku,name,price\n,X,1.999\n", ImportFormat::Csv, 0).unwrap_err();
//! assert_eq!(bad.errors().len(), 2); // no sku, and a third decimal
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crow_core::model::{Millis, Product};

/// Most rows one import takes.
pub const MAX_ROWS: usize = 10_000;
/// Largest import body, bytes (16 MiB).
pub const MAX_BYTES: usize = 16 << 20;
/// Most row errors an answer lists (all are counted).
pub const MAX_ERRORS: usize = 100;
/// Longest sku, characters.
pub const MAX_SKU: usize = 200;
/// Longest name, characters.
pub const MAX_NAME: usize = 500;
/// Longest brand or category, characters.
pub const MAX_LABEL: usize = crow_core::catalog::MAX_CATEGORY_NAME;
/// Longest URL, characters.
pub const MAX_URL: usize = 2048;
/// Longest description, characters.
pub const MAX_DESCRIPTION: usize = 10_000;
/// Largest price in cents (100 billion in major units).
pub const MAX_PRICE_CENTS: i64 = 10_000_000_000_000;

/// A product as a client sends it (`POST /api/v1/products`, JSON imports).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// Stock keeping unit, unique in the org (1 to 200 characters); the product's id derives
    /// from it, so it never changes.
    #[schema(min_length = 1, max_length = 200)]
    pub sku: String,
    /// Display name (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub name: String,
    /// Brand (1 to 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub brand: Option<String>,
    /// Category name (1 to 200 characters); created when it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub category: Option<String>,
    /// Price in minor units (cents), 0 or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // The bound as a float: utoipa keeps integer bounds in `isize`, 32 bits in the wasm32 Worker.
    #[schema(minimum = 0, maximum = 10_000_000_000_000.0)]
    pub price_cents: Option<i64>,
    /// ISO 4217 currency code: three uppercase letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// Product page: an `http` or `https` URL without spaces (at most 2048 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 2048, pattern = "^https?://\\S+$")]
    pub url: Option<String>,
    /// Description (at most 10 000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
}

impl NewProduct {
    /// The client's view of a stored product (for merging a PATCH into it).
    pub fn from_product(p: &Product) -> Self {
        NewProduct {
            sku: p.sku.clone(),
            name: p.name.clone(),
            brand: p.brand.clone(),
            category: p.category.clone(),
            price_cents: p.price_cents,
            currency: p.currency.clone(),
            url: p.url.clone(),
            description: p.description.clone(),
        }
    }

    /// The product to store (check it first with [`check_product`]).
    pub fn into_product(self, org_id: &str, now: Millis) -> Product {
        Product {
            id: crate::catalog::product_id(org_id, &self.sku),
            org_id: org_id.to_owned(),
            sku: self.sku,
            name: self.name,
            brand: self.brand,
            category: self.category,
            price_cents: self.price_cents,
            currency: self.currency,
            url: self.url,
            description: self.description,
            updated_at: now,
        }
    }
}

/// One field's problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field.
    pub field: String,
    /// What is wrong, and what to send instead.
    pub reason: String,
}

fn field_error(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// ECMAScript's `\s` (what the schema's URL pattern means by a space).
fn is_pattern_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

fn check_len(out: &mut Vec<FieldError>, field: &str, v: &str, min: usize, max: usize) {
    let n = v.chars().count();
    if n < min {
        out.push(field_error(field, "must not be empty"));
    } else if n > max {
        out.push(field_error(
            field,
            format!("is {n} characters long; at most {max} are allowed"),
        ));
    }
}

/// Everything wrong with a product, field by field (empty when it is valid).
pub fn check_product(p: &NewProduct) -> Vec<FieldError> {
    let mut out = Vec::new();
    check_len(&mut out, "sku", &p.sku, 1, MAX_SKU);
    check_len(&mut out, "name", &p.name, 1, MAX_NAME);
    if let Some(b) = &p.brand {
        check_len(&mut out, "brand", b, 1, MAX_LABEL);
    }
    if let Some(c) = &p.category {
        check_len(&mut out, "category", c, 1, MAX_LABEL);
    }
    if let Some(price) = p.price_cents
        && !(0..=MAX_PRICE_CENTS).contains(&price)
    {
        out.push(field_error(
            "price_cents",
            format!("{price} is not a price in cents from 0 to {MAX_PRICE_CENTS}"),
        ));
    }
    if let Some(c) = &p.currency
        && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
    {
        out.push(field_error(
            "currency",
            format!("{c:?} is not an ISO 4217 code: three uppercase letters like EUR"),
        ));
    }
    if let Some(u) = &p.url {
        let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
        match rest {
            Some(r) if !r.is_empty() && !r.chars().any(is_pattern_space) => {
                check_len(&mut out, "url", u, 1, MAX_URL);
            }
            _ => out.push(field_error(
                "url",
                format!("{u:?} is not an http(s) URL without spaces"),
            )),
        }
    }
    if let Some(d) = &p.description {
        check_len(&mut out, "description", d, 0, MAX_DESCRIPTION);
    }
    out
}

/// A row of an import that cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RowError {
    /// The row: 1 for the first product (CSV: the first record after the header, which is
    /// row 0; JSON: the first element).
    pub row: usize,
    /// The field (or column) at fault; `row` when the row as a whole is.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Why an import was refused: nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// More than [`MAX_ROWS`] rows or [`MAX_BYTES`] bytes.
    TooLarge(String),
    /// Bad rows: the first [`MAX_ERRORS`], and how many there are in all.
    Rows {
        /// The first errors, in row order.
        errors: Vec<RowError>,
        /// Every error found.
        total: usize,
    },
}

impl ImportError {
    /// The row errors listed (none for `TooLarge`).
    pub fn errors(&self) -> &[RowError] {
        match self {
            ImportError::TooLarge(_) => &[],
            ImportError::Rows { errors, .. } => errors,
        }
    }
}

/// The format of an import body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// `text/csv`.
    Csv,
    /// `application/json`.
    Json,
}

impl ImportFormat {
    /// The format a `Content-Type` names (parameters such as `charset` are ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match media.as_str() {
            "text/csv" | "application/csv" => Some(ImportFormat::Csv),
            "application/json" => Some(ImportFormat::Json),
            _ => None,
        }
    }
}

/// Collects row errors, keeping the first [`MAX_ERRORS`].
#[derive(Default)]
struct Errors {
    kept: Vec<RowError>,
    total: usize,
}

impl Errors {
    fn push(&mut self, row: usize, field: &str, reason: impl Into<String>) {
        self.total += 1;
        if self.kept.len() < MAX_ERRORS {
            self.kept.push(RowError {
                row,
                field: field.to_owned(),
                reason: reason.into(),
            });
        }
    }

    fn extend(&mut self, row: usize, errors: Vec<FieldError>) {
        for e in errors {
            self.push(row, &e.field, e.reason);
        }
    }
}

/// Parses and validates a whole import; every product, or every problem (nothing partial).
pub fn parse(org_id: &str, bytes: &[u8], format: ImportFormat, now: Millis) -> Result<Vec<Product>, ImportError> {
    if bytes.len() > MAX_BYTES {
        return Err(ImportError::TooLarge(format!(
            "the body is {} bytes; an import takes at most {MAX_BYTES}",
            bytes.len()
        )));
    }
    let mut errors = Errors::default();
    let rows = match format {
        ImportFormat::Csv => csv_rows(bytes, &mut errors)?,
        ImportFormat::Json => json_rows(bytes, &mut errors)?,
    };
    let mut seen = std::collections::HashMap::new();
    let mut products = Vec::with_capacity(rows.len());
    for (row, p) in rows {
        let problems = check_product(&p);
        if !problems.is_empty() {
            errors.extend(row, problems);
            continue;
        }
        if let Some(first) = seen.insert(p.sku.clone(), row) {
            seen.insert(p.sku.clone(), first);
            errors.push(row, "sku", format!("sku {:?} is already on row {first}", p.sku));
            continue;
        }
        products.push(p.into_product(org_id, now));
    }
    if errors.total > 0 {
        errors.kept.sort_by_key(|e| e.row);
        return Err(ImportError::Rows {
            errors: errors.kept,
            total: errors.total,
        });
    }
    Ok(products)
}

fn too_many_rows() -> ImportError {
    ImportError::TooLarge(format!("an import takes at most {MAX_ROWS} rows; split the file"))
}

/// The CSV columns an import reads.
pub const CSV_COLUMNS: [&str; 8] = [
    "sku",
    "name",
    "brand",
    "category",
    "price",
    "currency",
    "url",
    "description",
];

fn csv_rows(bytes: &[u8], errors: &mut Errors) -> Result<Vec<(usize, NewProduct)>, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|s| s.to_ascii_lowercase()).collect(),
        Err(e) => {
            errors.push(0, "header", format!("the header row cannot be read: {e}"));
            return Ok(Vec::new());
        }
    };
    let mut bad_header = false;
    for (i, h) in header.iter().enumerate() {
        if !CSV_COLUMNS.contains(&h.as_str()) {
            errors.push(
                0,
                "header",
                format!(
                    "unknown column {:?} (column {}); the columns are {}",
                    h,
                    i + 1,
                    CSV_COLUMNS.join(", ")
                ),
            );
            bad_header = true;
        } else if header[..i].contains(h) {
            errors.push(0, "header", format!("column {h:?} appears twice"));
            bad_header = true;
        }
    }
    for required in ["sku", "name"] {
        if !header.iter().any(|h| h == required) {
            errors.push(0, "header", format!("the header has no {required:?} column"));
            bad_header = true;
        }
    }
    if bad_header {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 1;
        if row > MAX_ROWS {
            return Err(too_many_rows());
        }
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(row, "row", format!("cannot be read: {e}"));
                continue;
            }
        };
        if rec.len() != header.len() {
            errors.push(
                row,
                "row",
                format!("has {} fields; the header has {}", rec.len(), header.len()),
            );
            continue;
        }
        let mut p = NewProduct::default();
        let mut ok = true;
        for (col, cell) in header.iter().zip(rec.iter()) {
            let value = (!cell.is_empty()).then(|| cell.to_owned());
            match col.as_str() {
                "sku" => p.sku = value.unwrap_or_default(),
                "name" => p.name = value.unwrap_or_default(),
                "brand" => p.brand = value,
                "category" => p.category = value,
                "currency" => p.currency = value,
                "url" => p.url = value,
                "description" => p.description = value,
                "price" => match value.as_deref().map(parse_price).transpose() {
                    Ok(cents) => p.price_cents = cents,
                    Err(reason) => {
                        errors.push(row, "price", reason);
                        ok = false;
                    }
                },
                _ => {}
            }
        }
        if ok {
            out.push((row, p));
        } else {
            // Report the row's other problems too.
            errors.extend(row, check_product(&p));
        }
    }
    Ok(out)
}

/// Parses a decimal price (`12`, `12.9`, `12.99`) into cents, exactly.
pub fn parse_price(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a price like 12.99 (digits, a dot, at most two decimals)");
    let (units, frac) = s.split_once('.').unwrap_or((s, ""));
    if units.is_empty()
        || !units.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (s.contains('.') && frac.is_empty())
    {
        return Err(bad());
    }
    let units: i64 = units
        .parse()
        .ok()
        .filter(|u| *u <= MAX_PRICE_CENTS / 100)
        .ok_or_else(|| format!("{s:?} is too large a price"))?;
    let cents: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
        _ => frac.parse::<i64>().map_err(|_| bad())?,
    };
    Ok(units * 100 + cents)
}

fn json_rows(bytes: &[u8], errors: &mut Errors) -> Result<Vec<(usize, NewProduct)>, ImportError> {
    let items = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(items)) => items,
        Ok(Value::Object(mut m)) if m.len() == 1 && matches!(m.get("products"), Some(Value::Array(_))) => {
            match m.remove("products") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            }
        }
        Ok(_) => {
            errors.push(0, "body", "expected an array of products or {\"products\": [...]}");
            return Ok(Vec::new());
        }
        Err(e) => {
            errors.push(0, "body", format!("not JSON: {e}"));
            return Ok(Vec::new());
        }
    };
    if items.len() > MAX_ROWS {
        return Err(too_many_rows());
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let row = i + 1;
        match product_from_json(item) {
            Ok(p) => out.push((row, p)),
            Err(problems) => errors.extend(row, problems),
        }
    }
    Ok(out)
}

/// Reads one JSON product, naming each field at fault (serde would stop at the first).
fn product_from_json(v: Value) -> Result<NewProduct, Vec<FieldError>> {
    let Value::Object(m) = v else {
        return Err(vec![field_error("row", "expected a JSON object")]);
    };
    let mut problems = Vec::new();
    for k in m.keys() {
        if !matches!(
            k.as_str(),
            "sku" | "name" | "brand" | "category" | "price_cents" | "currency" | "url" | "description"
        ) {
            problems.push(field_error(
                k,
                "unknown field; the fields are sku, name, brand, category, price_cents, currency, url, description",
            ));
        }
    }
    let mut text = |m: &Map<String, Value>, key: &str, required: bool| -> Option<String> {
        match m.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) if !required => None,
            None | Some(Value::Null) => {
                problems.push(field_error(key, "missing; every product needs one"));
                None
            }
            Some(other) => {
                problems.push(field_error(key, format!("expected a string, got {other}")));
                None
            }
        }
    };
    let sku = text(&m, "sku", true);
    let name = text(&m, "name", true);
    let brand = text(&m, "brand", false);
    let category = text(&m, "category", false);
    let currency = text(&m, "currency", false);
    let url = text(&m, "url", false);
    let description = text(&m, "description", false);
    let price_cents = match m.get("price_cents") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(other) => {
            problems.push(field_error(
                "price_cents",
                format!("expected an integer number of cents, got {other}"),
            ));
            None
        }
    };
    let p = NewProduct {
        sku: sku.unwrap_or_default(),
        name: name.unwrap_or_default(),
        brand,
        category,
        price_cents,
        currency,
        url,
        description,
    };
    if problems.is_empty() {
        Ok(p)
    } else {
        // The present fields' own problems too (missing ones are already reported).
        let reported: Vec<String> = problems.iter().map(|e| e.field.clone()).collect();
        problems.extend(check_product(&p).into_iter().filter(|e| !reported.contains(&e.field)));
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(e: &ImportError) -> Vec<(usize, &str)> {
        e.errors().iter().map(|e| (e.row, e.field.as_str())).collect()
    }

    #[test]
    fn csv_reads_quoting_decimal_prices_and_empty_cells() {
        let csv = "\u{feff}SKU,Name,Brand,Category,Price,Currency,URL,Description\n\
                   A-1,\"Alpha, \"\"the first\"\"\",Acme,Shoes,12.99,EUR,https://x.test/a,\"two\nlines\"\n\
                   B-2,Beta,,,7,,,\n\
                   C-3,Gamma,,,0.5,USD,,\n";
        let p = parse("org", csv.as_bytes(), ImportFormat::Csv, 5).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].name, "Alpha, \"the first\"");
        assert_eq!(p[0].description.as_deref(), Some("two\nlines"));
        assert_eq!(
            (p[0].price_cents, p[1].price_cents, p[2].price_cents),
            (Some(1299), Some(700), Some(50))
        );
        assert_eq!((p[1].brand.as_deref(), p[1].currency.as_deref()), (None, None));
        assert_eq!(p[0].id, crate::catalog::product_id("org", "A-1"));
        assert_eq!((p[0].org_id.as_str(), p[0].updated_at), ("org", 5));
    }

    #[test]
    fn every_bad_row_is_reported_and_nothing_is_kept() {
        let csv = "sku,name,price,currency,url\n\
                   ok,Fine,1.00,EUR,https://x.test\n\
                   ,No sku,1,EUR,\n\
                   p,Bad price,1.999,EUR,\n\
                   q,Neg,-1,EUR,\n\
                   c,Cur,1,eur,\n\
                   u,Url,1,EUR,ftp://x\n\
                   ok,Dup,1,EUR,\n\
                   r,Ragged\n";
        let e = parse("org", csv.as_bytes(), ImportFormat::Csv, 0).unwrap_err();
        assert_eq!(
            rows(&e),
            vec![
                (2, "sku"),
                (3, "price"),
                (4, "price"),
                (5, "currency"),
                (6, "url"),
                (7, "sku"),
                (8, "row")
            ]
        );
        assert!(e.errors()[5].reason.contains("row 1"), "{:?}", e.errors()[5]);
    }

    #[test]
    fn headers_are_checked() {
        let e = parse("org", b"sku,title\nA,B\n", ImportFormat::Csv, 0).unwrap_err();
        assert_eq!(rows(&e), vec![(0, "header"), (0, "header")]);
        assert!(parse("org", b"", ImportFormat::Csv, 0).is_err());
        let e = parse("org", b"name\nX\n", ImportFormat::Csv, 0).unwrap_err();
        assert!(e.errors()[0].reason.contains("\"sku\""));
    }

    #[test]
    fn prices_are_exact() {
        assert_eq!(parse_price("12.99"), Ok(1299));
        assert_eq!(parse_price("0.1"), Ok(10));
        assert_eq!(parse_price("100"), Ok(10_000));
        assert_eq!(parse_price("19.90"), Ok(1990));
        for bad in ["", ".5", "1.", "1.234", "1,5", "-1", "1e3", "abc", " 1"] {
            assert!(parse_price(bad).is_err(), "{bad}");
        }
        assert!(parse_price("99999999999999999999").is_err());
    }

    #[test]
    fn json_arrays_and_wrapped_objects_name_each_bad_field() {
        let ok = br#"{"products": [{"sku":"A","name":"Alpha","price_cents":999,"currency":"USD"}]}"#;
        let p = parse("org", ok, ImportFormat::Json, 0).unwrap();
        assert_eq!((p[0].sku.as_str(), p[0].price_cents), ("A", Some(999)));
        let bad = br#"[{"sku":"A","name":"Alpha"},{"name":5,"price_cents":1.5,"colour":"red"},"x",{"sku":"B","name":"","currency":"usd"}]"#;
        let e = parse("org", bad, ImportFormat::Json, 0).unwrap_err();
        let mut got = rows(&e);
        got.sort();
        assert_eq!(
            got,
            vec![
                (2, "colour"),
                (2, "name"),
                (2, "price_cents"),
                (2, "sku"),
                (3, "row"),
                (4, "currency"),
                (4, "name")
            ]
        );
        assert!(parse("org", b"{\"sku\":\"A\"}", ImportFormat::Json, 0).is_err());
        assert!(parse("org", b"not json", ImportFormat::Json, 0).is_err());
        assert!(parse("org", b"[]", ImportFormat::Json, 0).unwrap().is_empty());
    }

    #[test]
    fn limits_are_enforced_and_errors_capped() {
        let mut csv = String::from("sku,name\n");
        for i in 0..=MAX_ROWS {
            csv.push_str(&format!("s{i},n\n"));
        }
        assert!(matches!(
            parse("org", csv.as_bytes(), ImportFormat::Csv, 0),
            Err(ImportError::TooLarge(_))
        ));
        let mut csv = String::from("sku,name\n");
        for _ in 0..250 {
            csv.push_str(",\n");
        }
        match parse("org", csv.as_bytes(), ImportFormat::Csv, 0) {
            Err(ImportError::Rows { errors, total }) => assert_eq!((errors.len(), total), (MAX_ERRORS, 500)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("org", &vec![b' '; MAX_BYTES + 1], ImportFormat::Json, 0),
            Err(ImportError::TooLarge(_))
        ));
    }

    #[test]
    fn product_rules_match_the_schema() {
        let good = NewProduct {
            sku: "A".into(),
            name: "N".into(),
            url: Some("http://x".into()),
            currency: Some("EUR".into()),
            price_cents: Some(0),
            description: Some(String::new()),
            ..NewProduct::default()
        };
        assert!(check_product(&good).is_empty());
        for (bad, field) in [
            (
                NewProduct {
                    sku: "x".repeat(201),
                    ..good.clone()
                },
                "sku",
            ),
            (
                NewProduct {
                    name: String::new(),
                    ..good.clone()
                },
                "name",
            ),
            (
                NewProduct {
                    brand: Some(String::new()),
                    ..good.clone()
                },
                "brand",
            ),
            (
                NewProduct {
                    price_cents: Some(-1),
                    ..good.clone()
                },
                "price_cents",
            ),
            (
                NewProduct {
                    currency: Some("EURO".into()),
                    ..good.clone()
                },
                "currency",
            ),
            (
                NewProduct {
                    url: Some("https://".into()),
                    ..good.clone()
                },
                "url",
            ),
            (
                NewProduct {
                    url: Some("https://a b".into()),
                    ..good.clone()
                },
                "url",
            ),
        ] {
            let e = check_product(&bad);
            assert_eq!(e.len(), 1, "{bad:?}");
            assert_eq!(e[0].field, field);
        }
        assert_eq!(
            ImportFormat::from_content_type("text/csv; charset=utf-8"),
            Some(ImportFormat::Csv)
        );
        assert_eq!(
            ImportFormat::from_content_type("Application/JSON"),
            Some(ImportFormat::Json)
        );
        assert_eq!(ImportFormat::from_content_type("text/plain"), None);
    }
}
