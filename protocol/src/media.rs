//! Media encryption (wa-protocol.md §8.1), the same in every client: a random 32-byte `mediaKey`
//! travels inside the message; HKDF-SHA256 expands it with a per-type info string into an IV, an
//! AES-256-CBC key and an HMAC key; the uploaded blob is `enc ‖ mac`, with a 10-byte truncated
//! HMAC-SHA256 over `IV ‖ enc`.
//!
//! Sans-IO: the caller fetches and uploads the blob. Decryption checks the MAC before touching the
//! cipher, so a tampered or foreign blob is rejected without decrypting it.

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

impl MediaKind {
    /// The `<type>` of the upload path `/mms/<type>/<token>` and of WhatsApp Web's download
    /// `mms-type` (§8.3). Stickers and thumbnails go up as `image`, as Baileys sends them.
    pub fn mms_type(self) -> &'static str {
        match self {
            MediaKind::Image
            | MediaKind::ImageThumbnail
            | MediaKind::VideoThumbnail
            | MediaKind::DocumentThumbnail
            | MediaKind::PaymentBackground => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::History => "md-msg-hist",
            MediaKind::AppState => "md-app-state",
            MediaKind::LinkThumbnail => "thumbnail-link",
            MediaKind::StickerPack => "sticker-pack",
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

/// What a finished encryption or a verified decryption tells about the file: the fields of the
/// message proto besides `mediaKey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaDigest {
    /// `fileSha256` = SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// `fileEncSha256` = SHA-256 of `enc ‖ mac`; its base64url is the upload token.
    pub file_enc_sha256: [u8; 32],
    /// `fileLength` = plaintext length.
    pub file_length: u64,
}

/// Streaming encryption: feed the plaintext in chunks of any size, get `enc ‖ mac` out as it
/// goes, so a file of any size is encrypted in constant memory (one partial block is kept).
///
/// ```text
/// let mut e = MediaEncryptor::new(&key, MediaKind::Document);
/// for chunk in file { e.update(chunk, &mut out); upload(&out); out.clear(); }
/// let digest = e.finish(&mut out); upload(&out);
/// ```
pub struct MediaEncryptor {
    cipher: cbc::Encryptor<aes::Aes256>,
    mac: HmacSha256,
    plain_hash: Sha256,
    enc_hash: Sha256,
    /// Plaintext bytes not yet forming a whole block (fewer than 16).
    partial: [u8; BLOCK],
    partial_len: usize,
    length: u64,
}

impl std::fmt::Debug for MediaEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEncryptor")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl Drop for MediaEncryptor {
    fn drop(&mut self) {
        self.partial.zeroize();
    }
}

fn hmac_with(keys: &MediaKeys) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for 32 bytes.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&keys.mac_key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(&keys.iv);
    mac
}

impl MediaEncryptor {
    /// Starts encrypting under `media_key`. Deterministic: the IV comes from the key, so callers
    /// must draw a fresh random `media_key` per file.
    pub fn new(media_key: &[u8; MEDIA_KEY_LEN], kind: MediaKind) -> Self {
        let keys = MediaKeys::derive(media_key, kind);
        MediaEncryptor {
            cipher: cbc::Encryptor::new((&keys.cipher_key).into(), (&keys.iv).into()),
            mac: hmac_with(&keys),
            plain_hash: Sha256::new(),
            enc_hash: Sha256::new(),
            partial: [0; BLOCK],
            partial_len: 0,
            length: 0,
        }
    }

    /// Plaintext bytes fed so far.
    pub fn plaintext_len(&self) -> u64 {
        self.length
    }

    /// Exact size of `enc ‖ mac` for a plaintext of `len` bytes (PKCS#7 always adds 1–16 bytes).
    pub fn blob_len(len: u64) -> u64 {
        (len / BLOCK as u64 + 1) * BLOCK as u64 + MAC_LEN as u64
    }

