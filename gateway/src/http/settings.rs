//! `POST /settings/set/{instance}` and `GET /settings/find/{instance}` (contract §7).
//!
//! Settings are stored only; the behaviours they switch (reject calls, ignore groups, …) are the
//! engine's and apply once it is wired in.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use zapin_compat_evolution::request::validate_settings_set;
use zapin_compat_evolution::response::{InstanceSettings, SettingsSetEcho, SettingsSetResponse};

use super::body::JsonBody;
use super::guard::Authorized;
use super::{ApiError, AppState};
use crate::db::Settings;

pub async fn set(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<SettingsSetResponse>), ApiError> {
    let req = validate_settings_set(&body?)?;
    let mut tx = state.db.begin().await?;
    // Omitted optional strings keep their stored value (Prisma ignores `undefined`).
    let stored = tx.get_settings(&instance.id).await?.unwrap_or_default();
    tx.set_settings(
        &instance.id,
        &Settings {
            reject_call: req.reject_call,
            msg_call: req.msg_call.unwrap_or(stored.msg_call),
            groups_ignore: req.groups_ignore,
            always_online: req.always_online,
            read_messages: req.read_messages,
            read_status: req.read_status,
            sync_full_history: req.sync_full_history,
            wavoip_token: req.wavoip_token.unwrap_or(stored.wavoip_token),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(SettingsSetResponse {
            settings: SettingsSetEcho {
                instance_name: instance.name,
                settings: req.body,
            },
        }),
    ))
}

/// The eight fields, or JSON `null` when no row exists.
pub async fn find(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
) -> Result<Json<Option<InstanceSettings>>, ApiError> {
    let mut tx = state.db.begin().await?;
    let found = tx.get_settings(&instance.id).await?;
    tx.rollback().await?;
    Ok(Json(found.map(|s| InstanceSettings {
        reject_call: s.reject_call,
        msg_call: s.msg_call,
        groups_ignore: s.groups_ignore,
        always_online: s.always_online,
        read_messages: s.read_messages,
        read_status: s.read_status,
        sync_full_history: s.sync_full_history,
        wavoip_token: s.wavoip_token,
    })))
}
