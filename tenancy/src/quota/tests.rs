//! The decision rules, on the volatile in-process store with a manual clock. The backends'
//! atomicity and persistence are tested in `tests/quota_backends.rs`.

use std::sync::Arc;

use super::*;
use crate::ManualClock;
use crate::plan::Plan;
use crate::time::days_from_civil;

const STARTER: &str = r#"{"name":"starter","quotas":{"message_send":{"day":100},"api_call":{"minute":60,"month":100000},"instance_create":{"total":2},"bot_create":{"total":1}},"price_cents":1900,"overage_cents":{"message_send":2}}"#;

fn starter() -> PlanSpec {
    Plan::from_json(STARTER.as_bytes()).unwrap().spec
}

/// 2026-12-06T15:30:00Z
fn t0() -> i64 {
    (days_from_civil(2026, 12, 6) * 86_400 + 15 * 3600 + 30 * 60) * 1000
}

fn quotas() -> (Quotas, ManualClock) {
    let clock = ManualClock::new(t0());
    let store = MemoryCounters::volatile(Arc::new(clock.clone()));
    (Quotas::new(Arc::new(store), Arc::new(clock.clone())), clock)
}

const SEND1: Cost = Cost {
    quota: QuotaType::MessageSend,
    weight: 1,
};
const SEND2: Cost = Cost {
    quota: QuotaType::MessageSend,
    weight: 2,
};

fn accepted(d: &Decision) -> (&Receipt, Option<RateLimit>) {
    match d {
        Decision::Accepted { receipt, rate } => (receipt, *rate),
        Decision::Refused(r) => panic!("refused: {}", r.message()),
    }
}

fn refused(d: Decision) -> Refusal {
    match d {
        Decision::Refused(r) => r,
        Decision::Accepted { .. } => panic!("accepted"),
    }
}

#[tokio::test]
async fn a_day_quota_refuses_the_101st_send_with_the_issue_message() {
    let (q, _clock) = quotas();
    let plan = starter();
    for i in 0..100u64 {
        let d = q.charge("t1", &plan, SEND1).await.unwrap();
        let (_, rate) = accepted(&d);
        let rate = rate.unwrap();
        assert_eq!(rate.limit, 100);
        assert_eq!(rate.remaining, 99 - i);
        assert_eq!(rate.window, Window::Day);
        assert_eq!(crate::time::rfc3339(rate.reset), "2026-12-07T00:00:00Z");
    }
    let r = refused(q.charge("t1", &plan, SEND1).await.unwrap());
    assert_eq!(
        r.message(),
        "Quota exceeded: message_send 100/day, resets 2026-12-07T00:00:00Z"
    );
    assert_eq!((r.limit, r.used, r.window), (100, 100, Window::Day));
    // 15:30 → midnight: 8.5 hours.
    assert_eq!(r.retry_after, Some(8 * 3600 + 1800));
    assert_eq!(r.rate.remaining, 0);
    assert_eq!(r.rate.limit, 100);
    // The refusal was not counted, and another tenant is unaffected.
    assert_eq!(
        q.today_used("t1", QuotaType::MessageSend).await.unwrap(),
        100
    );
    accepted(&q.charge("t2", &plan, SEND1).await.unwrap());
}

#[tokio::test]
async fn the_next_day_resets_and_the_month_keeps_counting() {
    let (q, clock) = quotas();
    let plan = starter();
    for _ in 0..100 {
        accepted(&q.charge("t1", &plan, SEND1).await.unwrap());
    }
    refused(q.charge("t1", &plan, SEND1).await.unwrap());
    clock.advance_ms(9 * 3600 * 1000);
    let d = q.charge("t1", &plan, SEND1).await.unwrap();
    assert_eq!(accepted(&d).1.unwrap().remaining, 99);
    let month = crate::time::month_start(t0() / 1000);
    assert_eq!(
        q.month_used("t1", QuotaType::MessageSend, month)
            .await
            .unwrap(),
        101
    );
}

