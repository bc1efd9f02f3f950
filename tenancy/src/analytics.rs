//! The documents a tenant reads about itself: `/v1/usage`, `/v1/analytics/overview`,
//! `/v1/analytics/instances/{instance}` and `/v1/billing`.
//!
//! Quota usage and bills come from the quota counters (exact); message counts and series from
//! the message log, request counts from the usage log (both batched, see [`crate::usage`]).
//! What only the gateway knows (how many instances exist and are connected) is passed in.

use std::collections::HashMap;

use serde::Serialize;

use crate::billing::Bill;
use crate::error::TenancyError;
use crate::pacing::SendQueue;
use crate::plan::{Plan, QuotaType};
use crate::quota::{Quotas, UsageLine};
use crate::sql::{SqlPool, with_pool};
use crate::time::{Month, rfc3339};
use crate::usage::MessageEvent;

/// `?period=` of the instance analytics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// `24h`, `7d` or `30d`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "24h" => Some(Period::Day),
            "7d" => Some(Period::Week),
            "30d" => Some(Period::Month),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "24h",
            Period::Week => "7d",
            Period::Month => "30d",
        }
    }

    pub fn hours(self) -> i64 {
        match self {
            Period::Day => 24,
            Period::Week => 7 * 24,
            Period::Month => 30 * 24,
        }
    }
}

/// Counts per message event.
pub type EventCounts = std::collections::BTreeMap<MessageEvent, u64>;

fn empty_counts() -> EventCounts {
    MessageEvent::ALL.into_iter().map(|e| (e, 0)).collect()
}

/// What the gateway knows about a tenant's instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InstanceCounts {
    pub total: u64,
    pub connected: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageCounts {
    pub today: EventCounts,
    pub month: EventCounts,
}

/// `GET /v1/analytics/overview`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overview {
    pub tenant_id: String,
    pub instances: InstanceCounts,
    pub messages: MessageCounts,
    /// Bots held (the `bot_create` total).
    pub active_bots: u64,
    /// Sends accepted as PENDING and not yet sent, over all the tenant's instances.
    pub queued_sends: u64,
    pub quotas: Vec<UsageLine>,
    pub bill: Bill,
}

/// One hour of an instance's series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourPoint {
    pub hour: String,
    pub messages: EventCounts,
    pub requests: u64,
}

/// Requests by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub total: u64,
    pub ok: u64,
    pub client_error: u64,
    pub rate_limited: u64,
    pub server_error: u64,
}

/// `GET /v1/analytics/instances/{instance}?period=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceReport {
    pub instance: String,
    pub period: &'static str,
    pub from: String,
    pub to: String,
    pub messages: EventCounts,
    pub requests: RequestCounts,
    pub queued_sends: u64,
    pub series: Vec<HourPoint>,
}

/// Whose series [`Analytics::hourly`] counts.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Instance,
    Tenant,
}

#[derive(Debug)]
struct Hourly {
    from: i64,
    series: Vec<HourPoint>,
    totals: EventCounts,
    requests: RequestCounts,
}

