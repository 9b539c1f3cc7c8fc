//! The SQL layer shared by every SQLite-dialect backend: the embedded [`SqliteStore`]
//! (rusqlite, native) and Cloudflare D1 (the Worker, wasm32).
//!
//! A port method is written **once**, here, as a free function over a [`Sql`] executor: SQL text,
//! parameters, row decoding and the decisions between statements. An executor only runs
//! statements. So the integration tests of `SqliteStore` exercise the very statements and logic
//! the Worker runs on D1.
//!
//! D1 has no interactive transactions (`BEGIN` and `SAVEPOINT` are refused): a write is some
//! reads, a pure decision, then **one** [`Sql::batch`], which is atomic on both executors (on
//! SQLite it runs inside the writer thread's group commit). Races between the reads and the
//! batch are closed in SQL where they matter (`INSERT … WHERE NOT EXISTS`, `UPDATE … WHERE
//! state = ?read`, `changes()` carried across the statements of a batch).
//!
//! D1's limits hold for every statement built here, and debug builds check them when a
//! statement runs natively ([`Stmt::check_d1`]): at most 100 bound parameters, no
//! `BEGIN`/`SAVEPOINT`/`PRAGMA`/`ATTACH`; id lists go as one JSON parameter read with
//! `json_each`. Integers above 2^53 lose precision through D1's JSON, so such columns (a
//! mention's simhash) are read as `CAST(… AS TEXT)`.
//!
//! [`SqlStore`] wraps any executor into every storage port (the Worker's `SqlStore<D1>`);
//! [`SqliteStore`] implements the ports itself with the same functions, plus what only a local
//! database can do (a key cache, WAL truncation after an erasure, migrations).
//!
//! [`SqliteStore`]: crate::SqliteStore
//!
//! ```
//! use crow_store::sql::{Row, Sql, SqlValue, Stmt};
//!
//! let stmt = Stmt::new("SELECT name FROM organizations WHERE id = ?1").bind("org_1");
//! assert_eq!(stmt.params(), &[SqlValue::Text("org_1".into())]);
//! let row = Row(vec![SqlValue::Text("Acme".into()), SqlValue::Null]);
//! assert_eq!(row.text(0).unwrap(), "Acme");
//! assert_eq!(row.opt_text(1).unwrap(), None);
//! ```

pub mod accounts;
pub mod catalog;
pub mod events;
pub mod exports;
pub mod persons;
pub mod queue;
pub mod social;
mod store;
pub mod tasks;
pub mod video;
pub mod workflow;

pub use store::SqlStore;

use std::borrow::Cow;

use crow_core::ports::MaybeSend;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// A value bound to a statement or read from a row: SQLite's five storage classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SqlValue {
    /// `NULL`.
    Null,
    /// `INTEGER`.
    Int(i64),
    /// `REAL`.
    Real(f64),
    /// `TEXT`.
    Text(String),
    /// `BLOB`.
    Blob(Vec<u8>),
}

impl SqlValue {
    fn kind(&self) -> &'static str {
        match self {
            SqlValue::Null => "NULL",
            SqlValue::Int(_) => "INTEGER",
            SqlValue::Real(_) => "REAL",
            SqlValue::Text(_) => "TEXT",
            SqlValue::Blob(_) => "BLOB",
        }
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_owned())
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}
impl From<&String> for SqlValue {
    fn from(v: &String) -> Self {
        SqlValue::Text(v.clone())
    }
}
impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Int(v)
    }
}
impl From<i32> for SqlValue {
    fn from(v: i32) -> Self {
        SqlValue::Int(v.into())
    }
}
impl From<u32> for SqlValue {
    fn from(v: u32) -> Self {
        SqlValue::Int(v.into())
    }
}
impl From<usize> for SqlValue {
    fn from(v: usize) -> Self {
        SqlValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<bool> for SqlValue {
    fn from(v: bool) -> Self {
        SqlValue::Int(v.into())
    }
}
impl From<f64> for SqlValue {
    fn from(v: f64) -> Self {
        SqlValue::Real(v)
    }
}
impl From<Vec<u8>> for SqlValue {
    fn from(v: Vec<u8>) -> Self {
        SqlValue::Blob(v)
    }
}
impl From<&[u8]> for SqlValue {
    fn from(v: &[u8]) -> Self {
        SqlValue::Blob(v.to_vec())
    }
}
impl From<&serde_json::Value> for SqlValue {
    /// A JSON document, stored as its text.
    fn from(v: &serde_json::Value) -> Self {
        SqlValue::Text(v.to_string())
    }
}
impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// One statement and its positional parameters (`?1`, `?2`, … or plain `?`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    sql: Cow<'static, str>,
    params: Vec<SqlValue>,
    local: Option<Box<Local>>,
}

/// Another form of a statement, with the same effect, for an executor that runs statements in
/// its own process (SQLite): there a prepared statement per row is cheaper than reading a JSON
/// array, and a round trip costs nothing. D1 ignores it and runs the statement itself (one
/// query for many rows). Native tests run both forms ([`Stmt::without_local`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Local {
    /// `sql` once per parameter list, in order: the RETURNING rows concatenated, the changes
    /// summed.
    Each {
        /// One row's statement.
        sql: Cow<'static, str>,
        /// The parameters of each row.
        rows: Vec<Vec<SqlValue>>,
    },
    /// This statement only when the statement before it in the batch changed rows (which the
    /// statement's own SQL checks with `changes() > 0`: after an [`Each`](Local::Each) that
    /// would see the last row's changes only).
    IfChanged(Stmt),
}

