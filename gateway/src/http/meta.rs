//! Routes about the server itself: the welcome document, health and `/verify-creds`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::HOST;
use serde::Serialize;
use zapin_compat_evolution::ErrorEnvelope;

use super::body::JsonBody;
use super::guard::{account_key, api_key};
use super::{ApiError, AppState};
use crate::VERSION;

/// `GET /` body: Evolution's keys and types (contract §1.2) with zapin's values. `version` is
/// zapin's own version (Evolution Manager only checks that it is present); `clientName` is
/// `DATABASE_CONNECTION_CLIENT_NAME`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    pub status: u16,
    pub message: &'static str,
    pub version: &'static str,
    pub client_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    pub documentation: &'static str,
    pub whatsapp_web_version: String,
}

/// The message keeps Evolution's "it is working!" ending, which health probes grep for.
pub const WELCOME_MESSAGE: &str = "Welcome to zapin, it is working!";

/// zapin implements Evolution's routes, so Evolution's documentation describes them.
pub const DOCUMENTATION_URL: &str = "https://doc.evolution-api.com";

/// Where zapin serves its dashboard, `GET /`'s `manager`: Evolution's `<host>/manager`, which
/// redirects to `/dashboard`.
pub const DASHBOARD_PATH: Option<&str> = Some("/manager");

pub async fn welcome(State(state): State<AppState>, headers: HeaderMap) -> Json<Welcome> {
    let config = &state.config;
    // Like Express's `req.get('host')`: the dashboard URL is built from what the caller used.
    let manager = DASHBOARD_PATH
        .filter(|_| !config.disable_manager)
        .map(|path| {
            let host = headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}{path}")
        });
    Json(Welcome {
        status: 200,
        message: WELCOME_MESSAGE,
        version: VERSION,
        client_name: config.client_name.clone(),
        manager,
        documentation: DOCUMENTATION_URL,
        whatsapp_web_version: config.wa_version_string(),
    })
}

/// `GET /v1/health` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
}

pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: VERSION,
        uptime_seconds: state.started.elapsed().as_secs(),
    })
}

/// `POST /verify-creds` body (contract §1.2). Evolution adds `facebookAppId`,
/// `facebookConfigId` and `facebookUserToken` (its `FACEBOOK_*` settings, for the Meta Cloud API
/// sign-up); zapin has no Meta channel, so they are absent, as in Evolution when unset.
#[derive(Debug, Serialize)]
pub struct CredentialsValid {
    pub status: u16,
    pub message: &'static str,
}

/// `POST /verify-creds`: 200 for an account key (see [`account_key`]), 401 otherwise, an
/// instance token included. A malformed JSON body is a 400 first, as Express parses bodies
/// before any route runs.
pub async fn verify_creds(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Json<CredentialsValid>, ApiError> {
    body?;
    if api_key(&headers)
        .and_then(|key| account_key(&state, key))
        .is_none()
    {
        return Err(ErrorEnvelope::unauthorized().into());
    }
    Ok(Json(CredentialsValid {
        status: 200,
        message: "Credentials are valid",
    }))
}
