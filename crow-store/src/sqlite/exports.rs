//! [`ExportStore`] over SQLite: the `exports` table (migration 0006). A new export and its
//! `export-report` job commit in one transaction.

use crow_core::export::{Export, ExportFilters, ExportFormat, ExportResource, ExportStatus};
use crow_core::ports::{ExportStore, NewJob, Page};
use rusqlite::{Connection, OptionalExtension, params};

use super::queue::{JobRow, insert_jobs};
use super::{SqliteStore, clamp_limit, decode_id_cursor, encode_id_cursor};
use crate::error::StoreError;

const COLS: &str = "id, org_id, resource, format, filters, status, created_at, started_at, finished_at, \
                    row_count, byte_count, error, object_key";

fn bad_value(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt {
        path: "exports".into(),
        reason: format!("unknown {what} {v:?}"),
    }
}

fn export_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Export, StoreError>> {
    let resource: String = r.get(2)?;
    let format: String = r.get(3)?;
    let filters: String = r.get(4)?;
    let status: String = r.get(5)?;
    let rows: Option<i64> = r.get(9)?;
    let bytes: Option<i64> = r.get(10)?;
    let id: String = r.get(0)?;
    let org_id: String = r.get(1)?;
    let (created_at, started_at, finished_at) = (r.get(6)?, r.get(7)?, r.get(8)?);
    let (error, key) = (r.get(11)?, r.get(12)?);
    Ok((|| {
        Ok(Export {
            id,
            org_id,
            resource: ExportResource::parse(&resource).ok_or_else(|| bad_value("resource", &resource))?,
            format: ExportFormat::parse(&format).ok_or_else(|| bad_value("format", &format))?,
            filters: serde_json::from_str::<ExportFilters>(&filters)?,
            status: ExportStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
            created_at,
            started_at,
            finished_at,
            rows: rows.map(|n| n.max(0) as u64),
            bytes: bytes.map(|n| n.max(0) as u64),
            error,
            key,
        })
    })())
}

fn get(conn: &Connection, org: &str, id: &str) -> Result<Option<Export>, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLS} FROM exports WHERE org_id = ?1 AND id = ?2"))?
        .query_row(params![org, id], export_row)
        .optional()?
        .transpose()
}

#[async_trait::async_trait]
impl ExportStore for SqliteStore {
    async fn create_export(&self, org_id: &str, export: &Export, follow_up: Vec<NewJob>) -> crow_core::Result<()> {
        if export.id.is_empty() {
            return Err(StoreError::invalid("id", "empty export id").into());
        }
        let jobs = follow_up.into_iter().map(JobRow::new).collect::<Result<Vec<_>, _>>()?;
        let filters = serde_json::to_string(&export.filters).map_err(StoreError::from)?;
        let org = org_id.to_owned();
        let e = export.clone();
        Ok(self
            .write(1 + jobs.len(), move |conn| {
                if get(conn, &org, &e.id)?.is_some() {
                    return Err(StoreError::Conflict(format!("an export with id {:?} exists", e.id)));
                }
                conn.prepare_cached(
                    "INSERT INTO exports (org_id, id, resource, format, filters, status, created_at, started_at, \
                     finished_at, row_count, byte_count, error, object_key) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?
                .execute(params![
                    org,
                    e.id,
                    e.resource.as_str(),
                    e.format.as_str(),
                    filters,
                    e.status.as_str(),
                    e.created_at,
                    e.started_at,
                    e.finished_at,
                    e.rows.map(|n| n as i64),
                    e.bytes.map(|n| n as i64),
                    e.error,
                    e.key,
                ])?;
                insert_jobs(conn, &jobs, e.created_at)?;
                Ok(())
            })
            .await?)
    }

    async fn get_export(&self, org_id: &str, id: &str) -> crow_core::Result<Option<Export>> {
        let (org, id) = (org_id.to_owned(), id.to_owned());
        Ok(self.read_point(move |conn| get(conn, &org, &id))?)
    }

    async fn list_exports(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> crow_core::Result<Page<Export>> {
        let limit = clamp_limit(limit);
        let after = cursor.map(decode_id_cursor).transpose()?;
        let org = org_id.to_owned();
        Ok(self
            .read(move |conn| {
                let (t, id) = match &after {
                    Some((t, id)) => (Some(*t), Some(id.clone())),
                    None => (None, None),
                };
                let after_clause = if after.is_some() {
                    "(created_at < ?3 OR (created_at = ?3 AND id < ?4))"
                } else {
                    "?3 IS NULL AND ?4 IS NULL"
                };
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLS} FROM exports WHERE org_id = ?1 AND {after_clause} \
                     ORDER BY created_at DESC, id DESC LIMIT ?2"
                ))?;
                let data = stmt
                    .query_map(params![org, limit as i64 + 1, t, id], export_row)?
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(super::page_of(data, limit, |e| encode_id_cursor(e.created_at, &e.id)))
            })
            .await?)
    }

    async fn update_export(&self, org_id: &str, export: &Export) -> crow_core::Result<bool> {
        let org = org_id.to_owned();
        let e = export.clone();
        Ok(self
            .write(1, move |conn| {
                let n = conn
                    .prepare_cached(
                        "UPDATE exports SET status = ?3, started_at = ?4, finished_at = ?5, row_count = ?6, \
                         byte_count = ?7, error = ?8, object_key = ?9 WHERE org_id = ?1 AND id = ?2",
                    )?
                    .execute(params![
                        org,
                        e.id,
                        e.status.as_str(),
                        e.started_at,
                        e.finished_at,
                        e.rows.map(|n| n as i64),
                        e.bytes.map(|n| n as i64),
                        e.error,
                        e.key,
                    ])?;
                Ok(n > 0)
            })
            .await?)
    }
}
