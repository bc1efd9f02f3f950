//! Routes that need a live session (contract §3.1, §4): connect, connectionState, logout,
//! restart, setPresence, sendText, whatsappNumbers, markMessageAsRead, sendPresence.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use zapin_compat_evolution::ConnectErrorBody;
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::numbers::{NumberKind, answer_rank, classify};
use zapin_compat_evolution::request::{
    Presence, validate_connect_query, validate_mark_message_as_read, validate_send_presence,
    validate_send_text, validate_set_presence, validate_whatsapp_numbers,
};
use zapin_compat_evolution::response::{
    ConnectResponse, ConnectionState as EvoState, ConnectionStateBody, InstanceStatusView,
    MarkAsReadResponse, PresenceResponse, QrCode, StatusResponse, WhatsappNumberItem,
};
use zapin_engine::{ChatState, ConnectionState, EngineError};

use super::body::JsonBody;
use super::guard::Authorized;
use super::{ApiError, AppState};
use crate::db::Instance;
use crate::runtime::EngineRuntime;
use crate::runtime::sends::{self, Outgoing};

/// How long connect waits for the first QR of a fresh connection (Evolution sleeps 2 s).
const FIRST_QR_WAIT: Duration = Duration::from_secs(2);

fn evo_state(state: ConnectionState) -> EvoState {
    match state {
        ConnectionState::Open => EvoState::Open,
        ConnectionState::Connecting => EvoState::Connecting,
        ConnectionState::Close | ConnectionState::Refused => EvoState::Close,
    }
}

pub(crate) fn engine(state: &AppState) -> Result<&Arc<EngineRuntime>, ApiError> {
    state
        .engine
        .as_ref()
        .ok_or_else(|| ErrorEnvelope::internal(["the WhatsApp engine is not running"]).into())
}

fn qr_object(runtime: &EngineRuntime, instance_id: &str) -> QrCode {
    let live = runtime.live(instance_id);
    QrCode {
        image: live.qr,
        count: live.count,
    }
}

/// Engine failures of routes that report `{error:true,message}` with HTTP 200 (§1.4).
fn connect_error(err: &EngineError) -> Response {
    (StatusCode::OK, Json(ConnectErrorBody::new(err.to_string()))).into_response()
}

/// `GET /instance/connect/{instance}[?number=]` (§4.2).
pub async fn connect(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(runtime) = state.engine.as_ref() else {
        return (
            StatusCode::OK,
            Json(ConnectErrorBody::new("the WhatsApp engine is not running")),
        )
            .into_response();
    };
    let query = validate_connect_query(query.get("number").map(String::as_str));
    let current = runtime
        .state(&instance.id)
        .unwrap_or(ConnectionState::Close);
    let body = match current {
        ConnectionState::Open => ConnectResponse::State(ConnectionStateBody::new(
            &instance.name,
            Some(EvoState::Open),
        )),
        ConnectionState::Connecting => ConnectResponse::Qr(qr_object(runtime, &instance.id)),
        ConnectionState::Close | ConnectionState::Refused => {
            if let Err(err) = runtime.connect(&instance, query.number.as_deref()).await {
                return connect_error(&err);
            }
            runtime.wait_for_qr(&instance.id, FIRST_QR_WAIT).await;
            if runtime.state(&instance.id) == Some(ConnectionState::Open) {
                ConnectResponse::State(ConnectionStateBody::new(
                    &instance.name,
                    Some(EvoState::Open),
                ))
            } else {
                ConnectResponse::Qr(qr_object(runtime, &instance.id))
            }
        }
    };
    (StatusCode::OK, Json(body)).into_response()
}

/// `GET /instance/connectionState/{instance}`: the in-memory state, omitted when the instance
/// has no session in memory.
pub async fn connection_state(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
) -> Json<ConnectionStateBody> {
    let current = state
        .engine
        .as_ref()
        .and_then(|r| r.state(&instance.id))
        .map(evo_state);
    Json(ConnectionStateBody::new(&instance.name, current))
}

/// `DELETE /instance/logout/{instance}`: 400 when closed, else unlink and answer.
pub async fn logout(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
) -> Result<Json<StatusResponse>, ApiError> {
    let runtime = engine(&state)?;
    let current = runtime
        .state(&instance.id)
        .unwrap_or(ConnectionState::Close);
    if matches!(current, ConnectionState::Close | ConnectionState::Refused) {
        return Err(ErrorEnvelope::instance_not_connected(&instance.name).into());
    }
    runtime.logout(&instance.id).await.map_err(internal)?;
    Ok(Json(StatusResponse::logged_out()))
}

