//! String ↔ token lookups over the generated dictionaries in `tokens.rs`.

use super::tokens::{DOUBLE_BYTE, HASH_SLOTS, MAX_PROBE, SINGLE_BYTE, TOKEN_SLOTS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// Single-byte token index (1…235).
    Single(u8),
    /// Double-byte dictionary (0…3) and index.
    Double(u8, u8),
}

fn fnv1a(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &x| {
        (h ^ u32::from(x)).wrapping_mul(0x0100_0193)
    })
}

fn decode_code(code: u16) -> Token {
    if code < 0x100 {
        Token::Single(code as u8)
    } else {
        Token::Double(((code >> 8) - 1) as u8, (code & 0xff) as u8)
    }
}

fn code_str(code: u16) -> Option<&'static str> {
    match decode_code(code) {
        Token::Single(i) => single(i),
        Token::Double(d, i) => double(d, i),
    }
}

/// Hash lookup in the generated open-addressing table: one FNV-1a pass, then at most
/// `MAX_PROBE + 1` slots, each compared against the token it names. The encoder calls this for
/// every string it writes, so it has to beat a binary search over ~1260 strings.
pub(crate) fn lookup(s: &str) -> Option<Token> {
    // Longest token is well under this; skip hashing long strings (keys, base64, text).
    if s.is_empty() || s.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut slot = fnv1a(s.as_bytes()) as usize & (HASH_SLOTS - 1);
    for _ in 0..=MAX_PROBE {
        let code = *TOKEN_SLOTS.get(slot)?;
        if code == 0 {
            return None;
        }
        if code_str(code) == Some(s) {
            return Some(decode_code(code));
        }
        slot = (slot + 1) & (HASH_SLOTS - 1);
    }
    None
}

/// Upper bound on token length (checked by a test against the tables).
const MAX_TOKEN_LEN: usize = 64;

/// Single-byte token `index`; `None` for 0 and anything past the table.
pub(crate) fn single(index: u8) -> Option<&'static str> {
    if index == 0 {
        return None;
    }
    SINGLE_BYTE.get(usize::from(index)).copied()
}

pub(crate) fn double(dict: u8, index: u8) -> Option<&'static str> {
    DOUBLE_BYTE
        .get(usize::from(dict))
        .and_then(|t| t.get(usize::from(index)))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shapes_match_dictionary_version_3() {
        assert_eq!(SINGLE_BYTE.len(), 236);
        assert_eq!(SINGLE_BYTE[0], "");
        assert_eq!(SINGLE_BYTE[235], "screen_height");
        let all = SINGLE_BYTE[1..].iter().chain(DOUBLE_BYTE.iter().flatten());
        assert!(
            all.clone()
                .all(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
        );
        assert_eq!(
            TOKEN_SLOTS.iter().filter(|&&c| c != 0).count(),
            235 + 4 * 256
        );
        assert_eq!(all.count(), 235 + 4 * 256);
    }

    #[test]
    fn every_token_looks_up_to_its_own_index() {
        for i in 1..=235u8 {
            let s = single(i).unwrap();
            assert_eq!(lookup(s), Some(Token::Single(i)), "{s}");
        }
        for d in 0..4u8 {
            for i in 0..=255u8 {
                let s = double(d, i).unwrap();
                assert_eq!(lookup(s), Some(Token::Double(d, i)), "{s}");
            }
        }
        assert_eq!(lookup(""), None);
        assert_eq!(lookup(&"x".repeat(200)), None);
        assert_eq!(lookup("messag"), None);
        assert_eq!(lookup("messagee"), None);
        assert_eq!(lookup("pair-success"), None);
    }

    #[test]
    fn spot_checks_from_the_reference() {
        for (i, s) in [
            (3, "s.whatsapp.net"),
            (19, "message"),
            (76, "success"),
            (230, "device-identity"),
        ] {
            assert_eq!(single(i), Some(s));
        }
        for (d, i, s) in [
            (0, 0x00, "read-self"),
            (0, 0x5f, "phash"),
            (1, 0x50, "ref"),
            (1, 0xee, "pair-device"),
            (2, 0x3c, "failure"),
        ] {
            assert_eq!(double(d, i), Some(s));
        }
        assert_eq!(single(236), None);
        assert_eq!(single(0), None);
    }
}
