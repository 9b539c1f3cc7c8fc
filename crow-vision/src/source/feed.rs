//! The hand-off between a source's background task (the producer: ffmpeg reader, MJPEG client)
//! and [`FrameSource::next_frame`](crow_core::ports::FrameSource::next_frame) (the consumer).
//!
//! The producer runs in its own Tokio task so that a caller dropping a `next_frame` future (in a
//! `select!`, on a timeout) never loses or misaligns a frame, and so that a live source keeps
//! reconnecting while nobody is asking for frames. The consumer applies the stall deadline.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crow_core::ports::Frame;
use futures::FutureExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Result, VisionError};

/// What a producer hands over.
#[derive(Debug)]
pub(crate) enum Msg {
    /// The next frame.
    Frame(Frame),
    /// An error to report: for a file, the reason it ended early; for a live source, a fatal one
    /// (ffmpeg missing) that no restart can fix.
    Error(VisionError),
    /// The producer is done.
    End,
}

/// A bounded queue of messages: a full queue either makes the producer wait (files: no frame is
/// lost) or drops its oldest frame (live: the caller gets the freshest frames).
#[derive(Debug)]
pub(crate) struct Queue {
    items: Mutex<VecDeque<Msg>>,
    capacity: usize,
    drop_oldest: bool,
    available: Notify,
    space: Notify,
}

impl Queue {
    fn new(capacity: usize, drop_oldest: bool) -> Self {
        Queue {
            items: Mutex::new(VecDeque::with_capacity(capacity + 2)),
            capacity: capacity.max(1),
            drop_oldest,
            available: Notify::new(),
            space: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Msg>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message. Errors and the end are never dropped nor held back.
    pub(crate) async fn push(&self, msg: Msg) {
        loop {
            {
                let mut q = self.lock();
                let is_frame = matches!(msg, Msg::Frame(_));
                if !is_frame || q.len() < self.capacity {
                    q.push_back(msg);
                    drop(q);
                    self.available.notify_one();
                    return;
                }
                if self.drop_oldest {
                    if let Some(pos) = q.iter().position(|m| matches!(m, Msg::Frame(_))) {
                        q.remove(pos);
                    }
                    q.push_back(msg);
                    drop(q);
                    self.available.notify_one();
                    return;
                }
            }
            self.space.notified().await;
        }
    }

    /// The next message (cancel-safe: a message is removed only when it is returned).
    async fn pop(&self) -> Msg {
        loop {
            if let Some(m) = self.lock().pop_front() {
                self.space.notify_one();
                return m;
            }
            self.available.notified().await;
        }
    }
}

type Producer = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The consumer side: starts the producer on first use, applies the stall deadline to live
/// sources, and stops the producer when dropped.
pub(crate) struct Feed {
    name: String,
    live: bool,
    stall: Duration,
    queue: Arc<Queue>,
    /// Behind a mutex only to make the feed `Sync` (as the port requires); never contended.
    producer: Mutex<Option<Producer>>,
    task: Option<JoinHandle<()>>,
    last_progress: Option<Instant>,
    ended: bool,
    fatal: Option<String>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("name", &self.name)
            .field("live", &self.live)
            .field("stall", &self.stall)
            .field("started", &self.task.is_some())
            .field("ended", &self.ended)
            .finish()
    }
}

impl Feed {
    /// A feed whose producer is `make(queue)`; `capacity` frames are buffered.
    pub(crate) fn new<F, Fut>(name: String, live: bool, stall: Duration, capacity: usize, make: F) -> Self
    where
        F: FnOnce(Arc<Queue>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let queue = Arc::new(Queue::new(capacity, live));
        let fut = make(queue.clone());
        let q = queue.clone();
        let source_name = name.clone();
        // Whatever happens to the producer, the consumer hears of it: a panic becomes an error,
        // and the end is always queued.
        let producer = async move {
            if AssertUnwindSafe(fut).catch_unwind().await.is_err() {
                q.push(Msg::Error(VisionError::Source {
                    source_name,
                    reason: "the frame reader panicked".into(),
                }))
                .await;
            }
            q.push(Msg::End).await;
        };
        Feed {
            name,
            live,
            stall,
            queue,
            producer: Mutex::new(Some(Box::pin(producer))),
            task: None,
            last_progress: None,
            ended: false,
            fatal: None,
        }
    }

    /// The next frame; see the module docs of [`crate::source`] for the contract.
    pub(crate) async fn next(&mut self) -> Result<Option<Frame>> {
        if let Some(reason) = &self.fatal {
            return Err(VisionError::Source {
                source_name: self.name.clone(),
                reason: reason.clone(),
            });
        }
        if self.ended {
            return Ok(None);
        }
        let producer = self.producer.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(producer) = producer {
            let handle = tokio::runtime::Handle::try_current().map_err(|_| VisionError::Source {
                source_name: self.name.clone(),
                reason: "frames must be read inside a Tokio runtime".into(),
            })?;
            self.task = Some(handle.spawn(producer));
        }
        let msg = if self.live {
            let since = *self.last_progress.get_or_insert_with(Instant::now);
            match tokio::time::timeout_at(since + self.stall, self.queue.pop()).await {
                Ok(msg) => msg,
                Err(_) => {
                    // The next call waits a full stall period again while the producer keeps
                    // reconnecting.
                    self.last_progress = Some(Instant::now());
                    return Err(VisionError::Stalled {
                        source_name: self.name.clone(),
                        secs: self.stall.as_secs(),
                    });
                }
            }
        } else {
            self.queue.pop().await
        };
        match msg {
            Msg::Frame(frame) => {
                self.last_progress = Some(Instant::now());
                Ok(Some(frame))
            }
            Msg::Error(e) => {
                if self.live {
                    self.fatal = Some(match &e {
                        VisionError::Source { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    });
                }
                Err(e)
            }
            Msg::End => {
                self.ended = true;
                Ok(None)
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        // Dropping the producer's future drops its child process (kill_on_drop) and connection.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
