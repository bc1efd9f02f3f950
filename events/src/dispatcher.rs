//! The task that drains one transport's rows from the outbox: claims due rows under a lease,
//! delivers them with bounded concurrency through the [`Transport`] and records each outcome.
//!
//! Each transport gets its own dispatcher (its own claims, concurrency and backoff), so a
//! broker that is down only fills its own retry schedule: the webhooks and the sessions do not
//! wait for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backoff::{JitterSource, RetryPolicy, default_jitter};
use crate::outbox::OutboxEntry;
use crate::store::{Outbox, now_ms};
use crate::transport::{Outcome, Transport};
use crate::webhook::{PlainSecrets, SecretOpener, WebhookTransport};

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// How a dispatcher behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatcherConfig {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// One attempt's time limit (`WEBHOOK_REQUEST_TIMEOUT_MS` for webhooks).
    pub request_timeout: Duration,
    /// How long a claimed row stays invisible to other dispatchers. Longer than the request
    /// timeout, so a live delivery is not sent twice; after a crash, this is how long the rows it
    /// held wait before being retried.
    pub lease: Duration,
    /// Fallback poll for rows this process was not told about (other processes, expired leases).
    pub poll_interval: Duration,
    pub retry: RetryPolicy,
}

/// How much longer than the request timeout a claimed row stays leased.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

impl DispatcherConfig {
    /// Production values around a request timeout and a retry policy.
    pub fn new(request_timeout: Duration, retry: RetryPolicy) -> Self {
        Self {
            concurrency: 8,
            request_timeout,
            // The margin covers recording the outcome after the answer. Keep it short: on
            // PostgreSQL a crashed process's leases hold back its instances' later events (they
            // are delivered in order) until they expire.
            lease: request_timeout + LEASE_MARGIN,
            poll_interval: Duration::from_secs(2),
            retry,
        }
    }
}

