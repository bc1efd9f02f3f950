//! The `/group/*` routes (contract rows 48–63): how `groupJid` reaches the handler, and each
//! route's schema. All but `create` report schema failures as Evolution's `groupValidate` does:
//! a flat array of `{property, message}` objects (§1.4); `create` uses `dataValidate` (nested).

use serde_json::{Map, Value};

use super::{get_bool, get_str, get_strings, run_schema};
use crate::error::ErrorEnvelope;
use crate::schema::{Check, Rules, Ty};

/// `^[\d-]+@g.us$` (groupJidSchema).
fn group_jid_pattern(s: &str) -> bool {
    s.strip_suffix("@g.us")
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
}

/// `\d+` unanchored: at least one digit somewhere (participants, numbers).
fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

/// `^[a-zA-Z0-9]{22}$` (inviteCode).
fn invite_code_pattern(s: &str) -> bool {
    s.len() == 22 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The ephemeral timers Evolution accepts.
pub const EPHEMERAL_EXPIRATIONS: [u32; 4] = [0, 86_400, 604_800, 7_776_000];

/// `groupValidate`'s first step: `groupJid` from the body, else from the query, else 400
/// `["The group id needs to be informed in the query", "ex: \"groupJid=120362@g.us\""]`;
/// `@g.us` is appended when missing. Answers the body with `groupJid` set, ready for the
/// route's schema. A non-object body is read as `{}`.
pub fn with_group_jid(body: &Value, query_group_jid: Option<&str>) -> Result<Value, ErrorEnvelope> {
    let mut object = body.as_object().cloned().unwrap_or_else(Map::new);
    let jid = match object.get("groupJid") {
        Some(Value::String(s)) if !s.is_empty() => Value::String(s.clone()),
        // A non-string groupJid is left for the schema to report.
        Some(v) if !v.is_null() && v != &Value::Bool(false) && v.as_str() != Some("") => {
            return Ok(Value::Object(object));
        }
        _ => match query_group_jid.filter(|q| !q.is_empty()) {
            Some(q) => Value::String(q.to_owned()),
            None => {
                return Err(ErrorEnvelope::bad_request([
                    "The group id needs to be informed in the query",
                    "ex: \"groupJid=120362@g.us\"",
                ]));
            }
        },
    };
    let jid = match jid {
        Value::String(s) if !s.ends_with("@g.us") => Value::String(format!("{s}@g.us")),
        other => other,
    };
    object.insert("groupJid".to_owned(), jid);
    Ok(Value::Object(object))
}

/// Runs a group-route schema: failures are the `{property, message}` objects.
fn run_group_schema(
    body: &Value,
    schema: impl for<'a> FnOnce(&mut Check<'a>),
) -> Result<(), ErrorEnvelope> {
    let mut check = Check::root(body);
    schema(&mut check);
    let errors = check.finish_properties();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ErrorEnvelope::validation_properties(errors))
    }
}

fn group_jid_prop(c: &mut Check<'_>) {
    c.prop(
        "groupJid",
        Ty::String,
        Rules {
            pattern: Some(("^[\\d-]+@g.us$", group_jid_pattern)),
            ..Rules::NONE
        },
    );
}

fn string_prop(c: &mut Check<'_>, key: &str) {
    c.prop(key, Ty::String, Rules::NONE);
}

/// groupJidSchema: findGroupInfos, participants, inviteCode, revokeInviteCode, leaveGroup.
pub fn validate_group_jid(body: &Value) -> Result<String, ErrorEnvelope> {
    run_group_schema(body, |c| {
        group_jid_prop(c);
        c.required(&["groupJid"]);
        c.not_empty(&["groupJid"]);
    })?;
    Ok(get_str(body, "groupJid").unwrap_or_default())
}

/// A validated `group/create` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateGroup {
    pub subject: String,
    pub description: Option<String>,
    pub participants: Vec<String>,
    pub promote_participants: bool,
}

/// createGroupSchema (through `dataValidate`: nested array of messages).
pub fn validate_create_group(body: &Value) -> Result<CreateGroup, ErrorEnvelope> {
    run_schema(body, |c| {
        string_prop(c, "subject");
        string_prop(c, "description");
        string_prop(c, "profilePicture");
        c.prop("promoteParticipants", Ty::Boolean, Rules::BOOL_ENUM);
        c.string_array(
            "participants",
            Rules {
                min_items: Some(1),
                unique_items: true,
                ..Rules::NONE
            },
            Rules {
                description: Some("\"participants\" must be an array of numeric strings"),
                min_length: Some(10),
                pattern: Some(("\\d+", has_digit)),
                ..Rules::NONE
            },
        );
        c.required(&["subject", "participants"]);
        c.not_empty(&["subject", "description", "profilePicture"]);
    })?;
    Ok(CreateGroup {
        subject: get_str(body, "subject").unwrap_or_default(),
        description: get_str(body, "description").filter(|d| !d.is_empty()),
        participants: get_strings(body, "participants").unwrap_or_default(),
        promote_participants: get_bool(body, "promoteParticipants").unwrap_or(false),
    })
}

