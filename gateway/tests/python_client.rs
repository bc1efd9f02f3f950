//! The official Evolution API Python client (`evolutionapi` 0.1.2, unmodified, from
//! `tests/python/.venv`) drives a live `zapin serve` wired to the simulator through every route
//! zapin serves that the client calls: create, fetch, connect, connection state, send text, send
//! presence, set presence, find messages, mark as read, every group call (create, subject,
//! description, picture, invite code, revoke, send invite, invite info, group info, all groups,
//! participants, update participant, setting, ephemeral, leave), profile status and picture (set,
//! remove), privacy (fetch, update), fetch profile, fetch business profile, profile name, restart,
//! logout, delete. Each call is checked by its effect
//! (`tests/python/drive_zapin.py`: the group's state and the account's profile at the simulator),
//! and the text and the read receipt are checked again here at the simulated phone.
//!
//! Needs `python3 -m venv tests/python/.venv && tests/python/.venv/bin/pip install -r
//! tests/python/requirements.txt` (what `.ci/run` does). Without it the test is skipped, saying
//! why; under `CI=true` it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use zapin_sim::SimConfig;

mod common;

use common::serve::Serve;
const KEY: &str = "python-client-key";
const TIMEOUT: Duration = Duration::from_secs(120);

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python")
}

fn python() -> PathBuf {
    python_dir().join(".venv/bin/python")
}

/// Why the client cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let ok = Command::new(python())
        .args(["-c", "import evolutionapi.client"])
        .output()
        .is_ok_and(|o| o.status.success());
    (!ok).then(|| {
        format!(
            "{} cannot import evolutionapi (python3 -m venv tests/python/.venv && \
             tests/python/.venv/bin/pip install -r tests/python/requirements.txt)",
            python().display()
        )
    })
}

async fn sim_post(sim: &str, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{sim}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn sim_get(sim: &str, path: &str) -> Value {
    reqwest::get(format!("{sim}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_official_python_client_drives_every_route_it_shares_with_zapin() {
    if let Some(reason) = missing_prerequisite() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the Python client test cannot run under CI: {reason}"
        );
        eprintln!("SKIPPED Python client test: {reason}");
        return;
    }
    let sim = zapin_sim::run(SimConfig {
        seed: Some(2024),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let sim_url = sim.http_url();
    let owner = sim_post(&sim_url, "/sim/accounts", json!({"push_name": "Owner"})).await["phone"]
        .as_str()
        .unwrap()
        .to_owned();
    let friend = sim_post(&sim_url, "/sim/accounts", json!({"push_name": "Friend"})).await["phone"]
        .as_str()
        .unwrap()
        .to_owned();

    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let root = hex::encode(sim.root_public_key().0);
    let ws = sim.ws_url();
    let server = Serve::start(&[
        ("ZAPIN_DATA_DIR", data_dir.to_str().unwrap()),
        ("AUTHENTICATION_API_KEY", KEY),
        ("ZAPIN_WA_WS_URL", ws.as_str()),
        ("ZAPIN_WA_ROOT_PUBKEY", root.as_str()),
    ]);
    let api = server.url.clone();

    let config =
        json!({"api": api, "apikey": KEY, "sim": sim_url, "owner": owner, "friend": friend});
    let run = tokio::process::Command::new(python())
        .arg("drive_zapin.py")
        .arg(config.to_string())
        .current_dir(python_dir())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(TIMEOUT, run)
        .await
        .expect("the Python client run timed out")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python client run failed:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));

    // The effects, seen from the simulated phones.
    let sent = seen["sent"].as_str().unwrap();
    let got = sim_get(&sim_url, &format!("/sim/accounts/{friend}/messages")).await;
    assert!(
        got.as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == sent && m["text"] == "hello from python"),
        "{got}"
    );
    let received = seen["received"].as_str().unwrap();
    let receipts = sim_get(
        &sim_url,
        &format!("/sim/accounts/{friend}/receipts?id={received}"),
    )
    .await;
    assert!(
        receipts
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "read"),
        "{receipts}"
    );
    assert_eq!(seen["setting"], "busy");
}
