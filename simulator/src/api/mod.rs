//! The control API (every route is documented in the crate's README): the router, JSON in and
//! out, and errors.
//!
//! Every error is `{"error": "..."}` with a 4xx status — 501 only where the protocol layer is not
//! wired yet. Bodies are parsed by `ApiJson`, so malformed JSON, missing fields and wrong types are
//! a 400 with serde's message rather than axum's plain-text 415/422.

mod accounts;
mod faults;
mod groups;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::watch;

use crate::conn::ws;
use crate::phone::SeamError;
use crate::sim::Sim;
use crate::state::StateError;

/// What every route handler gets.
#[derive(Debug, Clone)]
pub struct AppState {
    pub sim: Sim,
    /// Flips to `true` when the simulator shuts down; connection tasks watch it.
    pub shutdown: watch::Receiver<bool>,
}

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/ws/chat", get(ws::upgrade))
        .route("/sim/root-key", get(root_key))
        .route("/sim/stats", get(stats))
        .route("/sim/accounts", post(accounts::create))
        .route("/sim/accounts/{phone}", get(accounts::get_account))
        .route("/sim/accounts/{phone}/scan", post(accounts::scan))
        .route("/sim/accounts/{phone}/link-code", post(accounts::link_code))
        .route("/sim/accounts/{phone}/unlink", post(accounts::unlink))
        .route(
            "/sim/accounts/{phone}/messages",
            post(accounts::send_message).get(accounts::list_messages),
        )
        .route(
            "/sim/accounts/{phone}/receipts",
            get(accounts::list_receipts),
        )
        .route("/sim/accounts/{phone}/read", post(accounts::read))
        .route("/sim/accounts/{phone}/profile", get(accounts::get_profile))
        .route(
            "/sim/accounts/{phone}/app-state",
            get(accounts::get_app_state),
        )
        .route(
            "/sim/accounts/{phone}/business",
            put(accounts::set_business).delete(accounts::remove_business),
        )
        .route("/sim/groups", post(groups::create))
        .route("/sim/groups/join", post(groups::join))
        .route("/sim/groups/{jid}", get(groups::get_group))
        .route("/sim/groups/{jid}/participants", post(groups::participants))
        .route("/sim/groups/{jid}/subject", post(groups::subject))
        .route("/sim/groups/{jid}/description", post(groups::description))
        .route("/sim/groups/{jid}/settings", post(groups::settings))
        .route("/sim/groups/{jid}/ephemeral", post(groups::ephemeral))
        .route("/sim/groups/{jid}/invite", post(groups::invite))
        .route("/sim/groups/{jid}/leave", post(groups::leave))
        .route("/sim/faults", post(faults::set).delete(faults::clear))
        .merge(crate::media::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route",
            )
        })
        .with_state(app)
}

async fn root_key(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    Json(json!({"public_key_hex": hex::encode(app.sim.state().root_public().as_bytes())}))
}

async fn stats(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> Json<crate::sim::Stats> {
    Json(app.sim.stats())
}

/// A control-API error: status and message, rendered as `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        use StateError::*;
        let status = match &e {
            InvalidPhone(_) | QrMismatch | CannotUnlinkPhone => StatusCode::BAD_REQUEST,
            PhoneTaken(_) | RefUsed | DevicesExhausted(_) => StatusCode::CONFLICT,
            UnknownAccount(_)
            | UnknownRef
            | UnknownDevice { .. }
            | NoLinkCodeRequest(_)
            | UnknownParticipant(_)
            | UnknownGroup(_)
            | NoRegistration(_) => StatusCode::NOT_FOUND,
        };
        Self::new(status, e.to_string())
    }
}

impl From<SeamError> for ApiError {
    fn from(e: SeamError) -> Self {
        match e {
            SeamError::NotWired(_) => Self::new(StatusCode::NOT_IMPLEMENTED, e.to_string()),
            SeamError::Failed(m) => Self::new(StatusCode::CONFLICT, m),
        }
    }
}

/// A JSON body whose every failure is a 400 `{"error"}`. An empty body reads as `{}`, so optional
/// bodies (`POST /sim/accounts`) can be left out and required fields are reported by name.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(e.status(), format!("cannot read body: {}", e.body_text()))
        })?;
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(body)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}
