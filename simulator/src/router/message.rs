//! `<message>` from a companion (§7.2, §7.3, §12.4 step 17, §12.5 step 23): ack, then fan-out of
//! each `<to>`'s `<enc>` to its device, with the attributes the receiving client expects.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;

use super::{
    Sender, deliver, device_jid, devices_of, identity_of, now_secs, phash, resolve_device,
};
use crate::addr;
use crate::sim::Sim;
use crate::state::LoggedMessage;

/// Attributes copied from the sender's stanza onto every delivered copy when present.
const COPIED_ATTRS: [&str; 3] = ["category", "edit", "push_priority"];

pub(super) fn handle(sim: &Sim, sender: &Sender, node: &Node) -> Vec<Node> {
    let (Some(id), Some(to)) = (node.attr_str("id"), node.attr_jid("to")) else {
        tracing::debug!("<message> without id or to from {}: ignored", sender.phone);
        return Vec::new();
    };
    let t = now_secs();
    let mut out = Vec::new();
    if !sim.faults().drop_acks() {
        let mut ack = Node::new("ack")
            .attr("class", "message")
            .attr("id", id.to_string())
            .attr("from", to.clone())
            .attr("t", t.to_string());
        // Like WhatsApp: the server's participant hash, when the sender sent one (§7.3, §7.10).
        if let Some(theirs) = node.attr_str("phash")
            && let Some(ours) = phash::of_group(sim, &to, node.attr_str("addressing_mode"))
        {
            if ours != theirs {
                tracing::debug!(%to, theirs, ours, "phash mismatch: the sender's device lists are stale");
                sim.state()
                    .counters()
                    .phash_mismatches
                    .fetch_add(1, Ordering::Relaxed);
            }
            ack = ack.attr("phash", ours);
        }
        out.push(ack);
    }
    let Some((lid, push_name)) = identity_of(sim, &sender.phone) else {
        return out;
    };
    // Logged before delivery: a mock phone answers with its receipt while we are still routing.
    sim.state().log_message(
        id.to_string(),
        LoggedMessage {
            sender: addr::pn_device_jid(&sender.phone, sender.device),
            chat: to.to_non_ad().to_string(),
            t,
            text: None,
        },
    );
    let ctx = Context {
        sim,
        sender,
        lid: &lid,
        push_name: push_name.as_deref(),
        node,
        id,
        t,
    };
    if to.is_group() {
        ctx.route_group(&to);
    } else {
        ctx.route_user(&to);
    }
    sim.state()
        .counters()
        .messages_routed
        .fetch_add(1, Ordering::Relaxed);
    out
}

struct Context<'a> {
    sim: &'a Sim,
    sender: &'a Sender,
    lid: &'a str,
    push_name: Option<&'a str>,
    node: &'a Node,
    id: &'a str,
    t: u64,
}

