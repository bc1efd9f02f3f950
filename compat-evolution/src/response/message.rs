//! The message record (§3.3) and the chat responses built on it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The Baileys message key, as-is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageKey {
    pub remote_jid: String,
    pub from_me: bool,
    pub id: String,
    /// Group messages only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_jid_alt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_alt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressing_mode: Option<String>,
}

/// Delivery status strings, mapped from Baileys status 0–5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageStatus {
    Error,
    Pending,
    ServerAck,
    DeliveryAck,
    Read,
    Played,
    /// Only in `messages.update` / `messages.delete` for revokes.
    Deleted,
}

impl MessageStatus {
    /// Baileys `WAMessageStatus` number → string.
    pub fn from_baileys(status: u8) -> Option<Self> {
        Some(match status {
            0 => MessageStatus::Error,
            1 => MessageStatus::Pending,
            2 => MessageStatus::ServerAck,
            3 => MessageStatus::DeliveryAck,
            4 => MessageStatus::Read,
            5 => MessageStatus::Played,
            _ => return None,
        })
    }
}

/// The message record: sendX responses, `send.message`, `messages.upsert`, `Message` rows.
///
/// Key order is Evolution's: `key, pushName, status, message, contextInfo, messageType,
/// messageTimestamp, instanceId, source`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRecord {
    pub key: MessageKey,
    /// `"Você"` for own messages without a push name.
    pub push_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<MessageStatus>,
    /// The proto message as JSON (`{conversation: …}`, `{imageMessage: {…}}`).
    pub message: Value,
    /// `None` → omitted (undefined); `Some(Value::Null)` → `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_info: Option<Value>,
    pub message_type: String,
    /// Unix seconds.
    pub message_timestamp: i64,
    pub instance_id: String,
    /// `ios` | `android` | `web` | `desktop` | `unknown`.
    pub source: String,
}

/// The push name Evolution fills in for own messages (§11 #25).
pub const OWN_PUSH_NAME: &str = "Você";

/// One `POST /chat/whatsappNumbers` item: `{jid, exists, number, name?, lid?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WhatsappNumberItem {
    pub jid: String,
    pub exists: bool,
    pub number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lid: Option<String>,
}

/// `POST /chat/findMessages` 200: `{"messages":{total,pages,currentPage,records}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindMessagesResponse {
    pub messages: FindMessagesPage,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindMessagesPage {
    pub total: u64,
    pub pages: u64,
    pub current_page: u64,
    pub records: Vec<MessageRow>,
}

impl FindMessagesPage {
    /// `pages = ceil(total / offset)`.
    pub fn new(total: u64, page: u64, offset: u64, records: Vec<MessageRow>) -> Self {
        Self {
            total,
            pages: total.div_ceil(offset.max(1)),
            current_page: page,
            records,
        }
    }
}

/// A stored message as findMessages returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRow {
    /// DB id.
    pub id: String,
    pub key: MessageKey,
    pub push_name: String,
    pub message_type: String,
    pub message: Value,
    pub message_timestamp: i64,
    pub instance_id: String,
    pub source: String,
    pub context_info: Option<Value>,
    #[serde(rename = "MessageUpdate")]
    pub message_update: Vec<MessageUpdateStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MessageUpdateStatus {
    pub status: MessageStatus,
}
