//! `sessions-bench`: N engine sessions against a simulator running in a child process.
//!
//! The simulator is this same binary re-executed with `--sim-child`, so the parent's RSS and CPU
//! (from `/proc/self`) are the engine's plus a baseline measured before any session exists (the
//! runtime, the SQLite pool, the HTTP client); the child's are reported separately.
//!
//! Phases: pair (or log in again from the state directory) N sessions with bounded concurrency,
//! measure RSS, an idle window's CPU, `disconnect_all` recovery, then message rounds in both
//! directions. Progress goes to stderr; one JSON summary goes to stdout at the end.
//!
//! Usage: `sessions-bench --n 1000 [--state-dir DIR] [--pair-concurrency 32] [--idle-secs 60]
//! [--rounds 2] [--msg-concurrency 64] [--handshake-limit 0] [--skip-disconnect]
//! [--sim http://127.0.0.1:PORT --sim-pid PID]`; `sessions-bench --sim-child DIR` runs only the
//! simulator (prints `READY <http> <ws> <root>`, stops when stdin closes).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::{Notify, Semaphore, broadcast};
use zapin_engine::messaging::MessageStatus;
use zapin_engine::{
    ConnectionState, CreateOptions, EngineConfig, Event, EventKind, SessionManager,
};
use zapin_signal_store::{MasterKey, SqliteOptions, Store};

const USAGE: &str = "\
sessions-bench: N engine sessions against a simulator; JSON summary on stdout, progress on stderr

usage: sessions-bench [--n N] [--state-dir DIR] [--pair-concurrency C] [--idle-secs S]
                      [--rounds R] [--msg-concurrency C] [--handshake-limit L] [--skip-disconnect]
                      [--recover-timeout-secs S] [--sim http://HOST:PORT --sim-pid PID]
       sessions-bench --sim-child DIR   (the simulator alone: prints READY <http> <ws> <root>)

defaults: --n 100 --state-dir /tmp/zapin-sessions-bench --pair-concurrency 32 --idle-secs 60
          --rounds 2 --msg-concurrency 64 --handshake-limit 0 (unlimited) --recover-timeout-secs 300
method and recorded results: benches/RESULTS.md";

/// The phone that talks to every session in the message rounds (never paired itself).
const PEER_PHONE: &str = "18880000000";

#[derive(Debug, Clone)]
struct Args {
    n: usize,
    state_dir: PathBuf,
    pair_concurrency: usize,
    idle_secs: u64,
    rounds: usize,
    msg_concurrency: usize,
    handshake_limit: usize,
    skip_disconnect: bool,
    recover_timeout_secs: u64,
    /// Use this running simulator (`http://…`) instead of spawning one.
    sim: Option<String>,
    /// Its pid, for its RSS/CPU columns.
    sim_pid: Option<String>,
}

fn parse_args(raw: &[String]) -> Result<Args> {
    let mut a = Args {
        n: 100,
        state_dir: PathBuf::from("/tmp/zapin-sessions-bench"),
        pair_concurrency: 32,
        idle_secs: 60,
        rounds: 2,
        msg_concurrency: 64,
        handshake_limit: 0,
        skip_disconnect: false,
        recover_timeout_secs: 300,
        sim: None,
        sim_pid: None,
    };
    let mut it = raw.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--skip-disconnect" {
            a.skip_disconnect = true;
            continue;
        }
        let value = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--n" => a.n = value.parse()?,
            "--state-dir" => a.state_dir = PathBuf::from(value),
            "--pair-concurrency" => a.pair_concurrency = value.parse()?,
            "--idle-secs" => a.idle_secs = value.parse()?,
            "--rounds" => a.rounds = value.parse()?,
            "--msg-concurrency" => a.msg_concurrency = value.parse()?,
            "--handshake-limit" => a.handshake_limit = value.parse()?,
            "--recover-timeout-secs" => a.recover_timeout_secs = value.parse()?,
            "--sim" => a.sim = Some(value.clone()),
            "--sim-pid" => a.sim_pid = Some(value.clone()),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if raw.first().map(String::as_str) == Some("--sim-child") {
        return runtime.block_on(sim_child(&raw[1..]));
    }
    let args = parse_args(&raw)?;
    runtime.block_on(bench(args))
}

