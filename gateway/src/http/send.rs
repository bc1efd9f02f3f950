//! The send routes beyond sendText (contract §3.3): sendMedia and the other content sends.
//! Each validates (compat-evolution), checks the recipient is on WhatsApp (Evolution's 400
//! with the lookup object otherwise), takes and uploads its file if it has one, and then goes
//! through the same reserve-before-the-wire path as sendText ([`crate::runtime::sends`]).

use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::numbers::{NumberKind, classify};
use zapin_compat_evolution::request::{
    MediaSource, MediaType, SendMeta, multipart_field, resolve_mimetype, sniff_mimetype,
    validate_delete_for_everyone, validate_get_base64, validate_offer_call, validate_send_audio,
    validate_send_contact, validate_send_location, validate_send_media, validate_send_poll,
    validate_send_ptv, validate_send_reaction, validate_send_sticker, validate_update_message,
};
use zapin_compat_evolution::response::MessageRecord;
use zapin_engine::media::MediaKind;
use zapin_engine::messaging::MessagingError;
use zapin_engine::messaging::content::{
    MediaFields, contacts_message, edit_message, location_message, media_message, poll_message,
    reaction_message, revoke_message,
};
use zapin_engine::{ChatState, EngineError, SessionHandle};
use zapin_protocol::proto::wa;

use super::body::JsonBody;
use super::guard::Authorized;
use super::session::{SEND_PRESENCE_MAX_DELAY, engine, open_session, to_jid};
use super::{ApiError, AppState};
use crate::db::Instance;
use crate::media::fetch::{FetchLimits, fetch};
use crate::media::{MediaFile, MediaInputError, Sink, from_base64, ogg, picture};
use crate::runtime::bridge::Bridge;
use crate::runtime::sends::{self, Outgoing, SendError};

type Created = (StatusCode, Json<MessageRecord>);

pub(crate) fn bridge(state: &AppState) -> Result<Bridge, ApiError> {
    Ok(Bridge {
        runtime: engine(state)?.clone(),
        db: state.db.clone(),
        config: state.config.clone(),
        tokens: state.tokens.clone(),
    })
}

/// Evolution's answer for a number that is not on WhatsApp (contract §3.3 step 2).
pub(crate) fn not_on_whatsapp(number: &str, jid: &str) -> ApiError {
    ErrorEnvelope::bad_request_objects(vec![json!({
        "jid": jid,
        "exists": false,
        "number": number,
    })])
    .into()
}

/// Whether a user JID's user part can be a phone number at all (no round trip).
fn plausible_user(jid: &str) -> bool {
    match jid.strip_suffix("@s.whatsapp.net") {
        Some(user) => {
            !user.is_empty() && user.len() <= 20 && user.bytes().all(|b| b.is_ascii_digit())
        }
        None => true,
    }
}

/// Refuses numbers that cannot be on WhatsApp before any round trip (`abc`, `+`, `""`).
pub(crate) fn check_shape(number: &str, jid: &str) -> Result<(), ApiError> {
    if plausible_user(jid) {
        Ok(())
    } else {
        Err(not_on_whatsapp(number, jid))
    }
}

/// Asks the server whether `jid` is on WhatsApp (a usync lookup for a user, with the BR/MX/AR
/// variants whatsappNumbers tries, the metadata for a group) before a file is uploaded for it,
/// and answers the JID to send to (the variant that exists). LIDs and broadcast lists pass.
pub(crate) async fn check_recipient(
    session: &SessionHandle,
    number: &str,
    jid: &str,
) -> Result<String, ApiError> {
    check_shape(number, jid)?;
    if let Some(user) = jid.strip_suffix("@s.whatsapp.net") {
        let mut candidates = vec![user.to_owned()];
        if let NumberKind::User {
            candidates: more, ..
        } = classify(user)
        {
            for c in more {
                if !candidates.contains(&c) {
                    candidates.push(c);
                }
            }
        }
        return match session.on_whatsapp(&candidates).await {
            Ok(found) => found
                .iter()
                .find(|c| c.exists)
                .map(|c| c.jid.to_string())
                .ok_or_else(|| not_on_whatsapp(number, jid)),
            Err(EngineError::InvalidPhone(_)) => Err(not_on_whatsapp(number, jid)),
            Err(err) => Err(engine_error(err)),
        };
    }
    if jid.ends_with("@g.us") {
        return match session.group_info(jid).await {
            Ok(Some(_)) => Ok(jid.to_owned()),
            Ok(None) | Err(EngineError::InvalidJid(_)) => Err(not_on_whatsapp(number, jid)),
            Err(err) => Err(engine_error(err)),
        };
    }
    Ok(jid.to_owned())
}

