//! Object storage ([`BlobStore`]) on the `object_store` crate: local files now, S3/R2 later.
//!
//! [`BlobStoreConfig`] is the serde config (tagged by `type`) a shell reads; [`BlobStoreConfig::build`]
//! returns a [`BlobBackend`], an enum over the built-in backends (static dispatch). Every backend
//! is a thin [`ObjectBlobStore`] over an `Arc<dyn ObjectStore>`: key validation, `list` by
//! string prefix and the error mapping are shared, so adding S3/R2 (behind an `s3` feature, with
//! `object_store/aws`) is a new config variant, a new enum variant and a constructor.
//!
//! Keys are `/`-separated paths: non-empty, no leading or trailing `/`, no empty, `.` or `..`
//! segment, no control characters, and none of `\`, `#`, `%` (the local backend reserves `#`
//! for its staging files and maps `%` and `\` ambiguously).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crow_core::ports::BlobStore;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Which object store to use, as written in a config file (`type = "local"`, ...).
///
/// ```
/// use crow_store::BlobStoreConfig;
///
/// let c: BlobStoreConfig = serde_json::from_str(r#"{"type": "local", "path": "/var/lib/crow/blobs"}"#).unwrap();
/// assert_eq!(c, BlobStoreConfig::Local { path: "/var/lib/crow/blobs".into() });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum BlobStoreConfig {
    /// Files under a local directory (created if missing).
    Local {
        /// Root directory.
        path: PathBuf,
    },
}

impl BlobStoreConfig {
    /// Builds the configured backend.
    pub fn build(&self) -> Result<BlobBackend, StoreError> {
        match self {
            BlobStoreConfig::Local { path } => Ok(BlobBackend::Local(LocalBlobStore::new(path)?)),
        }
    }
}

/// The built-in blob backends, dispatched statically.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BlobBackend {
    /// Local files.
    Local(LocalBlobStore),
}

impl BlobBackend {
    fn inner(&self) -> &ObjectBlobStore {
        match self {
            BlobBackend::Local(l) => &l.inner,
        }
    }
}

/// Checks a key against the rules in the [module docs](self).
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| Err(StoreError::invalid("key", format!("{key:?}: {reason}")));
    if key.is_empty() {
        return bad("empty key");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return bad("keys neither start nor end with '/'");
    }
    validate_chars(key)?;
    if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return bad("empty, '.' or '..' segment");
    }
    Ok(())
}

fn validate_chars(s: &str) -> Result<(), StoreError> {
    if let Some(c) = s.chars().find(|c| c.is_control() || matches!(c, '\\' | '#' | '%')) {
        return Err(StoreError::invalid(
            "key",
            format!("{s:?}: character {c:?} is not allowed"),
        ));
    }
    Ok(())
}

/// A [`BlobStore`] over any `object_store` backend: the shared part of every [`BlobBackend`].
#[derive(Debug, Clone)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
}

impl ObjectBlobStore {
    /// Wraps an object store.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        ObjectBlobStore { store }
    }

    /// Writes an object (atomically: readers see the old or the new one).
    pub async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        validate_key(key)?;
        self.store.put(&ObjectPath::from(key), bytes.into()).await?;
        Ok(())
    }

    /// Reads an object; `None` when missing.
    pub async fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        validate_key(key)?;
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(r) => Ok(Some(r.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Keys starting with `prefix` (a plain string prefix, as R2 and S3 list), sorted.
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        if prefix.starts_with('/') {
            return Err(StoreError::invalid("prefix", "prefixes do not start with '/'"));
        }
        validate_chars(prefix)?;
        // object_store lists by whole segments: list the directory part, filter the rest.
        let dir = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        if !dir.is_empty() {
            validate_key(dir).map_err(|_| StoreError::invalid("prefix", format!("{prefix:?}: bad segment")))?;
        }
        let dir = (!dir.is_empty()).then(|| ObjectPath::from(dir));
        let mut keys: Vec<String> = self
            .store
            .list(dir.as_ref())
            .map_ok(|meta| meta.location.to_string())
            .try_filter(|k| std::future::ready(k.starts_with(prefix)))
            .try_collect()
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                e => Err(e),
            })?;
        keys.sort();
        Ok(keys)
    }

    /// Deletes an object; a missing one is not an error.
    pub async fn delete_object(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Objects as files under a root directory (`object_store`'s `LocalFileSystem`).
///
/// `put` writes a staging file and renames it over the key, so it is atomic; it survives a
/// crash of the process once it returns, but the file is not fsynced (a power loss right after
/// may lose it).
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    inner: ObjectBlobStore,
}

impl LocalBlobStore {
    /// Opens (creating as needed) a store rooted at `root`.
    pub fn new(root: &Path) -> Result<LocalBlobStore, StoreError> {
        std::fs::create_dir_all(root)?;
        let root = std::fs::canonicalize(root)?;
        let fs = LocalFileSystem::new_with_prefix(&root)?;
        Ok(LocalBlobStore {
            root,
            inner: ObjectBlobStore::new(Arc::new(fs)),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The [`ObjectBlobStore`] behind each blob type, so one macro implements [`BlobStore`] for all.
trait AsObjectBlob {
    fn object_blob(&self) -> &ObjectBlobStore;
}

impl AsObjectBlob for ObjectBlobStore {
    fn object_blob(&self) -> &ObjectBlobStore {
        self
    }
}

impl AsObjectBlob for LocalBlobStore {
    fn object_blob(&self) -> &ObjectBlobStore {
        &self.inner
    }
}

impl AsObjectBlob for BlobBackend {
    fn object_blob(&self) -> &ObjectBlobStore {
        self.inner()
    }
}

macro_rules! impl_blob_store {
    ($($t:ty),*) => {$(
        #[async_trait::async_trait]
        impl BlobStore for $t {
            async fn put(&self, key: &str, bytes: Vec<u8>) -> crow_core::Result<()> {
                Ok(self.object_blob().put_object(key, bytes).await?)
            }
            async fn get(&self, key: &str) -> crow_core::Result<Option<Vec<u8>>> {
                Ok(self.object_blob().get_object(key).await?)
            }
            async fn list(&self, prefix: &str) -> crow_core::Result<Vec<String>> {
                Ok(self.object_blob().list_keys(prefix).await?)
            }
            async fn delete(&self, key: &str) -> crow_core::Result<()> {
                Ok(self.object_blob().delete_object(key).await?)
            }
        }
    )*};
}

impl_blob_store!(ObjectBlobStore, LocalBlobStore, BlobBackend);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        for good in ["a", "a/b.json", "raw/2024/01/02/batch-1.jsonl.gz", "é t+=~!"] {
            validate_key(good).unwrap();
        }
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", "a/./b", "a\\b", "a#1", "a%2F", "a\nb",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_builds_a_local_store() {
        let dir = tempfile::tempdir().unwrap();
        let c: BlobStoreConfig =
            serde_json::from_value(serde_json::json!({"type": "local", "path": dir.path().join("b")})).unwrap();
        let BlobBackend::Local(l) = c.build().unwrap();
        assert!(l.root().is_dir());
        assert!(serde_json::from_str::<BlobStoreConfig>(r#"{"type": "s4", "path": "x"}"#).is_err());
    }
}
