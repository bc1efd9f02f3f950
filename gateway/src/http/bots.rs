//! The chatbot routes (contract rows 143–152 and 163–172, §3.7, §6.3) for every product in
//! [`BOT_PRODUCTS`]: `/{bot}/create`, `find`, `fetch/{botId}`, `update/{botId}`,
//! `delete/{botId}`, `settings`, `fetchSettings`, `changeStatus`, `fetchSessions/{botId}` and
//! `ignoreJid`, each on `{instance}`.
//!
//! Rows are scoped to the instance of the path: another instance's bot reads as absent
//! (Evolution's `fetch` and `changeStatus` are not scoped; zapin's are). Configuration mistakes
//! that Evolution throws as plain errors (HTTP 500) are answered 400 with the same text.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use zapin_bots::SessionStore as _;
use zapin_bots::{SessionStatus, TriggerError};
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::request::{
    BOT_PRODUCTS, BotBody, BotProduct, BotSettingFields, OPENAI, product_rule_error, validate_bot,
    validate_bot_ignore_jid, validate_bot_settings, validate_bot_status, validate_openai_creds,
};
use zapin_compat_evolution::response::{
    BotRecord, BotSettingsRecord, OrderedObject, SessionRecord, bot_row, default_settings,
    session_row, settings_row,
};

use super::body::JsonBody;
use super::guard::Authorized;
use super::instance::iso;
use super::{ApiError, AppState};
use crate::bots::{bot_config, open_params, seal_secrets, setting_fields};
use crate::db::{BotRow, BotSettingsRow, Instance, OpenaiCredsRow, Tx, new_uuid, now_ms};

/// Adds every product's routes to `router` (a router behind the instance guard).
pub fn routes(mut router: Router<AppState>) -> Router<AppState> {
    for p in BOT_PRODUCTS.iter() {
        let base = p.path;
        router = router
            .route(
                &format!("/{base}/create/{{instance}}"),
                post(
                    move |State(s): State<AppState>,
                          Extension(Authorized(i)): Extension<Authorized>,
                          JsonBody(b): JsonBody| async move {
                        create(p, s, i, b).await
                    },
                ),
            )
            .route(
                &format!("/{base}/find/{{instance}}"),
                get(
                    move |State(s): State<AppState>,
                          Extension(Authorized(i)): Extension<Authorized>| async move {
                        find(p, s, i).await
                    },
                ),
            )
            .route(
                &format!("/{base}/fetch/{{botId}}/{{instance}}"),
                get(
                    move |State(s): State<AppState>,
                          Extension(Authorized(i)): Extension<Authorized>,
                          Path((id, _)): Path<(String, String)>| async move {
                        fetch(p, s, i, id).await
                    },
                ),
            )
            .route(
                &format!("/{base}/update/{{botId}}/{{instance}}"),
                put(
                    move |State(s): State<AppState>,
                          Extension(Authorized(i)): Extension<Authorized>,
                          Path((id, _)): Path<(String, String)>,
                          JsonBody(b): JsonBody| async move {
                        update(p, s, i, id, b).await
                    },
                ),
            )
            .route(
                &format!("/{base}/delete/{{botId}}/{{instance}}"),
                delete(
                    move |State(s): State<AppState>,
                          Extension(Authorized(i)): Extension<Authorized>,
                          Path((id, _)): Path<(String, String)>| async move {
                        remove(p, s, i, id).await
                    },
                ),
            )
            .route(
                &format!("/{base}/settings/{{instance}}"),
                post(
                    move |State(s): State<AppState>,
                          Extension(Authorized(i)): Extension<Authorized>,
                          JsonBody(b): JsonBody| async move {
                        settings(p, s, i, b).await
                    },
                ),
            )
            .route(
                &format!("/{base}/fetchSettings/{{instance}}"),
                get(
                    move |State(s): State<AppState>,
                          Extension(Authorized(i)): Extension<Authorized>| async move {
                        fetch_settings(p, s, i).await
                    },
                ),
            )
            .route(
                &format!("/{base}/changeStatus/{{instance}}"),
                post(
                    move |State(s): State<AppState>,
                          Extension(Authorized(i)): Extension<Authorized>,
                          JsonBody(b): JsonBody| async move {
                        change_status(p, s, i, b).await
                    },
                ),
            )
            .route(
                &format!("/{base}/fetchSessions/{{botId}}/{{instance}}"),
                get(
                    move |State(s): State<AppState>,
                          Extension(Authorized(i)): Extension<Authorized>,
                          Path((id, _)): Path<(String, String)>| async move {
                        fetch_sessions(p, s, i, id).await
                    },
                ),
            )
            .route(
                &format!("/{base}/ignoreJid/{{instance}}"),
                post(
                    move |State(s): State<AppState>,
                          Extension(Authorized(i)): Extension<Authorized>,
                          JsonBody(b): JsonBody| async move {
                        ignore_jid(p, s, i, b).await
                    },
                ),
            );
    }
    router
        .route(
            "/openai/creds/{instance}",
            post(
                |State(s): State<AppState>,
                 Extension(Authorized(i)): Extension<Authorized>,
                 JsonBody(b): JsonBody| async move { creds_create(s, i, b).await },
            )
            .get(
                |State(s): State<AppState>, Extension(Authorized(i)): Extension<Authorized>| async move {
                    creds_find(s, i).await
                },
            ),
        )
        .route(
            "/openai/creds/{openaiCredsId}/{instance}",
            delete(
                |State(s): State<AppState>,
                 Extension(Authorized(i)): Extension<Authorized>,
                 Path((id, _)): Path<(String, String)>| async move { creds_delete(s, i, id).await },
            ),
        )
        .route(
            "/openai/getModels/{instance}",
            get(
                |State(s): State<AppState>,
                 Extension(Authorized(i)): Extension<Authorized>,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    get_models(s, i, q.get("openaiCredsId").cloned()).await
                },
            ),
        )
}