/// A send's failure: a recipient the send found missing is Evolution's not-on-WhatsApp 400;
/// other messaging failures are the caller's 400 with their text (contract §3.3 step 5).
pub(crate) fn send_failure(number: &str, jid: &str, err: SendError) -> ApiError {
    match err {
        SendError::Engine(EngineError::Messaging(MessagingError::NoDevices(_)))
        | SendError::Engine(EngineError::InvalidJid(_)) => not_on_whatsapp(number, jid),
        SendError::Engine(EngineError::Messaging(MessagingError::Iq {
            code: 403 | 404 | 406,
            ..
        })) if jid.ends_with("@g.us") => not_on_whatsapp(number, jid),
        SendError::Engine(err @ (EngineError::Messaging(_) | EngineError::Media(_))) => {
            ErrorEnvelope::bad_request([err.to_string()]).into()
        }
        SendError::Engine(err) => engine_error(err),
        SendError::Db(err) => err.into(),
        SendError::BadRequest => ErrorEnvelope::bad_request(["invalid request"]).into(),
    }
}

fn engine_error(err: EngineError) -> ApiError {
    match err {
        EngineError::NotConnected | EngineError::SessionGone | EngineError::InvalidJid(_) => {
            ErrorEnvelope::bad_request([err.to_string()]).into()
        }
        other => {
            tracing::error!("engine request failed: {other}");
            ErrorEnvelope::internal([other.to_string()]).into()
        }
    }
}

/// `delay`: shows "composing" (or "recording" for audio) in the chat for that long, then
/// "paused", as Evolution does before a send. Capped like sendPresence; best effort (a
/// presence that does not go out does not stop the message).
pub(crate) async fn show_typing(
    session: &SessionHandle,
    jid: &str,
    delay_ms: Option<i64>,
    recording: bool,
) {
    let Some(ms) = delay_ms.filter(|d| *d > 0) else {
        return;
    };
    let wait = Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(SEND_PRESENCE_MAX_DELAY);
    let _ = session.subscribe_presence(jid).await;
    let state = if recording {
        ChatState::Recording
    } else {
        ChatState::Composing
    };
    let _ = session.send_chat_presence(jid, state).await;
    tokio::time::sleep(wait).await;
    let _ = session.send_chat_presence(jid, ChatState::Paused).await;
}

/// Sends prepared content for `instance` through the reservation path.
pub(crate) async fn send_content(
    state: &AppState,
    instance: Instance,
    session: SessionHandle,
    number: &str,
    message: wa::Message,
    meta: &SendMeta,
    request: &Value,
) -> Result<Created, ApiError> {
    let jid = to_jid(number);
    let bridge = bridge(state)?;
    let outgoing = Outgoing::content(&bridge, &instance, number, message, meta)
        .await
        .map_err(|e| send_failure(number, &jid, e))?;
    let stored = outgoing.stored_request(request);
    let record = sends::send_new(&bridge, instance, session, outgoing, stored)
        .await
        .map_err(|e| send_failure(number, &jid, e))?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// A multipart `file` part and what its headers said.
#[derive(Debug)]
pub(crate) struct FilePart {
    pub file: MediaFile,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
}

/// The body of a media route: JSON, or `multipart/form-data` whose text fields become the JSON
/// fields (as strings, numbers and booleans where the route expects them) and whose `file`
/// part is streamed to a temporary file.
pub(crate) async fn read_media_request(
    req: Request,
    max: u64,
) -> Result<(Value, Option<FilePart>), ApiError> {
    let multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let JsonBody(body) = JsonBody::from_request(req, &())
            .await
            .unwrap_or_else(|e| match e {});
        return Ok((body?, None));
    }
    let bad = |e: String| ApiError::from(ErrorEnvelope::bad_request([e]));
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| bad(e.body_text()))?;
    let mut fields = Map::new();
    let mut file = None;
    while let Some(mut field) = form.next_field().await.map_err(|e| bad(e.body_text()))? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let mut sink = Sink::new(max).await.map_err(input_error)?;
            while let Some(chunk) = field.chunk().await.map_err(|e| bad(e.body_text()))? {
                sink.write(&chunk).await.map_err(input_error)?;
            }
            file = Some(FilePart {
                file: sink.finish().await.map_err(input_error)?,
                file_name,
                content_type,
            });
        } else {
            let text = field.text().await.map_err(|e| bad(e.body_text()))?;
            fields.insert(name.clone(), multipart_field(&name, text));
        }
    }
    Ok((Value::Object(fields), file))
}

