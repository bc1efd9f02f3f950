//! The receive inbox: how a decrypted message survives a crash between the Signal commit and
//! its consumer's own commit.
//!
//! Decrypting consumes the message key, so once the ratchet step is committed the server's
//! redelivery of the same stanza can only come back as a duplicate. The plaintext must therefore
//! be durable in the same transaction as that step: [`receive`](super::Messenger::receive) adds
//! an [`InboxEntry`] to the ratchet's batch, acks only after the commit, and the entry stays in
//! the store until the consumer confirms it has stored the message
//! ([`crate::SessionManager::confirm_received`]). Whatever is still there at the next start is
//! surfaced again ([`crate::SessionManager::pending_received`]), in arrival order; the consumer
//! deduplicates by message id.
//!
//! The record is our own small protobuf, sealed by the store like every other secret.

use prost::Message as _;
use zapin_protocol::jid::Jid;
use zapin_protocol::proto::wa;
use zapin_signal_store::InboxEntry;

use super::content::content_type;
use super::receipts::MessageKey;
use super::receive::ReceivedMessage;

/// A [`ReceivedMessage`] as it rests in the inbox. Field numbers are a storage format: never
/// reuse one.
#[derive(Clone, PartialEq, ::prost::Message)]
struct InboxRecord {
    #[prost(string, tag = "1")]
    remote_jid: String,
    #[prost(bool, tag = "2")]
    from_me: bool,
    #[prost(string, tag = "3")]
    id: String,
    #[prost(string, optional, tag = "4")]
    participant: Option<String>,
    #[prost(string, tag = "5")]
    sender: String,
    #[prost(string, optional, tag = "6")]
    sender_alt: Option<String>,
    #[prost(string, optional, tag = "7")]
    push_name: Option<String>,
    #[prost(uint64, tag = "8")]
    timestamp: u64,
    #[prost(message, optional, tag = "9")]
    message: Option<wa::Message>,
    #[prost(string, tag = "10")]
    stanza_type: String,
    #[prost(string, optional, tag = "11")]
    category: Option<String>,
    #[prost(bool, tag = "12")]
    offline: bool,
    #[prost(bool, tag = "13")]
    identity_changed: bool,
}

/// Why an inbox row could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("inbox record does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("inbox record has a bad JID {0:?}")]
    Jid(String),
}

/// The entry that keeps `m` until it is confirmed.
pub fn entry_for(m: &ReceivedMessage) -> InboxEntry {
    let record = InboxRecord {
        remote_jid: m.key.remote_jid.to_string(),
        from_me: m.key.from_me,
        id: m.key.id.clone(),
        participant: m.key.participant.as_ref().map(Jid::to_string),
        sender: m.sender.to_string(),
        sender_alt: m.sender_alt.as_ref().map(Jid::to_string),
        push_name: m.push_name.clone(),
        timestamp: m.timestamp,
        message: Some(m.message.clone()),
        stanza_type: m.stanza_type.clone(),
        category: m.category.clone(),
        offline: m.offline,
        identity_changed: m.identity_changed,
    };
    InboxEntry {
        sender: m.sender.to_string(),
        id: m.key.id.clone(),
        body: record.encode_to_vec(),
    }
}

/// The name a confirmation deletes: `(sender, id)`, as [`entry_for`] stores it.
pub fn name_of(m: &ReceivedMessage) -> (String, String) {
    (m.sender.to_string(), m.key.id.clone())
}

fn jid(s: &str) -> Result<Jid, InboxError> {
    s.parse().map_err(|_| InboxError::Jid(s.to_owned()))
}

/// Reads an entry back into the message it was made from.
pub fn message_of(entry: &InboxEntry) -> Result<ReceivedMessage, InboxError> {
    let r = InboxRecord::decode(entry.body.as_slice())?;
    let message = r.message.unwrap_or_default();
    Ok(ReceivedMessage {
        key: MessageKey {
            remote_jid: jid(&r.remote_jid)?,
            from_me: r.from_me,
            id: r.id,
            participant: r.participant.as_deref().map(jid).transpose()?,
        },
        sender: jid(&r.sender)?,
        sender_alt: r.sender_alt.as_deref().map(jid).transpose()?,
        push_name: r.push_name,
        timestamp: r.timestamp,
        message_type: content_type(&message),
        message,
        stanza_type: r.stanza_type,
        category: r.category,
        offline: r.offline,
        identity_changed: r.identity_changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReceivedMessage {
        let message = wa::Message {
            conversation: Some("hello".into()),
            ..Default::default()
        };
        ReceivedMessage {
            key: MessageKey {
                remote_jid: "123@g.us".parse().unwrap(),
                from_me: false,
                id: "3EB0ABCDEF".into(),
                participant: Some("5511999990000@s.whatsapp.net".parse().unwrap()),
            },
            sender: "5511999990000:2@s.whatsapp.net".parse().unwrap(),
            sender_alt: Some("77777@lid".parse().unwrap()),
            push_name: Some("Ana".into()),
            timestamp: 1_765_000_000,
            message_type: content_type(&message),
            message,
            stanza_type: "text".into(),
            category: None,
            offline: true,
            identity_changed: false,
        }
    }

    #[test]
    fn a_message_survives_the_round_trip() {
        let m = sample();
        let entry = entry_for(&m);
        assert_eq!(entry.sender, "5511999990000:2@s.whatsapp.net");
        assert_eq!(entry.id, "3EB0ABCDEF");
        assert_eq!(name_of(&m), (entry.sender.clone(), entry.id.clone()));
        assert_eq!(message_of(&entry).unwrap(), m);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let entry = InboxEntry {
            sender: "x".into(),
            id: "y".into(),
            body: vec![0xff, 0xff, 0xff],
        };
        assert!(message_of(&entry).is_err());
    }
}
