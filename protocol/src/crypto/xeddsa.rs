//! XEdDSA over Curve25519, in the flavour Signal and WhatsApp use.
//!
//! Signal signs with Montgomery (X25519) keys by mapping them to Edwards form. Rather than forcing
//! the Edwards public key's sign bit to zero, this flavour carries that bit in the top bit of the
//! signature's last byte (free because `s < 2^253`), and the verifier takes it from there. That is
//! what WhatsApp's certificate chain, signed prekeys and ADV signatures use (wa-protocol.md §2.4,
//! checked against a real certificate in the tests below).

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use sha2::{Digest, Sha512};

use super::keys::{KeyPair, PublicKey};

/// A 64-byte XEdDSA signature: `R ‖ s` with the Edwards sign bit in the top bit of byte 63.
pub type Signature = [u8; 64];

/// Signs `message` with a Curve25519 private key. `random` is 64 bytes of fresh randomness, passed
/// in because this crate reads no RNG of its own.
pub fn sign(key: &KeyPair, message: &[u8], random: &[u8; 64]) -> Signature {
    let clamped = clamp_integer(*key.private_bytes());
    let a = Scalar::from_bytes_mod_order(clamped);
    let big_a = EdwardsPoint::mul_base(&a).compress();
    let sign_bit = big_a.0[31] & 0x80;

    let mut prefix = [0xFFu8; 32];
    prefix[0] = 0xFE;
    let r = Scalar::from_hash(
        Sha512::new()
            .chain_update(prefix)
            .chain_update(clamped)
            .chain_update(message)
            .chain_update(random),
    );
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let h = Scalar::from_hash(
        Sha512::new()
            .chain_update(big_r.0)
            .chain_update(big_a.0)
            .chain_update(message),
    );
    let s = r + h * a;

    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&big_r.0);
    sig[32..].copy_from_slice(s.as_bytes());
    sig[63] |= sign_bit;
    sig
}

/// Verifies an XEdDSA signature made by the holder of `key`. Returns `false` for any malformed or
/// forged signature; never panics.
pub fn verify(key: &PublicKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let sign_bit = signature[63] >> 7;
    let Some(big_a) = MontgomeryPoint(key.0).to_edwards(sign_bit) else {
        return false;
    };
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&signature[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature[32..]);
    s_bytes[31] &= 0x7F;
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    let big_a_bytes = big_a.compress();
    let h = Scalar::from_hash(
        Sha512::new()
            .chain_update(r_bytes)
            .chain_update(big_a_bytes.0)
            .chain_update(message),
    );
    // R' = s·B − h·A must equal R.
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&-h, &big_a, &s);
    let expected = CompressedEdwardsY(r_bytes);
    check.compress() == expected
}

/// Verifies a signature given as a slice, rejecting any length other than 64.
pub fn verify_slice(key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    match <&[u8; 64]>::try_from(signature) {
        Ok(sig) => verify(key, message, sig),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn key(s: &str) -> PublicKey {
        PublicKey::from_slice(&h(s)).unwrap()
    }

    // wa-protocol.md Appendix A.2: a real WhatsApp certificate chain.
    const ROOT: &str = "142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b";
    const INTERMEDIATE_KEY: &str =
        "1c51a9ac303994c6c8d0b92ea1878a533476599cc599fbea35997d9aa90cce62";
    const INTERMEDIATE_DETAILS: &str = "080310001a201c51a9ac303994c6c8d0b92ea1878a533476599cc599fbea35997d9aa90cce62208091aebe0628ffdeb7dc06";
    const INTERMEDIATE_SIG: &str = "270f294648539fed4870e25054dd4e95983aba29189c2ba6c8eeda7055555f753740f5ec192ab64c26c26d6ade6d20b9f774aee37120a6b20395f53c66058507";
    const LEAF_DETAILS: &str = "08c90210031a205854d333d8e13975abd6597bbaddd49d6935ced25c93a44bd3ade508f2bec33020d08f87bf0628d0c99fc406";
    const LEAF_SIG: &str = "19cbee71b63bb8048af269f3aa7c13c62a1fd89ac4ef2509d1d78d68267f40393b49a9cc38db05e35a6c5bf3ba6172a4c5325f25f363338cf8f3535a4cd95205";

    #[test]
    fn real_whatsapp_certificates_verify() {
        assert!(verify_slice(
            &key(ROOT),
            &h(INTERMEDIATE_DETAILS),
            &h(INTERMEDIATE_SIG)
        ));
        assert!(verify_slice(
            &key(INTERMEDIATE_KEY),
            &h(LEAF_DETAILS),
            &h(LEAF_SIG)
        ));
    }

    #[test]
    fn wrong_key_or_tampering_fails() {
        assert!(!verify_slice(&key(ROOT), &h(LEAF_DETAILS), &h(LEAF_SIG)));
        let mut details = h(INTERMEDIATE_DETAILS);
        details[3] ^= 1;
        assert!(!verify_slice(&key(ROOT), &details, &h(INTERMEDIATE_SIG)));
        let mut sig = h(INTERMEDIATE_SIG);
        sig[10] ^= 1;
        assert!(!verify_slice(&key(ROOT), &h(INTERMEDIATE_DETAILS), &sig));
        assert!(!verify_slice(
            &key(ROOT),
            &h(INTERMEDIATE_DETAILS),
            &sig[..63]
        ));
    }

    #[test]
    fn sign_then_verify_round_trips_for_both_sign_bits() {
        let mut seen = [false; 2];
        for i in 0u8..32 {
            let kp = KeyPair::from_private([i.wrapping_mul(37).wrapping_add(1); 32]);
            let msg = [i; 33];
            let sig = sign(&kp, &msg, &[i; 64]);
            seen[usize::from(sig[63] >> 7)] = true;
            assert!(verify(kp.public(), &msg, &sig));
            assert!(!verify(kp.public(), &msg[..32], &sig));
        }
        assert_eq!(seen, [true, true], "both Edwards sign bits exercised");
    }

    #[test]
    fn non_canonical_s_is_rejected() {
        let kp = KeyPair::from_private([9u8; 32]);
        let mut sig = sign(&kp, b"m", &[0; 64]);
        // Setting bits 252..254 of s makes it >= l (non-canonical) without touching the sign bit.
        sig[63] |= 0x70;
        assert!(!verify(kp.public(), b"m", &sig));
    }
}
