//! Master key handling, reopening, redaction and crash safety. Some tests re-run this test binary
//! as a child process (`child_entry`, selected by `ZAPIN_STORE_CHILD`) to get a real environment
//! variable or a process that can be killed with SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use zapin_signal_store::testing::service_url;
use zapin_signal_store::{
    Address, Batch, KeyFormatError, MASTER_KEY_FILE, MasterKey, MasterKeyError, PostgresOptions,
    SenderKeyName, SqliteOptions, Store, StoreError,
};

const CHILD_MODE: &str = "ZAPIN_STORE_CHILD";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `child_entry` of this test binary in a new process with `envs` set.
fn child(envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_entry", "--exact", "--nocapture", "--test-threads=1"]);
    cmd.env_remove(CHILD_MODE);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

// ---- master key ----

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn key_file_is_created_0600_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let first = MasterKey::resolve(None, &data).unwrap();
    let path = data.join(MASTER_KEY_FILE);
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    // No temporary file is left next to it.
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 1);

    let again = MasterKey::resolve(Some(""), &data).unwrap();
    assert!(MasterKey::parse(&text).unwrap() == again);
    assert!(first == again);
}

#[cfg(unix)]
#[test]
fn key_file_with_wider_permissions_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    MasterKey::resolve(None, dir.path()).unwrap();
    let path = dir.path().join(MASTER_KEY_FILE);
    for bad in [0o640, 0o604, 0o644, 0o666] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).unwrap();
        match MasterKey::resolve(None, dir.path()) {
            Err(MasterKeyError::InsecurePermissions { mode, .. }) => assert_eq!(mode, bad),
            other => panic!("mode {bad:o}: expected InsecurePermissions, got {other:?}"),
        }
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    MasterKey::resolve(None, dir.path()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    MasterKey::resolve(None, dir.path()).unwrap();
}

#[cfg(unix)]
#[test]
fn malformed_key_file_is_refused() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MASTER_KEY_FILE);
    let cases: [(&[u8], KeyFormatError); 4] = [
        (b"", KeyFormatError::Empty),
        (b"not a key at all!", KeyFormatError::NotHexOrBase64),
        (b"00112233", KeyFormatError::WrongLength(4)),
        (&[0xFF, 0xFE, 0x00], KeyFormatError::NotHexOrBase64),
    ];
    for (content, expected) in cases {
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        f.write_all(content).unwrap();
        drop(f);
        match MasterKey::resolve(None, dir.path()) {
            Err(MasterKeyError::BadKeyFile { reason, .. }) => assert_eq!(reason, expected),
            // Invalid UTF-8 is reported by the read itself.
            Err(MasterKeyError::Io { .. }) if content == [0xFF, 0xFE, 0x00] => {}
            other => panic!("{content:?}: expected BadKeyFile({expected:?}), got {other:?}"),
        }
    }
}

#[test]
fn env_value_formats() {
    let dir = tempfile::tempdir().unwrap();
    let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let b64 = "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=";
    let from_hex = MasterKey::resolve(Some(hex), dir.path()).unwrap();
    let from_b64 = MasterKey::resolve(Some(b64), dir.path()).unwrap();
    let from_b64_nopad = MasterKey::resolve(Some(b64.trim_end_matches('=')), dir.path()).unwrap();
    let upper =
        MasterKey::resolve(Some(&format!(" {}\n", hex.to_uppercase())), dir.path()).unwrap();
    for k in [&from_b64, &from_b64_nopad, &upper] {
        assert!(*k == from_hex);
    }
    // The environment wins: no key file was created.
    assert!(!dir.path().join(MASTER_KEY_FILE).exists());

    let bad: [(&str, KeyFormatError); 7] = [
        ("   ", KeyFormatError::Empty),
        (&hex[..62], KeyFormatError::WrongLength(31)),
        ("deadbeef", KeyFormatError::WrongLength(4)),
        // Not hex, but valid base64 of the wrong size.
        (
            "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            KeyFormatError::WrongLength(48),
        ),
        ("QUJD", KeyFormatError::WrongLength(3)),
        (
            "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8AAAA=",
            KeyFormatError::WrongLength(35),
        ),
        ("!!!!", KeyFormatError::NotHexOrBase64),
    ];
    for (value, expected) in bad {
        match MasterKey::resolve(Some(value), dir.path()) {
            Err(MasterKeyError::BadEnvValue(reason)) => assert_eq!(reason, expected, "{value:?}"),
            other => panic!("{value:?}: expected BadEnvValue, got {other:?}"),
        }
    }
}