impl Stmt {
    /// A statement without parameters yet.
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Stmt {
        Stmt {
            sql: sql.into(),
            params: Vec::new(),
            local: None,
        }
    }

    /// The statement with a [`Local`] form.
    pub fn with_local(mut self, local: Local) -> Stmt {
        self.local = Some(Box::new(local));
        self
    }

    /// The [`Local`] form, if any.
    pub fn local(&self) -> Option<&Local> {
        self.local.as_deref()
    }

    /// The statement without its [`Local`] form: what D1 runs.
    pub fn without_local(mut self) -> Stmt {
        self.local = None;
        self
    }

    /// Binds the next parameter.
    pub fn bind(mut self, value: impl Into<SqlValue>) -> Stmt {
        self.params.push(value.into());
        self
    }

    /// Binds a list as one JSON array parameter, for `IN (SELECT value FROM json_each(?N))`
    /// (D1 takes at most 100 parameters, so lists never expand into `?, ?, …`).
    pub fn bind_list<T: Serialize>(self, values: &[T]) -> Stmt {
        let json = serde_json::to_string(values).unwrap_or_else(|_| "[]".into());
        self.bind(json)
    }

    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The bound parameters, in order.
    pub fn params(&self) -> &[SqlValue] {
        &self.params
    }

    /// Checks the statement against D1's rules (at most 100 parameters; no `BEGIN`,
    /// `SAVEPOINT`, `PRAGMA`, `ATTACH`), so a statement that would fail on D1 fails native tests
    /// too. The native executor runs it in debug builds.
    pub fn check_d1(&self) -> Result<(), StoreError> {
        if self.params.len() > 100 {
            return Err(StoreError::Internal(format!(
                "statement binds {} parameters; D1 allows 100: {}",
                self.params.len(),
                self.sql
            )));
        }
        let head = self.sql.trim_start().to_ascii_uppercase();
        for refused in ["BEGIN", "SAVEPOINT", "PRAGMA", "ATTACH", "COMMIT", "RELEASE"] {
            if head.starts_with(refused) {
                return Err(StoreError::Internal(format!("D1 refuses {refused}: {}", self.sql)));
            }
        }
        Ok(())
    }

    /// The statement with its parameters written in as SQL literals (quoted text, `X'…'`
    /// blobs), for a `.sql` file run by `wrangler d1 execute --file`.
    pub fn to_literal_sql(&self) -> Result<String, StoreError> {
        let mut out = String::with_capacity(self.sql.len() + 16 * self.params.len());
        let mut next = 0usize;
        let mut chars = self.sql.char_indices().peekable();
        let mut in_string = false;
        while let Some((_, c)) = chars.next() {
            if c == '\'' {
                in_string = !in_string;
                out.push(c);
                continue;
            }
            if c != '?' || in_string {
                out.push(c);
                continue;
            }
            let mut digits = String::new();
            while let Some(&(_, d)) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                digits.push(d);
                chars.next();
            }
            let index = if digits.is_empty() {
                next += 1;
                next
            } else {
                digits
                    .parse::<usize>()
                    .map_err(|e| StoreError::Internal(e.to_string()))?
            };
            let value = index
                .checked_sub(1)
                .and_then(|i| self.params.get(i))
                .ok_or_else(|| StoreError::Internal(format!("parameter ?{index} is not bound: {}", self.sql)))?;
            out.push_str(&literal(value));
        }
        Ok(out)
    }
}

fn literal(value: &SqlValue) -> String {
    match value {
        SqlValue::Null => "NULL".into(),
        SqlValue::Int(i) => i.to_string(),
        SqlValue::Real(f) if f.is_finite() => format!("{f:?}"),
        SqlValue::Real(_) => "NULL".into(),
        SqlValue::Text(t) => format!("'{}'", t.replace('\'', "''")),
        SqlValue::Blob(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
            format!("X'{hex}'")
        }
    }
}

/// One row read back, its columns in `SELECT` order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(pub Vec<SqlValue>);

