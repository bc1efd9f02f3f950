//! String ↔ token lookups over the generated dictionaries in `tokens.rs`.

use super::tokens::{DOUBLE_BYTE, SINGLE_BYTE, SORTED};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// Single-byte token index (1…235).
    Single(u8),
    /// Double-byte dictionary (0…3) and index.
    Double(u8, u8),
}

/// Binary search over the byte-sorted table: ~11 comparisons for ~1260 tokens, no hashing deps.
pub(crate) fn lookup(s: &str) -> Option<Token> {
    let i = SORTED
        .binary_search_by(|(t, _)| t.as_bytes().cmp(s.as_bytes()))
        .ok()?;
    let (_, code) = SORTED.get(i)?;
    let code = *code;
    Some(if code < 0x100 {
        Token::Single(code as u8)
    } else {
        Token::Double(((code >> 8) - 1) as u8, (code & 0xff) as u8)
    })
}

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
        assert_eq!(SORTED.len(), 235 + 4 * 256);
        assert!(
            SORTED
                .windows(2)
                .all(|w| w[0].0.as_bytes() < w[1].0.as_bytes())
        );
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