#[test]
fn bad_env_var_in_a_real_process_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = child(&[
        (CHILD_MODE, "load_key"),
        ("ZAPIN_MASTER_KEY", "deadbeef"),
        ("ZAPIN_STORE_CHILD_DIR", dir.path().to_str().unwrap()),
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("LOAD_KEY: Err(BadEnvValue(WrongLength(4)))"),
        "child said: {stdout}"
    );
    assert!(!dir.path().join(MASTER_KEY_FILE).exists());
}

#[test]
fn service_url_skips_locally_and_fails_under_ci() {
    let var = "ZAPIN_STORE_TEST_UNSET_SERVICE";
    let local = child(&[(CHILD_MODE, "service_url"), ("CI", "false")])
        .env_remove(var)
        .output()
        .unwrap();
    assert!(local.status.success());
    assert!(String::from_utf8_lossy(&local.stdout).contains("SERVICE_URL: None"));

    let ci = child(&[(CHILD_MODE, "service_url"), ("CI", "true")])
        .env_remove(var)
        .output()
        .unwrap();
    assert!(!ci.status.success(), "a missing service must fail under CI");

    let set = child(&[
        (CHILD_MODE, "service_url"),
        ("CI", "true"),
        (var, "postgres://x"),
    ])
    .output()
    .unwrap();
    assert!(set.status.success());
    assert!(String::from_utf8_lossy(&set.stdout).contains("SERVICE_URL: Some(\"postgres://x\")"));
}

// ---- reopening and redaction ----

#[test]
fn sqlite_reopen_keeps_data_and_rejects_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let options = SqliteOptions::new(dir.path().join("data"));
        let store = Store::open_sqlite(&options, &master_key()).await.unwrap();
        let dev = device("reopen");
        store.create_device(&dev, &paired(50)).await.unwrap();
        store
            .store_session(&dev, &Address::new("p", 0), b"rec")
            .await
            .unwrap();
        store.close().await;

        // Migrations are idempotent; data survives.
        let store = Store::open_sqlite(&options, &master_key()).await.unwrap();
        assert_eq!(
            store.load_credentials(&dev).await.unwrap(),
            Some(paired(50))
        );
        assert_eq!(
            store
                .load_session(&dev, &Address::new("p", 0))
                .await
                .unwrap(),
            Some(b"rec".to_vec())
        );
        store.close().await;

        let wrong = Store::open_sqlite(&options, &MasterKey::from_bytes([1; 32]))
            .await
            .unwrap();
        assert!(matches!(
            wrong.load_credentials(&dev).await,
            Err(StoreError::Decrypt { table: "devices" })
        ));
        assert!(matches!(
            wrong.load_session(&dev, &Address::new("p", 0)).await,
            Err(StoreError::Decrypt { table: "sessions" })
        ));
        wrong.close().await;
    });
    #[cfg(unix)]
    assert_eq!(mode(&dir.path().join("data")), 0o700);
}

