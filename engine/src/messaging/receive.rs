//! Receiving `<message>` stanzas (wa-protocol.md §7.3–§7.5): decrypt every `<enc>`, process
//! sender-key distributions, unwrap own-device copies, and answer with a receipt (or a retry
//! receipt) once the new Signal state is durable. A message with content is durable too before
//! any reply: its [`inbox`] entry is committed in the same transaction as the ratchet step.

use rand_core::CryptoRng;
use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;
use zapin_protocol::proto::wa;
use zapin_protocol::signal::{PreKey, PreKeyBundle, SenderKeyDistributionMessage, SignedPreKey};
use zapin_signal_store::{Batch, SenderKeyName};

use super::Exchange;
use super::content::{content_type, decode_padded, has_content, unwrap_device_sent};
use super::inbox;
use super::prekeys::{be_bytes, bundle_key_nodes};
use super::receipts::{MessageKey, StatusUpdate, ack_for, parse_receipt, receipt_statuses};
use super::{MAX_RETRY_COUNT, MessagingError, Messenger, signal_address};
use crate::crashpoint;
use crate::signal_session::{
    EncType, Pending, SessionError, prepare_decrypt, prepare_distribution, prepare_group_decrypt,
};

/// NACK code: parsing error (§7.8).
pub const NACK_PARSING: u16 = 487;
/// NACK code: invalid protobuf (§7.8).
pub const NACK_INVALID_PROTOBUF: u16 = 491;

/// A decrypted message for the event stream (`messages.upsert`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    pub key: MessageKey,
    /// The device that sent it.
    pub sender: Jid,
    /// The sender's other identity (LID for a PN sender or the reverse), when the server said.
    pub sender_alt: Option<Jid>,
    /// `notify`.
    pub push_name: Option<String>,
    /// `t`, Unix seconds.
    pub timestamp: u64,
    /// The content, with an own-device `DeviceSentMessage` already unwrapped.
    pub message: wa::Message,
    /// The content key (`conversation`, `extendedTextMessage`, …).
    pub message_type: &'static str,
    /// The stanza's `type` (`text`, `media`, …).
    pub stanza_type: String,
    pub category: Option<String>,
    /// Delivered from the offline queue.
    pub offline: bool,
    /// The sender's identity key changed with this message (reinstall; "security code
    /// changed"). The new key is already trusted and stored.
    pub identity_changed: bool,
}

/// What handling one incoming `<message>` produced. Send `replies` (receipts/acks) in order;
/// they are only produced once the message's Signal state is durable.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Received {
    pub replies: Vec<Node>,
    /// `None` for duplicates, undecryptable messages and pure protocol plumbing (a lone SKDM).
    pub message: Option<ReceivedMessage>,
}

/// What handling one incoming `<receipt>` produced.
#[derive(Debug, Default)]
pub struct ReceiptOutcome {
    /// The ack, then (for a retry receipt we could answer) the resend. Send in order.
    pub replies: Vec<Node>,
    /// `messages.update` events.
    pub statuses: Vec<StatusUpdate>,
    /// Why a retry receipt could not be answered (the ack is still in `replies`).
    pub retry_error: Option<MessagingError>,
}

/// Who sent a message and in which chat, from the stanza attributes.
struct Origin {
    chat: Jid,
    sender: Jid,
    sender_alt: Option<Jid>,
    from_me: bool,
    is_group: bool,
}

/// Outcome of one `<enc>`.
enum EncOutcome {
    /// Decrypted; the writes that make it durable are not committed yet.
    Plain(Box<wa::Message>, Batch),
    /// Decrypted (the key is spent) but the plaintext is not a message.
    Undecodable(MessagingError, Batch),
    Duplicate,
    Failed(MessagingError),
}

impl Messenger {
    fn origin(&mut self, node: &Node) -> Result<Origin, MessagingError> {
        let from = node
            .attr_jid("from")
            .ok_or(MessagingError::Malformed("message", "no from"))?;
        if from.is_group() || from.is_broadcast() {
            let sender = node
                .attr_jid("participant")
                .ok_or(MessagingError::Malformed("message", "no participant"))?;
            let alt = node
                .attr_jid("participant_lid")
                .or_else(|| node.attr_jid("participant_pn"));
            return Ok(Origin {
                chat: from.to_non_ad(),
                from_me: self.me.is_own_user(&sender),
                sender,
                sender_alt: alt,
                is_group: true,
            });
        }
        let alt = node
            .attr_jid("sender_lid")
            .or_else(|| node.attr_jid("sender_pn"));
        let from_me = self.me.is_own_user(&from);
        let chat = if from_me {
            node.attr_jid("recipient")
                .map(|r| r.to_non_ad())
                .unwrap_or_else(|| from.to_non_ad())
        } else {
            from.to_non_ad()
        };
        Ok(Origin {
            chat,
            from_me,
            sender: from,
            sender_alt: alt,
            is_group: false,
        })
    }

