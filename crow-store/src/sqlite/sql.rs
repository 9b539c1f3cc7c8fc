//! [`Sql`] over the embedded database: reads on the read pool, each batch as one request of the
//! writer thread's group commit (so it is atomic, inside its own savepoint, and shares a commit
//! with the writes pending beside it).

use rusqlite::types::{ToSqlOutput, Value as Native, ValueRef};
use rusqlite::{Connection, ToSql};

use super::SqliteStore;
use crate::error::StoreError;
use crate::sql::{Done, Local, Row, Sql, SqlValue, Stmt};

impl ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Owned(Native::Null),
            SqlValue::Int(i) => ToSqlOutput::Owned(Native::Integer(*i)),
            SqlValue::Real(f) => ToSqlOutput::Owned(Native::Real(*f)),
            SqlValue::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            SqlValue::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn value(v: ValueRef<'_>) -> Result<SqlValue, StoreError> {
    Ok(match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Int(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(
            std::str::from_utf8(t)
                .map_err(|e| StoreError::Internal(format!("stored text is not UTF-8: {e}")))?
                .to_owned(),
        ),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    })
}

/// Runs a prepared statement once with `params`: its rows.
fn rows_of(prepared: &mut rusqlite::CachedStatement<'_>, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
    let columns = prepared.column_count();
    let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(columns);
        for i in 0..columns {
            row.push(value(r.get_ref(i)?)?);
        }
        out.push(Row(row));
    }
    Ok(out)
}

/// Runs one statement on `conn`: its rows, and `changes()` when it wrote.
pub(crate) fn run(conn: &Connection, stmt: &Stmt) -> Result<Done, StoreError> {
    #[cfg(debug_assertions)]
    stmt.check_d1()?;
    let mut prepared = conn.prepare_cached(stmt.sql())?;
    let readonly = prepared.readonly();
    let rows = rows_of(&mut prepared, stmt.params())?;
    let changes = if readonly { 0 } else { conn.changes() };
    Ok(Done { changes, rows })
}

/// Runs one statement of a batch, in its [`Local`] form when it has one; `previous` is what the
/// statement before it changed.
fn run_local(conn: &Connection, stmt: &Stmt, previous: u64) -> Result<Done, StoreError> {
    match stmt.local() {
        None => run(conn, stmt),
        Some(Local::IfChanged(inner)) if previous > 0 => run_local(conn, inner, previous),
        Some(Local::IfChanged(_)) => Ok(Done::default()),
        Some(Local::Each { sql, rows }) => {
            let mut prepared = conn.prepare_cached(sql)?;
            let mut out = Done::default();
            for params in rows {
                out.rows.extend(rows_of(&mut prepared, params)?);
                out.changes += conn.changes();
            }
            Ok(out)
        }
    }
}

#[async_trait::async_trait]
impl Sql for SqliteStore {
    fn in_process(&self) -> bool {
        true
    }

    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
        self.read(move |conn| Ok(run(conn, &stmt)?.rows)).await
    }

    async fn query_point(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
        self.read_point(|conn| Ok(run(conn, &stmt)?.rows))
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Done>, StoreError> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        self.write(stmts.len(), move |conn| {
            let mut out = Vec::with_capacity(stmts.len());
            let mut previous = 0;
            for stmt in &stmts {
                let done = run_local(conn, stmt, previous)?;
                previous = done.changes;
                out.push(done);
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_all_or_nothing_and_sees_changes_across_statements() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        let setting = |key: &str| {
            Stmt::new("INSERT INTO settings (org_id, key, value, updated_at) VALUES ('', ?1, '1', 0)").bind(key)
        };
        store.execute(setting("taken")).await.unwrap();
        let err = store.batch(vec![setting("new"), setting("taken")]).await.unwrap_err();
        assert!(err.is_constraint_violation(), "{err}");
        let done = store
            .batch(vec![
                Stmt::new(
                    "INSERT OR IGNORE INTO settings (org_id, key, value, updated_at) \
                     SELECT '', value, '1', 0 FROM json_each(?1) RETURNING key",
                )
                .bind_list(&["a", "taken", "b"]),
                Stmt::new(
                    "INSERT INTO settings (org_id, key, value, updated_at) \
                     SELECT '', 'inserted-' || changes(), '1', 0 WHERE changes() > 0",
                ),
            ])
            .await
            .unwrap();
        assert_eq!(done[0].changes, 2);
        assert_eq!(done[0].rows.len(), 2);
        assert_eq!(done[1].changes, 1);
        let keys: Vec<String> = store
            .query(Stmt::new("SELECT key FROM settings ORDER BY key"))
            .await
            .unwrap()
            .iter()
            .map(|r| r.text(0).unwrap())
            .collect();
        assert_eq!(keys, ["a", "b", "inserted-2", "taken"], "the failed batch left nothing");
    }
}
