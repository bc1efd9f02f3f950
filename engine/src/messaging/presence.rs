//! Presence and chat states (wa-protocol.md §6.5), used around sends with a `delay` (typing
//! indicator) and after login. No reply is expected for any of them.

use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;

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
}
