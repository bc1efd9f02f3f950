//! The outbox's storage: the `outbox` and `dead_letter` tables on SQLite or PostgreSQL, written
//! inside the caller's transaction ([`TxConn`]) and drained through an [`Outbox`] handle.
//!
//! Both backends run the same SQL text (`$N` placeholders work on SQLite too; times are Unix
//! milliseconds), so each query is expanded once per backend by `with_conn!`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{PgConnection, PgPool, SqliteConnection, SqlitePool};
use tokio::sync::watch;

use crate::outbox::{DeadLetter, EntryRow, NewDelivery, OutboxEntry, entry};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// A value did not serialise or fit its column.
    #[error("corrupt {0} in the outbox")]
    Corrupt(&'static str),
}

/// The pool the outbox lives in: the gateway's one pool, shared.
#[derive(Clone, Debug)]
pub enum StorePool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A connection inside the caller's open transaction: events are written in the same
/// transaction as the state change they report, so a crash keeps both or neither.
#[derive(Debug)]
pub enum TxConn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

/// Runs `$body` with `$c` bound to the backend-specific executor, once per backend.
macro_rules! with_conn {
    (pool $src:expr, |$c:ident| $body:expr) => {
        match $src {
            $crate::store::StorePool::Sqlite(p) => {
                let $c = p;
                $body
            }
            $crate::store::StorePool::Postgres(p) => {
                let $c = p;
                $body
            }
        }
    };
    (tx $src:expr, |$c:ident| $body:expr) => {
        match $src {
            $crate::store::TxConn::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::TxConn::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random (version 4) UUID in its usual lower-case text form: event ids and lease owners.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    // The OS RNG failing is not recoverable in any useful way; fall back to time-derived bytes
    // rather than panic, since uniqueness (not secrecy) is what ids need.
    if getrandom::fill(&mut b).is_err() {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = t.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// This process's name on the leases it takes: random, fixed for the life of the process.
fn lease_owner() -> &'static str {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER.get_or_init(new_uuid)
}

/// Writes one outbox row per delivery, all with the same idempotency id, in the caller's
/// transaction. The caller wakes the dispatchers ([`Outbox::wake`]) after its commit.
pub async fn insert(
    conn: &mut TxConn<'_>,
    idempotency_id: &str,
    instance_id: &str,
    event: &str,
    deliveries: &[NewDelivery],
) -> Result<usize, StoreError> {
    let now = now_ms();
    for d in deliveries {
        with_conn!(tx conn, |c| {
            sqlx::query(
                "INSERT INTO outbox (idempotency_id, instance_id, event, target_kind, url, \
                 headers, secret, body, attempts, next_attempt_at, lease_until, created_at, \
                 transport) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, NULL, $9, $10)",
            )
            .bind(idempotency_id)
            .bind(instance_id)
            .bind(event)
            .bind(&d.target_kind)
            .bind(&d.url)
            .bind(&d.headers)
            .bind(&d.secret)
            .bind(&d.body)
            .bind(now)
            .bind(d.transport)
            .execute(c)
            .await?
            .rows_affected()
        });
    }
    Ok(deliveries.len())
}

const ENTRY_COLUMNS: &str = "id, idempotency_id, instance_id, event, target_kind, url, headers, \
     secret, body, attempts, next_attempt_at, lease_until, created_at, last_error, last_status, \
     transport";

/// The drain side of the outbox: claims, outcomes, inspection. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    pool: StorePool,
    /// Bumped after a commit that enqueued events; every dispatcher watches it, and a bump seen
    /// late is still seen (unlike a `Notify` permit, which only one waiter takes).
    wake: Arc<watch::Sender<u64>>,
}

impl Outbox {
    pub fn new(pool: StorePool) -> Self {
        Self {
            pool,
            wake: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Tells the dispatchers that rows were committed, so they need not wait for their poll.
    pub fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn woken(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Forgets the rows in `delivered` (their targets took them), then leases up to `limit` due
    /// rows of `transport` until `lease_until` and counts the attempt — in one transaction, so a
    /// dispatcher turn costs one commit (one fsync on SQLite) however many deliveries finished
    /// since the last turn, instead of one commit per delivery plus one per claim. A crash
    /// before that commit delivers the settled rows again, which at-least-once allows.
    ///
    /// A row whose lease expired (its dispatcher died or hung) is due again. Only the oldest row
    /// of each instance and target is taken, so an instance's events reach each target one at
    /// a time and in the order they were enqueued (a chat's messages and their status updates
    /// stay in order, also across retries: a failing delivery holds back the ones behind it
    /// until it is delivered or dead-lettered). Different instances, targets and transports are
    /// delivered in parallel: each target has its own line.
    pub(crate) async fn settle_and_claim(
        &self,
        delivered: &[i64],
        transport: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let pick = "SELECT id FROM outbox o WHERE transport = $5 AND next_attempt_at <= $2 \
             AND (lease_until IS NULL OR lease_until < $2) AND NOT EXISTS (SELECT 1 FROM outbox p \
             WHERE p.instance_id = o.instance_id AND p.target_kind = o.target_kind \
             AND p.id < o.id) ORDER BY next_attempt_at, id LIMIT $3";
        let lock = match self.pool {
            StorePool::Sqlite(_) => "",
            StorePool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let claim = format!(
            "UPDATE outbox SET lease_until = $1, lease_owner = $4, attempts = attempts + 1 \
             WHERE id IN ({pick}{lock}) RETURNING {ENTRY_COLUMNS}"
        );
        let forget = "DELETE FROM outbox WHERE id = $1";
        macro_rules! run {
            ($tx:ident) => {{
                for id in delivered {
                    sqlx::query(forget).bind(id).execute(&mut *$tx).await?;
                }
                let rows: Vec<EntryRow> = if limit > 0 {
                    sqlx::query_as(sqlx::AssertSqlSafe(claim))
                        .bind(lease_until)
                        .bind(now)
                        .bind(limit)
                        .bind(lease_owner())
                        .bind(transport)
                        .fetch_all(&mut *$tx)
                        .await?
                } else {
                    Vec::new()
                };
                $tx.commit().await?;
                rows
            }};
        }
        let rows = match &self.pool {
            StorePool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                run!(tx)
            }
            StorePool::Postgres(p) => {
                let mut tx = p.begin().await?;
                run!(tx)
            }
        };
        Ok(rows.into_iter().map(entry).collect())
    }

    /// Frees the leases of other processes on `transport`'s rows, on SQLite only, when a
    /// dispatcher starts. A SQLite database belongs to one `zapin serve` process, so such a
    /// lease was held by a predecessor that died: waiting for it to expire would only delay the
    /// events it held. Leases of this process are kept. On PostgreSQL another node may hold the
    /// lease, so it is left to expire.
    pub(crate) async fn release_leases_of_a_previous_run(
        &self,
        transport: &str,
    ) -> Result<u64, StoreError> {
        let StorePool::Sqlite(p) = &self.pool else {
            return Ok(0);
        };
        Ok(sqlx::query(
            "UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE transport = $2 \
             AND lease_until IS NOT NULL AND (lease_owner IS NULL OR lease_owner <> $1)",
        )
        .bind(lease_owner())
        .bind(transport)
        .execute(p)
        .await?
        .rows_affected())
    }

    /// Releases the lease and schedules the next attempt.
    pub(crate) async fn reschedule(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: &str,
        status: Option<i64>,
    ) -> Result<(), StoreError> {
        with_conn!(pool & self.pool, |c| {
            sqlx::query(
                "UPDATE outbox SET next_attempt_at = $2, lease_until = NULL, last_error = $3, \
                 last_status = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(next_attempt_at)
            .bind(error)
            .bind(status)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Moves the row to `dead_letter` (atomically).
    pub(crate) async fn bury(
        &self,
        id: i64,
        reason: &str,
        error: &str,
        status: Option<i64>,
    ) -> Result<(), StoreError> {
        let copy = "INSERT INTO dead_letter (idempotency_id, instance_id, event, target_kind, url, \
             headers, body, attempts, created_at, failed_at, last_error, last_status, reason, \
             transport) SELECT idempotency_id, instance_id, event, target_kind, url, headers, \
             body, attempts, created_at, $2, $3, $4, $5, transport FROM outbox WHERE id = $1";
        let delete = "DELETE FROM outbox WHERE id = $1";
        match &self.pool {
            StorePool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query(copy)
                    .bind(id)
                    .bind(now_ms())
                    .bind(error)
                    .bind(status)
                    .bind(reason)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(delete).bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            StorePool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(copy)
                    .bind(id)
                    .bind(now_ms())
                    .bind(error)
                    .bind(status)
                    .bind(reason)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(delete).bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// The earliest `next_attempt_at` of `transport`'s rows nobody holds a lease on and that are
    /// next in line (see [`Outbox::claim_due`]): a row waiting behind an older one is not due.
    pub(crate) async fn next_due(&self, transport: &str) -> Result<Option<i64>, StoreError> {
        let min: Option<i64> = with_conn!(pool & self.pool, |c| {
            sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM outbox o WHERE transport = $1 \
                 AND lease_until IS NULL AND NOT EXISTS (SELECT 1 FROM outbox p \
                 WHERE p.instance_id = o.instance_id AND p.target_kind = o.target_kind \
                 AND p.id < o.id)",
            )
            .bind(transport)
            .fetch_one(c)
            .await?
        });
        Ok(min)
    }

    /// How many rows of `transport` wait in `outbox` and how many lie in `dead_letter` (the
    /// metrics gauges).
    pub async fn depths(&self, transport: &str) -> Result<(i64, i64), StoreError> {
        let depths: (i64, i64) = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE transport = $1), \
                 (SELECT COUNT(*) FROM dead_letter WHERE transport = $1)",
            )
            .bind(transport)
            .fetch_one(c)
            .await?
        });
        Ok(depths)
    }

    /// Every pending row, oldest first (inspection and tests).
    pub async fn entries(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM outbox ORDER BY id");
        let rows: Vec<EntryRow> = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(c)
                .await?
        });
        Ok(rows.into_iter().map(entry).collect())
    }

    /// Every dead letter, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<i64>,
            String,
            String,
        );
        let rows: Vec<Row> = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(
                "SELECT idempotency_id, instance_id, event, target_kind, url, body, attempts, \
                 last_error, last_status, reason, transport FROM dead_letter ORDER BY id",
            )
            .fetch_all(c)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(
                    idempotency_id,
                    instance_id,
                    event,
                    target_kind,
                    url,
                    body,
                    attempts,
                    last_error,
                    last_status,
                    reason,
                    transport,
                )| DeadLetter {
                    idempotency_id,
                    instance_id,
                    event,
                    target_kind,
                    url,
                    body,
                    attempts,
                    last_error,
                    last_status,
                    reason,
                    transport,
                },
            )
            .collect())
    }
}
