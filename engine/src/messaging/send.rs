//! Sending: 1:1 fan-out with own-device `DeviceSentMessage`s, group sends with sender keys, and
//! resends answering retry receipts (wa-protocol.md §7.2, §7.5).

use std::collections::HashSet;

use rand_core::CryptoRng;
use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;
use zapin_protocol::proto::wa;
use zapin_protocol::signal::CiphertextMessage;
use zapin_signal_store::SenderKeyName;

use super::content::{encode_padded, skdm_message, stanza_type, wrap_device_sent};
use super::prekeys::{key_fetch_query, parse_bundle_fields, parse_key_fetch_result};
use super::receipts::ServerAck;
use super::usync::{UserDevices, device_query, parse_device_result};
use super::{
    Exchange, MAX_RETRY_COUNT, MessagingError, Messenger, SenderKeyShare, SentMessage, ids,
    signal_address,
};
use crate::signal_session::SendBatch;

/// A group's addressing mode (`addressing_mode` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressingMode {
    Pn,
    Lid,
}

impl AddressingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressingMode::Pn => "pn",
            AddressingMode::Lid => "lid",
        }
    }
}

/// A built outgoing stanza. Its Signal state is already durable (one transaction for the whole
/// stanza, see [`SendBatch`]): write `stanza` to the socket.
#[derive(Debug, Clone)]
pub struct Sent {
    pub stanza: Node,
    /// The participant hash we put in the stanza (group sends); [`Messenger::check_ack_phash`]
    /// compares it with the server ack's.
    pub phash: Option<String>,
    /// The device JIDs that got an `<enc>`.
    pub devices: Vec<Jid>,
}

fn enc_node(ct: &CiphertextMessage) -> Node {
    Node::new("enc")
        .attr("v", "2")
        .attr("type", ct.enc_type())
        .bytes(ct.serialized().to_vec())
}

