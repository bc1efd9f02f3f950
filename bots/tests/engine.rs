//! The engine end to end against local bot servers (Evolution Bot and n8n APIs), with the
//! in-memory store and a manual clock: triggers, sessions, keywordFinish, expiry, debounce,
//! fromMe rules, ignoreJids, fallback, unknownMessage, and failing bot servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use zapin_bots::store::MemoryStore;
use zapin_bots::{
    BotEvent, BotSettings, EngineLimits, ManualClock, SessionStatus, SessionStore, SettingsRow,
    StaticDirectory, Trigger, TriggerOperator, TriggerType,
};

const ANA: &str = "5511999990001@s.whatsapp.net";
const BIA: &str = "5511999990002@s.whatsapp.net";
const CAIO: &str = "5511999990003@s.whatsapp.net";

struct World {
    engine: zapin_bots::Engine,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    rx: Received,
}

fn world(kinds: Vec<zapin_bots::KindSetup>, limits: EngineLimits) -> World {
    let store = Arc::new(MemoryStore::default());
    let directory = Arc::new(StaticDirectory::default());
    directory.set("inst", instance(kinds));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let (out, rx) = recorder();
    let engine = engine(store.clone(), directory, out, clock.clone(), limits);
    World {
        engine,
        store,
        clock,
        rx,
    }
}

#[tokio::test]
async fn keyword_opens_a_session_that_keyword_finish_ends() {
    let (url, seen) = evolution_server().await;
    let b = bot(
        "b1",
        keyword(TriggerOperator::Equals, "hi"),
        json!({"apiUrl": format!("{url}/bot"), "apiKey": "bot-secret"}),
        quick(),
    );
    let mut w = world(
        vec![setup("evolution", vec![b], None)],
        EngineLimits::default(),
    );

    // No session and no trigger match: nothing.
    w.engine.dispatch(msg(ANA, "hello"));
    settle(&w.engine).await;
    w.rx.no_send();
    assert!(w.store.latest("inst", ANA).await.unwrap().is_none());

    w.engine.dispatch(msg(ANA, "hi"));
    assert_eq!(
        w.rx.next_texts().await,
        (ANA.into(), vec!["echo: hi".into()])
    );
    // Inside the session, no trigger is needed.
    w.engine.dispatch(msg(ANA, "tell me more"));
    assert_eq!(
        w.rx.next_texts().await.1,
        vec!["echo: tell me more".to_owned()]
    );
    let s = w.store.latest("inst", ANA).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Opened);
    assert_eq!(s.bot_id.as_deref(), Some("b1"));
    assert_eq!(s.kind, "evolution");

    // The request Evolution Bot sends.
    {
        let seen = seen.lock().unwrap();
        let (headers, body) = &seen[0];
        assert_eq!(headers["authorization"], "Bearer bot-secret");
        assert_eq!(body["query"], "hi");
        assert_eq!(body["user"], ANA);
        assert_eq!(body["conversation_id"], ANA);
        assert_eq!(body["inputs"]["remoteJid"], ANA);
        assert_eq!(body["inputs"]["sessionId"], ANA);
        assert_eq!(body["inputs"]["pushName"], "Ana");
        assert_eq!(body["inputs"]["fromMe"], false);
        assert_eq!(body["inputs"]["instanceName"], "inst");
        assert_eq!(body["inputs"]["serverUrl"], "http://zapin.test");
        assert_eq!(body["inputs"]["apiKey"], "INSTANCE-TOKEN");
    }

    // keywordFinish (default "bye"), trimmed and case-insensitive: no bot call, session deleted
    // (keepOpen false), and the next message needs the trigger again.
    w.engine.dispatch(msg(ANA, "  BYE "));
    settle(&w.engine).await;
    w.rx.no_send();
    assert!(w.store.latest("inst", ANA).await.unwrap().is_none());
    assert_eq!(seen.lock().unwrap().len(), 2);
    w.engine.dispatch(msg(ANA, "tell me more"));
    settle(&w.engine).await;
    w.rx.no_send();
}

