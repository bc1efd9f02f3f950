//! Quota counters: what a tenant has used in each window, and the decision to accept or refuse.
//!
//! The rules live here, once; the three backends ([`MemoryCounters`], [`SqlCounters`],
//! [`RedisCounters`]) implement only [`CounterStore`], an atomic "add to all of these counters if
//! none passes its limit" primitive, plus plain adjustments and reads.
//!
//! A charge of `weight` units of a quota type touches one counter per window: every window the
//! tenant's plan limits, plus `day` and `month` (always counted: analytics and billing read
//! them) and, for resources held at once (instances, bots), `total`. It is accepted only if every
//! hard limit holds after adding the weight, and then all counters move together; a refused
//! charge moves nothing, so a 429 is never counted. The [`Receipt`] of an accepted charge names
//! the exact counters it moved, so [`Quotas::refund`] undoes it even if a window rolled over in
//! between (a request refused later by validation is not charged).

mod memory;
mod redis;
mod sql;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use memory::{MemoryCounters, MemoryOptions};
pub use redis::RedisCounters;
pub use sql::SqlCounters;

use crate::Clock;
use crate::error::TenancyError;
use crate::plan::{PlanSpec, QuotaType, Window};
use crate::routes::Cost;
use crate::time::rfc3339;

/// A boxed future, so that [`CounterStore`] can be used as `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One counter: a tenant's use of a quota type in one window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey {
    pub tenant: Arc<str>,
    pub quota: QuotaType,
    pub window: Window,
    /// Unix seconds of the window's start; 0 for `total`.
    pub start: i64,
}

/// A counter a charge touches, with its limit if that limit refuses (hard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub key: CounterKey,
    pub limit: Option<u64>,
    /// Unix seconds after which the counter is no longer needed (stores may drop it then).
    pub keep_until: Option<i64>,
}

/// The outcome of [`CounterStore::try_add`]: every counter's value after the add (accepted) or
/// as it stands (refused), in slot order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryAdd {
    Accepted(Vec<u64>),
    Refused(Vec<u64>),
}

/// Where counters live. Implementations must make `try_add` atomic: with N concurrent calls
/// against R units left, exactly the calls that fit are accepted, on one node or many.
pub trait CounterStore: Send + Sync + std::fmt::Debug {
    /// Adds `weight` to every slot's counter if, for each slot with a limit, `used + weight <=
    /// limit`; otherwise changes nothing.
    fn try_add<'a>(
        &'a self,
        slots: &'a [Slot],
        weight: u64,
    ) -> BoxFuture<'a, Result<TryAdd, TenancyError>>;

    /// Adds `delta` (negative for refunds and releases) to each existing counter, never below
    /// zero. A counter that no longer exists (its window expired) is left alone.
    fn adjust<'a>(
        &'a self,
        keys: &'a [CounterKey],
        delta: i64,
    ) -> BoxFuture<'a, Result<(), TenancyError>>;

    /// Current values (0 for a counter never charged).
    fn get<'a>(&'a self, keys: &'a [CounterKey]) -> BoxFuture<'a, Result<Vec<u64>, TenancyError>>;

    /// Sets a counter outright (reconciling a `total` with the resources that really exist).
    fn set<'a>(
        &'a self,
        key: &'a CounterKey,
        value: u64,
    ) -> BoxFuture<'a, Result<(), TenancyError>>;
}

/// What `X-RateLimit-*` report: the tightest hard window of the request's quota type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub quota: QuotaType,
    pub window: Window,
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds when the window resets; 0 for `total`, which never does.
    pub reset: i64,
}

impl RateLimit {
    /// The values after `weight` units were given back.
    pub fn refunded(self, weight: u64) -> Self {
        Self {
            remaining: self.remaining.saturating_add(weight).min(self.limit),
            ..self
        }
    }
}

/// Proof of an accepted charge: the counters it moved, for [`Quotas::refund`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub keys: Vec<CounterKey>,
    pub weight: u64,
}

