//! Crash safety of `zapin_engine::signal_session`, with real processes killed by SIGKILL.
//!
//! The test binary re-invokes itself (test `child_role`, role chosen by `ZAPIN_CRASH_ROLE`) as a
//! sender or receiver working on a SQLite (or PostgreSQL) store. A child prints `CT sent …` only
//! after `encrypt_for` returned (that line *is* the send), and `CT ack …` only after `decrypt_from`
//! returned. The parent kills it after a number of lines, or when it reports `CT paused` from a
//! hook placed exactly in a crash window (between compute and commit, or between commit and
//! send/ack), restarts it, and checks with an in-memory peer that:
//!
//! * every ciphertext that was sent decrypts, and no two share (ratchet key, counter) or
//!   (key id, iteration): no message key is used twice;
//! * ciphertexts encrypted and persisted but never sent only leave gaps;
//! * every message the server delivered is surfaced exactly once and eventually acked: a crash
//!   before the commit redelivers and decrypts again, a crash after it redelivers as a duplicate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use zapin_engine::signal_session::{
    self, EncType, SessionError, decrypt_from, encrypt_for, group_encrypt_for, initiate_with,
};
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::signal::{
    self, CiphertextMessage, LocalIdentity, PreKeyBundle, PreKeySecrets, PreKeySignalMessage,
    SenderKeyMessage, SenderKeyRecord, SessionRecord, SignalMessage, SignedPreKey,
};
use zapin_signal_store::testing::service_url;
use zapin_signal_store::{
    Address, DeviceCredentials, DeviceId, KeyPairBytes, MasterKey, PostgresOptions, Secret32,
    SenderKeyName, SqliteOptions, Store,
};

const ROLE: &str = "ZAPIN_CRASH_ROLE";
const DIR: &str = "ZAPIN_CRASH_DIR";
const PG_URL: &str = "ZAPIN_CRASH_PG_URL";
const PG_SCHEMA: &str = "ZAPIN_CRASH_PG_SCHEMA";
const START: &str = "ZAPIN_CRASH_START";
const HOOK: &str = "ZAPIN_CRASH_HOOK";
const PG_URL_VAR: &str = "ZAPIN_TEST_DATABASE_URL";

const GROUP: &str = "crash@g.us";

fn master_key() -> MasterKey {
    MasterKey::from_bytes([0x5a; 32])
}

fn alice() -> DeviceId {
    DeviceId::new("alice").unwrap()
}

fn bob_address() -> Address {
    Address::new("bob", 0)
}

fn alice_address() -> Address {
    Address::new("alice", 0)
}

fn own_sender_key() -> SenderKeyName {
    SenderKeyName::new(GROUP, alice_address())
}

// ---------------------------------------------------------------- store location

#[derive(Clone)]
enum Target {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Target {
    fn envs(&self) -> Vec<(&'static str, String)> {
        match self {
            Target::Sqlite(dir) => vec![(DIR, dir.display().to_string())],
            Target::Postgres { url, schema } => {
                vec![(PG_URL, url.clone()), (PG_SCHEMA, schema.clone())]
            }
        }
    }

    fn from_env() -> Self {
        match std::env::var(DIR) {
            Ok(dir) => Target::Sqlite(dir.into()),
            Err(_) => Target::Postgres {
                url: std::env::var(PG_URL).unwrap(),
                schema: std::env::var(PG_SCHEMA).unwrap(),
            },
        }
    }

    fn postgres(url: String, test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Target::Postgres {
            url,
            schema: format!("crash_{test}_{}_{nanos}", std::process::id()),
        }
    }

