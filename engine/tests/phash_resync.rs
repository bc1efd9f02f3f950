//! Participant-hash resync (wa-protocol.md §7.3, §7.10): a group member gains a device the engine
//! never hears about; the simulator's ack of the next group send carries a `phash` that differs
//! from the engine's, the engine drops its cached device lists, and the send after that reaches
//! the new device.
//!
//! Every wait is on an event or a polled condition with a deadline; no fixed sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;

use serde_json::json;
use zapin_engine::messaging::MessageStatus;
use zapin_engine::{ConnectionState, CreateOptions, EventKind, SessionManager};

mod common;
use common::*;

fn phash_mismatches(sim: &zapin_sim::RunningSim) -> u64 {
    sim.sim()
        .state()
        .counters()
        .phash_mismatches
        .load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_phash_mismatch_refreshes_device_lists_so_the_next_send_reaches_a_new_device() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (own_phone, _) = pair_by_qr(&manager, &mut rx, &api, "a").await;
    let bob = api.account("Bob").await;
    let (status, body) = api
        .post(
            "/sim/groups",
            json!({ "creator": bob, "subject": "Team", "participants": [own_phone] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let group = body["jid"].as_str().unwrap().to_owned();
    wait_event(&mut rx, "a", |k| match k {
        EventKind::GroupUpdate(u) if u.group == group => Some(()),
        _ => None,
    })
    .await;

    // First send: device lists fetched; the engine's hash agrees with the server's.
    let handle = manager.get(&"a".into()).unwrap();
    let first = handle.send_text(&group, "before").await.unwrap();
    wait_status(&mut rx, "a", &first, MessageStatus::ServerAck).await;
    inbox_message(&api, &bob, &first).await;
    assert_eq!(
        phash_mismatches(&sim),
        0,
        "engine and server hash differently"
    );

    // Bob links a companion (another engine session). The simulator sends no device
    // notification, so "a" keeps its stale list of Bob's devices.
    manager
        .create(
            "b",
            CreateOptions {
                push_name: Some("Bob desktop".into()),
                start: true,
            },
        )
        .await
        .unwrap();
    let code = wait_event(&mut rx, "b", |k| match k {
        EventKind::QrCode { code, .. } => Some(code.clone()),
        _ => None,
    })
    .await;
    let (status, body) = api
        .post(&format!("/sim/accounts/{bob}/scan"), json!({ "qr": code }))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_state(&mut rx, "b", ConnectionState::Open).await;

    // Second send: encrypted for the stale set; the ack's phash differs.
    let stale = handle.send_text(&group, "stale").await.unwrap();
    wait_status(&mut rx, "a", &stale, MessageStatus::ServerAck).await;
    assert_eq!(phash_mismatches(&sim), 1);

    // Third send: device lists re-fetched, so the hash matches again and the new device gets
    // the sender key with the message and decrypts it.
    let fresh = handle.send_text(&group, "fresh").await.unwrap();
    wait_status(&mut rx, "a", &fresh, MessageStatus::ServerAck).await;
    assert_eq!(
        phash_mismatches(&sim),
        1,
        "the send after a mismatch still used stale device lists"
    );
    let got = wait_event(&mut rx, "b", |k| match k {
        EventKind::MessageUpsert(m) if m.key.id == fresh => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got.message.conversation.as_deref(), Some("fresh"));
    assert_eq!(got.key.remote_jid.to_string(), group);
    manager.shutdown().await;
}
