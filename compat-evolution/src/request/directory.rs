//! `POST /chat/findContacts`, `/chat/findChats` (contactValidateSchema), `/chat/fetchProfile`,
//! `/chat/fetchBusinessProfile` (an optional `number`) and `/chat/updateProfileName`
//! (profileNameSchema).

use serde_json::Value;

use super::chat::parse_date_seconds;
use super::{get_i64, get_str, run_schema};
use crate::error::ErrorEnvelope;
use crate::schema::{Rules, Ty};

/// contactValidateSchema, shared by findContacts and findChats: `where._id`, `where.id` and
/// `where.pushName`, when present, are non-empty strings. Nothing else is checked.
fn contact_schema(body: &Value) -> Result<(), ErrorEnvelope> {
    run_schema(body, |c| {
        c.object("where", Rules::NONE, |w| {
            let non_empty = Rules {
                min_length: Some(1),
                ..Rules::NONE
            };
            w.prop("_id", Ty::String, non_empty);
            w.prop("pushName", Ty::String, non_empty);
            w.prop("id", Ty::String, non_empty);
            w.not_empty(&["_id", "id", "pushName"]);
        });
    })
}

/// `where.remoteJid`: a JID as given, or a bare number made a user JID (Evolution's
/// `createJid`, without the country rules: findContacts compares stored JIDs).
fn remote_jid_filter(w: &Value) -> Option<String> {
    let raw = get_str(w, "remoteJid")?;
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if raw.contains('@') {
        return Some(raw.to_owned());
    }
    let digits: String = raw
        .split(':')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if raw.contains('-') || digits.len() >= 18 {
        let group: String = raw
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        return Some(format!("{group}@g.us"));
    }
    Some(format!("{digits}@s.whatsapp.net"))
}

/// A positive integer (or numeric string); anything else is "not given", as JavaScript's
/// truthiness treats `0`, `""` and junk in Evolution's paging.
fn positive(body: &Value, key: &str) -> Option<u64> {
    let n = get_i64(body, key).or_else(|| get_str(body, key)?.trim().parse().ok())?;
    u64::try_from(n).ok().filter(|n| *n > 0)
}

/// A validated findContacts body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindContacts {
    pub remote_jid: Option<String>,
    /// Page size (`offset`); `None`: every row.
    pub take: Option<u64>,
    /// Rows skipped (`offset × (page − 1)`).
    pub skip: u64,
}

/// Validates a findContacts body. `offset` is the page size and `page` the 1-based page; a page
/// without a size skips nothing (Evolution's `undefined × n` is `NaN`, which Prisma ignores).
pub fn validate_find_contacts(body: &Value) -> Result<FindContacts, ErrorEnvelope> {
    contact_schema(body)?;
    let empty = Value::Null;
    let w = body.get("where").unwrap_or(&empty);
    let take = positive(body, "offset");
    let page = positive(body, "page").unwrap_or(1);
    let skip = take.map_or(0, |t| t.saturating_mul(page - 1));
    Ok(FindContacts {
        remote_jid: remote_jid_filter(w),
        take,
        skip,
    })
}

/// A validated findChats body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindChats {
    pub remote_jid: Option<String>,
    /// `where.messageTimestamp.{gte,lte}` in Unix seconds, only when both are set and parse.
    pub timestamp_bounds: Option<(i64, i64)>,
    pub take: Option<u64>,
    pub skip: u64,
}

/// Validates a findChats body: paging is `take` and `skip` (not page/offset).
pub fn validate_find_chats(body: &Value) -> Result<FindChats, ErrorEnvelope> {
    contact_schema(body)?;
    let empty = Value::Null;
    let w = body.get("where").unwrap_or(&empty);
    let ts = w.get("messageTimestamp").unwrap_or(&empty);
    let bound = |key: &str| -> Option<i64> {
        match ts.get(key)? {
            Value::Number(n) => n.as_i64().map(|ms| ms.div_euclid(1000)),
            Value::String(s) => parse_date_seconds(s),
            _ => None,
        }
    };
    let timestamp_bounds = match (bound("gte"), bound("lte")) {
        (Some(gte), Some(lte)) => Some((gte, lte)),
        _ => None,
    };
    Ok(FindChats {
        remote_jid: remote_jid_filter(w),
        timestamp_bounds,
        take: positive(body, "take"),
        skip: positive(body, "skip").unwrap_or(0),
    })
}

