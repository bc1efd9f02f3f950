//! Unauthenticated routes about the server itself: the welcome document and health.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::HOST;
use serde::Serialize;

use super::AppState;
use crate::VERSION;

/// `GET /` body: Evolution's keys and types (contract §1.2) with zapin's values.
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

pub async fn welcome(State(state): State<AppState>, headers: HeaderMap) -> Json<Welcome> {
    let config = &state.config;
    // Like Express's `req.get('host')`: the manager URL is built from what the caller used.
    let manager = (!config.disable_manager).then(|| {
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}/manager")
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
