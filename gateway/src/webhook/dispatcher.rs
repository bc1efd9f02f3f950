//! The task that drains the outbox: claims due rows under a lease, POSTs them with bounded
//! concurrency and records each outcome.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::SecretCipher;
use super::backoff::{JitterSource, RetryPolicy, default_jitter};
use super::outbox::OutboxEntry;
use super::sign::{hs256_jwt, signature_header};
use super::{HEADER_EVENT_ID, HEADER_SIGNATURE};
use crate::config::Config;
use crate::db::{Db, DbError, now_ms};
use crate::metrics::metrics;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// How the dispatcher behaves; [`DispatcherConfig::from_config`] gives production values.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatcherConfig {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// `WEBHOOK_REQUEST_TIMEOUT_MS`.
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
    pub fn from_config(config: &Config) -> Self {
        let request_timeout = Duration::from_millis(config.webhook_request_timeout_ms.max(1));
        Self {
            concurrency: 8,
            request_timeout,
            // The margin covers recording the outcome after the answer. Keep it short: on
            // PostgreSQL a crashed process's leases hold back its instances' later events (they
            // are delivered in order) until they expire.
            lease: request_timeout + LEASE_MARGIN,
            poll_interval: Duration::from_secs(2),
            retry: RetryPolicy::from_config(config),
        }
    }
}

/// The outbox drain. Build with [`Dispatcher::new`], start with [`Dispatcher::spawn`].
pub struct Dispatcher {
    db: Db,
    config: DispatcherConfig,
    client: reqwest::Client,
    jitter: JitterSource,
    /// Opens the stored signing secrets (see [`super::SecretCipher`]).
    secrets: SecretCipher,
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

/// What one attempt came to.
enum Outcome {
    Delivered,
    Retry { error: String, status: Option<u16> },
    Reject { status: u16 },
}

impl Dispatcher {
    pub fn new(db: Db, config: DispatcherConfig) -> Result<Self, DispatchError> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()?;
        Ok(Self {
            db,
            config,
            client,
            jitter: default_jitter(),
            secrets: SecretCipher::default(),
        })
    }

    /// The cipher the webhook secrets were stored with (the master key's). Without it only
    /// plain-text secrets can sign.
    pub fn with_secrets(mut self, secrets: SecretCipher) -> Self {
        self.secrets = secrets;
        self
    }

    /// Replaces the jitter source (tests pin it).
    pub fn with_jitter(mut self, jitter: JitterSource) -> Self {
        self.jitter = jitter;
        self
    }

