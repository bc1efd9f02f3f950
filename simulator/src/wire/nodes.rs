//! Small builders for the server's recurring stanzas (IQ results and errors, stream errors).

use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};

/// `@s.whatsapp.net`, the server's own address, always sent as a JID value (WM insists, §5.1).
pub fn server_jid() -> Jid {
    Jid::server_only(Server::Pn)
}

/// `<iq from=server type=result id=…/>` answering `req`.
pub fn iq_result(req: &Node) -> Node {
    iq_reply(req, "result")
}

/// `<iq from=server type=result id=…>children</iq>`.
pub fn iq_result_with(req: &Node, children: Vec<Node>) -> Node {
    iq_result(req).children(children)
}

/// `<iq from=server type=error id=…><error code text/></iq>` (§6.6 error shape).
pub fn iq_error(req: &Node, code: u16, text: &'static str) -> Node {
    iq_reply(req, "error").children(vec![error(code, text)])
}

pub fn error(code: u16, text: &'static str) -> Node {
    Node::new("error")
        .attr("code", code.to_string())
        .attr("text", text)
}

fn iq_reply(req: &Node, kind: &'static str) -> Node {
    let mut n = Node::new("iq")
        .attr("from", server_jid())
        .attr("type", kind);
    if let Some(id) = req.attr_str("id") {
        n = n.attr("id", id.to_string());
    }
    n
}

/// `<stream:error code=…/>`.
pub fn stream_error(code: u16) -> Node {
    Node::new("stream:error").attr("code", code.to_string())
}

/// `<stream:error><conflict type=replaced/></stream:error>` (Baileys maps it to 440).
pub fn stream_replaced() -> Node {
    Node::new("stream:error").children(vec![Node::new("conflict").attr("type", "replaced")])
}

/// `<stream:error code=401><conflict type=device_removed/></stream:error>`.
pub fn stream_device_removed() -> Node {
    Node::new("stream:error")
        .attr("code", "401")
        .children(vec![Node::new("conflict").attr("type", "device_removed")])
}

/// `<stream:error><xml-not-well-formed/></stream:error>`: the client sent a frame that is not a node.
pub fn stream_not_well_formed() -> Node {
    Node::new("stream:error").children(vec![Node::new("xml-not-well-formed")])
}

/// Big-endian, the last `n` bytes of `v` (registration ids are 4 bytes, key ids 3).
pub fn be_bytes(v: u32, n: usize) -> Vec<u8> {
    v.to_be_bytes()[4 - n.min(4)..].to_vec()
}

/// Reads a big-endian number of at most 4 bytes.
pub fn read_be(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 4 {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x)))
}

/// Content bytes of child `tag`, if it has raw or string content.
pub fn child_bytes<'a>(node: &'a Node, tag: &str) -> Option<&'a [u8]> {
    let c = node.child(tag)?;
    match &c.content {
        zapin_protocol::binary::Content::Bytes(b) => Some(b),
        zapin_protocol::binary::Content::Str(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// 32 bytes of child `tag`.
pub fn child_key(node: &Node, tag: &str) -> Option<[u8; 32]> {
    child_bytes(node, tag).and_then(|b| <[u8; 32]>::try_from(b).ok())
}
