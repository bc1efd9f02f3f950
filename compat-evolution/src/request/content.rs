//! The content send routes besides text and sendMedia (contract rows 12, 14–18, §3.3):
//! sendWhatsAppAudio, sendSticker, sendLocation, sendContact (with Evolution's vCard),
//! sendReaction and sendPoll.

use serde_json::Value;

use super::media::{MediaSource, NOT_URL_OR_BASE64, SendMeta, parse_media_source};
use super::message::{NUMBER, check_metadata};
use super::{get_bool, get_i64, get_str, run_schema};
use crate::error::ErrorEnvelope;
use crate::schema::{Rules, Ty};

/// A validated sendWhatsAppAudio or sendSticker body (the file is fetched later).
#[derive(Debug, Clone, PartialEq)]
pub struct SendFile {
    pub number: String,
    /// `audio` / `sticker`: absent when a multipart `file` came instead.
    pub media: Option<MediaSource>,
    /// sendWhatsAppAudio `encoding` (default true: convert to ogg/opus when needed);
    /// sendSticker `notConvertSticker` inverted.
    pub convert: bool,
    pub meta: SendMeta,
}

/// Evolution's answer for an audio that is neither a URL, base64 nor a file.
pub const AUDIO_INVALID: &str = "Owned media must be a url, base64, or valid file with buffer";

fn file_body(
    body: &Value,
    has_file: bool,
    field: &str,
    invalid: &str,
) -> Result<(String, Option<MediaSource>), ErrorEnvelope> {
    let media = match get_str(body, field).filter(|m| !m.trim().is_empty()) {
        None if has_file => None,
        None => return Err(ErrorEnvelope::bad_request([invalid])),
        Some(m) => {
            Some(parse_media_source(&m).ok_or_else(|| ErrorEnvelope::bad_request([invalid]))?)
        }
    };
    Ok((get_str(body, "number").unwrap_or_default(), media))
}

/// sendWhatsAppAudio: `number`, `audio` (or a `file` part), `encoding`.
pub fn validate_send_audio(body: &Value, has_file: bool) -> Result<SendFile, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::described(NUMBER));
        c.prop("audio", Ty::String, Rules::NONE);
        c.prop("encoding", Ty::Boolean, Rules::NONE);
        check_metadata(c);
        c.required(&["number"]);
    })?;
    let (number, media) = file_body(body, has_file, "audio", AUDIO_INVALID)?;
    Ok(SendFile {
        number,
        media,
        convert: get_bool(body, "encoding").unwrap_or(true),
        meta: SendMeta::from_body(body),
    })
}

/// sendSticker: `number`, `sticker` (or a `file` part), `notConvertSticker`.
pub fn validate_send_sticker(body: &Value, has_file: bool) -> Result<SendFile, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::described(NUMBER));
        c.prop("sticker", Ty::String, Rules::NONE);
        c.prop("notConvertSticker", Ty::Boolean, Rules::NONE);
        check_metadata(c);
        c.required(&["number"]);
    })?;
    let (number, media) = file_body(body, has_file, "sticker", NOT_URL_OR_BASE64)?;
    Ok(SendFile {
        number,
        media,
        convert: !get_bool(body, "notConvertSticker").unwrap_or(false),
        meta: SendMeta::from_body(body),
    })
}

/// sendPtv: `number`, `video` (or a `file` part).
pub fn validate_send_ptv(body: &Value, has_file: bool) -> Result<SendFile, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::described(NUMBER));
        c.prop("video", Ty::String, Rules::NONE);
        check_metadata(c);
        c.required(&["number"]);
    })?;
    let (number, media) = file_body(body, has_file, "video", NOT_URL_OR_BASE64)?;
    Ok(SendFile {
        number,
        media,
        convert: false,
        meta: SendMeta::from_body(body),
    })
}

/// A validated call/offer body (Evolution answers it with a stub and places no call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferCall {
    pub number: String,
    pub is_video: bool,
    pub call_duration: i64,
}

pub fn validate_offer_call(body: &Value) -> Result<OfferCall, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::described(NUMBER));
        c.prop("isVideo", Ty::Boolean, Rules::NONE);
        c.prop("callDuration", Ty::Integer, Rules::NONE);
        c.required(&["number", "callDuration"]);
    })?;
    let call_duration = get_i64(body, "callDuration").unwrap_or(0);
    if !(1..=15).contains(&call_duration) {
        return Err(ErrorEnvelope::bad_request([
            "callDuration must be between 1 and 15",
        ]));
    }
    Ok(OfferCall {
        number: get_str(body, "number").unwrap_or_default(),
        is_video: get_bool(body, "isVideo").unwrap_or(false),
        call_duration,
    })
}

