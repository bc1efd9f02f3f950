//! Messaging routing inside the simulator: messages, receipts, acks, group IQs, presence, and the
//! mock phones' Signal. Called by the protocol handler for stanzas of logged-in devices.
//!
//! Everything here is synchronous and short: a stanza in, acks/IQ answers out, deliveries to other
//! devices through [`deliver`] (online: `ConnCommand::Deliver` with the node encoded by
//! `binary::encode`, no flags byte; offline: the device's queue). Device 0 of every account is the
//! mock phone, which consumes what is delivered to it (`crate::phone::receive`).

mod acks;
pub(crate) mod groups;
mod message;
mod phash;
mod presence;

pub use presence::PresenceSubscriptions;
mod receipt;

use zapin_protocol::binary::{self, Content, Node};
use zapin_protocol::jid::{Jid, Server};

use crate::conn::{ConnCommand, ConnId, SendError};
use crate::sim::Sim;
use crate::state::{QueuedStanza, StanzaKind};

pub use groups::{group_node, notify_group};
pub use receipt::relay_receipt;

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
/// `chatstate`, or an `iq` with xmlns `w:g2` / `privacy` / `usync` — anything the handler does not
/// answer itself. Returns the nodes to write back on the same connection (acks, IQ results, IQ
/// errors), in order. Deliveries to other devices go through `deliver`.
pub fn handle_stanza(sim: &Sim, from: &Origin, node: Node) -> Vec<Node> {
    let Ok(device) = u16::try_from(from.device) else {
        tracing::warn!("stanza from impossible device {}: ignored", from.device);
        return Vec::new();
    };
    let sender = Sender {
        phone: from.phone.clone(),
        device,
    };
    match node.tag.as_ref() {
        "message" => message::handle(sim, &sender, &node),
        "receipt" => receipt::handle(sim, &sender, &node),
        // What the device confirms is no longer held for it; the server answers nothing.
        "ack" => {
            acks::on_ack(sim, &sender, &node);
            Vec::new()
        }
        "presence" => presence::handle_presence(sim, &sender, &node),
        "chatstate" => presence::handle_chatstate(sim, &sender, &node),
        "iq" => handle_iq(sim, &sender, &node),
        other => {
            tracing::debug!("router ignores <{other}> from {}:{device}", from.phone);
            Vec::new()
        }
    }
}

fn handle_iq(sim: &Sim, sender: &Sender, iq: &Node) -> Vec<Node> {
    if iq.attr_str("id").is_none() {
        return Vec::new();
    }
    match iq.attr_str("xmlns") {
        Some("w:g2") => vec![groups::handle_iq(sim, sender, iq)],
        Some("w:profile:picture") => vec![groups::handle_picture_iq(sim, sender, iq)],
        // Trusted-contact token issuance after a DM (§12.4 step 20) and anything else privacy-ish
        // the handler passed on: an empty result is what the clients need.
        Some("privacy") => vec![iq_result(iq)],
        _ => vec![iq_error(iq, 501, "feature-not-implemented")],
    }
}

/// Delivers a stanza to one device of an account. Device 0 (the mock phone) consumes messages
/// itself (decrypts with its Signal state and records them for `GET /sim/accounts/{phone}/messages`).
///
/// For a companion, a `message`, `receipt` or `notification` is held until the device
/// acknowledges it (`SimState::hold`, `acks`): if the device is online it is in flight on its
/// connection (`ConnCommand::Deliver`, encoded by `binary::encode`), otherwise it waits for the next
/// login, where the handler writes everything held with `offline="1"`. Anything else (presence,
/// chatstate) is written if the device is online and otherwise dropped.
pub fn deliver(sim: &Sim, phone: &str, device: u32, mut node: Node) {
    let Ok(device) = u16::try_from(device) else {
        return;
    };
    if node.tag == "message" && sim.faults().take_corrupt(phone, device) {
        corrupt_ciphertexts(&mut node);
    }
    if device == 0 {
        crate::phone::receive(sim, phone, &node);
        return;
    }
    let bytes = match binary::encode(&node) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("cannot encode <{}> for {phone}:{device}: {e}", node.tag);
            return;
        }
    };
    let kind = match node.tag.as_ref() {
        "message" => StanzaKind::Message,
        "receipt" => StanzaKind::Receipt,
        "notification" => StanzaKind::Notification,
        _ => {
            if let Some(conn) = sim.connections().connection_of(phone, device) {
                let _ = sim
                    .connections()
                    .send(conn, ConnCommand::Deliver { node: bytes });
            }
            return;
        }
    };
    let conn = sim.connections().connection_of(phone, device);
    let held = QueuedStanza {
        id: node.attr_str("id").unwrap_or_default().to_string(),
        kind,
        t: now_secs(),
        node: bytes.clone(),
        sent_on: conn,
    };
    if let Err(e) = sim.state().hold(phone, device, held) {
        tracing::debug!("not held for {phone}:{device}: {e}");
        return;
    }
    match conn {
        Some(conn) => match sim
            .connections()
            .send(conn, ConnCommand::Deliver { node: bytes })
        {
            Ok(()) => {}
            // Still in flight on that connection: written again at the device's next login.
            Err(e @ SendError::Full) => {
                tracing::warn!("delivery to {phone}:{device} on {conn} failed ({e}): held")
            }
            // That connection ended while we routed: a newer one may have taken over already.
            Err(SendError::Gone) => redeliver_held(sim, phone, device),
        },
        // The device may have logged in (and taken its queue) while we routed.
        None => redeliver_held(sim, phone, device),
    }
}

