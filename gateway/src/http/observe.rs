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

use crate::metrics::metrics;

/// The request id header, read and written.
pub const REQUEST_ID_HEADER: &str = "x-zapin-request-id";

/// Longest incoming request id accepted as is.
const REQUEST_ID_MAX: usize = 128;

/// Route label of requests no route matched (404s, preflights of unknown paths).
const UNMATCHED: &str = "unmatched";

pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
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

/// 1 to 128 characters of `A-Z a-z 0-9 - _ . :` (UUIDs, ULIDs, trace ids): anything else could
/// smuggle line breaks or markup into logs, and is replaced.
fn well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= REQUEST_ID_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn request_ids() {
        assert!(well_formed("0b7c6f9e-2a51-4c3e-9d0f-1a2b3c4d5e6f"));
        assert!(well_formed("trace:abc.1_2"));
        assert!(!well_formed(""));
        assert!(!well_formed("a b"));
        assert!(!well_formed("line\nbreak"));
        assert!(!well_formed(&"x".repeat(129)));
        assert!(well_formed(&"x".repeat(128)));
    }
}
