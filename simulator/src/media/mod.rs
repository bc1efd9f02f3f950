//! Media (wa-protocol.md §8): the `media_conn` IQ and the HTTP upload/download of encrypted blobs
//! that real WhatsApp serves from `mmg.whatsapp.net`, here on the simulator's own port.
//!
//! The simulator never decrypts media: it stores `enc ‖ mac` blobs content-addressed by their
//! `fileEncSha256` (the upload token) and hands them back. Auth tokens come from `media_conn`, one
//! per request, and expire after `MediaConfig::auth_ttl`.
//!
//! Scheme: Baileys builds `https://<hostname>/mms/...` and `https://<host><directPath>` itself
//! (no way to ask for plain http), so with unmodified Baileys the host in `media_conn` must be an
//! HTTPS front (`MediaConfig::host`, e.g. a TLS proxy onto this port). The simulator serves plain
//! HTTP; clients that take the host as given (zapin's engine, tests) use it directly.

mod iq;
mod routes;
mod store;

pub use iq::media_conn;
pub use routes::routes;
pub use store::{MediaStore, StoredBlob, UploadError, upload_token};

use std::time::Duration;

/// `SimConfig::media`.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// `--media-host`: the `hostname` handed out in `media_conn` (host or host:port, no scheme),
    /// and the host of the returned `url`, which then uses `https`. `None`: the simulator's own
    /// `ADDR` and `http` URLs.
    pub host: Option<String>,
    /// Hosts listed in `media_conn` **before** the simulator's own, which it does not serve
    /// (e.g. a closed port, or a test server answering 503): for client host-failover tests.
    pub extra_hosts: Vec<String>,
    /// Largest single upload; larger bodies get 413.
    pub max_blob_bytes: usize,
    /// Total bytes of all stored blobs; an upload beyond it gets 413.
    pub max_total_bytes: usize,
    /// `media_conn`'s `auth_ttl`: how long an auth token is accepted.
    pub auth_ttl: Duration,
    /// `media_conn`'s `ttl`: how long clients cache the answer.
    pub ttl: Duration,
    /// Most auth tokens kept at once; the oldest go first.
    pub max_auth_tokens: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            host: None,
            extra_hosts: Vec::new(),
            max_blob_bytes: 16 * 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
            auth_ttl: Duration::from_secs(21_600),
            ttl: Duration::from_secs(300),
            max_auth_tokens: 10_000,
        }
    }
}
