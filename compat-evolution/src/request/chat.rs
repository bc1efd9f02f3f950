//! `POST /chat/whatsappNumbers`, `/chat/markMessageAsRead`, `/chat/findMessages`,
//! `/chat/sendPresence`.

use serde_json::Value;

use super::{get_bool, get_i64, get_str, get_strings, run_schema};
use crate::client_tolerance::{key_filter_from_me, key_filter_text};
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
            // Only truthy key filters apply, as in Evolution (see `client_tolerance`).
            key: KeyFilter {
                id: key_filter_text(k, "id"),
                from_me: key_filter_from_me(k),
                remote_jid: key_filter_text(k, "remoteJid"),
                participant: key_filter_text(k, "participant"),
                remote_jid_alt: key_filter_text(k, "remoteJidAlt"),
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

impl MessageFilter {
    /// `messageTimestamp.{gte,lte}` in Unix seconds, when both are set and both parse as
    /// dates (see [`parse_date_seconds`]). Evolution's `new Date(invalid)` yields `NaN` and the
    /// query fails; zapin then applies no range instead.
    pub fn timestamp_bounds(&self) -> Option<(i64, i64)> {
        let (gte, lte) = self.timestamp_range.as_ref()?;
        Some((parse_date_seconds(gte)?, parse_date_seconds(lte)?))
    }
}

/// Unix seconds (floored) of a date string as JavaScript's `Date` parses the ISO forms clients
/// send: `YYYY-MM-DD` (UTC midnight) or `YYYY-MM-DDTHH:MM[:SS[.fff]]` with `Z`, `±HH:MM` or no
/// zone (read as UTC, the server's zone in Evolution's Docker image). A space may replace `T`.
pub fn parse_date_seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.find(['T', ' ']) {
        Some(i) => (s.get(..i)?, Some(s.get(i + 1..)?)),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let year: i64 = digits(parts.next()?, 4)?;
    let month: i64 = digits(parts.next()?, 2)?;
    let day: i64 = digits(parts.next()?, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if let Some(time) = time {
        let (clock, offset) = split_zone(time)?;
        let mut hms = clock.splitn(3, ':');
        let h: i64 = digits(hms.next()?, 2)?;
        let m: i64 = digits(hms.next()?, 2)?;
        let sec: i64 = match hms.next() {
            Some(sec) => digits(sec.split('.').next()?, 2)?,
            None => 0,
        };
        if h > 24 || m > 59 || sec > 59 {
            return None;
        }
        seconds += h * 3600 + m * 60 + sec - offset;
    }
    Some(seconds)
}

fn digits(s: &str, len: usize) -> Option<i64> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Splits `HH:MM:SS.fff±HH:MM` / `…Z` into the clock and the zone offset in seconds.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    match time.rfind(['+', '-']) {
        Some(i) => {
            let (clock, zone) = time.split_at(i);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let zone = zone.get(1..)?;
            let (h, m) = zone
                .split_once(':')
                .unwrap_or((zone.get(..2)?, zone.get(2..)?));
            Some((clock, sign * (digits(h, 2)? * 3600 + digits(m, 2)? * 60)))
        }
        None => Some((time, 0)),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A validated `POST /chat/sendPresence` body (presenceSchema).
#[derive(Debug, Clone, PartialEq)]
pub struct SendPresence {
    /// A phone number or any JID.
    pub number: String,
    pub presence: super::Presence,
    /// How long the presence is shown before `paused` is sent, in milliseconds. The schema types
    /// it `number`, so fractions pass; negative values mean no wait.
    pub delay_ms: f64,
}

/// Validates a sendPresence body. Unlike the send routes, `delay` is required and typed
/// `number` (not `integer`) with no description, so its type error reads
/// `delay is not of a type(s) number`.
pub fn validate_send_presence(body: &Value) -> Result<SendPresence, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop(
            "number",
            Ty::String,
            Rules::described(super::message::NUMBER),
        );
        c.prop("delay", Ty::Number, Rules::NONE);
        c.prop(
            "presence",
            Ty::String,
            Rules {
                enum_values: Some(&super::Presence::NAMES),
                ..Rules::NONE
            },
        );
        c.required(&["number", "presence", "delay"]);
    })?;
    let presence = get_str(body, "presence")
        .as_deref()
        .and_then(super::Presence::parse)
        .ok_or_else(|| ErrorEnvelope::validation(vec!["presence is invalid".to_owned()]))?;
    Ok(SendPresence {
        number: get_str(body, "number").unwrap_or_default(),
        presence,
        delay_ms: body.get("delay").and_then(Value::as_f64).unwrap_or(0.0),
    })
}
