//! [`AccountStore`] over SQLite: organizations, API keys, pseudonym secrets.
//!
//! `authenticate` is on the hot path of every ingest request, so grants are cached in memory:
//! a cached hit takes a read lock and (for a secret key) one SHA-256, and never touches SQLite.
//! The cache is per process: a key revoked by another process sharing the database file stays
//! valid here until restart (keys revoked through [`SqliteStore::revoke_key`] are evicted at once).

use crow_core::access::{ApiKey, AuditEntry, AuditQuery, NewApiKey, NewAuditEntry, Role, User};
use crow_core::keys::{self, NewOrgKeys};
use crow_core::model::{KeyKind, OrgCredentials, Organization};
use crow_core::ports::{AccountStore, KeyGrant, Page};
use rusqlite::{Connection, OptionalExtension, params};

use super::{KEY_CACHE_MAX, SqliteStore};
use crate::error::StoreError;

fn insert_org(conn: &Connection, org: &Organization, k: &NewOrgKeys) -> Result<(), StoreError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM organizations WHERE id = ?1")?
        .query_row([&org.id], |_| Ok(()))
        .optional()?
        .is_some();
    if exists {
        return Err(StoreError::Conflict(format!("organization {} exists", org.id)));
    }
    conn.prepare_cached("INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![org.id, org.name, org.created_at])?;
    conn.prepare_cached("INSERT INTO org_secrets (org_id, pseudonym_key, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![org.id, k.pseudonym_key, org.created_at])?;
    let mut key = conn
        .prepare_cached("INSERT INTO api_keys (prefix, org_id, kind, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    let write_hash = keys::hash_secret(&k.write_key);
    for (prefix, kind, hash) in [
        (&k.write_key, "write", &write_hash),
        (&k.api_key_prefix, "secret", &k.api_key_hash),
    ] {
        key.execute(params![prefix, org.id, kind, hash, org.created_at])
            .map_err(|e| {
                let e = StoreError::from(e);
                if e.is_constraint_violation() {
                    StoreError::Conflict(format!("a {kind} key with this prefix exists"))
                } else {
                    e
                }
            })?;
    }
    conn.prepare_cached(
        "INSERT INTO audit_log (org_id, at, actor, action, target) VALUES (?1, ?2, 'system', 'org.create', ?1)",
    )?
    .execute(params![org.id, org.created_at])?;
    Ok(())
}

/// A stored key: org, kind (`write`/`secret`), hash, the org's pseudonym key, role.
type StoredKey = (String, String, String, Vec<u8>, String);

/// The stored key behind a prefix, unless revoked.
fn lookup_key(conn: &Connection, prefix: &str) -> Result<Option<StoredKey>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT k.org_id, k.kind, k.hash, s.pseudonym_key, k.role FROM api_keys k \
             JOIN org_secrets s ON s.org_id = k.org_id WHERE k.prefix = ?1 AND k.revoked_at IS NULL",
        )?
        .query_row([prefix], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?)
}

fn org_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Organization> {
    Ok(Organization {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
    })
}

impl SqliteStore {
    /// Creates an org with fresh keys drawn from the operating system's CSPRNG, and returns
    /// the credentials to show once (the secret API key is stored only hashed).
    ///
    /// This inherent method shadows [`AccountStore::create_org`], which takes prepared keys;
    /// call that one as `AccountStore::create_org(&store, &org, &keys)`.
    pub async fn create_org(&self, name: &str, now: i64) -> Result<OrgCredentials, StoreError> {
        let mut random = [0u8; keys::RANDOM_BYTES];
        getrandom::fill(&mut random).map_err(|e| StoreError::Random(e.to_string()))?;
        let (org, creds, new_keys) = keys::generate(name, now, &random);
        self.insert_org(org, new_keys).await?;
        Ok(creds)
    }

