//! Interop through the simulator with an unmodified Baileys client (baileys@7.0.0-rc14, driven
//! by the JSON-lines runner `tests/interop/baileys-sim.mjs`, its `link` command): the engine's
//! session and a Baileys companion exchange DMs both ways, then a group of the engine's account,
//! the Baileys account and a mock phone carries messages from each of them to the others.
//!
//! Without node or `tests/interop/node_modules` the test prints why and passes, except under
//! `CI=true`, where it fails. Every wait is on an event or a polled condition with a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::sync::broadcast;
use zapin_engine::messaging::{MessageStatus, ReceivedMessage};
use zapin_engine::{Event, EventKind, SessionManager};
use zapin_sim::RunningSim;
use zapin_test_support::{Baileys, SimEndpoints, skip_without_node};

/// Baileys against a debug-built simulator: PBKDF2 and 812-key uploads take a while.
const WAIT: Duration = Duration::from_secs(90);

fn endpoints(sim: &RunningSim) -> SimEndpoints {
    SimEndpoints {
        root_hex: hex::encode(sim.root_public_key().as_bytes()),
        ws_url: sim.ws_url(),
        http_url: sim.http_url(),
    }
}

#[tokio::test]
async fn engine_and_baileys_exchange_dms_and_group_messages() {
    if skip_without_node("engine ↔ Baileys interop") {
        return;
    }
    set_wait(WAIT);
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (own_phone, _) = pair_by_qr(&manager, &mut rx, &api, "e").await;
    let own = format!("{own_phone}@s.whatsapp.net");
    let handle = manager.get(&"e".into()).unwrap();

    let mut baileys = Baileys::spawn(&endpoints(&sim), WAIT).await;
    let bob_phone = api.account("Bob").await;
    baileys
        .cmd(
            json!({"cmd": "link", "client": "bob", "phone": bob_phone, "name": "Bob", "req": "l1"}),
        )
        .await;
    baileys
        .wait("bob linked", |e| e["event"] == "linked" && e["req"] == "l1")
        .await;

    // Engine → Baileys DM: Baileys decrypts it; its delivery receipt reaches us.
    let id = handle.send_text(&bob_phone, "hello bob").await.unwrap();
    let m = baileys.message("bob", &own, "hello bob").await;
    assert_eq!(m["id"], id.as_str());
    wait_status(&mut rx, "e", &id, MessageStatus::DeliveryAck).await;

    // Baileys → engine DM.
    let id = baileys.send_text("bob", &own, "hi engine", "d1").await;
    let got = next_upsert(&mut rx, "e", &id).await;
    assert_eq!(
        got.message.conversation.as_deref().or(text_of(&got)),
        Some("hi engine")
    );
    assert_eq!(got.key.remote_jid.user, bob_phone);
    assert!(!got.key.from_me);

    // A group of the engine's account, Bob (Baileys) and Carol (mock phone).
    let carol = api.account("Carol").await;
    let (status, body) = api
        .post(
            "/sim/groups",
            json!({ "creator": carol, "subject": "Interop", "participants": [own_phone, bob_phone] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let group = body["jid"].as_str().unwrap().to_owned();

    // Engine → group: Baileys and the phone decrypt the skmsg.
    let id = handle.send_text(&group, "hello group").await.unwrap();
    let m = baileys.message("bob", &group, "hello group").await;
    assert_eq!(m["id"], id.as_str());
    assert_eq!(
        m["participant"]
            .as_str()
            .map(|p| p.split(['@', ':']).next()),
        Some(Some(own_phone.as_str()))
    );
    let inbox = inbox_message(&api, &carol, &id).await;
    assert_eq!(inbox["text"], "hello group", "{inbox}");

    // Baileys → group: the engine decrypts Baileys' sender key.
    let id = baileys.send_text("bob", &group, "bob to group", "g1").await;
    let got = next_upsert(&mut rx, "e", &id).await;
    assert_eq!(
        got.message.conversation.as_deref().or(text_of(&got)),
        Some("bob to group")
    );
    assert_eq!(got.key.remote_jid.to_string(), group);
    assert_eq!(
        got.key.participant.as_ref().map(|p| p.user.clone()),
        Some(bob_phone.clone())
    );

    // Phone → group: both companions get it.
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{carol}/messages"),
            json!({ "to": group, "text": "carol to group" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let got = next_upsert(&mut rx, "e", &id).await;
    assert_eq!(got.message.conversation.as_deref(), Some("carol to group"));
    baileys.message("bob", &group, "carol to group").await;

    baileys.exit().await;
    manager.shutdown().await;
}

fn text_of(m: &ReceivedMessage) -> Option<&str> {
    m.message
        .extended_text_message
        .as_ref()
        .and_then(|e| e.text.as_deref())
}

/// The `MessageUpsert` of message `id` on `instance`.
async fn next_upsert(
    rx: &mut broadcast::Receiver<Event>,
    instance: &str,
    id: &str,
) -> ReceivedMessage {
    wait_event(rx, instance, |k| match k {
        EventKind::MessageUpsert(m) if m.key.id == id => Some((**m).clone()),
        _ => None,
    })
    .await
}
