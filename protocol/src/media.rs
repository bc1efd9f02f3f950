//! Media encryption (wa-protocol.md §8.1), the same in every client: a random 32-byte `mediaKey`
//! travels inside the message; HKDF-SHA256 expands it with a per-type info string into an IV, an
//! AES-256-CBC key and an HMAC key; the uploaded blob is `enc ‖ mac`, with a 10-byte truncated
//! HMAC-SHA256 over `IV ‖ enc`.
//!
//! Sans-IO: the caller fetches and uploads the blob. Decryption checks the MAC before touching the
//! cipher, so a tampered or foreign blob is rejected without decrypting it.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

type HmacSha256 = Hmac<Sha256>;

/// Length of the truncated HMAC appended to the ciphertext.
pub const MAC_LEN: usize = 10;
/// Length of a `mediaKey`.
pub const MEDIA_KEY_LEN: usize = 32;
const BLOCK: usize = 16;

/// Which HKDF info string a blob's keys come from. The same plaintext under the same `mediaKey`
/// encrypts differently per kind, so a receiver must use the kind of the message field it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Images, stickers, product images, business cover photos.
    Image,
    /// Videos, gifs, round videos (ptv).
    Video,
    /// Audio and voice notes (ptt).
    Audio,
    Document,
    /// History-sync blobs (`md-msg-hist`).
    History,
    /// App-state snapshots and external mutations (`md-app-state`).
    AppState,
    LinkThumbnail,
    ImageThumbnail,
    VideoThumbnail,
    DocumentThumbnail,
    StickerPack,
    PaymentBackground,
}

impl MediaKind {
    /// The HKDF `info` (§8.1 table).
    pub fn hkdf_info(self) -> &'static str {
        match self {
            MediaKind::Image => "WhatsApp Image Keys",
            MediaKind::Video => "WhatsApp Video Keys",
            MediaKind::Audio => "WhatsApp Audio Keys",
            MediaKind::Document => "WhatsApp Document Keys",
            MediaKind::History => "WhatsApp History Keys",
            MediaKind::AppState => "WhatsApp App State Keys",
            MediaKind::LinkThumbnail => "WhatsApp Link Thumbnail Keys",
            MediaKind::ImageThumbnail => "WhatsApp Image Thumbnail Keys",
            MediaKind::VideoThumbnail => "WhatsApp Video Thumbnail Keys",
            MediaKind::DocumentThumbnail => "WhatsApp Document Thumbnail Keys",
            MediaKind::StickerPack => "WhatsApp Sticker Pack Keys",
            MediaKind::PaymentBackground => "WhatsApp Payment Background Keys",
        }
    }
}

/// The 112 bytes HKDF expands a `mediaKey` into. `ref_key` is derived but unused by the clients.
#[derive(Clone)]
pub struct MediaKeys {
    pub iv: [u8; 16],
    pub cipher_key: [u8; 32],
    pub mac_key: [u8; 32],
    pub ref_key: [u8; 32],
}

impl std::fmt::Debug for MediaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaKeys(..)")
    }
}

impl Drop for MediaKeys {
    fn drop(&mut self) {
        self.iv.zeroize();
        self.cipher_key.zeroize();
        self.mac_key.zeroize();
        self.ref_key.zeroize();
    }
}

impl MediaKeys {
    /// HKDF-SHA256 with no salt (RFC 5869: 32 zero bytes) over the media key.
    pub fn derive(media_key: &[u8; MEDIA_KEY_LEN], kind: MediaKind) -> Self {
        let mut okm = [0u8; 112];
        // Expansion fails only beyond 255 × 32 bytes; 112 is far below.
        let _ = hkdf::Hkdf::<Sha256>::new(None, media_key)
            .expand(kind.hkdf_info().as_bytes(), &mut okm);
        let mut keys = MediaKeys {
            iv: [0; 16],
            cipher_key: [0; 32],
            mac_key: [0; 32],
            ref_key: [0; 32],
        };
        keys.iv.copy_from_slice(&okm[..16]);
        keys.cipher_key.copy_from_slice(&okm[16..48]);
        keys.mac_key.copy_from_slice(&okm[48..80]);
        keys.ref_key.copy_from_slice(&okm[80..112]);
        okm.zeroize();
        keys
    }

    fn mac(&self, enc: &[u8]) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        // HMAC takes keys of any length, so the error branch cannot be taken.
        let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(&self.mac_key) else {
            return out;
        };
        mac.update(&self.iv);
        mac.update(enc);
        let full = mac.finalize().into_bytes();
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }
}

/// An encrypted blob and the message-proto fields that describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedMedia {
    /// `enc ‖ mac`: what is uploaded and later downloaded.
    pub blob: Vec<u8>,
    /// `fileSha256` = SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// `fileEncSha256` = SHA-256 of `blob`; its base64url is the upload token.
    pub file_enc_sha256: [u8; 32],
    /// `fileLength` = plaintext length.
    pub file_length: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("media blob of {0} bytes is shorter than one block and the MAC")]
    TooShort(usize),
    #[error("media ciphertext of {0} bytes is not a whole number of AES blocks")]
    NotBlockAligned(usize),
    #[error("media MAC does not match (wrong key, wrong media type or tampered blob)")]
    BadMac,
    #[error("media padding is invalid")]
    BadPadding,
    #[error("fileEncSha256 of the blob does not match the message")]
    EncHashMismatch,
    #[error("fileSha256 of the plaintext does not match the message")]
    PlainHashMismatch,
}

