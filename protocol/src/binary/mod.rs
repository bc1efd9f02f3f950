//! The binary node codec ("WAP" binary XML) used inside every post-handshake frame: the node
//! model, the encoder and decoder, the token dictionaries, and the flags byte
//! (`pack`/`unpack`, including zlib-compressed frames).
//!
//! Wire reference: wa-protocol.md §4. Quirks chosen here (see encode.rs/decode.rs): the empty
//! string is written `FC 00` and both `FC 00`/`FF 00` are read; AD_JID only for devices > 0;
//! INTEROP_JID is written with its server; JID-looking strings become JIDs only if they print
//! back identically.

mod decode;
mod encode;
mod node;
mod token;
#[rustfmt::skip]
mod tokens;

#[cfg(test)]
mod tests;

use std::io::Read;

pub use decode::{DecodeError, DecodeLimits, decode, decode_with};
pub use encode::{EncodeError, encode, encode_into};
pub use node::{AttrValue, Attrs, Content, Node, Str};

/// Tag bytes (§4.2).
pub mod tag {
    pub const LIST_EMPTY: u8 = 0;
    pub const DICTIONARY_0: u8 = 236;
    pub const DICTIONARY_3: u8 = 239;
    pub const INTEROP_JID: u8 = 245;
    pub const FB_JID: u8 = 246;
    pub const AD_JID: u8 = 247;
    pub const LIST_8: u8 = 248;
    pub const LIST_16: u8 = 249;
    pub const JID_PAIR: u8 = 250;
    pub const HEX_8: u8 = 251;
    pub const BINARY_8: u8 = 252;
    pub const BINARY_20: u8 = 253;
    pub const BINARY_32: u8 = 254;
    pub const NIBBLE_8: u8 = 255;
}

/// Flags bit meaning "the rest is a zlib stream".
pub const FLAG_COMPRESSED: u8 = 0x02;

/// Encodes a node as frame plaintext: flags byte 0x00 (zapin never compresses), then the node.
pub fn pack(node: &Node) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    out.push(0);
    encode_into(node, &mut out)?;
    Ok(out)
}

/// Decodes frame plaintext (flags byte + node) with default limits.
pub fn unpack(data: &[u8]) -> Result<Node, DecodeError> {
    unpack_with(data, &DecodeLimits::default())
}

/// Decodes frame plaintext; if `flags & 2` the rest is inflated (RFC 1950 zlib) first, up to
/// `limits.max_inflated_len` bytes.
pub fn unpack_with(data: &[u8], limits: &DecodeLimits) -> Result<Node, DecodeError> {
    let (&flags, rest) = data.split_first().ok_or(DecodeError::EmptyFrame)?;
    if flags & FLAG_COMPRESSED == 0 {
        return decode_with(rest, limits);
    }
    let cap = limits.max_inflated_len;
    let mut inflated = Vec::new();
    // Read one byte past the cap so "exactly at the cap" and "over it" can be told apart
    // without ever holding more than cap + 1 bytes.
    flate2::read::ZlibDecoder::new(rest)
        .take(cap as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|_| DecodeError::Inflate)?;
    if inflated.len() > cap {
        return Err(DecodeError::InflatedTooLarge(cap));
    }
    decode_with(&inflated, limits)
}