#[tokio::test]
async fn a_weight_that_does_not_fit_is_refused_whole() {
    let (q, _) = quotas();
    let plan = starter();
    for _ in 0..99 {
        accepted(&q.charge("t1", &plan, SEND1).await.unwrap());
    }
    let r = refused(q.charge("t1", &plan, SEND2).await.unwrap());
    assert_eq!(r.rate.remaining, 1);
    assert_eq!(
        q.today_used("t1", QuotaType::MessageSend).await.unwrap(),
        99
    );
    accepted(&q.charge("t1", &plan, SEND1).await.unwrap());
}

#[tokio::test]
async fn refunds_give_back_exactly_the_charged_counters() {
    let (q, clock) = quotas();
    let plan = starter();
    let d = q.charge("t1", &plan, SEND2).await.unwrap();
    let receipt = accepted(&d).0.clone();
    assert_eq!(q.today_used("t1", QuotaType::MessageSend).await.unwrap(), 2);
    q.refund(&receipt).await.unwrap();
    assert_eq!(q.today_used("t1", QuotaType::MessageSend).await.unwrap(), 0);
    // A refund never goes below zero, even when repeated.
    q.refund(&receipt).await.unwrap();
    assert_eq!(q.today_used("t1", QuotaType::MessageSend).await.unwrap(), 0);

    // Charged just before midnight, refunded after: yesterday's counter goes down, today's not.
    clock.set(t0() + (8 * 3600 + 1799) * 1000);
    let d = q.charge("t1", &plan, SEND1).await.unwrap();
    let late = accepted(&d).0.clone();
    clock.advance_ms(2000);
    accepted(&q.charge("t1", &plan, SEND1).await.unwrap());
    q.refund(&late).await.unwrap();
    assert_eq!(q.today_used("t1", QuotaType::MessageSend).await.unwrap(), 1);
}

#[tokio::test]
async fn totals_count_resources_held_and_releases_free_them() {
    let (q, clock) = quotas();
    let plan = starter();
    let create = Cost {
        quota: QuotaType::InstanceCreate,
        weight: 1,
    };
    accepted(&q.charge("t1", &plan, create).await.unwrap());
    let d = q.charge("t1", &plan, create).await.unwrap();
    let rate = accepted(&d).1.unwrap();
    assert_eq!(
        (rate.window, rate.limit, rate.remaining, rate.reset),
        (Window::Total, 2, 0, 0)
    );
    let r = refused(q.charge("t1", &plan, create).await.unwrap());
    assert_eq!(r.message(), "Quota exceeded: instance_create 2/total");
    assert_eq!((r.reset, r.retry_after), (None, None));
    // Time does not free a slot; a release does.
    clock.advance_ms(40 * 86_400 * 1000);
    refused(q.charge("t1", &plan, create).await.unwrap());
    q.release("t1", QuotaType::InstanceCreate, 1).await.unwrap();
    assert_eq!(q.held("t1", QuotaType::InstanceCreate).await.unwrap(), 1);
    accepted(&q.charge("t1", &plan, create).await.unwrap());
    q.reconcile_total("t1", QuotaType::InstanceCreate, 0)
        .await
        .unwrap();
    assert_eq!(q.held("t1", QuotaType::InstanceCreate).await.unwrap(), 0);
    // Releasing more than held stops at zero.
    q.release("t1", QuotaType::InstanceCreate, 5).await.unwrap();
    assert_eq!(q.held("t1", QuotaType::InstanceCreate).await.unwrap(), 0);
}

