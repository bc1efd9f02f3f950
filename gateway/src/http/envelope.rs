//! Evolution's error envelope (contract §1.4) as an axum response.
//!
//! The envelope itself lives in zapin-compat-evolution; this module only turns it into HTTP.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use zapin_compat_evolution::ErrorEnvelope;

/// An [`ErrorEnvelope`] sent with its own status code.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError(pub ErrorEnvelope);

impl From<ErrorEnvelope> for ApiError {
    fn from(envelope: ErrorEnvelope) -> Self {
        Self(envelope)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}

/// Express's default for an unmatched route: `Cannot <METHOD> <path and query>`.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    let target = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    ErrorEnvelope::cannot_route(method.as_str(), &target).into()
}
