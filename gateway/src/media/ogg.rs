//! Ogg/Opus voice notes: recognizing them and reading their length from the container, without
//! decoding audio (the last page's granule position, less the stream's pre-skip, at 48 kHz).

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::MediaFile;

/// Bytes read from the end of the file to find the last page.
const TAIL: u64 = 64 * 1024;

/// Whether the file is an Ogg stream whose first packet is an `OpusHead`.
pub fn is_ogg_opus(head: &[u8]) -> bool {
    head.starts_with(b"OggS") && head.windows(8).take(80).any(|w| w == b"OpusHead")
}

/// The pre-skip of the `OpusHead` in the first page (samples at 48 kHz to drop).
fn pre_skip(head: &[u8]) -> u64 {
    head.windows(8)
        .position(|w| w == b"OpusHead")
        .and_then(|at| head.get(at + 10..at + 12))
        .map_or(0, |b| u64::from(u16::from_le_bytes([b[0], b[1]])))
}

/// The granule position of the last `OggS` page in `tail`.
fn last_granule(tail: &[u8]) -> Option<u64> {
    let at = tail.windows(4).rposition(|w| w == b"OggS")?;
    let g = tail.get(at + 6..at + 14)?;
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(g);
    let granule = u64::from_le_bytes(bytes);
    // -1 means "no packet ends on this page".
    (granule != u64::MAX).then_some(granule)
}

/// The length in whole seconds (rounded up), or `None` when the container does not say.
pub async fn opus_seconds(file: &MediaFile) -> Option<u32> {
    let mut f = file.reader().await.ok()?;
    let start = file.len.saturating_sub(TAIL);
    f.seek(std::io::SeekFrom::Start(start)).await.ok()?;
    let mut tail = Vec::with_capacity(usize::try_from(file.len - start).ok()?);
    f.read_to_end(&mut tail).await.ok()?;
    let samples = last_granule(&tail)?.saturating_sub(pre_skip(&file.head));
    u32::try_from(samples.div_ceil(48_000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One Ogg page header with `granule` and a payload.
    pub(crate) fn page(granule: u64, payload: &[u8]) -> Vec<u8> {
        let mut p = b"OggS\0\0".to_vec();
        p.extend_from_slice(&granule.to_le_bytes());
        p.extend_from_slice(&[0u8; 12]);
        p.push(1);
        p.push(u8::try_from(payload.len()).unwrap());
        p.extend_from_slice(payload);
        p
    }

    #[tokio::test]
    async fn reads_the_length() {
        let mut head = b"OpusHead\x01\x01".to_vec();
        head.extend_from_slice(&312u16.to_le_bytes());
        head.extend_from_slice(&[0u8; 7]);
        let mut bytes = page(0, &head);
        bytes.extend(page(0, b"OpusTags"));
        bytes.extend(page(48_000 * 3 + 312, &[1, 2, 3]));
        assert!(is_ogg_opus(&bytes));
        let mut sink = crate::media::Sink::new(1 << 20).await.unwrap();
        sink.write(&bytes).await.unwrap();
        let file = sink.finish().await.unwrap();
        assert_eq!(opus_seconds(&file).await, Some(3));
        assert!(!is_ogg_opus(b"ID3\x03"));
    }
}