    async fn insert_org(&self, org: Organization, keys: NewOrgKeys) -> Result<(), StoreError> {
        if org.id.is_empty() {
            return Err(StoreError::invalid("id", "empty organization id"));
        }
        self.write(1, move |conn| insert_org(conn, &org, &keys)).await
    }

    /// Revokes a key by its prefix (the whole write key, or a secret key's 12-hex prefix):
    /// `authenticate` refuses it from now on. Returns false when no live key has that prefix.
    pub async fn revoke_key(&self, prefix: &str, now: i64) -> Result<bool, StoreError> {
        let p = prefix.to_owned();
        let revoked = self
            .write(1, move |conn| {
                let org: Option<String> = conn
                    .prepare_cached(
                        "UPDATE api_keys SET revoked_at = ?2 WHERE prefix = ?1 AND revoked_at IS NULL RETURNING org_id",
                    )?
                    .query_row(params![p, now], |r| r.get(0))
                    .optional()?;
                if let Some(org) = &org {
                    conn.prepare_cached(
                        "INSERT INTO audit_log (org_id, at, actor, action, target) \
                         VALUES (?1, ?2, 'system', 'key.revoke', ?3)",
                    )?
                    .execute(params![org, now, p])?;
                }
                Ok(org.is_some())
            })
            .await?;
        if let Ok(mut cache) = self.inner.keys.write() {
            cache.write.remove(prefix);
            cache.secret.remove(prefix);
        }
        Ok(revoked)
    }

    /// [`AccountStore::authenticate`] with this crate's error type.
    pub async fn authenticate_key(&self, presented: &str) -> Result<Option<KeyGrant>, StoreError> {
        let (prefix, kind) = if keys::is_write_key(presented) {
            (presented, KeyKind::Write)
        } else if let Some(prefix) = keys::api_key_prefix(presented) {
            (prefix, KeyKind::Secret)
        } else {
            return Ok(None);
        };
        let check = |hash: &str| keys::constant_time_eq(keys::hash_secret(presented).as_bytes(), hash.as_bytes());
        if let Ok(cache) = self.inner.keys.read() {
            match kind {
                KeyKind::Write => {
                    if let Some(g) = cache.write.get(presented) {
                        return Ok(Some(g.clone()));
                    }
                }
                KeyKind::Secret => {
                    if let Some((hash, g)) = cache.secret.get(prefix) {
                        return Ok(check(hash).then(|| g.clone()));
                    }
                }
            }
        }
        let p = prefix.to_owned();
        let Some((org_id, stored_kind, hash, pseudonym_key, role)) =
            self.read(move |conn| lookup_key(conn, &p)).await?
        else {
            return Ok(None);
        };
        let expected = match kind {
            KeyKind::Write => "write",
            KeyKind::Secret => "secret",
        };
        if stored_kind != expected || !check(&hash) {
            return Ok(None);
        }
        let grant = KeyGrant {
            org_id,
            kind,
            prefix: prefix.to_owned(),
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            pseudonym_key,
        };
        if let Ok(mut cache) = self.inner.keys.write() {
            if cache.write.len() + cache.secret.len() >= KEY_CACHE_MAX {
                cache.write.clear();
                cache.secret.clear();
            }
            match kind {
                KeyKind::Write => cache.write.insert(prefix.to_owned(), grant.clone()),
                KeyKind::Secret => cache
                    .secret
                    .insert(prefix.to_owned(), (hash, grant.clone()))
                    .map(|(_, g)| g),
            };
        }
        Ok(Some(grant))
    }
}

#[async_trait::async_trait]
impl AccountStore for SqliteStore {
    async fn create_org(&self, org: &Organization, keys: &NewOrgKeys) -> crow_core::Result<()> {
        Ok(self.insert_org(org.clone(), keys.clone()).await?)
    }

