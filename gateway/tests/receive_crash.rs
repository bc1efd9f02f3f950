//! No inbound message is lost or doubled when `zapin serve` dies, wherever it dies.
//!
//! The real binary runs against an in-process simulator and a real webhook receiver, both of which
//! outlive it. Each scenario starts `zapin serve` with `ZAPIN_CRASHPOINT=<point>:<n>`, lets a phone
//! send a burst of texts (to the instance, or to a group it is in), waits for the process to abort
//! at that point, starts it again without the crash point, and checks that every message reaches
//! the webhook as exactly one `messages.upsert` event (deliveries of one event are at least once and
//! carry a stable `x-zapin-event-id`), in the order the phone sent them, and that the session still
//! decrypts what comes next. The points cover every step of the receive path: before and after the
//! Signal commit, after the receipt left, after the gateway stored the message, after the engine was
//! told. A last test kills the process with SIGKILL from outside in the middle of 40 messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::Receiver;
use common::serve::Serve;
use serde_json::{Value, json};
use zapin_sim::{RunningSim, SimConfig};

const KEY: &str = "receive-crash-key";
const WAIT: Duration = Duration::from_secs(30);

struct World {
    sim: RunningSim,
    receiver: Receiver,
    data: tempfile::TempDir,
    database_url: Option<String>,
    owner: String,
    friend: String,
    group: String,
}

impl World {
    fn spawn(&self, crashpoint: Option<&str>) -> Serve {
        self.spawn_with(crashpoint, &[])
    }

    fn spawn_with(&self, crashpoint: Option<&str>, extra: &[(&str, &str)]) -> Serve {
        let data_dir = self.data.path().join("data");
        let ws = self.sim.ws_url();
        let root = hex::encode(self.sim.root_public_key().0);
        let mut env = vec![
            ("ZAPIN_DATA_DIR", data_dir.to_str().unwrap()),
            ("AUTHENTICATION_API_KEY", KEY),
            ("ZAPIN_WA_WS_URL", ws.as_str()),
            ("ZAPIN_WA_ROOT_PUBKEY", root.as_str()),
            ("LOG_LEVEL", "ERROR,WARN,INFO"),
            // On PostgreSQL a dead process's webhook leases (request timeout + 5 s) hold back
            // the instance's later events: keep them short.
            ("WEBHOOK_REQUEST_TIMEOUT_MS", "3000"),
        ];
        if let Some(url) = &self.database_url {
            env.push(("DATABASE_CONNECTION_URI", url));
        }
        if let Some(point) = crashpoint {
            env.push(("ZAPIN_CRASHPOINT", point));
        }
        env.extend_from_slice(extra);
        Serve::start(&env)
    }