/// `POST|PUT /instance/restart/{instance}`: closed → `{error:true}` (200); else reconnect and
/// answer as connect.
pub async fn restart(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
) -> Response {
    let Some(runtime) = state.engine.as_ref() else {
        return (StatusCode::OK, Json(ConnectErrorBody::object_object())).into_response();
    };
    let current = runtime
        .state(&instance.id)
        .unwrap_or(ConnectionState::Close);
    if matches!(current, ConnectionState::Close | ConnectionState::Refused) {
        return (StatusCode::OK, Json(ConnectErrorBody::object_object())).into_response();
    }
    if let Err(err) = runtime.restart(&instance).await {
        return connect_error(&err);
    }
    runtime.wait_for_qr(&instance.id, FIRST_QR_WAIT).await;
    let body = match runtime.state(&instance.id) {
        Some(ConnectionState::Open) => ConnectResponse::State(ConnectionStateBody::new(
            &instance.name,
            Some(EvoState::Open),
        )),
        Some(ConnectionState::Connecting) => ConnectResponse::Qr(qr_object(runtime, &instance.id)),
        other => ConnectResponse::Other {
            instance: InstanceStatusView {
                instance_name: instance.name.clone(),
                status: other.map_or(EvoState::Close, evo_state),
            },
            qrcode: qr_object(runtime, &instance.id),
        },
    };
    (StatusCode::OK, Json(body)).into_response()
}

/// Client mistakes the engine catches (a malformed number or JID, a lookup too large, pairing
/// an already paired device) and a session that is not there are the caller's 400; the rest is
/// ours.
fn internal(err: EngineError) -> ApiError {
    match err {
        EngineError::NotConnected
        | EngineError::NotFound(_)
        | EngineError::SessionGone
        | EngineError::InvalidPhone(_)
        | EngineError::InvalidJid(_)
        | EngineError::TooManyNumbers { .. }
        | EngineError::InvalidMessageId(_)
        | EngineError::AlreadyPaired => ErrorEnvelope::bad_request([err.to_string()]).into(),
        other => {
            tracing::error!("engine request failed: {other}");
            ErrorEnvelope::internal([other.to_string()]).into()
        }
    }
}

/// A live, open session or Evolution's "not connected" 400.
pub(crate) fn open_session(
    state: &AppState,
    instance: &Instance,
) -> Result<zapin_engine::SessionHandle, ApiError> {
    let runtime = engine(state)?;
    match runtime.session(&instance.id) {
        Some(h) if h.state() == ConnectionState::Open => Ok(h),
        _ => Err(ErrorEnvelope::instance_not_connected(&instance.name).into()),
    }
}

/// `POST /instance/setPresence/{instance}` → 201 `{presence}`. The engine sends the global
/// `available`/`unavailable`; the chat states (composing, …) need a JID and are answered
/// without being sent.
pub async fn set_presence(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<PresenceResponse>), ApiError> {
    let req = validate_set_presence(&body?)?;
    let session = open_session(&state, &instance)?;
    match req.presence {
        Presence::Available => session.send_presence(true).await.map_err(internal)?,
        Presence::Unavailable => session.send_presence(false).await.map_err(internal)?,
        _ => {}
    }
    Ok((
        StatusCode::CREATED,
        Json(PresenceResponse {
            presence: req.presence,
        }),
    ))
}

/// The longest `delay` sendPresence waits before sending `paused`.
///
/// Deviation: Evolution has no bound (it repeats the presence every 20 s for as long as asked),
/// so one request could hold its connection for minutes; zapin waits at most one such 20 s
/// period and then sends `paused` as usual.
pub const SEND_PRESENCE_MAX_DELAY: Duration = Duration::from_secs(20);

