//! Pairing with a phone-number code (wa-protocol.md §5.4), sans-IO: the code, the key wrapping of
//! `companion_hello`, and the key bundle and new adv secret of `companion_finish`.

use aes::Aes256;
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::Aead;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zapin_protocol::crypto::{KeyPair, PublicKey};

/// Crockford-style base32 without 0, I, O, U.
const ALPHABET: &[u8; 32] = b"123456789ABCDEFGHJKLMNPQRSTVWXYZ";
/// PBKDF2 iterations (2 << 16).
pub const PBKDF2_ROUNDS: u32 = 131_072;
const BUNDLE_INFO: &[u8] = b"link_code_pairing_key_bundle_encryption_key";
const ADV_INFO: &[u8] = b"adv_secret";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkCodeError {
    #[error("wrapped key has {0} bytes, expected 80")]
    WrappedLength(usize),
    #[error("unwrapped key is not a Curve25519 public key")]
    BadKey,
    #[error("AES-GCM refused to encrypt")]
    Encrypt,
}

/// The 8-character code from 5 random bytes (40 bits, 5 per character).
pub fn code_from_bytes(random: [u8; 5]) -> String {
    let mut v = random
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut out = [0u8; 8];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// PBKDF2-HMAC-SHA256 with a 32-byte output (one block, RFC 8018 §5.2).
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    let Ok(prf) = <Hmac<Sha256> as KeyInit>::new_from_slice(password) else {
        return [0; 32]; // HMAC takes keys of any length.
    };
    let mut mac = prf.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..rounds {
        let mut mac = prf.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

fn ctr_apply(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) {
    let mut cipher = ctr::Ctr128BE::<Aes256>::new(key.into(), iv.into());
    cipher.apply_keystream(data);
}

/// `salt(32) ‖ iv(16) ‖ AES-256-CTR(PBKDF2(code, salt), iv, public)`: 80 bytes.
pub fn wrap_ephemeral(code: &str, salt: [u8; 32], iv: [u8; 16], public: &PublicKey) -> Vec<u8> {
    let key = pbkdf2_sha256(code.as_bytes(), &salt, PBKDF2_ROUNDS);
    let mut body = public.0;
    ctr_apply(&key, &iv, &mut body);
    let mut out = Vec::with_capacity(80);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&iv);
    out.extend_from_slice(&body);
    out
}

/// The inverse of [`wrap_ephemeral`] (the phone's primary ephemeral key in `primary_hello`).
pub fn unwrap_ephemeral(code: &str, wrapped: &[u8]) -> Result<PublicKey, LinkCodeError> {
    let wrapped: &[u8; 80] = wrapped
        .try_into()
        .map_err(|_| LinkCodeError::WrappedLength(wrapped.len()))?;
    let (salt, rest) = wrapped.split_at(32);
    let (iv, body) = rest.split_at(16);
    let key = pbkdf2_sha256(code.as_bytes(), salt, PBKDF2_ROUNDS);
    let iv: [u8; 16] = iv.try_into().map_err(|_| LinkCodeError::BadKey)?;
    let mut key_bytes: [u8; 32] = body.try_into().map_err(|_| LinkCodeError::BadKey)?;
    ctr_apply(&key, &iv, &mut key_bytes);
    Ok(PublicKey(key_bytes))
}

/// The randomness `companion_finish` needs, drawn by the caller.
#[derive(Debug, Clone)]
pub struct FinishRandom {
    pub salt: [u8; 32],
    pub nonce: [u8; 12],
    pub random: [u8; 32],
}

/// `companion_finish`: the 156-byte wrapped key bundle and the adv secret that replaces the QR one.
pub fn companion_finish(
    companion_ephemeral: &KeyPair,
    primary_ephemeral: &PublicKey,
    identity: &KeyPair,
    primary_identity: &PublicKey,
    r: &FinishRandom,
) -> Result<(Vec<u8>, [u8; 32]), LinkCodeError> {
    let shared = companion_ephemeral.agree(primary_ephemeral);
    let mut bundle_key = [0u8; 32];
    // 32 bytes is far below HKDF's limit: expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(&r.salt), &shared).expand(BUNDLE_INFO, &mut bundle_key);
    let mut plaintext = Vec::with_capacity(96);
    plaintext.extend_from_slice(identity.public().as_bytes());
    plaintext.extend_from_slice(primary_identity.as_bytes());
    plaintext.extend_from_slice(&r.random);
    let sealed = Aes256Gcm::new((&bundle_key).into())
        .encrypt(&r.nonce.into(), plaintext.as_slice())
        .map_err(|_| LinkCodeError::Encrypt)?;
    let mut wrapped = Vec::with_capacity(156);
    wrapped.extend_from_slice(&r.salt);
    wrapped.extend_from_slice(&r.nonce);
    wrapped.extend_from_slice(&sealed);

    let mut ikm = Vec::with_capacity(96);
    ikm.extend_from_slice(&shared);
    ikm.extend_from_slice(&identity.agree(primary_identity));
    ikm.extend_from_slice(&r.random);
    let mut adv = [0u8; 32];
    let _ = Hkdf::<Sha256>::new(None, &ikm).expand(ADV_INFO, &mut adv);
    Ok((wrapped, adv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_uses_the_alphabet_and_all_40_bits() {
        assert_eq!(code_from_bytes([0; 5]), "11111111");
        assert_eq!(code_from_bytes([0xff; 5]), "ZZZZZZZZ");
        // 0x0842108421 = 00001 00001 ... : every 5-bit group is 1 -> '2'.
        assert_eq!(code_from_bytes([0x08, 0x42, 0x10, 0x84, 0x21]), "22222222");
        let c = code_from_bytes([1, 2, 3, 4, 5]);
        assert!(c.bytes().all(|b| ALPHABET.contains(&b)));
        assert!(!c.contains(['0', 'I', 'O', 'U']));
    }

    #[test]
    fn pbkdf2_matches_rfc7914_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64), first 32 bytes.
        assert_eq!(
            hex::encode(pbkdf2_sha256(b"passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        // python: hashlib.pbkdf2_hmac('sha256', b'password', b'salt', 4096)
        assert_eq!(
            hex::encode(pbkdf2_sha256(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    #[test]
    fn wrapping_round_trips_and_depends_on_the_code() {
        let key = KeyPair::from_private([7; 32]);
        let wrapped = wrap_ephemeral("ABCD1234", [1; 32], [2; 16], key.public());
        assert_eq!(wrapped.len(), 80);
        assert_eq!(&wrapped[..32], &[1; 32]);
        assert_eq!(
            unwrap_ephemeral("ABCD1234", &wrapped).unwrap(),
            *key.public()
        );
        assert_ne!(
            unwrap_ephemeral("ABCD1235", &wrapped).unwrap(),
            *key.public()
        );
        assert_eq!(
            unwrap_ephemeral("ABCD1234", &wrapped[..79]),
            Err(LinkCodeError::WrappedLength(79))
        );
    }

    #[test]
    fn both_sides_derive_the_same_adv_secret_and_the_phone_can_open_the_bundle() {
        let companion_eph = KeyPair::from_private([1; 32]);
        let primary_eph = KeyPair::from_private([2; 32]);
        let companion_id = KeyPair::from_private([3; 32]);
        let primary_id = KeyPair::from_private([4; 32]);
        let r = FinishRandom {
            salt: [5; 32],
            nonce: [6; 12],
            random: [7; 32],
        };
        let (wrapped, adv) = companion_finish(
            &companion_eph,
            primary_eph.public(),
            &companion_id,
            primary_id.public(),
            &r,
        )
        .unwrap();
        assert_eq!(wrapped.len(), 156);

        // The phone's side, from the spec.
        let shared = primary_eph.agree(companion_eph.public());
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&wrapped[..32]), &shared)
            .expand(BUNDLE_INFO, &mut key)
            .unwrap();
        let nonce: [u8; 12] = wrapped[32..44].try_into().unwrap();
        let plain = Aes256Gcm::new((&key).into())
            .decrypt(&nonce.into(), &wrapped[44..])
            .unwrap();
        assert_eq!(&plain[..32], companion_id.public().as_bytes());
        assert_eq!(&plain[32..64], primary_id.public().as_bytes());
        let mut ikm = shared.to_vec();
        ikm.extend_from_slice(&primary_id.agree(companion_id.public()));
        ikm.extend_from_slice(&plain[64..]);
        let mut phone_adv = [0u8; 32];
        Hkdf::<Sha256>::new(None, &ikm)
            .expand(ADV_INFO, &mut phone_adv)
            .unwrap();
        assert_eq!(adv, phone_adv);
    }
}
