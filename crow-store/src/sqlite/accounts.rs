//! [`AccountStore`] over SQLite: organizations, API keys, pseudonym secrets.
//!
//! `authenticate` is on the hot path of every ingest request, so grants are cached in memory:
//! a cached hit takes a read lock and (for a secret key) one SHA-256, and never touches SQLite.
//! The cache is per process: a key revoked by another process sharing the database file stays
//! valid here until restart (keys revoked through [`SqliteStore::revoke_key`] are evicted at once).

use crow_core::keys::{self, NewOrgKeys};
use crow_core::model::{KeyKind, OrgCredentials, Organization};
use crow_core::ports::{AccountStore, KeyGrant};
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

/// A stored key: org, kind (`write`/`secret`), hash, the org's pseudonym key.
type StoredKey = (String, String, String, Vec<u8>);

/// The stored key behind a prefix, unless revoked.
fn lookup_key(conn: &Connection, prefix: &str) -> Result<Option<StoredKey>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT k.org_id, k.kind, k.hash, s.pseudonym_key FROM api_keys k \
             JOIN org_secrets s ON s.org_id = k.org_id WHERE k.prefix = ?1 AND k.revoked_at IS NULL",
        )?
        .query_row([prefix], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
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
        let Some((org_id, stored_kind, hash, pseudonym_key)) = self.read(move |conn| lookup_key(conn, &p)).await?
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
                        pseudonym_key,
                    }))
            })
            .await?)
    }
}