/// Builds the documents. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Analytics {
    pool: SqlPool,
    quotas: Quotas,
    queue: SendQueue,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Analytics {
    pub fn new(pool: SqlPool, quotas: Quotas) -> Self {
        let queue = SendQueue::new(pool.clone());
        Self {
            pool,
            quotas,
            queue,
        }
    }

    fn now_ms(&self) -> i64 {
        self.quotas.clock().now_ms()
    }

    /// `GET /v1/usage`.
    pub async fn usage(
        &self,
        tenant_id: &str,
        plan: &Plan,
    ) -> Result<Vec<UsageLine>, TenancyError> {
        self.quotas.usage(tenant_id, &plan.spec).await
    }

    /// `GET /v1/billing?month=`.
    pub async fn bill(
        &self,
        tenant_id: &str,
        plan: &Plan,
        month: Month,
    ) -> Result<Bill, TenancyError> {
        let mut used = HashMap::new();
        for quota in QuotaType::ALL {
            used.insert(
                quota,
                self.quotas
                    .month_used(tenant_id, quota, month.start())
                    .await?,
            );
        }
        Ok(Bill::compute(tenant_id, plan, month, |q| {
            used.get(&q).copied().unwrap_or(0)
        }))
    }

    async fn tenant_events_since(
        &self,
        tenant_id: &str,
        since_ms: i64,
    ) -> Result<EventCounts, TenancyError> {
        let rows: Vec<(String, i64)> = with_pool!(&self.pool, |c| {
            sqlx::query_as(
                "SELECT event, COUNT(*) FROM message_log WHERE tenant_id = $1 AND at >= $2 \
                 GROUP BY event",
            )
            .bind(tenant_id)
            .bind(since_ms)
            .fetch_all(c)
            .await?
        });
        let mut counts = empty_counts();
        for (event, n) in rows {
            if let Some(e) = MessageEvent::parse(&event) {
                counts.insert(e, to_u64(n));
            }
        }
        Ok(counts)
    }

    /// `GET /v1/analytics/overview` for a tenant owning `instances` (names).
    pub async fn overview(
        &self,
        tenant_id: &str,
        plan: &Plan,
        counts: InstanceCounts,
        instances: &[String],
    ) -> Result<Overview, TenancyError> {
        let now = self.now_ms();
        let secs = now.div_euclid(1000);
        let day_start = (secs - secs.rem_euclid(86_400)) * 1000;
        let month = Month::containing(secs);
        let mut queued = 0;
        for name in instances {
            queued += self.queue.depth(name).await?;
        }
        Ok(Overview {
            tenant_id: tenant_id.to_owned(),
            instances: counts,
            messages: MessageCounts {
                today: self.tenant_events_since(tenant_id, day_start).await?,
                month: self
                    .tenant_events_since(tenant_id, month.start() * 1000)
                    .await?,
            },
            active_bots: self.quotas.held(tenant_id, QuotaType::BotCreate).await?,
            queued_sends: queued,
            quotas: self.usage(tenant_id, plan).await?,
            bill: self.bill(tenant_id, plan, month).await?,
        })
    }

    /// `GET /v1/analytics/instances/{instance}?period=`: totals over the period and one point
    /// per hour (oldest first, the current hour last, hours without activity included).
    pub async fn instance(
        &self,
        instance: &str,
        period: Period,
    ) -> Result<InstanceReport, TenancyError> {
        let now = self.now_ms();
        let hourly = self.hourly(Scope::Instance, instance, period).await?;
        let (from, series, totals, req) =
            (hourly.from, hourly.series, hourly.totals, hourly.requests);
        Ok(InstanceReport {
            instance: instance.to_owned(),
            period: period.as_str(),
            from: rfc3339(from / 1000),
            to: rfc3339(now / 1000),
            messages: totals,
            requests: req,
            queued_sends: self.queue.depth(instance).await?,
            series,
        })
    }

    /// A tenant's hourly series over `period` (every instance of the tenant, and its requests
    /// without an instance): what the dashboard's overview charts.
    pub async fn tenant_series(
        &self,
        tenant_id: &str,
        period: Period,
    ) -> Result<Vec<HourPoint>, TenancyError> {
        Ok(self.hourly(Scope::Tenant, tenant_id, period).await?.series)
    }

    /// Hourly message events and requests of one instance or one tenant over `period`.
    async fn hourly(
        &self,
        scope: Scope,
        value: &str,
        period: Period,
    ) -> Result<Hourly, TenancyError> {
        let column = match scope {
            Scope::Instance => "instance",
            Scope::Tenant => "tenant_id",
        };
        let now = self.now_ms();
        let hour_ms = 3_600_000;
        let current = now - now.rem_euclid(hour_ms);
        let from = current - (period.hours() - 1) * hour_ms;
        let messages: Vec<(i64, String, i64)> = with_pool!(&self.pool, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT at / 3600000, event, COUNT(*) FROM message_log \
                     WHERE {column} = $1 AND at >= $2 GROUP BY at / 3600000, event"
            )))
            .bind(value)
            .bind(from)
            .fetch_all(c)
            .await?
        });
        let requests: Vec<(i64, i64, i64)> = with_pool!(&self.pool, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT at / 3600000, status, COUNT(*) FROM usage_log \
                     WHERE {column} = $1 AND at >= $2 GROUP BY at / 3600000, status"
            )))
            .bind(value)
            .bind(from)
            .fetch_all(c)
            .await?
        });
        let hours = usize::try_from(period.hours()).unwrap_or(0);
        let mut series: Vec<HourPoint> = (0..hours)
            .map(|i| HourPoint {
                hour: rfc3339((from + i64::try_from(i).unwrap_or(0) * hour_ms) / 1000),
                messages: empty_counts(),
                requests: 0,
            })
            .collect();
        let index = |bucket: i64| -> Option<usize> {
            usize::try_from(bucket - from / hour_ms)
                .ok()
                .filter(|&i| i < hours)
        };
        let mut totals = empty_counts();
        for (bucket, event, n) in messages {
            let Some(event) = MessageEvent::parse(&event) else {
                continue;
            };
            let n = to_u64(n);
            *totals.entry(event).or_insert(0) += n;
            if let Some(point) = index(bucket).and_then(|i| series.get_mut(i)) {
                *point.messages.entry(event).or_insert(0) += n;
            }
        }
        let mut req = RequestCounts::default();
        for (bucket, status, n) in requests {
            let n = to_u64(n);
            req.total += n;
            match status {
                200..=399 => req.ok += n,
                429 => req.rate_limited += n,
                400..=499 => req.client_error += n,
                _ => req.server_error += n,
            }
            if let Some(point) = index(bucket).and_then(|i| series.get_mut(i)) {
                point.requests += n;
            }
        }
        Ok(Hourly {
            from,
            series,
            totals,
            requests: req,
        })
    }
}
