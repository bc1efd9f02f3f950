//! Group messaging, receipts and group notifications against the simulator over real sockets:
//! the engine's session in a sim group with a mock phone, messages both ways, delivery and read
//! receipts as `MessageUpdate`s, `w:gp2` notifications as `GroupUpdate`s (and an `add` one
//! refreshing the cached members before the next send), and
//! retry-receipt recovery of a delivery the sim's `corrupt_next_message` fault spoiled.
//!
//! Every wait is on an event or a polled HTTP condition with a deadline; no fixed sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zapin_engine::messaging::MessageStatus;
use zapin_engine::{EventKind, SessionManager};
use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;

mod common;
use common::*;

#[tokio::test]
async fn group_messages_flow_both_ways_with_a_mock_phone() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (own_phone, _) = pair_by_qr(&manager, &mut rx, &api, "g").await;
    let carol = api.account("Carol").await;
    let (status, body) = api
        .post(
            "/sim/groups",
            json!({ "creator": carol, "subject": "Team", "participants": [own_phone] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let group = body["jid"].as_str().unwrap().to_owned();
    // The create notification surfaces as a GroupUpdate.
    let update = wait_event(&mut rx, "g", |k| match k {
        EventKind::GroupUpdate(u) => Some(u.clone()),
        _ => None,
    })
    .await;
    assert_eq!(update.group, group);
    assert_eq!(update.action, "create");
    assert_eq!(update.subject.as_deref(), Some("Team"));
    assert_eq!(update.participants.len(), 2, "{update:?}");

    let handle = manager.get(&"g".into()).unwrap();
    // Out: metadata fetched, sender key distributed, the phone decrypts the skmsg.
    let id = handle.send_text(&group, "hello team").await.unwrap();
    wait_status(&mut rx, "g", &id, MessageStatus::DeliveryAck).await;
    let m = inbox_message(&api, &carol, &id).await;
    assert_eq!(m["text"], "hello team", "{m}");
    assert_eq!(m["chat"], group.as_str(), "{m}");
    // A second send reuses the cached metadata and the distributed key.
    let id2 = handle.send_text(&group, "again").await.unwrap();
    let m = inbox_message(&api, &carol, &id2).await;
    assert_eq!(m["text"], "again", "{m}");

    // Read receipt from the phone: a Read update for our message.
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{carol}/read"),
            json!({ "chat": group, "ids": [id2] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_status(&mut rx, "g", &id2, MessageStatus::Read).await;

    // In: the phone writes to the group; our companion decrypts it with the phone's sender key.
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{carol}/messages"),
            json!({ "to": group, "text": "hi from carol" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let received = wait_event(&mut rx, "g", |k| match k {
        EventKind::MessageUpsert(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        received.message.conversation.as_deref(),
        Some("hi from carol")
    );
    assert_eq!(received.key.id, body["id"].as_str().unwrap());
    assert_eq!(received.key.remote_jid.to_string(), group);
    assert!(!received.key.from_me);
    assert_eq!(
        received.key.participant.as_ref().map(|p| p.user.clone()),
        Some(carol.clone())
    );
    manager.shutdown().await;
}

#[tokio::test]
async fn direct_messages_get_delivered_and_read_updates() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (own_phone, _) = pair_by_qr(&manager, &mut rx, &api, "r").await;
    let carol = api.account("Carol").await;
    let handle = manager.get(&"r".into()).unwrap();
    let id = handle.send_text(&carol, "read me").await.unwrap();
    wait_status(&mut rx, "r", &id, MessageStatus::DeliveryAck).await;
    inbox_message(&api, &carol, &id).await;
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{carol}/read"),
            json!({ "chat": format!("{own_phone}@s.whatsapp.net"), "ids": [id] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_status(&mut rx, "r", &id, MessageStatus::Read).await;
    manager.shutdown().await;
}

/// The `corrupt_next_message` fault spoils one delivery; the receiver's retry receipt gets it
/// re-sent, in both directions (the phone asks us; we ask the phone).
#[tokio::test]
async fn retry_receipts_recover_a_corrupted_delivery_both_ways() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (own_phone, device) = pair_by_qr(&manager, &mut rx, &api, "x").await;
    let carol = api.account("Carol").await;
    let handle = manager.get(&"x".into()).unwrap();
    // A first message sets the session up.
    let first = handle.send_text(&carol, "setup").await.unwrap();
    inbox_message(&api, &carol, &first).await;

    // Out: the phone cannot decrypt, asks for a retry, decrypts our resend.
    let (status, body) = api
        .post(
            "/sim/faults",
            json!({ "action": "corrupt_next_message", "device": format!("{carol}@s.whatsapp.net") }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = handle.send_text(&carol, "second try").await.unwrap();
    let deadline = Instant::now() + WAIT;
    let (undecryptable, text) = loop {
        let inbox = api.get(&format!("/sim/accounts/{carol}/messages")).await;
        let of_id: Vec<&Value> = inbox
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["id"] == id.as_str())
            .collect();
        if let Some(m) = of_id.iter().find(|m| m["type"] == "text") {
            break (
                of_id.iter().any(|m| m["type"] == "undecryptable"),
                m["text"].clone(),
            );
        }
        assert!(Instant::now() < deadline, "no resend decrypted: {inbox}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(undecryptable, "the first delivery was corrupted");
    assert_eq!(text, "second try");
    wait_status(&mut rx, "x", &id, MessageStatus::DeliveryAck).await;

    // In: we cannot decrypt, send a retry receipt, the phone resends; one upsert, no garbage.
    let (status, body) = api
        .post(
            "/sim/faults",
            json!({ "action": "corrupt_next_message", "device": device }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{carol}/messages"),
            json!({ "to": format!("{own_phone}@s.whatsapp.net"), "text": "resent to you" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let received = wait_event(&mut rx, "x", |k| match k {
        EventKind::MessageUpsert(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(received.key.id, body["id"].as_str().unwrap());
    assert_eq!(
        received.message.conversation.as_deref(),
        Some("resent to you")
    );
    manager.shutdown().await;
}

/// A member added after our first send: the `w:gp2` add notification drops the cached metadata,
/// so the next send re-queries it and hands the newcomer our sender key with the message (it
/// decrypts at once, no retry). The membership change is made in the sim's state and announced
/// with the sim's own `notify_group`, as its `w:g2 add` handler does.
#[tokio::test]
async fn a_gp2_add_notification_refreshes_members_before_the_next_send() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (own_phone, _) = pair_by_qr(&manager, &mut rx, &api, "n").await;
    let carol = api.account("Carol").await;
    let dave = api.account("Dave").await;
    let (status, body) = api
        .post(
            "/sim/groups",
            json!({ "creator": carol, "subject": "Grow", "participants": [own_phone] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let group = body["jid"].as_str().unwrap().to_owned();
    let group_id = group.split('@').next().unwrap().to_owned();
    let handle = manager.get(&"n".into()).unwrap();
    let first = handle.send_text(&group, "before").await.unwrap();
    inbox_message(&api, &carol, &first).await;

    let state = sim.sim().state();
    state.write(|st| {
        st.groups.get_mut(&group_id).unwrap().participants.push(
            zapin_sim::state::GroupParticipant {
                phone: dave.clone(),
                admin: None,
            },
        );
    });
    let g = state.group(&group_id).unwrap();
    let body = Node::new("add").children(vec![
        Node::new("participant").attr("jid", Jid::pn(dave.clone())),
    ]);
    zapin_sim::router::notify_group(sim.sim(), &g, &carol, body, None);
    let update = wait_event(&mut rx, "n", |k| match k {
        EventKind::GroupUpdate(u) if u.action == "add" => Some(u.clone()),
        _ => None,
    })
    .await;
    assert_eq!(update.group, group);
    assert_eq!(update.participants, vec![format!("{dave}@s.whatsapp.net")]);

    let id = handle.send_text(&group, "after").await.unwrap();
    let m = inbox_message(&api, &dave, &id).await;
    assert_eq!(m["type"], "text", "{m}");
    assert_eq!(m["text"], "after", "{m}");
    let inbox = api.get(&format!("/sim/accounts/{dave}/messages")).await;
    assert_eq!(
        inbox
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["id"] == id.as_str())
            .count(),
        1,
        "decrypted at the first delivery: {inbox}"
    );
    let m = inbox_message(&api, &carol, &id).await;
    assert_eq!(m["text"], "after", "{m}");
    manager.shutdown().await;
}
