//! Cross-implementation Noise: Baileys' unmodified noise handler (tests/interop/noise-peer.mjs) as
//! the client against zapin's `ServerHandshake`, live over a child process, plus a pure-Rust
//! replay of a recorded run (tests/vectors/noise/baileys-handshake.json).
//!
//! Re-record with: `ZAPIN_RECORD_NOISE_TRANSCRIPT=1 cargo test -p zapin-protocol --test noise_baileys`

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use prost::Message as _;
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::noise::{CertChainBuilder, ServerHandshake, Validity};
use zapin_protocol::proto::wa::{ClientPayload, DeviceProps};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The responder's fixed keys and chain, so that a recorded run can be replayed byte for byte.
fn seeded_server() -> (ServerHandshake, KeyPair) {
    let root = KeyPair::from_private([0x51; 32]);
    let intermediate = KeyPair::from_private([0x52; 32]);
    let server_static = KeyPair::from_private([0x53; 32]);
    let validity = Validity {
        not_before: 1_700_000_000,
        not_after: 4_000_000_000,
    };
    let chain = CertChainBuilder {
        intermediate_serial: 3,
        intermediate_validity: validity,
        leaf_serial: 329,
        leaf_validity: validity,
    }
    .build(
        &root,
        &intermediate,
        server_static.public(),
        &[[0xA1; 64], [0xA2; 64]],
    );
    let server = ServerHandshake::new(server_static, KeyPair::from_private([0x54; 32]), chain);
    (server, root)
}

/// Server-to-client frame plaintexts.
fn server_frames() -> Vec<Vec<u8>> {
    [0usize, 5, 1500, 4100]
        .iter()
        .zip(0xF0u8..)
        .map(|(&n, fill)| vec![fill; n])
        .collect()
}

/// Checks the Baileys registration payload against our schema's field numbers.
fn check_registration_payload(payload: &[u8]) {
    let p = ClientPayload::decode(payload).unwrap();
    assert_eq!(p.connect_type, Some(1), "WIFI_UNKNOWN");
    assert_eq!(p.connect_reason, Some(1), "USER_ACTIVATED");
    assert_eq!(p.passive, Some(false));
    assert_eq!(p.pull, Some(false));
    let ua = p.user_agent.unwrap();
    assert_eq!(ua.platform, Some(14), "WEB");
    assert_eq!(ua.release_channel, Some(0));
    assert_eq!(ua.os_version.as_deref(), Some("0.1"));
    assert_eq!(ua.device.as_deref(), Some("Desktop"));
    assert_eq!(ua.app_version.unwrap().primary, Some(2));
    assert!(p.web_info.is_some());
    let reg = p.device_pairing_data.unwrap();
    assert_eq!(reg.e_regid.unwrap().len(), 4);
    assert_eq!(reg.e_keytype.unwrap(), [5]);
    assert_eq!(reg.e_ident.unwrap().len(), 32);
    assert_eq!(reg.e_skey_id.unwrap().len(), 3);
    assert_eq!(reg.e_skey_val.unwrap().len(), 32);
    assert_eq!(reg.e_skey_sig.unwrap().len(), 64);
    assert_eq!(reg.build_hash.unwrap().len(), 16);
    let props = DeviceProps::decode(reg.device_props.unwrap().as_slice()).unwrap();
    assert_eq!(props.os.as_deref(), Some("Mac OS"));
    assert_eq!(props.platform_type, Some(1), "CHROME");
    let hsc = props.history_sync_config.unwrap();
    assert_eq!(hsc.storage_quota_mb, Some(10240));
    assert_eq!(hsc.inline_initial_payload_in_e2ee_msg, Some(true));
}

fn node_available() -> Result<(), String> {
    if !repo_root()
        .join("tests/interop/node_modules/baileys")
        .is_dir()
    {
        return Err("tests/interop/node_modules is missing (run npm ci there)".into());
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("`node` is not on PATH".into()),
    }
}

fn frame_json(plain: &[u8], ct: &[u8]) -> serde_json::Value {
    serde_json::json!({ "plaintext": hex::encode(plain), "ciphertext": hex::encode(ct) })
}

