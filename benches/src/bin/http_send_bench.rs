//! `http-send-bench`: sendText through the whole product, as a tenant calls it.
//!
//! Starts a real `zapin serve` (a release binary) against a simulator, creates and pairs K
//! instances over the HTTP API, each with a webhook to a receiver in this process, then runs
//! rounds in which every instance sends one text to one simulator phone through
//! `POST /message/sendText`, C requests in flight. Per send it records:
//!
//! * **answer**: request → `201` (the message is reserved, its ratchet state durable and the
//!   stanza written to the server);
//! * **server ack**: request → the `messages.update` `SERVER_ACK` webhook for its id (so this
//!   includes the outbox and the webhook POST, i.e. what a webhook consumer sees).
//!
//! With `--strace`, `zapin serve` runs under `strace -f -ttt -e trace=fsync,fdatasync` and the
//! fsyncs made during the send rounds are counted (per send, the number that matters for
//! durability's cost).
//!
//! ```text
//! http-send-bench --zapin target/release/zapin [--instances 20] [--rounds 3] [--concurrency 64]
//!                 [--sim HTTP_URL WS_URL ROOT_HEX] [--database-url URL] [--strace]
//!                 [--state-dir DIR] [--json FILE]
//! ```
//! Without `--sim` a simulator runs in this process (seed 7, default timers).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use axum::extract::State;
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};

const KEY: &str = "http-send-bench-key";
const MASTER_KEY: &str = "6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b";
const WAIT: Duration = Duration::from_secs(120);

struct Args {
    zapin: PathBuf,
    instances: usize,
    rounds: usize,
    concurrency: usize,
    sim: Option<(String, String, String)>,
    database_url: Option<String>,
    strace: bool,
    state_dir: Option<PathBuf>,
    json: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        zapin: PathBuf::from("target/release/zapin"),
        instances: 20,
        rounds: 3,
        concurrency: 64,
        sim: None,
        database_url: None,
        strace: false,
        state_dir: None,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut next = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--zapin" => a.zapin = next()?.into(),
            "--instances" => a.instances = next()?.parse()?,
            "--rounds" => a.rounds = next()?.parse()?,
            "--concurrency" => a.concurrency = next()?.parse()?,
            "--sim" => {
                let (h, w, r) = (next()?, next()?, next()?);
                a.sim = Some((h, w, r));
            }
            "--database-url" => a.database_url = Some(next()?),
            "--strace" => a.strace = true,
            "--state-dir" => a.state_dir = Some(next()?.into()),
            "--json" => a.json = Some(next()?.into()),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(args))
}

/// Arrival times of `SERVER_ACK` webhooks by message id.
type Acks = Arc<Mutex<HashMap<String, Instant>>>;

async fn hook(State(acks): State<Acks>, body: axum::body::Bytes) -> &'static str {
    if let Ok(event) = serde_json::from_slice::<Value>(&body)
        && event["event"] == "messages.update"
        && event["data"]["status"] == "SERVER_ACK"
        && let Some(id) = event["data"]["keyId"].as_str()
    {
        let mut acks = acks.lock().unwrap_or_else(|p| p.into_inner());
        acks.entry(id.to_owned()).or_insert_with(Instant::now);
    }
    "ok"
}

/// `zapin serve` as a child process.
struct Serve {
    child: Child,
    url: String,
    /// Whether `child` is strace wrapping zapin.
    traced: bool,
}

impl Drop for Serve {
    fn drop(&mut self) {
        // SIGTERM to zapin itself. Under strace the child is strace, which would detach on the
        // signal and leave zapin running (and the wait below hanging); zapin is strace's child
        // then, and strace writes its log out and exits once zapin does.
        let pid = self.child.id().to_string();
        let _ = if self.traced {
            Command::new("pkill").args(["-TERM", "-P", &pid]).status()
        } else {
            Command::new("kill").arg(&pid).status()
        };
        let _ = self.child.wait();
    }
}

