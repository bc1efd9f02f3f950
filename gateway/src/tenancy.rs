//! The gateway's handle on `zapin-tenancy`: directory, quota counters, usage log, analytics and
//! the send queue, built once from the configuration.
//!
//! Counters: in Redis when `CACHE_REDIS_URI` is configured (Evolution's `CACHE_REDIS_ENABLED`;
//! several nodes then share one budget), else in process with the write-ahead journal in
//! `ZAPIN_DATA_DIR` flushed to the database every second.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zapin_tenancy::analytics::Analytics;
use zapin_tenancy::apikey::KeyHasher;
use zapin_tenancy::directory::Directory;
use zapin_tenancy::pacing::SendQueue;
use zapin_tenancy::quota::{CounterStore, MemoryCounters, MemoryOptions, Quotas, RedisCounters};
use zapin_tenancy::sql::SqlPool;
use zapin_tenancy::usage::{UsageLog, UsageLogOptions, UsageWriter};
use zapin_tenancy::{Clock, SystemClock, TenancyError};
use zeroize::Zeroizing;

use crate::Config;
use crate::db::Db;

/// Label of the tenant-key HMAC key derived from the master key.
const TENANT_KEY_LABEL: &[u8] = b"zapin/tenant-api-key/v1";

/// Everything tenancy, shared by the request layer and the tenant/admin handlers.
#[derive(Debug)]
pub struct Tenancy {
    pub directory: Directory,
    pub quotas: Quotas,
    pub usage: UsageLog,
    pub analytics: Analytics,
    pub queue: SendQueue,
    /// `"memory"` or `"redis"`.
    pub counters: &'static str,
    memory: Option<MemoryCounters>,
    flusher: Option<tokio::task::JoinHandle<()>>,
    writer: Mutex<Option<UsageWriter>>,
}

/// The tenancy pool over the gateway's own pool (one pool per process).
pub fn pool_of(db: &Db) -> SqlPool {
    match (db.sqlite_pool(), db.postgres_pool()) {
        (Some(p), _) => SqlPool::Sqlite(p.clone()),
        (None, Some(p)) => SqlPool::Postgres(p.clone()),
        (None, None) => unreachable_pool(),
    }
}

#[cold]
fn unreachable_pool() -> ! {
    // `Db` always holds exactly one of the two pools.
    panic!("the database handle has no pool")
}

/// The tenant directory alone (plans, tenants, keys), hashing keys as `zapin serve` does: for
/// the `zapin admin` commands, which need no counters or usage log.
pub fn directory(config: &Config, db: &Db) -> Directory {
    Directory::new(pool_of(db), hasher(config.master_key.as_ref()))
}

fn hasher(key: Option<&zapin_signal_store::MasterKey>) -> KeyHasher {
    // Without a master key (library use, some tests) keys are still hashed, under a fixed
    // key: the `zapin` binary always has a master key.
    KeyHasher::new(key.map_or_else(|| Zeroizing::new([0u8; 32]), |k| k.derive(TENANT_KEY_LABEL)))
}

impl Tenancy {
    /// Opens everything: counters (Redis or in-process, replaying the journal), the usage
    /// writer and, for in-process counters, the flusher.
    pub async fn start(config: &Config, db: &Db) -> Result<Arc<Self>, TenancyError> {
        Self::start_with_clock(config, db, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(
        config: &Config,
        db: &Db,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, TenancyError> {
        let pool = pool_of(db);
        let mut directory = Directory::new(pool.clone(), hasher(config.master_key.as_ref()));
        if let Some(previous) = &config.master_key_previous {
            directory = directory.with_previous_hasher(hasher(Some(previous)));
        }
        let (store, memory, counters): (Arc<dyn CounterStore>, _, _) = match &config.redis {
            Some(uri) => {
                let redis = RedisCounters::connect(uri.expose(), &config.redis_prefix).await?;
                (Arc::new(redis), None, "redis")
            }
            None => {
                let memory = MemoryCounters::open(
                    MemoryOptions {
                        journal_dir: config.data_dir.join("quota-journal"),
                        pool: pool.clone(),
                        flush_every: Duration::from_secs(1),
                    },
                    clock.clone(),
                )
                .await?;
                (Arc::new(memory.clone()), Some(memory), "memory")
            }
        };
        let quotas = Quotas::new(store, clock);
        let flusher = memory.as_ref().and_then(MemoryCounters::spawn_flusher);
        let (usage, writer) = UsageLog::start(
            pool.clone(),
            Some(directory.clone()),
            UsageLogOptions::default(),
        );
        Ok(Arc::new(Self {
            analytics: Analytics::new(pool.clone(), quotas.clone()),
            queue: SendQueue::new(pool),
            directory,
            quotas,
            usage,
            counters,
            memory,
            flusher,
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// Writes what is pending (usage log, in-process counters). Call after the server stopped
    /// taking requests.
    pub async fn shutdown(&self) {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = writer {
            writer.shutdown().await;
        }
        if let Some(flusher) = &self.flusher {
            flusher.abort();
        }
        if let Some(memory) = &self.memory
            && let Err(err) = memory.flush().await
        {
            tracing::error!("flushing quota counters at shutdown failed: {err}");
        }
    }
}
