//! The `/group/*` routes (contract rows 48–63) over the session's group IQs
//! ([`zapin_engine::SessionHandle::group`]).
//!
//! `groupJid` comes from the body or the query, `@g.us` appended (§3.4). Failures keep
//! Evolution's texts and statuses (`["Error fetching group", "Error: item-not-found"]` as 404,
//! `["Error updating participants", …]` as 400, …) with one deliberate difference: where
//! Evolution answers a refusal by WhatsApp (unknown group, not an admin, invalid picture) with
//! a 500 (create, subject, description, picture), zapin answers 400, because the client's
//! request was wrong, not the server. Timeouts and engine failures stay 500.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt as _;
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::request::{
    validate_create_group, validate_get_participants, validate_group_jid, validate_group_text,
    validate_invite_code, validate_send_invite, validate_send_text, validate_toggle_ephemeral,
    validate_update_participants, validate_update_setting, with_group_jid,
};
use zapin_engine::messaging::MessagingError;
use zapin_engine::messaging::group_admin::{
    GroupAnswer, GroupDetails, GroupOp, GroupSetting, ParticipantAction,
};
use zapin_engine::{EngineError, SessionHandle};
use zapin_protocol::jid::Jid;

use super::body::JsonBody;
use super::guard::Authorized;
use super::session::{contact_names, engine, open_session, to_jid};
use super::{ApiError, AppState};
use crate::db::Instance;
use crate::runtime::bridge::Bridge;
use crate::runtime::groups::{info_json, metadata_json, participant_json};
use crate::runtime::sends::{self, Outgoing};

/// Largest group picture accepted (WhatsApp keeps 640×640 JPEGs; this bounds the download).
const MAX_PICTURE_BYTES: usize = 5 * 1024 * 1024;

/// How Evolution reports a failure of this route: its status and first message.
#[derive(Debug, Clone, Copy)]
struct Failure {
    status: u16,
    title: &'static str,
}

const fn fail(status: u16, title: &'static str) -> Failure {
    Failure { status, title }
}

/// The engine's error as the route's envelope: the server's refusal (`Error: <text>`, as Boom
/// prints it) and a session that is not connected use the route's status; anything else is 500.
fn group_error(f: Failure, err: EngineError) -> ApiError {
    let detail = match &err {
        EngineError::Messaging(MessagingError::Iq { text, code }) => {
            if text.is_empty() {
                format!("Error: {code}")
            } else {
                format!("Error: {text}")
            }
        }
        EngineError::NotConnected | EngineError::InvalidJid(_) | EngineError::NotFound(_) => {
            format!("Error: {err}")
        }
        _ => {
            tracing::error!("group request failed: {err}");
            return ErrorEnvelope::internal([f.title.to_owned(), format!("Error: {err}")]).into();
        }
    };
    let messages = [f.title.to_owned(), detail];
    match f.status {
        404 => ErrorEnvelope::not_found(messages).into(),
        _ => ErrorEnvelope::bad_request(messages).into(),
    }
}

