//! The dispatcher against a real HTTP receiver, on SQLite and (when `ZAPIN_TEST_DATABASE_URL`
//! is set) PostgreSQL: success, retries, dead letters, timeouts, headers and signatures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use zapin_gateway::db::{Db, Instance, NewInstance, WebhookSet};
use zapin_gateway::webhook::{
    DeadLetter, Dispatcher, DispatcherConfig, DispatcherHandle, RetryPolicy, Routing,
};

use common::{Receiver, Reply, backends, eventually};

fn config(max_attempts: u32) -> DispatcherConfig {
    DispatcherConfig {
        concurrency: 4,
        // Generous, so a loaded CI machine does not turn a slow answer into a retry.
        request_timeout: Duration::from_secs(5),
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(200),
        retry: RetryPolicy {
            max_attempts,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(80),
            exponential: true,
            jitter: 0.2,
            non_retryable: BTreeSet::from([400, 401, 403, 404, 422]),
        },
    }
}

fn start(db: &Db, max_attempts: u32) -> DispatcherHandle {
    start_with(db, config(max_attempts))
}

fn start_with(db: &Db, config: DispatcherConfig) -> DispatcherHandle {
    Dispatcher::new(db.clone(), config)
        .unwrap()
        .with_jitter(Arc::new(|| 0.5))
        .spawn()
}

