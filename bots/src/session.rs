//! A conversation between one contact and one bot (`IntegrationSession` in Evolution).

use serde::{Deserialize, Serialize};

/// `opened` (the bot answers), `paused` (the bot is silent: an operator took over), `closed`
/// (finished and kept: it blocks the contact from re-triggering until deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Opened,
    Paused,
    Closed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Paused => "paused",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opened" => Some(Self::Opened),
            "paused" => Some(Self::Paused),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// One session row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Our primary key.
    pub id: String,
    pub instance: String,
    pub remote_jid: String,
    /// The adapter name ([`crate::BotKind::name`]).
    pub kind: String,
    /// `None` for a session some other component opened for the contact ("busy elsewhere").
    pub bot_id: Option<String>,
    /// What the bot knows the conversation as: starts as the remoteJid; an adapter may replace
    /// it (a Dify conversation id, an OpenAI thread id, …).
    pub session_id: String,
    pub push_name: Option<String>,
    pub status: SessionStatus,
    pub await_user: bool,
    /// Adapter-private state (chat history, prefilled variables, …).
    pub context: serde_json::Value,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Unix milliseconds of the last activity; `expire` counts from here.
    pub updated_at: u64,
}

/// A fresh random id (128 bits, hex).
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 16];
    // getrandom failing means the OS has no entropy source; a time-and-counter id still keeps
    // rows distinct within this process.
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        bytes[..8].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes[8..].copy_from_slice(&nanos.to_be_bytes());
    }
    hex::encode(bytes)
}
