//! The index's files: an append-only log of changes since the last snapshot, and the snapshot's
//! record table.
//!
//! Log entry: `len: u32 LE | crc32(payload): u32 LE | payload`. One entry per `upsert` or
//! `delete` call, written and synced before the call returns, so a batch is all there or not at
//! all. Replay stops at the first short or corrupt entry (a write cut by kill -9) and the file is
//! truncated there. The payload and the record table use the same little binary encoding:
//! strings as `u32 length + UTF-8`, metadata as a JSON string, vectors as `f32 LE`.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::StoreError;

/// One change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Upsert(Vec<Row>),
    Delete { org: String, ids: Vec<String> },
}

/// A record as the log and the snapshot hold it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) org: String,
    pub(crate) namespace: Option<String>,
    pub(crate) id: String,
    pub(crate) metadata: Map<String, Value>,
    /// Empty in the snapshot's record table (the vectors live in the graph dump).
    pub(crate) values: Vec<f32>,
    pub(crate) deleted: bool,
}

const UPSERT: u8 = 1;
const DELETE: u8 = 2;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn encode_row(out: &mut Vec<u8>, row: &Row) {
    put_str(out, &row.org);
    match &row.namespace {
        Some(ns) => {
            out.push(1);
            put_str(out, ns);
        }
        None => out.push(0),
    }
    put_str(out, &row.id);
    put_str(out, &Value::Object(row.metadata.clone()).to_string());
    out.push(row.deleted as u8);
    out.extend_from_slice(&(row.values.len() as u32).to_le_bytes());
    for v in &row.values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn encode(op: &Op) -> Vec<u8> {
    let mut out = Vec::new();
    match op {
        Op::Upsert(rows) => {
            out.push(UPSERT);
            out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
            for r in rows {
                encode_row(&mut out, r);
            }
        }
        Op::Delete { org, ids } => {
            out.push(DELETE);
            put_str(&mut out, org);
            out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            for id in ids {
                put_str(&mut out, id);
            }
        }
    }
    out
}

/// A reader over an encoded buffer; every read fails cleanly on a short buffer.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn done(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }

    pub(crate) fn row(&mut self) -> Option<Row> {
        let org = self.str()?;
        let namespace = match self.u8()? {
            0 => None,
            _ => Some(self.str()?),
        };
        let id = self.str()?;
        let metadata = match serde_json::from_str(&self.str()?).ok()? {
            Value::Object(m) => m,
            _ => return None,
        };
        let deleted = self.u8()? != 0;
        let n = self.u32()? as usize;
        let bytes = self.take(n.checked_mul(4)?)?;
        let values = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        Some(Row {
            org,
            namespace,
            id,
            metadata,
            values,
            deleted,
        })
    }

    fn op(&mut self) -> Option<Op> {
        match self.u8()? {
            UPSERT => {
                let n = self.u32()? as usize;
                let mut rows = Vec::with_capacity(n.min(65_536));
                for _ in 0..n {
                    rows.push(self.row()?);
                }
                Some(Op::Upsert(rows))
            }
            DELETE => {
                let org = self.str()?;
                let n = self.u32()? as usize;
                let mut ids = Vec::with_capacity(n.min(65_536));
                for _ in 0..n {
                    ids.push(self.str()?);
                }
                Some(Op::Delete { org, ids })
            }
            _ => None,
        }
    }
}

/// Replays the complete entries of the log at `path` (if any) without changing the file, for a
/// read-only open, from byte `offset` on. Returns the number replayed and the offset after the
/// last whole entry (where the next call picks up).
pub(crate) fn replay(
    path: &Path,
    offset: u64,
    mut apply: impl FnMut(Op) -> Result<(), StoreError>,
) -> Result<(usize, u64), StoreError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, offset)),
        Err(e) => return Err(e.into()),
    };
    file.seek(SeekFrom::Start(offset))?;
    let (entries, bytes) = read_entries(&file, &mut apply)?;
    Ok((entries, offset + bytes))
}

/// Reads entries until the end or the first torn one: `(entries, bytes of whole entries)`.
fn read_entries(file: &File, apply: &mut impl FnMut(Op) -> Result<(), StoreError>) -> Result<(usize, u64), StoreError> {
    let mut reader = BufReader::new(file);
    let mut good = 0u64;
    let mut entries = 0usize;
    let mut header = [0u8; 8];
    let mut payload = Vec::new();
    loop {
        if reader.read_exact(&mut header).is_err() {
            break;
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        payload.resize(len, 0);
        if reader.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            break;
        }
        let mut cur = Cursor::new(&payload);
        let Some(op) = cur.op().filter(|_| cur.done()) else {
            break;
        };
        apply(op)?;
        good += 8 + len as u64;
        entries += 1;
    }
    Ok((entries, good))
}