fn query_value(query: &HashMap<String, String>) -> Value {
    Value::Object(
        query
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// The body (or `{}`), with `groupJid` resolved from it or the query.
fn group_body(
    body: Result<Value, ApiError>,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let body = body?;
    Ok(with_group_jid(
        &body,
        query.get("groupJid").map(String::as_str),
    )?)
}

fn parse_group(jid: &str) -> Result<Jid, ApiError> {
    jid.parse::<Jid>()
        .ok()
        .filter(Jid::is_group)
        .ok_or_else(|| ErrorEnvelope::bad_request([format!("invalid group jid: {jid}")]).into())
}

fn user(number: &str) -> Result<Jid, ApiError> {
    to_jid(number)
        .parse::<Jid>()
        .ok()
        .filter(|j| j.is_pn() || j.is_lid())
        .ok_or_else(|| ErrorEnvelope::bad_request([format!("invalid number: {number}")]).into())
}

async fn run(session: &SessionHandle, op: GroupOp, f: Failure) -> Result<GroupAnswer, ApiError> {
    session.group(op).await.map_err(|e| group_error(f, e))
}

async fn metadata(
    session: &SessionHandle,
    group: Jid,
    f: Failure,
) -> Result<GroupDetails, ApiError> {
    match run(session, GroupOp::Metadata { group }, f).await? {
        GroupAnswer::Group(g) => Ok(*g),
        _ => Err(ErrorEnvelope::internal([f.title]).into()),
    }
}

/// `POST /group/create/{instance}` → 201 Baileys `GroupMetadata`. Participants not on WhatsApp
/// are dropped (one usync query); the description and promotion are applied, then the fresh
/// metadata is answered. None of them on WhatsApp → 400 (Evolution would make a group of one).
pub async fn create(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const F: Failure = fail(400, "Error creating group");
    let req = validate_create_group(&body?)?;
    let session = open_session(&state, &instance)?;
    let mut members = Vec::new();
    for batch in req
        .participants
        .chunks(zapin_engine::messaging::usync::MAX_CONTACT_QUERY)
    {
        let found = session
            .on_whatsapp(batch)
            .await
            .map_err(|e| group_error(F, e))?;
        members.extend(found.into_iter().filter(|c| c.exists).map(|c| c.jid));
    }
    members.dedup();
    if members.is_empty() {
        return Err(ErrorEnvelope::bad_request([
            F.title,
            "Error: none of the participants is on WhatsApp",
        ])
        .into());
    }
    let created = match run(
        &session,
        GroupOp::Create {
            subject: req.subject,
            participants: members.clone(),
        },
        F,
    )
    .await?
    {
        GroupAnswer::Group(g) => g,
        _ => return Err(ErrorEnvelope::internal([F.title]).into()),
    };
    let group = created.group_jid();
    if let Some(description) = req.description {
        run(
            &session,
            GroupOp::Description {
                group: group.clone(),
                description,
            },
            F,
        )
        .await?;
    }
    if req.promote_participants {
        run(
            &session,
            GroupOp::Participants {
                group: group.clone(),
                action: ParticipantAction::Promote,
                participants: members,
            },
            F,
        )
        .await?;
    }
    let meta = metadata(&session, group, F).await?;
    Ok((StatusCode::CREATED, Json(metadata_json(&meta))))
}

/// `POST /group/updateGroupSubject/{instance}` → 201 `{update:"success"}`.
pub async fn update_subject(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const F: Failure = fail(400, "Error updating group subject");
    let body = group_body(body, &query)?;
    let (jid, subject) = validate_group_text(&body, "subject")?;
    let group = parse_group(&jid)?;
    let session = open_session(&state, &instance)?;
    run(&session, GroupOp::Subject { group, subject }, F).await?;
    Ok((StatusCode::CREATED, Json(json!({"update": "success"}))))
}

/// `POST /group/updateGroupDescription/{instance}` → 201 `{update:"success"}`.
pub async fn update_description(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const F: Failure = fail(400, "Error updating group description");
    let body = group_body(body, &query)?;
    let (jid, description) = validate_group_text(&body, "description")?;
    let group = parse_group(&jid)?;
    let session = open_session(&state, &instance)?;
    run(&session, GroupOp::Description { group, description }, F).await?;
    Ok((StatusCode::CREATED, Json(json!({"update": "success"}))))
}

/// `POST /group/updateGroupPicture/{instance}` → 201 `{update:"success"}`. `image` is an http(s)
/// URL or base64; it must be a JPEG (WhatsApp's picture format; other formats are refused with
/// 400 rather than converted).
pub async fn update_picture(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const F: Failure = fail(400, "Error update group picture");
    let body = group_body(body, &query)?;
    let (jid, image) = validate_group_text(&body, "image")?;
    let group = parse_group(&jid)?;
    let session = open_session(&state, &instance)?;
    let bytes = picture_bytes(&state, &image).await?;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(ErrorEnvelope::bad_request([F.title, "Error: the image is not a JPEG"]).into());
    }
    run(
        &session,
        GroupOp::Picture {
            group,
            jpeg: Some(bytes),
        },
        F,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"update": "success"}))))
}

