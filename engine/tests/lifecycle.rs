//! Connection lifecycle against the simulator over real sockets: QR and phone-code pairing, QR
//! rotation and limit, restart without re-scan, faults, keepalive, logout, panic recovery.
//!
//! Every wait is on an event, a state or a polled store condition with a deadline; there are no
//! fixed sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use zapin_engine::{
    ConnectionState, CreateOptions, EngineConfig, EventKind, InstanceId, LogoutReason,
    SessionManager,
};
use zapin_signal_store::{DeviceId, MasterKey, SqliteOptions, Store};

mod common;
use common::*;

#[tokio::test]
async fn pairs_by_qr_stores_credentials_and_opens() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let store = memory_store();
    let manager = SessionManager::new(store.clone(), engine_config(&sim));
    let mut rx = manager.subscribe();

    let (phone, _) = pair_by_qr(&manager, &mut rx, &api, "qr").await;
    let id = InstanceId::new("qr");
    assert_eq!(manager.state(&id), Some(ConnectionState::Open));

    let creds = store
        .load_credentials(&DeviceId::new("qr").unwrap())
        .await
        .unwrap()
        .unwrap();
    let account = creds.account.expect("paired credentials are stored");
    assert!(account.device_jid.starts_with(&format!("{phone}:")));
    assert!(account.lid.is_some());
    assert_eq!(creds.platform.as_deref(), Some("android"));
    // Prekeys are generated, stored and uploaded right after login (the count IQ comes first).
    let device = DeviceId::new("qr").unwrap();
    eventually(|| async { store.count_prekeys(&device).await.unwrap() >= 30 }).await;
    let view = api.get(&format!("/sim/accounts/{phone}")).await;
    let online = view["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["online"] == true);
    assert!(online, "{view}");
    manager.shutdown().await;
}

#[tokio::test]
async fn qr_codes_rotate_across_reconnects_until_the_limit_then_refused() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let config = EngineConfig {
        qrcode_limit: 8,
        ..engine_config(&sim)
    };
    let manager = SessionManager::new(memory_store(), config);
    let mut rx = manager.subscribe();
    manager
        .create(
            "rot",
            CreateOptions {
                start: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut refs = Vec::new();
    let started = Instant::now();
    let mut times = Vec::new();
    loop {
        let ev = wait_event(&mut rx, "rot", |k| match k {
            EventKind::QrCode { code, index, .. } => Some(Some((code.clone(), *index))),
            EventKind::QrLimitReached => Some(None),
            _ => None,
        })
        .await;
        let Some((code, index)) = ev else { break };
        times.push(started.elapsed());
        seen.push(index);
        refs.push(code.split(',').next().unwrap().to_owned());
    }
    assert_eq!(seen, (1..=8).collect::<Vec<_>>());
    // The 7th code comes from a second pair-device (6 refs per connection): a new ref.
    let mut unique = refs.clone();
    unique.dedup();
    assert_eq!(unique.len(), 8);
    // First code shown for 600 ms, the next ones 300 ms.
    assert!(
        times[1] - times[0] >= Duration::from_millis(550),
        "{times:?}"
    );
    assert!(
        times[2] - times[1] >= Duration::from_millis(250),
        "{times:?}"
    );
    let status = wait_state(&mut rx, "rot", ConnectionState::Refused).await;
    assert_eq!(status, 428);
    wait_state(&mut rx, "rot", ConnectionState::Close).await;
    let handle = manager.get(&"rot".into()).unwrap();
    assert!(!handle.status().running);
    manager.shutdown().await;
}

#[tokio::test]
async fn pairs_by_phone_code() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let phone = api.account("Bob").await;
    let handle = manager
        .create("code", CreateOptions::default())
        .await
        .unwrap();
    let code = tokio::time::timeout(WAIT, handle.request_pairing_code(&phone))
        .await
        .expect("pairing code in time")
        .unwrap();
    assert_eq!(code.len(), 8);
    let event_code = wait_event(&mut rx, "code", |k| match k {
        EventKind::PairingCode { code } => Some(code.clone()),
        _ => None,
    })
    .await;
    assert_eq!(event_code, code);
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{phone}/link-code"),
            json!({ "code": code }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_event(&mut rx, "code", |k| {
        matches!(k, EventKind::Paired { .. }).then_some(())
    })
    .await;
    wait_state(&mut rx, "code", ConnectionState::Open).await;
    manager.shutdown().await;
}

#[tokio::test]
async fn restart_reopens_the_sqlite_store_and_logs_in_without_a_qr() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::from_bytes([9; 32]);
    {
        let store = Store::open_sqlite(&SqliteOptions::new(dir.path()), &key)
            .await
            .unwrap();
        let manager = SessionManager::new(store.clone(), engine_config(&sim));
        let mut rx = manager.subscribe();
        pair_by_qr(&manager, &mut rx, &api, "durable").await;
        manager.shutdown().await;
        store.close().await;
    }
    let store = Store::open_sqlite(&SqliteOptions::new(dir.path()), &key)
        .await
        .unwrap();
    let manager = SessionManager::new(store, engine_config(&sim));
    let mut rx = manager.subscribe();
    let loaded = manager.load_all().await.unwrap();
    assert_eq!(loaded, vec![InstanceId::new("durable")]);
    let qr_seen = wait_event(&mut rx, "durable", |k| match k {
        EventKind::QrCode { .. } => Some(true),
        EventKind::Connection {
            state: ConnectionState::Open,
            ..
        } => Some(false),
        _ => None,
    })
    .await;
    assert!(!qr_seen, "a paired device must log in without a QR");
    manager.shutdown().await;
}