/// The open log, appended to by every change.
pub(crate) struct Log {
    path: PathBuf,
    file: File,
    len: u64,
    sync: bool,
}

impl Log {
    /// Opens (creating) the log at `path`, replays its complete entries into `apply`, and cuts
    /// off a torn tail. Returns the log and the number of entries replayed.
    pub(crate) fn open(
        path: &Path,
        sync: bool,
        mut apply: impl FnMut(Op) -> Result<(), StoreError>,
    ) -> Result<(Log, usize), StoreError> {
        let file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let (entries, good) = read_entries(&file, &mut apply)?;
        let actual = file.metadata()?.len();
        if actual > good {
            tracing::warn!(
                path = %path.display(),
                kept = good,
                dropped = actual - good,
                "vector index log ends in a torn write (a crash mid-append); dropping the tail"
            );
            file.set_len(good)?;
            file.sync_all()?;
        }
        Ok((
            Log {
                path: path.to_path_buf(),
                file,
                len: good,
                sync,
            },
            entries,
        ))
    }

    /// Appends one change; durable when it returns (unless `sync` is off).
    pub(crate) fn append(&mut self, op: &Op) -> Result<(), StoreError> {
        let payload = encode(op);
        let mut entry = Vec::with_capacity(payload.len() + 8);
        entry.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        entry.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        entry.extend_from_slice(&payload);
        let res = self
            .file
            .write_all(&entry)
            .and_then(|_| if self.sync { self.file.sync_data() } else { Ok(()) });
        if let Err(e) = res {
            // Leave no partial entry behind for the next append to follow.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::End(0));
            return Err(e.into());
        }
        self.len += entry.len() as u64;
        Ok(())
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes the snapshot's record table (one row per slot, values empty) and syncs it.
pub(crate) fn write_records(path: &Path, rows: impl Iterator<Item = Row>) -> Result<(), StoreError> {
    let file = File::create(path)?;
    let mut w = BufWriter::new(file);
    let mut buf = Vec::new();
    for row in rows {
        buf.clear();
        encode_row(&mut buf, &row);
        w.write_all(&buf)?;
    }
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

/// Reads a record table written by [`write_records`].
pub(crate) fn read_records(path: &Path) -> Result<Vec<Row>, StoreError> {
    let bytes = std::fs::read(path)?;
    let mut cur = Cursor::new(&bytes);
    let mut rows = Vec::new();
    while !cur.done() {
        rows.push(cur.row().ok_or_else(|| StoreError::Corrupt {
            path: path.display().to_string(),
            reason: format!("record {} is cut short or malformed", rows.len()),
        })?);
    }
    Ok(rows)
}

/// Syncs a directory so that renames and new files in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> Row {
        Row {
            org: "o".into(),
            namespace: Some("ns".into()),
            id: id.into(),
            metadata: serde_json::json!({"a": 1}).as_object().cloned().unwrap(),
            values: vec![0.5, -1.0],
            deleted: false,
        }
    }

    #[test]
    fn replays_whole_entries_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let ops = [
            Op::Upsert(vec![row("a"), row("b")]),
            Op::Delete {
                org: "o".into(),
                ids: vec!["a".into()],
            },
        ];
        {
            let (mut log, n) = Log::open(&path, true, |_| Ok(())).unwrap();
            assert_eq!(n, 0);
            for op in &ops {
                log.append(op).unwrap();
            }
        }
        let full = std::fs::metadata(&path).unwrap().len();
        // A crash mid-append leaves half an entry.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 1]).unwrap();
        drop(f);
        let mut seen = Vec::new();
        let (mut log, n) = Log::open(&path, true, |op| {
            seen.push(op);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen, ops);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            full,
            "the torn tail is cut off"
        );
        log.append(&Op::Upsert(vec![row("c")])).unwrap();
        let (_, n) = Log::open(&path, true, |_| Ok(())).unwrap();
        assert_eq!(n, 3, "appends after a repair replay");
    }

    #[test]
    fn record_tables_round_trip_and_reject_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records");
        let mut r = row("x");
        r.values.clear();
        write_records(&path, [r.clone(), row("y")].into_iter()).unwrap();
        let back = read_records(&path).unwrap();
        assert_eq!(back[0], r);
        std::fs::write(&path, [1, 2, 3]).unwrap();
        assert!(matches!(read_records(&path), Err(StoreError::Corrupt { .. })));
    }
}
