//! Secrets at rest, on SQLite and PostgreSQL: instance tokens and webhook secrets never reach a
//! row in plain text, the key file is reused across restarts, plain-text rows of earlier versions
//! are sealed on start, a changed master key answers 401, and signed deliveries still verify.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

mod common;

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use zapin_gateway::config::MasterKey;
use zapin_gateway::db::{Db, NewInstance, SealReport, WebhookSet};
use zapin_gateway::http::TokenCipher;
use zapin_gateway::webhook::{Dispatcher, DispatcherHandle, SecretCipher};
use zapin_gateway::{AppState, Config, app};

use common::{PgDatabase, Receiver, eventually, postgres_url};

const GLOBAL: &str = "global-test-key";
const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const K2: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Where a test's state lives: a data directory (key file, SQLite) and, for PostgreSQL, a
/// database of its own.
struct Site {
    dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

impl Site {
    async fn all() -> Vec<Site> {
        let mut out = vec![Site {
            dir: tempfile::tempdir().unwrap(),
            pg: None,
        }];
        if let Some(url) = postgres_url() {
            out.push(Site {
                dir: tempfile::tempdir().unwrap(),
                pg: Some(PgDatabase::create(&url).await),
            });
        }
        out
    }

    fn name(&self) -> &'static str {
        if self.pg.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// The configuration `zapin serve` would read, with `ZAPIN_MASTER_KEY` when given.
    fn config(&self, master_key: Option<&str>) -> Config {
        let mut env = vec![
            ("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned()),
            (
                "ZAPIN_DATA_DIR".to_owned(),
                self.dir.path().display().to_string(),
            ),
        ];
        if let Some(pg) = &self.pg {
            env.push(("DATABASE_CONNECTION_URI".to_owned(), pg.url.clone()));
        }
        if let Some(k) = master_key {
            env.push(("ZAPIN_MASTER_KEY".to_owned(), k.to_owned()));
        }
        Config::from_env(env).unwrap()
    }

    async fn cleanup(self) {
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
    }
}

/// One gateway process: key resolved and database opened as `zapin serve` does, HTTP on an
/// ephemeral port, the dispatcher running.
struct Process {
    base: String,
    db: Db,
    state: AppState,
    server: tokio::task::JoinHandle<()>,
    dispatcher: DispatcherHandle,
}

impl Process {
    async fn start(site: &Site, master_key: Option<&str>) -> Self {
        let mut config = site.config(master_key);
        config.resolve_master_key().unwrap();
        let db = Db::open(&config).await.unwrap();
        let mut deliveries = zapin_gateway::webhook::dispatcher_config(&config);
        deliveries.poll_interval = Duration::from_millis(100);
        deliveries.retry.max_attempts = 1000;
        deliveries.retry.initial_delay = Duration::from_millis(20);
        deliveries.retry.max_delay = Duration::from_millis(50);
        let dispatcher = Dispatcher::new(db.clone(), deliveries)
            .unwrap()
            .with_secrets(SecretCipher::new(config.master_key.as_ref()))
            .spawn();
        let state = AppState::new(config, db.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            db,
            state,
            server,
            dispatcher,
        }
    }

    async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        self.dispatcher.shutdown().await;
        self.db.close().await;
    }