/// The simulator process: prints one `READY <http> <ws> <root hex>` line, runs until stdin closes.
async fn sim_child(raw: &[String]) -> Result<()> {
    let state_dir = raw.first().map(PathBuf::from);
    let config = zapin_sim::SimConfig {
        seed: Some(7),
        state_dir,
        ..zapin_sim::SimConfig::default()
    };
    let sim = zapin_sim::run(config).await.context("starting the sim")?;
    println!(
        "READY {} {} {}",
        sim.http_url(),
        sim.ws_url(),
        hex_encode(sim.root_public_key().as_bytes())
    );
    std::io::stdout().flush()?;
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    sim.shutdown().await.context("stopping the sim")?;
    Ok(())
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode32(s: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        bail!("root key hex has length {}", s.len());
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)?;
    }
    Ok(out)
}

// ---------------------------------------------------------------- /proc

/// VmRSS of a process, KiB.
fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks (100 Hz on Linux x86_64).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)` which may contain spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    get(11) + get(12)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------- progress

struct Progress {
    label: &'static str,
    total: usize,
    started: Instant,
    last: Mutex<Instant>,
}

impl Progress {
    fn new(label: &'static str, total: usize) -> Self {
        let now = Instant::now();
        Self {
            label,
            total,
            started: now,
            last: Mutex::new(now - Duration::from_secs(1)),
        }
    }

    fn show(&self, done: usize) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() < Duration::from_millis(250) && done < self.total {
            return;
        }
        *last = Instant::now();
        let width = 30;
        let filled = (done * width).checked_div(self.total).unwrap_or(width);
        eprint!(
            "\r{:<12} [{}{}] {done}/{} {:.1}s ",
            self.label,
            "#".repeat(filled),
            ".".repeat(width - filled.min(width)),
            self.total,
            self.started.elapsed().as_secs_f64()
        );
        if done >= self.total {
            eprintln!();
        }
    }
}

// ---------------------------------------------------------------- event tracking

/// What the dispatcher task records from the engine's event stream.
#[derive(Default)]
struct Tracker {
    /// Waiting for the first QR of an instance.
    qr_waiters: HashMap<String, tokio::sync::oneshot::Sender<String>>,
    /// Last `open` per instance.
    opened: HashMap<String, Instant>,
    /// Incoming texts by content.
    received: HashMap<String, Instant>,
    /// Outgoing message id -> (server ack, delivery receipt).
    updates: HashMap<String, (Option<Instant>, Option<Instant>)>,
    lagged: u64,
    closes: u64,
}

struct Shared {
    tracker: Mutex<Tracker>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn dispatch(mut rx: broadcast::Receiver<Event>, shared: Arc<Shared>) {
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                shared.lock().lagged += n;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let now = Instant::now();
        let id = ev.instance.as_str();
        let mut t = shared.lock();
        match ev.kind {
            EventKind::QrCode { code, .. } => {
                if let Some(w) = t.qr_waiters.remove(id) {
                    let _ = w.send(code);
                }
            }
            EventKind::Connection { state, .. } => match state {
                ConnectionState::Open => {
                    t.opened.insert(id.to_owned(), now);
                }
                ConnectionState::Close => t.closes += 1,
                _ => {}
            },
            EventKind::MessageUpsert(m) => {
                if let Some(text) = m.message.conversation.clone() {
                    t.received.entry(text).or_insert(now);
                }
            }
            EventKind::MessageUpdate(u) => {
                let e = t.updates.entry(u.key.id.clone()).or_default();
                match u.status {
                    MessageStatus::ServerAck => {
                        e.0.get_or_insert(now);
                    }
                    MessageStatus::DeliveryAck | MessageStatus::Read => {
                        e.1.get_or_insert(now);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        drop(t);
        shared.changed.notify_waiters();
    }
}

/// Waits until `f` holds over the tracker, or the deadline passes (returns false).
async fn wait_until(
    shared: &Shared,
    deadline: Instant,
    mut f: impl FnMut(&Tracker) -> bool,
) -> bool {
    loop {
        let notified = shared.changed.notified();
        if f(&shared.lock()) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        // Bounded wake-up: a missed notify costs at most 200 ms.
        let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
    }
}

// ---------------------------------------------------------------- stats

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary_ms(mut v: Vec<f64>) -> Value {
    v.sort_by(f64::total_cmp);
    json!({
        "count": v.len(),
        "p50_ms": round2(percentile(&v, 0.50)),
        "p99_ms": round2(percentile(&v, 0.99)),
        "max_ms": round2(v.last().copied().unwrap_or(f64::NAN)),
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------- control API

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn stats(&self) -> Result<Value> {
        Ok(self
            .client
            .get(format!("{}/sim/stats", self.base))
            .send()
            .await?
            .json()
            .await?)
    }

    async fn ensure_account(&self, phone: &str) -> Result<()> {
        let (status, body) = self
            .post(
                "/sim/accounts",
                json!({ "phone": phone, "push_name": "Bench" }),
            )
            .await?;
        if status != 201 && status != 409 {
            bail!("creating account {phone}: {status} {body}");
        }
        Ok(())
    }
}

fn instance_name(i: usize) -> String {
    format!("b{i:05}")
}

fn phone_of(i: usize) -> String {
    format!("1777{i:07}")
}

// ---------------------------------------------------------------- the bench

async fn bench(args: Args) -> Result<()> {
    let me = std::process::id().to_string();
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let load_start = loadavg();
    std::fs::create_dir_all(args.state_dir.join("sim"))?;

    // Simulator: a child process of this binary, or one given with `--sim`.
    let mut child = None;
    let (http, ws, root, child_pid) = match &args.sim {
        Some(url) => {
            let body: Value = reqwest::get(format!("{url}/sim/root-key"))
                .await?
                .json()
                .await?;
            let root = body["public_key_hex"]
                .as_str()
                .ok_or_else(|| anyhow!("no root key from {url}"))?
                .to_owned();
            let ws = format!("{}/ws/chat", url.replacen("http", "ws", 1));
            (
                url.clone(),
                ws,
                root,
                args.sim_pid.clone().unwrap_or_default(),
            )
        }
        None => {
            let exe = std::env::current_exe()?;
            let mut c = tokio::process::Command::new(exe)
                .arg("--sim-child")
                .arg(args.state_dir.join("sim"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("spawning the sim child")?;
            let pid = c.id().map(|p| p.to_string()).unwrap_or_default();
            let stdout = c.stdout.take().ok_or_else(|| anyhow!("no child stdout"))?;
            let mut lines = BufReader::new(stdout).lines();
            let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .context("sim child did not start")??
                .ok_or_else(|| anyhow!("sim child exited"))?;
            child = Some(c);
            let parts: Vec<&str> = ready.split_whitespace().collect();
            let [_, http, ws, root] = parts.as_slice() else {
                bail!("unexpected sim line {ready:?}");
            };
            (http.to_string(), ws.to_string(), root.to_string(), pid)
        }
    };
    let api = Api {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?,
        base: http,
    };
    let root = zapin_protocol::crypto::PublicKey::from_slice(&hex_decode32(&root)?)?;

    // Engine.
    let store = Store::open_sqlite(
        &SqliteOptions::new(args.state_dir.join("engine")),
        &MasterKey::from_bytes([7; 32]),
    )
    .await?;
    let config = EngineConfig {
        ws_url: ws,
        trust_root: root,
        event_buffer: 1 << 16,
        prekey_initial_batch: 30,
        max_concurrent_handshakes: args.handshake_limit,
        ..EngineConfig::default()
    };
    // Kept to read its commit counter around the message rounds (fsyncs per message).
    let store_stats = store.clone();
    let manager = SessionManager::new(store, config);
    let shared = Arc::new(Shared {
        tracker: Mutex::new(Tracker::default()),
        changed: Notify::new(),
    });
    tokio::spawn(dispatch(manager.subscribe(), shared.clone()));
    api.ensure_account(PEER_PHONE).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline_rss = rss_kib(&me);
    let sim_baseline_rss = rss_kib(&child_pid);

    // ---- connect (pair or log in again)
    let n = args.n;
    let progress = Arc::new(Progress::new("connect", n));
    let sem = Arc::new(Semaphore::new(args.pair_concurrency.max(1)));
    let t_connect = Instant::now();
    let paired_now = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let (api, manager, shared) = (api.clone(), manager.clone(), shared.clone());
        let (progress, paired_now, done) = (progress.clone(), paired_now.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let r = connect_one(i, &api, &manager, &shared, &paired_now).await;
            drop(permit);
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.show(d);
            r
        }));
    }
    let mut failures = 0usize;
    for t in tasks {
        if let Err(e) = t.await? {
            failures += 1;
            if failures <= 5 {
                eprintln!("\nconnect failed: {e:#}");
            }
        }
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();
    let paired_now = paired_now.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "connected {}/{n} in {connect_secs:.1}s ({paired_now} newly paired, {failures} failed)",
        n - failures
    );

    // ---- memory after settling
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_connected = rss_kib(&me);
    let sim_rss_connected = rss_kib(&child_pid);
    let per_session_kib = (rss_connected.saturating_sub(baseline_rss)) as f64 / n.max(1) as f64;
    eprintln!(
        "engine RSS {rss_connected} KiB (baseline {baseline_rss}): {per_session_kib:.1} KiB/session; sim RSS {sim_rss_connected} KiB"
    );

    // ---- idle CPU
    let (c0, s0, t0) = (cpu_ticks(&me), cpu_ticks(&child_pid), Instant::now());
    let idle = Progress::new("idle", args.idle_secs as usize);
    for s in 0..args.idle_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        idle.show(s as usize + 1);
    }
    let wall = t0.elapsed().as_secs_f64();
    let idle_cpu_pct = (cpu_ticks(&me) - c0) as f64 / 100.0 / wall * 100.0;
    let sim_idle_cpu_pct = (cpu_ticks(&child_pid) - s0) as f64 / 100.0 / wall * 100.0;
    let rss_after_idle = rss_kib(&me);
    let open_now = manager
        .instances()
        .iter()
        .filter(|id| manager.state(id) == Some(ConnectionState::Open))
        .count();
    eprintln!(
        "idle {wall:.0}s: engine CPU {idle_cpu_pct:.2}% of a core, sim {sim_idle_cpu_pct:.2}%; {open_now} open; RSS {rss_after_idle} KiB"
    );

    // ---- disconnect_all recovery
    let mut recovery = Value::Null;
    if !args.skip_disconnect {
        let t0 = Instant::now();
        let (status, body) = api
            .post("/sim/faults", json!({ "action": "disconnect_all" }))
            .await?;
        if status != 200 {
            bail!("disconnect_all: {status} {body}");
        }
        let prog = Progress::new("recover", n);
        let deadline = t0 + Duration::from_secs(args.recover_timeout_secs);
        let all = wait_until(&shared, deadline, |t| {
            let back = t.opened.values().filter(|at| **at > t0).count();
            prog.show(back);
            back >= n - failures
        })
        .await;
        let times: Vec<f64> = shared
            .lock()
            .opened
            .values()
            .filter(|at| **at > t0)
            .map(|at| ms(*at - t0))
            .collect();
        let back = times.len();
        let mut s = summary_ms(times);
        s["all_back"] = json!(all);
        s["back"] = json!(back);
        s["rss_after_kib"] = json!(rss_kib(&me));
        eprintln!("recovery: {s}");
        recovery = s;
    }

    // ---- message rounds
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let commits = store_stats.write_transactions();
        let mut inbound = inbound_round(&args, round, n, &api, &shared).await?;
        let after_in = store_stats.write_transactions();
        let mut outbound = outbound_round(&args, round, n, &manager, &shared).await?;
        let after_out = store_stats.write_transactions();
        // Signal-store transactions (each one fsync of the SQLite WAL) per message handled.
        inbound["store_commits"] = json!(after_in - commits);
        inbound["store_commits_per_msg"] =
            json!(round2((after_in - commits) as f64 / (n.max(1)) as f64));
        outbound["store_commits"] = json!(after_out - after_in);
        outbound["store_commits_per_msg"] =
            json!(round2((after_out - after_in) as f64 / (n.max(1)) as f64));
        eprintln!("round {round}: in {inbound}\n          out {outbound}");
        rounds.push(json!({ "round": round, "sim_phone_to_engine": inbound, "engine_to_sim_phone": outbound }));
    }

    // Working set after the traffic (compare with Baileys' `rss_kib.after_messages`).
    let rss_after_messages = rss_kib(&me);
    let sim_stats = api.stats().await.unwrap_or(Value::Null);
    let lagged = shared.lock().lagged;
    let summary = json!({
        "bench": "sessions-bench",
        // Every signal-store commit of the run (pairing included): compare with an fsync count.
        "store_write_transactions": store_stats.write_transactions(),
        "started_unix": started_at,
        "n": n,
        "pair_concurrency": args.pair_concurrency,
        "handshake_limit": args.handshake_limit,
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "connect": {
            "secs": round2(connect_secs),
            "newly_paired": paired_now,
            "failed": failures,
        },
        "engine_rss_kib": {
            "baseline": baseline_rss,
            "connected": rss_connected,
            "after_idle": rss_after_idle,
            "after_messages": rss_after_messages,
            "per_session": round2(per_session_kib),
        },
        "sim_rss_kib": { "baseline": sim_baseline_rss, "connected": sim_rss_connected },
        "idle": {
            "secs": round2(wall),
            "engine_cpu_pct_of_one_core": round2(idle_cpu_pct),
            "sim_cpu_pct_of_one_core": round2(sim_idle_cpu_pct),
            "open_at_end": open_now,
        },
        "disconnect_all_recovery": recovery,
        "messages": rounds,
        "events_lagged": lagged,
        "sim_stats": sim_stats,
    });
    println!("{summary}");
    manager.shutdown().await;
    if let Some(mut child) = child {
        drop(child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    }
    Ok(())
}

async fn connect_one(
    i: usize,
    api: &Api,
    manager: &SessionManager,
    shared: &Shared,
    paired_now: &std::sync::atomic::AtomicUsize,
) -> Result<()> {
    let id = instance_name(i);
    let phone = phone_of(i);
    let (qr_tx, qr_rx) = tokio::sync::oneshot::channel();
    shared.lock().qr_waiters.insert(id.clone(), qr_tx);
    let started = Instant::now();
    manager
        .create(
            id.as_str(),
            CreateOptions {
                push_name: Some("Bench".into()),
                start: true,
            },
        )
        .await?;
    let deadline = started + Duration::from_secs(120);
    // A stored, paired device logs in without a QR: wait for `open` or the first QR.
    let opened_or_qr = async {
        tokio::select! {
            code = qr_rx => code.ok(),
            _ = wait_until(shared, deadline, |t| t.opened.get(&id).is_some_and(|at| *at >= started)) => None,
        }
    };
    if let Some(code) = opened_or_qr.await {
        api.ensure_account(&phone).await?;
        let (status, body) = api
            .post(
                &format!("/sim/accounts/{phone}/scan"),
                json!({ "qr": code }),
            )
            .await?;
        if status != 200 {
            bail!("scan for {id}: {status} {body}");
        }
        paired_now.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    shared.lock().qr_waiters.remove(&id);
    if !wait_until(shared, deadline, |t| {
        t.opened.get(&id).is_some_and(|at| *at >= started)
    })
    .await
    {
        bail!("{id} not open within 120 s");
    }
    Ok(())
}

/// One message from the peer phone to every session; latency to the engine's `MessageUpsert`.
async fn inbound_round(
    args: &Args,
    round: usize,
    n: usize,
    api: &Api,
    shared: &Arc<Shared>,
) -> Result<Value> {
    let prog = Arc::new(Progress::new("msgs in", n));
    let sem = Arc::new(Semaphore::new(args.msg_concurrency.max(1)));
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let (api, sent) = (api.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let text = format!("bench-in-{round}-{i}");
            let at = Instant::now();
            sent.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(text.clone(), at);
            let r = api
                .post(
                    &format!("/sim/accounts/{PEER_PHONE}/messages"),
                    json!({ "to": format!("{}@s.whatsapp.net", phone_of(i)), "text": text }),
                )
                .await;
            drop(permit);
            match r {
                Ok((200, _)) => Ok(()),
                Ok((s, b)) => Err(anyhow!("send {s} {b}")),
                Err(e) => Err(e),
            }
        }));
        prog.show(i + 1);
    }
    let mut errors = 0;
    for t in tasks {
        if t.await?.is_err() {
            errors += 1;
        }
    }
    let sent = sent.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    let all = wait_until(shared, deadline, |t| {
        sent.keys().filter(|k| t.received.contains_key(*k)).count() + errors >= n
    })
    .await;
    let t = shared.lock();
    let mut lat = Vec::new();
    let mut last = t0;
    for (k, at) in &sent {
        if let Some(r) = t.received.get(k) {
            lat.push(ms(*r - *at));
            last = last.max(*r);
        }
    }
    let got = lat.len();
    let secs = (last - t0).as_secs_f64();
    let mut s = summary_ms(lat);
    s["sent"] = json!(n);
    s["send_errors"] = json!(errors);
    s["received"] = json!(got);
    s["all"] = json!(all);
    s["msgs_per_sec"] = json!(round2(got as f64 / secs.max(1e-9)));
    Ok(s)
}

/// One `send_text` from every session to the peer phone; latency to the server ack and to the
/// phone's delivery receipt (both arrive as `MessageUpdate`).
async fn outbound_round(
    args: &Args,
    round: usize,
    n: usize,
    manager: &SessionManager,
    shared: &Arc<Shared>,
) -> Result<Value> {
    let prog = Arc::new(Progress::new("msgs out", n));
    let sem = Arc::new(Semaphore::new(args.msg_concurrency.max(1)));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let handle = manager.get(&instance_name(i).as_str().into());
        tasks.push(tokio::spawn(async move {
            let Some(handle) = handle else {
                return Err(anyhow!("no session"));
            };
            let at = Instant::now();
            let r = handle
                .send_text(PEER_PHONE, &format!("bench-out-{round}-{i}"))
                .await;
            let resolved = at.elapsed();
            drop(permit);
            Ok((r?, at, resolved))
        }));
        prog.show(i + 1);
    }
    let mut sent = Vec::with_capacity(n);
    let mut errors = 0;
    for t in tasks {
        match t.await? {
            Ok(x) => sent.push(x),
            Err(e) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("\nsend_text failed: {e:#}");
                }
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let all = wait_until(shared, deadline, |t| {
        sent.iter()
            .filter(|(id, _, _)| t.updates.get(id).is_some_and(|u| u.1.is_some()))
            .count()
            >= sent.len()
    })
    .await;
    let t = shared.lock();
    let (mut acks, mut delivered) = (Vec::new(), Vec::new());
    let resolved: Vec<f64> = sent.iter().map(|(_, _, r)| ms(*r)).collect();
    let mut last = t0;
    for (id, at, _) in &sent {
        if let Some((ack, del)) = t.updates.get(id) {
            if let Some(a) = ack {
                acks.push(ms(*a - *at));
            }
            if let Some(d) = del {
                delivered.push(ms(*d - *at));
                last = last.max(*d);
            }
        }
    }
    let got = delivered.len();
    let secs = (last - t0).as_secs_f64();
    Ok(json!({
        "sent": sent.len(),
        "send_errors": errors,
        "all_delivered": all,
        "send_resolved": summary_ms(resolved),
        "server_ack": summary_ms(acks),
        "delivery_receipt": summary_ms(delivered),
        "delivered_per_sec": round2(got as f64 / secs.max(1e-9)),
    }))
}