/// A validated sendLocation body.
#[derive(Debug, Clone, PartialEq)]
pub struct SendLocation {
    pub number: String,
    pub latitude: f64,
    pub longitude: f64,
    pub name: String,
    pub address: String,
    pub meta: SendMeta,
}

/// sendLocation: the schema's required fields, and (zapin's addition) coordinates on the globe.
pub fn validate_send_location(body: &Value) -> Result<SendLocation, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::described(NUMBER));
        c.prop("latitude", Ty::Number, Rules::NONE);
        c.prop("longitude", Ty::Number, Rules::NONE);
        c.prop("name", Ty::String, Rules::NONE);
        c.prop("address", Ty::String, Rules::NONE);
        check_metadata(c);
        c.required(&["number", "latitude", "longitude", "name", "address"]);
    })?;
    let coord = |k: &str| body.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let (latitude, longitude) = (coord("latitude"), coord("longitude"));
    if !(-90.0..=90.0).contains(&latitude) {
        return Err(ErrorEnvelope::bad_request([
            "latitude must be between -90 and 90",
        ]));
    }
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(ErrorEnvelope::bad_request([
            "longitude must be between -180 and 180",
        ]));
    }
    Ok(SendLocation {
        number: get_str(body, "number").unwrap_or_default(),
        latitude,
        longitude,
        name: get_str(body, "name").unwrap_or_default(),
        address: get_str(body, "address").unwrap_or_default(),
        meta: SendMeta::from_body(body),
    })
}

/// One card of sendContact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactCard {
    pub full_name: String,
    pub phone_number: String,
    pub wuid: Option<String>,
    pub organization: Option<String>,
    pub email: Option<String>,
    pub url: Option<String>,
}

impl ContactCard {
    /// The vCard 3.0 Evolution builds for a contact: `N` and `FN` from the full name, optional
    /// `ORG` (with Evolution's trailing `;`), `EMAIL`, `URL`, and one `item1.TEL` whose `waid`
    /// is the WhatsApp id (`wuid`, else the phone number's digits) with the `Celular` label.
    /// Line breaks inside a value would start a new property, so they are folded to spaces.
    pub fn vcard(&self) -> String {
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        let name = clean(&self.full_name);
        let mut v = format!("BEGIN:VCARD\nVERSION:3.0\nN:{name}\nFN:{name}\n");
        if let Some(org) = self.organization.as_deref().filter(|s| !s.is_empty()) {
            v.push_str(&format!("ORG:{};\n", clean(org)));
        }
        if let Some(email) = self.email.as_deref().filter(|s| !s.is_empty()) {
            v.push_str(&format!("EMAIL:{}\n", clean(email)));
        }
        if let Some(url) = self.url.as_deref().filter(|s| !s.is_empty()) {
            v.push_str(&format!("URL:{}\n", clean(url)));
        }
        let waid: String = match self.wuid.as_deref().filter(|s| !s.is_empty()) {
            Some(w) => w.split('@').next().unwrap_or_default().to_owned(),
            None => self
                .phone_number
                .chars()
                .filter(char::is_ascii_digit)
                .collect(),
        };
        let waid: String = waid.chars().filter(char::is_ascii_digit).collect();
        v.push_str(&format!(
            "item1.TEL;waid={waid}:{}\nitem1.X-ABLabel:Celular\nEND:VCARD",
            clean(&self.phone_number)
        ));
        v
    }
}

/// A validated sendContact body.
#[derive(Debug, Clone, PartialEq)]
pub struct SendContact {
    pub number: String,
    pub contacts: Vec<ContactCard>,
    pub meta: SendMeta,
}

