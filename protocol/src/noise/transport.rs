//! The post-handshake transport: one AES-256-GCM key per direction, each with its own 32-bit
//! counter, empty AAD (wa-protocol.md §2.6).

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit};

use super::NoiseError;
use super::symmetric::nonce;

/// One direction's key and counter. The cipher is expanded once, since every frame uses it.
struct Direction {
    cipher: Aes256Gcm,
    counter: u32,
}

impl Direction {
    fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
            counter: 0,
        }
    }

    /// Takes the next counter value. After `u32::MAX` frames there is no fresh nonce left, so the
    /// direction refuses instead of wrapping (a wrapped nonce would reuse a GCM key stream).
    fn next(&mut self) -> Result<u32, NoiseError> {
        let c = self.counter;
        self.counter = c.checked_add(1).ok_or(NoiseError::CounterExhausted)?;
        Ok(c)
    }
}

/// Encrypts outgoing and decrypts incoming frame payloads after a completed handshake.
///
/// A failed decryption still consumes a counter, as WhatsApp's clients do; in practice the caller
/// must drop the connection, because the peer's next frame will no longer line up.
pub struct Transport {
    write: Direction,
    read: Direction,
}

impl Transport {
    pub(crate) fn new(write_key: &[u8; 32], read_key: &[u8; 32]) -> Self {
        Self {
            write: Direction::new(write_key),
            read: Direction::new(read_key),
        }
    }

    /// Encrypts one frame payload; the result is 16 bytes longer.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let n = nonce(self.write.next()?);
        self.write
            .cipher
            .encrypt(&n, plaintext)
            .map_err(|_| NoiseError::Encrypt)
    }

    /// Decrypts one frame payload.
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let n = nonce(self.read.next()?);
        self.read
            .cipher
            .decrypt(&n, ciphertext)
            .map_err(|_| NoiseError::Decrypt)
    }

    /// How many frames have been encrypted and decrypted so far.
    pub fn counters(&self) -> (u32, u32) {
        (self.write.counter, self.read.counter)
    }

    /// Test hook: starts both counters at the given values, to exercise exhaustion.
    #[doc(hidden)]
    pub fn set_counters_for_test(&mut self, write: u32, read: u32) {
        self.write.counter = write;
        self.read.counter = read;
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("write_counter", &self.write.counter)
            .field("read_counter", &self.read.counter)
            .finish_non_exhaustive()
    }
}
