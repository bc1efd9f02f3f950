//! Stanzas are held for a companion until it acknowledges them, as on WhatsApp: what a device did
//! not confirm before its connection ended (closed, replaced by a new login, or the simulator
//! restarted) is delivered again at its next login with `offline="1"`, in order, before anything
//! newer; what it confirmed never comes back. Driven over real Noise connections with the test
//! companion of `common::wa`; the sending side is a mock phone through the control API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::wa::{Client, Companion, pair_by_qr, server};
use common::*;
use serde_json::{Value, json};
use zapin_protocol::binary::{self, Node};
use zapin_protocol::jid::{Jid, Server};
use zapin_sim::conn::ConnCommand;
use zapin_sim::state::{QueuedStanza, StanzaKind};
use zapin_sim::{RunningSim, SimConfig};

const ALICE: &str = "15550000001";
const BOB: &str = "15550000002";

async fn with_accounts(config: SimConfig) -> (RunningSim, Api) {
    let sim = start(config).await;
    let api = Api::new(&sim);
    for phone in [ALICE, BOB] {
        let (s, body) = api.post("/sim/accounts", json!({"phone": phone})).await;
        assert_eq!(s, 201, "{body}");
    }
    (sim, api)
}

/// Logs in; returns the connection, the stanzas delivered before `<ib><offline>`, and its count.
async fn login(sim: &RunningSim, c: &Companion, device: u16) -> (Client, Vec<Node>, String) {
    let mut client = Client::connect(sim, &c.noise, &Companion::login_payload(ALICE, device)).await;
    let success = client.node().await;
    assert_eq!(success.tag, "success", "{success:?}");
    let mut held = Vec::new();
    loop {
        let n = client.node().await;
        if let Some(offline) = n.child("offline").filter(|_| n.tag == "ib") {
            let count = offline.attr_str("count").unwrap().to_string();
            return (client, held, count);
        }
        held.push(n);
    }
}

/// The mock phone of `from` sends a text with a chosen id to `to`'s devices.
async fn phone_sends(api: &Api, from: &str, to: &str, id: &str) {
    let (s, body) = api
        .post(
            &format!("/sim/accounts/{from}/messages"),
            json!({"to": format!("{to}@s.whatsapp.net"), "text": id, "id": id}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
}

async fn messages(client: &mut Client, n: usize) -> Vec<Node> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(client.expect("a message", |m| m.tag == "message").await);
    }
    got
}

fn ids(nodes: &[Node]) -> Vec<&str> {
    nodes.iter().map(|n| n.attr_str("id").unwrap()).collect()
}

fn all_offline(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| n.attr_str("offline") == Some("1"))
}

/// Sends `nodes` then a ping, and waits for the pong: a connection handles its stanzas in order,
/// so the server has processed every one of them.
async fn send_and_sync(client: &mut Client, nodes: Vec<Node>) {
    for n in &nodes {
        client.send(n).await;
    }
    let pong = client.iq("sync", "w:p", "get", vec![]).await;
    assert_eq!(pong.attr_str("type"), Some("result"));
}

/// Everything the server sent before answering a ping sent now.
async fn received_so_far(client: &mut Client, n: usize) -> Vec<Node> {
    let id = format!("so-far-{n}");
    client
        .send(
            &Node::new("iq")
                .attr("id", id.clone())
                .attr("to", server())
                .attr("xmlns", "w:p")
                .attr("type", "get"),
        )
        .await;
    let mut got = Vec::new();
    loop {
        let n = client.node().await;
        if n.tag == "iq" && n.attr_str("id") == Some(id.as_str()) {
            return got;
        }
        got.push(n);
    }
}

/// Closes the socket and waits until the simulator saw it.
async fn disconnect(api: &Api, client: Client, device: u16) {
    drop(client);
    disconnect_wait(api, device).await;
}

