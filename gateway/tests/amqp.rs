//! RabbitMQ end to end (needs `ZAPIN_TEST_AMQP_URL`, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`;
//! skipped without it, failing under `CI=true`): a simulator phone sends a message and a lapin
//! consumer receives `messages.upsert` with Evolution's envelope on the per-instance queue and
//! on the global queue; the instance's `events` filter; the set/find routes; and a broker cut
//! while 500 events are produced: every event arrives, in order, each with a stable
//! `message_id` to deduplicate on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod brokers;
mod common;

use std::collections::HashSet;

use brokers::{Gateway, Proxy, broker_url, config, host_port, phone_says, unique};
use common::eventually;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};
use zapin_sim::SimConfig;

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    args
}

async fn channel(url: &str) -> (Connection, Channel) {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

/// Declares `queue` as Evolution does (durable quorum), bound to the topic `exchange` by `key`.
async fn bound_queue(ch: &Channel, exchange: &str, queue: &str, key: &str) {
    ch.exchange_declare(
        exchange.into(),
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
        queue.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        quorum(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

/// One received message: its body and AMQP `message_id`.
struct Got {
    body: String,
    message_id: String,
    routing_key: String,
}

async fn next(consumer: &mut lapin::Consumer) -> Got {
    let delivery = tokio::time::timeout(common::TIMEOUT, consumer.next())
        .await
        .expect("a message within the timeout")
        .expect("the consumer is open")
        .unwrap();
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    Got {
        body: String::from_utf8(delivery.data.clone()).unwrap(),
        message_id: delivery
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        routing_key: delivery.routing_key.to_string(),
    }
}

async fn consume(ch: &Channel, queue: &str) -> lapin::Consumer {
    ch.basic_consume(
        queue.into(),
        unique("test-").as_str().into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap()
}

async fn cleanup(ch: &Channel, queues: &[&str], exchanges: &[&str]) {
    for q in queues {
        let _ = ch
            .queue_delete((*q).into(), QueueDeleteOptions::default())
            .await;
    }
    for e in exchanges {
        let _ = ch
            .exchange_delete((*e).into(), ExchangeDeleteOptions::default())
            .await;
    }
}

#[tokio::test]
async fn phone_message_reaches_instance_and_global_queues_with_evolutions_envelope() {
    let Some(url) = broker_url("ZAPIN_TEST_AMQP_URL") else {
        return;
    };
    let sim = zapin_sim::run(SimConfig {
        seed: Some(21),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("amqp");
    let exchange = unique("evo_exchange_");
    let prefix = unique("evo");
    let gw = Gateway::start(config(
        &sim,
        dir.path(),
        &[
            ("RABBITMQ_ENABLED", "true".into()),
            ("RABBITMQ_URI", url.clone()),
            ("RABBITMQ_EXCHANGE_NAME", exchange.clone()),
            ("RABBITMQ_GLOBAL_ENABLED", "true".into()),
            ("RABBITMQ_PREFIX_KEY", prefix.clone()),
            ("RABBITMQ_EVENTS_MESSAGES_UPSERT", "true".into()),
        ],
    ))
    .await;

    // The routes: before any set, find answers null; set stores the contract's row.
    let (status, text) = gw
        .call_text(
            reqwest::Method::GET,
            &format!("/rabbitmq/find/{name}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "no such instance yet: {text}");
    let (jid, friend) = gw.create_and_link(&sim, &name).await;
    let (status, found) = gw
        .call(
            reqwest::Method::GET,
            &format!("/rabbitmq/find/{name}"),
            None,
        )
        .await;
    assert_eq!((status, found), (200, Value::Null));
    let (status, bad) = gw
        .call(
            reqwest::Method::POST,
            &format!("/rabbitmq/set/{name}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    let (status, row) = gw
        .call(
            reqwest::Method::POST,
            &format!("/rabbitmq/set/{name}"),
            Some(json!({"rabbitmq": {"enabled": true, "events": ["MESSAGES_UPSERT"]}})),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    assert_eq!(row["enabled"], true);
    assert_eq!(row["events"], json!(["MESSAGES_UPSERT"]));
    for key in ["id", "createdAt", "updatedAt", "instanceId"] {
        assert!(row[key].is_string(), "{key} in {row}");
    }
    let (status, found) = gw
        .call(
            reqwest::Method::GET,
            &format!("/rabbitmq/find/{name}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(found, row);

    // Evolution's names: per instance, exchange <instance> and queue <instance>.<event>;
    // globally, exchange RABBITMQ_EXCHANGE_NAME and queue <prefix>.<event>. A queue for an
    // event the instance did not subscribe to stays empty.
    let (_conn, ch) = channel(&url).await;
    let instance_queue = format!("{name}.messages.upsert");
    let filtered_queue = format!("{name}.connection.update");
    let global_queue = format!("{prefix}.messages.upsert");
    bound_queue(&ch, &name, &instance_queue, "messages.upsert").await;
    bound_queue(&ch, &name, &filtered_queue, "connection.update").await;
    bound_queue(&ch, &exchange, &global_queue, "messages.upsert").await;
    let mut per_instance = consume(&ch, &instance_queue).await;
    let mut global = consume(&ch, &global_queue).await;

    phone_says(&sim, &friend, &jid, "over rabbit").await;
    let got = next(&mut per_instance).await;
    assert_eq!(got.routing_key, "messages.upsert");
    assert!(
        got.body.starts_with(&format!(
            r#"{{"event":"messages.upsert","instance":"{name}","data":"#
        )),
        "Evolution's key order: {}",
        got.body
    );
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["data"]["message"]["conversation"], "over rabbit");
    assert_eq!(body["data"]["key"]["fromMe"], false);
    assert_eq!(body["sender"], jid.as_str());
    assert!(body.get("destination").is_none(), "{body}");
    for key in ["date_time", "server_url", "apikey"] {
        assert!(body.get(key).is_some(), "{key} in {body}");
    }
    assert_eq!(got.message_id.len(), 36, "a UUID event id");

    let got_global = next(&mut global).await;
    assert_eq!(got_global.body, got.body);
    assert_eq!(got_global.message_id, got.message_id, "one id per event");

    // connection.update was produced before the message (pairing) and the line is ordered,
    // so had it been routed to the instance's exchange it would be there by now.
    let none = ch
        .basic_get(
            filtered_queue.as_str().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap();
    assert!(
        none.is_none(),
        "the events filter lets only MESSAGES_UPSERT through"
    );

    // Switching the instance off stops per-instance delivery; the global queue still gets it.
    let (status, row) = gw
        .call(
            reqwest::Method::POST,
            &format!("/rabbitmq/set/{name}"),
            Some(json!({"rabbitmq": {"enabled": false, "events": ["MESSAGES_UPSERT"]}})),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    assert_eq!(row["events"], json!([]));
    phone_says(&sim, &friend, &jid, "global only").await;
    let got_global = next(&mut global).await;
    assert!(got_global.body.contains("global only"));
    eventually("the outbox to drain", || async {
        gw.db
            .outbox_entries()
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    let none = ch
        .basic_get(
            instance_queue.as_str().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap();
    assert!(
        none.is_none(),
        "disabled: nothing more on the instance queue"
    );
    assert!(gw.db.dead_letters().await.unwrap().is_empty());

    gw.stop().await;
    cleanup(
        &ch,
        &[&instance_queue, &filtered_queue, &global_queue],
        &[&name, &exchange],
    )
    .await;
}

#[tokio::test]
async fn routes_answer_an_empty_body_when_rabbitmq_is_disabled() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(22),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(config(&sim, dir.path(), &[])).await;
    let (status, created) = gw
        .call(
            reqwest::Method::POST,
            "/instance/create",
            Some(json!({"instanceName": "off", "integration": "WHATSAPP-BAILEYS"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, text) = gw
        .call_text(
            reqwest::Method::POST,
            "/rabbitmq/set/off",
            Some(json!({"rabbitmq": {"enabled": true, "events": ["MESSAGES_UPSERT"]}})),
        )
        .await;
    assert_eq!((status, text.as_str()), (201, ""));
    let (status, text) = gw
        .call_text(reqwest::Method::GET, "/rabbitmq/find/off", None)
        .await;
    assert_eq!((status, text.as_str()), (200, ""));
    // Validation still runs first, as in Evolution.
    let (status, _) = gw
        .call_text(
            reqwest::Method::POST,
            "/rabbitmq/set/off",
            Some(json!({"rabbitmq": {"enabled": "yes"}})),
        )
        .await;
    assert_eq!(status, 400);
    gw.stop().await;
}

/// The envelope the fault test enqueues: a sequence number in `data`.
fn envelope(instance: &str, seq: usize) -> Value {
    json!({
        "event": "messages.upsert",
        "instance": instance,
        "data": {"seq": seq},
        "destination": "",
        "date_time": "2026-01-01T00:00:00.000Z",
        "server_url": "",
        "apikey": null,
    })
}

#[tokio::test]
async fn a_broker_cut_while_500_events_are_produced_loses_nothing_and_keeps_the_order() {
    let Some(url) = broker_url("ZAPIN_TEST_AMQP_URL") else {
        return;
    };
    let proxy = Proxy::start(host_port(&url)).await;
    let (scheme, rest) = url.split_once("://").unwrap();
    let (creds, after) = rest.rsplit_once('@').map_or(("", rest), |(c, a)| (c, a));
    let path = after.find(['/', '?']).map_or("", |i| &after[i..]);
    let at = if creds.is_empty() {
        String::new()
    } else {
        format!("{creds}@")
    };
    let proxied = format!("{scheme}://{at}{}{path}", proxy.addr);

    let sim = zapin_sim::run(SimConfig {
        seed: Some(23),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exchange = unique("evo_fault_");
    let gw = Gateway::start(config(
        &sim,
        dir.path(),
        &[
            ("RABBITMQ_ENABLED", "true".into()),
            ("RABBITMQ_URI", proxied),
            ("RABBITMQ_EXCHANGE_NAME", exchange.clone()),
            ("RABBITMQ_GLOBAL_ENABLED", "true".into()),
            ("RABBITMQ_EVENTS_MESSAGES_UPSERT", "true".into()),
        ],
    ))
    .await;
    let name = unique("fault");
    let (status, created) = gw
        .call(
            reqwest::Method::POST,
            "/instance/create",
            Some(json!({"instanceName": name, "integration": "WHATSAPP-BAILEYS"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let instance_id = created["instance"]["instanceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, row) = gw
        .call(
            reqwest::Method::POST,
            &format!("/rabbitmq/set/{name}"),
            Some(json!({"rabbitmq": {"enabled": true, "events": ["MESSAGES_UPSERT"]}})),
        )
        .await;
    assert_eq!(status, 201, "{row}");

    // The consumer talks to the broker directly, not through the proxy.
    let (_conn, ch) = channel(&url).await;
    let instance_queue = format!("{name}.messages.upsert");
    let global_queue = unique("fault-global-");
    bound_queue(&ch, &name, &instance_queue, "messages.upsert").await;
    bound_queue(&ch, &exchange, &global_queue, "messages.upsert").await;
    let mut per_instance = consume(&ch, &instance_queue).await;
    let mut global = consume(&ch, &global_queue).await;

    let produce = |from: usize, to: usize| {
        let db = gw.db.clone();
        let (name, instance_id) = (name.clone(), instance_id.clone());
        async move {
            for seq in from..to {
                let mut tx = db.begin().await.unwrap();
                tx.enqueue_event(&instance_id, "MESSAGES_UPSERT", &envelope(&name, seq))
                    .await
                    .unwrap()
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }
    };
    produce(0, 100).await;
    // Some got through before the cut.
    let first = next(&mut per_instance).await;
    assert!(first.body.contains(r#""seq":0"#), "{}", first.body);
    proxy.cut();
    produce(100, 400).await;
    // While the broker is unreachable the rows wait in the outbox.
    eventually("deliveries to fail while the broker is cut", || async {
        gw.db
            .outbox_entries()
            .await
            .unwrap()
            .iter()
            .any(|r| r.transport == "rabbitmq" && r.last_error.is_some())
            .then_some(())
    })
    .await;
    proxy.restore();
    produce(400, 500).await;

    // Every event on both queues, in order; duplicates (a confirm lost in the cut) carry the
    // same message_id and are dropped as a consumer would.
    for (what, consumer, mut seen_first) in [
        ("instance", &mut per_instance, Some(first)),
        ("global", &mut global, None),
    ] {
        let mut ids = HashSet::new();
        let mut order = Vec::new();
        while order.len() < 500 {
            let got = match seen_first.take() {
                Some(g) => g,
                None => next(consumer).await,
            };
            if !ids.insert(got.message_id.clone()) {
                continue;
            }
            let body: Value = serde_json::from_str(&got.body).unwrap();
            order.push(body["data"]["seq"].as_u64().unwrap() as usize);
        }
        assert_eq!(order, (0..500).collect::<Vec<_>>(), "{what} queue order");
    }
    eventually("the outbox to drain", || async {
        gw.db
            .outbox_entries()
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    assert!(gw.db.dead_letters().await.unwrap().is_empty());
    gw.stop().await;
    cleanup(&ch, &[&instance_queue, &global_queue], &[&name, &exchange]).await;
}

#[tokio::test]
async fn create_with_a_rabbitmq_object_enables_it_and_fetch_instances_shows_the_row() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(24),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: no event is routed to RabbitMQ in this test.
    let gw = Gateway::start(config(
        &sim,
        dir.path(),
        &[
            ("RABBITMQ_ENABLED", "true".into()),
            ("RABBITMQ_URI", "amqp://guest:guest@127.0.0.1:1/%2f".into()),
        ],
    ))
    .await;
    let (status, created) = gw
        .call(
            reqwest::Method::POST,
            "/instance/create",
            Some(json!({
                "instanceName": "withrabbit",
                "integration": "WHATSAPP-BAILEYS",
                "rabbitmq": {"events": ["MESSAGES_UPSERT", "CONNECTION_UPDATE"]},
                "nats": {"events": []},
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["rabbitmq"],
        json!({}),
        "echoes the request's enabled"
    );
    let (status, row) = gw
        .call(reqwest::Method::GET, "/rabbitmq/find/withrabbit", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(row["enabled"], true);
    assert_eq!(
        row["events"],
        json!(["MESSAGES_UPSERT", "CONNECTION_UPDATE"])
    );
    let (status, list) = gw
        .call(reqwest::Method::GET, "/instance/fetchInstances", None)
        .await;
    assert_eq!(status, 200, "{list}");
    let inst = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "withrabbit")
        .unwrap();
    assert_eq!(inst["Rabbitmq"], row);
    // NATS is disabled in this environment: its object is ignored.
    assert_eq!(inst["Nats"], Value::Null);
    let (status, bad) = gw
        .call(
            reqwest::Method::POST,
            "/instance/create",
            Some(json!({
                "instanceName": "badrabbit",
                "integration": "WHATSAPP-BAILEYS",
                "rabbitmq": {"events": ["NOT_AN_EVENT"]},
            })),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    gw.stop().await;
}
