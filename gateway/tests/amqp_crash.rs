//! No RabbitMQ event is lost when the process dies mid-delivery (needs `ZAPIN_TEST_AMQP_URL`).
//!
//! As in `crash.rs`, the test re-runs its own binary as a child (`amqp_crash_child`, a no-op
//! unless `ZAPIN_AMQP_CRASH_CHILD` is set): the child enqueues the events and publishes them
//! through a slowed TCP proxy; the parent kills it with SIGKILL once a consumer has seen some,
//! then reopens the database and publishes the rest itself. Every event arrives, in order, once
//! duplicates (same `message_id`) are dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod brokers;
mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use brokers::{Proxy, broker_url, host_port, unique};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};
use zapin_gateway::db::{Db, DbOptions, NewInstance};
use zapin_gateway::webhook::{Dispatcher, DispatcherConfig, RetryPolicy, Routing, Transports};

use common::eventually;

const EVENTS: usize = 300;

fn dispatcher_config() -> DispatcherConfig {
    DispatcherConfig {
        concurrency: 2,
        request_timeout: Duration::from_secs(5),
        // Short, so the rows the dead child held become due again quickly (PostgreSQL).
        lease: Duration::from_millis(800),
        poll_interval: Duration::from_millis(100),
        retry: RetryPolicy {
            max_attempts: 100,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            exponential: true,
            jitter: 0.0,
            non_retryable: Default::default(),
        },
    }
}

fn transports(uri: &str, exchange: &str) -> Transports {
    let env = |k: &str| match k {
        "RABBITMQ_ENABLED" | "RABBITMQ_GLOBAL_ENABLED" | "RABBITMQ_EVENTS_MESSAGES_UPSERT" => {
            Some("true".to_owned())
        }
        "RABBITMQ_URI" => Some(uri.to_owned()),
        "RABBITMQ_EXCHANGE_NAME" => Some(exchange.to_owned()),
        _ => None,
    };
    Transports {
        rabbitmq: zapin_gateway::webhook::AmqpRouting::from_env(&env),
        ..Transports::webhooks(Routing::default())
    }
}

async fn open(target: &str, uri: &str, exchange: &str) -> Db {
    let db = match target.strip_prefix("sqlite:") {
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
    };
    db.with_transports(transports(uri, exchange))
}

fn spawn_dispatcher(db: &Db, uri: &str) -> zapin_gateway::webhook::DispatcherHandle {
    let transport = zapin_gateway::webhook::AmqpTransport::new(uri, 131_072);
    Dispatcher::for_transport(db, Arc::new(transport), dispatcher_config())
        .with_jitter(Arc::new(|| 0.0))
        .spawn()
}

/// The child's side; a no-op in a normal test run.
#[tokio::test]
async fn amqp_crash_child() {
    let Ok(target) = std::env::var("ZAPIN_AMQP_CRASH_CHILD") else {
        return;
    };
    let uri = std::env::var("ZAPIN_AMQP_CRASH_URI").unwrap();
    let exchange = std::env::var("ZAPIN_AMQP_CRASH_EXCHANGE").unwrap();
    let db = open(&target, &uri, &exchange).await;
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
    tx.commit().await.unwrap();
    for seq in 0..EVENTS {
        let mut tx = db.begin().await.unwrap();
        let envelope = json!({
            "event": "messages.upsert", "instance": "crash", "data": {"seq": seq},
            "destination": "", "date_time": "2026-01-01T00:00:00.000Z", "server_url": "",
            "apikey": null,
        });
        tx.enqueue_event(&inst.id, "MESSAGES_UPSERT", &envelope)
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
    }
    let mut out = std::io::stdout();
    writeln!(out, "ENQUEUED").unwrap();
    out.flush().unwrap();
    let _dispatcher = spawn_dispatcher(&db, &uri);
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn no_amqp_event_is_lost_when_the_process_is_killed_on_sqlite() {
    if std::env::var("ZAPIN_AMQP_CRASH_CHILD").is_ok() {
        return;
    }
    let Some(url) = broker_url("ZAPIN_TEST_AMQP_URL") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite:{}", dir.path().join("zapin.sqlite3").display());
    crash_and_recover(&url, &target).await;
}

#[tokio::test]
async fn no_amqp_event_is_lost_when_the_process_is_killed_on_postgres() {
    if std::env::var("ZAPIN_AMQP_CRASH_CHILD").is_ok() {
        return;
    }
    let Some(url) = broker_url("ZAPIN_TEST_AMQP_URL") else {
        return;
    };
    let Some(admin) = common::postgres_url() else {
        return;
    };
    let database = common::PgDatabase::create(&admin).await;
    crash_and_recover(&url, &database.url).await;
    database.drop_database().await;
}

async fn crash_and_recover(url: &str, target: &str) {
    let proxy = Proxy::start(host_port(url)).await;
    // Slow enough that the kill lands mid-way.
    proxy.slow_down(4);
    let (scheme, rest) = url.split_once("://").unwrap();
    let (creds, after) = rest.rsplit_once('@').map_or(("", rest), |(c, a)| (c, a));
    let path = after.find(['/', '?']).map_or("", |i| &after[i..]);
    let at = if creds.is_empty() {
        String::new()
    } else {
        format!("{creds}@")
    };
    let proxied = format!("{scheme}://{at}{}{path}", proxy.addr);
    let exchange = unique("crash_exchange_");
    let queue = unique("crash-global-");

    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        exchange.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        queue.as_str().into(),
        exchange.as_str().into(),
        "messages.upsert".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "crash-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut received: Vec<(String, usize)> = Vec::new();
    let mut next = async |received: &mut Vec<(String, usize)>| {
        let d = tokio::time::timeout(common::TIMEOUT, consumer.next())
            .await
            .expect("a message within the timeout")
            .unwrap()
            .unwrap();
        d.ack(BasicAckOptions::default()).await.unwrap();
        let body: Value = serde_json::from_slice(&d.data).unwrap();
        let id = d
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        received.push((id, body["data"]["seq"].as_u64().unwrap() as usize));
    };

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "amqp_crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ZAPIN_AMQP_CRASH_CHILD", target)
        .env("ZAPIN_AMQP_CRASH_URI", &proxied)
        .env("ZAPIN_AMQP_CRASH_EXCHANGE", &exchange)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let enqueued = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("ENQUEUED"))
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(60), enqueued)
            .await
            .unwrap()
            .unwrap()
    );
    while received.len() < 20 {
        next(&mut received).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    proxy.cut();

    let db = open(target, url, &exchange).await;
    let pending = db.outbox_entries().await.unwrap().len();
    assert!(
        pending > 0,
        "the child published everything before the kill"
    );
    let dispatcher = spawn_dispatcher(&db, url);
    let mut distinct = HashSet::new();
    let mut order = Vec::new();
    for (id, seq) in std::mem::take(&mut received) {
        if distinct.insert(id) {
            order.push(seq);
        }
    }
    while order.len() < EVENTS {
        next(&mut received).await;
        for (id, seq) in std::mem::take(&mut received) {
            if distinct.insert(id) {
                order.push(seq);
            }
        }
    }
    assert_eq!(
        order,
        (0..EVENTS).collect::<Vec<_>>(),
        "every event, in order"
    );
    eventually("the outbox to drain after recovery", || async {
        db.outbox_entries().await.unwrap().is_empty().then_some(())
    })
    .await;
    dispatcher.shutdown().await;
    assert!(db.dead_letters().await.unwrap().is_empty());
    db.close().await;
    let _ = ch
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = ch
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
}