    async fn open(&self) -> Store {
        match self {
            Target::Sqlite(dir) => Store::open_sqlite(&SqliteOptions::new(dir), &master_key())
                .await
                .unwrap(),
            Target::Postgres { url, schema } => {
                let mut o = PostgresOptions::new(url.clone());
                o.schema = Some(schema.clone());
                o.max_connections = 2;
                Store::open_postgres(&o, &master_key()).await.unwrap()
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn key_pair_bytes(k: &KeyPair) -> KeyPairBytes {
    KeyPairBytes::new(k.public().0, *k.private_bytes())
}

/// Creates alice in the store with fresh credentials and one-time prekeys 1..=5.
async fn create_alice(store: &Store, rng: &mut ChaCha20Rng) -> (LocalIdentity, SignedPreKey) {
    let identity = LocalIdentity::generate(rng);
    let signed = SignedPreKey::generate(&identity, 1, rng);
    let credentials = DeviceCredentials {
        registration_id: identity.registration_id,
        noise_key: key_pair_bytes(&KeyPair::generate(rng)),
        identity_key: key_pair_bytes(&identity.key_pair),
        signed_prekey: zapin_signal_store::SignedPreKey {
            id: signed.id,
            key_pair: key_pair_bytes(&signed.key_pair),
            signature: signed.signature,
            created_at: 0,
        },
        adv_secret_key: Secret32::new([1; 32]),
        account: None,
        push_name: None,
        platform: None,
        routing_info: None,
    };
    store.create_device(&alice(), &credentials).await.unwrap();
    let prekeys: Vec<_> = signal::PreKey::generate_batch(1, 5, rng)
        .iter()
        .map(|p| zapin_signal_store::PreKey {
            id: p.id,
            key_pair: key_pair_bytes(&p.key_pair),
        })
        .collect();
    store.insert_prekeys(&alice(), &prekeys).await.unwrap();
    (identity, signed)
}

async fn alice_identity(store: &Store) -> LocalIdentity {
    let c = store.load_credentials(&alice()).await.unwrap().unwrap();
    LocalIdentity {
        key_pair: KeyPair::from_private(*c.identity_key.private.expose()),
        registration_id: c.registration_id,
    }
}

async fn alice_bundle(store: &Store, one_time: u32) -> PreKeyBundle {
    let ours = alice_identity(store).await;
    let c = store.load_credentials(&alice()).await.unwrap().unwrap();
    let signed = SignedPreKey {
        id: c.signed_prekey.id,
        key_pair: KeyPair::from_private(*c.signed_prekey.key_pair.private.expose()),
        signature: c.signed_prekey.signature,
    };
    let pk = store
        .load_prekey(&alice(), one_time)
        .await
        .unwrap()
        .unwrap();
    let pk = signal::PreKey {
        id: pk.id,
        key_pair: KeyPair::from_private(*pk.key_pair.private.expose()),
    };
    PreKeyBundle::from_local(&ours, &signed, Some(&pk))
}

// ---------------------------------------------------------------- the peer (in memory)

/// Bob, an in-memory Signal party with no store: he cannot crash.
struct Bob {
    identity: LocalIdentity,
    signed: SignedPreKey,
    one_time: signal::PreKey,
    record: SessionRecord,
    rng: ChaCha20Rng,
}

impl Bob {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let identity = LocalIdentity::generate(&mut rng);
        let signed = SignedPreKey::generate(&identity, 7, &mut rng);
        let one_time = signal::PreKey::generate(42, &mut rng);
        Bob {
            identity,
            signed,
            one_time,
            record: SessionRecord::new(),
            rng,
        }
    }

    fn bundle(&self) -> PreKeyBundle {
        PreKeyBundle::from_local(&self.identity, &self.signed, Some(&self.one_time))
    }

    fn decrypt(&mut self, enc: &str, bytes: &[u8]) -> Result<Vec<u8>, signal::SignalError> {
        if enc == "pkmsg" {
            let m = PreKeySignalMessage::parse(bytes)?;
            let secrets = PreKeySecrets {
                signed_pre_key: Some(&self.signed),
                one_time_pre_key: Some(&self.one_time),
            };
            let out = signal::decrypt_prekey_message(
                &self.record,
                &self.identity,
                &m,
                secrets,
                &mut self.rng,
            )?;
            self.record = out.record;
            Ok(out.plaintext)
        } else {
            let (record, plaintext) = signal::decrypt_message(&self.record, bytes, &mut self.rng)?;
            self.record = record;
            Ok(plaintext)
        }
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> CiphertextMessage {
        let (record, msg) = signal::encrypt(&self.record, plaintext).unwrap();
        self.record = record;
        msg
    }
}

/// (ratchet key, counter) of a pairwise ciphertext: the identity of its message key.
fn key_slot(enc: &str, bytes: &[u8]) -> ([u8; 32], u32) {
    let m = if enc == "pkmsg" {
        PreKeySignalMessage::parse(bytes).unwrap().message
    } else {
        SignalMessage::parse(bytes).unwrap()
    };
    (m.ratchet_key.0, m.counter)
}

// ---------------------------------------------------------------- children

#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return; // run as a normal test: nothing to do
    };
    let target = Target::from_env();
    let start: u32 = std::env::var(START).map_or(0, |s| s.parse().unwrap());
    let hook = std::env::var(HOOK).unwrap_or_default();
    runtime().block_on(async {
        let store = target.open().await;
        match role.as_str() {
            "sender" => sender(&store, start, &hook).await,
            "unsafe-sender" => unsafe_sender(&store, start, &hook).await,
            "receiver" => receiver(&store, &hook).await,
            "group-sender" => group_sender(&store, start, &hook).await,
            other => panic!("unknown role {other}"),
        }
    });
    say("done");
    std::process::exit(0);
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "CT {line}").unwrap();
    out.flush().unwrap();
}

/// Stops in a crash window until the parent kills this process.
fn pause_for_kill() -> ! {
    say("paused");
    loop {
        std::thread::park();
    }
}

fn hook_at(hook: &str, name: &str, n: u32) -> bool {
    hook == format!("{name}:{n}")
}

const CHILD_LIMIT: u32 = 400;

async fn sender(store: &Store, start: u32, hook: &str) {
    for n in start..start + CHILD_LIMIT {
        let text = format!("m{n}");
        if hook_at(hook, "before_persist", n) {
            let _pending =
                signal_session::prepare_encrypt(store, &alice(), &bob_address(), text.as_bytes())
                    .await
                    .unwrap();
            pause_for_kill();
        }
        let msg = encrypt_for(store, &alice(), &bob_address(), text.as_bytes())
            .await
            .unwrap();
        if hook_at(hook, "after_persist", n) {
            pause_for_kill();
        }
        say(&format!(
            "sent {n} {} {}",
            msg.enc_type(),
            hex::encode(msg.serialized())
        ));
    }
}

/// The wrong order, as a control: sends before the record is durable.
async fn unsafe_sender(store: &Store, start: u32, hook: &str) {
    for n in start..start + CHILD_LIMIT {
        let text = format!("m{n}");
        let bytes = store
            .load_session(&alice(), &bob_address())
            .await
            .unwrap()
            .unwrap();
        let record = SessionRecord::from_bytes(&bytes).unwrap();
        let (record, msg) = signal::encrypt(&record, text.as_bytes()).unwrap();
        say(&format!(
            "sent {n} {} {}",
            msg.enc_type(),
            hex::encode(msg.serialized())
        ));
        if hook_at(hook, "after_send", n) {
            pause_for_kill();
        }
        store
            .store_session(&alice(), &bob_address(), &record.to_bytes())
            .await
            .unwrap();
    }
}

async fn group_sender(store: &Store, start: u32, hook: &str) {
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(start) + 1000);
    for n in start..start + CHILD_LIMIT {
        let text = format!("g{n}");
        if hook_at(hook, "before_persist", n) {
            let _pending = signal_session::prepare_group_encrypt(
                store,
                &alice(),
                &own_sender_key(),
                text.as_bytes(),
                &mut rng,
            )
            .await
            .unwrap();
            pause_for_kill();
        }
        let msg = group_encrypt_for(
            store,
            &alice(),
            &own_sender_key(),
            text.as_bytes(),
            &mut rng,
        )
        .await
        .unwrap();
        if hook_at(hook, "after_persist", n) {
            pause_for_kill();
        }
        say(&format!("sent {n} skmsg {}", hex::encode(msg.serialized())));
    }
}

/// Reads `<n> <enc> <hex>` deliveries from stdin until EOF.
async fn receiver(store: &Store, hook: &str) {
    let ours = alice_identity(store).await;
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut parts = line.split(' ');
        let n: u32 = parts.next().unwrap().parse().unwrap();
        let enc = EncType::parse(parts.next().unwrap()).unwrap();
        let body = hex::decode(parts.next().unwrap()).unwrap();
        if hook_at(hook, "before_persist", n) {
            let _pending = signal_session::prepare_decrypt(
                store,
                &alice(),
                &ours,
                &bob_address(),
                enc,
                &body,
                &mut rng,
            )
            .await
            .unwrap();
            pause_for_kill();
        }
        match decrypt_from(store, &alice(), &ours, &bob_address(), enc, &body, &mut rng).await {
            Ok(incoming) => {
                say(&format!("got {n} {}", hex::encode(&incoming.plaintext)));
                if hook_at(hook, "before_ack", n) {
                    pause_for_kill();
                }
            }
            Err(SessionError::Duplicate { .. }) => say(&format!("dup {n}")),
            Err(e) => panic!("message {n} failed: {e}"),
        }
        say(&format!("ack {n}"));
    }
}