/// `groupJid` plus one required string (`subject`, `description`, `image`).
pub fn validate_group_text(body: &Value, key: &str) -> Result<(String, String), ErrorEnvelope> {
    run_group_schema(body, |c| {
        string_prop(c, "groupJid");
        string_prop(c, key);
        c.required(&["groupJid", key]);
        c.not_empty(&["groupJid", key]);
    })?;
    Ok((
        get_str(body, "groupJid").unwrap_or_default(),
        get_str(body, key).unwrap_or_default(),
    ))
}

/// `fetchAllGroups?getParticipants=true|false` (getParticipantsSchema).
pub fn validate_get_participants(query: &Value) -> Result<bool, ErrorEnvelope> {
    run_group_schema(query, |c| {
        c.prop(
            "getParticipants",
            Ty::String,
            Rules {
                enum_values: Some(&["true", "false"]),
                ..Rules::NONE
            },
        );
        c.required(&["getParticipants"]);
    })?;
    Ok(get_str(query, "getParticipants").as_deref() == Some("true"))
}

/// `inviteInfo` / `acceptInviteCode` `?inviteCode=` (22 letters and digits).
pub fn validate_invite_code(query: &Value) -> Result<String, ErrorEnvelope> {
    run_group_schema(query, |c| {
        c.prop(
            "inviteCode",
            Ty::String,
            Rules {
                pattern: Some(("^[a-zA-Z0-9]{22}$", invite_code_pattern)),
                ..Rules::NONE
            },
        );
        c.required(&["inviteCode"]);
        c.not_empty(&["inviteCode"]);
    })?;
    Ok(get_str(query, "inviteCode").unwrap_or_default())
}

/// A validated `sendInvite` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendInvite {
    pub group_jid: String,
    pub description: String,
    pub numbers: Vec<String>,
}

pub fn validate_send_invite(body: &Value) -> Result<SendInvite, ErrorEnvelope> {
    run_group_schema(body, |c| {
        string_prop(c, "groupJid");
        string_prop(c, "description");
        c.string_array(
            "numbers",
            Rules {
                min_items: Some(1),
                unique_items: true,
                ..Rules::NONE
            },
            Rules {
                description: Some("\"numbers\" must be an array of numeric strings"),
                min_length: Some(10),
                pattern: Some(("\\d+", has_digit)),
                ..Rules::NONE
            },
        );
        c.required(&["groupJid", "description", "numbers"]);
        c.not_empty(&["groupJid", "description", "numbers"]);
    })?;
    Ok(SendInvite {
        group_jid: get_str(body, "groupJid").unwrap_or_default(),
        description: get_str(body, "description").unwrap_or_default(),
        numbers: get_strings(body, "numbers").unwrap_or_default(),
    })
}

/// A validated `updateParticipant` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateParticipants {
    pub group_jid: String,
    /// `add`, `remove`, `promote` or `demote`.
    pub action: String,
    pub participants: Vec<String>,
}

pub fn validate_update_participants(body: &Value) -> Result<UpdateParticipants, ErrorEnvelope> {
    run_group_schema(body, |c| {
        string_prop(c, "groupJid");
        c.prop(
            "action",
            Ty::String,
            Rules {
                enum_values: Some(&["add", "remove", "promote", "demote"]),
                ..Rules::NONE
            },
        );
        c.string_array(
            "participants",
            Rules {
                min_items: Some(1),
                unique_items: true,
                ..Rules::NONE
            },
            Rules {
                description: Some("\"participants\" must be an array of numeric strings"),
                min_length: Some(10),
                pattern: Some(("\\d+", has_digit)),
                ..Rules::NONE
            },
        );
        c.required(&["groupJid", "action", "participants"]);
        c.not_empty(&["groupJid", "action"]);
    })?;
    Ok(UpdateParticipants {
        group_jid: get_str(body, "groupJid").unwrap_or_default(),
        action: get_str(body, "action").unwrap_or_default(),
        participants: get_strings(body, "participants").unwrap_or_default(),
    })
}

