//! `media-bench`: encrypt + upload and download + decrypt + verify of one large generated file
//! through a session, against a simulator in a child process (this binary re-executed with
//! `--sim-child`, so the simulator's in-memory blob store does not count in our RSS).
//!
//! Reports throughput (MB/s, 10^6 bytes) and this process's memory: VmRSS before the transfer
//! and VmHWM (peak RSS) after each phase, from `/proc/self/status`. The file is generated on
//! the fly, never held: what the peak shows is the engine's streaming cost.
//!
//! Usage: `media-bench [--mib N]` (default 100). Record results in `benches/RESULTS.md`.

use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader, ReadBuf};
use zapin_engine::media::{MediaKind, MediaRef};
use zapin_engine::{ConnectionState, CreateOptions, EngineConfig, EventKind, SessionManager};
use zapin_signal_store::{MasterKey, Store};

fn main() -> Result<()> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if raw.first().map(String::as_str) == Some("--sim-child") {
        let mib: usize = raw.get(1).and_then(|v| v.parse().ok()).unwrap_or(100);
        return runtime.block_on(sim_child(mib));
    }
    let mib = match raw.as_slice() {
        [] => 100,
        [flag, n] if flag == "--mib" => n.parse().context("--mib N")?,
        other => bail!("usage: media-bench [--mib N] (got {other:?})"),
    };
    runtime.block_on(bench(mib))
}

/// The simulator with room for one blob of `mib` MiB: prints `READY <http> <ws> <root hex>`,
/// runs until stdin closes.
async fn sim_child(mib: usize) -> Result<()> {
    let cap = (mib + 16) * 1024 * 1024;
    let mut config = zapin_sim::SimConfig {
        seed: Some(7),
        ..zapin_sim::SimConfig::default()
    };
    config.media.max_blob_bytes = cap;
    config.media.max_total_bytes = cap * 2;
    let sim = zapin_sim::run(config).await.context("starting the sim")?;
    println!(
        "READY {} {} {}",
        sim.http_url(),
        sim.ws_url(),
        hex::encode(sim.root_public_key().as_bytes())
    );
    std::io::stdout().flush()?;
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    sim.shutdown().await.context("stopping the sim")?;
    Ok(())
}

/// `VmRSS` / `VmHWM` of this process, KiB.
fn mem_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `len` pseudo-random bytes (xorshift), generated as they are read, hashed on the way.
struct Generated {
    left: u64,
    x: u64,
    hash: Sha256,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left) as usize;
        let mut chunk = vec![0u8; n];
        for b in chunk.iter_mut() {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            *b = self.x as u8;
        }
        self.hash.update(&chunk);
        self.left -= n as u64;
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

/// Hashes what is written and drops it.
struct HashSink(Sha256, u64);

impl AsyncWrite for HashSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.update(buf);
        self.1 += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Result<Value> {
    let resp = client.post(url).json(&body).send().await?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}

async fn bench(mib: usize) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .arg("--sim-child")
        .arg(mib.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawning the sim child")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no child stdout"))?;
    let ready = tokio::time::timeout(
        Duration::from_secs(60),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .context("sim child did not start")??
    .ok_or_else(|| anyhow!("sim child exited"))?;
    let [_, http, ws, root] = ready.split_whitespace().collect::<Vec<_>>()[..] else {
        bail!("unexpected sim line {ready:?}");
    };
    let root: [u8; 32] = hex::decode(root)?
        .try_into()
        .map_err(|_| anyhow!("root key is not 32 bytes"))?;

    let client = reqwest::Client::new();
    let manager = SessionManager::new(
        Store::memory(&MasterKey::from_bytes([7; 32])),
        EngineConfig {
            ws_url: ws.to_owned(),
            trust_root: zapin_protocol::crypto::PublicKey::from_slice(&root)?,
            prekey_initial_batch: 30,
            ..EngineConfig::default()
        },
    );
    let mut events = manager.subscribe();
    let phone = post(
        &client,
        format!("{http}/sim/accounts"),
        json!({"push_name": "Bench"}),
    )
    .await?["phone"]
        .as_str()
        .ok_or_else(|| anyhow!("no phone"))?
        .to_owned();
    manager
        .create(
            "bench",
            CreateOptions {
                push_name: Some("Bench".into()),
                start: true,
            },
        )
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("pairing timed out")??;
        match ev.kind {
            EventKind::QrCode { code, .. } => {
                post(
                    &client,
                    format!("{http}/sim/accounts/{phone}/scan"),
                    json!({ "qr": code }),
                )
                .await?;
            }
            EventKind::Connection {
                state: ConnectionState::Open,
                ..
            } => break,
            _ => {}
        }
    }
    let handle = manager
        .get(&"bench".into())
        .ok_or_else(|| anyhow!("no session"))?;
    // Warm up: the HTTP client, media_conn and the code paths, so the baseline includes them.
    let warm = handle
        .upload_media(MediaKind::Document, &vec![1u8; 256 * 1024][..])
        .await?;
    handle
        .download_media(&MediaRef::from(&warm), &mut HashSink(Sha256::new(), 0))
        .await?;

    let len = (mib as u64) * 1024 * 1024;
    let rss_before = mem_kib("VmRSS:");
    let hwm_before = mem_kib("VmHWM:");
    let mut source = Generated {
        left: len,
        x: 0x9E37_79B9_7F4A_7C15,
        hash: Sha256::new(),
    };
    let t = Instant::now();
    let up = handle
        .upload_media(MediaKind::Document, &mut source)
        .await?;
    let upload_s = t.elapsed().as_secs_f64();
    let hwm_upload = mem_kib("VmHWM:");
    let plain_sha: [u8; 32] = source.hash.finalize().into();
    if up.file_sha256 != plain_sha || up.file_length != len {
        bail!("upload digest does not match the generated file");
    }

    let mut sink = HashSink(Sha256::new(), 0);
    let t = Instant::now();
    handle
        .download_media(&MediaRef::from(&up), &mut sink)
        .await?;
    let download_s = t.elapsed().as_secs_f64();
    let hwm_download = mem_kib("VmHWM:");
    let back: [u8; 32] = sink.0.finalize().into();
    if back != plain_sha || sink.1 != len {
        bail!("downloaded bytes differ from the uploaded ones");
    }

    let mb = len as f64 / 1e6;
    println!("file: {mib} MiB ({len} bytes), sha256 verified both ways");
    println!(
        "encrypt+upload:   {upload_s:.2} s, {:.1} MB/s",
        mb / upload_s
    );
    println!(
        "download+decrypt: {download_s:.2} s, {:.1} MB/s",
        mb / download_s
    );
    println!(
        "RSS before: {} KiB; peak before {} KiB; peak after upload {} KiB (+{} KiB); after download {} KiB (+{} KiB)",
        rss_before,
        hwm_before,
        hwm_upload,
        hwm_upload.saturating_sub(rss_before.max(hwm_before)),
        hwm_download,
        hwm_download.saturating_sub(rss_before.max(hwm_before)),
    );
    manager.shutdown().await;
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    Ok(())
}
