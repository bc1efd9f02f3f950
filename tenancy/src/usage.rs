//! The usage log: every answered request and every step of a message's life, written in
//! batches by one writer task, never on a request's critical path.
//!
//! [`UsageLog::record`] and [`UsageLog::message`] put a record on a bounded channel with
//! `try_send` and return at once. When the channel is full (the database is slower than the
//! traffic for longer than the channel's depth, 65 536 records by default) the record is
//! dropped and counted ([`UsageLog::dropped`], a warning every 1 000 drops): a request is never
//! made to wait for its log line. Nothing that costs money depends on this log: quotas and
//! bills are computed from the quota counters, which are exact. What a drop loses is detail in
//! the analytics.
//!
//! The writer collects up to `batch` records (waiting at most `linger` after the first) and
//! inserts them in one transaction, then records the keys' `last_used_at`. A failed batch is
//! retried three times, then dropped and counted. [`UsageWriter::shutdown`] writes what is
//! queued before returning.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::directory::Directory;
use crate::error::TenancyError;
use crate::plan::QuotaType;
use crate::sql::{SqlPool, with_tx};

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// Unix milliseconds when the request arrived.
    pub at: i64,
    pub tenant_id: Option<String>,
    pub instance: Option<String>,
    pub method: String,
    /// The matched route pattern (`/message/sendText/{instance}`), never the raw path.
    pub route: String,
    pub quota: Option<QuotaType>,
    /// Units charged (0 when nothing was: refused, refunded or free).
    pub weight: u32,
    pub status: u16,
    pub latency_us: u64,
    /// The tenant key used, for its `last_used_at`.
    pub key_id: Option<String>,
}

/// A step in a message's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageEvent {
    Sent,
    ServerAck,
    Delivered,
    Read,
    Failed,
    Received,
}

impl MessageEvent {
    pub const ALL: [MessageEvent; 6] = [
        MessageEvent::Sent,
        MessageEvent::ServerAck,
        MessageEvent::Delivered,
        MessageEvent::Read,
        MessageEvent::Failed,
        MessageEvent::Received,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageEvent::Sent => "sent",
            MessageEvent::ServerAck => "server_ack",
            MessageEvent::Delivered => "delivered",
            MessageEvent::Read => "read",
            MessageEvent::Failed => "failed",
            MessageEvent::Received => "received",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// A message event to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub at: i64,
    pub tenant_id: Option<String>,
    pub instance: String,
    pub message_id: String,
    pub event: MessageEvent,
}

#[derive(Debug)]
enum Item {
    Usage(UsageRecord),
    Message(MessageRecord),
    /// Write what came before, then answer.
    Flush(oneshot::Sender<()>),
}

/// Sizes of the log's channel and batches.
#[derive(Debug, Clone)]
pub struct UsageLogOptions {
    pub capacity: usize,
    pub batch: usize,
    pub linger: Duration,
}

impl Default for UsageLogOptions {
    fn default() -> Self {
        Self {
            capacity: 65_536,
            batch: 512,
            linger: Duration::from_millis(200),
        }
    }
}

/// The sending side, held by request handlers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UsageLog {
    tx: mpsc::Sender<Item>,
    dropped: Arc<AtomicU64>,
}

/// The writer task.
#[derive(Debug)]
pub struct UsageWriter {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl UsageLog {
    /// Starts the writer on `pool`; with a `directory`, keys' `last_used_at` is kept too.
    pub fn start(
        pool: SqlPool,
        directory: Option<Directory>,
        options: UsageLogOptions,
    ) -> (UsageLog, UsageWriter) {
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop_rx) = oneshot::channel();
        let writer = Writer {
            pool,
            directory,
            batch: options.batch.max(1),
            linger: options.linger,
            dropped: dropped.clone(),
        };
        let task = tokio::spawn(writer.run(rx, stop_rx));
        (
            UsageLog { tx, dropped },
            UsageWriter {
                stop: Some(stop_tx),
                task,
            },
        )
    }

    fn offer(&self, item: Item) {
        if self.tx.try_send(item).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(1000) {
                tracing::warn!(dropped = n, "usage log full or stopped: records dropped");
            }
        }
    }

    /// Logs an answered request without waiting.
    pub fn record(&self, record: UsageRecord) {
        self.offer(Item::Usage(record));
    }

    /// Logs a message event without waiting.
    pub fn message(&self, record: MessageRecord) {
        self.offer(Item::Message(record));
    }

    /// Records dropped so far (channel full, or a batch that failed for good).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until everything logged before this call is written (tests, analytics that must
    /// see the latest records). This one call may wait for room on the channel.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Item::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

