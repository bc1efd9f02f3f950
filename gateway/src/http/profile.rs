//! The account's own settings (contract rows 32, 40–45): privacy, block list, push name, about
//! text and picture, each one IQ of the session ([`zapin_engine::SessionHandle::account`]); and
//! profiles (rows 38–39): a user's about text, picture and business profile.
//!
//! Failures keep Evolution's texts; a refusal by WhatsApp is the caller's 400 (Evolution answers
//! 500), timeouts and engine failures stay 500.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::request::{
    PRIVACY_CATEGORIES, validate_block_status, validate_optional_number, validate_privacy_settings,
    validate_profile_name, validate_profile_text,
};
use zapin_engine::messaging::MessagingError;
use zapin_engine::messaging::account::{AccountAnswer, AccountOp, BusinessProfile};
use zapin_engine::{EngineError, SessionHandle};
use zapin_protocol::jid::Jid;

use super::body::JsonBody;
use super::group::picture_bytes;
use super::guard::Authorized;
use super::session::{contact_names, engine, open_session, to_jid};
use super::{ApiError, AppState};

fn account_error(title: &'static str, err: EngineError) -> ApiError {
    match &err {
        EngineError::Messaging(MessagingError::Iq { text, code }) => {
            let detail = if text.is_empty() {
                format!("Error: {code}")
            } else {
                format!("Error: {text}")
            };
            ErrorEnvelope::bad_request([title.to_owned(), detail]).into()
        }
        EngineError::NotConnected => {
            ErrorEnvelope::bad_request([title.to_owned(), format!("Error: {err}")]).into()
        }
        _ => {
            tracing::error!("account request failed: {err}");
            ErrorEnvelope::internal([title.to_owned(), format!("Error: {err}")]).into()
        }
    }
}

async fn run(
    session: &SessionHandle,
    op: AccountOp,
    title: &'static str,
) -> Result<AccountAnswer, ApiError> {
    session
        .account(op)
        .await
        .map_err(|e| account_error(title, e))
}

/// `GET /chat/fetchPrivacySettings/{instance}` → 200 `{readreceipts, profile, status, online,
/// last, groupadd}`.
pub async fn fetch_privacy(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    body?;
    let session = open_session(&state, &instance)?;
    let AccountAnswer::Privacy(pairs) = run(
        &session,
        AccountOp::FetchPrivacy,
        "Error fetching privacy settings",
    )
    .await?
    else {
        return Err(ErrorEnvelope::internal(["Error fetching privacy settings"]).into());
    };
    let mut out = Map::new();
    for (name, _) in PRIVACY_CATEGORIES {
        let value = pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone());
        if let Some(v) = value {
            out.insert(name.to_owned(), v.into());
        }
    }
    Ok(Json(Value::Object(out)))
}

/// `POST /chat/updatePrivacySettings/{instance}` → 201 `{update:"success", data:{…}}`: one IQ per
/// category, as Baileys sends them.
pub async fn update_privacy(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const TITLE: &str = "Error updating privacy settings";
    let settings = validate_privacy_settings(&body?)?;
    let session = open_session(&state, &instance)?;
    let mut data = Map::new();
    for (name, value) in settings {
        run(
            &session,
            AccountOp::SetPrivacy {
                name: name.clone(),
                value: value.clone(),
            },
            TITLE,
        )
        .await?;
        data.insert(name, value.into());
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"update": "success", "data": data})),
    ))
}

/// `POST /chat/updateBlockStatus/{instance}` → 201 `{block:"success"}`.
pub async fn update_block_status(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const TITLE: &str = "Error blocking chat";
    let (number, block) = validate_block_status(&body?)?;
    let jid = to_jid(&number)
        .parse::<Jid>()
        .ok()
        .filter(|j| j.is_pn() || j.is_lid())
        .ok_or_else(|| {
            ApiError::from(ErrorEnvelope::bad_request([
                TITLE.to_owned(),
                format!("Error: invalid number {number}"),
            ]))
        })?;
    let session = open_session(&state, &instance)?;
    run(&session, AccountOp::Block { jid, block }, TITLE).await?;
    Ok((StatusCode::CREATED, Json(json!({"block": "success"}))))
}

/// `POST /chat/updateProfileStatus/{instance}` → 200 `{update:"success"}`.
pub async fn update_status(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let text = validate_profile_text(&body?, "status")?;
    let session = open_session(&state, &instance)?;
    run(
        &session,
        AccountOp::SetStatus { text },
        "Error updating profile status",
    )
    .await?;
    Ok(Json(json!({"update": "success"})))
}

/// `POST /chat/updateProfilePicture/{instance}` → 200 `{update:"success"}`; `picture` an
/// http(s) URL or base64 of a JPEG.
pub async fn update_picture(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const TITLE: &str = "Error updating profile picture";
    let picture = validate_profile_text(&body?, "picture")?;
    let session = open_session(&state, &instance)?;
    let bytes = picture_bytes(&state, &picture).await?;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(ErrorEnvelope::bad_request([TITLE, "Error: the image is not a JPEG"]).into());
    }
    run(&session, AccountOp::SetPicture { jpeg: Some(bytes) }, TITLE).await?;
    Ok(Json(json!({"update": "success"})))
}

