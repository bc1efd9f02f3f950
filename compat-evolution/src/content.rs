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