#[test]
fn baileys_client_completes_handshake_with_our_server() {
    if let Err(reason) = node_available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("interop test cannot run under CI: {reason}");
        }
        println!("skipping Baileys interop test: {reason}");
        return;
    }
    let (server, root) = seeded_server();
    let mut child = Command::new("node")
        .arg(repo_root().join("tests/interop/noise-peer.mjs"))
        .current_dir(repo_root().join("tests/interop"))
        .env("ZAPIN_TEST_ROOT", hex::encode(root.public().0))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_node = child.stdin.take().unwrap();
    let mut from_node = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut expect = |tag: &str| -> String {
        let line = from_node.next().unwrap().unwrap();
        assert!(!line.starts_with("error"), "noise-peer.mjs: {line}");
        line.strip_prefix(tag)
            .map(|r| r.strip_prefix(' ').unwrap_or(r))
            .unwrap_or_else(|| panic!("expected `{tag}`, got {line:.80}"))
            .to_string()
    };

    let client_static = hex::decode(expect("client_static")).unwrap();
    let client_hello = hex::decode(expect("hello")).unwrap();
    let (server_hello, server) = server.read_client_hello(&client_hello).unwrap();
    writeln!(to_node, "{}", hex::encode(&server_hello)).unwrap();

    let payload = hex::decode(expect("payload")).unwrap();
    let client_finish = hex::decode(expect("finish")).unwrap();
    let mut outcome = server.read_client_finish(&client_finish).unwrap();
    assert_eq!(outcome.client_static.0.as_slice(), client_static.as_slice());
    assert_eq!(outcome.client_payload, payload);
    check_registration_payload(&outcome.client_payload);

    let mut c2s = Vec::new();
    for _ in 0..5 {
        let frame = expect("frame");
        let (plain, ct) = frame.split_once(' ').unwrap();
        let (plain, ct) = (hex::decode(plain).unwrap(), hex::decode(ct).unwrap());
        assert_eq!(outcome.transport.decrypt(&ct).unwrap(), plain);
        c2s.push(frame_json(&plain, &ct));
    }
    let mut s2c = Vec::new();
    for plain in server_frames() {
        let ct = outcome.transport.encrypt(&plain).unwrap();
        writeln!(to_node, "{}", hex::encode(&ct)).unwrap();
        s2c.push(frame_json(&plain, &ct));
    }
    writeln!(to_node, "end").unwrap();
    for plain in server_frames() {
        assert_eq!(hex::decode(expect("plain")).unwrap(), plain);
    }
    assert_eq!(expect("done"), "");
    assert!(child.wait().unwrap().success());

    if std::env::var_os("ZAPIN_RECORD_NOISE_TRANSCRIPT").is_some() {
        let transcript = serde_json::json!({
            "about": "A live run of Baileys 7.0.0-rc14 makeNoiseHandler (client) against zapin's ServerHandshake with the seeded keys in protocol/tests/noise_baileys.rs; recorded by that test with ZAPIN_RECORD_NOISE_TRANSCRIPT=1",
            "client_static": hex::encode(&client_static),
            "client_hello": hex::encode(&client_hello),
            "server_hello": hex::encode(&server_hello),
            "client_payload": hex::encode(&payload),
            "client_finish": hex::encode(&client_finish),
            "client_to_server": c2s,
            "server_to_client": s2c,
        });
        std::fs::write(
            repo_root().join("tests/vectors/noise/baileys-handshake.json"),
            serde_json::to_string_pretty(&transcript).unwrap() + "\n",
        )
        .unwrap();
    }
}

#[test]
fn recorded_baileys_transcript_replays_byte_for_byte() {
    let t: serde_json::Value = serde_json::from_str(include_str!(
        "../../tests/vectors/noise/baileys-handshake.json"
    ))
    .unwrap();
    let h = |k: &str| hex::decode(t[k].as_str().unwrap()).unwrap();
    let (server, _) = seeded_server();
    let (server_hello, server) = server.read_client_hello(&h("client_hello")).unwrap();
    assert_eq!(server_hello, h("server_hello"));
    let mut outcome = server.read_client_finish(&h("client_finish")).unwrap();
    assert_eq!(outcome.client_static.0.to_vec(), h("client_static"));
    assert_eq!(outcome.client_payload, h("client_payload"));
    check_registration_payload(&outcome.client_payload);

    let frames = |k: &str| -> Vec<(Vec<u8>, Vec<u8>)> {
        t[k].as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let g = |k: &str| hex::decode(f[k].as_str().unwrap()).unwrap();
                (g("plaintext"), g("ciphertext"))
            })
            .collect()
    };
    let c2s = frames("client_to_server");
    assert_eq!(c2s.len(), 5);
    for (plain, ct) in c2s {
        assert_eq!(outcome.transport.decrypt(&ct).unwrap(), plain);
    }
    let s2c = frames("server_to_client");
    assert_eq!(s2c.len(), 4);
    for (plain, ct) in s2c {
        assert_eq!(outcome.transport.encrypt(&plain).unwrap(), ct);
    }
}
