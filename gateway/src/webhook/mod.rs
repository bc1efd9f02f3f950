//! The gateway's side of event delivery: wiring the event bus (the `zapin-events` crate, which
//! owns the outbox, the dispatchers and the transports) to the configuration, and the webhook
//! signing secrets at rest.
//!
//! The delivery guarantees (at least once, deduplicate by `X-Zapin-Event-Id`, in order per
//! instance and target, Evolution's retry schedule, dead letters) are documented in
//! `zapin_events`; the webhook request (headers, `jwt_key`, `X-Zapin-Signature`) in
//! `zapin_events::webhook`.

mod secret;

pub use secret::{SecretCipher, SecretError};
pub use zapin_events::amqp::{AmqpRouting, AmqpTransport};
pub use zapin_events::nats::{NatsRouting, NatsTransport};
pub use zapin_events::webhook::{
    EVENT_INSTANCE_CREATE, EVENT_INSTANCE_DELETE, EVENT_MESSAGES_UPSERT, HEADER_EVENT_ID,
    HEADER_SIGNATURE, Routing, TargetKind, event_suffix, hs256_jwt, is_http_url, signature_header,
    target_url,
};
pub use zapin_events::{
    DeadLetter, DispatchError, Dispatcher, DispatcherConfig, DispatcherHandle, JitterSource,
    OutboxEntry, RetryPolicy, Transports, default_jitter,
};

use std::time::Duration;

use zeroize::Zeroizing;

use crate::config::Config;

/// The global webhook routing of `config` (`WEBHOOK_GLOBAL_*`, `WEBHOOK_EVENTS_*`).
pub fn routing(config: &Config) -> Routing {
    Routing {
        global_url: config.webhook_global_url.clone(),
        global_by_events: config.webhook_global_by_events,
        global_events: config
            .webhook_global_events
            .iter()
            .map(|e| (*e).to_owned())
            .collect(),
    }
}

/// Every transport `config` enables: the webhooks, and RabbitMQ / NATS from Evolution's
/// environment variables.
pub fn transports(config: &Config) -> Transports {
    Transports {
        webhook: routing(config),
        rabbitmq: config.rabbitmq.clone(),
        nats: config.nats.clone(),
    }
}

/// Evolution's webhook retry schedule from `WEBHOOK_RETRY_*`.
pub fn retry_policy(config: &Config) -> RetryPolicy {
    RetryPolicy {
        max_attempts: config.webhook_retry_max_attempts.max(1),
        initial_delay: Duration::from_secs(config.webhook_retry_initial_delay_secs),
        max_delay: Duration::from_secs(config.webhook_retry_max_delay_secs),
        exponential: config.webhook_retry_exponential,
        jitter: config.webhook_retry_jitter,
        non_retryable: config.webhook_non_retryable_status.clone(),
    }
}

/// The webhook dispatcher's production settings (`WEBHOOK_REQUEST_TIMEOUT_MS`,
/// `WEBHOOK_RETRY_*`).
pub fn dispatcher_config(config: &Config) -> DispatcherConfig {
    DispatcherConfig::new(
        Duration::from_millis(config.webhook_request_timeout_ms.max(1)),
        retry_policy(config),
    )
}

/// The broker dispatchers' settings: the same retry schedule as the webhooks (a broker has no
/// status codes, so nothing is rejected at once), with a 30 s limit per publish.
pub fn broker_dispatcher_config(config: &Config) -> DispatcherConfig {
    DispatcherConfig::new(Duration::from_secs(30), retry_policy(config))
}

/// Counts the webhook deliveries' outcomes in the metrics (`zapin_webhook_*`; the brokers have
/// no metrics of their own yet).
pub fn metrics_observer() -> zapin_events::Observer {
    std::sync::Arc::new(|_transport, outcome, reason| {
        crate::metrics::metrics().delivery_attempt(outcome);
        if let Some(reason) = reason {
            crate::metrics::metrics().dead_letter(reason);
        }
    })
}

/// Starts one dispatcher per enabled transport: the webhooks always, RabbitMQ and NATS when
/// their `*_ENABLED` is on.
pub fn start_dispatchers(
    db: &crate::db::Db,
    config: &Config,
) -> Result<Vec<DispatcherHandle>, DispatchError> {
    let webhook = Dispatcher::new(db, dispatcher_config(config))?
        .with_secrets(SecretCipher::with_keyring(config.keyring()))
        .with_observer(metrics_observer())
        .spawn();
    let mut started = vec![webhook];
    if let Some(amqp) = &config.rabbitmq {
        let transport = zapin_events::amqp::AmqpTransport::new(&amqp.uri, amqp.frame_max);
        started.push(
            Dispatcher::for_transport(
                db,
                std::sync::Arc::new(transport),
                broker_dispatcher_config(config),
            )
            .spawn(),
        );
    }
    if let Some(nats) = &config.nats {
        let transport = zapin_events::nats::NatsTransport::new(&nats.uri, nats.jetstream);
        started.push(
            Dispatcher::for_transport(
                db,
                std::sync::Arc::new(transport),
                broker_dispatcher_config(config),
            )
            .spawn(),
        );
    }
    Ok(started)
}

impl zapin_events::webhook::SecretOpener for SecretCipher {
    fn open_secret(&self, instance_id: &str, stored: &str) -> Result<Zeroizing<String>, String> {
        self.open(instance_id, stored).map_err(|e| e.to_string())
    }
}
