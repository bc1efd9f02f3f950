//! Fixtures and backend harnesses shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::AssertSqlSafe;
use zapin_signal_store::testing::service_url;
use zapin_signal_store::{
    Account, DeviceCredentials, DeviceId, KeyPairBytes, MasterKey, PostgresOptions, PreKey,
    Secret32, SignedPreKey, SqliteOptions, Store,
};

pub const PG_URL_VAR: &str = "ZAPIN_TEST_DATABASE_URL";

pub fn master_key() -> MasterKey {
    MasterKey::from_bytes([0x42; 32])
}

/// Private-key bytes that are easy to search for in raw rows.
pub fn marker(tag: u8, seed: u8) -> [u8; 32] {
    // A small LCG seeded by (tag, seed): distinct inputs give unrelated byte strings.
    let mut state = (u64::from(tag) << 8 | u64::from(seed)) ^ 0x9E37_79B9_7F4A_7C15;
    let mut k = [0u8; 32];
    for b in k.iter_mut() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *b = (state >> 33) as u8;
    }
    k
}

pub fn key_pair(tag: u8, seed: u8) -> KeyPairBytes {
    // Not a real Curve25519 pair: the store never derives anything, and distinct byte patterns
    // let the at-rest test tell public from private bytes.
    KeyPairBytes::new(marker(tag.wrapping_add(100), seed), marker(tag, seed))
}

pub fn signed_prekey(id: u32, seed: u8) -> SignedPreKey {
    SignedPreKey {
        id,
        key_pair: key_pair(3, seed.wrapping_add(id as u8)),
        signature: [seed; 64],
        created_at: 1_700_000_000 + u64::from(id),
    }
}

pub fn credentials(seed: u8) -> DeviceCredentials {
    DeviceCredentials {
        registration_id: 1000 + u32::from(seed),
        noise_key: key_pair(1, seed),
        identity_key: key_pair(2, seed),
        signed_prekey: signed_prekey(1, seed),
        adv_secret_key: Secret32::new(marker(4, seed)),
        account: None,
        push_name: None,
        platform: None,
        routing_info: None,
    }
}

pub fn paired(seed: u8) -> DeviceCredentials {
    let mut c = credentials(seed);
    c.account = Some(Account {
        account_jid: format!("55119{seed:07}@s.whatsapp.net"),
        device_jid: format!("55119{seed:07}:3@s.whatsapp.net"),
        lid: Some(format!("{seed}12345@lid")),
        adv_signed_identity: vec![seed; 120],
        business_name: None,
    });
    c.push_name = Some(format!("Device {seed}"));
    c.platform = Some("WEB".into());
    c.routing_info = Some(vec![8, 2, 8, 5]);
    c
}

pub fn prekey(id: u32) -> PreKey {
    PreKey {
        id,
        key_pair: key_pair(5, (id % 251) as u8),
    }
}

pub fn device(name: &str) -> DeviceId {
    DeviceId::new(name).unwrap()
}

/// A store under test plus what must be cleaned up after it.
pub struct Harness {
    pub store: Store,
    pub dir: Option<tempfile::TempDir>,
    pub pg_schema: Option<String>,
    pub pg_url: Option<String>,
}

static SCHEMA_SEQ: AtomicU32 = AtomicU32::new(0);

/// A schema name unique across parallel tests and reruns.
pub fn unique_schema() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "zt_{}_{}_{}",
        std::process::id(),
        SCHEMA_SEQ.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