/// `POST /chat/sendPresence/{instance}` → 201 `{presence}`. Like Evolution: subscribes to the
/// chat's presence, shows `presence` there for `delay` ms (capped at
/// [`SEND_PRESENCE_MAX_DELAY`]), then sends `paused`, and answers after that. `available` and
/// `unavailable` have no chat form: they are sent as the account's global presence.
pub async fn send_presence(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<PresenceResponse>), ApiError> {
    let req = validate_send_presence(&body?)?;
    let session = open_session(&state, &instance)?;
    let jid = to_jid(&req.number);
    session.subscribe_presence(&jid).await.map_err(internal)?;
    match req.presence {
        Presence::Composing => session.send_chat_presence(&jid, ChatState::Composing).await,
        Presence::Recording => session.send_chat_presence(&jid, ChatState::Recording).await,
        Presence::Paused => session.send_chat_presence(&jid, ChatState::Paused).await,
        Presence::Available => session.send_presence(true).await,
        Presence::Unavailable => session.send_presence(false).await,
    }
    .map_err(internal)?;
    // Its own task, so a client that hangs up during the wait still gets `paused` sent.
    let wait = presence_delay(req.delay_ms);
    let paused = tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        session.send_chat_presence(&jid, ChatState::Paused).await
    });
    paused
        .await
        .map_err(|_| ApiError::from(ErrorEnvelope::internal(["Internal Server Error"])))?
        .map_err(internal)?;
    Ok((
        StatusCode::CREATED,
        Json(PresenceResponse {
            presence: req.presence,
        }),
    ))
}

/// `delay` (ms, any JSON number) as a wait: negative or NaN is none, capped at
/// [`SEND_PRESENCE_MAX_DELAY`].
fn presence_delay(delay_ms: f64) -> Duration {
    let max_ms = SEND_PRESENCE_MAX_DELAY.as_secs_f64() * 1000.0;
    if delay_ms.is_nan() || delay_ms <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(delay_ms.min(max_ms) / 1000.0)
    }
}

/// The chat a `number` names: a phone number or a JID in any form clients send (see
/// `client_tolerance::chat_jid`).
pub fn to_jid(number: &str) -> String {
    zapin_compat_evolution::client_tolerance::chat_jid(number)
}

