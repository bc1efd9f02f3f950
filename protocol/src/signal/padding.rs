//! WhatsApp's plaintext padding for `enc v=2` (wa-protocol.md §7.7): `n` bytes of value `n`.

use rand_core::CryptoRng;

use super::SignalError;

/// Appends 1..=16 padding bytes of value n, uniform like Baileys and whatsapp-rust.
pub fn pad<R: CryptoRng + ?Sized>(message: &[u8], rng: &mut R) -> Vec<u8> {
    let mut b = [0u8; 1];
    rng.fill_bytes(&mut b);
    let n = (b[0] & 0x0f) + 1;
    let mut out = Vec::with_capacity(message.len() + usize::from(n));
    out.extend_from_slice(message);
    out.resize(message.len() + usize::from(n), n);
    out
}

/// Strips the padding. Strict: n must be non-zero, fit, and every padding byte must equal n
/// (every official client pads that way; only WhatsApp's own `v=3` payloads are unpadded).
pub fn unpad(padded: &[u8]) -> Result<&[u8], SignalError> {
    let n = usize::from(*padded.last().ok_or(SignalError::BadPadding)?);
    if n == 0 || n > padded.len() {
        return Err(SignalError::BadPadding);
    }
    let (body, tail) = padded.split_at(padded.len() - n);
    if tail.iter().any(|&b| usize::from(b) != n) {
        return Err(SignalError::BadPadding);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn pad_then_unpad_round_trips_with_1_to_16_bytes() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut seen = [false; 17];
        for _ in 0..400 {
            let p = pad(b"msg", &mut rng);
            let n = p.len() - 3;
            assert!((1..=16).contains(&n));
            seen[n] = true;
            assert_eq!(unpad(&p).unwrap(), b"msg");
        }
        assert!(seen[1..].iter().all(|s| *s));
    }

    #[test]
    fn unpad_rejects_bad_padding() {
        assert_eq!(unpad(&[]), Err(SignalError::BadPadding));
        assert_eq!(unpad(&[1, 2, 0]), Err(SignalError::BadPadding));
        assert_eq!(unpad(&[5, 5]), Err(SignalError::BadPadding));
        assert_eq!(unpad(&[1, 3, 2, 3]), Err(SignalError::BadPadding));
        assert_eq!(unpad(&[2, 2]).unwrap(), b"");
    }
}