fn input_error(e: MediaInputError) -> ApiError {
    ErrorEnvelope::from(e).into()
}

/// The file of a media route: the multipart part, else `media` fetched or decoded.
pub(crate) async fn take_file(
    state: &AppState,
    part: Option<FilePart>,
    source: Option<&MediaSource>,
) -> Result<(MediaFile, Option<String>, Option<String>), ApiError> {
    let config = &state.config;
    if let Some(p) = part {
        return Ok((p.file, p.file_name, p.content_type));
    }
    match source {
        Some(MediaSource::Url(url)) => {
            let limits = FetchLimits {
                max_bytes: config.media_max_bytes,
                timeout: config.media_fetch_timeout,
                allow_private: config.allow_private_urls,
            };
            let file = fetch(url, limits).await.map_err(input_error)?;
            Ok((file, url_file_name(url), None))
        }
        Some(MediaSource::Base64 { data, mimetype }) => {
            let file = from_base64(data, config.media_max_bytes)
                .await
                .map_err(input_error)?;
            Ok((file, None, mimetype.clone()))
        }
        None => {
            Err(
                ErrorEnvelope::bad_request([zapin_compat_evolution::request::NOT_URL_OR_BASE64])
                    .into(),
            )
        }
    }
}

/// The last path segment of a URL, when it looks like a file name.
fn url_file_name(url: &str) -> Option<String> {
    let path = reqwest::Url::parse(url).ok()?.path().to_owned();
    let last = path.rsplit('/').next()?.to_owned();
    (!last.is_empty() && last.len() <= 255).then_some(last)
}

fn kind_of(t: MediaType) -> MediaKind {
    match t {
        MediaType::Image => MediaKind::Image,
        MediaType::Video => MediaKind::Video,
        MediaType::Audio => MediaKind::Audio,
        MediaType::Document => MediaKind::Document,
    }
}

