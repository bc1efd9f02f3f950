//! Long-term and prekey material a device generates and publishes (wa-protocol.md §6.3).

use rand_core::CryptoRng;

use crate::crypto::xeddsa;
use crate::crypto::{KeyPair, PublicKey};

use super::SignalError;

/// This device's Signal identity: the identity key pair and the registration id published with it.
#[derive(Debug, Clone)]
pub struct LocalIdentity {
    pub key_pair: KeyPair,
    pub registration_id: u32,
}

impl LocalIdentity {
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        LocalIdentity {
            key_pair: KeyPair::generate(rng),
            registration_id: generate_registration_id(rng),
        }
    }

    pub fn public(&self) -> &PublicKey {
        self.key_pair.public()
    }
}

/// A registration id in 1..=16380, the 14-bit range libsignal clients generate.
pub fn generate_registration_id<R: CryptoRng + ?Sized>(rng: &mut R) -> u32 {
    let mut b = [0u8; 2];
    rng.fill_bytes(&mut b);
    let id = u32::from(u16::from_be_bytes(b) & 0x3fff);
    id.clamp(1, 16380)
}

/// Largest prekey id: ids are 3 bytes on the wire (wa-protocol.md §6.3).
pub const MAX_PRE_KEY_ID: u32 = 0x00ff_ffff;

/// A one-time prekey: published once, consumed by the first session built from it.
#[derive(Debug, Clone)]
pub struct PreKey {
    pub id: u32,
    pub key_pair: KeyPair,
}

impl PreKey {
    pub fn generate<R: CryptoRng + ?Sized>(id: u32, rng: &mut R) -> Self {
        PreKey {
            id: id & MAX_PRE_KEY_ID,
            key_pair: KeyPair::generate(rng),
        }
    }

    /// `count` prekeys with consecutive ids from `first_id`, wrapping within 1..=2^24-1.
    pub fn generate_batch<R: CryptoRng + ?Sized>(
        first_id: u32,
        count: u32,
        rng: &mut R,
    ) -> Vec<PreKey> {
        (0..count)
            .map(|i| {
                let id = (first_id.wrapping_add(i).wrapping_sub(1) % MAX_PRE_KEY_ID) + 1;
                PreKey::generate(id, rng)
            })
            .collect()
    }
}

/// The medium-term prekey, signed by the identity key so peers can trust it.
#[derive(Debug, Clone)]
pub struct SignedPreKey {
    pub id: u32,
    pub key_pair: KeyPair,
    /// XEdDSA signature by the identity key over the 33-byte `05`-prefixed public key.
    pub signature: [u8; 64],
}

impl SignedPreKey {
    pub fn generate<R: CryptoRng + ?Sized>(identity: &LocalIdentity, id: u32, rng: &mut R) -> Self {
        let key_pair = KeyPair::generate(rng);
        let mut random = [0u8; 64];
        rng.fill_bytes(&mut random);
        let signature = xeddsa::sign(
            &identity.key_pair,
            &key_pair.public().serialize_djb(),
            &random,
        );
        SignedPreKey {
            id: id & MAX_PRE_KEY_ID,
            key_pair,
            signature,
        }
    }
}

/// What a peer publishes and the server hands out on a key fetch (wa-protocol.md §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyBundle {
    pub registration_id: u32,
    pub identity_key: PublicKey,
    pub signed_pre_key_id: u32,
    pub signed_pre_key: PublicKey,
    pub signed_pre_key_signature: [u8; 64],
    /// The one-time prekey `(id, key)`, absent when the server's pool for the device is empty.
    pub pre_key: Option<(u32, PublicKey)>,
}

impl PreKeyBundle {
    /// Checks the signed prekey's signature by the identity key.
    pub fn verify(&self) -> Result<(), SignalError> {
        if xeddsa::verify(
            &self.identity_key,
            &self.signed_pre_key.serialize_djb(),
            &self.signed_pre_key_signature,
        ) {
            Ok(())
        } else {
            Err(SignalError::BadSignature)
        }
    }

    /// The bundle a device publishes for itself.
    pub fn from_local(
        identity: &LocalIdentity,
        signed: &SignedPreKey,
        one_time: Option<&PreKey>,
    ) -> Self {
        PreKeyBundle {
            registration_id: identity.registration_id,
            identity_key: *identity.public(),
            signed_pre_key_id: signed.id,
            signed_pre_key: *signed.key_pair.public(),
            signed_pre_key_signature: signed.signature,
            pre_key: one_time.map(|p| (p.id, *p.key_pair.public())),
        }
    }
}
