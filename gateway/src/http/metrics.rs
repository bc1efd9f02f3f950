//! `GET /metrics`: who may scrape (Evolution's rules, contract §1.2) and the scrape itself.
//!
//! Off unless `PROMETHEUS_METRICS=true` (an unknown route, 404). Then, in Evolution's order:
//! `METRICS_ALLOWED_IPS` refuses other peers (403 text), and `METRICS_AUTH_REQUIRED` asks for
//! Basic auth with `METRICS_USER`/`METRICS_PASSWORD` (401 text; 500 text when they are unset).
//! zapin also lets the operator key (`AUTHENTICATION_API_KEY` as `apikey`) in where Basic auth
//! is required, so one secret can do for an operator's tools.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use zapin_compat_evolution::headers::basic_credentials;

use super::AppState;
use super::guard::{api_key, is_global};
use crate::metrics::metrics;

/// The Prometheus text exposition format's content type.
const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn scrape(State(state): State<AppState>, req: Request) -> Response {
    let access = &state.config.metrics;
    if !access.enabled {
        return super::envelope::not_found(req.method().clone(), req.uri().clone())
            .await
            .into_response();
    }
    if let Some(allowed) = &access.allowed_ips {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_canonical());
        if !peer.is_some_and(|ip| allowed.contains(&ip)) {
            return (StatusCode::FORBIDDEN, "Forbidden: IP not allowed").into_response();
        }
    }
    if access.auth_required {
        let headers = req.headers();
        let operator = api_key(headers).is_some_and(|key| is_global(&state, key));
        if !operator {
            let (Some(user), Some(password)) = (&access.user, &access.password) else {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Metrics authentication is not configured",
                )
                    .into_response();
            };
            if !basic_auth_matches(headers, user, password) {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(WWW_AUTHENTICATE, "Basic realm=\"metrics\"")],
                    "Unauthorized",
                )
                    .into_response();
            }
        }
    }
    refresh(&state).await;
    ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], metrics().encode()).into_response()
}

/// Sets the gauges that mirror state: sessions by state and the webhook table depths.
async fn refresh(state: &AppState) {
    let m = metrics();
    if let Some(engine) = &state.engine {
        let manager = engine.manager();
        m.set_sessions(
            manager
                .instances()
                .iter()
                .filter_map(|id| manager.state(id))
                .map(|s| s.as_str()),
        );
    } else {
        m.set_sessions([]);
    }
    match state.db.webhook_depths().await {
        Ok((outbox, dead)) => m.set_webhook_depths(outbox, dead),
        Err(err) => tracing::warn!("metrics: reading the outbox depth: {err}"),
    }
}

/// Whether `Authorization: Basic …` carries `user:password` (both compared in constant time).
fn basic_auth_matches(
    headers: &HeaderMap,
    user: &crate::config::Secret,
    password: &crate::config::Secret,
) -> bool {
    let Some((given_user, given_password)) = headers
        .get(AUTHORIZATION)
        .and_then(|v| basic_credentials(v.as_bytes()))
    else {
        return false;
    };
    // Both compared, whatever the first gave, so the time says nothing about which was wrong.
    let user_ok = user.matches(&given_user);
    let password_ok = password.matches(&given_password);
    user_ok & password_ok
}
