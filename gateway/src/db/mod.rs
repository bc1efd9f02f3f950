//! The gateway's durable state: one connection pool over SQLite or PostgreSQL.
//!
//! Every write goes through a [`Tx`] so that the events describing a change are enqueued in the
//! event outbox (`zapin-events`) in the same transaction as the change itself (ARCHITECTURE principle 4): a
//! crash either keeps both or neither. The schema lives in `migrations/{sqlite,postgres}` (one
//! folder per backend, shared with the other crates) and the whole folder is applied on open.
//!
//! Both backends run the same SQL text: `$N` placeholders work on SQLite too, times are Unix
//! milliseconds and JSON documents are stored as text, so the code below expands each query once
//! per backend with `with_conn!` instead of going through sqlx's `Any` driver.

mod bots;
mod directory;
mod events;
mod models;
mod proxies;
mod repo;
mod secrets;
mod sends;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};
use zapin_events::{Outbox, StorePool, Transports};

use crate::config::{Config, Database};
use crate::webhook::Routing;

pub use zapin_events::new_uuid;

pub use bots::{BotRow, BotSettingsRow, OpenaiCredsRow};
pub use directory::{ChatQuery, ChatRecord, ChatSummary, ContactRecord};
pub use models::{
    Chat, Contact, Disconnection, Instance, InstanceDetails, Message, MessagePage, MessageQuery,
    NewInstance, Settings, StatusChange, WebhookConfig, WebhookSet,
};
pub use proxies::{ProxyRow, ProxySet};
pub use secrets::SealReport;
pub use sends::PendingSend;

/// The embedded SQLite file under `ZAPIN_DATA_DIR`.
pub const SQLITE_FILE: &str = "zapin.sqlite3";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    /// A stored JSON document did not parse or a value did not fit its column.
    #[error("corrupt {0} in the database")]
    Corrupt(&'static str),
    /// The instance name is taken (Evolution answers 403).
    #[error("instance name {0:?} is already in use")]
    NameTaken(String),
    #[error("no instance {0:?}")]
    NoInstance(String),
    #[error("invalid PostgreSQL schema name {0:?}")]
    BadSchema(String),
    /// Encrypting a token or secret at rest failed (the OS RNG).
    #[error("encrypting a stored secret failed")]
    Seal,
    /// The event outbox.
    #[error("event outbox: {0}")]
    Outbox(#[from] zapin_events::StoreError),
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The shared handle: cheap to clone, one pool for the whole process.
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pool: Pool,
    /// SQLite only: the one connection write transactions ([`Db::begin`]) and the outbox's
    /// drain run on (see `open_sqlite`).
    sqlite_writer: Option<SqlitePool>,
    /// Where events go: the webhooks and each broker enabled in the environment.
    pub(crate) transports: Arc<Transports>,
    /// The outbox's drain side; woken after a commit that enqueued events, so the dispatchers
    /// need not wait for their poll.
    pub(crate) outbox: Outbox,
}

impl From<Db> for Outbox {
    fn from(db: Db) -> Outbox {
        db.outbox
    }
}

impl From<&Db> for Outbox {
    fn from(db: &Db) -> Outbox {
        db.outbox.clone()
    }
}

/// Runs `$body` with `$c` bound to the backend-specific executor of `$src` (a [`Pool`] or a
/// transaction), once per backend.
macro_rules! with_conn {
    (pool $src:expr, |$c:ident| $body:expr) => {
        match $src {
            $crate::db::Pool::Sqlite(p) => {
                let $c = p;
                $body
            }
            $crate::db::Pool::Postgres(p) => {
                let $c = p;
                $body
            }
        }
    };
    (tx $src:expr, |$c:ident| $body:expr) => {
        match $src {
            $crate::db::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A transaction. Dropping it without [`Tx::commit`] rolls everything back, events included.
pub struct Tx {
    pub(crate) inner: TxInner,
    pub(crate) db: Db,
    pub(crate) enqueued: usize,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("enqueued", &self.enqueued)
            .finish_non_exhaustive()
    }
}

impl Tx {
    /// Commits, then wakes the dispatcher if this transaction enqueued events.
    pub async fn commit(self) -> Result<(), DbError> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        if self.enqueued > 0 {
            self.db.outbox.wake();
        }
        Ok(())
    }

    /// Rolls back explicitly (dropping does the same, without waiting).
    pub async fn rollback(self) -> Result<(), DbError> {
        match self.inner {
            TxInner::Sqlite(t) => t.rollback().await?,
            TxInner::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }

    /// Marks a point [`Tx::rollback_to_savepoint`] can return to, so that several units of
    /// work can share one commit (one fsync) and still fail one by one. One level only.
    pub async fn savepoint(&mut self) -> Result<(), DbError> {
        self.execute("SAVEPOINT unit").await
    }

    /// Keeps what was done since [`Tx::savepoint`].
    pub async fn release_savepoint(&mut self) -> Result<(), DbError> {
        self.execute("RELEASE SAVEPOINT unit").await
    }

    /// Undoes what was done since [`Tx::savepoint`]; the transaction stays usable.
    pub async fn rollback_to_savepoint(&mut self) -> Result<(), DbError> {
        self.execute("ROLLBACK TO SAVEPOINT unit").await?;
        self.execute("RELEASE SAVEPOINT unit").await
    }

    async fn execute(&mut self, sql: &'static str) -> Result<(), DbError> {
        with_conn!(tx & mut self.inner, |c| {
            sqlx::query(sql).execute(c).await?;
        });
        Ok(())
    }

    /// Events enqueued so far (one per delivery target).
    pub fn enqueued(&self) -> usize {
        self.enqueued
    }
}

/// Knobs for opening the database; `DbOptions::default()` gives the production values.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// The shared pool's size (SQLite's write transactions have one more connection of their own).
    pub max_connections: u32,
    /// How long SQLite waits for the write lock held by another connection or process.
    pub busy_timeout: Duration,
    /// PostgreSQL only: use (and create) this schema instead of the URI's default search path.
    /// Tests use it to isolate themselves.
    pub pg_schema: Option<String>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout: Duration::from_secs(10),
            pg_schema: None,
        }
    }
}

