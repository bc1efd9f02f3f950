//! A companion's confirmations of what the server delivered to it (wa-protocol.md §7.4, §7.8):
//! its `<receipt>` (any type: delivery, `sender`, `peer_msg`, `inactive`, `retry`, `read`, …)
//! confirms the messages it names; its `<ack class=message|receipt|notification>` (a NACK with
//! `error` too) confirms that stanza. What is confirmed is no longer held for the device
//! (`SimState::acknowledge`); everything else is delivered again at its next login.

use zapin_protocol::binary::Node;

use super::Sender;
use crate::sim::Sim;
use crate::state::{DeviceAck, StanzaKind};

/// `<ack class=… id to [participant] [type] [error]>` from the device.
pub(super) fn on_ack(sim: &Sim, sender: &Sender, node: &Node) {
    let kind = match node.attr_str("class") {
        Some("message") => StanzaKind::Message,
        Some("receipt") => StanzaKind::Receipt,
        Some("notification") => StanzaKind::Notification,
        _ => return,
    };
    let Some(id) = node.attr_str("id") else {
        return;
    };
    confirm(sim, sender, node, kind, vec![id.to_string()]);
}

/// A `<receipt>` the device sends confirms the messages it names: `id` and `<list><item id>`.
pub(super) fn on_receipt(sim: &Sim, sender: &Sender, node: &Node) {
    let Some(id) = node.attr_str("id") else {
        return;
    };
    let mut ids = vec![id.to_string()];
    if let Some(list) = node.child("list") {
        ids.extend(
            list.children_by_tag("item")
                .filter_map(|i| i.attr_str("id"))
                .map(str::to_string),
        );
    }
    confirm(sim, sender, node, StanzaKind::Message, ids);
}

fn confirm(sim: &Sim, sender: &Sender, node: &Node, kind: StanzaKind, ids: Vec<String>) {
    let ack = DeviceAck {
        kind,
        ids,
        to: node.attr_jid("to"),
        participant: node.attr_jid("participant"),
        type_attr: node.attr_str("type").map(str::to_string),
    };
    let n = sim.state().acknowledge(&sender.phone, sender.device, &ack);
    tracing::trace!(
        "{}:{} confirmed {n} of {:?} ({kind:?})",
        sender.phone,
        sender.device,
        ack.ids
    );
}
