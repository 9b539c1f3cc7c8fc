//! The SQLite backend: [`SqliteStore`] implements [`EventStore`](crow_core::ports::EventStore),
//! [`AccountStore`](crow_core::ports::AccountStore), [`CatalogStore`](crow_core::ports::CatalogStore),
//! [`SocialStore`](crow_core::ports::SocialStore), [`VideoStore`](crow_core::ports::VideoStore),
//! [`JobQueue`](crow_core::ports::JobQueue), [`WorkflowStore`](crow_core::ports::WorkflowStore)
//! and [`PersonStore`](crow_core::ports::PersonStore) (GDPR export and erasure) over one database
//! file.
//!
//! Connections:
//! - **one write connection**, owned by a dedicated thread that group-commits every write
//!   (see [`SqliteStore::commit_count`]): all writes are serialized there, so writers never see
//!   `SQLITE_BUSY` from each other;
//! - **a small pool of read-only connections**, used from `tokio::task::spawn_blocking`; WAL
//!   lets them read while the writer writes.

mod accounts;
mod catalog;
mod events;
mod exports;
mod migrate;
mod persons;
mod queue;
mod social;
mod sql;
mod tasks;
mod video;
mod workflow;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crow_core::ports::KeyGrant;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::error::StoreError;
pub use migrate::{MIGRATIONS, Migration};
use writer::{ClosureOp, GroupLimits, WriteOp};

/// File name of the database inside the directory given to [`SqliteStore::open`].
pub const DB_FILE: &str = "crow.db";

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `PRAGMA synchronous=NORMAL` in WAL mode: a committed write survives a crash of the
    /// process (kill -9, panic, OOM kill) but the last commits may be lost on power loss or an
    /// OS crash. The database never corrupts either way. The default.
    #[default]
    Normal,
    /// `PRAGMA synchronous=FULL`: every commit fsyncs the WAL, so a committed write also
    /// survives power loss. Group commit shares one fsync among all the requests of a group.
    Full,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// Settings of a [`SqliteStore`]. Every field has a default (`#[serde(default)]`), so a config
/// file names only what it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Commit durability; see [`Durability`].
    pub durability: Durability,
    /// How long a connection waits for a lock held by another process (another `crow` CLI on
    /// the same file, say) before failing with `SQLITE_BUSY`. Milliseconds; default 5000.
    pub busy_timeout_ms: u64,
    /// Read-only connections, and so queries running at once (more wait their turn);
    /// default 8. WAL lets them all read while the writer writes.
    pub read_connections: usize,
    /// Most write requests committed in one transaction by the group commit; default 1024.
    pub max_group_requests: usize,
    /// Most rows (events, jobs, products) committed in one transaction by the group commit
    /// (a single larger request is still committed whole); default 100 000.
    pub max_group_rows: usize,
    /// Page cache of each connection, KiB; default 16384 (16 MiB).
    pub cache_size_kib: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            durability: Durability::Normal,
            busy_timeout_ms: 5_000,
            read_connections: 8,
            max_group_requests: 1024,
            max_group_rows: 100_000,
            cache_size_kib: 16 * 1024,
        }
    }
}

/// Grants cached by `authenticate`, so a hit never touches SQLite.
#[derive(Default)]
struct KeyCache {
    /// Write key → grant.
    write: HashMap<String, KeyGrant>,
    /// Secret key prefix → (SHA-256 hex of the whole key, grant).
    secret: HashMap<String, (String, KeyGrant)>,
}

/// Entries kept before the cache is emptied and refilled (a crude bound on memory).
const KEY_CACHE_MAX: usize = 10_000;

struct Inner {
    path: PathBuf,
    config: StoreConfig,
    /// `None` only while dropping.
    sender: Option<Sender<Box<dyn WriteOp>>>,
    writer: Option<JoinHandle<()>>,
    commits: Arc<AtomicU64>,
    readers: Mutex<Vec<Connection>>,
    /// One permit per read connection: queries beyond `read_connections` wait for one.
    read_permits: Arc<tokio::sync::Semaphore>,
    keys: RwLock<KeyCache>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and stop; joining it makes
        // "drop, then reopen" see a closed write connection.
        self.sender.take();
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!("crow-store writer thread panicked");
        }
    }
}

/// The SQLite store: events, sessions, identities, accounts, catalog, social mentions, CCTV
/// frame events and the video archive ledger, jobs and workflow steps in `DIR/crow.db`. Cheap to
/// clone (an `Arc`); all clones share the writer and the pools.
///
/// Dropping the last clone stops the writer thread after it has committed what was queued.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("config", &self.inner.config)
            .field("commits", &self.commit_count())
            .finish_non_exhaustive()
    }
}

