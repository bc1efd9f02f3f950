//! The `message`, `messageType` and `contextInfo` of a message record (contract §3.3).
//!
//! Evolution stores and reports Baileys' decoded proto object as JSON: protobufjs field names
//! (camelCase), `bytes` as an object keyed by byte index, 64-bit integers as
//! `{low, high, unsigned}`, absent fields omitted. [`ProtoObject`] builds such objects (the
//! gateway walks the engine's proto with it); [`normalize`] then applies Evolution's rewrites:
//!
//! * `documentWithCaptionMessage` is unwrapped to `documentMessage`;
//! * the type is the first content key, as Baileys' `getContentType` picks it (skipping
//!   `senderKeyDistributionMessage` and `messageContextInfo`), else `unknown`;
//! * `contextInfo` is the content's own `contextInfo`, else null;
//! * `extendedTextMessage` becomes `{conversation: text}` with type `conversation` (its
//!   `contextInfo` is still reported).

use serde_json::{Map, Value};

/// A proto `bytes` value as `JSON.stringify` renders a `Uint8Array`: `{"0":b0,"1":b1,…}`.
pub fn bytes(b: &[u8]) -> Value {
    Value::Object(
        b.iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), Value::from(*v)))
            .collect(),
    )
}

/// A 64-bit proto integer as protobufjs' `Long`: `{low, high, unsigned}` with signed 32-bit halves.
pub fn long(v: u64, unsigned: bool) -> Value {
    // The halves are two's-complement 32-bit values, as `Long` stores them.
    #[allow(clippy::cast_possible_truncation)]
    let (low, high) = (v as u32 as i32, (v >> 32) as u32 as i32);
    serde_json::json!({ "low": low, "high": high, "unsigned": unsigned })
}

/// A signed 64-bit proto integer (`int64`) as a `Long`.
pub fn long_signed(v: i64) -> Value {
    long(u64::from_ne_bytes(v.to_ne_bytes()), false)
}

/// A proto message as JSON, fields added in field-number order and skipped when absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProtoObject(Map<String, Value>);

impl ProtoObject {
    pub fn new() -> Self {
        Self::default()
    }

    fn put(mut self, name: &str, v: Option<Value>) -> Self {
        if let Some(v) = v {
            self.0.insert(name.to_owned(), v);
        }
        self
    }

    pub fn string(self, name: &str, v: Option<&str>) -> Self {
        self.put(name, v.map(Value::from))
    }

    pub fn bytes(self, name: &str, v: Option<&[u8]>) -> Self {
        self.put(name, v.map(bytes))
    }

    pub fn boolean(self, name: &str, v: Option<bool>) -> Self {
        self.put(name, v.map(Value::from))
    }

    pub fn uint32(self, name: &str, v: Option<u32>) -> Self {
        self.put(name, v.map(Value::from))
    }

    pub fn uint64(self, name: &str, v: Option<u64>) -> Self {
        self.put(name, v.map(|v| long(v, true)))
    }

    pub fn int64(self, name: &str, v: Option<i64>) -> Self {
        self.put(name, v.map(long_signed))
    }

    pub fn double(self, name: &str, v: Option<f64>) -> Self {
        self.put(
            name,
            v.and_then(serde_json::Number::from_f64).map(Value::Number),
        )
    }

    /// A repeated string field; omitted when empty, as a decoded object has no such key.
    pub fn strings(self, name: &str, v: &[String]) -> Self {
        let v = (!v.is_empty()).then(|| Value::from(v.to_vec()));
        self.put(name, v)
    }

    /// A repeated message field; omitted when empty.
    pub fn objects(self, name: &str, v: Vec<ProtoObject>) -> Self {
        let v = (!v.is_empty())
            .then(|| Value::Array(v.into_iter().map(ProtoObject::into_value).collect()));
        self.put(name, v)
    }

    pub fn object(self, name: &str, v: Option<ProtoObject>) -> Self {
        self.put(name, v.map(ProtoObject::into_value))
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// What a message record says about the content.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub message_type: String,
    pub message: Value,
    /// Null when the content has none.
    pub context_info: Value,
}

/// Keys that are not the content (Baileys' `getContentType` skips them).
fn is_content_key(key: &str) -> bool {
    (key == "conversation" || key.contains("Message")) && key != "senderKeyDistributionMessage"
}

/// Applies Evolution's record rewrites (see the module docs) to a proto message object.
pub fn normalize(mut message: Map<String, Value>) -> Content {
    if let Some(wrapper) = message.remove("documentWithCaptionMessage")
        && let Some(doc) = wrapper
            .get("message")
            .and_then(|m| m.get("documentMessage"))
    {
        message.insert("documentMessage".to_owned(), doc.clone());
    }
    let message_type = message
        .keys()
        .find(|k| is_content_key(k))
        .cloned()
        .unwrap_or_else(|| "unknown".to_owned());
    let context_info = message
        .get(&message_type)
        .and_then(|c| c.get("contextInfo"))
        .cloned()
        .unwrap_or(Value::Null);
    if message_type == "extendedTextMessage" {
        let text = message
            .remove("extendedTextMessage")
            .and_then(|e| e.get("text").cloned())
            .unwrap_or_else(|| Value::from(""));
        message.insert("conversation".to_owned(), text);
        return Content {
            message_type: "conversation".to_owned(),
            message: Value::Object(message),
            context_info,
        };
    }
    Content {
        message_type,
        message: Value::Object(message),
        context_info,
    }
}

/// The `source` of a message record: the sending device kind, guessed from the message id's
/// shape as Baileys' `getDevice` does (iOS ids start with `3A`, WhatsApp Web's with `3E`, …).
pub fn source_of(id: &str) -> &'static str {
    let len = id.chars().count();
    if id.starts_with("3A") && len == 20 {
        "ios"
    } else if id.starts_with("3E") && len == 22 {
        "web"
    } else if len == 21 || len == 32 {
        "android"
    } else if id.starts_with("3F") || len == 18 {
        "desktop"
    } else {
        "unknown"
    }
}

