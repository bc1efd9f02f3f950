//! No message lost, none doubled: the real `zapin serve` binary is aborted at each step of a
//! sendText (`ZAPIN_CRASHPOINT`), then started again, against an in-process simulator and a real
//! webhook receiver.
//!
//! | point | what is durable at the crash |
//! |---|---|
//! | `send.reserved` | the message row (PENDING) and its pending send; maybe the ratchet state (the two commit concurrently); nothing on the wire |
//! | `send.encrypted` | both; nothing on the wire |
//! | `send.written` | the stanza was written to the socket; no server ack yet |
//!
//! For each point, after the restart: the phone holds the text exactly once, under the id of the
//! one message row the API has for it; that row ends delivered (`DELIVERY_ACK`), reported by
//! `messages.update`, announced once by `send.message`, never `ERROR`. With
//! `ZAPIN_SEND_RESEND_WINDOW_SECS=0` a send cut off before the wire ends `ERROR` instead, with a
//! `messages.update`, and the phone never gets it. A sendMedia cut off at `send.encrypted` is sent
//! again from its stored message (the uploaded blob's keys, not the file): the phone decrypts the
//! very bytes, once, under the row's id. Once on SQLite, once on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::serve::Serve;
use common::{Receiver, eventually};
use serde_json::{Value, json};
use zapin_sim::{RunningSim, SimConfig};

const KEY: &str = "send-crash-key";
const MASTER_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const STARTUP: Duration = Duration::from_secs(30);
const POINTS: [&str; 3] = ["send.reserved", "send.encrypted", "send.written"];

#[tokio::test]
async fn every_send_crash_point_ends_in_one_consistent_state_on_sqlite() {
    run(None).await;
}

#[tokio::test]
async fn every_send_crash_point_ends_in_one_consistent_state_on_postgres() {
    let Some(admin) = common::postgres_url() else {
        return;
    };
    let database = common::PgDatabase::create(&admin).await;
    run(Some(&database.url)).await;
    database.drop_database().await;
}

/// A running `zapin serve` (the shared test harness) and what this test asks of it.
struct Gateway(Serve);

impl Gateway {
    fn start(env: &Env, crashpoint: Option<&str>, window: Option<&str>) -> Self {
        let mut vars = vec![
            ("ZAPIN_DATA_DIR", env.data_dir.as_str()),
            ("AUTHENTICATION_API_KEY", KEY),
            ("ZAPIN_MASTER_KEY", MASTER_KEY),
            ("ZAPIN_WA_WS_URL", env.ws_url.as_str()),
            ("ZAPIN_WA_ROOT_PUBKEY", env.root.as_str()),
            ("LOG_LEVEL", "ERROR,WARN,INFO"),
            // A dead process's webhook leases (request timeout + 5 s) hold back later events.
            ("WEBHOOK_REQUEST_TIMEOUT_MS", "3000"),
        ];
        if let Some(url) = &env.database_url {
            vars.push(("DATABASE_CONNECTION_URI", url));
        }
        if let Some(point) = crashpoint {
            vars.push(("ZAPIN_CRASHPOINT", point));
        }
        if let Some(window) = window {
            vars.push(("ZAPIN_SEND_RESEND_WINDOW_SECS", window));
        }
        Self(Serve::start(&vars))
    }

    fn url(&self) -> &str {
        &self.0.url
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url()))
            .header("apikey", KEY)
            .timeout(Duration::from_secs(20));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits for the process to end by itself at the crash point, and checks that it was that.
    async fn wait_for_crash(self, point: &str) {
        let (status, log) = tokio::task::spawn_blocking(move || self.0.wait(STARTUP))
            .await
            .unwrap();
        assert!(!status.success(), "{status:?}");
        assert!(
            log.contains(&format!("crash point {point} reached")),
            "{log}"
        );
    }

    /// SIGTERM and wait for a clean exit.
    async fn stop(self) {
        let (status, log) = tokio::task::spawn_blocking(move || self.0.stop())
            .await
            .unwrap();
        assert!(status.success(), "{status:?}\n{log}");
    }

    async fn wait_open(&self) {
        eventually("the instance to be open", || async {
            let (_, body) = self
                .call(
                    reqwest::Method::GET,
                    "/instance/connectionState/crash",
                    None,
                )
                .await;
            (body["instance"]["state"] == "open").then_some(())
        })
        .await;
    }

    /// The instance's own messages to `chat` whose text is `text`.
    async fn rows_with_text(&self, chat: &str, text: &str) -> Vec<Value> {
        let (status, found) = self
            .call(
                reqwest::Method::POST,
                "/chat/findMessages/crash",
                Some(json!({"where": {"key": {"remoteJid": chat, "fromMe": true}}})),
            )
            .await;
        assert_eq!(status, 200, "{found}");
        found["messages"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["message"]["conversation"] == text)
            .cloned()
            .collect()
    }

    /// The instance's own image messages to `chat` with `caption`.
    async fn images_with_caption(&self, chat: &str, caption: &str) -> Vec<Value> {
        let (status, found) = self
            .call(
                reqwest::Method::POST,
                "/chat/findMessages/crash",
                Some(json!({"where": {"key": {"remoteJid": chat, "fromMe": true}}})),
            )
            .await;
        assert_eq!(status, 200, "{found}");
        found["messages"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["message"]["imageMessage"]["caption"] == caption)
            .cloned()
            .collect()
    }
}