/// The picture behind `image`: downloaded when it is an http(s) URL, else base64 (optionally a
/// `data:` URL). Neither → Evolution's 400. The download goes through the media fetch, so it is
/// bounded in size and time and, unless the operator allows it (`ZAPIN_ALLOW_PRIVATE_URLS`),
/// never aimed at this machine or a private network.
pub(super) async fn picture_bytes(state: &AppState, image: &str) -> Result<Vec<u8>, ApiError> {
    let not_image = || -> ApiError {
        ErrorEnvelope::bad_request(["\"profilePicture\" must be a url or a base64"]).into()
    };
    if image.starts_with("http://") || image.starts_with("https://") {
        let limits = crate::media::fetch::FetchLimits {
            max_bytes: MAX_PICTURE_BYTES as u64,
            timeout: std::time::Duration::from_secs(20),
            allow_private: state.config.allow_private_urls,
        };
        let file = crate::media::fetch::fetch(image, limits)
            .await
            .map_err(|e| ApiError::from(ErrorEnvelope::from(e)))?;
        let io = |e: std::io::Error| {
            ApiError::from(ErrorEnvelope::from(crate::media::MediaInputError::Io(e)))
        };
        let mut bytes = Vec::with_capacity(usize::try_from(file.len).unwrap_or(0));
        file.reader()
            .await
            .map_err(io)?
            .read_to_end(&mut bytes)
            .await
            .map_err(io)?;
        return Ok(bytes);
    }
    let data = image
        .split_once(";base64,")
        .map_or(image, |(_, data)| data)
        .trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| not_image())?;
    if bytes.is_empty() || bytes.len() > MAX_PICTURE_BYTES {
        return Err(not_image());
    }
    Ok(bytes)
}

/// `GET /group/findGroupInfos/{instance}?groupJid=` → 200 group info; failure 404
/// `["Error fetching group", …]`.
pub async fn find_group_infos(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const F: Failure = fail(404, "Error fetching group");
    let body = group_body(body, &query)?;
    let group = parse_group(&validate_group_jid(&body)?)?;
    let session = open_session(&state, &instance)?;
    let meta = metadata(&session, group, F).await?;
    Ok(Json(info_json(&meta, true)))
}

/// `GET /group/fetchAllGroups/{instance}?getParticipants=true|false` → 200 `[group info]`.
pub async fn fetch_all_groups(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const F: Failure = fail(404, "Error fetching group");
    body?;
    let with_participants = validate_get_participants(&query_value(&query))?;
    let session = open_session(&state, &instance)?;
    let groups = match run(&session, GroupOp::Participating, F).await? {
        GroupAnswer::Groups(gs) => gs,
        _ => Vec::new(),
    };
    Ok(Json(Value::Array(
        groups
            .iter()
            .map(|g| info_json(g, with_participants))
            .collect(),
    )))
}

/// `GET /group/participants/{instance}?groupJid=` → 200 `{participants:[{id, admin, name?}]}`,
/// names from the instance's contacts.
pub async fn participants(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const F: Failure = fail(404, "No participants");
    let body = group_body(body, &query)?;
    let group = parse_group(&validate_group_jid(&body)?)?;
    let session = open_session(&state, &instance)?;
    let meta = metadata(&session, group, F).await?;
    let names = contact_names(&state, &instance.id).await?;
    let list: Vec<Value> = meta
        .participants
        .iter()
        .map(|p| {
            let mut v = participant_json(p);
            if let (Value::Object(m), Some(name)) = (&mut v, names.get(&p.jid.to_string())) {
                m.insert("name".to_owned(), name.clone().into());
            }
            v
        })
        .collect();
    Ok(Json(json!({ "participants": list })))
}

