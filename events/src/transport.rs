//! The one small trait every transport implements: deliver one outbox row, say how it went.
//! Leasing, ordering, retries, backoff and dead letters are the dispatcher's, the same for all.

use std::future::Future;
use std::pin::Pin;

use crate::outbox::OutboxEntry;

/// A boxed future, so the trait stays object safe without a macro crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The target has it (HTTP 2xx, a broker's confirm): the row is deleted.
    Delivered,
    /// Try again after the backoff (or dead-letter after the last attempt).
    Retry { error: String, status: Option<u16> },
    /// Never going to work (a non-retryable HTTP status): dead-letter now.
    Reject { status: u16 },
    /// The stored row cannot be sent by any attempt (corrupt parameters): dead-letter now.
    Invalid { error: String },
}

/// One way out for events: webhook, RabbitMQ, NATS, ….
pub trait Transport: Send + Sync + 'static {
    /// The outbox `transport` value of the rows it delivers.
    fn name(&self) -> &'static str;

    /// One attempt at one row. Must not panic on stored data; errors are outcomes.
    fn deliver<'a>(&'a self, row: &'a OutboxEntry) -> BoxFuture<'a, Outcome>;
}