/// `DELETE /chat/removeProfilePicture/{instance}` → 200 `{update:"success"}`.
pub async fn remove_picture(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    body?;
    let session = open_session(&state, &instance)?;
    run(
        &session,
        AccountOp::SetPicture { jpeg: None },
        "Error removing profile picture",
    )
    .await?;
    Ok(Json(json!({"update": "success"})))
}

/// `POST /chat/updateProfileName/{instance}` → 200 `{update:"success"}`: the push name is
/// remembered in the session's credentials (announced again at every login), announced to the
/// server now, and becomes the instance's `profileName`.
pub async fn update_name(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let name = validate_profile_name(&body?)?;
    let session = open_session(&state, &instance)?;
    run(
        &session,
        AccountOp::SetPushName { name: name.clone() },
        "Error updating profile name",
    )
    .await?;
    engine(&state)?.update_live(&instance.id, |l| l.profile_name = Some(name.clone()));
    let mut tx = state.db.begin().await?;
    if let Some(current) = tx.get_instance(&instance.id).await? {
        tx.update_instance_connection(
            &current.id,
            &current.connection_status,
            current.owner_jid.as_deref(),
            Some(&name),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(json!({"update": "success"})))
}

/// A user JID from `number`, or Evolution's 400 naming it.
fn user_jid(number: &str, title: &str) -> Result<Jid, ApiError> {
    to_jid(number)
        .parse::<Jid>()
        .ok()
        .filter(|j| j.is_pn() || j.is_lid())
        .map(|j| j.to_non_ad())
        .ok_or_else(|| {
            ErrorEnvelope::bad_request([
                title.to_owned(),
                format!("Error: invalid number {number}"),
            ])
            .into()
        })
}

/// whatsappNumbers' answer for one user: `{jid, exists, number, name?}`.
async fn number_item(
    state: &AppState,
    instance_id: &str,
    session: &SessionHandle,
    jid: &Jid,
    title: &'static str,
) -> Result<Map<String, Value>, ApiError> {
    let exists = if jid.is_lid() {
        true
    } else {
        session
            .on_whatsapp(&[jid.user.as_str()])
            .await
            .map_err(|e| account_error(title, e))?
            .first()
            .is_some_and(|c| c.exists)
    };
    let mut item = Map::new();
    item.insert("jid".into(), jid.to_string().into());
    item.insert("exists".into(), exists.into());
    item.insert("number".into(), jid.user.clone().into());
    if exists
        && let Some(name) = contact_names(state, instance_id)
            .await?
            .remove(&jid.to_string())
    {
        item.insert("name".into(), name.into());
    }
    Ok(item)
}

/// Baileys' `getBusinessProfile` object: `{wid, description, website[], email?, address?,
/// category?, business_hours{timezone?, business_config?}}`.
fn business_json(p: &BusinessProfile) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(jid) = &p.jid {
        out.insert("wid".into(), jid.clone().into());
    }
    if let Some(a) = &p.address {
        out.insert("address".into(), a.clone().into());
    }
    out.insert("description".into(), p.description.clone().into());
    out.insert("website".into(), json!(p.websites));
    if let Some(e) = &p.email {
        out.insert("email".into(), e.clone().into());
    }
    if let Some(c) = &p.category {
        out.insert("category".into(), c.clone().into());
    }
    let mut hours = Map::new();
    if let Some(tz) = &p.hours_timezone {
        hours.insert("timezone".into(), tz.clone().into());
    }
    if !p.hours.is_empty() {
        let config: Vec<Value> = p
            .hours
            .iter()
            .map(|attrs| {
                Value::Object(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                        .collect(),
                )
            })
            .collect();
        hours.insert("business_config".into(), config.into());
    }
    out.insert("business_hours".into(), Value::Object(hours));
    out
}

async fn business_of(
    session: &SessionHandle,
    jid: &Jid,
    title: &'static str,
) -> Result<Option<Box<BusinessProfile>>, ApiError> {
    match run(
        session,
        AccountOp::FetchBusiness { jid: jid.clone() },
        title,
    )
    .await?
    {
        AccountAnswer::Business(b) => Ok(b),
        _ => Ok(None),
    }
}

/// The instance's own user JID.
fn own_jid(instance: &crate::db::Instance, session: &SessionHandle) -> Option<Jid> {
    instance
        .owner_jid
        .as_deref()
        .and_then(|j| j.parse::<Jid>().ok())
        .or_else(|| session.status().jid.and_then(|j| j.parse::<Jid>().ok()))
        .map(|j| j.to_non_ad())
}