/// sendContact: `contact` is a non-empty array of `{fullName, phoneNumber, wuid?, organization?,
/// email?, url?}`.
pub fn validate_send_contact(body: &Value) -> Result<SendContact, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::described(NUMBER));
        c.object_array(
            "contact",
            Rules {
                min_items: Some(1),
                unique_items: true,
                ..Rules::NONE
            },
            |item| {
                for key in [
                    "fullName",
                    "wuid",
                    "phoneNumber",
                    "organization",
                    "email",
                    "url",
                ] {
                    item.prop(key, Ty::String, Rules::NONE);
                }
                item.required(&["fullName", "phoneNumber"]);
            },
        );
        check_metadata(c);
        c.required(&["number", "contact"]);
    })?;
    let contacts = body
        .get("contact")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|i| ContactCard {
                    full_name: get_str(i, "fullName").unwrap_or_default(),
                    phone_number: get_str(i, "phoneNumber").unwrap_or_default(),
                    wuid: get_str(i, "wuid"),
                    organization: get_str(i, "organization"),
                    email: get_str(i, "email"),
                    url: get_str(i, "url"),
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if contacts.is_empty() || contacts.iter().any(|c| c.full_name.is_empty()) {
        return Err(ErrorEnvelope::bad_request([
            "every contact needs a fullName and a phoneNumber",
        ]));
    }
    Ok(SendContact {
        number: get_str(body, "number").unwrap_or_default(),
        contacts,
        meta: SendMeta::from_body(body),
    })
}

/// A validated sendReaction body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReaction {
    pub key_id: String,
    pub remote_jid: String,
    pub from_me: bool,
    pub participant: Option<String>,
    /// One emoji, or `""` to remove the reaction.
    pub reaction: String,
}

/// Evolution's answer for anything but one emoji or `""`.
pub const REACTION_INVALID: &str = "Reaction must be a single emoji or empty string";

pub fn validate_send_reaction(body: &Value) -> Result<SendReaction, ErrorEnvelope> {
    run_schema(body, |c| {
        c.object("key", Rules::NONE, |k| {
            k.prop("id", Ty::String, Rules::NONE);
            k.prop("remoteJid", Ty::String, Rules::NONE);
            k.prop("fromMe", Ty::Boolean, Rules::BOOL_ENUM);
            k.prop("participant", Ty::String, Rules::NONE);
            k.required(&["id", "remoteJid", "fromMe"]);
            k.not_empty(&["id", "remoteJid"]);
        });
        c.prop("reaction", Ty::String, Rules::NONE);
        c.required(&["key", "reaction"]);
    })?;
    let reaction = get_str(body, "reaction").unwrap_or_default();
    if !reaction.is_empty() && !is_single_emoji(&reaction) {
        return Err(ErrorEnvelope::bad_request([REACTION_INVALID]));
    }
    let key = body.get("key").cloned().unwrap_or_default();
    Ok(SendReaction {
        key_id: get_str(&key, "id").unwrap_or_default(),
        remote_jid: get_str(&key, "remoteJid").unwrap_or_default(),
        from_me: get_bool(&key, "fromMe").unwrap_or(false),
        participant: get_str(&key, "participant").filter(|p| !p.is_empty()),
        reaction,
    })
}

/// One emoji: one grapheme made of pictographic code points, joiners, variation selectors, skin
/// tones, keycap parts and regional-indicator pairs (a flag). No letters, no second emoji.
pub fn is_single_emoji(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() || chars.len() > 16 {
        return false;
    }
    let pictographic = |c: char| {
        matches!(u32::from(c),
            0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2300..=0x23FF | 0x2B00..=0x2BFF
            | 0x2190..=0x21FF | 0x3030 | 0x303D | 0x3297 | 0x3299 | 0x00A9 | 0x00AE
            | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0x24C2 | 0x25A0..=0x25FF | 0x2934 | 0x2935)
    };
    let regional = |c: char| matches!(u32::from(c), 0x1F1E6..=0x1F1FF);
    let modifier = |c: char| matches!(u32::from(c), 0xFE0F | 0xFE0E | 0x20E3 | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F);
    // A flag: exactly two regional indicators.
    if chars.iter().all(|c| regional(*c)) {
        return chars.len() == 2;
    }
    // Keycaps: digit/#/* + FE0F? + 20E3.
    if chars.last() == Some(&'\u{20E3}') {
        return matches!(chars.first(), Some('0'..='9' | '#' | '*'))
            && chars[1..].iter().all(|c| modifier(*c));
    }
    let mut expect_base = true;
    for c in chars {
        if expect_base {
            if !pictographic(c) || regional(c) {
                return false;
            }
            expect_base = false;
        } else if c == '\u{200D}' {
            expect_base = true;
        } else if !modifier(c) {
            return false;
        }
    }
    !expect_base
}

/// A validated sendPoll body.
#[derive(Debug, Clone, PartialEq)]
pub struct SendPoll {
    pub number: String,
    pub name: String,
    pub selectable_count: u32,
    pub values: Vec<String>,
    pub meta: SendMeta,
}

