//! `--seed` determinism and `--state-dir` persistence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use zapin_protocol::crypto::PublicKey;
use zapin_sim::SimConfig;
use zapin_sim::qr::QrData;
use zapin_sim::state::{PreKeyPublic, Registration, SignedPreKeyPublic};

/// Root key, then for account 1: LID, identity, signed prekey, registration id, first prekey.
async fn fingerprint(config: SimConfig) -> (String, String, PublicKey, PublicKey, u32, PublicKey) {
    let sim = start(config).await;
    let api = Api::new(&sim);
    let root = api.get("/sim/root-key").await.1["public_key_hex"]
        .as_str()
        .unwrap()
        .to_string();
    let lid = api.post("/sim/accounts", json!({})).await.1["lid"]
        .as_str()
        .unwrap()
        .to_string();
    let state = sim.sim().state();
    let (identity, spk, reg) = state.read(|s| {
        let a = &s.accounts["15550000001"];
        (
            *a.identity.public(),
            *a.phone_device.signed_prekey.key.public(),
            a.phone_device.registration_id,
        )
    });
    let (_, prekey) = state.take_phone_prekey("15550000001").unwrap();
    sim.shutdown().await.unwrap();
    (root, lid, identity, spk, reg, *prekey.public())
}

#[tokio::test]
async fn same_seed_same_keys_different_seed_different_keys() {
    let a = fingerprint(seeded(42)).await;
    let b = fingerprint(seeded(42)).await;
    let c = fingerprint(seeded(43)).await;
    assert_eq!(a, b);
    assert_ne!(a.0, c.0, "root key");
    assert_ne!(a.1, c.1, "lid");
    assert_ne!(a.2, c.2, "identity");
    assert_ne!(a.3, c.3, "signed prekey");
    assert_ne!(a.5, c.5, "one-time prekey");
    // Without a seed, two runs differ.
    let d = fingerprint(SimConfig::default()).await;
    let e = fingerprint(SimConfig::default()).await;
    assert_ne!(d.0, e.0);
}

#[tokio::test]
async fn state_dir_survives_a_restart() {
    let dir = temp_dir("persist");
    let config = || SimConfig {
        state_dir: Some(dir.clone()),
        ..SimConfig::default()
    };

    // First run: no seed (keys from the OS), an account with a paired device, prekeys, a group.
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let root = sim.root_public_key();
    api.post("/sim/accounts", json!({"push_name": "Alice"}))
        .await;
    api.post("/sim/accounts", json!({})).await;
    let state = sim.sim().state();
    let conn = zapin_sim::conn::ConnId(77);
    let registration = Registration {
        noise_static: PublicKey([1; 32]),
        identity: PublicKey([2; 32]),
        registration_id: 9,
        signed_prekey: SignedPreKeyPublic {
            id: 3,
            public: PublicKey([4; 32]),
            signature: [5; 64],
        },
    };
    state.registration_started(conn, registration.clone());
    let refs = state.issue_refs(conn).unwrap();
    let ticket = state
        .begin_qr_pairing(
            "15550000001",
            &QrData {
                pairing_ref: refs[0].clone(),
                noise_static: registration.noise_static,
                identity: registration.identity,
                adv_secret: [0; 32],
                platform: Some('3'),
            },
        )
        .unwrap();
    state.finish_pairing(&ticket, vec![1, 2, 3]).unwrap();
    let uploaded: Vec<_> = (1..=5)
        .map(|id| PreKeyPublic {
            id,
            public: PublicKey([id as u8; 32]),
        })
        .collect();
    state
        .upload_prekeys("15550000001", ticket.device, uploaded.clone())
        .unwrap();
    let taken = state.take_phone_prekey("15550000002").unwrap();
    let group = api
        .post(
            "/sim/groups",
            json!({"creator": "15550000001", "subject": "G", "participants": ["15550000002"]}),
        )
        .await
        .1["jid"]
        .as_str()
        .unwrap()
        .to_string();
    let account_before = api.get("/sim/accounts/15550000001").await.1;
    let group_before = api.get(&format!("/sim/groups/{group}")).await.1;
    sim.shutdown().await.unwrap();
    assert!(dir.join("state.json").exists());
    assert!(!dir.join("state.json.tmp").exists());

    // Second run on the same directory.
    let sim = start(config()).await;
    let api = Api::new(&sim);
    assert_eq!(sim.root_public_key(), root);
    assert_eq!(api.get("/sim/accounts/15550000001").await.1, account_before);
    assert_eq!(
        api.get(&format!("/sim/groups/{group}")).await.1,
        group_before
    );
    assert_eq!(api.stats().await["accounts"], 2);
    let state = sim.sim().state();
    let (prekeys, adv) = state.read(|s| {
        let d = &s.accounts["15550000001"].companions[&ticket.device];
        (
            d.prekeys.iter().copied().collect::<Vec<_>>(),
            d.adv_signed_identity.clone(),
        )
    });
    assert_eq!(prekeys, uploaded);
    assert_eq!(adv, vec![1, 2, 3]);
    // The phone's prekey pool continues where it was, with the same derived keys.
    let next = state.take_phone_prekey("15550000002").unwrap();
    assert_eq!(next.0, taken.0 + 1);
    assert_eq!(
        state.phone_prekey("15550000002", taken.0).unwrap().public(),
        taken.1.public()
    );
    // Auto-assigned phones and device numbers continue too.
    assert_eq!(
        api.post("/sim/accounts", json!({})).await.1["phone"],
        "15550000003"
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn state_dir_rejects_another_seed_and_corrupt_snapshots() {
    let dir = temp_dir("seeded");
    let sim = start(SimConfig {
        seed: Some(1),
        state_dir: Some(dir.clone()),
        ..SimConfig::default()
    })
    .await;
    sim.shutdown().await.unwrap();

    let other = zapin_sim::run(SimConfig {
        seed: Some(2),
        state_dir: Some(dir.clone()),
        ..SimConfig::default()
    })
    .await;
    assert!(
        matches!(other, Err(zapin_sim::SimError::State(ref e)) if e.to_string().contains("seed")),
        "{other:?}"
    );
    // The same seed, or none, reopens it.
    for seed in [Some(1), None] {
        let sim = start(SimConfig {
            seed,
            state_dir: Some(dir.clone()),
            ..SimConfig::default()
        })
        .await;
        sim.shutdown().await.unwrap();
    }

    std::fs::write(dir.join("state.json"), b"{ not json").unwrap();
    let corrupt = zapin_sim::run(SimConfig {
        state_dir: Some(dir.clone()),
        ..SimConfig::default()
    })
    .await;
    assert!(matches!(corrupt, Err(zapin_sim::SimError::State(_))));
}

#[tokio::test]
async fn snapshot_is_written_while_running() {
    let dir = temp_dir("debounce");
    let sim = start(SimConfig {
        state_dir: Some(dir.clone()),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    api.post("/sim/accounts", json!({"phone": "4930123456"}))
        .await;
    wait_for("the snapshot to hold the account", || async {
        std::fs::read_to_string(dir.join("state.json"))
            .ok()
            .filter(|s| s.contains("4930123456"))
    })
    .await;
    sim.shutdown().await.unwrap();
}
