//! The chat-level session API against the simulator over real sockets: number lookups (usync
//! contact query), replies and mentions, presence and chat states, and the contacts/chats events.
//!
//! Every wait is on an event or a polled HTTP condition with a deadline; no fixed sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use zapin_engine::{
    Chat, ChatState, Contact, EngineError, Event, EventKind, Presence, PresenceState,
    QuotedMessage, SendOptions, SessionManager, WireGate,
};
use zapin_protocol::jid::Jid;

mod common;
use common::*;

#[tokio::test]
async fn on_whatsapp_tells_registered_numbers_from_unknown_ones() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    pair_by_qr(&manager, &mut rx, &api, "n").await;
    let carol = api.account("Carol").await;
    let carol_lid = api.get(&format!("/sim/accounts/{carol}")).await["lid"]
        .as_str()
        .unwrap()
        .to_owned();
    let handle = manager.get(&"n".into()).unwrap();

    let unknown = "19998887777";
    let asked = format!("+{carol}");
    let checks = handle
        .on_whatsapp(&[asked.as_str(), unknown, &carol])
        .await
        .unwrap();
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert_eq!(checks[0].number, carol);
    assert!(checks[0].exists, "{checks:?}");
    assert_eq!(checks[0].jid, Jid::pn(carol.clone()));
    assert_eq!(
        checks[0].lid.as_ref().map(ToString::to_string),
        Some(carol_lid)
    );
    assert_eq!(checks[1].number, unknown);
    assert!(!checks[1].exists, "{checks:?}");
    assert_eq!(checks[1].jid, Jid::pn(unknown));
    assert_eq!(checks[1].lid, None);
    // Duplicates are answered alike (one query, one user).
    assert_eq!(checks[2], checks[0]);

    // Refused before any IQ.
    assert!(matches!(
        handle.on_whatsapp(&["1555abc0001"]).await,
        Err(EngineError::InvalidPhone(n)) if n == "1555abc0001"
    ));
    let many: Vec<String> = (0..51).map(|i| format!("1555000{i:04}")).collect();
    assert!(matches!(
        handle.on_whatsapp(&many).await,
        Err(EngineError::TooManyNumbers { max: 50 })
    ));
    let none: &[String] = &[];
    assert!(handle.on_whatsapp(none).await.unwrap().is_empty());

    // Offline: not connected.
    handle.stop().await.unwrap();
    assert!(matches!(
        handle.on_whatsapp(&[carol.as_str()]).await,
        Err(EngineError::NotConnected)
    ));
    manager.shutdown().await;
}