    pub fn spawn(self) -> DispatcherHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(Arc::new(self).run(stopped));
        DispatcherHandle { stop, task }
    }

    async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        match self.db.release_leases_of_a_previous_run().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "outbox rows leased before a crash are due again"),
            Err(err) => tracing::warn!("releasing outbox leases of a previous run: {err}"),
        }
        let concurrency = self.config.concurrency.max(1);
        let mut in_flight: JoinSet<()> = JoinSet::new();
        loop {
            if *stopped.borrow() {
                break;
            }
            let free = concurrency.saturating_sub(in_flight.len());
            let mut claimed_all_free = false;
            if free > 0 {
                let now = now_ms();
                let lease_until = now.saturating_add(millis(self.config.lease));
                match self
                    .db
                    .claim_due(now, lease_until, i64::try_from(free).unwrap_or(1))
                    .await
                {
                    Ok(rows) => {
                        claimed_all_free = rows.len() == free;
                        for row in rows {
                            let this = Arc::clone(&self);
                            in_flight.spawn(async move { this.deliver(row).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "webhook outbox: claiming failed"),
                }
            }
            // More may be due right away once a slot frees; otherwise sleep until the next
            // scheduled retry, a new enqueue, or the poll interval.
            let wait = if free == 0 || claimed_all_free {
                self.config.poll_interval
            } else {
                match self.db.next_due().await {
                    Ok(Some(at)) => {
                        let until = at.saturating_sub(now_ms()).max(0);
                        Duration::from_millis(u64::try_from(until).unwrap_or(0))
                            .min(self.config.poll_interval)
                    }
                    Ok(None) => self.config.poll_interval,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook outbox: reading the schedule failed");
                        self.config.poll_interval
                    }
                }
            };
            tokio::select! {
                _ = stopped.changed() => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = self.db.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// One attempt of one row, and recording its outcome. Recording errors are logged: the lease
    /// then expires and the row is tried again, which at-least-once allows.
    async fn deliver(&self, row: OutboxEntry) {
        let outcome = self.attempt(&row).await;
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        let result = match outcome {
            Outcome::Delivered => {
                metrics().delivery_attempt("delivered");
                tracing::debug!(event = %row.event, id = %row.idempotency_id, attempts, "webhook delivered");
                self.db.mark_delivered(row.id).await
            }
            Outcome::Reject { status } => {
                metrics().delivery_attempt("dead");
                metrics().dead_letter("non_retryable_status");
                tracing::warn!(event = %row.event, id = %row.idempotency_id, status, "webhook rejected (non-retryable status), moved to dead_letter");
                self.db
                    .bury(
                        row.id,
                        "non-retryable status",
                        &format!("HTTP {status}"),
                        Some(i64::from(status)),
                    )
                    .await
            }
            Outcome::Retry { error, status } => {
                let status = status.map(i64::from);
                if attempts >= self.config.retry.max_attempts {
                    metrics().delivery_attempt("dead");
                    metrics().dead_letter("retries_exhausted");
                    tracing::warn!(event = %row.event, id = %row.idempotency_id, attempts, error = %error, "webhook retries exhausted, moved to dead_letter");
                    self.db
                        .bury(row.id, "retries exhausted", &error, status)
                        .await
                } else {
                    metrics().delivery_attempt("retry");
                    let delay = self.config.retry.delay(attempts, (self.jitter)());
                    tracing::debug!(event = %row.event, id = %row.idempotency_id, attempts, error = %error, ?delay, "webhook attempt failed, will retry");
                    self.db
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
            tracing::warn!(error = %e, id = %row.idempotency_id, "webhook outbox: recording the outcome failed");
        }
    }

    async fn attempt(&self, row: &OutboxEntry) -> Outcome {
        let headers = match request_headers(row, &self.secrets) {
            Ok(h) => h,
            Err(e) => {
                return Outcome::Retry {
                    error: e.to_string(),
                    status: None,
                };
            }
        };
        let sent = self
            .client
            .post(&row.url)
            .headers(headers)
            .body(row.body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    Outcome::Delivered
                } else if !self.config.retry.is_retryable(status.as_u16()) {
                    Outcome::Reject {
                        status: status.as_u16(),
                    }
                } else {
                    Outcome::Retry {
                        error: format!("HTTP {}", status.as_u16()),
                        status: Some(status.as_u16()),
                    }
                }
            }
            // Without the URL: it may carry credentials.
            Err(e) => Outcome::Retry {
                error: error_chain(&e.without_url()),
                status: None,
            },
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The stored headers (with `jwt_key` turned into a bearer token), content type, event id and
/// signature. Invalid stored header names or values are skipped (and named, never their values,
/// in the log).
fn request_headers(row: &OutboxEntry, secrets: &SecretCipher) -> Result<HeaderMap, DbError> {
    let mut out = HeaderMap::new();
    let stored: serde_json::Value =
        serde_json::from_str(&row.headers).map_err(|_| DbError::Corrupt("outbox headers"))?;
    if let Some(map) = stored.as_object() {
        for (name, value) in map {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if name == "jwt_key" {
                let iat = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", hs256_jwt(&text, iat))) {
                    out.insert(reqwest::header::AUTHORIZATION, v);
                }
                continue;
            }
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&text),
            ) {
                (Ok(n), Ok(v)) => {
                    out.insert(n, v);
                }
                _ => {
                    tracing::warn!(header = %name.escape_debug(), "webhook header skipped: invalid name or value")
                }
            }
        }
    }
    out.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&row.idempotency_id) {
        out.insert(HEADER_EVENT_ID, v);
    }
    if let Some(stored) = &row.secret {
        // A secret that does not open (master key changed) cannot sign: the delivery goes out
        // unsigned, which a verifying receiver rejects, rather than with a wrong signature.
        match secrets.open(&row.instance_id, stored) {
            Ok(secret) => {
                if let Ok(v) =
                    HeaderValue::from_str(&signature_header(&secret, row.body.as_bytes()))
                {
                    out.insert(HEADER_SIGNATURE, v);
                }
            }
            Err(err) => {
                tracing::error!(instance = %row.instance_id, "webhook delivery not signed: {err}");
            }
        }
    }
    Ok(out)
}
