//! `/chat/updatePrivacySettings`, `/chat/updateBlockStatus`, `/chat/updateProfileStatus`,
//! `/chat/updateProfilePicture` (all through `dataValidate`: nested message arrays).

use serde_json::Value;

use super::{get_str, run_schema};
use crate::error::ErrorEnvelope;
use crate::schema::{Rules, Ty};

/// The privacy categories and their allowed values (privacySettingsSchema), in Evolution's
/// answer order.
pub const PRIVACY_CATEGORIES: [(&str, &[&str]); 6] = [
    ("readreceipts", &["all", "none"]),
    ("profile", &["all", "contacts", "contact_blacklist", "none"]),
    ("status", &["all", "contacts", "contact_blacklist", "none"]),
    ("online", &["all", "match_last_seen"]),
    ("last", &["all", "contacts", "contact_blacklist", "none"]),
    (
        "groupadd",
        &["all", "contacts", "contact_blacklist", "none"],
    ),
];

/// All six categories are required; answers `(category, value)` in [`PRIVACY_CATEGORIES`] order.
pub fn validate_privacy_settings(body: &Value) -> Result<Vec<(String, String)>, ErrorEnvelope> {
    run_schema(body, |c| {
        for (name, values) in PRIVACY_CATEGORIES {
            c.prop(
                name,
                Ty::String,
                Rules {
                    enum_values: Some(values),
                    ..Rules::NONE
                },
            );
        }
        c.required(&PRIVACY_CATEGORIES.map(|(n, _)| n));
    })?;
    Ok(PRIVACY_CATEGORIES
        .iter()
        .map(|(n, _)| ((*n).to_owned(), get_str(body, n).unwrap_or_default()))
        .collect())
}

/// blockUserSchema: `number`, `status` ∈ block/unblock.
pub fn validate_block_status(body: &Value) -> Result<(String, bool), ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::NONE);
        c.prop(
            "status",
            Ty::String,
            Rules {
                enum_values: Some(&["block", "unblock"]),
                ..Rules::NONE
            },
        );
        c.required(&["number", "status"]);
        c.not_empty(&["number", "status"]);
    })?;
    Ok((
        get_str(body, "number").unwrap_or_default(),
        get_str(body, "status").as_deref() == Some("block"),
    ))
}

/// One required string property (`status` of profileStatusSchema, `picture` of
/// profilePictureSchema).
pub fn validate_profile_text(body: &Value, key: &str) -> Result<String, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop(key, Ty::String, Rules::NONE);
        c.required(&[key]);
    })?;
    Ok(get_str(body, key).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn privacy_needs_every_category_with_an_allowed_value() {
        let ok = json!({"readreceipts": "all", "profile": "contacts", "status": "none",
                        "online": "match_last_seen", "last": "contact_blacklist", "groupadd": "all"});
        let v = validate_privacy_settings(&ok).unwrap();
        assert_eq!(v[3], ("online".into(), "match_last_seen".into()));
        let e = validate_privacy_settings(&json!({"readreceipts": "contacts"})).unwrap_err();
        let m = serde_json::to_value(&e).unwrap()["response"]["message"][0].clone();
        assert_eq!(m[0], "readreceipts is not one of enum values: all,none");
        assert_eq!(m[1], "instance requires property \"profile\"");
        assert!(
            validate_block_status(&json!({"number": "5511999999999", "status": "mute"})).is_err()
        );
        assert!(
            validate_block_status(&json!({"number": "5511999999999", "status": "block"}))
                .unwrap()
                .1
        );
        assert!(validate_profile_text(&json!({}), "status").is_err());
    }
}
