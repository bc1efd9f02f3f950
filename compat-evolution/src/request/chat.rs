//! `POST /chat/whatsappNumbers`, `/chat/markMessageAsRead`, `/chat/findMessages`.

use serde_json::Value;

use super::{get_bool, get_i64, get_str, get_strings, run_schema};
use crate::error::{ErrorEnvelope, RawErrorBody};
use crate::schema::{Rules, Ty};

/// A validated whatsappNumbers body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsappNumbers {
    /// Phones or JIDs, as given (normalised later by `createJid` rules).
    pub numbers: Vec<String>,
}

/// Validates a whatsappNumbers body. Errors come back in the route's **raw** shape
/// `{status, error, message}` without `response` (§1.4, §11 #4), because this route catches
/// everything, including schema errors, and replies with the thrown object.
///
/// Deviation: the schema has no `required`, so Evolution crashes on a missing `numbers` and
/// replies `{}`; zapin reports `instance requires property "numbers"` in the same raw shape.
pub fn validate_whatsapp_numbers(body: &Value) -> Result<WhatsappNumbers, RawErrorBody> {
    run_schema(body, |c| {
        c.string_array(
            "numbers",
            Rules {
                min_items: Some(1),
                unique_items: true,
                ..Rules::NONE
            },
            Rules::described("\"numbers\" must be an array of numeric strings"),
        );
        c.required(&["numbers"]);
    })
    .map_err(ErrorEnvelope::into_raw)?;
    Ok(WhatsappNumbers {
        numbers: get_strings(body, "numbers").unwrap_or_default(),
    })
}

/// One message to mark as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMessage {
    pub id: String,
    pub from_me: bool,
    pub remote_jid: String,
}

/// Validates a markMessageAsRead body (readMessageSchema).
pub fn validate_mark_message_as_read(body: &Value) -> Result<Vec<ReadMessage>, ErrorEnvelope> {
    run_schema(body, |c| {
        c.object_array(
            "readMessages",
            Rules {
                min_items: Some(1),
                unique_items: true,
                ..Rules::NONE
            },
            |item| {
                item.prop("id", Ty::String, Rules::NONE);
                item.prop("fromMe", Ty::Boolean, Rules::BOOL_ENUM);
                item.prop("remoteJid", Ty::String, Rules::NONE);
                item.required(&["id", "fromMe", "remoteJid"]);
                item.not_empty(&["id", "remoteJid"]);
            },
        );
        c.required(&["readMessages"]);
    })?;
    let items = body
        .get("readMessages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    // Non-object items pass Evolution's schema (no `type` on items) and are skipped here.
    Ok(items
        .iter()
        .filter_map(|m| {
            Some(ReadMessage {
                id: get_str(m, "id")?,
                from_me: get_bool(m, "fromMe")?,
                remote_jid: get_str(m, "remoteJid")?,
            })
        })
        .collect())
}

/// A validated findMessages body.
#[derive(Debug, Clone, PartialEq)]
pub struct FindMessages {
    pub filter: MessageFilter,
    /// 1-based page, default 1.
    pub page: u64,
    /// Page size, default 50.
    pub offset: u64,
}

/// `where` of findMessages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessageFilter {
    /// The DB id of the message.
    pub id: Option<String>,
    pub key: KeyFilter,
    pub source: Option<String>,
    pub message_type: Option<String>,
    /// `messageTimestamp.{gte,lte}` as given (date strings); applied only when **both** are set.
    pub timestamp_range: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyFilter {
    pub id: Option<String>,
    pub from_me: Option<bool>,
    pub remote_jid: Option<String>,
    pub participant: Option<String>,
    pub remote_jid_alt: Option<String>,
}

pub const DEFAULT_PAGE_SIZE: u64 = 50;

/// Validates a findMessages body (messageValidateSchema). `page` and `offset` are outside the
/// schema; a value that is not a positive integer (or numeric string) falls back to the default.
pub fn validate_find_messages(body: &Value) -> Result<FindMessages, ErrorEnvelope> {
    const CANNOT_BE_EMPTY: &str = "The property cannot be empty";
    run_schema(body, |c| {
        c.object("where", Rules::NONE, |w| {
            w.prop(
                "_id",
                Ty::String,
                Rules {
                    min_length: Some(1),
                    ..Rules::NONE
                },
            );
            w.object("key", Rules::NONE, |k| {
                if k.only_keys(&["fromMe", "remoteJid", "id"]) {
                    let non_empty = Rules {
                        description: Some(CANNOT_BE_EMPTY),
                        min_length: Some(1),
                        ..Rules::NONE
                    };
                    k.prop("remoteJid", Ty::String, non_empty);
                    k.prop("id", Ty::String, non_empty);
                    k.prop("fromMe", Ty::Boolean, Rules::BOOL_ENUM);
                }
            });
            w.prop("message", Ty::Object, Rules::NONE);
            w.not_empty(&["_id"]);
        });
        c.prop("limit", Ty::Integer, Rules::NONE);
    })?;
    let empty = Value::Null;
    let w = body.get("where").unwrap_or(&empty);
    let k = w.get("key").unwrap_or(&empty);
    let ts = w.get("messageTimestamp").unwrap_or(&empty);
    let timestamp_range = match (get_str(ts, "gte"), get_str(ts, "lte")) {
        (Some(gte), Some(lte)) => Some((gte, lte)),
        _ => None,
    };
    Ok(FindMessages {
        filter: MessageFilter {
            id: get_str(w, "id"),
            key: KeyFilter {
                id: get_str(k, "id"),
                from_me: get_bool(k, "fromMe"),
                remote_jid: get_str(k, "remoteJid"),
                participant: get_str(k, "participant"),
                remote_jid_alt: get_str(k, "remoteJidAlt"),
            },
            source: get_str(w, "source"),
            message_type: get_str(w, "messageType"),
            timestamp_range,
        },
        page: positive(body, "page").unwrap_or(1),
        offset: positive(body, "offset").unwrap_or(DEFAULT_PAGE_SIZE),
    })
}

fn positive(body: &Value, key: &str) -> Option<u64> {
    let n = get_i64(body, key).or_else(|| get_str(body, key)?.trim().parse().ok())?;
    u64::try_from(n).ok().filter(|n| *n > 0)
}