    /// Encrypts `plain` and appends the ciphertext of every block it completes to `out`.
    pub fn update(&mut self, mut plain: &[u8], out: &mut Vec<u8>) {
        self.plain_hash.update(plain);
        self.length += plain.len() as u64;
        let start = out.len();
        if self.partial_len > 0 {
            let take = (BLOCK - self.partial_len).min(plain.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&plain[..take]);
            self.partial_len += take;
            plain = &plain[take..];
            if self.partial_len < BLOCK {
                return;
            }
            out.extend_from_slice(&self.partial);
            self.partial_len = 0;
        }
        let whole = plain.len() - plain.len() % BLOCK;
        out.extend_from_slice(&plain[..whole]);
        let rest = &plain[whole..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
        self.encrypt_in_place(&mut out[start..]);
    }

    /// `buf` holds whole blocks of plaintext; encrypts them and feeds the MAC and hash.
    fn encrypt_in_place(&mut self, buf: &mut [u8]) {
        let (blocks, _) = aes::Block::slice_as_chunks_mut(buf);
        self.cipher.encrypt_blocks(blocks);
        self.mac.update(buf);
        self.enc_hash.update(buf);
    }

    /// Pads and encrypts the last block, appends it and the 10-byte MAC to `out`, and returns
    /// the message fields.
    pub fn finish(mut self, out: &mut Vec<u8>) -> MediaDigest {
        let pad = (BLOCK - self.partial_len) as u8;
        let mut last = [pad; BLOCK];
        last[..self.partial_len].copy_from_slice(&self.partial[..self.partial_len]);
        self.encrypt_in_place(&mut last);
        out.extend_from_slice(&last);
        let mac = self.mac.clone().finalize().into_bytes();
        out.extend_from_slice(&mac[..MAC_LEN]);
        self.enc_hash.update(&mac[..MAC_LEN]);
        MediaDigest {
            file_sha256: self.plain_hash.clone().finalize().into(),
            file_enc_sha256: self.enc_hash.clone().finalize().into(),
            file_length: self.length,
        }
    }
}

/// Streaming decryption of `enc ‖ mac`: feed the blob in chunks, get plaintext out as it goes;
/// [`MediaDecryptor::finish`] checks the MAC, the padding and the hashes.
///
/// ⚠ Plaintext comes out **before** the MAC at the end of the blob is seen: whatever the caller
/// wrote from `update` is unauthenticated until `finish` returns `Ok`, and must be discarded on
/// `Err` (write to a temporary file, rename on success). The last block and the MAC are held
/// back, so padding is only looked at after the MAC matched (no padding oracle).
pub struct MediaDecryptor {
    cipher: cbc::Decryptor<aes::Aes256>,
    mac: HmacSha256,
    plain_hash: Sha256,
    enc_hash: Sha256,
    /// Blob bytes not yet decrypted: at most one chunk plus the held-back block and MAC.
    tail: Vec<u8>,
    blob_len: u64,
    length: u64,
}

impl std::fmt::Debug for MediaDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaDecryptor")
            .field("blob_len", &self.blob_len)
            .finish_non_exhaustive()
    }
}

/// Bytes at the end of the blob kept until `finish`: the last cipher block and the MAC.
const HOLD_BACK: usize = BLOCK + MAC_LEN;

impl MediaDecryptor {
    pub fn new(media_key: &[u8; MEDIA_KEY_LEN], kind: MediaKind) -> Self {
        let keys = MediaKeys::derive(media_key, kind);
        MediaDecryptor {
            cipher: cbc::Decryptor::new((&keys.cipher_key).into(), (&keys.iv).into()),
            mac: hmac_with(&keys),
            plain_hash: Sha256::new(),
            enc_hash: Sha256::new(),
            tail: Vec::new(),
            blob_len: 0,
            length: 0,
        }
    }

    /// Blob bytes fed so far.
    pub fn blob_len(&self) -> u64 {
        self.blob_len
    }

    /// Feeds blob bytes; appends the plaintext of every block that is certainly not the last
    /// (nor part of the MAC) to `out`.
    pub fn update(&mut self, blob: &[u8], out: &mut Vec<u8>) {
        self.enc_hash.update(blob);
        self.blob_len += blob.len() as u64;
        self.tail.extend_from_slice(blob);
        let ready = self.tail.len().saturating_sub(HOLD_BACK);
        let ready = ready - ready % BLOCK;
        if ready == 0 {
            return;
        }
        self.mac.update(&self.tail[..ready]);
        let start = out.len();
        out.extend_from_slice(&self.tail[..ready]);
        self.tail.drain(..ready);
        let (blocks, _) = aes::Block::slice_as_chunks_mut(&mut out[start..]);
        self.cipher.decrypt_blocks(blocks);
        self.plain_hash.update(&out[start..]);
        self.length += ready as u64;
    }