// ---------------------------------------------------------------- parent side

/// How a child run ends.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGKILL once this many `sent`/`ack` lines were read.
    AfterLines(usize),
    /// Let the hook pause it, then SIGKILL.
    Hook,
    /// Run to completion.
    Never,
}

/// Lines `CT <rest>` the child printed before it died.
fn run_child(
    target: &Target,
    role: &str,
    start: u32,
    hook: &str,
    stop: Stop,
    stdin: Option<String>,
) -> (Vec<String>, bool) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(START, start.to_string())
        .env(HOOK, hook)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    for (k, v) in target.envs() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // A watchdog, so a child stuck by a bug fails the test instead of hanging it.
    let (finished, watchdog) = std::sync::mpsc::channel::<()>();
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            watchdog.recv_timeout(std::time::Duration::from_secs(120))
        {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    });
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A writer thread, so a child killed mid-read cannot block the parent on a full pipe.
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut counted = 0;
    let mut killed = false;
    let mut done = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // A line cut by the kill was never completely "sent".
        let Some(line) = line.strip_suffix('\n') else {
            break;
        };
        // The harness prints `test child_role ... ` without a newline before the test runs.
        let Some((_, rest)) = line.split_once("CT ") else {
            continue;
        };
        if rest == "done" {
            done = true;
            continue;
        }
        if rest == "paused" {
            assert!(matches!(stop, Stop::Hook), "unexpected pause");
            child.kill().unwrap();
            killed = true;
            continue;
        }
        if rest.starts_with("sent ") || rest.starts_with("ack ") {
            counted += 1;
        }
        lines.push(rest.to_owned());
        if let Stop::AfterLines(k) = stop
            && counted == k
            && !killed
        {
            child.kill().unwrap();
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    let _ = finished.send(());
    if !killed {
        assert!(status.success() && done, "child failed: {status}");
    }
    (lines, killed)
}

