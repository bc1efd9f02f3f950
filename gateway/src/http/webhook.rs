//! `POST /webhook/set/{instance}` and `GET /webhook/find/{instance}` (contract §5.3, §13.10).
//!
//! zapin extension: `webhook.secret` (string) makes deliveries carry `X-Zapin-Signature`
//! (see [`crate::webhook`]). It is write-only: no response ever shows it. Leaving it out of a
//! later `set` keeps the stored secret; `null` or `""` removes it.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::events::EventSubscription;
use zapin_compat_evolution::request::validate_webhook_set;
use zapin_compat_evolution::response::WebhookRow;

use super::body::JsonBody;
use super::guard::Authorized;
use super::instance::iso;
use super::{ApiError, AppState};
use crate::db::{WebhookConfig, WebhookSet};

/// What the request says about the secret.
enum SecretChange {
    Keep,
    Set(Option<String>),
}

fn secret_change(body: &Value) -> Result<SecretChange, ApiError> {
    match body.get("webhook").and_then(|w| w.get("secret")) {
        None => Ok(SecretChange::Keep),
        Some(Value::Null) => Ok(SecretChange::Set(None)),
        Some(Value::String(s)) if s.is_empty() => Ok(SecretChange::Set(None)),
        Some(Value::String(s)) => Ok(SecretChange::Set(Some(s.clone()))),
        Some(_) => Err(ErrorEnvelope::validation(vec![
            "webhook.secret is not of a type(s) string".to_owned(),
        ])
        .into()),
    }
}

fn row(w: WebhookConfig, instance_id: &str) -> WebhookRow {
    WebhookRow {
        id: w.id,
        url: w.url,
        headers: match w.headers {
            Value::Object(map) => Some(map),
            _ => None,
        },
        enabled: w.enabled,
        // As stored: `[]` for a disabled webhook, the list otherwise (§5.1 rules ran on set).
        events: serde_json::from_value::<EventSubscription>(Value::from(w.events))
            .unwrap_or_default(),
        webhook_by_events: w.by_events,
        webhook_base64: w.base64,
        created_at: iso(w.created_at),
        updated_at: iso(w.updated_at),
        instance_id: instance_id.to_owned(),
    }
}

pub async fn set(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<WebhookRow>), ApiError> {
    let body = body?;
    let req = validate_webhook_set(&body)?;
    if !req.url.is_empty() {
        super::door::check_target_url("webhook.url", &req.url, true)?;
    }
    let change = secret_change(&body)?;
    let mut tx = state.db.begin().await?;
    let secret = match change {
        SecretChange::Set(secret) => secret
            .map(|s| state.secrets.seal(&instance.id, &s))
            .transpose()?,
        // Already in stored form, and sealed for this same instance.
        SecretChange::Keep => tx.get_webhook(&instance.id).await?.and_then(|w| w.secret),
    };
    let stored = tx
        .set_webhook(
            &instance.id,
            &WebhookSet {
                url: req.url,
                enabled: req.enabled,
                events: req.events.names().to_vec(),
                by_events: req.by_events,
                base64: req.base64,
                headers: req.headers.map_or(Value::Null, Value::Object),
                secret,
            },
        )
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row(stored, &instance.id))))
}

/// The row, or JSON `null` when the instance has no webhook.
pub async fn find(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
) -> Result<Json<Option<WebhookRow>>, ApiError> {
    let mut tx = state.db.begin().await?;
    let found = tx.get_webhook(&instance.id).await?;
    tx.rollback().await?;
    Ok(Json(found.map(|w| row(w, &instance.id))))
}
