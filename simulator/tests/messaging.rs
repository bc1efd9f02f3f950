//! The router and the mock phones' Signal, driven in-process: companions are zapin-protocol Signal
//! parties that build stanzas as nodes and call `router::handle_stanza` directly; what the router
//! delivers to them is read from their connection's command queue (`ConnCommand::Deliver`), as the
//! protocol handler would get it. The control API is exercised over HTTP on the same simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use chacha20::ChaCha20Rng;
use common::*;
use prost::Message as _;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use zapin_protocol::binary::{self, Node};
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::proto::wa;
use zapin_protocol::signal::{
    self, LocalIdentity, PreKey, PreKeySecrets, PreKeySignalMessage, SenderKeyDistributionMessage,
    SenderKeyRecord, SessionRecord, SignedPreKey, padding,
};
use zapin_sim::conn::{ConnCommand, ConnId};
use zapin_sim::qr::QrData;
use zapin_sim::router::{self, Origin};
use zapin_sim::state::{PreKeyPublic, Registration, SignedPreKeyPublic};
use zapin_sim::{RunningSim, Sim};

const A: &str = "15550000001";
const B: &str = "15550000002";

/// A companion device: a Signal party with a fake connection in the registry.
struct Companion {
    sim: Sim,
    phone: String,
    device: u16,
    conn: ConnId,
    rx: mpsc::Receiver<ConnCommand>,
    identity: LocalIdentity,
    spk: SignedPreKey,
    prekeys: HashMap<u32, PreKey>,
    sessions: HashMap<String, SessionRecord>,
    sender_keys: HashMap<String, SenderKeyRecord>,
    rng: ChaCha20Rng,
    next_id: u32,
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9))
}

impl Companion {
    /// Pairs a new companion to `phone` through the state (as a QR scan would) and logs it in.
    fn pair(sim: &Sim, phone: &str, seed: u64) -> Companion {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let identity = LocalIdentity::generate(&mut rng);
        let spk = SignedPreKey::generate(&identity, 1, &mut rng);
        let prekeys: HashMap<u32, PreKey> = PreKey::generate_batch(1, 20, &mut rng)
            .into_iter()
            .map(|k| (k.id, k))
            .collect();
        let (conn, rx) = sim.connections().register(peer());
        let noise = KeyPair::generate(&mut rng);
        let state = sim.state();
        state.registration_started(
            conn,
            Registration {
                noise_static: *noise.public(),
                identity: *identity.public(),
                registration_id: identity.registration_id,
                signed_prekey: SignedPreKeyPublic {
                    id: spk.id,
                    public: *spk.key_pair.public(),
                    signature: spk.signature,
                },
            },
        );
        let refs = state.issue_refs(conn).unwrap();
        let qr = QrData {
            pairing_ref: refs[0].clone(),
            noise_static: *noise.public(),
            identity: *identity.public(),
            adv_secret: [7; 32],
            platform: None,
        };
        let ticket = state.begin_qr_pairing(phone, &qr).unwrap();
        state.finish_pairing(&ticket, vec![0xAD, 0x01]).unwrap();
        state
            .upload_prekeys(
                phone,
                ticket.device,
                prekeys.values().map(|k| PreKeyPublic {
                    id: k.id,
                    public: *k.key_pair.public(),
                }),
            )
            .unwrap();
        sim.device_logged_in(conn, phone, ticket.device);
        Companion {
            sim: sim.clone(),
            phone: phone.to_string(),
            device: ticket.device,
            conn,
            rx,
            identity,
            spk,
            prekeys,
            sessions: HashMap::new(),
            sender_keys: HashMap::new(),
            rng,
            next_id: 0,
        }
    }

    fn origin(&self) -> Origin {
        Origin {
            conn: self.conn,
            phone: self.phone.clone(),
            device: u32::from(self.device),
        }
    }

    fn jid(&self) -> Jid {
        Jid::with_device(self.phone.clone(), self.device, Server::Pn)
    }

