//! A companion's stanzas held until it acknowledges them (wa-protocol.md §6.8, §7.4, §7.8).
//!
//! WhatsApp keeps a message, receipt or notification for a device until that device confirms
//! it, and delivers it again (with `offline="1"`) at the next login if the connection ended
//! first. So there is one ordered list per companion, `CompanionDevice::offline_queue`:
//!
//! - `hold` appends (a live delivery sets `sent_on`; an offline device's stanza has none);
//! - `acknowledge` removes what the device's receipt or ack names;
//! - `hand_to` gives a connection every stanza that is not already on it (at login, or when a
//!   stanza was left on a connection that is gone), oldest first;
//! - `release` makes a closed connection's stanzas wait for the next login again. They keep their
//!   place, so they come before anything queued after them.
//!
//! In flight and queued count together against `StateLimits::max_offline_queue`: a device that
//! never acknowledges anything costs at most that many stanzas, the oldest dropped first.

use std::collections::{HashMap, VecDeque};

use zapin_protocol::binary::{self, Node};
use zapin_protocol::jid::{Jid, Server};

use super::{QueuedStanza, SimState, StanzaKind, State, StateError, companion_mut};
use crate::conn::ConnId;

/// What a companion confirmed: its `<receipt>` for messages (any type), or its `<ack class=…>`
/// (also a NACK with `error`) for a message, receipt or notification. Built by the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAck {
    /// The kind of stanza confirmed: a receipt confirms messages, an ack names its class.
    pub kind: StanzaKind,
    /// The `id` attribute, then a receipt's `<list><item id>` entries.
    pub ids: Vec<String>,
    /// `to`: the `from` of the confirmed stanza (its sender, its group, or the server).
    pub to: Option<Jid>,
    pub participant: Option<Jid>,
    /// `type`. Compared for receipts and notifications, whose ids repeat (a message's delivery
    /// and read receipts share its id); preferred, not required, as clients may omit it.
    pub type_attr: Option<String>,
}

impl SimState {
    /// Holds a stanza for a companion until it acknowledges it; returns how many it holds.
    pub fn hold(
        &self,
        phone: &str,
        device: u16,
        stanza: QueuedStanza,
    ) -> Result<usize, StateError> {
        let cap = self.config().limits.max_offline_queue;
        let mut st = self.lock();
        let d = companion_mut(&mut st, phone, device)?;
        d.offline_queue.push_back(stanza);
        while d.offline_queue.len() > cap {
            d.offline_queue.pop_front();
            tracing::warn!(
                "{phone}:{device} holds {cap} unacknowledged stanzas; dropped the oldest"
            );
        }
        let n = d.offline_queue.len();
        drop(st);
        self.mark_dirty();
        Ok(n)
    }

    /// Removes what `ack` confirms, one held stanza per id (the oldest that matches). Ids are
    /// compared with the stanza's `from`/`participant` resolved to accounts, so equal ids from
    /// different senders do not confirm each other. Returns how many were removed.
    pub fn acknowledge(&self, phone: &str, device: u16, ack: &DeviceAck) -> usize {
        let mut st = self.lock();
        let State { accounts, lids, .. } = &mut *st;
        let Some(d) = accounts
            .get_mut(phone)
            .and_then(|a| a.companions.get_mut(&device))
        else {
            return 0;
        };
        let mut removed = 0;
        for id in &ack.ids {
            let found = find(&d.offline_queue, id, ack, lids, true)
                .or_else(|| find(&d.offline_queue, id, ack, lids, false));
            if let Some(i) = found {
                d.offline_queue.remove(i);
                removed += 1;
            }
        }
        drop(st);
        if removed > 0 {
            self.mark_dirty();
        }
        removed
    }

    /// Every held stanza not already in flight on `conn`, oldest first, now in flight on it: what
    /// a connection writes at login (then `<ib><offline count>`), or is sent when stanzas were
    /// left on a connection that ended after it took over.
    pub fn hand_to(&self, phone: &str, device: u16, conn: ConnId) -> Vec<QueuedStanza> {
        let mut st = self.lock();
        let Ok(d) = companion_mut(&mut st, phone, device) else {
            return Vec::new();
        };
        d.offline_queue
            .iter_mut()
            .filter(|s| s.sent_on != Some(conn))
            .map(|s| {
                s.sent_on = Some(conn);
                s.clone()
            })
            .collect()
    }

