//! The master key against the data, on SQLite (two files) and PostgreSQL (one database): the
//! start-up check adopts a key on fresh or legacy data and refuses a wrong one without writing
//! anything; rotation (offline, at start with the previous key, online through the key service)
//! re-seals every sealed value (instance tokens and lookup hashes, webhook and outbox secrets,
//! the signal store) and retires the old key once nothing needs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use zapin_gateway::Config;
use zapin_gateway::db::{Db, NewInstance, WebhookSet};
use zapin_gateway::http::TokenCipher;
use zapin_gateway::keys::{DataLock, KeyError, KeyService, LockError, SealedData};
use zapin_gateway::webhook::SecretCipher;
use zapin_signal_store::key_check::{self, KeyCheck};
use zapin_signal_store::{
    Address, DeviceCredentials, DeviceId, KeyPairBytes, MasterKey, Secret32, SignedPreKey, Store,
};

use common::{PgDatabase, eventually, postgres_url};

const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const K3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

fn key(hex_key: &str) -> MasterKey {
    MasterKey::parse(hex_key).unwrap()
}

/// A data directory and, for PostgreSQL, a database of its own.
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

    fn key_file(&self) -> std::path::PathBuf {
        self.dir.path().join("master.key")
    }

    /// `zapin serve`'s configuration, with the key from the environment when given.
    fn config(&self, current: Option<&str>, previous: Option<&str>) -> Config {
        let mut env = vec![(
            "ZAPIN_DATA_DIR".to_owned(),
            self.dir.path().display().to_string(),
        )];
        if let Some(pg) = &self.pg {
            env.push(("DATABASE_CONNECTION_URI".to_owned(), pg.url.clone()));
        }
        if let Some(k) = current {
            env.push(("ZAPIN_MASTER_KEY".to_owned(), k.to_owned()));
        }
        if let Some(k) = previous {
            env.push(("ZAPIN_MASTER_KEY_PREVIOUS".to_owned(), k.to_owned()));
        }
        let mut config = Config::from_env(env).unwrap();
        config.resolve_master_key().unwrap();
        config
    }

    /// Opens the databases as `zapin serve` does, before its key check.
    async fn open(&self, current: Option<&str>, previous: Option<&str>) -> Opened {
        let config = self.config(current, previous);
        let db = Db::open_unsealed(&config).await.unwrap();
        let store = zapin_gateway::runtime::open_store(&config).await.unwrap();
        let data = SealedData::new(
            db.clone(),
            store.clone(),
            config.keyring().unwrap(),
            config.key_source.clone().unwrap(),
        );
        Opened {
            config,
            db,
            store,
            data,
        }
    }

    async fn cleanup(self) {
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
    }
}

struct Opened {
    config: Config,
    db: Db,
    store: Store,
    data: SealedData,
}

impl Opened {
    fn tokens(&self) -> TokenCipher {
        TokenCipher::with_keyring(self.config.keyring())
    }

    fn secrets(&self) -> SecretCipher {
        SecretCipher::with_keyring(self.config.keyring())
    }

    async fn close(self) {
        self.store.close().await;
        self.db.close().await;
    }

    /// The key records of every database (two on SQLite, one on PostgreSQL).
    async fn records(&self) -> Vec<Option<KeyCheck>> {
        let mut out = Vec::new();
        if let Some(p) = self.db.sqlite_pool() {
            out.push(
                key_check::load(key_check::PoolRef::Sqlite(p))
                    .await
                    .unwrap(),
            );
        }
        out.push(key_check::load(self.store.pool().unwrap()).await.unwrap());
        out
    }
}

fn device(name: &str) -> DeviceId {
    DeviceId::new(name).unwrap()
}

fn credentials(seed: u8) -> DeviceCredentials {
    let pair = |tag: u8| KeyPairBytes::new([tag; 32], [tag.wrapping_add(seed); 32]);
    DeviceCredentials {
        registration_id: 7,
        noise_key: pair(1),
        identity_key: pair(2),
        signed_prekey: SignedPreKey {
            id: 1,
            key_pair: pair(3),
            signature: [seed; 64],
            created_at: 1_700_000_000,
        },
        adv_secret_key: Secret32::new([seed; 32]),
        account: None,
        push_name: None,
        platform: None,
        routing_info: None,
    }
}

