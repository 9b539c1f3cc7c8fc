//! [`AccountStore`](crow_core::ports::AccountStore) on the SQL layer: organizations, their
//! pseudonym secrets, API keys, users and the append-only audit log.
//!
//! Each port method is a free function over a [`Sql`] executor. Writes are one
//! [`Sql::batch`]; where the old transactional code read before writing (does the org exist?),
//! the PRIMARY KEY / UNIQUE constraints close the race and a constraint violation is mapped to
//! the `Conflict` the port promises. No cache lives here: [`SqliteStore`](crate::SqliteStore)
//! keeps its key cache in front of [`verify_key`].

use crow_core::access::{ApiKey, AuditEntry, AuditQuery, NewApiKey, NewAuditEntry, Role, User};
use crow_core::keys::{self, NewOrgKeys};
use crow_core::model::{KeyKind, Millis, Organization};
use crow_core::ports::{KeyGrant, Page};
use serde::Serialize;

use super::{Row, Sql, Stmt, clamp_limit, page_of};
use crate::error::StoreError;

const ORG_COLUMNS: &str = "id, name, created_at";
const KEY_COLUMNS: &str = "prefix, kind, role, name, created_at, revoked_at";
const USER_COLUMNS: &str = "id, email, name, role, created_at";

// ---------------------------------------------------------------------------------------------
// Organizations
// ---------------------------------------------------------------------------------------------

/// The statements creating an org: the org, its pseudonym secret, its write key and secret API
/// key, and the `org.create` audit row. [`create_org`] runs them as one batch; the CLI renders
/// them with [`Stmt::to_literal_sql`] for `wrangler d1 execute`.
///
/// An existing org id or key prefix fails the statements on the PRIMARY KEY constraint (so the
/// whole batch, or the whole file, has no effect). An empty org id is `Invalid`.
pub fn insert_org_stmts(org: &Organization, keys: &NewOrgKeys) -> Result<Vec<Stmt>, StoreError> {
    if org.id.is_empty() {
        return Err(StoreError::invalid("id", "empty organization id"));
    }
    let key = |prefix: &str, kind: &'static str, hash: &str| {
        Stmt::new("INSERT INTO api_keys (prefix, org_id, kind, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(prefix)
            .bind(&org.id)
            .bind(kind)
            .bind(hash)
            .bind(org.created_at)
    };
    Ok(vec![
        Stmt::new("INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)")
            .bind(&org.id)
            .bind(&org.name)
            .bind(org.created_at),
        Stmt::new("INSERT INTO org_secrets (org_id, pseudonym_key, created_at) VALUES (?1, ?2, ?3)")
            .bind(&org.id)
            .bind(keys.pseudonym_key.as_slice())
            .bind(org.created_at),
        key(&keys.write_key, "write", &keys::hash_secret(&keys.write_key)),
        key(&keys.api_key_prefix, "secret", &keys.api_key_hash),
        Stmt::new(
            "INSERT INTO audit_log (org_id, at, actor, action, target) VALUES (?1, ?2, 'system', 'org.create', ?1)",
        )
        .bind(&org.id)
        .bind(org.created_at),
    ])
}

/// Creates an org with its keys ([`insert_org_stmts`] as one batch). `Conflict` ("organization
/// X exists", "a write key with this prefix exists", "a secret key with this prefix exists")
/// when the id or a key prefix is taken; then nothing of the org is stored.
pub async fn create_org<S: Sql + ?Sized>(db: &S, org: &Organization, keys: &NewOrgKeys) -> Result<(), StoreError> {
    let stmts = insert_org_stmts(org, keys)?;
    match db.batch(stmts).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_constraint_violation() => Err(org_conflict(db, org, keys).await?.unwrap_or(e)),
        Err(e) => Err(e),
    }
}

