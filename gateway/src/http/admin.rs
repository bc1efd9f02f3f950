//! Operator routes for the master key, unlocked by the global API key only (never an instance
//! token): `GET /admin/keys` shows the key fingerprints and the progress of a rotation,
//! `POST /admin/keys/rotate` rotates the key while serving (see [`crate::keys`]). Fingerprints
//! name keys without revealing them; no response ever carries a key.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use zapin_compat_evolution::ErrorEnvelope;
use zapin_signal_store::MasterKey;

use super::{ApiError, AppState, guard};
use crate::keys::{KeyService, KeyStatus, RotateError};

/// `POST /admin/keys/rotate` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RotateBody {
    /// The new key (64 hex characters or base64 of 32 bytes). Required when the current key
    /// comes from `ZAPIN_MASTER_KEY`; generated and stored in the key file otherwise.
    new_key: Option<String>,
}

fn service(state: &AppState, headers: &HeaderMap) -> Result<Arc<KeyService>, ApiError> {
    let global = guard::api_key(headers).is_some_and(|key| guard::is_global(state, key));
    if !global {
        return Err(ErrorEnvelope::unauthorized().into());
    }
    state
        .keys
        .clone()
        .ok_or_else(|| ErrorEnvelope::not_found(["Key management is not available"]).into())
}

pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<KeyStatus>, ApiError> {
    Ok(Json(service(&state, &headers)?.status()))
}

pub async fn rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<KeyStatus>), ApiError> {
    let keys = service(&state, &headers)?;
    let body: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| ErrorEnvelope::bad_request(["body must be {\"newKey\"?: string}"]))?
    };
    let new_key = body
        .new_key
        .map(|text| {
            MasterKey::parse(&text).map_err(|reason| {
                ErrorEnvelope::bad_request([format!(
                    "newKey must be 64 hex characters or base64 of 32 bytes: {reason}"
                )])
            })
        })
        .transpose()?;
    match keys.rotate(new_key).await {
        Ok(status) => Ok((StatusCode::ACCEPTED, Json(status))),
        Err(err @ (RotateError::Busy | RotateError::Unfinished)) => {
            Err(ErrorEnvelope::conflict([err.to_string()]).into())
        }
        Err(err @ (RotateError::SameKey | RotateError::NeedNewKey)) => {
            Err(ErrorEnvelope::bad_request([err.to_string()]).into())
        }
        Err(err) => {
            tracing::error!("key rotation failed: {err}");
            Err(ErrorEnvelope::internal(["Internal Server Error"]).into())
        }
    }
}
