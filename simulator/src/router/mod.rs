//! Messaging routing inside the simulator: messages, receipts, acks, group IQs, presence, and the
//! mock phones' Signal. Called by the protocol handler for stanzas of logged-in devices.
//!
//! This is simwire's minimal stub of the pinned seam (ROUTER_SEAM.md); simroute's module replaces
//! it at merge.

use zapin_protocol::binary::{self, Node};

use crate::conn::{ConnCommand, ConnId};
use crate::sim::Sim;
use crate::state::{QueuedStanza, StanzaKind, unix_now};

/// A logged-in companion device that sent a stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub conn: ConnId,
    /// The account's phone number (digits), i.e. the PN user.
    pub phone: String,
    /// The companion's device number (never 0: device 0 is the mock phone).
    pub device: u32,
}

/// Handles a stanza from a logged-in device whose tag is `message`, `receipt`, `ack`, `presence`,
/// `chatstate`, or an `iq` with xmlns `w:g2` / `privacy` / `usync` (usync: see below) — anything the
/// handler does not answer itself. Returns the nodes to write back on the same connection
/// (acks, IQ results, IQ errors), in order. Deliveries to other devices go through `deliver`.
pub fn handle_stanza(_sim: &Sim, from: &Origin, node: Node) -> Vec<Node> {
    let is_request = node.tag == "iq" && matches!(node.attr_str("type"), Some("get") | Some("set"));
    if !is_request {
        tracing::debug!(conn = %from.conn, tag = %node.tag, "stub router: stanza ignored");
        return Vec::new();
    }
    let mut error = Node::new("iq")
        .attr(
            "from",
            zapin_protocol::jid::Jid::server_only(zapin_protocol::jid::Server::Pn),
        )
        .attr("type", "error");
    if let Some(id) = node.attr_str("id") {
        error = error.attr("id", id.to_string());
    }
    vec![error.children(vec![
        Node::new("error")
            .attr("code", "501")
            .attr("text", "feature-not-implemented"),
    ])]
}

/// Delivers a stanza to one device of an account: if it is online, encodes it and sends
/// `ConnCommand::Deliver` to its connection; otherwise appends it to the device's offline queue
/// (`SimState::queue_offline`), which the handler drains after the next `<success>`.
/// Device 0 (the mock phone) consumes messages itself (decrypts with its Signal state and records
/// them for `GET /sim/accounts/{phone}/messages`).
pub fn deliver(sim: &Sim, phone: &str, device: u32, node: Node) {
    let Ok(device) = u16::try_from(device) else {
        return;
    };
    if device == 0 {
        tracing::debug!(
            "stub router: the mock phone of {phone} drops a {}",
            node.tag
        );
        return;
    }
    let bytes = match binary::encode(&node) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("stub router: cannot encode a {}: {e}", node.tag);
            return;
        }
    };
    if let Some(conn) = sim.connections().connection_of(phone, device)
        && sim
            .connections()
            .send(
                conn,
                ConnCommand::Deliver {
                    node: bytes.clone(),
                },
            )
            .is_ok()
    {
        return;
    }
    let kind = match &*node.tag {
        "receipt" => StanzaKind::Receipt,
        "notification" => StanzaKind::Notification,
        _ => StanzaKind::Message,
    };
    let stanza = QueuedStanza {
        id: node.attr_str("id").unwrap_or_default().to_string(),
        kind,
        t: unix_now().as_secs(),
        node: bytes,
    };
    if let Err(e) = sim.state().queue_offline(phone, device, stanza) {
        tracing::debug!("stub router: not queued: {e}");
    }
}