#[derive(Default)]
struct Sent {
    /// label → (enc type, ciphertext), in send order.
    messages: BTreeMap<u32, (String, Vec<u8>)>,
    order: Vec<u32>,
    kills: usize,
    hooks_after_persist: usize,
}

impl Sent {
    /// Runs one sender round from `start`; returns the next free label.
    fn round(&mut self, target: &Target, role: &str, start: u32, hook: &str, stop: Stop) -> u32 {
        let (lines, killed) = run_child(target, role, start, hook, stop, None);
        self.kills += usize::from(killed);
        if hook.starts_with("after_persist") {
            self.hooks_after_persist += 1;
        }
        let mut next = start;
        for line in lines {
            let mut p = line.split(' ');
            assert_eq!(p.next(), Some("sent"));
            let n: u32 = p.next().unwrap().parse().unwrap();
            let enc = p.next().unwrap().to_owned();
            let bytes = hex::decode(p.next().unwrap()).unwrap();
            assert!(
                self.messages.insert(n, (enc, bytes)).is_none(),
                "label {n} sent twice"
            );
            self.order.push(n);
            next = n + 1;
        }
        if let Some(n) = hook.split(':').nth(1) {
            next = next.max(n.parse::<u32>().unwrap() + 1);
        }
        next
    }

