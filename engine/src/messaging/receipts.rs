//! Receipts and acks (wa-protocol.md §7.3, §7.4, §7.8): reading peers' receipts and the
//! server's message acks into status updates, and building the receipts and acks we send.

use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;

use super::MessagingError;

/// A message's identity as the event stream names it (Baileys' `key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey {
    /// The chat: the peer user, the group, or `status@broadcast`.
    pub remote_jid: Jid,
    pub from_me: bool,
    pub id: String,
    /// In groups and broadcasts, who sent it.
    pub participant: Option<Jid>,
}

/// Evolution's message status values (§5.4 of the contract), in order of progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageStatus {
    Error,
    Pending,
    ServerAck,
    DeliveryAck,
    Read,
    Played,
}

impl MessageStatus {
    /// The string Evolution puts in `status`.
    pub fn as_evolution(self) -> &'static str {
        match self {
            MessageStatus::Error => "ERROR",
            MessageStatus::Pending => "PENDING",
            MessageStatus::ServerAck => "SERVER_ACK",
            MessageStatus::DeliveryAck => "DELIVERY_ACK",
            MessageStatus::Read => "READ",
            MessageStatus::Played => "PLAYED",
        }
    }
}

/// One `messages.update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub key: MessageKey,
    pub status: MessageStatus,
    /// Who caused it (the reader's device), when it came from a receipt.
    pub by: Option<Jid>,
    /// Unix seconds, when the stanza said.
    pub timestamp: Option<u64>,
}

/// A receipt from the server (relayed from a peer or from our own other device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptInfo {
    /// Every id it covers: the `id` attribute, then `<list><item id>` entries.
    pub ids: Vec<String>,
    /// The stanza's `from`.
    pub from: Jid,
    pub participant: Option<Jid>,
    pub recipient: Option<Jid>,
    /// The chat our message was in.
    pub chat: Jid,
    /// The `type` attribute; `None` = delivered.
    pub kind: Option<String>,
    pub timestamp: Option<u64>,
}

/// Reads a `<receipt>` stanza.
pub fn parse_receipt(node: &Node) -> Result<ReceiptInfo, MessagingError> {
    let id = node
        .attr_str("id")
        .ok_or(MessagingError::Malformed("receipt", "no id"))?;
    let from = node
        .attr_jid("from")
        .ok_or(MessagingError::Malformed("receipt", "no from"))?;
    let participant = node.attr_jid("participant");
    let recipient = node.attr_jid("recipient");
    let mut ids = vec![id.to_owned()];
    if let Some(list) = node.child("list") {
        for item in list.children_by_tag("item") {
            if let Some(i) = item.attr_str("id")
                && !ids.iter().any(|x| x == i)
            {
                ids.push(i.to_owned());
            }
        }
    }
    let chat = if from.is_group() || from.is_broadcast() {
        from.to_non_ad()
    } else if let Some(r) = &recipient {
        r.to_non_ad()
    } else {
        from.to_non_ad()
    };
    Ok(ReceiptInfo {
        ids,
        from,
        participant,
        recipient,
        chat,
        kind: node.attr_str("type").map(str::to_owned),
        timestamp: node.attr_str("t").and_then(|t| t.parse().ok()),
    })
}

/// The status a receipt type means for the sender, as Baileys maps it; `None` for types that
/// change nothing (`inactive`, `retry`, `peer_msg`, `hist_sync`, unknown).
pub fn receipt_status(kind: Option<&str>) -> Option<MessageStatus> {
    match kind {
        None | Some("") => Some(MessageStatus::DeliveryAck),
        Some("sender") => Some(MessageStatus::ServerAck),
        Some("read") | Some("read-self") => Some(MessageStatus::Read),
        Some("played") | Some("played-self") => Some(MessageStatus::Played),
        _ => None,
    }
}

/// The status updates a receipt produces for our messages.
pub fn receipt_statuses(info: &ReceiptInfo) -> Vec<StatusUpdate> {
    let Some(status) = receipt_status(info.kind.as_deref()) else {
        return Vec::new();
    };
    let group = info.chat.is_group() || info.chat.is_broadcast();
    // `read-self`/`played-self` come from our own other device and mark the peer's messages.
    let from_me = !matches!(
        info.kind.as_deref(),
        Some("read-self") | Some("played-self")
    );
    info.ids
        .iter()
        .map(|id| StatusUpdate {
            key: MessageKey {
                remote_jid: info.chat.clone(),
                from_me,
                id: id.clone(),
                participant: None,
            },
            status,
            by: if group {
                info.participant.clone()
            } else {
                Some(info.from.clone())
            },
            timestamp: info.timestamp,
        })
        .collect()
}

/// `<ack class=TAG id to=FROM [participant] [recipient] [type] [error]/>` for a stanza we
/// received (§7.8). Receipts, notifications and undecryptable messages are acked this way.
pub fn ack_for(stanza: &Node, error: Option<u16>) -> Node {
    let mut ack = Node::new("ack").attr("class", stanza.tag.to_string());
    if let Some(id) = stanza.get_attr("id") {
        ack = ack.attr("id", id.clone());
    }
    if let Some(from) = stanza.get_attr("from") {
        ack = ack.attr("to", from.clone());
    }
    for key in ["participant", "recipient"] {
        if let Some(v) = stanza.get_attr(key) {
            ack = ack.attr(key, v.clone());
        }
    }
    if stanza.tag != "message"
        && let Some(t) = stanza.get_attr("type")
    {
        ack = ack.attr("type", t.clone());
    }
    if let Some(code) = error {
        ack = ack.attr("error", code.to_string());
    }
    ack
}