/// A refused charge, with what the 429 answer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub quota: QuotaType,
    /// The window that refused (the one resetting last, if several did).
    pub window: Window,
    pub limit: u64,
    pub used: u64,
    /// Unix seconds when the refusing window resets (`None` for `total`).
    pub reset: Option<i64>,
    /// Seconds until then, at least 1 (`None` for `total`).
    pub retry_after: Option<u64>,
    /// The `X-RateLimit-*` values of the answer.
    pub rate: RateLimit,
}

impl Refusal {
    /// `Quota exceeded: message_send 100/day, resets 2026-12-07T00:00:00Z`.
    pub fn message(&self) -> String {
        match self.reset {
            Some(reset) => format!(
                "Quota exceeded: {} {}/{}, resets {}",
                self.quota,
                self.limit,
                self.window,
                rfc3339(reset)
            ),
            None => format!(
                "Quota exceeded: {} {}/{}",
                self.quota, self.limit, self.window
            ),
        }
    }
}

/// The answer to a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accepted {
        receipt: Receipt,
        /// `None` when the quota type is unlimited in the plan.
        rate: Option<RateLimit>,
    },
    Refused(Refusal),
}

/// One line of `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageLine {
    pub quota: QuotaType,
    pub window: Window,
    pub used: u64,
    /// `None`: unlimited (or, for a metered type's `month`, see `included`).
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// The amount included in the price for a metered type's `month` window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included: Option<u64>,
    /// RFC 3339 time of the reset; `None` for `total`.
    pub reset: Option<String>,
}

/// How long a counter is worth keeping after its window ends: months stay for a year of
/// billing history, days for the analytics of the last month.
fn keep_until(window: Window, end: Option<i64>) -> Option<i64> {
    let end = end?;
    Some(match window {
        Window::Minute | Window::Hour => end + 3600,
        Window::Day => end + 40 * 86_400,
        Window::Month => end + 400 * 86_400,
        Window::Total => return None,
    })
}

impl QuotaType {
    /// Whether the type counts resources held at once (charged on create, released on delete),
    /// so its `total` counter is always kept.
    pub fn is_resource(self) -> bool {
        matches!(self, QuotaType::InstanceCreate | QuotaType::BotCreate)
    }
}

/// Quota decisions over a [`CounterStore`] and a [`Clock`].
#[derive(Debug, Clone)]
pub struct Quotas {
    store: Arc<dyn CounterStore>,
    clock: Arc<dyn Clock>,
}

