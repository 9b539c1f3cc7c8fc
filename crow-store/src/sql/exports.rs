//! [`ExportStore`](crow_core::ports::ExportStore) on the SQL layer: the `exports` table
//! (migration 0006).
//!
//! A new export and its follow-up jobs (the `export-report` job) are one [`Sql::batch`], so they
//! commit together. An export id taken in the org fails the insert on the PRIMARY KEY, which is
//! mapped to the `Conflict` the port promises.

use crow_core::export::{Export, ExportFilters, ExportFormat, ExportResource, ExportStatus};
use crow_core::ports::{NewJob, Page};

use super::queue::{JobRow, insert_jobs};
use super::{Row, Sql, Stmt, clamp_limit, decode_id_cursor, encode_id_cursor, page_of};
use crate::error::StoreError;

/// The columns [`export_of`] reads, in order, each under a plain distinct name.
const COLS: &str = "id AS id, org_id AS org_id, resource AS resource, format AS format, filters AS filters, \
                    status AS status, created_at AS created_at, started_at AS started_at, \
                    finished_at AS finished_at, row_count AS row_count, byte_count AS byte_count, \
                    error AS error, object_key AS object_key";

fn bad_value(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt {
        path: "exports".into(),
        reason: format!("unknown {what} {v:?}"),
    }
}

/// An export read with [`COLS`].
fn export_of(r: &Row) -> Result<Export, StoreError> {
    let resource = r.text(2)?;
    let format = r.text(3)?;
    let status = r.text(5)?;
    Ok(Export {
        id: r.text(0)?,
        org_id: r.text(1)?,
        resource: ExportResource::parse(&resource).ok_or_else(|| bad_value("resource", &resource))?,
        format: ExportFormat::parse(&format).ok_or_else(|| bad_value("format", &format))?,
        filters: serde_json::from_str::<ExportFilters>(&r.text(4)?)?,
        status: ExportStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
        created_at: r.i64(6)?,
        started_at: r.opt_i64(7)?,
        finished_at: r.opt_i64(8)?,
        rows: r.opt_i64(9)?.map(|n| n.max(0) as u64),
        bytes: r.opt_i64(10)?.map(|n| n.max(0) as u64),
        error: r.opt_text(11)?,
        key: r.opt_text(12)?,
    })
}

fn get_stmt(org_id: &str, id: &str) -> Stmt {
    Stmt::new(format!("SELECT {COLS} FROM exports WHERE org_id = ?1 AND id = ?2"))
        .bind(org_id)
        .bind(id)
}

/// [`ExportStore::create_export`](crow_core::ports::ExportStore::create_export): stores the
/// export and enqueues `follow_up` (enqueued at the export's `created_at`) in one batch.
/// `Invalid` for an empty id (or an empty queue name of a job); `Conflict` ("an export with id
/// "X" exists") when the org has one with this id, and then nothing is stored or enqueued.
pub async fn create_export<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    export: &Export,
    follow_up: Vec<NewJob>,
) -> Result<(), StoreError> {
    if export.id.is_empty() {
        return Err(StoreError::invalid("id", "empty export id"));
    }
    let jobs = JobRow::all(follow_up)?;
    let filters = serde_json::to_string(&export.filters)?;
    let e = export;
    let mut stmts = vec![
        Stmt::new(
            "INSERT INTO exports (org_id, id, resource, format, filters, status, created_at, started_at, \
             finished_at, row_count, byte_count, error, object_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .bind(org_id)
        .bind(&e.id)
        .bind(e.resource.as_str())
        .bind(e.format.as_str())
        .bind(filters)
        .bind(e.status.as_str())
        .bind(e.created_at)
        .bind(e.started_at)
        .bind(e.finished_at)
        .bind(e.rows.map(|n| n as i64))
        .bind(e.bytes.map(|n| n as i64))
        .bind(e.error.as_deref())
        .bind(e.key.as_deref()),
    ];
    if !jobs.is_empty() {
        stmts.push(insert_jobs(&jobs, e.created_at, false));
    }
    match db.batch(stmts).await {
        Ok(_) => Ok(()),
        Err(err) if err.is_constraint_violation() => {
            // The batch had no effect; say why when it is the id.
            if db.query_one(get_stmt(org_id, &e.id)).await?.is_some() {
                Err(StoreError::Conflict(format!("an export with id {:?} exists", e.id)))
            } else {
                Err(err)
            }
        }
        Err(err) => Err(err),
    }
}

/// [`ExportStore::get_export`](crow_core::ports::ExportStore::get_export): one export of the org.
pub async fn get_export<S: Sql + ?Sized>(db: &S, org_id: &str, id: &str) -> Result<Option<Export>, StoreError> {
    db.query_one(get_stmt(org_id, id))
        .await?
        .as_ref()
        .map(export_of)
        .transpose()
}

/// [`ExportStore::list_exports`](crow_core::ports::ExportStore::list_exports): the org's exports,
/// newest first (`created_at`, then id, both descending); the cursor is the `(created_at, id)` of
/// the last export of the previous page (anything else is `Invalid` naming `cursor`).
pub async fn list_exports<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<Export>, StoreError> {
    let limit = clamp_limit(limit);
    let after = cursor.map(decode_id_cursor).transpose()?;
    let stmt = match after {
        Some((t, id)) => Stmt::new(format!(
            "SELECT {COLS} FROM exports WHERE org_id = ?1 AND (created_at < ?3 OR (created_at = ?3 AND id < ?4)) \
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        ))
        .bind(org_id)
        .bind(limit + 1)
        .bind(t)
        .bind(id),
        None => Stmt::new(format!(
            "SELECT {COLS} FROM exports WHERE org_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2"
        ))
        .bind(org_id)
        .bind(limit + 1),
    };
    let data = db
        .query(stmt)
        .await?
        .iter()
        .map(export_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(data, limit, |e| encode_id_cursor(e.created_at, &e.id)))
}

/// [`ExportStore::update_export`](crow_core::ports::ExportStore::update_export): replaces the
/// progress fields of the org's export with this id; `false` when there is none.
pub async fn update_export<S: Sql + ?Sized>(db: &S, org_id: &str, export: &Export) -> Result<bool, StoreError> {
    let e = export;
    let done = db
        .execute(
            Stmt::new(
                "UPDATE exports SET status = ?3, started_at = ?4, finished_at = ?5, row_count = ?6, \
                 byte_count = ?7, error = ?8, object_key = ?9 WHERE org_id = ?1 AND id = ?2",
            )
            .bind(org_id)
            .bind(&e.id)
            .bind(e.status.as_str())
            .bind(e.started_at)
            .bind(e.finished_at)
            .bind(e.rows.map(|n| n as i64))
            .bind(e.bytes.map(|n| n as i64))
            .bind(e.error.as_deref())
            .bind(e.key.as_deref()),
        )
        .await?;
    Ok(done.changes > 0)
}