impl Db {
    /// Opens the database `config` names (`DATABASE_CONNECTION_URI`, else the embedded SQLite
    /// file under `ZAPIN_DATA_DIR`), runs pending migrations, seals what earlier versions stored
    /// in plain text (with `config`'s keyring, see [`Db::seal_at_rest`]) and takes the global
    /// webhook routing from `config`.
    pub async fn open(config: &Config) -> Result<Self, DbError> {
        let db = Self::open_unsealed(config).await?;
        db.seal_legacy(config).await?;
        Ok(db)
    }

    /// [`Db::open`] without sealing plain-text rows: `zapin serve` first checks that its key is
    /// the one the data is sealed under (see [`crate::keys`]), then calls [`Db::seal_legacy`].
    pub async fn open_unsealed(config: &Config) -> Result<Self, DbError> {
        let routing = crate::webhook::routing(config);
        let options = DbOptions::default();
        let db = match &config.database {
            Database::EmbeddedSqlite => {
                Self::open_sqlite_file(&config.data_dir.join(SQLITE_FILE), routing, &options)
                    .await?
            }
            Database::Sqlite(uri) => {
                let connect = SqliteConnectOptions::from_str(uri.expose())?;
                Self::open_sqlite(connect, routing, &options).await?
            }
            Database::Postgres(uri) => Self::open_postgres(uri.expose(), routing, &options).await?,
        };
        Ok(db.with_transports(crate::webhook::transports(config)))
    }

    /// Seals what earlier versions stored in plain text under `config`'s keyring (nothing
    /// without a key; see [`Db::seal_at_rest`]).
    pub async fn seal_legacy(&self, config: &Config) -> Result<SealReport, DbError> {
        let keys = config.keyring();
        if keys.is_none() {
            return Ok(SealReport::default());
        }
        self.seal_at_rest(
            &crate::http::TokenCipher::with_keyring(keys.clone()),
            &crate::webhook::SecretCipher::with_keyring(keys),
        )
        .await
    }

