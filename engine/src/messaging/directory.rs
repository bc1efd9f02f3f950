//! What a session has learned about contacts and chats during this run, for the
//! `contacts.upsert` and `chats.upsert` events: push names by user, and which chats were seen.
//! Both tables are bounded LRUs, so memory stays flat; the price is that a contact or chat
//! evicted long ago is reported again when it comes back.

use zapin_protocol::jid::Jid;

use super::ReceivedMessage;
use super::lru::Lru;

/// A contact with its push name, surfaced as [`crate::EventKind::Contacts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The user JID (PN form when known).
    pub jid: String,
    /// The push name.
    pub name: Option<String>,
}

/// A chat seen in this run, surfaced as [`crate::EventKind::Chats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub jid: String,
    /// A 1:1 chat opened by the peer: its push name; a group: its subject when the session has
    /// its metadata (after a send there); else unknown.
    pub name: Option<String>,
    /// Not tracked by the engine (`None`).
    pub unread: Option<u32>,
}

/// Entries kept per table.
pub const DIRECTORY_CAPACITY: usize = 512;

#[derive(Debug)]
pub struct Directory {
    names: Lru<Jid, String>,
    chats: Lru<Jid, ()>,
}

impl Default for Directory {
    fn default() -> Self {
        Self::new(DIRECTORY_CAPACITY)
    }
}

impl Directory {
    pub fn new(capacity: usize) -> Self {
        Directory {
            names: Lru::new(capacity),
            chats: Lru::new(capacity),
        }
    }

    /// Records `name` for `user`; the contact to report when it is new or changed.
    pub fn push_name(&mut self, user: &Jid, name: &str) -> Option<Contact> {
        let user = user.to_non_ad();
        if name.is_empty() || self.names.get(&user).is_some_and(|n| n == name) {
            return None;
        }
        self.names.insert(user.clone(), name.to_owned());
        Some(Contact {
            jid: user.to_string(),
            name: Some(name.to_owned()),
        })
    }

    /// Records activity in `chat`; the chat to report the first time it is seen.
    pub fn chat(&mut self, chat: &Jid, name: Option<&str>) -> Option<Chat> {
        let chat = chat.to_non_ad();
        if self.chats.get(&chat).is_some() {
            return None;
        }
        self.chats.insert(chat.clone(), ());
        Some(Chat {
            jid: chat.to_string(),
            name: name.filter(|n| !n.is_empty()).map(str::to_owned),
            unread: None,
        })
    }

    /// The chat and contact events an incoming message brings (new chat first). A new chat is
    /// named by `group_subject` in a group, by the sender's push name otherwise. The contact is
    /// the sender in PN form when the server told it, and only for others' messages (our own
    /// push name is not a contact).
    pub fn observe(
        &mut self,
        m: &ReceivedMessage,
        group_subject: Option<&str>,
    ) -> (Option<Chat>, Option<Contact>) {
        let name = m.push_name.as_deref().filter(|_| !m.key.from_me);
        let chat_name = if m.key.remote_jid.is_group() {
            group_subject
        } else {
            name
        };
        let chat = self.chat(&m.key.remote_jid, chat_name);
        let contact = name.and_then(|n| {
            let user = match &m.sender_alt {
                Some(alt) if alt.is_pn() && !m.sender.is_pn() => alt,
                _ => &m.sender,
            };
            self.push_name(user, n)
        });
        (chat, contact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_new_and_changed_only() {
        let mut d = Directory::new(2);
        let a = Jid::pn("1");
        assert!(d.push_name(&a, "Ana").is_some());
        assert!(d.push_name(&a, "Ana").is_none());
        assert_eq!(
            d.push_name(&a, "Ana B").unwrap().name.as_deref(),
            Some("Ana B")
        );
        assert!(d.push_name(&a, "").is_none());
        assert!(d.chat(&a, None).is_some());
        assert!(d.chat(&a, Some("x")).is_none());
        // Bounded: the oldest chat is forgotten and reported again.
        assert!(d.chat(&Jid::pn("2"), None).is_some());
        assert!(d.chat(&Jid::pn("3"), None).is_some());
        assert!(d.chat(&a, None).is_some());
    }
}