fn invite_url(code: &str) -> String {
    format!("https://chat.whatsapp.com/{code}")
}

/// `GET /group/inviteCode/{instance}?groupJid=` → 200 `{inviteUrl, inviteCode}`.
pub async fn invite_code(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const F: Failure = fail(404, "No invite code");
    let body = group_body(body, &query)?;
    let group = parse_group(&validate_group_jid(&body)?)?;
    let session = open_session(&state, &instance)?;
    let code = code_of(run(&session, GroupOp::InviteCode { group }, F).await?, F)?;
    Ok(Json(
        json!({"inviteUrl": invite_url(&code), "inviteCode": code}),
    ))
}

fn code_of(answer: GroupAnswer, f: Failure) -> Result<String, ApiError> {
    match answer {
        GroupAnswer::Code(c) => Ok(c),
        _ => Err(ErrorEnvelope::internal([f.title]).into()),
    }
}

/// `POST /group/revokeInviteCode/{instance}` → 201 `{revoked:true, inviteCode}`.
pub async fn revoke_invite_code(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const F: Failure = fail(404, "Revoke error");
    let body = group_body(body, &query)?;
    let group = parse_group(&validate_group_jid(&body)?)?;
    let session = open_session(&state, &instance)?;
    let code = code_of(run(&session, GroupOp::RevokeInvite { group }, F).await?, F)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"revoked": true, "inviteCode": code})),
    ))
}

/// `GET /group/inviteInfo/{instance}?inviteCode=` → 200 Baileys `GroupMetadata`; failure 404
/// `["No invite info", "<code>"]`.
pub async fn invite_info(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    body?;
    let code = validate_invite_code(&query_value(&query))?;
    let session = open_session(&state, &instance)?;
    match session
        .group(GroupOp::InviteInfo { code: code.clone() })
        .await
    {
        Ok(GroupAnswer::Group(g)) => Ok(Json(metadata_json(&g))),
        Ok(_) => Err(ErrorEnvelope::internal(["No invite info"]).into()),
        Err(EngineError::Messaging(MessagingError::Iq { .. })) => {
            Err(ErrorEnvelope::not_found(["No invite info".to_owned(), code]).into())
        }
        Err(e) => Err(group_error(fail(404, "No invite info"), e)),
    }
}

/// `GET /group/acceptInviteCode/{instance}?inviteCode=` → 200 `{accepted:true, groupJid}`.
pub async fn accept_invite_code(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const F: Failure = fail(404, "Accept invite error");
    body?;
    let code = validate_invite_code(&query_value(&query))?;
    let session = open_session(&state, &instance)?;
    match run(&session, GroupOp::AcceptInvite { code }, F).await? {
        GroupAnswer::Joined(jid) => {
            Ok(Json(json!({"accepted": true, "groupJid": jid.to_string()})))
        }
        _ => Err(ErrorEnvelope::internal([F.title]).into()),
    }
}

/// `POST /group/sendInvite/{instance}` → 200 `{send:true, inviteUrl}`: the invite link, after
/// the description, sent as a text to each number (each send is recorded and reported like a
/// sendText).
pub async fn send_invite(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const F: Failure = fail(404, "No send invite");
    let body = group_body(body, &query)?;
    let req = validate_send_invite(&body)?;
    let group = parse_group(&req.group_jid)?;
    let session = open_session(&state, &instance)?;
    let code = code_of(run(&session, GroupOp::InviteCode { group }, F).await?, F)?;
    let url = invite_url(&code);
    let text = format!("{}\n\n{url}", req.description);
    let bridge = Bridge {
        runtime: engine(&state)?.clone(),
        db: state.db.clone(),
        config: state.config.clone(),
        tokens: state.tokens.clone(),
    };
    for number in &req.numbers {
        send_text(&bridge, &instance, &session, number, &text).await?;
    }
    Ok(Json(json!({"send": true, "inviteUrl": url})))
}

