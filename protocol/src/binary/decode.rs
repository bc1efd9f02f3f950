//! Bytes → node. Every length is checked against the remaining input before anything is
//! allocated, nesting is capped, and trailing bytes are an error, so hostile input costs at most
//! O(input) memory and time.

use std::borrow::Cow;

use bytes::Bytes;
use thiserror::Error;

use super::node::{AttrValue, Attrs, Content, Node, Str};
use super::tag;
use super::token;
use crate::jid::{Jid, Server};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("unexpected end of input")]
    UnexpectedEof,
    #[error("{0} trailing bytes after the node")]
    TrailingBytes(usize),
    #[error("invalid tag byte {0:#04x}")]
    InvalidTag(u8),
    #[error("expected a list header, found {0:#04x}")]
    InvalidListTag(u8),
    #[error("node has an empty list header")]
    EmptyNode,
    #[error("node tag is empty")]
    EmptyTag,
    #[error("invalid packed (nibble/hex) string")]
    InvalidPacked,
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("invalid JID: {0}")]
    InvalidJid(&'static str),
    #[error("nodes nested deeper than {0}")]
    TooDeep(usize),
    #[error("empty frame (no flags byte)")]
    EmptyFrame,
    #[error("zlib inflate failed")]
    Inflate,
    #[error("inflated node exceeds {0} bytes")]
    InflatedTooLarge(usize),
}

/// Resource caps for decoding untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Maximum node nesting (a real stanza is < 10 deep).
    pub max_depth: usize,
    /// Maximum size of a compressed node after inflating.
    pub max_inflated_len: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_depth: 64,
            max_inflated_len: 16 << 20,
        }
    }
}

/// Decodes exactly one node (no flags byte; see `unpack`).
pub fn decode(data: &[u8]) -> Result<Node, DecodeError> {
    decode_with(data, &DecodeLimits::default())
}

pub fn decode_with(data: &[u8], limits: &DecodeLimits) -> Result<Node, DecodeError> {
    let mut r = Reader {
        buf: data,
        pos: 0,
        max_depth: limits.max_depth,
    };
    let node = r.node(0)?;
    match r.remaining() {
        0 => Ok(node),
        n => Err(DecodeError::TrailingBytes(n)),
    }
}

/// How many JIDs may nest inside a JID's user/server (Baileys writes one level for `a@b@c`).
const MAX_JID_NESTING: usize = 4;

/// A decoded string-ish value (attribute values and non-binary content).
enum Value {
    Str(Str),
    Jid(Jid),
}

