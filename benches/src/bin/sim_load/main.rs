//! `sim-load`: how many logged-in device connections one simulator process holds, and at what
//! memory and CPU cost (issue 5, deliverable 5).
//!
//! ```text
//! sim-load --n 10000 --state-dir /tmp/sim-load-state [--seed 5] [--concurrency 64]
//!          [--idle-secs 60] [--ping-secs 25] [--burst 5]
//! ```
//!
//! The simulator runs in a child process (this binary with `serve`), so `/proc/<pid>` shows its
//! own RSS and CPU. Devices are paired through the real QR flow (registration, control-API scan,
//! `pair-success`, `pair-device-sign`) once and remembered in `<state-dir>/load-devices.json`
//! next to the simulator's `state.json`, so later runs only log in. The simulator is restarted
//! after pairing so the baseline is the loaded state without any connection.
//!
//! Every loop is bounded in count and time; only loopback addresses are used.

mod client;
mod proc;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;

use client::{Client, Companion, server_jid};
use proc::SimProcess;

#[derive(Debug)]
pub enum Error {
    Io(std::io::Error),
    Protocol(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "io: {e}"),
            Error::Protocol(s) => f.write_str(s),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

#[derive(Debug, Clone)]
struct Args {
    n: u32,
    seed: u64,
    state_dir: PathBuf,
    concurrency: usize,
    idle_secs: u64,
    ping_secs: u64,
    burst: u32,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, Error> {
    let mut a = Args {
        n: 1000,
        seed: 5,
        state_dir: PathBuf::from("/tmp/sim-load-state"),
        concurrency: 64,
        idle_secs: 60,
        ping_secs: 25,
        burst: 5,
    };
    let bad = |what: &str| Error::Protocol(format!("bad or missing value for {what}"));
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| bad(&flag));
        match flag.as_str() {
            "--n" => a.n = value()?.parse().map_err(|_| bad("--n"))?,
            "--seed" => a.seed = value()?.parse().map_err(|_| bad("--seed"))?,
            "--state-dir" => a.state_dir = PathBuf::from(value()?),
            "--concurrency" => {
                a.concurrency = value()?.parse().map_err(|_| bad("--concurrency"))?
            }
            "--idle-secs" => a.idle_secs = value()?.parse().map_err(|_| bad("--idle-secs"))?,
            "--ping-secs" => a.ping_secs = value()?.parse().map_err(|_| bad("--ping-secs"))?,
            "--burst" => a.burst = value()?.parse().map_err(|_| bad("--burst"))?,
            other => return Err(Error::Protocol(format!("unknown flag {other}"))),
        }
    }
    if a.n == 0 || a.n > 9_999_999 || a.concurrency == 0 || a.ping_secs == 0 {
        return Err(Error::Protocol(
            "--n 1..9999999, --concurrency and --ping-secs > 0".into(),
        ));
    }
    Ok(a)
}

#[tokio::main]
async fn main() {
    let mut argv = std::env::args().skip(1).peekable();
    let result = if argv.peek().map(String::as_str) == Some("serve") {
        argv.next();
        match parse_args(argv) {
            Ok(a) => proc::serve(a.seed, &a.state_dir).await,
            Err(e) => Err(e),
        }
    } else {
        match parse_args(argv) {
            Ok(a) => run(a).await,
            Err(e) => Err(e),
        }
    };
    if let Err(e) = result {
        eprintln!("sim-load: {e}");
        std::process::exit(1);
    }
}

fn devices_file(dir: &Path) -> PathBuf {
    dir.join("load-devices.json")
}