impl Row {
    fn at(&self, i: usize) -> Result<&SqlValue, StoreError> {
        self.0.get(i).ok_or_else(|| StoreError::Column {
            index: i,
            reason: format!("the row has {} columns", self.0.len()),
        })
    }

    fn wrong(i: usize, want: &str, got: &SqlValue) -> StoreError {
        StoreError::Column {
            index: i,
            reason: format!("expected {want}, found {}", got.kind()),
        }
    }

    /// Column `i` as an integer (a REAL with no fraction is taken too: D1 returns JSON numbers).
    pub fn i64(&self, i: usize) -> Result<i64, StoreError> {
        match self.at(i)? {
            SqlValue::Int(v) => Ok(*v),
            SqlValue::Real(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => Ok(*f as i64),
            SqlValue::Text(t) => t
                .parse()
                .map_err(|_| Self::wrong(i, "INTEGER", &SqlValue::Text(t.clone()))),
            other => Err(Self::wrong(i, "INTEGER", other)),
        }
    }

    /// Column `i` as an integer, or `None` for NULL.
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.at(i)? {
            SqlValue::Null => Ok(None),
            _ => self.i64(i).map(Some),
        }
    }

    /// Column `i` as a float.
    pub fn f64(&self, i: usize) -> Result<f64, StoreError> {
        match self.at(i)? {
            SqlValue::Real(f) => Ok(*f),
            SqlValue::Int(v) => Ok(*v as f64),
            other => Err(Self::wrong(i, "REAL", other)),
        }
    }

    /// Column `i` as a float, or `None` for NULL.
    pub fn opt_f64(&self, i: usize) -> Result<Option<f64>, StoreError> {
        match self.at(i)? {
            SqlValue::Null => Ok(None),
            _ => self.f64(i).map(Some),
        }
    }

    /// Column `i` as a boolean (an integer, 0 is false).
    pub fn bool(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.i64(i)? != 0)
    }

    /// Column `i` as text.
    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.at(i)? {
            SqlValue::Text(t) => Ok(t.clone()),
            other => Err(Self::wrong(i, "TEXT", other)),
        }
    }

    /// Column `i` as text, or `None` for NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.at(i)? {
            SqlValue::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    /// Column `i` as bytes (D1 returns a BLOB as an array of numbers, which its executor turns
    /// back into bytes).
    pub fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        match self.at(i)? {
            SqlValue::Blob(b) => Ok(b.clone()),
            other => Err(Self::wrong(i, "BLOB", other)),
        }
    }

    /// Column `i`, a JSON document stored as text, parsed.
    pub fn json<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T, StoreError> {
        Ok(serde_json::from_str(&self.text(i)?)?)
    }
}

/// What one statement of a [`Sql::batch`] did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Done {
    /// Rows inserted, updated or deleted (SQLite's `changes()`).
    pub changes: u64,
    /// Rows returned (`SELECT`, `RETURNING`).
    pub rows: Vec<Row>,
}

/// A SQLite-dialect executor: the embedded store natively, D1 in the Worker.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Sql: MaybeSend {
    /// Runs one read statement and returns its rows.
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError>;

    /// Runs `stmts` in order, all or nothing: when one fails, none has an effect. `changes()`
    /// within a statement sees the statement before it.
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Done>, StoreError>;

    /// [`query`](Sql::query) for an indexed point lookup touching a bounded number of rows; an
    /// executor may run it more cheaply (SQLite: on the calling thread).
    async fn query_point(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
        self.query(stmt).await
    }

    /// [`query`](Sql::query) of a statement returning at most one row.
    async fn query_one(&self, stmt: Stmt) -> Result<Option<Row>, StoreError> {
        Ok(self.query_point(stmt).await?.into_iter().next())
    }

    /// Runs one write statement on its own and returns what it did.
    async fn execute(&self, stmt: Stmt) -> Result<Done, StoreError> {
        Ok(self.batch(vec![stmt]).await?.pop().unwrap_or_default())
    }

    /// True for an executor in this process that runs every statement's [`Local`] form (SQLite):
    /// a statement built for it may skip the work of its other form (encoding rows as JSON).
    fn in_process(&self) -> bool {
        false
    }
}

/// The most bytes of JSON rows bound as one parameter of a bulk write (D1 refuses a value over
/// 2 MB): a longer list becomes several statements of the same batch.
pub(crate) const CHUNK_BYTES: usize = 512 * 1024;

