//! Sessions in a map: for tests and deployments without a database (lost on restart).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{SessionStore, StoreError};
use crate::BoxFuture;
use crate::session::{Session, SessionStatus};

#[derive(Debug, Default)]
pub struct MemoryStore {
    rows: Mutex<HashMap<String, Session>>,
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Session>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of a plain map.
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut rows)
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, Result<T, StoreError>> {
    Box::pin(std::future::ready(Ok(v)))
}

impl SessionStore for MemoryStore {
    fn latest<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        ready(self.with(|rows| {
            rows.values()
                .filter(|s| s.instance == instance && s.remote_jid == remote_jid)
                .max_by(|a, b| {
                    a.updated_at
                        .cmp(&b.updated_at)
                        .then(a.created_at.cmp(&b.created_at))
                })
                .cloned()
        }))
    }

    fn save<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>> {
        self.with(|rows| rows.insert(session.id.clone(), session.clone()));
        ready(())
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.with(|rows| rows.remove(id));
        ready(())
    }

    fn list<'a>(
        &'a self,
        instance: &'a str,
        bot_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Session>, StoreError>> {
        let mut found: Vec<Session> = self.with(|rows| {
            rows.values()
                .filter(|s| s.instance == instance)
                .filter(|s| bot_id.is_none() || s.bot_id.as_deref() == bot_id)
                .cloned()
                .collect()
        });
        found.sort_by_key(|s| std::cmp::Reverse((s.updated_at, s.created_at)));
        ready(found)
    }

    fn set_status_for_contact<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
        status: SessionStatus,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        ready(self.with(|rows| {
            let mut n = 0;
            for s in rows
                .values_mut()
                .filter(|s| s.instance == instance && s.remote_jid == remote_jid)
            {
                s.status = status;
                s.updated_at = now_ms;
                n += 1;
            }
            n
        }))
    }

    fn delete_for_contact<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        ready(self.with(|rows| {
            let before = rows.len();
            rows.retain(|_, s| !(s.instance == instance && s.remote_jid == remote_jid));
            (before - rows.len()) as u64
        }))
    }
}
