//! The blob store and the auth tokens of `media_conn`: in memory, bounded by count (tokens) and
//! by total bytes (blobs).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::MediaConfig;
use crate::keys::KeySource;

/// The upload token of a blob: base64url of its SHA-256 (`fileEncSha256`), without padding (§8.3:
/// Baileys strips `=`, WhatsApp Web keeps it; `MediaStore::put` accepts both).
pub fn upload_token(file_enc_sha256: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(file_enc_sha256)
}

/// One uploaded blob (`enc ‖ mac`) and the path type it came in on (`image`, `md-app-state`, …).
#[derive(Debug, Clone)]
pub struct StoredBlob {
    pub media_type: String,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("unknown or expired media auth token")]
    BadAuth,
    #[error("upload token is not base64url of a SHA-256")]
    BadToken,
    #[error("path token and query token differ")]
    TokenMismatch,
    #[error("body does not hash to the upload token (fileEncSha256)")]
    HashMismatch,
    #[error("blob of {size} bytes exceeds the {max}-byte upload limit")]
    TooLarge { size: usize, max: usize },
    #[error("media store full: {used} of {max} bytes used, blob is {size} bytes")]
    StoreFull {
        used: usize,
        max: usize,
        size: usize,
    },
    #[error("cannot write the blob under the state dir: {0}")]
    Storage(String),
}

#[derive(Debug, Default)]
struct Inner {
    /// Auth tokens in issue order with their expiry; the front is the oldest.
    auth: VecDeque<(String, Instant)>,
    /// Blobs by the hex of their SHA-256 (the id in the download path).
    blobs: HashMap<String, StoredBlob>,
    total_bytes: usize,
    issued: u64,
}

#[derive(Debug)]
pub struct MediaStore {
    config: MediaConfig,
    /// The simulator's bound address, known only after `run` binds.
    bound: OnceLock<SocketAddr>,
    /// `STATE_DIR/media` when `--state-dir` is set: one file per blob, `<hex sha256>.<type>`.
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
}

impl MediaStore {
    /// An in-memory store.
    pub fn new(config: MediaConfig) -> Self {
        Self {
            config,
            bound: OnceLock::new(),
            dir: None,
            inner: Mutex::default(),
        }
    }