    /// Handles an incoming `<message>`: decrypts, persists, and returns the receipt to send and
    /// the message to surface. Bad ciphertext becomes a retry receipt (+ ack), a bad plaintext
    /// or a stanza missing its attributes a NACK. Fails only on a store error: then nothing is
    /// acked and the server redelivers.
    pub async fn receive<R: CryptoRng + Send + ?Sized>(
        &mut self,
        node: &Node,
        rng: &mut R,
    ) -> Result<Received, MessagingError> {
        let Some(id) = node.attr_str("id").map(str::to_owned) else {
            return Ok(Received {
                replies: vec![ack_for(node, Some(NACK_PARSING))],
                message: None,
            });
        };
        let origin = match self.origin(node) {
            Ok(o) => o,
            Err(_) => {
                return Ok(Received {
                    replies: vec![ack_for(node, Some(NACK_PARSING))],
                    message: None,
                });
            }
        };
        if let Some(alt) = &origin.sender_alt {
            if origin.sender.is_pn() {
                self.learn_lid(&origin.sender, alt);
            } else {
                self.learn_lid(alt, &origin.sender);
            }
        }
        let session_device = self.session_jid(&origin.sender);
        let pairwise = signal_address(&session_device);

        // Writes of this stanza not yet committed: the ratchet steps, the sender keys it
        // distributes and, when it carries content, its inbox entry. One transaction, committed
        // before any reply leaves.
        let mut staged = Batch::new();
        let mut inboxed = false;
        let mut content: Option<wa::Message> = None;
        let mut failure: Option<MessagingError> = None;
        let mut dsm_chat: Option<Jid> = None;
        let mut identity_changed = false;
        let mut saw_enc = false;
        // Pairwise first: a group message's skmsg may need the SKDM carried next to it.
        let encs: Vec<&Node> = node.children_by_tag("enc").collect();
        let ordered = encs
            .iter()
            .filter(|e| e.attr_str("type") != Some("skmsg"))
            .chain(encs.iter().filter(|e| e.attr_str("type") == Some("skmsg")));
        for enc in ordered {
            saw_enc = true;
            let body = enc.content_bytes().map(|b| b.to_vec()).unwrap_or_default();
            let outcome = match enc.attr_str("type") {
                Some("skmsg") => {
                    if !origin.is_group {
                        EncOutcome::Failed(MessagingError::Malformed("message", "skmsg in a DM"))
                    } else {
                        let name = SenderKeyName::new(
                            origin.chat.to_string(),
                            signal_address(&origin.sender),
                        );
                        classify(
                            prepare_group_decrypt(&self.store, &self.me.store_id, &name, &body)
                                .await
                                .map(Pending::into_parts),
                        )
                    }
                }
                Some(t) => match EncType::parse(t) {
                    Ok(enc_type) => classify(
                        prepare_decrypt(
                            &self.store,
                            &self.me.store_id,
                            &self.me.identity,
                            &pairwise,
                            enc_type,
                            &body,
                            rng,
                        )
                        .await
                        .map(|p| {
                            let (batch, i) = p.into_parts();
                            identity_changed |= i.replaced_identity.is_some();
                            (batch, i.plaintext)
                        }),
                    ),
                    Err(e) => EncOutcome::Failed(e.into()),
                },
                None => EncOutcome::Failed(MessagingError::Malformed("enc", "no type")),
            };
            match outcome {
                EncOutcome::Plain(m, batch) => {
                    staged.append(batch);
                    let mut m = *m;
                    // Own-device copies carry the original inside; only our own devices may
                    // send one (a DSM from anyone else is not unwrapped, so it is no content).
                    if origin.from_me
                        && let Some((inner, dest)) = unwrap_device_sent(&m)
                    {
                        m = inner;
                        if let Some(d) = dest {
                            dsm_chat = Some(d.to_non_ad());
                        }
                    }
                    let skdm = m.sender_key_distribution_message.take();
                    if has_content(&m) {
                        content = Some(m);
                    }
                    if let Some(skdm) = skdm {
                        staged.append(self.prepare_skdm(&origin, &skdm).await?);
                        // The skmsg next to it decrypts with that key: make it durable first,
                        // with this stanza's content if it already has some.
                        if let Some(m) = &content {
                            let received =
                                self.received(node, &origin, &id, m, &dsm_chat, identity_changed);
                            staged = staged.put_inbox(inbox::entry_for(&received));
                            inboxed = true;
                        }
                        self.store
                            .apply(&self.me.store_id, std::mem::take(&mut staged))
                            .await?;
                    }
                }
                EncOutcome::Undecodable(e, batch) => {
                    // The key was used: keep the ratchet step, refuse the content below.
                    staged.append(batch);
                    failure = Some(e);
                }
                // Already decrypted and committed before (its inbox entry with it): ack it,
                // surface nothing here.
                EncOutcome::Duplicate => {}
                EncOutcome::Failed(e) => {
                    if matches!(e, MessagingError::Store(_))
                        || matches!(e, MessagingError::Session(SessionError::Store(_)))
                    {
                        return Err(e);
                    }
                    failure = Some(e);
                }
            }
        }

        let received = content
            .as_ref()
            .map(|m| self.received(node, &origin, &id, m, &dsm_chat, identity_changed));
        if let Some(r) = &received
            && !inboxed
        {
            staged = staged.put_inbox(inbox::entry_for(r));
        }
        if !staged.is_empty() {
            crashpoint::hit("receive.decrypted");
            self.store.apply(&self.me.store_id, staged).await?;
            crashpoint::hit("receive.committed");
        }

        if received.is_none()
            && let Some(err) = failure
        {
            // The decrypt succeeded and is persisted but the plaintext is bad: a resend would
            // carry the same bytes, so refuse it instead of asking again (§7.8 codes).
            let nack = match err {
                MessagingError::BadPadding => Some(NACK_PARSING),
                MessagingError::BadProtobuf => Some(NACK_INVALID_PROTOBUF),
                _ => None,
            };
            if nack.is_some() {
                return Ok(Received {
                    replies: vec![ack_for(node, nack)],
                    message: None,
                });
            }
            let replies = self.retry_replies(node, &id, &err, rng).await?;
            return Ok(Received {
                replies,
                message: None,
            });
        }
        self.retry_counts.remove(&id);
        let mut replies = vec![self.delivery_receipt(node, &origin)];
        if !saw_enc {
            replies = vec![ack_for(node, None)];
        }
        // Duplicates are acked (the receipt above) and never surfaced twice.
        Ok(Received {
            replies,
            message: received,
        })
    }