type Answer = Result<Response, ApiError>;

fn ok(status: StatusCode, body: impl serde::Serialize) -> Answer {
    Ok((status, Json(body)).into_response())
}

fn bad(text: impl Into<String>) -> ApiError {
    ErrorEnvelope::bad_request([text.into()]).into()
}

fn not_found(p: &BotProduct) -> ApiError {
    ErrorEnvelope::not_found([format!("{} not found", p.name)]).into()
}

/// `<Name> is disabled` (400) when the integration's environment switch is off.
fn check_enabled(p: &BotProduct, state: &AppState) -> Result<(), ApiError> {
    if state.bots.directory.kind_enabled(p.kind) {
        Ok(())
    } else {
        Err(bad(format!("{} is disabled", p.name)))
    }
}

fn record(p: &BotProduct, state: &AppState, row: &BotRow) -> Result<OrderedObject, ApiError> {
    let params = open_params(&state.secrets, row)?;
    Ok(bot_row(
        p,
        &BotRecord {
            id: row.id.clone(),
            enabled: row.enabled,
            description: row.description.clone(),
            trigger_type: row.trigger_type.clone(),
            trigger_operator: row.trigger_operator.clone(),
            trigger_value: row.trigger_value.clone(),
            settings: setting_fields(&row.settings),
            params,
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
            instance_id: row.instance_id.clone(),
        },
    ))
}

fn settings_record(row: &BotSettingsRow) -> BotSettingsRecord {
    BotSettingsRecord {
        id: row.id.clone(),
        settings: setting_fields(&row.settings),
        extra: serde_json::from_str(&row.extra).unwrap_or_default(),
        fallback_id: row.fallback_id.clone(),
        created_at: iso(row.created_at),
        updated_at: iso(row.updated_at),
        instance_id: row.instance_id.clone(),
    }
}

fn settings_json(f: &BotSettingFields) -> String {
    Value::Object(f.to_json()).to_string()
}

/// The bot of `id` if it belongs to `instance` and `p`.
async fn owned_bot(
    tx: &mut Tx,
    p: &BotProduct,
    instance: &Instance,
    id: &str,
) -> Result<Option<BotRow>, ApiError> {
    Ok(tx
        .get_bot(id)
        .await?
        .filter(|b| b.instance_id == instance.id && b.kind == p.kind))
}

