//! Interop with npm libsignal 6.0.0 (pairwise) and Baileys 7's group cipher (sender keys), run as
//! an external Node process: tests/interop/libsignal-peer.mjs. Skipped with a printed reason when
//! node or tests/interop/node_modules is missing, unless CI=true, where that is a failure.

#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::Engine as _;
use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};
use zapin_protocol::crypto::PublicKey;
use zapin_protocol::signal::{
    self, LocalIdentity, PreKey, PreKeyBundle, PreKeySecrets, PreKeySignalMessage,
    SenderKeyDistributionMessage, SenderKeyRecord, SessionRecord, SignedPreKey, padding,
};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}
fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn start() -> Option<Peer> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop");
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let skip = |why: &str| {
            assert!(!ci, "interop test cannot run under CI=true: {why}");
            eprintln!("SKIPPED signal interop: {why}");
        };
        if !dir.join("node_modules/libsignal").is_dir()
            || !dir.join("node_modules/baileys").is_dir()
        {
            skip("tests/interop/node_modules (libsignal, baileys) is not installed");
            return None;
        }
        let mut child = match Command::new("node")
            .arg("libsignal-peer.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                skip(&format!("cannot run node: {e}"));
                return None;
            }
        };
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Some(Peer {
            child,
            stdin,
            stdout,
        })
    }

    fn try_call(&mut self, req: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{req}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        if v["ok"] == true {
            Ok(v)
        } else {
            Err(v["error"].as_str().unwrap_or_default().to_string())
        }
    }

    fn call(&mut self, req: Value) -> Value {
        let what = req["cmd"].clone();
        self.try_call(req)
            .unwrap_or_else(|e| panic!("peer {what} failed: {e}"))
    }

    fn bundle(&mut self, spk_id: u32, pk_id: Option<u32>) -> PreKeyBundle {
        let b = self.call(json!({"cmd":"bundle","signedPreKeyId":spk_id,"preKeyId":pk_id}));
        PreKeyBundle {
            registration_id: b["registrationId"].as_u64().unwrap() as u32,
            identity_key: PublicKey::from_slice(&unb64(&b["identityKey"])).unwrap(),
            signed_pre_key_id: spk_id,
            signed_pre_key: PublicKey::from_slice(&unb64(&b["signedPreKey"])).unwrap(),
            signed_pre_key_signature: unb64(&b["signature"]).try_into().unwrap(),
            pre_key: pk_id.map(|id| (id, PublicKey::from_slice(&unb64(&b["preKey"])).unwrap())),
        }
    }

    fn encrypt(&mut self, peer: &str, plaintext: &[u8]) -> (String, Vec<u8>) {
        let r = self.call(json!({"cmd":"encrypt","peer":peer,"plaintext":b64(plaintext)}));
        (r["type"].as_str().unwrap().to_string(), unb64(&r["body"]))
    }

    fn decrypt(&mut self, peer: &str, ty: &str, body: &[u8]) -> Result<Vec<u8>, String> {
        self.try_call(json!({"cmd":"decrypt","peer":peer,"type":ty,"body":b64(body)}))
            .map(|r| unb64(&r["plaintext"]))
    }
}

/// zapin's side of a pairwise conversation: identity, prekey store and the record for the JS peer.
struct Zapin {
    rng: ChaCha20Rng,
    identity: LocalIdentity,
    signed: SignedPreKey,
    pre_keys: HashMap<u32, PreKey>,
    record: SessionRecord,
}

impl Zapin {
    fn new(seed: u64) -> Zapin {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let identity = LocalIdentity::generate(&mut rng);
        let signed = SignedPreKey::generate(&identity, 1, &mut rng);
        Zapin {
            rng,
            identity,
            signed,
            pre_keys: HashMap::new(),
            record: SessionRecord::new(),
        }
    }

