//! Publishing outbox rows to NATS with `async-nats`. Core NATS has no per-message
//! acknowledgement: a row counts as delivered once the server has processed the publish (a
//! flush, i.e. a PING answered after it), which covers a connection that died under it. With
//! `ZAPIN_NATS_JETSTREAM=true` the publish goes through JetStream and counts only when a stream
//! stored it (its publish ack), and `Nats-Msg-Id` lets the stream drop duplicates.

use std::time::Duration;

use async_nats::HeaderMap;

use super::TRANSPORT;
use crate::outbox::OutboxEntry;
use crate::transport::{BoxFuture, Outcome, Transport};

/// How long one publish (and its flush or ack) may take before the connection is dropped and
/// the row retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers `nats` rows. Connects lazily, and drops the connection after any failure (so
/// nothing it buffered is sent behind the dispatcher's back).
pub struct NatsTransport {
    uri: String,
    jetstream: bool,
    client: tokio::sync::Mutex<Option<async_nats::Client>>,
}

impl std::fmt::Debug for NatsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTransport")
            .field("jetstream", &self.jetstream)
            .finish_non_exhaustive()
    }
}

impl NatsTransport {
    /// `uri` is `NATS_URI` (`nats://host:4222`, several comma-separated allowed).
    pub fn new(uri: &str, jetstream: bool) -> Self {
        Self {
            uri: uri.to_owned(),
            jetstream,
            client: tokio::sync::Mutex::new(None),
        }
    }

    async fn client(&self) -> Result<async_nats::Client, String> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref()
            && c.connection_state() == async_nats::connection::State::Connected
        {
            return Ok(c.clone());
        }
        *slot = None;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(self.uri.as_str())
            .await
            .map_err(|e| format!("NATS connect: {e}"))?;
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn publish(&self, row: &OutboxEntry) -> Result<(), String> {
        let client = self.client().await?;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", row.idempotency_id.as_str());
        headers.insert("Content-Type", "application/json");
        let payload = bytes::Bytes::from(row.body.clone().into_bytes());
        if self.jetstream {
            let js = async_nats::jetstream::new(client);
            let ack = js
                .publish_with_headers(row.url.clone(), headers, payload)
                .await
                .map_err(|e| format!("NATS JetStream publish: {e}"))?;
            ack.await.map_err(|e| format!("NATS JetStream ack: {e}"))?;
        } else {
            client
                .publish_with_headers(row.url.clone(), headers, payload)
                .await
                .map_err(|e| format!("NATS publish: {e}"))?;
            client
                .flush()
                .await
                .map_err(|e| format!("NATS flush: {e}"))?;
        }
        Ok(())
    }

    async fn attempt(&self, row: &OutboxEntry) -> Outcome {
        let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, self.publish(row)).await {
            Ok(r) => r,
            Err(_) => Err("NATS publish timed out".to_owned()),
        };
        match result {
            Ok(()) => Outcome::Delivered,
            Err(error) => {
                self.client.lock().await.take();
                Outcome::Retry {
                    error,
                    status: None,
                }
            }
        }
    }
}

impl Transport for NatsTransport {
    fn name(&self) -> &'static str {
        TRANSPORT
    }

    fn deliver<'a>(&'a self, row: &'a OutboxEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(row))
    }
}