struct Env {
    data_dir: String,
    ws_url: String,
    root: String,
    database_url: Option<String>,
}

async fn sim_post(sim: &RunningSim, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.http_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// What the phone received from `from` (a JID) with `text`.
async fn at_phone(sim: &RunningSim, phone: &str, from: &str, text: &str) -> Vec<Value> {
    let got: Value = reqwest::get(format!("{}/sim/accounts/{phone}/messages", sim.http_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    got.as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == from && m["text"] == text)
        .cloned()
        .collect()
}

/// Webhook bodies of `event` about message `id`.
fn events_about(receiver: &Receiver, event: &str, id: &str) -> Vec<Value> {
    let mut seen_ids = BTreeSet::new();
    receiver
        .seen()
        .into_iter()
        // A delivery in flight at a crash may be repeated; count each event once.
        .filter(|s| seen_ids.insert(s.event_id()))
        .map(|s| s.json())
        .filter(|b| {
            b["event"] == event && (b["data"]["keyId"] == id || b["data"]["key"]["id"] == id)
        })
        .collect()
}

async fn run(database_url: Option<&str>) {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(23),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        data_dir: dir.path().join("data").display().to_string(),
        ws_url: sim.ws_url(),
        root: hex::encode(sim.root_public_key().0),
        database_url: database_url.map(str::to_owned),
    };
    let (status, body) = sim_post(&sim, "/sim/accounts", json!({"push_name": "Owner"})).await;
    assert_eq!(status, 201, "{body}");
    let owner = body["phone"].as_str().unwrap().to_owned();
    let owner_jid = format!("{owner}@s.whatsapp.net");
    let (status, body) = sim_post(&sim, "/sim/accounts", json!({"push_name": "Peer"})).await;
    assert_eq!(status, 201, "{body}");
    let peer = body["phone"].as_str().unwrap().to_owned();
    let chat = format!("{peer}@s.whatsapp.net");

    // Pair once; every later start restores the session without a QR.
    let serve = Gateway::start(&env, None, None);
    let (status, created) = serve
        .call(
            reqwest::Method::POST,
            "/instance/create",
            Some(json!({
                "instanceName": "crash",
                "integration": "WHATSAPP-BAILEYS",
                "webhook": {"url": format!("{}/hook", receiver.base),
                            "events": ["SEND_MESSAGE", "MESSAGES_UPDATE"]}
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let qr = eventually("a QR from connect", || async {
        let (_, body) = serve
            .call(reqwest::Method::GET, "/instance/connect/crash", None)
            .await;
        body.get("code").and_then(Value::as_str).map(str::to_owned)
    })
    .await;
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{owner}/scan"),
        json!({"qr": qr}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serve.wait_open().await;
    serve.stop().await;

    for point in POINTS {
        let text = format!("crash at {point}");
        let serve = Gateway::start(&env, Some(point), None);
        serve.wait_open().await;
        let sent = reqwest::Client::new()
            .post(format!("{}/message/sendText/crash", serve.url()))
            .header("apikey", KEY)
            .timeout(Duration::from_secs(20))
            .json(&json!({"number": peer, "text": text}))
            .send()
            .await;
        assert!(
            sent.as_ref().map_or(true, |r| !r.status().is_success()),
            "the send was answered before the crash: {sent:?}"
        );
        serve.wait_for_crash(point).await;

        // Restart: the pending send is sent again under its id and settles.
        let serve = Gateway::start(&env, None, None);
        let id = eventually("the reserved row", || async {
            let rows = serve.rows_with_text(&chat, &text).await;
            rows.first()
                .and_then(|r| r["key"]["id"].as_str())
                .map(str::to_owned)
        })
        .await;
        eventually("messages.update DELIVERY_ACK", || {
            let found = events_about(&receiver, "messages.update", &id)
                .iter()
                .any(|b| b["data"]["status"] == "DELIVERY_ACK");
            async move { found.then_some(()) }
        })
        .await;
        let rows = serve.rows_with_text(&chat, &text).await;
        assert_eq!(rows.len(), 1, "{point}: one row: {rows:?}");
        assert_eq!(
            rows[0]["MessageUpdate"][0]["status"], "DELIVERY_ACK",
            "{point}: {rows:?}"
        );
        // The phone has it once, under that id (a second copy under another id would show).
        let got = at_phone(&sim, &peer, &owner_jid, &text).await;
        if got.len() != 1 {
            let inbox: Value =
                reqwest::get(format!("{}/sim/accounts/{peer}/messages", sim.http_url()))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
            panic!("{point}: {got:?}; inbox {inbox}");
        }
        assert_eq!(got[0]["id"], id.as_str(), "{point}");
        // send.message is enqueued after the write, the ack's update may be delivered first.
        eventually("send.message", || {
            let found = !events_about(&receiver, "send.message", &id).is_empty();
            async move { found.then_some(()) }
        })
        .await;
        let announced = events_about(&receiver, "send.message", &id);
        assert_eq!(announced.len(), 1, "{point}: {announced:?}");
        assert!(
            events_about(&receiver, "messages.update", &id)
                .iter()
                .all(|b| b["data"]["status"] != "ERROR"),
            "{point}"
        );
        serve.stop().await;
    }

    // A media send cut off after its upload and reservation, before the wire: the restart sends
    // the stored message (same blob and keys, no new upload) under the row's id, once.
    let picture = {
        let img = image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([x as u8, y as u8, 3]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let caption = "image across a crash";
    let serve = Gateway::start(&env, Some("send.encrypted"), None);
    serve.wait_open().await;
    let sent = reqwest::Client::new()
        .post(format!("{}/message/sendMedia/crash", serve.url()))
        .header("apikey", KEY)
        .timeout(Duration::from_secs(20))
        .json(&json!({"number": peer, "mediatype": "image", "caption": caption,
                      "media": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &picture)}))
        .send()
        .await;
    assert!(
        sent.as_ref().map_or(true, |r| !r.status().is_success()),
        "the media send was answered before the crash: {sent:?}"
    );
    serve.wait_for_crash("send.encrypted").await;
    let serve = Gateway::start(&env, None, None);
    let id = eventually("the reserved media row", || async {
        let rows = serve.images_with_caption(&chat, caption).await;
        rows.first()
            .and_then(|r| r["key"]["id"].as_str())
            .map(str::to_owned)
    })
    .await;
    eventually("messages.update DELIVERY_ACK of the image", || {
        let found = events_about(&receiver, "messages.update", &id)
            .iter()
            .any(|b| b["data"]["status"] == "DELIVERY_ACK");
        async move { found.then_some(()) }
    })
    .await;
    assert_eq!(serve.images_with_caption(&chat, caption).await.len(), 1);
    let inbox: Value = reqwest::get(format!("{}/sim/accounts/{peer}/messages", sim.http_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let images: Vec<&Value> = inbox
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["caption"] == caption)
        .collect();
    assert_eq!(images.len(), 1, "{inbox}");
    assert_eq!(images[0]["id"], id.as_str());
    assert_eq!(
        images[0]["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&picture)),
        "{inbox}"
    );
    serve.stop().await;

    // With no resend window, a send cut off before the wire is failed at the next start.
    let text = "crash with no resend window";
    let serve = Gateway::start(&env, Some("send.encrypted"), None);
    serve.wait_open().await;
    let _ = reqwest::Client::new()
        .post(format!("{}/message/sendText/crash", serve.url()))
        .header("apikey", KEY)
        .timeout(Duration::from_secs(20))
        .json(&json!({"number": peer, "text": text}))
        .send()
        .await;
    serve.wait_for_crash("send.encrypted").await;
    let serve = Gateway::start(&env, None, Some("0"));
    let id = eventually("the reserved row", || async {
        let rows = serve.rows_with_text(&chat, text).await;
        rows.first()
            .and_then(|r| r["key"]["id"].as_str())
            .map(str::to_owned)
    })
    .await;
    eventually("messages.update ERROR", || {
        let found = events_about(&receiver, "messages.update", &id)
            .iter()
            .any(|b| b["data"]["status"] == "ERROR" && b["data"]["messageId"] == id.as_str());
        async move { found.then_some(()) }
    })
    .await;
    let rows = serve.rows_with_text(&chat, text).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["MessageUpdate"][0]["status"], "ERROR", "{rows:?}");
    // A later send goes through; the phone handles stanzas in order, so once it has the later
    // one, the failed one would have been there too.
    serve.wait_open().await;
    let (status, later) = serve
        .call(
            reqwest::Method::POST,
            "/message/sendText/crash",
            Some(json!({"number": peer, "text": "after the failed one"})),
        )
        .await;
    assert_eq!(status, 201, "{later}");
    eventually("the later message at the phone", || async {
        (!at_phone(&sim, &peer, &owner_jid, "after the failed one")
            .await
            .is_empty())
        .then_some(())
    })
    .await;
    assert!(at_phone(&sim, &peer, &owner_jid, text).await.is_empty());

    // Never a message at the phone without a row: every message it got from us has one.
    let (status, found) = serve
        .call(
            reqwest::Method::POST,
            "/chat/findMessages/crash",
            Some(json!({"where": {"key": {"fromMe": true}}})),
        )
        .await;
    assert_eq!(status, 200);
    let rows: BTreeSet<String> = found["messages"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"]["id"].as_str().unwrap().to_owned())
        .collect();
    let phone: Value = reqwest::get(format!("{}/sim/accounts/{peer}/messages", sim.http_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for m in phone.as_array().unwrap() {
        if m["from"] == owner_jid.as_str() {
            assert!(rows.contains(m["id"].as_str().unwrap()), "{m} has no row");
        }
    }
    serve.stop().await;
}
