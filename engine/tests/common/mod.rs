//! Helpers shared by the engine's simulator-backed tests: a simulator with short timers, an
//! engine config pointing at it, a small control-API client, and waits on engine events or polled
//! conditions, each with a deadline (no fixed sleeps).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::broadcast;
use zapin_engine::backoff::BackoffPolicy;
use zapin_engine::messaging::MessageStatus;
use zapin_engine::{
    ConnectionState, CreateOptions, EngineConfig, Event, EventKind, SessionManager,
};
use zapin_signal_store::{MasterKey, Store};
use zapin_sim::{RunningSim, SimConfig};

/// The default deadline of every wait below.
pub const WAIT: Duration = Duration::from_secs(20);

/// A suite with slow peers (Baileys in Node) raises the deadline once for its test binary; each
/// file under `tests/` is its own process, so this never leaks into another suite.
static WAIT_MS: AtomicU64 = AtomicU64::new(WAIT.as_millis() as u64);

pub fn set_wait(deadline: Duration) {
    WAIT_MS.store(
        u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The deadline of the waits in this module: [`WAIT`] unless [`set_wait`] changed it.
pub fn wait() -> Duration {
    Duration::from_millis(WAIT_MS.load(Ordering::Relaxed))
}

pub fn sim_config() -> SimConfig {
    SimConfig {
        seed: Some(7),
        qr_first_ttl: Duration::from_millis(600),
        qr_ttl: Duration::from_millis(300),
        ..SimConfig::default()
    }
}

pub fn engine_config(sim: &RunningSim) -> EngineConfig {
    EngineConfig {
        ws_url: sim.ws_url(),
        trust_root: sim.root_public_key(),
        qr_first_ttl: Duration::from_millis(600),
        qr_ttl: Duration::from_millis(300),
        keepalive_interval: Duration::from_secs(2),
        keepalive_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(5),
        iq_timeout: Duration::from_secs(5),
        backoff: BackoffPolicy {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(400),
            stable_after: Duration::from_secs(30),
        },
        prekey_initial_batch: 30,
        prekey_refill_batch: 10,
        ..EngineConfig::default()
    }
}

pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(sim: &RunningSim) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: sim.http_url(),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    }

    pub async fn account(&self, push_name: &str) -> String {
        let (status, body) = self
            .post("/sim/accounts", json!({ "push_name": push_name }))
            .await;
        assert_eq!(status, 201, "{body}");
        body["phone"].as_str().unwrap().to_owned()
    }

    pub async fn fault(&self, body: Value) {
        let (status, resp) = self.post("/sim/faults", body).await;
        assert_eq!(status, 200, "{resp}");
    }

    pub async fn clear_faults(&self) {
        self.client
            .delete(format!("{}/sim/faults", self.base))
            .send()
            .await
            .unwrap();
    }
}

/// The next event of `instance` that `f` accepts (others are skipped), within [`wait()`].
pub async fn wait_event<T>(
    rx: &mut broadcast::Receiver<Event>,
    instance: &str,
    mut f: impl FnMut(&EventKind) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + wait();
    loop {
        let ev = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!("timed out waiting for an event of {instance}"),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("event stream ended: {e}"),
            Ok(Ok(ev)) => ev,
        };
        if ev.instance.as_str() != instance {
            continue;
        }
        if let Some(t) = f(&ev.kind) {
            return t;
        }
    }
}

pub fn is_state(kind: &EventKind, want: ConnectionState) -> Option<u16> {
    match kind {
        EventKind::Connection { state, status, .. } if *state == want => Some(*status),
        _ => None,
    }
}

pub async fn wait_state(
    rx: &mut broadcast::Receiver<Event>,
    instance: &str,
    want: ConnectionState,
) -> u16 {
    wait_event(rx, instance, |k| is_state(k, want)).await
}

/// Polls a condition that has no event (store contents) until it holds, within [`wait()`].
pub async fn eventually<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + wait();
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "condition not reached in {:?}",
            wait()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn memory_store() -> Store {
    Store::memory(&MasterKey::from_bytes([7; 32]))
}

/// Pairs `instance` by QR with a new sim account and waits for `Open`.
pub async fn pair_by_qr(
    manager: &SessionManager,
    rx: &mut broadcast::Receiver<Event>,
    api: &Api,
    instance: &str,
) -> (String, String) {
    let phone = api.account("Alice").await;
    manager
        .create(
            instance,
            CreateOptions {
                push_name: Some("Zap".into()),
                start: true,
            },
        )
        .await
        .unwrap();
    let code = wait_event(rx, instance, |k| match k {
        EventKind::QrCode { code, .. } => Some(code.clone()),
        _ => None,
    })
    .await;
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{phone}/scan"),
            json!({ "qr": code }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let jid = wait_event(rx, instance, |k| match k {
        EventKind::Paired { jid, .. } => Some(jid.clone()),
        _ => None,
    })
    .await;
    assert_eq!(body["device_jid"].as_str(), Some(jid.as_str()));
    wait_state(rx, instance, ConnectionState::Open).await;
    (phone, jid)
}

pub async fn wait_status(
    rx: &mut broadcast::Receiver<Event>,
    instance: &str,
    id: &str,
    want: MessageStatus,
) {
    loop {
        let status = wait_event(rx, instance, |k| match k {
            EventKind::MessageUpdate(u) if u.key.id == id => Some(u.status),
            _ => None,
        })
        .await;
        if status >= want {
            return;
        }
    }
}

/// Polls the phone's inbox until a message with `id` shows up; returns it.
pub async fn inbox_message(api: &Api, phone: &str, id: &str) -> Value {
    let deadline = Instant::now() + wait();
    loop {
        let inbox = api.get(&format!("/sim/accounts/{phone}/messages")).await;
        if let Some(m) = inbox
            .as_array()
            .and_then(|a| a.iter().find(|m| m["id"] == id))
        {
            return m.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{id} never reached {phone}: {inbox}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
