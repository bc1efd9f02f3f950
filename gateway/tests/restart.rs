//! `zapin serve` with traffic in flight, on SQLite and PostgreSQL: the real binary against the
//! simulator, phones sending to the instances and the HTTP API sending to the phones, while
//!
//! * SIGTERM arrives: nothing answers 5xx during the drain (503 or completed), a request that
//!   got no answer had no effect, and after a restart every instance is open again without a
//!   QR, every sendText that got a 2xx reached its phone exactly once, every text the phones
//!   sent is reported once, every event is delivered (signed), none twice for the same id;
//! * the master key is rotated through `POST /admin/keys/rotate`: sends and deliveries go on,
//!   and a restart with only the new key opens everything, tokens authenticate, webhooks are
//!   signed and sessions log in without a QR.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;
use zapin_sim::{RunningSim, SimConfig};

use common::serve::Serve;
use common::{PgDatabase, Receiver, Seen, eventually, postgres_url};

const API_KEY: &str = "restart-test-global";
const WAIT: Duration = Duration::from_secs(60);

/// The simulator, a webhook receiver and the data of one `zapin serve` (directory, and a
/// PostgreSQL database of its own on that backend).
struct World {
    sim: RunningSim,
    receiver: Receiver,
    dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
    client: reqwest::Client,
}

/// One instance paired with its owner phone, and the contact phone it chats with.
#[derive(Debug, Clone)]
struct Paired {
    name: String,
    token: String,
    secret: String,
    owner: String,
    contact: String,
}

