//! Curve25519 key pairs as WhatsApp and Signal use them.
//!
//! Public keys are raw 32-byte Montgomery `u` coordinates. Signal serialises them with a leading
//! `0x05` ("DJB" key type); Noise and the certificate chain use the raw 32 bytes. Both forms are
//! accepted on input, and the caller picks the form on output.

use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::CryptoRng;
use zeroize::Zeroize;

/// Signal's key-type byte for Curve25519 ("DJB") public keys.
pub const DJB_TYPE: u8 = 0x05;

/// A Curve25519 public key (Montgomery `u`, 32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// Why bytes could not be read as a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("public key has {0} bytes, expected 32, or 33 with the 0x05 prefix")]
    BadLength(usize),
    #[error("public key has type byte {0:#04x}, expected 0x05")]
    BadType(u8),
}

impl PublicKey {
    /// Reads a key in either the raw (32-byte) or Signal (33-byte, `0x05`-prefixed) form.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        match bytes.len() {
            32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(bytes);
                Ok(Self(k))
            }
            33 => match bytes.first() {
                Some(&DJB_TYPE) => Self::from_slice(&bytes[1..]),
                Some(&t) => Err(KeyError::BadType(t)),
                None => Err(KeyError::BadLength(0)),
            },
            n => Err(KeyError::BadLength(n)),
        }
    }

    /// The 33-byte Signal form with the `0x05` type prefix.
    pub fn serialize_djb(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = DJB_TYPE;
        out[1..].copy_from_slice(&self.0);
        out
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

/// A Curve25519 key pair. The private half is zeroed on drop and never printed.
#[derive(Clone)]
pub struct KeyPair {
    private: [u8; 32],
    public: PublicKey,
}

impl KeyPair {
    /// Builds a key pair from a private key; the public half is derived. Clamping is applied at use,
    /// so the stored private bytes round-trip exactly as given.
    pub fn from_private(private: [u8; 32]) -> Self {
        let public = PublicKey(MontgomeryPoint::mul_base_clamped(private).to_bytes());
        Self { private, public }
    }

    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut private = [0u8; 32];
        rng.fill_bytes(&mut private);
        let kp = Self::from_private(private);
        private.zeroize();
        kp
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The private key bytes, for persistence (the store encrypts them at rest).
    pub fn private_bytes(&self) -> &[u8; 32] {
        &self.private
    }

    /// X25519 Diffie-Hellman with a peer's public key.
    pub fn agree(&self, peer: &PublicKey) -> [u8; 32] {
        MontgomeryPoint(peer.0).mul_clamped(self.private).to_bytes()
    }
}

impl Drop for KeyPair {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agree_is_symmetric() {
        let a = KeyPair::from_private([1u8; 32]);
        let b = KeyPair::from_private([2u8; 32]);
        assert_eq!(a.agree(b.public()), b.agree(a.public()));
    }

    #[test]
    fn rfc7748_public_key_vector() {
        // RFC 7748 §6.1, Alice.
        let private: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let kp = KeyPair::from_private(private);
        assert_eq!(
            hex::encode(kp.public().0),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn djb_form_round_trips_and_rejects_bad_input() {
        let kp = KeyPair::from_private([7u8; 32]);
        let djb = kp.public().serialize_djb();
        assert_eq!(PublicKey::from_slice(&djb).unwrap(), *kp.public());
        assert_eq!(PublicKey::from_slice(&djb[1..]).unwrap(), *kp.public());
        assert_eq!(
            PublicKey::from_slice(&djb[..5]),
            Err(KeyError::BadLength(5))
        );
        let mut wrong = djb;
        wrong[0] = 6;
        assert_eq!(PublicKey::from_slice(&wrong), Err(KeyError::BadType(6)));
    }

    #[test]
    fn debug_never_prints_the_private_key() {
        let kp = KeyPair::from_private([0xAB; 32]);
        assert!(!format!("{kp:?}").contains("abab"));
    }
}
