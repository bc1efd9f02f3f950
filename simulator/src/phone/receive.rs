//! What the mock phone does with a stanza the router delivers to device 0: decrypt and record
//! messages (answering with a delivery receipt, or a retry receipt when it cannot decrypt, §7.5),
//! and record receipts for the messages it sent.

use prost::Message as _;
use zapin_protocol::binary::Node;
use zapin_protocol::proto::wa;
use zapin_protocol::signal::padding;

use super::signal;
use crate::addr;
use crate::router;
use crate::sim::Sim;
use crate::state::{MessageContext, ReceiptRecord, ReceivedMessage};

/// Consumes a stanza delivered to `phone`'s device 0. Never fails: what it cannot use is logged
/// (and, for messages, recorded as `undecryptable`).
pub fn receive(sim: &Sim, phone: &str, node: &Node) {
    match node.tag.as_ref() {
        "message" => receive_message(sim, phone, node),
        "receipt" => receive_receipt(sim, phone, node),
        _ => {}
    }
}

fn now_ms() -> u64 {
    u64::try_from(crate::state::unix_now().as_millis()).unwrap_or(u64::MAX)
}

fn receive_receipt(sim: &Sim, phone: &str, node: &Node) {
    let kind = match node.attr_str("type") {
        None | Some("inactive") => "delivered",
        Some("read" | "read-self") => "read",
        Some("played") => "played",
        Some("retry") => {
            super::retry::resend(sim, phone, node);
            return;
        }
        Some(other) => {
            tracing::debug!("phone {phone} got a {other} receipt: not recorded");
            return;
        }
    };
    let Some(id) = node.attr_str("id") else {
        return;
    };
    let from = node
        .attr_jid("participant")
        .or_else(|| node.attr_jid("from"))
        .map(|j| j.to_string())
        .unwrap_or_default();
    let listed = node
        .child("list")
        .map(|l| {
            l.children_by_tag("item")
                .filter_map(|i| i.attr_str("id"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let t = now_ms();
    for id in std::iter::once(id.to_string()).chain(listed) {
        let record = ReceiptRecord {
            id,
            from: from.clone(),
            kind: kind.to_string(),
            t,
        };
        if let Err(e) = sim.state().record_receipt(phone, record) {
            tracing::debug!("receipt for {phone} not recorded: {e}");
        }
    }
}

fn receive_message(sim: &Sim, phone: &str, node: &Node) {
    let (Some(id), Some(from)) = (node.attr_str("id"), node.attr_jid("from")) else {
        return;
    };
    let group = from.is_group().then(|| from.to_non_ad().to_string());
    let Some(sender_jid) = (if group.is_some() {
        node.attr_jid("participant")
    } else {
        Some(from.clone())
    }) else {
        return;
    };
    let Some((sender_phone, sender_device)) = router::resolve_device(sim, &sender_jid) else {
        tracing::debug!("phone {phone}: message from unknown {sender_jid}");
        return;
    };
    let sender_addr = signal::address(&sender_phone, sender_device);

    let mut decrypted = Vec::new();
    let mut failure = None;
    for enc in node.children_by_tag("enc") {
        match decrypt_enc(
            sim,
            phone,
            &sender_phone,
            sender_device,
            group.as_deref(),
            enc,
        ) {
            Ok(m) => {
                if let Some(skdm) = &m.sender_key_distribution_message
                    && let (Some(gid), Some(bytes)) = (
                        skdm.group_id.as_deref().or(group.as_deref()),
                        skdm.axolotl_sender_key_distribution_message.as_deref(),
                    )
                    && let Err(e) =
                        signal::process_skdm(sim.state(), phone, gid, &sender_addr, bytes)
                {
                    tracing::debug!("phone {phone}: bad sender key from {sender_addr}: {e}");
                }
                decrypted.push(m);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }

    let own_copy = sender_phone == phone;
    let chat = match (&group, own_copy) {
        (Some(g), _) => g.clone(),
        (None, true) => node
            .attr_jid("recipient")
            .map(|r| r.to_non_ad().to_string())
            .unwrap_or_else(|| addr::pn_jid(phone)),
        (None, false) => addr::pn_jid(&sender_phone),
    };
    let mut record = ReceivedMessage {
        id: id.to_string(),
        from: addr::pn_jid(&sender_phone),
        chat,
        participant: group.is_some().then(|| addr::pn_jid(&sender_phone)),
        kind: String::new(),
        text: None,
        context: None,
        details: Default::default(),
        t: now_ms(),
    };
    if let Some(e) = failure {
        tracing::info!("phone {phone} cannot decrypt {id} from {sender_addr}: {e}");
        record.kind = "undecryptable".to_string();
        let _ = sim.state().record_phone_message(phone, record);
        send_retry(
            sim,
            phone,
            node,
            id,
            &from,
            group.is_some().then_some(&sender_jid),
        );
        return;
    }
    if let Some((kind, text)) = decrypted.iter().find_map(describe) {
        record.kind = kind.to_string();
        record.text = text;
        record.context = decrypted.iter().find_map(context_of);
        if let Some(m) = decrypted.iter().find(|m| describe(m).is_some()) {
            record.details = super::content::details(sim, unwrapped(m));
        }
        let _ = sim.state().record_phone_message(phone, record);
    }
    if own_copy || node.attr_str("category") == Some("peer") {
        return;
    }
    let mut receipt = Node::new("receipt")
        .attr("id", id.to_string())
        .attr("to", from.to_non_ad());
    if group.is_some() {
        receipt = receipt.attr("participant", sender_jid);
    }
    router::relay_receipt(sim, phone, 0, &receipt);
}

fn decrypt_enc(
    sim: &Sim,
    phone: &str,
    sender_phone: &str,
    sender_device: u16,
    group: Option<&str>,
    enc: &Node,
) -> Result<wa::Message, String> {
    let body = enc
        .content_bytes()
        .ok_or_else(|| "enc has no bytes".to_string())?;
    let padded = match (enc.attr_str("type"), group) {
        (Some("skmsg"), Some(g)) => signal::group_decrypt(
            sim.state(),
            phone,
            g,
            &signal::address(sender_phone, sender_device),
            body,
        ),
        (Some(t @ ("pkmsg" | "msg")), _) => {
            signal::decrypt_from(sim.state(), phone, sender_phone, sender_device, t, body)
        }
        (t, _) => return Err(format!("unexpected enc type {t:?}")),
    }
    .map_err(|e| e.to_string())?;
    let plain = padding::unpad(&padded).map_err(|e| e.to_string())?;
    wa::Message::decode(plain).map_err(|e| e.to_string())
}

/// The message itself, through the own-device and ephemeral/view-once wrappers.
fn unwrapped(m: &wa::Message) -> &wa::Message {
    if let Some(inner) = m
        .device_sent_message
        .as_ref()
        .and_then(|d| d.message.as_deref())
    {
        return unwrapped(inner);
    }
    for wrapper in [
        &m.ephemeral_message,
        &m.view_once_message,
        &m.view_once_message_v2,
        &m.edited_message,
    ] {
        if let Some(inner) = wrapper.as_ref().and_then(|w| w.message.as_deref()) {
            return unwrapped(inner);
        }
    }
    m
}

/// The reply/mention context of a message's content (any kind with a `contextInfo`), for the
/// control API.
fn context_of(m: &wa::Message) -> Option<MessageContext> {
    let m = unwrapped(m);
    let ctx = [
        m.extended_text_message
            .as_ref()
            .and_then(|x| x.context_info.as_deref()),
        m.image_message
            .as_ref()
            .and_then(|x| x.context_info.as_deref()),
        m.video_message
            .as_ref()
            .and_then(|x| x.context_info.as_deref()),
        m.ptv_message
            .as_ref()
            .and_then(|x| x.context_info.as_deref()),
        m.audio_message
            .as_ref()
            .and_then(|x| x.context_info.as_deref()),
        m.document_message
            .as_ref()
            .and_then(|x| x.context_info.as_deref()),
        m.sticker_message
            .as_ref()
            .and_then(|x| x.context_info.as_deref()),
        m.location_message
            .as_ref()
            .and_then(|x| x.context_info.as_deref()),
        m.contact_message
            .as_ref()
            .and_then(|x| x.context_info.as_deref()),
        m.poll_creation_message
            .as_ref()
            .and_then(|x| x.context_info.as_deref()),
    ]
    .into_iter()
    .flatten()
    .next()?;
    let quoted_text = ctx.quoted_message.as_deref().and_then(|q| {
        q.conversation.clone().or_else(|| {
            q.extended_text_message
                .as_ref()
                .and_then(|x| x.text.clone())
        })
    });
    Some(MessageContext {
        stanza_id: ctx.stanza_id.clone(),
        participant: ctx.participant.clone(),
        remote_jid: ctx.remote_jid.clone(),
        quoted_text,
        mentioned_jid: ctx.mentioned_jid.clone(),
    })
}

/// The control API's message type and text, for messages with user-visible content.
fn describe(m: &wa::Message) -> Option<(&'static str, Option<String>)> {
    if let Some(inner) = m
        .device_sent_message
        .as_ref()
        .and_then(|d| d.message.as_deref())
    {
        return describe(inner);
    }
    for wrapper in [
        &m.ephemeral_message,
        &m.view_once_message,
        &m.view_once_message_v2,
        &m.edited_message,
    ] {
        if let Some(inner) = wrapper.as_ref().and_then(|w| w.message.as_deref()) {
            return describe(inner);
        }
    }
    if let Some(t) = &m.conversation {
        return Some(("text", Some(t.clone())));
    }
    if let Some(x) = &m.extended_text_message {
        return Some(("text", x.text.clone()));
    }
    if let Some(x) = &m.reaction_message {
        return Some(("reaction", Some(x.text.clone().unwrap_or_default())));
    }
    if let Some(p) = m.protocol_message.as_deref() {
        return match p.r#type {
            Some(0) => Some(("revoke", None)),
            Some(14) => Some((
                "edit",
                p.edited_message.as_deref().and_then(|e| {
                    e.conversation.clone().or_else(|| {
                        e.extended_text_message
                            .as_ref()
                            .and_then(|x| x.text.clone())
                    })
                }),
            )),
            _ => None,
        };
    }
    let kinds: [(bool, &'static str); 11] = [
        (m.image_message.is_some(), "image"),
        (m.video_message.is_some(), "video"),
        (m.ptv_message.is_some(), "ptv"),
        (m.audio_message.is_some(), "audio"),
        (
            m.document_message.is_some() || m.document_with_caption_message.is_some(),
            "document",
        ),
        (m.sticker_message.is_some(), "sticker"),
        (
            m.contact_message.is_some() || m.contacts_array_message.is_some(),
            "contact",
        ),
        (m.location_message.is_some(), "location"),
        (m.reaction_message.is_some(), "reaction"),
        (
            m.poll_creation_message.is_some()
                || m.poll_creation_message_v2.is_some()
                || m.poll_creation_message_v3.is_some(),
            "poll",
        ),
        (m.poll_update_message.is_some(), "poll_vote"),
    ];
    kinds
        .into_iter()
        .find(|(present, _)| *present)
        .map(|(_, kind)| (kind, None))
}

/// `<receipt type=retry>` back to the sender device (§7.5): count 1, the phone's registration id;
/// no `<keys>`, so the sender fetches a fresh bundle.
fn send_retry(
    sim: &Sim,
    phone: &str,
    node: &Node,
    id: &str,
    from: &zapin_protocol::jid::Jid,
    participant: Option<&zapin_protocol::jid::Jid>,
) {
    let registration = signal::registration_id(sim.state(), phone).unwrap_or(0);
    let mut receipt = Node::new("receipt")
        .attr("id", id.to_string())
        .attr("to", from.to_non_ad())
        .attr("type", "retry");
    if let Some(p) = participant {
        receipt = receipt.attr("participant", p.clone());
    }
    let retry = Node::new("retry")
        .attr("count", "1")
        .attr("id", id.to_string())
        .attr("t", node.attr_str("t").unwrap_or("0").to_string())
        .attr("v", "1");
    receipt = receipt.children(vec![
        retry,
        Node::new("registration").bytes(registration.to_be_bytes().to_vec()),
    ]);
    router::relay_receipt(sim, phone, 0, &receipt);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_of_reads_quotes_and_mentions() {
        let quoted = wa::Message {
            conversation: Some("orig".into()),
            ..Default::default()
        };
        let ext = wa::Message {
            extended_text_message: Some(Box::new(wa::message::ExtendedTextMessage {
                text: Some("reply".into()),
                context_info: Some(Box::new(wa::ContextInfo {
                    stanza_id: Some("ID1".into()),
                    participant: Some("1@s.whatsapp.net".into()),
                    quoted_message: Some(Box::new(quoted.clone())),
                    mentioned_jid: vec!["2@s.whatsapp.net".into()],
                    ..Default::default()
                })),
                ..Default::default()
            })),
            ..Default::default()
        };
        let ctx = context_of(&ext).unwrap();
        assert_eq!(ctx.stanza_id.as_deref(), Some("ID1"));
        assert_eq!(ctx.participant.as_deref(), Some("1@s.whatsapp.net"));
        assert_eq!(ctx.quoted_text.as_deref(), Some("orig"));
        assert_eq!(ctx.mentioned_jid, vec!["2@s.whatsapp.net".to_string()]);
        assert_eq!(ctx.remote_jid, None);
        assert_eq!(context_of(&quoted), None);
    }

    #[test]
    fn describe_unwraps_and_names_content() {
        let text = wa::Message {
            conversation: Some("hi".into()),
            ..Default::default()
        };
        assert_eq!(describe(&text), Some(("text", Some("hi".into()))));
        let dsm = wa::Message {
            device_sent_message: Some(Box::new(wa::message::DeviceSentMessage {
                destination_jid: None,
                message: Some(Box::new(text.clone())),
                phash: None,
            })),
            ..Default::default()
        };
        assert_eq!(describe(&dsm), Some(("text", Some("hi".into()))));
        let ext = wa::Message {
            extended_text_message: Some(Box::new(wa::message::ExtendedTextMessage {
                text: Some("link".into()),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(describe(&ext), Some(("text", Some("link".into()))));
        let image = wa::Message {
            image_message: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(describe(&image), Some(("image", None)));
        let skdm_only = wa::Message {
            sender_key_distribution_message: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(describe(&skdm_only), None);
    }
}
