//! The `proxies` table: one proxy per instance (`/proxy/set`, `/proxy/find`), read at start-up
//! to give each session its proxy before it connects.

use super::{Db, DbError, Tx, new_uuid, now_ms, with_conn};

/// A stored proxy. `secret` is the sealed `{username, password}` (see
/// `crate::http::proxy`); `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyRow {
    pub instance_id: String,
    pub id: String,
    pub enabled: bool,
    pub host: String,
    pub port: String,
    pub protocol: String,
    pub secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for ProxyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyRow")
            .field("instance_id", &self.instance_id)
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// What `/proxy/set` writes. `Debug` leaves the sealed credentials out.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxySet {
    pub enabled: bool,
    pub host: String,
    pub port: String,
    pub protocol: String,
    pub secret: Option<String>,
}

impl std::fmt::Debug for ProxySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySet")
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

type Row = (
    String,
    String,
    bool,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
);

const COLUMNS: &str =
    "instance_id, id, enabled, host, port, protocol, secret, created_at, updated_at";

fn row(r: Row) -> ProxyRow {
    let (instance_id, id, enabled, host, port, protocol, secret, created_at, updated_at) = r;
    ProxyRow {
        instance_id,
        id,
        enabled,
        host,
        port,
        protocol,
        secret,
        created_at,
        updated_at,
    }
}

impl Tx {
    /// Stores the instance's proxy (its row id and creation time survive a later set).
    pub async fn set_proxy(&mut self, instance_id: &str, p: &ProxySet) -> Result<(), DbError> {
        let now = now_ms();
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query(
                "INSERT INTO proxies (instance_id, id, enabled, host, port, protocol, secret, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (instance_id) DO UPDATE SET enabled = excluded.enabled, \
                 host = excluded.host, port = excluded.port, protocol = excluded.protocol, \
                 secret = excluded.secret, updated_at = excluded.updated_at",
            )
            .bind(instance_id)
            .bind(new_uuid())
            .bind(p.enabled)
            .bind(&p.host)
            .bind(&p.port)
            .bind(&p.protocol)
            .bind(&p.secret)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn get_proxy(&mut self, instance_id: &str) -> Result<Option<ProxyRow>, DbError> {
        let r: Option<Row> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM proxies WHERE instance_id = $1"
            )))
            .bind(instance_id)
            .fetch_optional(c)
            .await?
        });
        Ok(r.map(row))
    }
}

impl Db {
    /// Every enabled proxy, read outside any transaction (start-up).
    pub async fn enabled_proxies(&self) -> Result<Vec<ProxyRow>, DbError> {
        let rows: Vec<Row> = with_conn!(pool & self.pool, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM proxies WHERE enabled = $1 ORDER BY instance_id"
            )))
            .bind(true)
            .fetch_all(c)
            .await?
        });
        Ok(rows.into_iter().map(row).collect())
    }
}