/// An instance `name` with token `TOKEN-<name>`, a webhook secret `secret-<name>` and a pending
/// outbox event carrying it, and a device with a session in the signal store.
async fn populate(o: &Opened, name: &str) {
    let token = format!("TOKEN-{name}");
    let tokens = o.tokens();
    let mut tx = o.db.begin().await.unwrap();
    let inst = tx
        .create_instance(
            &NewInstance {
                name: name.to_owned(),
                token: tokens.seal(&token).unwrap(),
                token_hash: tokens.lookup(token.as_bytes()),
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
            url: "http://127.0.0.1:9/hook".to_owned(),
            enabled: true,
            events: vec!["MESSAGES_UPSERT".to_owned()],
            by_events: false,
            base64: false,
            headers: json!({}),
            secret: Some(
                o.secrets()
                    .seal(&inst.id, &format!("secret-{name}"))
                    .unwrap(),
            ),
        },
    )
    .await
    .unwrap();
    tx.enqueue_event(&inst.id, "MESSAGES_UPSERT", &json!({"n": name}))
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    let dev = device(&inst.id);
    o.store.create_device(&dev, &credentials(9)).await.unwrap();
    o.store
        .store_session(&dev, &Address::new("peer", 1), name.as_bytes())
        .await
        .unwrap();
}

/// What [`populate`] wrote opens with the keyring `o` was opened with.
async fn verify(o: &Opened, name: &str) {
    let inst = o.db.instance_by_name(name).await.unwrap().unwrap();
    let token = format!("TOKEN-{name}");
    let tokens = o.tokens();
    assert!(tokens.unlocks(&inst, token.as_bytes()), "{name}: token");
    assert_eq!(tokens.open(&inst.token).unwrap().as_str(), token);
    let mut tx = o.db.begin().await.unwrap();
    let hook = tx.get_webhook(&inst.id).await.unwrap().unwrap();
    tx.rollback().await.unwrap();
    let secret = format!("secret-{name}");
    assert_eq!(
        o.secrets()
            .open(&inst.id, hook.secret.as_deref().unwrap())
            .unwrap()
            .as_str(),
        secret
    );
    let pending = o.db.outbox_entries().await.unwrap();
    let entry = pending.iter().find(|e| e.instance_id == inst.id).unwrap();
    assert_eq!(
        o.secrets()
            .open(&inst.id, entry.secret.as_deref().unwrap())
            .unwrap()
            .as_str(),
        secret
    );
    let dev = device(&inst.id);
    let creds = o.store.load_credentials(&dev).await.unwrap().unwrap();
    assert_eq!(creds.adv_secret_key.expose(), &[9; 32]);
    assert_eq!(
        o.store
            .load_session(&dev, &Address::new("peer", 1))
            .await
            .unwrap()
            .as_deref(),
        Some(name.as_bytes())
    );
}

fn write_key_file(path: &Path, hex_key: &str) {
    key(hex_key).save_file(path).unwrap();
}