#[test]
fn debug_output_never_shows_secrets() {
    let creds = paired(60);
    let text = format!(
        "{creds:?} {:?} {:?} {:?}",
        prekey(3),
        master_key(),
        Batch::new()
            .store_session(Address::new("a", 1), b"CHAIN-KEY-BYTES".to_vec())
            .store_sender_key(
                SenderKeyName::new("g", Address::new("a", 1)),
                b"SENDER-CHAIN".to_vec()
            )
    );
    for secret in [
        creds.noise_key.private.expose(),
        creds.identity_key.private.expose(),
        creds.adv_secret_key.expose(),
        creds.signed_prekey.key_pair.private.expose(),
        prekey(3).key_pair.private.expose(),
    ] {
        assert!(!text.contains(&format!("{:?}", secret)), "{text}");
        assert!(!text.contains(&hex_of(secret)), "{text}");
    }
    assert!(
        !text.contains("CHAIN-KEY-BYTES") && !text.contains(&format!("{:?}", b"CHAIN-KEY-BYTES"))
    );
    assert!(text.contains("redacted"));
    assert!(
        !text.contains("66, 66, 66"),
        "master key bytes leaked: {text}"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- crash safety ----

const CRASH_PREKEYS: u32 = 1000;
const CRASH_KILL_AFTER: u32 = 150;

fn crash_record(i: u32) -> Vec<u8> {
    let len = 100 + (i as usize * 37) % 900;
    (0..len).map(|j| (i as usize * 131 + j) as u8).collect()
}

fn crash_group(i: u32) -> SenderKeyName {
    SenderKeyName::new("crash@g.us", Address::new(format!("member{i}"), 0))
}

/// Where the crash test's store lives: a SQLite directory or a PostgreSQL schema.
#[derive(Clone)]
enum CrashTarget {
    Sqlite(String),
    Postgres { url: String, schema: String },
}

impl CrashTarget {
    fn envs(&self) -> Vec<(&'static str, String)> {
        match self {
            CrashTarget::Sqlite(dir) => vec![("ZAPIN_STORE_CHILD_DIR", dir.clone())],
            CrashTarget::Postgres { url, schema } => vec![
                ("ZAPIN_STORE_CHILD_PG_URL", url.clone()),
                ("ZAPIN_STORE_CHILD_PG_SCHEMA", schema.clone()),
            ],
        }
    }

    fn from_env() -> Self {
        match std::env::var("ZAPIN_STORE_CHILD_DIR") {
            Ok(dir) => CrashTarget::Sqlite(dir),
            Err(_) => CrashTarget::Postgres {
                url: std::env::var("ZAPIN_STORE_CHILD_PG_URL").unwrap(),
                schema: std::env::var("ZAPIN_STORE_CHILD_PG_SCHEMA").unwrap(),
            },
        }
    }

    async fn open(&self) -> Store {
        match self {
            CrashTarget::Sqlite(dir) => Store::open_sqlite(&SqliteOptions::new(dir), &master_key())
                .await
                .unwrap(),
            CrashTarget::Postgres { url, schema } => {
                let mut o = PostgresOptions::new(url.clone());
                o.schema = Some(schema.clone());
                o.max_connections = 4;
                Store::open_postgres(&o, &master_key()).await.unwrap()
            }
        }
    }
}

/// Child side: applies numbered batches forever, printing `ack i` after each returns `Ok`.
async fn crash_writer() {
    let store = CrashTarget::from_env().open().await;
    let dev = device("crash");
    let mut out = std::io::stdout().lock();
    for i in 1..=CRASH_PREKEYS {
        let batch = Batch::new()
            .store_session(Address::new(format!("peer{i}"), 1), crash_record(i))
            .remove_prekey(i)
            .store_sender_key(crash_group(i), crash_record(i + 1));
        store.apply(&dev, batch).await.unwrap();
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

fn run_crash_test(target: CrashTarget) {
    let rt = runtime();
    rt.block_on(async {
        let store = target.open().await;
        let dev = device("crash");
        store.create_device(&dev, &paired(70)).await.unwrap();
        let prekeys: Vec<_> = (1..=CRASH_PREKEYS).map(prekey).collect();
        store.insert_prekeys(&dev, &prekeys).await.unwrap();
        store.close().await;
    });

    let envs = target.envs();
    let mut cmd = child(&[(CHILD_MODE, "crash_writer")]);
    for (k, v) in &envs {
        cmd.env(k, v);
    }
    let mut proc = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = proc.stdout.take().unwrap();
    let mut acked = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked = n.parse::<u32>().unwrap();
            if acked >= CRASH_KILL_AFTER {
                break;
            }
        }
    }
    // Child::kill sends SIGKILL: no destructors, no flush, no orderly close.
    proc.kill().unwrap();
    let status = proc.wait().unwrap();
    assert!(
        acked >= CRASH_KILL_AFTER,
        "child stopped early at {acked} ({status:?})"
    );

    rt.block_on(async {
        let store = target.open().await;
        let dev = device("crash");
        assert_eq!(
            store.load_credentials(&dev).await.unwrap(),
            Some(paired(70))
        );
        let mut committed_unacked = 0;
        for i in 1..=CRASH_PREKEYS {
            let session = store
                .load_session(&dev, &Address::new(format!("peer{i}"), 1))
                .await
                .unwrap();
            let sender_key = store.load_sender_key(&dev, &crash_group(i)).await.unwrap();
            let prekey_left = store.load_prekey(&dev, i).await.unwrap();
            if i <= acked {
                assert_eq!(
                    session,
                    Some(crash_record(i)),
                    "acknowledged write {i} lost"
                );
                assert_eq!(sender_key, Some(crash_record(i + 1)));
                assert_eq!(prekey_left, None);
            } else if session.is_some() {
                // Committed but killed before the ack was printed: must be whole.
                committed_unacked += 1;
                assert_eq!(session, Some(crash_record(i)));
                assert_eq!(sender_key, Some(crash_record(i + 1)));
                assert_eq!(prekey_left, None);
            } else {
                assert_eq!(sender_key, None, "batch {i} half applied");
                assert_eq!(prekey_left, Some(prekey(i)), "batch {i} half applied");
            }
        }
        // The writer is sequential, so at most a few batches can commit after the last ack
        // we read (the pipe may hold acks we did not read before the kill).
        assert!(
            committed_unacked <= 64,
            "{committed_unacked} unacknowledged commits"
        );
        store.close().await;
    });
}

#[test]
fn sqlite_survives_sigkill_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    run_crash_test(CrashTarget::Sqlite(dir.path().to_str().unwrap().to_owned()));
}

#[test]
fn postgres_survives_sigkill_mid_write() {
    let Some(url) = service_url(PG_URL_VAR) else {
        return;
    };
    let schema = unique_schema();
    run_crash_test(CrashTarget::Postgres {
        url: url.clone(),
        schema: schema.clone(),
    });
    runtime().block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{schema}\" CASCADE"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    });
}