impl Harness {
    pub fn memory() -> Self {
        Self {
            store: Store::memory(&master_key()),
            dir: None,
            pg_schema: None,
            pg_url: None,
        }
    }

    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&SqliteOptions::new(dir.path()), &master_key())
            .await
            .unwrap();
        Self {
            store,
            dir: Some(dir),
            pg_schema: None,
            pg_url: None,
        }
    }

    /// `None` (test skipped) when no PostgreSQL is configured, outside CI.
    pub async fn postgres() -> Option<Self> {
        let url = service_url(PG_URL_VAR)?;
        let schema = unique_schema();
        let mut options = PostgresOptions::new(url.clone());
        options.schema = Some(schema.clone());
        options.max_connections = 8;
        let store = Store::open_postgres(&options, &master_key()).await.unwrap();
        Some(Self {
            store,
            dir: None,
            pg_schema: Some(schema),
            pg_url: Some(url),
        })
    }

    pub async fn finish(mut self) {
        if let (Some(schema), Some(pool)) = (self.pg_schema.take(), self.store.postgres_pool()) {
            sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
                .execute(pool)
                .await
                .unwrap();
        }
        self.store.close().await;
    }
}

impl Drop for Harness {
    /// A test that panicked never reached `finish`: drop its schema from a helper thread so
    /// failed runs do not leave schemas behind.
    fn drop(&mut self) {
        let (Some(schema), Some(url)) = (self.pg_schema.take(), self.pg_url.clone()) else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Every blob in `table.column`, read with plain SQL behind the store's back.
pub async fn raw_blobs(store: &Store, table: &str, column: &str) -> Vec<Vec<u8>> {
    let sql = format!("SELECT {column} FROM {table}");
    if let Some(pool) = store.sqlite_pool() {
        sqlx::query_scalar::<_, Vec<u8>>(AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap()
    } else if let Some(pool) = store.postgres_pool() {
        sqlx::query_scalar::<_, Vec<u8>>(AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap()
    } else {
        panic!("raw access needs a SQL backend")
    }
}

/// The sealed session record of one row.
pub async fn raw_session(store: &Store, owner: &str, name: &str, dev: i64) -> Vec<u8> {
    let sql = "SELECT record_enc FROM sessions WHERE owner = $1 AND name = $2 AND device = $3";
    if let Some(pool) = store.sqlite_pool() {
        sqlx::query_scalar::<_, Vec<u8>>(sql)
            .bind(owner)
            .bind(name)
            .bind(dev)
            .fetch_one(pool)
            .await
            .unwrap()
    } else if let Some(pool) = store.postgres_pool() {
        sqlx::query_scalar::<_, Vec<u8>>(sql)
            .bind(owner)
            .bind(name)
            .bind(dev)
            .fetch_one(pool)
            .await
            .unwrap()
    } else {
        panic!("raw access needs a SQL backend")
    }
}

/// Writes a session row directly, bypassing sealing.
pub async fn raw_put_session(store: &Store, owner: &str, name: &str, dev: i64, enc: &[u8]) {
    let sql = "INSERT INTO sessions (owner, name, device, record_enc) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (owner, name, device) DO UPDATE SET record_enc = excluded.record_enc";
    if let Some(pool) = store.sqlite_pool() {
        sqlx::query(sql)
            .bind(owner)
            .bind(name)
            .bind(dev)
            .bind(enc)
            .execute(pool)
            .await
            .unwrap();
    } else if let Some(pool) = store.postgres_pool() {
        sqlx::query(sql)
            .bind(owner)
            .bind(name)
            .bind(dev)
            .bind(enc)
            .execute(pool)
            .await
            .unwrap();
    } else {
        panic!("raw access needs a SQL backend")
    }
}

/// Overwrites a prekey's sealed private key with the sealed private key of another prekey.
pub async fn raw_copy_prekey_private(store: &Store, owner: &str, from: i64, to: i64) {
    let sql = "UPDATE prekeys SET private_enc = \
               (SELECT private_enc FROM prekeys WHERE owner = $1 AND id = $2) \
               WHERE owner = $1 AND id = $3";
    if let Some(pool) = store.sqlite_pool() {
        sqlx::query(sql)
            .bind(owner)
            .bind(from)
            .bind(to)
            .execute(pool)
            .await
            .unwrap();
    } else if let Some(pool) = store.postgres_pool() {
        sqlx::query(sql)
            .bind(owner)
            .bind(from)
            .bind(to)
            .execute(pool)
            .await
            .unwrap();
    } else {
        panic!("raw access needs a SQL backend")
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