async fn send_text(
    bridge: &Bridge,
    instance: &Instance,
    session: &SessionHandle,
    number: &str,
    text: &str,
) -> Result<(), ApiError> {
    let request = json!({"number": number, "text": text});
    validate_send_text(&request)?;
    let not_sent = |e: sends::SendError| -> ApiError {
        tracing::warn!("group invite to {number} not sent: {e:?}");
        ErrorEnvelope::not_found(["No send invite"]).into()
    };
    let outgoing = Outgoing::from_request(bridge, instance, &request)
        .await
        .map_err(not_sent)?;
    sends::send_new(bridge, instance.clone(), session.clone(), outgoing, request)
        .await
        .map_err(not_sent)?;
    Ok(())
}

/// `POST /group/updateParticipant/{instance}` → 201
/// `{updateParticipants:[{status, jid, content}]}`, one entry per participant with WhatsApp's
/// code (`"200"`, `"403"`, `"404"`, `"409"`, …).
pub async fn update_participant(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const F: Failure = fail(400, "Error updating participants");
    let body = group_body(body, &query)?;
    let req = validate_update_participants(&body)?;
    let group = parse_group(&req.group_jid)?;
    let action = ParticipantAction::parse(&req.action)
        .ok_or_else(|| ApiError::from(ErrorEnvelope::bad_request([F.title])))?;
    let participants = req
        .participants
        .iter()
        .map(|p| user(p))
        .collect::<Result<Vec<_>, _>>()?;
    let session = open_session(&state, &instance)?;
    let results = match run(
        &session,
        GroupOp::Participants {
            group,
            action,
            participants,
        },
        F,
    )
    .await?
    {
        GroupAnswer::Participants(r) => r,
        _ => Vec::new(),
    };
    let list: Vec<Value> = results
        .into_iter()
        .map(|r| {
            let mut attrs = Map::new();
            attrs.insert("jid".to_owned(), r.jid.to_string().into());
            if r.status != "200" {
                attrs.insert("error".to_owned(), r.status.clone().into());
            }
            json!({
                "status": r.status,
                "jid": r.jid.to_string(),
                "content": {"tag": "participant", "attrs": attrs},
            })
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "updateParticipants": list })),
    ))
}

/// `POST /group/updateSetting/{instance}` → 201 `{}` (Evolution's `updateSetting` value is
/// `undefined`, which JSON drops).
pub async fn update_setting(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const F: Failure = fail(400, "Error updating setting");
    let body = group_body(body, &query)?;
    let (jid, action) = validate_update_setting(&body)?;
    let group = parse_group(&jid)?;
    let setting = GroupSetting::parse(&action)
        .ok_or_else(|| ApiError::from(ErrorEnvelope::bad_request([F.title])))?;
    let session = open_session(&state, &instance)?;
    run(&session, GroupOp::Setting { group, setting }, F).await?;
    Ok((StatusCode::CREATED, Json(json!({}))))
}

/// `POST /group/toggleEphemeral/{instance}` → 201 `{success:true}`.
pub async fn toggle_ephemeral(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const F: Failure = fail(400, "Error updating setting");
    let body = group_body(body, &query)?;
    let (jid, expiration) = validate_toggle_ephemeral(&body)?;
    let group = parse_group(&jid)?;
    let session = open_session(&state, &instance)?;
    run(&session, GroupOp::Ephemeral { group, expiration }, F).await?;
    Ok((StatusCode::CREATED, Json(json!({"success": true}))))
}

/// `DELETE /group/leaveGroup/{instance}` → 200 `{groupJid, leave:true}`.
pub async fn leave_group(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const F: Failure = fail(400, "Unable to leave the group");
    let body = group_body(body, &query)?;
    let jid = validate_group_jid(&body)?;
    let group = parse_group(&jid)?;
    let session = open_session(&state, &instance)?;
    run(&session, GroupOp::Leave { group }, F).await?;
    Ok(Json(json!({"groupJid": jid, "leave": true})))
}
