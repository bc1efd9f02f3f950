//! Shared by the broker tests: the broker URLs from the environment, a TCP proxy that can cut
//! the connection to a broker, and a gateway wired like `zapin serve` to the simulator.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use zapin_gateway::db::Db;
use zapin_gateway::runtime::{self, EngineRuntime};
use zapin_gateway::{AppState, Config, app};
use zapin_sim::RunningSim;

use crate::common::eventually;

pub const GLOBAL: &str = "brokers-global-key";

/// The broker at `var` (e.g. `ZAPIN_TEST_AMQP_URL`), or `None` with the reason printed. Under
/// `CI=true` a missing variable fails the test: CI starts the brokers.
pub fn broker_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "CI=true but {var} is not set"
            );
            eprintln!("skipping: {var} is not set");
            None
        }
    }
}

/// A lowercase name no earlier run used (brokers keep queues between runs).
pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    format!("{prefix}{}", hex::encode(b))
}

/// A TCP proxy in front of a broker: `cut` drops every open connection and refuses new ones
/// until `restore`, as a broker restart or a network failure looks to a client.
pub struct Proxy {
    pub addr: SocketAddr,
    /// Extra wait before forwarding each chunk the client sends (a slow network).
    delay: Arc<std::sync::atomic::AtomicU64>,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let delay = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2, delay2) = (up.clone(), conns.clone(), delay.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let delay = delay2.clone();
                let task = tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut in_read, mut in_write) = inbound.into_split();
                    let (mut out_read, mut out_write) = outbound.into_split();
                    let up = async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match in_read.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let wait = delay.load(Ordering::SeqCst);
                            if wait > 0 {
                                tokio::time::sleep(Duration::from_millis(wait)).await;
                            }
                            if out_write.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let down = tokio::io::copy(&mut out_read, &mut in_write);
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Self {
            addr,
            delay,
            up,
            conns,
            accept,
        }
    }

    /// Slows the client-to-broker direction by `ms` per chunk.
    pub fn slow_down(&self, ms: u64) {
        self.delay.store(ms, Ordering::SeqCst);
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// `host:port` of a URL such as `amqp://guest:guest@127.0.0.1:5672/%2f`.
pub fn host_port(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hostport = rest.split(['/', '?']).next().unwrap();
    use std::net::ToSocketAddrs;
    hostport.to_socket_addrs().unwrap().next().unwrap()
}

/// A gateway on the simulator, wired as `zapin serve` wires it (every enabled transport's
/// dispatcher included).
pub struct Gateway {
    pub base: String,
    pub client: reqwest::Client,
    pub engine: Arc<EngineRuntime>,
    pub server: JoinHandle<()>,
    pub db: Db,
}

pub fn config(sim: &RunningSim, dir: &std::path::Path, extra: &[(&str, String)]) -> Config {
    let mut vars = vec![
        ("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned()),
        ("ZAPIN_DATA_DIR".to_owned(), dir.display().to_string()),
        ("ZAPIN_WA_WS_URL".to_owned(), sim.ws_url()),
        (
            "ZAPIN_WA_ROOT_PUBKEY".to_owned(),
            hex::encode(sim.root_public_key().0),
        ),
        // Broker retries in tests: seconds are the unit; 1 s keeps the fault test short.
        (
            "WEBHOOK_RETRY_INITIAL_DELAY_SECONDS".to_owned(),
            "1".to_owned(),
        ),
        ("WEBHOOK_RETRY_MAX_DELAY_SECONDS".to_owned(), "1".to_owned()),
        ("WEBHOOK_RETRY_MAX_ATTEMPTS".to_owned(), "1000".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    Config::from_env(vars).unwrap()
}

impl Gateway {
    pub async fn start(config: Config) -> Self {
        let db = Db::open(&config).await.unwrap();
        let dispatchers = zapin_gateway::webhook::start_dispatchers(&db, &config).unwrap();
        let state = AppState::new(config, db.clone());
        let store = runtime::open_store(&state.config).await.unwrap();
        let mut engine_config = runtime::engine_config(&state.config);
        engine_config.prekey_initial_batch = 30;
        engine_config.prekey_refill_batch = 10;
        engine_config.connect_timeout = Duration::from_secs(5);
        engine_config.iq_timeout = Duration::from_secs(5);
        let engine = runtime::start_with(
            store,
            engine_config,
            &state.config,
            &db,
            state.tokens.clone(),
        )
        .await
        .unwrap();
        for d in dispatchers {
            engine.attach_dispatcher(d);
        }
        let router = app(state.with_engine(engine.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            engine,
            server,
            db,
        }
    }

    pub async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        self.engine.shutdown().await;
        self.db.close().await;
    }

    /// Status and raw body text.
    pub async fn call_text(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("apikey", GLOBAL);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.call_text(method, path, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates `name`, links it to a new sim account and returns (the instance's JID, the
    /// phone number of a second sim account that can message it).
    pub async fn create_and_link(&self, sim: &RunningSim, name: &str) -> (String, String) {
        let (status, body) = sim_post(sim, "/sim/accounts", json!({"push_name": "Owner"})).await;
        assert_eq!(status, 201, "{body}");
        let owner = body["phone"].as_str().unwrap().to_owned();
        let (status, body) = sim_post(sim, "/sim/accounts", json!({"push_name": "Friend"})).await;
        assert_eq!(status, 201, "{body}");
        let friend = body["phone"].as_str().unwrap().to_owned();
        let (status, created) = self
            .call(
                reqwest::Method::POST,
                "/instance/create",
                Some(json!({"instanceName": name, "integration": "WHATSAPP-BAILEYS"})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let qr = eventually("a QR from connect", || async {
            let (status, body) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/instance/connect/{name}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body.get("code").is_some().then_some(body)
        })
        .await;
        let (status, body) = sim_post(
            sim,
            &format!("/sim/accounts/{owner}/scan"),
            json!({"qr": qr["code"]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        eventually("the instance to be open", || async {
            let (_, state) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/instance/connectionState/{name}"),
                    None,
                )
                .await;
            (state["instance"]["state"] == "open").then_some(())
        })
        .await;
        (format!("{owner}@s.whatsapp.net"), friend)
    }
}

pub async fn sim_post(sim: &RunningSim, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.http_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The friend's phone sends `text` to the instance.
pub async fn phone_says(sim: &RunningSim, friend: &str, to: &str, text: &str) {
    let (status, body) = sim_post(
        sim,
        &format!("/sim/accounts/{friend}/messages"),
        json!({"to": to, "text": text}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
