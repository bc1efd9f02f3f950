//! `/sim/accounts/…`: accounts and what their mock phones do.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson, AppState};
use crate::addr::ChatAddr;
use crate::conn::{ConnCommand, PairFailure};
use crate::phone::{About, SendText};
use crate::qr::parse_qr;
use crate::sim::Sim;
use crate::state::{PairTicket, ReceiptRecord, ReceivedMessage};

const MAX_PUSH_NAME: usize = 256;
const MAX_MESSAGE_ID: usize = 128;
/// The alphabet of link codes (§5.4): Crockford-style base32 without 0, I, O, U.
const LINK_CODE_ALPHABET: &str = "123456789ABCDEFGHJKLMNPQRSTVWXYZ";

#[derive(Debug, Deserialize)]
pub struct CreateAccount {
    phone: Option<String>,
    push_name: Option<String>,
}

pub async fn create(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<CreateAccount>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(name) = &body.push_name
        && (name.is_empty() || name.chars().count() > MAX_PUSH_NAME)
    {
        return Err(ApiError::bad_request(format!(
            "push_name must have 1 to {MAX_PUSH_NAME} characters"
        )));
    }
    let created = app.sim.state().create_account(body.phone, body.push_name)?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn get_account(
    State(app): State<AppState>,
    Path(phone): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    app.sim
        .state()
        .account_view(&phone)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no account with phone {phone}")))
}

#[derive(Debug, Deserialize)]
pub struct Scan {
    qr: String,
}

pub async fn scan(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    ApiJson(body): ApiJson<Scan>,
) -> Result<impl IntoResponse, ApiError> {
    let qr = parse_qr(&body.qr).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let ticket = app.sim.state().begin_qr_pairing(&phone, &qr)?;
    pair(&app.sim, ticket).await
}

#[derive(Debug, Deserialize)]
pub struct LinkCode {
    code: String,
}

pub async fn link_code(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    ApiJson(body): ApiJson<LinkCode>,
) -> Result<impl IntoResponse, ApiError> {
    let code = normalise_link_code(&body.code).ok_or_else(|| {
        ApiError::bad_request(format!(
            "code must be 8 characters of {LINK_CODE_ALPHABET} (a dash in the middle is allowed)"
        ))
    })?;
    let ticket = app.sim.state().begin_link_code_pairing(&phone, &code)?;
    pair(&app.sim, ticket).await
}

/// `ABCD-1234` or `abcd1234` → `ABCD1234`, if every character is in the alphabet.
fn normalise_link_code(code: &str) -> Option<String> {
    let upper = code.to_ascii_uppercase();
    let compact = match upper.split_once('-') {
        Some((a, b)) if a.len() == 4 && b.len() == 4 => format!("{a}{b}"),
        Some(_) => return None,
        None => upper,
    };
    (compact.len() == 8 && compact.chars().all(|c| LINK_CODE_ALPHABET.contains(c)))
        .then_some(compact)
}

/// Hands the ticket to the registration connection, waits for its `pair-device-sign`, and
/// commits the device. Anything short of success releases the reservation.
async fn pair(sim: &Sim, ticket: PairTicket) -> Result<Json<serde_json::Value>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = sim.connections().send(
        ticket.conn,
        ConnCommand::Pair {
            ticket: Box::new(ticket.clone()),
            reply: tx,
        },
    );
    let outcome = match sent {
        Err(_) => Err(PairFailure::ConnectionGone),
        Ok(()) => match tokio::time::timeout(sim.config().pair_timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) | Err(_) => Err(PairFailure::ConnectionGone),
        },
    };
    match outcome {
        Ok(_accepted) => {
            // The protocol layer committed the device (`SimState::finish_pairing`) before
            // answering, so that the companion's reconnect after 515 already finds it.
            tracing::info!(device = %ticket.device_jid, "companion paired");
            Ok(Json(
                json!({"device_jid": ticket.device_jid, "lid": ticket.lid_jid}),
            ))
        }
        Err(failure) => {
            sim.state().abort_pairing(&ticket);
            let status = match failure {
                PairFailure::NotWired => StatusCode::NOT_IMPLEMENTED,
                PairFailure::Rejected(_) => StatusCode::BAD_REQUEST,
                PairFailure::ConnectionGone => StatusCode::NOT_FOUND,
            };
            Err(ApiError::new(status, failure.to_string()))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Unlink {
    device: u16,
}

pub async fn unlink(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    ApiJson(body): ApiJson<Unlink>,
) -> Result<impl IntoResponse, ApiError> {
    app.sim.state().unlink(&phone, body.device)?;
    if let Some(conn) = app.sim.connections().connection_of(&phone, body.device) {
        // If the command cannot be queued the connection is on its way out anyway; the device is
        // gone from the state, so it cannot log in again either way.
        let _ = app.sim.connections().send(conn, ConnCommand::Unlinked);
    }
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub struct SendMessage {
    to: String,
    #[serde(default)]
    text: String,
    id: Option<String>,
    /// Edit our message with this id (`text` is the new text).
    edit: Option<String>,
    /// Delete our message with this id for everyone.
    revoke: Option<String>,
    /// React with `text` to the message with this id.
    react: Option<String>,
    /// For `react`: whether the message is the phone's own (default false).
    #[serde(default)]
    react_from_me: bool,
}

pub async fn send_message(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    ApiJson(body): ApiJson<SendMessage>,
) -> Result<impl IntoResponse, ApiError> {
    let to = ChatAddr::parse(&body.to).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let about = match (body.edit, body.revoke, body.react) {
        (None, None, None) => None,
        (Some(id), None, None) => Some(About::Edit { id }),
        (None, Some(id), None) => Some(About::Revoke { id }),
        (None, None, Some(id)) => Some(About::React {
            id,
            from_me: body.react_from_me,
        }),
        _ => {
            return Err(ApiError::bad_request(
                "at most one of edit, revoke and react",
            ));
        }
    };
    if body.text.is_empty() && !matches!(about, Some(About::Revoke { .. } | About::React { .. })) {
        return Err(ApiError::bad_request("text must not be empty"));
    }
    if let Some(id) = &body.id
        && (id.is_empty()
            || id.len() > MAX_MESSAGE_ID
            || !id.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(ApiError::bad_request(format!(
            "id must be 1 to {MAX_MESSAGE_ID} ASCII letters and digits"
        )));
    }
    let state = app.sim.state();
    if !state.account_exists(&phone) {
        return Err(ApiError::not_found(format!(
            "no account with phone {phone}"
        )));
    }
    check_chat(&app.sim, &phone, &to)?;
    let id = body.id.unwrap_or_else(|| state.next_message_id());
    app.sim.config().phone.send_text(
        &app.sim,
        SendText {
            from: phone,
            to,
            id: id.clone(),
            text: body.text,
            about,
        },
    )?;
    Ok(Json(json!({"id": id})))
}

/// A user chat must be an account; a group must exist and have the phone as a member.
fn check_chat(sim: &Sim, phone: &str, chat: &ChatAddr) -> Result<(), ApiError> {
    match chat {
        ChatAddr::Phone(_) | ChatAddr::Lid(_) => sim
            .state()
            .resolve_user(chat)
            .map(|_| ())
            .ok_or_else(|| ApiError::not_found(format!("{chat} is not an account"))),
        ChatAddr::Group(id) => {
            let group = sim
                .state()
                .group(id)
                .ok_or_else(|| ApiError::not_found(format!("no group {chat}")))?;
            if group.participants.iter().any(|p| p.phone == phone) {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("{phone} is not a participant of {chat}"),
                ))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct MessagesQuery {
    since: Option<u64>,
}

pub async fn list_messages(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    query: Result<Query<MessagesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ReceivedMessage>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(Json(app.sim.state().phone_messages(&phone, q.since)?))
}

#[derive(Debug, Deserialize)]
pub struct ReceiptsQuery {
    id: Option<String>,
}

pub async fn list_receipts(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    query: Result<Query<ReceiptsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ReceiptRecord>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(Json(
        app.sim.state().phone_receipts(&phone, q.id.as_deref())?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct Read {
    chat: String,
    ids: Vec<String>,
}

pub async fn read(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    ApiJson(body): ApiJson<Read>,
) -> Result<impl IntoResponse, ApiError> {
    let chat = ChatAddr::parse(&body.chat).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if body.ids.is_empty()
        || body
            .ids
            .iter()
            .any(|id| id.is_empty() || id.len() > MAX_MESSAGE_ID)
    {
        return Err(ApiError::bad_request(format!(
            "ids must be a non-empty list of 1 to {MAX_MESSAGE_ID} character ids"
        )));
    }
    if !app.sim.state().account_exists(&phone) {
        return Err(ApiError::not_found(format!(
            "no account with phone {phone}"
        )));
    }
    check_chat(&app.sim, &phone, &chat)?;
    app.sim
        .config()
        .phone
        .send_read(&app.sim, &phone, &chat, &body.ids)?;
    Ok(Json(json!({})))
}

/// `GET /sim/accounts/{phone}/profile`: the settings the account's devices set over IQs.
pub async fn get_profile(
    State(app): State<AppState>,
    Path(phone): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let profile = app
        .sim
        .state()
        .read(|st| st.accounts.get(&phone).map(|a| a.profile.clone()))
        .ok_or_else(|| ApiError::not_found(format!("no account {phone}")))?;
    let privacy: serde_json::Map<String, serde_json::Value> =
        crate::state::AccountProfile::CATEGORIES
            .iter()
            .map(|(name, _)| ((*name).to_string(), profile.privacy_value(name).into()))
            .collect();
    Ok(Json(json!({
        "privacy": privacy,
        "blocked": profile.blocked,
        "status": profile.status,
        "picture_id": profile.picture_id,
        "picture_bytes": profile.picture_len,
        "business": profile.business,
    })))
}

/// The longest text of one business profile field.
const MAX_BUSINESS_FIELD: usize = 512;

/// `PUT /sim/accounts/{phone}/business`: makes the account a business with this profile (what
/// `w:biz` answers); `DELETE` makes it a plain account again.
pub async fn set_business(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    ApiJson(body): ApiJson<crate::state::BusinessProfile>,
) -> Result<impl IntoResponse, ApiError> {
    let fields = [
        Some(&body.description),
        body.email.as_ref(),
        body.website.as_ref(),
        body.address.as_ref(),
        body.category.as_ref(),
    ];
    if fields
        .iter()
        .flatten()
        .any(|f| f.chars().count() > MAX_BUSINESS_FIELD)
    {
        return Err(ApiError::bad_request(format!(
            "business fields have at most {MAX_BUSINESS_FIELD} characters"
        )));
    }
    set_business_profile(&app.sim, &phone, Some(body))?;
    Ok(Json(json!({})))
}

pub async fn remove_business(
    State(app): State<AppState>,
    Path(phone): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    set_business_profile(&app.sim, &phone, None)?;
    Ok(Json(json!({})))
}

fn set_business_profile(
    sim: &Sim,
    phone: &str,
    business: Option<crate::state::BusinessProfile>,
) -> Result<(), ApiError> {
    let found = sim.state().write(|st| {
        st.accounts
            .get_mut(phone)
            .map(|a| a.profile.business = business)
            .is_some()
    });
    if found {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no account {phone}")))
    }
}

/// `GET /sim/accounts/{phone}/app-state`: the account's app-state key and each collection's
/// version and live records.
pub async fn get_app_state(
    State(app): State<AppState>,
    Path(phone): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if !app.sim.state().account_exists(&phone) {
        return Err(ApiError::not_found(format!("no account {phone}")));
    }
    Ok(Json(crate::appstate::view(&app.sim, &phone)))
}

#[cfg(test)]
mod tests {
    use super::normalise_link_code;

    #[test]
    fn link_codes() {
        assert_eq!(normalise_link_code("ABCD1234").as_deref(), Some("ABCD1234"));
        assert_eq!(
            normalise_link_code("abcd-1234").as_deref(),
            Some("ABCD1234")
        );
        assert_eq!(normalise_link_code("ABCD123"), None);
        assert_eq!(normalise_link_code("ABCD12340"), None);
        assert_eq!(normalise_link_code("ABC0D123"), None);
        assert_eq!(normalise_link_code("ABCDI123"), None);
        assert_eq!(normalise_link_code("AB-CD1234"), None);
    }
}
