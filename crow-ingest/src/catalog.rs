//! The catalog channel: product catalogs imported from CSV or JSON.
//!
//! Columns (CSV header or JSON keys), case-insensitive: `sku` (required), `name` (required),
//! `brand`, `category`, `price` (a decimal like `129.90`; a leading currency symbol or a
//! trailing ISO code is accepted), `currency` (ISO 4217, default none), `url`, `description`.
//! JSON is an array of objects, or one object per line (JSON Lines). Rows with errors are
//! reported with their line and column and skipped; good rows are kept.
//!
//! ```
//! let csv = b"sku,name,price\nTR-1,Trail Runner,129.90\n";
//! let parsed = crow_ingest::catalog::parse("org_1", csv, crow_ingest::catalog::Format::Csv, 0);
//! assert_eq!(parsed.products[0].price_cents, Some(12990));
//! assert!(parsed.errors.is_empty());
//! ```

use crow_core::model::Product;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array of objects, or JSON Lines.
    Json,
}

impl Format {
    /// Guesses the format from a file name (`.csv` → CSV, else JSON).
    pub fn from_path(path: &str) -> Format {
        if path.to_ascii_lowercase().ends_with(".csv") {
            Format::Csv
        } else {
            Format::Json
        }
    }
}

/// A row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    /// 1-based row (CSV: data row after the header; JSON: array index + 1 or line number).
    pub row: usize,
    /// The field at fault.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// The result of parsing a catalog.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Good products.
    pub products: Vec<Product>,
    /// Skipped rows.
    pub errors: Vec<RowError>,
}

/// One input row: its 1-based number and its fields, or why it could not be read.
type Row = (usize, Result<Map<String, Value>, RowError>);

/// Deterministic product id from org and sku.
pub fn product_id(org_id: &str, sku: &str) -> String {
    let mut h = Sha256::new();
    h.update(org_id.as_bytes());
    h.update([0]);
    h.update(sku.as_bytes());
    format!("prd_{}", &hex::encode(h.finalize())[..20])
}

/// Parses a catalog file.
pub fn parse(org_id: &str, bytes: &[u8], format: Format, now: i64) -> Parsed {
    let mut out = Parsed::default();
    let rows: Vec<Row> = match format {
        Format::Csv => csv_rows(bytes),
        Format::Json => json_rows(bytes),
    };
    let mut seen = std::collections::HashSet::new();
    for (row, r) in rows {
        match r.and_then(|m| product_from(org_id, row, &m, now)) {
            Ok(p) => {
                if !seen.insert(p.sku.clone()) {
                    out.errors.push(RowError {
                        row,
                        field: "sku".into(),
                        reason: format!("duplicate sku {:?} in the file (the first one is kept)", p.sku),
                    });
                } else {
                    out.products.push(p);
                }
            }
            Err(e) => out.errors.push(e),
        }
    }
    out
}

fn csv_rows(bytes: &[u8]) -> Vec<Row> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|s| s.to_ascii_lowercase()).collect(),
        Err(e) => {
            return vec![(
                0,
                Err(RowError {
                    row: 0,
                    field: "header".into(),
                    reason: e.to_string(),
                }),
            )];
        }
    };
    rdr.records()
        .enumerate()
        .map(|(i, rec)| {
            let row = i + 1;
            let r = rec
                .map_err(|e| RowError {
                    row,
                    field: "row".into(),
                    reason: e.to_string(),
                })
                .map(|rec| {
                    headers
                        .iter()
                        .zip(rec.iter())
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| (k.clone(), Value::String(v.to_owned())))
                        .collect()
                });
            (row, r)
        })
        .collect()
}

fn json_rows(bytes: &[u8]) -> Vec<Row> {
    let as_obj = |row: usize, v: Value| match v {
        Value::Object(m) => Ok(m.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect()),
        _ => Err(RowError {
            row,
            field: "row".into(),
            reason: "expected a JSON object".into(),
        }),
    };
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i + 1, as_obj(i + 1, v)))
            .collect(),
        Ok(v @ Value::Object(_)) => vec![(1, as_obj(1, v))],
        Ok(_) => vec![(
            0,
            Err(RowError {
                row: 0,
                field: "file".into(),
                reason: "expected an array of objects".into(),
            }),
        )],
        Err(_) => bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
            .map(|(i, l)| {
                let row = i + 1;
                let r = serde_json::from_slice::<Value>(l)
                    .map_err(|e| RowError {
                        row,
                        field: "line".into(),
                        reason: format!("invalid JSON: {e}"),
                    })
                    .and_then(|v| as_obj(row, v));
                (row, r)
            })
            .collect(),
    }
}

fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn product_from(org_id: &str, row: usize, m: &Map<String, Value>, now: i64) -> Result<Product, RowError> {
    let err = |field: &str, reason: String| RowError {
        row,
        field: field.into(),
        reason,
    };
    let sku = text(m, "sku").ok_or_else(|| err("sku", "missing; every product needs a sku".into()))?;
    if sku.len() > 200 {
        return Err(err("sku", "longer than 200 characters".into()));
    }
    let name = text(m, "name").ok_or_else(|| err("name", "missing; every product needs a name".into()))?;
    let (price_cents, price_currency) = match m.get("price") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(-1.0);
            if !(0.0..1e13).contains(&f) {
                return Err(err("price", format!("{n} is not a valid price")));
            }
            (Some((f * 100.0).round() as i64), None)
        }
        Some(Value::String(s)) => parse_price(s).map_err(|r| err("price", r))?,
        Some(other) => return Err(err("price", format!("expected a number, got {other}"))),
    };
    let currency = match text(m, "currency").or(price_currency) {
        Some(c) if c.len() == 3 && c.chars().all(|c| c.is_ascii_alphabetic()) => Some(c.to_ascii_uppercase()),
        Some(c) => return Err(err("currency", format!("{c:?} is not an ISO 4217 code like EUR"))),
        None => None,
    };
    let url = text(m, "url");
    if let Some(u) = url
        .as_ref()
        .filter(|u| !(u.starts_with("http://") || u.starts_with("https://")))
    {
        return Err(err("url", format!("{u:?} is not an http(s) URL")));
    }
    Ok(Product {
        id: product_id(org_id, &sku),
        org_id: org_id.to_owned(),
        sku,
        name,
        brand: text(m, "brand"),
        category: text(m, "category"),
        price_cents,
        currency,
        url,
        description: text(m, "description"),
        updated_at: now,
    })
}

/// Parses `129.90`, `€129.90`, `129,90 EUR`, `1,299.00` into cents and an optional currency.
fn parse_price(s: &str) -> Result<(Option<i64>, Option<String>), String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok((None, None));
    }
    let mut currency = None;
    let mut body = s;
    for (sym, code) in [("€", "EUR"), ("$", "USD"), ("£", "GBP"), ("¥", "JPY")] {
        if let Some(rest) = body.strip_prefix(sym) {
            body = rest.trim();
            currency = Some(code.to_owned());
        }
    }
    if let Some((num, code)) = body
        .rsplit_once(' ')
        .filter(|(_, code)| code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()))
    {
        currency = Some(code.to_ascii_uppercase());
        body = num.trim();
    }
    // A comma followed by exactly two digits at the end is a decimal comma.
    let normalized = match body.rfind(',') {
        Some(i) if body.len() - i == 3 && !body.contains('.') => {
            format!("{}.{}", &body[..i].replace(['.', ' '], ""), &body[i + 1..])
        }
        _ => body.replace([',', ' '], ""),
    };
    let f: f64 = normalized.parse().map_err(|_| format!("{s:?} is not a price"))?;
    if !(0.0..1e13).contains(&f) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok((Some((f * 100.0).round() as i64), currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_errors_keeps_good_rows() {
        let csv = "SKU,Name,Brand,Category,Price,URL\nA-1,Alpha,Acme,Shoes,€12.50,https://x.test/a\n,NoSku,,,,\nB-2,Beta,,,\"1,299.00\",\nC-3,Gamma,,,abc,\nA-1,Dup,,,,\n";
        let p = parse("org", csv.as_bytes(), Format::Csv, 5);
        assert_eq!(p.products.len(), 2);
        assert_eq!(p.products[0].price_cents, Some(1250));
        assert_eq!(p.products[0].currency.as_deref(), Some("EUR"));
        assert_eq!(p.products[1].price_cents, Some(129_900));
        let fields: Vec<_> = p.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(fields, vec![(2, "sku"), (4, "price"), (5, "sku")]);
    }

    #[test]
    fn json_array_and_lines() {
        let arr = br#"[{"sku":"A","name":"Alpha","price":9.99,"currency":"usd"},{"name":"x"}]"#;
        let p = parse("org", arr, Format::Json, 0);
        assert_eq!(p.products.len(), 1);
        assert_eq!(p.products[0].currency.as_deref(), Some("USD"));
        assert_eq!(p.errors[0].row, 2);
        let lines = b"{\"sku\":\"A\",\"name\":\"Alpha\"}\n\n{\"sku\":\"B\",\"name\":\"Beta\",\"price\":\"12,50 EUR\"}\nnot json\n";
        let p = parse("org", lines, Format::Json, 0);
        assert_eq!(p.products.len(), 2);
        assert_eq!(p.products[1].price_cents, Some(1250));
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].row, 4);
    }

    #[test]
    fn ids_are_deterministic_and_org_scoped() {
        assert_eq!(product_id("o1", "A"), product_id("o1", "A"));
        assert_ne!(product_id("o1", "A"), product_id("o2", "A"));
    }
}
