//! `POST /message/sendText/{instance}` (textMessageSchema, §3.3).

use serde_json::Value;

use super::{get_bool, get_i64, get_str, get_strings, run_schema};
use crate::error::ErrorEnvelope;
use crate::schema::{Check, Rules, Ty, starts_with_digit};

/// A validated sendText body.
#[derive(Debug, Clone, PartialEq)]
pub struct SendText {
    /// A phone number or any JID; normalisation happens later (whatsappNumbers logic).
    pub number: String,
    pub text: String,
    /// Typing simulation in milliseconds.
    pub delay: Option<i64>,
    /// `false` disables the link preview.
    pub link_preview: Option<bool>,
    pub quoted: Option<Quoted>,
    /// Digits of the users to mention (group targets only).
    pub mentioned: Vec<String>,
    /// `mentionsEveryOne`, or its schema spelling `everyOne` (§11 #20: both accepted).
    pub mentions_every_one: bool,
}

impl SendText {
    /// The fields every send route shares.
    pub fn meta(&self) -> super::SendMeta {
        super::SendMeta {
            delay: self.delay,
            quoted: self.quoted.clone(),
            mentioned: self.mentioned.clone(),
            mentions_every_one: self.mentions_every_one,
        }
    }
}

/// `quoted`: the message replied to. Without `message`, it is loaded by `key.id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quoted {
    pub key: QuotedKey,
    pub message: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedKey {
    pub id: String,
    pub remote_jid: Option<String>,
    pub from_me: Option<bool>,
}

const DELAY: &str = "Enter a value in milliseconds";
const MENTIONED: &str = "\"mentioned\" must be an array of numeric strings";

/// The `Metadata` part shared by every send schema, in schema order after the route's own fields.
pub(crate) fn check_metadata(c: &mut Check<'_>) {
    c.prop("delay", Ty::Integer, Rules::described(DELAY));
    c.untyped_object("quoted", |q| {
        q.object("key", Rules::NONE, |k| {
            k.prop("id", Ty::String, Rules::NONE);
            k.prop("remoteJid", Ty::String, Rules::NONE);
            k.prop("fromMe", Ty::Boolean, Rules::BOOL_ENUM);
            k.required(&["id"]);
            k.not_empty(&["id"]);
        });
        q.prop("message", Ty::Object, Rules::NONE);
    });
    c.prop("mentionsEveryOne", Ty::Boolean, Rules::BOOL_ENUM);
    c.prop(
        "everyOne",
        Ty::Boolean,
        Rules {
            description: Some("Deprecated alias for \"mentionsEveryOne\"."),
            bool_enum: true,
            ..Rules::NONE
        },
    );
    c.string_array(
        "mentioned",
        Rules {
            min_items: Some(1),
            unique_items: true,
            ..Rules::NONE
        },
        Rules {
            description: Some(MENTIONED),
            pattern: Some(("^\\d+", starts_with_digit)),
            ..Rules::NONE
        },
    );
}

pub(crate) const NUMBER: &str = "Invalid format";

/// Validates a sendText body: the schema (nested-array 400s), then the handler's
/// `Text is required` (flat 400) for an empty text.
pub fn validate_send_text(body: &Value) -> Result<SendText, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::described(NUMBER));
        c.prop("text", Ty::String, Rules::NONE);
        c.prop("linkPreview", Ty::Boolean, Rules::NONE);
        check_metadata(c);
        c.required(&["number", "text"]);
    })?;
    let text = get_str(body, "text").unwrap_or_default();
    // Evolution tests `!data.text`: only the empty string is rejected, whitespace is sent.
    if text.is_empty() {
        return Err(ErrorEnvelope::bad_request(["Text is required"]));
    }
    Ok(SendText {
        number: get_str(body, "number").unwrap_or_default(),
        text,
        delay: get_i64(body, "delay"),
        link_preview: get_bool(body, "linkPreview"),
        quoted: quoted(body),
        mentioned: get_strings(body, "mentioned").unwrap_or_default(),
        mentions_every_one: crate::client_tolerance::mentions_every_one(body).unwrap_or(false),
    })
}

pub(crate) fn quoted(body: &Value) -> Option<Quoted> {
    let q = body.get("quoted")?;
    let key = q.get("key")?;
    Some(Quoted {
        key: QuotedKey {
            id: get_str(key, "id")?,
            remote_jid: get_str(key, "remoteJid"),
            from_me: get_bool(key, "fromMe"),
        },
        message: q.get("message").filter(|m| m.is_object()).cloned(),
    })
}
