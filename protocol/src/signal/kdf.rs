//! Key derivation and the symmetric primitives of Signal v3 (wa-protocol.md §7.6; Signal's
//! Double Ratchet and X3DH specifications name HKDF-SHA256, HMAC-SHA256 and AES-256-CBC).

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

use super::SignalError;

type HmacSha256 = Hmac<Sha256>;

/// HKDF info strings of libsignal v3 (wa-protocol.md §7.6).
pub(crate) const INFO_TEXT: &[u8] = b"WhisperText";
pub(crate) const INFO_RATCHET: &[u8] = b"WhisperRatchet";
pub(crate) const INFO_MESSAGE_KEYS: &[u8] = b"WhisperMessageKeys";
pub(crate) const INFO_GROUP: &[u8] = b"WhisperGroup";

/// RFC 5869 HKDF-SHA256. An empty salt means 32 zero bytes, as RFC 5869 specifies.
pub(crate) fn hkdf<const N: usize>(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let kdf = hkdf::Hkdf::<Sha256>::new(Some(salt), ikm);
    // Expansion fails only beyond 255 × 32 bytes; N is at most 80 at every call site.
    let _ = kdf.expand(info, &mut out);
    out
}

pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so the error branch cannot be taken.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
        return [0u8; 32];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// A symmetric chain position: `key` produces the message key for `index`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ChainKey {
    pub index: u32,
    pub key: [u8; 32],
}

impl ChainKey {
    /// The message-key seed for `self.index` (HMAC(ck, 0x01)).
    pub fn seed(&self) -> [u8; 32] {
        hmac_sha256(&self.key, &[&[0x01]])
    }

    /// The chain key for `index + 1` (HMAC(ck, 0x02)).
    pub fn next(&self) -> ChainKey {
        ChainKey {
            index: self.index.wrapping_add(1),
            key: hmac_sha256(&self.key, &[&[0x02]]),
        }
    }
}

impl Drop for ChainKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainKey({})", self.index)
    }
}

/// Keys of one pairwise message, expanded from its seed.
pub(crate) struct MessageKeys {
    pub cipher_key: [u8; 32],
    pub mac_key: [u8; 32],
    pub iv: [u8; 16],
}

impl MessageKeys {
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mut okm: [u8; 80] = hkdf(seed, &[0u8; 32], INFO_MESSAGE_KEYS);
        let mut keys = MessageKeys {
            cipher_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
        };
        keys.cipher_key.copy_from_slice(&okm[..32]);
        keys.mac_key.copy_from_slice(&okm[32..64]);
        keys.iv.copy_from_slice(&okm[64..80]);
        okm.zeroize();
        keys
    }
}

impl Drop for MessageKeys {
    fn drop(&mut self) {
        self.cipher_key.zeroize();
        self.mac_key.zeroize();
    }
}

/// Keys of one sender-key (group) message: IV first, then the cipher key (wa-protocol.md §7.6).
pub(crate) fn group_message_keys(seed: &[u8; 32]) -> ([u8; 16], [u8; 32]) {
    let mut okm: [u8; 48] = hkdf(seed, &[0u8; 32], INFO_GROUP);
    let mut iv = [0u8; 16];
    let mut key = [0u8; 32];
    iv.copy_from_slice(&okm[..16]);
    key.copy_from_slice(&okm[16..48]);
    okm.zeroize();
    (iv, key)
}

/// Root-chain step of the Double Ratchet: returns (new root key, new chain key).
pub(crate) fn ratchet_root(root: &[u8; 32], dh: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let okm: [u8; 64] = hkdf(dh, root, INFO_RATCHET);
    split64(&okm)
}

pub(crate) fn split64(okm: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    (a, b)
}

pub(crate) fn aes_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    let padded_len = (plaintext.len() / 16 + 1) * 16;
    let mut buf = vec![0u8; padded_len];
    buf[..plaintext.len()].copy_from_slice(plaintext);
    let enc = cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into());
    match enc.encrypt_padded::<Pkcs7>(&mut buf, plaintext.len()) {
        Ok(ct) => {
            let n = ct.len();
            buf.truncate(n);
        }
        // The buffer always has room for a full padding block.
        Err(_) => buf.clear(),
    }
    buf
}

pub(crate) fn aes_cbc_decrypt(
    key: &[u8; 32],
    iv: &[u8; 16],
    ciphertext: &[u8],
) -> Result<Vec<u8>, SignalError> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(SignalError::BadCiphertext);
    }
    let mut buf = ciphertext.to_vec();
    let dec = cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into());
    let n = dec
        .decrypt_padded::<Pkcs7>(&mut buf)
        .map_err(|_| SignalError::BadCiphertext)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let okm: [u8; 42] = hkdf(&ikm, &salt, &info);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn cbc_round_trip_and_bad_lengths() {
        let ct = aes_cbc_encrypt(&[7; 32], &[9; 16], b"hello");
        assert_eq!(ct.len(), 16);
        assert_eq!(aes_cbc_decrypt(&[7; 32], &[9; 16], &ct).unwrap(), b"hello");
        assert_eq!(
            aes_cbc_decrypt(&[7; 32], &[9; 16], &ct[..15]),
            Err(SignalError::BadCiphertext)
        );
        assert_eq!(
            aes_cbc_decrypt(&[7; 32], &[9; 16], &[]),
            Err(SignalError::BadCiphertext)
        );
    }
}
