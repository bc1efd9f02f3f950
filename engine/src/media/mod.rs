//! Media: `media_conn` (hosts and upload auth, over the session's connection), and the HTTP(S)
//! upload and download of encrypted blobs (wa-protocol.md §8), streamed end to end so a file of
//! any size never sits in memory.
//!
//! * [`conn`]: the `media_conn` IQ and its answer, cached by the session actor until its `ttl`
//!   (or `auth_ttl`) runs out.
//! * [`spool`]: encrypt a plaintext stream ([`zapin_protocol::media::MediaEncryptor`]) into an
//!   anonymous temporary file. The upload URL carries the hash of the whole ciphertext, so it must
//!   be complete before the first byte goes out; the file also lets a failed host be retried
//!   with the next one.
//! * [`http`]: the upload (each host in turn, a 401/403 refreshes `media_conn` once) and the
//!   download + decrypt + verify into any `AsyncWrite`.
//! * `handle`: [`crate::SessionHandle::upload_media`] and
//!   [`crate::SessionHandle::download_media`]. The HTTP work runs in the caller's task, never in
//!   the session actor: the actor only answers `media_conn`, so a 1 GB upload does not hold up
//!   the session's messages.
//!
//! Scheme: `https://<host>` as WhatsApp serves media, except when the engine connects to a
//! `ws://` URL (the simulator), where media hosts are plain `http://` too.

pub mod conn;
mod handle;
pub mod http;
pub mod spool;

pub use conn::{MediaConn, MediaHost};
pub use handle::{MediaRef, MediaUpload};
pub use http::MediaHttp;
pub use spool::Spooled;
pub use zapin_protocol::media::{MediaDigest, MediaKind};

/// Why an upload or a download failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The `media_conn` answer lacks something WhatsApp always sends.
    #[error("malformed media_conn answer: {0}")]
    BadMediaConn(&'static str),
    #[error("media_conn has no host that takes a blob of {size} bytes")]
    NoHost { size: u64 },
    /// Reading the source, the spool file, or writing the destination.
    #[error("media I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("media HTTP client: {0}")]
    Client(String),
    /// Every host failed; one line per attempt (`host: reason`).
    #[error("media upload failed on every host: {}", .0.join("; "))]
    UploadFailed(Vec<String>),
    #[error("media upload answer is not usable: {0}")]
    BadUploadAnswer(String),
    /// The CDN no longer has the blob (HTTP 404 or 410): the sender's phone can re-upload it
    /// (media retry).
    #[error("media is gone from the server (HTTP {status})")]
    Gone { status: u16 },
    /// Every download source failed for another reason; one line per attempt.
    #[error("media download failed: {}", .0.join("; "))]
    DownloadFailed(Vec<String>),
    /// The blob is not what the message describes (MAC, padding, hashes, length).
    #[error("media blob rejected: {0}")]
    Crypto(#[from] zapin_protocol::media::MediaError),
    #[error("media message has neither a direct path nor a URL")]
    NoSource,
    #[error("the downloaded blob is larger than the message's file length allows")]
    Oversized,
}
