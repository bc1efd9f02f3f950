//! Real n8n (installed in `tests/n8n` by `scripts/test`), started once per test file with its
//! own user folder in a temporary directory, on a free loopback port, offline.
//!
//! What a test hands it: workflows (n8n's export format, built with [`webhook_workflow`] and
//! [`evolution_node`] or written by hand) and credentials. They are imported with n8n's own CLI
//! (`import:credentials`, `import:workflow`, `update:workflow --all --active=true`) before
//! `n8n start`, so every workflow is active when the server announces itself, and a test triggers
//! them over HTTP (`POST /webhook/<path>`, see [`N8n::call`]).
//!
//! ```text
//! let n8n = N8n::start(N8nConfig {
//!     workflows: vec![webhook_workflow("wf1", "bot", vec![/* nodes after the trigger */])],
//!     credentials: vec![evolution_credential("zapin", &zapin_url, api_key)],
//!     ..N8nConfig::default()
//! })
//! .await;
//! let (status, answer) = n8n.call("bot", &json!({"text": "hi"})).await;
//! // or hand `n8n.webhook_url("bot")` to zapin as a bot's URL
//! ```
//!
//! Community packages installed in `tests/n8n/node_modules` (the Evolution API node,
//! `n8n-nodes-evolution-api`, unmodified) are linked into the user folder's `nodes/node_modules`,
//! where n8n loads the packages a user installs from its UI: the node's type is
//! `n8n-nodes-evolution-api.evolutionApi`, exactly as in a user's workflow.
//!
//! n8n runs with telemetry, version notifications, templates, banners, AI features, the public API
//! and licence renewal off, the licence server pointed at a closed local port, and the legacy
//! expression evaluator (the default one needs `isolated-vm`, which has no build for this
//! machine's Node).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// The Evolution API node's type as n8n names it once the package is installed.
pub const EVOLUTION_NODE: &str = "n8n-nodes-evolution-api.evolutionApi";
/// The Evolution API node's credential type.
pub const EVOLUTION_CREDENTIAL: &str = "evolutionApi";
/// The community packages linked into every n8n started here.
pub const COMMUNITY_PACKAGES: &[&str] = &["n8n-nodes-evolution-api"];

/// What n8n prints once its workflows are active and its webhooks answer.
const READY_LINE: &str = "Editor is now accessible via";

/// `tests/n8n`, where n8n and the community node live.
pub fn n8n_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../n8n")
}

fn n8n_bin() -> PathBuf {
    n8n_dir().join("node_modules/n8n/bin/n8n")
}

/// `Some(reason)` if n8n cannot run here (no node, `npm ci` not run, or sqlite3 not built).
pub fn missing_prerequisite() -> Option<String> {
    let dir = n8n_dir();
    if !n8n_bin().exists() {
        return Some(format!(
            "{} has no node_modules/n8n (scripts/test installs it)",
            dir.display()
        ));
    }
    for package in COMMUNITY_PACKAGES {
        if !dir
            .join("node_modules")
            .join(package)
            .join("package.json")
            .exists()
        {
            return Some(format!("{} has no node_modules/{package}", dir.display()));
        }
    }
    if !dir
        .join("node_modules/sqlite3/build/Release/node_sqlite3.node")
        .exists()
    {
        return Some(format!(
            "{} has no built sqlite3 (scripts/test rebuilds it from source)",
            dir.display()
        ));
    }
    match std::process::Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("node is not on PATH".to_string()),
    }
}

