//! No event is lost when the process dies mid-delivery.
//!
//! The test re-runs its own binary as a child process (the `crash_child` test, which does nothing
//! unless `ZAPIN_CRASH_CHILD` is set): the child opens the database, enqueues N events and
//! dispatches them to a real receiver; the parent kills it with SIGKILL once the receiver has seen
//! some but not all, then reopens the database and dispatches the rest itself. Once on SQLite,
//! once on PostgreSQL (a database created for the run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use zapin_gateway::db::{Db, DbOptions, NewInstance, WebhookSet};
use zapin_gateway::webhook::{Dispatcher, DispatcherConfig, RetryPolicy, Routing};

use common::{Receiver, eventually};

const EVENTS: usize = 60;
const CHILD_CONCURRENCY: usize = 2;

fn dispatcher_config(concurrency: usize) -> DispatcherConfig {
    DispatcherConfig {
        concurrency,
        request_timeout: Duration::from_secs(5),
        // Short, so the rows the dead child held become due again quickly.
        lease: Duration::from_millis(800),
        poll_interval: Duration::from_millis(100),
        retry: RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            exponential: true,
            jitter: 0.0,
            non_retryable: BTreeSet::from([404]),
        },
    }
}

/// The child's side; a no-op in a normal test run.
#[tokio::test]
async fn crash_child() {
    let Ok(target) = std::env::var("ZAPIN_CRASH_CHILD") else {
        return;
    };
    let url = std::env::var("ZAPIN_CRASH_URL").unwrap();
    let db = open(&target).await;
    let mut tx = db.begin().await.unwrap();
    let inst = tx
        .create_instance(
            &NewInstance {
                name: "crash".to_owned(),
                token: "T".to_owned(),
                token_hash: None,
                integration: "WHATSAPP-BAILEYS".to_owned(),
                number: None,
                connection_status: "close".to_owned(),
            },
            |_| json!({}),
        )
        .await
        .unwrap();
    tx.set_webhook(
        &inst.id,
        &WebhookSet {
            url,
            enabled: true,
            events: vec!["MESSAGES_UPSERT".to_owned()],
            by_events: false,
            base64: false,
            headers: json!({}),
            secret: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // One transaction per event, as the engine would write them.
    for seq in 0..EVENTS {
        let mut tx = db.begin().await.unwrap();
        tx.enqueue_event(&inst.id, "MESSAGES_UPSERT", &json!({"seq": seq}))
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
    }
    let mut out = std::io::stdout();
    writeln!(out, "ENQUEUED").unwrap();
    out.flush().unwrap();
    let _dispatcher = Dispatcher::new(db, dispatcher_config(CHILD_CONCURRENCY))
        .unwrap()
        .with_jitter(Arc::new(|| 0.0))
        .spawn();
    std::future::pending::<()>().await;
}

/// `sqlite:<path>` or a postgres URL.
async fn open(target: &str) -> Db {
    match target.strip_prefix("sqlite:") {
        Some(path) => Db::open_sqlite_file(
            std::path::Path::new(path),
            Routing::default(),
            &DbOptions::default(),
        )
        .await
        .unwrap(),
        None => Db::open_postgres(target, Routing::default(), &DbOptions::default())
            .await
            .unwrap(),
    }
}

#[tokio::test]
async fn no_event_is_lost_when_the_dispatcher_is_killed_on_sqlite() {
    if std::env::var("ZAPIN_CRASH_CHILD").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite:{}", dir.path().join("zapin.sqlite3").display());
    crash_and_recover(&target).await;
}

#[tokio::test]
async fn no_event_is_lost_when_the_dispatcher_is_killed_on_postgres() {
    if std::env::var("ZAPIN_CRASH_CHILD").is_ok() {
        return;
    }
    let Some(admin) = common::postgres_url() else {
        return;
    };
    let database = common::PgDatabase::create(&admin).await;
    crash_and_recover(&database.url).await;
    database.drop_database().await;
}

async fn crash_and_recover(target: &str) {
    let rx = Receiver::start().await;
    // Slow enough that the kill lands mid-way.
    rx.delay_each(Duration::from_millis(25));

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("ZAPIN_CRASH_CHILD", target)
        .env("ZAPIN_CRASH_URL", format!("{}/hook", rx.base))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Everything is committed before the child starts dispatching.
    let stdout = child.stdout.take().unwrap();
    let enqueued = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("ENQUEUED"))
    });
    assert!(
        tokio::time::timeout(common::TIMEOUT, enqueued)
            .await
            .unwrap()
            .unwrap()
    );

    rx.wait_for(10).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let seen_at_kill = rx.seen().len();
    assert!(
        seen_at_kill < EVENTS,
        "the child finished before the kill ({seen_at_kill} requests)"
    );

    // Recovery: a new process (here, the test) reopens the database and dispatches the rest.
    let db = open(target).await;
    let pending = db.outbox_entries().await.unwrap().len();
    assert!(pending > 0 && pending <= EVENTS);
    let dispatcher = Dispatcher::new(db.clone(), dispatcher_config(4))
        .unwrap()
        .spawn();
    eventually("the outbox to drain after recovery", || async {
        db.outbox_entries().await.unwrap().is_empty().then_some(())
    })
    .await;
    dispatcher.shutdown().await;
    assert!(db.dead_letters().await.unwrap().is_empty());
    db.close().await;

    // Every event arrived; a duplicate is only possible for a delivery in flight at the kill.
    let seen = rx.seen();
    let mut per_id: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for s in &seen {
        let seq = s.json()["seq"].as_u64().unwrap();
        per_id.entry(s.event_id()).or_default().insert(seq);
    }
    assert_eq!(per_id.len(), EVENTS, "distinct event ids");
    let seqs: BTreeSet<u64> = per_id.values().flatten().copied().collect();
    assert_eq!(seqs, (0..EVENTS as u64).collect::<BTreeSet<_>>());
    assert!(
        per_id.values().all(|s| s.len() == 1),
        "one body per event id"
    );
    let duplicates = seen.len() - EVENTS;
    assert!(
        duplicates <= CHILD_CONCURRENCY,
        "{duplicates} duplicates, more than the {CHILD_CONCURRENCY} deliveries in flight"
    );
    let _ = writeln!(
        std::io::stderr(),
        "crash test: {seen_at_kill} requests before SIGKILL, {pending} rows left, \
         {} requests in total, {duplicates} duplicate(s)",
        seen.len()
    );
}
