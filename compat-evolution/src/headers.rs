//! Header values zapin reads from callers besides `apikey`: the Basic credentials of Evolution's
//! metrics auth (`METRICS_AUTH_REQUIRED`) and a caller's `X-Zapin-Request-Id`.
//!
//! Both arrive from anyone who can reach the port, before any key is checked, so they are
//! parsed here without I/O and fuzzed (`fuzz/fuzz_targets/http_headers.rs`).

use base64::Engine as _;

/// Longest caller-chosen request id kept as is.
pub const REQUEST_ID_MAX: usize = 128;

/// The user and password of an `Authorization: Basic <base64(user:password)>` value; `None` for
/// another scheme or a malformed value. The scheme is case-insensitive (RFC 7617); the password
/// may contain `:`.
pub fn basic_credentials(authorization: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (scheme, rest) = authorization.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let encoded = rest.trim_ascii();
    let mut decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let password = decoded.split_off(colon + 1);
    decoded.truncate(colon);
    Some((decoded, password))
}

/// Whether a caller's request id may be echoed and logged as is: 1 to [`REQUEST_ID_MAX`]
/// characters of `A-Z a-z 0-9 - _ . :` (UUIDs, ULIDs, trace ids). Anything else could carry line
/// breaks or markup into logs, and is replaced by a fresh id.
pub fn is_well_formed_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= REQUEST_ID_MAX
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_of_rfc_7617() {
        // "Aladdin:open sesame"
        let (user, password) = basic_credentials(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!(user, b"Aladdin");
        assert_eq!(password, b"open sesame");
        // Scheme in any case, padding spaces; a password with colons; an empty password.
        let (user, password) = basic_credentials(b"bAsIc   dTpwOnc6  ").unwrap();
        assert_eq!(
            (user.as_slice(), password.as_slice()),
            (&b"u"[..], &b"p:w:"[..])
        );
        let (user, password) = basic_credentials(b"Basic dTo=").unwrap();
        assert_eq!(
            (user.as_slice(), password.as_slice()),
            (&b"u"[..], &b""[..])
        );
        for bad in [
            &b""[..],
            b"Basic",
            b"Basic ",
            b"Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            b"Basic !!!!",
            b"Basic dXNlcg==", // "user": no colon
            b"Basi\xc3\xa9 dTpw",
        ] {
            assert_eq!(basic_credentials(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn request_ids() {
        assert!(is_well_formed_request_id(
            b"0b7c6f9e-2a51-4c3e-9d0f-1a2b3c4d5e6f"
        ));
        assert!(is_well_formed_request_id(b"trace:abc.1_2"));
        assert!(is_well_formed_request_id(&[b'x'; REQUEST_ID_MAX]));
        assert!(!is_well_formed_request_id(&[b'x'; REQUEST_ID_MAX + 1]));
        assert!(!is_well_formed_request_id(b""));
        assert!(!is_well_formed_request_id(b"a b"));
        assert!(!is_well_formed_request_id(b"line\nbreak"));
        assert!(!is_well_formed_request_id("é".as_bytes()));
    }
}