impl Context<'_> {
    /// The `<enc>` per target device from `<participants><to jid>`, keyed by (phone, device).
    fn pairwise(&self) -> BTreeMap<(String, u16), Node> {
        let mut map = BTreeMap::new();
        let Some(parts) = self.node.child("participants") else {
            return map;
        };
        for to in parts.children_by_tag("to") {
            let Some(jid) = to.attr_jid("jid") else {
                continue;
            };
            let (Some(target), Some(enc)) = (resolve_device(self.sim, &jid), to.child("enc"))
            else {
                continue;
            };
            map.insert(target, enc.clone());
        }
        map
    }

    /// Direct `<enc>` children that are not the group's shared `skmsg`.
    fn direct_pairwise(&self) -> Option<Node> {
        self.node
            .children_by_tag("enc")
            .find(|e| e.attr_str("type") != Some("skmsg"))
            .cloned()
    }

    fn is_sender(&self, target: &(String, u16)) -> bool {
        target.0 == self.sender.phone && target.1 == self.sender.device
    }

    fn base(&self, from: Jid) -> Node {
        let mut n = Node::new("message")
            .attr("from", from)
            .attr("id", self.id.to_string())
            .attr("t", self.t.to_string())
            .attr(
                "type",
                self.node.attr_str("type").unwrap_or("text").to_string(),
            );
        if let Some(name) = self.push_name {
            n = n.attr("notify", name.to_string());
        }
        for key in COPIED_ATTRS {
            if let Some(v) = self.node.attr_str(key) {
                n = n.attr(key, v.to_string());
            }
        }
        n
    }

    /// Adds `<device-identity>` when one of the delivered `<enc>`s is a `pkmsg`.
    fn with_encs(&self, node: Node, encs: Vec<Node>) -> Node {
        let mut children = encs;
        if children.iter().any(|e| e.attr_str("type") == Some("pkmsg"))
            && let Some(di) = self.node.child("device-identity")
        {
            children.push(di.clone());
        }
        node.children(children)
    }

    fn route_user(&self, to: &Jid) {
        let lid_mode = to.is_lid();
        let from = device_jid(&self.sender.phone, self.lid, self.sender.device, lid_mode);
        let chat = to.to_non_ad();
        let chat_phone = resolve_device(self.sim, &chat).map(|(p, _)| p);
        let mut targets = self.pairwise();
        if targets.is_empty()
            && let (Some(enc), Some(target)) =
                (self.direct_pairwise(), resolve_device(self.sim, to))
        {
            // A single-device send: a peer message to an own device, or a retry resend.
            targets.insert(target, enc);
        }
        for (target, enc) in targets {
            if self.is_sender(&target) {
                continue;
            }
            let mut msg = self.base(from.clone());
            msg = if lid_mode {
                msg.attr("sender_pn", Jid::pn(self.sender.phone.clone()))
            } else {
                msg.attr("sender_lid", Jid::lid(self.lid.to_string()))
            };
            let own_copy = target.0 == self.sender.phone;
            if own_copy && chat_phone.as_deref() != Some(self.sender.phone.as_str()) {
                msg = msg.attr("recipient", chat.clone());
            }
            let msg = self.with_encs(msg, vec![enc]);
            deliver(self.sim, &target.0, u32::from(target.1), msg);
        }
    }

    fn route_group(&self, to: &Jid) {
        let group_id = to.user.clone();
        let Some(group) = self.sim.state().group(&group_id) else {
            tracing::debug!("message to unknown group {to}: acked, not delivered");
            return;
        };
        if !group
            .participants
            .iter()
            .any(|p| p.phone == self.sender.phone)
        {
            tracing::debug!("{} is not in {to}: acked, not delivered", self.sender.phone);
            return;
        }
        let lid_mode = self.node.attr_str("addressing_mode") == Some("lid");
        let participant = device_jid(&self.sender.phone, self.lid, self.sender.device, lid_mode);
        let skmsg = self
            .node
            .children_by_tag("enc")
            .find(|e| e.attr_str("type") == Some("skmsg"))
            .cloned();
        let mut pairwise = self.pairwise();
        if let (Some(enc), Some(p)) = (self.direct_pairwise(), self.node.attr_jid("participant"))
            && let Some(target) = resolve_device(self.sim, &p)
        {
            // A retry resend to one member device (§7.5).
            pairwise.insert(target, enc);
        }
        // With a shared skmsg every member device gets it; otherwise only the listed ones.
        let mut targets: Vec<(String, u16)> = pairwise.keys().cloned().collect();
        if skmsg.is_some() {
            for member in &group.participants {
                for d in devices_of(self.sim, &member.phone) {
                    let key = (member.phone.clone(), d);
                    if !pairwise.contains_key(&key) {
                        targets.push(key);
                    }
                }
            }
        }
        for target in targets {
            if self.is_sender(&target) {
                continue;
            }
            let mut encs: Vec<Node> = pairwise.get(&target).cloned().into_iter().collect();
            encs.extend(skmsg.clone());
            let mut msg = self
                .base(to.to_non_ad())
                .attr("participant", participant.clone())
                .attr("addressing_mode", if lid_mode { "lid" } else { "pn" });
            msg = if lid_mode {
                msg.attr("participant_pn", Jid::pn(self.sender.phone.clone()))
            } else {
                msg.attr("participant_lid", Jid::lid(self.lid.to_string()))
            };
            let msg = self.with_encs(msg, encs);
            deliver(self.sim, &target.0, u32::from(target.1), msg);
        }
    }
}
