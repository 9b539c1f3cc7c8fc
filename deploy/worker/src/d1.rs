//! D1 as a [`Sql`](crow_store::sql::Sql) executor.
//!
//! Values cross the JS boundary as JSON text, converted by the plain functions of this module
//! (unit-tested natively); `js/glue.mjs` binds them and runs the statements.
//!
//! - **Parameters** ([`params_json`]): `null`, numbers, strings; a BLOB as `{"b": base64}`
//!   (the glue binds it as a `Uint8Array`); an integer beyond ±2^53 as its decimal string, which
//!   a column of INTEGER affinity stores as the integer (JSON numbers would round it).
//! - **Rows** ([`rows_from_json`]): positional arrays (`.raw()` for a query, the column order of
//!   each object for a batch: `RETURNING` columns are aliased apart, so no two share a name). A
//!   number without a fraction is an `Int` (JS cannot tell REAL `3.0` from INTEGER `3`; `Row`'s
//!   readers take either), an array of numbers is a BLOB (D1 returns BLOBs so).
//! - **Errors** ([`sql_error`]): the message of the JS exception; `constraint` when it reports a
//!   constraint violation (UNIQUE, CHECK, a trigger's `RAISE(ABORT)`), which maps to `Conflict`.

use base64::Engine as _;
use crow_store::StoreError;
use crow_store::sql::{Done, Row, SqlValue};
use serde_json::{Value, json};

/// The largest integer a JS number holds exactly (2^53).
const JS_SAFE: i64 = 1 << 53;