/// The server's `<ack class=message id from=CHAT t [error] [phash]/>` for one of our sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAck {
    pub id: String,
    pub chat: Jid,
    pub timestamp: Option<u64>,
    pub error: Option<u16>,
    pub phash: Option<String>,
}

impl ServerAck {
    /// `None` when the stanza is not a message ack.
    pub fn parse(node: &Node) -> Option<ServerAck> {
        if node.tag != "ack" || node.attr_str("class") != Some("message") {
            return None;
        }
        Some(ServerAck {
            id: node.attr_str("id")?.to_owned(),
            chat: node.attr_jid("from")?.to_non_ad(),
            timestamp: node.attr_str("t").and_then(|t| t.parse().ok()),
            error: node.attr_str("error").and_then(|e| e.parse().ok()),
            phash: node.attr_str("phash").map(str::to_owned),
        })
    }

    /// `SERVER_ACK`, or `ERROR` when the server refused the message.
    pub fn status_update(&self) -> StatusUpdate {
        StatusUpdate {
            key: MessageKey {
                remote_jid: self.chat.clone(),
                from_me: true,
                id: self.id.clone(),
                participant: None,
            },
            status: if self.error.is_some() {
                MessageStatus::Error
            } else {
                MessageStatus::ServerAck
            },
            by: None,
            timestamp: self.timestamp,
        }
    }
}

/// `<receipt id=FIRST to=CHAT type=read [participant] t>[<list><item id/>…</list>]</receipt>`
/// marking `ids` (all from one sender in one chat) as read; `participant` is the sender in a
/// group. `None` for an empty list.
pub fn read_receipt(
    chat: &Jid,
    participant: Option<&Jid>,
    ids: &[String],
    now_unix: u64,
    kind: &'static str,
) -> Option<Node> {
    let (first, rest) = ids.split_first()?;
    let mut node = Node::new("receipt")
        .attr("id", first.clone())
        .attr("to", chat.to_non_ad())
        .attr("type", kind);
    if let Some(p) = participant {
        node = node.attr("participant", p.clone());
    }
    node = node.attr("t", now_unix.to_string());
    if !rest.is_empty() {
        node = node.children(vec![
            Node::new("list").children(
                rest.iter()
                    .map(|id| Node::new("item").attr("id", id.clone()))
                    .collect(),
            ),
        ]);
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zapin_protocol::jid::Server;

    #[test]
    fn receipt_types_map_to_statuses() {
        assert_eq!(receipt_status(None), Some(MessageStatus::DeliveryAck));
        assert_eq!(receipt_status(Some("read")), Some(MessageStatus::Read));
        assert_eq!(receipt_status(Some("read-self")), Some(MessageStatus::Read));
        assert_eq!(receipt_status(Some("played")), Some(MessageStatus::Played));
        assert_eq!(
            receipt_status(Some("sender")),
            Some(MessageStatus::ServerAck)
        );
        assert_eq!(receipt_status(Some("inactive")), None);
        assert_eq!(receipt_status(Some("retry")), None);
    }

    #[test]
    fn group_read_receipt_with_list() {
        let node = Node::new("receipt")
            .attr("from", Jid::group("123"))
            .attr("participant", Jid::with_device("9", 2, Server::Pn))
            .attr("id", "A")
            .attr("type", "read")
            .attr("t", "55")
            .children(vec![
                Node::new("list").children(vec![Node::new("item").attr("id", "B")]),
            ]);
        let info = parse_receipt(&node).unwrap();
        assert_eq!(info.ids, vec!["A".to_owned(), "B".to_owned()]);
        let st = receipt_statuses(&info);
        assert_eq!(st.len(), 2);
        assert_eq!(st[1].key.remote_jid, Jid::group("123"));
        assert_eq!(st[1].status, MessageStatus::Read);
        assert_eq!(st[1].by, Some(Jid::with_device("9", 2, Server::Pn)));
        let ack = ack_for(&node, None);
        assert_eq!(ack.attr_str("class"), Some("receipt"));
        assert_eq!(ack.attr_jid("to"), Some(Jid::group("123")));
        assert_eq!(ack.attr_str("type"), Some("read"));
        assert!(ack.attr_jid("participant").is_some());
    }

    #[test]
    fn server_ack_and_read_receipt_shapes() {
        let ack = Node::new("ack")
            .attr("class", "message")
            .attr("id", "X")
            .attr("from", Jid::pn("1"))
            .attr("t", "9");
        let sa = ServerAck::parse(&ack).unwrap();
        assert_eq!(sa.status_update().status, MessageStatus::ServerAck);
        let bad = ack.clone().attr("error", "479");
        assert_eq!(
            ServerAck::parse(&bad).unwrap().status_update().status,
            MessageStatus::Error
        );
        let r = read_receipt(&Jid::pn("1"), None, &["a".into(), "b".into()], 7, "read").unwrap();
        assert_eq!(r.attr_str("id"), Some("a"));
        assert_eq!(r.attr_str("type"), Some("read"));
        assert_eq!(r.attr_str("t"), Some("7"));
        assert_eq!(
            r.child("list")
                .unwrap()
                .child("item")
                .unwrap()
                .attr_str("id"),
            Some("b")
        );
        assert!(read_receipt(&Jid::pn("1"), None, &[], 7, "read").is_none());
    }
}
