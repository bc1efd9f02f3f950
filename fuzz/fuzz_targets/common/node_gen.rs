//! Builds a `Node` tree from fuzz bytes. Tags, attribute names and most values are drawn from
//! dictionaries of the stanzas the parsers read, so mutations reach deep attributes that random
//! binary-XMPP bytes would almost never spell; an escape hatch still allows arbitrary strings.
//! The first input byte picks whether the bytes are instead decoded with the real node decoder
//! (`binary::unpack`), so wire-shaped seeds work too.

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use zapin_protocol::binary::{self, AttrValue, Attrs, Content, Node};
use zapin_protocol::jid::Jid;

const TAGS: &[&str] = &[
    "iq",
    "message",
    "receipt",
    "ack",
    "notification",
    "presence",
    "chatstate",
    "list",
    "item",
    "user",
    "usync",
    "devices",
    "device-list",
    "device",
    "key-index-list",
    "lid",
    "contact",
    "list",
    "group",
    "participant",
    "description",
    "body",
    "subject",
    "add",
    "remove",
    "promote",
    "demote",
    "leave",
    "create",
    "announcement",
    "not_announcement",
    "locked",
    "unlocked",
    "ephemeral",
    "not_ephemeral",
    "membership_approval_mode",
    "registration",
    "type",
    "identity",
    "skey",
    "key",
    "id",
    "value",
    "signature",
    "keys",
    "device-identity",
    "error",
    "enc",
    "pair-device",
    "ref",
    "pair-success",
    "platform",
    "biz",
    "composing",
    "paused",
    "retry",
    "stream:error",
    "conflict",
    "failure",
    "success",
    "link_code_companion_reg",
    "w:g2",
    "participants",
    "query",
    "context",
    "mode",
    "side_list",
    "result",
    "status",
    "text",
    "companion_platform_display",
    "digest",
    "edge_routing",
    "routing_info",
    "hash",
    "to",
    "link_code_pairing_ref",
    "link_code_pairing_wrapped_primary_ephemeral_pub",
    "primary_identity_pub",
    "pair-device-sign",
    "remove-companion-device",
    "rotate",
    "count",
];

const KEYS: &[&str] = &[
    "id",
    "type",
    "from",
    "to",
    "participant",
    "recipient",
    "t",
    "class",
    "error",
    "phash",
    "jid",
    "lid",
    "pn",
    "device",
    "key-index",
    "ts",
    "hash",
    "code",
    "text",
    "xmlns",
    "v",
    "count",
    "state",
    "media",
    "last",
    "notify",
    "subject",
    "s_o",
    "s_t",
    "creator",
    "creation",
    "size",
    "admin",
    "addressing_mode",
    "author",
    "participant_pn",
    "participant_lid",
    "sender_lid",
    "sender_pn",
    "name",
    "reason",
    "category",
    "offline",
    "edit",
    "expiration",
    "sid",
    "context",
    "mode",
    "index",
    "contact",
    "status",
    "value",
    "version",
    "count",
    "retry",
    "registration",
    "conflict",
    "ref",
    "phone_number",
    "is_hosted",
    "val",
    "stage",
    "key-index",
];

const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "2",
    "5",
    "401",
    "403",
    "409",
    "440",
    "500",
    "503",
    "515",
    "516",
    "18446744073709551616",
    "-1",
    "4294967296",
    "65536",
    "read",
    "read-self",
    "played",
    "played-self",
    "sender",
    "inactive",
    "retry",
    "server-error",
    "delivery",
    "message",
    "receipt",
    "result",
    "error",
    "get",
    "set",
    "available",
    "unavailable",
    "composing",
    "paused",
    "audio",
    "w:g2",
    "usync",
    "encrypt",
    "pkmsg",
    "msg",
    "skmsg",
    "text",
    "media",
    "in",
    "out",
    "superadmin",
    "admin",
    "lid",
    "pn",
    "replaced",
    "device_removed",
    "true",
    "false",
    "add",
    "remove",
    "promote",
    "demote",
    "subject",
    "create",
    "leave",
    "+1 (555) 000-1234",
    "companion_hello",
    "companion_finish",
    "media_conn",
    "privacy",
    "subscribe",
    "w:p",
    "peer",
    "orig",
    "hi",
    "rotate",
    "true",
    "\u{0}",
    "ä",
    "12.5",
    "1e3",
];

