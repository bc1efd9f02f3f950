//! SessionManager behaviour that needs no server: registry, store effects, commands while
//! offline, connect failures with backoff, and panic recovery (wss:// is covered by tls.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::sync::broadcast;
use zapin_engine::backoff::BackoffPolicy;
use zapin_engine::{
    ConnectionState, CreateOptions, EngineConfig, EngineError, Event, EventKind, InstanceId,
    SessionManager,
};
use zapin_signal_store::{DeviceId, MasterKey, Store};

const WAIT: Duration = Duration::from_secs(10);

/// A `ws://` URL on a port where nothing listens.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("ws://127.0.0.1:{port}/ws/chat")
}

fn config(url: String) -> EngineConfig {
    EngineConfig {
        ws_url: url,
        connect_timeout: Duration::from_secs(2),
        backoff: BackoffPolicy {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
            stable_after: Duration::from_secs(30),
        },
        ..EngineConfig::default()
    }
}

fn store() -> Store {
    Store::memory(&MasterKey::from_bytes([3; 32]))
}

async fn wait_connection(
    rx: &mut broadcast::Receiver<Event>,
    want: ConnectionState,
) -> (u16, Option<String>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("event in time")
            .unwrap();
        if let EventKind::Connection {
            state,
            status,
            reason,
        } = ev.kind
            && state == want
        {
            return (status, reason);
        }
    }
}

#[tokio::test]
async fn registry_and_store_follow_create_and_delete() {
    let store = store();
    let manager = SessionManager::new(store.clone(), config(dead_url()));
    let id = InstanceId::new("one");
    let handle = manager
        .create(
            "one",
            CreateOptions {
                push_name: Some("Bot".into()),
                start: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(handle.state(), ConnectionState::Close);
    assert!(!handle.status().running);
    assert_eq!(manager.state(&id), Some(ConnectionState::Close));
    assert!(matches!(
        manager.create("one", CreateOptions::default()).await,
        Err(EngineError::AlreadyExists(_))
    ));
    let creds = store
        .load_credentials(&DeviceId::new("one").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.push_name.as_deref(), Some("Bot"));
    assert!(creds.account.is_none());
    assert_eq!(manager.instances(), vec![id.clone()]);

    manager.delete(&id).await.unwrap();
    assert!(manager.get(&id).is_none());
    assert!(
        store
            .load_credentials(&DeviceId::new("one").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        manager.start(&id).await,
        Err(EngineError::NotFound(_))
    ));
}

#[tokio::test]
async fn load_all_registers_unpaired_devices_without_connecting() {
    let store = store();
    {
        let manager = SessionManager::new(store.clone(), config(dead_url()));
        manager.create("a", CreateOptions::default()).await.unwrap();
        manager.create("b", CreateOptions::default()).await.unwrap();
        manager.shutdown().await;
    }
    let manager = SessionManager::new(store, config(dead_url()));
    let loaded = manager.load_all().await.unwrap();
    assert_eq!(loaded, vec![InstanceId::new("a"), InstanceId::new("b")]);
    for id in &loaded {
        let h = manager.get(id).unwrap();
        assert!(!h.status().running, "unpaired sessions wait for start");
    }
    assert!(manager.load_all().await.unwrap().is_empty(), "idempotent");
    manager.shutdown().await;
}

#[tokio::test]
async fn connect_failures_back_off_and_stop_ends_them() {
    let manager = SessionManager::new(store(), config(dead_url()));
    let mut rx = manager.subscribe();
    let handle = manager
        .create(
            "x",
            CreateOptions {
                start: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        wait_connection(&mut rx, ConnectionState::Connecting)
            .await
            .0,
        200
    );
    // Failed attempts keep it `Connecting` (state changes only are emitted, not each retry).
    assert_eq!(handle.state(), ConnectionState::Connecting);
    assert!(handle.status().running);
    // Messaging needs a connection.
    assert!(matches!(
        handle.send_text("15550000001", "hi").await,
        Err(EngineError::NotConnected)
    ));
    // A pairing-code request fails with the attempt instead of hanging.
    let code = tokio::time::timeout(WAIT, handle.request_pairing_code("15550000001"))
        .await
        .expect("answered in time");
    assert!(matches!(code, Err(EngineError::NotConnected)), "{code:?}");
    assert!(matches!(
        handle.request_pairing_code("+1 555").await,
        Err(EngineError::InvalidPhone(_))
    ));
    handle.stop().await.unwrap();
    wait_connection(&mut rx, ConnectionState::Close).await;
    assert!(!handle.status().running);
    manager.shutdown().await;
}

#[tokio::test]
async fn a_panic_restarts_the_actor_and_keeps_its_command_channel() {
    let manager = SessionManager::new(store(), config(dead_url()));
    let a = manager.create("a", CreateOptions::default()).await.unwrap();
    let b = manager.create("b", CreateOptions::default()).await.unwrap();
    a.inject_panic().await.unwrap();
    // The same handle reaches the restarted actor.
    tokio::time::timeout(WAIT, a.connect())
        .await
        .expect("restarted in time")
        .unwrap();
    a.wait_for(|s| s.running).await.unwrap();
    b.connect().await.unwrap();
    b.stop().await.unwrap();
    manager.shutdown().await;
}
