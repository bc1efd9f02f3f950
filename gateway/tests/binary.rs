//! The compiled `zapin` binary: subcommands, exit codes and a real `serve` process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const ZAPIN: &str = env!("CARGO_BIN_EXE_zapin");
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A `zapin` command with an empty environment, so the caller's variables cannot leak in.
fn zapin(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(ZAPIN);
    cmd.args(args).env_clear().envs(env.iter().copied());
    cmd
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    zapin(args, env).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_explains_every_subcommand() {
    let out = run(&["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in [
        "serve",
        "sim",
        "demo",
        "keys",
        "SERVER_PORT",
        "simulator",
        "README.md",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn demo_starts_the_sim_and_the_gateway_and_prints_a_walkthrough() {
    let mut child = zapin(
        &["demo"],
        &[("SERVER_PORT", "0"), ("AUTHENTICATION_API_KEY", "demo-key")],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
    while !seen
        .iter()
        .any(|l: &String| l.contains("/sim/accounts/") && l.contains("hi back"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let out = seen.join("\n");
    assert!(out.contains("API:       http://"), "{out}");
    assert!(out.contains("apikey:    demo-key"), "{out}");
    assert!(out.contains("/instance/connect/demo"), "{out}");
    assert!(out.contains("/message/sendText/demo"), "{out}");
    assert!(out.contains("hi back"), "{out}");
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = run(&["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_server_port_exits_2_naming_the_variable() {
    let out = run(&["serve"], &[("SERVER_PORT", "eighty")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("SERVER_PORT"), "{stderr}");
    assert!(stderr.contains("eighty"), "{stderr}");
}

#[test]
fn bad_master_key_is_reported_without_its_value() {
    let out = run(&["serve"], &[("ZAPIN_MASTER_KEY", "topsecret")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("ZAPIN_MASTER_KEY"), "{stderr}");
    assert!(!stderr.contains("topsecret"), "{stderr}");
}

/// Kills the child if the test fails before it is stopped cleanly.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn serve_answers_until_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let child = zapin(
        &["serve"],
        &[
            ("ZAPIN_DATA_DIR", data_dir.to_str().unwrap()),
            ("SERVER_PORT", "0"),
            ("ZAPIN_LISTEN_HOST", "127.0.0.1"),
            ("AUTHENTICATION_API_KEY", "binary-test-key"),
            // As verbose as it gets: secrets must stay out of the log even then.
            ("LOG_LEVEL", "ERROR,WARN,INFO,LOG,DEBUG,VERBOSE,WEBHOOKS"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut server = Running(Some(child));

    // Wait for the announcement line instead of sleeping.
    let stdout = server.0.as_mut().unwrap().stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(STARTUP_TIMEOUT)
        .expect("zapin serve did not announce its address");
    let url = line
        .strip_prefix("zapin listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();

    let body: serde_json::Value = reqwest::get(format!("{url}/"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], 200);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

    // The database is open: an instance can be created and listed.
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{url}/instance/create"))
        .header("apikey", "binary-test-key")
        .json(&serde_json::json!({"instanceName": "bin", "integration": "WHATSAPP-BAILEYS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let token = created["hash"].as_str().unwrap().to_owned();
    // Without ZAPIN_MASTER_KEY the key file is created and the token still works.
    assert!(data_dir.join("master.key").exists());
    let secret = "binary-webhook-secret";
    let set = client
        .post(format!("{url}/webhook/set/bin"))
        .header("apikey", &token)
        .json(
            &serde_json::json!({"webhook": {"enabled": true, "url": "http://127.0.0.1:9/x",
            "events": ["MESSAGES_UPSERT"], "secret": secret}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(set.status().as_u16(), 201);
    let listed: serde_json::Value = client
        .get(format!("{url}/instance/fetchInstances"))
        .header("apikey", "binary-test-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["name"], "bin");
    assert!(data_dir.join("zapin.sqlite3").exists());

    #[cfg(unix)]
    {
        // Graceful shutdown on SIGTERM: the process exits by itself with success.
        let pid = server.0.as_ref().unwrap().id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success());
        let mut child = server.0.take().unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = done_tx.send(());
            (status, child)
        });
        done_rx
            .recv_timeout(STARTUP_TIMEOUT)
            .expect("zapin serve did not stop after SIGTERM");
        let (status, mut child) = waiter.join().unwrap();
        assert!(status.unwrap().success());
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(stderr.contains("SIGTERM"), "{stderr}");
        assert!(!stderr.contains("binary-test-key"), "{stderr}");
        assert!(!stderr.contains(&token), "{stderr}");
        assert!(!stderr.contains(secret), "{stderr}");
        assert!(!stderr.contains("plain text"), "{stderr}");
    }
}

#[tokio::test]
async fn sim_serves_its_root_key_until_sigterm() {
    let child = zapin(&["sim", "--listen", "127.0.0.1:0", "--seed", "7"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Running(Some(child));
    let stdout = server.0.as_mut().unwrap().stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(STARTUP_TIMEOUT)
        .expect("zapin sim did not announce its address");
    // `zapin sim listening on http://ADDR ws=ws://ADDR/ws/chat root=HEX`
    let rest = line
        .strip_prefix("zapin sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let mut parts = rest.split(' ');
    let url = parts.next().unwrap().to_owned();
    let ws = parts.next().unwrap().strip_prefix("ws=").unwrap();
    let root = parts
        .next()
        .unwrap()
        .strip_prefix("root=")
        .unwrap()
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    assert_eq!(ws, format!("{}/ws/chat", url.replace("http://", "ws://")));
    assert_eq!(root.len(), 64, "{line}");

    let body: serde_json::Value = reqwest::get(format!("{url}/sim/root-key"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["public_key_hex"].as_str(),
        Some(root.as_str()),
        "{body}"
    );

    #[cfg(unix)]
    {
        let pid = server.0.as_ref().unwrap().id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success());
        let mut child = server.0.take().unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = done_tx.send(());
            status
        });
        done_rx
            .recv_timeout(STARTUP_TIMEOUT)
            .expect("zapin sim did not stop after SIGTERM");
        assert!(waiter.join().unwrap().unwrap().success());
    }
}

/// `zapin admin plans|tenants|tenant-keys`: an operator bootstraps a tenant without curl, and
/// the keys the commands print work against `zapin serve` on the same data.
#[tokio::test]
async fn admin_commands_bootstrap_a_tenant_whose_keys_serve_accepts() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let env = [
        ("ZAPIN_DATA_DIR", data_dir.to_str().unwrap()),
        ("AUTHENTICATION_API_KEY", "binary-admin-key"),
        ("SERVER_PORT", "0"),
        ("ZAPIN_LISTEN_HOST", "127.0.0.1"),
    ];
    let json_of = |out: &Output| -> serde_json::Value {
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };

    let plan = r#"{"name":"starter","quotas":{"instance_create":{"total":2}},"price_cents":1900}"#;
    let created = json_of(&run(&["admin", "plans", "add", plan], &env));
    assert_eq!(created["name"], "starter");
    let bad = run(&["admin", "plans", "add", "{not json"], &env);
    assert!(!bad.status.success());
    assert!(!text(&bad.stderr).is_empty());
    let plans = json_of(&run(&["admin", "plans", "list"], &env));
    assert_eq!(plans.as_array().unwrap().len(), 1, "{plans}");

    let acme = json_of(&run(
        &[
            "admin", "tenants", "add", "--name", "acme", "--plan", "starter",
        ],
        &env,
    ));
    let tenant_id = acme["id"].as_str().unwrap().to_owned();
    let first_key = acme["apiKey"].as_str().unwrap().to_owned();
    let no_plan = run(
        &["admin", "tenants", "add", "--name", "x", "--plan", "nope"],
        &env,
    );
    assert!(!no_plan.status.success());
    let second = json_of(&run(
        &["admin", "tenant-keys", "add", "--tenant", &tenant_id],
        &env,
    ));
    let second_key = second["apiKey"].as_str().unwrap().to_owned();
    assert_ne!(first_key, second_key);
    let unknown = run(&["admin", "tenant-keys", "add", "--tenant", "nobody"], &env);
    assert!(!unknown.status.success());
    let tenants = json_of(&run(&["admin", "tenants", "list"], &env));
    assert!(tenants.to_string().contains("acme"), "{tenants}");
    assert!(
        !tenants.to_string().contains(&first_key),
        "keys are shown once"
    );

    // zapin serve on the same data takes both keys as the tenant's.
    let child = zapin(&["serve"], &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Running(Some(child));
    let stdout = server.0.as_mut().unwrap().stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(STARTUP_TIMEOUT)
        .expect("zapin serve did not announce its address");
    let url = line
        .strip_prefix("zapin listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{url}/instance/create"))
        .header("apikey", &second_key)
        .json(&serde_json::json!({"instanceName": "acme-1", "integration": "WHATSAPP-BAILEYS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()
            .get("x-zapin-tenant-id")
            .and_then(|v| v.to_str().ok()),
        Some(tenant_id.as_str())
    );
    let listed: serde_json::Value = client
        .get(format!("{url}/instance/fetchInstances"))
        .header("apikey", &first_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["name"], "acme-1", "{listed}");
    drop(server);
}
