//! The cost of one quota decision (`Quotas::charge`: plan windows, check and add), per backend:
//! in-process without persistence, in-process with its write-ahead journal (the default), and
//! Redis (one EVALSHA round trip to the local server; skipped when nothing answers at
//! `ZAPIN_TEST_REDIS_URL` / redis://127.0.0.1:6379).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench aborts on a broken fixture

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use zapin_tenancy::plan::{Plan, QuotaType};
use zapin_tenancy::quota::{Decision, MemoryCounters, MemoryOptions, Quotas, RedisCounters};
use zapin_tenancy::routes::Cost;
use zapin_tenancy::sql::SqlPool;
use zapin_tenancy::{Clock, SystemClock};

const SEND: Cost = Cost {
    quota: QuotaType::MessageSend,
    weight: 1,
};

fn plan() -> zapin_tenancy::plan::PlanSpec {
    // Limits high enough never to refuse during a run: every iteration is a full accept.
    Plan::from_json(
        br#"{"name":"b","quotas":{"message_send":{"minute":1000000000,"day":1000000000000}}}"#,
    )
    .unwrap()
    .spec
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let spec = plan();
    let mut group = c.benchmark_group("quota_charge");

    let volatile = Quotas::new(
        Arc::new(MemoryCounters::volatile(clock.clone())),
        clock.clone(),
    );
    group.bench_function("in_process_volatile", |b| {
        b.iter(|| {
            let d = rt
                .block_on(volatile.charge(black_box("tenant-1"), &spec, SEND))
                .unwrap();
            assert!(matches!(d, Decision::Accepted { .. }));
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let journaled = rt.block_on(async {
        let pool = SqlPool::open_sqlite_file(&dir.path().join("zapin.sqlite3"))
            .await
            .unwrap();
        let store = MemoryCounters::open(
            MemoryOptions {
                journal_dir: dir.path().join("journal"),
                pool,
                flush_every: Duration::from_secs(1),
            },
            clock.clone(),
        )
        .await
        .unwrap();
        store.spawn_flusher();
        Quotas::new(Arc::new(store), clock.clone())
    });
    group.bench_function("in_process_journaled", |b| {
        b.iter(|| {
            let d = rt
                .block_on(journaled.charge(black_box("tenant-1"), &spec, SEND))
                .unwrap();
            assert!(matches!(d, Decision::Accepted { .. }));
        })
    });

    let url = std::env::var("ZAPIN_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    match rt.block_on(RedisCounters::connect(&url, "zapin_bench")) {
        Ok(store) => {
            let redis = Quotas::new(Arc::new(store.clone()), clock.clone());
            group.bench_function("redis", |b| {
                b.iter(|| {
                    let d = rt
                        .block_on(redis.charge(black_box("tenant-1"), &spec, SEND))
                        .unwrap();
                    assert!(matches!(d, Decision::Accepted { .. }));
                })
            });
            rt.block_on(store.clear()).unwrap();
        }
        Err(err) => eprintln!("skipping the Redis bench: {err}"),
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