async fn instance_with_webhook(db: &Db, name: &str, set: WebhookSet) -> Instance {
    let mut tx = db.begin().await.unwrap();
    let inst = tx
        .create_instance(
            &NewInstance {
                name: name.to_owned(),
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
    tx.set_webhook(&inst.id, &set).await.unwrap();
    tx.commit().await.unwrap();
    inst
}

fn hook(url: &str) -> WebhookSet {
    WebhookSet {
        url: url.to_owned(),
        enabled: true,
        events: vec!["MESSAGES_UPSERT".to_owned()],
        by_events: false,
        base64: false,
        headers: json!({}),
        secret: None,
    }
}

async fn enqueue(db: &Db, instance: &Instance, body: serde_json::Value) -> String {
    let mut tx = db.begin().await.unwrap();
    let id = tx
        .enqueue_event(&instance.id, "MESSAGES_UPSERT", &body)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn outbox_empty(db: &Db) {
    eventually("the outbox to drain", || async {
        db.outbox_entries().await.unwrap().is_empty().then_some(())
    })
    .await;
}

async fn one_dead_letter(db: &Db) -> DeadLetter {
    eventually("a dead letter", || async {
        let mut dl = db.dead_letters().await.unwrap();
        (dl.len() == 1).then(|| dl.remove(0))
    })
    .await
}

#[tokio::test]
async fn delivers_with_event_id_headers_and_a_verifiable_signature() {
    for t in backends(Routing::default()).await {
        let db = t.db.clone();
        let rx = Receiver::start().await;
        let inst = instance_with_webhook(
            &db,
            "signed",
            WebhookSet {
                headers: json!({"x-tenant": "acme", "jwt_key": "jwt-secret"}),
                secret: Some("whsec".to_owned()),
                ..hook(&format!("{}/hooks/in", rx.base))
            },
        )
        .await;
        let dispatcher = start(&db, 5);
        let body = json!({"event": "messages.upsert", "instance": "signed", "data": {"n": "é"}});
        let id = enqueue(&db, &inst, body.clone()).await;

        let seen = rx.wait_for(1).await;
        outbox_empty(&db).await;
        let req = &seen[0];
        assert_eq!(req.path, "/hooks/in");
        assert_eq!(req.json(), body);
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.event_id(), id);
        assert_eq!(req.header("x-tenant"), Some("acme"));
        assert_eq!(req.header("jwt_key"), None);
        let bearer = req.header("authorization").unwrap();
        assert!(bearer.starts_with("Bearer ey"), "{bearer}");
        assert_eq!(bearer.matches('.').count(), 2);

        // The receiver's check: HMAC-SHA256 over the raw body with the shared secret.
        let sig = req.header("x-zapin-signature").unwrap();
        let hex_mac = sig.strip_prefix("sha256=").unwrap();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"whsec").unwrap();
        mac.update(&req.body);
        mac.verify_slice(&hex::decode(hex_mac).unwrap()).unwrap();

        assert!(db.dead_letters().await.unwrap().is_empty());
        assert_eq!(rx.seen().len(), 1);
        dispatcher.shutdown().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn retries_with_the_same_event_id_until_success() {
    for t in backends(Routing::default()).await {
        let db = t.db.clone();
        let rx = Receiver::start().await;
        rx.script(&[Reply::Status(500), Reply::Status(503), Reply::Status(429)]);
        let inst = instance_with_webhook(&db, "retry", hook(&rx.base)).await;
        let dispatcher = start(&db, 5);
        let id = enqueue(&db, &inst, json!({"retry": true})).await;

        let seen = rx.wait_for(4).await;
        outbox_empty(&db).await;
        assert!(seen.iter().all(|s| s.event_id() == id));
        assert!(seen.iter().all(|s| s.json() == json!({"retry": true})));
        assert!(db.dead_letters().await.unwrap().is_empty());
        dispatcher.shutdown().await;
        assert_eq!(rx.seen().len(), 4);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn a_non_retryable_status_dead_letters_at_once() {
    for t in backends(Routing::default()).await {
        let db = t.db.clone();
        let rx = Receiver::start().await;
        rx.always(Reply::Status(404));
        let inst = instance_with_webhook(&db, "gone", hook(&rx.base)).await;
        let dispatcher = start(&db, 5);
        let id = enqueue(&db, &inst, json!({"x": 1})).await;

        let dl = one_dead_letter(&db).await;
        assert_eq!(dl.idempotency_id, id);
        assert_eq!(dl.reason, "non-retryable status");
        assert_eq!(dl.last_status, Some(404));
        assert_eq!(dl.attempts, 1);
        assert_eq!(dl.event, "MESSAGES_UPSERT");
        assert_eq!(dl.body, r#"{"x":1}"#);
        assert!(db.outbox_entries().await.unwrap().is_empty());
        dispatcher.shutdown().await;
        assert_eq!(rx.seen().len(), 1);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn exhausted_retries_dead_letter_after_the_last_attempt() {
    for t in backends(Routing::default()).await {
        let db = t.db.clone();
        let rx = Receiver::start().await;
        rx.always(Reply::Status(500));
        let inst = instance_with_webhook(&db, "flaky", hook(&rx.base)).await;
        let dispatcher = start(&db, 3);
        let id = enqueue(&db, &inst, json!({"x": 2})).await;

        let dl = one_dead_letter(&db).await;
        assert_eq!(dl.idempotency_id, id);
        assert_eq!(dl.reason, "retries exhausted");
        assert_eq!(dl.attempts, 3);
        assert_eq!(dl.last_status, Some(500));
        dispatcher.shutdown().await;
        let seen = rx.seen();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|s| s.event_id() == id));
        t.cleanup().await;
    }
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_is_retried() {
    for t in backends(Routing::default()).await {
        let db = t.db.clone();
        let rx = Receiver::start().await;
        rx.always(Reply::Hang);
        let inst = instance_with_webhook(&db, "hang", hook(&rx.base)).await;
        let dispatcher = start_with(
            &db,
            DispatcherConfig {
                request_timeout: Duration::from_millis(300),
                ..config(2)
            },
        );
        enqueue(&db, &inst, json!({"x": 3})).await;

        let dl = one_dead_letter(&db).await;
        assert_eq!(dl.reason, "retries exhausted");
        assert_eq!(dl.attempts, 2);
        assert_eq!(dl.last_status, None);
        let err = dl.last_error.unwrap();
        assert!(
            err.contains("timed out") || err.contains("timeout"),
            "{err}"
        );
        dispatcher.shutdown().await;
        assert_eq!(rx.seen().len(), 2);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn by_events_suffixes_and_the_global_webhook() {
    let rx = Receiver::start().await;
    let routing = Routing {
        global_url: Some(format!("{}/global", rx.base)),
        global_by_events: true,
        global_events: BTreeSet::from(["MESSAGES_UPSERT".to_owned()]),
    };
    for t in backends(routing).await {
        let db = t.db.clone();
        let before = rx.seen().len();
        let inst = instance_with_webhook(
            &db,
            "suffix",
            WebhookSet {
                by_events: true,
                secret: Some("k".to_owned()),
                ..hook(&format!("{}/inst", rx.base))
            },
        )
        .await;
        let dispatcher = start(&db, 3);
        let id = enqueue(&db, &inst, json!({"both": true})).await;
        let seen = rx.wait_for(before + 2).await;
        outbox_empty(&db).await;
        let mine = &seen[before..];
        let paths: BTreeSet<&str> = mine.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            BTreeSet::from(["/global/messages-upsert", "/inst/messages-upsert"])
        );
        assert!(mine.iter().all(|s| s.event_id() == id));
        // Only the instance webhook has a secret.
        for s in mine {
            assert_eq!(
                s.header("x-zapin-signature").is_some(),
                s.path.starts_with("/inst"),
                "{}",
                s.path
            );
        }
        dispatcher.shutdown().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn many_events_are_all_delivered_with_bounded_concurrency() {
    for t in backends(Routing::default()).await {
        let db = t.db.clone();
        let rx = Receiver::start().await;
        rx.delay_each(Duration::from_millis(5));
        let inst = instance_with_webhook(&db, "bulk", hook(&rx.base)).await;
        let mut ids = BTreeSet::new();
        let mut tx = db.begin().await.unwrap();
        for i in 0..40 {
            ids.insert(
                tx.enqueue_event(&inst.id, "MESSAGES_UPSERT", &json!({"i": i}))
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        tx.commit().await.unwrap();
        let dispatcher = start(&db, 3);
        let seen = rx.wait_for(40).await;
        outbox_empty(&db).await;
        let got: BTreeSet<String> = seen.iter().map(|s| s.event_id()).collect();
        assert_eq!(got, ids);
        dispatcher.shutdown().await;
        assert_eq!(rx.seen().len(), 40, "no duplicates without failures");
        t.cleanup().await;
    }
}

#[tokio::test]
async fn two_dispatchers_share_the_outbox_without_duplicates() {
    for t in backends(Routing::default()).await {
        let db = t.db.clone();
        let rx = Receiver::start().await;
        rx.delay_each(Duration::from_millis(3));
        let inst = instance_with_webhook(&db, "shared", hook(&rx.base)).await;
        let mut ids = BTreeSet::new();
        for i in 0..30 {
            ids.insert(enqueue(&db, &inst, json!({"i": i})).await);
        }
        let first = start(&db, 3);
        let second = start(&db, 3);
        let seen = rx.wait_for(30).await;
        outbox_empty(&db).await;
        first.shutdown().await;
        second.shutdown().await;
        let got: BTreeSet<String> = seen.iter().map(|s| s.event_id()).collect();
        assert_eq!(got, ids);
        assert_eq!(rx.seen().len(), 30, "a leased row is delivered once");
        t.cleanup().await;
    }
}

#[tokio::test]
async fn https_urls_are_attempted_over_tls() {
    let t = common::TestDb::sqlite(Routing::default()).await;
    let db = t.db.clone();
    // A plain-HTTP server behind an https:// URL: the TLS handshake must be what fails.
    let rx = Receiver::start().await;
    let url = rx.base.replacen("http://", "https://", 1);
    let inst = instance_with_webhook(&db, "tls", hook(&url)).await;
    let dispatcher = start(&db, 1);
    enqueue(&db, &inst, json!({})).await;
    let dl = one_dead_letter(&db).await;
    let err = dl.last_error.unwrap();
    assert!(!err.contains("scheme"), "{err}");
    assert!(err.to_ascii_lowercase().contains("connect"), "{err}");
    dispatcher.shutdown().await;
    assert!(rx.seen().is_empty());
    t.cleanup().await;
}