    /// Every (ratchet key, counter) is used by one sent ciphertext only. Returns the number of
    /// counters skipped (encrypted, persisted, never sent).
    fn assert_unique_keys(&self) -> u32 {
        let mut seen: HashMap<([u8; 32], u32), u32> = HashMap::new();
        let mut chains: HashMap<[u8; 32], Vec<u32>> = HashMap::new();
        for (n, (enc, bytes)) in &self.messages {
            let slot = key_slot(enc, bytes);
            if let Some(other) = seen.insert(slot, *n) {
                panic!(
                    "messages {other} and {n} share ratchet key and counter {}",
                    slot.1
                );
            }
            chains.entry(slot.0).or_default().push(slot.1);
        }
        chains
            .values_mut()
            .map(|c| {
                c.sort_unstable();
                // Counters start at 0 on every chain.
                c.last().map_or(0, |last| last + 1 - c.len() as u32)
            })
            .sum()
    }
}

fn shuffled(mut v: Vec<u32>, seed: u64) -> Vec<u32> {
    // Small deterministic Fisher-Yates, enough for a test.
    let mut s = seed | 1;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn sender_crash(target: &Target) {
    let rt = runtime();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut bob = Bob::new(2);
    rt.block_on(async {
        let store = target.open().await;
        let (ours, _) = create_alice(&store, &mut rng).await;
        initiate_with(
            &store,
            &alice(),
            &ours,
            &bob_address(),
            &bob.bundle(),
            &mut rng,
        )
        .await
        .unwrap();
        store.close().await;
    });

    let mut sent = Sent::default();
    let mut decrypted: HashSet<u32> = HashSet::new();
    let mut next = 0;
    let phases: [&[(&str, Stop)]; 3] = [
        // pkmsg phase: alice has not heard from bob yet.
        &[
            ("", Stop::AfterLines(1)),
            ("after_persist", Stop::Hook),
            ("", Stop::AfterLines(3)),
            ("before_persist", Stop::Hook),
            ("", Stop::AfterLines(2)),
        ],
        &[
            ("", Stop::AfterLines(2)),
            ("after_persist", Stop::Hook),
            ("", Stop::AfterLines(5)),
            ("before_persist", Stop::Hook),
            ("", Stop::AfterLines(1)),
            ("after_persist", Stop::Hook),
            ("", Stop::AfterLines(8)),
        ],
        &[
            ("", Stop::AfterLines(4)),
            ("before_persist", Stop::Hook),
            ("after_persist", Stop::Hook),
            ("", Stop::AfterLines(1)),
            ("", Stop::AfterLines(13)),
        ],
    ];
    for (phase, rounds) in phases.iter().enumerate() {
        let first = sent.order.len();
        for (hook, stop) in rounds.iter() {
            let hook = if hook.is_empty() {
                String::new()
            } else {
                // The hook fires on the second message of the round.
                format!("{hook}:{}", next + 1)
            };
            next = sent.round(target, "sender", next, &hook, *stop);
        }
        // Bob decrypts this phase's messages out of order (phase 0 and 2) or in order.
        let mut labels = sent.order[first..].to_vec();
        if phase != 1 {
            labels = shuffled(labels, phase as u64 + 7);
        }
        for n in labels {
            let (enc, bytes) = &sent.messages[&n];
            let expected_enc = if phase == 0 { "pkmsg" } else { "msg" };
            assert_eq!(enc, expected_enc, "message {n}");
            let plaintext = bob
                .decrypt(enc, bytes)
                .unwrap_or_else(|e| panic!("bob cannot decrypt {n}: {e}"));
            assert_eq!(plaintext, format!("m{n}").into_bytes());
            decrypted.insert(n);
        }
        // Bob answers, so alice's next messages are `msg` on a new ratchet key.
        let reply = bob.encrypt(format!("reply{phase}").as_bytes());
        rt.block_on(async {
            let store = target.open().await;
            let ours = alice_identity(&store).await;
            let got = decrypt_from(
                &store,
                &alice(),
                &ours,
                &bob_address(),
                EncType::parse(reply.enc_type()).unwrap(),
                reply.serialized(),
                &mut rng,
            )
            .await
            .unwrap();
            assert_eq!(got.plaintext, format!("reply{phase}").into_bytes());
            store.close().await;
        });
    }
    // A last round to completion.
    let last = next;
    next = sent.round(target, "sender", next, "", Stop::Never);
    assert_eq!(next, last + CHILD_LIMIT);
    for n in last..next {
        let (enc, bytes) = &sent.messages[&n];
        assert_eq!(
            bob.decrypt(enc, bytes).unwrap(),
            format!("m{n}").into_bytes()
        );
        decrypted.insert(n);
    }

    assert_eq!(decrypted.len(), sent.messages.len());
    let gaps = sent.assert_unique_keys();
    assert!(
        gaps as usize >= sent.hooks_after_persist,
        "each message persisted but not sent leaves a gap ({gaps} < {})",
        sent.hooks_after_persist
    );
    report(&format!(
        "sender crash test: {} messages sent and decrypted, {} SIGKILLs, {} counters skipped",
        sent.messages.len(),
        sent.kills,
        gaps
    ));
}

#[test]
fn sender_crash_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    sender_crash(&Target::Sqlite(dir.path().to_owned()));
}

