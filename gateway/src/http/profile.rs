//! The account's own settings (contract rows 32, 41–45): privacy, block list, about text and
//! picture, each one IQ of the session ([`zapin_engine::SessionHandle::account`]).
//!
//! Failures keep Evolution's texts; a refusal by WhatsApp is the caller's 400 (Evolution answers
//! 500), timeouts and engine failures stay 500.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::request::{
    PRIVACY_CATEGORIES, validate_block_status, validate_privacy_settings, validate_profile_text,
};
use zapin_engine::messaging::MessagingError;
use zapin_engine::messaging::account::{AccountAnswer, AccountOp};
use zapin_engine::{EngineError, SessionHandle};
use zapin_protocol::jid::Jid;

use super::body::JsonBody;
use super::group::picture_bytes;
use super::guard::Authorized;
use super::session::{open_session, to_jid};
use super::{ApiError, AppState};

fn account_error(title: &'static str, err: EngineError) -> ApiError {
    match &err {
        EngineError::Messaging(MessagingError::Iq { text, code }) => {
            let detail = if text.is_empty() {
                format!("Error: {code}")
            } else {
                format!("Error: {text}")
            };
            ErrorEnvelope::bad_request([title.to_owned(), detail]).into()
        }
        EngineError::NotConnected => {
            ErrorEnvelope::bad_request([title.to_owned(), format!("Error: {err}")]).into()
        }
        _ => {
            tracing::error!("account request failed: {err}");
            ErrorEnvelope::internal([title.to_owned(), format!("Error: {err}")]).into()
        }
    }
}

async fn run(
    session: &SessionHandle,
    op: AccountOp,
    title: &'static str,
) -> Result<AccountAnswer, ApiError> {
    session
        .account(op)
        .await
        .map_err(|e| account_error(title, e))
}

/// `GET /chat/fetchPrivacySettings/{instance}` → 200 `{readreceipts, profile, status, online,
/// last, groupadd}`.
pub async fn fetch_privacy(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    body?;
    let session = open_session(&state, &instance)?;
    let AccountAnswer::Privacy(pairs) = run(
        &session,
        AccountOp::FetchPrivacy,
        "Error fetching privacy settings",
    )
    .await?
    else {
        return Err(ErrorEnvelope::internal(["Error fetching privacy settings"]).into());
    };
    let mut out = Map::new();
    for (name, _) in PRIVACY_CATEGORIES {
        let value = pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone());
        if let Some(v) = value {
            out.insert(name.to_owned(), v.into());
        }
    }
    Ok(Json(Value::Object(out)))
}

/// `POST /chat/updatePrivacySettings/{instance}` → 201 `{update:"success", data:{…}}`: one IQ per
/// category, as Baileys sends them.
pub async fn update_privacy(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const TITLE: &str = "Error updating privacy settings";
    let settings = validate_privacy_settings(&body?)?;
    let session = open_session(&state, &instance)?;
    let mut data = Map::new();
    for (name, value) in settings {
        run(
            &session,
            AccountOp::SetPrivacy {
                name: name.clone(),
                value: value.clone(),
            },
            TITLE,
        )
        .await?;
        data.insert(name, value.into());
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"update": "success", "data": data})),
    ))
}

/// `POST /chat/updateBlockStatus/{instance}` → 201 `{block:"success"}`.
pub async fn update_block_status(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const TITLE: &str = "Error blocking chat";
    let (number, block) = validate_block_status(&body?)?;
    let jid = to_jid(&number)
        .parse::<Jid>()
        .ok()
        .filter(|j| j.is_pn() || j.is_lid())
        .ok_or_else(|| {
            ApiError::from(ErrorEnvelope::bad_request([
                TITLE.to_owned(),
                format!("Error: invalid number {number}"),
            ]))
        })?;
    let session = open_session(&state, &instance)?;
    run(&session, AccountOp::Block { jid, block }, TITLE).await?;
    Ok((StatusCode::CREATED, Json(json!({"block": "success"}))))
}

/// `POST /chat/updateProfileStatus/{instance}` → 200 `{update:"success"}`.
pub async fn update_status(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let text = validate_profile_text(&body?, "status")?;
    let session = open_session(&state, &instance)?;
    run(
        &session,
        AccountOp::SetStatus { text },
        "Error updating profile status",
    )
    .await?;
    Ok(Json(json!({"update": "success"})))
}

/// `POST /chat/updateProfilePicture/{instance}` → 200 `{update:"success"}`; `picture` an
/// http(s) URL or base64 of a JPEG.
pub async fn update_picture(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const TITLE: &str = "Error updating profile picture";
    let picture = validate_profile_text(&body?, "picture")?;
    let session = open_session(&state, &instance)?;
    let bytes = picture_bytes(&picture).await?;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(ErrorEnvelope::bad_request([TITLE, "Error: the image is not a JPEG"]).into());
    }
    run(&session, AccountOp::SetPicture { jpeg: Some(bytes) }, TITLE).await?;
    Ok(Json(json!({"update": "success"})))
}

/// `DELETE /chat/removeProfilePicture/{instance}` → 200 `{update:"success"}`.
pub async fn remove_picture(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    body?;
    let session = open_session(&state, &instance)?;
    run(
        &session,
        AccountOp::SetPicture { jpeg: None },
        "Error removing profile picture",
    )
    .await?;
    Ok(Json(json!({"update": "success"})))
}
