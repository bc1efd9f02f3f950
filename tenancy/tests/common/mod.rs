//! Test helpers: the databases and the Redis to run against.
//!
//! PostgreSQL and Redis come from `ZAPIN_TEST_DATABASE_URL` / `ZAPIN_TEST_REDIS_URL`, else the
//! local defaults when something answers there. Otherwise a test skips (and says so on stderr);
//! under `CI=true` a missing service fails the test instead.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use zapin_tenancy::sql::SqlPool;

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this process and call (schemas, Redis prefixes).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn reachable(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default_port = if url.starts_with("redis") { 6379 } else { 5432 };
    let addr = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    };
    use std::net::ToSocketAddrs as _;
    addr.to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

fn service(var: &str, default: &str) -> Option<String> {
    let url = std::env::var(var)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    if reachable(&url) {
        return Some(url);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
        "CI=true but nothing answers at {url} ({var})"
    );
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "skipping: nothing answers at {url} (set {var})"
    );
    None
}

pub fn postgres_url() -> Option<String> {
    service("ZAPIN_TEST_DATABASE_URL", DEFAULT_POSTGRES_URL)
}

pub fn redis_url() -> Option<String> {
    service("ZAPIN_TEST_REDIS_URL", DEFAULT_REDIS_URL)
}

/// A database for one test; PostgreSQL ones live in their own schema, dropped by `cleanup`.
#[derive(Debug)]
pub struct TestDb {
    pub pool: SqlPool,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pool = SqlPool::open_sqlite_file(&dir.path().join("zapin.sqlite3"))
            .await
            .unwrap();
        Self {
            pool,
            dir,
            pg: None,
        }
    }

    pub async fn postgres(url: &str) -> Self {
        let schema = unique("tenancy_t");
        let pool = SqlPool::open_postgres(url, Some(&schema)).await.unwrap();
        Self {
            pool,
            dir: tempfile::tempdir().unwrap(),
            pg: Some((url.to_owned(), schema)),
        }
    }

    /// The same database opened again (a restarted process).
    pub async fn reopen(&self) -> SqlPool {
        match &self.pg {
            None => SqlPool::open_sqlite_file(&self.dir.path().join("zapin.sqlite3"))
                .await
                .unwrap(),
            Some((url, schema)) => SqlPool::open_postgres(url, Some(schema)).await.unwrap(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.pool.backend_name()
    }

    pub async fn cleanup(self) {
        self.pool.close().await;
        if let Some((url, schema)) = self.pg {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
    }
}

/// SQLite always; PostgreSQL when it answers.
pub async fn databases() -> Vec<TestDb> {
    let mut out = vec![TestDb::sqlite().await];
    if let Some(url) = postgres_url() {
        out.push(TestDb::postgres(&url).await);
    }
    out
}