/// Entry point of child processes; does nothing in a normal test run.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    match mode.as_str() {
        "load_key" => {
            let dir = std::env::var("ZAPIN_STORE_CHILD_DIR").unwrap();
            let result = MasterKey::load(Path::new(&dir)).map(|_| ());
            println!("LOAD_KEY: {result:?}");
        }
        "service_url" => {
            let url = service_url("ZAPIN_STORE_TEST_UNSET_SERVICE");
            println!("SERVICE_URL: {url:?}");
        }
        "crash_writer" => runtime().block_on(crash_writer()),
        other => panic!("unknown child mode {other}"),
    }
}

// ---- configuration ----

#[test]
fn sqlite_runs_wal_full_sync_with_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Store::open_sqlite(&SqliteOptions::new(dir.path()), &master_key())
            .await
            .unwrap();
        let pool = store.sqlite_pool().unwrap();
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(journal.to_lowercase(), "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fk, 1);
        assert!(busy >= 1000);
        assert_eq!(format!("{store:?}"), "Store { backend: \"sqlite\", .. }");
        store.close().await;
    });
    assert!(dir.path().join(zapin_signal_store::SQLITE_FILE).exists());
}

#[test]
fn device_ids_and_schema_names_are_validated() {
    use zapin_signal_store::{DeviceId, MAX_DEVICE_ID_LEN};
    assert!(DeviceId::new("instance-1").is_ok());
    assert!(DeviceId::new("a".repeat(MAX_DEVICE_ID_LEN)).is_ok());
    for bad in [
        String::new(),
        "a".repeat(MAX_DEVICE_ID_LEN + 1),
        "a\nb".into(),
        "\0".into(),
    ] {
        assert!(matches!(
            DeviceId::new(bad),
            Err(StoreError::InvalidDeviceId)
        ));
    }
    runtime().block_on(async {
        for bad in ["", "Upper", "semi;colon", "quote\"", "1starts_with_digit"] {
            let mut o = PostgresOptions::new("postgres://127.0.0.1:1/none");
            o.schema = Some(bad.into());
            assert!(
                matches!(
                    Store::open_postgres(&o, &master_key()).await,
                    Err(StoreError::OutOfRange("postgres schema name"))
                ),
                "{bad:?}"
            );
        }
    });
}
