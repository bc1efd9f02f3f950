//! The crypto of pairing by phone-number code (wa-protocol.md §5.4), for both ends: the simulator
//! plays the primary (phone), and tests use the same functions to play the companion.

use aes::Aes256;
use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, Nonce};
use ctr::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zapin_protocol::crypto::{KeyPair, PublicKey};

/// PBKDF2 iterations WhatsApp uses for the code key (2 << 16).
pub const PBKDF2_ROUNDS: u32 = 131_072;
pub const BUNDLE_INFO: &[u8] = b"link_code_pairing_key_bundle_encryption_key";
pub const ADV_SECRET_INFO: &[u8] = b"adv_secret";
/// salt (32) ‖ iv (16) ‖ AES-CTR(key) (32).
pub const WRAPPED_KEY_LEN: usize = 80;
/// salt (32) ‖ nonce (12) ‖ AES-GCM(96-byte plaintext) (112).
pub const WRAPPED_BUNDLE_LEN: usize = 156;

type Ctr = ctr::Ctr128BE<Aes256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkCodeError {
    #[error("wrapped key has {0} bytes, expected 80")]
    WrappedKeyLength(usize),
    #[error("wrapped key bundle has {0} bytes, expected 156")]
    BundleLength(usize),
    #[error("the key bundle does not decrypt (wrong code?)")]
    BundleDecrypt,
    #[error("the key bundle names other identity keys than the ones registered")]
    BundleIdentities,
}

/// PBKDF2-HMAC-SHA256 with one 32-byte output block (RFC 8018 §5.2, block index 1).
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    let Ok(prf) = <Hmac<Sha256> as KeyInit>::new_from_slice(password) else {
        // HMAC accepts keys of any length.
        return [0; 32];
    };
    let mut u = prf.clone();
    u.update(salt);
    u.update(&1u32.to_be_bytes());
    let mut block: [u8; 32] = u.finalize().into_bytes().into();
    let mut out = block;
    for _ in 1..rounds {
        let mut u = prf.clone();
        u.update(&block);
        block = u.finalize().into_bytes().into();
        for (o, b) in out.iter_mut().zip(block) {
            *o ^= b;
        }
    }
    out
}

fn ctr_apply(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) {
    let mut c = Ctr::new(key.into(), iv.into());
    c.apply_keystream(data);
}

/// `salt ‖ iv ‖ AES-256-CTR(PBKDF2(code, salt), iv, key)`.
pub fn wrap_key(code: &str, key: &PublicKey, salt: [u8; 32], iv: [u8; 16]) -> Vec<u8> {
    let k = pbkdf2_sha256(code.as_bytes(), &salt, PBKDF2_ROUNDS);
    let mut body = key.0;
    ctr_apply(&k, &iv, &mut body);
    let mut out = Vec::with_capacity(WRAPPED_KEY_LEN);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&iv);
    out.extend_from_slice(&body);
    out
}

/// Inverse of [`wrap_key`]. A wrong code gives a different (wrong) key, not an error: that only
/// shows later, when the key bundle does not decrypt.
pub fn unwrap_key(code: &str, wrapped: &[u8]) -> Result<PublicKey, LinkCodeError> {
    if wrapped.len() != WRAPPED_KEY_LEN {
        return Err(LinkCodeError::WrappedKeyLength(wrapped.len()));
    }
    let (salt, rest) = wrapped.split_at(32);
    let (iv, body) = rest.split_at(16);
    let k = pbkdf2_sha256(code.as_bytes(), salt, PBKDF2_ROUNDS);
    let mut key = [0u8; 32];
    key.copy_from_slice(body);
    let mut ivb = [0u8; 16];
    ivb.copy_from_slice(iv);
    ctr_apply(&k, &ivb, &mut key);
    Ok(PublicKey(key))
}

fn hkdf32(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's output limit.
    let _ = Hkdf::<Sha256>::new(salt, ikm).expand(info, &mut out);
    out
}

