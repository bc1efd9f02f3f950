//! Cross-origin access for browsers: Evolution's `CORS_ORIGIN`, `CORS_METHODS` and
//! `CORS_CREDENTIALS` (contract §1.1), so that a dashboard served from another origin (Evolution
//! Manager, a tenant's own page) can call the API.
//!
//! Two layers, outermost first:
//! * [`refuse_foreign_origin`]: a request whose `Origin` is neither listed nor the server's own
//!   gets a 403 in Evolution's envelope and no CORS headers. Evolution answers 500
//!   `"Not allowed by CORS"` there; a browser sees a failed request either way, and 403 says
//!   what happened.
//! * [`layer`]: tower-http's CORS layer answers every preflight (`OPTIONS`, on any path) and adds
//!   the CORS headers to actual requests. Like Express's `cors` package as Evolution configures
//!   it: the allowed origin is echoed back (never `*`, so credentials can work), the methods are
//!   `CORS_METHODS`, the request headers asked for (`apikey`, `Content-Type`, …) are allowed.
//!
//! Requests without `Origin` (curl, n8n, SDKs: not browsers) pass untouched. Evolution answers
//! those with a 500 when `CORS_ORIGIN` is a list; zapin does not, since CORS only concerns
//! browsers.

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
use zapin_compat_evolution::ErrorEnvelope;

use super::{ApiError, AppState};
use crate::config::Cors;

/// The tower-http layer for `cors`. Origins are checked before it by [`refuse_foreign_origin`],
/// so any origin that reaches it is allowed and is echoed back.
pub fn layer(cors: &Cors) -> CorsLayer {
    let methods: Vec<Method> = cors
        .methods
        .iter()
        .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods(AllowMethods::list(methods))
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(cors.credentials)
}

/// Whether a request with this `Origin` (and `Host`) may go on.
pub fn origin_allowed(cors: &Cors, origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let Some(allowed) = &cors.origins else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    // Same origin: the page was served by this server (browsers send `Origin` on same-origin
    // POST/PUT/DELETE too). CORS does not apply to it, so it is never refused.
    let authority = origin.split_once("://").map(|(_, a)| a);
    match (authority, host.and_then(|h| h.to_str().ok())) {
        (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
        _ => false,
    }
}

/// Refuses requests from origins outside `CORS_ORIGIN` (403, no CORS headers) and answers
/// preflights with 204 as Express's `cors` does (tower-http answers them with 200).
pub async fn refuse_foreign_origin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(origin) = req.headers().get(ORIGIN)
        && !origin_allowed(&state.config.cors, origin, req.headers().get(HOST))
    {
        let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        return ApiError(ErrorEnvelope::forbidden([format!(
            "Not allowed by CORS: origin {shown} is not in CORS_ORIGIN"
        )]))
        .into_response();
    }
    let preflight = req.method() == Method::OPTIONS;
    let mut response = next.run(req).await;
    if preflight && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: Option<&[&str]>) -> Cors {
        Cors {
            origins: origins.map(|o| o.iter().map(|s| (*s).to_owned()).collect()),
            methods: vec!["GET".into()],
            credentials: false,
        }
    }

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("x"))
    }

    #[test]
    fn any_origin_when_unrestricted() {
        assert!(origin_allowed(&cors(None), &hv("https://a.test"), None));
    }

    #[test]
    fn listed_origins_only_and_case_insensitive() {
        let c = cors(Some(&["https://manager.test", "null"]));
        assert!(origin_allowed(&c, &hv("https://manager.test"), None));
        assert!(origin_allowed(&c, &hv("HTTPS://Manager.test"), None));
        assert!(origin_allowed(&c, &hv("null"), None));
        assert!(!origin_allowed(&c, &hv("https://evil.test"), None));
        assert!(!origin_allowed(&c, &hv("https://manager.test:8443"), None));
    }

    #[test]
    fn same_origin_is_never_refused() {
        let c = cors(Some(&["https://manager.test"]));
        let host = hv("zapin.test:8080");
        assert!(origin_allowed(
            &c,
            &hv("http://zapin.test:8080"),
            Some(&host)
        ));
        assert!(!origin_allowed(
            &c,
            &hv("http://zapin.test:9090"),
            Some(&host)
        ));
        assert!(!origin_allowed(&c, &hv("http://zapin.test:8080"), None));
    }
}