fn start_serve(
    args: &Args,
    data_dir: &std::path::Path,
    sim: &(String, String, String),
    strace_log: Option<&std::path::Path>,
) -> Result<Serve> {
    let mut cmd = match strace_log {
        Some(log) => {
            let mut c = Command::new("strace");
            c.args(["-f", "-ttt", "-e", "trace=fsync,fdatasync", "-o"])
                .arg(log)
                .arg(&args.zapin);
            c
        }
        None => Command::new(&args.zapin),
    };
    cmd.arg("serve")
        .env("ZAPIN_DATA_DIR", data_dir)
        .env("AUTHENTICATION_API_KEY", KEY)
        .env("ZAPIN_MASTER_KEY", MASTER_KEY)
        .env("ZAPIN_WA_WS_URL", &sim.1)
        .env("ZAPIN_WA_ROOT_PUBKEY", &sim.2)
        .env("SERVER_PORT", "0")
        .env("ZAPIN_LISTEN_HOST", "127.0.0.1")
        .env("LOG_LEVEL", "ERROR,WARN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(url) = &args.database_url {
        cmd.env("DATABASE_CONNECTION_URI", url);
    }
    let mut child = cmd.spawn().context("starting zapin serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("zapin listening on ")
        .with_context(|| format!("unexpected first line {line:?}"))?
        .to_owned();
    Ok(Serve {
        child,
        url,
        traced: strace_log.is_some(),
    })
}

struct Api {
    client: reqwest::Client,
    zapin: String,
    sim: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.zapin))
            .header("apikey", KEY)
            .timeout(Duration::from_secs(60));
        if let Some(body) = body {
            req = req.json(&body);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!(e.to_string())),
        }
    }

    async fn sim_post(&self, path: &str, body: Value) -> Result<Value> {
        let resp = self
            .client
            .post(format!("{}{path}", self.sim))
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("sim {path}: {status} {body}");
        }
        Ok(body)
    }
}

async fn until<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Creates and pairs instance `name` for a new simulator account.
async fn pair(api: &Api, name: String, hook_url: &str) -> Result<String> {
    let owner = api
        .sim_post("/sim/accounts", json!({"push_name": name}))
        .await?;
    let owner = owner["phone"].as_str().context("no phone")?.to_owned();
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/instance/create",
            Some(json!({
                "instanceName": name,
                "integration": "WHATSAPP-BAILEYS",
                "webhook": {"url": hook_url, "events": ["MESSAGES_UPDATE"]},
            })),
        )
        .await;
    if status != 201 {
        bail!("create {name}: {status} {body}");
    }
    let qr = until("a QR", || async {
        let (_, body) = api
            .call(
                reqwest::Method::GET,
                &format!("/instance/connect/{name}"),
                None,
            )
            .await;
        body.get("code").and_then(Value::as_str).map(str::to_owned)
    })
    .await?;
    api.sim_post(&format!("/sim/accounts/{owner}/scan"), json!({"qr": qr}))
        .await?;
    until("the instance to open", || async {
        let (_, body) = api
            .call(
                reqwest::Method::GET,
                &format!("/instance/connectionState/{name}"),
                None,
            )
            .await;
        (body["instance"]["state"] == "open").then_some(())
    })
    .await?;
    Ok(name)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn summary(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return json!({"n": 0});
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        (v[i.min(v.len() - 1)] * 10.0).round() / 10.0
    };
    json!({"n": v.len(), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0)})
}

/// fsync/fdatasync calls in an `strace -ttt` log between two unix times.
fn fsyncs_between(log: &std::path::Path, from: f64, to: f64) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("fsync(") || l.contains("fdatasync("))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .filter(|t| (from..=to).contains(t))
        .count()
}

