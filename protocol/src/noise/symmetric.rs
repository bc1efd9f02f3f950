//! Noise's SymmetricState as WhatsApp runs it: one cipher key and a single nonce counter that both
//! Encrypt and Decrypt advance, reset at every MixKey (wa-protocol.md §2.1). A textbook Noise
//! CipherState would behave the same, but WhatsApp's code names and resets differ, so the state is
//! kept explicit here to mirror the transcript step by step.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::NoiseError;

/// The protocol name; exactly 32 bytes, so it is used as the initial hash without hashing.
pub const PATTERN_XX: &[u8; 32] = b"Noise_XX_25519_AESGCM_SHA256\0\0\0\0";

/// WhatsApp's connection header, mixed in as the Noise prologue. Its last byte is the binary
/// dictionary version.
pub const PROLOGUE: [u8; 4] = [0x57, 0x41, 0x06, 0x03];

/// AES-GCM's tag length; every handshake and transport ciphertext is this much longer than its
/// plaintext.
pub const TAG_LEN: usize = 16;

pub(crate) struct SymmetricState {
    h: [u8; 32],
    ck: [u8; 32],
    k: [u8; 32],
    counter: u32,
}

impl SymmetricState {
    /// Initialises with the XX pattern name and mixes in the prologue.
    pub(crate) fn new() -> Self {
        let mut s = Self {
            h: *PATTERN_XX,
            ck: *PATTERN_XX,
            k: *PATTERN_XX,
            counter: 0,
        };
        s.mix_hash(&PROLOGUE);
        s
    }

    pub(crate) fn hash(&self) -> [u8; 32] {
        self.h
    }

    pub(crate) fn chaining_key(&self) -> [u8; 32] {
        self.ck
    }

    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        self.h = Sha256::new()
            .chain_update(self.h)
            .chain_update(data)
            .finalize()
            .into();
    }

    pub(crate) fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf_split(&self.ck, ikm);
        self.ck = ck;
        self.k = k;
        self.counter = 0;
    }

    pub(crate) fn encrypt_and_hash(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let nonce = nonce(self.next_counter()?);
        let ct = Aes256Gcm::new((&self.k).into())
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &self.h,
                },
            )
            .map_err(|_| NoiseError::Encrypt)?;
        self.mix_hash(&ct);
        Ok(ct)
    }

    pub(crate) fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let nonce = nonce(self.next_counter()?);
        let pt = Aes256Gcm::new((&self.k).into())
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &self.h,
                },
            )
            .map_err(|_| NoiseError::Decrypt)?;
        self.mix_hash(ciphertext);
        Ok(pt)
    }

    /// Derives the two transport keys: the first is the initiator's write key.
    pub(crate) fn split(&self) -> ([u8; 32], [u8; 32]) {
        hkdf_split(&self.ck, &[])
    }

    fn next_counter(&mut self) -> Result<u32, NoiseError> {
        let c = self.counter;
        self.counter = c.checked_add(1).ok_or(NoiseError::CounterExhausted)?;
        Ok(c)
    }
}

impl Drop for SymmetricState {
    fn drop(&mut self) {
        self.ck.zeroize();
        self.k.zeroize();
    }
}

/// The 12-byte AES-GCM nonce for a counter: 8 zero bytes then the counter big-endian.
pub(crate) fn nonce(counter: u32) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut iv = [0u8; 12];
    iv[8..].copy_from_slice(&counter.to_be_bytes());
    iv.into()
}

fn hkdf_split(salt: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut okm = [0u8; 64];
    // 64 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(&[], &mut okm);
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    okm.zeroize();
    (a, b)
}
