//! The durable queue of paced sends (`send_queue`): one FIFO per instance, oldest first.
//!
//! A send accepted beyond the pace is a row until it has really gone out; the worker takes the
//! instance's oldest row, waits for the [`super::Pacer`], sends, then deletes the row. A crash
//! between the send and the delete sends it again after the restart, with the same message id
//! (WhatsApp recipients drop duplicate ids), so nothing is lost and nothing is shown twice.

use crate::error::TenancyError;
use crate::sql::{SqlPool, now_ms, with_pool};

/// One queued send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedSend {
    pub id: i64,
    pub instance: String,
    pub chat: String,
    pub message_id: String,
    /// The send request as the gateway will replay it (JSON).
    pub payload: String,
    /// Unix milliseconds.
    pub enqueued_at: i64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
);

const COLUMNS: &str = "id, instance, chat, message_id, payload, enqueued_at, attempts, last_error";

fn queued(r: Row) -> QueuedSend {
    QueuedSend {
        id: r.0,
        instance: r.1,
        chat: r.2,
        message_id: r.3,
        payload: r.4,
        enqueued_at: r.5,
        attempts: u32::try_from(r.6).unwrap_or(u32::MAX),
        last_error: r.7,
    }
}

/// The queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SendQueue {
    pool: SqlPool,
}

impl SendQueue {
    pub fn new(pool: SqlPool) -> Self {
        Self { pool }
    }

    /// Queues a send; durable when this returns. A message id already queued for the instance
    /// is a conflict (a retried request must not send twice).
    pub async fn enqueue(
        &self,
        instance: &str,
        chat: &str,
        message_id: &str,
        payload: &str,
    ) -> Result<i64, TenancyError> {
        let result: Result<i64, sqlx::Error> = with_pool!(&self.pool, |c| {
            sqlx::query_scalar(
                "INSERT INTO send_queue (instance, chat, message_id, payload, enqueued_at, attempts) \
                 VALUES ($1, $2, $3, $4, $5, 0) RETURNING id",
            )
            .bind(instance)
            .bind(chat)
            .bind(message_id)
            .bind(payload)
            .bind(now_ms())
            .fetch_one(c)
            .await
        });
        match result {
            Ok(id) => Ok(id),
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Err(TenancyError::Conflict(format!(
                    "message {message_id:?} is already queued"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The instance's oldest queued send.
    pub async fn head(&self, instance: &str) -> Result<Option<QueuedSend>, TenancyError> {
        Ok(self.peek(instance, 1).await?.into_iter().next())
    }

    /// The instance's oldest `limit` queued sends, oldest first.
    pub async fn peek(&self, instance: &str, limit: u32) -> Result<Vec<QueuedSend>, TenancyError> {
        let rows: Vec<Row> = with_pool!(&self.pool, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM send_queue WHERE instance = $1 ORDER BY id LIMIT $2"
            )))
            .bind(instance)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await?
        });
        Ok(rows.into_iter().map(queued).collect())
    }

    /// Removes a send that went out.
    pub async fn complete(&self, id: i64) -> Result<(), TenancyError> {
        with_pool!(&self.pool, |c| {
            sqlx::query("DELETE FROM send_queue WHERE id = $1")
                .bind(id)
                .execute(c)
                .await?;
        });
        Ok(())
    }

    /// Notes a failed attempt (the send stays queued).
    pub async fn failed(&self, id: i64, error: &str) -> Result<(), TenancyError> {
        with_pool!(&self.pool, |c| {
            sqlx::query(
                "UPDATE send_queue SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(error)
            .execute(c)
            .await?;
        });
        Ok(())
    }

    /// Sends queued for `instance`.
    pub async fn depth(&self, instance: &str) -> Result<u64, TenancyError> {
        let n: i64 = with_pool!(&self.pool, |c| {
            sqlx::query_scalar("SELECT COUNT(*) FROM send_queue WHERE instance = $1")
                .bind(instance)
                .fetch_one(c)
                .await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Every instance with queued sends and how many (a worker resumes them after a restart).
    pub async fn depths(&self) -> Result<Vec<(String, u64)>, TenancyError> {
        let rows: Vec<(String, i64)> = with_pool!(&self.pool, |c| {
            sqlx::query_as(
                "SELECT instance, COUNT(*) FROM send_queue GROUP BY instance ORDER BY instance",
            )
            .fetch_all(c)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(i, n)| (i, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Drops an instance's queue (the instance was deleted); returns how many sends went.
    pub async fn clear(&self, instance: &str) -> Result<u64, TenancyError> {
        Ok(with_pool!(&self.pool, |c| {
            sqlx::query("DELETE FROM send_queue WHERE instance = $1")
                .bind(instance)
                .execute(c)
                .await?
                .rows_affected()
        }))
    }
}