    /// Checks the MAC over the whole ciphertext, decrypts and unpads the held-back block into
    /// `out`, and returns the digest (`file_enc_sha256` of the blob as received, `file_sha256`
    /// of the plaintext). Compare them with the message's; [`MediaDecryptor::finish_verified`]
    /// does.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<MediaDigest, MediaError> {
        let total = self.blob_len;
        if total < HOLD_BACK as u64 {
            return Err(MediaError::TooShort(total as usize));
        }
        let enc_len = total - MAC_LEN as u64;
        if !enc_len.is_multiple_of(BLOCK as u64) {
            return Err(MediaError::NotBlockAligned(enc_len as usize));
        }
        let (enc, mac) = self.tail.split_at(self.tail.len() - MAC_LEN);
        self.mac.update(enc);
        let expected = self.mac.clone().finalize().into_bytes();
        if !bool::from(expected[..MAC_LEN].ct_eq(mac)) {
            return Err(MediaError::BadMac);
        }
        let mut last = enc.to_vec();
        let (blocks, _) = aes::Block::slice_as_chunks_mut(&mut last);
        self.cipher.decrypt_blocks(blocks);
        let pad = usize::from(last[last.len() - 1]);
        let valid = (1..=BLOCK).contains(&pad)
            && pad <= last.len()
            && last[last.len() - pad..]
                .iter()
                .all(|&b| usize::from(b) == pad);
        if !valid {
            return Err(MediaError::BadPadding);
        }
        let keep = last.len() - pad;
        self.plain_hash.update(&last[..keep]);
        out.extend_from_slice(&last[..keep]);
        self.length += keep as u64;
        last.zeroize();
        Ok(MediaDigest {
            file_sha256: self.plain_hash.clone().finalize().into(),
            file_enc_sha256: self.enc_hash.clone().finalize().into(),
            file_length: self.length,
        })
    }

    /// [`MediaDecryptor::finish`] plus the message's hashes, as a downloading client checks them.
    /// The MAC is checked first, so a tampered blob is [`MediaError::BadMac`].
    pub fn finish_verified(
        self,
        out: &mut Vec<u8>,
        file_enc_sha256: &[u8; 32],
        file_sha256: &[u8; 32],
    ) -> Result<MediaDigest, MediaError> {
        let digest = self.finish(out)?;
        if digest.file_enc_sha256 != *file_enc_sha256 {
            return Err(MediaError::EncHashMismatch);
        }
        if digest.file_sha256 != *file_sha256 {
            return Err(MediaError::PlainHashMismatch);
        }
        Ok(digest)
    }
}

/// Encrypts `plaintext` under `media_key` in one piece ([`MediaEncryptor`] for streams).
/// Deterministic: callers must draw a fresh random `media_key` per file.
pub fn encrypt(
    media_key: &[u8; MEDIA_KEY_LEN],
    kind: MediaKind,
    plaintext: &[u8],
) -> EncryptedMedia {
    let mut enc = MediaEncryptor::new(media_key, kind);
    let mut blob = Vec::with_capacity(MediaEncryptor::blob_len(plaintext.len() as u64) as usize);
    enc.update(plaintext, &mut blob);
    let digest = enc.finish(&mut blob);
    EncryptedMedia {
        blob,
        file_sha256: digest.file_sha256,
        file_enc_sha256: digest.file_enc_sha256,
        file_length: digest.file_length,
    }
}

/// Checks the MAC of `blob` (`enc ‖ mac`) and decrypts it; nothing is returned unless the MAC
/// matched.
pub fn decrypt(
    media_key: &[u8; MEDIA_KEY_LEN],
    kind: MediaKind,
    blob: &[u8],
) -> Result<Vec<u8>, MediaError> {
    let mut dec = MediaDecryptor::new(media_key, kind);
    let mut plain = Vec::with_capacity(blob.len());
    dec.update(blob, &mut plain);
    match dec.finish(&mut plain) {
        Ok(_) => Ok(plain),
        Err(e) => {
            plain.zeroize();
            Err(e)
        }
    }
}

