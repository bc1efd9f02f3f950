//! The media methods of [`SessionHandle`]: the session actor lends `media_conn` and the HTTP
//! client; the transfer itself runs in the caller's task.

use tokio::io::{AsyncRead, AsyncWrite};
use zapin_protocol::media::{MEDIA_KEY_LEN, MediaDigest, MediaKind};

use super::MediaError;
use super::http::random_media_key;
use super::spool::Spooled;
use crate::command::{Command, SessionHandle};
use crate::error::EngineError;

/// What an uploaded file puts into its message (`ImageMessage`, `DocumentMessage`, …): `url`,
/// `directPath`, `mediaKey`, `fileSha256`, `fileEncSha256`, `fileLength`, `mediaKeyTimestamp`.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaUpload {
    pub kind: MediaKind,
    pub url: String,
    pub direct_path: String,
    /// The key the receiver decrypts with (a secret until it is inside an encrypted message).
    pub media_key: [u8; MEDIA_KEY_LEN],
    pub file_sha256: [u8; 32],
    pub file_enc_sha256: [u8; 32],
    pub file_length: u64,
    /// Unix seconds when the key was drawn.
    pub media_key_timestamp: i64,
}

impl std::fmt::Debug for MediaUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaUpload")
            .field("kind", &self.kind)
            .field("direct_path", &self.direct_path)
            .field("file_sha256", &hex::encode(self.file_sha256))
            .field("file_length", &self.file_length)
            .finish_non_exhaustive()
    }
}

/// The media fields of a received message, enough to fetch and check it.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// Which HKDF info the key expands with: the kind of the message field it came from.
    pub kind: MediaKind,
    /// `directPath`: tried on every `media_conn` host in turn.
    pub direct_path: Option<String>,
    /// `url`: tried after the hosts.
    pub url: Option<String>,
    pub media_key: [u8; MEDIA_KEY_LEN],
    pub file_sha256: [u8; 32],
    pub file_enc_sha256: [u8; 32],
    /// `fileLength`, when the message has it: bounds the download and is checked at the end.
    pub file_length: Option<u64>,
}

impl std::fmt::Debug for MediaRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRef")
            .field("kind", &self.kind)
            .field("direct_path", &self.direct_path)
            .field("file_length", &self.file_length)
            .finish_non_exhaustive()
    }
}

impl From<&MediaUpload> for MediaRef {
    fn from(u: &MediaUpload) -> Self {
        MediaRef {
            kind: u.kind,
            direct_path: Some(u.direct_path.clone()),
            url: Some(u.url.clone()),
            media_key: u.media_key,
            file_sha256: u.file_sha256,
            file_enc_sha256: u.file_enc_sha256,
            file_length: Some(u.file_length),
        }
    }
}

impl SessionHandle {
    async fn media_endpoint(
        &self,
        refresh: bool,
    ) -> Result<(super::MediaConn, super::MediaHttp), EngineError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::MediaConn { refresh, reply: tx })
            .await
            .map_err(|_| EngineError::SessionGone)?;
        rx.await.map_err(|_| EngineError::SessionGone)?
    }

    /// Encrypts everything `source` yields under a fresh media key and uploads it to the first
    /// `media_conn` host that takes it (a host that is unreachable or fails goes to the next; an
    /// auth refusal on every host refreshes `media_conn` once). Memory stays constant whatever
    /// the size: the ciphertext is spooled to an unnamed temporary file, because the upload
    /// URL names its hash. Needs an open connection (for `media_conn`).
    pub async fn upload_media(
        &self,
        kind: MediaKind,
        source: impl AsyncRead + Unpin + Send,
    ) -> Result<MediaUpload, EngineError> {
        let (conn, http) = self.media_endpoint(false).await?;
        let media_key = random_media_key()?;
        let media_key_timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let blob = Spooled::encrypt(source, kind, &media_key).await?;
        let uploaded = match http.upload_once(&conn, &blob).await {
            Ok(u) => u,
            Err(Err(e)) => return Err(e.into()),
            Err(Ok(_refused)) => {
                let (conn, http) = self.media_endpoint(true).await?;
                http.upload_once(&conn, &blob).await.map_err(|e| match e {
                    Ok(reasons) => MediaError::UploadFailed(reasons),
                    Err(e) => e,
                })?
            }
        };
        Ok(MediaUpload {
            kind,
            url: uploaded.url,
            direct_path: uploaded.direct_path,
            media_key,
            file_sha256: blob.digest.file_sha256,
            file_enc_sha256: blob.digest.file_enc_sha256,
            file_length: blob.digest.file_length,
            media_key_timestamp,
        })
    }

    /// Downloads a media message's blob, checks its MAC and hashes, and writes the plaintext to
    /// `out` as it streams in. [`MediaError::Gone`] when the CDN answers 404/410 everywhere (the
    /// case for a media re-upload request). Needs an open connection (for the hosts).
    ///
    /// ⚠ `out` receives plaintext before the MAC at the end of the blob is checked: on `Err`,
    /// discard what was written (write to a temporary file and rename it on `Ok`).
    pub async fn download_media(
        &self,
        media: &MediaRef,
        out: &mut (impl AsyncWrite + Unpin + Send),
    ) -> Result<MediaDigest, EngineError> {
        let (conn, http) = self.media_endpoint(false).await?;
        let hosts: Vec<String> = conn.hosts.iter().map(|h| h.hostname.clone()).collect();
        Ok(http.download(&hosts, media, out).await?)
    }
}