/// The trigger rules of create/update (§3.7) and the product's duplicate rule, against the
/// other bots of the same product on the instance.
async fn check_bot(
    p: &BotProduct,
    state: &AppState,
    tx: &mut Tx,
    row: &BotRow,
    params: &Map<String, Value>,
) -> Result<(), ApiError> {
    if p.kind == OPENAI.kind {
        let creds_id = params.get("openaiCredsId").and_then(Value::as_str);
        let known = tx.list_openai_creds(&row.instance_id).await?;
        if !creds_id.is_some_and(|id| known.iter().any(|c| c.id == id)) {
            return Err(bad("Openai Creds not found"));
        }
    }
    let others = tx.list_bots(&row.instance_id, Some(p.kind)).await?;
    let mut configs = Vec::new();
    for other in others.iter().filter(|o| o.id != row.id) {
        let other_params = open_params(&state.secrets, other)?;
        if !p.unique_fields.is_empty()
            && p.unique_fields
                .iter()
                .all(|f| other_params.get(*f) == params.get(*f))
        {
            return Err(bad(format!("{} already exists", p.name)));
        }
        if let Some(c) = bot_config(other, other_params) {
            configs.push(c);
        }
    }
    let Some(me) = bot_config(row, params.clone()) else {
        return Err(bad("Trigger type is invalid"));
    };
    me.validate_trigger(&configs).map_err(|e| match e {
        TriggerError::SecondAll => bad(format!(
            "You already have a {} with an \"All\" trigger, you cannot have more bots while it is active",
            p.name
        )),
        other => bad(other.to_string()),
    })
}

/// Splits validated product fields into the stored non-secret params and the secrets.
fn stored_parts(body: &BotBody) -> (Map<String, Value>, Map<String, Value>) {
    (body.params.clone(), body.secrets.clone())
}

async fn create(
    p: &'static BotProduct,
    state: AppState,
    instance: Instance,
    body: Result<Value, ApiError>,
) -> Answer {
    let body = validate_bot(p, &body?)?;
    check_enabled(p, &state)?;
    if let Some(text) = product_rule_error(p, &body) {
        return Err(bad(text));
    }
    let mut tx = state.db.begin().await?;
    let now = now_ms();
    let row_settings = tx.get_bot_settings(&instance.id, p.kind).await?;
    let inherited = row_settings
        .as_ref()
        .map(|r| setting_fields(&r.settings))
        .unwrap_or_default();
    let fields = body.settings.clone().or(&inherited).with_column_defaults();
    if row_settings.is_none() {
        // Evolution creates the settings row from the new bot's values.
        tx.put_bot_settings(&BotSettingsRow {
            id: new_uuid(),
            instance_id: instance.id.clone(),
            kind: p.kind.to_owned(),
            settings: settings_json(&fields),
            fallback_id: None,
            extra: "{}".to_owned(),
            created_at: now,
            updated_at: now,
        })
        .await?;
    }
    let (params, secrets) = stored_parts(&body);
    let mut all = params.clone();
    all.extend(secrets.clone());
    let row = BotRow {
        id: new_uuid(),
        instance_id: instance.id.clone(),
        kind: p.kind.to_owned(),
        enabled: body.enabled,
        description: body.description.clone(),
        trigger_type: Some(body.trigger_type.clone()),
        trigger_operator: body.trigger_operator.clone(),
        trigger_value: body.trigger_value.clone(),
        settings: settings_json(&fields),
        params: Value::Object(params).to_string(),
        secret: seal_secrets(&state.secrets, &instance.id, &secrets)?,
        created_at: now,
        updated_at: now,
    };
    check_bot(p, &state, &mut tx, &row, &all).await?;
    tx.put_bot(&row).await?;
    tx.commit().await?;
    state.bots.directory.invalidate(&instance.id);
    ok(StatusCode::CREATED, record(p, &state, &row)?)
}

async fn find(p: &'static BotProduct, state: AppState, instance: Instance) -> Answer {
    check_enabled(p, &state)?;
    let mut tx = state.db.begin().await?;
    let rows = tx.list_bots(&instance.id, Some(p.kind)).await?;
    tx.rollback().await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(record(p, &state, row)?);
    }
    ok(StatusCode::OK, out)
}