/// `decrypt` plus the message's hashes: `fileEncSha256` over the blob, and `fileSha256` over the
/// plaintext, as a downloading client does.
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

    /// Feeds `data` to `f` in pieces of the given sizes (cycled), then the rest.
    fn in_pieces(data: &[u8], sizes: &[usize], mut f: impl FnMut(&[u8])) {
        let mut at = 0;
        for &n in sizes.iter().cycle().take(data.len() + 1) {
            if at >= data.len() {
                break;
            }
            let end = (at + n.max(1)).min(data.len());
            f(&data[at..end]);
            at = end;
        }
    }

    #[test]
    fn streaming_matches_one_shot_for_any_chunking() {
        for len in [0usize, 1, 15, 16, 17, 26, 27, 31, 32, 33, 100, 4097] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let whole = encrypt(&KEY, MediaKind::Video, &plain);
            for sizes in [&[1usize][..], &[3, 16, 5], &[16], &[27], &[1000]] {
                let mut e = MediaEncryptor::new(&KEY, MediaKind::Video);
                let mut blob = Vec::new();
                in_pieces(&plain, sizes, |c| e.update(c, &mut blob));
                let digest = e.finish(&mut blob);
                assert_eq!(blob, whole.blob, "len {len} sizes {sizes:?}");
                assert_eq!(blob.len() as u64, MediaEncryptor::blob_len(len as u64));
                assert_eq!(digest.file_sha256, whole.file_sha256);
                assert_eq!(digest.file_enc_sha256, whole.file_enc_sha256);
                assert_eq!(digest.file_length, len as u64);

                let mut d = MediaDecryptor::new(&KEY, MediaKind::Video);
                let mut back = Vec::new();
                in_pieces(&blob, sizes, |c| d.update(c, &mut back));
                let got = d
                    .finish_verified(&mut back, &whole.file_enc_sha256, &whole.file_sha256)
                    .unwrap();
                assert_eq!(back, plain, "len {len} sizes {sizes:?}");
                assert_eq!(got, digest);
            }
        }
    }

    #[test]
    fn streaming_decryptor_holds_back_the_last_block_and_mac() {
        let e = encrypt(&KEY, MediaKind::Image, &[9u8; 64]);
        let mut d = MediaDecryptor::new(&KEY, MediaKind::Image);
        let mut out = Vec::new();
        d.update(&e.blob, &mut out);
        // 64 bytes pad to 80: the last block (padding only) and the MAC wait for `finish`.
        assert_eq!(out, vec![9u8; 64]);
        let mut d = MediaDecryptor::new(&KEY, MediaKind::Image);
        let mut out = Vec::new();
        d.update(&e.blob[..e.blob.len() - 1], &mut out);
        assert_eq!(
            out.len(),
            48,
            "nothing within 26 bytes of the end is released"
        );
    }

    #[test]
    fn streaming_decryptor_rejects_tampering_and_truncation() {
        let e = encrypt(&KEY, MediaKind::Document, &[5u8; 100]);
        for i in [0, 50, e.blob.len() - 11, e.blob.len() - 1] {
            let mut b = e.blob.clone();
            b[i] ^= 0x80;
            let mut d = MediaDecryptor::new(&KEY, MediaKind::Document);
            let mut out = Vec::new();
            in_pieces(&b, &[7], |c| d.update(c, &mut out));
            assert_eq!(d.finish(&mut out), Err(MediaError::BadMac), "byte {i}");
        }
        let mut d = MediaDecryptor::new(&KEY, MediaKind::Document);
        let mut out = Vec::new();
        d.update(&e.blob[..e.blob.len() - 16], &mut out);
        assert_eq!(d.finish(&mut out), Err(MediaError::BadMac));
        let mut d = MediaDecryptor::new(&KEY, MediaKind::Document);
        d.update(&e.blob[..e.blob.len() - 3], &mut out);
        assert_eq!(
            d.finish(&mut out),
            Err(MediaError::NotBlockAligned(e.blob.len() - 13))
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