/// `updateSetting`: `action` ∈ announcement/not_announcement/locked/unlocked.
pub fn validate_update_setting(body: &Value) -> Result<(String, String), ErrorEnvelope> {
    run_group_schema(body, |c| {
        string_prop(c, "groupJid");
        c.prop(
            "action",
            Ty::String,
            Rules {
                enum_values: Some(&["announcement", "not_announcement", "locked", "unlocked"]),
                ..Rules::NONE
            },
        );
        c.required(&["groupJid", "action"]);
        c.not_empty(&["groupJid", "action"]);
    })?;
    Ok((
        get_str(body, "groupJid").unwrap_or_default(),
        get_str(body, "action").unwrap_or_default(),
    ))
}

/// `toggleEphemeral`: `expiration` a number among [`EPHEMERAL_EXPIRATIONS`].
pub fn validate_toggle_ephemeral(body: &Value) -> Result<(String, u32), ErrorEnvelope> {
    run_group_schema(body, |c| {
        string_prop(c, "groupJid");
        if let Some(v) = c.prop("expiration", Ty::Number, Rules::NONE) {
            let allowed = v
                .as_f64()
                .is_some_and(|f| EPHEMERAL_EXPIRATIONS.iter().any(|e| f64::from(*e) == f));
            if !allowed {
                c.error_at(
                    "expiration",
                    "is not one of enum values: 0,86400,604800,7776000",
                );
            }
        }
        c.required(&["groupJid", "expiration"]);
        c.not_empty(&["groupJid"]);
    })?;
    let expiration = body
        .get("expiration")
        .and_then(Value::as_f64)
        .and_then(|f| {
            EPHEMERAL_EXPIRATIONS
                .into_iter()
                .find(|e| f64::from(*e) == f)
        })
        .unwrap_or(0);
    Ok((get_str(body, "groupJid").unwrap_or_default(), expiration))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn message(e: &ErrorEnvelope) -> Value {
        serde_json::to_value(e).unwrap()["response"]["message"].clone()
    }

    #[test]
    fn group_jid_comes_from_body_or_query_and_gets_its_suffix() {
        let b = with_group_jid(&json!({}), Some("120363001")).unwrap();
        assert_eq!(b["groupJid"], "120363001@g.us");
        let b = with_group_jid(&json!({"groupJid": "1-2@g.us"}), Some("9")).unwrap();
        assert_eq!(b["groupJid"], "1-2@g.us");
        let e = with_group_jid(&json!({}), None).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            message(&e),
            json!([
                "The group id needs to be informed in the query",
                "ex: \"groupJid=120362@g.us\""
            ])
        );
    }

    #[test]
    fn group_schemas_report_properties() {
        let e = validate_group_jid(&json!({"groupJid": "abc@g.us"})).unwrap_err();
        assert_eq!(
            message(&e),
            json!([{"property": "groupJid", "message": "groupJid does not match pattern \"^[\\\\d-]+@g.us$\""}])
        );
        let e = validate_group_text(&json!({"groupJid": "1@g.us"}), "subject").unwrap_err();
        assert_eq!(
            message(&e),
            json!([{"property": "instance", "message": "instance requires property \"subject\""}])
        );
        let e = validate_update_participants(
            &json!({"groupJid": "1@g.us", "action": "kick", "participants": ["123"]}),
        )
        .unwrap_err();
        let m = message(&e);
        assert_eq!(m[0]["property"], "action");
        assert_eq!(m[1]["property"], "participants[0]");
        assert_eq!(
            m[1]["message"],
            "\"participants\" must be an array of numeric strings"
        );
        let e =
            validate_toggle_ephemeral(&json!({"groupJid": "1@g.us", "expiration": 5})).unwrap_err();
        assert_eq!(message(&e)[0]["property"], "expiration");
        assert_eq!(
            validate_toggle_ephemeral(&json!({"groupJid": "1@g.us", "expiration": 86400}))
                .unwrap()
                .1,
            86400
        );
        assert!(validate_get_participants(&json!({"getParticipants": "yes"})).is_err());
        assert!(validate_get_participants(&json!({"getParticipants": "true"})).unwrap());
        assert!(validate_invite_code(&json!({"inviteCode": "short"})).is_err());
    }

    #[test]
    fn create_uses_the_nested_format() {
        let e = validate_create_group(&json!({"participants": ["5511999999999"]})).unwrap_err();
        assert_eq!(
            message(&e),
            json!([["instance requires property \"subject\""]])
        );
        let ok = validate_create_group(
            &json!({"subject": "VIP", "participants": ["5511999999999"], "promoteParticipants": true}),
        )
        .unwrap();
        assert!(ok.promote_participants);
    }
}