    /// A store that also keeps its blobs under `state_dir/media` and starts with the ones already
    /// there (up to `max_total_bytes`; files that are not a blob of this store are skipped).
    pub fn open(config: MediaConfig, state_dir: Option<&Path>) -> Self {
        let mut store = Self::new(config);
        let Some(dir) = state_dir.map(|d| d.join("media")) else {
            return store;
        };
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(
                "media blobs stay in memory: cannot create {}: {e}",
                dir.display()
            );
            return store;
        }
        store.load(&dir);
        store.dir = Some(dir);
        store
    }

    fn load(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut inner = self.lock();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some((id, media_type)) = name.to_str().and_then(|n| n.split_once('.')) else {
                continue;
            };
            if !super::routes::valid_media_type(media_type) {
                continue;
            }
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            let fits = bytes.len() <= self.config.max_blob_bytes
                && inner.total_bytes + bytes.len() <= self.config.max_total_bytes;
            if !fits || hex::encode(Sha256::digest(&bytes)) != id {
                continue;
            }
            inner.total_bytes += bytes.len();
            inner.blobs.insert(
                id.to_string(),
                StoredBlob {
                    media_type: media_type.to_string(),
                    bytes: Bytes::from(bytes),
                },
            );
        }
    }

    /// Temp file + rename, so a crash never leaves a partial blob under its final name (the temp
    /// name has no valid type, so `load` skips leftovers).
    fn write_file(dir: &Path, id: &str, media_type: &str, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = dir.join(format!("{id}.upload.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, dir.join(format!("{id}.{media_type}")))
    }

    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent beyond one entry.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the address `run` bound, for `hostname` and URLs when no media host is configured.
    pub fn set_bound_addr(&self, addr: SocketAddr) {
        let _ = self.bound.set(addr);
    }

    /// The `hostname` of `media_conn`'s `<host>`: the configured media host, else `ADDR`.
    pub fn hostname(&self) -> String {
        match (&self.config.host, self.bound.get()) {
            (Some(host), _) => host.clone(),
            (None, Some(addr)) => addr.to_string(),
            (None, None) => "127.0.0.1".to_string(),
        }
    }

    /// Base of the returned `url`: `https://MEDIA_HOST` behind a front, else `http://ADDR`.
    pub fn url_base(&self) -> String {
        match &self.config.host {
            Some(host) => format!("https://{host}"),
            None => format!("http://{}", self.hostname()),
        }
    }

    /// A fresh auth token for one `media_conn` answer (from the key source: reproducible under
    /// `--seed`, unguessable otherwise).
    pub fn issue_auth(&self, keys: &KeySource) -> String {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.issued += 1;
        let raw = keys.bytes(&format!("media-auth/{}", inner.issued));
        let token = URL_SAFE_NO_PAD.encode(&raw[..24]);
        while inner.auth.front().is_some_and(|(_, exp)| *exp <= now)
            || inner.auth.len() >= self.config.max_auth_tokens.max(1)
        {
            inner.auth.pop_front();
        }
        inner
            .auth
            .push_back((token.clone(), now + self.config.auth_ttl));
        token
    }

    pub fn auth_valid(&self, auth: &str) -> bool {
        let now = Instant::now();
        self.lock()
            .auth
            .iter()
            .any(|(t, exp)| t == auth && *exp > now)
    }

    /// Checks the size against the per-blob limit before the body is read (`Content-Length`).
    pub fn check_size(&self, size: usize) -> Result<(), UploadError> {
        let max = self.config.max_blob_bytes;
        if size > max {
            return Err(UploadError::TooLarge { size, max });
        }
        Ok(())
    }

    /// Stores `body` under `token` (= base64url of its SHA-256) and returns the blob id (hex of the
    /// hash). Uploading the same blob twice stores it once.
    pub fn put(&self, media_type: &str, token: &str, body: Bytes) -> Result<String, UploadError> {
        self.check_size(body.len())?;
        let claimed: [u8; 32] = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(UploadError::BadToken)?;
        let actual: [u8; 32] = Sha256::digest(&body).into();
        if actual != claimed {
            return Err(UploadError::HashMismatch);
        }
        let id = hex::encode(actual);
        let mut inner = self.lock();
        if inner.blobs.contains_key(&id) {
            return Ok(id);
        }
        let max = self.config.max_total_bytes;
        if inner.total_bytes.saturating_add(body.len()) > max {
            return Err(UploadError::StoreFull {
                used: inner.total_bytes,
                max,
                size: body.len(),
            });
        }
        if let Some(dir) = &self.dir {
            Self::write_file(dir, &id, media_type, &body)
                .map_err(|e| UploadError::Storage(e.to_string()))?;
        }
        inner.total_bytes += body.len();
        inner.blobs.insert(
            id.clone(),
            StoredBlob {
                media_type: media_type.to_string(),
                bytes: body,
            },
        );
        Ok(id)
    }

    pub fn get(&self, id: &str) -> Option<StoredBlob> {
        self.lock().blobs.get(id).cloned()
    }

    /// Bytes held by stored blobs.
    pub fn total_bytes(&self) -> usize {
        self.lock().total_bytes
    }

    /// The `direct_path` of blob `id`. Shaped like WhatsApp's (`/v/t62.7118-24/…?ccb=…&oh=…&oe=…`);
    /// it carries a `?` so WhatsApp Web's `&hash=…&mms-type=…` suffix still forms a query (§8.3).
    pub fn direct_path(id: &str) -> String {
        format!("/v/t62.7118-24/{id}?ccb=11-4&oh=01_zapin-sim&oe=7FFFFFFF&_nc_sid=5e03e0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_total: usize) -> MediaStore {
        MediaStore::new(MediaConfig {
            max_blob_bytes: 64,
            max_total_bytes: max_total,
            max_auth_tokens: 2,
            ..MediaConfig::default()
        })
    }

    fn token_of(b: &[u8]) -> String {
        upload_token(&Sha256::digest(b).into())
    }

    #[test]
    fn auth_tokens_are_distinct_and_bounded() {
        let s = store(1000);
        let keys = KeySource::from_seed(1);
        let a = s.issue_auth(&keys);
        let b = s.issue_auth(&keys);
        assert_ne!(a, b);
        assert!(s.auth_valid(&a) && s.auth_valid(&b));
        let c = s.issue_auth(&keys);
        assert!(!s.auth_valid(&a), "oldest token evicted at the cap");
        assert!(s.auth_valid(&c));
        assert!(!s.auth_valid("nope"));
    }

    #[test]
    fn put_checks_token_hash_and_caps() {
        let s = store(100);
        let body = Bytes::from_static(&[1u8; 60]);
        let tok = token_of(&body);
        assert_eq!(
            s.put("image", "not-a-token", body.clone()),
            Err(UploadError::BadToken)
        );
        assert_eq!(
            s.put("image", &token_of(b"other"), body.clone()),
            Err(UploadError::HashMismatch)
        );
        let id = s.put("image", &format!("{tok}="), body.clone()).unwrap();
        assert_eq!(
            s.put("image", &tok, body.clone()).unwrap(),
            id,
            "idempotent"
        );
        assert_eq!(s.total_bytes(), 60);
        assert_eq!(s.get(&id).unwrap().bytes, body);
        let second = Bytes::from_static(&[2u8; 60]);
        assert!(matches!(
            s.put("image", &token_of(&second), second),
            Err(UploadError::StoreFull {
                used: 60,
                max: 100,
                size: 60
            })
        ));
        let big = Bytes::from_static(&[3u8; 65]);
        assert!(matches!(
            s.put("image", &token_of(&big), big),
            Err(UploadError::TooLarge { size: 65, max: 64 })
        ));
    }
}
