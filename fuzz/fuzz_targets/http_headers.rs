//! Header values the gateway parses before any key is checked: the Basic credentials of
//! `/metrics` auth and a caller's `X-Zapin-Request-Id`. No panic; credentials round-trip
//! through their encoding; an accepted request id is always a valid header value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_compat_evolution::headers::{basic_credentials, is_well_formed_request_id};

fuzz_target!(|data: &[u8]| {
    if let Some((user, password)) = basic_credentials(data) {
        assert!(!user.contains(&b':'), "the user ends at the first colon");
        // Reassembled and parsed again, the same pair comes back.
        let mut joined = user.clone();
        joined.push(b':');
        joined.extend_from_slice(&password);
        let header = format!("Basic {}", base64_standard(&joined));
        assert_eq!(
            basic_credentials(header.as_bytes()),
            Some((user, password))
        );
    }
    if is_well_formed_request_id(data) {
        assert!(data.iter().all(|b| b.is_ascii_graphic()));
        assert!(std::str::from_utf8(data).is_ok());
    }
});

/// Standard base64 with padding (a few lines rather than one more fuzz dependency).
fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