pub fn validate_send_poll(body: &Value) -> Result<SendPoll, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::described(NUMBER));
        c.prop("name", Ty::String, Rules::NONE);
        c.prop("selectableCount", Ty::Integer, Rules::NONE);
        c.string_array(
            "values",
            Rules {
                min_items: Some(2),
                max_items: Some(10),
                unique_items: true,
                ..Rules::NONE
            },
            Rules::NONE,
        );
        check_metadata(c);
        c.required(&["number", "name", "selectableCount", "values"]);
    })?;
    let count = get_i64(body, "selectableCount").unwrap_or(-1);
    let values: Vec<String> = super::get_strings(body, "values").unwrap_or_default();
    if !(0..=10).contains(&count) {
        return Err(ErrorEnvelope::bad_request([
            "selectableCount must be between 0 and 10",
        ]));
    }
    let name = get_str(body, "name").unwrap_or_default();
    if name.trim().is_empty() || values.iter().any(|v| v.trim().is_empty()) {
        return Err(ErrorEnvelope::bad_request([
            "the poll name and its values must not be empty",
        ]));
    }
    Ok(SendPoll {
        number: get_str(body, "number").unwrap_or_default(),
        name,
        selectable_count: u32::try_from(count).unwrap_or(0),
        values,
        meta: SendMeta::from_body(body),
    })
}

/// The message an edit, a revoke or a download is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    pub id: String,
    pub remote_jid: String,
    pub from_me: bool,
    pub participant: Option<String>,
}

/// A validated chat/updateMessage body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateMessage {
    pub number: String,
    pub text: String,
    pub key: MessageRef,
}

fn key_ref(key: &Value) -> MessageRef {
    MessageRef {
        id: get_str(key, "id").unwrap_or_default(),
        remote_jid: get_str(key, "remoteJid").unwrap_or_default(),
        from_me: get_bool(key, "fromMe").unwrap_or(false),
        participant: get_str(key, "participant").filter(|p| !p.is_empty()),
    }
}

/// chat/updateMessage: `number`, `text`, `key{id, remoteJid, fromMe}`.
pub fn validate_update_message(body: &Value) -> Result<UpdateMessage, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::described(NUMBER));
        c.prop("text", Ty::String, Rules::NONE);
        c.object("key", Rules::NONE, |k| {
            k.prop("id", Ty::String, Rules::NONE);
            k.prop("remoteJid", Ty::String, Rules::NONE);
            k.prop("fromMe", Ty::Boolean, Rules::BOOL_ENUM);
            k.required(&["id", "remoteJid", "fromMe"]);
            k.not_empty(&["id", "remoteJid"]);
        });
        c.required(&["number", "text", "key"]);
    })?;
    let text = get_str(body, "text").unwrap_or_default();
    if text.is_empty() {
        return Err(ErrorEnvelope::bad_request(["Text is required"]));
    }
    Ok(UpdateMessage {
        number: get_str(body, "number").unwrap_or_default(),
        text,
        key: key_ref(&body.get("key").cloned().unwrap_or_default()),
    })
}

/// chat/deleteMessageForEveryone: `id`, `fromMe`, `remoteJid`, `participant`.
pub fn validate_delete_for_everyone(body: &Value) -> Result<MessageRef, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("id", Ty::String, Rules::NONE);
        c.prop("remoteJid", Ty::String, Rules::NONE);
        c.prop("fromMe", Ty::Boolean, Rules::BOOL_ENUM);
        c.prop("participant", Ty::String, Rules::NONE);
        c.required(&["id", "fromMe", "remoteJid"]);
        c.not_empty(&["id", "remoteJid"]);
    })?;
    Ok(key_ref(body))
}

/// chat/getBase64FromMediaMessage: `message` (`{key:{id}}`, or a whole message with its
/// `message` content), `convertToMp4`.
#[derive(Debug, Clone, PartialEq)]
pub struct GetBase64 {
    /// The key id, to find a stored message.
    pub id: Option<String>,
    /// The message content when the body carries it (`message.message`).
    pub content: Option<Value>,
    pub convert_to_mp4: bool,
}