    fn send(&self, node: Node) -> Vec<Node> {
        router::handle_stanza(&self.sim, &self.origin(), node)
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("3EB0{:04}{:012}", self.device, self.next_id)
    }

    /// Everything delivered so far, decoded.
    fn inbox(&mut self) -> Vec<Node> {
        let mut out = Vec::new();
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                ConnCommand::Deliver { node } => out.push(binary::decode(&node).unwrap()),
                other => panic!("unexpected command {other:?}"),
            }
        }
        out
    }

    fn one(&mut self, tag: &str) -> Node {
        let got: Vec<Node> = self.inbox().into_iter().filter(|n| n.tag == tag).collect();
        assert_eq!(got.len(), 1, "expected one <{tag}>, got {got:#?}");
        got.into_iter().next().unwrap()
    }

    /// Pairwise `<enc>` for a device, fetching its bundle the way the key-fetch IQ would.
    fn enc_for(&mut self, phone: &str, device: u16, msg: &wa::Message) -> Node {
        let addr = format!("{phone}.{device}");
        let mut record = self.sessions.remove(&addr).unwrap_or_default();
        if !record.has_current_session() {
            let bundle = zapin_sim::phone::fetch_bundle(self.sim.state(), phone, device).unwrap();
            record =
                signal::initiate_session(&record, &self.identity, &bundle, &mut self.rng).unwrap();
        }
        let padded = padding::pad(&msg.encode_to_vec(), &mut self.rng);
        let (record, ct) = signal::encrypt(&record, &padded).unwrap();
        self.sessions.insert(addr, record);
        Node::new("enc")
            .attr("v", "2")
            .attr("type", ct.enc_type())
            .bytes(ct.serialized().to_vec())
    }

    /// A DM as Baileys sends it: one `<to>` per device of the recipient and of our own account.
    fn dm(&mut self, to: &str, text: &str) -> (String, Node) {
        let id = self.new_id();
        let content = text_message(text);
        let dsm = wa::Message {
            device_sent_message: Some(Box::new(wa::message::DeviceSentMessage {
                destination_jid: Some(format!("{to}@s.whatsapp.net")),
                message: Some(Box::new(content.clone())),
                phash: None,
            })),
            ..Default::default()
        };
        let mut tos = Vec::new();
        for (phone, msg) in [(to, &content), (self.phone.clone().as_str(), &dsm)] {
            for d in devices(&self.sim, phone) {
                if phone == self.phone && d == self.device {
                    continue;
                }
                let enc = self.enc_for(phone, d, msg);
                tos.push(
                    Node::new("to")
                        .attr("jid", Jid::with_device(phone, d, Server::Pn))
                        .children(vec![enc]),
                );
            }
        }
        let node = Node::new("message")
            .attr("id", id.clone())
            .attr("to", Jid::pn(to))
            .attr("type", "text")
            .children(vec![
                Node::new("participants").children(tos),
                Node::new("device-identity").bytes(vec![0xAD, 0x01]),
            ]);
        (id, node)
    }

    /// A group message: SKDM pairwise to every other member device, one skmsg.
    fn group_message(&mut self, group: &str, text: &str) -> (String, Node) {
        let id = self.new_id();
        let gjid = format!("{group}@g.us");
        let record = self.sender_keys.remove("own").unwrap_or_default();
        let (record, skdm) = signal::create_sender_key_distribution(&record, &mut self.rng);
        let padded = padding::pad(&text_message(text).encode_to_vec(), &mut self.rng);
        let (record, skmsg) = signal::group_encrypt(&record, &padded, &mut self.rng).unwrap();
        self.sender_keys.insert("own".into(), record);
        let skdm_msg = wa::Message {
            sender_key_distribution_message: Some(wa::message::SenderKeyDistributionMessage {
                group_id: Some(gjid.clone()),
                axolotl_sender_key_distribution_message: Some(skdm.serialized().to_vec()),
            }),
            ..Default::default()
        };
        let members: Vec<String> = self
            .sim
            .state()
            .group(group)
            .unwrap()
            .participants
            .into_iter()
            .map(|p| p.phone)
            .collect();
        let mut tos = Vec::new();
        for phone in &members {
            for d in devices(&self.sim, phone) {
                if *phone == self.phone && d == self.device {
                    continue;
                }
                let enc = self.enc_for(phone, d, &skdm_msg);
                tos.push(
                    Node::new("to")
                        .attr("jid", Jid::with_device(phone.clone(), d, Server::Pn))
                        .children(vec![enc]),
                );
            }
        }
        let node = Node::new("message")
            .attr("id", id.clone())
            .attr("to", Jid::group(group))
            .attr("type", "text")
            .attr("addressing_mode", "pn")
            .children(vec![
                Node::new("participants").children(tos),
                Node::new("enc")
                    .attr("v", "2")
                    .attr("type", "skmsg")
                    .bytes(skmsg.serialized().to_vec()),
                Node::new("device-identity").bytes(vec![0xAD, 0x01]),
            ]);
        (id, node)
    }

    /// Decrypts every `<enc>` of a delivered message, in order.
    fn open(&mut self, msg: &Node) -> Vec<wa::Message> {
        let from = msg.attr_jid("from").unwrap();
        let sender = if from.is_group() {
            msg.attr_jid("participant").unwrap()
        } else {
            from.clone()
        };
        let addr = format!("{}.{}", sender.user, sender.device);
        let mut out = Vec::new();
        for enc in msg.children_by_tag("enc") {
            let body = enc.content_bytes().unwrap();
            let padded = match enc.attr_str("type").unwrap() {
                "pkmsg" => {
                    let m = PreKeySignalMessage::parse(body).unwrap();
                    let one_time = m.pre_key_id.and_then(|id| self.prekeys.get(&id));
                    let record = self.sessions.remove(&addr).unwrap_or_default();
                    let d = signal::decrypt_prekey_message(
                        &record,
                        &self.identity,
                        &m,
                        PreKeySecrets {
                            signed_pre_key: Some(&self.spk),
                            one_time_pre_key: one_time,
                        },
                        &mut self.rng,
                    )
                    .unwrap();
                    self.sessions.insert(addr.clone(), d.record);
                    d.plaintext
                }
                "msg" => {
                    let record = self.sessions.remove(&addr).unwrap_or_default();
                    let (record, p) =
                        signal::decrypt_message(&record, body, &mut self.rng).unwrap();
                    self.sessions.insert(addr.clone(), record);
                    p
                }
                "skmsg" => {
                    let key = format!("{from}|{addr}");
                    let record = self.sender_keys.remove(&key).unwrap_or_default();
                    let (record, p) = signal::group_decrypt(&record, body).unwrap();
                    self.sender_keys.insert(key, record);
                    p
                }
                other => panic!("enc type {other}"),
            };
            let m = wa::Message::decode(padding::unpad(&padded).unwrap()).unwrap();
            if let Some(skdm) = &m.sender_key_distribution_message {
                let key = format!("{}|{addr}", skdm.group_id.clone().unwrap());
                let parsed = SenderKeyDistributionMessage::parse(
                    skdm.axolotl_sender_key_distribution_message.as_deref().unwrap(),
                )
                .unwrap();
                let record = self.sender_keys.remove(&key).unwrap_or_default();
                self.sender_keys.insert(
                    key,
                    signal::process_sender_key_distribution(&record, &parsed),
                );
            }
            out.push(m);
        }
        out
    }
}