#[test]
fn sender_crash_postgres() {
    let Some(url) = service_url(PG_URL_VAR) else {
        return;
    };
    sender_crash(&Target::postgres(url, "send"));
}

/// The control: a sender that sends before persisting, killed in that window, reuses a message
/// key after restart, and the checks above catch it.
#[test]
fn sending_before_persisting_reuses_a_message_key() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Sqlite(dir.path().to_owned());
    let rt = runtime();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut bob = Bob::new(4);
    rt.block_on(async {
        let store = target.open().await;
        let (ours, _) = create_alice(&store, &mut rng).await;
        initiate_with(
            &store,
            &alice(),
            &ours,
            &bob_address(),
            &bob.bundle(),
            &mut rng,
        )
        .await
        .unwrap();
        store.close().await;
    });
    let mut sent = Sent::default();
    let next = sent.round(&target, "unsafe-sender", 0, "after_send:1", Stop::Hook);
    sent.round(&target, "sender", next, "", Stop::AfterLines(1));
    let slot = |n: u32| {
        let (enc, bytes) = &sent.messages[&n];
        key_slot(enc, bytes)
    };
    assert_eq!(slot(1), slot(2), "message 1 and 2 share a message key");
    let reused = std::panic::catch_unwind(|| sent.assert_unique_keys());
    assert!(reused.is_err());
    for n in [0, 1] {
        let (enc, bytes) = &sent.messages[&n];
        bob.decrypt(enc, bytes).unwrap();
    }
    let (enc, bytes) = &sent.messages[&2];
    assert!(matches!(
        bob.decrypt(enc, bytes),
        Err(signal::SignalError::DuplicateMessage(1))
    ));
}

// ---------------------------------------------------------------- receive side

/// The server's view: messages not yet acked are redelivered on every (re)connection.
struct Server {
    queue: BTreeMap<u32, (String, Vec<u8>)>,
    surfaced: HashMap<u32, usize>,
    duplicates: usize,
    kills: usize,
}

