//! `<presence>` and `<chatstate>` (§6.5), minimally: no reply is expected for either, a subscribe
//! is answered with the contact's current availability and remembered, so that later
//! `available`/`unavailable` changes reach the subscriber; typing goes to the peers' online
//! companions only (never queued: a stale "typing…" is worse than none).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;

use super::{Sender, deliver_if_online, devices_of, resolve_device};
use crate::sim::Sim;

/// Subscriptions per watched account: the subscriber devices, bounded per account so a client
/// cannot grow the simulator without limit.
#[derive(Debug, Default)]
pub struct PresenceSubscriptions {
    by_target: Mutex<HashMap<String, HashSet<(String, u16)>>>,
}

/// Subscribers kept per watched account.
const MAX_SUBSCRIBERS: usize = 1024;

impl PresenceSubscriptions {
    fn subscribe(&self, target: &str, subscriber: (String, u16)) {
        let Ok(mut map) = self.by_target.lock() else {
            return;
        };
        let set = map.entry(target.to_string()).or_default();
        if set.len() < MAX_SUBSCRIBERS {
            set.insert(subscriber);
        }
    }

    fn subscribers(&self, target: &str) -> Vec<(String, u16)> {
        self.by_target
            .lock()
            .map(|map| {
                map.get(target)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }
}

pub(super) fn handle_presence(sim: &Sim, sender: &Sender, node: &Node) -> Vec<Node> {
    match node.attr_str("type") {
        Some("subscribe") => {
            let Some(to) = node.attr_jid("to") else {
                return Vec::new();
            };
            let Some((phone, _)) = resolve_device(sim, &to) else {
                return Vec::new();
            };
            sim.presence()
                .subscribe(&phone, (sender.phone.clone(), sender.device));
            let online = devices_of(sim, &phone)
                .into_iter()
                .any(|d| d != 0 && sim.connections().connection_of(&phone, d).is_some());
            let mut p = Node::new("presence").attr("from", to.to_non_ad());
            if !online {
                p = p.attr("type", "unavailable");
            }
            vec![p]
        }
        kind @ (None | Some("available") | Some("unavailable")) => {
            relay_availability(sim, sender, kind == Some("unavailable"));
            // `<presence type=available name=…>` carries the account's push name (§6.5), which
            // the router puts in `notify` of the messages this account sends.
            if let Some(name) = node.attr_str("name").filter(|n| !n.is_empty()) {
                let changed = sim.state().read(|st| {
                    st.accounts
                        .get(&sender.phone)
                        .is_some_and(|a| a.push_name.as_deref() != Some(name))
                });
                if changed {
                    sim.state().write(|st| {
                        if let Some(a) = st.accounts.get_mut(&sender.phone) {
                            a.push_name = Some(name.to_string());
                        }
                    });
                }
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Tells every subscriber of the sender's account that it is now (un)available (with `last` =
/// now when unavailable).
fn relay_availability(sim: &Sim, sender: &Sender, unavailable: bool) {
    let mut p = Node::new("presence").attr("from", Jid::pn(sender.phone.clone()));
    if unavailable {
        // Last seen, as WhatsApp tells contacts allowed to see it (the sim has no privacy).
        p = p
            .attr("type", "unavailable")
            .attr("last", super::now_secs().to_string());
    }
    for (phone, device) in sim.presence().subscribers(&sender.phone) {
        if phone != sender.phone || device != sender.device {
            deliver_if_online(sim, &phone, device, &p);
        }
    }
}

pub(super) fn handle_chatstate(sim: &Sim, sender: &Sender, node: &Node) -> Vec<Node> {
    let Some(to) = node.attr_jid("to") else {
        return Vec::new();
    };
    let state_children = node.child_nodes().to_vec();
    if to.is_group() {
        let Some(group) = sim.state().group(&to.user) else {
            return Vec::new();
        };
        let relayed = Node::new("chatstate")
            .attr("from", to.to_non_ad())
            .attr("participant", Jid::pn(sender.phone.clone()))
            .children(state_children);
        for member in group.participants {
            for d in devices_of(sim, &member.phone) {
                if member.phone != sender.phone || d != sender.device {
                    deliver_if_online(sim, &member.phone, d, &relayed);
                }
            }
        }
    } else if let Some((phone, _)) = resolve_device(sim, &to) {
        let relayed = Node::new("chatstate")
            .attr("from", Jid::pn(sender.phone.clone()))
            .children(state_children);
        for d in devices_of(sim, &phone) {
            deliver_if_online(sim, &phone, d, &relayed);
        }
    }
    Vec::new()
}
