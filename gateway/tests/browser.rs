//! A real browser on another origin against a live `zapin serve`: Debian's chromium, driven by
//! `tests/browser/cors-login.mjs` (playwright-core, which never downloads a browser), loads a
//! page from a small local HTTP server and, from that page, logs in as Evolution Manager does
//! (`GET /`, `POST /verify-creds`), creates an instance and lists them with `fetch`, preflights
//! included. A second page, on an origin outside `CORS_ORIGIN`, is refused everything.
//!
//! Needs `chromium` (`/usr/bin/chromium`, or `ZAPIN_CHROMIUM`), `node`, and `npm ci` in
//! `tests/browser`. Without them the test is skipped, saying why; under `CI=true` it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use serde_json::Value;

mod common;

use common::serve::Serve;
const KEY: &str = "browser-test-key";
const TIMEOUT: Duration = Duration::from_secs(90);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("ZAPIN_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why the browser test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let chromium = chromium();
    if !chromium.exists() {
        return Some(format!(
            "{} not found (apt-get install chromium, or set ZAPIN_CHROMIUM)",
            chromium.display()
        ));
    }
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    if !playwright.exists() {
        return Some(format!(
            "{} missing (run `npm ci` in tests/browser)",
            playwright.display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("node is not on PATH".to_owned()),
    }
}

/// Serves a blank page on its own origin (an ephemeral loopback port).
async fn page_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/",
        get(|| async { Html("<!doctype html><title>another origin</title>") }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    origin
}

/// Starts `zapin serve` with `CORS_ORIGIN`.
fn serve(data_dir: &Path, cors_origin: &str) -> Serve {
    Serve::start(&[
        ("ZAPIN_DATA_DIR", data_dir.to_str().unwrap()),
        ("AUTHENTICATION_API_KEY", KEY),
        ("CORS_ORIGIN", cors_origin),
    ])
}

#[tokio::test]
async fn a_page_on_another_origin_logs_in_and_lists_instances() {
    if let Some(reason) = missing_prerequisite() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the browser test cannot run under CI: {reason}"
        );
        eprintln!("SKIPPED browser test: {reason}");
        return;
    }
    let allowed = page_server().await;
    let refused = page_server().await;
    let data = tempfile::tempdir().unwrap();
    let server = serve(&data.path().join("data"), &allowed);
    let api = server.url.clone();

    let config = serde_json::json!({
        "chromium": chromium(),
        "api": api,
        "apikey": KEY,
        "pages": [
            {"url": format!("{allowed}/"), "instance": "from-allowed"},
            {"url": format!("{refused}/"), "instance": "from-refused"},
        ],
    });
    let run = tokio::process::Command::new("node")
        .arg("cors-login.mjs")
        .arg(config.to_string())
        .current_dir(browser_dir())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(TIMEOUT, run)
        .await
        .expect("the browser run timed out")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser run failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    let [ok, no] = [&result["pages"][0], &result["pages"][1]];

    // The allowed origin: every answer readable, each apikey request preflighted.
    assert_eq!(ok["origin"], allowed.as_str(), "{ok}");
    assert_eq!(ok["welcome"]["status"], 200, "{ok}");
    assert!(ok["welcome"]["body"]["version"].is_string(), "{ok}");
    assert_eq!(ok["verify"]["status"], 200, "{ok}");
    assert_eq!(
        ok["verify"]["body"]["message"], "Credentials are valid",
        "{ok}"
    );
    assert_eq!(ok["create"]["status"], 201, "{ok}");
    assert_eq!(ok["list"]["status"], 200, "{ok}");
    let names: Vec<&str> = ok["list"]["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, ["from-allowed"], "{ok}");
    for path in [
        "/verify-creds",
        "/instance/create",
        "/instance/fetchInstances",
    ] {
        assert!(
            ok["preflights"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == path),
            "no preflight for {path}: {ok}"
        );
    }

    // The other origin: the browser hands over nothing, and nothing was done.
    assert_eq!(no["origin"], refused.as_str(), "{no}");
    for call in ["welcome", "verify", "create", "list"] {
        assert!(
            no[call]["error"]
                .as_str()
                .is_some_and(|e| e.contains("TypeError")),
            "{call} from a refused origin: {no}"
        );
    }
    assert!(
        no["preflights"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/verify-creds"),
        "the refused page still asked first: {no}"
    );
    let listed: Value = reqwest::Client::new()
        .get(format!("{api}/instance/fetchInstances"))
        .header("apikey", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, ["from-allowed"]);
}
