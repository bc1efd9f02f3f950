//! Helpers shared by the integration tests: a started simulator, a JSON client, a WebSocket
//! client, and waiting on observable conditions (never on fixed sleeps).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use zapin_sim::{RunningSim, SimConfig};

pub mod wa;

pub const WAIT: Duration = Duration::from_secs(10);
pub const WA_HEADER: [u8; 4] = [0x57, 0x41, 0x06, 0x03];

pub async fn start(config: SimConfig) -> RunningSim {
    zapin_sim::run(config).await.unwrap()
}

pub fn seeded(seed: u64) -> SimConfig {
    SimConfig {
        seed: Some(seed),
        ..SimConfig::default()
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

    async fn finish(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        Self::finish(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        Self::finish(
            self.client
                .post(format!("{}{path}", self.base))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_raw(&self, path: &str, body: &'static str) -> (u16, Value) {
        Self::finish(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        Self::finish(
            self.client
                .delete(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn stats(&self) -> Value {
        let (s, v) = self.get("/sim/stats").await;
        assert_eq!(s, 200);
        v
    }
}

/// Asserts the `{"error": "..."}` shape with the given status, and returns the message.
pub fn assert_error(got: &(u16, Value), status: u16) -> String {
    assert_eq!(got.0, status, "body: {}", got.1);
    let msg = got.1["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field: {}", got.1));
    assert!(!msg.is_empty());
    assert_eq!(
        got.1.as_object().unwrap().len(),
        1,
        "only `error`: {}",
        got.1
    );
    msg.to_string()
}

/// Polls `check` until it yields `Some`, failing after `WAIT`.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(sim: &RunningSim) -> Ws {
    tokio_tungstenite::connect_async(sim.ws_url())
        .await
        .unwrap()
        .0
}

pub async fn send(ws: &mut Ws, bytes: &[u8]) {
    ws.send(Message::Binary(bytes.to_vec().into()))
        .await
        .unwrap();
}

/// How a connection ended, from the client's side.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// A close frame with this code.
    Closed(u16, String),
    /// The socket went away without a close frame.
    Dropped,
}

/// Reads until the connection ends; binary messages before that are returned too.
pub async fn read_until_end(ws: &mut Ws) -> (Vec<Vec<u8>>, End) {
    let mut got = Vec::new();
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => got.push(b.to_vec()),
                Some(Ok(Message::Close(Some(f)))) => {
                    return End::Closed(u16::from(f.code), f.reason.to_string());
                }
                Some(Ok(Message::Close(None))) => return End::Closed(1005, String::new()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return End::Dropped,
            }
        }
    })
    .await
    .expect("connection did not end in time");
    (got, end)
}

/// Reads the next binary message.
pub async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => return b.to_vec(),
                Some(Ok(Message::Close(f))) => panic!("closed instead: {f:?}"),
                Some(Ok(_)) => {}
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("no binary message in time")
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
