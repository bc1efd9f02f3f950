//! `POST /{rabbitmq,nats}/set/{instance}` and `GET /{rabbitmq,nats}/find/{instance}`
//! (contract rows 83–92): the instance's settings of a broker transport. The body is
//! `{"<name>": {"enabled": …, "events": [...]}}`; the answer is the stored row
//! `{id, enabled, events, createdAt, updatedAt, instanceId}` (or `null` from find). When the
//! transport is disabled in the environment (`RABBITMQ_ENABLED` / `NATS_ENABLED` not `true`),
//! Evolution answers with an empty body (after validating the request), and so does zapin.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use zapin_compat_evolution::events::EventSubscription;
use zapin_compat_evolution::request::validate_transport_set;
use zapin_compat_evolution::response::TransportRow;
use zapin_events::settings::{self, TransportSettings};

use super::body::JsonBody;
use super::guard::Authorized;
use super::instance::iso;
use super::{ApiError, AppState};
use crate::db::DbError;

/// The stored row in Evolution's shape (also the `Rabbitmq` / `Nats` objects of fetchInstances).
pub(super) fn row(s: TransportSettings) -> TransportRow {
    TransportRow {
        id: s.id,
        enabled: s.enabled,
        events: serde_json::from_value::<EventSubscription>(serde_json::Value::from(s.events))
            .unwrap_or_default(),
        created_at: iso(s.created_at),
        updated_at: iso(s.updated_at),
        instance_id: s.instance_id,
    }
}

fn enabled_in_env(state: &AppState, transport: &str) -> bool {
    let t = state.db.transports();
    match transport {
        zapin_events::amqp::TRANSPORT => t.rabbitmq.is_some(),
        zapin_events::nats::TRANSPORT => t.nats.is_some(),
        _ => false,
    }
}

/// The empty body Evolution sends when the transport is off (`res.json(undefined)`).
fn empty(status: StatusCode) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
    )
        .into_response()
}

async fn set(
    transport: &'static str,
    state: AppState,
    instance_id: String,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body = body.0?;
    let req = validate_transport_set(&body, transport)?;
    if !enabled_in_env(&state, transport) {
        return Ok(empty(StatusCode::CREATED));
    }
    let mut tx = state.db.begin().await?;
    let stored = settings::set(
        &mut tx.events_conn(),
        &instance_id,
        transport,
        req.enabled,
        req.events.names(),
    )
    .await
    .map_err(DbError::from)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row(stored))).into_response())
}

async fn find(
    transport: &'static str,
    state: AppState,
    instance_id: String,
) -> Result<Response, ApiError> {
    if !enabled_in_env(&state, transport) {
        return Ok(empty(StatusCode::OK));
    }
    let mut tx = state.db.begin().await?;
    let found = settings::get(&mut tx.events_conn(), &instance_id, transport)
        .await
        .map_err(DbError::from)?;
    tx.rollback().await?;
    Ok(Json(found.map(row)).into_response())
}

pub async fn rabbitmq_set(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    set(zapin_events::amqp::TRANSPORT, state, instance.id, body).await
}

pub async fn rabbitmq_find(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
) -> Result<Response, ApiError> {
    find(zapin_events::amqp::TRANSPORT, state, instance.id).await
}

pub async fn nats_set(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    set(zapin_events::nats::TRANSPORT, state, instance.id, body).await
}

pub async fn nats_find(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
) -> Result<Response, ApiError> {
    find(zapin_events::nats::TRANSPORT, state, instance.id).await
}
