//! The webhook transport: `POST` of the envelope to the instance's webhook and to the global
//! webhook (contract §5.3).
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
//!   secret is stored sealed; the transport opens it through a [`SecretOpener`] the gateway
//!   gives it. A secret that no longer opens leaves the request unsigned rather than wrongly
//!   signed.
//!
//! A 2xx answer delivers; a status in `WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES` dead-letters at
//! once; anything else (other statuses, network errors, timeouts) is retried.

mod sign;

pub use sign::{hs256_jwt, signature_header};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use zeroize::Zeroizing;

use crate::outbox::OutboxEntry;
use crate::transport::{BoxFuture, Outcome, Transport};

/// The outbox `transport` of webhook rows.
pub const TRANSPORT: &str = "webhook";

pub const EVENT_INSTANCE_CREATE: &str = "INSTANCE_CREATE";
pub const EVENT_INSTANCE_DELETE: &str = "INSTANCE_DELETE";
pub const EVENT_MESSAGES_UPSERT: &str = "MESSAGES_UPSERT";

/// Header carrying the event's idempotency id.
pub const HEADER_EVENT_ID: &str = "x-zapin-event-id";
/// Header carrying the body's HMAC-SHA256 when the webhook has a secret.
pub const HEADER_SIGNATURE: &str = "x-zapin-signature";

/// Which webhook a row is for (its `target_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Instance,
    Global,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Instance => "instance",
            TargetKind::Global => "global",
        }
    }
}

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

/// Opens a stored (sealed) signing secret. The gateway owns the keys; without an opener,
/// stored secrets are used as they are (plain text).
pub trait SecretOpener: Send + Sync + 'static {
    /// The secret in clear, or why it does not open (never the secret itself).
    fn open_secret(&self, instance_id: &str, stored: &str) -> Result<Zeroizing<String>, String>;
}

/// Secrets stored in plain text (library use and tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainSecrets;

impl SecretOpener for PlainSecrets {
    fn open_secret(&self, _instance_id: &str, stored: &str) -> Result<Zeroizing<String>, String> {
        Ok(Zeroizing::new(stored.to_owned()))
    }
}

/// Delivers webhook rows over HTTP.
pub struct WebhookTransport {
    client: reqwest::Client,
    non_retryable: BTreeSet<u16>,
    secrets: Arc<dyn SecretOpener>,
}

impl std::fmt::Debug for WebhookTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTransport")
            .field("non_retryable", &self.non_retryable)
            .finish_non_exhaustive()
    }
}

impl WebhookTransport {
    /// `timeout` is `WEBHOOK_REQUEST_TIMEOUT_MS`; `non_retryable` the statuses that dead-letter
    /// at once.
    pub fn new(
        timeout: Duration,
        non_retryable: BTreeSet<u16>,
        secrets: Arc<dyn SecretOpener>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            non_retryable,
            secrets,
        })
    }

    /// Replaces the opener of stored signing secrets.
    pub fn set_secrets(&mut self, secrets: Arc<dyn SecretOpener>) {
        self.secrets = secrets;
    }

    async fn attempt(&self, row: &OutboxEntry) -> Outcome {
        let headers = match request_headers(row, self.secrets.as_ref()) {
            Ok(h) => h,
            Err(error) => {
                return Outcome::Retry {
                    error,
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
                } else if self.non_retryable.contains(&status.as_u16()) {
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
                error: crate::error_chain(&e.without_url()),
                status: None,
            },
        }
    }
}

impl Transport for WebhookTransport {
    fn name(&self) -> &'static str {
        TRANSPORT
    }

    fn deliver<'a>(&'a self, row: &'a OutboxEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(row))
    }
}

/// The stored headers (with `jwt_key` turned into a bearer token), content type, event id and
/// signature. Invalid stored header names or values are skipped (and named, never their values,
/// in the log).
fn request_headers(row: &OutboxEntry, secrets: &dyn SecretOpener) -> Result<HeaderMap, String> {
    let mut out = HeaderMap::new();
    let stored: serde_json::Value = serde_json::from_str(&row.headers)
        .map_err(|_| "corrupt outbox headers in the database".to_owned())?;
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
        match secrets.open_secret(&row.instance_id, stored) {
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
