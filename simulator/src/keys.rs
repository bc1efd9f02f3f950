//! Every secret the simulator makes is derived from one 32-byte master secret and a label.
//!
//! With `--seed N` the master is a hash of N, so two runs with the same seed make the same root key,
//! the same account keys and the same ids. Without a seed the master comes from the OS. Deriving
//! (instead of drawing from a stream RNG) makes a key independent of the order in which things were
//! created: account `15550000001` has the same identity whether it was made first or tenth.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zapin_protocol::crypto::{KeyPair, xeddsa};

/// The root of all derived keys. Persisted in the state snapshot so a restarted simulator keeps
/// deriving the same phone prekeys.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeySource {
    #[serde(with = "crate::serde_hex::array32")]
    master: [u8; 32],
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySource(<redacted>)")
    }
}

impl KeySource {
    /// The master for `--seed N`.
    pub fn from_seed(seed: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"zapin-sim seed v1\0");
        h.update(seed.to_be_bytes());
        Self {
            master: h.finalize().into(),
        }
    }

    /// A master from OS randomness, for runs without `--seed`.
    pub fn random() -> std::io::Result<Self> {
        let mut master = [0u8; 32];
        os_random(&mut master)?;
        Ok(Self { master })
    }

    /// 32 bytes bound to `label`. Distinct labels give independent outputs (SHA-256 of a
    /// length-prefixed label under the master).
    pub fn bytes(&self, label: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"zapin-sim derive v1\0");
        h.update(self.master);
        h.update((label.len() as u64).to_be_bytes());
        h.update(label.as_bytes());
        h.finalize().into()
    }

    pub fn key_pair(&self, label: &str) -> KeyPair {
        KeyPair::from_private(self.bytes(label))
    }

    /// A number in `0..bound` (bound > 0), with negligible bias for the small bounds used here.
    pub fn number(&self, label: &str, bound: u64) -> u64 {
        let b = self.bytes(label);
        let mut n = [0u8; 8];
        n.copy_from_slice(&b[..8]);
        u64::from_be_bytes(n) % bound.max(1)
    }

    /// An XEdDSA signature whose nonce randomness is derived too, so signatures are reproducible.
    pub fn sign(&self, key: &KeyPair, message: &[u8], label: &str) -> [u8; 64] {
        let mut random = [0u8; 64];
        random[..32].copy_from_slice(&self.bytes(&format!("{label}/sig-random/0")));
        random[32..].copy_from_slice(&self.bytes(&format!("{label}/sig-random/1")));
        xeddsa::sign(key, message, &random)
    }
}

/// Reads OS randomness without another dependency: `/dev/urandom` exists on every platform the
/// simulator runs on (Linux CI and developer machines).
fn os_random(out: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_keys_different_labels_differ() {
        let a = KeySource::from_seed(7);
        let b = KeySource::from_seed(7);
        let c = KeySource::from_seed(8);
        assert_eq!(a.key_pair("root").public(), b.key_pair("root").public());
        assert_ne!(a.key_pair("root").public(), c.key_pair("root").public());
        assert_ne!(a.bytes("x"), a.bytes("y"));
    }

    #[test]
    fn signatures_verify_and_repeat() {
        let ks = KeySource::from_seed(1);
        let kp = ks.key_pair("id");
        let s1 = ks.sign(&kp, b"msg", "l");
        let s2 = ks.sign(&kp, b"msg", "l");
        assert_eq!(s1, s2);
        assert!(xeddsa::verify(kp.public(), b"msg", &s1));
    }
}
