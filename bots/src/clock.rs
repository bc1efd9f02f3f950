//! Time, injected: the engine reads "now" and waits for deadlines only through [`Clock`], so that
//! tests drive session expiry and debounce by moving a [`ManualClock`] instead of sleeping.
//! (Bot-call timeouts and retry backoff are about real I/O and use tokio's timer.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::BoxFuture;

/// Milliseconds since the Unix epoch, and a way to wait until a given one.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time in Unix milliseconds.
    fn now_ms(&self) -> u64;
    /// Resolves once [`Clock::now_ms`] is at or past `deadline_ms`.
    fn sleep_until(&self, deadline_ms: u64) -> BoxFuture<'static, ()>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn sleep_until(&self, deadline_ms: u64) -> BoxFuture<'static, ()> {
        let wait = deadline_ms.saturating_sub(self.now_ms());
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that only moves when told to ([`ManualClock::advance`]); sleepers wake as it passes
/// their deadline.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: std::sync::Arc<watch::Sender<u64>>,
}

impl ManualClock {
    /// A clock standing at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now: std::sync::Arc::new(watch::Sender::new(start_ms)),
        }
    }

    /// Moves the clock forward by `by`, waking every sleeper whose deadline is passed.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now.send_modify(|now| *now = now.saturating_add(by));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline_ms: u64) -> BoxFuture<'static, ()> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            while *rx.borrow_and_update() < deadline_ms {
                if rx.changed().await.is_err() {
                    // The clock is gone: nothing will ever move it again.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}
