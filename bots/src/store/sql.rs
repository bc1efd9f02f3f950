//! Sessions in the shared SQLite or PostgreSQL database (table `bot_sessions`, migration
//! `0300_bot_sessions`). The caller hands over its pool; the whole shared migrator runs on open,
//! as every zapin crate does, so the order in which crates open a database does not matter.

use sqlx::{PgPool, Row as _, SqlitePool};

use super::{SessionStore, StoreError};
use crate::BoxFuture;
use crate::session::{Session, SessionStatus};

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// [`SessionStore`] over a SQL pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
}

/// Runs the same code against whichever pool this store holds (the query text is identical:
/// both backends accept `$N` placeholders).
macro_rules! on_pool {
    ($self:expr, $pool:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

macro_rules! session_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status")?;
        let context: String = row.try_get("context")?;
        Session {
            id: row.try_get("id")?,
            instance: row.try_get("instance")?,
            remote_jid: row.try_get("remote_jid")?,
            kind: row.try_get("kind")?,
            bot_id: row.try_get("bot_id")?,
            session_id: row.try_get("session_id")?,
            push_name: row.try_get("push_name")?,
            status: SessionStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
            await_user: row.try_get::<i64, _>("await_user")? != 0,
            context: serde_json::from_str(&context)
                .map_err(|e| StoreError::Corrupt(format!("context: {e}")))?,
            created_at: to_u64(row.try_get("created_at")?),
            updated_at: to_u64(row.try_get("updated_at")?),
        }
    }};
}

const COLUMNS: &str = "id, instance, remote_jid, kind, bot_id, session_id, push_name, status, \
                       await_user, context, created_at, updated_at";

fn to_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn to_u64(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

impl SqlStore {
    /// Uses `pool`, applying pending migrations first.
    pub async fn sqlite(pool: SqlitePool) -> Result<Self, StoreError> {
        zapin_migrations::sqlite().run(&pool).await?;
        Ok(Self {
            pool: Pool::Sqlite(pool),
        })
    }

    /// Uses `pool`, whose owner has already applied the shared migrations (the gateway's
    /// database handle does on open).
    pub fn sqlite_migrated(pool: SqlitePool) -> Self {
        Self {
            pool: Pool::Sqlite(pool),
        }
    }

    /// Uses `pool`, whose owner has already applied the shared migrations.
    pub fn postgres_migrated(pool: PgPool) -> Self {
        Self {
            pool: Pool::Postgres(pool),
        }
    }

    /// Uses `pool`, applying pending migrations first.
    pub async fn postgres(pool: PgPool) -> Result<Self, StoreError> {
        zapin_migrations::postgres().run(&pool).await?;
        Ok(Self {
            pool: Pool::Postgres(pool),
        })
    }
}

impl SessionStore for SqlStore {
    fn latest<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {COLUMNS} FROM bot_sessions WHERE instance = $1 AND remote_jid = $2 \
                 ORDER BY updated_at DESC, created_at DESC LIMIT 1"
            );
            on_pool!(self, pool => {
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(instance)
                    .bind(remote_jid)
                    .fetch_optional(pool)
                    .await?;
                match row {
                    Some(row) => Ok(Some(session_from_row!(row))),
                    None => Ok(None),
                }
            })
        })
    }

    fn save<'a>(&'a self, s: &'a Session) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let context = s.context.to_string();
            let sql = format!(
                "INSERT INTO bot_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, \
                 remote_jid = excluded.remote_jid, kind = excluded.kind, bot_id = excluded.bot_id, \
                 session_id = excluded.session_id, push_name = excluded.push_name, \
                 status = excluded.status, await_user = excluded.await_user, \
                 context = excluded.context, created_at = excluded.created_at, \
                 updated_at = excluded.updated_at"
            );
            on_pool!(self, pool => {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&s.id)
                    .bind(&s.instance)
                    .bind(&s.remote_jid)
                    .bind(&s.kind)
                    .bind(&s.bot_id)
                    .bind(&s.session_id)
                    .bind(&s.push_name)
                    .bind(s.status.as_str())
                    .bind(i64::from(s.await_user))
                    .bind(&context)
                    .bind(to_i64(s.created_at))
                    .bind(to_i64(s.updated_at))
                    .execute(pool)
                    .await?;
            });
            Ok(())
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            on_pool!(self, pool => {
                sqlx::query("DELETE FROM bot_sessions WHERE id = $1")
                    .bind(id)
                    .execute(pool)
                    .await?;
            });
            Ok(())
        })
    }

    fn list<'a>(
        &'a self,
        instance: &'a str,
        bot_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Session>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {COLUMNS} FROM bot_sessions WHERE instance = $1 \
                 AND ($2 IS NULL OR bot_id = $2) ORDER BY updated_at DESC, created_at DESC"
            );
            on_pool!(self, pool => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(instance)
                    .bind(bot_id)
                    .fetch_all(pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(session_from_row!(row));
                }
                Ok(out)
            })
        })
    }

    fn set_status_for_contact<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
        status: SessionStatus,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            on_pool!(self, pool => {
                let done = sqlx::query(
                    "UPDATE bot_sessions SET status = $1, updated_at = $2 \
                     WHERE instance = $3 AND remote_jid = $4",
                )
                .bind(status.as_str())
                .bind(to_i64(now_ms))
                .bind(instance)
                .bind(remote_jid)
                .execute(pool)
                .await?;
                Ok(done.rows_affected())
            })
        })
    }

    fn delete_for_contact<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            on_pool!(self, pool => {
                let done =
                    sqlx::query("DELETE FROM bot_sessions WHERE instance = $1 AND remote_jid = $2")
                        .bind(instance)
                        .bind(remote_jid)
                        .execute(pool)
                        .await?;
                Ok(done.rows_affected())
            })
        })
    }
}
