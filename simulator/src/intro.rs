//! The connection header a client sends once before its first frame (wa-protocol.md §1.2, §1.3):
//! an optional edge-routing pre-intro `ED 00 01 len24 data`, then `57 41 06 03`.

/// `WA`, magic 6, dictionary version 3.
pub const WA_HEADER: [u8; 4] = [0x57, 0x41, 0x06, 0x03];
/// `ED`, 0, 1: starts the edge-routing pre-intro.
pub const ED_PREFIX: [u8; 4] = [0x45, 0x44, 0x00, 0x01];
/// Routing info is a few dozen bytes in practice; the wire allows 2^24-1, which a server need not
/// buffer before it has even seen the header.
pub const MAX_ROUTING_INFO: usize = 4096;

/// A complete intro at the start of the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intro {
    pub routing_info: Option<Vec<u8>>,
    /// Bytes the intro took; frames start right after.
    pub consumed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntroError {
    #[error("connection header is {0:02x?}, expected 57 41 06 03")]
    BadHeader(Vec<u8>),
    #[error("edge-routing pre-intro starts with {0:02x?}, expected 45 44 00 01")]
    BadRoutingPrefix(Vec<u8>),
    #[error("edge-routing info is {0} bytes, more than the {MAX_ROUTING_INFO} accepted")]
    RoutingTooLong(usize),
}

/// Parses the intro from the bytes received so far. `Ok(None)`: not enough bytes yet. Rejects as
/// early as possible: a stream whose first byte is wrong fails on that byte.
pub fn parse_intro(buf: &[u8]) -> Result<Option<Intro>, IntroError> {
    let (routing_info, rest, offset) = if buf.first() == Some(&ED_PREFIX[0]) {
        let seen = &buf[..buf.len().min(4)];
        if seen != &ED_PREFIX[..seen.len()] {
            return Err(IntroError::BadRoutingPrefix(seen.to_vec()));
        }
        let Some(len_bytes) = buf.get(4..7) else {
            return Ok(None);
        };
        let len = usize::from(len_bytes[0]) << 16
            | usize::from(len_bytes[1]) << 8
            | usize::from(len_bytes[2]);
        if len > MAX_ROUTING_INFO {
            return Err(IntroError::RoutingTooLong(len));
        }
        let Some(info) = buf.get(7..7 + len) else {
            return Ok(None);
        };
        (Some(info.to_vec()), &buf[7 + len..], 7 + len)
    } else {
        (None, buf, 0)
    };
    let seen = &rest[..rest.len().min(4)];
    if seen != &WA_HEADER[..seen.len()] {
        return Err(IntroError::BadHeader(seen.to_vec()));
    }
    if seen.len() < 4 {
        return Ok(None);
    }
    Ok(Some(Intro {
        routing_info,
        consumed: offset + 4,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_header_byte_by_byte() {
        let stream = [0x57, 0x41, 0x06, 0x03, 0x00, 0x00, 0x01];
        for n in 0..4 {
            assert_eq!(parse_intro(&stream[..n]), Ok(None), "prefix {n}");
        }
        assert_eq!(
            parse_intro(&stream),
            Ok(Some(Intro {
                routing_info: None,
                consumed: 4
            }))
        );
    }

    #[test]
    fn routing_pre_intro() {
        let mut s = vec![0x45, 0x44, 0x00, 0x01, 0x00, 0x00, 0x02, 0xAA, 0xBB];
        s.extend_from_slice(&WA_HEADER);
        for n in 0..s.len() {
            assert_eq!(parse_intro(&s[..n]), Ok(None), "prefix {n}");
        }
        let intro = parse_intro(&s).unwrap().unwrap();
        assert_eq!(intro.routing_info.as_deref(), Some(&[0xAA, 0xBB][..]));
        assert_eq!(intro.consumed, s.len());
    }

    #[test]
    fn rejects_wrong_bytes_early() {
        assert!(matches!(parse_intro(b"G"), Err(IntroError::BadHeader(_))));
        assert!(matches!(
            parse_intro(b"GET "),
            Err(IntroError::BadHeader(_))
        ));
        assert!(matches!(
            parse_intro(&[0x57, 0x41, 0x05, 0x03]),
            Err(IntroError::BadHeader(_))
        ));
        assert!(matches!(
            parse_intro(&[0x45, 0x44, 0x01]),
            Err(IntroError::BadRoutingPrefix(_))
        ));
        assert!(matches!(
            parse_intro(&[0x45, 0x44, 0x00, 0x01, 0xFF, 0xFF, 0xFF]),
            Err(IntroError::RoutingTooLong(0xFF_FFFF))
        ));
        let mut s = vec![0x45, 0x44, 0x00, 0x01, 0x00, 0x00, 0x00];
        s.extend_from_slice(b"WA\x06\x04");
        assert!(matches!(parse_intro(&s), Err(IntroError::BadHeader(_))));
    }
}
