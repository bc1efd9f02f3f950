//! Sends the gateway answers for but the server has not acknowledged yet (`pending_sends`).
//!
//! The row is written with the message row, before the engine encrypts or writes anything, and
//! removed in the transaction that records the server's ack or the failure. What is left after a
//! crash is exactly what may be missing at the recipient: [`crate::runtime::sends`] sends it again
//! under the same id, or marks it failed.

use serde_json::Value;

use super::models::Message;
use super::{Db, DbError, Tx, now_ms, with_conn};

/// A reserved send without a server ack.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSend {
    pub instance_id: String,
    pub key_id: String,
    /// The validated sendText body.
    pub request: Value,
    /// Unix milliseconds of the reservation.
    pub reserved_at: i64,
    /// `send.message` was enqueued: the API answered for the message.
    pub answered: bool,
}

type PendingRow = (String, String, String, i64, bool);

fn pending(r: PendingRow) -> Result<PendingSend, DbError> {
    let (instance_id, key_id, request, reserved_at, answered) = r;
    Ok(PendingSend {
        instance_id,
        key_id,
        request: serde_json::from_str(&request).map_err(|_| DbError::Corrupt("pending send"))?,
        reserved_at,
        answered,
    })
}

impl Db {
    /// Pending sends (of one instance, or all), oldest first, read outside any transaction.
    pub async fn pending_sends(
        &self,
        instance_id: Option<&str>,
    ) -> Result<Vec<PendingSend>, DbError> {
        let rows: Vec<PendingRow> = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(
                "SELECT instance_id, key_id, request, reserved_at, answered FROM pending_sends \
                 WHERE ($1 IS NULL OR instance_id = $1) ORDER BY reserved_at, key_id",
            )
            .bind(instance_id)
            .fetch_all(c)
            .await?
        });
        rows.into_iter().map(pending).collect()
    }
}

impl Tx {
    /// Stores a new outgoing message (its status PENDING) and its pending-send row.
    pub async fn reserve_send(
        &mut self,
        message: &Message,
        request: &Value,
    ) -> Result<(), DbError> {
        let request =
            serde_json::to_string(request).map_err(|_| DbError::Corrupt("pending send"))?;
        self.write_message(message).await?;
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "INSERT INTO pending_sends (instance_id, key_id, request, reserved_at, answered) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&message.instance_id)
            .bind(&message.key_id)
            .bind(&request)
            .bind(now_ms())
            .bind(false)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Records that `send.message` is being enqueued for the send. False when it is not pending
    /// or already announced: the caller then enqueues nothing, so the event goes out once.
    pub async fn mark_send_answered(
        &mut self,
        instance_id: &str,
        key_id: &str,
    ) -> Result<bool, DbError> {
        let done = with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "UPDATE pending_sends SET answered = $3 WHERE instance_id = $1 AND key_id = $2 \
                 AND answered = $4",
            )
            .bind(instance_id)
            .bind(key_id)
            .bind(true)
            .bind(false)
            .execute(c)
            .await?
            .rows_affected()
        });
        // The message is real now: its chat becomes a contact row (see `touch_contact`).
        if done > 0
            && let Some(message) = self.get_message(instance_id, key_id).await?
        {
            self.touch_contact(&message).await?;
        }
        Ok(done > 0)
    }

    /// The send is settled (the server acknowledged it, or it failed): nothing to recover.
    /// Returns whether it was pending.
    pub async fn settle_send(&mut self, instance_id: &str, key_id: &str) -> Result<bool, DbError> {
        let done = with_conn!(tx &mut self.inner, |c| {
            sqlx::query("DELETE FROM pending_sends WHERE instance_id = $1 AND key_id = $2")
                .bind(instance_id)
                .bind(key_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Undoes a reservation whose send failed before anything went on the wire: the message row
    /// and the pending row go, as if the request had been refused up front.
    pub async fn withdraw_send(&mut self, instance_id: &str, key_id: &str) -> Result<(), DbError> {
        self.settle_send(instance_id, key_id).await?;
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query("DELETE FROM messages WHERE instance_id = $1 AND key_id = $2")
                .bind(instance_id)
                .bind(key_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// The pending send of `key_id`, if still pending (read inside the transaction).
    pub async fn pending_send(
        &mut self,
        instance_id: &str,
        key_id: &str,
    ) -> Result<Option<PendingSend>, DbError> {
        let row: Option<PendingRow> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(
                "SELECT instance_id, key_id, request, reserved_at, answered FROM pending_sends \
                 WHERE instance_id = $1 AND key_id = $2",
            )
            .bind(instance_id)
            .bind(key_id)
            .fetch_optional(c)
            .await?
        });
        row.map(pending).transpose()
    }
}