    /// Connection `conn` ended: what it had in flight waits for the next login, in place (so
    /// before anything queued later). Returns how many.
    pub fn release(&self, phone: &str, device: u16, conn: ConnId) -> usize {
        let mut st = self.lock();
        let Ok(d) = companion_mut(&mut st, phone, device) else {
            return 0;
        };
        let mut n = 0;
        for s in d
            .offline_queue
            .iter_mut()
            .filter(|s| s.sent_on == Some(conn))
        {
            s.sent_on = None;
            n += 1;
        }
        n
    }

    /// A copy of everything held for a companion, oldest first (in flight or waiting).
    pub fn held(&self, phone: &str, device: u16) -> Result<Vec<QueuedStanza>, StateError> {
        let mut st = self.lock();
        Ok(companion_mut(&mut st, phone, device)?
            .offline_queue
            .iter()
            .cloned()
            .collect())
    }

    /// Removes and returns the stanzas waiting for a login (those not in flight). For tests and
    /// tools that look at a queue; the protocol layer uses [`SimState::hand_to`].
    pub fn drain_offline(
        &self,
        phone: &str,
        device: u16,
    ) -> Result<VecDeque<QueuedStanza>, StateError> {
        let mut st = self.lock();
        let d = companion_mut(&mut st, phone, device)?;
        let (waiting, in_flight): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut d.offline_queue)
            .into_iter()
            .partition(|s| s.sent_on.is_none());
        d.offline_queue = in_flight;
        drop(st);
        if !waiting.is_empty() {
            self.mark_dirty();
        }
        Ok(waiting)
    }
}

/// The oldest held stanza `ack` confirms for `id`. `strict` also compares `type` (receipts and
/// notifications); the lenient pass lets a client that omits it still confirm.
fn find(
    queue: &VecDeque<QueuedStanza>,
    id: &str,
    ack: &DeviceAck,
    lids: &HashMap<String, String>,
    strict: bool,
) -> Option<usize> {
    if !strict && ack.kind == StanzaKind::Message {
        return None; // messages never compare `type`: the strict pass was the only one
    }
    queue.iter().position(|s| {
        s.kind == ack.kind
            && s.id == id
            // A stanza that does not decode cannot be compared: the id decides.
            && match binary::decode(&s.node) {
                Ok(held) => confirms(ack, &held, lids, strict),
                Err(_) => true,
            }
    })
}

fn confirms(ack: &DeviceAck, held: &Node, lids: &HashMap<String, String>, strict: bool) -> bool {
    let same = |a: &Jid, b: Option<Jid>| b.is_none_or(|b| party(a, lids) == party(&b, lids));
    if let Some(to) = &ack.to
        && !same(to, held.attr_jid("from"))
    {
        return false;
    }
    if let Some(p) = &ack.participant
        && !same(p, held.attr_jid("participant"))
    {
        return false;
    }
    !strict || ack.kind == StanzaKind::Message || held.attr_str("type") == ack.type_attr.as_deref()
}

/// Who a JID names, for comparing a confirmation with a held stanza: the account (a client may
/// answer a PN device JID with the user's LID, or the bare user), else the JID without device.
#[derive(Debug, PartialEq, Eq)]
enum Party<'a> {
    Account(&'a str),
    Other(Jid),
}