#[tokio::test]
async fn a_wrong_key_is_refused_before_anything_is_written() {
    for site in Site::all().await {
        // First start: the key file is created and every database adopts it.
        let o = site.open(None, None).await;
        let report = o.data.check_at_start().await.unwrap();
        assert!(!report.adopted.is_empty(), "{}", site.name());
        populate(&o, "a").await;
        let file_key = o.config.master_key.clone().unwrap();
        let records = o.records().await;
        assert!(
            records
                .iter()
                .all(|r| r.as_ref().unwrap().fingerprint == file_key.fingerprint()),
            "{records:?}"
        );
        o.close().await;

        // Another key from the environment: refused, naming the source, never the key.
        let o = site.open(Some(K2), None).await;
        let err = o.data.check_at_start().await.unwrap_err();
        assert!(matches!(err, KeyError::WrongKey { .. }), "{err}");
        assert!(err.is_mismatch());
        let text = err.to_string();
        assert!(
            text.contains("master key does not match the data"),
            "{text}"
        );
        assert!(text.contains("ZAPIN_MASTER_KEY"), "{text}");
        assert!(!text.contains(K2), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
        assert_eq!(o.records().await, records, "a refusal writes nothing");
        o.close().await;

        // Another key file: the message names the file.
        let original = std::fs::read(site.key_file()).unwrap();
        write_key_file(&site.key_file(), K3);
        let o = site.open(None, None).await;
        let text = o.data.check_at_start().await.unwrap_err().to_string();
        assert!(
            text.contains(&site.key_file().display().to_string()),
            "{text}"
        );
        assert!(!text.contains(K3), "{text}");
        o.close().await;

        // The right key again: everything opens.
        std::fs::write(site.key_file(), original).unwrap();
        let o = site.open(None, None).await;
        o.data.check_at_start().await.unwrap();
        verify(&o, "a").await;
        o.close().await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn legacy_data_without_a_record_adopts_only_a_key_that_opens_it() {
    for site in Site::all().await {
        // Written by a version without key checks: sealed values, no record. First only a
        // device in the signal store, so that on SQLite the gateway file has nothing sealed and
        // alone would accept any key.
        let o = site.open(Some(K1), None).await;
        o.store
            .create_device(&device("only-device"), &credentials(3))
            .await
            .unwrap();
        o.close().await;
        let o = site.open(Some(K2), None).await;
        let err = o.data.check_at_start().await.unwrap_err();
        assert!(matches!(err, KeyError::LegacyWrongKey { .. }), "{err}");
        assert!(
            o.records().await.iter().all(Option::is_none),
            "no database records a key another one refuses"
        );
        o.close().await;

        let o = site.open(Some(K1), None).await;
        populate(&o, "legacy").await;
        assert!(o.records().await.iter().all(Option::is_none));
        o.close().await;

        let o = site.open(Some(K2), None).await;
        let err = o.data.check_at_start().await.unwrap_err();
        assert!(matches!(err, KeyError::LegacyWrongKey { .. }), "{err}");
        assert!(err.to_string().contains("does not match the data"), "{err}");
        assert!(o.records().await.iter().all(Option::is_none));
        o.close().await;

        let o = site.open(Some(K1), None).await;
        let report = o.data.check_at_start().await.unwrap();
        assert_eq!(
            report.adopted.len(),
            if site.pg.is_some() { 1 } else { 2 },
            "{report:?}"
        );
        assert!(o.records().await.iter().all(|r| {
            r.as_ref()
                .is_some_and(|r| r.fingerprint == key(K1).fingerprint() && r.previous.is_none())
        }));
        verify(&o, "legacy").await;
        o.close().await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn offline_rotation_reseals_every_secret_and_retires_the_old_key() {
    for site in Site::all().await {
        let o = site.open(None, None).await;
        o.data.check_at_start().await.unwrap();
        populate(&o, "one").await;
        populate(&o, "two").await;
        let old = o.config.master_key.clone().unwrap();
        o.close().await;

        // `zapin keys rotate`: exclusive lock, then rotate in place.
        let o = site.open(None, None).await;
        let lock = DataLock::exclusive(site.dir.path(), &o.db).await.unwrap();
        let done = o.data.rotate_offline(&key(K2)).await.unwrap();
        let resealed: u64 = done.iter().map(|(_, r)| r.resealed).sum();
        // Per instance: token, webhook secret, outbox secret, credentials, signed prekey,
        // session.
        assert_eq!(resealed, 2 * 6, "{}: {done:?}", site.name());
        assert!(done.iter().all(|(_, r)| r.unreadable == 0 && r.raced == 0));
        lock.release().await;
        o.close().await;
        assert!(
            MasterKey::load_file(&site.key_file()).unwrap().unwrap() == key(K2),
            "the key file holds the new key"
        );
        assert!(
            !site.dir.path().join("master.key.previous").exists(),
            "the old key is gone"
        );

        // The new key alone opens everything, and the records name it alone.
        let o = site.open(Some(K2), None).await;
        let report = o.data.check_at_start().await.unwrap();
        assert!(report.finished.is_empty() && report.adopted.is_empty());
        verify(&o, "one").await;
        verify(&o, "two").await;
        assert!(o.records().await.iter().all(|r| {
            r.as_ref()
                .is_some_and(|r| r.fingerprint == key(K2).fingerprint() && r.previous.is_none())
        }));
        o.close().await;

        // The old key is refused.
        let old_hex = hex::encode(old.expose());
        let o = site.open(Some(&old_hex), None).await;
        assert!(matches!(
            o.data.check_at_start().await,
            Err(KeyError::WrongKey { .. })
        ));
        o.close().await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn a_start_with_a_new_key_and_the_old_one_as_previous_rotates() {
    for site in Site::all().await {
        let o = site.open(Some(K1), None).await;
        o.data.check_at_start().await.unwrap();
        populate(&o, "env").await;
        o.close().await;

        let o = site.open(Some(K2), Some(K1)).await;
        let report = o.data.check_at_start().await.unwrap();
        assert!(report.retired_previous);
        let resealed: u64 = report.finished.iter().map(|(_, r)| r.resealed).sum();
        assert_eq!(resealed, 6, "{report:?}");
        assert!(o.data.keys().get().previous().is_none());
        o.close().await;

        let o = site.open(Some(K2), None).await;
        o.data.check_at_start().await.unwrap();
        verify(&o, "env").await;
        o.close().await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn online_rotation_switches_at_once_and_the_next_start_finishes_it() {
    for site in Site::all().await {
        let o = site.open(Some(K1), None).await;
        o.data.check_at_start().await.unwrap();
        populate(&o, "before").await;
        let tokens = o.tokens();

        // Rotate while "serving": every cipher sharing the keyring switches.
        let service = KeyService::new(o.data.clone());
        let status = service.rotate(Some(key(K2))).await.unwrap();
        assert_eq!(status.fingerprint, key(K2).fingerprint().to_string());
        assert_eq!(
            status.previous_fingerprint,
            Some(key(K1).fingerprint().to_string())
        );
        assert!(
            tokens.seal("x").unwrap() != "x"
                && tokens.lookup(b"x") != TokenCipher::new(Some(key(K1))).lookup(b"x"),
            "new seals use the new key"
        );
        // A second rotation waits for the next start.
        assert!(service.rotate(Some(key(K3))).await.is_err());
        eventually("the online pass to finish", || async {
            (service.status().rotation.state == "done").then_some(())
        })
        .await;
        assert_eq!(service.status().rotation.unreadable, 0);
        verify(&o, "before").await;
        populate(&o, "after").await;
        // A late writer that still sealed under the old key (it took its snapshot before the
        // switch): readable now, re-sealed by the next start.
        let late = TokenCipher::new(Some(key(K1)));
        let mut tx = o.db.begin().await.unwrap();
        tx.create_instance(
            &NewInstance {
                name: "late".to_owned(),
                token: late.seal("TOKEN-late").unwrap(),
                token_hash: late.lookup(b"TOKEN-late"),
                integration: "WHATSAPP-BAILEYS".to_owned(),
                number: None,
                connection_status: "close".to_owned(),
            },
            |_| json!({}),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let row = o.db.instance_by_name("late").await.unwrap().unwrap();
        assert!(
            tokens.unlocks(&row, b"TOKEN-late"),
            "the previous key still reads"
        );
        o.close().await;

        // Restart with only the new key: the late value needs the old one.
        let o = site.open(Some(K2), None).await;
        let err = o.data.check_at_start().await.unwrap_err();
        assert!(matches!(err, KeyError::PreviousKeyNeeded { .. }), "{err}");
        assert!(
            err.to_string().contains(&key(K1).fingerprint().to_string()),
            "{err}"
        );
        assert!(
            err.to_string().contains("ZAPIN_MASTER_KEY_PREVIOUS"),
            "{err}"
        );
        o.close().await;

        // With it, the start finishes the rotation; after that the new key alone is enough.
        let o = site.open(Some(K2), Some(K1)).await;
        let report = o.data.check_at_start().await.unwrap();
        assert!(report.retired_previous, "{report:?}");
        o.close().await;
        let o = site.open(Some(K2), None).await;
        o.data.check_at_start().await.unwrap();
        verify(&o, "before").await;
        verify(&o, "after").await;
        let row = o.db.instance_by_name("late").await.unwrap().unwrap();
        assert!(o.tokens().unlocks(&row, b"TOKEN-late"));
        o.close().await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn rotate_is_refused_while_a_server_holds_the_data() {
    for site in Site::all().await {
        let o = site.open(Some(K1), None).await;
        let serving = DataLock::shared(site.dir.path(), &o.db).await.unwrap();
        let err = DataLock::exclusive(site.dir.path(), &o.db)
            .await
            .unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(err.to_string().contains("zapin serve is running"), "{err}");
        if site.pg.is_some() {
            // Another host (another data directory) is stopped by the database's lock.
            let elsewhere = tempfile::tempdir().unwrap();
            let err = DataLock::exclusive(elsewhere.path(), &o.db)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("database"), "{err}");
        }
        serving.release().await;
        // Once the server is gone, rotate may run; meanwhile a server may not start.
        let rotating = DataLock::exclusive(site.dir.path(), &o.db).await.unwrap();
        let err = DataLock::shared(site.dir.path(), &o.db).await.unwrap_err();
        assert!(err.to_string().contains("key rotation"), "{err}");
        rotating.release().await;
        tokio::time::timeout(Duration::from_secs(5), o.close())
            .await
            .unwrap();
        site.cleanup().await;
    }
}

// ---- the binary: `zapin serve` refuses a wrong key; `zapin keys rotate` ----

const API_KEY: &str = "keys-test-global";

fn serve_env<'a>(site: &'a Site, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("ZAPIN_DATA_DIR", site.dir.path().to_str().unwrap()),
        ("AUTHENTICATION_API_KEY", API_KEY),
    ];
    if let Some(pg) = &site.pg {
        env.push(("DATABASE_CONNECTION_URI", pg.url.as_str()));
    }
    env.extend_from_slice(extra);
    env
}

async fn call(
    url: &str,
    method: reqwest::Method,
    path: &str,
    key: &str,
) -> (u16, serde_json::Value) {
    let res = reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .header("apikey", key)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn serve_refuses_a_wrong_key_and_keys_rotate_moves_the_data_to_a_new_one() {
    use common::serve::{Serve, run_for};
    let limit = Duration::from_secs(60);
    for site in Site::all().await {
        // First start: key file created, instance with a token and a webhook secret.
        let serve = Serve::start(&serve_env(&site, &[]));
        let created = reqwest::Client::new()
            .post(format!("{}/instance/create", serve.url))
            .header("apikey", API_KEY)
            .json(&json!({"instanceName": "cli", "integration": "WHATSAPP-BAILEYS",
                "webhook": {"url": "http://127.0.0.1:9/x", "events": ["MESSAGES_UPSERT"], "secret": "cli-secret"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 201);
        let token = created.json::<serde_json::Value>().await.unwrap()["hash"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, keys) = call(&serve.url, reqwest::Method::GET, "/admin/keys", API_KEY).await;
        assert_eq!(status, 200, "{keys}");
        assert_eq!(keys["source"], "file");
        let (status, _) = call(&serve.url, reqwest::Method::GET, "/admin/keys", &token).await;
        assert_eq!(status, 401, "an instance token is no operator key");

        // Offline rotation is refused while serving.
        let busy = run_for(&["keys", "rotate"], &serve_env(&site, &[]), limit);
        assert_eq!(busy.status.code(), Some(1), "{busy:?}");
        assert!(busy.stderr.contains("zapin serve is running"), "{busy:?}");
        let (status, log) = serve.stop();
        assert!(status.success(), "{log}");
        let file_key = std::fs::read_to_string(site.key_file()).unwrap();

        // A wrong key: exit 2, one line naming the source and what to do, never the key.
        let wrong = run_for(
            &["serve"],
            &serve_env(&site, &[("ZAPIN_MASTER_KEY", K3)]),
            limit,
        );
        assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
        let lines: Vec<&str> = wrong
            .stderr
            .lines()
            .filter(|l| l.contains("master key"))
            .collect();
        assert_eq!(lines.len(), 1, "{}", wrong.stderr);
        assert!(lines[0].contains("does not match the data"), "{}", lines[0]);
        assert!(lines[0].contains("ZAPIN_MASTER_KEY"), "{}", lines[0]);
        assert!(lines[0].contains("Start with"), "{}", lines[0]);
        assert!(!wrong.stderr.contains(K3), "{}", wrong.stderr);
        assert!(!wrong.stderr.contains(file_key.trim()), "{}", wrong.stderr);
        assert!(!wrong.stdout.contains("listening"), "never served");

        // `zapin keys rotate` with the key file: a new key in place, the old one gone.
        let rotated = run_for(&["keys", "rotate"], &serve_env(&site, &[]), limit);
        assert!(rotated.status.success(), "{rotated:?}");
        assert!(rotated.stdout.contains("master key rotated"), "{rotated:?}");
        let new_file_key = std::fs::read_to_string(site.key_file()).unwrap();
        assert_ne!(new_file_key, file_key);
        assert!(!site.dir.path().join("master.key.previous").exists());
        assert!(
            !rotated.stdout.contains(new_file_key.trim()),
            "the key is never printed"
        );

        // The old key is refused now, the new one serves the same token.
        let old = run_for(
            &["serve"],
            &serve_env(&site, &[("ZAPIN_MASTER_KEY", file_key.trim())]),
            limit,
        );
        assert_eq!(old.status.code(), Some(2), "{old:?}");
        let serve = Serve::start(&serve_env(&site, &[]));
        let (status, state) = call(
            &serve.url,
            reqwest::Method::GET,
            "/instance/connectionState/cli",
            &token,
        )
        .await;
        assert_eq!(status, 200, "{state}");
        let (status, log) = serve.stop();
        assert!(status.success(), "{log}");

        // With the key in the environment, rotate needs the new key passed explicitly.
        let current = new_file_key.trim().to_owned();
        std::fs::remove_file(site.key_file()).unwrap();
        let generated = run_for(&["keys", "generate"], &[], limit);
        assert!(generated.status.success());
        let next = generated.stdout.trim().to_owned();
        assert_eq!(next.len(), 64);
        let refused = run_for(
            &["keys", "rotate"],
            &serve_env(&site, &[("ZAPIN_MASTER_KEY", &current)]),
            limit,
        );
        assert_eq!(refused.status.code(), Some(1), "{refused:?}");
        assert!(
            refused.stderr.contains("zapin keys generate"),
            "{refused:?}"
        );
        let rotated = run_for(
            &["keys", "rotate", "--new-key-env", "NEXT_KEY"],
            &serve_env(
                &site,
                &[("ZAPIN_MASTER_KEY", &current), ("NEXT_KEY", &next)],
            ),
            limit,
        );
        assert!(rotated.status.success(), "{rotated:?}");
        assert!(
            rotated.stdout.contains("set ZAPIN_MASTER_KEY"),
            "{rotated:?}"
        );
        assert!(
            !site.key_file().exists(),
            "no key file is written for an env key"
        );
        let serve = Serve::start(&serve_env(&site, &[("ZAPIN_MASTER_KEY", &next)]));
        let (status, _) = call(
            &serve.url,
            reqwest::Method::GET,
            "/instance/connectionState/cli",
            &token,
        )
        .await;
        assert_eq!(status, 200);
        let (status, log) = serve.stop();
        assert!(status.success(), "{log}");
        site.cleanup().await;
    }
}
