//! The usage log, the analytics and billing documents, and the send queue, on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::databases;
use zapin_tenancy::ManualClock;
use zapin_tenancy::analytics::{Analytics, InstanceCounts, Period};
use zapin_tenancy::apikey::KeyHasher;
use zapin_tenancy::directory::Directory;
use zapin_tenancy::pacing::SendQueue;
use zapin_tenancy::plan::{Plan, QuotaType};
use zapin_tenancy::quota::{Decision, MemoryCounters, Quotas};
use zapin_tenancy::routes::Cost;
use zapin_tenancy::sql::SqlPool;
use zapin_tenancy::time::Month;
use zapin_tenancy::usage::{MessageEvent, MessageRecord, UsageLog, UsageLogOptions, UsageRecord};
use zeroize::Zeroizing;

const T0: i64 = 1_796_571_000_000; // 2026-12-06T15:30:00Z

fn usage(at: i64, instance: &str, status: u16, key: Option<&str>) -> UsageRecord {
    UsageRecord {
        at,
        tenant_id: Some("t1".into()),
        instance: Some(instance.into()),
        method: "POST".into(),
        route: "/message/sendText/{instance}".into(),
        quota: Some(QuotaType::MessageSend),
        weight: 1,
        status,
        latency_us: 1500,
        key_id: key.map(str::to_owned),
    }
}

fn message(at: i64, instance: &str, id: &str, event: MessageEvent) -> MessageRecord {
    MessageRecord {
        at,
        tenant_id: Some("t1".into()),
        instance: instance.into(),
        message_id: id.into(),
        event,
    }
}