/// Device number per index (0 = not paired yet).
fn load_devices(dir: &Path) -> Vec<u16> {
    std::fs::read(devices_file(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_devices(dir: &Path, devices: &[u16]) -> Result<(), Error> {
    let tmp = dir.join("load-devices.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(devices).map_err(|e| Error::Protocol(e.to_string()))?,
    )?;
    std::fs::rename(tmp, devices_file(dir))?;
    Ok(())
}

/// Pairs every index below `n` that has no device yet. Returns (paired now, seconds).
async fn pair_missing(args: &Args, devices: &mut Vec<u16>) -> Result<(u32, f64), Error> {
    devices.resize(args.n as usize, 0);
    let missing: Vec<u32> = (0..args.n).filter(|i| devices[*i as usize] == 0).collect();
    if missing.is_empty() {
        return Ok((0, 0.0));
    }
    let sim = SimProcess::start(args.seed, &args.state_dir).await?;
    let http = reqwest::Client::new();
    let base = sim.http();
    let ws_url = sim.ws_url();
    let start = Instant::now();
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for &i in &missing {
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let (http, base, ws_url, root) = (http.clone(), base.clone(), ws_url.clone(), sim.root);
        tasks.spawn(async move {
            let _permit = permit;
            let phone = Companion::phone(i);
            let created = http
                .post(format!("{base}/sim/accounts"))
                .json(&serde_json::json!({ "phone": phone }))
                .send()
                .await
                .map_err(|e| Error::Protocol(format!("create {phone}: {e}")))?;
            if !(created.status() == 201 || created.status() == 409) {
                return Err(Error::Protocol(format!(
                    "create {phone}: {}",
                    created.status()
                )));
            }
            let c = Companion::new(i);
            let fut = client::pair(&http, &base, &ws_url, &root, &c);
            let device = tokio::time::timeout(Duration::from_secs(120), fut)
                .await
                .map_err(|_| Error::Protocol(format!("pairing {phone} took over 120 s")))??;
            Ok::<_, Error>((i, device))
        });
        while let Some(done) = tasks.try_join_next() {
            record(done, devices)?;
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(done, devices)?;
    }
    let secs = start.elapsed().as_secs_f64();
    save_devices(&args.state_dir, devices)?;
    sim.stop().await?;
    println!(
        "paired {} devices in {secs:.1} s ({:.0}/s, concurrency {})",
        missing.len(),
        missing.len() as f64 / secs,
        args.concurrency
    );
    Ok((missing.len() as u32, secs))
}

fn record(
    done: Result<Result<(u32, u16), Error>, tokio::task::JoinError>,
    devices: &mut [u16],
) -> Result<(), Error> {
    let (i, device) = done.map_err(|e| Error::Protocol(format!("task: {e}")))??;
    if let Some(slot) = devices.get_mut(i as usize) {
        *slot = device;
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Counters {
    logged_in: AtomicU64,
    login_failed: AtomicU64,
    dropped: AtomicU64,
    pings_sent: AtomicU64,
    pongs: AtomicU64,
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    message_acks: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hold,
    Burst(u32),
    Stop,
}

/// Holds one logged-in connection: pings every `ping_every` (first one staggered), counts what
/// arrives, sends the burst when told.
async fn hold(
    mut client: Client,
    index: u32,
    partner: Option<(String, u16)>,
    mut phase: watch::Receiver<Phase>,
    counters: Arc<Counters>,
    ping_every: Duration,
) {
    let first = ping_every.mul_f64(f64::from(index % 1000) / 1000.0);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + first, ping_every);
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            msg = client.ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    client.push(&b);
                    loop {
                        match client.buffered() {
                            Ok(Some(node)) => count(&node, &counters),
                            Ok(None) => break,
                            Err(_) => {
                                counters.dropped.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
            _ = ping.tick() => {
                next_id += 1;
                let node = Node::new("iq")
                    .attr("id", format!("p{next_id}"))
                    .attr("to", server_jid())
                    .attr("xmlns", "w:p")
                    .attr("type", "get")
                    .children(vec![Node::new("ping")]);
                if client.send(&node).await.is_err() {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                counters.pings_sent.fetch_add(1, Ordering::Relaxed);
            }
            changed = phase.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = *phase.borrow_and_update();
                match now {
                    Phase::Hold => {}
                    Phase::Stop => {
                        let _ = client.ws.close(None).await;
                        return;
                    }
                    Phase::Burst(k) => {
                        let Some((phone, device)) = partner.as_ref() else { continue };
                        for j in 0..k {
                            let to = Jid::pn(phone.clone());
                            let mut target = Jid::pn(phone.clone());
                            target.device = *device;
                            let node = Node::new("message")
                                .attr("id", format!("L{index}.{j}"))
                                .attr("to", to)
                                .attr("type", "text")
                                .children(vec![Node::new("participants").children(vec![
                                    Node::new("to").attr("jid", target).children(vec![
                                        Node::new("enc")
                                            .attr("v", "2")
                                            .attr("type", "msg")
                                            .bytes(vec![0x33; 120]),
                                    ]),
                                ])]);
                            if client.send(&node).await.is_err() {
                                counters.dropped.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            counters.messages_sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }
}

fn count(node: &Node, c: &Counters) {
    match &*node.tag {
        "message" => {
            c.messages_received.fetch_add(1, Ordering::Relaxed);
        }
        "ack" if node.attr_str("class") == Some("message") => {
            c.message_acks.fetch_add(1, Ordering::Relaxed);
        }
        "iq" if node.attr_str("type") == Some("result")
            && node.attr_str("id").is_some_and(|id| id.starts_with('p')) =>
        {
            c.pongs.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Waits (bounded) until `check` holds, polling every 10 ms.
async fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}

async fn devices_online(http: &reqwest::Client, base: &str) -> Result<u64, Error> {
    let v: serde_json::Value = http
        .get(format!("{base}/sim/stats"))
        .send()
        .await
        .map_err(|e| Error::Protocol(format!("stats: {e}")))?
        .json()
        .await
        .map_err(|e| Error::Protocol(format!("stats: {e}")))?;
    Ok(v["devices_online"].as_u64().unwrap_or(0))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn run(args: Args) -> Result<(), Error> {
    std::fs::create_dir_all(&args.state_dir)?;
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "sim-load: n={} seed={} state_dir={} load average {}",
        args.n,
        args.seed,
        args.state_dir.display(),
        proc::loadavg()
    );
    let mut devices = load_devices(&args.state_dir);
    let (paired_now, pair_secs) = pair_missing(&args, &mut devices).await?;

    // A fresh simulator with the paired state and no connection.
    let sim = SimProcess::start(args.seed, &args.state_dir).await?;
    let http = reqwest::Client::new();
    let base = sim.http();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss0 = proc::rss_kib(sim.pid)?;
    let threads0 = proc::threads(sim.pid)?;
    println!("baseline: sim pid {} RSS {:.1} MiB", sim.pid, mib(rss0));

    let counters = Arc::new(Counters::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Hold);
    let ping_every = Duration::from_secs(args.ping_secs);
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let mut logins = tokio::task::JoinSet::new();
    let mut holders = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..args.n {
        let device = devices.get(i as usize).copied().unwrap_or(0);
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let (ws_url, root) = (sim.ws_url(), sim.root);
        logins.spawn(async move {
            let _permit = permit;
            let c = Companion::new(i);
            let fut = client::login(&ws_url, &root, &c, device);
            match tokio::time::timeout(Duration::from_secs(60), fut).await {
                Ok(Ok(client)) => Ok((i, client)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(Error::Protocol(format!("login {i} took over 60 s"))),
            }
        });
        while let Some(done) = logins.try_join_next() {
            start_holder(
                done,
                &devices,
                &counters,
                &phase_rx,
                ping_every,
                &mut holders,
            );
        }
    }
    while let Some(done) = logins.join_next().await {
        start_holder(
            done,
            &devices,
            &counters,
            &phase_rx,
            ping_every,
            &mut holders,
        );
    }
    let connect_secs = start.elapsed().as_secs_f64();
    let logged_in = counters.logged_in.load(Ordering::Relaxed);
    let mut online = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        online = devices_online(&http, &base).await?;
        if online >= logged_in {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "connected {logged_in}/{} in {connect_secs:.1} s ({:.0}/s); sim reports {online} online; {} failed",
        args.n,
        f64::from(args.n) / connect_secs,
        counters.login_failed.load(Ordering::Relaxed)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_n = proc::rss_kib(sim.pid)?;
    let threads_n = proc::threads(sim.pid)?;
    let per_conn_kib = (rss_n.saturating_sub(rss0)) as f64 / logged_in.max(1) as f64;
    let load_rss = proc::rss_kib(std::process::id())?;
    println!("load generator: RSS {:.1} MiB", mib(load_rss));
    println!(
        "at {logged_in} connections: RSS {:.1} MiB (+{:.1} MiB) = {:.1} KiB per connection; threads {threads0} -> {threads_n}",
        mib(rss_n),
        mib(rss_n.saturating_sub(rss0)),
        per_conn_kib
    );

    // An idle stretch: only keepalive pings.
    let load_idle_start = proc::loadavg();
    let ticks0 = proc::cpu_ticks(sim.pid)?;
    let pongs0 = counters.pongs.load(Ordering::Relaxed);
    let idle_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle_wall = idle_start.elapsed().as_secs_f64();
    let ticks1 = proc::cpu_ticks(sim.pid)?;
    let idle_cpu_secs = (ticks1 - ticks0) as f64 / 100.0;
    let pongs_idle = counters.pongs.load(Ordering::Relaxed) - pongs0;
    let dropped_idle = counters.dropped.load(Ordering::Relaxed);
    let rss_idle = proc::rss_kib(sim.pid)?;
    println!(
        "idle {idle_wall:.0} s: sim CPU {idle_cpu_secs:.2} s ({:.1}% of one core), {pongs_idle} pings answered, {dropped_idle} connections dropped, RSS {:.1} MiB, load average {}",
        100.0 * idle_cpu_secs / idle_wall,
        mib(rss_idle),
        load_idle_start
    );

    // The burst: every device sends `burst` messages to its partner (index ^ 1).
    let expected = u64::from(args.n & !1) * u64::from(args.burst);
    let received0 = counters.messages_received.load(Ordering::Relaxed);
    let ticks_b0 = proc::cpu_ticks(sim.pid)?;
    let burst_start = Instant::now();
    let _ = phase_tx.send(Phase::Burst(args.burst));
    let c2 = counters.clone();
    let all = wait_until(Duration::from_secs(120), || {
        c2.messages_received.load(Ordering::Relaxed) - received0 >= expected
    })
    .await;
    let burst_secs = burst_start.elapsed().as_secs_f64();
    let ticks_b1 = proc::cpu_ticks(sim.pid)?;
    let delivered = counters.messages_received.load(Ordering::Relaxed) - received0;
    let acks = counters.message_acks.load(Ordering::Relaxed);
    let routed_per_sec = delivered as f64 / burst_secs;
    let rss_burst = proc::rss_kib(sim.pid)?;
    println!(
        "burst: {delivered}/{expected} messages delivered in {burst_secs:.2} s ({routed_per_sec:.0}/s{}), {acks} acks, sim CPU {:.2} s, RSS after {:.1} MiB",
        if all { "" } else { ", TIMED OUT" },
        (ticks_b1 - ticks_b0) as f64 / 100.0,
        mib(rss_burst)
    );

    let _ = phase_tx.send(Phase::Stop);
    let stop_end = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::timeout_at(stop_end, holders.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    holders.abort_all();
    sim.stop().await?;

    let summary = serde_json::json!({
        "date": date,
        "n": args.n,
        "seed": args.seed,
        "concurrency": args.concurrency,
        "paired_now": paired_now,
        "pair_secs": pair_secs,
        "logged_in": logged_in,
        "login_failed": counters.login_failed.load(Ordering::Relaxed),
        "sim_devices_online": online,
        "connect_secs": connect_secs,
        "rss_baseline_kib": rss0,
        "rss_at_n_kib": rss_n,
        "rss_per_connection_kib": per_conn_kib,
        "sim_threads": threads_n,
        "load_generator_rss_kib": load_rss,
        "idle_secs": idle_wall,
        "idle_cpu_secs": idle_cpu_secs,
        "idle_cpu_percent_of_core": 100.0 * idle_cpu_secs / idle_wall,
        "ping_secs": args.ping_secs,
        "pings_answered_idle": pongs_idle,
        "dropped": counters.dropped.load(Ordering::Relaxed),
        "burst_per_device": args.burst,
        "burst_expected": expected,
        "burst_delivered": delivered,
        "burst_secs": burst_secs,
        "burst_routed_per_sec": routed_per_sec,
        "burst_acks": acks,
        "rss_after_burst_kib": rss_burst,
        "load_average_idle_start": load_idle_start,
        "load_average_end": proc::loadavg(),
    });
    println!("{summary}");
    Ok(())
}

fn start_holder(
    done: Result<Result<(u32, Client), Error>, tokio::task::JoinError>,
    devices: &[u16],
    counters: &Arc<Counters>,
    phase: &watch::Receiver<Phase>,
    ping_every: Duration,
    holders: &mut tokio::task::JoinSet<()>,
) {
    match done {
        Ok(Ok((i, client))) => {
            counters.logged_in.fetch_add(1, Ordering::Relaxed);
            let partner_index = i ^ 1;
            let partner = devices
                .get(partner_index as usize)
                .filter(|d| **d != 0)
                .map(|d| (Companion::phone(partner_index), *d));
            holders.spawn(hold(
                client,
                i,
                partner,
                phase.clone(),
                counters.clone(),
                ping_every,
            ));
        }
        Ok(Err(e)) => {
            let failed = counters.login_failed.fetch_add(1, Ordering::Relaxed);
            if failed < 5 {
                eprintln!("login failed: {e}");
            }
        }
        Err(e) => {
            counters.login_failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("login task: {e}");
        }
    }
}