async fn bench(args: Args) -> Result<()> {
    let dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("zapin-http-send-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let mut own_sim = None;
    let sim = match &args.sim {
        Some(s) => s.clone(),
        None => {
            let config = zapin_sim::SimConfig {
                seed: Some(7),
                ..zapin_sim::SimConfig::default()
            };
            let sim = zapin_sim::run(config).await.context("starting the sim")?;
            let triple = (
                sim.http_url(),
                sim.ws_url(),
                sim.root_public_key()
                    .as_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            );
            own_sim = Some(sim);
            triple
        }
    };

    let acks: Acks = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(acks.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let strace_log = args.strace.then(|| dir.join("fsyncs.strace"));
    let serve = start_serve(&args, &dir.join("data"), &sim, strace_log.as_deref())?;
    let api = Arc::new(Api {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?,
        zapin: serve.url.clone(),
        sim: sim.0.clone(),
    });
    let peer = api
        .sim_post("/sim/accounts", json!({"push_name": "Peer"}))
        .await?;
    let peer = peer["phone"].as_str().context("no phone")?.to_owned();

    let started = Instant::now();
    let names: Vec<String> = futures_util::stream::iter(0..args.instances)
        .map(|i| {
            let api = api.clone();
            let hook_url = hook_url.clone();
            async move { pair(&api, format!("bench{i:05}"), &hook_url).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    eprintln!(
        "paired {} instances in {:.1} s",
        names.len(),
        started.elapsed().as_secs_f64()
    );

    let sends_from = unix_now();
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let round_start = Instant::now();
        let results: Vec<Result<(String, Instant, f64)>> = futures_util::stream::iter(&names)
            .map(|name| {
                let api = api.clone();
                let peer = peer.clone();
                async move {
                    let t0 = Instant::now();
                    let (status, body) = api
                        .call(
                            reqwest::Method::POST,
                            &format!("/message/sendText/{name}"),
                            Some(json!({"number": peer, "text": format!("round {round} from {name}")})),
                        )
                        .await;
                    let answered = t0.elapsed().as_secs_f64() * 1e3;
                    if status != 201 {
                        bail!("sendText {name}: {status} {body}");
                    }
                    let id = body["key"]["id"].as_str().context("no key.id")?.to_owned();
                    Ok((id, t0, answered))
                }
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        let sent: Vec<(String, Instant, f64)> = results.into_iter().collect::<Result<_>>()?;
        let ids: Vec<&String> = sent.iter().map(|(id, _, _)| id).collect();
        until("every server ack", || async {
            let acks = acks.lock().unwrap_or_else(|p| p.into_inner());
            ids.iter().all(|id| acks.contains_key(*id)).then_some(())
        })
        .await?;
        let acked = acks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let answer = sent.iter().map(|(_, _, ms)| *ms).collect();
        let ack = sent
            .iter()
            .filter_map(|(id, t0, _)| Some(acked.get(id)?.duration_since(*t0).as_secs_f64() * 1e3))
            .collect();
        let r = json!({
            "round": round,
            "sends": sent.len(),
            "answer": summary(answer),
            "server_ack_webhook": summary(ack),
            "wall_ms": (round_start.elapsed().as_secs_f64() * 1e3).round(),
        });
        eprintln!("{r}");
        rounds.push(r);
    }
    let sends_to = unix_now();
    let total_sends = names.len() * args.rounds;

    drop(serve);
    let fsyncs = strace_log
        .as_deref()
        .map(|log| fsyncs_between(log, sends_from, sends_to));
    let out = json!({
        "instances": args.instances,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "database": if args.database_url.is_some() { "postgres" } else { "sqlite" },
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "results": rounds,
        "fsyncs_during_sends": fsyncs,
        "fsyncs_per_send": fsyncs.map(|f| (f as f64 / total_sends.max(1) as f64 * 100.0).round() / 100.0),
    });
    println!("{out:#}");
    if let Some(path) = &args.json {
        std::fs::File::create(path)?.write_all(format!("{out:#}\n").as_bytes())?;
    }
    if let Some(sim) = own_sim {
        sim.shutdown().await.context("stopping the sim")?;
    }
    if args.state_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
