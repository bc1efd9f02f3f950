//! Reconnect delays: exponential backoff with full jitter and a cap.
//!
//! Thousands of sessions lose their sockets at the same moment when a node's network blips or the
//! server restarts. Full jitter (a uniform delay in `[0, min(cap, base·2^n)]`) spreads their
//! reconnects over the whole window instead of synchronised waves, which is what keeps a reconnect
//! storm orderly. The attempt counter resets only after a connection has stayed up for a while, so
//! a server that accepts and immediately drops us does not get hammered at the base delay.

use std::time::Duration;

/// Backoff parameters. Defaults: 1 s base, 5 min cap, a connection counts as stable after 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub stable_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            stable_after: Duration::from_secs(30),
        }
    }
}

/// The reconnect state of one session.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The delay before the next attempt. `random` is any uniformly distributed `u64` (the caller
    /// owns the RNG, which keeps this deterministic under test).
    pub fn next_delay(&mut self, policy: &BackoffPolicy, random: u64) -> Duration {
        let ceiling = self.ceiling(policy);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        if ceiling_ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(random % (ceiling_ms + 1))
    }

    /// The upper bound of the next delay, without consuming an attempt.
    pub fn ceiling(&self, policy: &BackoffPolicy) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        policy.base.saturating_mul(factor).min(policy.cap)
    }

    /// Adds attempts without waiting, e.g. when the server says it is rate limiting us.
    pub fn penalize(&mut self, attempts: u32) {
        self.attempt = self.attempt.saturating_add(attempts);
    }

    /// Called when a connection closes after having been up for `uptime`.
    pub fn on_connection_closed(&mut self, policy: &BackoffPolicy, uptime: Duration) {
        if uptime >= policy.stable_after {
            self.attempt = 0;
        }
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let policy = BackoffPolicy::default();
        let mut b = Backoff::default();
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            ceilings.push(b.ceiling(&policy).as_secs());
            b.next_delay(&policy, 0);
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }

    #[test]
    fn delay_is_within_zero_and_ceiling() {
        let policy = BackoffPolicy::default();
        let mut b = Backoff::default();
        b.penalize(3); // ceiling 8 s
        let max = b.clone().next_delay(&policy, u64::MAX);
        assert!(max <= Duration::from_secs(8));
        assert_eq!(b.clone().next_delay(&policy, 0), Duration::ZERO);
        assert_eq!(
            b.clone().next_delay(&policy, 8000),
            Duration::from_secs(8),
            "the ceiling itself is reachable"
        );
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let policy = BackoffPolicy::default();
        let mut b = Backoff::default();
        b.penalize(u32::MAX);
        assert_eq!(b.ceiling(&policy), policy.cap);
        assert!(b.next_delay(&policy, u64::MAX) <= policy.cap);
    }

    #[test]
    fn counter_resets_only_after_a_stable_connection() {
        let policy = BackoffPolicy::default();
        let mut b = Backoff::default();
        b.penalize(4);
        b.on_connection_closed(&policy, Duration::from_secs(5));
        assert_eq!(b.attempt(), 4, "a flapping connection keeps backing off");
        b.on_connection_closed(&policy, Duration::from_secs(31));
        assert_eq!(b.attempt(), 0);
    }
}
