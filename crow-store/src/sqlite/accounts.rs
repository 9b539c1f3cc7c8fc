//! [`AccountStore`] over SQLite: the statements live in [`crate::sql::accounts`]; this file adds
//! what only the embedded store has, an in-memory key cache and key generation from the OS.
//!
//! `authenticate` is on the hot path of every ingest request, so grants are cached in memory:
//! a cached hit takes a read lock and (for a secret key) one SHA-256, and never touches SQLite.
//! The cache is per process: a key revoked by another process sharing the database file stays
//! valid here until restart (keys revoked through [`SqliteStore::revoke_key`] or
//! [`AccountStore::revoke_api_key`] are evicted at once).

use crow_core::access::{ApiKey, AuditEntry, AuditQuery, NewApiKey, NewAuditEntry, Role, User};
use crow_core::keys::{self, NewOrgKeys};
use crow_core::model::{KeyKind, OrgCredentials, Organization};
use crow_core::ports::{AccountStore, KeyGrant, Page};

use super::{KEY_CACHE_MAX, SqliteStore};
use crate::error::StoreError;
use crate::sql::accounts as sql;

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
        sql::create_org(self, &org, &new_keys).await?;
        Ok(creds)
    }

    /// Revokes a key by its prefix (the whole write key, or a secret key's 12-hex prefix):
    /// `authenticate` refuses it from now on. Returns false when no live key has that prefix.
    pub async fn revoke_key(&self, prefix: &str, now: i64) -> Result<bool, StoreError> {
        let revoked = sql::revoke_key(self, prefix, now).await?;
        self.evict_key(prefix);
        Ok(revoked)
    }

    /// Drops the cached grant of a key prefix.
    fn evict_key(&self, prefix: &str) {
        if let Ok(mut cache) = self.inner.keys.write() {
            cache.write.remove(prefix);
            cache.secret.remove(prefix);
        }
    }

    /// [`AccountStore::authenticate`] with this crate's error type.
    pub async fn authenticate_key(&self, presented: &str) -> Result<Option<KeyGrant>, StoreError> {
        let Some((prefix, kind)) = sql::presented_key(presented) else {
            return Ok(None);
        };
        if let Ok(cache) = self.inner.keys.read() {
            match kind {
                KeyKind::Write => {
                    if let Some(g) = cache.write.get(presented) {
                        return Ok(Some(g.clone()));
                    }
                }
                KeyKind::Secret => {
                    if let Some((hash, g)) = cache.secret.get(prefix) {
                        return Ok(sql::secret_matches(presented, hash).then(|| g.clone()));
                    }
                }
            }
        }
        let Some((grant, hash)) = sql::verify_key(self, presented).await? else {
            return Ok(None);
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
        Ok(sql::create_org(self, org, keys).await?)
    }

    async fn get_org(&self, org_id: &str) -> crow_core::Result<Option<Organization>> {
        Ok(sql::get_org(self, org_id).await?)
    }

    async fn list_orgs(&self) -> crow_core::Result<Vec<Organization>> {
        Ok(sql::list_orgs(self).await?)
    }

    async fn authenticate(&self, presented: &str) -> crow_core::Result<Option<KeyGrant>> {
        Ok(self.authenticate_key(presented).await?)
    }

    async fn org_grant(&self, org_id: &str) -> crow_core::Result<Option<KeyGrant>> {
        Ok(sql::org_grant(self, org_id).await?)
    }

    async fn update_org(&self, org_id: &str, name: &str) -> crow_core::Result<Organization> {
        Ok(sql::update_org(self, org_id, name).await?)
    }

    async fn create_api_key(&self, org_id: &str, key: &NewApiKey) -> crow_core::Result<ApiKey> {
        Ok(sql::create_api_key(self, org_id, key).await?)
    }

    async fn list_api_keys(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> crow_core::Result<Page<ApiKey>> {
        Ok(sql::list_api_keys(self, org_id, limit, cursor).await?)
    }

    async fn get_api_key(&self, org_id: &str, prefix: &str) -> crow_core::Result<Option<ApiKey>> {
        Ok(sql::get_api_key(self, org_id, prefix).await?)
    }

    async fn revoke_api_key(&self, org_id: &str, prefix: &str, now: i64) -> crow_core::Result<Option<ApiKey>> {
        let key = sql::revoke_api_key(self, org_id, prefix, now).await?;
        if key.is_some() {
            self.evict_key(prefix);
        }
        Ok(key)
    }

    async fn create_user(&self, org_id: &str, user: &User) -> crow_core::Result<()> {
        Ok(sql::create_user(self, org_id, user).await?)
    }

    async fn list_users(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> crow_core::Result<Page<User>> {
        Ok(sql::list_users(self, org_id, limit, cursor).await?)
    }

    async fn get_user(&self, org_id: &str, user_id: &str) -> crow_core::Result<Option<User>> {
        Ok(sql::get_user(self, org_id, user_id).await?)
    }

    async fn update_user(
        &self,
        org_id: &str,
        user_id: &str,
        name: Option<Option<String>>,
        role: Option<Role>,
    ) -> crow_core::Result<Option<User>> {
        Ok(sql::update_user(self, org_id, user_id, name, role).await?)
    }

    async fn delete_user(&self, org_id: &str, user_id: &str) -> crow_core::Result<bool> {
        Ok(sql::delete_user(self, org_id, user_id).await?)
    }

    async fn append_audit(&self, entries: &[NewAuditEntry]) -> crow_core::Result<()> {
        Ok(sql::append_audit(self, entries).await?)
    }

    async fn list_audit(&self, org_id: &str, query: &AuditQuery) -> crow_core::Result<Page<AuditEntry>> {
        Ok(sql::list_audit(self, org_id, query).await?)
    }
}
