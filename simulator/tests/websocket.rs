//! `/ws/chat`: intro check, faults (refuse, disconnect_all, latency, stream_error), idle timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use zapin_sim::SimConfig;

async fn wait_connections(api: &Api, n: u64) {
    wait_for(&format!("{n} connections"), || async {
        (api.stats().await["connections"] == n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn bad_header_closes_and_server_keeps_serving() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);

    let mut bad = connect(&sim).await;
    send(&mut bad, b"GET / HTTP/1.1").await;
    let (_, end) = read_until_end(&mut bad).await;
    assert!(
        matches!(end, End::Closed(1002, ref r) if r.contains("header")),
        "{end:?}"
    );

    let mut bad_ed = connect(&sim).await;
    send(&mut bad_ed, &[0x45, 0x44, 0x00, 0x02]).await;
    assert!(matches!(
        read_until_end(&mut bad_ed).await.1,
        End::Closed(1002, _)
    ));

    // A good header split over three messages (and one with a routing pre-intro) passes the
    // check and reaches the protocol layer, which refuses a frame that is no ClientHello.
    let mut good = connect(&sim).await;
    send(&mut good, &WA_HEADER[..1]).await;
    send(&mut good, &WA_HEADER[1..2]).await;
    send(&mut good, &WA_HEADER[2..]).await;
    send(&mut good, &[0, 0, 1, 0xAA]).await;
    let (_, end) = read_until_end(&mut good).await;
    assert!(
        matches!(end, End::Closed(1002, ref r) if r.contains("ClientHello")),
        "{end:?}"
    );

    let mut routed = connect(&sim).await;
    let mut intro = vec![0x45, 0x44, 0x00, 0x01, 0x00, 0x00, 0x03, 1, 2, 3];
    intro.extend_from_slice(&WA_HEADER);
    intro.extend_from_slice(&[0, 0, 1, 0xAA]);
    send(&mut routed, &intro).await;
    assert!(matches!(
        read_until_end(&mut routed).await.1,
        End::Closed(1002, _)
    ));

    assert_eq!(api.get("/sim/root-key").await.0, 200);
    wait_connections(&api, 0).await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn refuse_rejects_new_connections_then_expires() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let mut open = connect(&sim).await;
    wait_connections(&api, 1).await;

    let (s, _) = api
        .post("/sim/faults", json!({"action": "refuse", "seconds": 1}))
        .await;
    assert_eq!(s, 200);
    let refused_at = Instant::now();
    match tokio_tungstenite::connect_async(sim.ws_url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 503)
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    // Existing connections are untouched.
    assert_eq!(api.stats().await["connections"], 1);

    // The fault expires by itself.
    let mut again = wait_for("refuse to expire", || async {
        tokio_tungstenite::connect_async(sim.ws_url())
            .await
            .ok()
            .map(|(ws, _)| ws)
    })
    .await;
    assert!(refused_at.elapsed() >= Duration::from_millis(900));
    send(&mut again, b"xx").await;
    assert!(matches!(
        read_until_end(&mut again).await.1,
        End::Closed(1002, _)
    ));

    // DELETE clears a refusal early.
    api.post("/sim/faults", json!({"action": "refuse", "seconds": 3600}))
        .await;
    assert!(
        tokio_tungstenite::connect_async(sim.ws_url())
            .await
            .is_err()
    );
    api.delete("/sim/faults").await;
    assert!(tokio_tungstenite::connect_async(sim.ws_url()).await.is_ok());
    send(&mut open, b"xx").await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn disconnect_all_drops_every_socket() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let mut a = connect(&sim).await;
    let mut b = connect(&sim).await;
    wait_connections(&api, 2).await;

    api.post("/sim/faults", json!({"action": "disconnect_all"}))
        .await;
    assert_eq!(read_until_end(&mut a).await.1, End::Dropped);
    assert_eq!(read_until_end(&mut b).await.1, End::Dropped);
    wait_connections(&api, 0).await;

    // New connections are accepted afterwards (the fault is an event, not a state).
    let _c = connect(&sim).await;
    wait_connections(&api, 1).await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn stream_error_closes_connections() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let mut a = connect(&sim).await;
    wait_connections(&api, 1).await;
    let (s, _) = api
        .post(
            "/sim/faults",
            json!({"action": "stream_error", "code": "503"}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        matches!(read_until_end(&mut a).await.1, End::Closed(1000, ref r) if r.contains("503"))
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn latency_delays_server_writes() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    api.post("/sim/faults", json!({"action": "latency", "ms": 300}))
        .await;

    let mut ws = connect(&sim).await;
    let sent = Instant::now();
    send(&mut ws, b"bad!").await;
    let (_, end) = read_until_end(&mut ws).await;
    assert!(matches!(end, End::Closed(1002, _)), "{end:?}");
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "close came after {took:?}"
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let sim = start(SimConfig {
        idle_timeout: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let opened = Instant::now();
    let mut ws = connect(&sim).await;
    let (_, end) = read_until_end(&mut ws).await;
    assert!(
        matches!(end, End::Closed(1000, ref r) if r.contains("idle")),
        "{end:?}"
    );
    assert!(opened.elapsed() >= Duration::from_millis(300));
    wait_connections(&api, 0).await;

    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn activity_keeps_a_connection_open() {
    // Generous margins: the client writes every 100 ms against a 1 s timeout, for 2.5 s.
    let sim = start(SimConfig {
        idle_timeout: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let mut busy = connect(&sim).await;
    send(&mut busy, &WA_HEADER[..1]).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        send(&mut busy, &[]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(api.stats().await["connections"], 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_open_connections() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let mut ws = connect(&sim).await;
    wait_connections(&api, 1).await;
    sim.shutdown().await.unwrap();
    assert!(matches!(
        read_until_end(&mut ws).await.1,
        End::Closed(1000, _) | End::Dropped
    ));
}