/// One parameter as the glue binds it.
pub fn param_json(value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Int(i) if (-JS_SAFE..=JS_SAFE).contains(i) => json!(i),
        SqlValue::Int(i) => Value::String(i.to_string()),
        SqlValue::Real(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        SqlValue::Text(t) => Value::String(t.clone()),
        SqlValue::Blob(b) => json!({ "b": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

/// A statement's parameters as the JSON array text the glue takes.
pub fn params_json(params: &[SqlValue]) -> String {
    Value::Array(params.iter().map(param_json).collect()).to_string()
}

/// A batch of statements as the JSON text `d1Batch` takes: `[{"sql", "params"}]`.
pub fn stmts_json<'a>(stmts: impl IntoIterator<Item = (&'a str, &'a [SqlValue])>) -> String {
    Value::Array(
        stmts
            .into_iter()
            .map(|(sql, params)| json!({ "sql": sql, "params": params.iter().map(param_json).collect::<Vec<_>>() }))
            .collect(),
    )
    .to_string()
}

fn bad(reason: impl Into<String>) -> StoreError {
    StoreError::Sql {
        message: format!("D1 answered an unexpected shape: {}", reason.into()),
        constraint: false,
    }
}

/// One value read back from D1.
pub fn value_from_json(v: Value) -> Result<SqlValue, StoreError> {
    Ok(match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Int(b.into()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                SqlValue::Int(i)
            } else if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 9.2e18 {
                    SqlValue::Int(f as i64)
                } else {
                    SqlValue::Real(f)
                }
            } else {
                // A u64 above i64::MAX: SQLite has no such integer, so it was a REAL.
                SqlValue::Real(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => SqlValue::Text(s),
        Value::Array(items) => SqlValue::Blob(
            items
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| bad("an array column that is not bytes"))?,
        ),
        Value::Object(_) => return Err(bad("an object column")),
    })
}

/// Rows as the glue returns them: a JSON array of positional arrays.
pub fn rows_from_json(v: Value) -> Result<Vec<Row>, StoreError> {
    let Value::Array(rows) = v else {
        return Err(bad("rows are not an array"));
    };
    rows.into_iter()
        .map(|row| match row {
            Value::Array(cols) => cols
                .into_iter()
                .map(value_from_json)
                .collect::<Result<Vec<_>, _>>()
                .map(Row),
            _ => Err(bad("a row is not an array")),
        })
        .collect()
}

/// A batch's results as the glue returns them: `[{"changes", "rows"}]`, one per statement.
pub fn batch_from_json(v: Value, expected: usize) -> Result<Vec<Done>, StoreError> {
    let Value::Array(results) = v else {
        return Err(bad("batch results are not an array"));
    };
    if results.len() != expected {
        return Err(bad(format!("{} results for {expected} statements", results.len())));
    }
    results
        .into_iter()
        .map(|mut r| {
            let changes = r.get("changes").and_then(Value::as_u64).unwrap_or(0);
            let rows = rows_from_json(r.get_mut("rows").map(Value::take).unwrap_or(Value::Array(vec![])))?;
            Ok(Done { changes, rows })
        })
        .collect()
}

/// The store error of a failed D1 call (`message` is the JS exception's, with its causes).
pub fn sql_error(message: String) -> StoreError {
    let constraint = message.contains("SQLITE_CONSTRAINT") || message.contains("constraint failed");
    StoreError::Sql { message, constraint }
}

#[cfg(target_arch = "wasm32")]
mod executor {
    use std::cell::Cell;
    use std::rc::Rc;

    use crow_store::StoreError;
    use crow_store::sql::{Done, Row, Sql, Stmt};
    use wasm_bindgen::prelude::*;

    use crate::glue;

    /// A D1 database binding (`env.DB`). Clones share the handle and the call count.
    #[derive(Debug, Clone)]
    pub struct D1 {
        db: JsValue,
        calls: Rc<Cell<u32>>,
    }

    impl D1 {
        /// The database behind a binding.
        pub fn new(db: JsValue) -> D1 {
            D1 {
                db,
                calls: Rc::default(),
            }
        }

        /// Statements sent so far through this handle and its clones (D1 allows 1000 per
        /// invocation on Workers Paid, 50 on Free: the queue sweep stops well before).
        pub fn calls(&self) -> u32 {
            self.calls.get()
        }

        fn count(&self, n: usize) {
            self.calls
                .set(self.calls.get().saturating_add(u32::try_from(n).unwrap_or(u32::MAX)));
        }
    }

    async fn call(promise: Result<js_sys::Promise, JsValue>) -> Result<serde_json::Value, StoreError> {
        let out = match promise {
            Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await,
            Err(e) => Err(e),
        }
        .map_err(|e| super::sql_error(glue::error_message(&e)))?;
        let text = out
            .as_string()
            .ok_or_else(|| super::bad("the glue did not answer text"))?;
        Ok(serde_json::from_str(&text)?)
    }

    #[async_trait::async_trait(?Send)]
    impl Sql for D1 {
        async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
            self.count(1);
            let params = super::params_json(stmt.params());
            let rows = call(glue::d1_query(&self.db, stmt.sql(), &params)).await?;
            super::rows_from_json(rows)
        }

        async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Done>, StoreError> {
            if stmts.is_empty() {
                return Ok(Vec::new());
            }
            self.count(stmts.len());
            let json = super::stmts_json(stmts.iter().map(|s| (s.sql(), s.params())));
            let results = call(glue::d1_batch(&self.db, &json)).await?;
            super::batch_from_json(results, stmts.len())
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use executor::D1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_cross_as_json() {
        let params = [
            SqlValue::Null,
            SqlValue::Int(42),
            SqlValue::Int(-(1 << 53)),
            SqlValue::Int(i64::MAX),
            SqlValue::Int(i64::MIN),
            SqlValue::Real(1.5),
            SqlValue::Real(f64::NAN),
            SqlValue::Text("it's".into()),
            SqlValue::Blob(vec![0, 1, 255]),
        ];
        assert_eq!(
            params_json(&params),
            r#"[null,42,-9007199254740992,"9223372036854775807","-9223372036854775808",1.5,null,"it's",{"b":"AAH/"}]"#
        );
        let batch = stmts_json([("SELECT ?1", &params[1..2])]);
        assert_eq!(batch, r#"[{"params":[42],"sql":"SELECT ?1"}]"#);
    }

    #[test]
    fn rows_come_back_typed() {
        let rows: Value = serde_json::from_str(r#"[[1, 2.5, 3.0, "x", null, [0, 255], true, [], -4]]"#).unwrap();
        let rows = rows_from_json(rows).unwrap();
        assert_eq!(
            rows,
            vec![Row(vec![
                SqlValue::Int(1),
                SqlValue::Real(2.5),
                SqlValue::Int(3),
                SqlValue::Text("x".into()),
                SqlValue::Null,
                SqlValue::Blob(vec![0, 255]),
                SqlValue::Int(1),
                SqlValue::Blob(vec![]),
                SqlValue::Int(-4),
            ])]
        );
        // What Row's readers make of them: integral reals are integers, ints are floats.
        assert_eq!(rows[0].i64(2).unwrap(), 3);
        assert_eq!(rows[0].f64(0).unwrap(), 1.0);
        assert_eq!(rows[0].blob(5).unwrap(), vec![0, 255]);
        // A big integer read as CAST(… AS TEXT) parses back exactly.
        let big = rows_from_json(json!([["9223372036854775807"]])).unwrap();
        assert_eq!(big[0].i64(0).unwrap(), i64::MAX);
    }

    #[test]
    fn odd_shapes_are_errors() {
        assert!(rows_from_json(json!({"rows": []})).is_err());
        assert!(rows_from_json(json!([1])).is_err());
        assert!(rows_from_json(json!([[{"a": 1}]])).is_err());
        assert!(rows_from_json(json!([[[256]]])).is_err());
        assert!(batch_from_json(json!([]), 1).is_err());
    }

    #[test]
    fn batches_carry_changes_and_rows() {
        let done = batch_from_json(json!([{"changes": 2, "rows": [["a"], ["b"]]}, {"changes": 0}]), 2).unwrap();
        assert_eq!(done[0].changes, 2);
        assert_eq!(done[0].rows.len(), 2);
        assert_eq!(done[1], Done::default());
    }

    #[test]
    fn constraint_failures_are_recognized() {
        let unique = sql_error("D1_ERROR: UNIQUE constraint failed: organizations.id: SQLITE_CONSTRAINT".into());
        assert!(unique.is_constraint_violation());
        assert!(matches!(crow_core::Error::from(unique), crow_core::Error::Conflict(_)));
        let other = sql_error("D1_ERROR: no such table: nope: SQLITE_ERROR".into());
        assert!(!other.is_constraint_violation());
    }
}