    async fn phone_sends(&self, from: &str, to: &str, id: &str, text: &str) {
        let resp = reqwest::Client::new()
            .post(format!(
                "{}/sim/accounts/{from}/messages",
                self.sim.http_url()
            ))
            .json(&json!({"to": to, "text": text, "id": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "{}",
            resp.text().await.unwrap()
        );
    }

    /// `messages.upsert` events by message id: (distinct event ids, first position seen).
    fn upserts(&self) -> HashMap<String, (Vec<String>, usize)> {
        let mut out: HashMap<String, (Vec<String>, usize)> = HashMap::new();
        for (pos, seen) in self.receiver.seen().iter().enumerate() {
            let body = seen.json();
            if body["event"] != "messages.upsert" {
                continue;
            }
            let id = body["data"]["key"]["id"].as_str().unwrap().to_owned();
            let event = seen.event_id();
            let entry = out.entry(id).or_insert_with(|| (Vec::new(), pos));
            if !entry.0.contains(&event) {
                entry.0.push(event);
            }
        }
        out
    }

    /// Waits until every id in `ids` reached the webhook, then checks each came as one event
    /// and in the order of `ids`.
    async fn expect_exactly_once_in_order(&self, ids: &[String], what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.upserts();
            if ids.iter().all(|id| got.contains_key(id)) {
                let mut positions = Vec::new();
                for id in ids {
                    let (events, pos) = &got[id];
                    assert_eq!(
                        events.len(),
                        1,
                        "{what}: message {id} was reported as {} events",
                        events.len()
                    );
                    positions.push(*pos);
                }
                assert!(
                    positions.windows(2).all(|w| w[0] < w[1]),
                    "{what}: messages reached the webhook out of order: {ids:?} at {positions:?}"
                );
                return;
            }
            let missing: Vec<_> = ids.iter().filter(|id| !got.contains_key(*id)).collect();
            assert!(
                Instant::now() < deadline,
                "{what}: never reached the webhook: {missing:?}"
            );
            // Woken by the next delivery (or a short timeout, in case a duplicate-free burst ended).
            let next = self.receiver.seen().len() + 1;
            let _ = tokio::time::timeout(Duration::from_millis(250), self.receiver.wait_for(next))
                .await;
        }
    }
}

/// Waits for the process to end by itself: the crash point fired.
fn wait_for_abort(serve: Serve, what: &str) {
    let (status, log) = serve.wait(WAIT);
    assert!(
        !status.success(),
        "{what}: zapin exited cleanly instead of aborting:\n{log}"
    );
    assert!(
        log.contains("crash point"),
        "{what}: zapin ended without reaching the crash point:\n{log}"
    );
}

async fn api(
    serve: &Serve,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", serve.url))
        .header("apikey", KEY);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn sim_post(sim: &RunningSim, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.http_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    resp.json().await.unwrap()
}

/// A simulator with the owner's phone, a friend and a group of the three, and an instance linked
/// to the owner whose webhook reports `messages.upsert`.
async fn world(database_url: Option<String>, seed: u64) -> World {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(seed),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let owner = sim_post(&sim, "/sim/accounts", json!({"push_name": "Owner"})).await["phone"]
        .as_str()
        .unwrap()
        .to_owned();
    let friend = sim_post(&sim, "/sim/accounts", json!({"push_name": "Friend"})).await["phone"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut w = World {
        sim,
        receiver,
        data: tempfile::tempdir().unwrap(),
        database_url,
        owner,
        friend,
        group: String::new(),
    };
    let serve = w.spawn(None);
    let (status, body) = api(
        &serve,
        reqwest::Method::POST,
        "/instance/create",
        Some(json!({
            "instanceName": "kp",
            "integration": "WHATSAPP-BAILEYS",
            "webhook": {"url": format!("{}/hook", w.receiver.base), "events": ["MESSAGES_UPSERT", "CONNECTION_UPDATE"]}
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let deadline = Instant::now() + WAIT;
    let code = loop {
        let (status, body) = api(&serve, reqwest::Method::GET, "/instance/connect/kp", None).await;
        assert_eq!(status, 200, "{body}");
        if let Some(code) = body["code"].as_str() {
            break code.to_owned();
        }
        assert!(Instant::now() < deadline, "no QR");
    };
    sim_post(
        &w.sim,
        &format!("/sim/accounts/{}/scan", w.owner),
        json!({"qr": code}),
    )
    .await;
    wait_open(&serve).await;
    let group = sim_post(
        &w.sim,
        "/sim/groups",
        json!({"creator": w.friend, "subject": "crash", "participants": [w.owner]}),
    )
    .await;
    w.group = group["jid"].as_str().unwrap().to_owned();
    drop(serve);
    w
}

async fn wait_open(serve: &Serve) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, body) = api(
            serve,
            reqwest::Method::GET,
            "/instance/connectionState/kp",
            None,
        )
        .await;
        if body["instance"]["state"] == "open" {
            return;
        }
        assert!(Instant::now() < deadline, "instance never opened: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One scenario: `burst` texts to `to` while zapin runs with `point`, then recovery.
async fn crash_and_recover(w: &World, point: &str, to: &str, tag: &str, burst: usize) {
    let what = format!("{point} ({tag})");
    let serve = w.spawn(Some(point));
    let ids: Vec<String> = (0..burst).map(|_| next_id(tag)).collect();
    for (i, id) in ids.iter().enumerate() {
        w.phone_sends(&w.friend, to, id, &format!("{what} #{i}"))
            .await;
    }
    wait_for_abort(serve, &what);
    let serve = w.spawn(None);
    w.expect_exactly_once_in_order(&ids, &what).await;
    // The ratchet is where it should be: the next message decrypts.
    let after = next_id(tag);
    w.phone_sends(&w.friend, to, &after, &format!("{what} after"))
        .await;
    w.expect_exactly_once_in_order(std::slice::from_ref(&after), &what)
        .await;
    drop(serve);
}

/// A message id no other scenario of this process uses.
fn next_id(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("3EB0{}{n:06X}", tag.to_uppercase())
}

const POINTS: [&str; 5] = [
    "receive.decrypted",
    "receive.committed",
    "receive.acked",
    "bridge.stored",
    "bridge.confirmed",
];

async fn every_point(database_url: Option<String>, seed: u64, nths: &[u32]) {
    let w = world(database_url, seed).await;
    let dm = format!("{}@s.whatsapp.net", w.owner);
    for point in POINTS {
        // The confirmation point is reached once per batch of stored messages, not per message.
        let nths = if point == "bridge.confirmed" {
            &[1][..]
        } else {
            nths
        };
        for n in nths {
            let spec = format!("{point}:{n}");
            crash_and_recover(&w, &spec, &dm, "d", 5).await;
            crash_and_recover(&w, &spec, &w.group.clone(), "g", 5).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receive_step_survives_a_crash_on_sqlite() {
    every_point(None, 61, &[1, 3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receive_step_survives_a_crash_on_postgres() {
    let Some(admin) = common::postgres_url() else {
        return;
    };
    let db = common::PgDatabase::create(&admin).await;
    every_point(Some(db.url.clone()), 62, &[2]).await;
    db.drop_database().await;
}

/// The measured bug: 40 texts, SIGKILL after the 16th reached the webhook while the phone keeps
/// sending, restart: 40 of 40, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_forty_messages_loses_none() {
    let w = std::sync::Arc::new(world(None, 63).await);
    let dm = format!("{}@s.whatsapp.net", w.owner);
    let serve = w.spawn(None);
    wait_open(&serve).await;
    let ids: Vec<String> = (0..40).map(|_| next_id("f")).collect();
    for (i, id) in ids.iter().take(16).enumerate() {
        w.phone_sends(&w.friend, &dm, id, &format!("forty #{i}"))
            .await;
    }
    w.expect_exactly_once_in_order(&ids[..16], "the first sixteen")
        .await;
    // The other 24 go out while the process dies.
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel();
    let sender = {
        let (w, dm, rest) = (w.clone(), dm.clone(), ids[16..].to_vec());
        tokio::spawn(async move {
            for (i, id) in rest.iter().enumerate() {
                w.phone_sends(&w.friend, &dm, id, &format!("forty #{}", i + 16))
                    .await;
                let _ = sent_tx.send(());
            }
        })
    };
    sent_rx.recv().await.unwrap();
    serve.kill(); // SIGKILL
    sender.await.unwrap();
    let serve = w.spawn(None);
    w.expect_exactly_once_in_order(&ids, "forty messages with a SIGKILL")
        .await;
    drop(serve);
}

/// A gateway that falls behind the engine's event stream (a buffer of 2 events, and a burst of
/// 30 messages waiting offline at login) loses none of them: they are stored from the inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_gateway_stores_every_message_from_the_inbox() {
    let w = world(None, 64).await;
    let dm = format!("{}@s.whatsapp.net", w.owner);
    // Sent while zapin is down: delivered as one offline burst at the next login.
    let ids: Vec<String> = (0..30).map(|_| next_id("l")).collect();
    for (i, id) in ids.iter().enumerate() {
        w.phone_sends(&w.friend, &dm, id, &format!("burst #{i}"))
            .await;
    }
    let serve = w.spawn_with(None, &[("ZAPIN_EVENT_BUFFER", "2")]);
    let deadline = Instant::now() + WAIT;
    loop {
        let got = w.upserts();
        if ids.iter().all(|id| got.contains_key(id)) {
            for id in &ids {
                assert_eq!(got[id].0.len(), 1, "message {id} reported twice");
            }
            break;
        }
        assert!(Instant::now() < deadline, "messages lost behind the lag");
        let next = w.receiver.seen().len() + 1;
        let _ = tokio::time::timeout(Duration::from_millis(250), w.receiver.wait_for(next)).await;
    }
    drop(serve);
}
