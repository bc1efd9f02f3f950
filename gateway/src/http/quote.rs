//! sendText's `quoted`, `mentioned` and `mentionsEveryOne` (contract §3.3) → the engine's
//! [`SendOptions`], and the `contextInfo` the message record reports for them.
//!
//! The quoted message comes from the body's `quoted.message`, else from the database by
//! `quoted.key.id`; when neither has it the text is sent without a quote, as Evolution does.
//! Mentions only apply to group targets (Evolution ignores them elsewhere).

use serde_json::Value;
use zapin_compat_evolution::content::ProtoObject;
use zapin_compat_evolution::request::SendMeta;
use zapin_engine::{QuotedMessage, SendOptions};
use zapin_protocol::proto::wa;
use zapin_protocol::proto::wa::message as m;

use crate::db::{Db, DbError};

/// What the send needs and what its record shows.
#[derive(Debug, Default)]
pub struct Extras {
    pub options: SendOptions,
    /// The `contextInfo` of the sent `extendedTextMessage`, or null for a plain text.
    pub context_info: Value,
}

fn is_group(jid: &str) -> bool {
    jid.ends_with("@g.us")
}

/// `digits` → `digits@s.whatsapp.net`; JIDs pass through.
/// A `mentioned` entry: digits or a JID, read like any `number` (Evolution's `createJid`).
fn mention_jid(m: &str) -> String {
    zapin_compat_evolution::client_tolerance::chat_jid(m)
}

/// Builds the send's extras for `req` to `target` (a JID), `own` being the instance's JID.
pub async fn extras(
    db: &Db,
    instance_id: &str,
    own: Option<&str>,
    target: &str,
    req: &SendMeta,
) -> Result<Extras, DbError> {
    let mut out = Extras::default();
    let mut context = ProtoObject::new();
    if let Some(q) = &req.quoted {
        let stored = db.message_by_key(instance_id, &q.key.id).await?;
        let message = match (&q.message, &stored) {
            (Some(given), _) => Some(given.clone()),
            (None, Some(row)) => Some(row.message.clone()),
            (None, None) => None,
        };
        if let Some(message) = message {
            let from_me = q
                .key
                .from_me
                .or(stored.as_ref().map(|s| s.from_me))
                .unwrap_or(false);
            let chat = q
                .key
                .remote_jid
                .clone()
                .or(stored.as_ref().map(|s| s.remote_jid.clone()))
                .filter(|c| c != target);
            let participant = stored.as_ref().and_then(|s| s.participant.clone());
            let author = participant.clone().or_else(|| {
                if from_me {
                    own.map(str::to_owned)
                } else {
                    Some(chat.clone().unwrap_or_else(|| target.to_owned()))
                }
            });
            let quoted = wa_message(&message);
            context = context
                .string("stanzaId", Some(&q.key.id))
                .string("participant", author.as_deref())
                .object(
                    "quotedMessage",
                    Some(crate::runtime::content::proto_message(&quoted)),
                )
                .string("remoteJid", chat.as_deref());
            out.options.quoted = Some(QuotedMessage {
                id: q.key.id.clone(),
                chat,
                participant,
                from_me,
                message: quoted,
            });
        }
    }
    if is_group(target) {
        out.options.mentions = req.mentioned.iter().map(|m| mention_jid(m)).collect();
        out.options.mention_everyone = req.mentions_every_one;
        context = context.strings("mentionedJid", &out.options.mentions);
    }
    let context = context.into_value();
    if context.as_object().is_some_and(|o| !o.is_empty()) {
        out.context_info = context;
    }
    Ok(out)
}

fn text_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A record's `message` (Evolution/Baileys proto JSON) back to a proto for `quotedMessage`:
/// texts, and the kinds a quote preview shows by caption or name. Media keys are not carried
/// back; a kind not listed here is quoted as an empty text.
pub fn wa_message(v: &Value) -> wa::Message {
    let mut out = wa::Message::default();
    let part = |k: &str| v.get(k).filter(|p| p.is_object());
    if let Some(text) = text_of(v, "conversation") {
        out.conversation = Some(text);
    } else if let Some(e) = part("extendedTextMessage") {
        out.conversation = text_of(e, "text");
    } else if let Some(i) = part("imageMessage") {
        out.image_message = Some(Box::new(m::ImageMessage {
            caption: text_of(i, "caption"),
            mimetype: text_of(i, "mimetype"),
            ..Default::default()
        }));
    } else if let Some(i) = part("videoMessage") {
        out.video_message = Some(Box::new(m::VideoMessage {
            caption: text_of(i, "caption"),
            mimetype: text_of(i, "mimetype"),
            ..Default::default()
        }));
    } else if let Some(d) = part("documentMessage") {
        out.document_message = Some(Box::new(m::DocumentMessage {
            caption: text_of(d, "caption"),
            file_name: text_of(d, "fileName"),
            title: text_of(d, "title"),
            mimetype: text_of(d, "mimetype"),
            ..Default::default()
        }));
    } else if let Some(l) = part("locationMessage") {
        out.location_message = Some(Box::new(m::LocationMessage {
            degrees_latitude: l.get("degreesLatitude").and_then(Value::as_f64),
            degrees_longitude: l.get("degreesLongitude").and_then(Value::as_f64),
            name: text_of(l, "name"),
            address: text_of(l, "address"),
            ..Default::default()
        }));
    } else if let Some(c) = part("contactMessage") {
        out.contact_message = Some(Box::new(m::ContactMessage {
            display_name: text_of(c, "displayName"),
            vcard: text_of(c, "vcard"),
            ..Default::default()
        }));
    } else {
        out.conversation = Some(String::new());
    }
    out
}
