//! `POST /settings/set/{instance}` (§7).

use serde_json::Value;

use super::{get_bool, get_str, run_schema};
use crate::error::ErrorEnvelope;
use crate::schema::{Rules, Ty};

/// A validated settings body. `msg_call` and `wavoip_token` are optional: `None` keeps the stored
/// value (Prisma ignores `undefined`).
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsSet {
    pub reject_call: bool,
    pub msg_call: Option<String>,
    pub groups_ignore: bool,
    pub always_online: bool,
    pub read_messages: bool,
    pub read_status: bool,
    pub sync_full_history: bool,
    pub wavoip_token: Option<String>,
    /// The body as sent; the response echoes it (`{"settings":{"instanceName","settings":body}}`).
    pub body: Value,
}

const BOOLEANS: [&str; 6] = [
    "rejectCall",
    "groupsIgnore",
    "alwaysOnline",
    "readMessages",
    "readStatus",
    "syncFullHistory",
];

pub fn validate_settings_set(body: &Value) -> Result<SettingsSet, ErrorEnvelope> {
    run_schema(body, |c| {
        for (key, ty) in [
            ("rejectCall", Ty::Boolean),
            ("msgCall", Ty::String),
            ("groupsIgnore", Ty::Boolean),
            ("alwaysOnline", Ty::Boolean),
            ("readMessages", Ty::Boolean),
            ("readStatus", Ty::Boolean),
            ("syncFullHistory", Ty::Boolean),
            ("wavoipToken", Ty::String),
        ] {
            c.prop(key, ty, Rules::NONE);
        }
        c.required(&BOOLEANS);
        c.not_empty(&[
            "rejectCall",
            "groupsIgnore",
            "alwaysOnline",
            "readMessages",
            "readStatus",
            "syncFullHistory",
            "wavoipToken",
        ]);
    })?;
    let flag = |key: &str| get_bool(body, key).unwrap_or(false);
    Ok(SettingsSet {
        reject_call: flag("rejectCall"),
        msg_call: get_str(body, "msgCall"),
        groups_ignore: flag("groupsIgnore"),
        always_online: flag("alwaysOnline"),
        read_messages: flag("readMessages"),
        read_status: flag("readStatus"),
        sync_full_history: flag("syncFullHistory"),
        wavoip_token: get_str(body, "wavoipToken"),
        body: body.clone(),
    })
}
