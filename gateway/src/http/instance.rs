//! `POST /instance/create`, `GET /instance/fetchInstances`, `DELETE /instance/delete/{instance}`
//! (contract §3.1, §13.1, §13.4, §13.5).

use std::collections::HashMap;

use super::InstanceRuntime as _;

use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::envelope::{WebhookEnvelope, envelope_apikey, format_date_time};
use zapin_compat_evolution::events::EventName;
use zapin_compat_evolution::payload::InstanceLifecycle;
use zapin_compat_evolution::request::{CreateInstance, Integration, validate_create_instance};
use zapin_compat_evolution::response::{
    ConnectionState, CreateInstanceResponse, CreateWebhookEcho, CreatedInstance, EnabledEcho,
    FetchInstanceRow, FetchSettingRow, InstanceCounts, InstanceSettings, StatusResponse,
};

use super::body::JsonBody;
use super::guard::{Authorized, api_key, find_instance, is_global, owned_by};
use super::tenancy::Caller;
use super::{ApiError, AppState};
use crate::db::{Instance, NewInstance, Settings, WebhookSet, new_uuid, now_ms};

/// Stored `connection_status` → Evolution's state (unknown values read as `close`).
pub(super) fn connection_state(stored: &str) -> ConnectionState {
    match stored {
        "open" => ConnectionState::Open,
        "connecting" => ConnectionState::Connecting,
        _ => ConnectionState::Close,
    }
}

fn integration(stored: &str) -> Integration {
    Integration::parse(stored).unwrap_or(Integration::WhatsappBaileys)
}

pub(super) fn iso(ms: i64) -> String {
    format_date_time(ms, 0)
}

/// An instance token: an upper-case UUID v4, as Evolution generates.
fn new_token() -> String {
    new_uuid().to_ascii_uppercase()
}

/// The envelope of an instance lifecycle event. `destination` is the instance webhook URL when
/// there is one, else the global webhook's (contract §5.2).
fn lifecycle_envelope<'a>(
    state: &'a AppState,
    event: EventName,
    instance: &'a Instance,
    token: &'a str,
    destination: &'a str,
) -> WebhookEnvelope<'a, InstanceLifecycle> {
    WebhookEnvelope {
        event,
        instance: &instance.name,
        data: InstanceLifecycle {
            instance_name: instance.name.clone(),
            instance_id: instance.id.clone(),
        },
        destination,
        date_time: iso(now_ms()),
        sender: instance.owner_jid.as_deref(),
        server_url: state.config.server_url.as_deref().unwrap_or(""),
        apikey: envelope_apikey(state.config.expose_api_key_in_events, token),
    }
}

fn global_destination(state: &AppState, event: EventName) -> String {
    state
        .config
        .webhook_global_url
        .as_deref()
        .map(|url| format!("{url}/{}", event.by_events_suffix()))
        .unwrap_or_default()
}

/// Guard order for create: 403 (name taken) → 401 (not the global key) → 400 (body).
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<CreateInstanceResponse>), ApiError> {
    let name = body
        .as_ref()
        .ok()
        .and_then(|b| b.get("instanceName"))
        .and_then(Value::as_str);
    if let Some(name) = name
        && find_instance(&state, name).await?.is_some()
    {
        return Err(ErrorEnvelope::name_in_use(name).into());
    }
    if !caller.acts_global() {
        return Err(ErrorEnvelope::unauthorized().into());
    }
    let body = body?;
    let req = validate_create_instance(&body)?;
    let transports = create_transports(&state, &body)?;
    super::door::check_instance_name(&req.instance_name)?;
    if let Some(webhook) = &req.webhook {
        super::door::check_target_url("webhook.url", &webhook.url, true)?;
    }
    if req.integration == Integration::WhatsappBusiness
        && (req.token.is_none() || req.number.is_none())
    {
        return Err(ErrorEnvelope::bad_request([
            "token and number are required for WHATSAPP-BUSINESS",
        ])
        .into());
    }
    let token = req.token.clone().unwrap_or_else(new_token);
    let instance = store_new_instance(&state, &req, &token, &transports).await?;
    if let (Some(ctx), Some(tenancy)) = (caller.tenant(), &state.tenancy) {
        tenancy
            .directory
            .assign_instance(&instance.name, &instance.id, &ctx.tenant.id)
            .await?;
    }
    if let Some(engine) = &state.engine {
        engine.instance_created(&instance, req.qrcode, req.number.as_deref());
    }

    let business = req.integration == Integration::WhatsappBusiness;
    let server_url = state.config.server_url.clone().unwrap_or_default();
    let webhook = req
        .webhook
        .as_ref()
        .map(|w| CreateWebhookEcho {
            webhook_url: Some(w.url.clone()),
            webhook_headers: w.headers.clone(),
            webhook_by_events: w.by_events,
            webhook_base64: w.base64,
        })
        .unwrap_or_default();
    let response = CreateInstanceResponse {
        instance: CreatedInstance {
            instance_name: instance.name.clone(),
            instance_id: instance.id.clone(),
            integration: req.integration,
            webhook_wa_business: business.then(|| format!("{server_url}/webhook/meta")),
            access_token_wa_business: String::new(),
            status: connection_state(&instance.connection_status),
        },
        hash: token,
        webhook,
        websocket: EnabledEcho::default(),
        rabbitmq: echo(&body, "rabbitmq"),
        nats: echo(&body, "nats"),
        sqs: EnabledEcho::default(),
        settings: req.settings.clone(),
        // The QR object needs the engine; until it lands `qrcode: true` is accepted and ignored.
        qrcode: None,
        chatwoot: None,
    };
    Ok((StatusCode::CREATED, Json(response)))
}

