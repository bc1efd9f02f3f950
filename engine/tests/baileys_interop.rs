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
use zapin_engine::messaging::group_admin::{GroupAnswer, GroupOp, GroupSetting, ParticipantAction};
use zapin_engine::messaging::{MessageStatus, ReceivedMessage};
use zapin_engine::{Event, EventKind, SessionManager};
use zapin_protocol::jid::Jid;
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

/// A group the engine creates, with an unmodified Baileys client and a mock phone in it: Baileys
/// sees the group appear and every change the engine makes, as its own group events.
#[tokio::test]
async fn baileys_member_sees_the_engines_group_changes() {
    if skip_without_node("engine group admin ↔ Baileys interop") {
        return;
    }
    set_wait(WAIT);
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (own_phone, _) = pair_by_qr(&manager, &mut rx, &api, "g").await;
    let own = format!("{own_phone}@s.whatsapp.net");
    let handle = manager.get(&"g".into()).unwrap();
    let mut baileys = Baileys::spawn(&endpoints(&sim), WAIT).await;
    let bob = api.account("Bob").await;
    baileys
        .cmd(json!({"cmd": "link", "client": "bob", "phone": bob, "name": "Bob", "req": "l1"}))
        .await;
    baileys
        .wait("bob linked", |e| e["event"] == "linked" && e["req"] == "l1")
        .await;
    let carol = api.account("Carol").await;

    let created = handle
        .group(GroupOp::Create {
            subject: "Made by zapin".into(),
            participants: vec![Jid::pn(bob.clone()), Jid::pn(carol.clone())],
        })
        .await
        .unwrap();
    let GroupAnswer::Group(details) = created else {
        panic!("create answered {created:?}");
    };
    let group = details.group_jid();
    let gjid = group.to_string();
    let upsert = baileys
        .wait("bob's groups.upsert", |e| {
            e["event"] == "groups.upsert" && e["data"][0]["id"] == gjid.as_str()
        })
        .await;
    assert_eq!(upsert["data"][0]["subject"], "Made by zapin");
    assert_eq!(upsert["data"][0]["owner"], own.as_str());
    assert_eq!(
        upsert["data"][0]["participants"].as_array().unwrap().len(),
        3,
        "{upsert}"
    );

    handle
        .group(GroupOp::Subject {
            group: group.clone(),
            subject: "Renamed by zapin".into(),
        })
        .await
        .unwrap();
    baileys
        .wait("bob's groups.update (subject)", |e| {
            e["event"] == "groups.update"
                && e["data"][0]["id"] == gjid.as_str()
                && e["data"][0]["subject"] == "Renamed by zapin"
        })
        .await;

    handle
        .group(GroupOp::Description {
            group: group.clone(),
            description: "Set by zapin".into(),
        })
        .await
        .unwrap();
    baileys
        .wait("bob's groups.update (description)", |e| {
            e["event"] == "groups.update" && e["data"][0]["desc"] == "Set by zapin"
        })
        .await;

    handle
        .group(GroupOp::Setting {
            group: group.clone(),
            setting: GroupSetting::Announcement,
        })
        .await
        .unwrap();
    baileys
        .wait("bob's groups.update (announce)", |e| {
            e["event"] == "groups.update" && e["data"][0]["announce"] == true
        })
        .await;

    // Participants: Baileys reports each change with the affected member.
    let names = |e: &serde_json::Value| -> Vec<String> {
        e["data"]["participants"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        p.as_str()
                            .or(p["id"].as_str())
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    for (action, who) in [
        (ParticipantAction::Promote, &bob),
        (ParticipantAction::Remove, &carol),
        (ParticipantAction::Add, &carol),
    ] {
        let answer = handle
            .group(GroupOp::Participants {
                group: group.clone(),
                action,
                participants: vec![Jid::pn(who.clone())],
            })
            .await
            .unwrap();
        assert!(
            matches!(&answer, GroupAnswer::Participants(r) if r.len() == 1 && r[0].status == "200"),
            "{answer:?}"
        );
        let jid = format!("{who}@s.whatsapp.net");
        let e = baileys
            .wait(
                &format!("bob's group-participants.update ({action:?})"),
                |e| {
                    e["event"] == "group-participants.update"
                        && e["data"]["action"] == action.as_str()
                        && names(e).contains(&jid)
                },
            )
            .await;
        assert_eq!(e["data"]["id"], gjid.as_str());
    }

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