fn configure(conn: &Connection, config: &StoreConfig) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_millis(config.busy_timeout_ms))?;
    conn.set_prepared_statement_cache_capacity(128);
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", -(config.cache_size_kib.min(i64::MAX as u64) as i64))?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Deleted rows and freed pages are overwritten with zeros, so an erased person's bytes do
    // not linger in free space (see `persons`: erasure then truncates the WAL).
    conn.pragma_update(None, "secure_delete", true)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating as needed) the store in `dir/crow.db`: creates `dir`, switches the
    /// database to WAL, applies pending [`MIGRATIONS`], and starts the writer thread.
    ///
    /// Errors: [`StoreError::Io`] when `dir` cannot be created, [`StoreError::Sqlite`] /
    /// [`StoreError::Migration`] when the database cannot be opened or migrated,
    /// [`StoreError::SchemaTooNew`] when a newer CROW migrated it.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn, &config)?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::invalid(
                "path",
                format!("cannot use WAL on {} (journal mode {mode})", path.display()),
            ));
        }
        conn.pragma_update(None, "synchronous", config.durability.pragma())?;
        // Truncate the WAL back to 64 MiB after checkpoints instead of keeping its peak size.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        migrate::apply(&mut conn)?;

        let commits = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn WriteOp>>();
        let limits = GroupLimits {
            max_requests: config.max_group_requests.max(1),
            max_weight: config.max_group_rows.max(1),
        };
        let thread_commits = commits.clone();
        let handle = std::thread::Builder::new()
            .name("crow-store-writer".into())
            .spawn(move || writer::run(conn, rx, limits, thread_commits))?;

        let read_permits = Arc::new(tokio::sync::Semaphore::new(config.read_connections.max(1)));
        let inner = Inner {
            path,
            config,
            sender: Some(tx),
            writer: Some(handle),
            commits,
            readers: Mutex::new(Vec::new()),
            read_permits,
            keys: RwLock::new(KeyCache::default()),
        };
        let store = SqliteStore { inner: Arc::new(inner) };
        // Open the pool eagerly so that a broken file fails `open`, not the first query.
        let reader = store.inner.open_reader()?;
        store.inner.put_reader(reader);
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Number of write transactions committed since [`open`](SqliteStore::open). With group
    /// commit, N concurrent writes usually take far fewer than N commits.
    pub fn commit_count(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Runs `f` on the write connection, inside the next group transaction (and its own
    /// savepoint), and returns its result once the transaction has committed.
    pub(crate) async fn write<T, F>(&self, weight: usize, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let op: Box<dyn WriteOp> = Box::new(ClosureOp::new(weight, f, tx));
        let sender = self
            .inner
            .sender
            .as_ref()
            .ok_or_else(|| StoreError::Closed("store is shutting down".into()))?;
        sender
            .send(op)
            .map_err(|_| StoreError::Closed("writer thread stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Closed("writer thread dropped the request".into()))?
    }

    /// Runs `f` on a pooled read-only connection right here, on the calling thread. Only for
    /// indexed point lookups that touch a bounded number of rows (an id, a key, one batch):
    /// they take microseconds, less than the two thread switches of
    /// [`read`](Self::read)'s blocking pool, which dominated the workflow worker's profile.
    pub(crate) fn read_point<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        let conn = self.inner.take_reader()?;
        let result = f(&conn);
        self.inner.put_reader(conn);
        result
    }

    /// Runs `f` on a pooled read-only connection on the blocking thread pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let permit = inner
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed("read pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = inner.take_reader()?;
            let result = f(&conn);
            inner.put_reader(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

impl Inner {
    fn open_reader(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn, &self.config)?;
        Ok(conn)
    }

    fn take_reader(&self) -> Result<Connection, StoreError> {
        let pooled = self.readers.lock().ok().and_then(|mut p| p.pop());
        match pooled {
            Some(c) => Ok(c),
            None => self.open_reader(),
        }
    }

    fn put_reader(&self, conn: Connection) {
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < self.config.read_connections.max(1)
        {
            pool.push(conn);
        }
    }
}

/// Wall-clock milliseconds, for records where the caller passes no time.
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert_setting(conn: &Connection, key: &str) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO settings (org_id, key, value, updated_at) VALUES ('', ?1, '1', 0)",
            [key],
        )?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_request_does_not_poison_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        store.write(1, |c| insert_setting(c, "taken")).await.unwrap();
        assert_eq!(store.commit_count(), 1);

        // Hold the writer so the next four requests queue up and commit as one group.
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let s = store.clone();
            async move {
                s.write(1, move |_| {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        let spawn = |f: fn(&Connection) -> Result<(), StoreError>| {
            let s = store.clone();
            tokio::spawn(async move { s.write(1, f).await })
        };
        let ok1 = spawn(|c| insert_setting(c, "a"));
        let failing = spawn(|c| {
            insert_setting(c, "rolled-back")?;
            Err(StoreError::Conflict("refused".into()))
        });
        let constraint = spawn(|c| insert_setting(c, "taken"));
        let ok2 = spawn(|c| insert_setting(c, "b"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        release_tx.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        ok1.await.unwrap().unwrap();
        ok2.await.unwrap().unwrap();
        assert!(matches!(failing.await.unwrap(), Err(StoreError::Conflict(_))));
        assert!(constraint.await.unwrap().unwrap_err().is_constraint_violation());
        assert_eq!(
            store.commit_count(),
            3,
            "blocker alone, then the four requests together"
        );
        let keys: Vec<String> = store
            .read(|c| {
                Ok(c.prepare("SELECT key FROM settings ORDER BY key")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(keys, ["a", "b", "taken"]);
    }

    #[test]
    fn config_parses_with_defaults() {
        let c: StoreConfig = serde_json::from_str(r#"{"durability":"full"}"#).unwrap();
        assert_eq!(c.durability, Durability::Full);
        assert_eq!(c.read_connections, StoreConfig::default().read_connections);
        assert!(serde_json::from_str::<StoreConfig>(r#"{"durabilty":"full"}"#).is_err());
    }
}
