//! Evolution's retry schedule (contract §5.3), with the randomness injectable for tests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Returns a sample of U(−1, 1). Injected so tests can pin the jitter.
pub type JitterSource = Arc<dyn Fn() -> f64 + Send + Sync>;

/// The operating system RNG mapped to U(−1, 1); 0 (no jitter) if the RNG fails.
pub fn default_jitter() -> JitterSource {
    Arc::new(|| {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            return 0.0;
        }
        // 53 random bits → [0, 1) → [−1, 1).
        let unit = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
        unit * 2.0 - 1.0
    })
}

/// When to retry and when to give up.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (`WEBHOOK_RETRY_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub exponential: bool,
    /// Fraction of the delay added or removed at random, within 0..=1.
    pub jitter: f64,
    /// Statuses that end delivery at once.
    pub non_retryable: BTreeSet<u16>,
}

impl Default for RetryPolicy {
    /// Evolution's defaults (contract §5.3): 10 attempts, 5 s doubling up to 300 s, ±20 %,
    /// and 400, 401, 403, 404 and 422 end a webhook delivery at once.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(300),
            exponential: true,
            jitter: 0.2,
            non_retryable: [400, 401, 403, 404, 422].into_iter().collect(),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based), given a jitter sample `u` in [−1, 1].
    pub fn delay(&self, attempt: u32, u: f64) -> Duration {
        let initial = self.initial_delay.as_secs_f64();
        let base = if self.exponential {
            let exp = i32::try_from(attempt.saturating_sub(1))
                .unwrap_or(i32::MAX)
                .min(62);
            (initial * 2f64.powi(exp)).min(self.max_delay.as_secs_f64())
        } else {
            initial
        };
        let u = if u.is_finite() {
            u.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let jittered = base + base * self.jitter.clamp(0.0, 1.0) * u;
        let secs = jittered.max(initial);
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_delay.max(self.initial_delay))
    }

    pub fn is_retryable(&self, status: u16) -> bool {
        !self.non_retryable.contains(&status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(300),
            exponential: true,
            jitter: 0.2,
            non_retryable: BTreeSet::from([400, 401, 403, 404, 422]),
        }
    }

    #[test]
    fn schedule_without_jitter_matches_evolution() {
        let p = policy();
        let secs: Vec<u64> = (1..=9).map(|n| p.delay(n, 0.0).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn jitter_bounds_and_floor() {
        let p = policy();
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(24));
        assert_eq!(p.delay(3, -1.0), Duration::from_secs(16));
        // The first delay cannot go below the initial delay.
        assert_eq!(p.delay(1, -1.0), Duration::from_secs(5));
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(6));
        assert_eq!(p.delay(9, 1.0), Duration::from_secs(360));
        // Out-of-range samples are clamped, NaN means no jitter.
        assert_eq!(p.delay(2, 7.0), Duration::from_secs(12));
        assert_eq!(p.delay(2, f64::NAN), Duration::from_secs(10));
        assert_eq!(p.delay(u32::MAX, 0.0), Duration::from_secs(300));
    }

    #[test]
    fn constant_delay_without_exponential() {
        let p = RetryPolicy {
            exponential: false,
            jitter: 0.0,
            ..policy()
        };
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(5));
        assert_eq!(p.delay(8, 0.0), Duration::from_secs(5));
    }

    #[test]
    fn default_jitter_is_in_range() {
        let j = default_jitter();
        for _ in 0..1000 {
            let u = j();
            assert!((-1.0..1.0).contains(&u), "{u}");
        }
    }

    #[test]
    fn non_retryable_statuses() {
        let p = policy();
        assert!(!p.is_retryable(404));
        assert!(!p.is_retryable(422));
        assert!(p.is_retryable(500));
        assert!(p.is_retryable(429));
    }
}
