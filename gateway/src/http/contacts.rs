//! `POST /chat/findContacts/{instance}` (contract row 33) and `POST /chat/findChats/{instance}`
//! (row 36), read from what the gateway stored: contact rows come from every message in or out
//! and from push names; a chat is every conversation that has a stored message.
//!
//! Differences from Evolution: a contact's `id` is derived from the instance and the JID (stable,
//! 25 characters starting with `c` like Evolution's cuids) because zapin keys contacts by JID;
//! `lastMessage.message` is the stored content as is (Evolution strips media to its caption);
//! `unreadCount` counts the peer's messages this account has not marked read.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zapin_compat_evolution::request::{validate_find_chats, validate_find_contacts};
use zapin_compat_evolution::response::OWN_PUSH_NAME;

use super::body::JsonBody;
use super::guard::Authorized;
use super::instance::iso;
use super::{ApiError, AppState};
use crate::db::{ChatQuery, ChatSummary, ContactRecord};

/// A chat's messaging window after its creation (Evolution's `windowExpires`).
const WINDOW_MS: i64 = 24 * 3600 * 1000;

/// The stable id of a contact row.
fn contact_id(instance_id: &str, remote_jid: &str) -> String {
    let digest = Sha256::new()
        .chain_update(instance_id.as_bytes())
        .chain_update([0u8])
        .chain_update(remote_jid.as_bytes())
        .finalize();
    let mut id = String::from("c");
    id.push_str(&hex::encode(digest)[..24]);
    id
}

fn contact_json(c: &ContactRecord) -> Value {
    let is_group = c.remote_jid.ends_with("@g.us");
    let is_saved = c.push_name.as_deref().is_some_and(|n| !n.is_empty())
        || c.profile_pic_url.as_deref().is_some_and(|u| !u.is_empty());
    let kind = if is_group {
        "group"
    } else if is_saved {
        "contact"
    } else {
        "group_member"
    };
    json!({
        "id": contact_id(&c.instance_id, &c.remote_jid),
        "remoteJid": c.remote_jid,
        "pushName": c.push_name,
        "profilePicUrl": c.profile_pic_url,
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
        "instanceId": c.instance_id,
        "isGroup": is_group,
        "isSaved": is_saved,
        "type": kind,
    })
}

pub async fn find_contacts(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Vec<Value>>, ApiError> {
    let req = validate_find_contacts(&body?)?;
    let take = req.take.map(|t| u32::try_from(t).unwrap_or(u32::MAX));
    let mut tx = state.db.begin().await?;
    let rows = tx
        .find_contacts(&instance.id, req.remote_jid.as_deref(), take, req.skip)
        .await?;
    tx.rollback().await?;
    Ok(Json(rows.iter().map(contact_json).collect()))
}

fn chat_json(s: ChatSummary, now_ms: i64) -> Value {
    let m = &s.last;
    let is_group = m.remote_jid.ends_with("@g.us");
    let contact_name = s.contact.as_ref().and_then(|c| c.push_name.clone());
    let push_name = if is_group {
        s.chat
            .as_ref()
            .and_then(|c| c.name.clone())
            .or(contact_name)
    } else {
        contact_name.or_else(|| m.push_name.clone().filter(|_| !m.from_me))
    };
    let window_start = s.chat.as_ref().map(|c| c.created_at);
    let last_push_name = if m.from_me {
        Some(OWN_PUSH_NAME.to_owned())
    } else {
        m.push_name.clone()
    };
    let mut key = json!({"remoteJid": m.remote_jid, "fromMe": m.from_me, "id": m.key_id});
    if let Some(p) = &m.participant {
        key["participant"] = json!(p);
    }
    let context_info = (!m.context_info.is_null()).then(|| m.context_info.clone());
    json!({
        "id": s.contact.as_ref().map(|c| contact_id(&c.instance_id, &c.remote_jid)),
        "remoteJid": m.remote_jid,
        "pushName": push_name,
        "profilePicUrl": s.contact.as_ref().and_then(|c| c.profile_pic_url.clone()),
        "updatedAt": iso(m.timestamp.saturating_mul(1000)),
        "windowStart": window_start.map(iso),
        "windowExpires": window_start.map(|t| iso(t.saturating_add(WINDOW_MS))),
        "windowActive": window_start.is_some_and(|t| t.saturating_add(WINDOW_MS) > now_ms),
        "lastMessage": {
            "id": m.key_id,
            "key": key,
            "pushName": last_push_name,
            "participant": m.participant,
            "messageType": m.message_type,
            "message": m.message,
            "contextInfo": context_info,
            "source": m.source,
            "messageTimestamp": m.timestamp,
            "instanceId": m.instance_id,
            "sessionId": Value::Null,
            "status": m.status,
        },
        "unreadCount": s.unread,
        "isSaved": s.contact.is_some(),
    })
}

pub async fn find_chats(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<Vec<Value>>, ApiError> {
    let req = validate_find_chats(&body?)?;
    let query = ChatQuery {
        remote_jid: req.remote_jid,
        timestamp_gte: req.timestamp_bounds.map(|(gte, _)| gte),
        timestamp_lte: req.timestamp_bounds.map(|(_, lte)| lte),
        take: req.take.map(|t| u32::try_from(t).unwrap_or(u32::MAX)),
        skip: req.skip,
    };
    let mut tx = state.db.begin().await?;
    let rows = tx.find_chats(&instance.id, &query).await?;
    tx.rollback().await?;
    let now = crate::db::now_ms();
    Ok(Json(rows.into_iter().map(|s| chat_json(s, now)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_ids_are_stable_and_cuid_shaped() {
        let a = contact_id("inst", "1@s.whatsapp.net");
        assert_eq!(a, contact_id("inst", "1@s.whatsapp.net"));
        assert_ne!(a, contact_id("inst2", "1@s.whatsapp.net"));
        assert_eq!(a.len(), 25);
        assert!(a.starts_with('c'));
    }
}
