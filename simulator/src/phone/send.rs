//! `SignalPhone`: the mock phones' sends, encrypted with real Signal for every target device and
//! handed to the router's `deliver`.

use std::sync::atomic::Ordering;

use prost::Message as _;
use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::proto::wa;
use zapin_protocol::signal::padding;

use super::signal::{self, PhoneError};
use super::{PhoneActions, SeamError, SendText};
use crate::addr::{self, ChatAddr};
use crate::router::{self, Sender};
use crate::sim::Sim;
use crate::state::LoggedMessage;

/// The real mock phone: the default `SimConfig::phone`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SignalPhone;

impl PhoneActions for SignalPhone {
    fn send_text(&self, sim: &Sim, msg: SendText) -> Result<(), SeamError> {
        let t = router::now_secs();
        let (lid, push_name) = router::identity_of(sim, &msg.from)
            .ok_or_else(|| SeamError::Failed(format!("no account {}", msg.from)))?;
        let chat_jid = match &msg.to {
            ChatAddr::Group(gid) => addr::group_jid(gid),
            user => addr::pn_jid(&sim.state().resolve_user(user).unwrap_or_default()),
        };
        let key = |id: &str, from_me: bool| wa::MessageKey {
            remote_jid: Some(chat_jid.to_string()),
            from_me: Some(from_me),
            id: Some(id.to_owned()),
            participant: None,
        };
        let content = match &msg.about {
            None => wa::Message {
                conversation: Some(msg.text.clone()),
                ..Default::default()
            },
            Some(super::About::Edit { id }) => wa::Message {
                protocol_message: Some(Box::new(wa::message::ProtocolMessage {
                    key: Some(key(id, true)),
                    r#type: Some(14),
                    edited_message: Some(Box::new(wa::Message {
                        conversation: Some(msg.text.clone()),
                        ..Default::default()
                    })),
                    timestamp_ms: Some(i64::try_from(t).unwrap_or(0).saturating_mul(1000)),
                    ..Default::default()
                })),
                ..Default::default()
            },
            Some(super::About::Revoke { id }) => wa::Message {
                protocol_message: Some(Box::new(wa::message::ProtocolMessage {
                    key: Some(key(id, true)),
                    r#type: Some(0),
                    ..Default::default()
                })),
                ..Default::default()
            },
            Some(super::About::React { id, from_me }) => wa::Message {
                reaction_message: Some(wa::message::ReactionMessage {
                    key: Some(key(id, *from_me)),
                    text: Some(msg.text.clone()),
                    sender_timestamp_ms: Some(i64::try_from(t).unwrap_or(0).saturating_mul(1000)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        };
        let base = |from: Jid| {
            let mut n = Node::new("message")
                .attr("from", from)
                .attr("id", msg.id.clone())
                .attr("t", t.to_string())
                .attr("type", "text");
            if let Some(name) = &push_name {
                n = n.attr("notify", name.clone());
            }
            n
        };
        let chat = match &msg.to {
            ChatAddr::Group(gid) => addr::group_jid(gid),
            user => addr::pn_jid(
                &sim.state()
                    .resolve_user(user)
                    .ok_or_else(|| SeamError::Failed(format!("{user} is not an account")))?,
            ),
        };
        // Logged before delivery: receiving phones answer with receipts while we are sending.
        sim.state().log_message(
            msg.id.clone(),
            LoggedMessage {
                sender: addr::pn_device_jid(&msg.from, 0),
                chat,
                t,
                text: Some(msg.text.clone()),
            },
        );
        match &msg.to {
            ChatAddr::Group(gid) => send_group(sim, &msg, gid, &lid, &content, base)?,
            user => {
                let to = sim.state().resolve_user(user).unwrap_or_default();
                send_user(sim, &msg, &to, &lid, &content, base);
            }
        }
        sim.state()
            .counters()
            .messages_routed
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn send_read(
        &self,
        sim: &Sim,
        phone: &str,
        chat: &ChatAddr,
        ids: &[String],
    ) -> Result<(), SeamError> {
        let chat_jid: Jid = chat
            .to_string()
            .parse()
            .map_err(|e| SeamError::Failed(format!("{chat}: {e}")))?;
        // One receipt per original sender device: the first id in `id`, the rest in `<list>`.
        let mut by_sender: Vec<(String, Vec<String>)> = Vec::new();
        for id in ids {
            let sender = sim
                .state()
                .logged_message(id)
                .map(|m| m.sender)
                .unwrap_or_default();
            match by_sender.iter_mut().find(|(s, _)| *s == sender) {
                Some((_, list)) => list.push(id.clone()),
                None => by_sender.push((sender, vec![id.clone()])),
            }
        }
        for (sender, ids) in by_sender {
            let Some((first, rest)) = ids.split_first() else {
                continue;
            };
            let mut receipt = Node::new("receipt")
                .attr("id", first.clone())
                .attr("to", chat_jid.clone())
                .attr("type", "read")
                .attr("t", router::now_secs().to_string());
            if chat_jid.is_group()
                && let Ok(p) = sender.parse::<Jid>()
            {
                receipt = receipt.attr("participant", p);
            }
            if !rest.is_empty() {
                receipt = receipt.children(vec![
                    Node::new("list").children(
                        rest.iter()
                            .map(|id| Node::new("item").attr("id", id.clone()))
                            .collect(),
                    ),
                ]);
            }
            router::relay_receipt(sim, phone, 0, &receipt);
        }
        Ok(())
    }

    fn group_created(&self, sim: &Sim, id: &str) -> Result<(), SeamError> {
        let g = sim
            .state()
            .group(id)
            .ok_or_else(|| SeamError::Failed(format!("no group {id}")))?;
        let body = Node::new("create").children(vec![router::group_node(sim, &g)]);
        router::notify_group(sim, &g, &g.creator, body, None::<&Sender>);
        Ok(())
    }
}

/// A 1:1 text: every device of the recipient, and the sender's own companions (as a
/// `deviceSentMessage`, with `recipient`).
fn send_user(
    sim: &Sim,
    msg: &SendText,
    to: &str,
    lid: &str,
    content: &wa::Message,
    base: impl Fn(Jid) -> Node,
) {
    let mut targets: Vec<(String, u16, bool)> = router::devices_of(sim, to)
        .into_iter()
        .map(|d| (to.to_string(), d, false))
        .collect();
    if to != msg.from {
        targets.extend(
            router::devices_of(sim, &msg.from)
                .into_iter()
                .map(|d| (msg.from.clone(), d, true)),
        );
    }
    let dsm = wa::Message {
        device_sent_message: Some(Box::new(wa::message::DeviceSentMessage {
            destination_jid: Some(addr::pn_jid(to)),
            message: Some(Box::new(content.clone())),
            phash: None,
        })),
        ..Default::default()
    };
    for (phone, device, own) in targets {
        if phone == msg.from && device == 0 {
            continue;
        }
        let plaintext = if own { &dsm } else { content };
        let enc = match pairwise_enc(sim, &msg.from, &phone, device, plaintext) {
            Ok(enc) => enc,
            Err(e) => {
                tracing::warn!(
                    "phone {} cannot encrypt for {phone}:{device}: {e}",
                    msg.from
                );
                continue;
            }
        };
        let mut node =
            base(Jid::pn(msg.from.clone())).attr("sender_lid", Jid::lid(lid.to_string()));
        if own {
            node = node.attr("recipient", Jid::pn(to.to_string()));
        }
        router::deliver(sim, &phone, u32::from(device), node.children(vec![enc]));
    }
}

/// A group text: a fresh-or-existing sender key, its distribution message pairwise to every member
/// device, and one `skmsg` for all.
fn send_group(
    sim: &Sim,
    msg: &SendText,
    gid: &str,
    lid: &str,
    content: &wa::Message,
    base: impl Fn(Jid) -> Node,
) -> Result<(), SeamError> {
    let group = sim
        .state()
        .group(gid)
        .ok_or_else(|| SeamError::Failed(format!("no group {gid}")))?;
    let group_jid = addr::group_jid(gid);
    let padded = padding::pad(&content.encode_to_vec(), &mut pad_rng(sim, &msg.from));
    let (skdm, skmsg) = signal::group_encrypt(sim.state(), &msg.from, &group_jid, &padded)
        .map_err(|e| SeamError::Failed(e.to_string()))?;
    let skdm_message = wa::Message {
        sender_key_distribution_message: Some(wa::message::SenderKeyDistributionMessage {
            group_id: Some(group_jid.clone()),
            axolotl_sender_key_distribution_message: Some(skdm.serialized().to_vec()),
        }),
        ..Default::default()
    };
    let skmsg_enc = Node::new("enc")
        .attr("v", "2")
        .attr("type", "skmsg")
        .bytes(skmsg);
    for member in &group.participants {
        for device in router::devices_of(sim, &member.phone) {
            if member.phone == msg.from && device == 0 {
                continue;
            }
            let mut encs = Vec::new();
            match pairwise_enc(sim, &msg.from, &member.phone, device, &skdm_message) {
                Ok(enc) => encs.push(enc),
                Err(e) => {
                    tracing::warn!(
                        "phone {} cannot send its sender key to {}:{device}: {e}",
                        msg.from,
                        member.phone
                    );
                }
            }
            encs.push(skmsg_enc.clone());
            let node = base(Jid::new(gid.to_string(), Server::Group))
                .attr("participant", Jid::pn(msg.from.clone()))
                .attr("addressing_mode", "pn")
                .attr("participant_lid", Jid::lid(lid.to_string()))
                .children(encs);
            router::deliver(sim, &member.phone, u32::from(device), node);
        }
    }
    Ok(())
}

fn pairwise_enc(
    sim: &Sim,
    from: &str,
    phone: &str,
    device: u16,
    content: &wa::Message,
) -> Result<Node, PhoneError> {
    let padded = padding::pad(&content.encode_to_vec(), &mut pad_rng(sim, from));
    let ct = signal::encrypt_for(sim.state(), from, phone, device, &padded)?;
    Ok(Node::new("enc")
        .attr("v", "2")
        .attr("type", ct.enc_type())
        .bytes(ct.serialized().to_vec()))
}

fn pad_rng(sim: &Sim, phone: &str) -> chacha20::ChaCha20Rng {
    signal::op_rng(sim.state(), phone)
}
