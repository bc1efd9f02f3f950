//! Group commit for SQLite: concurrent [`crate::Store::apply`] batches of many devices share one
//! transaction, and so one fsync.
//!
//! SQLite has a single writer. Without this, N sessions sending at once queue on the write lock
//! and each pays its own WAL fsync, one after the other: the N-th waits N fsyncs. Here the first
//! batch to arrive starts a writer task; batches arriving while it commits queue up and go into
//! its next transaction together. Each batch runs inside a `SAVEPOINT`, so a failing batch (an
//! unknown device) is rolled back alone while the others commit. Every caller is answered only
//! after the shared `COMMIT` returned, which with `synchronous=FULL` means after the WAL fsync:
//! the durability contract of [`crate::Store::apply`] is unchanged, a lone batch is committed at
//! once (no waiting for company), and a busy store does one fsync per round instead of one per
//! batch.
//!
//! PostgreSQL does not need this: concurrent transactions on separate connections already share
//! WAL flushes (a backend that flushes the WAL flushes every commit record written before it).
//!
//! The writer task is started on demand in the runtime of the caller that finds none running, and
//! ends as soon as the queue is empty, so a store holds no task while idle and none survives the
//! runtime it was started in.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::rows::RowOp;
use crate::sql::SqliteBackend;

/// Most batches in one transaction, so a very busy store still answers its first callers soon.
const MAX_GROUP: usize = 256;

struct Request {
    owner: String,
    ops: Vec<RowOp>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The queue and writer of one SQLite store (shared by every clone of the store).
pub(crate) struct GroupCommit {
    backend: SqliteBackend,
    queue: Mutex<Vec<Request>>,
    /// A writer task is running (or about to run) and will see anything queued.
    running: AtomicBool,
    transactions: AtomicU64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("transactions", &self.transactions.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    pub(crate) fn new(backend: SqliteBackend) -> Arc<Self> {
        Arc::new(Self {
            backend,
            queue: Mutex::new(Vec::new()),
            running: AtomicBool::new(false),
            transactions: AtomicU64::new(0),
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Transactions committed so far (each one WAL fsync).
    pub(crate) fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Applies `ops` for `owner` atomically; `Ok` once the transaction holding them is durable.
    pub(crate) async fn apply(
        self: &Arc<Self>,
        owner: &str,
        ops: Vec<RowOp>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue().push(Request {
            owner: owner.to_owned(),
            ops,
            reply,
        });
        if !self.running.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move { this.run().await });
        }
        // The writer answers every request it takes; it only drops one if its runtime stops.
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Database(sqlx::Error::WorkerCrashed)))
    }

    async fn run(self: Arc<Self>) {
        loop {
            let group: Vec<Request> = {
                let mut queue = self.queue();
                let n = queue.len().min(MAX_GROUP);
                queue.drain(..n).collect()
            };
            if group.is_empty() {
                self.running.store(false, Ordering::Release);
                // A request queued between the drain and the store above saw `running` set and
                // started no writer: take it on unless another writer already has.
                if self.queue().is_empty() || self.running.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            }
            self.commit(group).await;
        }
    }

    /// One transaction for `group`; answers every request.
    async fn commit(&self, group: Vec<Request>) {
        let batches: Vec<(&str, &[RowOp])> = group
            .iter()
            .map(|r| (r.owner.as_str(), r.ops.as_slice()))
            .collect();
        match self.backend.apply_group(&batches).await {
            Ok(results) => {
                self.transactions.fetch_add(1, Ordering::Relaxed);
                for (request, result) in group.into_iter().zip(results) {
                    let _ = request.reply.send(result);
                }
            }
            Err(err) => {
                // Nothing of the group was committed. sqlx errors are not `Clone`: the first
                // caller gets the error itself, the others its text.
                let text = err.to_string();
                let mut err = Some(err);
                for request in group {
                    let e = err.take().unwrap_or_else(|| {
                        StoreError::Database(sqlx::Error::Protocol(format!(
                            "group commit failed: {text}"
                        )))
                    });
                    let _ = request.reply.send(Err(e));
                }
            }
        }
    }
}
