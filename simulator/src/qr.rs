//! The QR string a companion shows (wa-protocol.md §5.2), as the mock phone reads it.
//!
//! `https://wa.me/settings/linked_devices#` (optional: whatsapp-rust omits it) followed by
//! `ref,noiseKeyB64,identityKeyB64,advSecretB64[,platform]`, keys in standard padded base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zapin_protocol::crypto::PublicKey;

pub const QR_PREFIX: &str = "https://wa.me/settings/linked_devices#";

/// Longest ref accepted; real refs are a few dozen ASCII bytes.
const MAX_REF_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrData {
    pub pairing_ref: String,
    pub noise_static: PublicKey,
    pub identity: PublicKey,
    pub adv_secret: [u8; 32],
    /// Field 5, when present: one of `0-9`, `c`, `d`, `e`, `f`.
    pub platform: Option<char>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("QR string has {0} comma-separated fields, expected 4 or 5")]
    FieldCount(usize),
    #[error("QR ref is empty, longer than {MAX_REF_LEN} bytes, or not printable ASCII")]
    BadRef,
    #[error("QR field {field} is not standard base64: {reason}")]
    Base64 { field: &'static str, reason: String },
    #[error("QR field {field} has {len} bytes, expected 32")]
    KeyLength { field: &'static str, len: usize },
    #[error("QR platform {0:?} is not one of 0-9, c, d, e, f")]
    Platform(String),
}

pub fn parse_qr(qr: &str) -> Result<QrData, QrError> {
    let body = qr.trim().strip_prefix(QR_PREFIX).unwrap_or(qr.trim());
    let fields: Vec<&str> = body.split(',').collect();
    let (pairing_ref, noise, identity, adv, platform) = match fields.as_slice() {
        [r, n, i, a] => (*r, *n, *i, *a, None),
        [r, n, i, a, p] => (*r, *n, *i, *a, Some(*p)),
        other => return Err(QrError::FieldCount(other.len())),
    };
    if pairing_ref.is_empty()
        || pairing_ref.len() > MAX_REF_LEN
        || !pairing_ref.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(QrError::BadRef);
    }
    let noise_static = PublicKey(key32("noise key", noise)?);
    let identity = PublicKey(key32("identity key", identity)?);
    let adv_secret = key32("adv secret", adv)?;
    let platform = match platform {
        None => None,
        Some(p) => {
            let mut chars = p.chars();
            match (chars.next(), chars.next()) {
                (Some(c @ ('0'..='9' | 'c' | 'd' | 'e' | 'f')), None) => Some(c),
                _ => return Err(QrError::Platform(p.to_string())),
            }
        }
    };
    Ok(QrData {
        pairing_ref: pairing_ref.to_string(),
        noise_static,
        identity,
        adv_secret,
        platform,
    })
}

fn key32(field: &'static str, b64: &str) -> Result<[u8; 32], QrError> {
    let bytes = STANDARD.decode(b64).map_err(|e| QrError::Base64 {
        field,
        reason: e.to_string(),
    })?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| QrError::KeyLength { field, len })
}

/// The platform name the control API reports for a QR platform id (§5.2 field 5).
pub fn platform_name(id: Option<char>) -> &'static str {
    match id {
        Some('1') => "Chrome",
        Some('2') => "Edge",
        Some('3') => "Firefox",
        Some('4') => "IE",
        Some('5') => "Opera",
        Some('6') => "Safari",
        Some('7') => "Electron",
        Some('8') => "UWP",
        Some('9') => "Other web client",
        Some('c') => "macOS",
        Some('d') => "Android tablet",
        Some('e') => "Android",
        Some('f') => "Android (ambiguous)",
        _ => "unknown",
    }
}

/// Builds a QR string the way Baileys and whatsmeow do; used by tests and by the demo tooling.
pub fn format_qr(
    pairing_ref: &str,
    noise_static: &PublicKey,
    identity: &PublicKey,
    adv_secret: &[u8; 32],
    platform: Option<char>,
) -> String {
    let mut s = format!(
        "{QR_PREFIX}{pairing_ref},{},{},{}",
        STANDARD.encode(noise_static.as_bytes()),
        STANDARD.encode(identity.as_bytes()),
        STANDARD.encode(adv_secret)
    );
    if let Some(p) = platform {
        s.push(',');
        s.push(p);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> String {
        format_qr(
            "2@abcDEF+/=",
            &PublicKey([1; 32]),
            &PublicKey([2; 32]),
            &[3; 32],
            Some('1'),
        )
    }

    #[test]
    fn parses_with_and_without_prefix_and_platform() {
        let q = parse_qr(&good()).unwrap();
        assert_eq!(q.pairing_ref, "2@abcDEF+/=");
        assert_eq!(q.noise_static, PublicKey([1; 32]));
        assert_eq!(q.identity, PublicKey([2; 32]));
        assert_eq!(q.adv_secret, [3; 32]);
        assert_eq!(q.platform, Some('1'));

        let bare = good().strip_prefix(QR_PREFIX).unwrap().to_string();
        assert_eq!(parse_qr(&bare).unwrap(), q);

        let four = good().rsplit_once(',').unwrap().0.to_string();
        assert_eq!(parse_qr(&four).unwrap().platform, None);
    }

    #[test]
    fn rejects_malformed_variants() {
        let g = good();
        let parts: Vec<&str> = g.strip_prefix(QR_PREFIX).unwrap().split(',').collect();
        assert_eq!(parse_qr(""), Err(QrError::FieldCount(1)));
        assert!(matches!(parse_qr("a,b,c"), Err(QrError::FieldCount(3))));
        assert!(matches!(
            parse_qr(&format!("{g},x")),
            Err(QrError::FieldCount(6))
        ));
        let with = |i: usize, v: &str| {
            let mut p = parts.clone();
            p[i] = v;
            p.join(",")
        };
        assert!(matches!(parse_qr(&with(0, "")), Err(QrError::BadRef)));
        assert!(matches!(parse_qr(&with(0, "a b")), Err(QrError::BadRef)));
        assert!(matches!(
            parse_qr(&with(1, "!!notbase64")),
            Err(QrError::Base64 { .. })
        ));
        assert!(matches!(
            parse_qr(&with(2, "AAAA")),
            Err(QrError::KeyLength { len: 3, .. })
        ));
        assert!(matches!(
            parse_qr(&with(3, &STANDARD.encode([0u8; 33]))),
            Err(QrError::KeyLength { len: 33, .. })
        ));
        assert!(matches!(parse_qr(&with(4, "z")), Err(QrError::Platform(_))));
        assert!(matches!(
            parse_qr(&with(4, "12")),
            Err(QrError::Platform(_))
        ));
        assert!(matches!(parse_qr(&with(4, "")), Err(QrError::Platform(_))));
    }
}