async fn fetch(p: &'static BotProduct, state: AppState, instance: Instance, id: String) -> Answer {
    check_enabled(p, &state)?;
    let mut tx = state.db.begin().await?;
    let row = owned_bot(&mut tx, p, &instance, &id).await?;
    tx.rollback().await?;
    match row {
        Some(row) => ok(StatusCode::OK, record(p, &state, &row)?),
        None => ok(StatusCode::OK, Value::Null),
    }
}

async fn update(
    p: &'static BotProduct,
    state: AppState,
    instance: Instance,
    id: String,
    body: Result<Value, ApiError>,
) -> Answer {
    let body = validate_bot(p, &body?)?;
    check_enabled(p, &state)?;
    if let Some(text) = product_rule_error(p, &body) {
        return Err(bad(text));
    }
    let mut tx = state.db.begin().await?;
    let Some(mut row) = owned_bot(&mut tx, p, &instance, &id).await? else {
        return Err(not_found(p));
    };
    // Fields left out keep their stored value (Prisma ignores `undefined` on update).
    let mut all = open_params(&state.secrets, &row)?;
    let (params, secrets) = stored_parts(&body);
    all.extend(params);
    all.extend(secrets);
    let mut stored_params = Map::new();
    let mut stored_secrets = Map::new();
    for f in p.fields.iter().filter(|f| f.stored) {
        if let Some(v) = all.get(f.name) {
            if f.secret {
                stored_secrets.insert(f.name.to_owned(), v.clone());
            } else {
                stored_params.insert(f.name.to_owned(), v.clone());
            }
        }
    }
    row.enabled = body.enabled;
    if body.description.is_some() {
        row.description = body.description.clone();
    }
    row.trigger_type = Some(body.trigger_type.clone());
    if body.trigger_operator.is_some() {
        row.trigger_operator = body.trigger_operator.clone();
    }
    if body.trigger_value.is_some() {
        row.trigger_value = body.trigger_value.clone();
    }
    row.settings = settings_json(&body.settings.clone().or(&setting_fields(&row.settings)));
    row.params = Value::Object(stored_params).to_string();
    row.secret = seal_secrets(&state.secrets, &instance.id, &stored_secrets)?;
    row.updated_at = now_ms();
    check_bot(p, &state, &mut tx, &row, &all).await?;
    tx.put_bot(&row).await?;
    tx.commit().await?;
    state.bots.directory.invalidate(&instance.id);
    ok(StatusCode::OK, record(p, &state, &row)?)
}

async fn remove(p: &'static BotProduct, state: AppState, instance: Instance, id: String) -> Answer {
    check_enabled(p, &state)?;
    let mut tx = state.db.begin().await?;
    if owned_bot(&mut tx, p, &instance, &id).await?.is_none() {
        return Err(not_found(p));
    }
    tx.delete_bot(&instance.id, &id).await?;
    tx.commit().await?;
    state.bots.directory.invalidate(&instance.id);
    ok(StatusCode::OK, json!({"bot": {"id": id}}))
}

async fn settings(
    p: &'static BotProduct,
    state: AppState,
    instance: Instance,
    body: Result<Value, ApiError>,
) -> Answer {
    let body = validate_bot_settings(p, &body?)?;
    check_enabled(p, &state)?;
    let mut tx = state.db.begin().await?;
    let now = now_ms();
    let existing = tx.get_bot_settings(&instance.id, p.kind).await?;
    let fallback_id = match body.fallback_id {
        None => existing.as_ref().and_then(|r| r.fallback_id.clone()),
        Some(None) => None,
        Some(Some(id)) => {
            if owned_bot(&mut tx, p, &instance, &id).await?.is_none() {
                return Err(bad("Fallback bot not found"));
            }
            Some(id)
        }
    };
    if let Some(id) = body.extra.get("openaiCredsId").and_then(Value::as_str)
        && !tx
            .list_openai_creds(&instance.id)
            .await?
            .iter()
            .any(|c| c.id == id)
    {
        return Err(bad("Openai Creds not found"));
    }
    let row = match existing {
        Some(mut row) => {
            row.settings = settings_json(&body.settings.or(&setting_fields(&row.settings)));
            row.fallback_id = fallback_id;
            let mut extra: Map<String, Value> =
                serde_json::from_str(&row.extra).unwrap_or_default();
            extra.extend(body.extra);
            row.extra = Value::Object(extra).to_string();
            row.updated_at = now;
            row
        }
        None => BotSettingsRow {
            id: new_uuid(),
            instance_id: instance.id.clone(),
            kind: p.kind.to_owned(),
            settings: settings_json(&body.settings.with_column_defaults()),
            fallback_id,
            extra: Value::Object(body.extra).to_string(),
            created_at: now,
            updated_at: now,
        },
    };
    tx.put_bot_settings(&row).await?;
    tx.commit().await?;
    state.bots.directory.invalidate(&instance.id);
    ok(
        StatusCode::OK,
        settings_row(p, &settings_record(&row), None),
    )
}

