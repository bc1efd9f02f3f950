//! zapin-events: the event bus.
//!
//! It owns the durable **outbox** (rows written in the caller's database transaction, next to
//! the state change they report), the **fan-out** (one row per target that wants the event:
//! instance webhook, global webhook, each broker per instance and globally), the
//! **dispatcher** (one per transport: leases, per-target ordering, retries with backoff, dead
//! letters) and **one module per transport** behind the small [`Transport`] trait:
//! [`webhook`], [`amqp`] (RabbitMQ), [`nats`].
//!
//! It must not know about HTTP routes, tenants or sessions: the gateway validates requests,
//! builds the envelope (compat-evolution) and calls [`enqueue`] inside its transaction; it
//! wires the dispatchers at start. Arrows: `gateway → events → compat-evolution`, never back.
//!
//! # Delivery guarantees (every transport)
//!
//! * **At least once.** A row is deleted only after its target took it (HTTP 2xx, a RabbitMQ
//!   publisher confirm, a NATS flush or JetStream publish ack). A crash between that and the delete (or
//!   a lease that expired while a slow attempt still ran) sends it again, so consumers
//!   **deduplicate by the event id**: the `X-Zapin-Event-Id` header of webhooks, the AMQP
//!   `message_id` property, the NATS `Nats-Msg-Id` header. It is a UUID that stays the same
//!   across retries and restarts and is the same for every target of one event.
//! * **In order per instance and target.** Only the oldest row of each (instance, target) is
//!   leased, so an instance's events reach each target one at a time in the order they were
//!   enqueued; a failing delivery holds back the ones behind it until it is delivered or
//!   dead-lettered. Different instances, targets and transports go in parallel.
//! * **Retries** follow Evolution's webhook policy (contract §5.3): after failed attempt *n*,
//!   wait `min(initial·2^(n−1), max)` ± `jitter`, floored at `initial`, up to `max_attempts`
//!   attempts in total, counted when a delivery is claimed.
//! * **Dead letters.** A non-retryable status, or the failure of the last attempt, moves the row
//!   to `dead_letter` (with `failed_at` and `reason`; a signing secret is not copied). Nothing
//!   deletes dead letters; an operator can inspect and replay them.
//! * **Independence.** Each transport has its own dispatcher and its own rows: a broker that is
//!   down makes only its own rows wait and retry.

pub mod amqp;
mod backoff;
mod dispatcher;
pub mod nats;
mod outbox;
pub mod settings;
mod store;
mod transport;
mod transports;
pub mod webhook;

pub use backoff::{JitterSource, RetryPolicy, default_jitter};
pub use dispatcher::{
    DispatchError, Dispatcher, DispatcherConfig, DispatcherHandle, LEASE_MARGIN, Observer,
};
pub use outbox::{
    BrokerEnvelope, DeadLetter, Enqueued, InstanceWebhook, NewDelivery, OutboxEntry, enqueue,
    globally_selected, subscribed,
};
pub use store::{Outbox, StoreError, StorePool, TxConn, new_uuid, now_ms};
pub use transport::{BoxFuture, Outcome, Transport};
pub use transports::{GLOBAL_EVENT_KEYS, Transports, dotted, env_events, env_flag};

/// An error and its sources on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
