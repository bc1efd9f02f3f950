//! Prometheus metrics: what the process counts, and the text `GET /metrics` serves.
//!
//! One registry per process (a static): the counters are fed by the HTTP layer, the event
//! bridge, the send route and the webhook dispatcher, which are built independently of each
//! other. Gauges that mirror state (sessions by state, outbox depth) are refreshed when scraped.
//! No label names an instance: the number of series stays bounded however many sessions run.
//!
//! Who may scrape is decided in `crate::http::metrics`; this module only counts and encodes.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// Session states reported by `zapin_sessions` (every state appears, zero included).
const SESSION_STATES: [&str; 4] = ["open", "connecting", "close", "refused"];

/// Sends waiting for their server ack, kept for the ack-latency histogram. Bounded: past it
/// new sends are not timed (an ack that never comes must not grow memory without end).
const PENDING_ACKS_MAX: usize = 10_000;
/// A send unacknowledged for this long is dropped from the pending set when the set is full.
const PENDING_ACK_STALE: Duration = Duration::from_secs(300);

type Label = (&'static str, &'static str);
type OwnedLabel = (&'static str, String);

/// Every metric zapin exports. Build with [`metrics`].
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions: Family<[Label; 1], Gauge>,
    connects: Counter,
    disconnects: Family<[OwnedLabel; 1], Counter>,
    messages: Family<[Label; 1], Counter>,
    ack_latency: Histogram,
    pending_acks: Mutex<HashMap<(String, String), Instant>>,
    outbox_depth: Gauge,
    dead_letter_depth: Gauge,
    deliveries: Family<[Label; 1], Counter>,
    dead_letters: Family<[Label; 1], Counter>,
    http_requests: Family<[OwnedLabel; 3], Counter>,
    http_duration: Family<[OwnedLabel; 2], Histogram, fn() -> Histogram>,
}