#[tokio::test]
async fn the_tightest_window_is_reported() {
    let (q, _) = quotas();
    let plan = starter();
    let api = Cost {
        quota: QuotaType::ApiCall,
        weight: 1,
    };
    let d = q.charge("t1", &plan, api).await.unwrap();
    let rate = accepted(&d).1.unwrap();
    assert_eq!(
        (rate.window, rate.limit, rate.remaining),
        (Window::Minute, 60, 59)
    );
    assert_eq!(crate::time::rfc3339(rate.reset), "2026-12-06T15:31:00Z");
    // A plan whose month is tighter than its minute reports the month.
    let tight = Plan::from_json(br#"{"name":"t","quotas":{"api_call":{"minute":60,"month":3}}}"#)
        .unwrap()
        .spec;
    let d = q.charge("t9", &tight, api).await.unwrap();
    let rate = accepted(&d).1.unwrap();
    assert_eq!((rate.window, rate.remaining), (Window::Month, 2));
    assert_eq!(
        q.peek("t9", &tight, QuotaType::ApiCall).await.unwrap(),
        Some(rate)
    );
    // The refusal names the window resetting last.
    accepted(&q.charge("t9", &tight, api).await.unwrap());
    accepted(&q.charge("t9", &tight, api).await.unwrap());
    let r = refused(q.charge("t9", &tight, api).await.unwrap());
    assert_eq!(
        r.message(),
        "Quota exceeded: api_call 3/month, resets 2027-01-01T00:00:00Z"
    );
}

#[tokio::test]
async fn unlimited_types_are_counted_without_headers() {
    let (q, _) = quotas();
    let plan = starter();
    let del = Cost {
        quota: QuotaType::InstanceDelete,
        weight: 1,
    };
    for _ in 0..1000 {
        let d = q.charge("t1", &plan, del).await.unwrap();
        assert_eq!(accepted(&d).1, None);
    }
    assert_eq!(
        q.today_used("t1", QuotaType::InstanceDelete).await.unwrap(),
        1000
    );
    assert_eq!(
        q.peek("t1", &plan, QuotaType::InstanceDelete)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_metered_month_is_included_not_capped() {
    let (q, _) = quotas();
    let plan = Plan::from_json(
        br#"{"name":"m","quotas":{"message_send":{"month":3}},"overage_cents":{"message_send":5}}"#,
    )
    .unwrap()
    .spec;
    for i in 0..5u64 {
        let d = q.charge("t1", &plan, SEND1).await.unwrap();
        let rate = accepted(&d).1.unwrap();
        assert_eq!((rate.window, rate.limit), (Window::Month, 3));
        assert_eq!(rate.remaining, 2u64.saturating_sub(i));
    }
    let lines = q.usage("t1", &plan).await.unwrap();
    let month = lines
        .iter()
        .find(|l| l.quota == QuotaType::MessageSend && l.window == Window::Month)
        .unwrap();
    assert_eq!(
        (month.used, month.limit, month.included),
        (5, None, Some(3))
    );
}

#[tokio::test]
async fn the_usage_document_lists_every_window() {
    let (q, _) = quotas();
    let plan = starter();
    accepted(&q.charge("t1", &plan, SEND2).await.unwrap());
    let lines = q.usage("t1", &plan).await.unwrap();
    let day = lines
        .iter()
        .find(|l| l.quota == QuotaType::MessageSend && l.window == Window::Day)
        .unwrap();
    assert_eq!(day.used, 2);
    assert_eq!(day.limit, Some(100));
    assert_eq!(day.remaining, Some(98));
    assert_eq!(day.reset.as_deref(), Some("2026-12-07T00:00:00Z"));
    let total = lines
        .iter()
        .find(|l| l.quota == QuotaType::InstanceCreate && l.window == Window::Total)
        .unwrap();
    assert_eq!(
        (total.used, total.limit, total.reset.as_deref()),
        (0, Some(2), None)
    );
    // Every type appears with at least its day and month.
    for quota in QuotaType::ALL {
        assert!(
            lines
                .iter()
                .any(|l| l.quota == quota && l.window == Window::Day)
        );
        assert!(
            lines
                .iter()
                .any(|l| l.quota == quota && l.window == Window::Month)
        );
    }
    let json = serde_json::to_value(&lines).unwrap();
    assert_eq!(json[0]["quota"], "message_send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_under_concurrency_in_process() {
    let (q, _) = quotas();
    let plan = starter();
    let q = Arc::new(q);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let q = q.clone();
        let plan = plan.clone();
        tasks.push(tokio::spawn(async move {
            matches!(
                q.charge("t1", &plan, SEND1).await.unwrap(),
                Decision::Accepted { .. }
            )
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 100);
    assert_eq!(
        q.today_used("t1", QuotaType::MessageSend).await.unwrap(),
        100
    );
}