async fn disconnect_wait(api: &Api, device: u16) {
    wait_for("the device to go offline", || async {
        let (_, account) = api.get(&format!("/sim/accounts/{ALICE}")).await;
        let online = account["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == device)
            .map(|d| d["online"] == true)
            .unwrap();
        (!online).then_some(())
    })
    .await;
}

fn receipt(id: &str, to: Jid) -> Node {
    Node::new("receipt")
        .attr("id", id.to_string())
        .attr("to", to)
}

fn message_ack(id: &str, to: Jid) -> Node {
    Node::new("ack")
        .attr("class", "message")
        .attr("id", id.to_string())
        .attr("to", to)
}

async fn get(api: &Api, path: &str) -> Vec<Value> {
    let (s, body) = api.get(path).await;
    assert_eq!(s, 200, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn what_a_device_did_not_acknowledge_comes_back_at_its_next_login() {
    let (sim, api) = with_accounts(seeded(41)).await;
    let c = Companion::new(41);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    let (mut first, held, count) = login(&sim, &c, device).await;
    assert!(held.is_empty());
    assert_eq!(count, "0");

    let sent = ["R0", "R1", "R2", "R3", "R4", "R5"];
    for id in sent {
        phone_sends(&api, BOB, ALICE, id).await;
    }
    let got = messages(&mut first, sent.len()).await;
    assert_eq!(ids(&got), sent);
    assert!(got.iter().all(|m| m.attr_str("offline").is_none()));
    let from = got[0].attr_jid("from").unwrap();
    assert_eq!(from, Jid::pn(BOB));
    let (_, bob) = api.get(&format!("/sim/accounts/{BOB}")).await;
    let bob_lid: Jid = bob["lid"].as_str().unwrap().parse().unwrap();

    // The first three are confirmed, each as a different client does it: a delivery receipt to
    // the sender (zapin's engine), an ack that is a NACK (Baileys after a failure), an
    // `inactive` receipt naming the sender by its LID. The fourth gets an ack naming another
    // sender: that confirms nothing.
    send_and_sync(
        &mut first,
        vec![
            receipt("R0", from.clone()),
            message_ack("R1", from.clone())
                .attr("error", "500")
                .attr("from", Jid::with_device(ALICE, device, Server::Pn)),
            receipt("R2", bob_lid).attr("type", "inactive"),
            message_ack("R3", Jid::pn(ALICE)),
        ],
    )
    .await;
    disconnect(&api, first, device).await;

    let (mut second, held, count) = login(&sim, &c, device).await;
    assert_eq!(
        ids(&held),
        ["R3", "R4", "R5"],
        "only the unconfirmed, in order"
    );
    assert!(all_offline(&held), "{held:?}");
    assert_eq!(count, "3");
    // Redelivered unchanged apart from `offline`.
    for (again, first_time) in held.iter().zip(&got[3..]) {
        assert_eq!(again.child_nodes(), first_time.child_nodes());
        assert_eq!(again.attr_jid("from"), first_time.attr_jid("from"));
    }
    // One receipt with a list confirms all three.
    send_and_sync(
        &mut second,
        vec![
            receipt("R3", from.clone()).children(vec![Node::new("list").children(vec![
                Node::new("item").attr("id", "R4"),
                Node::new("item").attr("id", "R5"),
            ])]),
        ],
    )
    .await;
    disconnect(&api, second, device).await;

    let (_third, held, count) = login(&sim, &c, device).await;
    assert!(held.is_empty(), "{held:?}");
    assert_eq!(count, "0");

    // The other side saw each of the companion's receipts once and nothing for the acks; Alice's
    // phone got each message once (redelivery is per companion) and sent its own receipts.
    let receipts = get(&api, &format!("/sim/accounts/{BOB}/receipts")).await;
    let from_phone = json!(format!("{ALICE}@s.whatsapp.net"));
    assert_eq!(
        receipts.iter().filter(|r| r["from"] == from_phone).count(),
        sent.len()
    );
    let mut receipt_ids: Vec<&str> = receipts
        .iter()
        .filter(|r| r["from"] != from_phone)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    receipt_ids.sort_unstable();
    assert_eq!(receipt_ids, ["R0", "R2", "R3", "R4", "R5"], "{receipts:?}");
    let inbox = get(&api, &format!("/sim/accounts/{ALICE}/messages")).await;
    let inbox_ids: Vec<&str> = inbox.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(inbox_ids, sent);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_login_that_replaces_an_open_connection_takes_over_what_it_had_in_flight() {
    let (sim, api) = with_accounts(seeded(42)).await;
    let c = Companion::new(42);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    let (mut first, _, _) = login(&sim, &c, device).await;
    for id in ["P0", "P1", "P2"] {
        phone_sends(&api, BOB, ALICE, id).await;
    }
    let got = messages(&mut first, 3).await;
    let from = got[0].attr_jid("from").unwrap();
    send_and_sync(&mut first, vec![receipt("P0", from.clone())]).await;

    // The same device logs in again while the first connection is still open.
    let (mut second, held, count) = login(&sim, &c, device).await;
    assert_eq!(ids(&held), ["P1", "P2"]);
    assert!(all_offline(&held), "{held:?}");
    assert_eq!(count, "2");
    let last = first.until_closed().await.unwrap();
    assert_eq!(
        last.child("conflict").and_then(|c| c.attr_str("type")),
        Some("replaced"),
        "{last:?}"
    );
    // Newer stanzas arrive live, after the redelivered ones.
    phone_sends(&api, BOB, ALICE, "P3").await;
    let live = messages(&mut second, 1).await;
    assert_eq!(ids(&live), ["P3"]);
    assert_eq!(live[0].attr_str("offline"), None);
    send_and_sync(
        &mut second,
        ["P1", "P2", "P3"]
            .into_iter()
            .map(|id| receipt(id, from.clone()))
            .collect(),
    )
    .await;
    // The replaced connection's end gave nothing back: the new one had taken it all.
    disconnect(&api, second, device).await;
    let (_third, held, count) = login(&sim, &c, device).await;
    assert!(held.is_empty(), "{held:?}");
    assert_eq!(count, "0");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn receipts_and_notifications_wait_for_their_acks() {
    let (sim, api) = with_accounts(seeded(43)).await;
    let c = Companion::new(43);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    let (mut first, _, _) = login(&sim, &c, device).await;

    // A group made by Bob: Alice's companion gets a w:gp2 notification.
    let (s, group) = api
        .post(
            "/sim/groups",
            json!({"creator": BOB, "subject": "g", "participants": [ALICE]}),
        )
        .await;
    assert_eq!(s, 201, "{group}");
    let note = first
        .expect("the group notification", |n| n.tag == "notification")
        .await;
    // A message Bob's phone cannot decrypt: its retry receipt comes back to the companion.
    let bad = Node::new("message")
        .attr("id", "M1")
        .attr("to", Jid::pn(BOB))
        .attr("type", "text")
        .children(vec![Node::new("participants").children(vec![
            Node::new("to").attr("jid", Jid::pn(BOB)).children(vec![
                    Node::new("enc")
                        .attr("v", "2")
                        .attr("type", "msg")
                        .bytes(vec![0x33, 1, 2, 3]),
                ]),
        ])]);
    first.send(&bad).await;
    let retry = first
        .expect("the retry receipt", |n| n.tag == "receipt")
        .await;
    assert_eq!(retry.attr_str("type"), Some("retry"), "{retry:?}");

    // Only the notification is acked (as zapin's engine does it: no participant).
    let ack = Node::new("ack")
        .attr("class", "notification")
        .attr("id", note.attr_str("id").unwrap().to_string())
        .attr("type", "w:gp2")
        .attr("to", note.attr_jid("from").unwrap());
    send_and_sync(&mut first, vec![ack]).await;
    disconnect(&api, first, device).await;

    let (mut second, held, count) = login(&sim, &c, device).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].tag, "receipt");
    assert_eq!(held[0].attr_str("id"), Some("M1"));
    assert_eq!(held[0].attr_str("offline"), Some("1"));
    assert_eq!(count, "1");
    // Acked as clients do it: class, id, type and `to` copied from the receipt.
    let ack = Node::new("ack")
        .attr("class", "receipt")
        .attr("id", "M1")
        .attr("type", "retry")
        .attr("to", retry.attr_jid("from").unwrap());
    send_and_sync(&mut second, vec![ack]).await;
    disconnect(&api, second, device).await;
    let (_third, held, _) = login(&sim, &c, device).await;
    assert!(held.is_empty(), "{held:?}");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn held_stanzas_survive_a_simulator_restart() {
    let dir = temp_dir("held");
    let config = || SimConfig {
        state_dir: Some(dir.clone()),
        ..seeded(44)
    };
    let (sim, api) = with_accounts(config()).await;
    let c = Companion::new(44);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    let (mut first, _, _) = login(&sim, &c, device).await;
    for id in ["S0", "S1", "S2"] {
        phone_sends(&api, BOB, ALICE, id).await;
    }
    let got = messages(&mut first, 3).await;
    send_and_sync(
        &mut first,
        vec![receipt("S0", got[0].attr_jid("from").unwrap())],
    )
    .await;
    // The simulator stops with S1 and S2 in flight on the open connection.
    sim.shutdown().await.unwrap();
    drop(first);

    let sim = start(config()).await;
    let (_again, held, count) = login(&sim, &c, device).await;
    assert_eq!(ids(&held), ["S1", "S2"]);
    assert!(all_offline(&held), "{held:?}");
    assert_eq!(count, "2");
    sim.shutdown().await.unwrap();
}

/// Deliveries race with logins that replace the open connection and with connections that
/// close: whatever the interleaving, a device that confirmed only some stanzas gets every other
/// one back, in the order they were sent.
#[tokio::test]
async fn nothing_is_lost_while_the_device_reconnects_during_a_burst() {
    let (sim, api) = with_accounts(seeded(45)).await;
    let c = Companion::new(45);
    let device = pair_by_qr(&sim, &api, &c, ALICE).await;
    let sent: Vec<String> = (0..60).map(|i| format!("B{i:02}")).collect();
    let sender = {
        let api = Api::new(&sim);
        let sent = sent.clone();
        tokio::spawn(async move {
            for id in &sent {
                phone_sends(&api, BOB, ALICE, id).await;
            }
        })
    };
    let mut confirmed = Vec::new();
    let (mut open, mut got, _) = login(&sim, &c, device).await;
    // Reconnect over and over until the burst is over: every other time a login replaces the
    // open connection, otherwise the connection closes first.
    let mut round = 0;
    while round < 8 || !sender.is_finished() {
        // Confirm the first message this connection got so far, if any.
        got.extend(received_so_far(&mut open, round).await);
        if let Some(m) = got.iter().find(|n| n.tag == "message") {
            let id = m.attr_str("id").unwrap().to_string();
            send_and_sync(&mut open, vec![receipt(&id, m.attr_jid("from").unwrap())]).await;
            confirmed.push(id);
        }
        let (next, held, _) = if round % 2 == 0 {
            login(&sim, &c, device).await
        } else {
            disconnect(&api, open, device).await;
            login(&sim, &c, device).await
        };
        (open, got) = (next, held);
        round += 1;
    }
    sender.await.unwrap();
    drop(open);
    disconnect_wait(&api, device).await;
    let (_last, held, count) = login(&sim, &c, device).await;
    let expected: Vec<&str> = sent
        .iter()
        .map(String::as_str)
        .filter(|id| !confirmed.iter().any(|c| c == id))
        .collect();
    assert_eq!(ids(&held), expected, "confirmed {confirmed:?}");
    assert_eq!(count, expected.len().to_string());
    sim.shutdown().await.unwrap();
}

/// The end of a race: a stanza was routed to the old connection after a new login of the device
/// had already taken over. When the old connection ends, the stanza goes to the new one at once
/// instead of waiting for yet another login. Driven on the connection registry directly, since the
/// interleaving cannot be forced over sockets.
#[tokio::test]
async fn a_stanza_left_on_a_replaced_connection_goes_to_the_new_one() {
    let (running, api) = with_accounts(seeded(46)).await;
    let c = Companion::new(46);
    let device = pair_by_qr(&running, &api, &c, ALICE).await;
    let sim = running.sim();
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let (old, mut old_rx) = sim.connections().register(peer);
    sim.device_logged_in(old, ALICE, device);
    let (new, mut new_rx) = sim.connections().register(peer);
    sim.device_logged_in(new, ALICE, device);
    assert!(sim.state().hand_to(ALICE, device, new).is_empty());
    assert!(matches!(old_rx.try_recv(), Ok(ConnCommand::Replaced)));

    let late = Node::new("message")
        .attr("id", "L1")
        .attr("from", Jid::pn(BOB))
        .attr("type", "text");
    let held = QueuedStanza {
        id: "L1".into(),
        kind: StanzaKind::Message,
        t: 0,
        node: binary::encode(&late).unwrap(),
        sent_on: Some(old),
    };
    sim.state().hold(ALICE, device, held).unwrap();
    sim.connection_closed(old);
    let Ok(ConnCommand::Deliver { node }) = new_rx.try_recv() else {
        panic!("nothing handed to the new connection");
    };
    let node = binary::decode(&node).unwrap();
    assert_eq!(node.attr_str("id"), Some("L1"));
    assert_eq!(node.attr_str("offline"), Some("1"));
    let left = sim.state().held(ALICE, device).unwrap();
    assert_eq!(left.len(), 1, "still held until confirmed");
    assert_eq!(left[0].sent_on, Some(new));
    sim.connection_closed(new);
    running.shutdown().await.unwrap();
}
