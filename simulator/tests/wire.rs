//! The wired protocol layer over real sockets: a test companion built from zapin-protocol
//! registers, pairs (QR and link code), logs in and uses the IQs; failure cases close or refuse
//! exactly as WhatsApp does, and never affect other connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::wa::{
    Client, Companion, Event, answer_pair_success, bytes_of, is_stream_error, login, pair_by_qr,
    pk, register,
};
use common::*;
use prost::Message as _;
use serde_json::json;
use zapin_protocol::binary::Node;
use zapin_protocol::crypto::{KeyPair, xeddsa};
use zapin_protocol::proto::wa::AdvSignedDeviceIdentity;
use zapin_sim::RunningSim;
use zapin_sim::wire::link_code;

const ALICE: &str = "15550000001";
const BOB: &str = "15550000002";

async fn sim_with_accounts() -> (RunningSim, Api) {
    let sim = start(seeded(11)).await;
    let api = Api::new(&sim);
    for phone in [ALICE, BOB] {
        let (s, _) = api.post("/sim/accounts", json!({"phone": phone})).await;
        assert_eq!(s, 201);
    }
    (sim, api)
}

#[tokio::test]
async fn qr_pairing_login_prekeys_bundles_usync_ping() {
    let (sim, api) = sim_with_accounts().await;
    let c = Companion::new(1);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    assert_eq!(device, 1);
    let (_, account) = api.get(&format!("/sim/accounts/{ALICE}")).await;
    assert_eq!(account["devices"][1]["id"], 1);
    assert_eq!(account["devices"][1]["key_index"], 1);
    let lid_user = account["lid"]
        .as_str()
        .unwrap()
        .trim_end_matches("@lid")
        .to_string();

    let (mut client, success) = login(&sim, &c, ALICE, device).await;
    assert_eq!(
        success.attr_jid("lid").unwrap().to_string(),
        format!("{lid_user}:1@lid")
    );
    assert!(success.attr_str("t").is_some());
    assert_eq!(api.stats().await["devices_online"], 1);

    // Prekeys: count 0, upload 5, count 5, digest lists them.
    let count = client
        .iq("c1", "encrypt", "get", vec![Node::new("count")])
        .await;
    assert_eq!(count.child("count").unwrap().attr_str("value"), Some("0"));
    let keys: Vec<Node> = (1u32..=5)
        .map(|id| {
            let k = KeyPair::from_private([id as u8 + 100; 32]);
            Node::new("key").children(vec![
                Node::new("id").bytes(id.to_be_bytes()[1..].to_vec()),
                Node::new("value").bytes(k.public().0.to_vec()),
            ])
        })
        .collect();
    let upload = client
        .iq(
            "u1",
            "encrypt",
            "set",
            vec![
                Node::new("registration").bytes(c.registration_id.to_be_bytes().to_vec()),
                Node::new("type").bytes(vec![5u8]),
                Node::new("identity").bytes(c.identity.public().0.to_vec()),
                Node::new("list").children(keys),
                Node::new("skey").children(vec![
                    Node::new("id").bytes(vec![0, 0, 1]),
                    Node::new("value").bytes(c.signed_prekey.public().0.to_vec()),
                    Node::new("signature").bytes(c.signed_prekey_sig.to_vec()),
                ]),
            ],
        )
        .await;
    assert_eq!(upload.attr_str("type"), Some("result"), "{upload:?}");
    let count = client
        .iq("c2", "encrypt", "get", vec![Node::new("count")])
        .await;
    assert_eq!(count.child("count").unwrap().attr_str("value"), Some("5"));
    let digest = client
        .iq("d1", "encrypt", "get", vec![Node::new("digest")])
        .await;
    let d = digest.child("digest").expect("digest child");
    assert_eq!(d.child("list").unwrap().child_nodes().len(), 5);
    assert_eq!(bytes_of(d, "hash").len(), 20);

    // Bob's phone (device 0) has a real bundle; each fetch consumes a one-time prekey.
    let bob_lid = api.get(&format!("/sim/accounts/{BOB}")).await.1["lid"]
        .as_str()
        .unwrap()
        .trim_end_matches("@lid")
        .to_string();
    let mut seen = Vec::new();
    for (i, jid) in [format!("{BOB}@s.whatsapp.net"), format!("{bob_lid}@lid")]
        .iter()
        .enumerate()
    {
        let fetch = client
            .iq(
                &format!("k{i}"),
                "encrypt",
                "get",
                vec![Node::new("key").children(vec![
                    Node::new("user").attr("jid", jid.parse::<zapin_protocol::jid::Jid>().unwrap()),
                ])],
            )
            .await;
        let user = fetch.child("list").unwrap().child("user").unwrap();
        assert!(user.child("error").is_none(), "{user:?}");
        let identity = pk(&bytes_of(user, "identity"));
        let skey = user.child("skey").unwrap();
        let spk = pk(&bytes_of(skey, "value"));
        assert!(xeddsa::verify_slice(
            &identity,
            &spk.serialize_djb(),
            &bytes_of(skey, "signature")
        ));
        assert_eq!(bytes_of(user, "registration").len(), 4);
        let key = user.child("key").expect("one-time prekey");
        seen.push(bytes_of(key, "id"));
    }
    assert_ne!(seen[0], seen[1], "one-time prekeys are consumed");

    // Our own companion's bundle carries its device identity and one of the uploaded keys.
    let fetch = client
        .iq(
            "k9",
            "encrypt",
            "get",
            vec![Node::new("key").children(vec![
                    Node::new("user").attr(
                        "jid",
                        format!("{ALICE}:1@s.whatsapp.net")
                            .parse::<zapin_protocol::jid::Jid>()
                            .unwrap(),
                    ),
                ])],
        )
        .await;
    let user = fetch.child("list").unwrap().child("user").unwrap();
    let adv = AdvSignedDeviceIdentity::decode(&bytes_of(user, "device-identity")[..]).unwrap();
    assert!(adv.account_signature_key.is_none());
    assert!(adv.device_signature.is_some());
    assert_eq!(bytes_of(user.child("key").unwrap(), "id"), vec![0, 0, 1]);

    // usync: devices with key-index, lid, contact.
    let usync = client
        .iq(
            "s1",
            "usync",
            "get",
            vec![
                Node::new("usync")
                    .attr("sid", "s1")
                    .attr("context", "message")
                    .attr("mode", "query")
                    .children(vec![
                        Node::new("query").children(vec![
                            Node::new("devices").attr("version", "2"),
                            Node::new("lid"),
                            Node::new("contact"),
                        ]),
                        Node::new("list").children(vec![
                            Node::new("user").attr("jid", zapin_protocol::jid::Jid::pn(ALICE)),
                            Node::new("user")
                                .children(vec![Node::new("contact").text(format!("+{BOB}"))]),
                            Node::new("user")
                                .children(vec![Node::new("contact").text("+15559999999")]),
                        ]),
                    ]),
            ],
        )
        .await;
    let list: Vec<&Node> = usync
        .child("usync")
        .unwrap()
        .child("list")
        .unwrap()
        .children_by_tag("user")
        .collect();
    assert_eq!(list.len(), 3);
    let devices: Vec<(Option<&str>, Option<&str>)> = list[0]
        .child("devices")
        .unwrap()
        .child("device-list")
        .unwrap()
        .children_by_tag("device")
        .map(|d| (d.attr_str("id"), d.attr_str("key-index")))
        .collect();
    assert_eq!(devices, vec![(Some("0"), None), (Some("1"), Some("1"))]);
    assert_eq!(
        list[0]
            .child("lid")
            .unwrap()
            .attr_jid("val")
            .unwrap()
            .to_string(),
        format!("{lid_user}@lid")
    );
    assert_eq!(
        list[1].child("contact").unwrap().attr_str("type"),
        Some("in")
    );
    assert_eq!(
        list[2].child("contact").unwrap().attr_str("type"),
        Some("out")
    );

    // Keepalive, passive, props, blocklist, privacy; unknown → 501.
    let ping = client.iq("p1", "w:p", "get", vec![Node::new("ping")]).await;
    assert_eq!(ping.attr_str("type"), Some("result"));
    assert!(ping.child_nodes().is_empty());
    for (id, xmlns, kind, child) in [
        ("a1", "passive", "set", "active"),
        ("a2", "abt", "get", "props"),
        ("a3", "blocklist", "get", "list"),
        ("a4", "privacy", "get", "privacy"),
    ] {
        let r = client.iq(id, xmlns, kind, vec![Node::new(child)]).await;
        assert_eq!(r.attr_str("type"), Some("result"), "{xmlns}: {r:?}");
    }
    let unknown = client.iq("x1", "w:nothing", "get", vec![]).await;
    assert_eq!(unknown.attr_str("type"), Some("error"));
    assert_eq!(
        unknown.child("error").unwrap().attr_str("code"),
        Some("501")
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrong_device_signature_fails_the_scan_and_stores_nothing() {
    let (sim, api) = sim_with_accounts().await;
    let c = Companion::new(2);
    let (mut client, refs) = register(&sim, &c).await;
    let qr = c.qr(&refs[0]);
    let base = sim.http_url();
    let scan = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/sim/accounts/{ALICE}/scan"))
            .json(&json!({"qr": qr}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    answer_pair_success(&mut client, &c, &c.adv_secret, true).await;
    assert_eq!(scan.await.unwrap(), 400);
    let (_, account) = api.get(&format!("/sim/accounts/{ALICE}")).await;
    assert_eq!(account["devices"].as_array().unwrap().len(), 1, "{account}");
    // The same QR may be scanned again while the connection lives (the ref was released).
    assert_eq!(api.stats().await["pairings"], 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_device_gets_failure_401() {
    let (sim, _api) = sim_with_accounts().await;
    let c = Companion::new(3);
    let mut client = Client::connect(&sim, &c.noise, &Companion::login_payload(ALICE, 7)).await;
    let failure = client.node().await;
    assert_eq!(failure.tag, "failure");
    assert_eq!(failure.attr_str("reason"), Some("401"));
    assert!(matches!(client.recv().await, Event::Closed));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrong_noise_key_gets_failure_401() {
    let (sim, api) = sim_with_accounts().await;
    let c = Companion::new(4);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    let impostor = Companion::new(5);
    let mut client = Client::connect(
        &sim,
        &impostor.noise,
        &Companion::login_payload(ALICE, device),
    )
    .await;
    let failure = client.node().await;
    assert_eq!(failure.attr_str("reason"), Some("401"), "{failure:?}");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn second_login_replaces_the_first_and_unlink_removes_the_device() {
    let (sim, api) = sim_with_accounts().await;
    let c = Companion::new(6);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    let (mut first, _) = login(&sim, &c, ALICE, device).await;
    let (mut second, _) = login(&sim, &c, ALICE, device).await;
    let last = first.until_closed().await.unwrap();
    assert_eq!(last.tag, "stream:error");
    assert_eq!(
        last.child("conflict").unwrap().attr_str("type"),
        Some("replaced")
    );
    let ping = second.iq("p", "w:p", "get", vec![]).await;
    assert_eq!(ping.attr_str("type"), Some("result"));

    let (s, _) = api
        .post(
            &format!("/sim/accounts/{ALICE}/unlink"),
            json!({"device": device}),
        )
        .await;
    assert_eq!(s, 200);
    let last = second.until_closed().await.unwrap();
    assert!(is_stream_error(&last, Some("401")), "{last:?}");
    assert_eq!(
        last.child("conflict").unwrap().attr_str("type"),
        Some("device_removed")
    );
    let mut again = Client::connect(&sim, &c.noise, &Companion::login_payload(ALICE, device)).await;
    assert_eq!(again.node().await.attr_str("reason"), Some("401"));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn stream_error_fault_sends_the_code_then_closes() {
    let (sim, api) = sim_with_accounts().await;
    let c = Companion::new(7);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    for code in ["503", "515"] {
        let (mut client, _) = login(&sim, &c, ALICE, device).await;
        let (s, body) = api
            .post(
                "/sim/faults",
                json!({"action": "stream_error", "code": code}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let last = client.until_closed().await.unwrap();
        assert!(is_stream_error(&last, Some(code)), "{last:?}");
    }
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn garbage_closes_only_that_connection() {
    let (sim, api) = sim_with_accounts().await;
    let c = Companion::new(8);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    let (mut good, _) = login(&sim, &c, ALICE, device).await;

    // A correctly encrypted frame whose plaintext is not a node.
    let other = Companion::new(9);
    let mut bad = Client::connect(&sim, &other.noise, &other.registration_payload()).await;
    let _pair_device = bad.node().await;
    bad.send_plain(&[0, 0xf8, 0xff, 0xff]).await;
    let last = bad.until_closed().await.unwrap();
    assert_eq!(last.tag, "stream:error");
    assert!(last.child("xml-not-well-formed").is_some(), "{last:?}");

    // A frame that does not decrypt: closed without a node.
    let mut worse = Client::connect(&sim, &other.noise, &other.registration_payload()).await;
    let _pair_device = worse.node().await;
    worse
        .send_raw(vec![
            0, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ])
        .await;
    assert!(worse.until_closed().await.is_none());

    let ping = good.iq("p", "w:p", "get", vec![]).await;
    assert_eq!(ping.attr_str("type"), Some("result"));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn link_code_pairing() {
    let (sim, _api) = sim_with_accounts().await;
    let c = Companion::new(10);
    let (mut client, _refs) = register(&sim, &c).await;
    let code = "ABCD2345";
    let companion_eph = KeyPair::from_private([77; 32]);
    let wrapped = link_code::wrap_key(code, companion_eph.public(), [1; 32], [2; 16]);
    let hello = client
        .iq(
            "h1",
            "md",
            "set",
            vec![
                Node::new("link_code_companion_reg")
                    .attr("jid", zapin_protocol::jid::Jid::pn(BOB))
                    .attr("stage", "companion_hello")
                    .attr("should_show_push_notification", "true")
                    .children(vec![
                        Node::new("link_code_pairing_wrapped_companion_ephemeral_pub")
                            .bytes(wrapped),
                        Node::new("companion_server_auth_key_pub")
                            .bytes(c.noise.public().0.to_vec()),
                        Node::new("companion_platform_id").text("1"),
                        Node::new("companion_platform_display").text("Chrome (Linux)"),
                        Node::new("link_code_pairing_nonce").text("0"),
                    ]),
            ],
        )
        .await;
    assert_eq!(hello.attr_str("type"), Some("result"), "{hello:?}");
    let pairing_ref = bytes_of(
        hello.child("link_code_companion_reg").unwrap(),
        "link_code_pairing_ref",
    );

    let base = sim.http_url();
    let post = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(format!("{base}/sim/accounts/{BOB}/link-code"))
            .json(&json!({"code": "abcd-2345"}))
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json::<serde_json::Value>().await.unwrap(),
        )
    });
    let note = client
        .expect("primary_hello", |n| n.tag == "notification")
        .await;
    let reg = note.child("link_code_companion_reg").unwrap();
    assert_eq!(reg.attr_str("stage"), Some("primary_hello"));
    assert_eq!(bytes_of(reg, "link_code_pairing_ref"), pairing_ref);
    let primary_eph = link_code::unwrap_key(
        code,
        &bytes_of(reg, "link_code_pairing_wrapped_primary_ephemeral_pub"),
    )
    .unwrap();
    let primary_identity = pk(&bytes_of(reg, "primary_identity_pub"));
    let random = [5u8; 32];
    let bundle = link_code::wrap_bundle(
        &companion_eph,
        &primary_eph,
        c.identity.public(),
        &primary_identity,
        random,
        [6; 32],
        [7; 12],
    );
    let adv = link_code::adv_secret(
        &companion_eph.agree(&primary_eph),
        &c.identity.agree(&primary_identity),
        &random,
    );
    let finish = client
        .iq(
            "f1",
            "md",
            "set",
            vec![
                Node::new("link_code_companion_reg")
                    .attr("jid", zapin_protocol::jid::Jid::pn(BOB))
                    .attr("stage", "companion_finish")
                    .children(vec![
                        Node::new("link_code_pairing_wrapped_key_bundle").bytes(bundle),
                        Node::new("companion_identity_public")
                            .bytes(c.identity.public().0.to_vec()),
                        Node::new("link_code_pairing_ref").bytes(pairing_ref),
                    ]),
            ],
        )
        .await;
    assert_eq!(finish.attr_str("type"), Some("result"), "{finish:?}");
    let (jid, _, _) = answer_pair_success(&mut client, &c, &adv, false).await;
    assert!(jid.starts_with(&format!("{BOB}:1@")), "{jid}");
    let last = client.until_closed().await.unwrap();
    assert!(is_stream_error(&last, Some("515")));
    let (status, body) = post.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (_client, _) = login(&sim, &c, BOB, 1).await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn deliveries_go_to_the_socket_or_the_offline_queue() {
    let (sim, api) = sim_with_accounts().await;
    let c = Companion::new(12);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    let stanza = |id: &str| {
        Node::new("message")
            .attr("id", id.to_string())
            .attr("from", zapin_protocol::jid::Jid::pn(BOB))
            .attr("type", "text")
    };
    // Offline: queued, then delivered after <success> with `offline`, before <ib><offline>.
    zapin_sim::router::deliver(sim.sim(), ALICE, u32::from(device), stanza("m1"));
    let mut client =
        Client::connect(&sim, &c.noise, &Companion::login_payload(ALICE, device)).await;
    assert_eq!(client.node().await.tag, "success");
    let queued = client.node().await;
    assert_eq!(queued.attr_str("id"), Some("m1"));
    assert_eq!(queued.attr_str("offline"), Some("1"));
    let ib = client.node().await;
    assert_eq!(
        ib.child("offline").unwrap().attr_str("count"),
        Some("1"),
        "{ib:?}"
    );
    // Online: straight to the socket.
    zapin_sim::router::deliver(sim.sim(), ALICE, u32::from(device), stanza("m2"));
    let live = client.node().await;
    assert_eq!(live.attr_str("id"), Some("m2"));
    assert_eq!(live.attr_str("offline"), None);

    // Logout through the IQ: result, then 401 device_removed, and the device is gone.
    let own = zapin_protocol::jid::Jid::with_device(ALICE, device, zapin_protocol::jid::Server::Pn);
    let r = client
        .iq(
            "lo",
            "md",
            "set",
            vec![
                Node::new("remove-companion-device")
                    .attr("jid", own)
                    .attr("reason", "user_initiated"),
            ],
        )
        .await;
    assert_eq!(r.attr_str("type"), Some("result"));
    let last = client.until_closed().await.unwrap();
    assert!(is_stream_error(&last, Some("401")), "{last:?}");
    let (_, account) = api.get(&format!("/sim/accounts/{ALICE}")).await;
    assert_eq!(account["devices"].as_array().unwrap().len(), 1);
    sim.shutdown().await.unwrap();
}

/// The WebSocket read buffer is 4 KiB (`conn::ws::WS_READ_BUFFER`): frames far larger than it —
/// Baileys' 812-key prekey upload (≈ 36 KiB) and a 1 MiB stanza — are still read whole.
#[tokio::test]
async fn frames_larger_than_the_read_buffer_are_read_whole() {
    let (sim, api) = sim_with_accounts().await;
    let c = Companion::new(7);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    let (mut client, _) = login(&sim, &c, ALICE, device).await;
    let keys: Vec<Node> = (1u32..=812)
        .map(|id| {
            let k = KeyPair::from_private([(id % 200) as u8 + 20; 32]);
            Node::new("key").children(vec![
                Node::new("id").bytes(id.to_be_bytes()[1..].to_vec()),
                Node::new("value").bytes(k.public().0.to_vec()),
            ])
        })
        .collect();
    let upload = client
        .iq(
            "big1",
            "encrypt",
            "set",
            vec![
                Node::new("registration").bytes(c.registration_id.to_be_bytes().to_vec()),
                Node::new("type").bytes(vec![5u8]),
                Node::new("identity").bytes(c.identity.public().0.to_vec()),
                Node::new("list").children(keys),
                Node::new("skey").children(vec![
                    Node::new("id").bytes(vec![0, 0, 1]),
                    Node::new("value").bytes(c.signed_prekey.public().0.to_vec()),
                    Node::new("signature").bytes(c.signed_prekey_sig.to_vec()),
                ]),
            ],
        )
        .await;
    assert_eq!(upload.attr_str("type"), Some("result"), "{upload:?}");
    let count = client
        .iq("big2", "encrypt", "get", vec![Node::new("count")])
        .await;
    assert_eq!(count.child("count").unwrap().attr_str("value"), Some("812"));
    let ping = client
        .iq(
            "big3",
            "w:p",
            "get",
            vec![Node::new("ping").bytes(vec![0x5a; 1 << 20])],
        )
        .await;
    assert_eq!(ping.attr_str("type"), Some("result"));
    sim.shutdown().await.unwrap();
}
