//! Evolution's error envelope (contract §1.4): `{status, error, response: {message}}`.
//!
//! This belongs with the other Evolution DTOs in zapin-compat-evolution once that crate has them;
//! the gateway only needs the 404 shape so far.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// The JSON body of every Evolution error response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorEnvelope {
    pub status: u16,
    pub error: &'static str,
    pub response: ErrorResponse,
}

/// `response.message` is an array for most errors but a plain string for 401 (contract §11 #2),
/// so it is kept as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorResponse {
    pub message: Value,
}

impl ErrorEnvelope {
    /// `NotFoundException(...messages)`: 404 with an array of messages.
    pub fn not_found(messages: Vec<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND.as_u16(),
            error: "Not Found",
            response: ErrorResponse {
                message: Value::from(messages),
            },
        }
    }
}

impl IntoResponse for ErrorEnvelope {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self)).into_response()
    }
}

/// Express's default for an unmatched route: `Cannot <METHOD> <path and query>`.
pub async fn not_found(method: Method, uri: Uri) -> ErrorEnvelope {
    let target = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    ErrorEnvelope::not_found(vec![format!("Cannot {} {}", method.as_str(), target)])
}
