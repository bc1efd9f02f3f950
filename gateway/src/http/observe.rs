//! The outermost layer of every request: its id, its tracing span and its metrics.
//!
//! The id comes from an incoming `X-Zapin-Request-Id` when it is well-formed (so a caller can
//! follow one request through its own logs and zapin's), otherwise a fresh UUID; it is echoed
//! on every response and carried by every log line written while the request is handled.
//! Metrics are labelled with the matched route template (`/instance/connect/{instance}`),
//! never the raw path, so instance names do not become series.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;
use zapin_compat_evolution::headers::is_well_formed_request_id;

use crate::metrics::metrics;

/// The request id header, read and written.
pub const REQUEST_ID_HEADER: &str = "x-zapin-request-id";

/// Route label of requests no route matched (404s, preflights of unknown paths).
const UNMATCHED: &str = "unmatched";

pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .filter(|v| is_well_formed_request_id(v.as_bytes()))
        .and_then(|v| v.to_str().ok())
        .map_or_else(crate::db::new_uuid, str::to_owned);
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics().http_request(&method, &route, status, elapsed);
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_ms = elapsed.as_millis() as u64,
            "request done"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}
