//! A real crash: a child process charges quotas and is killed with SIGKILL (no flush, no
//! destructor); the next process finds every accepted charge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use zapin_tenancy::ManualClock;
use zapin_tenancy::plan::{Plan, QuotaType};
use zapin_tenancy::quota::{Decision, MemoryCounters, MemoryOptions, Quotas};
use zapin_tenancy::routes::Cost;
use zapin_tenancy::sql::SqlPool;

const CHILD_ENV: &str = "ZAPIN_TENANCY_CRASH_CHILD_DIR";
const T0: i64 = 1_796_571_000_000; // 2026-12-06T15:30:00Z

async fn open(dir: &Path) -> (MemoryCounters, Quotas) {
    let pool = SqlPool::open_sqlite_file(&dir.join("zapin.sqlite3"))
        .await
        .unwrap();
    let clock = ManualClock::new(T0);
    let store = MemoryCounters::open(
        MemoryOptions {
            journal_dir: dir.join("journal"),
            pool,
            flush_every: Duration::from_secs(3600),
        },
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    let quotas = Quotas::new(Arc::new(store.clone()), Arc::new(clock));
    (store, quotas)
}

fn plan() -> zapin_tenancy::plan::PlanSpec {
    Plan::from_json(br#"{"name":"p","quotas":{"message_send":{"day":1000}}}"#)
        .unwrap()
        .spec
}

const SEND: Cost = Cost {
    quota: QuotaType::MessageSend,
    weight: 1,
};

/// The child's side: charge 10, flush, charge 15 more, report, then wait to be killed.
#[tokio::test]
#[ignore = "run by crash_loses_no_accepted_charge as a child process"]
async fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (store, quotas) = open(Path::new(&dir)).await;
    for i in 0..25 {
        if i == 10 {
            store.flush().await.unwrap();
        }
        assert!(matches!(
            quotas.charge("tenant-a", &plan(), SEND).await.unwrap(),
            Decision::Accepted { .. }
        ));
    }
    let mut out = std::io::stdout();
    writeln!(out, "CHARGED 25").unwrap();
    out.flush().unwrap();
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn crash_loses_no_accepted_charge() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--ignored", "--nocapture"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("CHARGED 25"))
    });
    // The reader ends when the line arrives (or the child exits without it).
    let saw = tokio::task::spawn_blocking(move || reader.join().unwrap());
    let saw = tokio::time::timeout(Duration::from_secs(60), saw)
        .await
        .expect("the child never reported")
        .unwrap();
    assert!(saw, "the child exited without charging");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (store, quotas) = open(dir.path()).await;
    assert_eq!(
        quotas
            .today_used("tenant-a", QuotaType::MessageSend)
            .await
            .unwrap(),
        25
    );
    store.flush().await.unwrap();
}
