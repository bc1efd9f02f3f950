//! `/sim/groups`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson, AppState};
use zapin_protocol::jid::Jid;

use crate::addr::{self, ChatAddr, GROUP_SERVER};
use crate::phone::SeamError;
use crate::router::groups;
use crate::state::AdminRole;

use groups::MAX_SUBJECT;

#[derive(Debug, Deserialize)]
pub struct CreateGroup {
    creator: String,
    subject: String,
    participants: Vec<String>,
}

pub async fn create(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<CreateGroup>,
) -> Result<impl IntoResponse, ApiError> {
    let subject = body.subject.trim();
    if subject.is_empty() || subject.chars().count() > MAX_SUBJECT {
        return Err(ApiError::bad_request(format!(
            "subject must have 1 to {MAX_SUBJECT} characters"
        )));
    }
    let id = app
        .sim
        .state()
        .create_group(&body.creator, subject, &body.participants)?;
    match app.sim.config().phone.group_created(&app.sim, &id) {
        Ok(()) => {}
        // The group exists in the state either way; only the members' devices are not told yet.
        Err(e @ SeamError::NotWired(_)) => tracing::warn!("group {id} created: {e}"),
        Err(e) => tracing::warn!("group {id} created, notification failed: {e}"),
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"jid": addr::group_jid(&id)})),
    ))
}

/// `{jid}` as a group id (`…@g.us` or the bare id).
fn group_id(jid: &str) -> &str {
    jid.strip_suffix(&format!("@{GROUP_SERVER}")).unwrap_or(jid)
}

pub async fn get_group(
    State(app): State<AppState>,
    Path(jid): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let group = app
        .sim
        .state()
        .group(group_id(&jid))
        .ok_or_else(|| ApiError::not_found(format!("no group {jid}")))?;
    let participants: Vec<_> = group
        .participants
        .iter()
        .map(|p| {
            json!({
                "jid": addr::pn_jid(&p.phone),
                "admin": p.admin.map(|r| match r {
                    AdminRole::Superadmin => "superadmin",
                    AdminRole::Admin => "admin",
                }),
            })
        })
        .collect();
    Ok(Json(json!({
        "jid": addr::group_jid(&group.id),
        "subject": group.subject,
        "subject_owner": group.subject_owner.as_deref().map(addr::pn_jid),
        "creator": addr::pn_jid(&group.creator),
        "creation": group.created_at,
        "participants": participants,
        "description": group.description.as_ref().map(|d| d.body.clone()),
        "description_id": group.description.as_ref().map(|d| d.id.clone()),
        "announce": group.announce,
        "locked": group.locked,
        "ephemeral": group.ephemeral,
        "invite_code": group.invite_code,
        "picture_id": group.picture_id,
        "picture_bytes": group.picture_len,
    })))
}

/// A refusal of a group change, as the control API reports it: the IQ's code picks the status
/// (401 not an admin → 403), the text is WhatsApp's.
fn refused((code, text): groups::Refusal) -> ApiError {
    let status = match code {
        404 => StatusCode::NOT_FOUND,
        401 | 403 => StatusCode::FORBIDDEN,
        409 => StatusCode::CONFLICT,
        410 => StatusCode::GONE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, format!("{code} {text}"))
}

/// The group `jid`, if `phone` is a member of it.
fn member(app: &AppState, phone: &str, jid: &str) -> Result<crate::state::Group, ApiError> {
    groups::member_group_by_id(&app.sim, phone, group_id(jid)).map_err(refused)
}

fn user_jid(s: &str) -> Result<Jid, ApiError> {
    match ChatAddr::parse(s) {
        Ok(ChatAddr::Phone(p)) => Ok(Jid::pn(p)),
        Ok(ChatAddr::Lid(l)) => Ok(Jid::lid(l)),
        _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Ok(Jid::pn(s)),
        _ => Err(ApiError::bad_request(format!("not a user: {s}"))),
    }
}

#[derive(Debug, Deserialize)]
pub struct ChangeParticipants {
    actor: String,
    action: String,
    participants: Vec<String>,
}