/// Sends a companion's current connection, if it has one, every held stanza that is not already
/// in flight on it (marked `offline="1"`). Called where a stanza may have been left behind: a
/// connection that ended after a newer one of the same device logged in, or a delivery that
/// raced with a login. A duplicate on the device is possible there; a loss is not.
pub fn redeliver_held(sim: &Sim, phone: &str, device: u16) {
    let Some(conn) = sim.connections().connection_of(phone, device) else {
        return;
    };
    for held in sim.state().hand_to(phone, device, conn) {
        let node = match binary::decode(&held.node) {
            Ok(n) => binary::encode(&n.attr("offline", "1")).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let node = match node {
            Ok(node) => node,
            Err(e) => {
                tracing::warn!("held stanza for {phone}:{device} does not re-encode: {e}");
                continue;
            }
        };
        if let Err(e) = sim.connections().send(conn, ConnCommand::Deliver { node }) {
            tracing::warn!("redelivery to {phone}:{device} on {conn} failed ({e}): held");
            return;
        }
    }
}

/// Delivers only if the device is online now (chatstates and presence are not queued).
fn deliver_if_online(sim: &Sim, phone: &str, device: u16, node: &Node) {
    if device == 0 || sim.connections().connection_of(phone, device).is_none() {
        return;
    }
    deliver(sim, phone, u32::from(device), node.clone());
}

/// The device that sent a stanza (a companion, or the phone itself for its own sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub phone: String,
    pub device: u16,
}

pub(crate) fn now_secs() -> u64 {
    crate::state::unix_now().as_secs()
}

/// The account and device a JID names (PN or LID namespace), if the account exists.
pub(crate) fn resolve_device(sim: &Sim, jid: &Jid) -> Option<(String, u16)> {
    sim.state().read(|st| match jid.server {
        Server::Pn => st
            .accounts
            .contains_key(&jid.user)
            .then(|| (jid.user.clone(), jid.device)),
        Server::Lid => st.lids.get(&jid.user).map(|p| (p.clone(), jid.device)),
        _ => None,
    })
}

/// Every device of an account: the phone (0) and its companions.
pub(crate) fn devices_of(sim: &Sim, phone: &str) -> Vec<u16> {
    sim.state().read(|st| {
        st.accounts
            .get(phone)
            .map(|a| {
                std::iter::once(0)
                    .chain(a.companions.keys().copied())
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// `(lid, push name)` of an account.
pub(crate) fn identity_of(sim: &Sim, phone: &str) -> Option<(String, Option<String>)> {
    sim.state().read(|st| {
        st.accounts
            .get(phone)
            .map(|a| (a.lid.clone(), a.push_name.clone()))
    })
}

/// A device's JID in the PN or LID namespace.
pub(crate) fn device_jid(phone: &str, lid: &str, device: u16, lid_mode: bool) -> Jid {
    if lid_mode {
        Jid::with_device(lid, device, Server::Lid)
    } else {
        Jid::with_device(phone, device, Server::Pn)
    }
}

fn iq_from(iq: &Node) -> Jid {
    iq.attr_jid("to")
        .unwrap_or_else(|| Jid::server_only(Server::Pn))
}

pub(crate) fn iq_result(iq: &Node) -> Node {
    Node::new("iq")
        .attr("from", iq_from(iq))
        .attr("id", iq.attr_str("id").unwrap_or_default().to_string())
        .attr("type", "result")
}

pub(crate) fn iq_error(iq: &Node, code: u16, text: &'static str) -> Node {
    iq_result(iq).attr_replace("type", "error").children(vec![
        Node::new("error")
            .attr("code", code.to_string())
            .attr("text", text),
    ])
}

/// `Node::attr` appends; this swaps an existing value (used to turn a result into an error).
trait AttrReplace {
    fn attr_replace(self, key: &'static str, value: &'static str) -> Self;
}

impl AttrReplace for Node {
    fn attr_replace(mut self, key: &'static str, value: &'static str) -> Self {
        for (k, v) in self.attrs.0.iter_mut() {
            if k == key {
                *v = value.into();
            }
        }
        self
    }
}

/// Flips one byte in the middle of every `<enc>` (the `corrupt_next_message` fault): the
/// envelope still parses, its MAC or AEAD check fails.
fn corrupt_ciphertexts(node: &mut Node) {
    match &mut node.content {
        Content::Bytes(b) if node.tag == "enc" && !b.is_empty() => {
            let mut v = b.to_vec();
            let mid = v.len() / 2;
            if let Some(x) = v.get_mut(mid) {
                *x ^= 0x5a;
            }
            *b = v.into();
        }
        Content::Nodes(children) => children.iter_mut().for_each(corrupt_ciphertexts),
        _ => {}
    }
}