    async fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "POST" => client.post(url),
            _ => client.get(url),
        }
        .header("apikey", key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn create(&self, name: &str) -> String {
        let (status, res) = self
            .call(
                "POST",
                "/instance/create",
                GLOBAL,
                Some(json!({"instanceName": name, "integration": "WHATSAPP-BAILEYS"})),
            )
            .await;
        assert_eq!(status, 201, "{res}");
        res["hash"].as_str().unwrap().to_owned()
    }

    async fn instance_id(&self, name: &str) -> String {
        self.db.instance_by_name(name).await.unwrap().unwrap().id
    }
}

/// Every text the secrets could hide in: instance tokens and hashes, webhook and outbox secrets.
async fn raw_secret_columns(db: &Db) -> Vec<String> {
    const QUERIES: [&str; 3] = [
        "SELECT token || ' ' || COALESCE(token_hash, '') FROM instances",
        "SELECT COALESCE(secret, '') FROM webhooks",
        "SELECT COALESCE(secret, '') FROM outbox",
    ];
    let mut out = Vec::new();
    for q in QUERIES {
        let rows: Vec<String> = match (db.sqlite_pool(), db.postgres_pool()) {
            (Some(p), _) => sqlx::query_scalar(q).fetch_all(p).await.unwrap(),
            (_, Some(p)) => sqlx::query_scalar(q).fetch_all(p).await.unwrap(),
            _ => unreachable!(),
        };
        out.extend(rows);
    }
    out
}

/// The SQLite files of a data directory, WAL included, as bytes.
fn sqlite_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("zapin.sqlite3") {
            all.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn enqueue(db: &Db, instance_id: &str, body: &Value) {
    let mut tx = db.begin().await.unwrap();
    tx.enqueue_event(instance_id, "MESSAGES_UPSERT", body)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
}

/// The receiver's check: HMAC-SHA256 over the raw body with the shared secret.
fn verify_signature(seen: &common::Seen, secret: &[u8]) {
    let sig = seen.header("x-zapin-signature").expect("a signature");
    let hex_mac = sig.strip_prefix("sha256=").unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(&seen.body);
    mac.verify_slice(&hex::decode(hex_mac).unwrap()).unwrap();
}

#[tokio::test]
async fn sealed_at_rest_signed_on_delivery_and_readable_after_a_restart_without_master_key() {
    for site in Site::all().await {
        let backend = site.name();
        let rx = Receiver::start().await;
        let gw = Process::start(&site, None).await;
        let key_file = site.dir.path().join("master.key");
        let key_text = std::fs::read_to_string(&key_file).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{backend}");
        }

        let token = gw.create("acme").await;
        let secret = "whsec-acme-0123456789";
        let (status, set) = gw
            .call(
                "POST",
                "/webhook/set/acme",
                &token,
                Some(
                    json!({"webhook": {"enabled": true, "url": format!("{}/in", rx.base),
                    "events": ["MESSAGES_UPSERT"], "secret": secret}}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{backend}: {set}");
        assert!(!set.to_string().contains(secret), "{backend}: {set}");
        // A later set without `secret` keeps the sealed one.
        let (status, _) = gw
            .call(
                "POST",
                "/webhook/set/acme",
                &token,
                Some(
                    json!({"webhook": {"enabled": true, "url": format!("{}/in", rx.base),
                    "events": ["MESSAGES_UPSERT"]}}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{backend}");
        let id = gw.instance_id("acme").await;
        let body = json!({"event": "messages.upsert", "instance": "acme", "data": {"n": 1}});
        // Hold the delivery in the outbox until the raw rows are checked: the receiver fails
        // every attempt until then (the dispatcher retries on 500).
        rx.always(common::Reply::Status(500));
        enqueue(&gw.db, &id, &body).await;

        let raw = raw_secret_columns(&gw.db).await;
        assert_eq!(raw.len(), 3, "{backend}: {raw:?}");
        for text in &raw {
            assert!(!text.contains(&token), "{backend}: token in {text}");
            assert!(!text.contains(secret), "{backend}: secret in {text}");
            assert!(text.starts_with("enc1:"), "{backend}: not sealed: {text}");
        }

        rx.always(common::Reply::Status(200));
        eventually("the outbox to drain", || async {
            gw.db
                .outbox_entries()
                .await
                .unwrap()
                .is_empty()
                .then_some(())
        })
        .await;
        let seen = rx.seen();
        assert!(!seen.is_empty(), "{backend}");
        for s in &seen {
            assert_eq!(s.json(), body);
            verify_signature(s, secret.as_bytes());
        }
        let delivered = seen.len();
        if site.pg.is_none() {
            let bytes = sqlite_bytes(site.dir.path());
            assert!(!bytes.is_empty());
            assert!(
                !contains(&bytes, token.as_bytes()),
                "token in the SQLite files"
            );
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "secret in the SQLite files"
            );
        }
        // Neither shows in Debug output.
        let inst = gw.db.instance_by_name("acme").await.unwrap().unwrap();
        let debug = format!("{inst:?} {:?} {:?}", gw.state.tokens, gw.state.secrets);
        assert!(
            !debug.contains(&inst.token) && !debug.contains(&token),
            "{debug}"
        );
        gw.stop().await;

        // Restart, still without ZAPIN_MASTER_KEY: the key file is reused and the token works.
        let gw = Process::start(&site, None).await;
        assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key_text);
        let (status, found) = gw.call("GET", "/webhook/find/acme", &token, None).await;
        assert_eq!(status, 200, "{backend}: {found}");
        let (status, mine) = gw
            .call("GET", "/instance/fetchInstances", &token, None)
            .await;
        assert_eq!(status, 200, "{backend}: {mine}");
        assert_eq!(mine.as_array().unwrap().len(), 1, "{backend}");
        assert_eq!(mine[0]["token"], token.as_str(), "{backend}: {mine}");
        let (status, _) = gw.call("GET", "/webhook/find/acme", "WRONG", None).await;
        assert_eq!(status, 401, "{backend}");
        // The signal store opens with the same key.
        let store_key = zapin_signal_store::MasterKey::resolve(None, site.dir.path()).unwrap();
        assert_eq!(
            gw.state.config.master_key.as_ref().unwrap().expose(),
            store_key.expose(),
            "{backend}"
        );

        // Signatures still verify after the restart.
        let body = json!({"event": "messages.upsert", "instance": "acme", "data": {"n": 2}});
        enqueue(&gw.db, &id, &body).await;
        let seen = rx.wait_for(delivered + 1).await;
        assert_eq!(seen[delivered].json(), body);
        verify_signature(&seen[delivered], secret.as_bytes());
        gw.stop().await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn plain_text_rows_of_earlier_versions_are_sealed_on_start() {
    for site in Site::all().await {
        let backend = site.name();
        let rx = Receiver::start().await;
        // An earlier version: no key, token and secret stored as given.
        let old = Db::open(&site.config(None)).await.unwrap();
        let legacy_token = "LEGACY-TOKEN-0001";
        let legacy_secret = "legacy-whsec-0001";
        let mut tx = old.begin().await.unwrap();
        let inst = tx
            .create_instance(
                &NewInstance {
                    name: "old".to_owned(),
                    token: legacy_token.to_owned(),
                    token_hash: None,
                    integration: "WHATSAPP-BAILEYS".to_owned(),
                    number: None,
                    connection_status: "close".to_owned(),
                },
                |_| json!({}),
            )
            .await
            .unwrap();
        tx.set_webhook(
            &inst.id,
            &WebhookSet {
                url: format!("{}/old", rx.base),
                enabled: true,
                events: vec!["MESSAGES_UPSERT".to_owned()],
                by_events: false,
                base64: false,
                headers: json!({}),
                secret: Some(legacy_secret.to_owned()),
            },
        )
        .await
        .unwrap();
        // An earlier version that had ZAPIN_MASTER_KEY: token sealed, but no lookup hash yet.
        let k1 = TokenCipher::new(Some(MasterKey::from_bytes(
            hex::decode(K1).unwrap().try_into().unwrap(),
        )));
        tx.insert_instance(&NewInstance {
            name: "sealed".to_owned(),
            token: k1.seal("LEGACY-SEALED-0002").unwrap(),
            token_hash: None,
            integration: "WHATSAPP-BAILEYS".to_owned(),
            number: None,
            connection_status: "close".to_owned(),
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        // A delivery still pending when the old version stopped (its outbox row has the secret).
        let body = json!({"event": "messages.upsert", "instance": "old", "data": {"n": 1}});
        enqueue(&old, &inst.id, &body).await;
        let raw = raw_secret_columns(&old).await;
        assert!(raw.iter().any(|t| t.contains(legacy_secret)), "{backend}");
        old.close().await;

        // The new version seals everything on start and the old token still authenticates.
        let gw = Process::start(&site, Some(K1)).await;
        let raw = raw_secret_columns(&gw.db).await;
        for text in &raw {
            assert!(!text.contains(legacy_token), "{backend}: token in {text}");
            assert!(!text.contains(legacy_secret), "{backend}: secret in {text}");
            assert!(text.starts_with("enc1:"), "{backend}: not sealed: {text}");
        }
        let (status, found) = gw
            .call("GET", "/webhook/find/old", legacy_token, None)
            .await;
        assert_eq!(status, 200, "{backend}: {found}");
        let (status, mine) = gw
            .call("GET", "/instance/fetchInstances", legacy_token, None)
            .await;
        assert_eq!(status, 200, "{backend}: {mine}");
        assert_eq!(mine[0]["token"], legacy_token, "{backend}");
        let (status, _) = gw
            .call("GET", "/webhook/find/sealed", "LEGACY-SEALED-0002", None)
            .await;
        assert_eq!(status, 200, "{backend}: a sealed row got its lookup hash");
        let (status, _) = gw
            .call("GET", "/webhook/find/sealed", legacy_token, None)
            .await;
        assert_eq!(status, 401, "{backend}: tenants stay apart");
        // The pending delivery is signed with the (now sealed) legacy secret.
        let seen = rx.wait_for(1).await;
        assert_eq!(seen[0].json(), body);
        verify_signature(&seen[0], legacy_secret.as_bytes());
        // Idempotent: a second pass changes nothing.
        let report = gw
            .db
            .seal_at_rest(&gw.state.tokens, &gw.state.secrets)
            .await
            .unwrap();
        assert_eq!(report, SealReport::default(), "{backend}");
        gw.stop().await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn a_changed_master_key_refuses_the_token_with_401() {
    for site in Site::all().await {
        let backend = site.name();
        let gw = Process::start(&site, Some(K1)).await;
        let token = gw.create("acme").await;
        let (status, _) = gw.call("GET", "/webhook/find/acme", &token, None).await;
        assert_eq!(status, 200, "{backend}");
        gw.stop().await;

        let gw = Process::start(&site, Some(K2)).await;
        let (status, body) = gw.call("GET", "/webhook/find/acme", &token, None).await;
        assert_eq!(status, 401, "{backend}: {body}");
        let (status, body) = gw
            .call("GET", "/instance/fetchInstances", &token, None)
            .await;
        assert_eq!(status, 401, "{backend}: {body}");
        // The global key still lists it; its token cannot be shown.
        let (status, all) = gw
            .call("GET", "/instance/fetchInstances", GLOBAL, None)
            .await;
        assert_eq!(status, 200, "{backend}: {all}");
        assert_ne!(all[0]["token"], token.as_str(), "{backend}");
        // The start-up pass leaves a row sealed under another key alone.
        let report = gw
            .db
            .seal_at_rest(&gw.state.tokens, &gw.state.secrets)
            .await
            .unwrap();
        assert_eq!(report.unreadable_tokens, 0, "hash present: nothing to redo");
        gw.stop().await;

        // Back under the right key, it works again.
        let gw = Process::start(&site, Some(K1)).await;
        let (status, _) = gw.call("GET", "/webhook/find/acme", &token, None).await;
        assert_eq!(status, 200, "{backend}");
        gw.stop().await;
        site.cleanup().await;
    }
}

#[test]
fn debug_output_hides_tokens_and_secrets() {
    let new = NewInstance {
        name: "n".to_owned(),
        token: "PLAIN-TOKEN-XYZ".to_owned(),
        token_hash: Some("HASH-XYZ".to_owned()),
        integration: "WHATSAPP-BAILEYS".to_owned(),
        number: None,
        connection_status: "close".to_owned(),
    };
    let set = WebhookSet {
        url: "http://x".to_owned(),
        enabled: true,
        events: vec![],
        by_events: false,
        base64: false,
        headers: json!({}),
        secret: Some("PLAIN-SECRET-XYZ".to_owned()),
    };
    let cipher = TokenCipher::new(None);
    let debug = format!("{new:?} {set:?} {cipher:?}");
    for hidden in ["PLAIN-TOKEN-XYZ", "HASH-XYZ", "PLAIN-SECRET-XYZ"] {
        assert!(!debug.contains(hidden), "{hidden} in {debug}");
    }
}