impl Server {
    fn deliver(&mut self, target: &Target, hook: &str, stop: Stop, seed: Option<u64>) {
        let mut labels: Vec<u32> = self.queue.keys().copied().collect();
        if let Some(seed) = seed {
            labels = shuffled(labels, seed);
        }
        let input: String = labels
            .iter()
            .map(|n| {
                let (enc, bytes) = &self.queue[n];
                format!("{n} {enc} {}\n", hex::encode(bytes))
            })
            .collect();
        let (lines, killed) = run_child(target, "receiver", 0, hook, stop, Some(input));
        self.kills += usize::from(killed);
        for line in lines {
            let mut p = line.split(' ');
            let what = p.next().unwrap();
            let n: u32 = p.next().unwrap().parse().unwrap();
            match what {
                "got" => {
                    let plaintext = hex::decode(p.next().unwrap()).unwrap();
                    assert_eq!(plaintext, format!("b{n}").into_bytes());
                    *self.surfaced.entry(n).or_default() += 1;
                }
                "dup" => {
                    assert!(
                        self.surfaced.contains_key(&n),
                        "{n} reported duplicate but never surfaced"
                    );
                    self.duplicates += 1;
                }
                "ack" => {
                    assert!(self.surfaced.contains_key(&n), "{n} acked before surfaced");
                    self.queue.remove(&n);
                }
                other => panic!("unexpected line {other}"),
            }
        }
    }
}

fn receiver_crash(target: &Target) {
    let rt = runtime();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut bob = Bob::new(6);
    let bundle = rt.block_on(async {
        let store = target.open().await;
        create_alice(&store, &mut rng).await;
        let bundle = alice_bundle(&store, 3).await;
        store.close().await;
        bundle
    });
    bob.record = signal::initiate_session(&bob.record, &bob.identity, &bundle, &mut rng).unwrap();
    let mut server = Server {
        queue: BTreeMap::new(),
        surfaced: HashMap::new(),
        duplicates: 0,
        kills: 0,
    };
    let store_state = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let store = target.open().await;
            let prekey = store.load_prekey(&alice(), 3).await.unwrap().is_some();
            let session = store
                .load_session(&alice(), &bob_address())
                .await
                .unwrap()
                .is_some();
            store.close().await;
            (prekey, session)
        })
    };

    // Phase 1: pkmsg. Crash between decrypt and persist of the session-creating message.
    for n in 0..5 {
        let m = bob.encrypt(format!("b{n}").as_bytes());
        assert_eq!(m.enc_type(), "pkmsg");
        server
            .queue
            .insert(n, (m.enc_type().to_owned(), m.serialized().to_vec()));
    }
    server.deliver(target, "before_persist:0", Stop::Hook, None);
    assert!(server.surfaced.is_empty());
    assert_eq!(
        store_state(&rt),
        (true, false),
        "nothing persisted: prekey kept"
    );
    server.deliver(target, "before_ack:0", Stop::Hook, None);
    assert_eq!(server.surfaced.get(&0), Some(&1));
    assert_eq!(
        store_state(&rt),
        (false, true),
        "session and prekey use are durable"
    );
    server.deliver(target, "", Stop::AfterLines(3), None); // dup 0 acked, then 1
    server.deliver(target, "before_persist:3", Stop::Hook, Some(11));
    server.deliver(target, "", Stop::Never, None);
    assert!(server.queue.is_empty());

    // Alice answers (from the parent, through the same store), so bob switches to `msg`.
    rt.block_on(async {
        let store = target.open().await;
        let reply = encrypt_for(&store, &alice(), &bob_address(), b"hi bob")
            .await
            .unwrap();
        assert_eq!(reply.enc_type(), "msg");
        assert_eq!(
            bob.decrypt(reply.enc_type(), reply.serialized()).unwrap(),
            b"hi bob"
        );
        store.close().await;
    });

    // Phase 2: msg, delivered out of order, with crashes in both windows.
    for n in 5..25 {
        let m = bob.encrypt(format!("b{n}").as_bytes());
        assert_eq!(m.enc_type(), "msg");
        server
            .queue
            .insert(n, (m.enc_type().to_owned(), m.serialized().to_vec()));
    }
    server.deliver(target, "", Stop::AfterLines(4), Some(21));
    server.deliver(target, "before_persist:17", Stop::Hook, Some(22));
    server.deliver(target, "before_ack:9", Stop::Hook, Some(23));
    server.deliver(target, "", Stop::AfterLines(2), Some(24));
    server.deliver(target, "before_ack:24", Stop::Hook, None);
    server.deliver(target, "", Stop::Never, Some(25));

    assert!(server.queue.is_empty(), "everything acked");
    for n in 0..25 {
        assert_eq!(
            server.surfaced.get(&n),
            Some(&1),
            "message {n} surfaced once"
        );
    }
    assert!(server.duplicates >= 3, "the before_ack crashes redeliver");
    report(&format!(
        "receiver crash test: 25 messages surfaced once each, {} SIGKILLs, {} duplicates acked",
        server.kills, server.duplicates
    ));
}

