//! The dashboard's onboarding in a real browser (Debian's chromium driven by
//! `tests/browser/dashboard.mjs`, playwright-core, no browser download) against the gateway wired
//! to an in-process simulator: a wrong password refused → sign in → "Add Instance" → QR shown
//! with its countdown decreasing → the engine rotates the code and the dialog follows → the
//! simulator phone scans it → the badge reads "connected" within 5 s, without a reload, with
//! the "Connected" state and the toast → a CSRF-less post refused → another tenant's user sees
//! none of it. Screenshots at desktop and phone width land in
//! `$CARGO_TARGET_DIR/dashboard-screenshots` (CI keeps them as artifacts).
//!
//! Needs `chromium` (`/usr/bin/chromium`, or `ZAPIN_CHROMIUM`), `node`, and `npm ci` in
//! `tests/browser`. Without them the test is skipped, saying why; under `CI=true` it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use zapin_gateway::db::Db;
use zapin_gateway::runtime;
use zapin_gateway::tenancy::Tenancy;
use zapin_gateway::{AppState, Config, app};
use zapin_sim::SimConfig;

const GLOBAL: &str = "dashboard-browser-key";
const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const TIMEOUT: Duration = Duration::from_secs(150);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("ZAPIN_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("dashboard-screenshots")
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

async fn admin(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let r = client
        .post(format!("{base}{path}"))
        .header("apikey", GLOBAL)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test]
async fn onboarding_in_a_real_browser() {
    if let Some(reason) = missing_prerequisite() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the browser test cannot run under CI: {reason}"
        );
        eprintln!("SKIPPED dashboard browser test: {reason}");
        return;
    }
    let sim = zapin_sim::run(SimConfig {
        seed: Some(18),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_env([
        ("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned()),
        ("ZAPIN_MASTER_KEY".to_owned(), MASTER_KEY.to_owned()),
        (
            "ZAPIN_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("ZAPIN_WA_WS_URL".to_owned(), sim.ws_url()),
        (
            "ZAPIN_WA_ROOT_PUBKEY".to_owned(),
            hex::encode(sim.root_public_key().0),
        ),
    ])
    .unwrap();
    let db = Db::open(&config).await.unwrap();
    let tenancy = Tenancy::start(&config, &db).await.unwrap();
    let state = AppState::new(config, db.clone()).with_tenancy(tenancy);
    let store = runtime::open_store(&state.config).await.unwrap();
    let mut engine_config = runtime::engine_config(&state.config);
    engine_config.prekey_initial_batch = 30;
    engine_config.prekey_refill_batch = 10;
    // A short first code, so the test sees the engine rotate it.
    engine_config.qr_first_ttl = Duration::from_secs(6);
    engine_config.qr_ttl = Duration::from_secs(30);
    let engine = runtime::start_with(
        store,
        engine_config,
        &state.config,
        &db,
        state.tokens.clone(),
    )
    .await
    .unwrap();
    let router = app(state.with_engine(engine.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });

    // Two tenants, a user each; a phone on the simulator.
    let client = reqwest::Client::new();
    admin(&client, &base, "/admin/plans", json!({"name": "free"})).await;
    let mut users = Vec::new();
    for (tenant, email) in [("acme", "ana@acme.test"), ("globex", "gil@globex.test")] {
        let t = admin(
            &client,
            &base,
            "/admin/tenants",
            json!({"name": tenant, "plan": "free"}),
        )
        .await;
        let password = format!("{tenant} password 123");
        admin(
            &client,
            &base,
            &format!("/admin/tenants/{}/users", t["id"].as_str().unwrap()),
            json!({"email": email, "password": password}),
        )
        .await;
        users.push(json!({"email": email, "password": password}));
    }
    let phone: Value = client
        .post(format!("{}/sim/accounts", sim.http_url()))
        .json(&json!({"push_name": "Ana Phone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let phone = phone["phone"].as_str().unwrap().to_owned();
    let phone2: Value = client
        .post(format!("{}/sim/accounts", sim.http_url()))
        .json(&json!({"push_name": "Ana Second Phone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let phone2 = phone2["phone"].as_str().unwrap().to_owned();

    let shots = screenshots_dir();
    // Fresh each run, so that every file checked below was taken by this run.
    let _ = std::fs::remove_dir_all(&shots);
    let run_config = json!({
        "chromium": chromium(),
        "base": base,
        "sim": sim.http_url(),
        "phone": phone,
        "phone2": phone2,
        "instance": "acme-support",
        "shots": shots,
        "users": users,
        "operatorKey": GLOBAL,
    });
    let run = tokio::process::Command::new("node")
        .arg("dashboard.mjs")
        .arg(run_config.to_string())
        .current_dir(browser_dir())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(TIMEOUT, run)
        .await
        .expect("the browser run timed out")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert!(out.status.success(), "browser run failed: {seen}\n{stderr}");

    assert_eq!(seen["badPassword"]["status"], 401, "{seen}");
    assert_eq!(seen["badPassword"]["path"], "/dashboard/login", "{seen}");
    assert_eq!(
        seen["badPassword"]["alert"], "Wrong e-mail or password.",
        "{seen}"
    );
    assert_eq!(seen["afterSignIn"], "/dashboard/instances", "{seen}");
    assert_eq!(seen["placeholder"], "my-whatsapp-instance", "{seen}");
    assert_eq!(seen["badgeBefore"], "disconnected", "{seen}");
    assert_eq!(seen["qr"]["width"], "248", "{seen}");
    assert_eq!(seen["qr"]["height"], "248", "{seen}");
    let countdown = seen["countdown"].as_array().unwrap();
    assert!(
        countdown[1].as_u64().unwrap() < countdown[0].as_u64().unwrap(),
        "{seen}"
    );
    assert_eq!(seen["badgeWhileQr"], "connecting", "{seen}");
    assert_eq!(seen["rotated"], true, "{seen}");
    assert_eq!(seen["scanStatus"], 200, "{seen}");
    assert!(
        seen["connectedAfterMs"].as_u64().unwrap() <= 5_000,
        "{seen}"
    );
    assert_eq!(seen["dialogConnected"], true, "{seen}");
    assert!(
        seen["toast"]
            .as_str()
            .unwrap()
            .contains("WhatsApp connected successfully!"),
        "{seen}"
    );
    assert_eq!(seen["noReload"], "still here", "{seen}");
    assert_eq!(seen["phoneShown"], format!("+{phone}"), "{seen}");
    assert_eq!(seen["pairingCode"].as_str().unwrap().len(), 8, "{seen}");
    assert_eq!(seen["linkCodeStatus"], 200, "{seen}");
    assert_eq!(seen["codeDialogConnected"], true, "{seen}");
    assert_eq!(seen["codeNoReload"], "still here", "{seen}");
    assert_eq!(
        seen["confirmText"], "Log out acme-support-code from WhatsApp?",
        "{seen}"
    );
    assert_eq!(seen["loggedOut"], true, "{seen}");
    assert_eq!(seen["csrfless"], 403, "{seen}");
    assert_eq!(seen["signIn"], 303, "{seen}");
    assert_eq!(seen["otherSignIn"], 303, "{seen}");
    assert_eq!(seen["otherCards"], 0, "{seen}");
    assert_eq!(seen["otherSeesName"], false, "{seen}");
    assert_eq!(seen["overviewConnected"], "1 of 2", "{seen}");
    assert_eq!(seen["instanceBadge"], "connected", "{seen}");
    let langs = &seen["languages"];
    assert_eq!(langs["pt"]["lang"], "pt-BR", "{seen}");
    assert_eq!(langs["pt"]["add"], "Adicionar Instância", "{seen}");
    assert_eq!(langs["pt"]["badge"], "conectada", "{seen}");
    assert_eq!(langs["id"]["lang"], "id", "{seen}");
    assert_eq!(langs["id"]["add"], "Tambah Instans", "{seen}");
    assert_eq!(langs["id"]["badge"], "terhubung", "{seen}");
    assert_eq!(langs["en"]["add"], "Add Instance", "{seen}");
    assert_eq!(
        seen["darkBackground"], "rgb(15, 18, 22)",
        "dark mode follows the system: {seen}"
    );
    assert_eq!(seen["operatorCards"], 2, "{seen}");
    assert_eq!(seen["tenantRows"], 2, "{seen}");

    // What the browser saw is what is stored.
    let stored = db.instance_by_name("acme-support").await.unwrap().unwrap();
    assert_eq!(stored.connection_status, "open");
    assert!(db.instance_by_name("csrf-less").await.unwrap().is_none());
    for page in [
        "login",
        "create-dialog",
        "instances",
        "connect-qr",
        "connected",
        "connect-code",
        "other-tenant",
        "keys",
        "overview",
        "instance",
        "instances-pt",
        "instances-id",
        "instances-dark",
        "tenants",
    ] {
        for width in ["desktop", "phone"] {
            let shot = shots.join(format!("{page}-{width}.png"));
            assert!(shot.exists(), "{} missing", shot.display());
        }
    }

    server.abort();
    engine.shutdown().await;
    sim.shutdown().await.unwrap();
}
