//! Message content: building text messages, naming content types, and the plaintext layers
//! around a `wa::Message` (padding, own-device `DeviceSentMessage`, the SKDM carrier).

use prost::Message as _;
use rand_core::CryptoRng;
use zapin_protocol::jid::Jid;
use zapin_protocol::proto::wa::{self, ContextInfo, message};
use zapin_protocol::signal::padding;

use super::MessagingError;

/// The message a reply quotes (Evolution's `quoted`).
#[derive(Debug, Clone, PartialEq)]
pub struct Quoted {
    /// The quoted message's id.
    pub id: String,
    /// The chat it was sent in.
    pub chat: Jid,
    /// Who wrote it (our own user JID when it was ours).
    pub author: Jid,
    /// Its content, copied into `contextInfo.quotedMessage`.
    pub message: wa::Message,
}

/// A text message: a bare `conversation` when nothing else is attached (what every client sends
/// for plain text), else an `extendedTextMessage` whose `contextInfo` carries the quote and the
/// mentions. `to` is the chat the message goes to.
pub fn prepare_text(
    to: &Jid,
    text: &str,
    quoted: Option<&Quoted>,
    mentions: &[Jid],
) -> wa::Message {
    let Some(context) = context_for(to, quoted, mentions) else {
        return wa::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
    };
    wa::Message {
        extended_text_message: Some(Box::new(message::ExtendedTextMessage {
            text: Some(text.to_owned()),
            context_info: Some(Box::new(context)),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The `contextInfo` a reply and mentions put on any content (`None` when there are neither).
fn context_for(to: &Jid, quoted: Option<&Quoted>, mentions: &[Jid]) -> Option<ContextInfo> {
    if quoted.is_none() && mentions.is_empty() {
        return None;
    }
    let mut context = ContextInfo {
        mentioned_jid: mentions.iter().map(|j| j.to_non_ad().to_string()).collect(),
        ..Default::default()
    };
    if let Some(q) = quoted {
        context.stanza_id = Some(q.id.clone());
        context.participant = Some(q.author.to_non_ad().to_string());
        context.quoted_message = Some(Box::new(q.message.clone()));
        if q.chat.to_non_ad() != to.to_non_ad() {
            context.remote_jid = Some(q.chat.to_non_ad().to_string());
        }
    }
    Some(context)
}

/// `m` with the reply and mentions in the `contextInfo` of its content field (image, video,
/// audio, document, sticker, location, contact, poll, extended text). A bare `conversation`
/// becomes an `extendedTextMessage` so that it can carry them. Content without a
/// `contextInfo` (a reaction) is sent as it is.
pub fn with_context(
    m: &wa::Message,
    to: &Jid,
    quoted: Option<&Quoted>,
    mentions: &[Jid],
) -> wa::Message {
    let mut out = m.clone();
    let Some(context) = context_for(to, quoted, mentions) else {
        return out;
    };
    if let Some(text) = out.conversation.take() {
        return prepare_text(to, &text, quoted, mentions);
    }
    let slot = if let Some(x) = out.image_message.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.video_message.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.ptv_message.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.audio_message.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.document_message.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.sticker_message.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.location_message.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.contact_message.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.contacts_array_message.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.poll_creation_message.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.poll_creation_message_v3.as_deref_mut() {
        &mut x.context_info
    } else if let Some(x) = out.extended_text_message.as_deref_mut() {
        &mut x.context_info
    } else {
        return out;
    };
    *slot = Some(Box::new(context));
    out
}

/// What a media message says about its file besides what the upload produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaFields {
    pub mimetype: String,
    pub caption: Option<String>,
    /// Documents: the name shown and saved.
    pub file_name: Option<String>,
    /// Images, videos, stickers.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// A small JPEG preview (images, videos, documents).
    pub jpeg_thumbnail: Option<Vec<u8>>,
    /// Audio and video length.
    pub seconds: Option<u32>,
    /// Audio: a voice note.
    pub ptt: bool,
    /// Audio voice notes: 64 loudness samples.
    pub waveform: Option<Vec<u8>>,
    /// Video: played as a gif (looping, muted).
    pub gif_playback: bool,
    /// Video: a round video note, sent as `ptvMessage`.
    pub ptv: bool,
}

/// The message of one uploaded file, of the field its kind names (`sticker` picks
/// `stickerMessage` for an image upload).
pub fn media_message(
    upload: &crate::media::MediaUpload,
    sticker: bool,
    f: MediaFields,
) -> wa::Message {
    use zapin_protocol::media::MediaKind;
    let url = Some(upload.url.clone());
    let direct_path = Some(upload.direct_path.clone());
    let media_key = Some(upload.media_key.to_vec());
    let file_sha256 = Some(upload.file_sha256.to_vec());
    let file_enc_sha256 = Some(upload.file_enc_sha256.to_vec());
    let file_length = Some(upload.file_length);
    let media_key_timestamp = Some(upload.media_key_timestamp);
    let mimetype = Some(f.mimetype);
    let mut out = wa::Message::default();
    if sticker {
        out.sticker_message = Some(Box::new(message::StickerMessage {
            url,
            file_sha256,
            file_enc_sha256,
            media_key,
            mimetype,
            height: f.height,
            width: f.width,
            direct_path,
            file_length,
            media_key_timestamp,
            is_animated: Some(false),
            ..Default::default()
        }));
        return out;
    }
    match upload.kind {
        MediaKind::Image => {
            out.image_message = Some(Box::new(message::ImageMessage {
                url,
                mimetype,
                caption: f.caption,
                file_sha256,
                file_length,
                height: f.height,
                width: f.width,
                media_key,
                file_enc_sha256,
                direct_path,
                media_key_timestamp,
                jpeg_thumbnail: f.jpeg_thumbnail,
                ..Default::default()
            }))
        }
        MediaKind::Video => {
            let video = Some(Box::new(message::VideoMessage {
                url,
                mimetype,
                file_sha256,
                file_length,
                seconds: f.seconds,
                media_key,
                caption: f.caption,
                gif_playback: f.gif_playback.then_some(true),
                height: f.height,
                width: f.width,
                file_enc_sha256,
                direct_path,
                media_key_timestamp,
                jpeg_thumbnail: f.jpeg_thumbnail,
                ..Default::default()
            }));
            if f.ptv {
                out.ptv_message = video;
            } else {
                out.video_message = video;
            }
        }
        MediaKind::Audio => {
            out.audio_message = Some(Box::new(message::AudioMessage {
                url,
                mimetype,
                file_sha256,
                file_length,
                seconds: f.seconds,
                ptt: Some(f.ptt),
                media_key,
                file_enc_sha256,
                direct_path,
                media_key_timestamp,
                waveform: f.waveform,
                ..Default::default()
            }))
        }
        _ => {
            out.document_message = Some(Box::new(message::DocumentMessage {
                url,
                mimetype,
                title: f.file_name.clone(),
                file_sha256,
                file_length,
                media_key,
                file_name: f.file_name,
                file_enc_sha256,
                direct_path,
                media_key_timestamp,
                jpeg_thumbnail: f.jpeg_thumbnail,
                caption: f.caption,
                ..Default::default()
            }))
        }
    }
    out
}

/// A location pin.
pub fn location_message(latitude: f64, longitude: f64, name: &str, address: &str) -> wa::Message {
    wa::Message {
        location_message: Some(Box::new(message::LocationMessage {
            degrees_latitude: Some(latitude),
            degrees_longitude: Some(longitude),
            name: Some(name.to_owned()),
            address: Some(address.to_owned()),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Contact cards `(display name, vCard)`: one is a `contactMessage`, several a
/// `contactsArrayMessage` (named after how many there are, as WhatsApp clients show it).
pub fn contacts_message(cards: &[(String, String)]) -> wa::Message {
    let card = |(name, vcard): &(String, String)| message::ContactMessage {
        display_name: Some(name.clone()),
        vcard: Some(vcard.clone()),
        ..Default::default()
    };
    match cards {
        [one] => wa::Message {
            contact_message: Some(Box::new(card(one))),
            ..Default::default()
        },
        many => wa::Message {
            contacts_array_message: Some(Box::new(message::ContactsArrayMessage {
                display_name: Some(format!("{} contacts", many.len())),
                contacts: many.iter().map(card).collect(),
                ..Default::default()
            })),
            ..Default::default()
        },
    }
}

/// A reaction (`""` removes ours) to the message `key` names.
pub fn reaction_message(key: wa::MessageKey, emoji: &str, now_ms: i64) -> wa::Message {
    wa::Message {
        reaction_message: Some(message::ReactionMessage {
            key: Some(key),
            text: Some(emoji.to_owned()),
            sender_timestamp_ms: Some(now_ms),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A poll. `secret` (32 random bytes) goes in `messageContextInfo.messageSecret`: voters derive
/// the key of their encrypted votes from it. A single-choice poll is a `pollCreationMessageV3`,
/// as WhatsApp clients send it; others a `pollCreationMessage`.
pub fn poll_message(
    name: &str,
    options: &[String],
    selectable: u32,
    secret: [u8; 32],
) -> wa::Message {
    let poll = message::PollCreationMessage {
        name: Some(name.to_owned()),
        options: options
            .iter()
            .map(|o| message::poll_creation_message::Option {
                option_name: Some(o.clone()),
                ..Default::default()
            })
            .collect(),
        selectable_options_count: Some(selectable),
        ..Default::default()
    };
    let mut m = wa::Message {
        message_context_info: Some(wa::MessageContextInfo {
            message_secret: Some(secret.to_vec()),
            ..Default::default()
        }),
        ..Default::default()
    };
    if selectable == 1 {
        m.poll_creation_message_v3 = Some(Box::new(poll));
    } else {
        m.poll_creation_message = Some(Box::new(poll));
    }
    m
}

/// `ProtocolMessage.Type` values this crate sends.
pub const PROTOCOL_REVOKE: i32 = 0;
pub const PROTOCOL_MESSAGE_EDIT: i32 = 14;

/// Deletes the message `key` names for everyone (a "revoke").
pub fn revoke_message(key: wa::MessageKey) -> wa::Message {
    wa::Message {
        protocol_message: Some(Box::new(message::ProtocolMessage {
            key: Some(key),
            r#type: Some(PROTOCOL_REVOKE),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Replaces the text of our message `key` names with `text` (an edit).
pub fn edit_message(key: wa::MessageKey, text: &str, now_ms: i64) -> wa::Message {
    wa::Message {
        protocol_message: Some(Box::new(message::ProtocolMessage {
            key: Some(key),
            r#type: Some(PROTOCOL_MESSAGE_EDIT),
            edited_message: Some(Box::new(wa::Message {
                conversation: Some(text.to_owned()),
                ..Default::default()
            })),
            timestamp_ms: Some(now_ms),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The content key of a message as Baileys/Evolution name it (`messageType`), looking through
/// the ephemeral/view-once/document-with-caption wrappers. `"unknown"` when none is set.
pub fn content_type(m: &wa::Message) -> &'static str {
    for wrapper in [
        &m.ephemeral_message,
        &m.view_once_message,
        &m.view_once_message_v2,
        &m.document_with_caption_message,
    ] {
        if let Some(inner) = wrapper.as_ref().and_then(|w| w.message.as_deref()) {
            return content_type(inner);
        }
    }
    match m {
        m if m.conversation.is_some() => "conversation",
        m if m.extended_text_message.is_some() => "extendedTextMessage",
        m if m.image_message.is_some() => "imageMessage",
        m if m.video_message.is_some() => "videoMessage",
        m if m.ptv_message.is_some() => "ptvMessage",
        m if m.audio_message.is_some() => "audioMessage",
        m if m.document_message.is_some() => "documentMessage",
        m if m.sticker_message.is_some() => "stickerMessage",
        m if m.contact_message.is_some() => "contactMessage",
        m if m.contacts_array_message.is_some() => "contactsArrayMessage",
        m if m.poll_update_message.is_some() => "pollUpdateMessage",
        m if m.location_message.is_some() => "locationMessage",
        m if m.reaction_message.is_some() => "reactionMessage",
        m if m.poll_creation_message.is_some()
            || m.poll_creation_message_v2.is_some()
            || m.poll_creation_message_v3.is_some() =>
        {
            "pollCreationMessage"
        }
        m if m.protocol_message.is_some() => "protocolMessage",
        m if m.edited_message.is_some() => "editedMessage",
        m if m.sender_key_distribution_message.is_some() => "senderKeyDistributionMessage",
        _ => "unknown",
    }
}

/// The stanza `type` attribute for a message's content (§7.2).
pub fn stanza_type(m: &wa::Message) -> &'static str {
    match content_type(m) {
        "conversation" | "extendedTextMessage" | "protocolMessage" | "editedMessage" => "text",
        "reactionMessage" => "reaction",
        "pollCreationMessage" | "pollUpdateMessage" => "poll",
        "unknown" | "senderKeyDistributionMessage" => "text",
        _ => "media",
    }
}

/// Whether the message carries content worth an event, beyond protocol plumbing (an SKDM alone
/// is not).
pub fn has_content(m: &wa::Message) -> bool {
    !matches!(content_type(m), "unknown" | "senderKeyDistributionMessage")
}

/// `protobuf(message) ‖ padding` (§7.7), ready for a Signal encrypt.
pub fn encode_padded<R: CryptoRng + ?Sized>(m: &wa::Message, rng: &mut R) -> Vec<u8> {
    padding::pad(&m.encode_to_vec(), rng)
}

/// Unpads and parses a decrypted `enc v=2` plaintext.
pub fn decode_padded(plaintext: &[u8]) -> Result<wa::Message, MessagingError> {
    let body = padding::unpad(plaintext).map_err(|_| MessagingError::BadPadding)?;
    wa::Message::decode(body).map_err(|_| MessagingError::BadProtobuf)
}

/// What the sender's own other devices receive instead of `m` sent to `chat` (§7.2).
pub fn wrap_device_sent(m: &wa::Message, chat: &Jid, phash: Option<String>) -> wa::Message {
    wa::Message {
        device_sent_message: Some(Box::new(message::DeviceSentMessage {
            destination_jid: Some(chat.to_non_ad().to_string()),
            message: Some(Box::new(m.clone())),
            phash,
        })),
        message_context_info: m.message_context_info.clone(),
        ..Default::default()
    }
}

/// Unwraps a `DeviceSentMessage`: the original message and the chat it went to, if `m` is one.
pub fn unwrap_device_sent(m: &wa::Message) -> Option<(wa::Message, Option<Jid>)> {
    let dsm = m.device_sent_message.as_ref()?;
    let inner = dsm.message.as_deref()?.clone();
    let chat = dsm.destination_jid.as_deref().and_then(|s| s.parse().ok());
    Some((inner, chat))
}

/// The pairwise message that hands our sender key for `group` to a member device.
pub fn skdm_message(group: &Jid, skdm: &[u8]) -> wa::Message {
    wa::Message {
        sender_key_distribution_message: Some(message::SenderKeyDistributionMessage {
            group_id: Some(group.to_string()),
            axolotl_sender_key_distribution_message: Some(skdm.to_vec()),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn plain_text_is_a_conversation() {
        let m = prepare_text(&Jid::pn("1"), "hi", None, &[]);
        assert_eq!(m.conversation.as_deref(), Some("hi"));
        assert_eq!(content_type(&m), "conversation");
        assert_eq!(stanza_type(&m), "text");
    }

    #[test]
    fn quote_and_mentions_make_an_extended_text() {
        let q = Quoted {
            id: "3EB0AA".into(),
            chat: Jid::pn("1"),
            author: Jid::with_device("1", 3, zapin_protocol::jid::Server::Pn),
            message: prepare_text(&Jid::pn("1"), "orig", None, &[]),
        };
        let m = prepare_text(&Jid::pn("1"), "reply @2", Some(&q), &[Jid::pn("2")]);
        let ext = m.extended_text_message.as_ref().unwrap();
        assert_eq!(ext.text.as_deref(), Some("reply @2"));
        let ctx = ext.context_info.as_ref().unwrap();
        assert_eq!(ctx.stanza_id.as_deref(), Some("3EB0AA"));
        assert_eq!(ctx.participant.as_deref(), Some("1@s.whatsapp.net"));
        assert_eq!(ctx.remote_jid, None);
        assert_eq!(ctx.mentioned_jid, vec!["2@s.whatsapp.net".to_owned()]);
        assert_eq!(
            ctx.quoted_message.as_ref().unwrap().conversation.as_deref(),
            Some("orig")
        );
        assert_eq!(content_type(&m), "extendedTextMessage");
    }

    #[test]
    fn padded_round_trip_and_device_sent_unwrap() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let m = prepare_text(&Jid::pn("1"), "x", None, &[]);
        let dsm = wrap_device_sent(&m, &Jid::pn("1"), None);
        let back = decode_padded(&encode_padded(&dsm, &mut rng)).unwrap();
        let (inner, chat) = unwrap_device_sent(&back).unwrap();
        assert_eq!(inner, m);
        assert_eq!(chat, Some(Jid::pn("1")));
        assert!(matches!(
            decode_padded(&[]),
            Err(MessagingError::BadPadding)
        ));
        assert!(matches!(
            decode_padded(&[0xff, 0x01, 0x01]),
            Err(MessagingError::BadProtobuf)
        ));
    }
}