#[tokio::test]
async fn keep_open_closed_session_blocks_until_change_status_delete() {
    let (url, _seen) = evolution_server().await;
    let settings = BotSettings {
        keep_open: Some(true),
        keyword_finish: Some("#sair".into()),
        ..quick()
    };
    let b = bot(
        "b1",
        keyword(TriggerOperator::Contains, "menu"),
        json!({"apiUrl": format!("{url}/bot")}),
        settings,
    );
    let mut w = world(
        vec![setup("evolution", vec![b], None)],
        EngineLimits::default(),
    );
    w.engine.dispatch(msg(ANA, "show the menu"));
    w.rx.next_texts().await;
    w.engine.dispatch(msg(ANA, "#SAIR"));
    settle(&w.engine).await;
    let s = w.store.latest("inst", ANA).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Closed);
    // Closed blocks the contact, trigger or not.
    w.engine.dispatch(msg(ANA, "menu"));
    settle(&w.engine).await;
    w.rx.no_send();
    // changeStatus delete frees it.
    assert_eq!(
        w.engine
            .change_status("inst", ANA, None, true)
            .await
            .unwrap(),
        1
    );
    w.engine.dispatch(msg(ANA, "menu"));
    assert_eq!(w.rx.next_texts().await.1, vec!["echo: menu".to_owned()]);
    // changeStatus paused silences the bot; opened resumes it.
    w.engine
        .change_status("inst", ANA, Some(SessionStatus::Paused), true)
        .await
        .unwrap();
    w.engine.dispatch(msg(ANA, "anyone?"));
    settle(&w.engine).await;
    w.rx.no_send();
    w.engine
        .change_status("inst", ANA, Some(SessionStatus::Opened), true)
        .await
        .unwrap();
    w.engine.dispatch(msg(ANA, "back"));
    assert_eq!(w.rx.next_texts().await.1, vec!["echo: back".to_owned()]);
    assert_eq!(
        w.engine
            .fetch_sessions("inst", Some("b1"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        w.engine
            .fetch_sessions("inst", Some("other"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn debounce_joins_messages_into_one_call() {
    let (url, seen) = evolution_server().await;
    let settings = BotSettings {
        debounce_time: Some(3),
        ..BotSettings::default()
    };
    let all = Trigger {
        kind: TriggerType::All,
        operator: None,
        value: None,
    };
    let b = bot("b1", all, json!({"apiUrl": format!("{url}/bot")}), settings);
    let mut w = world(
        vec![setup("evolution", vec![b], None)],
        EngineLimits::default(),
    );

    w.engine.dispatch(msg(ANA, "one"));
    w.engine.dispatch(msg(ANA, "two"));
    w.clock.advance(Duration::from_secs(2));
    w.engine.dispatch(msg(ANA, "three"));
    // 2 s after "three": still inside its window (it restarted the timer).
    w.clock.advance(Duration::from_secs(2));
    tokio::task::yield_now().await;
    assert!(w.rx.sends.try_recv().is_err());
    w.clock.advance(Duration::from_secs(2));
    assert_eq!(
        w.rx.next_texts().await.1,
        vec!["echo: one\ntwo\nthree".to_owned()]
    );
    settle(&w.engine).await;
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn expire_ends_a_silent_session_and_starts_a_new_one() {
    let (url, seen) = evolution_server().await;
    let settings = BotSettings {
        expire: Some(5),
        keep_open: Some(true),
        ..quick()
    };
    let b = bot(
        "b1",
        keyword(TriggerOperator::StartsWith, "oi"),
        json!({"apiUrl": format!("{url}/bot")}),
        settings,
    );
    let mut w = world(
        vec![setup("evolution", vec![b], None)],
        EngineLimits::default(),
    );
    w.engine.dispatch(msg(ANA, "oi"));
    w.rx.next_texts().await;
    let first = w.store.latest("inst", ANA).await.unwrap().unwrap();

    // 4 minutes: same session.
    w.clock.advance(Duration::from_secs(4 * 60));
    w.engine.dispatch(msg(ANA, "still here"));
    w.rx.next_texts().await;
    assert_eq!(
        w.store.latest("inst", ANA).await.unwrap().unwrap().id,
        first.id
    );

    // Over 5 minutes of silence: the old one is closed (keepOpen), a new one answers.
    w.clock.advance(Duration::from_secs(5 * 60 + 1));
    w.engine.dispatch(msg(ANA, "hello again"));
    assert_eq!(
        w.rx.next_texts().await.1,
        vec!["echo: hello again".to_owned()]
    );
    settle(&w.engine).await;
    let sessions = w.store.list("inst", None).await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].status, SessionStatus::Opened);
    assert_ne!(sessions[0].id, first.id);
    assert_eq!(sessions[1].id, first.id);
    assert_eq!(sessions[1].status, SessionStatus::Closed);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn from_me_pauses_or_is_ignored() {
    let (url, _seen) = evolution_server().await;
    let b = bot(
        "b1",
        keyword(TriggerOperator::Equals, "hi"),
        json!({"apiUrl": format!("{url}/bot")}),
        quick(),
    );
    let deaf = bot(
        "b2",
        keyword(TriggerOperator::Equals, "deaf"),
        json!({"apiUrl": format!("{url}/bot")}),
        BotSettings {
            listening_from_me: Some(false),
            ..quick()
        },
    );
    let mut w = world(
        vec![setup("evolution", vec![b, deaf], None)],
        EngineLimits::default(),
    );
    w.engine.dispatch(msg(ANA, "hi"));
    w.rx.next_texts().await;
    // The operator types from the phone: stopBotFromMe (default true) pauses the session.
    let mut mine = msg(ANA, "I'll take it from here");
    mine.from_me = true;
    w.engine.dispatch(mine);
    w.rx.event(|e| {
        matches!(
            e,
            BotEvent::SessionStatus {
                status: Some(SessionStatus::Paused),
                ..
            }
        )
    })
    .await;
    w.engine.dispatch(msg(ANA, "hello?"));
    settle(&w.engine).await;
    w.rx.no_send();
    assert_eq!(
        w.store.latest("inst", ANA).await.unwrap().unwrap().status,
        SessionStatus::Paused
    );

    // listeningFromMe true (default): the operator's own message can trigger a bot.
    let mut trigger = msg(BIA, "hi");
    trigger.from_me = true;
    w.engine.dispatch(trigger);
    assert_eq!(
        w.rx.next_texts().await,
        (BIA.into(), vec!["echo: hi".into()])
    );
    // listeningFromMe false: it cannot.
    let mut deaf_trigger = msg(CAIO, "deaf");
    deaf_trigger.from_me = true;
    w.engine.dispatch(deaf_trigger);
    settle(&w.engine).await;
    w.rx.no_send();
}

#[tokio::test]
async fn ignore_jids_fallback_and_unknown_message() {
    let (url, _seen) = evolution_server().await;
    let b = bot(
        "b1",
        keyword(TriggerOperator::Equals, "hi"),
        json!({"apiUrl": format!("{url}/bot")}),
        quick(),
    );
    let fallback = bot(
        "fb",
        keyword(TriggerOperator::Equals, "never typed"),
        json!({"apiUrl": format!("{url}/bot")}),
        BotSettings {
            unknown_message: Some("text only, please".into()),
            ..quick()
        },
    );
    let row = SettingsRow {
        settings: BotSettings {
            ignore_jids: Some(vec!["@g.us".into(), CAIO.into()]),
            ..BotSettings::default()
        },
        fallback_id: Some("fb".into()),
    };
    let mut w = world(
        vec![setup("evolution", vec![b, fallback], Some(row))],
        EngineLimits::default(),
    );

    w.engine.dispatch(msg("120363000000000001@g.us", "hi"));
    w.engine.dispatch(msg(CAIO, "hi"));
    settle(&w.engine).await;
    w.rx.no_send();

    // Nothing matches: the fallback bot answers.
    w.engine.dispatch(msg(ANA, "random words"));
    assert_eq!(
        w.rx.next_texts().await.1,
        vec!["echo: random words".to_owned()]
    );
    assert_eq!(
        w.store
            .latest("inst", ANA)
            .await
            .unwrap()
            .unwrap()
            .bot_id
            .as_deref(),
        Some("fb")
    );

    // A message that cannot be read as text: unknownMessage, no bot call.
    let mut sticker = msg(ANA, "");
    sticker.content = None;
    w.engine.dispatch(sticker);
    assert_eq!(
        w.rx.next_texts().await.1,
        vec!["text only, please".to_owned()]
    );
}

#[tokio::test]
async fn n8n_webhook_with_basic_auth() {
    let (url, seen) = n8n_server().await;
    let good = bot(
        "n1",
        Trigger {
            kind: TriggerType::Advanced,
            operator: None,
            value: Some("contains:pedido".into()),
        },
        json!({"webhookUrl": url, "basicAuthUser": "user", "basicAuthPass": "pass"}),
        quick(),
    );
    let bad_auth = bot(
        "n2",
        keyword(TriggerOperator::Equals, "x"),
        json!({"webhookUrl": url, "basicAuthUser": "user", "basicAuthPass": "wrong"}),
        quick(),
    );
    let mut w = world(
        vec![setup("n8n", vec![good, bad_auth], None)],
        EngineLimits {
            attempts: 3,
            backoff: Duration::from_millis(1),
            ..EngineLimits::default()
        },
    );
    w.engine.dispatch(msg(ANA, "Meu PEDIDO chegou?"));
    assert_eq!(
        w.rx.next_texts().await.1,
        vec!["n8n: Meu PEDIDO chegou?".to_owned()]
    );
    {
        let seen = seen.lock().unwrap();
        let body = &seen[0].1;
        assert_eq!(body["chatInput"], "Meu PEDIDO chegou?");
        assert_eq!(body["sessionId"], ANA);
        assert_eq!(body["remoteJid"], ANA);
        assert_eq!(body["pushName"], "Ana");
        assert_eq!(body["keyId"], "KEY-Meu PEDIDO chegou?");
        assert_eq!(body["fromMe"], false);
        assert_eq!(body["instanceName"], "inst");
        assert_eq!(body["apiKey"], "INSTANCE-TOKEN");
    }
    // A 403 is not retried and is reported.
    w.engine.dispatch(msg(BIA, "x"));
    let e =
        w.rx.event(|e| matches!(e, BotEvent::BotFailed { .. }))
            .await;
    assert!(
        matches!(e, BotEvent::BotFailed { attempts: 1, ref error, .. } if error.contains("403")),
        "{e:?}"
    );
}

#[tokio::test]
async fn hanging_and_garbage_servers_cost_only_their_conversation() {
    let (url, _seen) = evolution_server().await;
    let mk = |id: &str, word: &str, path: &str| {
        bot(
            id,
            keyword(TriggerOperator::Equals, word),
            json!({"apiUrl": format!("{url}{path}")}),
            quick(),
        )
    };
    let bots = vec![
        mk("slow", "slow", "/hang"),
        mk("junk", "junk", "/garbage"),
        mk("ok", "hi", "/bot"),
        mk("flaky", "flaky", "/fail-once"),
    ];
    let mut w = world(
        vec![setup("evolution", bots, None)],
        EngineLimits {
            per_instance_calls: 4,
            call_timeout: Duration::from_millis(300),
            attempts: 2,
            backoff: Duration::from_millis(10),
        },
    );
    w.engine.dispatch(msg(ANA, "slow"));
    w.engine.dispatch(msg(BIA, "junk"));
    w.engine.dispatch(msg(CAIO, "hi"));
    // The healthy conversation is answered while the slow one hangs.
    assert_eq!(
        w.rx.next_texts().await,
        (CAIO.into(), vec!["echo: hi".into()])
    );

    let junk =
        w.rx.event(|e| matches!(e, BotEvent::BotFailed { bot_id, .. } if bot_id == "junk"))
            .await;
    assert!(
        matches!(junk, BotEvent::BotFailed { attempts: 1, ref error, .. } if error.contains("malformed")),
        "{junk:?}"
    );
    let slow =
        w.rx.event(|e| matches!(e, BotEvent::BotFailed { bot_id, .. } if bot_id == "slow"))
            .await;
    assert!(
        matches!(slow, BotEvent::BotFailed { attempts: 2, ref error, .. } if error.contains("did not answer")),
        "{slow:?}"
    );
    settle(&w.engine).await;
    w.rx.no_send();
    // Their sessions are consistent: opened, owned by their bot, still usable.
    for (jid, id) in [(ANA, "slow"), (BIA, "junk")] {
        let s = w.store.latest("inst", jid).await.unwrap().unwrap();
        assert_eq!(
            (s.status, s.bot_id.as_deref()),
            (SessionStatus::Opened, Some(id))
        );
    }
    // A retryable 503 is retried and the second attempt answers.
    w.engine
        .dispatch(msg(ANA.replace("0001", "0009").as_str(), "flaky"));
    assert_eq!(w.rx.next_texts().await.1, vec!["recovered".to_owned()]);
}

#[tokio::test]
async fn bot_calls_are_bounded_per_instance() {
    let (url, seen) = evolution_server().await;
    let mk = |id: &str, word: &str, path: &str| {
        bot(
            id,
            keyword(TriggerOperator::Equals, word),
            json!({"apiUrl": format!("{url}{path}")}),
            quick(),
        )
    };
    let directory = Arc::new(StaticDirectory::default());
    directory.set(
        "inst",
        instance(vec![setup(
            "evolution",
            vec![mk("slow", "slow", "/hang"), mk("ok", "hi", "/bot")],
            None,
        )]),
    );
    directory.set(
        "other",
        instance(vec![setup("evolution", vec![mk("ok", "hi", "/bot")], None)]),
    );
    let (out, mut rx) = recorder();
    let engine = engine(
        Arc::new(MemoryStore::default()),
        directory,
        out.clone(),
        Arc::new(ManualClock::new(0)),
        EngineLimits {
            per_instance_calls: 1,
            call_timeout: Duration::from_millis(400),
            attempts: 1,
            backoff: Duration::from_millis(1),
        },
    );
    engine.dispatch(msg(ANA, "slow"));
    // Wait until the slow call holds the instance's only slot.
    tokio::time::timeout(WAIT, async {
        while seen.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    let mut elsewhere = msg(BIA, "hi");
    elsewhere.instance = "other".into();
    engine.dispatch(elsewhere);
    // Another instance is not held up by this one's slow bot.
    assert_eq!(rx.next_texts().await, (BIA.into(), vec!["echo: hi".into()]));
    engine.dispatch(msg(CAIO, "hi"));
    assert_eq!(
        rx.next_texts().await,
        (CAIO.into(), vec!["echo: hi".into()])
    );
    settle(&engine).await;
    // On the same instance the second call waited for the slot the slow one held until its
    // timeout.
    let order = out.order.lock().unwrap().clone();
    assert_eq!(
        order,
        vec![
            format!("send {BIA}"),
            "failed slow".to_owned(),
            format!("send {CAIO}")
        ]
    );
}

#[tokio::test]
async fn split_messages_plan_typing_and_busy_sessions() {
    let (url, _seen) = evolution_server().await;
    let settings = BotSettings {
        split_messages: Some(true),
        time_per_char: Some(100),
        ..quick()
    };
    let all = Trigger {
        kind: TriggerType::All,
        operator: None,
        value: None,
    };
    let b = bot("b1", all, json!({"apiUrl": format!("{url}/bot")}), settings);
    let mut w = world(
        vec![setup("evolution", vec![b], None)],
        EngineLimits::default(),
    );
    let long = "y".repeat(30);
    w.engine.dispatch(msg(ANA, &format!("x\n\n{long}")));
    let (_, plan) = tokio::time::timeout(WAIT, w.rx.sends.recv())
        .await
        .unwrap()
        .unwrap();
    let typing: Vec<u64> = plan.sends.iter().map(|s| s.typing_ms).collect();
    // "echo: x" (7 chars → 700 ms, raised to 1 s), then 30 chars × 100 ms.
    assert_eq!(typing, vec![1000, 3000]);

    // A session some other component holds (no bot, not closed): the bots stay out.
    let mut busy = w.store.latest("inst", ANA).await.unwrap().unwrap();
    busy.id = "elsewhere".into();
    busy.bot_id = None;
    busy.updated_at += 1;
    w.store.save(&busy).await.unwrap();
    w.engine.dispatch(msg(ANA, "anything"));
    settle(&w.engine).await;
    w.rx.no_send();
    // Once closed, it no longer counts: the "all" bot answers again (in its own session).
    busy.status = SessionStatus::Closed;
    busy.updated_at += 1;
    w.store.save(&busy).await.unwrap();
    w.clock.advance(Duration::from_secs(60));
    w.engine.dispatch(msg(ANA, "hi"));
    assert_eq!(w.rx.next_texts().await.1, vec!["echo: hi".to_owned()]);
    settle(&w.engine).await;
    let now = w.store.latest("inst", ANA).await.unwrap().unwrap();
    assert_eq!(
        (now.bot_id.as_deref(), now.status),
        (Some("b1"), SessionStatus::Opened)
    );
}

#[tokio::test]
async fn a_session_of_a_later_kind_keeps_its_conversation() {
    // Evolution Bot comes first in the order; the contact's session belongs to n8n, which
    // must go on answering (the other kinds leave the contact alone).
    let (evo_url, evo_seen) = evolution_server().await;
    let (n8n_url, _) = n8n_server().await;
    let evo = bot(
        "e1",
        keyword(TriggerOperator::Equals, "hi"),
        json!({"apiUrl": format!("{evo_url}/bot")}),
        quick(),
    );
    let n8n = bot(
        "n1",
        keyword(TriggerOperator::StartsWith, "order"),
        json!({"webhookUrl": n8n_url, "basicAuthUser": "user", "basicAuthPass": "pass"}),
        quick(),
    );
    let mut w = world(
        vec![
            setup("evolution", vec![evo], None),
            setup("n8n", vec![n8n], None),
        ],
        EngineLimits::default(),
    );
    w.engine.dispatch(msg(ANA, "order 1"));
    assert_eq!(w.rx.next_texts().await.1, vec!["n8n: order 1".to_owned()]);
    w.engine.dispatch(msg(ANA, "hi"));
    assert_eq!(w.rx.next_texts().await.1, vec!["n8n: hi".to_owned()]);
    assert!(evo_seen.lock().unwrap().is_empty());
}