/// Encrypts `plaintext` under `media_key`. Deterministic: the IV comes from the key, so callers
/// must draw a fresh random `media_key` per file.
pub fn encrypt(
    media_key: &[u8; MEDIA_KEY_LEN],
    kind: MediaKind,
    plaintext: &[u8],
) -> EncryptedMedia {
    let keys = MediaKeys::derive(media_key, kind);
    let padded_len = (plaintext.len() / BLOCK + 1) * BLOCK;
    let mut blob = vec![0u8; padded_len + MAC_LEN];
    blob[..plaintext.len()].copy_from_slice(plaintext);
    let enc = cbc::Encryptor::<aes::Aes256>::new((&keys.cipher_key).into(), (&keys.iv).into());
    // The buffer always has room for a full padding block, so this cannot fail.
    let enc_len = enc
        .encrypt_padded::<Pkcs7>(&mut blob[..padded_len], plaintext.len())
        .map_or(0, |ct| ct.len());
    blob.truncate(enc_len);
    let mac = keys.mac(&blob);
    blob.extend_from_slice(&mac);
    EncryptedMedia {
        file_sha256: Sha256::digest(plaintext).into(),
        file_enc_sha256: Sha256::digest(&blob).into(),
        file_length: plaintext.len() as u64,
        blob,
    }
}

/// Checks the MAC of `blob` (`enc ‖ mac`) and decrypts it.
pub fn decrypt(
    media_key: &[u8; MEDIA_KEY_LEN],
    kind: MediaKind,
    blob: &[u8],
) -> Result<Vec<u8>, MediaError> {
    if blob.len() < BLOCK + MAC_LEN {
        return Err(MediaError::TooShort(blob.len()));
    }
    let (enc, mac) = blob.split_at(blob.len() - MAC_LEN);
    if !enc.len().is_multiple_of(BLOCK) {
        return Err(MediaError::NotBlockAligned(enc.len()));
    }
    let keys = MediaKeys::derive(media_key, kind);
    if !bool::from(keys.mac(enc).ct_eq(mac)) {
        return Err(MediaError::BadMac);
    }
    let mut buf = enc.to_vec();
    let dec = cbc::Decryptor::<aes::Aes256>::new((&keys.cipher_key).into(), (&keys.iv).into());
    let n = dec
        .decrypt_padded::<Pkcs7>(&mut buf)
        .map_err(|_| MediaError::BadPadding)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// `decrypt` plus the message's hashes: `fileEncSha256` over the blob before decrypting, and
/// `fileSha256` over the plaintext after, as a downloading client does.
pub fn decrypt_verified(
    media_key: &[u8; MEDIA_KEY_LEN],
    kind: MediaKind,
    blob: &[u8],
    file_enc_sha256: &[u8; 32],
    file_sha256: &[u8; 32],
) -> Result<Vec<u8>, MediaError> {
    let enc_hash: [u8; 32] = Sha256::digest(blob).into();
    if enc_hash != *file_enc_sha256 {
        return Err(MediaError::EncHashMismatch);
    }
    let plain = decrypt(media_key, kind, blob)?;
    let plain_hash: [u8; 32] = Sha256::digest(&plain).into();
    if plain_hash != *file_sha256 {
        return Err(MediaError::PlainHashMismatch);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];

    #[test]
    fn round_trip_every_length_near_block_edges() {
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let e = encrypt(&KEY, MediaKind::Image, &plain);
            assert_eq!(e.blob.len(), (len / 16 + 1) * 16 + MAC_LEN);
            assert_eq!(e.file_length, len as u64);
            let back = decrypt_verified(
                &KEY,
                MediaKind::Image,
                &e.blob,
                &e.file_enc_sha256,
                &e.file_sha256,
            )
            .unwrap();
            assert_eq!(back, plain);
        }
    }

    #[test]
    fn wrong_kind_or_key_fails_the_mac() {
        let e = encrypt(&KEY, MediaKind::Image, b"hello");
        assert_eq!(
            decrypt(&KEY, MediaKind::Video, &e.blob),
            Err(MediaError::BadMac)
        );
        assert_eq!(
            decrypt(&[8u8; 32], MediaKind::Image, &e.blob),
            Err(MediaError::BadMac)
        );
    }

    #[test]
    fn tampering_is_caught() {
        let e = encrypt(&KEY, MediaKind::Document, b"some document body");
        for i in 0..e.blob.len() {
            let mut b = e.blob.clone();
            b[i] ^= 1;
            assert_eq!(
                decrypt(&KEY, MediaKind::Document, &b),
                Err(MediaError::BadMac),
                "byte {i}"
            );
        }
        let mut wrong = e.file_sha256;
        wrong[0] ^= 1;
        assert_eq!(
            decrypt_verified(
                &KEY,
                MediaKind::Document,
                &e.blob,
                &e.file_enc_sha256,
                &wrong
            ),
            Err(MediaError::PlainHashMismatch)
        );
        assert_eq!(
            decrypt_verified(&KEY, MediaKind::Document, &e.blob, &wrong, &e.file_sha256),
            Err(MediaError::EncHashMismatch)
        );
    }

    #[test]
    fn short_and_misaligned_blobs_are_typed_errors() {
        assert_eq!(
            decrypt(&KEY, MediaKind::Image, &[]),
            Err(MediaError::TooShort(0))
        );
        assert_eq!(
            decrypt(&KEY, MediaKind::Image, &[0u8; 25]),
            Err(MediaError::TooShort(25))
        );
        assert_eq!(
            decrypt(&KEY, MediaKind::Image, &[0u8; 27]),
            Err(MediaError::NotBlockAligned(17))
        );
    }
}
