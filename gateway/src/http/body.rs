//! Request bodies, parsed the way Express's `json()` parser does (compat-evolution) so that bad
//! JSON and oversized bodies get Evolution's body-parser envelopes (400 / 413).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::request::parse_json_body;

use super::ApiError;

/// The body as JSON, or the error to answer with. The error is not a rejection, because some
/// routes must run guard steps (403, 401) before reporting a bad body.
#[derive(Debug)]
pub struct JsonBody(pub Result<Value, ApiError>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Express only parses JSON bodies; others reach the handler as `{}`. A missing
        // Content-Type is read as JSON, since curl users often forget it.
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.to_ascii_lowercase().contains("json"));
        let bytes = match Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(rejection) => {
                let envelope = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ErrorEnvelope::body_parser(413, "request entity too large")
                } else {
                    ErrorEnvelope::body_parser(400, rejection.body_text())
                };
                return Ok(Self(Err(envelope.into())));
            }
        };
        if !is_json {
            return Ok(Self(Ok(Value::Object(Map::new()))));
        }
        Ok(Self(parse_json_body(&bytes).map_err(ApiError::from)))
    }
}