fn party<'a>(jid: &'a Jid, lids: &'a HashMap<String, String>) -> Party<'a> {
    match jid.server {
        Server::Pn if !jid.user.is_empty() => Party::Account(&jid.user),
        Server::Lid => match lids.get(&jid.user) {
            Some(phone) => Party::Account(phone),
            None => Party::Other(jid.to_non_ad()),
        },
        _ => Party::Other(jid.to_non_ad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateLimits;
    use crate::state::tests::{paired, state};

    const PHONE: &str = "15550000001";
    const PEER: &str = "15550000002";

    fn stanza(tag: &str, id: &str, from: Jid, extra: &[(&'static str, &str)]) -> QueuedStanza {
        let mut node = Node::new(tag.to_string())
            .attr("id", id.to_string())
            .attr("from", from);
        for (k, v) in extra {
            node = node.attr(*k, v.to_string());
        }
        QueuedStanza {
            id: id.to_string(),
            kind: match tag {
                "message" => StanzaKind::Message,
                "receipt" => StanzaKind::Receipt,
                _ => StanzaKind::Notification,
            },
            t: 0,
            node: binary::encode(&node).unwrap(),
            sent_on: None,
        }
    }

    fn ack(kind: StanzaKind, id: &str, to: Option<Jid>, type_attr: Option<&str>) -> DeviceAck {
        DeviceAck {
            kind,
            ids: vec![id.to_string()],
            to,
            participant: None,
            type_attr: type_attr.map(str::to_string),
        }
    }

    fn held_ids(st: &SimState, dev: u16) -> Vec<(String, Option<ConnId>)> {
        st.held(PHONE, dev)
            .unwrap()
            .into_iter()
            .map(|s| (s.id, s.sent_on))
            .collect()
    }

    #[test]
    fn in_flight_and_queued_share_the_cap_and_keep_their_order() {
        let st = state(StateLimits {
            max_offline_queue: 3,
            ..StateLimits::default()
        });
        let dev = paired(&st);
        let (a, b) = (ConnId(10), ConnId(11));
        for id in ["m1", "m2"] {
            let mut s = stanza("message", id, Jid::pn(PEER), &[]);
            s.sent_on = Some(a);
            st.hold(PHONE, dev, s).unwrap();
        }
        st.hold(PHONE, dev, stanza("message", "m3", Jid::pn(PEER), &[]))
            .unwrap();
        // A fourth drops the oldest, although it is in flight: memory stays bounded.
        assert_eq!(
            st.hold(PHONE, dev, stanza("message", "m4", Jid::pn(PEER), &[]))
                .unwrap(),
            3
        );
        assert_eq!(
            held_ids(&st, dev),
            [
                ("m2".into(), Some(a)),
                ("m3".into(), None),
                ("m4".into(), None)
            ]
        );
        // Released in place: before what was queued after it.
        assert_eq!(st.release(PHONE, dev, a), 1);
        assert_eq!(st.drain_offline(PHONE, dev).unwrap().len(), 3);
        for id in ["m5", "m6"] {
            st.hold(PHONE, dev, stanza("message", id, Jid::pn(PEER), &[]))
                .unwrap();
        }
        let handed: Vec<String> = st
            .hand_to(PHONE, dev, b)
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(handed, ["m5", "m6"]);
        // Nothing is handed twice to the same connection.
        assert!(st.hand_to(PHONE, dev, b).is_empty());
        assert_eq!(st.hand_to(PHONE, dev, ConnId(12)).len(), 2);
    }

    #[test]
    fn confirmations_match_id_kind_and_sender_in_either_namespace() {
        let st = state(StateLimits::default());
        let dev = paired(&st);
        st.create_account(Some(PEER.into()), None).unwrap();
        let peer_lid = st.lid_of(PEER).unwrap();
        let peer_device = Jid::with_device(PEER, 3, Server::Pn);
        let group = Jid::group("120363000000000001");
        for s in [
            stanza("message", "x", peer_device.clone(), &[]),
            stanza("message", "x", Jid::pn("15550000009"), &[]),
            stanza("receipt", "x", peer_device.clone(), &[]),
            stanza("receipt", "x", peer_device.clone(), &[("type", "read")]),
            stanza("notification", "n", group.clone(), &[("type", "w:gp2")]),
        ] {
            st.hold(PHONE, dev, s).unwrap();
        }
        // Another sender's id is not this one; a receipt is not a message.
        let other = ack(StanzaKind::Message, "x", Some(Jid::pn("15550000008")), None);
        assert_eq!(st.acknowledge(PHONE, dev, &other), 0);
        // The peer named by its LID confirms the message its PN device sent.
        let by_lid = ack(StanzaKind::Message, "x", Some(Jid::lid(peer_lid)), None);
        assert_eq!(st.acknowledge(PHONE, dev, &by_lid), 1);
        assert_eq!(st.acknowledge(PHONE, dev, &by_lid), 0);
        // The read receipt's ack takes the read receipt, not the older delivery receipt.
        let read = ack(StanzaKind::Receipt, "x", Some(peer_device), Some("read"));
        assert_eq!(st.acknowledge(PHONE, dev, &read), 1);
        let notification = ack(StanzaKind::Notification, "n", Some(group), Some("w:gp2"));
        assert_eq!(st.acknowledge(PHONE, dev, &notification), 1);
        let left: Vec<Node> = st
            .held(PHONE, dev)
            .unwrap()
            .iter()
            .map(|s| binary::decode(&s.node).unwrap())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(left[0].attr_jid("from"), Some(Jid::pn("15550000009")));
        assert_eq!(
            (left[1].tag.as_ref(), left[1].attr_str("type")),
            ("receipt", None)
        );
        // Without `to` (Baileys' `sender` receipt for a PN chat) the id alone decides.
        let bare = ack(StanzaKind::Message, "x", None, None);
        assert_eq!(st.acknowledge(PHONE, dev, &bare), 1);
    }
}