#[tokio::test]
async fn replies_and_mentions_reach_the_phone_as_context_info() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (own_phone, _) = pair_by_qr(&manager, &mut rx, &api, "q").await;
    let carol = api.account("Carol").await;
    let dave = api.account("Dave").await;
    let handle = manager.get(&"q".into()).unwrap();

    // The phone writes; we reply quoting it and mention Dave.
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{carol}/messages"),
            json!({ "to": format!("{own_phone}@s.whatsapp.net"), "text": "question?" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let asked_id = body["id"].as_str().unwrap().to_owned();
    let options = SendOptions {
        quoted: Some(QuotedMessage::text(asked_id.clone(), "question?")),
        mentions: vec![dave.clone()],
        ..SendOptions::default()
    };
    let id = handle
        .send_text_with(&carol, "answer @dave", options)
        .await
        .unwrap();
    let m = inbox_message(&api, &carol, &id).await;
    assert_eq!(m["text"], "answer @dave", "{m}");
    let ctx = &m["context"];
    assert_eq!(ctx["stanza_id"], asked_id.as_str(), "{m}");
    assert_eq!(ctx["participant"], format!("{carol}@s.whatsapp.net"), "{m}");
    assert_eq!(ctx["quoted_text"], "question?", "{m}");
    assert_eq!(
        ctx["mentioned_jid"],
        json!([format!("{dave}@s.whatsapp.net")])
    );
    assert!(ctx.get("remote_jid").is_none(), "{m}");

    // Quoting our own message: the author is our user.
    let mut own = QuotedMessage::text("3EB0OWN", "earlier");
    own.from_me = true;
    let id = handle
        .send_text_with(
            &carol,
            "as I said",
            SendOptions {
                quoted: Some(own),
                ..SendOptions::default()
            },
        )
        .await
        .unwrap();
    let m = inbox_message(&api, &carol, &id).await;
    assert_eq!(
        m["context"]["participant"],
        format!("{own_phone}@s.whatsapp.net"),
        "{m}"
    );
    assert!(m["context"].get("mentioned_jid").is_none(), "{m}");

    // A plain send_text stays a bare conversation.
    let id = handle.send_text(&carol, "plain").await.unwrap();
    let m = inbox_message(&api, &carol, &id).await;
    assert!(m.get("context").is_none(), "{m}");

    // A caller-chosen id is the message's id. Sent again under that id (a resend after a
    // crash), the phone still holds one message: it keeps one per sender and id.
    let chosen = "3EB0AAAABBBBCCCCDDDDEEEE";
    let with_id = || SendOptions {
        id: Some(chosen.to_owned()),
        ..SendOptions::default()
    };
    let id = handle
        .send_text_with(&carol, "once", with_id())
        .await
        .unwrap();
    assert_eq!(id, chosen);
    inbox_message(&api, &carol, chosen).await;
    let id = handle
        .send_text_with(&carol, "once", with_id())
        .await
        .unwrap();
    assert_eq!(id, chosen);
    // The phone handles its stanzas in order: once a later message is in, the resend was seen.
    let marker = handle.send_text(&carol, "after the resend").await.unwrap();
    inbox_message(&api, &carol, &marker).await;
    let inbox = api.get(&format!("/sim/accounts/{carol}/messages")).await;
    let copies = inbox
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["id"] == chosen)
        .count();
    assert_eq!(copies, 1, "{inbox}");
    // An id that is not a WhatsApp-style id is refused before anything is sent.
    for bad in ["3eb0aaaabbbbccccdddd", "short", "3EB0AAAABBBBCCCCDDDD-X"] {
        let r = handle
            .send_text_with(
                &carol,
                "never",
                SendOptions {
                    id: Some(bad.to_owned()),
                    ..SendOptions::default()
                },
            )
            .await;
        assert!(
            matches!(r, Err(EngineError::InvalidMessageId(ref b)) if b == bad),
            "{r:?}"
        );
    }

    // Bad options are refused before anything is sent.
    let bad = SendOptions {
        mentions: vec!["not a jid".into()],
        ..SendOptions::default()
    };
    assert!(matches!(
        handle.send_text_with(&carol, "x", bad).await,
        Err(EngineError::InvalidJid(_))
    ));

    // In a group, "mention everyone" lists every member.
    let (status, body) = api
        .post(
            "/sim/groups",
            json!({ "creator": carol, "subject": "Team", "participants": [own_phone, dave] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let group = body["jid"].as_str().unwrap().to_owned();
    let id = handle
        .send_text_with(
            &group,
            "all hands",
            SendOptions {
                mention_everyone: true,
                ..SendOptions::default()
            },
        )
        .await
        .unwrap();
    let m = inbox_message(&api, &dave, &id).await;
    let mut mentioned: Vec<String> = m["context"]["mentioned_jid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    mentioned.sort();
    let mut want: Vec<String> = [&own_phone, &carol, &dave]
        .iter()
        .map(|p| format!("{p}@s.whatsapp.net"))
        .collect();
    want.sort();
    assert_eq!(mentioned, want, "{m}");
    manager.shutdown().await;
}

/// Events of `instance` up to and including the first one `stop` accepts.
async fn events_until(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    instance: &str,
    mut stop: impl FnMut(&EventKind) -> bool,
) -> Vec<EventKind> {
    let mut seen = Vec::new();
    wait_event(rx, instance, |k| {
        seen.push(k.clone());
        stop(k).then_some(())
    })
    .await;
    seen
}

/// The next presence event of `instance` in `state` (a late duplicate of an earlier state, such
/// as the peer's own login `available`, is skipped).
async fn wait_presence(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    instance: &str,
    state: PresenceState,
) -> Presence {
    wait_event(rx, instance, |k| match k {
        EventKind::Presence(p) if p.state == state => Some(p.clone()),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn presence_subscriptions_and_chat_states_become_events() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (phone_a, _) = pair_by_qr(&manager, &mut rx, &api, "a").await;
    let (phone_b, _) = pair_by_qr(&manager, &mut rx, &api, "b").await;
    let a = manager.get(&"a".into()).unwrap();
    let b = manager.get(&"b".into()).unwrap();
    let jid_a = format!("{phone_a}@s.whatsapp.net");
    let jid_b = format!("{phone_b}@s.whatsapp.net");

    // Subscribing answers with b's current availability (its companion is online).
    a.subscribe_presence(&phone_b).await.unwrap();
    let p = wait_presence(&mut rx, "a", PresenceState::Available).await;
    assert_eq!(
        (p.chat.as_str(), p.jid.as_str()),
        (jid_b.as_str(), jid_b.as_str())
    );

    // b goes offline: relayed with a last-seen time, then online again.
    b.send_presence(false).await.unwrap();
    let p = wait_presence(&mut rx, "a", PresenceState::Unavailable).await;
    assert!(p.last_seen.is_some_and(|t| t > 1_600_000_000), "{p:?}");
    b.send_presence(true).await.unwrap();
    let p = wait_presence(&mut rx, "a", PresenceState::Available).await;
    assert_eq!(p.last_seen, None);

    // Chat states in a 1:1 chat.
    for (state, want) in [
        (ChatState::Composing, PresenceState::Composing),
        (ChatState::Recording, PresenceState::Recording),
        (ChatState::Paused, PresenceState::Paused),
    ] {
        b.send_chat_presence(&jid_a, state).await.unwrap();
        let p = wait_presence(&mut rx, "a", want).await;
        assert_eq!(
            (p.chat.as_str(), p.jid.as_str()),
            (jid_b.as_str(), jid_b.as_str())
        );
    }

    // In a group: the chat is the group, the presence is the participant's.
    let carol = api.account("Carol").await;
    let (status, body) = api
        .post(
            "/sim/groups",
            json!({ "creator": carol, "subject": "Team", "participants": [phone_a, phone_b] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let group = body["jid"].as_str().unwrap().to_owned();
    b.send_chat_presence(&group, ChatState::Composing)
        .await
        .unwrap();
    let p = wait_presence(&mut rx, "a", PresenceState::Composing).await;
    assert_eq!(
        (p.chat.as_str(), p.jid.as_str()),
        (group.as_str(), jid_b.as_str())
    );

    assert!(matches!(
        a.subscribe_presence(&group).await,
        Err(EngineError::InvalidJid(_))
    ));
    b.stop().await.unwrap();
    assert!(matches!(
        b.send_chat_presence(&jid_a, ChatState::Paused).await,
        Err(EngineError::NotConnected)
    ));
    manager.shutdown().await;
}

#[tokio::test]
async fn new_chats_and_push_names_become_events_once() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    let (own_phone, _) = pair_by_qr(&manager, &mut rx, &api, "c").await;
    let own_jid = format!("{own_phone}@s.whatsapp.net");
    let carol = api.account("Carol").await;
    let carol_jid = format!("{carol}@s.whatsapp.net");
    let handle = manager.get(&"c".into()).unwrap();

    // First message from Carol: a new chat (named by her push name) and a new contact, before
    // the message itself.
    let (status, body) = api
        .post(
            &format!("/sim/accounts/{carol}/messages"),
            json!({ "to": own_jid, "text": "hi" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let first = body["id"].as_str().unwrap().to_owned();
    let seen = events_until(
        &mut rx,
        "c",
        |k| matches!(k, EventKind::MessageUpsert(m) if m.key.id == first),
    )
    .await;
    let chats: Vec<&Chat> = seen
        .iter()
        .filter_map(|k| match k {
            EventKind::Chats(c) => Some(c),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(chats.len(), 1, "{seen:?}");
    assert_eq!(chats[0].jid, carol_jid);
    assert_eq!(chats[0].name.as_deref(), Some("Carol"));
    let contacts: Vec<&Contact> = seen
        .iter()
        .filter_map(|k| match k {
            EventKind::Contacts(c) => Some(c),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        contacts,
        vec![&Contact {
            jid: carol_jid.clone(),
            name: Some("Carol".into())
        }]
    );

    // A second message: nothing new to report.
    let (_, body) = api
        .post(
            &format!("/sim/accounts/{carol}/messages"),
            json!({ "to": own_jid, "text": "again" }),
        )
        .await;
    let second = body["id"].as_str().unwrap().to_owned();
    let seen = events_until(
        &mut rx,
        "c",
        |k| matches!(k, EventKind::MessageUpsert(m) if m.key.id == second),
    )
    .await;
    assert!(
        !seen
            .iter()
            .any(|k| matches!(k, EventKind::Chats(_) | EventKind::Contacts(_))),
        "{seen:?}"
    );

    // Writing to someone new opens a chat (reported before the server ack); again does not.
    let dave = api.account("Dave").await;
    let id = handle.send_text(&dave, "hello dave").await.unwrap();
    let seen = events_until(
        &mut rx,
        "c",
        |k| matches!(k, EventKind::MessageUpdate(u) if u.key.id == id),
    )
    .await;
    assert!(
        seen.iter().any(|k| matches!(k, EventKind::Chats(c)
            if c.len() == 1 && c[0].jid == format!("{dave}@s.whatsapp.net") && c[0].name.is_none())),
        "{seen:?}"
    );
    let id = handle.send_text(&dave, "again").await.unwrap();
    let seen = events_until(
        &mut rx,
        "c",
        |k| matches!(k, EventKind::MessageUpdate(u) if u.key.id == id),
    )
    .await;
    assert!(
        !seen.iter().any(|k| matches!(k, EventKind::Chats(_))),
        "{seen:?}"
    );
    // Replying in Carol's chat is not a new chat either.
    let id = handle.send_text(&carol, "hey").await.unwrap();
    let seen = events_until(
        &mut rx,
        "c",
        |k| matches!(k, EventKind::MessageUpdate(u) if u.key.id == id),
    )
    .await;
    assert!(
        !seen.iter().any(|k| matches!(k, EventKind::Chats(_))),
        "{seen:?}"
    );

    // A group we write to first is named by its subject; Carol's message there is no new chat
    // and brings no contact (her name is known).
    let (status, body) = api
        .post(
            "/sim/groups",
            json!({ "creator": carol, "subject": "Team", "participants": [own_phone] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let group = body["jid"].as_str().unwrap().to_owned();
    let id = handle.send_text(&group, "hello team").await.unwrap();
    let seen = events_until(
        &mut rx,
        "c",
        |k| matches!(k, EventKind::MessageUpdate(u) if u.key.id == id),
    )
    .await;
    assert!(
        seen.iter().any(|k| matches!(k, EventKind::Chats(c)
            if c.len() == 1 && c[0].jid == group && c[0].name.as_deref() == Some("Team"))),
        "{seen:?}"
    );
    let (_, body) = api
        .post(
            &format!("/sim/accounts/{carol}/messages"),
            json!({ "to": group, "text": "hi all" }),
        )
        .await;
    let in_group = body["id"].as_str().unwrap().to_owned();
    let seen = events_until(
        &mut rx,
        "c",
        |k| matches!(k, EventKind::MessageUpsert(m) if m.key.id == in_group),
    )
    .await;
    assert!(
        !seen
            .iter()
            .any(|k| matches!(k, EventKind::Chats(_) | EventKind::Contacts(_))),
        "{seen:?}"
    );
    manager.shutdown().await;
}

/// A send held at a [`WireGate`] goes out only when the gate opens; a closed gate withdraws it
/// (nothing written, `Withdrawn`), and the session goes on as after a skipped ratchet step.
#[tokio::test]
async fn a_wire_gate_holds_a_send_until_it_opens_and_a_closed_one_withdraws_it() {
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    pair_by_qr(&manager, &mut rx, &api, "g").await;
    let carol = api.account("Carol").await;
    let handle = manager.get(&"g".into()).unwrap();
    let gated = |id: &str, gate: WireGate| SendOptions {
        id: Some(id.to_owned()),
        gate: Some(gate),
        ..SendOptions::default()
    };

    // Closed: refused after encryption, nothing on the wire.
    let withdrawn = "3EB00000000000000000000000000D01";
    let (opener, gate) = WireGate::new();
    let send = handle.send_text_with(&carol, "never sent", gated(withdrawn, gate));
    let (result, ()) = tokio::join!(send, async move { opener.close() });
    assert!(matches!(result, Err(EngineError::Withdrawn)), "{result:?}");

    // Dropping the opener undecided withdraws too.
    let (opener, gate) = WireGate::new();
    drop(opener);
    let dropped = "3EB00000000000000000000000000D02";
    let result = handle
        .send_text_with(&carol, "never sent either", gated(dropped, gate))
        .await;
    assert!(matches!(result, Err(EngineError::Withdrawn)), "{result:?}");

    // Opened: sent, and the phone decrypts it although two ratchet steps were skipped.
    let (opener, gate) = WireGate::new();
    let sent = "3EB0000000000000000000000000AA03";
    let send = handle.send_text_with(&carol, "through the gate", gated(sent, gate));
    let (result, ()) = tokio::join!(send, async move { opener.open() });
    assert_eq!(result.unwrap(), sent);
    let m = inbox_message(&api, &carol, sent).await;
    assert_eq!(m["text"], "through the gate", "{m}");
    let inbox = api.get(&format!("/sim/accounts/{carol}/messages")).await;
    for id in [withdrawn, dropped] {
        assert!(
            !inbox.as_array().unwrap().iter().any(|m| m["id"] == id),
            "{id} reached the phone: {inbox}"
        );
    }
    manager.shutdown().await;
}