/// `POST /message/sendMedia/{instance}` → 201 message record (`PENDING`): JSON with `media`
/// (URL, base64 or `data:` URI) or multipart with a `file` part.
pub async fn send_media(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<Created, ApiError> {
    let (body, part) = read_media_request(req, state.config.media_max_bytes).await?;
    let req = validate_send_media(&body, part.is_some())?;
    let session = open_session(&state, &instance)?;
    let jid = check_recipient(&session, &req.number, &to_jid(&req.number)).await?;
    let (file, source_name, source_mime) = take_file(&state, part, req.media.as_ref()).await?;
    let file_name = req.file_name.clone().or(source_name);
    let given = req
        .mimetype
        .clone()
        .or(source_mime.filter(|m| m != "application/octet-stream"));
    let mimetype = resolve_mimetype(
        req.mediatype,
        given.as_deref(),
        file_name.as_deref(),
        &file.head,
    )?;
    let mut fields = MediaFields {
        mimetype,
        caption: req.caption.clone(),
        ..Default::default()
    };
    match req.mediatype {
        MediaType::Image => {
            let pic = picture::inspect(&file)
                .await
                .map_err(|e| ApiError::from(ErrorEnvelope::bad_request([e.to_string()])))?;
            fields.width = Some(pic.width);
            fields.height = Some(pic.height);
            fields.jpeg_thumbnail = Some(pic.jpeg_thumbnail);
        }
        MediaType::Document => {
            fields.file_name =
                Some(file_name.unwrap_or_else(|| req.mediatype.default_file_name().to_owned()));
        }
        MediaType::Video | MediaType::Audio => {}
    }
    show_typing(
        &session,
        &jid,
        req.meta.delay,
        req.mediatype == MediaType::Audio,
    )
    .await;
    let reader = file.reader().await.map_err(|e| input_error(e.into()))?;
    let upload = session
        .upload_media(kind_of(req.mediatype), reader)
        .await
        .map_err(|e| send_failure(&req.number, &jid, SendError::Engine(e)))?;
    let message = media_message(&upload, false, fields);
    send_content(&state, instance, session, &jid, message, &req.meta, &body).await
}

/// Uploads `file` as `kind`.
async fn upload(
    session: &SessionHandle,
    kind: MediaKind,
    file: &MediaFile,
    number: &str,
    jid: &str,
) -> Result<zapin_engine::media::MediaUpload, ApiError> {
    let reader = file.reader().await.map_err(|e| input_error(e.into()))?;
    session
        .upload_media(kind, reader)
        .await
        .map_err(|e| send_failure(number, jid, SendError::Engine(e)))
}

/// `POST /message/sendWhatsAppAudio/{instance}`: a voice note (`ptt`). Ogg/Opus is sent as
/// it is, with its length; zapin has no audio converter, so any other format is a 400 that
/// says so (Evolution converts with ffmpeg).
pub async fn send_whatsapp_audio(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<Created, ApiError> {
    let (body, part) = read_media_request(req, state.config.media_max_bytes).await?;
    let req = validate_send_audio(&body, part.is_some())?;
    let session = open_session(&state, &instance)?;
    let jid = check_recipient(&session, &req.number, &to_jid(&req.number)).await?;
    let (file, _, _) = take_file(&state, part, req.media.as_ref()).await?;
    if !ogg::is_ogg_opus(&file.head) {
        let found = sniff_mimetype(&file.head).unwrap_or("an unknown format");
        return Err(ErrorEnvelope::bad_request([format!(
            "voice notes must be Ogg/Opus: this file is {found}, and this server has no audio converter"
        )])
        .into());
    }
    let fields = MediaFields {
        mimetype: "audio/ogg; codecs=opus".to_owned(),
        seconds: ogg::opus_seconds(&file).await,
        ptt: true,
        ..Default::default()
    };
    show_typing(&session, &jid, req.meta.delay, true).await;
    let uploaded = upload(&session, MediaKind::Audio, &file, &req.number, &jid).await?;
    let message = media_message(&uploaded, false, fields);
    send_content(&state, instance, session, &jid, message, &req.meta, &body).await
}

/// `POST /message/sendSticker/{instance}`: WebP as it is; PNG, JPEG or GIF (first frame)
/// converted to a 512×512 WebP unless `notConvertSticker` (then only WebP is accepted).
pub async fn send_sticker(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<Created, ApiError> {
    let (body, part) = read_media_request(req, state.config.media_max_bytes).await?;
    let req = validate_send_sticker(&body, part.is_some())?;
    let session = open_session(&state, &instance)?;
    let jid = check_recipient(&session, &req.number, &to_jid(&req.number)).await?;
    let (file, _, _) = take_file(&state, part, req.media.as_ref()).await?;
    let bad = |e: String| ApiError::from(ErrorEnvelope::bad_request([e]));
    let file = match sniff_mimetype(&file.head) {
        Some("image/webp") => file,
        Some("image/png" | "image/jpeg" | "image/gif") if req.convert => {
            let webp = picture::to_sticker_webp(&file)
                .await
                .map_err(|e| bad(e.to_string()))?;
            let mut sink = Sink::new(state.config.media_max_bytes)
                .await
                .map_err(input_error)?;
            sink.write(&webp).await.map_err(input_error)?;
            sink.finish().await.map_err(input_error)?
        }
        other => {
            return Err(bad(format!(
                "a sticker must be WebP{}: this file is {}",
                if req.convert {
                    ", PNG, JPEG or GIF"
                } else {
                    " (notConvertSticker is set)"
                },
                other.unwrap_or("an unknown format")
            )));
        }
    };
    let pic = picture::inspect(&file)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let fields = MediaFields {
        mimetype: "image/webp".to_owned(),
        width: Some(pic.width),
        height: Some(pic.height),
        ..Default::default()
    };
    show_typing(&session, &jid, req.meta.delay, false).await;
    let uploaded = upload(&session, MediaKind::Image, &file, &req.number, &jid).await?;
    let message = media_message(&uploaded, true, fields);
    send_content(&state, instance, session, &jid, message, &req.meta, &body).await
}

/// A JSON body, or its error.
async fn json_body(req: Request) -> Result<Value, ApiError> {
    let JsonBody(body) = JsonBody::from_request(req, &())
        .await
        .unwrap_or_else(|e| match e {});
    body
}

/// `POST /message/sendLocation/{instance}`.
pub async fn send_location(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<Created, ApiError> {
    let body = json_body(req).await?;
    let req = validate_send_location(&body)?;
    let session = open_session(&state, &instance)?;
    check_shape(&req.number, &to_jid(&req.number))?;
    show_typing(&session, &to_jid(&req.number), req.meta.delay, false).await;
    let message = location_message(req.latitude, req.longitude, &req.name, &req.address);
    send_content(
        &state,
        instance,
        session,
        &req.number,
        message,
        &req.meta,
        &body,
    )
    .await
}

/// `POST /message/sendContact/{instance}`: one vCard 3.0 per contact, as Evolution builds it.
pub async fn send_contact(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<Created, ApiError> {
    let body = json_body(req).await?;
    let req = validate_send_contact(&body)?;
    let session = open_session(&state, &instance)?;
    check_shape(&req.number, &to_jid(&req.number))?;
    show_typing(&session, &to_jid(&req.number), req.meta.delay, false).await;
    let cards: Vec<(String, String)> = req
        .contacts
        .iter()
        .map(|c| (c.full_name.clone(), c.vcard()))
        .collect();
    let message = contacts_message(&cards);
    send_content(
        &state,
        instance,
        session,
        &req.number,
        message,
        &req.meta,
        &body,
    )
    .await
}

/// `POST /message/sendPoll/{instance}`: a poll with a fresh 32-byte message secret.
pub async fn send_poll(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<Created, ApiError> {
    let body = json_body(req).await?;
    let req = validate_send_poll(&body)?;
    let session = open_session(&state, &instance)?;
    check_shape(&req.number, &to_jid(&req.number))?;
    show_typing(&session, &to_jid(&req.number), req.meta.delay, false).await;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|_| ApiError::from(ErrorEnvelope::internal(["randomness unavailable"])))?;
    let message = poll_message(&req.name, &req.values, req.selectable_count, secret);
    send_content(
        &state,
        instance,
        session,
        &req.number,
        message,
        &req.meta,
        &body,
    )
    .await
}

/// `POST /message/sendReaction/{instance}`: a reaction (`""` removes ours) in the chat of
/// `key.remoteJid`.
pub async fn send_reaction(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<Created, ApiError> {
    let body = json_body(req).await?;
    let req = validate_send_reaction(&body)?;
    let session = open_session(&state, &instance)?;
    let jid = to_jid(&req.remote_jid);
    check_shape(&req.remote_jid, &jid)?;
    let key = wa::MessageKey {
        remote_jid: Some(jid),
        from_me: Some(req.from_me),
        id: Some(req.key_id.clone()),
        participant: req.participant.as_deref().map(to_jid),
    };
    let message = reaction_message(key, &req.reaction, now_ms());
    let request = json!({"number": req.remote_jid});
    send_content(
        &state,
        instance,
        session,
        &req.remote_jid,
        message,
        &SendMeta::default(),
        &request,
    )
    .await
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Evolution's answer for a key id the instance has no message for.
fn message_not_found() -> ApiError {
    ErrorEnvelope::bad_request(["Message not found"]).into()
}

/// `POST /chat/updateMessage/{instance}` → 200 record of the edit (a `protocolMessage` of type
/// `MESSAGE_EDIT` carrying the new text). Only our own stored messages can be edited.
pub async fn update_message(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<Created, ApiError> {
    let body = json_body(req).await?;
    let req = validate_update_message(&body)?;
    let session = open_session(&state, &instance)?;
    let stored = state
        .db
        .message_by_key(&instance.id, &req.key.id)
        .await?
        .ok_or_else(message_not_found)?;
    if !stored.from_me || !req.key.from_me {
        return Err(ErrorEnvelope::bad_request(["You cannot edit others messages"]).into());
    }
    let key = wa::MessageKey {
        remote_jid: Some(stored.remote_jid.clone()),
        from_me: Some(true),
        id: Some(stored.key_id.clone()),
        participant: None,
    };
    let message = edit_message(key, &req.text, now_ms());
    let request = json!({"number": stored.remote_jid});
    let (_, record) = send_content(
        &state,
        instance,
        session,
        &stored.remote_jid,
        message,
        &SendMeta::default(),
        &request,
    )
    .await?;
    Ok((StatusCode::OK, record))
}

/// `DELETE /chat/deleteMessageForEveryone/{instance}` → 201 record of the revoke (a
/// `protocolMessage` of type `REVOKE` naming the message).
pub async fn delete_for_everyone(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<Created, ApiError> {
    let body = json_body(req).await?;
    let req = validate_delete_for_everyone(&body)?;
    let session = open_session(&state, &instance)?;
    let stored = state
        .db
        .message_by_key(&instance.id, &req.id)
        .await?
        .ok_or_else(message_not_found)?;
    let chat = to_jid(&req.remote_jid);
    let key = wa::MessageKey {
        remote_jid: Some(chat.clone()),
        from_me: Some(req.from_me),
        id: Some(stored.key_id.clone()),
        participant: req.participant.as_deref().map(to_jid),
    };
    let request = json!({"number": chat});
    send_content(
        &state,
        instance,
        session,
        &chat,
        revoke_message(key),
        &SendMeta::default(),
        &request,
    )
    .await
}

/// Bytes of a record's binary field: Evolution's `{"0":n,…}` object, an array of numbers, or
/// base64 text.
fn json_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => {
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).ok()
        }
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect(),
        Value::Object(map) => (0..map.len())
            .map(|i| {
                map.get(&i.to_string())
                    .and_then(Value::as_u64)
                    .and_then(|n| u8::try_from(n).ok())
            })
            .collect(),
        _ => None,
    }
}

/// A record's 64-bit number: `{low, high, unsigned}`, a number, or a decimal string.
fn json_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        Value::Object(o) => {
            let low = o.get("low")?.as_i64()?;
            let high = o.get("high")?.as_i64()?;
            let low = u64::from(u32::try_from(low & 0xFFFF_FFFF).ok()?);
            let high = u64::from(u32::try_from(high & 0xFFFF_FFFF).ok()?);
            Some((high << 32) | low)
        }
        _ => None,
    }
}

fn key32(v: Option<&Value>) -> Option<[u8; 32]> {
    json_bytes(v?)?.try_into().ok()
}

/// The media part of a record's `message` and what it needs for a download.
fn media_of(message: &Value) -> Option<(&'static str, &Value, zapin_engine::media::MediaRef)> {
    let (name, kind) = [
        ("imageMessage", MediaKind::Image),
        ("videoMessage", MediaKind::Video),
        ("audioMessage", MediaKind::Audio),
        ("documentMessage", MediaKind::Document),
        ("stickerMessage", MediaKind::Image),
    ]
    .into_iter()
    .find(|(name, _)| message.get(*name).is_some_and(Value::is_object))?;
    let m = message.get(name)?;
    let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    let media = zapin_engine::media::MediaRef {
        kind,
        direct_path: text("directPath"),
        url: text("url"),
        media_key: key32(m.get("mediaKey"))?,
        file_sha256: key32(m.get("fileSha256"))?,
        file_enc_sha256: key32(m.get("fileEncSha256"))?,
        file_length: m.get("fileLength").and_then(json_u64),
    };
    Some((name, m, media))
}

/// `POST /chat/getBase64FromMediaMessage/{instance}` → 201 `{mediaType, fileName, caption,
/// size{fileLength,height,width}, mimetype, base64, buffer:null}`: the media of a stored message
/// (by `message.key.id`) or of the message content in the body, downloaded, checked and
/// decrypted. `convertToMp4` is accepted and ignored (no converter).
pub async fn get_base64(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = json_body(req).await?;
    let req = validate_get_base64(&body)?;
    let session = open_session(&state, &instance)?;
    let content = match (req.content, &req.id) {
        (Some(c), _) => c,
        (None, Some(id)) => {
            state
                .db
                .message_by_key(&instance.id, id)
                .await?
                .ok_or_else(message_not_found)?
                .message
        }
        (None, None) => return Err(message_not_found()),
    };
    let (media_type, fields, media) = media_of(&content)
        .ok_or_else(|| ApiError::from(ErrorEnvelope::bad_request(["The message has no media"])))?;
    if media
        .file_length
        .is_some_and(|n| n > state.config.media_max_bytes)
    {
        return Err(input_error(MediaInputError::TooLarge {
            max: state.config.media_max_bytes,
        }));
    }
    let std_file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| input_error(std::io::Error::other(e.to_string()).into()))?
        .map_err(|e| input_error(e.into()))?;
    let mut out = tokio::fs::File::from_std(std_file);
    session
        .download_media(&media, &mut out)
        .await
        .map_err(|e| ApiError::from(ErrorEnvelope::bad_request([e.to_string()])))?;
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    out.seek(std::io::SeekFrom::Start(0))
        .await
        .map_err(|e| input_error(e.into()))?;
    let mut plain = Vec::new();
    out.read_to_end(&mut plain)
        .await
        .map_err(|e| input_error(e.into()))?;
    let get = |k: &str| fields.get(k).cloned().unwrap_or(Value::Null);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "mediaType": media_type,
            "fileName": get("fileName"),
            "caption": get("caption"),
            "size": {"fileLength": get("fileLength"), "height": get("height"), "width": get("width")},
            "mimetype": get("mimetype"),
            "base64": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &plain),
            "buffer": Value::Null,
        })),
    ))
}

