//! `/sim/groups`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson, AppState};
use crate::addr::{self, GROUP_SERVER};
use crate::phone::SeamError;
use crate::state::AdminRole;

/// WhatsApp's subject limit.
const MAX_SUBJECT: usize = 100;

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

pub async fn get_group(
    State(app): State<AppState>,
    Path(jid): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = jid
        .strip_suffix(&format!("@{GROUP_SERVER}"))
        .unwrap_or(&jid);
    let group = app
        .sim
        .state()
        .group(id)
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
        "creator": addr::pn_jid(&group.creator),
        "creation": group.created_at,
        "participants": participants,
    })))
}
