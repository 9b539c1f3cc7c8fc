//! The writer thread and its group commit.
//!
//! One thread owns the only write connection. Requests arrive over a channel; the thread takes
//! the first one, drains whatever else is already pending (up to a bound), runs them all in ONE
//! `BEGIN IMMEDIATE ... COMMIT` transaction, each inside its own `SAVEPOINT` (a failing request
//! is rolled back to its savepoint and does not poison the others), and replies to each request
//! only after the commit. Under load, N concurrent writers cost far fewer than N commits (and,
//! with [`Durability::Full`](super::Durability::Full), far fewer than N fsyncs).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::StoreError;

/// One request to the writer: runs inside the group's transaction, answers after the commit.
pub(crate) trait WriteOp: Send {
    /// Rows (or other units of work) the request carries; bounds the size of a group.
    fn weight(&self) -> usize;
    /// Runs the request on the write connection, inside a savepoint.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Sends the answer: the request's own result, or the group's error when the commit failed.
    fn finish(self: Box<Self>, group_error: Option<&StoreError>);
}

/// A [`WriteOp`] made of a closure and the oneshot to answer on.
pub(crate) struct ClosureOp<T, F> {
    weight: usize,
    f: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> ClosureOp<T, F> {
    pub(crate) fn new(weight: usize, f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        ClosureOp {
            weight,
            f: Some(f),
            result: None,
            reply,
        }
    }
}

impl<T, F> WriteOp for ClosureOp<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn weight(&self) -> usize {
        self.weight
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let result = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
            Ok(r) => r,
            Err(_) => Err(StoreError::Internal("a write request panicked".into())),
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, group_error: Option<&StoreError>) {
        let result = match (group_error, self.result) {
            // A request that failed on its own reports its own error even if the group failed.
            (_, Some(Err(e))) => Err(e),
            (Some(e), _) => Err(e.duplicate()),
            (None, Some(r)) => r,
            (None, None) => Err(StoreError::Internal("write request was not run".into())),
        };
        // The caller may have gone away (its future dropped): nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// Bounds of one group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupLimits {
    pub(crate) max_requests: usize,
    pub(crate) max_weight: usize,
}

/// The writer thread's loop: returns when every sender is gone.
pub(crate) fn run(conn: Connection, rx: Receiver<Box<dyn WriteOp>>, limits: GroupLimits, commits: Arc<AtomicU64>) {
    let mut carry: Option<Box<dyn WriteOp>> = None;
    loop {
        let first = match carry.take() {
            Some(op) => op,
            None => match rx.recv() {
                Ok(op) => op,
                Err(_) => break,
            },
        };
        let mut weight = first.weight();
        let mut group = vec![first];
        while group.len() < limits.max_requests && weight < limits.max_weight {
            match rx.try_recv() {
                Ok(op) => {
                    let w = op.weight();
                    if weight + w > limits.max_weight {
                        carry = Some(op);
                        break;
                    }
                    weight += w;
                    group.push(op);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        run_group(&conn, group, &commits);
    }
    tracing::debug!("crow-store writer thread stops");
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the write connection failed");
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn run_group(conn: &Connection, mut group: Vec<Box<dyn WriteOp>>, commits: &AtomicU64) {
    let n = group.len();
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        for op in group {
            op.finish(Some(&e));
        }
        return;
    }
    let mut group_error: Option<StoreError> = None;
    for op in group.iter_mut() {
        if let Err(e) = exec(conn, "SAVEPOINT crow_req") {
            group_error = Some(e);
            break;
        }
        let ok = op.run(conn);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back on its own (I/O error, disk full, ...):
            // everything done so far in this group is gone.
            group_error = Some(StoreError::Internal("SQLite rolled the write transaction back".into()));
            break;
        }
        let end = if ok {
            exec(conn, "RELEASE crow_req")
        } else {
            exec(conn, "ROLLBACK TO crow_req").and_then(|()| exec(conn, "RELEASE crow_req"))
        };
        if let Err(e) = end {
            group_error = Some(e);
            break;
        }
    }
    if group_error.is_none() {
        match exec(conn, "COMMIT") {
            Ok(()) => {
                commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => group_error = Some(e),
        }
    }
    if let Some(e) = &group_error {
        tracing::warn!(error = %e, requests = n, "group commit failed");
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    } else {
        tracing::trace!(requests = n, "group committed");
    }
    for op in group {
        op.finish(group_error.as_ref());
    }
}