/// `POST /chat/fetchBusinessProfile/{instance}` → 200 `{isBusiness:true, wid, description,
/// website[], …}` or `{isBusiness:false, message:"Not is business profile", jid, exists, number,
/// name?}`; without `number`, the instance's own account.
pub async fn fetch_business_profile(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    // Evolution's text for any failure of this route.
    const TITLE: &str = "Error updating profile name";
    let number = validate_optional_number(&body?)?;
    let session = open_session(&state, &instance)?;
    let jid = match &number {
        Some(n) => user_jid(n, TITLE)?,
        None => own_jid(&instance, &session)
            .ok_or_else(|| ApiError::from(ErrorEnvelope::internal([TITLE])))?,
    };
    if let Some(profile) = business_of(&session, &jid, TITLE).await? {
        let mut out = Map::new();
        out.insert("isBusiness".into(), true.into());
        out.extend(business_json(&profile));
        return Ok(Json(Value::Object(out)));
    }
    let mut out = Map::new();
    out.insert("isBusiness".into(), false.into());
    out.insert("message".into(), "Not is business profile".into());
    out.extend(number_item(&state, &instance.id, &session, &jid, TITLE).await?);
    Ok(Json(Value::Object(out)))
}

/// `POST /chat/fetchProfile/{instance}` → 200 `{wuid, name, numberExists, picture, status,
/// isBusiness, email, description, website}`.
///
/// For a user, `status` is Baileys' about object `{status, setAt}` (`status` null when unset),
/// as Evolution passes it through; for the own account (no `number`) it is the connection state
/// and `name` the instance's profile name. A number that is not on WhatsApp is a 400 whose
/// message is the whatsappNumbers item.
pub async fn fetch_profile(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const TITLE: &str = "Error fetching profile";
    let number = validate_optional_number(&body?)?;
    let session = open_session(&state, &instance)?;
    let Some(number) = number else {
        let jid = own_jid(&instance, &session)
            .ok_or_else(|| ApiError::from(ErrorEnvelope::internal([TITLE])))?;
        let picture = match run(
            &session,
            AccountOp::FetchPicture { jid: jid.clone() },
            TITLE,
        )
        .await?
        {
            AccountAnswer::Picture(url) => url,
            _ => None,
        };
        let business = business_of(&session, &jid, TITLE).await?;
        let name = engine(&state)?
            .live(&instance.id)
            .profile_name
            .or(instance.profile_name.clone());
        return Ok(Json(json!({
            "wuid": jid.to_string(),
            "name": name,
            "numberExists": true,
            "picture": picture,
            "status": instance.connection_status,
            "isBusiness": business.is_some(),
            "email": business.as_ref().and_then(|b| b.email.clone()),
            "description": business.as_ref().map(|b| b.description.clone()),
            "website": business.as_ref().and_then(|b| b.websites.first().cloned()),
        })));
    };
    let jid = user_jid(&number, TITLE)?;
    let item = number_item(&state, &instance.id, &session, &jid, TITLE).await?;
    if item.get("exists") != Some(&Value::Bool(true)) {
        return Err(ErrorEnvelope::bad_request_objects(vec![Value::Object(item)]).into());
    }
    let picture = match run(
        &session,
        AccountOp::FetchPicture { jid: jid.clone() },
        TITLE,
    )
    .await?
    {
        AccountAnswer::Picture(url) => url,
        _ => None,
    };
    let (status, set_at) =
        match run(&session, AccountOp::FetchStatus { jid: jid.clone() }, TITLE).await? {
            AccountAnswer::Status { text, set_at } => (text, set_at.unwrap_or(0)),
            _ => (None, 0),
        };
    let set_at = i64::try_from(set_at).unwrap_or(0).saturating_mul(1000);
    let business = business_of(&session, &jid, TITLE).await?;
    Ok(Json(json!({
        "wuid": jid.to_string(),
        "name": item.get("name"),
        "numberExists": true,
        "picture": picture,
        "status": {"status": status, "setAt": super::instance::iso(set_at)},
        "isBusiness": business.is_some(),
        "email": business.as_ref().and_then(|b| b.email.clone()),
        "description": business.as_ref().map(|b| b.description.clone()),
        "website": business.as_ref().and_then(|b| b.websites.first().cloned()),
    })))
}

/// `POST /chat/fetchProfilePictureUrl/{instance}` → 200 `{wuid, profilePictureUrl}`: the URL of
/// the user's (or group's) full-size picture, `null` when there is none or it is hidden.
///
/// Deviation: Evolution fails inside `createJid` without a `number` (500); zapin answers 400.
pub async fn fetch_picture_url(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    const TITLE: &str = "Error fetching profile picture";
    let number = validate_optional_number(&body?)?.ok_or_else(|| {
        ApiError::from(ErrorEnvelope::bad_request([
            "instance requires property \"number\"",
        ]))
    })?;
    let jid = to_jid(&number)
        .parse::<Jid>()
        .ok()
        .filter(|j| j.is_pn() || j.is_lid() || j.is_group())
        .map(|j| j.to_non_ad())
        .ok_or_else(|| {
            ApiError::from(ErrorEnvelope::bad_request([
                TITLE.to_owned(),
                format!("Error: invalid number {number}"),
            ]))
        })?;
    let session = open_session(&state, &instance)?;
    let url = match run(
        &session,
        AccountOp::FetchPicture { jid: jid.clone() },
        TITLE,
    )
    .await?
    {
        AccountAnswer::Picture(url) => url,
        _ => None,
    };
    Ok(Json(
        json!({"wuid": jid.to_string(), "profilePictureUrl": url}),
    ))
}
