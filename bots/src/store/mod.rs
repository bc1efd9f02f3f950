//! Where sessions live: [`SessionStore`], with an in-memory implementation ([`MemoryStore`]) and
//! a SQL one over SQLite or PostgreSQL ([`SqlStore`], tables from migrations `0300_*`).

mod memory;
mod sql;

pub use memory::MemoryStore;
pub use sql::SqlStore;

use crate::BoxFuture;
use crate::session::{Session, SessionStatus};

/// A storage failure (the database is unreachable, a row is unreadable, …).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session storage: {0}")]
    Database(#[from] sqlx::Error),
    #[error("session storage: migrating: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("session storage: unreadable row: {0}")]
    Corrupt(String),
}

/// Session persistence. Every method is one atomic step; the engine serialises work per
/// conversation, so implementations need no locking beyond their own consistency.
pub trait SessionStore: Send + Sync + 'static {
    /// The newest session (by `updated_at`) of the contact on the instance, of any kind.
    fn latest<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;

    /// Inserts the session or replaces the row with the same `id`.
    fn save<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Deletes one session by `id`.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The instance's sessions, optionally only those of one bot, newest first (`fetchSessions`).
    fn list<'a>(
        &'a self,
        instance: &'a str,
        bot_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Session>, StoreError>>;

    /// Sets the status of every session of the contact on the instance (`changeStatus`).
    /// Returns how many rows changed.
    fn set_status_for_contact<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
        status: SessionStatus,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Deletes every session of the contact on the instance (`changeStatus` `delete`).
    fn delete_for_contact<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
}
