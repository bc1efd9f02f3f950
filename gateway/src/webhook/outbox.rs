//! The `outbox` and `dead_letter` tables: enqueueing inside a transaction, and the claim /
//! complete / reschedule / bury steps the dispatcher takes.

use serde::Serialize;

use zapin_compat_evolution::{EventName, EventSubscription};

use super::{is_http_url, target_url};
use crate::db::{Db, DbError, Pool, Tx, new_uuid, now_ms, with_conn};

/// Which webhook a row is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Instance,
    Global,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Instance => "instance",
            TargetKind::Global => "global",
        }
    }
}

/// A pending delivery. `secret` is the signing secret snapshot taken at enqueue time.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub idempotency_id: String,
    pub instance_id: String,
    pub event: String,
    pub target_kind: String,
    pub url: String,
    /// JSON object of header name → value.
    pub headers: String,
    pub secret: Option<String>,
    /// The exact body bytes that are sent (and signed).
    pub body: String,
    /// Attempts started so far, the current one included once claimed.
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
}

impl std::fmt::Debug for OutboxEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxEntry")
            .field("id", &self.id)
            .field("idempotency_id", &self.idempotency_id)
            .field("instance_id", &self.instance_id)
            .field("event", &self.event)
            .field("target_kind", &self.target_kind)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("lease_until", &self.lease_until)
            .field("last_status", &self.last_status)
            .finish_non_exhaustive()
    }
}

/// A delivery given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub idempotency_id: String,
    pub instance_id: String,
    pub event: String,
    pub target_kind: String,
    pub url: String,
    pub body: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    pub reason: String,
}

type EntryRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    Option<String>,
    Option<i64>,
);

fn entry(r: EntryRow) -> OutboxEntry {
    let (
        id,
        idempotency_id,
        instance_id,
        event,
        target_kind,
        url,
        headers,
        secret,
        body,
        attempts,
        next_attempt_at,
        lease_until,
        created_at,
        last_error,
        last_status,
    ) = r;
    OutboxEntry {
        id,
        idempotency_id,
        instance_id,
        event,
        target_kind,
        url,
        headers,
        secret,
        body,
        attempts,
        next_attempt_at,
        lease_until,
        created_at,
        last_error,
        last_status,
    }
}

/// Whether a stored `events` list selects `event` (a config key). Empty means every event; the
/// `GROUP_UPDATE` / `GROUPS_UPDATE` alias follows compat-evolution's [`EventSubscription`].
fn subscribed(list: &[String], event: &str) -> bool {
    if list.is_empty() {
        return true;
    }
    match EventName::from_key(event) {
        Some(name) => EventSubscription::from_request(true, Some(list.to_vec())).includes(name),
        None => list.iter().any(|n| n == event),
    }
}

/// One delivery target decided at enqueue time.
struct Target {
    kind: TargetKind,
    url: String,
    headers: String,
    secret: Option<String>,
}

