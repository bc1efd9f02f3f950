//! Rows of the gateway schema, in zapin's own types (compat-evolution maps them to Evolution's
//! JSON shapes).

use std::fmt;

use serde_json::Value;

/// What `POST /instance/create` stores.
#[derive(Clone, PartialEq, Eq)]
pub struct NewInstance {
    pub name: String,
    /// The instance API key in its stored form (see [`crate::http::TokenCipher`]).
    pub token: String,
    /// Keyed hash of the token, what auth compares (`None` without a master key).
    pub token_hash: Option<String>,
    pub integration: String,
    pub number: Option<String>,
    /// `close` for Baileys-style instances, `open` otherwise (contract §3.1).
    pub connection_status: String,
}

/// A stored instance. `token` is the instance's API key in stored form: `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub token: String,
    /// Keyed hash of the token (see [`crate::http::TokenCipher::unlocks`]).
    pub token_hash: Option<String>,
    pub owner_jid: Option<String>,
    pub profile_name: Option<String>,
    pub connection_status: String,
    pub integration: String,
    pub number: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The last disconnect that closed an instance (Evolution's `disconnection*` columns). Kept
/// across reconnects, as Evolution keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnection {
    /// The close code (`401` logged out, `403`, `406`, `402`, …).
    pub reason_code: i64,
    /// The JSON text Evolution stores (`JSON.stringify(lastDisconnect)`).
    pub object: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// What fetchInstances shows of an instance beyond [`Instance`]: read with its own query so
/// that the hot paths loading [`Instance`] (every guarded request) stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceDetails {
    pub disconnection: Option<Disconnection>,
    /// `businessId` given at create (the Meta WABA id).
    pub business_id: Option<String>,
}

/// Per-instance behaviour switches (Evolution's `Setting`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub reject_call: bool,
    pub msg_call: String,
    pub groups_ignore: bool,
    pub always_online: bool,
    pub read_messages: bool,
    pub read_status: bool,
    pub sync_full_history: bool,
    pub wavoip_token: String,
}

/// An instance's webhook (Evolution's `Webhook` row, plus zapin's signing secret).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub id: String,
    pub url: String,
    pub enabled: bool,
    /// Config keys such as `MESSAGES_UPSERT`; empty means every event.
    pub events: Vec<String>,
    pub by_events: bool,
    pub base64: bool,
    /// Extra request headers, a JSON object of strings. A `jwt_key` entry is not sent as is: it
    /// becomes an `Authorization: Bearer` HS256 token (contract §5.3).
    pub headers: Value,
    /// zapin extension: when set, deliveries carry `X-Zapin-Signature`. Stored form (see
    /// [`crate::webhook::SecretCipher`]); `Debug` leaves it out.
    pub secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored message, unique per (instance, key id).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub instance_id: String,
    pub key_id: String,
    pub remote_jid: String,
    pub from_me: bool,
    pub participant: Option<String>,
    pub push_name: Option<String>,
    /// The message content as Evolution shows it (`message` of the record).
    pub message: Value,
    pub message_type: String,
    /// Unix seconds, as WhatsApp stamps messages.
    pub timestamp: i64,
    pub status: Option<String>,
    /// The sending device kind (`ios`, `android`, `web`, `desktop`, `unknown`).
    pub source: String,
    /// The content's `contextInfo` (null when it has none).
    pub context_info: Value,
}

/// What [`crate::db::Tx::set_message_status`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// No such message.
    Missing,
    /// The message already has a later status; nothing changed.
    Stale,
    /// Stored.
    Recorded,
}

/// Filters of [`crate::db::Tx::query_messages`]; `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageQuery {
    pub remote_jid: Option<String>,
    pub key_id: Option<String>,
    pub from_me: Option<bool>,
    pub message_type: Option<String>,
    /// Evolution's record id (`where.id`), which is the key id in zapin.
    pub id: Option<String>,
    pub participant: Option<String>,
    pub source: Option<String>,
    /// Unix seconds, inclusive.
    pub timestamp_gte: Option<i64>,
    pub timestamp_lte: Option<i64>,
}

/// One page of messages, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagePage {
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub instance_id: String,
    pub remote_jid: String,
    pub push_name: Option<String>,
    pub profile_pic_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub instance_id: String,
    pub remote_jid: String,
    pub name: Option<String>,
    pub unread_messages: i64,
}

/// What `POST /webhook/set` stores. `secret` is in stored form; `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSet {
    pub url: String,
    pub enabled: bool,
    pub events: Vec<String>,
    pub by_events: bool,
    pub base64: bool,
    pub headers: Value,
    pub secret: Option<String>,
}

/// Shows `Some([redacted])` or `None` for a secret field.
fn redacted(secret: Option<&String>) -> Option<&'static str> {
    secret.map(|_| "[redacted]")
}

impl fmt::Debug for NewInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewInstance")
            .field("name", &self.name)
            .field("token", &"[redacted]")
            .field("integration", &self.integration)
            .field("number", &self.number)
            .field("connection_status", &self.connection_status)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("token", &"[redacted]")
            .field("owner_jid", &self.owner_jid)
            .field("profile_name", &self.profile_name)
            .field("connection_status", &self.connection_status)
            .field("integration", &self.integration)
            .field("number", &self.number)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .field("events", &self.events)
            .field("by_events", &self.by_events)
            .field("base64", &self.base64)
            .field("headers", &self.headers)
            .field("secret", &redacted(self.secret.as_ref()))
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl fmt::Debug for WebhookSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSet")
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .field("events", &self.events)
            .field("by_events", &self.by_events)
            .field("base64", &self.base64)
            .field("headers", &self.headers)
            .field("secret", &redacted(self.secret.as_ref()))
            .finish()
    }
}
