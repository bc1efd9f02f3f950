//! The engine's decoded `wa::Message` as the proto JSON Evolution reports (field names and
//! encodings in [`zapin_compat_evolution::content`], which also applies Evolution's rewrites).
//!
//! Transport wrappers (ephemeral, view-once) are unwrapped, as the engine's `content_type` does,
//! so that `messageType` names the content. Kinds zapin does not map yet (polls, protocol and
//! edit messages) are reported with an empty object under their key.

use zapin_compat_evolution::content::{Content, ProtoObject, normalize};
use zapin_protocol::proto::wa;
use zapin_protocol::proto::wa::message as m;

/// The record's `message`, `messageType` and `contextInfo` for an incoming message.
pub fn message_content(msg: &wa::Message) -> Content {
    normalize(proto_message(msg).into_map())
}

fn inner(msg: &wa::Message) -> &wa::Message {
    for wrapper in [
        &msg.ephemeral_message,
        &msg.view_once_message,
        &msg.view_once_message_v2,
    ] {
        if let Some(inner) = wrapper.as_ref().and_then(|w| w.message.as_deref()) {
            return inner;
        }
    }
    msg
}

/// The `protocolMessage` of an edit or a revoke, through the ephemeral and edit wrappers.
pub fn protocol_of(msg: &wa::Message) -> Option<&m::ProtocolMessage> {
    let msg = inner(msg);
    if let Some(p) = msg.protocol_message.as_deref() {
        return Some(p);
    }
    msg.edited_message
        .as_ref()
        .and_then(|w| w.message.as_deref())
        .and_then(|inner| inner.protocol_message.as_deref())
}

