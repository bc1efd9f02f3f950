//! Presence and chat states (wa-protocol.md §6.5): the nodes we send (after login, around sends
//! with a `delay`, on request) and reading the ones contacts send. No reply is expected for any
//! of them.

use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;

/// A contact's presence as Evolution's `lastKnownPresence` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceState {
    Available,
    Unavailable,
    Composing,
    Recording,
    Paused,
}

impl PresenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Unavailable => "unavailable",
            Self::Composing => "composing",
            Self::Recording => "recording",
            Self::Paused => "paused",
        }
    }
}

/// An incoming `<presence>` (after [`crate::SessionHandle::subscribe_presence`]) or
/// `<chatstate>`: Evolution's `PRESENCE_UPDATE` `{id: chat, presences: {jid: {lastKnownPresence,
/// lastSeen}}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The chat it concerns: the user, or the group a chat state was sent in.
    pub chat: String,
    /// Whose presence (the user; equal to `chat` outside groups).
    pub jid: String,
    pub state: PresenceState,
    /// `last` of an unavailable presence (Unix seconds), when the contact shares it.
    pub last_seen: Option<u64>,
}

/// `<presence type=available name=…/>`: marks us online; clients need a push name for it, and
/// delivery receipts only count as "delivered" for peers once it was sent.
pub fn available(push_name: &str) -> Node {
    Node::new("presence")
        .attr("type", "available")
        .attr("name", push_name.to_owned())
}

/// `<presence type=unavailable/>`.
pub fn unavailable() -> Node {
    Node::new("presence").attr("type", "unavailable")
}

/// `<presence to=J(user) type=subscribe/>`: asks for `user`'s presence updates.
pub fn subscribe(user: &Jid) -> Node {
    Node::new("presence")
        .attr("to", user.to_non_ad())
        .attr("type", "subscribe")
}

/// What a chat state says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatState {
    /// Typing.
    Composing,
    /// Recording audio (`<composing media=audio/>`).
    Recording,
    Paused,
}

/// `<chatstate to=J(chat)><composing [media=audio]/> | <paused/></chatstate>`.
pub fn chatstate(chat: &Jid, state: ChatState) -> Node {
    let child = match state {
        ChatState::Composing => Node::new("composing"),
        ChatState::Recording => Node::new("composing").attr("media", "audio"),
        ChatState::Paused => Node::new("paused"),
    };
    Node::new("chatstate")
        .attr("to", chat.to_non_ad())
        .children(vec![child])
}

/// An incoming `<presence from [type=unavailable] [last]>` (no type = available). `last` is
/// Unix seconds, or `deny`/`none` when the contact hides it.
pub fn parse_presence(node: &Node) -> Option<Presence> {
    let from = node.attr_jid("from")?.to_non_ad();
    let state = match node.attr_str("type") {
        None | Some("available") => PresenceState::Available,
        Some("unavailable") => PresenceState::Unavailable,
        Some(_) => return None,
    };
    let last_seen = node
        .attr_str("last")
        .and_then(|l| l.parse::<u64>().ok())
        .filter(|&t| t > 0);
    Some(Presence {
        chat: from.to_string(),
        jid: from.to_string(),
        state,
        last_seen,
    })
}

/// An incoming `<chatstate from [participant]><composing [media=audio]/> | <paused/>`.
pub fn parse_chatstate(node: &Node) -> Option<Presence> {
    let from = node.attr_jid("from")?.to_non_ad();
    let who = match node.attr_jid("participant") {
        Some(p) => p.to_non_ad(),
        None if from.is_group() => return None,
        None => from.clone(),
    };
    let child = node.child_nodes().first()?;
    let state = match (&*child.tag, child.attr_str("media")) {
        ("composing", Some("audio")) => PresenceState::Recording,
        ("composing", _) => PresenceState::Composing,
        ("paused", _) => PresenceState::Paused,
        _ => return None,
    };
    Some(Presence {
        chat: from.to_string(),
        jid: who.to_string(),
        state,
        last_seen: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let c = chatstate(&Jid::pn("1"), ChatState::Recording);
        assert_eq!(c.attr_jid("to"), Some(Jid::pn("1")));
        assert_eq!(
            c.child("composing").unwrap().attr_str("media"),
            Some("audio")
        );
        assert!(
            chatstate(&Jid::pn("1"), ChatState::Paused)
                .child("paused")
                .is_some()
        );
        assert_eq!(available("Ana").attr_str("name"), Some("Ana"));
        assert_eq!(subscribe(&Jid::pn("1")).attr_str("type"), Some("subscribe"));
        assert_eq!(unavailable().attr_str("type"), Some("unavailable"));
    }

    #[test]
    fn incoming_presence_and_chatstates() {
        let p = parse_presence(&Node::new("presence").attr("from", Jid::pn("1"))).unwrap();
        assert_eq!(p.state, PresenceState::Available);
        assert_eq!(p.jid, "1@s.whatsapp.net");
        let p = parse_presence(
            &Node::new("presence")
                .attr("from", Jid::pn("1"))
                .attr("type", "unavailable")
                .attr("last", "1700000000"),
        )
        .unwrap();
        assert_eq!(p.state, PresenceState::Unavailable);
        assert_eq!(p.last_seen, Some(1_700_000_000));
        let hidden = Node::new("presence")
            .attr("from", Jid::pn("1"))
            .attr("type", "unavailable")
            .attr("last", "deny");
        assert_eq!(parse_presence(&hidden).unwrap().last_seen, None);
        assert!(parse_presence(&Node::new("presence").attr("type", "unavailable")).is_none());

        let rec = Node::new("chatstate")
            .attr("from", Jid::pn("1"))
            .children(vec![Node::new("composing").attr("media", "audio")]);
        assert_eq!(
            parse_chatstate(&rec).unwrap().state,
            PresenceState::Recording
        );
        let group = Jid::new("123-456", zapin_protocol::jid::Server::Group);
        let typing = Node::new("chatstate")
            .attr("from", group.clone())
            .attr("participant", Jid::pn("2"))
            .children(vec![Node::new("composing")]);
        let p = parse_chatstate(&typing).unwrap();
        assert_eq!(
            (p.chat.as_str(), p.jid.as_str()),
            ("123-456@g.us", "2@s.whatsapp.net")
        );
        assert_eq!(p.state, PresenceState::Composing);
        let paused = Node::new("chatstate")
            .attr("from", Jid::pn("1"))
            .children(vec![Node::new("paused")]);
        assert_eq!(
            parse_chatstate(&paused).unwrap().state,
            PresenceState::Paused
        );
        let anonymous = Node::new("chatstate")
            .attr("from", group)
            .children(vec![Node::new("paused")]);
        assert!(parse_chatstate(&anonymous).is_none());
    }
}