/// `rows`, each serialized to JSON, as JSON arrays of at most about `max_bytes` each (at least
/// one row per array; no array for no rows), in order.
pub(crate) fn json_chunks<T: Serialize>(rows: &[T], max_bytes: usize) -> Result<Vec<String>, StoreError> {
    let mut chunks = Vec::new();
    let mut chunk = String::from("[");
    for row in rows {
        let json = serde_json::to_string(row)?;
        if chunk.len() > 1 && chunk.len() + json.len() + 2 > max_bytes {
            chunk.push(']');
            chunks.push(std::mem::replace(&mut chunk, String::from("[")));
        }
        if chunk.len() > 1 {
            chunk.push(',');
        }
        chunk.push_str(&json);
    }
    if chunk.len() > 1 {
        chunk.push(']');
        chunks.push(chunk);
    }
    Ok(chunks)
}

/// `limit` as the ports define it: 0 means 50, else clamped to 1..=1000.
pub fn clamp_limit(limit: u32) -> usize {
    if limit == 0 { 50 } else { limit.clamp(1, 1000) as usize }
}

/// Encodes a `(time, seq)` position as an opaque cursor.
pub fn encode_cursor(time: i64, seq: i64) -> String {
    format!("{time}.{seq}")
}

/// Decodes [`encode_cursor`]; anything else is `Invalid { field: "cursor" }`.
pub fn decode_cursor(cursor: &str) -> Result<(i64, i64), StoreError> {
    let bad = || StoreError::invalid("cursor", "not a cursor returned by this store");
    let (t, s) = cursor.rsplit_once('.').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, s.parse().map_err(|_| bad())?))
}

/// Encodes a `(time, id)` position (sessions by start, mentions by post time, frame events by
/// frame time) as an opaque cursor: the time, a dot, the id in hex.
pub fn encode_id_cursor(time: i64, id: &str) -> String {
    format!("{time}.{}", hex_encode(id))
}

/// Decodes [`encode_id_cursor`]; anything else is `Invalid { field: "cursor" }`.
pub fn decode_id_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let bad = || StoreError::invalid("cursor", "not a cursor returned by this store");
    let (t, id) = cursor.split_once('.').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, hex_decode(id).ok_or_else(bad)?))
}

/// Lowercase hex, for cursors over arbitrary strings.
pub fn hex_encode(s: &str) -> String {
    use std::fmt::Write;
    s.bytes().fold(String::with_capacity(s.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Inverse of [`hex_encode`].
pub fn hex_decode(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// A page from rows read with `LIMIT limit + 1`: the first `limit` rows, and the cursor of the
/// last of them when a further row showed there is more.
pub fn page_of<T>(mut rows: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> crow_core::ports::Page<T> {
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor)
    } else {
        None
    };
    crow_core::ports::Page {
        data: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_sql_quotes_every_kind() {
        let stmt = Stmt::new("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, '?', ?1)")
            .bind("it's")
            .bind(42i64)
            .bind(Option::<String>::None)
            .bind(vec![0xABu8, 0x01])
            .bind(1.5f64);
        assert_eq!(
            stmt.to_literal_sql().unwrap(),
            "INSERT INTO t VALUES ('it''s', 42, NULL, X'AB01', 1.5, '?', 'it''s')"
        );
        let plain = Stmt::new("SELECT ?, ?").bind(1i64).bind(2i64);
        assert_eq!(plain.to_literal_sql().unwrap(), "SELECT 1, 2");
        assert!(Stmt::new("SELECT ?2").bind(1i64).to_literal_sql().is_err());
    }

    #[test]
    fn d1_rules_are_checked() {
        let many = (0..101).fold(Stmt::new("SELECT 1"), |s, i| s.bind(i as i64));
        assert!(many.check_d1().is_err());
        assert!(Stmt::new("  begin immediate").check_d1().is_err());
        assert!(Stmt::new("SELECT 1").check_d1().is_ok());
    }

    #[test]
    fn rows_decode_and_name_the_column_on_a_type_error() {
        let row = Row(vec![
            SqlValue::Int(7),
            SqlValue::Real(3.0),
            SqlValue::Text("x".into()),
            SqlValue::Null,
        ]);
        assert_eq!(row.i64(0).unwrap(), 7);
        assert_eq!(row.i64(1).unwrap(), 3);
        assert_eq!(row.opt_i64(3).unwrap(), None);
        let err = row.i64(2).unwrap_err().to_string();
        assert!(err.contains("column 2") && err.contains("INTEGER"), "{err}");
        assert!(row.text(9).is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for (t, s) in [(0, 0), (1_700_000_000_000, 42), (-5, 3)] {
            assert_eq!(decode_cursor(&encode_cursor(t, s)).unwrap(), (t, s));
        }
        for bad in ["", "x", "1.", ".1", "1.2.x", "a.b"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
        assert_eq!(hex_decode(&hex_encode("sku/é 1")).as_deref(), Some("sku/é 1"));
        assert!(hex_decode("zz").is_none() && hex_decode("abc").is_none());
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(clamp_limit(0), 50);
        assert_eq!(clamp_limit(1), 1);
        assert_eq!(clamp_limit(5000), 1000);
    }
}
