//! Encrypting a plaintext stream into an anonymous temporary file, in constant memory.

use std::io::SeekFrom;

use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use zapin_protocol::media::{MEDIA_KEY_LEN, MediaDigest, MediaEncryptor, MediaKind};

use super::MediaError;

/// Plaintext read per step. Small enough that one step's encryption stays well under a
/// scheduler tick, large enough that per-call overhead is negligible.
pub const CHUNK: usize = 64 * 1024;

/// `enc ‖ mac` of one file in an unnamed temporary file (removed by the OS when dropped, even
/// after a crash), and the message fields that describe it.
#[derive(Debug)]
pub struct Spooled {
    file: File,
    pub kind: MediaKind,
    pub digest: MediaDigest,
    /// Size of `enc ‖ mac`.
    pub blob_len: u64,
}

impl Spooled {
    /// Encrypts everything `source` yields under `media_key` into a new temporary file (in
    /// `std::env::temp_dir()`, i.e. `TMPDIR`).
    pub async fn encrypt(
        mut source: impl AsyncRead + Unpin,
        kind: MediaKind,
        media_key: &[u8; MEDIA_KEY_LEN],
    ) -> Result<Self, MediaError> {
        let std_file = tokio::task::spawn_blocking(tempfile::tempfile)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        let mut file = File::from_std(std_file);
        let mut enc = MediaEncryptor::new(media_key, kind);
        let mut buf = vec![0u8; CHUNK];
        let mut out = Vec::with_capacity(CHUNK + 32);
        loop {
            let n = source.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            out.clear();
            enc.update(&buf[..n], &mut out);
            file.write_all(&out).await?;
        }
        out.clear();
        let digest = enc.finish(&mut out);
        file.write_all(&out).await?;
        file.flush().await?;
        let blob_len = MediaEncryptor::blob_len(digest.file_length);
        Ok(Spooled {
            file,
            kind,
            digest,
            blob_len,
        })
    }

    /// A reader of the whole blob from its first byte (for one upload attempt).
    pub(crate) async fn reader(&self) -> Result<File, MediaError> {
        let mut f = self.file.try_clone().await?;
        f.seek(SeekFrom::Start(0)).await?;
        Ok(f)
    }
}
