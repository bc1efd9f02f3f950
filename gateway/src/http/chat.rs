//! `POST /chat/findMessages/{instance}` (contract §13.9), from the database.
//!
//! Filters applied (contract row 34): `where.key.{id,fromMe,remoteJid,participant}`,
//! `where.id` (the record id, which is the key id in zapin), `where.source`,
//! `where.messageType`, and `where.messageTimestamp.{gte,lte}` (date strings, only when both
//! are set). `where.key.remoteJidAlt` is accepted and ignored: zapin stores no alternate JID.
//! Pages count from 1; `offset` is the page size (default 50, at most 1000).

use axum::Extension;
use axum::Json;
use axum::extract::State;
use zapin_compat_evolution::request::validate_find_messages;
use zapin_compat_evolution::response::{
    FindMessagesPage, FindMessagesResponse, MessageKey, MessageRow, MessageStatus,
    MessageUpdateStatus, OWN_PUSH_NAME,
};

use super::body::JsonBody;
use super::guard::Authorized;
use super::{ApiError, AppState};
use crate::db::{Message, MessageQuery};

const MAX_PAGE_SIZE: u64 = 1000;

fn status(stored: Option<&str>) -> Option<MessageStatus> {
    Some(match stored? {
        "ERROR" => MessageStatus::Error,
        "PENDING" => MessageStatus::Pending,
        "SERVER_ACK" => MessageStatus::ServerAck,
        "DELIVERY_ACK" => MessageStatus::DeliveryAck,
        "READ" => MessageStatus::Read,
        "PLAYED" => MessageStatus::Played,
        "DELETED" => MessageStatus::Deleted,
        _ => return None,
    })
}

fn record(m: Message) -> MessageRow {
    let push_name = match (&m.push_name, m.from_me) {
        (Some(name), _) => name.clone(),
        (None, true) => OWN_PUSH_NAME.to_owned(),
        (None, false) => String::new(),
    };
    let context_info = (!m.context_info.is_null()).then_some(m.context_info);
    MessageRow {
        // zapin's rows are unique per (instance, key id), so the key id identifies the row.
        id: m.key_id.clone(),
        key: MessageKey {
            remote_jid: m.remote_jid,
            from_me: m.from_me,
            id: m.key_id,
            participant: m.participant,
            remote_jid_alt: None,
            participant_alt: None,
            addressing_mode: None,
        },
        push_name,
        message_type: m.message_type,
        message: m.message,
        message_timestamp: m.timestamp,
        instance_id: m.instance_id,
        source: m.source,
        context_info,
        message_update: status(m.status.as_deref())
            .map(|status| vec![MessageUpdateStatus { status }])
            .unwrap_or_default(),
    }
}

pub async fn find_messages(
    State(state): State<AppState>,
    Extension(Authorized(instance)): Extension<Authorized>,
    JsonBody(body): JsonBody,
) -> Result<Json<FindMessagesResponse>, ApiError> {
    let req = validate_find_messages(&body?)?;
    let page_size = req.offset.min(MAX_PAGE_SIZE);
    let page = u32::try_from(req.page).unwrap_or(u32::MAX);
    let bounds = req.filter.timestamp_bounds();
    let query = MessageQuery {
        remote_jid: req.filter.key.remote_jid,
        key_id: req.filter.key.id,
        from_me: req.filter.key.from_me,
        message_type: req.filter.message_type,
        id: req.filter.id,
        participant: req.filter.key.participant,
        source: req.filter.source,
        timestamp_gte: bounds.map(|(gte, _)| gte),
        timestamp_lte: bounds.map(|(_, lte)| lte),
    };
    let mut tx = state.db.begin().await?;
    let found = tx
        .query_messages(
            &instance.id,
            &query,
            page,
            u32::try_from(page_size).unwrap_or(1000),
        )
        .await?;
    tx.rollback().await?;
    let total = u64::try_from(found.total).unwrap_or(0);
    let records = found.messages.into_iter().map(record).collect();
    Ok(Json(FindMessagesResponse {
        messages: FindMessagesPage::new(total, req.page, page_size, records),
    }))
}
