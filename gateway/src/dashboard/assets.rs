//! The stylesheet and script, embedded in the binary and served with a long cache lifetime
//! (their paths carry zapin's version, so an upgrade is never served stale).

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;

pub const CSS: &str = include_str!("assets/app.css");
pub const JS: &str = include_str!("assets/app.js");

pub const CSS_PATH: &str = concat!("/dashboard/assets/app-", env!("CARGO_PKG_VERSION"), ".css");
pub const JS_PATH: &str = concat!("/dashboard/assets/app-", env!("CARGO_PKG_VERSION"), ".js");

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub async fn css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, IMMUTABLE),
        ],
        CSS,
    )
}

pub async fn js() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, IMMUTABLE),
        ],
        JS,
    )
}
