//! Errors returned to callers of the manager and of session handles.

use zapin_signal_store::StoreError;

use crate::events::InstanceId;
use crate::messaging::MessagingError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no session {0}")]
    NotFound(InstanceId),
    #[error("session {0} already exists")]
    AlreadyExists(InstanceId),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The session's actor ended (deleted, shut down, or restarting after a panic).
    #[error("the session is gone")]
    SessionGone,
    /// The operation belongs to a part of the engine that is not there yet. Honest by design:
    /// messaging commands return this until `engine/src/messaging` is wired into the actor.
    #[error("not supported yet: {0}")]
    Unsupported(&'static str),
    #[error("the device is already paired")]
    AlreadyPaired,
    #[error("not connected")]
    NotConnected,
    #[error("the server did not answer in time")]
    Timeout,
    #[error("the server refused: {code} {text}")]
    Refused { code: u16, text: String },
    #[error("invalid phone number (digits only, 7 to 15): {0:?}")]
    InvalidPhone(String),
    #[error("too many numbers in one lookup (at most {max})")]
    TooManyNumbers { max: usize },
    #[error("operating-system randomness unavailable")]
    Random,
    #[error("invalid JID {0:?}")]
    InvalidJid(String),
    /// A caller-chosen message id that is not a WhatsApp-style id (see
    /// [`crate::messaging::ids::is_valid_message_id`]).
    #[error("invalid message id {0:?} (16 to 64 uppercase hexadecimal characters)")]
    InvalidMessageId(String),
    /// The connection failed while the stanza was being written: the server may or may not have
    /// received it. Sending it again under the same id is safe (recipients keep one message per
    /// id); treating it as not sent is not.
    #[error("the connection broke while the message was being written")]
    WriteInterrupted,
    /// The caller closed the send's [`crate::WireGate`]: nothing was written.
    #[error("the send was withdrawn before the wire")]
    Withdrawn,
    #[error("messaging: {0}")]
    Messaging(#[from] MessagingError),
    #[error("media: {0}")]
    Media(#[from] crate::media::MediaError),
    /// Work moved off the runtime's worker threads (`spawn_blocking`, e.g. the link code's
    /// PBKDF2) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Background(#[from] tokio::task::JoinError),
}
