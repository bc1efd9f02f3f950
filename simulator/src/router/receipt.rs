//! `<receipt>` (§7.4, §7.5, §12.4 step 18, §12.5 step 24): ack it, and relay it to the device
//! that sent the message (found by message id in the log; else from `to`/`participant`).

use std::sync::atomic::Ordering;

use zapin_protocol::binary::Node;

use super::{Sender, deliver, device_jid, identity_of, now_secs, resolve_device};
use crate::sim::Sim;

pub(super) fn handle(sim: &Sim, sender: &Sender, node: &Node) -> Vec<Node> {
    // Whatever else it is, the device's receipt confirms the messages it names.
    super::acks::on_receipt(sim, sender, node);
    let (Some(id), Some(to)) = (node.attr_str("id"), node.attr_jid("to")) else {
        tracing::debug!("<receipt> without id or to from {}: ignored", sender.phone);
        return Vec::new();
    };
    let mut out = Vec::new();
    if !sim.faults().drop_acks() {
        let mut ack = Node::new("ack")
            .attr("class", "receipt")
            .attr("id", id.to_string())
            .attr("from", to);
        for key in ["type", "participant"] {
            if let Some(v) = node.get_attr(key) {
                ack = ack.attr(key, v.clone());
            }
        }
        out.push(ack);
    }
    relay_receipt(sim, &sender.phone, sender.device, node);
    out
}

/// Relays a receipt that device `reader_device` of `reader_phone` wrote (a companion, or the mock
/// phone's own delivery/read/retry receipts) to the sender of the message it names.
pub fn relay_receipt(sim: &Sim, reader_phone: &str, reader_device: u16, node: &Node) {
    let (Some(id), Some(to)) = (node.attr_str("id"), node.attr_jid("to")) else {
        return;
    };
    let participant = node.attr_jid("participant");
    let logged = sim.state().logged_message(id).and_then(|m| {
        m.sender
            .parse()
            .ok()
            .and_then(|jid| resolve_device(sim, &jid))
    });
    let target = logged.or_else(|| match (&participant, to.is_group()) {
        (Some(p), true) => resolve_device(sim, p),
        _ => resolve_device(sim, &to),
    });
    let Some((phone, device)) = target else {
        tracing::debug!("receipt for unknown message {id}: acked, not relayed");
        return;
    };
    if phone == reader_phone && device == reader_device {
        return;
    }
    let Some((lid, _)) = identity_of(sim, reader_phone) else {
        return;
    };
    let lid_mode = if to.is_group() {
        participant.as_ref().is_some_and(|p| p.is_lid())
    } else {
        to.is_lid()
    };
    let reader = device_jid(reader_phone, &lid, reader_device, lid_mode);
    let mut relayed = Node::new("receipt");
    relayed = if to.is_group() {
        relayed
            .attr("from", to.to_non_ad())
            .attr("participant", reader)
    } else {
        relayed.attr("from", reader)
    };
    relayed = relayed
        .attr("id", id.to_string())
        .attr("t", now_secs().to_string());
    for key in ["type", "recipient", "category"] {
        if let Some(v) = node.get_attr(key) {
            relayed = relayed.attr(key, v.clone());
        }
    }
    // `<list>` (read receipts for several ids), `<retry>`, `<registration>`, `<keys>`.
    if !node.child_nodes().is_empty() {
        relayed = relayed.children(node.child_nodes().to_vec());
    }
    sim.state()
        .counters()
        .receipts_routed
        .fetch_add(1, Ordering::Relaxed);
    deliver(sim, &phone, u32::from(device), relayed);
}