impl Value {
    fn into_string(self) -> Str {
        match self {
            Value::Str(s) => s,
            Value::Jid(j) => Cow::Owned(j.to_string()),
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::UnexpectedEof)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::UnexpectedEof)?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::UnexpectedEof)?;
        self.pos = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn binary_len(&mut self, tag: u8) -> Result<usize, DecodeError> {
        Ok(match tag {
            tag::BINARY_8 => usize::from(self.u8()?),
            tag::BINARY_20 => {
                let b = self.take(3)?;
                (usize::from(b[0] & 0x0f) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
            }
            tag::BINARY_32 => {
                let b = self.take(4)?;
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
            }
            t => return Err(DecodeError::InvalidTag(t)),
        })
    }

    fn list_size(&mut self, tag: u8) -> Result<usize, DecodeError> {
        match tag {
            tag::LIST_EMPTY => Ok(0),
            tag::LIST_8 => Ok(usize::from(self.u8()?)),
            tag::LIST_16 => Ok(usize::from(self.u16()?)),
            t => Err(DecodeError::InvalidListTag(t)),
        }
    }

    fn node(&mut self, depth: usize) -> Result<Node, DecodeError> {
        if depth >= self.max_depth {
            return Err(DecodeError::TooDeep(self.max_depth));
        }
        let t = self.u8()?;
        let n = self.list_size(t)?;
        if n == 0 {
            return Err(DecodeError::EmptyNode);
        }
        let t = self.u8()?;
        let tag = self.value(t)?.into_string();
        if tag.is_empty() {
            return Err(DecodeError::EmptyTag);
        }
        let attr_count = (n - 1) >> 1;
        // Each attribute takes at least two bytes; never trust the header beyond the input.
        let mut attrs = Vec::with_capacity(attr_count.min(self.remaining() / 2));
        for _ in 0..attr_count {
            let t = self.u8()?;
            let key = self.value(t)?.into_string();
            let t = self.u8()?;
            let value = match self.value(t)? {
                Value::Str(s) => AttrValue::Str(s),
                Value::Jid(j) => AttrValue::Jid(j),
            };
            attrs.push((key, value));
        }
        let content = if n % 2 == 0 {
            let t = self.u8()?;
            match t {
                tag::LIST_EMPTY | tag::LIST_8 | tag::LIST_16 => {
                    let count = self.list_size(t)?;
                    let mut children = Vec::with_capacity(count.min(self.remaining() / 2));
                    for _ in 0..count {
                        children.push(self.node(depth + 1)?);
                    }
                    Content::Nodes(children)
                }
                tag::BINARY_8 | tag::BINARY_20 | tag::BINARY_32 => {
                    let len = self.binary_len(t)?;
                    Content::Bytes(Bytes::copy_from_slice(self.take(len)?))
                }
                t => match self.value(t)? {
                    Value::Str(s) => Content::Str(s),
                    Value::Jid(j) => Content::Jid(j),
                },
            }
        } else {
            Content::None
        };
        Ok(Node {
            tag,
            attrs: Attrs(attrs),
            content,
        })
    }

    /// A string or JID value introduced by tag byte `t`.
    fn value(&mut self, t: u8) -> Result<Value, DecodeError> {
        self.value_nested(t, 0)
    }

    fn value_nested(&mut self, t: u8, nesting: usize) -> Result<Value, DecodeError> {
        if nesting > MAX_JID_NESTING {
            return Err(DecodeError::TooDeep(MAX_JID_NESTING));
        }
        match t {
            tag::JID_PAIR => self.jid_pair(nesting),
            tag::AD_JID => self.ad_jid(nesting).map(Value::Jid),
            tag::FB_JID => self.fb_jid(nesting).map(Value::Jid),
            tag::INTEROP_JID => self.interop_jid(nesting).map(Value::Jid),
            t => self.plain_string(t).map(Value::Str),
        }
    }

    /// A user or server inside a JID. Baileys writes a string with two `@` as a JID whose server
    /// is itself a JID, so nested JIDs are accepted (as their string form), a few levels deep.
    fn jid_part(&mut self, nesting: usize) -> Result<Str, DecodeError> {
        let t = self.u8()?;
        Ok(self.value_nested(t, nesting + 1)?.into_string())
    }

    /// Any string form except JIDs. LIST_EMPTY reads as "" (a nil value).
    fn plain_string(&mut self, t: u8) -> Result<Str, DecodeError> {
        match t {
            tag::LIST_EMPTY => Ok(Cow::Borrowed("")),
            1..=235 => token::single(t)
                .map(Cow::Borrowed)
                .ok_or(DecodeError::InvalidTag(t)),
            tag::DICTIONARY_0..=tag::DICTIONARY_3 => {
                let i = self.u8()?;
                token::double(t - tag::DICTIONARY_0, i)
                    .map(Cow::Borrowed)
                    .ok_or(DecodeError::InvalidTag(t))
            }
            tag::NIBBLE_8 | tag::HEX_8 => self.packed(t).map(Cow::Owned),
            tag::BINARY_8 | tag::BINARY_20 | tag::BINARY_32 => {
                let len = self.binary_len(t)?;
                let b = self.take(len)?;
                std::str::from_utf8(b)
                    .map(|s| Cow::Owned(s.to_owned()))
                    .map_err(|_| DecodeError::InvalidUtf8)
            }
            t => Err(DecodeError::InvalidTag(t)),
        }
    }

    fn packed(&mut self, t: u8) -> Result<String, DecodeError> {
        let start = self.u8()?;
        let n = usize::from(start & 0x7f);
        let odd = start & 0x80 != 0;
        if odd && n == 0 {
            return Err(DecodeError::InvalidPacked);
        }
        let bytes = self.take(n)?;
        let mut s = String::with_capacity(2 * n);
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == n;
            s.push(unpack_char(t, b >> 4)?);
            if odd && last {
                // The dropped nibble must be the filler, or re-encoding would not match.
                if b & 0x0f != 15 {
                    return Err(DecodeError::InvalidPacked);
                }
            } else {
                s.push(unpack_char(t, b & 0x0f)?);
            }
        }
        Ok(s)
    }

    /// JID_PAIR: user (or LIST_EMPTY), server. A server zapin does not model is returned as the
    /// plain string `user@server` rather than rejected.
    fn jid_pair(&mut self, nesting: usize) -> Result<Value, DecodeError> {
        let user = self.jid_part(nesting)?;
        let server = self.jid_part(nesting)?;
        if server.is_empty() {
            return Err(DecodeError::InvalidJid("empty server"));
        }
        Ok(match Server::from_name(&server) {
            Some(server) => Value::Jid(Jid::new(user, server)),
            None => Value::Str(Cow::Owned(format!("{user}@{server}"))),
        })
    }

    /// AD_JID: domain, device, user. Unknown domains are kept as a raw agent on PN (WhatsMeow).
    fn ad_jid(&mut self, nesting: usize) -> Result<Jid, DecodeError> {
        let domain = self.u8()?;
        let device = self.u8()?;
        let user = self.jid_part(nesting)?;
        let (server, agent) = match domain {
            0 => (Server::Pn, 0),
            1 => (Server::Lid, 0),
            128 => (Server::Hosted, 0),
            129 => (Server::HostedLid, 0),
            d => (Server::Pn, d),
        };
        Ok(Jid {
            user: user.into_owned(),
            agent,
            device: u16::from(device),
            integrator: 0,
            server,
        })
    }

    fn fb_jid(&mut self, nesting: usize) -> Result<Jid, DecodeError> {
        let user = self.jid_part(nesting)?;
        let device = self.u16()?;
        let server = self.jid_part(nesting)?;
        if server != Server::Msgr.as_str() {
            return Err(DecodeError::InvalidJid("FB_JID server is not msgr"));
        }
        Ok(Jid::with_device(user, device, Server::Msgr))
    }

    /// INTEROP_JID: user, device, integrator, then a server string that some writers omit. It
    /// is consumed only if it reads as "interop", otherwise left for the next field.
    fn interop_jid(&mut self, nesting: usize) -> Result<Jid, DecodeError> {
        let user = self.jid_part(nesting)?;
        let device = self.u16()?;
        let integrator = self.u16()?;
        let before = self.pos;
        let server = match self.u8() {
            Ok(t) => self.plain_string(t),
            Err(e) => Err(e),
        };
        match server {
            Ok(s) if s == Server::Interop.as_str() => {}
            _ => self.pos = before,
        }
        Ok(Jid {
            integrator,
            ..Jid::with_device(user, device, Server::Interop)
        })
    }
}

fn unpack_char(t: u8, code: u8) -> Result<char, DecodeError> {
    let c = match (t, code) {
        (_, 0..=9) => b'0' + code,
        (tag::NIBBLE_8, 10) => b'-',
        (tag::NIBBLE_8, 11) => b'.',
        (tag::HEX_8, 10..=15) => b'A' + code - 10,
        _ => return Err(DecodeError::InvalidPacked),
    };
    Ok(char::from(c))
}
