//! The axum application: shared state and the route table.

mod envelope;
mod meta;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::get;

use crate::Config;

pub use envelope::ApiError;
pub use zapin_compat_evolution::ErrorEnvelope;

/// State shared by every handler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// When the process started serving, for the health document's uptime.
    pub started: Instant,
}

impl AppState {
    pub fn new(config: Config) -> Self {
        Self {
            config: Arc::new(config),
            started: Instant::now(),
        }
    }
}

/// The whole HTTP application.
///
/// Unknown paths, and known paths with another method, answer with Evolution's 404 envelope
/// (`Cannot GET /path`) because that is what Express does and clients may match on it.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(meta::welcome))
        .route("/v1/health", get(meta::health))
        .fallback(envelope::not_found)
        .method_not_allowed_fallback(envelope::not_found)
        .with_state(state)
}
