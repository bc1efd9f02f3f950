//! The typed event stream the gateway maps to Evolution's webhooks (contract.md §4).
//!
//! Every session publishes into one `tokio::sync::broadcast` channel owned by the
//! [`crate::SessionManager`]; subscribers filter by [`Event::instance`]. A broadcast keeps the
//! per-session cost at zero (no channel per session) and lets a slow subscriber lag (it gets
//! `RecvError::Lagged`) instead of blocking 10 000 sessions.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

// Events carry messaging's data types; messaging never imports this module (the arrow is one
// way). The ones the gateway names are re-exported here, where they always lived.
pub use crate::messaging::directory::{Chat, Contact};
pub use crate::messaging::groups::GroupUpdate;
pub use crate::messaging::presence::{Presence, PresenceState};
use crate::messaging::{ReceivedMessage, StatusUpdate};

/// The gateway's name for a session (Evolution's instance name or id). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(Arc<str>);

impl InstanceId {
    pub fn new(id: impl AsRef<str>) -> Self {
        Self(Arc::from(id.as_ref()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for InstanceId {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for InstanceId {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// Connection state as Evolution reports it (`open`, `connecting`, `close`, and the one-off
/// `refused` when the QR limit is reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    Connecting,
    /// Only between `<success>` and the end of that connection.
    Open,
    Close,
    /// Emitted once when the QR limit is reached; the session is then `Close`.
    Refused,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Open => "open",
            Self::Close => "close",
            Self::Refused => "refused",
        }
    }
}

/// Why a session was logged out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutReason {
    /// `logout()` was called.
    UserInitiated,
    /// The server revoked the device (401/403/406/516, `device_removed`): unlinked on the phone.
    Revoked { code: u16 },
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A QR code to show. `index` counts every code of this session since it last gave up or
    /// was created (Evolution's `count`), across reconnects.
    QrCode {
        code: String,
        index: u32,
        expires_at: SystemTime,
    },
    /// `qrcode_limit` codes were shown without a scan; the session stopped.
    QrLimitReached,
    /// The 8-character code to type on the phone.
    PairingCode {
        code: String,
    },
    Connection {
        state: ConnectionState,
        /// Baileys/Evolution `statusReason`: 200 when fine, else the disconnect code.
        status: u16,
        /// Human-readable cause, for logs.
        reason: Option<String>,
    },
    /// Pairing finished and the credentials are stored.
    Paired {
        jid: String,
        lid: Option<String>,
        push_name: Option<String>,
        platform: Option<String>,
    },
    /// Pairing was attempted and failed (bad HMAC/signature, store failure); nothing stored.
    PairingFailed {
        reason: String,
    },
    LoggedOut {
        reason: LogoutReason,
    },
    // ---- messaging (`engine/src/messaging`, driven by the session actor) ----
    /// A decrypted incoming message (or one of our own from another device).
    MessageUpsert(Box<ReceivedMessage>),
    /// A status change of a message: server ack, delivery/read/played receipts, errors.
    MessageUpdate(StatusUpdate),
    /// A contact came online/went offline, or typed/recorded/paused in a chat.
    Presence(Presence),
    GroupUpdate(GroupUpdate),
    /// Push names learned from incoming messages: new contacts or changed names (bounded memory
    /// per session, so a long-forgotten contact may be reported again).
    Contacts(Vec<Contact>),
    /// A chat seen for the first time in this session run (a message in or out).
    Chats(Vec<Chat>),
}

/// One event of one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub instance: InstanceId,
    pub kind: EventKind,
}