#[tokio::test]
async fn recovers_from_transient_faults() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    pair_by_qr(&manager, &mut rx, &api, "f").await;

    // Every socket dropped.
    api.fault(json!({ "action": "disconnect_all" })).await;
    wait_state(&mut rx, "f", ConnectionState::Connecting).await;
    wait_state(&mut rx, "f", ConnectionState::Open).await;

    // 515: reconnect at once (a backoff would report the code, an immediate reconnect 200).
    api.fault(json!({ "action": "stream_error", "code": "515" }))
        .await;
    let status = wait_state(&mut rx, "f", ConnectionState::Connecting).await;
    assert_eq!(status, 200);
    wait_state(&mut rx, "f", ConnectionState::Open).await;

    // 503: backoff, then open.
    api.fault(json!({ "action": "stream_error", "code": "503" }))
        .await;
    let status = wait_state(&mut rx, "f", ConnectionState::Connecting).await;
    assert_eq!(status, 503);
    let handle = manager.get(&"f".into()).unwrap();
    // The Connecting event follows the status update that names the cause.
    let cause = handle.status().last_error.unwrap_or_default();
    assert!(cause.starts_with("503"), "{cause:?}");
    wait_state(&mut rx, "f", ConnectionState::Open).await;
    assert_eq!(handle.status().last_error, None, "cleared once open");

    // Refused connections for a second: retried with backoff until accepted.
    api.fault(json!({ "action": "refuse", "seconds": 1 })).await;
    let refused_at = Instant::now();
    api.fault(json!({ "action": "disconnect_all" })).await;
    wait_state(&mut rx, "f", ConnectionState::Connecting).await;
    wait_state(&mut rx, "f", ConnectionState::Open).await;
    assert!(refused_at.elapsed() >= Duration::from_millis(900));

    // Latency: still works.
    api.fault(json!({ "action": "latency", "ms": 150 })).await;
    api.fault(json!({ "action": "disconnect_all" })).await;
    wait_state(&mut rx, "f", ConnectionState::Connecting).await;
    wait_state(&mut rx, "f", ConnectionState::Open).await;
    api.clear_faults().await;
    manager.shutdown().await;
}

#[tokio::test]
async fn conflict_440_stops_without_reconnecting() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    pair_by_qr(&manager, &mut rx, &api, "c").await;
    api.fault(json!({ "action": "stream_error", "code": "440" }))
        .await;
    let status = wait_state(&mut rx, "c", ConnectionState::Close).await;
    assert_eq!(status, 440);
    let handle = manager.get(&"c".into()).unwrap();
    assert!(!handle.status().running);
    // No reconnect attempt follows: nothing arrives within several backoff caps.
    let next = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
    assert!(next.is_err(), "unexpected event after 440: {next:?}");
    assert_eq!(handle.state(), ConnectionState::Close);
    manager.shutdown().await;
}