/// Why creating `org` violated a constraint, in the order the checks used to run: the org id,
/// then the write key, then the secret key's prefix. `None` when none of them is taken (any
/// more): the caller keeps the database's error.
async fn org_conflict<S: Sql + ?Sized>(
    db: &S,
    org: &Organization,
    keys: &NewOrgKeys,
) -> Result<Option<StoreError>, StoreError> {
    let Some(row) = db
        .query_one(
            Stmt::new(
                "SELECT EXISTS (SELECT 1 FROM organizations WHERE id = ?1) AS org_taken, \
                 EXISTS (SELECT 1 FROM api_keys WHERE prefix = ?2) AS write_taken, \
                 EXISTS (SELECT 1 FROM api_keys WHERE prefix = ?3) AS secret_taken",
            )
            .bind(&org.id)
            .bind(&keys.write_key)
            .bind(&keys.api_key_prefix),
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(if row.bool(0)? {
        Some(StoreError::Conflict(format!("organization {} exists", org.id)))
    } else if row.bool(1)? {
        Some(StoreError::Conflict("a write key with this prefix exists".into()))
    } else if row.bool(2)? {
        Some(StoreError::Conflict("a secret key with this prefix exists".into()))
    } else {
        None
    })
}

/// One org.
pub async fn get_org<S: Sql + ?Sized>(db: &S, org_id: &str) -> Result<Option<Organization>, StoreError> {
    db.query_one(Stmt::new(format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?1")).bind(org_id))
        .await?
        .as_ref()
        .map(org_of)
        .transpose()
}

/// All orgs, oldest first.
pub async fn list_orgs<S: Sql + ?Sized>(db: &S) -> Result<Vec<Organization>, StoreError> {
    db.query(Stmt::new(format!(
        "SELECT {ORG_COLUMNS} FROM organizations ORDER BY created_at, rowid"
    )))
    .await?
    .iter()
    .map(org_of)
    .collect()
}

/// Renames an org; `NotFound` ("organization X") when it does not exist.
pub async fn update_org<S: Sql + ?Sized>(db: &S, org_id: &str, name: &str) -> Result<Organization, StoreError> {
    let done = db
        .execute(
            Stmt::new(format!(
                "UPDATE organizations SET name = ?2 WHERE id = ?1 RETURNING {ORG_COLUMNS}"
            ))
            .bind(org_id)
            .bind(name),
        )
        .await?;
    match done.rows.first() {
        Some(row) => org_of(row),
        None => Err(StoreError::NotFound(format!("organization {org_id}"))),
    }
}

/// The ingest (write) grant of an org, for trusted callers; `None` for an unknown org.
pub async fn org_grant<S: Sql + ?Sized>(db: &S, org_id: &str) -> Result<Option<KeyGrant>, StoreError> {
    let row = db
        .query_one(Stmt::new("SELECT pseudonym_key FROM org_secrets WHERE org_id = ?1").bind(org_id))
        .await?;
    row.map(|r| {
        Ok(KeyGrant {
            org_id: org_id.to_owned(),
            kind: KeyKind::Write,
            prefix: String::new(),
            role: Role::Viewer,
            pseudonym_key: r.blob(0)?,
        })
    })
    .transpose()
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

/// A live (not revoked) key as stored, with its org's pseudonym secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The org.
    pub org_id: String,
    /// `write` or `secret`.
    pub kind: String,
    /// SHA-256 (hex) of the whole key.
    pub hash: String,
    /// The org's secret for keyed pseudonyms.
    pub pseudonym_key: Vec<u8>,
    /// The role a secret key acts with.
    pub role: String,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("org_id", &self.org_id)
            .field("kind", &self.kind)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The lookup prefix and kind of a presented key (the whole key for a write key, the 12-hex
/// prefix of a secret key), or `None` when it has the shape of neither.
pub fn presented_key(presented: &str) -> Option<(&str, KeyKind)> {
    if keys::is_write_key(presented) {
        Some((presented, KeyKind::Write))
    } else {
        keys::api_key_prefix(presented).map(|prefix| (prefix, KeyKind::Secret))
    }
}

/// True when `presented` hashes to `hash` (compared in constant time).
pub fn secret_matches(presented: &str, hash: &str) -> bool {
    keys::constant_time_eq(keys::hash_secret(presented).as_bytes(), hash.as_bytes())
}

/// The live key stored under `prefix`, with its org's pseudonym secret; `None` when there is
/// none or it is revoked.
pub async fn lookup_key<S: Sql + ?Sized>(db: &S, prefix: &str) -> Result<Option<StoredKey>, StoreError> {
    let row = db
        .query_one(
            Stmt::new(
                "SELECT k.org_id, k.kind, k.hash, s.pseudonym_key, k.role FROM api_keys k \
                 JOIN org_secrets s ON s.org_id = k.org_id WHERE k.prefix = ?1 AND k.revoked_at IS NULL",
            )
            .bind(prefix),
        )
        .await?;
    row.map(|r| {
        Ok(StoredKey {
            org_id: r.text(0)?,
            kind: r.text(1)?,
            hash: r.text(2)?,
            pseudonym_key: r.blob(3)?,
            role: r.text(4)?,
        })
    })
    .transpose()
}

/// [`authenticate`], also returning the stored hash of the key, for a caller that caches the
/// grant and checks later presentations of a secret key against the hash itself.
pub async fn verify_key<S: Sql + ?Sized>(db: &S, presented: &str) -> Result<Option<(KeyGrant, String)>, StoreError> {
    let Some((prefix, kind)) = presented_key(presented) else {
        return Ok(None);
    };
    let Some(stored) = lookup_key(db, prefix).await? else {
        return Ok(None);
    };
    let expected = kind_str(kind);
    if stored.kind != expected || !secret_matches(presented, &stored.hash) {
        return Ok(None);
    }
    let grant = KeyGrant {
        org_id: stored.org_id,
        kind,
        prefix: prefix.to_owned(),
        role: Role::parse(&stored.role).unwrap_or(Role::Viewer),
        pseudonym_key: stored.pseudonym_key,
    };
    Ok(Some((grant, stored.hash)))
}

/// Resolves a presented key (write key or secret API key) to its grant, or `None` (unknown
/// shape, unknown or revoked prefix, wrong kind, wrong secret).
pub async fn authenticate<S: Sql + ?Sized>(db: &S, presented: &str) -> Result<Option<KeyGrant>, StoreError> {
    Ok(verify_key(db, presented).await?.map(|(grant, _)| grant))
}

/// Revokes a key by its prefix (the whole write key, or a secret key's 12-hex prefix) and
/// logs `key.revoke` (actor `system`). Returns false when no live key has that prefix.
pub async fn revoke_key<S: Sql + ?Sized>(db: &S, prefix: &str, now: Millis) -> Result<bool, StoreError> {
    let done = db
        .batch(vec![
            Stmt::new("UPDATE api_keys SET revoked_at = ?2 WHERE prefix = ?1 AND revoked_at IS NULL RETURNING org_id")
                .bind(prefix)
                .bind(now),
            Stmt::new(
                "INSERT INTO audit_log (org_id, at, actor, action, target) \
                 SELECT org_id, ?2, 'system', 'key.revoke', ?1 FROM api_keys \
                 WHERE prefix = ?1 AND revoked_at = ?2 AND changes() > 0",
            )
            .bind(prefix)
            .bind(now),
        ])
        .await?;
    Ok(done.first().is_some_and(|d| !d.rows.is_empty()))
}

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

/// Stores a new key of the org (its secret only as the hash). `Conflict` ("a key with this
/// prefix exists") on a constraint violation.
pub async fn create_api_key<S: Sql + ?Sized>(db: &S, org_id: &str, key: &NewApiKey) -> Result<ApiKey, StoreError> {
    db.execute(
        Stmt::new(
            "INSERT INTO api_keys (prefix, org_id, kind, hash, created_at, role, name) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&key.prefix)
        .bind(org_id)
        .bind(kind_str(key.kind))
        .bind(&key.hash)
        .bind(key.created_at)
        .bind(key.role.as_str())
        .bind(key.name.as_deref()),
    )
    .await
    .map_err(|e| conflict_or(e, || "a key with this prefix exists".into()))?;
    Ok(ApiKey {
        prefix: key.prefix.clone(),
        kind: key.kind,
        role: key.role,
        name: key.name.clone(),
        created_at: key.created_at,
        revoked_at: None,
    })
}

/// The org's keys (revoked ones too), newest first; the cursor is `created_at:prefix` of the
/// last key of the previous page (anything else is `Invalid`).
pub async fn list_api_keys<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<ApiKey>, StoreError> {
    let after = cursor.map(decode_time_cursor).transpose()?;
    let limit = clamp_limit(limit);
    let (t, p) = match after {
        Some((t, p)) => (Some(t), Some(p)),
        None => (None, None),
    };
    let rows = db
        .query(
            Stmt::new(format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = ?1 \
                 AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND prefix < ?3)) \
                 ORDER BY created_at DESC, prefix DESC LIMIT ?4"
            ))
            .bind(org_id)
            .bind(t)
            .bind(p)
            .bind(limit + 1),
        )
        .await?;
    let keys = rows.iter().map(key_of).collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(keys, limit, |k| format!("{}:{}", k.created_at, k.prefix)))
}

/// One key of the org by prefix; `None` when it is not the org's.
pub async fn get_api_key<S: Sql + ?Sized>(db: &S, org_id: &str, prefix: &str) -> Result<Option<ApiKey>, StoreError> {
    db.query_one(key_stmt(org_id, prefix))
        .await?
        .as_ref()
        .map(key_of)
        .transpose()
}

/// Revokes one key of the org; returns it as revoked, or `None` when the org has no such key
/// (an already revoked key is returned as is, keeping its first revocation time).
pub async fn revoke_api_key<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    prefix: &str,
    now: Millis,
) -> Result<Option<ApiKey>, StoreError> {
    let done = db
        .batch(vec![
            Stmt::new("UPDATE api_keys SET revoked_at = ?3 WHERE org_id = ?1 AND prefix = ?2 AND revoked_at IS NULL")
                .bind(org_id)
                .bind(prefix)
                .bind(now),
            key_stmt(org_id, prefix),
        ])
        .await?;
    done.get(1).and_then(|d| d.rows.first()).map(key_of).transpose()
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

/// Adds a user. `Conflict` ("a user with email X exists") on a constraint violation.
pub async fn create_user<S: Sql + ?Sized>(db: &S, org_id: &str, user: &User) -> Result<(), StoreError> {
    db.execute(
        Stmt::new("INSERT INTO users (id, org_id, email, name, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .bind(&user.id)
            .bind(org_id)
            .bind(&user.email)
            .bind(user.name.as_deref())
            .bind(user.role.as_str())
            .bind(user.created_at),
    )
    .await
    .map_err(|e| conflict_or(e, || format!("a user with email {} exists", user.email)))?;
    Ok(())
}

/// The org's users by email; the cursor is the last email of the previous page.
pub async fn list_users<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<User>, StoreError> {
    let limit = clamp_limit(limit);
    let rows = db
        .query(
            Stmt::new(format!(
                "SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND (?2 IS NULL OR email > ?2) \
                 ORDER BY email LIMIT ?3"
            ))
            .bind(org_id)
            .bind(cursor)
            .bind(limit + 1),
        )
        .await?;
    let users = rows.iter().map(user_of).collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(users, limit, |u| u.email.clone()))
}

/// One user of the org.
pub async fn get_user<S: Sql + ?Sized>(db: &S, org_id: &str, user_id: &str) -> Result<Option<User>, StoreError> {
    db.query_one(
        Stmt::new(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND id = ?2"
        ))
        .bind(org_id)
        .bind(user_id),
    )
    .await?
    .as_ref()
    .map(user_of)
    .transpose()
}

/// Changes a user's name (`Some(None)` clears it) and/or role; `None` when the org has no such
/// user. With nothing to change, it is [`get_user`].
pub async fn update_user<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    user_id: &str,
    name: Option<Option<String>>,
    role: Option<Role>,
) -> Result<Option<User>, StoreError> {
    if name.is_none() && role.is_none() {
        return get_user(db, org_id, user_id).await;
    }
    let done = db
        .execute(
            Stmt::new(format!(
                "UPDATE users SET name = CASE WHEN ?3 THEN ?4 ELSE name END, role = coalesce(?5, role) \
                 WHERE org_id = ?1 AND id = ?2 RETURNING {USER_COLUMNS}"
            ))
            .bind(org_id)
            .bind(user_id)
            .bind(name.is_some())
            .bind(name.flatten())
            .bind(role.map(Role::as_str)),
        )
        .await?;
    done.rows.first().map(user_of).transpose()
}

