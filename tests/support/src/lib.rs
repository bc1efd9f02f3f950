//! Dev-only helpers shared by the integration tests of several crates. Never a dependency of
//! product code.
//!
//! [`Baileys`] drives the JSON-lines runner `tests/interop/baileys-sim.mjs`, which hosts unmodified
//! Baileys clients against a simulator: the simulator's own acceptance tests and the engine's
//! interop tests use the same driver, so a fix to the protocol between Rust and the runner lands
//! once.
//!
//! [`n8n`] starts real n8n (`tests/n8n`) with workflows and credentials imported, for the tests
//! that drive zapin with n8n's Evolution API node and for n8n as a chatbot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod n8n;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

/// `tests/interop`, where the runner and its `node_modules` live.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop")
}

/// `Some(reason)` if the Baileys runner cannot run here (no node, or `npm ci` not run).
pub fn missing_prerequisite() -> Option<String> {
    let dir = interop_dir();
    if !dir.join("node_modules/baileys/package.json").exists() {
        return Some(format!("{} has no node_modules/baileys", dir.display()));
    }
    match std::process::Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("node is not on PATH".to_string()),
    }
}

/// True (after printing why) if the runner cannot run here; panics instead under `CI=true`, where
/// a skipped interop test would hide a broken setup.
pub fn skip_without_node(suite: &str) -> bool {
    let Some(reason) = missing_prerequisite() else {
        return false;
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{suite} cannot run under CI: {reason}"
    );
    eprintln!("SKIPPED {suite}: {reason}");
    true
}

/// Where the runner connects: the simulator's root key (hex), WebSocket and control API URLs.
#[derive(Debug, Clone)]
pub struct SimEndpoints {
    pub root_hex: String,
    pub ws_url: String,
    pub http_url: String,
}

/// One `baileys-sim.mjs` process. Commands go in as JSON lines; events come back as JSON lines.
#[derive(Debug)]
pub struct Baileys {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// How long [`Baileys::wait`] waits for one event.
    deadline: Duration,
    /// Every event seen, for failure messages.
    log: Vec<Value>,
    /// Events read while waiting for something else, oldest first.
    backlog: VecDeque<Value>,
}

impl Baileys {
    /// Starts the runner and waits for its `ready` event. `deadline` bounds every later wait:
    /// Baileys against a debug-built simulator is slow (PBKDF2 for phone codes, 812-key uploads).
    pub async fn spawn(sim: &SimEndpoints, deadline: Duration) -> Self {
        let mut child = Command::new("node")
            .arg("baileys-sim.mjs")
            .current_dir(interop_dir())
            .env("ZAPIN_SIM_ROOT", &sim.root_hex)
            .env("ZAPIN_SIM_WS", &sim.ws_url)
            .env("ZAPIN_SIM_HTTP", &sim.http_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node baileys-sim.mjs");
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut b = Baileys {
            child,
            stdin,
            lines,
            deadline,
            log: Vec::new(),
            backlog: VecDeque::new(),
        };
        b.wait("ready", |e| e["event"] == "ready").await;
        b
    }

    pub async fn cmd(&mut self, cmd: Value) {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Reads events until one matches (first from the backlog); fails on timeout, on the
    /// runner's exit, or if the runner reports an error meanwhile.
    pub async fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).unwrap_or_default();
        }
        let deadline = Instant::now() + self.deadline;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(_) => panic!(
                    "baileys-sim exited while waiting for {what}; events: {:#?}",
                    self.log
                ),
                Err(_) => panic!("timed out waiting for {what}; events: {:#?}", self.log),
            };
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                panic!("baileys-sim printed a non-JSON line: {line:?}");
            };
            self.log.push(event.clone());
            if pred(&event) {
                return event;
            }
            assert_ne!(
                event["event"], "error",
                "baileys-sim error while waiting for {what}: {event}"
            );
            self.backlog.push_back(event);
        }
    }

    /// The `message` event of `client` with this text from `chat` (not one of its own).
    pub async fn message(&mut self, client: &str, chat: &str, text: &str) -> Value {
        self.wait(&format!("{client} to get {text:?}"), |e| {
            e["event"] == "message"
                && e["client"] == client
                && e["fromMe"] == false
                && e["from"] == chat
                && e["text"] == text
        })
        .await
    }

    /// Sends a text from `client` and returns the message id the runner reports.
    pub async fn send_text(&mut self, client: &str, to: &str, text: &str, req: &str) -> String {
        self.cmd(json!({"cmd": "send_text", "client": client, "to": to, "text": text, "req": req}))
            .await;
        let sent = self
            .wait(&format!("sent {req}"), |e| {
                e["event"] == "sent" && e["req"] == req
            })
            .await;
        sent["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Asks the runner to exit and waits for it a little; it is killed on drop otherwise.
    pub async fn exit(mut self) {
        self.cmd(json!({"cmd": "exit"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
