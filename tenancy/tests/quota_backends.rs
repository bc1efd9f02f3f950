//! Every counter backend against real storage: exact charging under concurrency, refunds,
//! releases, and (in-process) persistence across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{databases, redis_url, unique};
use zapin_tenancy::ManualClock;
use zapin_tenancy::plan::{Plan, PlanSpec, QuotaType};
use zapin_tenancy::quota::{
    CounterStore, Decision, MemoryCounters, MemoryOptions, Quotas, RedisCounters, SqlCounters,
};
use zapin_tenancy::routes::Cost;
use zapin_tenancy::time::days_from_civil;

const SEND: Cost = Cost {
    quota: QuotaType::MessageSend,
    weight: 1,
};

fn plan(day: u64) -> PlanSpec {
    Plan::from_json(
        format!(
            r#"{{"name":"p","quotas":{{"message_send":{{"day":{day}}},"instance_create":{{"total":2}}}}}}"#
        )
        .as_bytes(),
    )
    .unwrap()
    .spec
}

/// 2026-12-06T15:30:00Z
fn t0() -> i64 {
    (days_from_civil(2026, 12, 6) * 86_400 + 15 * 3600 + 30 * 60) * 1000
}

/// 200 concurrent charges with 100 left: exactly 100 accepted, and the counter says 100.
async fn exact_charging(label: &str, quotas: &[Quotas]) {
    let spec = plan(150);
    let tenant = unique("tenant");
    // Use 50 first, so 100 are left.
    for _ in 0..50 {
        assert!(matches!(
            quotas[0].charge(&tenant, &spec, SEND).await.unwrap(),
            Decision::Accepted { .. }
        ));
    }
    let mut tasks = Vec::new();
    for i in 0..200 {
        let q = quotas[i % quotas.len()].clone();
        let spec = spec.clone();
        let tenant = tenant.clone();
        tasks.push(tokio::spawn(async move {
            match q.charge(&tenant, &spec, SEND).await.unwrap() {
                Decision::Accepted { .. } => 1usize,
                Decision::Refused(r) => {
                    assert_eq!(r.limit, 150);
                    0
                }
            }
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.unwrap();
    }
    assert_eq!(accepted, 100, "{label}: accepted");
    for q in quotas {
        assert_eq!(
            q.today_used(&tenant, QuotaType::MessageSend).await.unwrap(),
            150,
            "{label}: counted"
        );
    }
}

/// Refunds, releases and reconciling on one backend.
async fn adjustments(label: &str, q: &Quotas) {
    let spec = plan(3);
    let tenant = unique("tenant");
    let mut receipts = Vec::new();
    for _ in 0..3 {
        match q.charge(&tenant, &spec, SEND).await.unwrap() {
            Decision::Accepted { receipt, .. } => receipts.push(receipt),
            Decision::Refused(r) => panic!("{label}: {}", r.message()),
        }
    }
    let Decision::Refused(r) = q.charge(&tenant, &spec, SEND).await.unwrap() else {
        panic!("{label}: the 4th send passed");
    };
    assert_eq!(r.used, 3, "{label}");
    q.refund(&receipts[0]).await.unwrap();
    assert_eq!(
        q.today_used(&tenant, QuotaType::MessageSend).await.unwrap(),
        2
    );
    assert!(matches!(
        q.charge(&tenant, &spec, SEND).await.unwrap(),
        Decision::Accepted { .. }
    ));
    let create = Cost {
        quota: QuotaType::InstanceCreate,
        weight: 1,
    };
    for _ in 0..2 {
        assert!(matches!(
            q.charge(&tenant, &spec, create).await.unwrap(),
            Decision::Accepted { .. }
        ));
    }
    assert!(matches!(
        q.charge(&tenant, &spec, create).await.unwrap(),
        Decision::Refused(_)
    ));
    q.release(&tenant, QuotaType::InstanceCreate, 1)
        .await
        .unwrap();
    assert_eq!(
        q.held(&tenant, QuotaType::InstanceCreate).await.unwrap(),
        1,
        "{label}"
    );
    q.release(&tenant, QuotaType::InstanceCreate, 9)
        .await
        .unwrap();
    assert_eq!(
        q.held(&tenant, QuotaType::InstanceCreate).await.unwrap(),
        0,
        "{label}"
    );
    q.reconcile_total(&tenant, QuotaType::InstanceCreate, 2)
        .await
        .unwrap();
    assert!(matches!(
        q.charge(&tenant, &spec, create).await.unwrap(),
        Decision::Refused(_)
    ));
}

fn quotas(store: impl CounterStore + 'static, clock: &ManualClock) -> Quotas {
    Quotas::new(Arc::new(store), Arc::new(clock.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_counters_are_exact() {
    for db in databases().await {
        let clock = ManualClock::new(t0());
        let q = quotas(SqlCounters::new(db.pool.clone()), &clock);
        exact_charging(db.name(), std::slice::from_ref(&q)).await;
        adjustments(db.name(), &q).await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_counters_are_exact_and_persisted() {
    for db in databases().await {
        let clock = ManualClock::new(t0());
        let options = MemoryOptions {
            journal_dir: db.dir.path().join("journal"),
            pool: db.pool.clone(),
            flush_every: Duration::from_secs(1),
        };
        let store = MemoryCounters::open(options, Arc::new(clock.clone()))
            .await
            .unwrap();
        let q = quotas(store.clone(), &clock);
        exact_charging(db.name(), std::slice::from_ref(&q)).await;
        adjustments(db.name(), &q).await;
        store.flush().await.unwrap();
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_counters_are_exact_across_two_nodes() {
    let Some(url) = redis_url() else { return };
    let prefix = unique("zapin_test");
    let clock = ManualClock::new(t0());
    // Two nodes: two independent connections sharing one Redis.
    let a = RedisCounters::connect(&url, &prefix).await.unwrap();
    let b = RedisCounters::connect(&url, &prefix).await.unwrap();
    let nodes = [quotas(a.clone(), &clock), quotas(b, &clock)];
    exact_charging("redis", &nodes).await;
    adjustments("redis", &nodes[0]).await;
    a.clear().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_counters_expire_after_their_window() {
    let Some(url) = redis_url() else { return };
    let prefix = unique("zapin_test");
    // Now: the real clock, so that EXPIREAT lands in the future for the day window.
    let clock = ManualClock::new(zapin_tenancy::sql::now_ms());
    let store = RedisCounters::connect(&url, &prefix).await.unwrap();
    let q = quotas(store.clone(), &clock);
    let tenant = unique("tenant");
    let spec = Plan::from_json(br#"{"name":"p","quotas":{"api_call":{"minute":5}}}"#)
        .unwrap()
        .spec;
    let api = Cost {
        quota: QuotaType::ApiCall,
        weight: 1,
    };
    assert!(matches!(
        q.charge(&tenant, &spec, api).await.unwrap(),
        Decision::Accepted { .. }
    ));
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:quota:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 3, "minute, day and month: {keys:?}");
    for key in keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
        if key.contains(":minute:") {
            assert!(ttl <= 60 + 3600, "{key}: {ttl}");
        }
    }
    store.clear().await.unwrap();
}

/// Charges, then a "crash" (the store is dropped without a flush), then a restart: the replayed
/// journal restores every charge; a clean restart after that does not count anything twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_counters_survive_restarts_without_double_counting() {
    for db in databases().await {
        let label = db.name();
        let clock = ManualClock::new(t0());
        let journal = db.dir.path().join("journal");
        let options = |pool| MemoryOptions {
            journal_dir: journal.clone(),
            pool,
            flush_every: Duration::from_secs(3600),
        };
        let spec = plan(1000);
        let tenant = unique("tenant");

        let store = MemoryCounters::open(options(db.pool.clone()), Arc::new(clock.clone()))
            .await
            .unwrap();
        let q = quotas(store.clone(), &clock);
        for _ in 0..30 {
            q.charge(&tenant, &spec, SEND).await.unwrap();
        }
        store.flush().await.unwrap();
        for _ in 0..12 {
            q.charge(&tenant, &spec, SEND).await.unwrap();
        }
        drop(q);
        drop(store); // 12 charges only in the journal

        for round in 0..2 {
            let store = MemoryCounters::open(options(db.reopen().await), Arc::new(clock.clone()))
                .await
                .unwrap();
            let q = quotas(store.clone(), &clock);
            assert_eq!(
                q.today_used(&tenant, QuotaType::MessageSend).await.unwrap(),
                42,
                "{label} round {round}"
            );
            let month = zapin_tenancy::time::month_start(t0() / 1000);
            assert_eq!(
                q.month_used(&tenant, QuotaType::MessageSend, month)
                    .await
                    .unwrap(),
                42,
                "{label} round {round}"
            );
        }

        // A crash between the SQL commit and the journal's deletion: the old journal is still
        // there; its lines are at or below the flushed sequence and must not count again.
        let store = MemoryCounters::open(options(db.reopen().await), Arc::new(clock.clone()))
            .await
            .unwrap();
        let q = quotas(store.clone(), &clock);
        for _ in 0..8 {
            q.charge(&tenant, &spec, SEND).await.unwrap();
        }
        let live: Vec<_> = std::fs::read_dir(&journal)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(&tenant)))
            .collect();
        assert_eq!(
            live.len(),
            1,
            "{label}: one shard's journal holds the tenant"
        );
        let live_text = std::fs::read_to_string(&live[0]).unwrap();
        assert_eq!(live_text.lines().count(), 8, "{label}");
        store.flush().await.unwrap();
        drop(q);
        drop(store);
        // Put back the pre-flush lines as `.old`, plus a torn line at the end of a fresh `.log`.
        let old = live[0].with_extension("old");
        std::fs::write(&old, live_text).unwrap();
        std::fs::write(&live[0], format!("999999 {tenant} message_send day:1:")).unwrap();
        let store = MemoryCounters::open(options(db.reopen().await), Arc::new(clock.clone()))
            .await
            .unwrap();
        let q = quotas(store.clone(), &clock);
        assert_eq!(
            q.today_used(&tenant, QuotaType::MessageSend).await.unwrap(),
            50,
            "{label}: nothing counted twice, the torn line ignored"
        );
        drop(q);
        store.flush().await.unwrap();
        db.cleanup().await;
    }
}
