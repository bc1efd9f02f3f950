//! Counters in Redis: one budget shared by every node, decided by atomic Lua scripts.
//!
//! Keys are `<prefix>:quota:{<tenant>}:<type>:<window>:<start>`; the braces make all counters of
//! a tenant one hash slot, so the multi-key scripts also work on a Redis Cluster. Each charge is
//! one `EVALSHA` round trip: the script reads every window's counter, refuses if any hard limit
//! would be passed, and otherwise increments them all and sets their expiry, atomically (Redis
//! runs a script to completion before any other command). Counters expire on their own after
//! their window (months after 400 days, for billing history).
//!
//! The connection is redis-rs's `ConnectionManager` (one multiplexed connection, reconnected
//! after a failure). It does not retry a command whose connection broke, so a charge is never
//! applied twice; the caller sees the error instead.

use std::time::Duration;

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{BoxFuture, CounterKey, CounterStore, Slot, TryAdd};
use crate::error::TenancyError;

const TRY_ADD: &str = r"
local w = tonumber(ARGV[1])
local n = #KEYS
local out = {1}
for i = 1, n do
  local u = tonumber(redis.call('GET', KEYS[i]) or '0')
  out[i + 1] = u
  local lim = tonumber(ARGV[1 + i])
  if lim >= 0 and u + w > lim then out[1] = 0 end
end
if out[1] == 1 then
  for i = 1, n do
    out[i + 1] = redis.call('INCRBY', KEYS[i], w)
    local exp = tonumber(ARGV[1 + n + i])
    if exp > 0 then redis.call('EXPIREAT', KEYS[i], exp) end
  end
end
return out
";

const ADJUST: &str = r"
local d = tonumber(ARGV[1])
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local v = redis.call('INCRBY', KEYS[i], d)
    if v < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
  end
end
return 1
";

/// Counters in Redis. Cheap to clone (one shared multiplexed connection).
#[derive(Clone)]
pub struct RedisCounters {
    conn: ConnectionManager,
    prefix: String,
    try_add: Script,
    adjust: Script,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL (and any password in it) is not kept.
        f.debug_struct("RedisCounters")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCounters {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`, Evolution's `CACHE_REDIS_URI`);
    /// every key starts with `prefix` (`CACHE_REDIS_PREFIX_KEY`).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, TenancyError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(3);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            try_add: Script::new(TRY_ADD),
            adjust: Script::new(ADJUST),
        })
    }

    fn key(&self, k: &CounterKey) -> String {
        format!(
            "{}:quota:{{{}}}:{}:{}:{}",
            self.prefix, k.tenant, k.quota, k.window, k.start
        )
    }

    /// Deletes every counter under this prefix (tests).
    #[doc(hidden)]
    pub async fn clear(&self) -> Result<(), TenancyError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}:quota:*", self.prefix);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
        }
        Ok(())
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl CounterStore for RedisCounters {
    fn try_add<'a>(
        &'a self,
        slots: &'a [Slot],
        weight: u64,
    ) -> BoxFuture<'a, Result<TryAdd, TenancyError>> {
        Box::pin(async move {
            if slots.is_empty() {
                return Ok(TryAdd::Accepted(Vec::new()));
            }
            let mut inv = self.try_add.prepare_invoke();
            inv.arg(weight);
            for s in slots {
                inv.key(self.key(&s.key));
            }
            for s in slots {
                inv.arg(s.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX)));
            }
            for s in slots {
                inv.arg(s.keep_until.unwrap_or(0));
            }
            let mut conn = self.conn.clone();
            let out: Vec<i64> = inv.invoke_async(&mut conn).await?;
            let Some((&ok, used)) = out.split_first() else {
                return Err(TenancyError::Corrupt("quota script answer"));
            };
            if used.len() != slots.len() {
                return Err(TenancyError::Corrupt("quota script answer"));
            }
            let used: Vec<u64> = used.iter().copied().map(to_u64).collect();
            Ok(if ok == 1 {
                TryAdd::Accepted(used)
            } else {
                TryAdd::Refused(used)
            })
        })
    }

    fn adjust<'a>(
        &'a self,
        keys: &'a [CounterKey],
        delta: i64,
    ) -> BoxFuture<'a, Result<(), TenancyError>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            let mut inv = self.adjust.prepare_invoke();
            inv.arg(delta);
            for k in keys {
                inv.key(self.key(k));
            }
            let mut conn = self.conn.clone();
            let _: i64 = inv.invoke_async(&mut conn).await?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, keys: &'a [CounterKey]) -> BoxFuture<'a, Result<Vec<u64>, TenancyError>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let names: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
            let mut conn = self.conn.clone();
            let values: Vec<Option<i64>> = redis::cmd("MGET")
                .arg(&names)
                .query_async(&mut conn)
                .await?;
            Ok(values.into_iter().map(|v| v.map_or(0, to_u64)).collect())
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a CounterKey,
        value: u64,
    ) -> BoxFuture<'a, Result<(), TenancyError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: () = redis::cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .arg("KEEPTTL")
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
    }
}
