//! Typed `data` of the first events (§4.4, §4.5, §5.4). Each type serialises to Evolution's
//! exact key order, so a mapping from engine events is a plain constructor call.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::response::{ConnectionState, MessageRecord, MessageStatus};

/// `qrcode.updated` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum QrcodeUpdated {
    /// Every new QR: `{"qrcode":{instance, pairingCode, code, base64}}`.
    Qr { qrcode: QrcodeData },
    /// The `QRCODE_LIMIT` give-up: `{"message":"QR code limit reached, please login again","statusCode":500}`.
    LimitReached {
        message: &'static str,
        #[serde(rename = "statusCode")]
        status_code: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QrcodeData {
    pub instance: String,
    /// Null when no phone number was given.
    pub pairing_code: Option<String>,
    pub code: String,
    pub base64: String,
}

impl QrcodeUpdated {
    pub fn qr(instance: &str, pairing_code: Option<String>, code: String, base64: String) -> Self {
        QrcodeUpdated::Qr {
            qrcode: QrcodeData {
                instance: instance.to_owned(),
                pairing_code,
                code,
                base64,
            },
        }
    }

    pub fn limit_reached() -> Self {
        QrcodeUpdated::LimitReached {
            message: "QR code limit reached, please login again",
            status_code: 500,
        }
    }
}

/// `connection.update` data, one variant per state (§4.4, §4.5), each in Evolution's key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ConnectionUpdate {
    /// `{instance, state:"connecting", statusReason:200}`.
    Connecting {
        instance: String,
        state: ConnectionState,
        #[serde(rename = "statusReason")]
        status_reason: u16,
    },
    /// `{instance, wuid, profileName, profilePictureUrl, state:"open", statusReason:200}`.
    Open {
        instance: String,
        wuid: String,
        #[serde(rename = "profileName")]
        profile_name: Option<String>,
        #[serde(rename = "profilePictureUrl")]
        profile_picture_url: Option<String>,
        state: ConnectionState,
        #[serde(rename = "statusReason")]
        status_reason: u16,
    },
    /// Terminal close: `{instance, state:"close", statusReason:<code>}`.
    Close {
        instance: String,
        state: ConnectionState,
        #[serde(rename = "statusReason")]
        status_reason: u16,
    },
    /// QR limit: `{instance, state:"refused", statusReason:428, wuid, profileName, profilePictureUrl}`;
    /// the last three are undefined (omitted) on an instance that never paired.
    Refused {
        instance: String,
        state: ConnectionState,
        #[serde(rename = "statusReason")]
        status_reason: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        wuid: Option<String>,
        #[serde(rename = "profileName", skip_serializing_if = "Option::is_none")]
        profile_name: Option<String>,
        #[serde(rename = "profilePictureUrl", skip_serializing_if = "Option::is_none")]
        profile_picture_url: Option<String>,
    },
}

impl ConnectionUpdate {
    pub fn connecting(instance: &str) -> Self {
        ConnectionUpdate::Connecting {
            instance: instance.to_owned(),
            state: ConnectionState::Connecting,
            status_reason: 200,
        }
    }

    /// `wuid` is the own JID without the device suffix.
    pub fn open(
        instance: &str,
        wuid: String,
        profile_name: Option<String>,
        profile_picture_url: Option<String>,
    ) -> Self {
        ConnectionUpdate::Open {
            instance: instance.to_owned(),
            wuid,
            profile_name,
            profile_picture_url,
            state: ConnectionState::Open,
            status_reason: 200,
        }
    }

    /// Only for terminal closes (codes 401, 402, 403, 406); other closes reconnect silently.
    pub fn close(instance: &str, status_reason: u16) -> Self {
        ConnectionUpdate::Close {
            instance: instance.to_owned(),
            state: ConnectionState::Close,
            status_reason,
        }
    }

    pub fn refused(
        instance: &str,
        wuid: Option<String>,
        profile_name: Option<String>,
        profile_picture_url: Option<String>,
    ) -> Self {
        ConnectionUpdate::Refused {
            instance: instance.to_owned(),
            state: ConnectionState::Refused,
            status_reason: 428,
            wuid,
            profile_name,
            profile_picture_url,
        }
    }
}

/// Close codes after which Evolution gives up instead of reconnecting (§4.5).
pub fn is_terminal_close(code: u16) -> bool {
    matches!(code, 401 | 402 | 403 | 406)
}

/// `messages.upsert` data: one message record.
pub type MessagesUpsert = MessageRecord;

/// `send.message` data: the record the send call returned.
pub type SendMessage = MessageRecord;

/// `messages.update` data: `{keyId, remoteJid, fromMe, participant, status, pollUpdates?,
/// instanceId, messageId?}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesUpdate {
    pub key_id: String,
    pub remote_jid: String,
    pub from_me: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    pub status: MessageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_updates: Option<serde_json::Value>,
    pub instance_id: String,
    /// DB id of the original message, when message saving is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// `presence.update` data: `{id, presences:{<jid>:{lastKnownPresence, lastSeen?}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceUpdate {
    pub id: String,
    pub presences: BTreeMap<String, PresenceEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceEntry {
    /// `unavailable` | `available` | `composing` | `recording` | `paused`.
    pub last_known_presence: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
}

/// `instance.create` / `instance.delete` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceLifecycle {
    pub instance_name: String,
    pub instance_id: String,
}

/// A `contacts.upsert` / `contacts.update` item. On the message path (a message from a contact
/// not seen before) Evolution sends ONE such object as `data`, not an array (§5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactUpsert {
    pub remote_jid: String,
    /// `null` when the message carried no push name.
    pub push_name: Option<String>,
    /// Always present; `null` when the picture was not fetched.
    pub profile_pic_url: Option<String>,
    pub instance_id: String,
}

/// A `chats.upsert` item: `{remoteJid, instanceId, name?, unreadMessages}`. `data` is an array of
/// them (§5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatUpsert {
    pub remote_jid: String,
    pub instance_id: String,
    /// Absent (not `null`) when unknown: Evolution's object carries `undefined` there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Evolution defaults a missing unread count to 0.
    pub unread_messages: u32,
}

/// `chats.upsert` data.
pub type ChatsUpsert = Vec<ChatUpsert>;