impl Tx {
    /// Routes `event` (a config key such as `MESSAGES_UPSERT`) for `instance_id` and writes one
    /// outbox row per target: the instance's webhook (enabled, listening to the event — an empty
    /// list means all — and with an http(s) URL) and the global webhook (`WEBHOOK_EVENTS_<KEY>`).
    /// Returns the event's idempotency id, or `None` when no webhook wants it.
    ///
    /// Usually called for you by the repository functions that report events; call it directly
    /// for events without a stored state change, in the transaction of whatever caused them.
    pub async fn enqueue_event(
        &mut self,
        instance_id: &str,
        event: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<Option<String>, DbError> {
        let mut targets = Vec::new();
        if let Some(w) = self.get_webhook(instance_id).await?
            && w.enabled
            && subscribed(&w.events, event)
            && is_http_url(&w.url)
        {
            targets.push(Target {
                kind: TargetKind::Instance,
                url: target_url(&w.url, w.by_events, event),
                headers: w.headers.to_string(),
                secret: w.secret,
            });
        }
        let routing = self.db.routing.clone();
        if let Some(global) = &routing.global_url
            && (routing.global_events.contains(event)
                || (event == "GROUPS_UPDATE" && routing.global_events.contains("GROUP_UPDATE")))
        {
            targets.push(Target {
                kind: TargetKind::Global,
                url: target_url(global, routing.global_by_events, event),
                headers: "{}".to_owned(),
                secret: None,
            });
        }
        if targets.is_empty() {
            return Ok(None);
        }
        // Serialised from the caller's type, not a `serde_json::Value` (whose map sorts keys), so
        // a struct such as compat-evolution's `WebhookEnvelope` keeps its wire key order.
        let body = serde_json::to_string(body).map_err(|_| DbError::Corrupt("event body"))?;
        let id = new_uuid();
        let now = now_ms();
        for t in targets {
            with_conn!(tx &mut self.inner, |c| {
                sqlx::query(
                    "INSERT INTO outbox (idempotency_id, instance_id, event, target_kind, url, \
                     headers, secret, body, attempts, next_attempt_at, lease_until, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, NULL, $9)",
                )
                .bind(&id)
                .bind(instance_id)
                .bind(event)
                .bind(t.kind.as_str())
                .bind(&t.url)
                .bind(&t.headers)
                .bind(&t.secret)
                .bind(&body)
                .bind(now)
                .execute(c)
                .await?
            .rows_affected()
            });
            self.enqueued += 1;
        }
        Ok(Some(id))
    }
}

/// This process's name on the leases it takes: random, fixed for the life of the process.
fn lease_owner() -> &'static str {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER.get_or_init(crate::db::new_uuid)
}

