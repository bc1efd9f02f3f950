//! Shared helpers for the storage and webhook tests: the backends to run on, and a real HTTP
//! receiver that records requests and answers as scripted.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // test helpers may panic

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use tokio::sync::Notify;
use zapin_gateway::db::{Db, DbOptions};
use zapin_gateway::webhook::Routing;

pub mod serve;

pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Where the test PostgreSQL runs unless `ZAPIN_TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL URL (`ZAPIN_TEST_DATABASE_URL`, else [`DEFAULT_POSTGRES_URL`]) when a server
/// answers there, or `None` (skipped, with the reason printed). Under `CI=true` an unreachable
/// database is a failure.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("ZAPIN_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    let reachable = host_port(&url).is_some_and(|addr| {
        use std::net::ToSocketAddrs as _;
        addr.to_socket_addrs()
            .ok()
            .into_iter()
            .flatten()
            .any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
    });
    if reachable {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but PostgreSQL at {url} is unreachable (ZAPIN_TEST_DATABASE_URL)");
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "skipping the PostgreSQL run: nothing answers at {url} (set ZAPIN_TEST_DATABASE_URL)"
    );
    None
}

/// `host:port` of a postgres URL (port 5432 when absent).
fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return None;
    }
    Some(if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    })
}

/// A database of its own on the test server, for tests that run the whole gateway (which puts
/// the signal store in the same database): parallel tests and CI's reused server never share
/// tables. Dropped by [`PgDatabase::drop_database`], or on drop when a failing test unwinds
/// past it (so a reused CI server does not collect databases).
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
    dropped: bool,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> Self {
        let name = format!(
            "zt_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        );
        let pool = sqlx::PgPool::connect(admin_url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (admin_url, None),
        };
        let (server, _) = base.rsplit_once('/').unwrap();
        let url = match query {
            Some(q) => format!("{server}/{name}?{q}"),
            None => format!("{server}/{name}"),
        };
        Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
            dropped: false,
        }
    }

    async fn drop_named(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
        let pool = sqlx::PgPool::connect(admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&pool)
        .await?;
        pool.close().await;
        Ok(())
    }

    pub async fn drop_database(mut self) {
        Self::drop_named(&self.admin_url, &self.name).await.unwrap();
        self.dropped = true;
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Unwinding inside a runtime: drop it from a thread with a runtime of its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(Self::drop_named(&admin_url, &name));
            }
        })
        .join();
    }
}

/// A database for one test, removed by [`TestDb::cleanup`].
pub struct TestDb {
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    pub async fn sqlite(routing: Routing) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite_file(
            &dir.path().join("nested/zapin.sqlite3"),
            routing,
            &DbOptions::default(),
        )
        .await
        .unwrap();
        Self {
            db,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh schema (hence fresh tables) in the test database.
    pub async fn postgres(url: &str, routing: Routing) -> Self {
        let schema = format!(
            "zt_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let options = DbOptions {
            pg_schema: Some(schema.clone()),
            max_connections: 4,
            ..DbOptions::default()
        };
        let db = Db::open_postgres(url, routing, &options).await.unwrap();
        Self {
            db,
            _dir: None,
            pg: Some((url.to_owned(), schema)),
        }
    }

    pub async fn cleanup(self) {
        self.db.close().await;
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

/// SQLite always; PostgreSQL when `ZAPIN_TEST_DATABASE_URL` is set.
pub async fn backends(routing: Routing) -> Vec<TestDb> {
    let mut out = vec![TestDb::sqlite(routing.clone()).await];
    if let Some(url) = postgres_url() {
        out.push(TestDb::postgres(&url, routing).await);
    }
    out
}

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn event_id(&self) -> String {
        self.header("x-zapin-event-id").unwrap().to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Never answers (the client's timeout must fire).
    Hang,
}

#[derive(Default)]
struct Inner {
    seen: Vec<Seen>,
    /// Replies used in order; once empty, `default` applies.
    script: VecDeque<Reply>,
    default: Option<Reply>,
    delay: Duration,
}

/// A real HTTP server on 127.0.0.1:0.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
    pub base: String,
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let changed = Arc::new(Notify::new());
        let state = (inner.clone(), changed.clone());
        let app = Router::new()
            .route("/", post(record))
            .route("/{*rest}", post(record))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            inner,
            changed,
            base: format!("http://{addr}"),
        }
    }

    /// Answer these first, in order.
    pub fn script(&self, replies: &[Reply]) {
        self.inner
            .lock()
            .unwrap()
            .script
            .extend(replies.iter().copied());
    }

    /// Answer this once the script is used up (default 200).
    pub fn always(&self, reply: Reply) {
        self.inner.lock().unwrap().default = Some(reply);
    }

    /// Wait this long before answering each request.
    pub fn delay_each(&self, d: Duration) {
        self.inner.lock().unwrap().delay = d;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Waits until at least `n` requests arrived; panics after [`TIMEOUT`].
    pub async fn wait_for(&self, n: usize) -> Vec<Seen> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let notified = self.changed.notified();
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "receiver saw {} requests, expected {n}",
                seen.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

type ReceiverState = (Arc<Mutex<Inner>>, Arc<Notify>);

async fn record(
    State((inner, changed)): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (reply, delay) = {
        let mut g = inner.lock().unwrap();
        g.seen.push(Seen {
            path: uri.path().to_owned(),
            headers,
            body,
        });
        let reply = g
            .script
            .pop_front()
            .or(g.default)
            .unwrap_or(Reply::Status(200));
        (reply, g.delay)
    };
    changed.notify_waiters();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match reply {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap(),
        Reply::Hang => std::future::pending().await,
    }
}

/// Polls `check` until it returns `Some`, failing after [`TIMEOUT`]. For state only visible in
/// the database (a row leaving the outbox), where there is nothing to be notified by.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
