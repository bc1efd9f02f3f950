//! The database handle tenancy works on: the process's one pool, SQLite or PostgreSQL.
//!
//! The gateway passes in the pool it already has ([`SqlPool::Sqlite`] / [`SqlPool::Postgres`]);
//! tests and tools open their own with [`SqlPool::open_sqlite_file`] / [`SqlPool::open_postgres`].
//! Both backends run the same SQL text (`$N` placeholders work on SQLite too; times are Unix
//! milliseconds in 64-bit integers; documents are JSON text), expanded once per backend by
//! `with_pool!`, like the gateway's own repository.

use std::path::Path;
use std::str::FromStr as _;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::error::TenancyError;

/// One pool over either backend. Cheap to clone.
#[derive(Debug, Clone)]
pub enum SqlPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$c` bound to the backend pool (or transaction) of `$src`, once per backend.
macro_rules! with_pool {
    ($src:expr, |$c:ident| $body:expr) => {
        match $src {
            $crate::sql::SqlPool::Sqlite(p) => {
                let $c = p;
                $body
            }
            $crate::sql::SqlPool::Postgres(p) => {
                let $c = p;
                $body
            }
        }
    };
}
pub(crate) use with_pool;

/// A transaction on either backend.
pub(crate) enum SqlTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

macro_rules! with_tx {
    ($src:expr, |$c:ident| $body:expr) => {
        match $src {
            $crate::sql::SqlTx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::sql::SqlTx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use with_tx;

impl SqlTx {
    pub(crate) async fn commit(self) -> Result<(), TenancyError> {
        match self {
            SqlTx::Sqlite(t) => t.commit().await?,
            SqlTx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl SqlPool {
    /// Opens (creating it and its directory) an SQLite file and applies every migration.
    pub async fn open_sqlite_file(path: &Path) -> Result<Self, TenancyError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| TenancyError::Journal {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(connect)
            .await?;
        zapin_migrations::sqlite().run(&pool).await?;
        Ok(SqlPool::Sqlite(pool))
    }

    /// Connects to PostgreSQL, optionally inside `schema` (created if missing; tests isolate
    /// themselves this way), and applies every migration.
    pub async fn open_postgres(url: &str, schema: Option<&str>) -> Result<Self, TenancyError> {
        let mut connect = PgConnectOptions::from_str(url)?;
        if let Some(schema) = schema {
            let valid = !schema.is_empty()
                && schema.len() <= 63
                && schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(TenancyError::BadSchema(schema.to_owned()));
            }
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(connect.clone())
                .await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&pool)
            .await?;
            pool.close().await;
            connect = connect.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(connect)
            .await?;
        zapin_migrations::postgres().run(&pool).await?;
        Ok(SqlPool::Postgres(pool))
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            SqlPool::Sqlite(_) => "sqlite",
            SqlPool::Postgres(_) => "postgres",
        }
    }

    /// A transaction; on SQLite it takes the write lock up front (`BEGIN IMMEDIATE`) so that a
    /// read-then-write transaction is serialized with every other writer and cannot fail on a
    /// lock upgrade half-way.
    pub(crate) async fn begin(&self) -> Result<SqlTx, TenancyError> {
        Ok(match self {
            SqlPool::Sqlite(p) => SqlTx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            SqlPool::Postgres(p) => SqlTx::Postgres(p.begin().await?),
        })
    }

    pub async fn close(&self) {
        match self {
            SqlPool::Sqlite(p) => p.close().await,
            SqlPool::Postgres(p) => p.close().await,
        }
    }
}

/// Unix milliseconds now (for rows; quota and pacing decisions take a [`crate::Clock`]).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random (version 4) UUID in its usual lower-case text form.
pub fn new_uuid() -> Result<String, TenancyError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|_| TenancyError::Rng)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}
