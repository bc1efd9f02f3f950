//! The media HTTP endpoints on the simulator's port (§8.3):
//! `POST /mms/{type}/{token}?auth=…&token=…` stores a blob and answers `{url, direct_path, …}`;
//! `GET /v/{bucket}/{id}` (any query, e.g. WhatsApp Web's `&hash=…&mms-type=…`) returns it.
//! Errors are the control API's `{"error": …}` JSON.

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::{MediaStore, UploadError};
use crate::api::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mms/{media_type}/{token}", post(upload))
        .route("/v/{bucket}/{id}", get(download))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    auth: Option<String>,
    token: Option<String>,
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        let status = match e {
            UploadError::BadAuth => StatusCode::UNAUTHORIZED,
            UploadError::BadToken | UploadError::TokenMismatch | UploadError::HashMismatch => {
                StatusCode::BAD_REQUEST
            }
            UploadError::TooLarge { .. } | UploadError::StoreFull { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            UploadError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Media path types are short lowercase words with dashes (`image`, `md-msg-hist`, …).
pub(super) fn valid_media_type(t: &str) -> bool {
    !t.is_empty() && t.len() <= 32 && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

async fn upload(
    State(app): State<AppState>,
    Path((media_type, token)): Path<(String, String)>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !valid_media_type(&media_type) {
        return Err(ApiError::not_found("no such media type"));
    }
    let media = app.sim.media();
    let auth = query.auth.as_deref().unwrap_or_default();
    if !media.auth_valid(auth) {
        return Err(UploadError::BadAuth.into());
    }
    if query
        .token
        .as_deref()
        .is_some_and(|t| t.trim_end_matches('=') != token.trim_end_matches('='))
    {
        return Err(UploadError::TokenMismatch.into());
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared {
        media.check_size(size)?;
    }
    let max = media.config().max_blob_bytes;
    // Reads at most one byte past the limit, so a lying or absent Content-Length is still bounded.
    let bytes: Bytes =
        axum::body::to_bytes(body, max)
            .await
            .map_err(|_| UploadError::TooLarge {
                size: max.saturating_add(1),
                max,
            })?;
    let id = media.put(&media_type, &token, bytes)?;
    let direct_path = MediaStore::direct_path(&id);
    Ok(Json(json!({
        "url": format!("{}{direct_path}", media.url_base()),
        "direct_path": direct_path,
        "handle": id,
        "object_id": id,
    })))
}

async fn download(
    State(app): State<AppState>,
    Path((_bucket, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let blob = app
        .sim
        .media()
        .get(&id)
        .ok_or_else(|| ApiError::not_found("no such media"))?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        blob.bytes,
    )
        .into_response())
}