/// Creates a Baileys instance named `name` as `POST /instance/create {instanceName}` does (same
/// validation, same stored rows and `INSTANCE_CREATE` event), owned by `tenant_id` when given,
/// with its session registered but not connecting. For the dashboard, which charges the quota
/// itself.
pub(crate) async fn create_named(
    state: &AppState,
    name: &str,
    tenant_id: Option<&str>,
) -> Result<Instance, ApiError> {
    let body = serde_json::json!({"instanceName": name, "integration": "WHATSAPP-BAILEYS"});
    let req = validate_create_instance(&body)?;
    super::door::check_instance_name(&req.instance_name)?;
    if find_instance(state, &req.instance_name).await?.is_some() {
        return Err(ErrorEnvelope::name_in_use(&req.instance_name).into());
    }
    let token = new_token();
    let instance = store_new_instance(state, &req, &token, &[]).await?;
    if let (Some(tenant_id), Some(tenancy)) = (tenant_id, &state.tenancy) {
        tenancy
            .directory
            .assign_instance(&instance.name, &instance.id, tenant_id)
            .await?;
    }
    if let Some(engine) = &state.engine {
        engine.instance_created(&instance, false, None);
    }
    Ok(instance)
}

/// `rabbitmq` / `nats` echo `X.enabled` from the request (contract §3.1), usually `{}`.
fn echo(body: &Value, name: &str) -> EnabledEcho {
    EnabledEcho {
        enabled: body
            .get(name)
            .and_then(|t| t.get("enabled"))
            .and_then(Value::as_bool),
    }
}

/// The broker objects of a create body (`"rabbitmq": {"events": [...]}`, `"nats": {...}`): the
/// presence of the object means enabled, `events` follows the `/<name>/set` rules (none listed
/// means all). Ignored when the transport is disabled in the environment, as Evolution does.
fn create_transports(
    state: &AppState,
    body: &Value,
) -> Result<Vec<(&'static str, Vec<String>)>, ApiError> {
    let env = state.db.transports();
    let mut out = Vec::new();
    for (name, on) in [
        (zapin_events::amqp::TRANSPORT, env.rabbitmq.is_some()),
        (zapin_events::nats::TRANSPORT, env.nats.is_some()),
    ] {
        let Some(object) = body.get(name).and_then(Value::as_object) else {
            continue;
        };
        if !on {
            continue;
        }
        let mut wrapped = object.clone();
        wrapped.insert("enabled".to_owned(), Value::Bool(true));
        let set = zapin_compat_evolution::request::validate_transport_set(
            &serde_json::json!({ name: wrapped }),
            name,
        )?;
        out.push((name, set.events.names().to_vec()));
    }
    Ok(out)
}

