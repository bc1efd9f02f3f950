//! NATS end to end (needs `ZAPIN_TEST_NATS_URL`, e.g. `nats://127.0.0.1:4222`; skipped without
//! it, failing under `CI=true`): a simulator phone sends a message and an async-nats subscriber
//! receives `messages.upsert` with Evolution's envelope on `<instance>.messages.upsert` and on
//! the global `<prefix>.messages.upsert`; the instance's `events` filter; the set/find routes;
//! and a connection cut while 500 events are produced: every event arrives, in order, each with
//! a stable `Nats-Msg-Id` to deduplicate on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod brokers;
mod common;

use std::collections::HashSet;

use brokers::{Gateway, Proxy, broker_url, config, host_port, phone_says, unique};
use common::eventually;
use futures_util::StreamExt;
use serde_json::{Value, json};
use zapin_sim::SimConfig;

struct Got {
    subject: String,
    body: String,
    id: String,
}

async fn next(sub: &mut async_nats::Subscriber) -> Got {
    let msg = tokio::time::timeout(common::TIMEOUT, sub.next())
        .await
        .expect("a message within the timeout")
        .expect("the subscription is open");
    Got {
        subject: msg.subject.to_string(),
        body: String::from_utf8(msg.payload.to_vec()).unwrap(),
        id: msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn phone_message_reaches_instance_and_global_subjects_with_evolutions_envelope() {
    let Some(url) = broker_url("ZAPIN_TEST_NATS_URL") else {
        return;
    };
    let sim = zapin_sim::run(SimConfig {
        seed: Some(31),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("nats");
    let prefix = unique("evo");
    let gw = Gateway::start(config(
        &sim,
        dir.path(),
        &[
            ("NATS_ENABLED", "true".into()),
            ("NATS_URI", url.clone()),
            ("NATS_GLOBAL_ENABLED", "true".into()),
            ("NATS_PREFIX_KEY", prefix.clone()),
            ("NATS_EVENTS_MESSAGES_UPSERT", "true".into()),
        ],
    ))
    .await;
    let client = async_nats::connect(url.as_str()).await.unwrap();
    // Everything of the instance, to see that the filter holds back the other events.
    let mut per_instance = client.subscribe(format!("{name}.>")).await.unwrap();
    let mut global = client
        .subscribe(format!("{prefix}.messages.upsert"))
        .await
        .unwrap();
    client.flush().await.unwrap();

    let (jid, friend) = gw.create_and_link(&sim, &name).await;
    let (status, found) = gw
        .call(reqwest::Method::GET, &format!("/nats/find/{name}"), None)
        .await;
    assert_eq!((status, found), (200, Value::Null));
    let (status, row) = gw
        .call(
            reqwest::Method::POST,
            &format!("/nats/set/{name}"),
            Some(json!({"nats": {"enabled": true, "events": ["MESSAGES_UPSERT"]}})),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    assert_eq!(row["events"], json!(["MESSAGES_UPSERT"]));
    let (status, found) = gw
        .call(reqwest::Method::GET, &format!("/nats/find/{name}"), None)
        .await;
    assert_eq!((status, &found), (200, &row));

    phone_says(&sim, &friend, &jid, "over nats").await;
    // The first message on the instance's subjects is the upsert: connection.update and the
    // other events of the pairing were filtered out (they came before it in the same line).
    let got = next(&mut per_instance).await;
    assert_eq!(got.subject, format!("{name}.messages.upsert"));
    assert!(
        got.body.starts_with(&format!(
            r#"{{"event":"messages.upsert","instance":"{name}","data":"#
        )),
        "{}",
        got.body
    );
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["data"]["message"]["conversation"], "over nats");
    assert_eq!(body["sender"], jid.as_str());
    assert!(body.get("destination").is_none());
    assert_eq!(got.id.len(), 36);
    let got_global = next(&mut global).await;
    assert_eq!(got_global.body, got.body);
    assert_eq!(got_global.id, got.id);
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
}

#[tokio::test]
async fn routes_answer_an_empty_body_when_nats_is_disabled() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(32),
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
            "/nats/set/off",
            Some(json!({"nats": {"enabled": true}})),
        )
        .await;
    assert_eq!((status, text.as_str()), (201, ""));
    let (status, text) = gw
        .call_text(reqwest::Method::GET, "/nats/find/off", None)
        .await;
    assert_eq!((status, text.as_str()), (200, ""));
    gw.stop().await;
}

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
async fn a_connection_cut_while_500_events_are_produced_loses_nothing_and_keeps_the_order() {
    let Some(url) = broker_url("ZAPIN_TEST_NATS_URL") else {
        return;
    };
    let proxy = Proxy::start(host_port(&url)).await;
    let sim = zapin_sim::run(SimConfig {
        seed: Some(33),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("fault");
    let gw = Gateway::start(config(
        &sim,
        dir.path(),
        &[
            ("NATS_ENABLED", "true".into()),
            ("NATS_URI", format!("nats://{}", proxy.addr)),
            ("NATS_GLOBAL_ENABLED", "true".into()),
            ("NATS_PREFIX_KEY", prefix.clone()),
            ("NATS_EVENTS_MESSAGES_UPSERT", "true".into()),
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
            &format!("/nats/set/{name}"),
            Some(json!({"nats": {"enabled": true, "events": ["MESSAGES_UPSERT"]}})),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    // The subscriber talks to the server directly, not through the proxy.
    let client = async_nats::connect(url.as_str()).await.unwrap();
    let mut per_instance = client
        .subscribe(format!("{name}.messages.upsert"))
        .await
        .unwrap();
    let mut global = client
        .subscribe(format!("{prefix}.messages.upsert"))
        .await
        .unwrap();
    client.flush().await.unwrap();

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
    let first = next(&mut per_instance).await;
    assert!(first.body.contains(r#""seq":0"#), "{}", first.body);
    proxy.cut();
    produce(100, 400).await;
    eventually("deliveries to fail while the connection is cut", || async {
        gw.db
            .outbox_entries()
            .await
            .unwrap()
            .iter()
            .any(|r| r.transport == "nats" && r.last_error.is_some())
            .then_some(())
    })
    .await;
    proxy.restore();
    produce(400, 500).await;

    for (what, sub, mut seen_first) in [
        ("instance", &mut per_instance, Some(first)),
        ("global", &mut global, None),
    ] {
        let mut ids = HashSet::new();
        let mut order = Vec::new();
        while order.len() < 500 {
            let got = match seen_first.take() {
                Some(g) => g,
                None => next(sub).await,
            };
            if !ids.insert(got.id.clone()) {
                continue;
            }
            let body: Value = serde_json::from_str(&got.body).unwrap();
            order.push(body["data"]["seq"].as_u64().unwrap() as usize);
        }
        assert_eq!(order, (0..500).collect::<Vec<_>>(), "{what} subject order");
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
}

#[tokio::test]
async fn with_jetstream_a_row_counts_only_once_a_stream_stored_it() {
    let Some(url) = broker_url("ZAPIN_TEST_NATS_URL") else {
        return;
    };
    let sim = zapin_sim::run(SimConfig {
        seed: Some(34),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(config(
        &sim,
        dir.path(),
        &[
            ("NATS_ENABLED", "true".into()),
            ("NATS_URI", url.clone()),
            ("ZAPIN_NATS_JETSTREAM", "true".into()),
        ],
    ))
    .await;
    let name = unique("js");
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
            &format!("/nats/set/{name}"),
            Some(json!({"nats": {"enabled": true, "events": ["MESSAGES_UPSERT"]}})),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    let enqueue = |seq: usize| {
        let db = gw.db.clone();
        let (name, instance_id) = (name.clone(), instance_id.clone());
        async move {
            let mut tx = db.begin().await.unwrap();
            tx.enqueue_event(&instance_id, "MESSAGES_UPSERT", &envelope(&name, seq))
                .await
                .unwrap()
                .unwrap();
            tx.commit().await.unwrap();
        }
    };
    // No stream stores the subject yet: JetStream has no one to ack, the row waits.
    enqueue(0).await;
    eventually("the first attempt to fail without a stream", || async {
        gw.db
            .outbox_entries()
            .await
            .unwrap()
            .iter()
            .any(|r| r.transport == "nats" && r.last_error.is_some())
            .then_some(())
    })
    .await;
    let client = async_nats::connect(url.as_str()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream_name = name.to_uppercase();
    let mut stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: stream_name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    for seq in 1..20 {
        enqueue(seq).await;
    }
    eventually("the outbox to drain into the stream", || async {
        gw.db
            .outbox_entries()
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages, 20, "every event stored once");
    assert!(gw.db.dead_letters().await.unwrap().is_empty());
    js.delete_stream(&stream_name).await.unwrap();
    gw.stop().await;
}