async fn fetch_settings(p: &'static BotProduct, state: AppState, instance: Instance) -> Answer {
    check_enabled(p, &state)?;
    let mut tx = state.db.begin().await?;
    let Some(row) = tx.get_bot_settings(&instance.id, p.kind).await? else {
        tx.rollback().await?;
        return ok(StatusCode::OK, default_settings());
    };
    let fallback = match &row.fallback_id {
        Some(id) => owned_bot(&mut tx, p, &instance, id).await?,
        None => None,
    };
    tx.rollback().await?;
    let fallback = match fallback {
        Some(bot) => Some(record(p, &state, &bot)?),
        None => None,
    };
    ok(
        StatusCode::OK,
        settings_row(p, &settings_record(&row), Some(fallback)),
    )
}

async fn change_status(
    p: &'static BotProduct,
    state: AppState,
    instance: Instance,
    body: Result<Value, ApiError>,
) -> Answer {
    let body = validate_bot_status(&body?)?;
    check_enabled(p, &state)?;
    let store = &state.bots.store;
    let jid = body.remote_jid.as_str();
    let storage = |e: zapin_bots::StoreError| {
        tracing::error!("request failed: {e}");
        ApiError::from(ErrorEnvelope::internal([format!(
            "Error changing {} status",
            p.name
        )]))
    };
    let (status, keep) = match body.status.as_str() {
        "delete" => {
            store
                .delete_for_contact(&instance.id, jid)
                .await
                .map_err(storage)?;
            return ok(
                StatusCode::OK,
                json!({"bot": {"remoteJid": jid, "status": "delete"}}),
            );
        }
        "closed" => {
            let mut tx = state.db.begin().await?;
            let keep_open = tx
                .get_bot_settings(&instance.id, p.kind)
                .await?
                .and_then(|r| setting_fields(&r.settings).keep_open)
                .unwrap_or(false);
            tx.rollback().await?;
            (SessionStatus::Closed, keep_open)
        }
        "paused" => (SessionStatus::Paused, true),
        _ => (SessionStatus::Opened, true),
    };
    let count = if keep {
        store
            .set_status_for_contact(
                &instance.id,
                jid,
                status,
                u64::try_from(now_ms()).unwrap_or(0),
            )
            .await
            .map_err(storage)?
    } else {
        store
            .delete_for_contact(&instance.id, jid)
            .await
            .map_err(storage)?
    };
    let mut bot = json!({"remoteJid": jid, "status": body.status});
    if status != SessionStatus::Closed {
        bot["session"] = json!({"count": count});
    }
    ok(
        StatusCode::OK,
        json!({"bot": {"instanceName": instance.name, "bot": bot}}),
    )
}

async fn fetch_sessions(
    p: &'static BotProduct,
    state: AppState,
    instance: Instance,
    id: String,
) -> Answer {
    check_enabled(p, &state)?;
    let mut tx = state.db.begin().await?;
    let bot = tx.get_bot(&id).await?;
    tx.rollback().await?;
    if bot.as_ref().is_some_and(|b| b.instance_id != instance.id) {
        return Err(not_found(p));
    }
    let sessions = state
        .bots
        .store
        .list(&instance.id, bot.as_ref().map(|b| b.id.as_str()))
        .await
        .map_err(|e| {
            tracing::error!("request failed: {e}");
            ApiError::from(ErrorEnvelope::internal(["Error fetching sessions"]))
        })?;
    let rows: Vec<OrderedObject> = sessions
        .iter()
        .filter(|s| s.kind == p.kind && s.bot_id.is_some())
        .map(|s| {
            session_row(&SessionRecord {
                id: s.id.clone(),
                session_id: s.session_id.clone(),
                remote_jid: s.remote_jid.clone(),
                push_name: s.push_name.clone(),
                status: s.status.as_str().to_owned(),
                await_user: s.await_user,
                context: s.context.clone(),
                kind: s.kind.clone(),
                created_at: iso(i64::try_from(s.created_at).unwrap_or(i64::MAX)),
                updated_at: iso(i64::try_from(s.updated_at).unwrap_or(i64::MAX)),
                instance_id: instance.id.clone(),
                bot_id: s.bot_id.clone(),
            })
        })
        .collect();
    ok(StatusCode::OK, rows)
}

