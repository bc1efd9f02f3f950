//! Typed repository functions, all on [`Tx`] so that a state change and its events share one
//! transaction. Functions that report an event take the envelope builder as a closure over the
//! stored row: there is no way to make the change without also enqueueing its event.

use serde::Serialize;

use super::models::{
    Chat, Contact, Disconnection, Instance, InstanceDetails, Message, MessagePage, MessageQuery,
    NewInstance, Settings, WebhookConfig, WebhookSet,
};
use super::{DbError, StatusChange, Tx, new_uuid, now_ms, with_conn};
use crate::webhook::{EVENT_INSTANCE_CREATE, EVENT_INSTANCE_DELETE, EVENT_MESSAGES_UPSERT};

type InstanceRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    i64,
);

fn instance(r: InstanceRow) -> Instance {
    let (
        id,
        name,
        token,
        token_hash,
        owner_jid,
        profile_name,
        connection_status,
        integration,
        number,
        created_at,
        updated_at,
    ) = r;
    Instance {
        id,
        name,
        token,
        token_hash,
        owner_jid,
        profile_name,
        connection_status,
        integration,
        number,
        created_at,
        updated_at,
    }
}

type WebhookRow = (
    String,
    String,
    bool,
    String,
    bool,
    bool,
    String,
    Option<String>,
    i64,
    i64,
);

fn webhook(r: WebhookRow) -> Result<WebhookConfig, DbError> {
    let (id, url, enabled, events, by_events, base64, headers, secret, created_at, updated_at) = r;
    Ok(WebhookConfig {
        id,
        url,
        enabled,
        events: serde_json::from_str(&events).map_err(|_| DbError::Corrupt("webhook events"))?,
        by_events,
        base64,
        headers: serde_json::from_str(&headers).map_err(|_| DbError::Corrupt("webhook headers"))?,
        secret,
        created_at,
        updated_at,
    })
}

pub(super) type MessageRow = (
    String,
    String,
    String,
    bool,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    Option<String>,
    String,
    Option<String>,
);

pub(super) const MESSAGE_COLUMNS: &str = "instance_id, key_id, remote_jid, from_me, participant, push_name, \
     message, message_type, timestamp, status, source, context_info";

pub(super) fn message(r: MessageRow) -> Result<Message, DbError> {
    let (
        instance_id,
        key_id,
        remote_jid,
        from_me,
        participant,
        push_name,
        message,
        message_type,
        timestamp,
        status,
        source,
        context_info,
    ) = r;
    let context_info = match context_info {
        Some(raw) => {
            serde_json::from_str(&raw).map_err(|_| DbError::Corrupt("message context info"))?
        }
        None => serde_json::Value::Null,
    };
    Ok(Message {
        instance_id,
        key_id,
        remote_jid,
        from_me,
        participant,
        push_name,
        message: serde_json::from_str(&message).map_err(|_| DbError::Corrupt("message json"))?,
        message_type,
        timestamp,
        status,
        source,
        context_info,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl super::Db {
    /// Reads an instance by name outside any transaction: the guard's lookup on every request,
    /// which must not take SQLite's write lock as [`super::Db::begin`] does.
    pub async fn instance_by_name(&self, name: &str) -> Result<Option<Instance>, DbError> {
        let row: Option<InstanceRow> = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(
                "SELECT id, name, token, token_hash, owner_jid, profile_name, connection_status, integration, \
                 number, created_at, updated_at FROM instances WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(instance))
    }

    /// Reads an instance by id outside any transaction (like [`Self::instance_by_name`]).
    pub async fn instance_by_id(&self, id: &str) -> Result<Option<Instance>, DbError> {
        let row: Option<InstanceRow> = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(
                "SELECT id, name, token, token_hash, owner_jid, profile_name, connection_status, integration, \
                 number, created_at, updated_at FROM instances WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(instance))
    }

    /// A stored message by key id, outside any transaction (a send reads its quote with it
    /// before the engine call, when it must not hold SQLite's write lock).
    pub async fn message_by_key(
        &self,
        instance_id: &str,
        key_id: &str,
    ) -> Result<Option<Message>, DbError> {
        let row: Option<MessageRow> = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE instance_id = $1 AND key_id = $2"
            )))
            .bind(instance_id)
            .bind(key_id)
            .fetch_optional(c)
            .await?
        });
        row.map(message).transpose()
    }
}