impl World {
    async fn new(pg: bool) -> Option<Self> {
        let pg = if pg {
            Some(PgDatabase::create(&postgres_url()?).await)
        } else {
            None
        };
        let sim = zapin_sim::run(SimConfig {
            seed: Some(23),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        Some(Self {
            sim,
            receiver: Receiver::start().await,
            dir: tempfile::tempdir().unwrap(),
            pg,
            client: reqwest::Client::new(),
        })
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AUTHENTICATION_API_KEY", API_KEY.to_owned()),
            ("ZAPIN_DATA_DIR", self.dir.path().display().to_string()),
            ("ZAPIN_WA_WS_URL", self.sim.ws_url()),
            (
                "ZAPIN_WA_ROOT_PUBKEY",
                hex::encode(self.sim.root_public_key().0),
            ),
            ("LOG_LEVEL", "ERROR,WARN,INFO".to_owned()),
        ];
        if let Some(pg) = &self.pg {
            env.push(("DATABASE_CONNECTION_URI", pg.url.clone()));
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    async fn serve(&self) -> Serve {
        let env = self.env();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Serve::start(&env)
        })
        .await
        .unwrap()
    }

    async fn sim_post(&self, path: &str, body: Value) -> Value {
        let res = self
            .client
            .post(format!("{}{path}", self.sim.http_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap()
    }

    async fn sim_get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.sim.http_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn api(
        &self,
        serve: &Serve,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", serve.url))
            .header("apikey", key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Creates instance `name` with a signed webhook and links it to a new phone by QR.
    async fn pair(&self, serve: &Serve, name: &str) -> Paired {
        let owner = self
            .sim_post(
                "/sim/accounts",
                json!({"push_name": format!("owner {name}")}),
            )
            .await["phone"]
            .as_str()
            .unwrap()
            .to_owned();
        let contact = self
            .sim_post(
                "/sim/accounts",
                json!({"push_name": format!("contact {name}")}),
            )
            .await["phone"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret = format!("secret-{name}");
        let (status, created) = self
            .api(
                serve,
                reqwest::Method::POST,
                "/instance/create",
                API_KEY,
                Some(json!({"instanceName": name, "integration": "WHATSAPP-BAILEYS"})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        // The signing secret is a zapin extension of webhook/set (create takes Evolution's
        // webhook object, which has none).
        let (status, hook) = self
            .api(
                serve,
                reqwest::Method::POST,
                &format!("/webhook/set/{name}"),
                API_KEY,
                Some(json!({"webhook": {
                    "enabled": true,
                    "url": format!("{}/hook/{name}", self.receiver.base),
                    "events": ["QRCODE_UPDATED", "CONNECTION_UPDATE", "MESSAGES_UPSERT", "SEND_MESSAGE"],
                    "secret": secret,
                }})),
            )
            .await;
        assert_eq!(status, 201, "{hook}");
        let token = created["hash"].as_str().unwrap().to_owned();
        let code = eventually("a QR from connect", || async {
            let (_, body) = self
                .api(
                    serve,
                    reqwest::Method::GET,
                    &format!("/instance/connect/{name}"),
                    &token,
                    None,
                )
                .await;
            body["code"].as_str().map(str::to_owned)
        })
        .await;
        self.sim_post(&format!("/sim/accounts/{owner}/scan"), json!({"qr": code}))
            .await;
        self.wait_open(serve, name, &token).await;
        Paired {
            name: name.to_owned(),
            token,
            secret,
            owner,
            contact,
        }
    }

    /// Until `name`'s connection state is `open`.
    async fn wait_open(&self, serve: &Serve, name: &str, key: &str) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let (status, body) = self
                .api(
                    serve,
                    reqwest::Method::GET,
                    &format!("/instance/connectionState/{name}"),
                    key,
                    None,
                )
                .await;
            if status == 200 && body["instance"]["state"] == "open" {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} did not open: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Webhook deliveries to `name`'s hook.
    fn hooks(&self, name: &str) -> Vec<Seen> {
        let path = format!("/hook/{name}");
        self.receiver
            .seen()
            .into_iter()
            .filter(|s| s.path == path)
            .collect()
    }

    async fn cleanup(self) {
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
        self.sim.shutdown().await.unwrap();
    }
}

/// What one sendText came to.
#[derive(Debug, Clone)]
enum Sent {
    /// 2xx, with the message id.
    Ok(String),
    /// An HTTP error status.
    Status(u16, String),
    /// No answer (connection refused or closed), for this text.
    NoAnswer(String),
}

/// Everything the traffic generators did.
#[derive(Debug, Default)]
struct Traffic {
    /// Per instance, in order.
    sends: BTreeMap<String, Vec<Sent>>,
    /// When each 2xx answer arrived.
    answered: Vec<Instant>,
    /// Per instance: ids of the texts its contact phone sent to it, and when.
    inbound: BTreeMap<String, Vec<(String, Instant)>>,
}

type Shared = Arc<Mutex<Traffic>>;

/// Sends texts to `p`'s contact through the API until `stop` or the server stops answering.
async fn send_loop(
    client: reqwest::Client,
    url: String,
    p: Paired,
    traffic: Shared,
    mut stop: watch::Receiver<bool>,
) {
    for n in 0.. {
        if *stop.borrow_and_update() {
            return;
        }
        let text = format!("out-{}-{n}", p.name);
        let res = client
            .post(format!("{url}/message/sendText/{}", p.name))
            .header("apikey", &p.token)
            .json(&json!({"number": p.contact, "text": text}))
            .send()
            .await;
        let sent = match res {
            Ok(res) => {
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                match body["key"]["id"].as_str() {
                    Some(id) if (200..300).contains(&status) => Sent::Ok(id.to_owned()),
                    _ => Sent::Status(status, body.to_string()),
                }
            }
            Err(_) => Sent::NoAnswer(text),
        };
        let gone = matches!(sent, Sent::NoAnswer(_));
        let mut t = traffic.lock().unwrap();
        if matches!(sent, Sent::Ok(_)) {
            t.answered.push(Instant::now());
        }
        t.sends.entry(p.name.clone()).or_default().push(sent);
        drop(t);
        if gone {
            return;
        }
    }
}

/// `p`'s contact phone sends texts to the instance's account until `stop`.
async fn inbound_loop(
    client: reqwest::Client,
    sim: String,
    p: Paired,
    traffic: Shared,
    mut stop: watch::Receiver<bool>,
) {
    for n in 0.. {
        if *stop.borrow_and_update() {
            return;
        }
        let res: Value = client
            .post(format!("{sim}/sim/accounts/{}/messages", p.contact))
            .json(&json!({"to": format!("{}@s.whatsapp.net", p.owner), "text": format!("in-{}-{n}", p.name)}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        traffic
            .lock()
            .unwrap()
            .inbound
            .entry(p.name.clone())
            .or_default()
            .push((res["id"].as_str().unwrap().to_owned(), Instant::now()));
        // Paced, so inbound traffic does not crowd out everything else on a small machine.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Running traffic generators.
struct Generators {
    names: Vec<String>,
    traffic: Shared,
    stop_sends: watch::Sender<bool>,
    stop_inbound: watch::Sender<bool>,
    sends: Vec<tokio::task::JoinHandle<()>>,
    inbound: Vec<tokio::task::JoinHandle<()>>,
}

impl Generators {
    fn start(world: &World, serve: &Serve, paired: &[Paired]) -> Self {
        let traffic = Shared::default();
        let (stop_sends, sends_rx) = watch::channel(false);
        let (stop_inbound, inbound_rx) = watch::channel(false);
        let sends = paired
            .iter()
            .map(|p| {
                tokio::spawn(send_loop(
                    world.client.clone(),
                    serve.url.clone(),
                    p.clone(),
                    traffic.clone(),
                    sends_rx.clone(),
                ))
            })
            .collect();
        let inbound = paired
            .iter()
            .map(|p| {
                tokio::spawn(inbound_loop(
                    world.client.clone(),
                    world.sim.http_url(),
                    p.clone(),
                    traffic.clone(),
                    inbound_rx.clone(),
                ))
            })
            .collect();
        Self {
            names: paired.iter().map(|p| p.name.clone()).collect(),
            traffic,
            stop_sends,
            stop_inbound,
            sends,
            inbound,
        }
    }

    /// Waits until every instance has `n` more inbound texts, and (with `sends`) `n` more
    /// successful sends, than when called.
    async fn progress(&self, n: usize, sends: bool) {
        let counts = || -> Vec<usize> {
            let t = self.traffic.lock().unwrap();
            let mut out = Vec::new();
            for name in &self.names {
                out.push(t.inbound.get(name).map_or(0, Vec::len));
                if sends {
                    out.push(
                        t.sends
                            .get(name)
                            .map_or(0, |v| v.iter().filter(|s| matches!(s, Sent::Ok(_))).count()),
                    );
                }
            }
            out
        };
        let start = counts();
        let deadline = std::time::Instant::now() + WAIT;
        while !counts()
            .iter()
            .zip(&start)
            .all(|(now, then)| *now >= then + n)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no traffic progress: {:?}",
                self.traffic.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop_sends(&mut self) {
        let _ = self.stop_sends.send(true);
        for task in self.sends.drain(..) {
            task.await.unwrap();
        }
    }

    async fn stop_inbound(&mut self) {
        let _ = self.stop_inbound.send(true);
        for task in self.inbound.drain(..) {
            task.await.unwrap();
        }
    }

    fn take(&self) -> Traffic {
        std::mem::take(&mut self.traffic.lock().unwrap())
    }
}

/// The ids of the inbound texts (not from the instance) stored for instance `name`.
async fn stored_inbound(world: &World, name: &str) -> BTreeSet<String> {
    const SQL: &str = "SELECT m.key_id FROM messages m JOIN instances i ON i.id = m.instance_id \
         WHERE i.name = $1 AND NOT m.from_me";
    match &world.pg {
        Some(pg) => {
            let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
            let ids: Vec<String> = sqlx::query_scalar(SQL)
                .bind(name)
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            ids.into_iter().collect()
        }
        None => {
            let path = world.dir.path().join("zapin.sqlite3");
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", path.display()))
                .await
                .unwrap();
            let ids: Vec<String> = sqlx::query_scalar(SQL)
                .bind(name)
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            ids.into_iter().collect()
        }
    }
}

/// After a restart: every instance opens without a new QR; every 2xx send reached its phone
/// exactly once and was reported once (`send.message`); no text reached a phone twice; every
/// inbound text that `must_arrive` (by when it was sent) and every inbound text zapin stored
/// was reported once (`messages.upsert`). Returns, per instance, the inbound texts that never
/// reached zapin (all of them outside `must_arrive`, or the check fails).
async fn check_delivery(
    world: &World,
    serve: &Serve,
    paired: &[Paired],
    traffic: &Traffic,
    hooks_before_restart: usize,
    must_arrive: impl Fn(Instant) -> bool,
) -> BTreeMap<String, Vec<String>> {
    for p in paired {
        world.wait_open(serve, &p.name, &p.token).await;
    }
    let after: Vec<Seen> = world.receiver.seen()[hooks_before_restart..].to_vec();
    assert!(
        !after.iter().any(|s| s.json()["event"] == "qrcode.updated"),
        "a QR after the restart: the link was lost"
    );

    let mut lost = BTreeMap::new();
    for p in paired {
        let sends = traffic.sends.get(&p.name).cloned().unwrap_or_default();
        let ok: Vec<&String> = sends
            .iter()
            .filter_map(|s| match s {
                Sent::Ok(id) => Some(id),
                _ => None,
            })
            .collect();
        assert!(!ok.is_empty(), "{}: no send succeeded", p.name);
        // The phone got each acknowledged send; nothing twice.
        let received = until("every acknowledged send on the phone", || async {
            let got = world
                .sim_get(&format!("/sim/accounts/{}/messages", p.contact))
                .await;
            let ids: Vec<String> = got
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["text"].as_str().is_some_and(|t| t.starts_with("out-")))
                .map(|m| m["id"].as_str().unwrap().to_owned())
                .collect();
            let missing: Vec<&&String> = ok.iter().filter(|id| !ids.contains(id)).collect();
            if missing.is_empty() {
                Ok(ids)
            } else {
                Err(format!(
                    "{}: {missing:?} of {} never reached the phone",
                    p.name,
                    ok.len()
                ))
            }
        })
        .await;
        let mut once = BTreeSet::new();
        for id in &received {
            assert!(once.insert(id), "{}: {id} reached the phone twice", p.name);
        }

        let keyed = |event: &str| -> Vec<String> {
            world
                .hooks(&p.name)
                .iter()
                .map(Seen::json)
                .filter(|b| b["event"] == event)
                .filter_map(|b| b["data"]["key"]["id"].as_str().map(str::to_owned))
                .collect()
        };
        // Each acknowledged send reported, and each inbound text that must arrive.
        let inbound = traffic.inbound.get(&p.name).cloned().unwrap_or_default();
        until("every expected event delivered", || async {
            let sent = keyed("send.message");
            let upserts = keyed("messages.upsert");
            let missing_sent: Vec<&&String> = ok.iter().filter(|id| !sent.contains(id)).collect();
            let missing_in: Vec<(usize, &String)> = inbound
                .iter()
                .enumerate()
                .filter(|(_, (id, at))| must_arrive(*at) && !upserts.contains(id))
                .map(|(i, (id, _))| (i, id))
                .collect();
            if missing_sent.is_empty() && missing_in.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{}: send.message missing for {missing_sent:?} of {} acknowledged sends; \
                     messages.upsert missing for (index, id) {missing_in:?} of {} inbound texts",
                    p.name,
                    ok.len(),
                    inbound.len()
                ))
            }
        })
        .await;
        // Whatever zapin stored is reported; nothing is reported twice.
        let stored = stored_inbound(world, &p.name).await;
        until("every stored message reported", || async {
            let upserts = keyed("messages.upsert");
            let missing: Vec<&String> = stored.iter().filter(|id| !upserts.contains(id)).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("{}: stored but not reported: {missing:?}", p.name))
            }
        })
        .await;
        for (event, ids) in [
            ("send.message", keyed("send.message")),
            ("messages.upsert", keyed("messages.upsert")),
        ] {
            let mut once = BTreeSet::new();
            for id in &ids {
                assert!(
                    once.insert(id),
                    "{}: {event} for {id} delivered twice",
                    p.name
                );
            }
        }
        let never: Vec<String> = inbound
            .iter()
            .filter(|(id, _)| !stored.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        lost.insert(p.name.clone(), never);
    }
    lost
}

/// Polls `check` until it returns `Ok`; after [`WAIT`] fails with its last `Err`.
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(why) if std::time::Instant::now() >= deadline => {
                panic!("timed out waiting for {what}: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Every delivery to `p`'s hook carries a valid signature under its secret.
fn check_signatures(world: &World, p: &Paired) -> usize {
    let hooks = world.hooks(&p.name);
    for s in &hooks {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(p.secret.as_bytes()).unwrap();
        mac.update(&s.body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(
            s.header("x-zapin-signature"),
            Some(want.as_str()),
            "{}: unsigned or badly signed delivery {}",
            p.name,
            s.json()["event"]
        );
    }
    hooks.len()
}

async fn graceful_restart(pg: bool) {
    let Some(world) = World::new(pg).await else {
        return;
    };
    let serve = world.serve().await;
    let paired = vec![
        world.pair(&serve, "alpha").await,
        world.pair(&serve, "beta").await,
    ];

    let mut traffic = Generators::start(&world, &serve, &paired);
    traffic.progress(5, true).await;

    // SIGTERM with sends in flight and the phones still writing.
    let sigterm_at = Instant::now();
    serve.sigterm();
    let (status, log) = tokio::task::spawn_blocking(move || serve.wait(WAIT))
        .await
        .unwrap();
    let exited_at = Instant::now();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    // The senders end on the first unanswered request; the phones keep writing to the
    // stopped instances for a while (offline messages, delivered on the next login).
    traffic.stop_sends().await;
    traffic.progress(3, false).await;
    traffic.stop_inbound().await;
    let traffic = traffic.take();
    for (name, sends) in &traffic.sends {
        for s in sends {
            if let Sent::Status(code, body) = s {
                assert!(
                    *code == 503 || *code < 500,
                    "{name}: {code} during the drain: {body}"
                );
            }
        }
    }
    let drained = traffic
        .answered
        .iter()
        .filter(|at| **at > sigterm_at)
        .count();
    eprintln!("{drained} sends answered 2xx after the SIGTERM (in flight, completed by the drain)");

    let hooks_before_restart = world.receiver.seen().len();
    let serve = world.serve().await;
    // Every text the phones sent arrives, also those a stopping session never read: it did
    // not acknowledge them, so the server redelivers them at the next login.
    let lost = check_delivery(
        &world,
        &serve,
        &paired,
        &traffic,
        hooks_before_restart,
        |_| true,
    )
    .await;
    assert!(
        lost.values().all(Vec::is_empty),
        "never reached zapin: {lost:?}"
    );
    // A send that got no answer was not taken: its text is on no phone.
    for p in &paired {
        let got = world
            .sim_get(&format!("/sim/accounts/{}/messages", p.contact))
            .await;
        for s in traffic.sends.get(&p.name).into_iter().flatten() {
            if let Sent::NoAnswer(text) = s {
                assert!(
                    !got.as_array()
                        .unwrap()
                        .iter()
                        .any(|m| m["text"] == text.as_str()),
                    "{}: {text} went out but its request got no answer",
                    p.name
                );
            }
        }
    }
    for p in &paired {
        assert!(check_signatures(&world, p) > 0);
    }
    eprintln!(
        "graceful restart ({}): stopped {} ms after SIGTERM, {} inbound texts, nothing lost",
        if pg { "postgres" } else { "sqlite" },
        (exited_at - sigterm_at).as_millis(),
        traffic.inbound.values().map(Vec::len).sum::<usize>()
    );
    let (status, log) = tokio::task::spawn_blocking(move || serve.stop())
        .await
        .unwrap();
    assert!(status.success(), "{log}");
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_with_traffic_in_flight_on_sqlite() {
    graceful_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_with_traffic_in_flight_on_postgres() {
    graceful_restart(true).await;
}

async fn rotate_while_serving(pg: bool) {
    let Some(world) = World::new(pg).await else {
        return;
    };
    let serve = world.serve().await;
    let paired = vec![
        world.pair(&serve, "gamma").await,
        world.pair(&serve, "delta").await,
    ];
    let key_file = world.dir.path().join("master.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();

    let mut traffic = Generators::start(&world, &serve, &paired);
    traffic.progress(3, true).await;
    let (status, before) = world
        .api(&serve, reqwest::Method::GET, "/admin/keys", API_KEY, None)
        .await;
    assert_eq!(status, 200, "{before}");
    let (status, body) = world
        .api(
            &serve,
            reqwest::Method::POST,
            "/admin/keys/rotate",
            &paired[0].token,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 401, "an instance token is no operator key: {body}");
    let (status, body) = world
        .api(
            &serve,
            reqwest::Method::POST,
            "/admin/keys/rotate",
            API_KEY,
            Some(json!({"newKey": "zz"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, rotated) = world
        .api(
            &serve,
            reqwest::Method::POST,
            "/admin/keys/rotate",
            API_KEY,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 202, "{rotated}");
    assert_ne!(rotated["fingerprint"], before["fingerprint"]);
    assert_eq!(rotated["previousFingerprint"], before["fingerprint"]);
    assert!(!rotated.to_string().contains(old_key.trim()));
    // Sends and deliveries go on while the data is re-sealed.
    eventually("the online re-sealing pass", || async {
        let (_, status) = world
            .api(&serve, reqwest::Method::GET, "/admin/keys", API_KEY, None)
            .await;
        (status["rotation"]["state"] == "done").then_some(())
    })
    .await;
    let (_, status) = world
        .api(&serve, reqwest::Method::GET, "/admin/keys", API_KEY, None)
        .await;
    assert_eq!(status["rotation"]["unreadable"], 0, "{status}");
    assert!(
        status["rotation"]["resealed"].as_u64().unwrap() > 0,
        "{status}"
    );
    traffic.progress(3, true).await;
    let (code, again) = world
        .api(
            &serve,
            reqwest::Method::POST,
            "/admin/keys/rotate",
            API_KEY,
            None,
        )
        .await;
    assert_eq!(code, 409, "one rotation per start: {again}");

    traffic.stop_sends().await;
    traffic.stop_inbound().await;
    let traffic = traffic.take();
    // Everything the phones sent is in before the stop (what a stopping session has not read
    // yet is the graceful-restart test's business).
    for p in &paired {
        let inbound = traffic.inbound.get(&p.name).cloned().unwrap_or_default();
        until("the inbound texts before the stop", || async {
            let upserts: Vec<String> = world
                .hooks(&p.name)
                .iter()
                .map(Seen::json)
                .filter(|b| b["event"] == "messages.upsert")
                .filter_map(|b| b["data"]["key"]["id"].as_str().map(str::to_owned))
                .collect();
            let missing = inbound
                .iter()
                .filter(|(id, _)| !upserts.contains(id))
                .count();
            if missing == 0 {
                Ok(())
            } else {
                Err(format!(
                    "{}: {missing} of {} missing",
                    p.name,
                    inbound.len()
                ))
            }
        })
        .await;
    }
    let (status, log) = tokio::task::spawn_blocking(move || serve.stop())
        .await
        .unwrap();
    assert!(status.success(), "{log}");
    assert!(!log.contains(old_key.trim()), "a key in the log");
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, old_key);
    // Restart with only the new key.
    std::fs::remove_file(world.dir.path().join("master.key.previous")).unwrap();

    let hooks_before_restart = world.receiver.seen().len();
    let serve = world.serve().await;
    let lost = check_delivery(
        &world,
        &serve,
        &paired,
        &traffic,
        hooks_before_restart,
        |_| true,
    )
    .await;
    assert!(lost.values().all(Vec::is_empty), "{lost:?}");
    let (_, keys) = world
        .api(&serve, reqwest::Method::GET, "/admin/keys", API_KEY, None)
        .await;
    assert_eq!(keys["fingerprint"], rotated["fingerprint"], "{keys}");
    assert_eq!(keys["previousFingerprint"], Value::Null, "{keys}");
    // After the restart too: tokens open their instance, a send reaches the phone, a reply
    // reaches the webhook, signed.
    let p = &paired[0];
    let (status, sent) = world
        .api(
            &serve,
            reqwest::Method::POST,
            &format!("/message/sendText/{}", p.name),
            &p.token,
            Some(json!({"number": p.contact, "text": "after the rotation"})),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let reply = world
        .sim_post(
            &format!("/sim/accounts/{}/messages", p.contact),
            json!({"to": format!("{}@s.whatsapp.net", p.owner), "text": "reply after the rotation"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the reply's webhook", || async {
        world
            .hooks(&p.name)
            .iter()
            .any(|s| s.json()["data"]["key"]["id"] == reply.as_str())
            .then_some(())
    })
    .await;
    for p in &paired {
        assert!(check_signatures(&world, p) > 0);
    }
    let (status, log) = tokio::task::spawn_blocking(move || serve.stop())
        .await
        .unwrap();
    assert!(status.success(), "{log}");
    assert!(!log.contains(new_key.trim()), "a key in the log");
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_the_master_key_while_serving_on_sqlite() {
    rotate_while_serving(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_the_master_key_while_serving_on_postgres() {
    rotate_while_serving(true).await;
}
