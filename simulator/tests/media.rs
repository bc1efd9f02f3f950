//! Media (§8): the `media_conn` IQ through the wire IQ dispatcher, and real HTTP uploads and
//! downloads of blobs encrypted with `zapin_protocol::media`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::media::{self, EncryptedMedia, MediaKind};
use zapin_sim::media::{MediaConfig, upload_token};
use zapin_sim::wire::iq::{Asker, IqOutcome, answer};
use zapin_sim::{RunningSim, SimConfig};

struct MediaConn {
    auth: String,
    hostname: String,
}

/// Sends `<iq xmlns=w:m type=set to=s.whatsapp.net><media_conn/></iq>` through the handler's IQ
/// dispatcher and checks every attribute WhatsApp Web requires.
fn media_conn(sim: &RunningSim, id: &str) -> MediaConn {
    let iq = Node::new("iq")
        .attr("id", id.to_string())
        .attr("xmlns", "w:m")
        .attr("type", "set")
        .attr("to", Jid::server_only(Server::Pn))
        .children(vec![Node::new("media_conn")]);
    let asker = Asker {
        phone: "5511999990001",
        device: 1,
    };
    let IqOutcome::Answer(nodes) = answer(sim.sim(), &asker, &iq) else {
        panic!("media_conn routed instead of answered");
    };
    assert_eq!(nodes.len(), 1);
    let reply = &nodes[0];
    assert_eq!(reply.attr_str("type"), Some("result"));
    assert_eq!(reply.attr_str("id"), Some(id));
    let mc = reply.child("media_conn").expect("media_conn child");
    for attr in ["auth", "ttl", "auth_ttl", "max_buckets"] {
        assert!(
            mc.attr_str(attr).is_some_and(|v| !v.is_empty()),
            "missing {attr}"
        );
    }
    assert!(mc.attr_str("ttl").unwrap().parse::<u64>().unwrap() > 0);
    let hosts: Vec<&Node> = mc
        .child_nodes()
        .iter()
        .filter(|n| &*n.tag == "host")
        .collect();
    assert_eq!(hosts.len(), 1);
    assert!(
        hosts[0]
            .attr_str("maxContentLengthBytes")
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    MediaConn {
        auth: mc.attr_str("auth").unwrap().to_string(),
        hostname: hosts[0].attr_str("hostname").unwrap().to_string(),
    }
}

fn encrypted(len: usize, seed: u8) -> ([u8; 32], Vec<u8>, EncryptedMedia) {
    let key = [seed; 32];
    let plain: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
    let enc = media::encrypt(&key, MediaKind::Image, &plain);
    (key, plain, enc)
}

/// Baileys' upload URL shape (§8.3), over plain http to the sim's own port.
fn upload_url(host: &str, media_type: &str, token: &str, auth: &str) -> String {
    format!("http://{host}/mms/{media_type}/{token}?auth={auth}&token={token}")
}

async fn post(url: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("Origin", "https://web.whatsapp.com")
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn get_bytes(url: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn media_conn_points_at_the_sim_with_fresh_auth_each_time() {
    let sim = start(seeded(11)).await;
    let a = media_conn(&sim, "m1");
    let b = media_conn(&sim, "m2");
    assert_eq!(a.hostname, sim.local_addr().to_string());
    assert_ne!(a.auth, b.auth);
    assert!(sim.sim().media().auth_valid(&a.auth));
    assert!(sim.sim().media().auth_valid(&b.auth));
}

#[tokio::test]
async fn upload_then_download_decrypts() {
    let sim = start(seeded(12)).await;
    let mc = media_conn(&sim, "m1");
    let (key, plain, enc) = encrypted(5000, 3);
    let token = upload_token(&enc.file_enc_sha256);

    let (status, v) = post(
        &upload_url(&mc.hostname, "image", &token, &mc.auth),
        enc.blob.clone(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let direct_path = v["direct_path"].as_str().unwrap();
    let url = v["url"].as_str().unwrap();
    assert!(direct_path.starts_with("/v/") && direct_path.contains('?'));
    assert_eq!(url, format!("http://{}{direct_path}", mc.hostname));

    // Baileys downloads `url` (or host + directPath); WhatsApp Web appends `&hash=…&mms-type=…`.
    let wm = format!(
        "http://{}{direct_path}&hash={token}&mms-type=image&__wa-mms=",
        mc.hostname
    );
    for u in [url.to_string(), wm] {
        let (status, blob) = get_bytes(&u).await;
        assert_eq!(status, 200, "{u}");
        let got = media::decrypt_verified(
            &key,
            MediaKind::Image,
            &blob,
            &enc.file_enc_sha256,
            &enc.file_sha256,
        )
        .unwrap();
        assert_eq!(got, plain);
    }

    // WhatsApp Web keeps the base64 `=` padding; the same blob again is accepted and stored once.
    let padded = format!("{token}=");
    let (status, v2) = post(
        &upload_url(&mc.hostname, "image", &padded, &mc.auth),
        enc.blob.clone(),
    )
    .await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(v2["direct_path"], v["direct_path"]);
    assert_eq!(sim.sim().media().total_bytes(), enc.blob.len());
}

#[tokio::test]
async fn bad_auth_bad_token_and_unknown_media_are_rejected() {
    let sim = start(seeded(13)).await;
    let mc = media_conn(&sim, "m1");
    let (_, _, enc) = encrypted(100, 5);
    let token = upload_token(&enc.file_enc_sha256);

    for auth in ["wrong", ""] {
        let got = post(
            &upload_url(&mc.hostname, "image", &token, auth),
            enc.blob.clone(),
        )
        .await;
        assert!(assert_error(&got, 401).contains("auth"));
    }
    let no_auth = format!("http://{}/mms/image/{token}", mc.hostname);
    assert_error(&post(&no_auth, enc.blob.clone()).await, 401);

    // Body that does not hash to the token.
    let mut tampered = enc.blob.clone();
    tampered[0] ^= 1;
    let got = post(
        &upload_url(&mc.hostname, "image", &token, &mc.auth),
        tampered,
    )
    .await;
    assert!(assert_error(&got, 400).contains("fileEncSha256"));
    let got = post(
        &upload_url(&mc.hostname, "image", "short", &mc.auth),
        enc.blob.clone(),
    )
    .await;
    assert_error(&got, 400);
    assert_eq!(sim.sim().media().total_bytes(), 0);

    let missing = format!(
        "{}{}",
        sim.http_url(),
        zapin_sim::media::MediaStore::direct_path(&"ab".repeat(32))
    );
    let resp = reqwest::get(&missing).await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("no such media"));
}

#[tokio::test]
async fn size_caps_answer_413() {
    let sim = start(SimConfig {
        seed: Some(14),
        media: MediaConfig {
            max_blob_bytes: 1024,
            max_total_bytes: 1500,
            ..MediaConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let mc = media_conn(&sim, "m1");

    let (_, _, big) = encrypted(2000, 7);
    let token = upload_token(&big.file_enc_sha256);
    let got = post(
        &upload_url(&mc.hostname, "video", &token, &mc.auth),
        big.blob,
    )
    .await;
    assert!(assert_error(&got, 413).contains("upload limit"));

    let (_, _, first) = encrypted(900, 8);
    let token = upload_token(&first.file_enc_sha256);
    let (status, _) = post(
        &upload_url(&mc.hostname, "video", &token, &mc.auth),
        first.blob,
    )
    .await;
    assert_eq!(status, 200);
    let (_, _, second) = encrypted(900, 9);
    let token = upload_token(&second.file_enc_sha256);
    let got = post(
        &upload_url(&mc.hostname, "video", &token, &mc.auth),
        second.blob,
    )
    .await;
    assert!(assert_error(&got, 413).contains("store full"));
    assert_eq!(sim.sim().media().total_bytes(), 912 + media::MAC_LEN);
}

#[tokio::test]
async fn media_host_flag_is_handed_out_with_https_urls() {
    let sim = start(SimConfig {
        seed: Some(15),
        media: MediaConfig {
            host: Some("media.sim.test".to_string()),
            ..MediaConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let mc = media_conn(&sim, "m1");
    assert_eq!(mc.hostname, "media.sim.test");
    // The front forwards to this port; upload straight to it.
    let (_, _, enc) = encrypted(10, 2);
    let token = upload_token(&enc.file_enc_sha256);
    let url = upload_url(&sim.local_addr().to_string(), "document", &token, &mc.auth);
    let (status, v) = post(&url, enc.blob).await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["url"]
            .as_str()
            .unwrap()
            .starts_with("https://media.sim.test/v/")
    );
}

#[tokio::test]
async fn blobs_survive_a_restart_with_the_state_dir() {
    let dir = temp_dir("media-state");
    let config = || SimConfig {
        seed: Some(16),
        state_dir: Some(dir.clone()),
        ..SimConfig::default()
    };
    let sim = start(config()).await;
    let mc = media_conn(&sim, "m1");
    let (key, plain, enc) = encrypted(300, 4);
    let token = upload_token(&enc.file_enc_sha256);
    let (status, v) = post(
        &upload_url(&mc.hostname, "audio", &token, &mc.auth),
        enc.blob.clone(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let direct_path = v["direct_path"].as_str().unwrap().to_string();
    sim.shutdown().await.unwrap();

    // A stray file and a partial upload are ignored.
    std::fs::write(dir.join("media").join("junk"), b"x").unwrap();
    std::fs::write(
        dir.join("media")
            .join(format!("{}.upload.tmp", "cd".repeat(32))),
        b"x",
    )
    .unwrap();

    let sim = start(config()).await;
    assert_eq!(sim.sim().media().total_bytes(), enc.blob.len());
    let (status, blob) = get_bytes(&format!("{}{direct_path}", sim.http_url())).await;
    assert_eq!(status, 200);
    assert_eq!(
        media::decrypt(&key, MediaKind::Image, &blob).unwrap(),
        plain
    );
    sim.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn interop_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

/// `Some(reason)` if the Baileys media script cannot run here (node, node_modules, openssl).
fn missing_prerequisite() -> Option<String> {
    if !interop_dir()
        .join("node_modules/baileys/package.json")
        .exists()
    {
        return Some("tests/interop has no node_modules/baileys".to_string());
    }
    for (tool, arg) in [("node", "--version"), ("openssl", "version")] {
        match std::process::Command::new(tool).arg(arg).output() {
            Ok(o) if o.status.success() => {}
            _ => return Some(format!("{tool} is not on PATH")),
        }
    }
    None
}

/// Unmodified Baileys uploads with `getWAUploadToServer` and downloads with
/// `downloadContentFromMessage` through an HTTPS front onto the simulator
/// (tests/interop/baileys-media.mjs); its blob decrypts here, and zapin's blob decrypts there.
#[tokio::test]
async fn baileys_media_through_an_https_front() {
    if let Some(reason) = missing_prerequisite() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Baileys media test cannot run under CI: {reason}"
        );
        eprintln!("skipping the Baileys media test: {reason}");
        return;
    }
    let sim = start(seeded(17)).await;
    let mc = media_conn(&sim, "m1");
    let zapin_key = [9u8; 32];
    let zapin_plain = b"a document zapin encrypted for Baileys to read".repeat(10);
    let enc = media::encrypt(&zapin_key, MediaKind::Document, &zapin_plain);
    let token = upload_token(&enc.file_enc_sha256);
    let (status, v) = post(
        &upload_url(&mc.hostname, "document", &token, &mc.auth),
        enc.blob,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let zapin_path = v["direct_path"].as_str().unwrap();

    let run = tokio::process::Command::new("node")
        .current_dir(interop_dir())
        .env("NODE_TLS_REJECT_UNAUTHORIZED", "0")
        .env("NODE_NO_WARNINGS", "1")
        .args(["baileys-media.mjs", &mc.hostname, &mc.auth])
        .arg(hex::encode(zapin_key))
        .args([zapin_path, "document"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("baileys-media.mjs timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "baileys-media.mjs failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(r["baileys_roundtrip"], true, "{r}");
    assert_eq!(
        r["zapin_plaintext"].as_str().unwrap(),
        hex::encode(&zapin_plain)
    );

    // Baileys' blob, fetched straight from the simulator, decrypts with zapin's helper.
    let key: [u8; 32] = hex::decode(r["media_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let path = r["direct_path"].as_str().unwrap();
    let (status, blob) = get_bytes(&format!("{}{path}", sim.http_url())).await;
    assert_eq!(status, 200);
    let plain = media::decrypt(&key, MediaKind::Image, &blob).unwrap();
    assert_eq!(hex::encode(plain), r["plaintext"].as_str().unwrap());
    let id = path.split('/').nth(3).unwrap().split('?').next().unwrap();
    assert_eq!(sim.sim().media().get(id).unwrap().media_type, "image");
}
