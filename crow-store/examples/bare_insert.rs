//! The limit for benchmark (c) in BENCHMARKS.md: re-inserts every row of the `interactions`
//! table of an existing CROW database into a fresh database with the same schema (same
//! migrations, same indexes, WAL, `synchronous=NORMAL`) using a bare rusqlite loop, one
//! transaction per N rows, and prints rows/s.
//!
//! ```sh
//! cargo run --release -p crow-store --example bare_insert -- crow-data/crow.db 50
//! ```

use std::time::Instant;

use rusqlite::types::Value;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let src = args.next().ok_or("usage: bare_insert SOURCE.db [ROWS_PER_TX]")?;
    let per_tx: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(50);

    let source = rusqlite::Connection::open_with_flags(&src, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let columns: Vec<String> = source
        .prepare("SELECT name FROM pragma_table_info('interactions')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut stmt = source.prepare(&format!("SELECT {} FROM interactions ORDER BY seq", columns.join(",")))?;
    let rows: Vec<Vec<Value>> = stmt
        .query_map([], |r| (0..columns.len()).map(|i| r.get::<_, Value>(i)).collect())?
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        return Err("the source database has no interactions".into());
    }

    let dir = tempfile::tempdir()?;
    let mut conn = rusqlite::Connection::open(dir.path().join("bare.db"))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
    for m in crow_store::MIGRATIONS {
        conn.execute_batch(m.sql)?;
    }
    let placeholders = vec!["?"; columns.len()].join(",");
    let sql = format!(
        "INSERT OR IGNORE INTO interactions ({}) VALUES ({placeholders})",
        columns.join(",")
    );

    let started = Instant::now();
    for chunk in rows.chunks(per_tx) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(&sql)?;
            for row in chunk {
                insert.execute(rusqlite::params_from_iter(row.iter()))?;
            }
        }
        tx.commit()?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("inserted {} rows in {secs:.3} s, {per_tx} per transaction", rows.len());
    println!("RESULT {:.0}", rows.len() as f64 / secs);
    Ok(())
}