impl Quotas {
    pub fn new(store: Arc<dyn CounterStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    pub fn store(&self) -> &Arc<dyn CounterStore> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn now_secs(&self) -> i64 {
        self.clock.now_ms().div_euclid(1000)
    }

    /// The windows a charge of `quota` touches under `plan`, with their hard limits.
    fn slots(&self, tenant: &Arc<str>, plan: &PlanSpec, quota: QuotaType, now: i64) -> Vec<Slot> {
        let mut windows: Vec<(Window, Option<u64>)> = Vec::with_capacity(5);
        let limits = plan.limits(quota);
        for window in Window::ALL {
            let limit = limits.and_then(|l| l.get(&window)).copied();
            let always = matches!(window, Window::Day | Window::Month)
                || window == Window::Total && quota.is_resource();
            if limit.is_some() || always {
                let hard = limit.filter(|_| plan.is_hard(quota, window));
                windows.push((window, hard));
            }
        }
        windows
            .into_iter()
            .map(|(window, limit)| {
                let start = window.start(now);
                Slot {
                    key: CounterKey {
                        tenant: tenant.clone(),
                        quota,
                        window,
                        start,
                    },
                    limit,
                    keep_until: keep_until(window, window.end(start)),
                }
            })
            .collect()
    }

    /// Charges `cost` to `tenant` under `plan`: exactly once if accepted, not at all if refused.
    pub async fn charge(
        &self,
        tenant: &str,
        plan: &PlanSpec,
        cost: Cost,
    ) -> Result<Decision, TenancyError> {
        let now = self.now_secs();
        let tenant: Arc<str> = Arc::from(tenant);
        let slots = self.slots(&tenant, plan, cost.quota, now);
        let weight = u64::from(cost.weight);
        match self.store.try_add(&slots, weight).await? {
            TryAdd::Accepted(used) => {
                let rate = tightest(plan, cost.quota, &slots, &used);
                Ok(Decision::Accepted {
                    receipt: Receipt {
                        keys: slots.into_iter().map(|s| s.key).collect(),
                        weight,
                    },
                    rate,
                })
            }
            TryAdd::Refused(used) => Ok(Decision::Refused(refusal(
                plan, cost.quota, &slots, &used, weight, now,
            ))),
        }
    }

    /// Gives back an accepted charge (the request was refused later, by validation).
    pub async fn refund(&self, receipt: &Receipt) -> Result<(), TenancyError> {
        let delta = i64::try_from(receipt.weight).unwrap_or(i64::MAX);
        self.store.adjust(&receipt.keys, -delta).await
    }

    /// Gives back `amount` of a resource type's `total` (an instance or bot was deleted).
    pub async fn release(
        &self,
        tenant: &str,
        quota: QuotaType,
        amount: u64,
    ) -> Result<(), TenancyError> {
        let key = total_key(tenant, quota);
        let delta = i64::try_from(amount).unwrap_or(i64::MAX);
        self.store.adjust(std::slice::from_ref(&key), -delta).await
    }

    /// Sets a resource type's `total` to what the tenant really holds (on start, after a crash
    /// between a delete and its release).
    pub async fn reconcile_total(
        &self,
        tenant: &str,
        quota: QuotaType,
        held: u64,
    ) -> Result<(), TenancyError> {
        self.store.set(&total_key(tenant, quota), held).await
    }

    /// The `X-RateLimit-*` values of `quota` without charging (for routes that are not charged
    /// or were refused before charging).
    pub async fn peek(
        &self,
        tenant: &str,
        plan: &PlanSpec,
        quota: QuotaType,
    ) -> Result<Option<RateLimit>, TenancyError> {
        let now = self.now_secs();
        let slots = self.slots(&Arc::from(tenant), plan, quota, now);
        let keys: Vec<CounterKey> = slots.iter().map(|s| s.key.clone()).collect();
        let used = self.store.get(&keys).await?;
        Ok(tightest(plan, quota, &slots, &used))
    }

    /// `GET /v1/usage`: every window of every quota type, limited or counted.
    pub async fn usage(
        &self,
        tenant: &str,
        plan: &PlanSpec,
    ) -> Result<Vec<UsageLine>, TenancyError> {
        let now = self.now_secs();
        let tenant: Arc<str> = Arc::from(tenant);
        let mut slots = Vec::new();
        for quota in QuotaType::ALL {
            slots.extend(self.slots(&tenant, plan, quota, now));
        }
        let keys: Vec<CounterKey> = slots.iter().map(|s| s.key.clone()).collect();
        let used = self.store.get(&keys).await?;
        Ok(slots
            .iter()
            .zip(used)
            .map(|(slot, used)| {
                let k = &slot.key;
                let configured = plan.limits(k.quota).and_then(|l| l.get(&k.window)).copied();
                let included = configured.filter(|_| slot.limit.is_none());
                UsageLine {
                    quota: k.quota,
                    window: k.window,
                    used,
                    limit: slot.limit,
                    remaining: slot.limit.map(|l| l.saturating_sub(used)),
                    included,
                    reset: k.window.end(k.start).map(rfc3339),
                }
            })
            .collect())
    }

    /// A tenant's use of `quota` in the month starting at `month_start` (Unix seconds).
    pub async fn month_used(
        &self,
        tenant: &str,
        quota: QuotaType,
        month_start: i64,
    ) -> Result<u64, TenancyError> {
        let key = CounterKey {
            tenant: Arc::from(tenant),
            quota,
            window: Window::Month,
            start: month_start,
        };
        Ok(self
            .store
            .get(std::slice::from_ref(&key))
            .await?
            .first()
            .copied()
            .unwrap_or(0))
    }

    /// A tenant's use of `quota` today (UTC).
    pub async fn today_used(&self, tenant: &str, quota: QuotaType) -> Result<u64, TenancyError> {
        let key = CounterKey {
            tenant: Arc::from(tenant),
            quota,
            window: Window::Day,
            start: Window::Day.start(self.now_secs()),
        };
        Ok(self
            .store
            .get(std::slice::from_ref(&key))
            .await?
            .first()
            .copied()
            .unwrap_or(0))
    }

    /// The resources of `quota` the tenant holds (its `total`).
    pub async fn held(&self, tenant: &str, quota: QuotaType) -> Result<u64, TenancyError> {
        let key = total_key(tenant, quota);
        Ok(self
            .store
            .get(std::slice::from_ref(&key))
            .await?
            .first()
            .copied()
            .unwrap_or(0))
    }
}

fn total_key(tenant: &str, quota: QuotaType) -> CounterKey {
    CounterKey {
        tenant: Arc::from(tenant),
        quota,
        window: Window::Total,
        start: 0,
    }
}

fn rate_of(quota: QuotaType, slot: &Slot, limit: u64, used: u64) -> RateLimit {
    RateLimit {
        quota,
        window: slot.key.window,
        limit,
        remaining: limit.saturating_sub(used),
        reset: slot.key.window.end(slot.key.start).unwrap_or(0),
    }
}

/// The hard window with the least remaining (ties: the one resetting first); without hard
/// windows, a metered type's included `month`; `None` when nothing is limited.
fn tightest(plan: &PlanSpec, quota: QuotaType, slots: &[Slot], used: &[u64]) -> Option<RateLimit> {
    let hard = slots
        .iter()
        .zip(used)
        .filter_map(|(s, &u)| s.limit.map(|l| rate_of(quota, s, l, u)))
        .min_by_key(|r| (r.remaining, if r.reset == 0 { i64::MAX } else { r.reset }));
    hard.or_else(|| {
        slots.iter().zip(used).find_map(|(s, &u)| {
            let included = plan.limits(quota)?.get(&s.key.window).copied()?;
            Some(rate_of(quota, s, included, u))
        })
    })
}

fn refusal(
    plan: &PlanSpec,
    quota: QuotaType,
    slots: &[Slot],
    used: &[u64],
    weight: u64,
    now: i64,
) -> Refusal {
    // The windows that refused; the request can pass only once all of them have reset, so the
    // one resetting last is named (`total` never resets: it wins).
    let refusing = slots
        .iter()
        .zip(used)
        .filter_map(|(s, &u)| {
            let limit = s.limit?;
            (u.saturating_add(weight) > limit).then_some((s, limit, u))
        })
        .max_by_key(|(s, _, _)| s.key.window.end(s.key.start).unwrap_or(i64::MAX));
    let rate = tightest(plan, quota, slots, used);
    match refusing {
        Some((slot, limit, used)) => {
            let reset = slot.key.window.end(slot.key.start);
            Refusal {
                quota,
                window: slot.key.window,
                limit,
                used,
                reset,
                retry_after: reset.map(|r| u64::try_from(r - now).unwrap_or(0).max(1)),
                rate: rate.unwrap_or_else(|| rate_of(quota, slot, limit, used)),
            }
        }
        // A store refused although no limit is exceeded by its own numbers (it raced with a
        // concurrent charge between its check and its answer): report the tightest window.
        None => {
            let r = rate.unwrap_or(RateLimit {
                quota,
                window: Window::Total,
                limit: 0,
                remaining: 0,
                reset: 0,
            });
            Refusal {
                quota,
                window: r.window,
                limit: r.limit,
                used: r.limit.saturating_sub(r.remaining),
                reset: (r.reset != 0).then_some(r.reset),
                retry_after: (r.reset != 0)
                    .then(|| u64::try_from(r.reset - now).unwrap_or(0).max(1)),
                rate: r,
            }
        }
    }
}

#[cfg(test)]
mod tests;