fn http_histogram() -> Histogram {
    // 1 ms .. ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    fn new() -> Self {
        let m = Self {
            registry: Registry::default(),
            sessions: Family::default(),
            connects: Counter::default(),
            disconnects: Family::default(),
            messages: Family::default(),
            // 5 ms .. ~20 s
            ack_latency: Histogram::new(exponential_buckets(0.005, 2.0, 13)),
            pending_acks: Mutex::new(HashMap::new()),
            outbox_depth: Gauge::default(),
            dead_letter_depth: Gauge::default(),
            deliveries: Family::default(),
            dead_letters: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_histogram),
        };
        m.registered()
    }

    /// Registers every metric (the families share their storage with the registry's copies).
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "zapin_sessions",
            "Sessions registered in the engine, by connection state",
            self.sessions.clone(),
        );
        r.register(
            "zapin_connects",
            "Connections that reached open",
            self.connects.clone(),
        );
        r.register(
            "zapin_disconnects",
            "Connection closes, by status code (401 logged out, 408 lost, 428 closed, 440 replaced, 500 bad session, 515 restart required)",
            self.disconnects.clone(),
        );
        r.register(
            "zapin_messages",
            "Messages received from other accounts (in) and sent through the API (out)",
            self.messages.clone(),
        );
        r.register(
            "zapin_send_ack_seconds",
            "Time from a sendText reaching the engine to its first ack",
            self.ack_latency.clone(),
        );
        r.register(
            "zapin_webhook_outbox_depth",
            "Webhook deliveries waiting in the outbox",
            self.outbox_depth.clone(),
        );
        r.register(
            "zapin_webhook_dead_letter_depth",
            "Webhook deliveries in the dead-letter table",
            self.dead_letter_depth.clone(),
        );
        r.register(
            "zapin_webhook_delivery_attempts",
            "Webhook delivery attempts, by outcome (delivered, retry, dead)",
            self.deliveries.clone(),
        );
        r.register(
            "zapin_webhook_dead_letters",
            "Webhook deliveries moved to dead_letter, by reason",
            self.dead_letters.clone(),
        );
        r.register(
            "zapin_http_requests",
            "HTTP requests, by method, route template and status",
            self.http_requests.clone(),
        );
        r.register(
            "zapin_http_request_duration_seconds",
            "HTTP request latency, by method and route template",
            self.http_duration.clone(),
        );
        r.register_collector(Box::new(ProcessCollector));
        // Every state is reported, zero included, before the first scrape sets them.
        for state in SESSION_STATES {
            self.sessions.get_or_create(&[("state", state)]).set(0);
        }
        self
    }

    /// One HTTP request: `route` is the matched route template (never the raw path).
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .get_or_create(&[
                ("method", method.to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
        self.http_duration
            .get_or_create(&[("method", method.to_owned()), ("route", route.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    /// A connection reached `open`.
    pub fn connected(&self) {
        self.connects.inc();
    }

    /// A connection closed with `status` (the WhatsApp/Baileys disconnect code).
    pub fn disconnected(&self, status: u16) {
        self.disconnects
            .get_or_create(&[("reason", status.to_string())])
            .inc();
    }

    /// A message received from WhatsApp.
    pub fn message_in(&self) {
        self.messages.get_or_create(&[("direction", "in")]).inc();
    }

    /// A message handed to the engine by the send route; its server ack is timed from now.
    pub fn message_out(&self, instance_id: &str, message_id: &str, started: Instant) {
        self.messages.get_or_create(&[("direction", "out")]).inc();
        let Ok(mut pending) = self.pending_acks.lock() else {
            return;
        };
        if pending.len() >= PENDING_ACKS_MAX {
            pending.retain(|_, at| at.elapsed() < PENDING_ACK_STALE);
            if pending.len() >= PENDING_ACKS_MAX {
                return;
            }
        }
        pending.insert((instance_id.to_owned(), message_id.to_owned()), started);
    }

    /// The server acked an own message: observe its latency if the send was timed. Acks that
    /// overtake [`Metrics::message_out`] (it runs after the engine returns) are not timed.
    pub fn server_ack(&self, instance_id: &str, message_id: &str) {
        let started = match self.pending_acks.lock() {
            Ok(mut pending) => pending.remove(&(instance_id.to_owned(), message_id.to_owned())),
            Err(_) => None,
        };
        if let Some(started) = started {
            self.ack_latency.observe(started.elapsed().as_secs_f64());
        }
    }

    /// One webhook delivery attempt: `delivered`, `retry` or `dead`.
    pub fn delivery_attempt(&self, outcome: &'static str) {
        self.deliveries.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// A delivery moved to dead_letter: `non_retryable_status` or `retries_exhausted`.
    pub fn dead_letter(&self, reason: &'static str) {
        self.dead_letters.get_or_create(&[("reason", reason)]).inc();
    }

    /// Sets the session gauges from the states of the registered sessions.
    pub fn set_sessions(&self, states: impl IntoIterator<Item = &'static str>) {
        let mut counts: HashMap<&'static str, i64> =
            SESSION_STATES.iter().map(|s| (*s, 0)).collect();
        for state in states {
            *counts.entry(state).or_default() += 1;
        }
        for (state, n) in counts {
            self.sessions.get_or_create(&[("state", state)]).set(n);
        }
    }

    /// Sets the outbox and dead-letter depths.
    pub fn set_webhook_depths(&self, outbox: i64, dead_letter: i64) {
        self.outbox_depth.set(outbox);
        self.dead_letter_depth.set(dead_letter);
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(err) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!("encoding metrics: {err}");
        }
        out
    }
}

/// `process_resident_memory_bytes` and `process_cpu_seconds_total`, read from `/proc/self` at
/// scrape time (Linux; elsewhere they are absent).
#[derive(Debug)]
struct ProcessCollector;

/// Clock ticks per second of `/proc/self/stat` times: `sysconf(_SC_CLK_TCK)` is 100 on every
/// Linux architecture zapin builds for, and reading it would take `libc` for one constant.
const CLK_TCK: f64 = 100.0;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(rss) = resident_bytes() {
            let gauge = ConstGauge::new(rss);
            let metric = encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        if let Some(cpu) = cpu_seconds() {
            let counter = ConstCounter::new(cpu);
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: i64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// `utime + stime` of `/proc/self/stat`, in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / CLK_TCK)
}

/// Fields 14 and 15 (utime, stime) of a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state): utime is the 12th field of it.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_after_a_command_with_spaces() {
        let stat = "42 (zap (in) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 1000 \
                    123456 789 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert_eq!(parse_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn own_process_is_readable() {
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().is_some_and(|b| b > 0));
            assert!(cpu_seconds().is_some());
        }
    }
}