impl Messenger {
    /// Device lists of `users` (non-AD), from the cache, asking the server for the missing ones
    /// in one usync.
    pub async fn devices_of<E: Exchange>(
        &mut self,
        exchange: &mut E,
        users: &[Jid],
    ) -> Result<Vec<UserDevices>, MessagingError> {
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for u in users {
            let u = u.to_non_ad();
            match self.device_lists.get(&u) {
                Some(d) => out.push(d.clone()),
                None => missing.push(u),
            }
        }
        if !missing.is_empty() {
            let sid = format!("usync-{}", self.device_lists.len());
            let answer = exchange.query(device_query(&missing, &sid)).await?;
            for d in parse_device_result(&answer)? {
                if let Some(lid) = &d.lid {
                    self.learn_lid(&d.user, lid);
                    // Own devices must be recognised in LID form too, or we would encrypt to
                    // ourselves.
                    if self.me.lid.is_none() && d.user == self.me.pn.to_non_ad() {
                        self.me.lid = Some(Jid {
                            device: self.me.pn.device,
                            ..lid.to_non_ad()
                        });
                    }
                }
                self.device_lists.insert(d.user.clone(), d.clone());
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Makes sure every device has a session in `batch`, fetching bundles (one IQ) for those
    /// without. Returns the devices that can be encrypted to; the others (server error, bad
    /// bundle) are left out rather than failing the send.
    async fn ensure_sessions<E: Exchange, R: rand_core::CryptoRng + Send + ?Sized>(
        &mut self,
        exchange: &mut E,
        devices: &[Jid],
        batch: &mut SendBatch,
        rng: &mut R,
    ) -> Result<Vec<Jid>, MessagingError> {
        let mut ready = Vec::new();
        let mut missing = Vec::new();
        for d in devices {
            if batch.has_session(&signal_address(d)).await? {
                ready.push(d.clone());
            } else {
                missing.push(d.clone());
            }
        }
        if missing.is_empty() {
            return Ok(ready);
        }
        let answer = exchange.query(key_fetch_query(&missing)).await?;
        for (jid, bundle) in parse_key_fetch_result(&answer)? {
            let jid = self.session_jid(&jid);
            let Ok(fetched) = bundle else { continue };
            if !missing.contains(&jid) {
                continue;
            }
            batch
                .initiate(
                    &self.me.identity,
                    &signal_address(&jid),
                    &fetched.bundle,
                    rng,
                )
                .await?;
            ready.push(jid);
        }
        Ok(ready)
    }

    fn device_identity_node(&self) -> Node {
        Node::new("device-identity").bytes(self.me.device_identity.clone())
    }

    fn remember_sent(
        &mut self,
        id: &str,
        chat: &Jid,
        message: &wa::Message,
        phash: Option<String>,
    ) {
        self.sent.insert(
            id.to_owned(),
            SentMessage {
                chat: chat.to_non_ad(),
                message: message.clone(),
                phash,
            },
        );
    }

    /// Checks the server's ack of one of our sends (§7.3). A `phash` different from the one our
    /// stanza carried means the server's device set for the chat is not ours: some member
    /// gained or lost a device without us hearing of it, so that device did not get the
    /// message. Drops what the next send would otherwise reuse — the group's metadata, the
    /// members' (and our own) device lists, and the record of who holds our sender key — so it
    /// asks usync again and distributes the sender key to the new devices. Returns whether it
    /// did. (whatsmeow drops only its group cache here; its device-list drop is a TODO.)
    pub fn check_ack_phash(&mut self, ack: &ServerAck) -> bool {
        let Some(theirs) = ack.phash.as_deref() else {
            return false;
        };
        let Some(ours) = self.sent.get(&ack.id).and_then(|s| s.phash.clone()) else {
            // We sent none (a 1:1 send) or forgot the message: nothing to compare.
            return false;
        };
        if ours == theirs {
            return false;
        }
        let chat = ack.chat.to_non_ad();
        tracing::info!(%chat, ours, theirs, "participant hash mismatch: refreshing device lists");
        let mut users = Vec::new();
        if let Some(meta) = self.groups.remove(&chat) {
            users.extend(meta.members);
        } else if !chat.is_group() {
            users.push(chat.clone());
        }
        users.push(self.me.pn.to_non_ad());
        if let Some(lid) = self.me.lid.as_ref() {
            users.push(lid.to_non_ad());
        }
        for user in &users {
            self.invalidate_devices(user);
        }
        self.forget_sender_key_devices(&chat);
        true
    }

    /// Encrypts `message` for every device of `to` (a user, PN or LID) and every other device of
    /// our own (as a `DeviceSentMessage`), and builds the `<message>` stanza of §7.2. Devices
    /// without a session get one from a fetched bundle first.
    pub async fn send_direct<E: Exchange, R: CryptoRng + Send + ?Sized>(
        &mut self,
        exchange: &mut E,
        to: &Jid,
        message: &wa::Message,
        id: &str,
        rng: &mut R,
    ) -> Result<Sent, MessagingError> {
        let chat = to.to_non_ad();
        let own_user = self.me.pn.to_non_ad();
        let mut users = vec![chat.clone()];
        if !self.me.is_own_user(&chat) {
            users.push(own_user);
        }
        let lists = self.devices_of(exchange, &users).await?;
        let mut targets: Vec<Jid> = Vec::new();
        for list in &lists {
            for d in list.device_jids() {
                if !self.me.is_this_device(&d) && !targets.contains(&d) {
                    targets.push(d);
                }
            }
        }
        let mut batch = SendBatch::new(&self.store, &self.me.store_id);
        let targets = self
            .ensure_sessions(exchange, &targets, &mut batch, rng)
            .await?;
        if !targets.iter().any(|d| !self.me.is_own_user(d)) && !self.me.is_own_user(&chat) {
            return Err(MessagingError::NoDevices(chat));
        }
        let dsm = wrap_device_sent(message, &chat, None);
        for d in &targets {
            let plain = if self.me.is_own_user(d) {
                &dsm
            } else {
                message
            };
            batch
                .encrypt(&signal_address(d), &encode_padded(plain, rng))
                .await?;
        }
        let encrypted = batch.commit().await?;
        let mut participants = Vec::with_capacity(targets.len());
        let mut any_pkmsg = false;
        for (d, ct) in targets.iter().zip(&encrypted.pairwise) {
            let enc = enc_node(ct);
            any_pkmsg |= enc.attr_str("type") == Some("pkmsg");
            participants.push(Node::new("to").attr("jid", d.clone()).children(vec![enc]));
        }
        let mut children = vec![Node::new("participants").children(participants)];
        if any_pkmsg {
            children.push(self.device_identity_node());
        }
        let stanza = Node::new("message")
            .attr("id", id.to_owned())
            .attr("to", chat.clone())
            .attr("type", stanza_type(message))
            .children(children);
        self.remember_sent(id, &chat, message, None);
        Ok(Sent {
            stanza,
            phash: None,
            devices: targets,
        })
    }

    /// Our sender-key name in `group`: our own address in the group's namespace.
    fn own_sender_key_name(&self, group: &Jid, mode: AddressingMode) -> SenderKeyName {
        let me = match (mode, &self.me.lid) {
            (AddressingMode::Lid, Some(lid)) => lid,
            _ => &self.me.pn,
        };
        SenderKeyName::new(group.to_non_ad().to_string(), signal_address(me))
    }

    /// Sends `message` to `group` (members as user JIDs, from group metadata): one `skmsg` for
    /// everyone, plus our sender key distributed pairwise to each member device that does not
    /// hold it yet (§7.2, §12.5).
    #[allow(clippy::too_many_arguments)]
    pub async fn send_group<E: Exchange, R: CryptoRng + Send + ?Sized>(
        &mut self,
        exchange: &mut E,
        group: &Jid,
        members: &[Jid],
        mode: AddressingMode,
        message: &wa::Message,
        id: &str,
        rng: &mut R,
    ) -> Result<Sent, MessagingError> {
        let group = group.to_non_ad();
        let mut users: Vec<Jid> = members.iter().map(Jid::to_non_ad).collect();
        if !users.iter().any(|u| self.me.is_own_user(u)) {
            users.push(self.me.pn.to_non_ad());
        }
        let lists = self.devices_of(exchange, &users).await?;
        let mut all: Vec<Jid> = Vec::new();
        for list in &lists {
            for d in list.device_jids() {
                if !self.me.is_this_device(&d) && !all.contains(&d) {
                    all.push(d);
                }
            }
        }
        // The server hashes every member device in the group's namespace (the one members were
        // asked in), this one included; `all` is keyed like Signal sessions (LID when known).
        let this_device = match (mode, &self.me.lid) {
            (AddressingMode::Lid, Some(lid)) => lid.clone(),
            _ => self.me.pn.clone(),
        };
        let mut hashed = vec![this_device];
        for d in lists.iter().flat_map(UserDevices::device_jids_as_asked) {
            if !self.me.is_this_device(&d) && !hashed.contains(&d) {
                hashed.push(d);
            }
        }
        let phash = ids::phash(&hashed);

        let name = self.own_sender_key_name(&group, mode);
        let mut batch = SendBatch::new(&self.store, &self.me.store_id);
        let skdm = batch.sender_key_distribution(&name, rng).await?;
        let mut share = self.sender_key_shares.remove(&group).unwrap_or_default();
        if share.key_id != skdm.key_id {
            share = SenderKeyShare {
                key_id: skdm.key_id,
                devices: HashSet::new(),
            };
        }
        let lacking: Vec<Jid> = all
            .iter()
            .filter(|d| !share.devices.contains(*d))
            .cloned()
            .collect();
        let mut ready = Vec::new();
        if !lacking.is_empty() {
            ready = self
                .ensure_sessions(exchange, &lacking, &mut batch, rng)
                .await?;
            let carrier = skdm_message(&group, skdm.serialized());
            for d in &ready {
                batch
                    .encrypt(&signal_address(d), &encode_padded(&carrier, rng))
                    .await?;
            }
        }
        batch
            .group_encrypt(&name, &encode_padded(message, rng), rng)
            .await?;
        let encrypted = batch.commit().await?;
        let Some(skmsg) = encrypted.group else {
            return Err(MessagingError::Malformed("group send", "no skmsg"));
        };
        let mut participants = Vec::new();
        let mut any_pkmsg = false;
        for (d, ct) in ready.into_iter().zip(&encrypted.pairwise) {
            let enc = enc_node(ct);
            any_pkmsg |= enc.attr_str("type") == Some("pkmsg");
            participants.push(Node::new("to").attr("jid", d.clone()).children(vec![enc]));
            share.devices.insert(d);
        }
        self.sender_key_shares.insert(group.clone(), share);

        let mut children = Vec::new();
        if !participants.is_empty() {
            children.push(Node::new("participants").children(participants));
        }
        children.push(
            Node::new("enc")
                .attr("v", "2")
                .attr("type", "skmsg")
                .bytes(skmsg.serialized().to_vec()),
        );
        if any_pkmsg {
            children.push(self.device_identity_node());
        }
        let stanza = Node::new("message")
            .attr("id", id.to_owned())
            .attr("to", group.clone())
            .attr("type", stanza_type(message))
            .attr("addressing_mode", mode.as_str())
            .attr("phash", phash.clone())
            .children(children);
        self.remember_sent(id, &group, message, Some(phash.clone()));
        Ok(Sent {
            stanza,
            phash: Some(phash),
            devices: all,
        })
    }

    /// Answers a peer's retry receipt (§7.5): re-encrypts the stored message for the one device
    /// that asked, from a new session when the receipt carries `<keys>` (or when we have none),
    /// and returns the resend stanza. `None` when the message is no longer stored or the count
    /// is past [`MAX_RETRY_COUNT`].
    pub async fn answer_retry<E: Exchange, R: CryptoRng + Send + ?Sized>(
        &mut self,
        exchange: &mut E,
        receipt: &Node,
        rng: &mut R,
    ) -> Result<Option<Node>, MessagingError> {
        let id = receipt
            .attr_str("id")
            .ok_or(MessagingError::Malformed("retry receipt", "no id"))?
            .to_owned();
        let from = receipt
            .attr_jid("from")
            .ok_or(MessagingError::Malformed("retry receipt", "no from"))?;
        let retry = receipt
            .child("retry")
            .ok_or(MessagingError::Malformed("retry receipt", "no <retry>"))?;
        let count: u32 = retry
            .attr_str("count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        if count > MAX_RETRY_COUNT {
            return Ok(None);
        }
        let Some(sent) = self.sent.get(&id).cloned() else {
            return Ok(None);
        };
        let is_group = from.is_group();
        let target = if is_group {
            receipt
                .attr_jid("participant")
                .ok_or(MessagingError::Malformed("retry receipt", "no participant"))?
        } else {
            from.clone()
        };
        let device = self.session_jid(&target);

        let mut batch = SendBatch::new(&self.store, &self.me.store_id);
        if let Some(keys) = receipt.child("keys") {
            let registration = receipt
                .child("registration")
                .and_then(Node::content_bytes)
                .filter(|b| !b.is_empty() && b.len() <= 4)
                .map(|b| b.iter().fold(0u32, |a, &x| (a << 8) | u32::from(x)))
                .ok_or(MessagingError::Malformed(
                    "retry receipt",
                    "no registration",
                ))?;
            let fetched = parse_bundle_fields(keys, registration)
                .map_err(|_| MessagingError::Malformed("retry receipt", "bad <keys>"))?;
            batch
                .initiate(
                    &self.me.identity,
                    &signal_address(&device),
                    &fetched.bundle,
                    rng,
                )
                .await?;
        } else if self
            .ensure_sessions(exchange, std::slice::from_ref(&device), &mut batch, rng)
            .await?
            .is_empty()
        {
            return Err(MessagingError::NoDevices(device));
        }

        let mut message = sent.message.clone();
        if is_group {
            let mode = match receipt.attr_str("addressing_mode") {
                Some("lid") => AddressingMode::Lid,
                _ if target.is_lid() => AddressingMode::Lid,
                _ => AddressingMode::Pn,
            };
            let name = self.own_sender_key_name(&from, mode);
            let skdm = batch.sender_key_distribution(&name, rng).await?;
            message.sender_key_distribution_message =
                skdm_message(&from, skdm.serialized()).sender_key_distribution_message;
        } else if self.me.is_own_user(&target) {
            message = wrap_device_sent(&message, &sent.chat, None);
        }
        batch
            .encrypt(&signal_address(&device), &encode_padded(&message, rng))
            .await?;
        let Some(ct) = batch.commit().await?.pairwise.pop() else {
            return Err(MessagingError::Malformed("retry resend", "no ciphertext"));
        };
        let enc = enc_node(&ct).attr("count", count.to_string());
        let pkmsg = enc.attr_str("type") == Some("pkmsg");
        let mut stanza = Node::new("message")
            .attr("id", id)
            .attr("type", stanza_type(&sent.message));
        if is_group {
            stanza = stanza.attr("to", from).attr("participant", target);
        } else {
            stanza = stanza
                .attr("to", target.clone())
                .attr("device_fanout", "false");
            if self.me.is_own_user(&target) {
                stanza = stanza.attr("recipient", sent.chat.clone());
            }
        }
        let mut children = vec![enc];
        if pkmsg {
            children.push(self.device_identity_node());
        }
        Ok(Some(stanza.children(children)))
    }
}
