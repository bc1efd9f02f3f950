//! Every control-API route: success shapes and error shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use zapin_sim::state::{ReceiptRecord, ReceivedMessage};

#[tokio::test]
async fn root_key_and_stats() {
    let sim = start(seeded(1)).await;
    let api = Api::new(&sim);
    let (s, v) = api.get("/sim/root-key").await;
    assert_eq!(s, 200);
    let hex = v["public_key_hex"].as_str().unwrap();
    assert_eq!(hex.len(), 64);
    assert_eq!(hex, hex::encode(sim.root_public_key().as_bytes()));

    let stats = api.stats().await;
    for k in [
        "connections",
        "devices_online",
        "accounts",
        "messages_routed",
        "receipts_routed",
        "pairings",
        "phash_mismatches",
    ] {
        assert_eq!(stats[k], 0, "{k}");
    }
    assert_error(&api.get("/sim/nope").await, 404);
    assert_error(&api.delete("/sim/root-key").await, 405);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn accounts_create_get_and_errors() {
    let sim = start(seeded(1)).await;
    let api = Api::new(&sim);

    let (s, a) = api
        .post("/sim/accounts", json!({"push_name": "Alice"}))
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["phone"], "15550000001");
    assert_eq!(a["jid"], "15550000001@s.whatsapp.net");
    let lid = a["lid"].as_str().unwrap();
    assert!(lid.ends_with("@lid") && lid.len() == 15 + 4, "{lid}");

    // Empty body is allowed; auto-assignment continues.
    let (s, b) = api.post_raw("/sim/accounts", "").await;
    assert_eq!(s, 201);
    assert_eq!(b["phone"], "15550000002");

    let (s, c) = api
        .post("/sim/accounts", json!({"phone": "4915112345678"}))
        .await;
    assert_eq!(s, 201);
    assert_eq!(c["jid"], "4915112345678@s.whatsapp.net");

    assert_error(
        &api.post("/sim/accounts", json!({"phone": "15550000001"}))
            .await,
        409,
    );
    assert_error(
        &api.post("/sim/accounts", json!({"phone": "12ab"})).await,
        400,
    );
    assert_error(
        &api.post("/sim/accounts", json!({"phone": "0123456"})).await,
        400,
    );
    assert_error(
        &api.post("/sim/accounts", json!({"phone": 15550000009u64}))
            .await,
        400,
    );
    assert_error(
        &api.post("/sim/accounts", json!({"push_name": ""})).await,
        400,
    );
    assert_error(&api.post_raw("/sim/accounts", "{not json").await, 400);
    assert_error(&api.post_raw("/sim/accounts", "[]").await, 400);

    let (s, v) = api.get("/sim/accounts/15550000001").await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"phone": "15550000001", "jid": "15550000001@s.whatsapp.net", "lid": lid,
               "push_name": "Alice", "devices": [{"id": 0}]})
    );
    let (_, v) = api.get("/sim/accounts/15550000002").await;
    assert_eq!(v["push_name"], serde_json::Value::Null);
    assert_error(&api.get("/sim/accounts/19999999999").await, 404);

    assert_eq!(api.stats().await["accounts"], 3);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn messages_receipts_and_read() {
    let sim = start(seeded(1)).await;
    let api = Api::new(&sim);
    api.post("/sim/accounts", json!({})).await;
    api.post("/sim/accounts", json!({})).await;
    let alice = "/sim/accounts/15550000001";

    // Validation happens before the Signal send.
    let send = |body| {
        let api = &api;
        async move { api.post(&format!("{alice}/messages"), body).await }
    };
    assert_error(&send(json!({"to": "bob", "text": "hi"})).await, 400);
    assert_error(
        &send(json!({"to": "15550000002@s.whatsapp.net"})).await,
        400,
    );
    assert_error(
        &send(json!({"to": "15550000002@s.whatsapp.net", "text": ""})).await,
        400,
    );
    assert_error(
        &send(json!({"to": "15550000002@s.whatsapp.net", "text": "hi", "id": "a b"})).await,
        400,
    );
    assert_error(
        &send(json!({"to": "19999999999@s.whatsapp.net", "text": "hi"})).await,
        404,
    );
    assert_error(
        &send(json!({"to": "120363000000000009@g.us", "text": "hi"})).await,
        404,
    );
    assert_error(
        &api.post(
            "/sim/accounts/19999999999/messages",
            json!({"to": "15550000002@s.whatsapp.net", "text": "hi"}),
        )
        .await,
        404,
    );
    // The mock phone sends for real (Signal to every device of the recipient).
    let (s, v) = send(json!({"to": "15550000002@s.whatsapp.net", "text": "hi"})).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["id"].is_string());

    // The received-messages store works now; the protocol layer fills it.
    let (s, v) = api.get(&format!("{alice}/messages")).await;
    assert_eq!((s, v), (200, json!([])));
    for (id, t) in [("A1", 1000), ("A2", 2000)] {
        sim.sim()
            .state()
            .record_phone_message(
                "15550000001",
                ReceivedMessage {
                    id: id.into(),
                    from: "15550000002:1@s.whatsapp.net".into(),
                    chat: "15550000002@s.whatsapp.net".into(),
                    participant: None,
                    kind: "text".into(),
                    text: Some("yo".into()),
                    context: None,
                    details: Default::default(),
                    t,
                },
            )
            .unwrap();
    }
    let (_, v) = api.get(&format!("{alice}/messages")).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["id"], "A1");
    assert_eq!(v[0]["type"], "text");
    assert_eq!(v[0]["text"], "yo");
    assert!(v[0].get("participant").is_none());
    let (_, v) = api.get(&format!("{alice}/messages?since=1500")).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], "A2");
    assert_error(
        &api.get(&format!("{alice}/messages?since=yesterday")).await,
        400,
    );
    assert_error(&api.get("/sim/accounts/19999999999/messages").await, 404);

    sim.sim()
        .state()
        .record_receipt(
            "15550000001",
            ReceiptRecord {
                id: "B1".into(),
                from: "15550000002:1@s.whatsapp.net".into(),
                kind: "delivered".into(),
                t: 5,
            },
        )
        .unwrap();
    let (s, v) = api.get(&format!("{alice}/receipts")).await;
    assert_eq!(s, 200);
    // The first is Bob's phone's real delivery receipt for the text sent above.
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 2, "{v}");
    assert_eq!(all[0]["from"], "15550000002@s.whatsapp.net");
    assert_eq!(all[0]["type"], "delivered");
    assert_eq!(
        all[1],
        json!({"id": "B1", "from": "15550000002:1@s.whatsapp.net", "type": "delivered", "t": 5})
    );
    let (_, v) = api.get(&format!("{alice}/receipts?id=nope")).await;
    assert_eq!(v, json!([]));
    assert_error(&api.get("/sim/accounts/19999999999/receipts").await, 404);

    let read = |body| {
        let api = &api;
        async move { api.post(&format!("{alice}/read"), body).await }
    };
    assert_error(
        &read(json!({"chat": "15550000002@s.whatsapp.net", "ids": []})).await,
        400,
    );
    assert_error(&read(json!({"chat": "x", "ids": ["A1"]})).await, 400);
    assert_error(
        &read(json!({"chat": "15550000002@s.whatsapp.net", "ids": "A1"})).await,
        400,
    );
    let (s, v) = read(json!({"chat": "15550000002@s.whatsapp.net", "ids": ["A1"]})).await;
    assert_eq!((s, v), (200, json!({})));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn groups_create_get_and_errors() {
    let sim = start(seeded(1)).await;
    let api = Api::new(&sim);
    for _ in 0..3 {
        api.post("/sim/accounts", json!({})).await;
    }
    let (s, v) = api
        .post(
            "/sim/groups",
            json!({"creator": "15550000001", "subject": "Team",
                   "participants": ["15550000002", "15550000003@s.whatsapp.net", "15550000001"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let jid = v["jid"].as_str().unwrap().to_string();
    assert!(jid.ends_with("@g.us") && jid.starts_with("120363"), "{jid}");

    let (s, g) = api.get(&format!("/sim/groups/{jid}")).await;
    assert_eq!(s, 200);
    assert_eq!(g["jid"], jid.as_str());
    assert_eq!(g["subject"], "Team");
    assert_eq!(
        g["participants"],
        json!([
            {"jid": "15550000001@s.whatsapp.net", "admin": "superadmin"},
            {"jid": "15550000002@s.whatsapp.net", "admin": null},
            {"jid": "15550000003@s.whatsapp.net", "admin": null},
        ])
    );
    // The bare id works too.
    let id = jid.trim_end_matches("@g.us");
    assert_eq!(api.get(&format!("/sim/groups/{id}")).await.0, 200);

    let create = |body| {
        let api = &api;
        async move { api.post("/sim/groups", body).await }
    };
    assert_error(
        &create(json!({"creator": "15550000001", "subject": "", "participants": []})).await,
        400,
    );
    assert_error(
        &create(json!({"creator": "15550000001", "participants": []})).await,
        400,
    );
    assert_error(
        &create(json!({"creator": "15550000001", "subject": "x", "participants": "15550000002"}))
            .await,
        400,
    );
    assert_error(
        &create(json!({"creator": "19999999999", "subject": "x", "participants": []})).await,
        404,
    );
    assert_error(
        &create(json!({"creator": "15550000001", "subject": "x", "participants": ["19999999999"]}))
            .await,
        404,
    );
    assert_error(&api.get("/sim/groups/120363999999999999@g.us").await, 404);

    // A member may address the group; a non-member may not.
    api.post("/sim/accounts", json!({})).await;
    let outsider = api
        .post(
            "/sim/accounts/15550000004/messages",
            json!({"to": jid, "text": "hi"}),
        )
        .await;
    assert_error(&outsider, 403);
    let member = api
        .post(
            "/sim/accounts/15550000002/messages",
            json!({"to": jid, "text": "hi"}),
        )
        .await;
    assert_eq!(member.0, 200, "{}", member.1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn faults_validate_every_action() {
    let sim = start(seeded(1)).await;
    let api = Api::new(&sim);
    let f = |body| {
        let api = &api;
        async move { api.post("/sim/faults", body).await }
    };
    for ok in [
        json!({"action": "disconnect_all"}),
        json!({"action": "stream_error", "code": "515"}),
        json!({"action": "stream_error", "code": "440"}),
        json!({"action": "refuse", "seconds": 0}),
        json!({"action": "latency", "ms": 0}),
        json!({"action": "drop_acks", "on": true}),
    ] {
        let (s, v) = f(ok.clone()).await;
        assert_eq!((s, &v), (200, &json!({})), "{ok}");
    }
    assert!(sim.sim().faults().drop_acks());
    for bad in [
        json!({}),
        json!({"action": "explode"}),
        json!({"action": "stream_error"}),
        json!({"action": "stream_error", "code": "999"}),
        json!({"action": "stream_error", "code": 515}),
        json!({"action": "stream_error", "code": "515", "device": "nonsense"}),
        json!({"action": "refuse"}),
        json!({"action": "refuse", "seconds": -1}),
        json!({"action": "refuse", "seconds": "5"}),
        json!({"action": "refuse", "seconds": 999999999}),
        json!({"action": "latency", "ms": 1.5}),
        json!({"action": "latency", "ms": 99999999}),
        json!({"action": "drop_acks"}),
        json!({"action": "drop_acks", "on": "yes"}),
    ] {
        assert_error(&f(bad.clone()).await, 400);
    }
    assert_error(
        &f(json!({"action": "stream_error", "code": "503", "device": "15550000001:1@s.whatsapp.net"}))
            .await,
        404,
    );
    assert_error(&api.post_raw("/sim/faults", "{\"action\":").await, 400);

    let (s, v) = api.delete("/sim/faults").await;
    assert_eq!((s, v), (200, json!({})));
    assert!(!sim.sim().faults().drop_acks());
    sim.shutdown().await.unwrap();
}
