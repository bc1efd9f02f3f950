//! Files the send routes take (`media` as a URL or base64, a multipart `file`): each lands in
//! an unnamed temporary file as it arrives, never whole in memory, under a size cap
//! (`ZAPIN_MEDIA_MAX_BYTES`). Then images are measured and get a thumbnail ([`picture`]).
//!
//! Only the bytes move here: what the request means (source, MIME type, mediatype) is decided
//! in `zapin_compat_evolution::request`.

pub mod fetch;
pub mod ogg;
pub mod picture;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use zapin_compat_evolution::ErrorEnvelope;

/// Bytes kept from the start of a file for sniffing its type.
const HEAD: usize = 512;

/// Why a file could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum MediaInputError {
    #[error("the media file is larger than the {max}-byte limit")]
    TooLarge { max: u64 },
    #[error("the media file is empty")]
    Empty,
    #[error("Owned media must be a url or base64")]
    BadBase64,
    /// The URL aims at this machine or a private network.
    #[error("{0}")]
    Refused(String),
    #[error("the media URL could not be fetched: {0}")]
    Fetch(String),
    #[error("the media URL answered HTTP {0}")]
    Status(u16),
    #[error("media storage: {0}")]
    Io(#[from] std::io::Error),
}

impl From<MediaInputError> for ErrorEnvelope {
    fn from(e: MediaInputError) -> Self {
        match e {
            MediaInputError::Io(err) => {
                tracing::error!("media temporary file: {err}");
                ErrorEnvelope::internal(["media storage failed"])
            }
            other => ErrorEnvelope::bad_request([other.to_string()]),
        }
    }
}

/// A received file in an unnamed temporary file (removed when dropped, even after a crash).
#[derive(Debug)]
pub struct MediaFile {
    file: tokio::fs::File,
    /// Its size in bytes.
    pub len: u64,
    /// Its first bytes (up to 512), for sniffing.
    pub head: Vec<u8>,
}

impl MediaFile {
    /// A reader from the first byte (for the upload).
    pub async fn reader(&self) -> std::io::Result<tokio::fs::File> {
        let mut f = self.file.try_clone().await?;
        f.seek(std::io::SeekFrom::Start(0)).await?;
        Ok(f)
    }

    /// A blocking handle from the first byte (for image decoding on a blocking thread).
    pub async fn std_file(&self) -> std::io::Result<std::fs::File> {
        self.reader()
            .await?
            .try_into_std()
            .map_err(|_| std::io::Error::other("temporary file still in use"))
    }
}

/// Writes a file as it arrives, counting and capping it.
#[derive(Debug)]
pub struct Sink {
    file: tokio::fs::File,
    len: u64,
    head: Vec<u8>,
    max: u64,
}

impl Sink {
    pub async fn new(max: u64) -> Result<Self, MediaInputError> {
        let std_file = tokio::task::spawn_blocking(tempfile::tempfile)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        Ok(Sink {
            file: tokio::fs::File::from_std(std_file),
            len: 0,
            head: Vec::new(),
            max,
        })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), MediaInputError> {
        self.len += chunk.len() as u64;
        if self.len > self.max {
            return Err(MediaInputError::TooLarge { max: self.max });
        }
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// The finished file; an empty one is refused.
    pub async fn finish(mut self) -> Result<MediaFile, MediaInputError> {
        if self.len == 0 {
            return Err(MediaInputError::Empty);
        }
        self.file.flush().await?;
        Ok(MediaFile {
            file: self.file,
            len: self.len,
            head: self.head,
        })
    }
}

/// Characters decoded per step: a multiple of 4, so every step but the last is whole groups.
const B64_STEP: usize = 64 * 1024;

/// Decodes base64 (standard or URL-safe alphabet, padding optional; the text was checked for
/// shape by `parse_media_source`) into a file, step by step.
pub async fn from_base64(data: &str, max: u64) -> Result<MediaFile, MediaInputError> {
    let engine = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    if (data.len() as u64 / 4).saturating_mul(3) > max.saturating_add(3) {
        return Err(MediaInputError::TooLarge { max });
    }
    let mut sink = Sink::new(max).await?;
    let bytes = data.as_bytes();
    let mut step = String::with_capacity(B64_STEP);
    let mut out = Vec::with_capacity(B64_STEP / 4 * 3);
    for chunk in bytes.chunks(B64_STEP) {
        step.clear();
        step.extend(chunk.iter().map(|b| match b {
            b'-' => '+',
            b'_' => '/',
            b => char::from(*b),
        }));
        out.clear();
        engine
            .decode_vec(step.as_bytes(), &mut out)
            .map_err(|_| MediaInputError::BadBase64)?;
        sink.write(&out).await?;
    }
    sink.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn base64_streams_into_a_file() {
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&plain);
        let file = from_base64(&text, 1 << 20).await.unwrap();
        assert_eq!(file.len, plain.len() as u64);
        assert_eq!(file.head, plain[..HEAD]);
        let mut back = Vec::new();
        file.reader()
            .await
            .unwrap()
            .read_to_end(&mut back)
            .await
            .unwrap();
        assert_eq!(back, plain);
        assert!(matches!(
            from_base64(&text, 1000).await,
            Err(MediaInputError::TooLarge { .. })
        ));
        assert!(matches!(
            from_base64("", 10).await,
            Err(MediaInputError::Empty)
        ));
        assert!(matches!(
            from_base64("a===", 10).await,
            Err(MediaInputError::BadBase64)
        ));
    }
}
