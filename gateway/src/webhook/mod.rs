//! Durable webhook delivery: a transactional outbox and the dispatcher that drains it.
//!
//! # Delivery guarantees
//!
//! * **At-least-once.** An event is written to the `outbox` table in the same database
//!   transaction as the state change it reports ([`crate::db::Tx`]); the dispatcher deletes the
//!   row only after the receiver answered 2xx. A crash between the receiver's answer and that
//!   delete (or a lease that expired while a slow request was still running) means the event is
//!   sent again, so receivers must **deduplicate by the `X-Zapin-Event-Id` header**, a UUID that
//!   stays the same across retries and restarts. The same event sent to both the instance webhook
//!   and the global webhook carries the same id at both URLs.
//! * **No ordering** between events, as in Evolution: several deliveries run concurrently and a
//!   failing event is retried later while newer ones go ahead.
//! * **Retries** follow Evolution's policy (contract §5.3): after failed attempt *n*, wait
//!   `min(initial·2^(n−1), max)` ± `jitter` (a fraction), floored at `initial`; network errors,
//!   timeouts and statuses outside `WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES` are retried up to
//!   `WEBHOOK_RETRY_MAX_ATTEMPTS` attempts in total. Attempts are counted when a delivery is
//!   claimed, so an attempt cut short by a crash counts too.
//! * **Dead letters.** A non-retryable status, or the failure of the last attempt, moves the row
//!   to the `dead_letter` table (same columns, plus `failed_at` and `reason`; the signing secret
//!   is not copied) instead of dropping it as Evolution does. Nothing deletes dead letters; an
//!   operator can inspect and replay them.
//!
//! # Request
//!
//! `POST <url>` (plus `/<event-suffix>` when `byEvents` is on, e.g. `/messages-upsert`) with the
//! envelope as the JSON body and these headers:
//!
//! * the webhook's stored `headers`; a `jwt_key` entry is replaced by
//!   `Authorization: Bearer <HS256 JWT {iat, exp: iat+600, app:"evolution", action:"webhook"}>`
//!   signed with that key, as Evolution does;
//! * `Content-Type: application/json`;
//! * `X-Zapin-Event-Id: <uuid>`;
//! * when the webhook has a `secret` (zapin extension), `X-Zapin-Signature: sha256=<hex>` where
//!   `<hex>` is the lower-case hex HMAC-SHA256 keyed with the secret's UTF-8 bytes over the exact
//!   body bytes received. Verify it over the raw body before parsing, in constant time. The
//!   secret is stored encrypted (see [`SecretCipher`]); a secret that no longer decrypts (master
//!   key changed) leaves the request unsigned rather than wrongly signed.

mod backoff;
mod dispatcher;
mod outbox;
mod secret;
mod sign;

pub use backoff::{JitterSource, RetryPolicy, default_jitter};
pub use dispatcher::{DispatchError, Dispatcher, DispatcherConfig, DispatcherHandle};
pub use outbox::{DeadLetter, OutboxEntry, TargetKind};
pub use secret::{SecretCipher, SecretError};
pub use sign::{hs256_jwt, signature_header};

use std::collections::BTreeSet;

use crate::config::Config;

pub const EVENT_INSTANCE_CREATE: &str = "INSTANCE_CREATE";
pub const EVENT_INSTANCE_DELETE: &str = "INSTANCE_DELETE";
pub const EVENT_MESSAGES_UPSERT: &str = "MESSAGES_UPSERT";

/// Header carrying the event's idempotency id.
pub const HEADER_EVENT_ID: &str = "x-zapin-event-id";
/// Header carrying the body's HMAC-SHA256 when the webhook has a secret.
pub const HEADER_SIGNATURE: &str = "x-zapin-signature";

/// Where events go besides each instance's own webhook: the global webhook from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// `WEBHOOK_GLOBAL_URL` when `WEBHOOK_GLOBAL_ENABLED=true`.
    pub global_url: Option<String>,
    /// `WEBHOOK_GLOBAL_WEBHOOK_BY_EVENTS`.
    pub global_by_events: bool,
    /// Config keys with `WEBHOOK_EVENTS_<KEY>=true`.
    pub global_events: BTreeSet<String>,
}

impl Routing {
    pub fn from_config(config: &Config) -> Self {
        Self {
            global_url: config.webhook_global_url.clone(),
            global_by_events: config.webhook_global_by_events,
            global_events: config
                .webhook_global_events
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
        }
    }
}

/// The `byEvents` URL suffix of a config key: lower case, `_` → `-` (`MESSAGES_UPSERT` →
/// `messages-upsert`).
pub fn event_suffix(event: &str) -> String {
    event.to_ascii_lowercase().replace('_', "-")
}

/// `url`, or `url/<suffix>` when `by_events`.
pub fn target_url(url: &str, by_events: bool, event: &str) -> String {
    if by_events {
        format!("{url}/{}", event_suffix(event))
    } else {
        url.to_owned()
    }
}

/// Evolution only delivers to URLs matching `^https?://`.
pub fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}
