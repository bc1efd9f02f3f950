//! Counters in SQL (`quota_counters`): exact across nodes that share one database, at the cost
//! of a transaction per charge. The in-process backend flushes into the same table.
//!
//! Exactness: a charge reads and updates its counters inside one transaction that is serialized
//! with every other charge of the same tenant and quota type: on SQLite by `BEGIN IMMEDIATE`
//! (one writer at a time), on PostgreSQL by a transaction-scoped advisory lock on a hash of
//! (tenant, quota type). The lock is one per transaction, so charges cannot deadlock, and
//! tenants do not wait for each other unless their hashes collide.

use super::{BoxFuture, CounterKey, CounterStore, Slot, TryAdd};
use crate::error::TenancyError;
use crate::sql::{SqlPool, SqlTx, with_pool, with_tx};

/// Counters in the shared database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlCounters {
    pool: SqlPool,
}

/// FNV-1a: a stable 64-bit hash, the same on every node and release (unlike std's hasher).
fn lock_id(tenant: &str, quota: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.bytes().chain([0]).chain(quota.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

const SELECT_USED: &str = "SELECT used FROM quota_counters \
     WHERE tenant_id = $1 AND quota = $2 AND period = $3 AND start = $4";

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

async fn used_in(tx: &mut SqlTx, key: &CounterKey) -> Result<u64, TenancyError> {
    let used: Option<i64> = with_tx!(tx, |c| {
        sqlx::query_scalar(SELECT_USED)
            .bind(&*key.tenant)
            .bind(key.quota.as_str())
            .bind(key.window.as_str())
            .bind(key.start)
            .fetch_optional(c)
            .await?
    });
    Ok(used.map_or(0, to_u64))
}

impl SqlCounters {
    pub fn new(pool: SqlPool) -> Self {
        Self { pool }
    }

    async fn try_add_tx(&self, slots: &[Slot], weight: u64) -> Result<TryAdd, TenancyError> {
        let Some(first) = slots.first() else {
            return Ok(TryAdd::Accepted(Vec::new()));
        };
        let mut tx = self.pool.begin().await?;
        if let SqlTx::Postgres(t) = &mut tx {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock_id(&first.key.tenant, first.key.quota.as_str()))
                .execute(&mut **t)
                .await?;
        }
        let mut used = Vec::with_capacity(slots.len());
        for slot in slots {
            used.push(used_in(&mut tx, &slot.key).await?);
        }
        let fits = slots
            .iter()
            .zip(&used)
            .all(|(s, &u)| s.limit.is_none_or(|l| u.saturating_add(weight) <= l));
        if !fits {
            // Dropping the transaction rolls it back (nothing was written).
            return Ok(TryAdd::Refused(used));
        }
        for slot in slots {
            let k = &slot.key;
            with_tx!(&mut tx, |c| {
                sqlx::query(
                    "INSERT INTO quota_counters (tenant_id, quota, period, start, used) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, quota, period, start) \
                     DO UPDATE SET used = quota_counters.used + $5",
                )
                .bind(&*k.tenant)
                .bind(k.quota.as_str())
                .bind(k.window.as_str())
                .bind(k.start)
                .bind(to_i64(weight))
                .execute(c)
                .await?;
            });
        }
        tx.commit().await?;
        Ok(TryAdd::Accepted(
            used.into_iter().map(|u| u.saturating_add(weight)).collect(),
        ))
    }

    async fn adjust_tx(&self, keys: &[CounterKey], delta: i64) -> Result<(), TenancyError> {
        let mut tx = self.pool.begin().await?;
        let update = match &tx {
            SqlTx::Sqlite(_) => {
                "UPDATE quota_counters SET used = MAX(0, used + $5) \
                 WHERE tenant_id = $1 AND quota = $2 AND period = $3 AND start = $4"
            }
            SqlTx::Postgres(_) => {
                "UPDATE quota_counters SET used = GREATEST(0, used + $5) \
                 WHERE tenant_id = $1 AND quota = $2 AND period = $3 AND start = $4"
            }
        };
        for k in keys {
            with_tx!(&mut tx, |c| {
                sqlx::query(update)
                    .bind(&*k.tenant)
                    .bind(k.quota.as_str())
                    .bind(k.window.as_str())
                    .bind(k.start)
                    .bind(delta)
                    .execute(c)
                    .await?;
            });
        }
        tx.commit().await
    }

    /// Deletes counters nobody reads any more: minute and hour windows after two hours, days
    /// after 40 days, months after 400 days (the retention [`super::Quotas`] gives Redis too).
    pub async fn prune(pool: &SqlPool, now_secs: i64) -> Result<u64, TenancyError> {
        let done = with_pool!(pool, |c| {
            sqlx::query(
                "DELETE FROM quota_counters WHERE \
                 (period IN ('minute', 'hour') AND start < $1) OR \
                 (period = 'day' AND start < $2) OR (period = 'month' AND start < $3)",
            )
            .bind(now_secs - 2 * 3600)
            .bind(now_secs - 41 * 86_400)
            .bind(now_secs - 431 * 86_400)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(done)
    }
}

impl CounterStore for SqlCounters {
    fn try_add<'a>(
        &'a self,
        slots: &'a [Slot],
        weight: u64,
    ) -> BoxFuture<'a, Result<TryAdd, TenancyError>> {
        Box::pin(self.try_add_tx(slots, weight))
    }

    fn adjust<'a>(
        &'a self,
        keys: &'a [CounterKey],
        delta: i64,
    ) -> BoxFuture<'a, Result<(), TenancyError>> {
        Box::pin(self.adjust_tx(keys, delta))
    }

    fn get<'a>(&'a self, keys: &'a [CounterKey]) -> BoxFuture<'a, Result<Vec<u64>, TenancyError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                let used: Option<i64> = with_pool!(&self.pool, |c| {
                    sqlx::query_scalar(SELECT_USED)
                        .bind(&*k.tenant)
                        .bind(k.quota.as_str())
                        .bind(k.window.as_str())
                        .bind(k.start)
                        .fetch_optional(c)
                        .await?
                });
                out.push(used.map_or(0, to_u64));
            }
            Ok(out)
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a CounterKey,
        value: u64,
    ) -> BoxFuture<'a, Result<(), TenancyError>> {
        Box::pin(async move {
            with_pool!(&self.pool, |c| {
                sqlx::query(
                    "INSERT INTO quota_counters (tenant_id, quota, period, start, used) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, quota, period, start) \
                     DO UPDATE SET used = $5",
                )
                .bind(&*key.tenant)
                .bind(key.quota.as_str())
                .bind(key.window.as_str())
                .bind(key.start)
                .bind(to_i64(value))
                .execute(c)
                .await?;
            });
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_ids_are_stable_and_distinct() {
        assert_eq!(
            super::lock_id("t", "api_call"),
            super::lock_id("t", "api_call")
        );
        assert_ne!(
            super::lock_id("t", "api_call"),
            super::lock_id("t", "message_send")
        );
        assert_ne!(
            super::lock_id("ta", "pi_call"),
            super::lock_id("t", "api_call")
        );
        // Pinned: nodes of different releases must compute the same lock.
        assert_eq!(super::lock_id("", ""), 0xaf63_bd4c_8601_b7df_u64 as i64);
    }
}