/// `POST /message/sendText/{instance}` → 201 message record (status `PENDING`). The message row
/// is committed before anything goes on the wire and `send.message` is enqueued once the stanza
/// is written; see [`crate::runtime::sends`] for what a failure or a crash leaves.
///
/// A `delay` (ms) first shows "typing…" in the chat for that long, then `paused`, as Evolution's
/// `sendMessageWithTyping` does (n8n's node and bots set it); capped like sendPresence's.
pub async fn send_text(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<
    (
        StatusCode,
        Json<zapin_compat_evolution::response::MessageRecord>,
    ),
    ApiError,
> {
    let body = body?;
    let req = validate_send_text(&body)?;
    let session = open_session(&state, &instance)?;
    let jid = to_jid(&req.number);
    super::send::check_shape(&req.number, &jid)?;
    super::send::show_typing(&session, &jid, req.delay, false).await;
    let bridge = super::send::bridge(&state)?;
    let failure = |e| super::send::send_failure(&req.number, &jid, e);
    let outgoing = Outgoing::from_request(&bridge, &instance, &body)
        .await
        .map_err(failure)?;
    let out = sends::send_new(&bridge, instance, session, outgoing, body)
        .await
        .map_err(failure)?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `POST /chat/markMessageAsRead/{instance}` → 201 `{"message":"Read messages","read":"success"}`.
pub async fn mark_as_read(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<MarkAsReadResponse>), ApiError> {
    let items = validate_mark_message_as_read(&body?)?;
    let session = open_session(&state, &instance)?;
    let mut by_chat: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in items.into_iter().filter(|m| !m.from_me) {
        by_chat.entry(item.remote_jid).or_default().push(item.id);
    }
    for (chat, ids) in by_chat {
        session
            .mark_read(&chat, None, ids.clone())
            .await
            .map_err(internal)?;
        // The receipt went out: findChats' unread count no longer counts them.
        let mut tx = state.db.begin().await?;
        tx.mark_messages_read(&instance.id, &ids).await?;
        tx.commit().await?;
    }
    Ok((StatusCode::CREATED, Json(MarkAsReadResponse::default())))
}

/// The raw `{status:400,error:"Bad Request",message:[…]}` body with which whatsappNumbers
/// reports every failure (§1.4, §11 #4).
fn raw_bad_request(messages: impl IntoIterator<Item = String>) -> Response {
    let raw = ErrorEnvelope::bad_request(messages).into_raw();
    (StatusCode::BAD_REQUEST, Json(raw)).into_response()
}

/// `POST /chat/whatsappNumbers/{instance}` → 200 `[{jid, exists, number, name?, lid?}]`,
/// broadcasts first, then groups, then users (§3.4, §11 #21). Users are looked up with usync
/// queries (batches of the engine's limit), BR/MX/AR numbers with and without the extra mobile
/// digit. Groups are asked for their metadata: `exists:true` with the subject as `name`. A group
/// the server does not know (or we left) is `exists:false`, where Evolution fails the whole
/// request with a 400: one unknown group should not hide the answers for the other numbers.
pub async fn whatsapp_numbers(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(err) => return err.into_response(),
    };
    let req = match validate_whatsapp_numbers(&body) {
        Ok(req) => req,
        Err(raw) => return (StatusCode::BAD_REQUEST, Json(raw)).into_response(),
    };
    let session = match open_session(&state, &instance) {
        Ok(s) => s,
        Err(_) => {
            return raw_bad_request([format!(
                "The \"{}\" instance is not connected",
                instance.name
            )]);
        }
    };
    let mut kinds: Vec<(String, NumberKind)> = req
        .numbers
        .into_iter()
        .map(|n| {
            let kind = classify(&n);
            (n, kind)
        })
        .collect();
    kinds.sort_by_key(|(_, k)| answer_rank(k));
    let lookups: Vec<&str> = kinds
        .iter()
        .flat_map(|(_, k)| match k {
            NumberKind::User { candidates, .. } => candidates.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    // One usync query per batch the engine accepts (Evolution has no limit).
    let mut checks = Vec::with_capacity(lookups.len());
    for batch in lookups.chunks(zapin_engine::messaging::usync::MAX_CONTACT_QUERY) {
        match session.on_whatsapp(batch).await {
            Ok(found) => checks.extend(found),
            Err(err) => return raw_bad_request([err.to_string()]),
        }
    }
    let mut groups = HashMap::new();
    for (_, kind) in &kinds {
        if let NumberKind::Group { jid } = kind {
            match session.group_info(jid).await {
                Ok(info) => {
                    groups.insert(jid.clone(), info);
                }
                Err(err) => return raw_bad_request([err.to_string()]),
            }
        }
    }
    let names = match contact_names(&state, &instance.id).await {
        Ok(names) => names,
        Err(err) => return err.into_response(),
    };
    let items = kinds
        .into_iter()
        .map(|(number, kind)| match kind {
            NumberKind::Broadcast { jid } => WhatsappNumberItem {
                jid,
                exists: false,
                number,
                name: None,
                lid: None,
            },
            NumberKind::Group { jid } => {
                let info = groups.get(&jid).and_then(Option::as_ref);
                WhatsappNumberItem {
                    exists: info.is_some(),
                    name: info.and_then(|g| g.subject.clone()),
                    jid: info.map_or(jid, |g| g.jid.to_string()),
                    number,
                    lid: None,
                }
            }
            NumberKind::User { jid, candidates } => {
                let found = checks
                    .iter()
                    .find(|c| c.exists && candidates.contains(&c.number));
                let jid = found.map_or(jid, |c| c.jid.to_string());
                WhatsappNumberItem {
                    exists: found.is_some(),
                    name: found.and_then(|_| names.get(&jid).cloned()),
                    lid: found.and_then(|c| c.lid.as_ref()).map(ToString::to_string),
                    jid,
                    number,
                }
            }
        })
        .collect::<Vec<_>>();
    (StatusCode::OK, Json(items)).into_response()
}

/// Push names of the instance's contacts by JID (whatsappNumbers' `name`).
pub(crate) async fn contact_names(
    state: &AppState,
    instance_id: &str,
) -> Result<HashMap<String, String>, ApiError> {
    let mut tx = state.db.begin().await?;
    let contacts = tx.list_contacts(instance_id).await?;
    tx.rollback().await?;
    Ok(contacts
        .into_iter()
        .filter_map(|c| Some((c.remote_jid, c.push_name?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_delay_is_bounded() {
        assert_eq!(presence_delay(-5.0), Duration::ZERO);
        assert_eq!(presence_delay(f64::NAN), Duration::ZERO);
        assert_eq!(presence_delay(1200.0), Duration::from_millis(1200));
        assert_eq!(presence_delay(1e12), SEND_PRESENCE_MAX_DELAY);
        assert_eq!(presence_delay(f64::INFINITY), SEND_PRESENCE_MAX_DELAY);
    }
}