#[tokio::test]
async fn unlink_on_the_phone_logs_out_and_clears_credentials() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let store = memory_store();
    let manager = SessionManager::new(store.clone(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (phone, _) = pair_by_qr(&manager, &mut rx, &api, "u").await;
    let jid = manager.get(&"u".into()).unwrap().status().jid.unwrap();
    let device: u16 = jid.split(['.', ':', '@']).nth(1).unwrap().parse().unwrap();
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{phone}/unlink"),
            json!({ "device": device }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let reason = wait_event(&mut rx, "u", |k| match k {
        EventKind::LoggedOut { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(reason, LogoutReason::Revoked { .. }), "{reason:?}");
    wait_state(&mut rx, "u", ConnectionState::Close).await;
    let creds = store
        .load_credentials(&DeviceId::new("u").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(creds.account.is_none(), "credentials cleared");
    manager.shutdown().await;
}

#[tokio::test]
async fn user_logout_clears_credentials_and_a_new_connect_shows_a_qr() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let store = memory_store();
    let manager = SessionManager::new(store.clone(), engine_config(&sim));
    let mut rx = manager.subscribe();
    pair_by_qr(&manager, &mut rx, &api, "lo").await;
    manager.logout(&"lo".into()).await.unwrap();
    let reason = wait_event(&mut rx, "lo", |k| match k {
        EventKind::LoggedOut { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, LogoutReason::UserInitiated);
    let creds = store
        .load_credentials(&DeviceId::new("lo").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(creds.account.is_none());
    manager.start(&"lo".into()).await.unwrap();
    let index = wait_event(&mut rx, "lo", |k| match k {
        EventKind::QrCode { index, .. } => Some(*index),
        _ => None,
    })
    .await;
    assert_eq!(index, 1, "the QR count starts over after a logout");
    manager.delete(&"lo".into()).await.unwrap();
    assert!(
        store
            .load_credentials(&DeviceId::new("lo").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn keepalive_detects_a_silent_server_and_reconnects() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let config = EngineConfig {
        keepalive_interval: Duration::from_millis(500),
        keepalive_timeout: Duration::from_millis(500),
        ..engine_config(&sim)
    };
    let manager = SessionManager::new(memory_store(), config);
    let mut rx = manager.subscribe();
    pair_by_qr(&manager, &mut rx, &api, "ka").await;
    // Every server frame now takes 3 s: nothing comes in for interval + timeout.
    api.fault(json!({ "action": "latency", "ms": 3000 })).await;
    let detected = Instant::now();
    let (status, reason) = wait_event(&mut rx, "ka", |k| match k {
        EventKind::Connection {
            state: ConnectionState::Connecting,
            status,
            reason,
        } => Some((*status, reason.clone())),
        _ => None,
    })
    .await;
    assert_eq!(status, 408);
    assert!(reason.unwrap().contains("keepalive"));
    assert!(detected.elapsed() < Duration::from_secs(3));
    api.clear_faults().await;
    wait_state(&mut rx, "ka", ConnectionState::Open).await;
    manager.shutdown().await;
}

#[tokio::test]
async fn a_panicking_session_is_restarted_and_others_keep_running() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    pair_by_qr(&manager, &mut rx, &api, "p1").await;
    pair_by_qr(&manager, &mut rx, &api, "p2").await;
    manager
        .get(&"p1".into())
        .unwrap()
        .inject_panic()
        .await
        .unwrap();
    wait_state(&mut rx, "p1", ConnectionState::Open).await;
    assert_eq!(manager.state(&"p2".into()), Some(ConnectionState::Open));
    // Commands still reach the restarted actor.
    let err = manager
        .get(&"p1".into())
        .unwrap()
        .send_text("120363000000000001@g.us", "hi")
        .await
        .unwrap_err();
    // The group does not exist: the metadata query's 404 comes back as the send's error.
    assert!(
        matches!(
            err,
            zapin_engine::EngineError::Messaging(zapin_engine::messaging::MessagingError::Iq {
                code: 404,
                ..
            })
        ),
        "{err}"
    );
    manager.shutdown().await;
}

#[tokio::test]
async fn sends_a_text_after_usync_and_key_fetch_and_refuses_when_offline() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    pair_by_qr(&manager, &mut rx, &api, "s1").await;
    let (peer, _) = pair_by_qr(&manager, &mut rx, &api, "s2").await;
    let s1 = manager.get(&"s1".into()).unwrap();
    // Encrypts to the peer's phone and companion (sessions from fetched bundles) and writes it.
    let id = s1.send_text(&peer, "hello").await.unwrap();
    assert!(!id.is_empty());
    // A second send reuses the sessions and the cached device list.
    let id2 = s1.send_text(&peer, "again").await.unwrap();
    assert_ne!(id, id2);
    s1.send_presence(true).await.unwrap();
    manager.stop(&"s1".into()).await.unwrap();
    let err = s1.send_text(&peer, "offline").await.unwrap_err();
    assert!(
        matches!(err, zapin_engine::EngineError::NotConnected),
        "{err}"
    );
    manager.shutdown().await;
}

#[tokio::test]
async fn a_pair_success_with_a_wrong_hmac_is_refused_and_nothing_is_stored() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let store = memory_store();
    let manager = SessionManager::new(store.clone(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let phone = api.account("Eve").await;
    manager
        .create(
            "bad",
            CreateOptions {
                start: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let code = wait_event(&mut rx, "bad", |k| match k {
        EventKind::QrCode { code, .. } => Some(code.clone()),
        _ => None,
    })
    .await;
    // The phone HMACs with the adv secret it read from the QR: give it another one.
    let mut fields: Vec<&str> = code.split(',').collect();
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    fields[3] = wrong;
    let (status, _) = api
        .post(
            &format!("/sim/accounts/{phone}/scan"),
            json!({ "qr": fields.join(",") }),
        )
        .await;
    assert_ne!(status, 200, "the sim must see the pairing fail");
    let reason = wait_event(&mut rx, "bad", |k| match k {
        EventKind::PairingFailed { reason } => Some(reason.clone()),
        EventKind::Paired { .. } => panic!("paired with a wrong HMAC"),
        _ => None,
    })
    .await;
    assert!(reason.contains("HMAC"), "{reason}");
    let creds = store
        .load_credentials(&DeviceId::new("bad").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(creds.account.is_none(), "nothing stored");
    manager.shutdown().await;
}

#[tokio::test]
async fn messages_flow_both_ways_with_a_mock_phone() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (own_phone, _) = pair_by_qr(&manager, &mut rx, &api, "m").await;
    let peer = api.account("Carol").await;
    let handle = manager.get(&"m".into()).unwrap();

    // Out: the peer's phone decrypts it; we see the server ack and the delivery receipt.
    let id = handle.send_text(&peer, "hello carol").await.unwrap();
    let mut acked = false;
    let mut delivered = false;
    while !(acked && delivered) {
        let status = wait_event(&mut rx, "m", |k| match k {
            EventKind::MessageUpdate(u) if u.key.id == id => Some(u.status),
            _ => None,
        })
        .await;
        acked |= status == zapin_engine::messaging::MessageStatus::ServerAck;
        delivered |= status >= zapin_engine::messaging::MessageStatus::DeliveryAck;
    }
    let inbox = api.get(&format!("/sim/accounts/{peer}/messages")).await;
    assert!(
        inbox
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == id.as_str() && m["text"] == "hello carol"),
        "{inbox}"
    );

    // In: the peer's phone writes to our account; our companion decrypts it.
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{peer}/messages"),
            json!({ "to": format!("{own_phone}@s.whatsapp.net"), "text": "hi from carol" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let received = wait_event(&mut rx, "m", |k| match k {
        EventKind::MessageUpsert(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        received.message.conversation.as_deref(),
        Some("hi from carol")
    );
    assert_eq!(received.key.id, body["id"].as_str().unwrap());
    assert!(!received.key.from_me);
    manager.shutdown().await;
}