    async fn get_org(&self, org_id: &str) -> crow_core::Result<Option<Organization>> {
        let id = org_id.to_owned();
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT id, name, created_at FROM organizations WHERE id = ?1")?
                    .query_row([id], org_from_row)
                    .optional()?)
            })
            .await?)
    }

    async fn list_orgs(&self) -> crow_core::Result<Vec<Organization>> {
        Ok(self
            .read(|conn| {
                Ok(conn
                    .prepare_cached("SELECT id, name, created_at FROM organizations ORDER BY created_at, rowid")?
                    .query_map([], org_from_row)?
                    .collect::<Result<_, _>>()?)
            })
            .await?)
    }

    async fn authenticate(&self, presented: &str) -> crow_core::Result<Option<KeyGrant>> {
        Ok(self.authenticate_key(presented).await?)
    }

    async fn org_grant(&self, org_id: &str) -> crow_core::Result<Option<KeyGrant>> {
        let id = org_id.to_owned();
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT pseudonym_key FROM org_secrets WHERE org_id = ?1")?
                    .query_row([&id], |r| r.get::<_, Vec<u8>>(0))
                    .optional()?
                    .map(|pseudonym_key| KeyGrant {
                        org_id: id.clone(),
                        kind: KeyKind::Write,
                        prefix: String::new(),
                        role: Role::Viewer,
                        pseudonym_key,
                    }))
            })
            .await?)
    }

    async fn update_org(&self, org_id: &str, name: &str) -> crow_core::Result<Organization> {
        let (id, name) = (org_id.to_owned(), name.to_owned());
        Ok(self
            .write(1, move |conn| {
                conn.prepare_cached("UPDATE organizations SET name = ?2 WHERE id = ?1 RETURNING id, name, created_at")?
                    .query_row(params![id, name], org_from_row)
                    .optional()?
                    .ok_or_else(|| StoreError::NotFound(format!("organization {id}")))
            })
            .await?)
    }

    async fn create_api_key(&self, org_id: &str, key: &NewApiKey) -> crow_core::Result<ApiKey> {
        let (org, k) = (org_id.to_owned(), key.clone());
        Ok(self
            .write(1, move |conn| {
                let kind = kind_str(k.kind);
                conn.prepare_cached(
                    "INSERT INTO api_keys (prefix, org_id, kind, hash, created_at, role, name) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    k.prefix,
                    org,
                    kind,
                    k.hash,
                    k.created_at,
                    k.role.as_str(),
                    k.name
                ])
                .map_err(|e| {
                    let e = StoreError::from(e);
                    if e.is_constraint_violation() {
                        StoreError::Conflict("a key with this prefix exists".into())
                    } else {
                        e
                    }
                })?;
                Ok(ApiKey {
                    prefix: k.prefix,
                    kind: k.kind,
                    role: k.role,
                    name: k.name,
                    created_at: k.created_at,
                    revoked_at: None,
                })
            })
            .await?)
    }

    async fn list_api_keys(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> crow_core::Result<Page<ApiKey>> {
        let org = org_id.to_owned();
        let after = cursor.map(decode_time_cursor).transpose()?;
        let limit = limit.clamp(1, 1000) as usize;
        Ok(self
            .read(move |conn| {
                let (t, p) = after.unwrap_or((i64::MAX, String::new()));
                let unbounded = cursor_is_none(&p, t);
                let rows: Vec<ApiKey> = conn
                    .prepare_cached(&format!(
                        "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = ?1 \
                         AND (?4 OR created_at < ?2 OR (created_at = ?2 AND prefix < ?3)) \
                         ORDER BY created_at DESC, prefix DESC LIMIT ?5"
                    ))?
                    .query_map(params![org, t, p, unbounded, limit as i64 + 1], key_from_row)?
                    .collect::<Result<_, _>>()?;
                Ok(super::page_of(rows, limit, |k| {
                    format!("{}:{}", k.created_at, k.prefix)
                }))
            })
            .await?)
    }

    async fn get_api_key(&self, org_id: &str, prefix: &str) -> crow_core::Result<Option<ApiKey>> {
        let (org, p) = (org_id.to_owned(), prefix.to_owned());
        Ok(self.read(move |conn| key_row(conn, &org, &p)).await?)
    }

    async fn revoke_api_key(&self, org_id: &str, prefix: &str, now: i64) -> crow_core::Result<Option<ApiKey>> {
        let (org, p) = (org_id.to_owned(), prefix.to_owned());
        let key = self
            .write(1, move |conn| {
                conn.prepare_cached(
                    "UPDATE api_keys SET revoked_at = ?3 WHERE org_id = ?1 AND prefix = ?2 AND revoked_at IS NULL",
                )?
                .execute(params![org, p, now])?;
                key_row(conn, &org, &p)
            })
            .await?;
        if key.is_some()
            && let Ok(mut cache) = self.inner.keys.write()
        {
            cache.write.remove(prefix);
            cache.secret.remove(prefix);
        }
        Ok(key)
    }

    async fn create_user(&self, org_id: &str, user: &User) -> crow_core::Result<()> {
        let (org, u) = (org_id.to_owned(), user.clone());
        Ok(self
            .write(1, move |conn| {
                conn.prepare_cached(
                    "INSERT INTO users (id, org_id, email, name, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![u.id, org, u.email, u.name, u.role.as_str(), u.created_at])
                .map_err(|e| {
                    let e = StoreError::from(e);
                    if e.is_constraint_violation() {
                        StoreError::Conflict(format!("a user with email {} exists", u.email))
                    } else {
                        e
                    }
                })?;
                Ok(())
            })
            .await?)
    }

    async fn list_users(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> crow_core::Result<Page<User>> {
        let (org, after) = (org_id.to_owned(), cursor.map(str::to_owned));
        let limit = limit.clamp(1, 1000) as usize;
        Ok(self
            .read(move |conn| {
                let rows: Vec<User> = conn
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND (?2 IS NULL OR email > ?2) \
                         ORDER BY email LIMIT ?3"
                    ))?
                    .query_map(params![org, after, limit as i64 + 1], user_from_row)?
                    .collect::<Result<_, _>>()?;
                Ok(super::page_of(rows, limit, |u| u.email.clone()))
            })
            .await?)
    }

    async fn get_user(&self, org_id: &str, user_id: &str) -> crow_core::Result<Option<User>> {
        let (org, id) = (org_id.to_owned(), user_id.to_owned());
        Ok(self.read(move |conn| user_row(conn, &org, &id)).await?)
    }

    async fn update_user(
        &self,
        org_id: &str,
        user_id: &str,
        name: Option<Option<String>>,
        role: Option<Role>,
    ) -> crow_core::Result<Option<User>> {
        let (org, id) = (org_id.to_owned(), user_id.to_owned());
        Ok(self
            .write(1, move |conn| {
                if let Some(n) = &name {
                    conn.prepare_cached("UPDATE users SET name = ?3 WHERE org_id = ?1 AND id = ?2")?
                        .execute(params![org, id, n])?;
                }
                if let Some(r) = role {
                    conn.prepare_cached("UPDATE users SET role = ?3 WHERE org_id = ?1 AND id = ?2")?
                        .execute(params![org, id, r.as_str()])?;
                }
                user_row(conn, &org, &id)
            })
            .await?)
    }

    async fn delete_user(&self, org_id: &str, user_id: &str) -> crow_core::Result<bool> {
        let (org, id) = (org_id.to_owned(), user_id.to_owned());
        Ok(self
            .write(1, move |conn| {
                Ok(conn
                    .prepare_cached("DELETE FROM users WHERE org_id = ?1 AND id = ?2")?
                    .execute(params![org, id])?
                    > 0)
            })
            .await?)
    }

    async fn append_audit(&self, entries: &[NewAuditEntry]) -> crow_core::Result<()> {
        let entries = entries.to_vec();
        Ok(self
            .write(entries.len(), move |conn| {
                let mut stmt = conn.prepare_cached(
                    "INSERT INTO audit_log (org_id, at, actor, action, target, detail, ip) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for e in &entries {
                    stmt.execute(params![
                        e.org_id,
                        e.at,
                        e.actor,
                        e.action,
                        e.target,
                        e.detail.to_string(),
                        e.ip
                    ])?;
                }
                Ok(())
            })
            .await?)
    }

    async fn list_audit(&self, org_id: &str, query: &AuditQuery) -> crow_core::Result<Page<AuditEntry>> {
        let org = org_id.to_owned();
        let q = query.clone();
        let before = match &q.cursor {
            Some(c) => Some(
                c.parse::<i64>()
                    .map_err(|_| crow_core::Error::invalid("cursor", "not a cursor of this listing"))?,
            ),
            None => None,
        };
        let limit = q.limit.clamp(1, 1000) as usize;
        Ok(self
            .read(move |conn| {
                let rows: Vec<AuditEntry> = conn
                    .prepare_cached(
                        "SELECT seq, at, actor, action, target, ip, detail FROM audit_log WHERE org_id = ?1 \
                         AND (?2 IS NULL OR seq < ?2) AND (?3 IS NULL OR action = ?3) \
                         AND (?4 IS NULL OR actor = ?4) AND (?5 IS NULL OR at >= ?5) \
                         ORDER BY seq DESC LIMIT ?6",
                    )?
                    .query_map(
                        params![org, before, q.action, q.actor, q.since, limit as i64 + 1],
                        |r| {
                            let detail: Option<String> = r.get(6)?;
                            Ok(AuditEntry {
                                seq: r.get(0)?,
                                at: r.get(1)?,
                                actor: r.get(2)?,
                                action: r.get(3)?,
                                target: r.get(4)?,
                                ip: r.get(5)?,
                                detail: detail
                                    .and_then(|d| serde_json::from_str(&d).ok())
                                    .unwrap_or(serde_json::Value::Null),
                            })
                        },
                    )?
                    .collect::<Result<_, _>>()?;
                Ok(super::page_of(rows, limit, |e| e.seq.to_string()))
            })
            .await?)
    }
}