const JIDS: &[&str] = &[
    "s.whatsapp.net",
    "15550001111@s.whatsapp.net",
    "15550001111:3@s.whatsapp.net",
    "15550002222@s.whatsapp.net",
    "15550002222:0@s.whatsapp.net",
    "100000000000001@lid",
    "100000000000001:2@lid",
    "120363000000000001@g.us",
    "status@broadcast",
    "123@broadcast",
    "15550001111.0:1@s.whatsapp.net",
    "g.us",
    "lid",
    "@s.whatsapp.net",
    "1:65535@s.whatsapp.net",
];

fn pick<'a>(u: &mut Unstructured<'_>, list: &[&'a str]) -> Result<&'a str> {
    Ok(list[u.choose_index(list.len())?])
}

fn free_string(u: &mut Unstructured<'_>) -> Result<String> {
    let len = u.int_in_range(0..=24u8)? as usize;
    let bytes = u.bytes(len.min(u.len()))?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn text(u: &mut Unstructured<'_>, dict: &[&'static str]) -> Result<String> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => free_string(u)?,
        1 => u.arbitrary::<u64>()?.to_string(),
        _ => pick(u, dict)?.to_owned(),
    })
}

fn jid(u: &mut Unstructured<'_>) -> Result<Option<Jid>> {
    let s = if u.ratio(1, 8)? {
        free_string(u)?
    } else {
        pick(u, JIDS)?.to_owned()
    };
    Ok(s.parse().ok())
}

fn value(u: &mut Unstructured<'_>) -> Result<AttrValue> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => match jid(u)? {
            Some(j) => AttrValue::Jid(j),
            None => AttrValue::Str(String::new().into()),
        },
        // JIDs also arrive as strings; parsers must accept both.
        1 => AttrValue::Str(pick(u, JIDS)?.to_owned().into()),
        _ => AttrValue::Str(text(u, VALUES)?.into()),
    })
}

fn content_bytes(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let len = match u.int_in_range(0..=5u8)? {
        0 => 1,
        1 => 3,
        2 => 32,
        3 => 33,
        4 => 64,
        _ => u.int_in_range(0..=300u16)? as usize,
    };
    let mut v = u.bytes(len.min(u.len()))?.to_vec();
    // Key-type bytes are 5 on the wire; give the fuzzer that value cheaply.
    if len == 1 && u.ratio(1, 2)? {
        v = vec![5];
    }
    Ok(v)
}

fn node_at(u: &mut Unstructured<'_>, depth: u8) -> Result<Node> {
    let tag = text(u, TAGS)?;
    let mut attrs = Attrs::new();
    for _ in 0..u.int_in_range(0..=6u8)? {
        attrs.push(text(u, KEYS)?, value(u)?);
    }
    let content = match u.int_in_range(0..=5u8)? {
        0 => Content::None,
        1 => Content::Bytes(content_bytes(u)?.into()),
        2 => Content::Str(text(u, VALUES)?.into()),
        3 => match jid(u)? {
            Some(j) => Content::Jid(j),
            None => Content::None,
        },
        _ if depth < 5 => {
            let n = u.int_in_range(0..=6u8)?;
            let mut children = Vec::with_capacity(n.into());
            for _ in 0..n {
                if u.is_empty() {
                    break;
                }
                children.push(node_at(u, depth + 1)?);
            }
            Content::Nodes(children)
        }
        _ => Content::None,
    };
    Ok(Node {
        tag: tag.into(),
        attrs,
        content,
    })
}

/// A node from fuzz bytes, or `None` when the bytes decode to nothing usable.
pub fn node_from(data: &[u8]) -> Option<Node> {
    let (&mode, rest) = data.split_first()?;
    if mode == 0xff {
        return binary::unpack(rest).ok();
    }
    node_at(&mut Unstructured::new(rest), 0).ok()
}

/// Arbitrary (possibly empty) Unicode text for string-taking helpers, from the same bytes.
#[allow(dead_code)]
pub fn some_text(u: &mut Unstructured<'_>) -> String {
    text(u, VALUES).unwrap_or_default()
}