    /// The message to surface for `content`, decrypted from `node`.
    fn received(
        &self,
        node: &Node,
        origin: &Origin,
        id: &str,
        content: &wa::Message,
        dsm_chat: &Option<Jid>,
        identity_changed: bool,
    ) -> ReceivedMessage {
        let chat = dsm_chat.clone().unwrap_or_else(|| origin.chat.clone());
        ReceivedMessage {
            key: MessageKey {
                remote_jid: chat,
                from_me: origin.from_me,
                id: id.to_owned(),
                participant: origin.is_group.then(|| origin.sender.clone()),
            },
            sender: origin.sender.clone(),
            sender_alt: origin.sender_alt.clone(),
            push_name: node.attr_str("notify").map(str::to_owned),
            timestamp: node.attr_str("t").and_then(|t| t.parse().ok()).unwrap_or(0),
            message_type: content_type(content),
            message: content.clone(),
            stanza_type: node.attr_str("type").unwrap_or("text").to_owned(),
            category: node.attr_str("category").map(str::to_owned),
            offline: node.get_attr("offline").is_some(),
            identity_changed,
        }
    }

    /// Handles an incoming `<receipt>`: status updates for our messages, the ack, and for a
    /// retry receipt the re-encrypted resend ([`Messenger::answer_retry`]).
    pub async fn handle_receipt<E: Exchange, R: CryptoRng + Send + ?Sized>(
        &mut self,
        exchange: &mut E,
        node: &Node,
        rng: &mut R,
    ) -> Result<ReceiptOutcome, MessagingError> {
        let mut out = ReceiptOutcome {
            replies: vec![ack_for(node, None)],
            ..Default::default()
        };
        let Ok(info) = parse_receipt(node) else {
            return Ok(out);
        };
        out.statuses = receipt_statuses(&info);
        if info.kind.as_deref() == Some("retry") {
            match self.answer_retry(exchange, node, rng).await {
                Ok(Some(resend)) => out.replies.push(resend),
                Ok(None) => {}
                Err(e @ (MessagingError::Store(_) | MessagingError::Exchange(_))) => return Err(e),
                Err(e) => out.retry_error = Some(e),
            }
        }
        Ok(out)
    }

    /// The sender key a member distributes with `skdm`, as writes to commit with the stanza.
    async fn prepare_skdm(
        &mut self,
        origin: &Origin,
        skdm: &wa::message::SenderKeyDistributionMessage,
    ) -> Result<Batch, MessagingError> {
        let (Some(group), Some(bytes)) = (
            skdm.group_id.as_deref(),
            skdm.axolotl_sender_key_distribution_message.as_deref(),
        ) else {
            return Ok(Batch::new());
        };
        // A malformed SKDM only costs the group messages it would have unlocked.
        let Ok(parsed) = SenderKeyDistributionMessage::parse(bytes) else {
            return Ok(Batch::new());
        };
        let name = SenderKeyName::new(group, signal_address(&origin.sender));
        Ok(prepare_distribution(&self.store, &self.me.store_id, &name, &parsed).await?)
    }