/// Evolution's `messages.edited` data: the `protocolMessage` as Baileys decodes it.
pub fn edit_json(p: &m::ProtocolMessage) -> serde_json::Value {
    let key = p.key.as_ref().map(|k| {
        ProtoObject::new()
            .string("remoteJid", k.remote_jid.as_deref())
            .boolean("fromMe", k.from_me)
            .string("id", k.id.as_deref())
            .string("participant", k.participant.as_deref())
    });
    ProtoObject::new()
        .object("key", key)
        .uint32("type", p.r#type.and_then(|t| u32::try_from(t).ok()))
        .object(
            "editedMessage",
            p.edited_message.as_deref().map(proto_message),
        )
        .int64("timestampMs", p.timestamp_ms)
        .into_value()
}

/// A `wa::Message` as proto JSON, fields in field-number order.
pub fn proto_message(msg: &wa::Message) -> ProtoObject {
    let msg = inner(msg);
    let empty = || Some(ProtoObject::new());
    ProtoObject::new()
        .string("conversation", msg.conversation.as_deref())
        .object("imageMessage", msg.image_message.as_deref().map(image))
        .object(
            "contactMessage",
            msg.contact_message.as_deref().map(contact),
        )
        .object(
            "locationMessage",
            msg.location_message.as_deref().map(location),
        )
        .object(
            "contactsArrayMessage",
            msg.contacts_array_message.as_deref().map(contacts_array),
        )
        .object(
            "extendedTextMessage",
            msg.extended_text_message.as_deref().map(extended_text),
        )
        .object(
            "documentMessage",
            msg.document_message.as_deref().map(document),
        )
        .object("audioMessage", msg.audio_message.as_deref().map(audio))
        .object("videoMessage", msg.video_message.as_deref().map(video))
        .object(
            "protocolMessage",
            msg.protocol_message.as_ref().and_then(|_| empty()),
        )
        .object(
            "stickerMessage",
            msg.sticker_message.as_deref().map(sticker),
        )
        .object(
            "reactionMessage",
            msg.reaction_message.as_ref().map(reaction),
        )
        .object(
            "pollCreationMessage",
            msg.poll_creation_message.as_deref().map(poll),
        )
        .object(
            "pollUpdateMessage",
            msg.poll_update_message.as_ref().and_then(|_| empty()),
        )
        .object(
            "pollCreationMessageV2",
            msg.poll_creation_message_v2.as_deref().map(poll),
        )
        .object(
            "pollCreationMessageV3",
            msg.poll_creation_message_v3.as_deref().map(poll),
        )
        .object("ptvMessage", msg.ptv_message.as_deref().map(video))
        .object(
            "documentWithCaptionMessage",
            msg.document_with_caption_message
                .as_ref()
                .and_then(|w| w.message.as_deref())
                .map(|inner| ProtoObject::new().object("message", Some(proto_message(inner)))),
        )
        .object(
            "editedMessage",
            msg.edited_message.as_ref().and_then(|_| empty()),
        )
}

fn context_info(c: &wa::ContextInfo) -> ProtoObject {
    ProtoObject::new()
        .string("stanzaId", c.stanza_id.as_deref())
        .string("participant", c.participant.as_deref())
        .object(
            "quotedMessage",
            c.quoted_message.as_deref().map(proto_message),
        )
        .string("remoteJid", c.remote_jid.as_deref())
        .strings("mentionedJid", &c.mentioned_jid)
        .uint32("forwardingScore", c.forwarding_score)
        .boolean("isForwarded", c.is_forwarded)
        .uint32("expiration", c.expiration)
}

fn ctx(c: Option<&wa::ContextInfo>) -> Option<ProtoObject> {
    c.map(context_info)
}

fn extended_text(e: &m::ExtendedTextMessage) -> ProtoObject {
    ProtoObject::new()
        .string("text", e.text.as_deref())
        .string("matchedText", e.matched_text.as_deref())
        .string("description", e.description.as_deref())
        .string("title", e.title.as_deref())
        .bytes("jpegThumbnail", e.jpeg_thumbnail.as_deref())
        .object("contextInfo", ctx(e.context_info.as_deref()))
}

fn image(i: &m::ImageMessage) -> ProtoObject {
    ProtoObject::new()
        .string("url", i.url.as_deref())
        .string("mimetype", i.mimetype.as_deref())
        .string("caption", i.caption.as_deref())
        .bytes("fileSha256", i.file_sha256.as_deref())
        .uint64("fileLength", i.file_length)
        .uint32("height", i.height)
        .uint32("width", i.width)
        .bytes("mediaKey", i.media_key.as_deref())
        .bytes("fileEncSha256", i.file_enc_sha256.as_deref())
        .string("directPath", i.direct_path.as_deref())
        .int64("mediaKeyTimestamp", i.media_key_timestamp)
        .bytes("jpegThumbnail", i.jpeg_thumbnail.as_deref())
        .object("contextInfo", ctx(i.context_info.as_deref()))
        .boolean("viewOnce", i.view_once)
}

fn video(v: &m::VideoMessage) -> ProtoObject {
    ProtoObject::new()
        .string("url", v.url.as_deref())
        .string("mimetype", v.mimetype.as_deref())
        .bytes("fileSha256", v.file_sha256.as_deref())
        .uint64("fileLength", v.file_length)
        .uint32("seconds", v.seconds)
        .bytes("mediaKey", v.media_key.as_deref())
        .string("caption", v.caption.as_deref())
        .boolean("gifPlayback", v.gif_playback)
        .uint32("height", v.height)
        .uint32("width", v.width)
        .bytes("fileEncSha256", v.file_enc_sha256.as_deref())
        .string("directPath", v.direct_path.as_deref())
        .int64("mediaKeyTimestamp", v.media_key_timestamp)
        .bytes("jpegThumbnail", v.jpeg_thumbnail.as_deref())
        .object("contextInfo", ctx(v.context_info.as_deref()))
        .boolean("viewOnce", v.view_once)
}

fn audio(a: &m::AudioMessage) -> ProtoObject {
    ProtoObject::new()
        .string("url", a.url.as_deref())
        .string("mimetype", a.mimetype.as_deref())
        .bytes("fileSha256", a.file_sha256.as_deref())
        .uint64("fileLength", a.file_length)
        .uint32("seconds", a.seconds)
        .boolean("ptt", a.ptt)
        .bytes("mediaKey", a.media_key.as_deref())
        .bytes("fileEncSha256", a.file_enc_sha256.as_deref())
        .string("directPath", a.direct_path.as_deref())
        .int64("mediaKeyTimestamp", a.media_key_timestamp)
        .object("contextInfo", ctx(a.context_info.as_deref()))
        .bytes("waveform", a.waveform.as_deref())
}

fn document(d: &m::DocumentMessage) -> ProtoObject {
    ProtoObject::new()
        .string("url", d.url.as_deref())
        .string("mimetype", d.mimetype.as_deref())
        .string("title", d.title.as_deref())
        .bytes("fileSha256", d.file_sha256.as_deref())
        .uint64("fileLength", d.file_length)
        .uint32("pageCount", d.page_count)
        .bytes("mediaKey", d.media_key.as_deref())
        .string("fileName", d.file_name.as_deref())
        .bytes("fileEncSha256", d.file_enc_sha256.as_deref())
        .string("directPath", d.direct_path.as_deref())
        .int64("mediaKeyTimestamp", d.media_key_timestamp)
        .bytes("jpegThumbnail", d.jpeg_thumbnail.as_deref())
        .object("contextInfo", ctx(d.context_info.as_deref()))
        .string("caption", d.caption.as_deref())
}

fn sticker(s: &m::StickerMessage) -> ProtoObject {
    ProtoObject::new()
        .string("url", s.url.as_deref())
        .bytes("fileSha256", s.file_sha256.as_deref())
        .bytes("fileEncSha256", s.file_enc_sha256.as_deref())
        .bytes("mediaKey", s.media_key.as_deref())
        .string("mimetype", s.mimetype.as_deref())
        .uint32("height", s.height)
        .uint32("width", s.width)
        .string("directPath", s.direct_path.as_deref())
        .uint64("fileLength", s.file_length)
        .int64("mediaKeyTimestamp", s.media_key_timestamp)
        .boolean("isAnimated", s.is_animated)
        .bytes("pngThumbnail", s.png_thumbnail.as_deref())
        .object("contextInfo", ctx(s.context_info.as_deref()))
}

fn location(l: &m::LocationMessage) -> ProtoObject {
    ProtoObject::new()
        .double("degreesLatitude", l.degrees_latitude)
        .double("degreesLongitude", l.degrees_longitude)
        .string("name", l.name.as_deref())
        .string("address", l.address.as_deref())
        .string("url", l.url.as_deref())
        .boolean("isLive", l.is_live)
        .uint32("accuracyInMeters", l.accuracy_in_meters)
        .string("comment", l.comment.as_deref())
        .bytes("jpegThumbnail", l.jpeg_thumbnail.as_deref())
        .object("contextInfo", ctx(l.context_info.as_deref()))
}

fn contact(c: &m::ContactMessage) -> ProtoObject {
    ProtoObject::new()
        .string("displayName", c.display_name.as_deref())
        .string("vcard", c.vcard.as_deref())
        .object("contextInfo", ctx(c.context_info.as_deref()))
}

fn contacts_array(c: &m::ContactsArrayMessage) -> ProtoObject {
    ProtoObject::new()
        .string("displayName", c.display_name.as_deref())
        .objects("contacts", c.contacts.iter().map(contact).collect())
        .object("contextInfo", ctx(c.context_info.as_deref()))
}

fn poll(p: &m::PollCreationMessage) -> ProtoObject {
    let options = p
        .options
        .iter()
        .map(|o| ProtoObject::new().string("optionName", o.option_name.as_deref()))
        .collect();
    ProtoObject::new()
        .string("name", p.name.as_deref())
        .objects("options", options)
        .uint32("selectableOptionsCount", p.selectable_options_count)
        .object("contextInfo", ctx(p.context_info.as_deref()))
}

fn reaction(r: &m::ReactionMessage) -> ProtoObject {
    let key = r.key.as_ref().map(|k| {
        ProtoObject::new()
            .string("remoteJid", k.remote_jid.as_deref())
            .boolean("fromMe", k.from_me)
            .string("id", k.id.as_deref())
            .string("participant", k.participant.as_deref())
    });
    ProtoObject::new()
        .object("key", key)
        .string("text", r.text.as_deref())
        .string("groupingKey", r.grouping_key.as_deref())
        .int64("senderTimestampMs", r.sender_timestamp_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ephemeral_image_maps_to_an_image_record() {
        let msg = wa::Message {
            ephemeral_message: Some(Box::new(m::FutureProofMessage {
                message: Some(Box::new(wa::Message {
                    image_message: Some(Box::new(m::ImageMessage {
                        caption: Some("look".to_owned()),
                        file_length: Some(5),
                        media_key: Some(vec![1, 2]),
                        ..Default::default()
                    })),
                    ..Default::default()
                })),
            })),
            ..Default::default()
        };
        let content = message_content(&msg);
        assert_eq!(content.message_type, "imageMessage");
        assert_eq!(
            content.message,
            json!({"imageMessage": {"caption": "look",
                "fileLength": {"low": 5, "high": 0, "unsigned": true},
                "mediaKey": {"0": 1, "1": 2}}})
        );
        assert_eq!(content.context_info, serde_json::Value::Null);
    }
}
