//! Node → bytes. Strings are written in the order every client uses (token, double-byte token,
//! NIBBLE_8, HEX_8, JID, raw), and a string goes out as a JID only if it parses and prints back
//! identically, so the encoder never emits something the decoder would read differently.

use thiserror::Error;

use super::node::{AttrValue, Content, Node};
use super::tag;
use super::token;
use crate::jid::{Jid, Server};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("node tag is empty")]
    EmptyTag,
    #[error("node has too many attributes ({0})")]
    TooManyAttrs(usize),
    #[error("list has too many children ({0}, max 65535)")]
    TooManyChildren(usize),
    #[error("byte string too long ({0})")]
    TooLong(usize),
    #[error("device {device} of {jid} does not fit its wire form")]
    DeviceOutOfRange { jid: String, device: u16 },
}

/// Encodes a node (no leading flags byte; see `pack`).
pub fn encode(node: &Node) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    encode_into(node, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `node` to `out`.
pub fn encode_into(node: &Node, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    Writer { out }.node(node)
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

const PACKED_MAX: usize = 127;

fn nibble_code(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'-' => Some(10),
        b'.' => Some(11),
        _ => None,
    }
}

fn hex_code(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl Writer<'_> {
    fn node(&mut self, node: &Node) -> Result<(), EncodeError> {
        if node.tag.is_empty() {
            return Err(EncodeError::EmptyTag);
        }
        let has_content = !matches!(node.content, Content::None);
        let n = 1 + 2 * node.attrs.len() + usize::from(has_content);
        if n > 0xffff {
            return Err(EncodeError::TooManyAttrs(node.attrs.len()));
        }
        self.list_start(n);
        self.string(&node.tag)?;
        for (k, v) in node.attrs.iter() {
            self.string(k)?;
            match v {
                AttrValue::Str(s) => self.string(s)?,
                AttrValue::Jid(j) => self.jid(j)?,
            }
        }
        match &node.content {
            Content::None => {}
            Content::Nodes(children) => {
                if children.len() > 0xffff {
                    return Err(EncodeError::TooManyChildren(children.len()));
                }
                self.list_start(children.len());
                for c in children {
                    self.node(c)?;
                }
            }
            Content::Bytes(b) => self.raw(b)?,
            Content::Str(s) => self.string(s)?,
            Content::Jid(j) => self.jid(j)?,
        }
        Ok(())
    }

    fn list_start(&mut self, n: usize) {
        if n == 0 {
            self.out.push(tag::LIST_EMPTY);
        } else if n < 256 {
            self.out.extend_from_slice(&[tag::LIST_8, n as u8]);
        } else {
            self.out.push(tag::LIST_16);
            self.out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }

    fn raw(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let len = b.len();
        if len < 256 {
            self.out.extend_from_slice(&[tag::BINARY_8, len as u8]);
        } else if len < 1 << 20 {
            let l = (len as u32).to_be_bytes();
            self.out
                .extend_from_slice(&[tag::BINARY_20, l[1] & 0x0f, l[2], l[3]]);
        } else {
            let l = u32::try_from(len).map_err(|_| EncodeError::TooLong(len))?;
            self.out.push(tag::BINARY_32);
            self.out.extend_from_slice(&l.to_be_bytes());
        }
        self.out.extend_from_slice(b);
        Ok(())
    }

    /// Token, double token, nibble, hex, or raw: everything except the JID step.
    /// Returns false if only the raw form applies (not yet written).
    fn string_no_jid_or_raw(&mut self, s: &str) -> bool {
        if s.is_empty() {
            return false;
        }
        match token::lookup(s) {
            Some(token::Token::Single(i)) => {
                self.out.push(i);
                return true;
            }
            Some(token::Token::Double(d, i)) => {
                self.out.extend_from_slice(&[tag::DICTIONARY_0 + d, i]);
                return true;
            }
            None => {}
        }
        let b = s.as_bytes();
        if b.len() <= PACKED_MAX {
            if b.iter().all(|&c| nibble_code(c).is_some()) {
                self.packed(tag::NIBBLE_8, b, nibble_code);
                return true;
            }
            if b.iter().all(|&c| hex_code(c).is_some()) {
                self.packed(tag::HEX_8, b, hex_code);
                return true;
            }
        }
        false
    }

    fn string(&mut self, s: &str) -> Result<(), EncodeError> {
        if self.string_no_jid_or_raw(s) {
            return Ok(());
        }
        if s.contains('@')
            && let Ok(jid) = s.parse::<Jid>()
            && jid.to_string() == s
            && self.jid_fits(&jid)
        {
            return self.jid(&jid);
        }
        self.raw(s.as_bytes())
    }

    /// A JID's own parts are never JIDs themselves (the decoder rejects nesting).
    fn plain_string(&mut self, s: &str) -> Result<(), EncodeError> {
        if self.string_no_jid_or_raw(s) {
            return Ok(());
        }
        self.raw(s.as_bytes())
    }

    fn packed(&mut self, tag: u8, b: &[u8], code: fn(u8) -> Option<u8>) {
        let odd = b.len() % 2 == 1;
        let n = b.len().div_ceil(2) as u8; // ≤ 64
        self.out.push(tag);
        self.out.push(n | if odd { 0x80 } else { 0 });
        for pair in b.chunks(2) {
            let hi = pair.first().and_then(|&c| code(c)).unwrap_or(15);
            let lo = pair.get(1).and_then(|&c| code(c)).unwrap_or(15);
            self.out.push(hi << 4 | lo);
        }
    }

    fn jid_fits(&self, jid: &Jid) -> bool {
        !(uses_ad_jid(jid) && jid.device > 0xff)
    }

    fn jid(&mut self, jid: &Jid) -> Result<(), EncodeError> {
        match jid.server {
            Server::Msgr => {
                self.out.push(tag::FB_JID);
                self.plain_string(&jid.user)?;
                self.out.extend_from_slice(&jid.device.to_be_bytes());
                self.plain_string(Server::Msgr.as_str())
            }
            Server::Interop => {
                // WhatsMeow writes the trailing server, WhatsApp Web and whatsapp-rust omit it;
                // every reader accepts it, so write it.
                self.out.push(tag::INTEROP_JID);
                self.plain_string(&jid.user)?;
                self.out.extend_from_slice(&jid.device.to_be_bytes());
                self.out.extend_from_slice(&jid.integrator.to_be_bytes());
                self.plain_string(Server::Interop.as_str())
            }
            server if uses_ad_jid(jid) => {
                let device =
                    u8::try_from(jid.device).map_err(|_| EncodeError::DeviceOutOfRange {
                        jid: jid.to_string(),
                        device: jid.device,
                    })?;
                let domain = if jid.agent != 0 {
                    jid.agent
                } else {
                    server.ad_domain().unwrap_or(0)
                };
                self.out.extend_from_slice(&[tag::AD_JID, domain, device]);
                self.plain_string(&jid.user)
            }
            server => {
                self.out.push(tag::JID_PAIR);
                if jid.user.is_empty() {
                    self.out.push(tag::LIST_EMPTY);
                } else {
                    self.plain_string(&jid.user)?;
                }
                self.plain_string(server.as_str())
            }
        }
    }
}

/// AD_JID only for a device (or raw agent) on the four servers that have a domain byte, as
/// whatsapp-rust does; device 0 goes out as JID_PAIR.
fn uses_ad_jid(jid: &Jid) -> bool {
    jid.server.ad_domain().is_some()
        && (jid.device > 0 || (jid.agent != 0 && jid.server == Server::Pn))
}
