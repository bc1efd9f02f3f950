//! What `findContacts` and `findChats` read: the contact rows the gateway keeps from what it
//! sees (messages in and out, push names), and one summary per chat built from its latest
//! message, as Evolution's raw query builds it.

use std::collections::HashMap;

use super::models::Message;
use super::repo::{MESSAGE_COLUMNS, MessageRow, message};
use super::{DbError, Tx, with_conn};

/// A stored contact with its times (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub instance_id: String,
    pub remote_jid: String,
    pub push_name: Option<String>,
    pub profile_pic_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored chat row (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRecord {
    pub remote_jid: String,
    pub name: Option<String>,
    pub created_at: i64,
}

/// One chat of `findChats`: its latest message and what the gateway knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSummary {
    pub last: Message,
    pub contact: Option<ContactRecord>,
    pub chat: Option<ChatRecord>,
    /// Messages from the peer not yet read on this account.
    pub unread: i64,
}

/// Filters and paging of [`Tx::find_chats`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatQuery {
    pub remote_jid: Option<String>,
    /// Unix seconds, inclusive; applied to the messages a chat's latest one is chosen from.
    pub timestamp_gte: Option<i64>,
    pub timestamp_lte: Option<i64>,
    pub take: Option<u32>,
    pub skip: u64,
}

type ContactRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
);

fn contact(r: ContactRow) -> ContactRecord {
    let (instance_id, remote_jid, push_name, profile_pic_url, created_at, updated_at) = r;
    ContactRecord {
        instance_id,
        remote_jid,
        push_name,
        profile_pic_url,
        created_at: created_at.unwrap_or(updated_at),
        updated_at,
    }
}

/// `LIMIT` for "no limit" on both backends.
fn limit(take: Option<u32>) -> i64 {
    take.map_or(i64::MAX, i64::from)
}

fn offset(skip: u64) -> i64 {
    i64::try_from(skip).unwrap_or(i64::MAX)
}

impl Tx {
    /// Contacts of an instance (one, when `remote_jid` is set), oldest first.
    pub async fn find_contacts(
        &mut self,
        instance_id: &str,
        remote_jid: Option<&str>,
        take: Option<u32>,
        skip: u64,
    ) -> Result<Vec<ContactRecord>, DbError> {
        let rows: Vec<ContactRow> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT instance_id, remote_jid, push_name, profile_pic_url, created_at, \
                 updated_at FROM contacts WHERE instance_id = $1 \
                 AND ($2 IS NULL OR remote_jid = $2) \
                 ORDER BY COALESCE(created_at, updated_at), remote_jid LIMIT $3 OFFSET $4",
            )
            .bind(instance_id)
            .bind(remote_jid)
            .bind(limit(take))
            .bind(offset(skip))
            .fetch_all(c)
            .await?
        });
        Ok(rows.into_iter().map(contact).collect())
    }

    /// One summary per chat that has messages (in the time range), latest activity first.
    pub async fn find_chats(
        &mut self,
        instance_id: &str,
        query: &ChatQuery,
    ) -> Result<Vec<ChatSummary>, DbError> {
        const RANGE: &str = "($3 IS NULL OR timestamp >= $3) AND ($4 IS NULL OR timestamp <= $4)";
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE instance_id = $1 \
             AND ($2 IS NULL OR remote_jid = $2) AND {RANGE} \
             AND id = (SELECT m2.id FROM messages m2 WHERE m2.instance_id = $1 \
             AND m2.remote_jid = m.remote_jid \
             AND ($3 IS NULL OR m2.timestamp >= $3) AND ($4 IS NULL OR m2.timestamp <= $4) \
             ORDER BY m2.timestamp DESC, m2.id DESC LIMIT 1) \
             ORDER BY timestamp DESC, id DESC LIMIT $5 OFFSET $6"
        );
        let rows: Vec<MessageRow> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(instance_id)
                .bind(&query.remote_jid)
                .bind(query.timestamp_gte)
                .bind(query.timestamp_lte)
                .bind(limit(query.take))
                .bind(offset(query.skip))
                .fetch_all(c)
                .await?
        });
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let contact_rows: Vec<ContactRow> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT instance_id, remote_jid, push_name, profile_pic_url, created_at, \
                 updated_at FROM contacts WHERE instance_id = $1",
            )
            .bind(instance_id)
            .fetch_all(c)
            .await?
        });
        let mut contacts: HashMap<String, ContactRecord> = contact_rows
            .into_iter()
            .map(|r| {
                let c = contact(r);
                (c.remote_jid.clone(), c)
            })
            .collect();
        let chat_rows: Vec<(String, Option<String>, Option<i64>, i64)> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT remote_jid, name, created_at, updated_at FROM chats \
                 WHERE instance_id = $1",
            )
            .bind(instance_id)
            .fetch_all(c)
            .await?
        });
        let mut chats: HashMap<String, ChatRecord> = chat_rows
            .into_iter()
            .map(|(remote_jid, name, created_at, updated_at)| {
                (
                    remote_jid.clone(),
                    ChatRecord {
                        remote_jid,
                        name,
                        created_at: created_at.unwrap_or(updated_at),
                    },
                )
            })
            .collect();
        // Inbound messages still at the delivery state (or before it) are unread; a read
        // receipt from this account moves them to READ.
        let unread_rows: Vec<(String, i64)> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT remote_jid, COUNT(*) FROM messages WHERE instance_id = $1 \
                 AND from_me = $2 AND (status IS NULL OR status IN ('SERVER_ACK', 'DELIVERY_ACK')) \
                 GROUP BY remote_jid",
            )
            .bind(instance_id)
            .bind(false)
            .fetch_all(c)
            .await?
        });
        let unread: HashMap<String, i64> = unread_rows.into_iter().collect();
        rows.into_iter()
            .map(|r| {
                let last = message(r)?;
                Ok(ChatSummary {
                    contact: contacts.remove(&last.remote_jid),
                    chat: chats.remove(&last.remote_jid),
                    unread: unread.get(&last.remote_jid).copied().unwrap_or(0),
                    last,
                })
            })
            .collect()
    }

    /// Marks inbound messages read (findChats' unread count), never moving a status back.
    pub async fn mark_messages_read(
        &mut self,
        instance_id: &str,
        key_ids: &[String],
    ) -> Result<(), DbError> {
        for id in key_ids {
            self.set_message_status(instance_id, id, "READ").await?;
        }
        Ok(())
    }
}