async fn ignore_jid(
    p: &'static BotProduct,
    state: AppState,
    instance: Instance,
    body: Result<Value, ApiError>,
) -> Answer {
    let body = validate_bot_ignore_jid(&body?)?;
    check_enabled(p, &state)?;
    let mut tx = state.db.begin().await?;
    let Some(mut row) = tx.get_bot_settings(&instance.id, p.kind).await? else {
        return Err(bad("Settings not found"));
    };
    let mut fields = setting_fields(&row.settings);
    let mut jids = fields.ignore_jids.take().unwrap_or_default();
    if body.add {
        if !jids.contains(&body.remote_jid) {
            jids.push(body.remote_jid);
        }
    } else {
        jids.retain(|j| *j != body.remote_jid);
    }
    fields.ignore_jids = Some(jids.clone());
    row.settings = settings_json(&fields);
    row.updated_at = now_ms();
    tx.put_bot_settings(&row).await?;
    tx.commit().await?;
    state.bots.directory.invalidate(&instance.id);
    ok(StatusCode::OK, json!({"ignoreJids": jids}))
}

fn creds_row(state: &AppState, row: &OpenaiCredsRow) -> Result<OrderedObject, ApiError> {
    let key = state.secrets.open(&row.instance_id, &row.secret)?;
    Ok(OrderedObject(vec![
        ("id".into(), row.id.clone().into()),
        ("name".into(), row.name.clone().into()),
        ("apiKey".into(), key.as_str().into()),
        ("createdAt".into(), iso(row.created_at).into()),
        ("updatedAt".into(), iso(row.updated_at).into()),
        ("instanceId".into(), row.instance_id.clone().into()),
    ]))
}

/// `POST /openai/creds/{instance}` `{name, apiKey}` → 201 the credentials row. The name and the
/// key must be new on the instance (Evolution checks the key across every instance, which tells
/// one tenant about another's keys; zapin checks within the instance).
async fn creds_create(
    state: AppState,
    instance: Instance,
    body: Result<Value, ApiError>,
) -> Answer {
    let body = validate_openai_creds(&body?)?;
    check_enabled(&OPENAI, &state)?;
    let mut tx = state.db.begin().await?;
    for row in tx.list_openai_creds(&instance.id).await? {
        let key = state.secrets.open(&row.instance_id, &row.secret)?;
        if *key == body.api_key {
            return Err(bad(
                "This API key is already registered. Please use a different API key.",
            ));
        }
        if row.name == body.name {
            return Err(bad(
                "This credential name is already in use. Please choose a different name.",
            ));
        }
    }
    let now = now_ms();
    let row = OpenaiCredsRow {
        id: new_uuid(),
        instance_id: instance.id.clone(),
        name: body.name,
        secret: state.secrets.seal(&instance.id, &body.api_key)?,
        created_at: now,
        updated_at: now,
    };
    tx.put_openai_creds(&row).await?;
    tx.commit().await?;
    ok(StatusCode::CREATED, creds_row(&state, &row)?)
}

/// `GET /openai/creds/{instance}` → the instance's credentials, each with the bots using it
/// (`OpenaiAssistant`).
async fn creds_find(state: AppState, instance: Instance) -> Answer {
    check_enabled(&OPENAI, &state)?;
    let mut tx = state.db.begin().await?;
    let creds = tx.list_openai_creds(&instance.id).await?;
    let bots = tx.list_bots(&instance.id, Some(OPENAI.kind)).await?;
    tx.rollback().await?;
    let mut out = Vec::new();
    for row in &creds {
        let mut o = creds_row(&state, row)?;
        let mut using = Vec::new();
        for bot in &bots {
            let params: Map<String, Value> = serde_json::from_str(&bot.params).unwrap_or_default();
            if params.get("openaiCredsId").and_then(Value::as_str) == Some(row.id.as_str()) {
                using.push(
                    serde_json::to_value(record(&OPENAI, &state, bot)?).unwrap_or(Value::Null),
                );
            }
        }
        o.0.push(("OpenaiAssistant".into(), Value::Array(using)));
        out.push(o);
    }
    ok(StatusCode::OK, out)
}

