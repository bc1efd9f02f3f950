//! The simulator child process: this same binary with `serve`, so its memory and CPU are its own
//! (read from `/proc/<pid>/status` and `/proc/<pid>/stat`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use zapin_protocol::crypto::PublicKey;

use crate::Error;

/// `sim-load serve --seed S --state-dir DIR`: runs `zapin_sim::run` until stdin closes, then
/// shuts down (flushing `state.json`).
pub async fn serve(seed: u64, state_dir: &Path) -> Result<(), Error> {
    let sim = zapin_sim::run(zapin_sim::SimConfig {
        seed: Some(seed),
        state_dir: Some(state_dir.to_path_buf()),
        ..Default::default()
    })
    .await
    .map_err(|e| Error::Protocol(format!("sim: {e}")))?;
    println!(
        "READY {} {}",
        sim.local_addr(),
        hex(sim.root_public_key().as_bytes())
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = lines.next_line().await {}
    sim.shutdown()
        .await
        .map_err(|e| Error::Protocol(format!("sim shutdown: {e}")))?;
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A running simulator child.
pub struct SimProcess {
    child: Child,
    pub pid: u32,
    pub addr: String,
    pub root: PublicKey,
}

impl SimProcess {
    pub async fn start(seed: u64, state_dir: &Path) -> Result<SimProcess, Error> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("serve")
            .arg("--seed")
            .arg(seed.to_string())
            .arg("--state-dir")
            .arg(state_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| Error::Protocol("sim exited at once".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Protocol("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .map_err(|_| Error::Protocol("sim did not start within 120 s".into()))??
            .ok_or_else(|| Error::Protocol("sim exited before READY".into()))?;
        let mut parts = line.split_whitespace();
        let (Some("READY"), Some(addr), Some(root)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Protocol(format!("unexpected sim output: {line}")));
        };
        let root = unhex(root).ok_or_else(|| Error::Protocol("bad root key".into()))?;
        Ok(SimProcess {
            child,
            pid,
            addr: addr.to_string(),
            root: PublicKey(root),
        })
    }

    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/chat", self.addr)
    }

    /// Closes stdin and waits (bounded) for the graceful shutdown.
    pub async fn stop(mut self) -> Result<(), Error> {
        drop(self.child.stdin.take());
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(status) => {
                status?;
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                Err(Error::Protocol(
                    "sim did not stop within 60 s: killed".into(),
                ))
            }
        }
    }
}

/// `VmRSS` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| Error::Protocol("no VmRSS".into()))
}

/// `utime + stime` in clock ticks (USER_HZ, 100 on Linux x86_64).
pub fn cpu_ticks(pid: u32) -> Result<u64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| Error::Protocol("bad stat".into()))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| -> Result<u64, Error> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| Error::Protocol("bad stat field".into()))
    };
    // `rest` starts at field 3 (state), so field n is index n - 3.
    Ok(get(14 - 3)? + get(15 - 3)?)
}

/// `Threads` of the process.
pub fn threads(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::Protocol("no Threads".into()))
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
