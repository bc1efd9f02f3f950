//! The one error type for everything in [`crate::signal`].

use crate::crypto::keys::KeyError;

/// Why a Signal operation failed. A failed operation never changes the caller's record: every
/// function that can fail returns the new state only inside `Ok`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("message is truncated")]
    Truncated,
    #[error("unsupported message version byte {0:#04x}")]
    BadVersion(u8),
    #[error("malformed protobuf in {0}")]
    BadProtobuf(&'static str),
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("field {0} has the wrong length")]
    BadLength(&'static str),
    #[error("bad public key: {0}")]
    BadKey(#[from] KeyError),
    #[error("message authentication code does not match")]
    BadMac,
    #[error("signature does not verify")]
    BadSignature,
    #[error("ciphertext does not decrypt (length or padding)")]
    BadCiphertext,
    #[error("plaintext padding is invalid")]
    BadPadding,
    #[error("no session with this peer")]
    NoSession,
    #[error("message counter {0} was already used (duplicate or replay)")]
    DuplicateMessage(u32),
    #[error("message counter {counter} is too far ahead of the chain at {current}")]
    TooFarInFuture { counter: u32, current: u32 },
    #[error("the message needs one-time prekey {0}, which was not supplied")]
    UnknownPreKey(u32),
    #[error("the message needs signed prekey {0}, which was not supplied")]
    UnknownSignedPreKey(u32),
    #[error("no sender key with id {0}")]
    NoSenderKey(u32),
    #[error("no own sender key to encrypt with; create one first")]
    NoOwnSenderKey,
    #[error("stored record is corrupt: {0}")]
    CorruptRecord(&'static str),
    #[error("stored record has unknown format version {0}")]
    UnknownRecordFormat(u32),
}