pub fn validate_get_base64(body: &Value) -> Result<GetBase64, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("message", Ty::Object, Rules::NONE);
        c.prop("convertToMp4", Ty::Boolean, Rules::NONE);
        c.required(&["message"]);
    })?;
    let message = body.get("message").cloned().unwrap_or_default();
    let id = message
        .get("key")
        .and_then(|k| get_str(k, "id"))
        .filter(|i| !i.is_empty());
    let content = message.get("message").filter(|m| m.is_object()).cloned();
    if id.is_none() && content.is_none() {
        return Err(ErrorEnvelope::bad_request(["message.key.id is required"]));
    }
    Ok(GetBase64 {
        id,
        content,
        convert_to_mp4: get_bool(body, "convertToMp4").unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vcard_as_evolution_builds_it() {
        let card = ContactCard {
            full_name: "Maria Silva".into(),
            phone_number: "+55 11 98765-4321".into(),
            organization: Some("ACME".into()),
            email: Some("m@acme.test".into()),
            ..Default::default()
        };
        assert_eq!(
            card.vcard(),
            "BEGIN:VCARD\nVERSION:3.0\nN:Maria Silva\nFN:Maria Silva\nORG:ACME;\nEMAIL:m@acme.test\nitem1.TEL;waid=5511987654321:+55 11 98765-4321\nitem1.X-ABLabel:Celular\nEND:VCARD"
        );
        let injected = ContactCard {
            full_name: "X\nTEL:666".into(),
            phone_number: "1".into(),
            wuid: Some("42@s.whatsapp.net".into()),
            ..Default::default()
        };
        let v = injected.vcard();
        assert!(
            v.contains("FN:X TEL:666\n") && v.contains("waid=42:"),
            "{v}"
        );
    }

    #[test]
    fn emojis() {
        for ok in ["👍", "❤️", "👍🏽", "👨‍👩‍👧", "🇧🇷", "1️⃣", "☕"]
        {
            assert!(is_single_emoji(ok), "{ok}");
        }
        for bad in ["", "a", "👍👍", "👍a", "🇧", "hi", "1", "👍 "] {
            assert!(!is_single_emoji(bad), "{bad}");
        }
    }

    #[test]
    fn bodies() {
        assert!(
            validate_send_location(
                &json!({"number":"1","latitude":91,"longitude":0,"name":"n","address":"a"})
            )
            .is_err()
        );
        assert!(
            validate_send_location(
                &json!({"number":"1","latitude":-23.5,"longitude":-46.6,"name":"n","address":"a"})
            )
            .is_ok()
        );
        assert!(
            validate_send_poll(
                &json!({"number":"1","name":"q","selectableCount":1,"values":["a","a"]})
            )
            .is_err()
        );
        let eleven: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        assert!(
            validate_send_poll(
                &json!({"number":"1","name":"q","selectableCount":1,"values":eleven})
            )
            .is_err()
        );
        assert!(
            validate_send_poll(
                &json!({"number":"1","name":"q","selectableCount":11,"values":["a","b"]})
            )
            .is_err()
        );
        assert!(
            validate_send_poll(
                &json!({"number":"1","name":"q","selectableCount":1,"values":["a","b"]})
            )
            .is_ok()
        );
        let key = json!({"id":"ABC","remoteJid":"1@s.whatsapp.net","fromMe":true});
        assert!(validate_send_reaction(&json!({"key":key,"reaction":"👍👍"})).is_err());
        assert!(validate_send_reaction(&json!({"key":key,"reaction":""})).is_ok());
        assert!(validate_send_contact(&json!({"number":"1","contact":[]})).is_err());
        assert!(
            validate_send_contact(&json!({"number":"1","contact":[{"fullName":"a"}]})).is_err()
        );
        assert!(validate_send_audio(&json!({"number":"1"}), false).is_err());
        assert!(validate_send_sticker(&json!({"number":"1","sticker":"aGk="}), false).is_ok());
        assert!(validate_update_message(&json!({"number":"1","text":"","key":key})).is_err());
        assert!(
            validate_update_message(&json!({"number":"1","text":"t","key":{"id":"A"}})).is_err()
        );
        assert_eq!(
            validate_update_message(&json!({"number":"1","text":"t","key":key}))
                .unwrap()
                .key
                .id,
            "ABC"
        );
        assert!(validate_delete_for_everyone(&json!({"id":"A","remoteJid":"1"})).is_err());
        assert!(validate_get_base64(&json!({"message":{}})).is_err());
        assert!(validate_offer_call(&json!({"number":"1","callDuration":16})).is_err());
        assert!(
            validate_offer_call(&json!({"number":"1","callDuration":3,"isVideo":true})).is_ok()
        );
        assert!(validate_send_ptv(&json!({"number":"1"}), false).is_err());
        assert!(validate_send_ptv(&json!({"number":"1"}), true).is_ok());
        let g = validate_get_base64(&json!({"message":{"key":{"id":"A"}},"convertToMp4":true}))
            .unwrap();
        assert_eq!((g.id.as_deref(), g.convert_to_mp4), (Some("A"), true));
    }
}
