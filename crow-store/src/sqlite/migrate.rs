//! Schema migrations: plain SQL files under `crow-store/migrations/`, embedded at build time.
//!
//! The files are D1-compatible (no PRAGMA, no ATTACH, no user-defined functions), so the
//! Worker applies the very same directory with `wrangler d1 migrations apply` (which records
//! them in its own `d1_migrations` table). Natively, [`apply`] records them in
//! `schema_migrations (version, name, applied_at)`.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// One schema migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Version, from the file name's number; migrations apply in increasing order.
    pub version: i64,
    /// File name without `.sql`, e.g. `0001_init`.
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

/// Every migration this build knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_text",
        sql: include_str!("../../migrations/0002_text.sql"),
    },
    Migration {
        version: 3,
        name: "0003_social",
        sql: include_str!("../../migrations/0003_social.sql"),
    },
    Migration {
        version: 4,
        name: "0004_video",
        sql: include_str!("../../migrations/0004_video.sql"),
    },
    Migration {
        version: 5,
        name: "0005_access",
        sql: include_str!("../../migrations/0005_access.sql"),
    },
    Migration {
        version: 6,
        name: "0006_exports",
        sql: include_str!("../../migrations/0006_exports.sql"),
    },
    Migration {
        version: 7,
        name: "0007_agent_tasks",
        sql: include_str!("../../migrations/0007_agent_tasks.sql"),
    },
];

/// Applies the pending migrations in one immediate transaction (so two processes opening the
/// same file at once cannot both apply them).
pub(crate) fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )?;
    let current: i64 = tx.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| {
        r.get(0)
    })?;
    let supported = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql).map_err(|source| StoreError::Migration {
            name: m.name.to_owned(),
            source,
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, super::wall_clock_ms()],
        )?;
        tracing::info!(migration = m.name, "applied migration");
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_d1_compatible() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "{} out of order", m.name);
            last = m.version;
            assert!(m.name.starts_with(&format!("{:04}_", m.version)), "{}", m.name);
            let upper = m.sql.to_uppercase();
            // Comments may mention the words; statements may not use them.
            let code: String = upper
                .lines()
                .map(|l| l.split("--").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            let mut words = code.split(|c: char| !c.is_ascii_alphanumeric() && c != '_');
            assert!(
                !words.any(|w| ["PRAGMA", "ATTACH", "STRICT"].contains(&w)),
                "{} uses a statement D1 rejects",
                m.name
            );
        }
    }

    #[test]
    fn applying_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        apply(&mut conn).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);
        conn.execute("INSERT INTO schema_migrations VALUES (9999, 'x', 0)", [])
            .unwrap();
        assert!(matches!(
            apply(&mut conn),
            Err(StoreError::SchemaTooNew { found: 9999, .. })
        ));
    }
}