/// fetchProfile / fetchBusinessProfile: an optional non-empty `number` (profilePictureSchema);
/// `None` asks about the instance's own account.
pub fn validate_optional_number(body: &Value) -> Result<Option<String>, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::NONE);
        c.not_empty(&["number"]);
    })?;
    Ok(get_str(body, "number").filter(|n| !n.trim().is_empty()))
}

/// The longest push name zapin sends (WhatsApp's own clients stop at 25 characters).
pub const MAX_PUSH_NAME: usize = 25;

/// updateProfileName: a non-empty `name` of at most [`MAX_PUSH_NAME`] characters.
///
/// Deviation: profileNameSchema does not require `name` (Evolution then fails inside Baileys
/// with a 500); zapin answers 400 for a missing, empty or too long name.
pub fn validate_profile_name(body: &Value) -> Result<String, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("name", Ty::String, Rules::NONE);
        c.required(&["name"]);
        c.not_empty(&["name"]);
    })?;
    let name = get_str(body, "name").unwrap_or_default();
    if name.trim().is_empty() {
        return Err(ErrorEnvelope::bad_request(["The \"name\" cannot be empty"]));
    }
    if name.chars().count() > MAX_PUSH_NAME {
        return Err(ErrorEnvelope::bad_request([format!(
            "name must have at most {MAX_PUSH_NAME} characters"
        )]));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn contacts_paging_and_filter() {
        let q = validate_find_contacts(&json!({})).unwrap();
        assert_eq!(q, FindContacts::default());
        let q = validate_find_contacts(
            &json!({"where": {"remoteJid": "5511999999999"}, "offset": 10, "page": 3}),
        )
        .unwrap();
        assert_eq!(
            q.remote_jid.as_deref(),
            Some("5511999999999@s.whatsapp.net")
        );
        assert_eq!((q.take, q.skip), (Some(10), 20));
        let q = validate_find_contacts(&json!({"where": {"remoteJid": "120363-42"}})).unwrap();
        assert_eq!(q.remote_jid.as_deref(), Some("120363-42@g.us"));
        assert!(validate_find_contacts(&json!({"where": {"pushName": ""}})).is_err());
        assert!(validate_find_contacts(&json!({"where": {"id": 5}})).is_err());
        assert!(validate_find_contacts(&json!({"where": "x"})).is_err());
    }

    #[test]
    fn chats_paging_and_range() {
        let q = validate_find_chats(&json!({
            "where": {"remoteJid": "a@s.whatsapp.net",
                      "messageTimestamp": {"gte": "2024-01-01", "lte": "2024-01-02T00:00:00Z"}},
            "take": 5, "skip": "2"
        }))
        .unwrap();
        assert_eq!(q.remote_jid.as_deref(), Some("a@s.whatsapp.net"));
        assert_eq!(q.timestamp_bounds, Some((1_704_067_200, 1_704_153_600)));
        assert_eq!((q.take, q.skip), (Some(5), 2));
        let q = validate_find_chats(&json!({"where": {"messageTimestamp": {"gte": "2024-01-01"}}}))
            .unwrap();
        assert_eq!(q.timestamp_bounds, None);
    }

    #[test]
    fn numbers_and_names() {
        assert_eq!(validate_optional_number(&json!({})).unwrap(), None);
        assert_eq!(
            validate_optional_number(&json!({"number": "551199"})).unwrap(),
            Some("551199".into())
        );
        assert!(validate_optional_number(&json!({"number": ""})).is_err());
        assert!(validate_optional_number(&json!({"number": 5})).is_err());
        assert_eq!(
            validate_profile_name(&json!({"name": "Ana"})).unwrap(),
            "Ana"
        );
        assert!(validate_profile_name(&json!({})).is_err());
        assert!(validate_profile_name(&json!({"name": "  "})).is_err());
        assert!(validate_profile_name(&json!({"name": "x".repeat(26)})).is_err());
    }
}