/// `DELETE /openai/creds/{openaiCredsId}/{instance}` → `{openaiCreds:{id}}`; the bots using
/// the credentials go with them (Evolution's cascade) and a settings row naming them forgets
/// them.
async fn creds_delete(state: AppState, instance: Instance, id: String) -> Answer {
    check_enabled(&OPENAI, &state)?;
    let mut tx = state.db.begin().await?;
    if !tx
        .list_openai_creds(&instance.id)
        .await?
        .iter()
        .any(|c| c.id == id)
    {
        return Err(ErrorEnvelope::not_found(["Openai Creds not found"]).into());
    }
    for bot in tx.list_bots(&instance.id, Some(OPENAI.kind)).await? {
        let params: Map<String, Value> = serde_json::from_str(&bot.params).unwrap_or_default();
        if params.get("openaiCredsId").and_then(Value::as_str) == Some(id.as_str()) {
            tx.delete_bot(&instance.id, &bot.id).await?;
        }
    }
    if let Some(mut row) = tx.get_bot_settings(&instance.id, OPENAI.kind).await? {
        let mut extra: Map<String, Value> = serde_json::from_str(&row.extra).unwrap_or_default();
        if extra.get("openaiCredsId").and_then(Value::as_str) == Some(id.as_str()) {
            extra.remove("openaiCredsId");
            row.extra = Value::Object(extra).to_string();
            tx.put_bot_settings(&row).await?;
        }
    }
    tx.delete_openai_creds(&instance.id, &id).await?;
    tx.commit().await?;
    state.bots.directory.invalidate(&instance.id);
    ok(StatusCode::OK, json!({"openaiCreds": {"id": id}}))
}

/// `GET /openai/getModels/{instance}[?openaiCredsId=]` → the `data` of OpenAI's `GET /models`,
/// with the named credentials or those of the settings row.
async fn get_models(state: AppState, instance: Instance, creds_id: Option<String>) -> Answer {
    check_enabled(&OPENAI, &state)?;
    let mut tx = state.db.begin().await?;
    let creds = tx.list_openai_creds(&instance.id).await?;
    let settings = tx.get_bot_settings(&instance.id, OPENAI.kind).await?;
    tx.rollback().await?;
    let row = match creds_id.filter(|c| !c.is_empty()) {
        Some(id) => creds
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| bad("OpenAI credentials not found for the provided ID"))?,
        None => {
            let settings = settings.ok_or_else(|| bad("Settings not found"))?;
            let extra: Map<String, Value> =
                serde_json::from_str(&settings.extra).unwrap_or_default();
            let id = extra.get("openaiCredsId").and_then(Value::as_str);
            creds.iter().find(|c| Some(c.id.as_str()) == id).ok_or_else(|| {
                bad("OpenAI credentials not found. Please create credentials and associate them with the settings.")
            })?
        }
    };
    let key = state.secrets.open(&row.instance_id, &row.secret)?;
    let failed = |e: &dyn std::fmt::Display| {
        tracing::warn!(instance = %instance.name, error = %e, "openai: listing models failed");
        ApiError::from(ErrorEnvelope::internal(["Error fetching models"]))
    };
    let response = state
        .bots
        .http
        .get(format!("{}/models", state.config.openai_base_url))
        .bearer_auth(key.as_str())
        .send()
        .await
        .map_err(|e| failed(&e.without_url()))?
        .error_for_status()
        .map_err(|e| failed(&e.without_url()))?;
    let models: Value = response
        .json()
        .await
        .map_err(|e| failed(&e.without_url()))?;
    ok(
        StatusCode::OK,
        models.get("data").cloned().unwrap_or(Value::Null),
    )
}