impl Db {
    /// Leases up to `limit` due rows until `lease_until` and counts the attempt. A row whose lease
    /// expired (its dispatcher died or hung) is due again.
    ///
    /// Only the oldest row of each instance and target is taken, so an instance's events reach
    /// each webhook one at a time and in the order they were enqueued (a chat's messages and
    /// their status updates stay in order, also across retries: a failing delivery holds back
    /// the ones behind it until it is delivered or dead-lettered). Different instances and
    /// targets are delivered in parallel.
    pub(crate) async fn claim_due(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, DbError> {
        let rows: Vec<EntryRow> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "UPDATE outbox SET lease_until = $1, lease_owner = $4, attempts = attempts + 1 \
                     WHERE id IN (SELECT id FROM outbox o WHERE next_attempt_at <= $2 \
                     AND (lease_until IS NULL OR lease_until < $2) AND NOT EXISTS (SELECT 1 FROM outbox p \
                     WHERE p.instance_id = o.instance_id AND p.target_kind = o.target_kind \
                     AND p.id < o.id) \
                     ORDER BY next_attempt_at, id LIMIT $3) \
                     RETURNING id, idempotency_id, instance_id, event, target_kind, url, headers, \
                     secret, body, attempts, next_attempt_at, lease_until, created_at, last_error, \
                     last_status",
                )
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .bind(lease_owner())
                .fetch_all(p)
                .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "UPDATE outbox SET lease_until = $1, lease_owner = $4, attempts = attempts + 1 \
                     WHERE id IN (SELECT id FROM outbox o WHERE next_attempt_at <= $2 \
                     AND (lease_until IS NULL OR lease_until < $2) AND NOT EXISTS (SELECT 1 FROM outbox p \
                     WHERE p.instance_id = o.instance_id AND p.target_kind = o.target_kind \
                     AND p.id < o.id) \
                     ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING id, idempotency_id, instance_id, event, target_kind, url, headers, \
                     secret, body, attempts, next_attempt_at, lease_until, created_at, last_error, \
                     last_status",
                )
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .bind(lease_owner())
                .fetch_all(p)
                .await?
            }
        };
        Ok(rows.into_iter().map(entry).collect())
    }

    /// Frees the leases of other processes, on SQLite only, when a dispatcher starts. A SQLite
    /// database belongs to one `zapin serve` process, so such a lease was held by a predecessor
    /// that died: waiting for it to expire (request timeout + 5 s) would only delay the events it
    /// held. Leases of this process (another dispatcher in it) are kept. On PostgreSQL another
    /// node may hold the lease, so it is left to expire.
    pub(crate) async fn release_leases_of_a_previous_run(&self) -> Result<u64, DbError> {
        let Pool::Sqlite(p) = &self.pool else {
            return Ok(0);
        };
        Ok(sqlx::query(
            "UPDATE outbox SET lease_until = NULL, lease_owner = NULL \
             WHERE lease_until IS NOT NULL AND (lease_owner IS NULL OR lease_owner <> $1)",
        )
        .bind(lease_owner())
        .execute(p)
        .await?
        .rows_affected())
    }

    /// The receiver took it: forget the row.
    pub(crate) async fn mark_delivered(&self, id: i64) -> Result<(), DbError> {
        with_conn!(pool & self.pool, |c| {
            sqlx::query("DELETE FROM outbox WHERE id = $1")
                .bind(id)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Releases the lease and schedules the next attempt.
    pub(crate) async fn reschedule(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: &str,
        status: Option<i64>,
    ) -> Result<(), DbError> {
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
    ) -> Result<(), DbError> {
        let mut tx = self.begin().await?;
        with_conn!(tx &mut tx.inner, |c| {
            sqlx::query(
                "INSERT INTO dead_letter (idempotency_id, instance_id, event, target_kind, url, \
                 headers, body, attempts, created_at, failed_at, last_error, last_status, reason) \
                 SELECT idempotency_id, instance_id, event, target_kind, url, headers, body, \
                 attempts, created_at, $2, $3, $4, $5 FROM outbox WHERE id = $1",
            )
            .bind(id)
            .bind(now_ms())
            .bind(error)
            .bind(status)
            .bind(reason)
            .execute(&mut *c)
            .await?;
            sqlx::query("DELETE FROM outbox WHERE id = $1")
                .bind(id)
                .execute(c)
                .await?
            .rows_affected()
        });
        tx.commit().await
    }

    /// The earliest `next_attempt_at` of rows nobody holds a lease on and that are next in line
    /// (see [`Db::claim_due`]): a row waiting behind an older one is not due, however old.
    pub(crate) async fn next_due(&self) -> Result<Option<i64>, DbError> {
        let min: Option<i64> = with_conn!(pool & self.pool, |c| {
            sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM outbox o WHERE lease_until IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.instance_id = o.instance_id \
                 AND p.target_kind = o.target_kind AND p.id < o.id)",
            )
            .fetch_one(c)
            .await?
        });
        Ok(min)
    }

    /// How many rows wait in `outbox` and how many lie in `dead_letter` (the metrics gauges).
    pub async fn webhook_depths(&self) -> Result<(i64, i64), DbError> {
        let depths: (i64, i64) = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM outbox), (SELECT COUNT(*) FROM dead_letter)",
            )
            .fetch_one(c)
            .await?
        });
        Ok(depths)
    }

    /// Every pending row, oldest first (inspection and tests).
    pub async fn outbox_entries(&self) -> Result<Vec<OutboxEntry>, DbError> {
        let rows: Vec<EntryRow> = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(
                "SELECT id, idempotency_id, instance_id, event, target_kind, url, headers, \
                 secret, body, attempts, next_attempt_at, lease_until, created_at, last_error, \
                 last_status FROM outbox ORDER BY id",
            )
            .fetch_all(c)
            .await?
        });
        Ok(rows.into_iter().map(entry).collect())
    }

    /// Every dead letter, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, DbError> {
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
        );
        let rows: Vec<Row> = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(
                "SELECT idempotency_id, instance_id, event, target_kind, url, body, attempts, \
                 last_error, last_status, reason FROM dead_letter ORDER BY id",
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
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::subscribed;

    #[test]
    fn subscription_matching() {
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(subscribed(&[], "MESSAGES_UPSERT"));
        assert!(subscribed(&list(&["MESSAGES_UPSERT"]), "MESSAGES_UPSERT"));
        assert!(!subscribed(&list(&["MESSAGES_UPDATE"]), "MESSAGES_UPSERT"));
        assert!(subscribed(&list(&["GROUP_UPDATE"]), "GROUPS_UPDATE"));
        assert!(subscribed(&list(&["X_CUSTOM"]), "X_CUSTOM"));
        assert!(!subscribed(&list(&["X_CUSTOM"]), "Y_CUSTOM"));
    }
}
