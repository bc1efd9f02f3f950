//! `POST /proxy/set/{instance}` and `GET /proxy/find/{instance}` (contract rows 68–69): the
//! proxy the instance's WhatsApp socket goes through (HTTP `CONNECT`, SOCKS4a or SOCKS5, see
//! [`zapin_engine::proxy`]), applied from the session's next connection on.
//!
//! Before storing a proxy, Evolution checks it by fetching a public IP echo with and without it;
//! zapin cannot assume the public internet, so it opens a tunnel through the proxy to the
//! WhatsApp server the engine uses (`ZAPIN_WA_WS_URL`) instead. Either way a proxy that does
//! not work is refused with 400 `["Invalid proxy"]` and nothing is stored. The username and
//! password are sealed at rest (the webhook secrets' cipher) and shown back by `find`, as
//! Evolution shows them.

use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::request::{ProxySet, validate_proxy_set};
use zapin_engine::InstanceId;
use zapin_engine::proxy::{ProxyConfig, ProxyProtocol};

use super::body::JsonBody;
use super::guard::Authorized;
use super::instance::iso;
use super::session::engine;
use super::{ApiError, AppState};
use crate::db::{ProxyRow, ProxySet as StoredProxy};

/// How long the check of a new proxy may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

fn invalid() -> ApiError {
    ErrorEnvelope::bad_request(["Invalid proxy"]).into()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The engine's form of an enabled proxy.
pub(crate) fn proxy_config(
    protocol: &str,
    host: &str,
    port: &str,
    username: &str,
    password: &str,
) -> Option<ProxyConfig> {
    Some(ProxyConfig {
        protocol: ProxyProtocol::parse(protocol)?,
        host: non_empty(host.trim())?,
        port: port.trim().parse::<u16>().ok().filter(|p| *p > 0)?,
        username: non_empty(username),
        password: non_empty(password),
    })
}

/// The sealed `{username, password}` (`None` when both are empty).
fn seal_credentials(
    state: &AppState,
    instance_id: &str,
    req: &ProxySet,
) -> Result<Option<String>, ApiError> {
    if req.username.is_empty() && req.password.is_empty() {
        return Ok(None);
    }
    let plain = json!({"username": req.username, "password": req.password}).to_string();
    Ok(Some(state.secrets.seal(instance_id, &plain)?))
}

/// `(username, password)` from the stored form ("" for none); `None` when it does not open.
pub(crate) fn credentials(
    secrets: &crate::webhook::SecretCipher,
    instance_id: &str,
    stored: Option<&str>,
) -> Option<(String, String)> {
    let Some(stored) = stored else {
        return Some((String::new(), String::new()));
    };
    let plain = secrets.open(instance_id, stored).ok()?;
    let v: Value = serde_json::from_str(&plain).ok()?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Some((field("username"), field("password")))
}

/// `POST /proxy/set/{instance}` → 201 `{proxy:{instanceName, proxy:{enabled, host, port,
/// protocol, username, password}}}`.
pub async fn set(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = validate_proxy_set(&body?)?;
    let runtime = engine(&state)?;
    let config = if req.enabled {
        let config = proxy_config(
            &req.protocol,
            &req.host,
            &req.port,
            &req.username,
            &req.password,
        )
        .ok_or_else(invalid)?;
        let ws_url = runtime.manager().config().ws_url.clone();
        match tokio::time::timeout(PROBE_TIMEOUT, zapin_engine::proxy::probe(&config, &ws_url))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::info!(instance = %instance.name, "proxy refused: {err}");
                return Err(invalid());
            }
            Err(_) => {
                tracing::info!(instance = %instance.name, "proxy refused: timed out");
                return Err(invalid());
            }
        }
        Some(config)
    } else {
        None
    };
    let secret = seal_credentials(&state, &instance.id, &req)?;
    let mut tx = state.db.begin().await?;
    tx.set_proxy(
        &instance.id,
        &StoredProxy {
            enabled: req.enabled,
            host: req.host.clone(),
            port: req.port.clone(),
            protocol: req.protocol.clone(),
            secret,
        },
    )
    .await?;
    tx.commit().await?;
    runtime
        .manager()
        .set_proxy(&InstanceId::new(instance.id.as_str()), config);
    Ok((
        StatusCode::CREATED,
        Json(json!({"proxy": {"instanceName": instance.name, "proxy": {
            "enabled": req.enabled,
            "host": req.host,
            "port": req.port,
            "protocol": req.protocol,
            "username": req.username,
            "password": req.password,
        }}})),
    ))
}

fn row_json(state: &AppState, row: ProxyRow) -> Result<Value, ApiError> {
    let (username, password) = credentials(&state.secrets, &row.instance_id, row.secret.as_deref())
        .ok_or_else(|| {
            tracing::error!(instance = %row.instance_id, "stored proxy credentials do not open");
            ApiError::from(ErrorEnvelope::internal(["Internal Server Error"]))
        })?;
    Ok(json!({
        "id": row.id,
        "enabled": row.enabled,
        "host": row.host,
        "port": row.port,
        "protocol": row.protocol,
        "username": username,
        "password": password,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
        "instanceId": row.instance_id,
    }))
}

/// `GET /proxy/find/{instance}` → 200 the Proxy row, or `null`.
pub async fn find(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
) -> Result<Json<Value>, ApiError> {
    let mut tx = state.db.begin().await?;
    let found = tx.get_proxy(&instance.id).await?;
    tx.rollback().await?;
    Ok(Json(match found {
        Some(row) => row_json(&state, row)?,
        None => Value::Null,
    }))
}