/// Evolution's `getConversationMessage`: the text a chatbot sees for a stored message
/// (`message` is the record's `message` object, `key_id` its id). The first present of: text,
/// a contact's display name, a location's latitude, a view-once media URL, a list reply's
/// title (else its row id), a button or template reply's id, then media as
/// `<type>|<key id>[|caption]`; an ad reply's body is appended on a new line. `None` when the
/// message has none of these (a sticker, a poll, a reaction, …).
pub fn conversation_text(message: &Value, key_id: &str) -> Option<String> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let at = |path: &[&str]| {
        path.iter()
            .try_fold(message, |v, key| v.get(*key))
            .filter(|v| !v.is_null())
    };
    let media = |kind: &str, path: &[&str]| {
        at(path).map(|m| match m.get("caption").and_then(Value::as_str) {
            Some(caption) if !caption.is_empty() => format!("{kind}|{key_id}|{caption}"),
            _ => format!("{kind}|{key_id}"),
        })
    };
    let view_once = |kind: &str| s(at(&["viewOnceMessageV2", "message", kind, "url"]));
    let latitude = at(&["locationMessage", "degreesLatitude"]).map(|v| match v {
        Value::String(t) => t.clone(),
        other => other.to_string(),
    });
    let found = s(at(&["conversation"]))
        .or_else(|| s(at(&["extendedTextMessage", "text"])))
        .or_else(|| s(at(&["contactMessage", "displayName"])))
        .or(latitude)
        .or_else(|| view_once("imageMessage"))
        .or_else(|| view_once("videoMessage"))
        .or_else(|| view_once("audioMessage"))
        .or_else(|| s(at(&["listResponseMessage", "title"])))
        .or_else(|| {
            s(at(&[
                "listResponseMessage",
                "singleSelectReply",
                "selectedRowId",
            ]))
        })
        .or_else(|| s(at(&["templateButtonReplyMessage", "selectedId"])))
        .or_else(|| s(at(&["buttonsResponseMessage", "selectedButtonId"])))
        .or_else(|| s(at(&["speechToText"])))
        .or_else(|| at(&["audioMessage"]).map(|_| format!("audioMessage|{key_id}")))
        .or_else(|| media("imageMessage", &["imageMessage"]))
        .or_else(|| media("videoMessage", &["videoMessage"]))
        .or_else(|| media("documentMessage", &["documentMessage"]))
        .or_else(|| {
            media(
                "documentWithCaptionMessage",
                &["documentWithCaptionMessage", "message", "documentMessage"],
            )
        });
    let ad = s(at(&["contextInfo", "externalAdReply", "body"]))
        .map(|body| format!("externalAdReplyBody|{body}"));
    match (found, ad) {
        (Some(text), Some(ad)) => Some(format!("{text}\n{ad}")),
        (text, ad) => text.or(ad),
    }
}

#[cfg(test)]
mod conversation_text_tests {
    use super::conversation_text;
    use serde_json::json;

    #[test]
    fn evolutions_order_and_formats() {
        let t = |m| conversation_text(&m, "3EB0");
        assert_eq!(t(json!({"conversation": "hi"})).as_deref(), Some("hi"));
        assert_eq!(
            t(json!({"extendedTextMessage": {"text": "yo"}})).as_deref(),
            Some("yo")
        );
        assert_eq!(
            t(json!({"imageMessage": {"caption": "look"}})).as_deref(),
            Some("imageMessage|3EB0|look")
        );
        assert_eq!(
            t(json!({"audioMessage": {}})).as_deref(),
            Some("audioMessage|3EB0")
        );
        assert_eq!(
            t(json!({"listResponseMessage": {"singleSelectReply": {"selectedRowId": "r1"}}}))
                .as_deref(),
            Some("r1")
        );
        assert_eq!(
            t(json!({"buttonsResponseMessage": {"selectedButtonId": "b1"}})).as_deref(),
            Some("b1")
        );
        assert_eq!(
            t(json!({"locationMessage": {"degreesLatitude": -23.5}})).as_deref(),
            Some("-23.5")
        );
        assert_eq!(t(json!({"reactionMessage": {"text": "x"}})), None);
        assert_eq!(t(json!("not an object")), None);
    }
}