/// Removes a user; false when the org has no such user.
pub async fn delete_user<S: Sql + ?Sized>(db: &S, org_id: &str, user_id: &str) -> Result<bool, StoreError> {
    let done = db
        .execute(
            Stmt::new("DELETE FROM users WHERE org_id = ?1 AND id = ?2")
                .bind(org_id)
                .bind(user_id),
        )
        .await?;
    Ok(done.changes > 0)
}

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------

/// One element of the JSON array [`append_audit`] binds.
#[derive(Serialize)]
struct AuditRow<'a> {
    org_id: &'a str,
    at: Millis,
    actor: &'a str,
    action: &'a str,
    target: Option<&'a str>,
    /// The detail as JSON text (`"null"` for none), as the column stores it.
    detail: String,
    ip: Option<&'a str>,
}

/// Appends audit rows, in order, as one statement.
pub async fn append_audit<S: Sql + ?Sized>(db: &S, entries: &[NewAuditEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let rows: Vec<AuditRow<'_>> = entries
        .iter()
        .map(|e| AuditRow {
            org_id: &e.org_id,
            at: e.at,
            actor: &e.actor,
            action: &e.action,
            target: e.target.as_deref(),
            detail: e.detail.to_string(),
            ip: e.ip.as_deref(),
        })
        .collect();
    db.execute(
        Stmt::new(
            "INSERT INTO audit_log (org_id, at, actor, action, target, detail, ip) \
             SELECT j.value ->> '$.org_id', j.value ->> '$.at', j.value ->> '$.actor', j.value ->> '$.action', \
             j.value ->> '$.target', j.value ->> '$.detail', j.value ->> '$.ip' \
             FROM json_each(?1) AS j ORDER BY j.key",
        )
        .bind_list(&rows),
    )
    .await?;
    Ok(())
}

/// The org's audit rows, newest first, filtered by action, actor and time; the cursor is the
/// `seq` of the last row of the previous page (anything else is `Invalid`).
pub async fn list_audit<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    query: &AuditQuery,
) -> Result<Page<AuditEntry>, StoreError> {
    let before = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| StoreError::invalid("cursor", "not a cursor of this listing"))
        })
        .transpose()?;
    let limit = clamp_limit(query.limit);
    let rows = db
        .query(
            Stmt::new(
                "SELECT seq, at, actor, action, target, ip, detail FROM audit_log WHERE org_id = ?1 \
                 AND (?2 IS NULL OR seq < ?2) AND (?3 IS NULL OR action = ?3) \
                 AND (?4 IS NULL OR actor = ?4) AND (?5 IS NULL OR at >= ?5) \
                 ORDER BY seq DESC LIMIT ?6",
            )
            .bind(org_id)
            .bind(before)
            .bind(query.action.as_deref())
            .bind(query.actor.as_deref())
            .bind(query.since)
            .bind(limit + 1),
        )
        .await?;
    let entries = rows
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                seq: r.i64(0)?,
                at: r.i64(1)?,
                actor: r.text(2)?,
                action: r.text(3)?,
                target: r.opt_text(4)?,
                ip: r.opt_text(5)?,
                detail: r
                    .opt_text(6)?
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or(serde_json::Value::Null),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(page_of(entries, limit, |e| e.seq.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

fn kind_str(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Write => "write",
        KeyKind::Secret => "secret",
    }
}

/// `e` as `Conflict(message)` when it is a constraint violation, else as is.
fn conflict_or(e: StoreError, message: impl FnOnce() -> String) -> StoreError {
    if e.is_constraint_violation() {
        StoreError::Conflict(message())
    } else {
        e
    }
}

/// A `time:id` cursor of a newest-first listing.
fn decode_time_cursor(c: &str) -> Result<(i64, String), StoreError> {
    c.split_once(':')
        .and_then(|(t, id)| Some((t.parse().ok()?, id.to_owned())))
        .ok_or_else(|| StoreError::invalid("cursor", "not a cursor of this listing"))
}

/// One key of an org.
fn key_stmt(org_id: &str, prefix: &str) -> Stmt {
    Stmt::new(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = ?1 AND prefix = ?2"
    ))
    .bind(org_id)
    .bind(prefix)
}