impl Tx {
    /// Creates the instance row and enqueues `INSTANCE_CREATE` with the body `envelope` builds
    /// from the stored row. [`DbError::NameTaken`] if the name is in use.
    pub async fn create_instance<B: Serialize>(
        &mut self,
        new: &NewInstance,
        envelope: impl FnOnce(&Instance) -> B,
    ) -> Result<Instance, DbError> {
        let row = self.insert_instance(new).await?;
        let body = envelope(&row);
        self.enqueue_event(&row.id, EVENT_INSTANCE_CREATE, &body)
            .await?;
        Ok(row)
    }

    /// Creates the instance row without reporting it. For callers that must store more (its
    /// webhook, settings) before enqueueing `INSTANCE_CREATE` in the same transaction, so that
    /// the event is routed to the webhook created with it.
    pub async fn insert_instance(&mut self, new: &NewInstance) -> Result<Instance, DbError> {
        let now = now_ms();
        let row = Instance {
            id: new_uuid(),
            name: new.name.clone(),
            token: new.token.clone(),
            token_hash: new.token_hash.clone(),
            owner_jid: None,
            profile_name: None,
            connection_status: new.connection_status.clone(),
            integration: new.integration.clone(),
            number: new.number.clone(),
            created_at: now,
            updated_at: now,
        };
        let result = with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "INSERT INTO instances (id, name, token, token_hash, owner_jid, profile_name, \
                 connection_status, integration, number, created_at, updated_at) \
                 VALUES ($1, $2, $3, $8, NULL, NULL, $4, $5, $6, $7, $7)",
            )
            .bind(&row.id)
            .bind(&row.name)
            .bind(&row.token)
            .bind(&row.connection_status)
            .bind(&row.integration)
            .bind(&row.number)
            .bind(now)
            .bind(&row.token_hash)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(DbError::NameTaken(new.name.clone())),
            Err(e) => return Err(e.into()),
        }
        Ok(row)
    }

    /// How many messages, contacts and chats an instance owns (fetchInstances' `_count`).
    pub async fn instance_counts(&mut self, id: &str) -> Result<(i64, i64, i64), DbError> {
        let counts: (i64, i64, i64) = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM messages WHERE instance_id = $1), \
                 (SELECT COUNT(*) FROM contacts WHERE instance_id = $1), \
                 (SELECT COUNT(*) FROM chats WHERE instance_id = $1)",
            )
            .bind(id)
            .fetch_one(c)
            .await?
        });
        Ok(counts)
    }

    pub async fn get_instance(&mut self, id: &str) -> Result<Option<Instance>, DbError> {
        let row: Option<InstanceRow> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT id, name, token, token_hash, owner_jid, profile_name, connection_status, integration, \
                 number, created_at, updated_at FROM instances WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(instance))
    }

    pub async fn get_instance_by_name(&mut self, name: &str) -> Result<Option<Instance>, DbError> {
        let row: Option<InstanceRow> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT id, name, token, token_hash, owner_jid, profile_name, connection_status, integration, \
                 number, created_at, updated_at FROM instances WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(instance))
    }

    /// All instances, by name.
    pub async fn list_instances(&mut self) -> Result<Vec<Instance>, DbError> {
        let rows: Vec<InstanceRow> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT id, name, token, token_hash, owner_jid, profile_name, connection_status, integration, \
                 number, created_at, updated_at FROM instances ORDER BY name",
            )
            .fetch_all(c)
            .await?
        });
        Ok(rows.into_iter().map(instance).collect())
    }

    /// Records what the connection learnt about the account.
    pub async fn update_instance_connection(
        &mut self,
        id: &str,
        connection_status: &str,
        owner_jid: Option<&str>,
        profile_name: Option<&str>,
    ) -> Result<(), DbError> {
        let done = with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "UPDATE instances SET connection_status = $2, owner_jid = $3, profile_name = $4, \
                 updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(connection_status)
            .bind(owner_jid)
            .bind(profile_name)
            .bind(now_ms())
            .execute(c)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(DbError::NoInstance(id.to_owned()));
        }
        Ok(())
    }

    /// Records the disconnect that closed the instance (fetchInstances' `disconnection*`).
    pub async fn record_disconnection(
        &mut self,
        id: &str,
        disconnection: &Disconnection,
    ) -> Result<(), DbError> {
        let done = with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "UPDATE instances SET disconnection_reason_code = $2, disconnection_object = $3, \
                 disconnection_at = $4, updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(disconnection.reason_code)
            .bind(&disconnection.object)
            .bind(disconnection.at)
            .bind(now_ms())
            .execute(c)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(DbError::NoInstance(id.to_owned()));
        }
        Ok(())
    }

    /// Stores the `businessId` given at create.
    pub async fn set_business_id(&mut self, id: &str, business_id: &str) -> Result<(), DbError> {
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query("UPDATE instances SET business_id = $2 WHERE id = $1")
                .bind(id)
                .bind(business_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// What fetchInstances shows beyond [`Instance`] (see [`InstanceDetails`]).
    pub async fn instance_details(&mut self, id: &str) -> Result<InstanceDetails, DbError> {
        type Row = (Option<i64>, Option<String>, Option<i64>, Option<String>);
        let row: Option<Row> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT disconnection_reason_code, disconnection_object, disconnection_at, \
                 business_id FROM instances WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(c)
            .await?
        });
        let Some((code, object, at, business_id)) = row else {
            return Ok(InstanceDetails::default());
        };
        let disconnection = match (code, object, at) {
            (Some(reason_code), Some(object), Some(at)) => Some(Disconnection {
                reason_code,
                object,
                at,
            }),
            _ => None,
        };
        Ok(InstanceDetails {
            disconnection,
            business_id,
        })
    }

    /// Enqueues `INSTANCE_DELETE` (routed while the instance's webhook still exists), then deletes
    /// the instance and, by cascade, everything it owns. False if there was no such instance.
    pub async fn delete_instance<B: Serialize>(
        &mut self,
        id: &str,
        envelope: impl FnOnce(&Instance) -> B,
    ) -> Result<bool, DbError> {
        let Some(row) = self.get_instance(id).await? else {
            return Ok(false);
        };
        let body = envelope(&row);
        self.enqueue_event(&row.id, EVENT_INSTANCE_DELETE, &body)
            .await?;
        with_conn!(tx &mut self.inner, |c| {
            // Bot sessions are keyed by instance id without a foreign key (zapin-bots owns
            // them); bot configuration rows go by cascade.
            sqlx::query("DELETE FROM bot_sessions WHERE instance = $1")
                .bind(id)
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM instances WHERE id = $1")
                .bind(id)
                .execute(c)
                .await?
            .rows_affected()
        });
        Ok(true)
    }

    pub async fn set_settings(&mut self, instance_id: &str, s: &Settings) -> Result<(), DbError> {
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "INSERT INTO settings (instance_id, reject_call, msg_call, groups_ignore, \
                 always_online, read_messages, read_status, sync_full_history, wavoip_token, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (instance_id) DO UPDATE SET reject_call = excluded.reject_call, \
                 msg_call = excluded.msg_call, groups_ignore = excluded.groups_ignore, \
                 always_online = excluded.always_online, read_messages = excluded.read_messages, \
                 read_status = excluded.read_status, sync_full_history = excluded.sync_full_history, \
                 wavoip_token = excluded.wavoip_token, updated_at = excluded.updated_at",
            )
            .bind(instance_id)
            .bind(s.reject_call)
            .bind(&s.msg_call)
            .bind(s.groups_ignore)
            .bind(s.always_online)
            .bind(s.read_messages)
            .bind(s.read_status)
            .bind(s.sync_full_history)
            .bind(&s.wavoip_token)
            .bind(now_ms())
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn get_settings(&mut self, instance_id: &str) -> Result<Option<Settings>, DbError> {
        type Row = (bool, String, bool, bool, bool, bool, bool, String);
        let row: Option<Row> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT reject_call, msg_call, groups_ignore, always_online, read_messages, \
                 read_status, sync_full_history, wavoip_token FROM settings WHERE instance_id = $1",
            )
            .bind(instance_id)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(
            |(
                reject_call,
                msg_call,
                groups_ignore,
                always_online,
                read_messages,
                read_status,
                sync_full_history,
                wavoip_token,
            )| Settings {
                reject_call,
                msg_call,
                groups_ignore,
                always_online,
                read_messages,
                read_status,
                sync_full_history,
                wavoip_token,
            },
        ))
    }

    /// Creates or replaces the instance's webhook and returns the stored row.
    pub async fn set_webhook(
        &mut self,
        instance_id: &str,
        w: &WebhookSet,
    ) -> Result<WebhookConfig, DbError> {
        let events =
            serde_json::to_string(&w.events).map_err(|_| DbError::Corrupt("webhook events"))?;
        let headers =
            serde_json::to_string(&w.headers).map_err(|_| DbError::Corrupt("webhook headers"))?;
        let now = now_ms();
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "INSERT INTO webhooks (instance_id, id, url, enabled, events, by_events, base64, \
                 headers, secret, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                 ON CONFLICT (instance_id) DO UPDATE SET url = excluded.url, \
                 enabled = excluded.enabled, events = excluded.events, \
                 by_events = excluded.by_events, base64 = excluded.base64, \
                 headers = excluded.headers, secret = excluded.secret, \
                 updated_at = excluded.updated_at",
            )
            .bind(instance_id)
            .bind(new_uuid())
            .bind(&w.url)
            .bind(w.enabled)
            .bind(&events)
            .bind(w.by_events)
            .bind(w.base64)
            .bind(&headers)
            .bind(&w.secret)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
        });
        self.get_webhook(instance_id)
            .await?
            .ok_or_else(|| DbError::NoInstance(instance_id.to_owned()))
    }

    pub async fn get_webhook(
        &mut self,
        instance_id: &str,
    ) -> Result<Option<WebhookConfig>, DbError> {
        let row: Option<WebhookRow> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT id, url, enabled, events, by_events, base64, headers, secret, created_at, \
                 updated_at FROM webhooks WHERE instance_id = $1",
            )
            .bind(instance_id)
            .fetch_optional(c)
            .await?
        });
        row.map(webhook).transpose()
    }

    /// Stores a message (replacing the stored copy of the same key id). Only a message not seen
    /// before enqueues `MESSAGES_UPSERT`, so a redelivered message is not reported twice.
    /// Returns whether it was new.
    pub async fn upsert_message<B: Serialize>(
        &mut self,
        m: &Message,
        envelope: impl FnOnce(&Message) -> B,
    ) -> Result<bool, DbError> {
        let inserted = self.write_message(m).await?;
        self.touch_contact(m).await?;
        if inserted {
            let body = envelope(m);
            self.enqueue_event(&m.instance_id, EVENT_MESSAGES_UPSERT, &body)
                .await?;
        }
        Ok(inserted)
    }

    /// Every chat a stored message passes through is a contact row, as in Evolution (findContacts
    /// lists groups and the people one only wrote to); only a 1:1 inbound message names it.
    /// Sends do this once answered ([`Tx::mark_send_answered`]), so a withdrawn send leaves no
    /// contact behind.
    pub(super) async fn touch_contact(&mut self, m: &Message) -> Result<(), DbError> {
        if m.remote_jid == "status@broadcast" {
            return Ok(());
        }
        let from_peer = !m.from_me && !m.remote_jid.ends_with("@g.us");
        self.upsert_contact(&Contact {
            instance_id: m.instance_id.clone(),
            remote_jid: m.remote_jid.clone(),
            push_name: m.push_name.clone().filter(|n| from_peer && !n.is_empty()),
            profile_pic_url: None,
        })
        .await
    }

    /// Stores a message without reporting it (a send reports `SEND_MESSAGE` itself). Returns
    /// whether it was new.
    pub async fn write_message(&mut self, m: &Message) -> Result<bool, DbError> {
        let content =
            serde_json::to_string(&m.message).map_err(|_| DbError::Corrupt("message json"))?;
        let context_info = if m.context_info.is_null() {
            None
        } else {
            Some(
                serde_json::to_string(&m.context_info)
                    .map_err(|_| DbError::Corrupt("message context info"))?,
            )
        };
        let existed: Option<i64> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_scalar("SELECT id FROM messages WHERE instance_id = $1 AND key_id = $2")
                .bind(&m.instance_id)
                .bind(&m.key_id)
                .fetch_optional(c)
                .await?
        });
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "INSERT INTO messages (instance_id, key_id, remote_jid, from_me, participant, \
                 push_name, message, message_type, timestamp, status, source, context_info) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (instance_id, key_id) DO UPDATE SET remote_jid = excluded.remote_jid, \
                 from_me = excluded.from_me, participant = excluded.participant, \
                 push_name = excluded.push_name, message = excluded.message, \
                 message_type = excluded.message_type, timestamp = excluded.timestamp, \
                 status = excluded.status, source = excluded.source, \
                 context_info = excluded.context_info",
            )
            .bind(&m.instance_id)
            .bind(&m.key_id)
            .bind(&m.remote_jid)
            .bind(m.from_me)
            .bind(&m.participant)
            .bind(&m.push_name)
            .bind(&content)
            .bind(&m.message_type)
            .bind(m.timestamp)
            .bind(&m.status)
            .bind(&m.source)
            .bind(&context_info)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(existed.is_none())
    }

    /// Records a message's new delivery status, which only moves forward: `PENDING` → `ERROR` →
    /// `SERVER_ACK` → `DELIVERY_ACK` → `READ` → `PLAYED` → `DELETED` (an equal status is
    /// recorded again). A status older than the stored one is [`StatusChange::Stale`] and leaves
    /// the row alone: the server ack of a message sent again under its id arriving after the
    /// first copy's delivery receipt, say. `ERROR` sits below the acks so that a message marked
    /// failed that turns out delivered still moves on.
    pub async fn set_message_status(
        &mut self,
        instance_id: &str,
        key_id: &str,
        status: &str,
    ) -> Result<StatusChange, DbError> {
        const RANK_STORED: &str = "CASE status WHEN 'ERROR' THEN 1 WHEN 'SERVER_ACK' THEN 2 \
             WHEN 'DELIVERY_ACK' THEN 3 WHEN 'READ' THEN 4 WHEN 'PLAYED' THEN 5 \
             WHEN 'DELETED' THEN 6 ELSE 0 END";
        const RANK_NEW: &str = "CASE $3 WHEN 'ERROR' THEN 1 WHEN 'SERVER_ACK' THEN 2 \
             WHEN 'DELIVERY_ACK' THEN 3 WHEN 'READ' THEN 4 WHEN 'PLAYED' THEN 5 \
             WHEN 'DELETED' THEN 6 ELSE 0 END";
        let sql = format!(
            "UPDATE messages SET status = $3 WHERE instance_id = $1 AND key_id = $2 \
             AND {RANK_STORED} <= {RANK_NEW}"
        );
        let done = with_conn!(tx &mut self.inner, |c| {
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(instance_id)
                .bind(key_id)
                .bind(status)
                .execute(c)
                .await?
                .rows_affected()
        });
        if done > 0 {
            return Ok(StatusChange::Recorded);
        }
        Ok(if self.get_message(instance_id, key_id).await?.is_some() {
            StatusChange::Stale
        } else {
            StatusChange::Missing
        })
    }

    pub async fn get_message(
        &mut self,
        instance_id: &str,
        key_id: &str,
    ) -> Result<Option<Message>, DbError> {
        let row: Option<MessageRow> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE instance_id = $1 AND key_id = $2"
            )))
            .bind(instance_id)
            .bind(key_id)
            .fetch_optional(c)
            .await?
        });
        row.map(message).transpose()
    }

    /// Messages of an instance (optionally one chat), newest first; `page` counts from 1.
    pub async fn find_messages(
        &mut self,
        instance_id: &str,
        remote_jid: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<MessagePage, DbError> {
        let query = MessageQuery {
            remote_jid: remote_jid.map(str::to_owned),
            ..MessageQuery::default()
        };
        self.query_messages(instance_id, &query, page, page_size)
            .await
    }

    /// Messages of an instance matching every `Some` field of `query`, newest first; `page`
    /// counts from 1 and `page_size` is clamped to 1..=1000.
    pub async fn query_messages(
        &mut self,
        instance_id: &str,
        query: &MessageQuery,
        page: u32,
        page_size: u32,
    ) -> Result<MessagePage, DbError> {
        const FILTER: &str = "instance_id = $1 AND ($2 IS NULL OR remote_jid = $2) \
             AND ($3 IS NULL OR key_id = $3) AND ($4 IS NULL OR from_me = $4) \
             AND ($5 IS NULL OR message_type = $5) AND ($6 IS NULL OR key_id = $6) \
             AND ($7 IS NULL OR participant = $7) AND ($8 IS NULL OR source = $8) \
             AND ($9 IS NULL OR timestamp >= $9) AND ($10 IS NULL OR timestamp <= $10)";
        let page = page.max(1);
        let page_size = page_size.clamp(1, 1000);
        let offset = i64::from(page - 1) * i64::from(page_size);
        let count_sql = format!("SELECT COUNT(*) FROM messages WHERE {FILTER}");
        let rows_sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE {FILTER} \
             ORDER BY timestamp DESC, id DESC LIMIT $11 OFFSET $12"
        );
        macro_rules! bind_filter {
            ($q:expr) => {
                $q.bind(instance_id)
                    .bind(&query.remote_jid)
                    .bind(&query.key_id)
                    .bind(query.from_me)
                    .bind(&query.message_type)
                    .bind(&query.id)
                    .bind(&query.participant)
                    .bind(&query.source)
                    .bind(query.timestamp_gte)
                    .bind(query.timestamp_lte)
            };
        }
        let (total, rows): (i64, Vec<MessageRow>) = with_conn!(tx &mut self.inner, |c| {
            let total: i64 =
                bind_filter!(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.as_str())))
                    .fetch_one(&mut *c)
                    .await?;
            let rows = bind_filter!(sqlx::query_as(sqlx::AssertSqlSafe(rows_sql.as_str())))
                .bind(i64::from(page_size))
                .bind(offset)
                .fetch_all(c)
                .await?;
            (total, rows)
        });
        Ok(MessagePage {
            total,
            page,
            page_size,
            messages: rows.into_iter().map(message).collect::<Result<_, _>>()?,
        })
    }

    pub async fn upsert_contact(&mut self, contact: &Contact) -> Result<(), DbError> {
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "INSERT INTO contacts (instance_id, remote_jid, push_name, profile_pic_url, \
                 updated_at, created_at) VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (instance_id, remote_jid) DO UPDATE SET \
                 push_name = COALESCE(excluded.push_name, contacts.push_name), \
                 profile_pic_url = COALESCE(excluded.profile_pic_url, contacts.profile_pic_url), \
                 updated_at = excluded.updated_at",
            )
            .bind(&contact.instance_id)
            .bind(&contact.remote_jid)
            .bind(&contact.push_name)
            .bind(&contact.profile_pic_url)
            .bind(now_ms())
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn list_contacts(&mut self, instance_id: &str) -> Result<Vec<Contact>, DbError> {
        type Row = (String, String, Option<String>, Option<String>);
        let rows: Vec<Row> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT instance_id, remote_jid, push_name, profile_pic_url FROM contacts \
                 WHERE instance_id = $1 ORDER BY remote_jid",
            )
            .bind(instance_id)
            .fetch_all(c)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(instance_id, remote_jid, push_name, profile_pic_url)| Contact {
                    instance_id,
                    remote_jid,
                    push_name,
                    profile_pic_url,
                },
            )
            .collect())
    }

    pub async fn upsert_chat(&mut self, chat: &Chat) -> Result<(), DbError> {
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "INSERT INTO chats (instance_id, remote_jid, name, unread_messages, updated_at, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (instance_id, remote_jid) DO UPDATE SET \
                 name = COALESCE(excluded.name, chats.name), \
                 unread_messages = excluded.unread_messages, updated_at = excluded.updated_at",
            )
            .bind(&chat.instance_id)
            .bind(&chat.remote_jid)
            .bind(&chat.name)
            .bind(chat.unread_messages)
            .bind(now_ms())
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn list_chats(&mut self, instance_id: &str) -> Result<Vec<Chat>, DbError> {
        type Row = (String, String, Option<String>, i64);
        let rows: Vec<Row> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT instance_id, remote_jid, name, unread_messages FROM chats \
                 WHERE instance_id = $1 ORDER BY remote_jid",
            )
            .bind(instance_id)
            .fetch_all(c)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(instance_id, remote_jid, name, unread_messages)| Chat {
                instance_id,
                remote_jid,
                name,
                unread_messages,
            })
            .collect())
    }
}
