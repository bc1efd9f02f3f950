//! The router behind real connections: a fake protocol handler (no Noise: every WebSocket message
//! is one `binary::encode`d node) calls `router::handle_stanza` and writes `ConnCommand::Deliver`
//! payloads, the way the real handler does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use zapin_protocol::binary::{self, Node};
use zapin_protocol::crypto::PublicKey;
use zapin_protocol::jid::{Jid, Server};
use zapin_sim::conn::ConnCommand;
use zapin_sim::conn::handler::{ConnContext, ConnectionHandler, HandlerFactory, Outbox};
use zapin_sim::intro::Intro;
use zapin_sim::qr::QrData;
use zapin_sim::router::{self, Origin};
use zapin_sim::state::{Registration, SignedPreKeyPublic};
use zapin_sim::{RunningSim, SimConfig};

#[derive(Debug)]
struct NodeWire;

struct NodeConn {
    ctx: ConnContext,
    me: Option<(String, u16)>,
}

impl HandlerFactory for NodeWire {
    fn new_handler(&self, ctx: ConnContext) -> Box<dyn ConnectionHandler> {
        Box::new(NodeConn { ctx, me: None })
    }
}

impl ConnectionHandler for NodeConn {
    fn on_intro(&mut self, _: &Intro, _: &mut Outbox) {}

    fn on_bytes(&mut self, bytes: &[u8], out: &mut Outbox) {
        let sim = &self.ctx.sim;
        // "D<phone>:<device>": log in, then drain the offline queue (as after `<success>`).
        if let Some(who) = bytes.strip_prefix(b"D") {
            let who = String::from_utf8(who.to_vec()).unwrap();
            let (phone, device) = who.split_once(':').unwrap();
            let device: u16 = device.parse().unwrap();
            sim.device_logged_in(self.ctx.id, phone, device);
            for q in sim.state().hand_to(phone, device, self.ctx.id) {
                out.write(q.node);
            }
            out.write(binary::encode(&Node::new("success")).unwrap());
            self.me = Some((phone.to_string(), device));
            return;
        }
        let Some((phone, device)) = self.me.clone() else {
            return;
        };
        let Ok(node) = binary::decode(bytes) else {
            return;
        };
        let origin = Origin {
            conn: self.ctx.id,
            phone,
            device: u32::from(device),
        };
        for reply in router::handle_stanza(sim, &origin, node) {
            out.write(binary::encode(&reply).unwrap());
        }
    }

    fn on_command(&mut self, cmd: ConnCommand, out: &mut Outbox) {
        if let ConnCommand::Deliver { node } = cmd {
            out.write(node);
        }
    }

    fn on_closed(&mut self) {
        if let Some((phone, device)) = &self.me {
            self.ctx
                .sim
                .state()
                .set_device_online(phone, *device, false);
        }
    }
}

/// Pairs a companion through the state (keys do not matter here: no Signal on this wire).
fn pair(running: &RunningSim, phone: &str, conn: u64) -> u16 {
    let state = running.sim().state();
    let id = zapin_sim::conn::ConnId(conn);
    let reg = Registration {
        noise_static: PublicKey([conn as u8; 32]),
        identity: PublicKey([2; 32]),
        registration_id: 1,
        signed_prekey: SignedPreKeyPublic {
            id: 1,
            public: PublicKey([3; 32]),
            signature: [0; 64],
        },
    };
    state.registration_started(id, reg.clone());
    let refs = state.issue_refs(id).unwrap();
    let qr = QrData {
        pairing_ref: refs[0].clone(),
        noise_static: reg.noise_static,
        identity: reg.identity,
        adv_secret: [0; 32],
        platform: None,
    };
    let t = state.begin_qr_pairing(phone, &qr).unwrap();
    state.finish_pairing(&t, vec![]).unwrap();
    state.connection_closed(id);
    t.device
}

async fn login(running: &RunningSim, phone: &str, device: u16) -> Ws {
    let mut ws = connect(running).await;
    send(&mut ws, &WA_HEADER).await;
    send(&mut ws, format!("D{phone}:{device}").as_bytes()).await;
    ws
}

async fn next_node(ws: &mut Ws) -> Node {
    binary::decode(&next_binary(ws).await).unwrap()
}

#[tokio::test]
async fn stanzas_route_between_sockets_and_queue_while_offline() {
    let running = start(SimConfig {
        seed: Some(31),
        handlers: Arc::new(NodeWire),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&running);
    for phone in ["15550000001", "15550000002"] {
        api.post("/sim/accounts", json!({"phone": phone})).await;
    }
    let a1 = pair(&running, "15550000001", 901);
    let b1 = pair(&running, "15550000002", 902);
    let mut wa = login(&running, "15550000001", a1).await;
    let mut wb = login(&running, "15550000002", b1).await;
    assert_eq!(next_node(&mut wa).await.tag, "success");
    assert_eq!(next_node(&mut wb).await.tag, "success");

    let message = |id: &str| {
        Node::new("message")
            .attr("id", id.to_string())
            .attr("to", Jid::pn("15550000002"))
            .attr("type", "text")
            .children(vec![Node::new("participants").children(vec![
                Node::new("to")
                    .attr("jid", Jid::with_device("15550000002", b1, Server::Pn))
                    .children(vec![
                        Node::new("enc")
                            .attr("v", "2")
                            .attr("type", "msg")
                            .bytes(vec![0x33, 1, 2, 3]),
                    ]),
            ])])
    };
    send(&mut wa, &binary::encode(&message("M1")).unwrap()).await;
    let ack = next_node(&mut wa).await;
    assert_eq!(ack.tag, "ack");
    assert_eq!(ack.attr_str("id"), Some("M1"));
    let got = next_node(&mut wb).await;
    assert_eq!(got.tag, "message");
    assert_eq!(
        got.attr_jid("from").unwrap(),
        Jid::with_device("15550000001", a1, Server::Pn)
    );
    assert_eq!(
        got.child("enc").unwrap().content_bytes().unwrap().as_ref(),
        [0x33, 1, 2, 3]
    );

    // B1's receipt: acked to B1, relayed to A1.
    let receipt = Node::new("receipt")
        .attr("id", "M1")
        .attr("to", Jid::with_device("15550000001", a1, Server::Pn));
    send(&mut wb, &binary::encode(&receipt).unwrap()).await;
    assert_eq!(next_node(&mut wb).await.attr_str("class"), Some("receipt"));
    let relayed = next_node(&mut wa).await;
    assert_eq!(relayed.tag, "receipt");
    assert_eq!(
        relayed.attr_jid("from").unwrap(),
        Jid::with_device("15550000002", b1, Server::Pn)
    );

    // B1 goes away; the next message waits in its queue and arrives at the next login.
    drop(wb);
    wait_for("B1 offline", || async {
        running
            .sim()
            .connections()
            .connection_of("15550000002", b1)
            .is_none()
            .then_some(())
    })
    .await;
    send(&mut wa, &binary::encode(&message("M2")).unwrap()).await;
    assert_eq!(next_node(&mut wa).await.attr_str("id"), Some("M2"));
    let mut wb = login(&running, "15550000002", b1).await;
    let queued = next_node(&mut wb).await;
    assert_eq!(queued.tag, "message");
    assert_eq!(queued.attr_str("id"), Some("M2"));
    assert_eq!(next_node(&mut wb).await.tag, "success");
    assert_eq!(running.sim().stats().messages_routed, 2);
    assert_eq!(running.sim().stats().receipts_routed, 1);
    drop((wa, wb));
    running.shutdown().await.unwrap();
}