/// `POST /message/sendPtv/{instance}`: a round video note (`ptvMessage`), MP4 as it is.
pub async fn send_ptv(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    req: Request,
) -> Result<Created, ApiError> {
    let (body, part) = read_media_request(req, state.config.media_max_bytes).await?;
    let req = validate_send_ptv(&body, part.is_some())?;
    let session = open_session(&state, &instance)?;
    let jid = check_recipient(&session, &req.number, &to_jid(&req.number)).await?;
    let (file, _, _) = take_file(&state, part, req.media.as_ref()).await?;
    let mimetype = resolve_mimetype(MediaType::Video, None, None, &file.head)?;
    let fields = MediaFields {
        mimetype,
        ptv: true,
        ..Default::default()
    };
    show_typing(&session, &jid, req.meta.delay, true).await;
    let uploaded = upload(&session, MediaKind::Video, &file, &req.number, &jid).await?;
    let message = media_message(&uploaded, false, fields);
    send_content(&state, instance, session, &jid, message, &req.meta, &body).await
}

/// `POST /message/sendTemplate/{instance}`: templates are a Meta Cloud API feature; on a
/// WhatsApp Web (Baileys) instance Evolution answers 500 with this text, and so does zapin.
pub async fn send_template() -> ApiError {
    ErrorEnvelope::internal_text("Method not available in the Baileys service").into()
}