fn org_of(r: &Row) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: r.text(0)?,
        name: r.text(1)?,
        created_at: r.i64(2)?,
    })
}

fn key_of(r: &Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        prefix: r.text(0)?,
        kind: if r.text(1)? == "write" {
            KeyKind::Write
        } else {
            KeyKind::Secret
        },
        role: Role::parse(&r.text(2)?).unwrap_or(Role::Viewer),
        name: r.opt_text(3)?,
        created_at: r.i64(4)?,
        revoked_at: r.opt_i64(5)?,
    })
}

fn user_of(r: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: r.text(0)?,
        email: r.text(1)?,
        name: r.opt_text(2)?,
        role: Role::parse(&r.text(3)?).unwrap_or(Role::Viewer),
        created_at: r.i64(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_statements_render_as_literal_sql() {
        let (org, _creds, new_keys) = keys::generate("O'Brien & Co", 7, &[3u8; keys::RANDOM_BYTES]);
        let stmts = insert_org_stmts(&org, &new_keys).unwrap();
        assert_eq!(stmts.len(), 5);
        let sql: Vec<String> = stmts.iter().map(|s| s.to_literal_sql().unwrap()).collect();
        assert!(sql[0].contains("'O''Brien & Co'"), "{}", sql[0]);
        assert!(sql[1].contains("X'"), "the pseudonym key is a blob literal: {}", sql[1]);
        assert!(sql[2].contains(&format!("'{}'", new_keys.write_key)));
        assert!(sql[3].contains(&format!("'{}'", new_keys.api_key_hash)));
        assert!(sql[4].contains("'org.create'") && !sql.iter().any(|s| s.contains('?')));
        for s in &stmts {
            s.check_d1().unwrap();
        }
        let mut nameless = org.clone();
        nameless.id.clear();
        assert!(matches!(
            insert_org_stmts(&nameless, &new_keys),
            Err(StoreError::Invalid { .. })
        ));
    }

    #[test]
    fn presented_keys_parse_and_time_cursors_decode() {
        assert_eq!(presented_key(""), None);
        assert_eq!(presented_key("sk_x_y"), None);
        let write = format!("wk_{}", "a".repeat(32));
        assert_eq!(presented_key(&write), Some((write.as_str(), KeyKind::Write)));
        assert_eq!(
            presented_key("sk_0123456789ab_secret"),
            Some(("0123456789ab", KeyKind::Secret))
        );
        assert_eq!(decode_time_cursor("5:sk1").unwrap(), (5, "sk1".into()));
        assert!(decode_time_cursor("x:sk1").is_err() && decode_time_cursor("5").is_err());
    }

    /// The port methods the store's integration tests do not reach, run on the embedded store.
    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_users_and_the_audit_log_round_trip() {
        use serde_json::json;

        let dir = tempfile::tempdir().unwrap();
        let db = crate::SqliteStore::open(dir.path(), crate::StoreConfig::default()).unwrap();
        let (org, creds, new_keys) = keys::generate("Acme", 1, &[9u8; keys::RANDOM_BYTES]);
        create_org(&db, &org, &new_keys).await.unwrap();
        let err = create_org(&db, &org, &new_keys).await.unwrap_err();
        assert_eq!(err.to_string(), format!("conflict: organization {} exists", org.id));
        let o = &org.id;

        // Authentication without a cache, and the org's grant.
        let w = authenticate(&db, &creds.write_key).await.unwrap().unwrap();
        assert_eq!(
            (w.kind, w.pseudonym_key.as_slice()),
            (KeyKind::Write, new_keys.pseudonym_key.as_slice())
        );
        assert_eq!(
            authenticate(&db, &creds.api_key).await.unwrap().unwrap().role,
            Role::Owner
        );
        assert_eq!(
            org_grant(&db, o).await.unwrap().unwrap().pseudonym_key,
            new_keys.pseudonym_key
        );
        assert_eq!(org_grant(&db, "org_none").await.unwrap(), None);
        assert_eq!(update_org(&db, o, "Acme 2").await.unwrap().name, "Acme 2");
        assert!(matches!(
            update_org(&db, "org_none", "x").await,
            Err(StoreError::NotFound(_))
        ));

        // Keys: newest first, paged by created_at:prefix.
        for (prefix, at) in [("aaaaaaaaaaaa", 10), ("bbbbbbbbbbbb", 20), ("cccccccccccc", 20)] {
            let key = NewApiKey {
                prefix: prefix.into(),
                hash: "h".into(),
                kind: KeyKind::Secret,
                role: Role::Analyst,
                name: Some(format!("key {prefix}")),
                created_at: at,
            };
            create_api_key(&db, o, &key).await.unwrap();
            if prefix.starts_with('a') {
                let err = create_api_key(&db, o, &key).await.unwrap_err();
                assert_eq!(err.to_string(), "conflict: a key with this prefix exists");
            }
        }
        let first = list_api_keys(&db, o, 2, None).await.unwrap();
        let prefixes = |p: &Page<ApiKey>| p.data.iter().map(|k| k.prefix.clone()).collect::<Vec<_>>();
        assert_eq!(prefixes(&first), ["cccccccccccc", "bbbbbbbbbbbb"]);
        assert_eq!(first.next_cursor.as_deref(), Some("20:bbbbbbbbbbbb"));
        let rest = list_api_keys(&db, o, 10, first.next_cursor.as_deref()).await.unwrap();
        assert_eq!(rest.data[0].prefix, "aaaaaaaaaaaa");
        assert_eq!(rest.data.len(), 3, "then the org's two own keys, created at 1");
        assert!(rest.next_cursor.is_none());
        assert!(matches!(
            list_api_keys(&db, o, 2, Some("x")).await,
            Err(StoreError::Invalid { .. })
        ));
        let revoked = revoke_api_key(&db, o, "aaaaaaaaaaaa", 30).await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(30));
        let again = revoke_api_key(&db, o, "aaaaaaaaaaaa", 40).await.unwrap().unwrap();
        assert_eq!(again.revoked_at, Some(30), "an already revoked key is returned as is");
        assert_eq!(revoke_api_key(&db, "org_none", "bbbbbbbbbbbb", 40).await.unwrap(), None);
        assert_eq!(
            get_api_key(&db, o, "bbbbbbbbbbbb")
                .await
                .unwrap()
                .unwrap()
                .name
                .as_deref(),
            Some("key bbbbbbbbbbbb")
        );
        assert!(revoke_key(&db, &creds.write_key, 50).await.unwrap());
        assert!(!revoke_key(&db, &creds.write_key, 51).await.unwrap());
        assert_eq!(authenticate(&db, &creds.write_key).await.unwrap(), None);

        // Users.
        for (id, email) in [("usr_1", "b@x"), ("usr_2", "a@x"), ("usr_3", "c@x")] {
            let user = User {
                id: id.into(),
                email: email.into(),
                name: Some("N".into()),
                role: Role::Viewer,
                created_at: 5,
            };
            create_user(&db, o, &user).await.unwrap();
        }
        let dup = User {
            id: "usr_4".into(),
            email: "a@x".into(),
            name: None,
            role: Role::Viewer,
            created_at: 6,
        };
        let err = create_user(&db, o, &dup).await.unwrap_err();
        assert_eq!(err.to_string(), "conflict: a user with email a@x exists");
        let page = list_users(&db, o, 2, None).await.unwrap();
        assert_eq!(
            page.data.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
            ["a@x", "b@x"]
        );
        let page = list_users(&db, o, 2, page.next_cursor.as_deref()).await.unwrap();
        assert_eq!((page.data.len(), page.next_cursor), (1, None));
        let u = update_user(&db, o, "usr_1", Some(None), None).await.unwrap().unwrap();
        assert_eq!((u.name, u.role), (None, Role::Viewer));
        let u = update_user(&db, o, "usr_1", None, Some(Role::Admin))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((u.name, u.role), (None, Role::Admin));
        let u = update_user(&db, o, "usr_1", Some(Some("M".into())), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((u.name.as_deref(), u.role), (Some("M"), Role::Admin));
        assert_eq!(
            update_user(&db, o, "usr_9", None, Some(Role::Admin)).await.unwrap(),
            None
        );
        assert_eq!(update_user(&db, "org_none", "usr_1", None, None).await.unwrap(), None);
        assert!(delete_user(&db, o, "usr_1").await.unwrap());
        assert!(!delete_user(&db, o, "usr_1").await.unwrap());
        assert_eq!(get_user(&db, o, "usr_1").await.unwrap(), None);

        // The audit log: the org's creation, the revocation, then appended rows, newest first.
        let entry = |action: &str, at: i64, detail: serde_json::Value| NewAuditEntry {
            org_id: o.clone(),
            at,
            actor: "usr_2".into(),
            action: action.into(),
            target: Some("t".into()),
            ip: None,
            detail,
        };
        append_audit(&db, &[]).await.unwrap();
        append_audit(
            &db,
            &[
                entry("user.create", 60, json!({"email": "d'x"})),
                entry("user.delete", 61, serde_json::Value::Null),
            ],
        )
        .await
        .unwrap();
        let all = list_audit(&db, o, &AuditQuery::default()).await.unwrap();
        let actions: Vec<&str> = all.data.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["user.delete", "user.create", "key.revoke", "org.create"]);
        assert_eq!(all.data[1].detail, json!({"email": "d'x"}));
        assert_eq!(all.data[0].detail, serde_json::Value::Null);
        assert_eq!(
            (
                all.data[2].actor.as_str(),
                all.data[2].target.as_deref(),
                all.data[2].at
            ),
            ("system", Some(creds.write_key.as_str()), 50)
        );
        let q = AuditQuery {
            limit: 1,
            actor: Some("usr_2".into()),
            ..AuditQuery::default()
        };
        let p1 = list_audit(&db, o, &q).await.unwrap();
        assert_eq!(p1.data[0].action, "user.delete");
        let q2 = AuditQuery {
            cursor: p1.next_cursor,
            ..q
        };
        let p2 = list_audit(&db, o, &q2).await.unwrap();
        assert_eq!((p2.data[0].action.as_str(), p2.next_cursor), ("user.create", None));
        let bad = AuditQuery {
            cursor: Some("x".into()),
            ..AuditQuery::default()
        };
        assert!(matches!(
            list_audit(&db, o, &bad).await,
            Err(StoreError::Invalid { .. })
        ));
    }
}