fn text_message(text: &str) -> wa::Message {
    wa::Message {
        conversation: Some(text.to_string()),
        ..Default::default()
    }
}

fn text_of(msgs: &[wa::Message]) -> Option<String> {
    msgs.iter().find_map(|m| m.conversation.clone())
}

fn devices(sim: &Sim, phone: &str) -> Vec<u16> {
    sim.state().read(|st| {
        std::iter::once(0)
            .chain(st.accounts[phone].companions.keys().copied())
            .collect()
    })
}

fn attr(n: &Node, key: &str) -> String {
    n.get_attr(key)
        .map(|v| v.to_string())
        .unwrap_or_else(|| panic!("no {key} in {n:?}"))
}

fn enc_types(n: &Node) -> Vec<String> {
    n.children_by_tag("enc")
        .map(|e| e.attr_str("type").unwrap().to_string())
        .collect()
}

async fn setup() -> (RunningSim, Api) {
    let running = start(seeded(11)).await;
    let api = Api::new(&running);
    for (phone, name) in [(A, "Alice"), (B, "Bob")] {
        let (s, _) = api
            .post("/sim/accounts", json!({"phone": phone, "push_name": name}))
            .await;
        assert_eq!(s, 201);
    }
    (running, api)
}

async fn phone_messages(api: &Api, phone: &str) -> Vec<Value> {
    let (s, v) = api.get(&format!("/sim/accounts/{phone}/messages")).await;
    assert_eq!(s, 200);
    v.as_array().unwrap().clone()
}

