//! No message lost, none doubled: the real `zapin serve` binary is aborted at each step of a
//! sendText (`ZAPIN_CRASHPOINT`), then started again, against an in-process simulator and a real
//! webhook receiver.
//!
//! | point | what is durable at the crash |
//! |---|---|
//! | `send.reserved` | the message row (PENDING) and its pending send; nothing encrypted |
//! | `send.encrypted` | also the ratchet state; nothing on the wire |
//! | `send.written` | the stanza was written to the socket; no server ack yet |
//!
//! For each point, after the restart: the phone holds the text exactly once, under the id of the
//! one message row the API has for it; that row ends delivered (`DELIVERY_ACK`), reported by
//! `messages.update`, announced once by `send.message`, never `ERROR`. With
//! `ZAPIN_SEND_RESEND_WINDOW_SECS=0` a send cut off before the wire ends `ERROR` instead, with a
//! `messages.update`, and the phone never gets it. Once on SQLite, once on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{Receiver, eventually};
use serde_json::{Value, json};
use zapin_sim::{RunningSim, SimConfig};

const ZAPIN: &str = env!("CARGO_BIN_EXE_zapin");
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

/// A running `zapin serve`.
struct Serve {
    child: Child,
    url: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    fn start(env: &Env, crashpoint: Option<&str>, window: Option<&str>) -> Self {
        let mut cmd = Command::new(ZAPIN);
        cmd.arg("serve")
            .env_clear()
            .env("ZAPIN_DATA_DIR", &env.data_dir)
            .env("SERVER_PORT", "0")
            .env("ZAPIN_LISTEN_HOST", "127.0.0.1")
            .env("AUTHENTICATION_API_KEY", KEY)
            .env("ZAPIN_MASTER_KEY", MASTER_KEY)
            .env("ZAPIN_WA_WS_URL", &env.ws_url)
            .env("ZAPIN_WA_ROOT_PUBKEY", &env.root)
            .env("LOG_LEVEL", "ERROR,WARN,INFO")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = &env.database_url {
            cmd.env("DATABASE_CONNECTION_URI", url);
        }
        if let Some(point) = crashpoint {
            cmd.env("ZAPIN_CRASHPOINT", point);
        }
        if let Some(window) = window {
            cmd.env("ZAPIN_SEND_RESEND_WINDOW_SECS", window);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let line = rx
            .recv_timeout(STARTUP)
            .expect("zapin serve did not announce its address");
        let url = line
            .strip_prefix("zapin listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, url, stderr }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .header("apikey", KEY)
            .timeout(Duration::from_secs(20));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits for the process to end by itself (the crash point), and checks that it was that.
    async fn wait_for_crash(mut self, point: &str) {
        let status = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            (status, self)
        });
        let (status, this) = tokio::time::timeout(STARTUP, status)
            .await
            .expect("zapin serve did not crash")
            .unwrap();
        assert!(!status.success(), "{status:?}");
        let expected = format!("crash point {point} reached");
        eventually("the crash to be reported on stderr", || {
            let found = this
                .stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(&expected));
            async move { found.then_some(()) }
        })
        .await;
    }

    /// SIGTERM and wait for a clean exit.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = tokio::task::spawn_blocking(move || self.child.wait().unwrap());
        let status = tokio::time::timeout(STARTUP, status)
            .await
            .expect("zapin serve did not stop")
            .unwrap();
        assert!(status.success(), "{status:?}");
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
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let serve = Serve::start(&env, None, None);
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
        let serve = Serve::start(&env, Some(point), None);
        serve.wait_open().await;
        let sent = reqwest::Client::new()
            .post(format!("{}/message/sendText/crash", serve.url))
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
        let serve = Serve::start(&env, None, None);
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

    // With no resend window, a send cut off before the wire is failed at the next start.
    let text = "crash with no resend window";
    let serve = Serve::start(&env, Some("send.encrypted"), None);
    serve.wait_open().await;
    let _ = reqwest::Client::new()
        .post(format!("{}/message/sendText/crash", serve.url))
        .header("apikey", KEY)
        .timeout(Duration::from_secs(20))
        .json(&json!({"number": peer, "text": text}))
        .send()
        .await;
    serve.wait_for_crash("send.encrypted").await;
    let serve = Serve::start(&env, None, Some("0"));
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
