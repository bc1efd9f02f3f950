//! Anti-ban send pacing: when each of an instance's sends may go out.
//!
//! WhatsApp bans numbers that send like machines: many messages per minute, instant switches
//! between chats, a brand-new number sending at full speed. A plan (overridable per instance)
//! sets three limits (see [`crate::plan::Pacing`]): the most sends per minute, a random gap
//! before a send to a chat other than the previous one, and a warm-up ramp (fewer sends per
//! hour while the instance is young).
//!
//! [`Pacer`] decides, purely: given the instance's recent sends and a time, when may a send to
//! a chat go? It takes the time as an argument and draws its random gaps from a seeded
//! generator, so tests drive it with a manual clock and known seeds, and never sleep.
//! [`SendQueue`] is the durable queue of sends accepted beyond the pace (`PENDING`), one FIFO
//! per instance, which keeps each chat's order; a crash loses none of them (they are rows).
//! The worker that drains the queue through the engine lives in the gateway.

mod queue;

use std::collections::{HashMap, VecDeque};

pub use queue::{QueuedSend, SendQueue};

use crate::plan::Pacing;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// SplitMix64: a tiny, seedable generator for the gaps (not for secrets).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `min..=max` (a modulo bias of at most `span / 2^64`, irrelevant here).
    fn between(&mut self, min: u64, max: u64) -> u64 {
        let span = max.saturating_sub(min).saturating_add(1);
        if span == 0 {
            return min.wrapping_add(self.next());
        }
        min + self.next() % span
    }
}

/// One instance's pacing state.
#[derive(Debug, Clone)]
pub struct Pacer {
    pacing: Pacing,
    /// When the instance was created (or linked): the start of its warm-up.
    born_ms: i64,
    /// Send times of the last hour, oldest first.
    sent: VecDeque<i64>,
    last: Option<(String, i64)>,
    /// The gap drawn for switching to a chat, kept until the next send so that repeated
    /// questions get the same answer.
    gaps: HashMap<String, u64>,
    rng: SplitMix64,
}

impl Pacer {
    /// `seed` makes the gaps reproducible (tests); production seeds from the OS RNG.
    pub fn new(pacing: Pacing, born_ms: i64, seed: u64) -> Self {
        Self {
            pacing,
            born_ms,
            sent: VecDeque::new(),
            last: None,
            gaps: HashMap::new(),
            rng: SplitMix64(seed),
        }
    }

    /// A random seed from the OS.
    pub fn os_seed() -> u64 {
        let mut b = [0u8; 8];
        // Gaps need variety, not secrecy: a failed RNG falls back to the time.
        if getrandom::fill(&mut b).is_err() {
            return crate::sql::now_ms().unsigned_abs();
        }
        u64::from_le_bytes(b)
    }

    pub fn pacing(&self) -> &Pacing {
        &self.pacing
    }

    /// Applies a changed plan or override from now on.
    pub fn set_pacing(&mut self, pacing: Pacing) {
        self.pacing = pacing;
        self.gaps.clear();
    }

    /// Restores the send times of the last hour (after a restart, from the message log), and
    /// the chat of the latest one if known.
    pub fn restore(&mut self, mut times: Vec<i64>, last_chat: Option<String>) {
        times.sort_unstable();
        self.sent = times.into_iter().collect();
        self.last = match (last_chat, self.sent.back()) {
            (Some(chat), Some(&at)) => Some((chat, at)),
            _ => None,
        };
        self.gaps.clear();
    }

    /// The warm-up limit per hour at `at`, if the instance is still warming up.
    fn warmup_per_hour(&self, at: i64) -> Option<u32> {
        let age_days = (at - self.born_ms).div_euclid(DAY_MS);
        let stages = self.pacing.warmup.as_deref()?;
        stages
            .iter()
            .find(|s| age_days < i64::from(s.until_day))
            .map(|s| s.per_hour)
    }

    /// The earliest time, at or after `now` (Unix ms), at which a send to `chat` keeps every
    /// limit.
    pub fn earliest(&mut self, chat: &str, now: i64) -> i64 {
        while self.sent.front().is_some_and(|&t| t <= now - HOUR_MS) {
            self.sent.pop_front();
        }
        let mut at = now;
        // The n-th most recent send must have left the window before another may go.
        let nth_latest = |sent: &VecDeque<i64>, n: u32| -> Option<i64> {
            let n = usize::try_from(n).ok()?;
            sent.len().checked_sub(n).and_then(|i| sent.get(i)).copied()
        };
        if let Some(per_minute) = self.pacing.per_minute
            && let Some(t) = nth_latest(&self.sent, per_minute)
        {
            at = at.max(t + MINUTE_MS);
        }
        if let Some(per_hour) = self.warmup_per_hour(now)
            && let Some(t) = nth_latest(&self.sent, per_hour)
        {
            at = at.max(t + HOUR_MS);
        }
        if let (Some(gap), Some((last_chat, last_at))) = (self.pacing.chat_gap_ms, &self.last)
            && last_chat != chat
        {
            let drawn = match self.gaps.get(chat) {
                Some(&g) => g,
                None => {
                    let g = self.rng.between(gap.min, gap.max);
                    self.gaps.insert(chat.to_owned(), g);
                    g
                }
            };
            at = at.max(last_at + i64::try_from(drawn).unwrap_or(i64::MAX));
        }
        at
    }

    /// Whether a send to `chat` may go at `now`.
    pub fn may_send(&mut self, chat: &str, now: i64) -> bool {
        self.earliest(chat, now) <= now
    }

    /// Records a send that went out at `at`.
    pub fn record(&mut self, chat: &str, at: i64) {
        self.sent.push_back(at);
        self.last = Some((chat.to_owned(), at));
        self.gaps.clear();
    }
}

#[cfg(test)]
mod tests;