/// Instance, settings, optional webhook and broker settings, and the `INSTANCE_CREATE` event,
/// in one transaction.
async fn store_new_instance(
    state: &AppState,
    req: &CreateInstance,
    token: &str,
    transports: &[(&'static str, Vec<String>)],
) -> Result<Instance, ApiError> {
    let connection_status = if req.integration == Integration::WhatsappBaileys {
        "close"
    } else {
        "open"
    };
    let new = NewInstance {
        name: req.instance_name.clone(),
        token: state.tokens.seal(token)?,
        token_hash: state.tokens.lookup(token.as_bytes()),
        integration: req.integration.as_str().to_owned(),
        number: req.number.clone(),
        connection_status: connection_status.to_owned(),
    };
    let mut tx = state.db.begin().await?;
    let instance = tx.insert_instance(&new).await?;
    if let Some(business_id) = &req.business_id {
        tx.set_business_id(&instance.id, business_id).await?;
    }
    let s = &req.settings;
    tx.set_settings(
        &instance.id,
        &Settings {
            reject_call: s.reject_call,
            msg_call: s.msg_call.clone(),
            groups_ignore: s.groups_ignore,
            always_online: s.always_online,
            read_messages: s.read_messages,
            read_status: s.read_status,
            sync_full_history: s.sync_full_history,
            wavoip_token: s.wavoip_token.clone(),
        },
    )
    .await?;
    let destination = match &req.webhook {
        Some(w) => {
            tx.set_webhook(
                &instance.id,
                &WebhookSet {
                    url: w.url.clone(),
                    enabled: true,
                    events: w.events.names().to_vec(),
                    by_events: w.by_events.unwrap_or(false),
                    base64: w.base64.unwrap_or(false),
                    headers: w.headers.clone().map_or(Value::Null, Value::Object),
                    secret: None,
                },
            )
            .await?;
            w.url.clone()
        }
        None => global_destination(state, EventName::InstanceCreate),
    };
    for (name, events) in transports {
        zapin_events::settings::set(&mut tx.events_conn(), &instance.id, name, true, events)
            .await
            .map_err(crate::db::DbError::from)?;
    }
    let envelope = lifecycle_envelope(
        state,
        EventName::InstanceCreate,
        &instance,
        token,
        &destination,
    );
    tx.enqueue_event(
        &instance.id,
        EventName::InstanceCreate.config_key(),
        &envelope,
    )
    .await?;
    tx.commit().await?;
    Ok(instance)
}

/// `?instanceName=`, `?instanceId=`, `?number=`. With the global key: every instance (or the
/// one asked for, 404 when unknown). With an instance token: only instances holding it; 401
/// when none of those match.
pub async fn fetch_instances(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<FetchInstanceRow>>, ApiError> {
    let Some(key) = api_key(&headers) else {
        return Err(ErrorEnvelope::unauthorized().into());
    };
    let global = is_global(&state, key);
    let mut tx = state.db.begin().await?;
    let mut all = tx.list_instances().await?;
    if let Some(ctx) = caller.tenant() {
        // A tenant key sees its tenant's instances as the global key sees all of them: the
        // others do not exist for it.
        let mut owned = Vec::with_capacity(all.len());
        for instance in all {
            if owned_by(&state, &instance, &ctx.tenant.id).await? {
                owned.push(instance);
            }
        }
        all = owned;
    }
    let global = global || caller.tenant().is_some();
    let mine: Vec<Instance> = if global {
        all.clone()
    } else {
        all.iter()
            .filter(|i| state.tokens.unlocks(i, key))
            .cloned()
            .collect()
    };
    if mine.is_empty() && !global {
        return Err(ErrorEnvelope::unauthorized().into());
    }
    let wanted = |q: &str| query.get(q).map(String::as_str).filter(|v| !v.is_empty());
    let selected: Vec<Instance> = if let Some(name) = wanted("instanceName") {
        pick(&all, &mine, name, |i| i.name == name)?
    } else if let Some(id) = wanted("instanceId") {
        pick(&all, &mine, id, |i| i.id == id)?
    } else if let Some(number) = wanted("number") {
        pick(&all, &mine, number, |i| i.number.as_deref() == Some(number))?
    } else {
        mine
    };
    let mut rows = Vec::with_capacity(selected.len());
    for instance in selected {
        rows.push(fetch_row(&state, &mut tx, instance).await?);
    }
    tx.rollback().await?;
    Ok(Json(rows))
}

/// 404 when no instance matches at all; 401 when one exists but the caller cannot see it.
fn pick(
    all: &[Instance],
    mine: &[Instance],
    shown: &str,
    matches: impl Fn(&Instance) -> bool,
) -> Result<Vec<Instance>, ApiError> {
    if !all.iter().any(&matches) {
        return Err(ErrorEnvelope::not_found([format!("Instance \"{shown}\" not found")]).into());
    }
    let visible: Vec<Instance> = mine.iter().filter(|i| matches(i)).cloned().collect();
    if visible.is_empty() {
        return Err(ErrorEnvelope::unauthorized().into());
    }
    Ok(visible)
}

async fn fetch_row(
    state: &AppState,
    tx: &mut crate::db::Tx,
    instance: Instance,
) -> Result<FetchInstanceRow, ApiError> {
    let settings = tx.get_settings(&instance.id).await?;
    let brokers = zapin_events::settings::all_for_instance(&mut tx.events_conn(), &instance.id)
        .await
        .map_err(crate::db::DbError::from)?;
    let broker = |name: &str| {
        brokers
            .iter()
            .find(|b| b.transport == name)
            .cloned()
            .and_then(|b| serde_json::to_value(super::transports::row(b)).ok())
    };
    let (messages, contacts, chats) = tx.instance_counts(&instance.id).await?;
    let details = tx.instance_details(&instance.id).await?;
    let disconnection = details.disconnection;
    // A row sealed under another master key must not hide every other instance: log it and
    // show an empty token.
    let token = state.tokens.open(&instance.token).unwrap_or_else(|err| {
        tracing::error!(instance = %instance.name, "{err}");
        Default::default()
    });
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(FetchInstanceRow {
        connection_status: connection_state(&instance.connection_status),
        owner_jid: instance.owner_jid.clone(),
        profile_name: instance.profile_name.clone(),
        // The engine does not fetch profile pictures yet: unknown, which Evolution also
        // reports as null (a failed picture fetch).
        profile_pic_url: None,
        integration: integration(&instance.integration),
        number: instance.number.clone(),
        business_id: details.business_id,
        token: token.to_string(),
        client_name: state.config.client_name.clone(),
        disconnection_reason_code: disconnection.as_ref().map(|d| d.reason_code),
        disconnection_at: disconnection.as_ref().map(|d| iso(d.at)),
        disconnection_object: disconnection.map(|d| d.object),
        created_at: iso(instance.created_at),
        updated_at: iso(instance.updated_at),
        chatwoot: None,
        proxy: None,
        rabbitmq: broker(zapin_events::amqp::TRANSPORT),
        nats: broker(zapin_events::nats::TRANSPORT),
        sqs: None,
        websocket: None,
        // zapin keeps one settings row per instance, keyed by the instance: its id stands in
        // for the row id.
        setting: settings.map(|s| FetchSettingRow {
            id: instance.id.clone(),
            settings: InstanceSettings {
                reject_call: s.reject_call,
                msg_call: s.msg_call,
                groups_ignore: s.groups_ignore,
                always_online: s.always_online,
                read_messages: s.read_messages,
                read_status: s.read_status,
                sync_full_history: s.sync_full_history,
                wavoip_token: s.wavoip_token,
            },
            created_at: iso(instance.created_at),
            updated_at: iso(instance.updated_at),
            instance_id: instance.id.clone(),
        }),
        count: InstanceCounts {
            message: count(messages),
            contact: count(contacts),
            chat: count(chats),
        },
        id: instance.id,
        name: instance.name,
    })
}

/// Deletes the instance and everything it owns, with `INSTANCE_DELETE` in the same transaction.
pub async fn delete(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
) -> Result<Json<StatusResponse>, ApiError> {
    delete_stored(&state, &instance).await?;
    Ok(Json(StatusResponse::deleted()))
}

/// What `DELETE /instance/delete/{instance}` does once the caller is authorized: the rows and
/// the `INSTANCE_DELETE` event in one transaction, then the session. The owner's quota slot is
/// the caller's to give back.
pub(crate) async fn delete_stored(state: &AppState, instance: &Instance) -> Result<(), ApiError> {
    // The token only feeds the envelope's `apikey`; an unreadable one must not block deletion.
    let token = state.tokens.open(&instance.token).unwrap_or_default();
    let mut tx = state.db.begin().await?;
    let destination = match tx.get_webhook(&instance.id).await? {
        Some(w) => w.url,
        None => global_destination(state, EventName::InstanceDelete),
    };
    let deleted = tx
        .delete_instance(&instance.id, |_| {
            lifecycle_envelope(
                state,
                EventName::InstanceDelete,
                instance,
                &token,
                &destination,
            )
        })
        .await?;
    if !deleted {
        return Err(ErrorEnvelope::instance_not_found(&instance.name).into());
    }
    tx.commit().await?;
    state.bots.directory.invalidate(&instance.id);
    if let Some(engine) = &state.engine {
        engine.instance_deleted(instance);
    }
    Ok(())
}