    /// `<receipt id to [participant] [recipient] [type]>` for a message handled successfully.
    fn delivery_receipt(&self, node: &Node, origin: &Origin) -> Node {
        let mut r = Node::new("receipt");
        if let Some(id) = node.get_attr("id") {
            r = r.attr("id", id.clone());
        }
        if origin.is_group {
            r = r
                .attr("to", origin.chat.clone())
                .attr("participant", origin.sender.clone());
        } else {
            r = r.attr("to", origin.sender.clone());
        }
        if node.attr_str("category") == Some("peer") {
            r = r.attr("type", "peer_msg");
        } else if origin.from_me {
            if !origin.is_group {
                r = r.attr("recipient", origin.chat.clone());
            }
            r = r.attr("type", "sender");
        }
        r
    }

    /// The retry receipt (§7.5) for a message we could not decrypt, plus an ack. Past
    /// [`MAX_RETRY_COUNT`] only the ack.
    async fn retry_replies<R: CryptoRng + Send + ?Sized>(
        &mut self,
        node: &Node,
        id: &str,
        err: &MessagingError,
        rng: &mut R,
    ) -> Result<Vec<Node>, MessagingError> {
        let count = self.retry_counts.get(&id.to_owned()).copied().unwrap_or(0) + 1;
        let ack = ack_for(node, None);
        if count > MAX_RETRY_COUNT {
            return Ok(vec![ack]);
        }
        self.retry_counts.insert(id.to_owned(), count);
        let mut receipt = Node::new("receipt").attr("id", id.to_owned());
        if let Some(from) = node.get_attr("from") {
            receipt = receipt.attr("to", from.clone());
        }
        for key in ["participant", "recipient"] {
            if let Some(v) = node.get_attr(key) {
                receipt = receipt.attr(key, v.clone());
            }
        }
        receipt = receipt.attr("type", "retry");
        if node.attr_str("category") == Some("peer") {
            receipt = receipt.attr("category", "peer");
        }
        let mut children = vec![
            Node::new("retry")
                .attr("count", count.to_string())
                .attr("id", id.to_owned())
                .attr("t", node.attr_str("t").unwrap_or("0").to_owned())
                .attr("v", "1"),
            Node::new("registration").bytes(be_bytes(self.me.identity.registration_id, 4)),
        ];
        let lost_session = matches!(
            err,
            MessagingError::Session(SessionError::NoSession(_))
                | MessagingError::Session(SessionError::Signal(
                    zapin_protocol::signal::SignalError::NoSession
                ))
        );
        if (count > 1 || lost_session)
            && let Some(keys) = self.retry_keys(rng).await?
        {
            children.push(keys);
        }
        Ok(vec![receipt.children(children), ack])
    }

    /// `<keys>` for a retry receipt: a freshly generated one-time prekey (stored first, so it is
    /// there when the peer's new `pkmsg` arrives), our signed prekey and device identity.
    async fn retry_keys<R: CryptoRng + Send + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<Option<Node>, MessagingError> {
        let device = &self.me.store_id;
        let Some(creds) = self.store.load_credentials(device).await? else {
            return Ok(None);
        };
        let next_id = self.store.max_prekey_id(device).await?.unwrap_or(0) + 1;
        let prekey = PreKey::generate(next_id, rng);
        self.store
            .insert_prekeys(
                device,
                &[zapin_signal_store::PreKey {
                    id: prekey.id,
                    key_pair: zapin_signal_store::KeyPairBytes::new(
                        prekey.key_pair.public().0,
                        *prekey.key_pair.private_bytes(),
                    ),
                }],
            )
            .await?;
        let spk = &creds.signed_prekey;
        let signed = SignedPreKey {
            id: spk.id,
            key_pair: zapin_protocol::crypto::KeyPair::from_private(*spk.key_pair.private.expose()),
            signature: spk.signature,
        };
        let bundle = PreKeyBundle::from_local(&self.me.identity, &signed, Some(&prekey));
        let mut children = bundle_key_nodes(&bundle);
        children.push(Node::new("device-identity").bytes(self.me.device_identity.clone()));
        Ok(Some(Node::new("keys").children(children)))
    }
}

fn classify(r: Result<(Batch, Vec<u8>), SessionError>) -> EncOutcome {
    match r {
        Ok((batch, plain)) => match decode_padded(&plain) {
            Ok(m) => EncOutcome::Plain(Box::new(m), batch),
            Err(e) => EncOutcome::Undecodable(e, batch),
        },
        Err(SessionError::Duplicate { .. }) => EncOutcome::Duplicate,
        Err(e) => EncOutcome::Failed(e.into()),
    }
}