    fn bundle_json(&mut self, pk_id: Option<u32>) -> Value {
        let pk = pk_id.map(|id| PreKey::generate(id, &mut self.rng));
        let b = PreKeyBundle::from_local(&self.identity, &self.signed, pk.as_ref());
        if let Some(pk) = pk {
            self.pre_keys.insert(pk.id, pk);
        }
        let mut v = json!({
            "registrationId": b.registration_id,
            "identityKey": b64(&b.identity_key.serialize_djb()),
            "signedPreKeyId": b.signed_pre_key_id,
            "signedPreKey": b64(&b.signed_pre_key.serialize_djb()),
            "signature": b64(&b.signed_pre_key_signature),
        });
        if let Some((id, key)) = b.pre_key {
            v["preKeyId"] = json!(id);
            v["preKey"] = json!(b64(&key.serialize_djb()));
        }
        v
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> (String, Vec<u8>) {
        let (record, msg) = signal::encrypt(&self.record, plaintext).unwrap();
        self.record = record;
        (msg.enc_type().to_string(), msg.serialized().to_vec())
    }

    /// Decrypts like an engine would; returns the plaintext and, for pkmsg, the replaced identity.
    fn decrypt(
        &mut self,
        ty: &str,
        body: &[u8],
    ) -> Result<(Vec<u8>, Option<PublicKey>), signal::SignalError> {
        if ty == "pkmsg" {
            let msg = PreKeySignalMessage::parse(body)?;
            let one_time = msg.pre_key_id.and_then(|id| self.pre_keys.get(&id));
            let secrets = PreKeySecrets {
                signed_pre_key: Some(&self.signed),
                one_time_pre_key: one_time,
            };
            let out = signal::decrypt_prekey_message(
                &self.record,
                &self.identity,
                &msg,
                secrets,
                &mut self.rng,
            )?;
            if let Some(id) = out.used_pre_key_id {
                self.pre_keys.remove(&id);
            }
            self.record = out.record;
            Ok((out.plaintext, out.replaced_identity))
        } else {
            let (record, pt) = signal::decrypt_message(&self.record, body, &mut self.rng)?;
            self.record = record;
            Ok((pt, None))
        }
    }
}

#[test]
fn zapin_initiates_with_and_without_one_time_prekey() {
    let Some(mut js) = Peer::start() else { return };
    for (round, pk) in [(0u64, Some(31u32)), (1, None)] {
        js.call(json!({"cmd":"reset"}));
        let mut z = Zapin::new(100 + round);
        let bundle = js.bundle(5, pk);
        z.record = signal::initiate_session(&z.record, &z.identity, &bundle, &mut z.rng).unwrap();
        for i in 0..3 {
            let text = format!("hello {i} from zapin");
            let (ty, body) = z.encrypt(text.as_bytes());
            assert_eq!(ty, "pkmsg");
            assert_eq!(js.decrypt("zapin", &ty, &body).unwrap(), text.as_bytes());
        }
        if let Some(id) = pk {
            let present = js.call(json!({"cmd":"has_prekey","id":id}));
            assert_eq!(
                present["present"], false,
                "libsignal consumed the one-time prekey"
            );
        }
        let (ty, body) = js.encrypt("zapin", b"reply from libsignal");
        assert_eq!(ty, "msg");
        assert_eq!(z.decrypt(&ty, &body).unwrap().0, b"reply from libsignal");
        let (ty, body) = z.encrypt(b"after reply");
        assert_eq!(ty, "msg", "a reply ends the pkmsg phase");
        assert_eq!(js.decrypt("zapin", &ty, &body).unwrap(), b"after reply");
    }
}

#[test]
fn libsignal_initiates_with_and_without_one_time_prekey() {
    let Some(mut js) = Peer::start() else { return };
    for (round, pk) in [(0u64, Some(77u32)), (1, None)] {
        js.call(json!({"cmd":"reset"}));
        let mut z = Zapin::new(200 + round);
        let bundle = z.bundle_json(pk);
        js.call(json!({"cmd":"process_bundle","peer":"zapin","bundle":bundle}));
        let (ty, body) = js.encrypt("zapin", b"first from libsignal");
        assert_eq!(ty, "pkmsg");
        let parsed = PreKeySignalMessage::parse(&body).unwrap();
        assert_eq!(parsed.pre_key_id, pk);
        assert_eq!(z.decrypt(&ty, &body).unwrap().0, b"first from libsignal");
        assert!(
            z.pre_keys.is_empty(),
            "used one-time prekey reported and deleted"
        );
        let (ty, body) = z.encrypt(b"reply from zapin");
        assert_eq!(ty, "msg");
        assert_eq!(
            js.decrypt("zapin", &ty, &body).unwrap(),
            b"reply from zapin"
        );
        let (ty, body) = js.encrypt("zapin", b"second");
        assert_eq!(ty, "msg");
        assert_eq!(z.decrypt(&ty, &body).unwrap().0, b"second");
    }
}

/// A message in flight: who sent it, its `enc` type and body, and the plaintext to expect.
struct InFlight {
    from_zapin: bool,
    ty: String,
    body: Vec<u8>,
    plaintext: Vec<u8>,
}

fn deliver(js: &mut Peer, z: &mut Zapin, m: &InFlight) {
    let got = if m.from_zapin {
        js.decrypt("zapin", &m.ty, &m.body)
            .unwrap_or_else(|e| panic!("libsignal could not decrypt: {e}"))
    } else {
        z.decrypt(&m.ty, &m.body).unwrap().0
    };
    assert_eq!(padding::unpad(&got).unwrap(), &m.plaintext[..]);
}

/// 50 messages in both directions; each is delivered at once, held back and delivered late
/// (after later messages, in reverse order), or dropped for good. Every delivered one decrypts.
fn conversation(js: &mut Peer, z: &mut Zapin, seed: u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut late: Vec<InFlight> = Vec::new();
    let (mut delivered, mut dropped, mut delivered_late) = (0, 0, 0);
    for i in 0..50u32 {
        let from_zapin = rng.next_u32() % 2 == 0;
        let dir = if from_zapin { "z->js" } else { "js->z" };
        let text = format!("message {i} {dir}").into_bytes();
        let padded = padding::pad(&text, &mut z.rng);
        let (ty, body) = if from_zapin {
            z.encrypt(&padded)
        } else {
            js.encrypt("zapin", &padded)
        };
        let m = InFlight {
            from_zapin,
            ty,
            body,
            plaintext: text,
        };
        match rng.next_u32() % 10 {
            0 | 1 => dropped += 1,
            2 | 3 => late.push(m),
            _ => {
                deliver(js, z, &m);
                delivered += 1;
            }
        }
        if i % 12 == 11 {
            while let Some(m) = late.pop() {
                deliver(js, z, &m);
                delivered_late += 1;
            }
        }
    }
    while let Some(m) = late.pop() {
        deliver(js, z, &m);
        delivered_late += 1;
    }
    eprintln!(
        "conversation (seed {seed:#x}): {delivered} in order, {delivered_late} late, {dropped} dropped"
    );
    assert!(delivered_late > 0 && dropped > 0);
}

#[test]
fn fifty_message_conversation_with_reordering_and_drops_zapin_initiator() {
    let Some(mut js) = Peer::start() else { return };
    let mut z = Zapin::new(300);
    let bundle = js.bundle(2, Some(9));
    z.record = signal::initiate_session(&z.record, &z.identity, &bundle, &mut z.rng).unwrap();
    let (ty, body) = z.encrypt(b"open");
    assert_eq!(js.decrypt("zapin", &ty, &body).unwrap(), b"open");
    conversation(&mut js, &mut z, 0xA11CE);
}

#[test]
fn fifty_message_conversation_with_reordering_and_drops_libsignal_initiator() {
    let Some(mut js) = Peer::start() else { return };
    let mut z = Zapin::new(400);
    let bundle = z.bundle_json(Some(12));
    js.call(json!({"cmd":"process_bundle","peer":"zapin","bundle":bundle}));
    let (ty, body) = js.encrypt("zapin", b"open");
    assert_eq!(z.decrypt(&ty, &body).unwrap().0, b"open");
    conversation(&mut js, &mut z, 0xB0B);
}

#[test]
fn reinstalled_libsignal_peer_replaces_the_session_and_late_messages_still_decrypt() {
    let Some(mut js) = Peer::start() else { return };
    let mut z = Zapin::new(500);
    let bundle = js.bundle(1, Some(1));
    z.record = signal::initiate_session(&z.record, &z.identity, &bundle, &mut z.rng).unwrap();
    let (ty, body) = z.encrypt(b"hi");
    js.decrypt("zapin", &ty, &body).unwrap();
    let (ty, body) = js.encrypt("zapin", b"before reinstall");
    z.decrypt(&ty, &body).unwrap();
    let old_identity = *z.record.remote_identity().unwrap();
    let late = js.encrypt("zapin", b"late from the old install");

    js.call(json!({"cmd":"reset"}));
    let bundle = z.bundle_json(Some(40));
    js.call(json!({"cmd":"process_bundle","peer":"zapin","bundle":bundle}));
    let (ty, body) = js.encrypt("zapin", b"hello from the new install");
    assert_eq!(ty, "pkmsg");
    let (pt, replaced) = z.decrypt(&ty, &body).unwrap();
    assert_eq!(pt, b"hello from the new install");
    assert_eq!(replaced, Some(old_identity), "identity change is reported");
    assert_ne!(*z.record.remote_identity().unwrap(), old_identity);
    assert_eq!(z.record.archived_count(), 1);

    // The old install's message arrives late: the archived state decrypts it.
    assert_eq!(
        z.decrypt(&late.0, &late.1).unwrap().0,
        b"late from the old install"
    );
    // Replies go to the new install.
    let (ty, body) = z.encrypt(b"welcome back");
    assert_eq!(js.decrypt("zapin", &ty, &body).unwrap(), b"welcome back");
}

#[test]
fn reinstalled_zapin_peer_replaces_the_session_in_libsignal() {
    let Some(mut js) = Peer::start() else { return };
    let mut z = Zapin::new(600);
    let bundle = z.bundle_json(Some(3));
    js.call(json!({"cmd":"process_bundle","peer":"zapin","bundle":bundle}));
    let (ty, body) = js.encrypt("zapin", b"hi");
    z.decrypt(&ty, &body).unwrap();
    let (ty, body) = z.encrypt(b"old install");
    js.decrypt("zapin", &ty, &body).unwrap();

    // zapin reinstalls: new identity, empty store, new session from a fresh bundle.
    let mut z = Zapin::new(601);
    let bundle = js.bundle(8, Some(88));
    z.record = signal::initiate_session(&z.record, &z.identity, &bundle, &mut z.rng).unwrap();
    let (ty, body) = z.encrypt(b"new install");
    assert_eq!(ty, "pkmsg");
    assert_eq!(js.decrypt("zapin", &ty, &body).unwrap(), b"new install");
    let (ty, body) = js.encrypt("zapin", b"reply to the new install");
    assert_eq!(ty, "msg");
    assert_eq!(
        z.decrypt(&ty, &body).unwrap().0,
        b"reply to the new install"
    );
}

#[test]
fn sender_keys_both_directions_with_reordering() {
    let Some(mut js) = Peer::start() else { return };
    let mut rng = ChaCha20Rng::seed_from_u64(700);
    let group = "120363000000000000@g.us";

    // zapin -> Baileys' group cipher.
    let (mut own, skdm) = signal::create_sender_key_distribution(&SenderKeyRecord::new(), &mut rng);
    js.call(
        json!({"cmd":"group_process","group":group,"sender":"zapin","skdm":b64(skdm.serialized())}),
    );
    let mut sent = Vec::new();
    for i in 0..20 {
        let (next, msg) =
            signal::group_encrypt(&own, format!("group {i}").as_bytes(), &mut rng).unwrap();
        own = next;
        sent.push(msg.serialized().to_vec());
    }
    // First 5 in order, 5..8 never, then 19 down to 8.
    for i in (0..5).chain((8..20).rev()) {
        let r = js
            .try_call(
                json!({"cmd":"group_decrypt","group":group,"sender":"zapin","body":b64(&sent[i])}),
            )
            .unwrap_or_else(|e| panic!("Baileys group_decrypt {i}: {e}"));
        assert_eq!(unb64(&r["plaintext"]), format!("group {i}").as_bytes());
    }

    // Baileys' group cipher -> zapin.
    let r = js.call(json!({"cmd":"group_create","group":group}));
    let skdm = SenderKeyDistributionMessage::parse(&unb64(&r["skdm"])).unwrap();
    let mut theirs = signal::process_sender_key_distribution(&SenderKeyRecord::new(), &skdm);
    let mut got = Vec::new();
    for i in 0..20 {
        let r = js.call(
            json!({"cmd":"group_encrypt","group":group,"plaintext":b64(format!("js {i}").as_bytes())}),
        );
        got.push(unb64(&r["body"]));
    }
    for i in (0..3).chain((6..20).rev()).chain([4]) {
        let (next, pt) = signal::group_decrypt(&theirs, &got[i])
            .unwrap_or_else(|e| panic!("zapin group_decrypt {i}: {e}"));
        theirs = next;
        assert_eq!(pt, format!("js {i}").as_bytes());
    }
    // A replay is rejected, and a re-sent distribution message does not reset the chain.
    let replay = signal::group_decrypt(&theirs, &got[7]);
    assert!(
        matches!(replay, Err(signal::SignalError::DuplicateMessage(_))),
        "{replay:?}"
    );
    let again = signal::process_sender_key_distribution(&theirs, &skdm);
    assert!(signal::group_decrypt(&again, &got[7]).is_err());
}

/// Messages of an earlier sending chain delivered after the ratchet has turned, both directions:
/// pins `previous_counter` semantics and old-chain key derivation against libsignal.
#[test]
fn late_messages_from_a_previous_chain_decrypt_on_both_sides() {
    let Some(mut js) = Peer::start() else { return };
    let mut z = Zapin::new(800);
    let bundle = js.bundle(3, Some(4));
    z.record = signal::initiate_session(&z.record, &z.identity, &bundle, &mut z.rng).unwrap();
    let (ty, body) = z.encrypt(b"open");
    js.decrypt("zapin", &ty, &body).unwrap();
    let (ty, body) = js.encrypt("zapin", b"turn");
    z.decrypt(&ty, &body).unwrap();

    for round in 0..3 {
        // zapin sends five on its current chain; only the first arrives now.
        let held: Vec<_> = (0..5)
            .map(|i| z.encrypt(format!("z{round}.{i}").as_bytes()))
            .collect();
        assert_eq!(
            js.decrypt("zapin", &held[0].0, &held[0].1).unwrap(),
            format!("z{round}.0").as_bytes()
        );
        // libsignal does the same towards zapin.
        let js_held: Vec<_> = (0..5)
            .map(|i| js.encrypt("zapin", format!("j{round}.{i}").as_bytes()))
            .collect();
        assert_eq!(
            z.decrypt(&js_held[0].0, &js_held[0].1).unwrap().0,
            format!("j{round}.0").as_bytes()
        );
        // Both ratchets turn.
        let (ty, body) = z.encrypt(b"next chain");
        js.decrypt("zapin", &ty, &body).unwrap();
        let (ty, body) = js.encrypt("zapin", b"next chain");
        z.decrypt(&ty, &body).unwrap();
        // The held messages of the old chains arrive late, newest first.
        for i in (1..5).rev() {
            assert_eq!(
                js.decrypt("zapin", &held[i].0, &held[i].1).unwrap(),
                format!("z{round}.{i}").as_bytes()
            );
            assert_eq!(
                z.decrypt(&js_held[i].0, &js_held[i].1).unwrap().0,
                format!("j{round}.{i}").as_bytes()
            );
        }
    }
}