/// The companion's `companion_finish` bundle (companion side, for tests).
pub fn wrap_bundle(
    companion_ephemeral: &KeyPair,
    primary_ephemeral: &PublicKey,
    companion_identity: &PublicKey,
    primary_identity: &PublicKey,
    random: [u8; 32],
    salt: [u8; 32],
    nonce: [u8; 12],
) -> Vec<u8> {
    let shared = companion_ephemeral.agree(primary_ephemeral);
    let key = hkdf32(Some(&salt), &shared, BUNDLE_INFO);
    let mut plain = Vec::with_capacity(96);
    plain.extend_from_slice(companion_identity.as_bytes());
    plain.extend_from_slice(primary_identity.as_bytes());
    plain.extend_from_slice(&random);
    let ct = Aes256Gcm::new((&key).into())
        .encrypt(&Nonce::from(nonce), plain.as_slice())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(WRAPPED_BUNDLE_LEN);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// The adv secret both ends derive (§5.4 stage 3). `identity_shared` is
/// X25519(companion identity, primary identity) computed by either side.
pub fn adv_secret(
    ephemeral_shared: &[u8; 32],
    identity_shared: &[u8; 32],
    random: &[u8; 32],
) -> [u8; 32] {
    let mut ikm = Vec::with_capacity(96);
    ikm.extend_from_slice(ephemeral_shared);
    ikm.extend_from_slice(identity_shared);
    ikm.extend_from_slice(random);
    hkdf32(None, &ikm, ADV_SECRET_INFO)
}

/// Primary side of stage 3: opens the companion's bundle, checks it names the registered
/// companion identity and the account identity, and derives the adv secret.
pub fn open_bundle(
    bundle: &[u8],
    primary_ephemeral: &KeyPair,
    companion_ephemeral: &PublicKey,
    primary_identity: &KeyPair,
    companion_identity: &PublicKey,
) -> Result<[u8; 32], LinkCodeError> {
    if bundle.len() != WRAPPED_BUNDLE_LEN {
        return Err(LinkCodeError::BundleLength(bundle.len()));
    }
    let (salt, rest) = bundle.split_at(32);
    let (nonce, ct) = rest.split_at(12);
    let shared = primary_ephemeral.agree(companion_ephemeral);
    let key = hkdf32(Some(salt), &shared, BUNDLE_INFO);
    let mut n = [0u8; 12];
    n.copy_from_slice(nonce);
    let plain = Aes256Gcm::new((&key).into())
        .decrypt(&Nonce::from(n), ct)
        .map_err(|_| LinkCodeError::BundleDecrypt)?;
    if plain.len() != 96
        || plain.get(..32) != Some(companion_identity.as_bytes().as_slice())
        || plain.get(32..64) != Some(primary_identity.public().as_bytes().as_slice())
    {
        return Err(LinkCodeError::BundleIdentities);
    }
    let mut random = [0u8; 32];
    random.copy_from_slice(&plain[64..96]);
    let identity_shared = primary_identity.agree(companion_identity);
    Ok(adv_secret(&shared, &identity_shared, &random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_rfc7914_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256("passwd", "salt", c=1), first 32 bytes.
        let out = pbkdf2_sha256(b"passwd", b"salt", 1);
        assert_eq!(
            hex::encode(out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn wrap_unwrap_and_bundle_round_trip() {
        let eph = KeyPair::from_private([1; 32]);
        let wrapped = wrap_key("ABCD1234", eph.public(), [2; 32], [3; 16]);
        assert_eq!(unwrap_key("ABCD1234", &wrapped).unwrap(), *eph.public());
        assert_ne!(unwrap_key("ABCD1235", &wrapped).unwrap(), *eph.public());

        let primary_eph = KeyPair::from_private([4; 32]);
        let primary_id = KeyPair::from_private([5; 32]);
        let companion_id = KeyPair::from_private([6; 32]);
        let bundle = wrap_bundle(
            &eph,
            primary_eph.public(),
            companion_id.public(),
            primary_id.public(),
            [7; 32],
            [8; 32],
            [9; 12],
        );
        let secret = open_bundle(
            &bundle,
            &primary_eph,
            eph.public(),
            &primary_id,
            companion_id.public(),
        )
        .unwrap();
        let companion_view = adv_secret(
            &eph.agree(primary_eph.public()),
            &companion_id.agree(primary_id.public()),
            &[7; 32],
        );
        assert_eq!(secret, companion_view);
        let wrong = KeyPair::from_private([10; 32]);
        assert_eq!(
            open_bundle(
                &bundle,
                &primary_eph,
                wrong.public(),
                &primary_id,
                companion_id.public()
            ),
            Err(LinkCodeError::BundleDecrypt)
        );
    }
}