#[test]
fn receiver_crash_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    receiver_crash(&Target::Sqlite(dir.path().to_owned()));
}

#[test]
fn receiver_crash_postgres() {
    let Some(url) = service_url(PG_URL_VAR) else {
        return;
    };
    receiver_crash(&Target::postgres(url, "recv"));
}

// ---------------------------------------------------------------- group

fn group_sender_crash(target: &Target) {
    let rt = runtime();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let skdm = rt.block_on(async {
        let store = target.open().await;
        create_alice(&store, &mut rng).await;
        let skdm = signal_session::sender_key_distribution_for(
            &store,
            &alice(),
            &own_sender_key(),
            &mut rng,
        )
        .await
        .unwrap();
        // Asking again returns the same key and writes nothing new.
        let again = signal_session::sender_key_distribution_for(
            &store,
            &alice(),
            &own_sender_key(),
            &mut rng,
        )
        .await
        .unwrap();
        assert_eq!(again.key_id, skdm.key_id);
        store.close().await;
        skdm
    });
    let mut member = signal::process_sender_key_distribution(&SenderKeyRecord::new(), &skdm);

    let mut sent = Sent::default();
    let mut next = 0;
    let rounds: &[(&str, Stop)] = &[
        ("", Stop::AfterLines(1)),
        ("after_persist", Stop::Hook),
        ("", Stop::AfterLines(6)),
        ("before_persist", Stop::Hook),
        ("after_persist", Stop::Hook),
        ("", Stop::AfterLines(3)),
    ];
    for (hook, stop) in rounds {
        let hook = if hook.is_empty() {
            String::new()
        } else {
            format!("{hook}:{}", next + 1)
        };
        next = sent.round(target, "group-sender", next, &hook, *stop);
    }
    let mut iterations: HashMap<(u32, u32), u32> = HashMap::new();
    for (n, (_, bytes)) in &sent.messages {
        let m = SenderKeyMessage::parse(bytes).unwrap();
        if let Some(other) = iterations.insert((m.key_id, m.iteration), *n) {
            panic!(
                "group messages {other} and {n} share iteration {}",
                m.iteration
            );
        }
    }
    let max_iteration = iterations.keys().map(|k| k.1).max().unwrap();
    let gaps = max_iteration + 1 - iterations.len() as u32;
    assert!(gaps as usize >= sent.hooks_after_persist);
    for n in shuffled(sent.order.clone(), 31) {
        let (_, bytes) = &sent.messages[&n];
        let (record, plaintext) = signal::group_decrypt(&member, bytes)
            .unwrap_or_else(|e| panic!("member cannot decrypt {n}: {e}"));
        member = record;
        assert_eq!(plaintext, format!("g{n}").into_bytes());
    }
    report(&format!(
        "group sender crash test: {} skmsg sent and decrypted, {} SIGKILLs, {} iterations skipped",
        sent.messages.len(),
        sent.kills,
        gaps
    ));
}

#[test]
fn group_sender_crash_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    group_sender_crash(&Target::Sqlite(dir.path().to_owned()));
}

#[test]
fn group_sender_crash_postgres() {
    let Some(url) = service_url(PG_URL_VAR) else {
        return;
    };
    group_sender_crash(&Target::postgres(url, "group"));
}