    /// Opens (creating it and its directory if needed) an SQLite file.
    pub async fn open_sqlite_file(
        path: &Path,
        routing: Routing,
        options: &DbOptions,
    ) -> Result<Self, DbError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DbError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Self::open_sqlite(SqliteConnectOptions::new().filename(path), routing, options).await
    }

    async fn open_sqlite(
        connect: SqliteConnectOptions,
        routing: Routing,
        options: &DbOptions,
    ) -> Result<Self, DbError> {
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed event is on disk when commit returns, as principle 4 promises.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect.clone())
            .await?;
        zapin_migrations::sqlite().run(&pool).await?;
        // Write transactions get a pool of one connection of their own. SQLite lets one writer
        // in at a time; with writers spread over several pooled connections the others wait in
        // SQLite's busy handler, which sleeps between tries (up to 100 ms each) and lets a late
        // writer overtake an early one: that was the p99 of a send under load. One writer
        // connection queues them in the pool's fair order instead. Reads and single statements
        // keep the shared pool, so a transaction may still read through it (WAL) without
        // waiting for itself.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect)
            .await?;
        Ok(Self::new(Pool::Sqlite(pool), routing, Some(writer)))
    }

    /// Connects to PostgreSQL (optionally inside `options.pg_schema`) and runs migrations.
    pub async fn open_postgres(
        url: &str,
        routing: Routing,
        options: &DbOptions,
    ) -> Result<Self, DbError> {
        let mut connect = PgConnectOptions::from_str(url)?;
        if let Some(schema) = &options.pg_schema {
            let valid = !schema.is_empty()
                && schema.len() <= 63
                && schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(DbError::BadSchema(schema.clone()));
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
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await?;
        zapin_migrations::postgres().run(&pool).await?;
        Ok(Self::new(Pool::Postgres(pool), routing, None))
    }

    fn new(pool: Pool, routing: Routing, sqlite_writer: Option<SqlitePool>) -> Self {
        let outbox = Outbox::new(match &pool {
            Pool::Sqlite(p) => StorePool::Sqlite(sqlite_writer.as_ref().unwrap_or(p).clone()),
            Pool::Postgres(p) => StorePool::Postgres(p.clone()),
        });
        Self {
            pool,
            sqlite_writer,
            transports: Arc::new(Transports::webhooks(routing)),
            outbox,
        }
    }

    /// Routes events to `transports` (the webhooks and the brokers) instead of the webhooks
    /// alone. [`Db::open`] does this from the configuration.
    pub fn with_transports(mut self, transports: Transports) -> Self {
        self.transports = Arc::new(transports);
        self
    }

    /// Every transport events are routed to.
    pub fn transports(&self) -> &Transports {
        &self.transports
    }

    /// The outbox's drain side, for the dispatchers.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// The SQLite pool, for other stores that must share the one pool (and tests).
    #[doc(hidden)]
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for other stores that must share the one pool (and tests).
    #[doc(hidden)]
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }

    /// The global webhook routing this handle enqueues with.
    pub fn routing(&self) -> &Routing {
        &self.transports.webhook
    }

    /// Starts a transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`) so a
    /// read-then-write transaction cannot fail half-way on a lock upgrade.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::Sqlite(
                self.sqlite_writer
                    .as_ref()
                    .unwrap_or(p)
                    .begin_with("BEGIN IMMEDIATE")
                    .await?,
            ),
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
        };
        Ok(Tx {
            inner,
            db: self.clone(),
            enqueued: 0,
        })
    }

    /// Answers when the database does (`SELECT 1`, the readiness check).
    pub async fn ping(&self) -> Result<(), DbError> {
        let _: i64 = with_conn!(pool & self.pool, |c| {
            sqlx::query_scalar("SELECT CAST(1 AS BIGINT)")
                .fetch_one(c)
                .await?
        });
        Ok(())
    }

    /// Waits for in-flight queries and closes the pool.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    zapin_events::now_ms()
}