/// `POST /call/offer/{instance}`: Evolution's stub, `{id:"123", jid, isVideo, callDuration}`
/// with 201; no call is placed.
pub async fn offer_call(
    Extension(Authorized(_instance)): Extension<Authorized>,
    req: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = json_body(req).await?;
    let req = validate_offer_call(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": "123",
            "jid": to_jid(&req.number),
            "isVideo": req.is_video,
            "callDuration": req.call_duration,
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_fields_read_back() {
        assert_eq!(json_bytes(&json!({"0": 1, "1": 255})), Some(vec![1, 255]));
        assert_eq!(json_bytes(&json!([1, 2])), Some(vec![1, 2]));
        assert_eq!(json_bytes(&json!("AQI=")), Some(vec![1, 2]));
        assert_eq!(json_bytes(&json!({"0": 256})), None);
        assert_eq!(json_bytes(&json!({"1": 1})), None);
        assert_eq!(
            json_u64(&json!({"low": 5, "high": 1, "unsigned": true})),
            Some((1 << 32) + 5)
        );
        assert_eq!(json_u64(&json!({"low": -1, "high": 0})), Some(0xFFFF_FFFF));
        assert_eq!(json_u64(&json!("12")), Some(12));
        assert!(media_of(&json!({"conversation": "x"})).is_none());
        assert!(plausible_user("5511@s.whatsapp.net"));
        assert!(!plausible_user("@s.whatsapp.net"));
        assert!(!plausible_user("abc@s.whatsapp.net"));
        assert!(plausible_user("1@g.us"));
        assert_eq!(
            url_file_name("https://x.test/a/b.pdf?x=1").as_deref(),
            Some("b.pdf")
        );
        assert_eq!(url_file_name("https://x.test/"), None);
    }
}