/// True (after printing why) if n8n cannot run here; panics instead under `CI=true`, where a
/// skipped client test would hide a broken setup.
pub fn skip_without_n8n(suite: &str) -> bool {
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

/// A credential in n8n's export format; `data` is the plain values (n8n encrypts them on import).
pub fn credential(id: &str, name: &str, kind: &str, data: Value) -> Value {
    json!({"id": id, "name": name, "type": kind, "data": data})
}

/// The Evolution API credential: the server URL and the API key the node sends as `apikey`.
pub fn evolution_credential(id: &str, server_url: &str, apikey: &str) -> Value {
    credential(
        id,
        id,
        EVOLUTION_CREDENTIAL,
        json!({"server-url": server_url, "apikey": apikey}),
    )
}

/// An Evolution API node (`resource`, `operation` and the rest of its parameters in `params`,
/// expressions such as `={{ $json.body.instanceName }}` included) using credential
/// `credential_id`. On error it continues with the node's own error item (`success: false`,
/// `error.details` carrying the HTTP status and answer) instead of failing the execution.
pub fn evolution_node(
    name: &str,
    resource: &str,
    operation: &str,
    params: Value,
    credential_id: &str,
) -> Value {
    let mut parameters = json!({"resource": resource, "operation": operation});
    if let (Some(all), Some(extra)) = (parameters.as_object_mut(), params.as_object()) {
        all.extend(extra.clone());
    }
    json!({
        "parameters": parameters,
        "name": name,
        "type": EVOLUTION_NODE,
        "typeVersion": 1,
        "position": [400, 0],
        "credentials": {EVOLUTION_CREDENTIAL: {"id": credential_id, "name": credential_id}},
        "onError": "continueRegularOutput"
    })
}

/// A workflow started by `POST /webhook/<path>` whose nodes run one after the other; the HTTP
/// answer is the first item of the last node (`responseMode: lastNode`). `id` must be unique
/// among the workflows of one n8n.
pub fn webhook_workflow(id: &str, path: &str, nodes: Vec<Value>) -> Value {
    let trigger = json!({
        "parameters": {
            "httpMethod": "POST",
            "path": path,
            "responseMode": "lastNode",
            "responseData": "firstEntryJson",
            "options": {}
        },
        "name": "Webhook",
        "type": "n8n-nodes-base.webhook",
        "typeVersion": 2,
        "position": [0, 0],
        "webhookId": format!("zapin-{id}")
    });
    let mut all = vec![trigger];
    all.extend(nodes);
    let mut connections = serde_json::Map::new();
    for pair in all.windows(2) {
        let (from, to) = (&pair[0]["name"], &pair[1]["name"]);
        connections.insert(
            from.as_str().unwrap_or_default().to_owned(),
            json!({"main": [[{"node": to, "type": "main", "index": 0}]]}),
        );
    }
    json!({
        "id": id,
        "name": format!("zapin {path}"),
        "active": true,
        "nodes": all,
        "connections": connections,
        "settings": {"executionOrder": "v1"}
    })
}

/// What to start n8n with.
#[derive(Debug, Clone)]
pub struct N8nConfig {
    pub workflows: Vec<Value>,
    pub credentials: Vec<Value>,
    /// Extra environment (overrides the defaults).
    pub env: Vec<(String, String)>,
    /// Bounds each CLI import and the server's start-up.
    pub startup_timeout: Duration,
    /// Bounds each [`N8n::call`].
    pub call_timeout: Duration,
}

impl Default for N8nConfig {
    fn default() -> Self {
        Self {
            workflows: Vec::new(),
            credentials: Vec::new(),
            env: Vec::new(),
            startup_timeout: Duration::from_secs(240),
            call_timeout: Duration::from_secs(90),
        }
    }
}

/// A running `n8n start`. Killed on drop; its user folder goes with it.
#[derive(Debug)]
pub struct N8n {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    log: Arc<Mutex<String>>,
    client: reqwest::Client,
    _home: tempfile::TempDir,
}

impl N8n {
    /// Imports `config`'s credentials and workflows, activates every workflow and starts the
    /// server; returns once it has announced itself (its webhooks answer from then on). Panics
    /// with n8n's output if any step fails or times out.
    pub async fn start(config: N8nConfig) -> Self {
        let home = tempfile::tempdir().expect("n8n user folder");
        link_community_packages(home.path());
        let port = free_port();
        let env = environment(home.path(), port, &config.env);
        if !config.credentials.is_empty() {
            let file = home.path().join("credentials.json");
            std::fs::write(&file, Value::Array(config.credentials.clone()).to_string()).unwrap();
            cli(
                &env,
                &["import:credentials", &format!("--input={}", file.display())],
                "Successfully imported",
                config.startup_timeout,
            )
            .await;
        }
        if !config.workflows.is_empty() {
            let file = home.path().join("workflows.json");
            std::fs::write(&file, Value::Array(config.workflows.clone()).to_string()).unwrap();
            cli(
                &env,
                &["import:workflow", &format!("--input={}", file.display())],
                "Successfully imported",
                config.startup_timeout,
            )
            .await;
            cli(
                &env,
                &["update:workflow", "--all", "--active=true"],
                "Activating all workflows",
                config.startup_timeout,
            )
            .await;
        }

        let mut child = command(&env)
            .arg("start")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn n8n start");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, mut ready_rx) = watch::channel(false);
        collect(child.stdout.take().unwrap(), log.clone(), Some(ready_tx));
        collect(child.stderr.take().unwrap(), log.clone(), None);
        let announced = tokio::time::timeout(config.startup_timeout, async {
            loop {
                if *ready_rx.borrow_and_update() {
                    return true;
                }
                if ready_rx.changed().await.is_err() {
                    // Both the line and the pipe are gone: n8n exited.
                    return *ready_rx.borrow();
                }
            }
        })
        .await;
        if announced != Ok(true) {
            let _ = child.kill().await;
            panic!(
                "n8n start did not announce itself within {:?}:\n{}",
                config.startup_timeout,
                log.lock().unwrap()
            );
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            client: reqwest::Client::builder()
                .timeout(config.call_timeout)
                .build()
                .unwrap(),
            _home: home,
        }
    }

    /// `POST /webhook/<path>` with `body`: the HTTP status and the answer (the last node's
    /// first item for [`webhook_workflow`]s; `Value::Null` if it is not JSON).
    pub async fn call(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.webhook_url(path))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /webhook/{path}: {e}\n{}", self.log()));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The production URL of the webhook at `path` (what zapin calls when n8n is a bot).
    pub fn webhook_url(&self, path: &str) -> String {
        format!("{}/webhook/{path}", self.url)
    }

    /// What n8n printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// n8n's environment: its own user folder and port, nothing that calls out to the internet.
fn environment(home: &Path, port: u16, extra: &[(String, String)]) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}/");
    let mut env: Vec<(String, String)> = [
        ("N8N_USER_FOLDER", home.display().to_string()),
        ("HOME", home.display().to_string()),
        ("N8N_PORT", port.to_string()),
        ("N8N_LISTEN_ADDRESS", "127.0.0.1".into()),
        ("N8N_HOST", "127.0.0.1".into()),
        ("N8N_PROTOCOL", "http".into()),
        ("WEBHOOK_URL", url.clone()),
        ("N8N_EDITOR_BASE_URL", url),
        ("N8N_ENCRYPTION_KEY", "zapin-test-n8n-encryption-key".into()),
        ("N8N_EXPRESSION_ENGINE", "legacy".into()),
        ("N8N_RUNNERS_ENABLED", "false".into()),
        ("N8N_DIAGNOSTICS_ENABLED", "false".into()),
        ("N8N_VERSION_NOTIFICATIONS_ENABLED", "false".into()),
        (
            "N8N_VERSION_NOTIFICATIONS_WHATS_NEW_ENABLED",
            "false".into(),
        ),
        ("N8N_TEMPLATES_ENABLED", "false".into()),
        ("N8N_PERSONALIZATION_ENABLED", "false".into()),
        ("N8N_HIRING_BANNER_ENABLED", "false".into()),
        ("N8N_DYNAMIC_BANNERS_ENABLED", "false".into()),
        ("N8N_AI_ENABLED", "false".into()),
        ("N8N_PUBLIC_API_DISABLED", "true".into()),
        ("N8N_PUBLIC_API_SWAGGERUI_DISABLED", "true".into()),
        ("N8N_LICENSE_AUTO_RENEW_ENABLED", "false".into()),
        ("N8N_LICENSE_SERVER_URL", "http://127.0.0.1:9/".into()),
        ("N8N_VERIFIED_PACKAGES_ENABLED", "false".into()),
        ("N8N_REINSTALL_MISSING_PACKAGES", "false".into()),
        ("N8N_DISABLE_UI", "true".into()),
        ("N8N_SECURE_COOKIE", "false".into()),
        ("N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS", "false".into()),
        ("N8N_LOG_LEVEL", "info".into()),
        ("GENERIC_TIMEZONE", "UTC".into()),
        ("TZ", "UTC".into()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (key, value) in extra {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    env
}

/// `node …/n8n` with exactly `env` (nothing of the caller's environment leaks in).
fn command(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(n8n_bin())
        .current_dir(n8n_dir())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null());
    cmd
}

/// Runs an n8n CLI command to completion; panics with its output unless it succeeded and
/// printed `success`.
async fn cli(env: &[(String, String)], args: &[&str], success: &str, limit: Duration) {
    let run = command(env).args(args).kill_on_drop(true).output();
    let out = tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| panic!("n8n {args:?} did not finish within {limit:?}"))
        .expect("spawn n8n");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains(success),
        "n8n {args:?} failed ({}):\n{text}",
        out.status
    );
}

/// Links every package of [`COMMUNITY_PACKAGES`] into `<home>/.n8n/nodes/node_modules`.
fn link_community_packages(home: &Path) {
    let nodes = home.join(".n8n/nodes/node_modules");
    std::fs::create_dir_all(&nodes).unwrap();
    for package in COMMUNITY_PACKAGES {
        let target = n8n_dir().join("node_modules").join(package);
        std::os::unix::fs::symlink(&target, nodes.join(package)).unwrap();
    }
}

/// Appends every line of `pipe` to `log`; flags `ready` on n8n's announce line (and closes it
/// when the pipe ends).
fn collect(
    pipe: impl AsyncRead + Unpin + Send + 'static,
    log: Arc<Mutex<String>>,
    ready: Option<watch::Sender<bool>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(ready) = &ready
                && line.contains(READY_LINE)
            {
                let _ = ready.send(true);
            }
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