async fn count(pool: &SqlPool, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match pool {
        SqlPool::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(p)
            .await
            .unwrap(),
        SqlPool::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(p)
            .await
            .unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_written_in_batches_and_keys_are_touched() {
    for db in databases().await {
        let dir = Directory::new(db.pool.clone(), KeyHasher::new(Zeroizing::new([1; 32])));
        dir.create_plan(&Plan::from_json(br#"{"name":"p"}"#).unwrap())
            .await
            .unwrap();
        let tenant = dir.create_tenant("acme", "p").await.unwrap();
        let (log, writer) = UsageLog::start(
            db.pool.clone(),
            Some(dir.clone()),
            UsageLogOptions {
                capacity: 10_000,
                batch: 100,
                linger: Duration::from_millis(50),
            },
        );
        for i in 0..1234 {
            log.record(usage(T0 + i, "inst", 201, Some(&tenant.key_info.id)));
        }
        for i in 0..50 {
            log.message(message(
                T0 + i,
                "inst",
                &format!("m{i}"),
                MessageEvent::Sent,
            ));
        }
        log.flush().await;
        assert_eq!(count(&db.pool, "usage_log").await, 1234, "{}", db.name());
        assert_eq!(count(&db.pool, "message_log").await, 50);
        assert_eq!(log.dropped(), 0);
        let key = dir.keys(&tenant.tenant.id).await.unwrap().remove(0);
        assert_eq!(key.last_used_at, Some(T0 + 1233));
        // Shutdown writes what is still queued.
        for i in 0..10 {
            log.record(usage(T0 + i, "inst", 200, None));
        }
        writer.shutdown().await;
        assert_eq!(count(&db.pool, "usage_log").await, 1244);
        db.cleanup().await;
    }
}

/// With the database stuck, recording never waits: what does not fit is dropped and counted,
/// and everything is accounted for once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_drops_instead_of_blocking() {
    let db = common::TestDb::sqlite().await;
    let SqlPool::Sqlite(pool) = &db.pool else {
        unreachable!()
    };
    // Another connection holds SQLite's write lock: the writer's insert waits (busy timeout).
    let mut blocker = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query(
        "INSERT INTO plans (name, document, created_at, updated_at) VALUES ('x', '{}', 0, 0)",
    )
    .execute(&mut *blocker)
    .await
    .unwrap();
    let (log, writer) = UsageLog::start(
        db.pool.clone(),
        None,
        UsageLogOptions {
            capacity: 8,
            batch: 4,
            linger: Duration::ZERO,
        },
    );
    let started = Instant::now();
    for i in 0..500 {
        log.record(usage(T0 + i, "inst", 200, None));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "recording waited"
    );
    assert!(log.dropped() >= 500 - 8 - 4, "dropped {}", log.dropped());
    blocker.rollback().await.unwrap();
    log.flush().await;
    let written = count(&db.pool, "usage_log").await;
    assert_eq!(u64::try_from(written).unwrap() + log.dropped(), 500);
    writer.shutdown().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_and_billing_documents() {
    for db in databases().await {
        let label = db.name();
        let clock = ManualClock::new(T0);
        let quotas = Quotas::new(
            Arc::new(MemoryCounters::volatile(Arc::new(clock.clone()))),
            Arc::new(clock.clone()),
        );
        let plan = Plan::from_json(
            br#"{"name":"starter","quotas":{"message_send":{"day":100},"bot_create":{"total":3}},"price_cents":1900,"overage_cents":{"message_send":2}}"#,
        )
        .unwrap();
        for _ in 0..7 {
            let d = quotas
                .charge(
                    "t1",
                    &plan.spec,
                    Cost {
                        quota: QuotaType::MessageSend,
                        weight: 2,
                    },
                )
                .await
                .unwrap();
            assert!(matches!(d, Decision::Accepted { .. }));
        }
        quotas
            .charge(
                "t1",
                &plan.spec,
                Cost {
                    quota: QuotaType::BotCreate,
                    weight: 1,
                },
            )
            .await
            .unwrap();
        let (log, writer) = UsageLog::start(db.pool.clone(), None, UsageLogOptions::default());
        let hour = 3_600_000;
        // Now is 15:30; events at 15:10, 14:10 (x2), yesterday 16:10 (inside 24h), 3 days ago.
        log.message(message(T0 - 20 * 60_000, "inst", "a", MessageEvent::Sent));
        log.message(message(
            T0 - 20 * 60_000,
            "inst",
            "a",
            MessageEvent::Delivered,
        ));
        log.message(message(
            T0 - hour - 20 * 60_000,
            "inst",
            "b",
            MessageEvent::Sent,
        ));
        log.message(message(
            T0 - hour - 20 * 60_000,
            "inst",
            "c",
            MessageEvent::Received,
        ));
        log.message(message(
            T0 - 23 * hour - 20 * 60_000,
            "inst",
            "d",
            MessageEvent::Read,
        ));
        log.message(message(T0 - 72 * hour, "inst", "e", MessageEvent::Failed));
        log.message(message(T0, "other", "f", MessageEvent::Sent));
        log.record(usage(T0 - 1000, "inst", 201, None));
        log.record(usage(T0 - 1000, "inst", 429, None));
        log.record(usage(T0 - hour, "inst", 400, None));
        log.record(usage(T0 - hour, "inst", 500, None));
        log.flush().await;
        let queue = SendQueue::new(db.pool.clone());
        queue.enqueue("inst", "chat1", "m1", "{}").await.unwrap();

        let analytics = Analytics::new(db.pool.clone(), quotas.clone());
        let report = analytics.instance("inst", Period::Day).await.unwrap();
        assert_eq!(report.period, "24h");
        assert_eq!(report.series.len(), 24);
        assert_eq!(report.from, "2026-12-05T16:00:00Z", "{label}");
        assert_eq!(report.to, "2026-12-06T15:30:00Z");
        let last = report.series.last().unwrap();
        assert_eq!(last.hour, "2026-12-06T15:00:00Z");
        assert_eq!(last.messages[&MessageEvent::Sent], 1);
        assert_eq!(last.messages[&MessageEvent::Delivered], 1);
        assert_eq!(last.requests, 2);
        let before = &report.series[22];
        assert_eq!(before.messages[&MessageEvent::Sent], 1);
        assert_eq!(before.messages[&MessageEvent::Received], 1);
        assert_eq!(report.series[0].messages[&MessageEvent::Read], 1);
        assert_eq!(report.messages[&MessageEvent::Sent], 2);
        assert_eq!(
            report.messages[&MessageEvent::Failed],
            0,
            "3 days ago is outside 24h"
        );
        assert_eq!(report.requests.total, 4);
        assert_eq!(
            (
                report.requests.ok,
                report.requests.rate_limited,
                report.requests.client_error,
                report.requests.server_error
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(report.queued_sends, 1);
        let week = analytics.instance("inst", Period::Week).await.unwrap();
        assert_eq!(week.series.len(), 168);
        assert_eq!(week.messages[&MessageEvent::Failed], 1);
        assert_eq!(Period::parse("30d").unwrap().hours(), 720);
        assert_eq!(Period::parse("1y"), None);

        let overview = analytics
            .overview(
                "t1",
                &plan,
                InstanceCounts {
                    total: 2,
                    connected: 1,
                },
                &["inst".into(), "other".into()],
            )
            .await
            .unwrap();
        assert_eq!(overview.instances.connected, 1);
        assert_eq!(overview.messages.today[&MessageEvent::Sent], 3, "{label}");
        assert_eq!(overview.messages.month[&MessageEvent::Failed], 1);
        assert_eq!(overview.active_bots, 1);
        assert_eq!(overview.queued_sends, 1);
        assert_eq!(overview.bill.total_cents, 1900 + 14 * 2);
        let json = serde_json::to_value(&overview).unwrap();
        assert_eq!(json["messages"]["today"]["sent"], 3);

        let bill = analytics
            .bill("t1", &plan, Month::parse("2026-12").unwrap())
            .await
            .unwrap();
        assert_eq!(bill.overage_cents, 28);
        let earlier = analytics
            .bill("t1", &plan, Month::parse("2026-11").unwrap())
            .await
            .unwrap();
        assert_eq!((earlier.overage_cents, earlier.total_cents), (0, 1900));
        writer.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_send_queue_is_durable_and_ordered() {
    for db in databases().await {
        let q = SendQueue::new(db.pool.clone());
        let a = q
            .enqueue("inst", "chat1", "m1", r#"{"text":"1"}"#)
            .await
            .unwrap();
        let b = q
            .enqueue("inst", "chat2", "m2", r#"{"text":"2"}"#)
            .await
            .unwrap();
        q.enqueue("inst", "chat1", "m3", r#"{"text":"3"}"#)
            .await
            .unwrap();
        q.enqueue("other", "chat1", "m1", "{}").await.unwrap();
        assert!(matches!(
            q.enqueue("inst", "chat9", "m2", "{}").await,
            Err(zapin_tenancy::TenancyError::Conflict(_))
        ));
        assert_eq!(q.depth("inst").await.unwrap(), 3);
        // A restart: a new pool on the same database sees the same queue.
        let q2 = SendQueue::new(db.reopen().await);
        let head = q2.head("inst").await.unwrap().unwrap();
        assert_eq!(
            (head.id, head.chat.as_str(), head.payload.as_str()),
            (a, "chat1", r#"{"text":"1"}"#)
        );
        q2.failed(a, "engine not connected").await.unwrap();
        let head = q2.head("inst").await.unwrap().unwrap();
        assert_eq!(
            (head.attempts, head.last_error.as_deref()),
            (1, Some("engine not connected"))
        );
        q2.complete(a).await.unwrap();
        assert_eq!(q2.head("inst").await.unwrap().unwrap().id, b);
        let ids: Vec<String> = q2
            .peek("inst", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.message_id)
            .collect();
        assert_eq!(ids, ["m2", "m3"]);
        assert_eq!(
            q2.depths().await.unwrap(),
            [("inst".to_owned(), 2), ("other".to_owned(), 1)]
        );
        assert_eq!(q2.clear("inst").await.unwrap(), 2);
        assert_eq!(q2.head("inst").await.unwrap(), None);
        db.cleanup().await;
    }
}