impl UsageWriter {
    /// Writes whatever is queued, then stops the writer.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

struct Writer {
    pool: SqlPool,
    directory: Option<Directory>,
    batch: usize,
    linger: Duration,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Item>, mut stop: oneshot::Receiver<()>) {
        let mut stopping = false;
        loop {
            let first = if stopping {
                match rx.try_recv() {
                    Ok(item) => item,
                    Err(_) => return,
                }
            } else {
                tokio::select! {
                    item = rx.recv() => match item {
                        Some(item) => item,
                        None => return,
                    },
                    _ = &mut stop => {
                        stopping = true;
                        continue;
                    }
                }
            };
            let mut items = vec![first];
            let deadline = tokio::time::Instant::now() + self.linger;
            while items.len() < self.batch && !matches!(items.last(), Some(Item::Flush(_))) {
                let next = if stopping {
                    rx.try_recv().ok()
                } else {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .unwrap_or_default()
                };
                match next {
                    Some(item) => items.push(item),
                    None => break,
                }
            }
            self.write(items).await;
        }
    }

    async fn write(&self, items: Vec<Item>) {
        let mut usage = Vec::new();
        let mut messages = Vec::new();
        let mut waiters = Vec::new();
        for item in items {
            match item {
                Item::Usage(u) => usage.push(u),
                Item::Message(m) => messages.push(m),
                Item::Flush(w) => waiters.push(w),
            }
        }
        if !usage.is_empty() || !messages.is_empty() {
            let mut attempt = 0;
            loop {
                match insert(&self.pool, &usage, &messages).await {
                    Ok(()) => break,
                    Err(err) if attempt < 3 => {
                        attempt += 1;
                        tracing::warn!("writing the usage log failed (retrying): {err}");
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    }
                    Err(err) => {
                        let n = (usage.len() + messages.len()) as u64;
                        self.dropped.fetch_add(n, Ordering::Relaxed);
                        tracing::error!(dropped = n, "usage log batch dropped: {err}");
                        break;
                    }
                }
            }
            if let Some(dir) = &self.directory {
                let mut last: HashMap<&str, i64> = HashMap::new();
                for u in &usage {
                    if let Some(k) = &u.key_id {
                        let at = last.entry(k).or_insert(u.at);
                        *at = (*at).max(u.at);
                    }
                }
                let touched: Vec<(String, i64)> =
                    last.into_iter().map(|(k, at)| (k.to_owned(), at)).collect();
                if let Err(err) = dir.touch_keys(&touched).await {
                    tracing::warn!("recording key use failed: {err}");
                }
            }
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

/// `($1, $2, …), ($k, …)` for `rows` rows of `cols` columns.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut out = String::new();
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", r * cols + c + 1));
        }
        out.push(')');
    }
    out
}

/// Rows per INSERT statement (well under both backends' bound-parameter limits).
const ROWS_PER_STATEMENT: usize = 500;

async fn insert(
    pool: &SqlPool,
    usage: &[UsageRecord],
    messages: &[MessageRecord],
) -> Result<(), TenancyError> {
    let mut tx = pool.begin().await?;
    for chunk in usage.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO usage_log (at, tenant_id, instance, method, route, quota, weight, status, \
             latency_us) VALUES {}",
            placeholders(chunk.len(), 9)
        );
        with_tx!(&mut tx, |c| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for u in chunk {
                q = q
                    .bind(u.at)
                    .bind(u.tenant_id.as_deref())
                    .bind(u.instance.as_deref())
                    .bind(u.method.as_str())
                    .bind(u.route.as_str())
                    .bind(u.quota.map(|q| q.as_str()))
                    .bind(i64::from(u.weight))
                    .bind(i64::from(u.status))
                    .bind(i64::try_from(u.latency_us).unwrap_or(i64::MAX));
            }
            q.execute(c).await?;
        });
    }
    for chunk in messages.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO message_log (at, tenant_id, instance, message_id, event) VALUES {}",
            placeholders(chunk.len(), 5)
        );
        with_tx!(&mut tx, |c| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for m in chunk {
                q = q
                    .bind(m.at)
                    .bind(m.tenant_id.as_deref())
                    .bind(m.instance.as_str())
                    .bind(m.message_id.as_str())
                    .bind(m.event.as_str());
            }
            q.execute(c).await?;
        });
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(super::placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::placeholders(1, 1), "($1)");
    }
}