const KEY_COLUMNS: &str = "prefix, kind, role, name, created_at, revoked_at";
const USER_COLUMNS: &str = "id, email, name, role, created_at";

fn kind_str(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Write => "write",
        KeyKind::Secret => "secret",
    }
}

/// One key of an org.
fn key_row(conn: &Connection, org: &str, prefix: &str) -> Result<Option<ApiKey>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = ?1 AND prefix = ?2"
        ))?
        .query_row(params![org, prefix], key_from_row)
        .optional()?)
}

/// One user of an org.
fn user_row(conn: &Connection, org: &str, id: &str) -> Result<Option<User>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND id = ?2"
        ))?
        .query_row(params![org, id], user_from_row)
        .optional()?)
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    let kind: String = r.get(1)?;
    let role: String = r.get(2)?;
    Ok(ApiKey {
        prefix: r.get(0)?,
        kind: if kind == "write" {
            KeyKind::Write
        } else {
            KeyKind::Secret
        },
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        name: r.get(3)?,
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(3)?;
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_at: r.get(4)?,
    })
}

/// A `time:id` cursor of a newest-first listing.
fn decode_time_cursor(c: &str) -> crow_core::Result<(i64, String)> {
    c.split_once(':')
        .and_then(|(t, id)| Some((t.parse().ok()?, id.to_owned())))
        .ok_or_else(|| crow_core::Error::invalid("cursor", "not a cursor of this listing"))
}

/// True for the first page (no cursor given).
fn cursor_is_none(prefix: &str, t: i64) -> bool {
    prefix.is_empty() && t == i64::MAX
}