#[tokio::test]
async fn dms_between_companions_and_phones_with_receipts() {
    let (running, api) = setup().await;
    let sim = running.sim().clone();
    let mut a1 = Companion::pair(&sim, A, 1);
    let mut b1 = Companion::pair(&sim, B, 2);

    // A1 → B: B's phone (pkmsg), B1 (pkmsg), and A's own phone (DeviceSentMessage).
    let (id1, node) = a1.dm(B, "hello bob");
    let acks = a1.send(node);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].tag, "ack");
    assert_eq!(attr(&acks[0], "class"), "message");
    assert_eq!(attr(&acks[0], "id"), id1);
    assert_eq!(attr(&acks[0], "from"), format!("{B}@s.whatsapp.net"));

    let m = b1.one("message");
    assert_eq!(attr(&m, "from"), format!("{A}:{}@s.whatsapp.net", a1.device));
    assert_eq!(attr(&m, "sender_lid"), attr_lid(&sim, A));
    assert_eq!(attr(&m, "notify"), "Alice");
    assert_eq!(attr(&m, "type"), "text");
    assert!(m.get_attr("recipient").is_none());
    assert_eq!(enc_types(&m), ["pkmsg"]);
    assert!(m.child("device-identity").is_some());
    assert_eq!(text_of(&b1.open(&m)).as_deref(), Some("hello bob"));

    let inbox_b = phone_messages(&api, B).await;
    assert_eq!(inbox_b.len(), 1, "{inbox_b:?}");
    assert_eq!(inbox_b[0]["id"], id1);
    assert_eq!(inbox_b[0]["type"], "text");
    assert_eq!(inbox_b[0]["text"], "hello bob");
    assert_eq!(inbox_b[0]["from"], format!("{A}@s.whatsapp.net"));
    // A's phone got its own copy as a DeviceSentMessage, recorded under the chat with B.
    let inbox_a = phone_messages(&api, A).await;
    assert_eq!(inbox_a.len(), 1);
    assert_eq!(inbox_a[0]["chat"], format!("{B}@s.whatsapp.net"));
    assert_eq!(inbox_a[0]["text"], "hello bob");

    // B's phone acknowledged delivery to A1; B1 does too.
    let r = a1.one("receipt");
    assert_eq!(attr(&r, "from"), format!("{B}@s.whatsapp.net"));
    assert_eq!(attr(&r, "id"), id1);
    assert!(r.get_attr("type").is_none());
    let acks = b1.send(
        Node::new("receipt")
            .attr("id", id1.clone())
            .attr("to", a1.jid()),
    );
    assert_eq!(attr(&acks[0], "class"), "receipt");
    let r = a1.one("receipt");
    assert_eq!(attr(&r, "from"), format!("{B}:{}@s.whatsapp.net", b1.device));

    // B's phone → A: A1 (msg: A1 started the session), A's phone (pkmsg), B1 (DSM copy).
    let (s, v) = api
        .post(
            &format!("/sim/accounts/{B}/messages"),
            json!({"to": format!("{A}@s.whatsapp.net"), "text": "hi alice"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id2 = v["id"].as_str().unwrap().to_string();
    let m = a1.one("message");
    assert_eq!(attr(&m, "from"), format!("{B}@s.whatsapp.net"));
    assert_eq!(attr(&m, "notify"), "Bob");
    assert_eq!(enc_types(&m), ["msg"]);
    assert_eq!(text_of(&a1.open(&m)).as_deref(), Some("hi alice"));
    let own = b1.one("message");
    assert_eq!(attr(&own, "recipient"), format!("{A}@s.whatsapp.net"));
    assert_eq!(enc_types(&own), ["pkmsg"]);
    let opened = b1.open(&own);
    let dsm = opened[0].device_sent_message.as_ref().unwrap();
    assert_eq!(dsm.destination_jid.as_deref(), Some(&*format!("{A}@s.whatsapp.net")));
    assert_eq!(
        dsm.message.as_ref().unwrap().conversation.as_deref(),
        Some("hi alice")
    );
    assert!(
        phone_messages(&api, A)
            .await
            .iter()
            .any(|m| m["id"] == id2.as_str() && m["text"] == "hi alice"),
        "A's phone decrypted B's phone's pkmsg"
    );

    // A1 answers with delivery then read receipts to the bare user: they reach B's phone.
    a1.send(Node::new("receipt").attr("id", id2.clone()).attr("to", Jid::pn(B)));
    a1.send(
        Node::new("receipt")
            .attr("id", id2.clone())
            .attr("to", Jid::pn(B))
            .attr("type", "read"),
    );
    let (s, v) = api
        .get(&format!("/sim/accounts/{B}/receipts?id={id2}"))
        .await;
    assert_eq!(s, 200);
    let kinds: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    // A's phone also sent its delivery receipt when it decrypted.
    assert_eq!(kinds, ["delivered", "delivered", "read"], "{v}");

    // A1 → B again: A1 heard from B's phone, so that session sends msg; B1 never wrote to A1,
    // so its copy is still a pkmsg.
    let (id3, node) = a1.dm(B, "second");
    let to_phone = node
        .child("participants")
        .unwrap()
        .children_by_tag("to")
        .find(|t| attr(t, "jid") == format!("{B}@s.whatsapp.net"))
        .unwrap()
        .clone();
    assert_eq!(enc_types(&to_phone), ["msg"]);
    a1.send(node);
    let m = b1.one("message");
    assert_eq!(enc_types(&m), ["pkmsg"]);
    assert_eq!(text_of(&b1.open(&m)).as_deref(), Some("second"));
    assert!(
        phone_messages(&api, B)
            .await
            .iter()
            .any(|m| m["id"] == id3.as_str() && m["text"] == "second")
    );
    a1.inbox();

    // B's phone reads A1's messages: one read receipt with the rest in <list>.
    let (s, _) = api
        .post(
            &format!("/sim/accounts/{B}/read"),
            json!({"chat": format!("{A}@s.whatsapp.net"), "ids": [id1, id3]}),
        )
        .await;
    assert_eq!(s, 200);
    let receipts: Vec<Node> = a1
        .inbox()
        .into_iter()
        .filter(|n| n.tag == "receipt" && n.attr_str("type") == Some("read"))
        .collect();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(attr(&receipts[0], "from"), format!("{B}@s.whatsapp.net"));
    let listed: Vec<&str> = receipts[0]
        .child("list")
        .unwrap()
        .children_by_tag("item")
        .map(|i| i.attr_str("id").unwrap())
        .collect();
    assert_eq!(listed, [id3.as_str()]);

    let stats = sim.stats();
    assert!(stats.messages_routed >= 3);
    assert!(stats.receipts_routed >= 5);
    running.shutdown().await.unwrap();
}

fn attr_lid(sim: &Sim, phone: &str) -> String {
    format!("{}@lid", sim.state().lid_of(phone).unwrap())
}