/// Told about every outcome: `(transport, "delivered" | "retry" | "dead", dead-letter reason)`.
/// The gateway counts them in its metrics.
pub type Observer = Arc<dyn Fn(&'static str, &'static str, Option<&'static str>) + Send + Sync>;

enum Slot {
    Webhook(WebhookTransport),
    Other(Arc<dyn Transport>),
}

/// An outbox drain for one transport. Build with [`Dispatcher::new`] (webhooks) or
/// [`Dispatcher::for_transport`], start with [`Dispatcher::spawn`].
pub struct Dispatcher {
    outbox: Outbox,
    config: DispatcherConfig,
    slot: Slot,
    jitter: JitterSource,
    observer: Option<Observer>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Stops the dispatcher task.
#[derive(Debug)]
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DispatcherHandle {
    /// Stops claiming, waits for deliveries in flight to be recorded, then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct Running {
    outbox: Outbox,
    config: DispatcherConfig,
    transport: Arc<dyn Transport>,
    name: &'static str,
    jitter: JitterSource,
    observer: Option<Observer>,
    /// Rows delivered since the last turn of the loop, forgotten in its next commit.
    delivered: std::sync::Mutex<Vec<i64>>,
}

impl Dispatcher {
    /// The webhook dispatcher (stored secrets read as plain text until [`Self::with_secrets`]).
    pub fn new(outbox: impl Into<Outbox>, config: DispatcherConfig) -> Result<Self, DispatchError> {
        let webhook = WebhookTransport::new(
            config.request_timeout,
            config.retry.non_retryable.clone(),
            Arc::new(PlainSecrets),
        )?;
        Ok(Self {
            outbox: outbox.into(),
            config,
            slot: Slot::Webhook(webhook),
            jitter: default_jitter(),
            observer: None,
        })
    }

    /// A dispatcher for any other transport.
    pub fn for_transport(
        outbox: impl Into<Outbox>,
        transport: Arc<dyn Transport>,
        config: DispatcherConfig,
    ) -> Self {
        Self {
            outbox: outbox.into(),
            config,
            slot: Slot::Other(transport),
            jitter: default_jitter(),
            observer: None,
        }
    }

    /// How the webhook transport opens stored signing secrets (no effect on other transports).
    pub fn with_secrets(mut self, secrets: impl SecretOpener) -> Self {
        if let Slot::Webhook(w) = &mut self.slot {
            w.set_secrets(Arc::new(secrets));
        }
        self
    }

    /// Replaces the jitter source (tests pin it).
    pub fn with_jitter(mut self, jitter: JitterSource) -> Self {
        self.jitter = jitter;
        self
    }

    /// Reports every outcome to `observer` (metrics).
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn spawn(self) -> DispatcherHandle {
        let transport: Arc<dyn Transport> = match self.slot {
            Slot::Webhook(w) => Arc::new(w),
            Slot::Other(t) => t,
        };
        let running = Running {
            outbox: self.outbox,
            config: self.config,
            name: transport.name(),
            transport,
            jitter: self.jitter,
            observer: self.observer,
            delivered: std::sync::Mutex::new(Vec::new()),
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(Arc::new(running).run(stopped));
        DispatcherHandle { stop, task }
    }
}

impl Running {
    async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let name = self.name;
        match self.outbox.release_leases_of_a_previous_run(name).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(
                    transport = name,
                    rows = n,
                    "outbox rows leased before a crash are due again"
                )
            }
            Err(err) => tracing::warn!(
                transport = name,
                "releasing outbox leases of a previous run: {err}"
            ),
        }
        let mut woken = self.outbox.woken();
        let concurrency = self.config.concurrency.max(1);
        let mut in_flight: JoinSet<()> = JoinSet::new();
        loop {
            if *stopped.borrow() {
                break;
            }
            woken.mark_unchanged();
            let free = concurrency.saturating_sub(in_flight.len());
            let delivered = self.take_delivered();
            let mut claimed_all_free = false;
            if free > 0 || !delivered.is_empty() {
                let now = now_ms();
                let lease_until = now.saturating_add(millis(self.config.lease));
                let limit = i64::try_from(free).unwrap_or(1);
                match self
                    .outbox
                    .settle_and_claim(&delivered, name, now, lease_until, limit)
                    .await
                {
                    Ok(rows) => {
                        claimed_all_free = free > 0 && rows.len() == free;
                        for row in rows {
                            let this = Arc::clone(&self);
                            in_flight.spawn(async move { this.deliver(row).await });
                        }
                    }
                    Err(e) => {
                        // The delivered rows stay leased; forget them on the next turn.
                        self.return_delivered(delivered);
                        tracing::warn!(transport = name, error = %e, "outbox: claiming failed")
                    }
                }
            }
            // More may be due right away once a slot frees; otherwise sleep until the next
            // scheduled retry, a new enqueue, or the poll interval.
            let wait = if free == 0 || claimed_all_free {
                self.config.poll_interval
            } else {
                match self.outbox.next_due(name).await {
                    Ok(Some(at)) => {
                        let until = at.saturating_sub(now_ms()).max(0);
                        Duration::from_millis(u64::try_from(until).unwrap_or(0))
                            .min(self.config.poll_interval)
                    }
                    Ok(None) => self.config.poll_interval,
                    Err(e) => {
                        tracing::warn!(transport = name, error = %e, "outbox: reading the schedule failed");
                        self.config.poll_interval
                    }
                }
            };
            tokio::select! {
                _ = stopped.changed() => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = woken.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
        let delivered = self.take_delivered();
        if !delivered.is_empty()
            && let Err(e) = self
                .outbox
                .settle_and_claim(&delivered, name, now_ms(), 0, 0)
                .await
        {
            tracing::warn!(transport = name, error = %e, "outbox: forgetting delivered rows failed; they will be delivered again");
        }
    }

    fn take_delivered(&self) -> Vec<i64> {
        std::mem::take(&mut *self.delivered.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn return_delivered(&self, ids: Vec<i64>) {
        self.delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(ids);
    }

    fn observe(&self, outcome: &'static str, reason: Option<&'static str>) {
        if let Some(o) = &self.observer {
            o(self.name, outcome, reason);
        }
    }

    /// One attempt of one row, and recording its outcome. Recording errors are logged: the lease
    /// then expires and the row is tried again, which at-least-once allows.
    async fn deliver(&self, row: OutboxEntry) {
        let name = self.name;
        let outcome =
            match tokio::time::timeout(self.config.request_timeout, self.transport.deliver(&row))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Retry {
                    error: "timed out".to_owned(),
                    status: None,
                },
            };
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        let result = match outcome {
            Outcome::Delivered => {
                self.observe("delivered", None);
                tracing::debug!(transport = name, event = %row.event, id = %row.idempotency_id, attempts, "event delivered");
                // Forgotten in the loop's next commit, together with the next claim.
                self.return_delivered(vec![row.id]);
                Ok(())
            }
            Outcome::Reject { status } => {
                self.observe("dead", Some("non_retryable_status"));
                tracing::warn!(transport = name, event = %row.event, id = %row.idempotency_id, status, "event rejected (non-retryable status), moved to dead_letter");
                self.outbox
                    .bury(
                        row.id,
                        "non-retryable status",
                        &format!("HTTP {status}"),
                        Some(i64::from(status)),
                    )
                    .await
            }
            Outcome::Invalid { error } => {
                self.observe("dead", Some("invalid"));
                tracing::warn!(transport = name, event = %row.event, id = %row.idempotency_id, error = %error, "event cannot be delivered, moved to dead_letter");
                self.outbox.bury(row.id, "invalid", &error, None).await
            }
            Outcome::Retry { error, status } => {
                let status = status.map(i64::from);
                if attempts >= self.config.retry.max_attempts {
                    self.observe("dead", Some("retries_exhausted"));
                    tracing::warn!(transport = name, event = %row.event, id = %row.idempotency_id, attempts, error = %error, "event retries exhausted, moved to dead_letter");
                    self.outbox
                        .bury(row.id, "retries exhausted", &error, status)
                        .await
                } else {
                    self.observe("retry", None);
                    let delay = self.config.retry.delay(attempts, (self.jitter)());
                    tracing::debug!(transport = name, event = %row.event, id = %row.idempotency_id, attempts, error = %error, ?delay, "event attempt failed, will retry");
                    self.outbox
                        .reschedule(
                            row.id,
                            now_ms().saturating_add(millis(delay)),
                            &error,
                            status,
                        )
                        .await
                }
            }
        };
        if let Err(e) = result {
            tracing::warn!(transport = name, error = %e, id = %row.idempotency_id, "outbox: recording the outcome failed");
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
