//! Request bodies of the first-slice routes: parsing, Evolution-identical validation, typed DTOs.
//!
//! Each route has a `validate_<route>(&Value) -> Result<Dto, _>`. Validation runs on the raw
//! JSON value, not through serde, so that a wrong type yields Evolution's jsonschema text
//! (`delay is not of a type(s) integer`) rather than serde's. Unknown fields are ignored
//! (Evolution's schemas never set `additionalProperties: false`).

mod bot;
mod chat;
mod content;
mod directory;
mod group;
mod instance;
mod media;
mod message;
mod profile;
mod proxy;
mod settings;
mod transport;
mod webhook;

pub use bot::{
    BOT_PRODUCTS, BotBody, BotFieldType, BotIgnoreJidBody, BotProduct, BotSettingFields,
    BotSettingsBody, BotStatusBody, DIFY, EVOAI, EVOLUTION_BOT, FLOWISE, N8N, OPENAI,
    OpenaiCredsBody, ProductField, SESSION_STATUSES, TRIGGER_OPERATORS, TRIGGER_TYPES, TYPEBOT,
    product_rule_error, validate_bot, validate_bot_ignore_jid, validate_bot_settings,
    validate_bot_status, validate_openai_creds,
};
pub use chat::{
    DEFAULT_PAGE_SIZE, FindMessages, KeyFilter, MessageFilter, ReadMessage, SendPresence,
    WhatsappNumbers, parse_date_seconds, validate_find_messages, validate_mark_message_as_read,
    validate_send_presence, validate_whatsapp_numbers,
};
pub use content::{
    AUDIO_INVALID, ContactCard, GetBase64, MessageRef, OfferCall, REACTION_INVALID, SendContact,
    SendFile, SendLocation, SendPoll, SendReaction, UpdateMessage, is_single_emoji,
    validate_delete_for_everyone, validate_get_base64, validate_offer_call, validate_send_audio,
    validate_send_contact, validate_send_location, validate_send_poll, validate_send_ptv,
    validate_send_reaction, validate_send_sticker, validate_update_message,
};
pub use directory::{
    FindChats, FindContacts, MAX_PUSH_NAME, validate_find_chats, validate_find_contacts,
    validate_optional_number, validate_profile_name,
};
pub use group::{
    CreateGroup, EPHEMERAL_EXPIRATIONS, SendInvite, UpdateParticipants, validate_create_group,
    validate_get_participants, validate_group_jid, validate_group_text, validate_invite_code,
    validate_send_invite, validate_toggle_ephemeral, validate_update_participants,
    validate_update_setting, with_group_jid,
};
pub use instance::{
    ConnectQuery, CreateInstance, CreateWebhook, Integration, Presence, SetPresence,
    validate_connect_query, validate_create_instance, validate_set_presence,
};
pub use media::{
    BASE64_NEEDS_NAME, MediaSource, MediaType, NOT_URL_OR_BASE64, SendMedia, SendMeta,
    mimetype_for_file_name, multipart_field, parse_media_source, resolve_mimetype, sniff_mimetype,
    validate_send_media,
};
pub use message::{Quoted, QuotedKey, SendText, validate_send_text};
pub use profile::{
    PRIVACY_CATEGORIES, validate_block_status, validate_privacy_settings, validate_profile_text,
};
pub use proxy::{PROXY_PROTOCOLS, ProxySet, validate_proxy_set};
pub use settings::{SettingsSet, validate_settings_set};
pub use transport::{TransportSet, validate_transport_set};
pub use webhook::{WebhookSet, validate_webhook_set};

use serde_json::{Map, Value};

use crate::error::ErrorEnvelope;
use crate::schema::Check;

/// Largest body Express accepts (`136mb`, §1.1).
pub const BODY_LIMIT_BYTES: usize = 136 * 1024 * 1024;

/// Turns a raw `application/json` body into a value the way Express's `json()` parser does.
///
/// * An empty body is `{}` (the parser is skipped).
/// * Strict mode: the first non-whitespace byte must be `{` or `[`.
/// * Errors become the body-parser envelope: status 400, `error` `"Internal Server Error"`, and a
///   string message. Node's own `JSON.parse` wording varies between Node versions, so the text is
///   modelled on it, not byte-identical.
pub fn parse_json_body(body: &[u8]) -> Result<Value, ErrorEnvelope> {
    if body.len() > BODY_LIMIT_BYTES {
        return Err(ErrorEnvelope::body_parser(413, "request entity too large"));
    }
    let Some(first) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Ok(Value::Object(Map::new()));
    };
    let first_byte = body[first];
    if first_byte != b'{' && first_byte != b'[' {
        let shown = String::from_utf8_lossy(&body[first..body.len().min(first + 20)]).into_owned();
        let token = shown.chars().next().unwrap_or(' ');
        return Err(ErrorEnvelope::body_parser(
            400,
            format!("Unexpected token '{token}', \"{shown}\" is not valid JSON"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        let position = byte_position(body, e.line(), e.column());
        let text = if e.is_eof() {
            "Unexpected end of JSON input".to_owned()
        } else {
            format!("Unexpected token in JSON at position {position}")
        };
        ErrorEnvelope::body_parser(400, text)
    })
}

/// serde_json reports 1-based line/column; JSON.parse reports a 0-based byte offset.
fn byte_position(body: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = body
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column).saturating_sub(1)
}

/// Runs a schema and turns its messages into the `dataValidate` envelope.
///
/// A JSON array body is validated as an object keyed by index, as
/// `Object.assign(new Dto(), body)` does in Evolution.
fn run_schema(
    body: &Value,
    schema: impl for<'a> FnOnce(&mut Check<'a>),
) -> Result<(), ErrorEnvelope> {
    let indexed;
    let target = match body {
        Value::Array(items) => {
            indexed = Value::Object(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v.clone()))
                    .collect(),
            );
            &indexed
        }
        other => other,
    };
    let mut check = Check::root(target);
    schema(&mut check);
    let errors = check.finish();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ErrorEnvelope::validation(errors))
    }
}

/// Typed getters for values the schema already checked (absent or wrong type → `None`).
fn get_str(o: &Value, key: &str) -> Option<String> {
    o.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn get_bool(o: &Value, key: &str) -> Option<bool> {
    o.get(key).and_then(Value::as_bool)
}

/// JS integers may arrive as `1200.0`.
fn get_i64(o: &Value, key: &str) -> Option<i64> {
    let v = o.get(key)?;
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.007e15)
            .map(|f| f as i64)
    })
}

fn get_strings(o: &Value, key: &str) -> Option<Vec<String>> {
    o.get(key)?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}