/// `POST /sim/groups/{jid}/participants`: the actor's phone adds, removes, promotes or demotes.
pub async fn participants(
    State(app): State<AppState>,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<ChangeParticipants>,
) -> Result<impl IntoResponse, ApiError> {
    if !matches!(
        body.action.as_str(),
        "add" | "remove" | "promote" | "demote"
    ) {
        return Err(ApiError::bad_request(
            "action must be add, remove, promote or demote",
        ));
    }
    let g = member(&app, &body.actor, &jid)?;
    let jids = body
        .participants
        .iter()
        .map(|p| user_jid(p))
        .collect::<Result<Vec<_>, _>>()?;
    let results = groups::change_participants(&app.sim, &g, &body.actor, &body.action, &jids, None)
        .map_err(refused)?;
    let results: Vec<_> = results
        .into_iter()
        .map(|(jid, code)| json!({"jid": jid.to_string(), "code": code}))
        .collect();
    Ok(Json(json!({ "results": results })))
}

#[derive(Debug, Deserialize)]
pub struct SetSubject {
    actor: String,
    subject: String,
}

/// `POST /sim/groups/{jid}/subject`.
pub async fn subject(
    State(app): State<AppState>,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<SetSubject>,
) -> Result<impl IntoResponse, ApiError> {
    let g = member(&app, &body.actor, &jid)?;
    groups::set_subject(&app.sim, &g, &body.actor, &body.subject, None).map_err(refused)?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub struct SetDescription {
    actor: String,
    /// `null` or `""` deletes it.
    description: Option<String>,
}

/// `POST /sim/groups/{jid}/description`.
pub async fn description(
    State(app): State<AppState>,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<SetDescription>,
) -> Result<impl IntoResponse, ApiError> {
    let g = member(&app, &body.actor, &jid)?;
    let text = body.description.as_deref().filter(|d| !d.is_empty());
    groups::set_description(&app.sim, &g, &body.actor, text, None, None, None).map_err(refused)?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub struct SetSetting {
    actor: String,
    setting: String,
}

/// `POST /sim/groups/{jid}/settings`: `announcement`, `not_announcement`, `locked`, `unlocked`.
pub async fn settings(
    State(app): State<AppState>,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<SetSetting>,
) -> Result<impl IntoResponse, ApiError> {
    let g = member(&app, &body.actor, &jid)?;
    groups::set_setting(&app.sim, &g, &body.actor, &body.setting, None).map_err(refused)?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub struct SetEphemeral {
    actor: String,
    expiration: u32,
}

/// `POST /sim/groups/{jid}/ephemeral`.
pub async fn ephemeral(
    State(app): State<AppState>,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<SetEphemeral>,
) -> Result<impl IntoResponse, ApiError> {
    let g = member(&app, &body.actor, &jid)?;
    groups::set_ephemeral(&app.sim, &g, &body.actor, body.expiration, None).map_err(refused)?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub struct InviteCode {
    actor: String,
    #[serde(default)]
    revoke: bool,
}

/// `POST /sim/groups/{jid}/invite`: the current code (made on first ask), or a new one.
pub async fn invite(
    State(app): State<AppState>,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<InviteCode>,
) -> Result<impl IntoResponse, ApiError> {
    let g = member(&app, &body.actor, &jid)?;
    let code =
        groups::invite_code(&app.sim, &g, &body.actor, body.revoke, None).map_err(refused)?;
    Ok(Json(json!({ "code": code })))
}

#[derive(Debug, Deserialize)]
pub struct Join {
    phone: String,
    code: String,
}

/// `POST /sim/groups/join`: the phone joins by invite code.
pub async fn join(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<Join>,
) -> Result<impl IntoResponse, ApiError> {
    if app.sim.state().account_view(&body.phone).is_none() {
        return Err(ApiError::not_found(format!("no account {}", body.phone)));
    }
    let g = groups::accept_invite(&app.sim, &body.phone, &body.code, None).map_err(refused)?;
    Ok(Json(json!({ "jid": addr::group_jid(&g.id) })))
}

#[derive(Debug, Deserialize)]
pub struct Leave {
    phone: String,
}

/// `POST /sim/groups/{jid}/leave`.
pub async fn leave(
    State(app): State<AppState>,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<Leave>,
) -> Result<impl IntoResponse, ApiError> {
    groups::leave(&app.sim, &body.phone, group_id(&jid), None).map_err(refused)?;
    Ok(Json(json!({})))
}
